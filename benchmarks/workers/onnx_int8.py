"""The seed model as an ONNX graph (onnx.helper) and ONNX Runtime's own static int8 quantization of it.

The convx model's weights go into an NCHW graph (Conv, Relu, MaxPool, Flatten, Gemm, Softmax);
the first Dense's rows are permuted from Keras' (h, w, c) flattening order to ONNX's (c, h, w), so
the graph computes the same function without a Transpose. ``quantize_static`` (QDQ format,
per-channel int8 weights, uint8 activations, min/max calibration on the same calibration images)
makes the int8 model that ONNX Runtime runs with its own int8 kernels.
"""

import numpy as np


def _conv_pads(layer, h, w):
    if layer.padding == "valid":
        return [0, 0, 0, 0]
    kh, kw = layer.kernel_size
    total_h, total_w = max(kh - 1, 0), max(kw - 1, 0)
    return [total_h // 2, total_w // 2, total_h - total_h // 2, total_w - total_w // 2]


def build_onnx(model, path):
    """Write the Sequential convx ``model`` (Conv2D, MaxPooling2D, Flatten, Dense) as ONNX to ``path``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    shape = model.input_shape[1:]  # (H, W, C) of the current tensor
    current = "x"

    def add(op, inputs, **attrs):
        nonlocal current
        name = f"t{len(nodes)}"
        nodes.append(helper.make_node(op, inputs, [name], **attrs))
        current = name

    for i, layer in enumerate(model.layers):
        kind = type(layer).__name__
        if kind == "Conv2D":
            kernel, bias = layer.get_weights()
            inits += [numpy_helper.from_array(kernel.transpose(3, 2, 0, 1).copy(), f"w{i}"),
                      numpy_helper.from_array(bias, f"b{i}")]
            add("Conv", [current, f"w{i}", f"b{i}"], kernel_shape=list(layer.kernel_size),
                strides=list(layer.strides), pads=_conv_pads(layer, *shape[:2]))
            shape = layer.output_shape[1:]
        elif kind == "MaxPooling2D":
            add("MaxPool", [current], kernel_shape=list(layer.pool_size), strides=list(layer.strides))
            shape = layer.output_shape[1:]
            continue
        elif kind == "Flatten":
            add("Flatten", [current], axis=1)
            continue
        elif kind == "Dense":
            kernel, bias = layer.get_weights()
            if len(shape) == 3:  # the first Dense after Flatten: Keras' (h, w, c) rows in ONNX's (c, h, w) order
                h, w, c = shape
                kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
            inits += [numpy_helper.from_array(np.ascontiguousarray(kernel), f"w{i}"),
                      numpy_helper.from_array(bias, f"b{i}")]
            add("Gemm", [current, f"w{i}", f"b{i}"])
            shape = (layer.units,)
        else:
            raise ValueError(f"build_onnx: unsupported layer {kind}")
        activation = layer.activation
        if activation == "relu":
            add("Relu", [current])
        elif activation == "softmax":
            add("Softmax", [current], axis=-1)
        elif activation != "linear":
            raise ValueError(f"build_onnx: unsupported activation {activation}")
    h, w, c = model.input_shape[1:]
    graph = helper.make_graph(
        nodes, "seed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", c, h, w])],
        [helper.make_tensor_value_info(current, TensorProto.FLOAT, ["n", model.output_shape[-1]])], inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(onnx_model)
    onnx.save(onnx_model, path)


def quantize_onnx(float_path, int8_path, calibration_nchw, batch=64):
    """ONNX Runtime's static quantization (QDQ, per-channel s8 weights, u8 activations, min/max), after
    its recommended pre-processing (shape inference and graph optimisation)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = float_path.replace(".onnx", ".prepared.onnx")
    quant_pre_process(float_path, prepared)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"x": calibration_nchw[i:i + batch]} for i in range(0, len(calibration_nchw), batch)])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(prepared, int8_path, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def session(path, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # ONNX Runtime's threads spin after each run by default, which would slow whatever runs next in
    # this process (the contenders alternate): they sleep instead, as convx's do
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
