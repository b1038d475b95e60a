"""from_onnx: ONNX CNNs (a torch.onnx.export'ed PyTorch CNN, hand-built graphs) as trainable convx models."""

import warnings

import numpy as np
import pytest

import convx
from conftest import optional

onnx = optional("onnx", "onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _torch_cnn(torch):
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2))
            self.branch = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU6(), nn.Conv2d(8, 8, 1))
            self.head = nn.Sequential(nn.Conv2d(16, 12, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
                                      nn.AvgPool2d(2), nn.Flatten(), nn.Linear(12 * 2 * 2, 10), nn.Tanh(),
                                      nn.Linear(10, 4))

        def forward(self, x):
            x = self.stem(x)
            y = self.branch(x) + x
            return self.head(torch.cat([x, y], dim=1))

    return Block()


def test_a_pytorch_cnn_exported_by_torch_runs_and_trains_in_convx(torch, tmp_path):
    torch.manual_seed(0)
    net = _torch_cnn(torch)
    net.train()
    with torch.no_grad():  # non-trivial BatchNorm statistics, then inference mode (torch folds BN into the conv)
        net(torch.randn(16, 3, 16, 16) * 2 + 1)
    net.eval()
    path = tmp_path / "torch_cnn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, torch.randn(1, 3, 16, 16), str(path), dynamo=False, input_names=["image"],
                          output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    model = convx.models.from_onnx(path)
    x = np.random.default_rng(0).standard_normal((6, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.predict(x.transpose(0, 2, 3, 1), verbose=0), expected, rtol=1e-5, atol=1e-5)
    assert model.layers[0].name == "image" and model.input_shape == (None, 16, 16, 3)
    # fine-tuning: the imported weights train
    images = x.transpose(0, 2, 3, 1)
    targets = np.random.default_rng(1).integers(0, 4, 6)
    model.compile(optimizer=convx.optimizers.Adam(0.01), loss=convx.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    history = model.fit(images, targets, epochs=15, batch_size=6, verbose=0).history["loss"]
    assert history[-1] < 0.5 * history[0]


def _graph(nodes, inputs, outputs, initializers, opset=17):
    graph = helper.make_graph(nodes, "handmade", inputs, outputs, initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _ort_reference(model, feeds):
    ort = optional("onnxruntime", "onnx")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def test_batch_normalization_matmul_pad_resize_concat_and_global_pool(tmp_path):
    rng = np.random.default_rng(2)
    f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    inits = [numpy_helper.from_array(a, n) for n, a in [
        ("w", f32(4, 3, 3, 3)), ("gamma", f32(4)), ("beta", f32(4)), ("mean", f32(4)),
        ("var", np.abs(f32(4)) + 0.5), ("pads", np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)),
        ("scales", np.array([1, 1, 2, 2], np.float32)), ("fc", f32(8, 5)), ("fc_b", f32(5))]]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["b"], epsilon=1e-3),
        helper.make_node("Sigmoid", ["b"], ["s"]),
        helper.make_node("Pad", ["s", "pads"], ["p"]),
        helper.make_node("Resize", ["p", "", "scales"], ["r"], mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        helper.make_node("Concat", ["r", "r"], ["cat"], axis=1),
        helper.make_node("GlobalAveragePool", ["cat"], ["g"]),
        helper.make_node("Flatten", ["g"], ["flat"]),
        helper.make_node("MatMul", ["flat", "fc"], ["mm"]),
        helper.make_node("Add", ["mm", "fc_b"], ["y"]),
    ]
    model = _graph(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 7, 7])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])], inits)
    path = tmp_path / "handmade.onnx"
    onnx.save(model, str(path))
    x = f32(3, 3, 7, 7)
    converted = convx.models.from_onnx(path)
    assert [type(layer).__name__ for layer in converted.layers].count("BatchNormalization") == 1
    np.testing.assert_allclose(converted.predict(x.transpose(0, 2, 3, 1), verbose=0),
                               _ort_reference(model, {"x": x}), rtol=1e-5, atol=1e-5)


def test_unsupported_operators_and_external_data_are_refused(tmp_path):
    nodes = [helper.make_node("LSTM", ["x", "w", "r"], ["y"], hidden_size=2)]
    inits = [numpy_helper.from_array(np.zeros((1, 8, 3), np.float32), "w"),
             numpy_helper.from_array(np.zeros((1, 8, 2), np.float32), "r")]
    model = _graph(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, "n", 3])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 1, "n", 2])], inits)
    onnx.save(model, str(tmp_path / "lstm.onnx"))
    with pytest.raises(ValueError, match="every dimension but the batch"):
        convx.models.from_onnx(tmp_path / "lstm.onnx")
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 5
    onnx.save(model, str(tmp_path / "lstm.onnx"))
    with pytest.raises(ValueError, match="ONNX operator 'LSTM'.*has no convx layer"):
        convx.models.from_onnx(tmp_path / "lstm.onnx")
    external = tmp_path / "external.onnx"
    onnx.save_model(model, str(external), save_as_external_data=True, location="weights.bin", size_threshold=0)
    with pytest.raises(ValueError, match="stored in another file"):
        convx.models.from_onnx(external)
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07junk" * 10)
    with pytest.raises(ValueError, match="not a valid ONNX model"):
        convx.models.from_onnx(tmp_path / "junk.onnx")
