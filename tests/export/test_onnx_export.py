"""ONNX export checked in ONNX Runtime: every exportable layer's model, functional graphs, BN folding, names, batch."""

import numpy as np
import pytest

import convx
import model_zoo as zoo
from conftest import optional

onnx = optional("onnx", "onnx")
ort = optional("onnxruntime", "onnx")

EXPORTED = sorted(name for name in zoo.MODELS if name != "graph_ops")  # convx.ops calls: no ONNX export yet


def _session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run(path, x):
    session = _session(path)
    return session.run(None, {i.name: v for i, v in zip(session.get_inputs(), x)})


@pytest.mark.parametrize("name", EXPORTED)
def test_onnx_runtime_predicts_what_convx_predicts(tmp_path, name):
    convx.utils.clear_session()
    model = zoo.build(convx, name)
    path = tmp_path / f"{name}.onnx"
    model.export(path, format="onnx")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == [t.node.operation.name for t in model._graph.inputs]
    assert [o.name for o in proto.graph.output] == model.output_names
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    for batch in (1, 5):
        x = zoo.inputs(name, batch=batch)
        expected = model.predict(x if len(x) > 1 else x[0], verbose=0)
        np.testing.assert_allclose(_run(path, x)[0], expected, rtol=1e-5, atol=2e-5)


def test_batch_normalization_is_folded_and_opsets_13_to_18_work(tmp_path):
    convx.utils.clear_session()
    model = zoo.build(convx, "residual")
    x = zoo.inputs("residual")
    for opset in (13, 18):
        path = tmp_path / f"residual{opset}.onnx"
        proto = model.export(path, format="onnx", opset_version=opset)
        assert proto.opset_import[0].version == opset
        assert not [n for n in proto.graph.node if "batch_normalization" in n.name]  # folded into the conv
        np.testing.assert_allclose(_run(path, x)[0], model.predict(x[0], verbose=0), rtol=1e-5, atol=2e-5)
    # a BatchNormalization after an activation stays, as a scale and a shift
    convx.utils.clear_session()
    L = convx.layers
    net = convx.Sequential([convx.Input((6, 6, 2)), L.Conv2D(3, 3, activation="relu"), L.BatchNormalization()])
    net.set_weights([np.random.default_rng(0).normal(size=w.shape).astype(np.float32) + (w.name.endswith("variance"))
                     * 2.0 for w in net.weights])
    x = np.random.default_rng(1).random((2, 6, 6, 2), dtype=np.float32)
    proto = net.export(tmp_path / "bn.onnx", format="onnx", opset=17)
    assert [n for n in proto.graph.node if "batch_normalization" in n.name]
    np.testing.assert_allclose(_run(tmp_path / "bn.onnx", [x])[0], net.predict(x, verbose=0), rtol=1e-5, atol=2e-5)


class Doubling(convx.layers.Layer):
    def forward(self, x, training=False):
        return x * 2


def test_what_cannot_be_exported_is_refused_by_name(tmp_path):
    convx.utils.clear_session()
    model = convx.Sequential([convx.Input((4,)), Doubling(name="twice")])
    with pytest.raises(ValueError, match=r"Layer 'twice' \(Doubling\) has no ONNX export"):
        model.export(tmp_path / "g.onnx", format="onnx")
    assert not (tmp_path / "g.onnx").exists()
    with pytest.raises(ValueError, match="format='onnx' only"):
        model.export(tmp_path / "m")
    with pytest.raises(ValueError, match="opset 13 or later"):
        zoo.build(convx, "Conv2D").export(tmp_path / "old.onnx", format="onnx", opset=11)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("size", [(4, 13), (14, 5)])
def test_resizing_matches_at_any_size_and_opset(tmp_path, interpolation, size):
    model = convx.Sequential([convx.Input((7, 9, 2)), convx.layers.Resizing(*size, interpolation=interpolation)])
    x = np.random.default_rng(0).random((2, 7, 9, 2), dtype=np.float32)
    for opset in (13, 18):
        model.export(tmp_path / "r.onnx", format="onnx", opset=opset)
        np.testing.assert_allclose(_run(tmp_path / "r.onnx", [x])[0], model.predict(x, verbose=0), atol=1e-6)


@pytest.mark.parametrize("calibrated", [True, False], ids=["static", "dynamic"])
def test_int8_models_export_as_qdq_and_onnx_runtime_agrees(tmp_path, calibrated):
    convx.utils.clear_session()
    convx.utils.set_random_seed(0)
    L = convx.layers
    model = convx.Sequential([convx.Input((8, 8, 3)), L.Conv2D(6, 3, padding="same", activation="relu"),
                              L.MaxPooling2D(), L.Conv2D(4, 3), L.Flatten(), L.Dense(3)])
    model.set_weights([w + 0.05 for w in model.get_weights()])  # "trained": biases not all zero
    x = np.random.default_rng(0).random((16, 8, 8, 3), dtype=np.float32)
    model.quantize("int8", calibration_data=x if calibrated else None)
    proto = model.export(tmp_path / "int8.onnx", format="onnx")
    kinds = {n.op_type for n in proto.graph.node}
    assert "DequantizeLinear" in kinds and ("QuantizeLinear" if calibrated else "DynamicQuantizeLinear") in kinds
    int8_weights = [t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) > 1]
    assert len(int8_weights) == 3
    expected = model.predict(x, verbose=0)
    # the same integer sums; only the bias (convx rounds it to the int32 grid) and float rounding differ
    np.testing.assert_allclose(_run(tmp_path / "int8.onnx", [x])[0], expected, rtol=0, atol=1e-5 * np.abs(expected).max() * 10)
