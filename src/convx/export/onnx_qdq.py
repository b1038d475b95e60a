"""int8 Conv2D and Dense (``model.quantize('int8')``) in ONNX's QDQ form.

The input goes through QuantizeLinear -> DequantizeLinear with the layer's
calibrated uint8 scale and zero point (DynamicQuantizeLinear for dynamic
quantization: the scale from each batch's range, as convx does), the int8 kernel
through a per-output-channel DequantizeLinear with scale ``1 / kernel_scale``
(Keras' convention); ONNX Runtime runs the pattern with its int8 kernels.
"""

import numpy as np


def _quantized_input(graph, layer, x_name):
    """The name of ``x`` quantized to uint8 and back, as the layer quantizes its input."""
    hint = layer.name + "/input"
    if layer._int8.static:
        scale = graph.const(np.array(layer.input_scale.value, np.float32), hint + "_scale")
        zero = graph.const(np.array(int(layer.input_zero_point.value), np.uint8), hint + "_zero_point")
        q = graph.op("QuantizeLinear", [x_name, scale, zero], hint + "_q")
    else:
        q = graph.fresh(hint + "_q")
        scale, zero = graph.fresh(hint + "_scale"), graph.fresh(hint + "_zero_point")
        graph.nodes.append(graph.onnx.helper.make_node("DynamicQuantizeLinear", [x_name], [q, scale, zero],
                                                       name=q))
    return graph.op("DequantizeLinear", [q, scale, zero], hint + "_dq")


def _dequantized_kernel(graph, layer, kernel, axis):
    scale = (1.0 / layer.kernel_scale.value.astype(np.float64)).astype(np.float32)
    ins = [graph.const(kernel.astype(np.int8), layer.name + "/W_int8"), graph.const(scale, layer.name + "/W_scale"),
           graph.const(np.zeros(scale.shape, np.int8), layer.name + "/W_zero_point")]
    return graph.op("DequantizeLinear", ins, layer.name + "/W", axis=axis)


def int8_conv(graph, layer, node, x, conv):
    """The int8 Conv2D's pre-activation output (channels first)."""
    config = layer.get_config()
    x = graph.to_nchw(x)
    kernel = np.transpose(layer.kernel.value, (3, 2, 0, 1))
    strides, dilation = list(config["strides"]), list(config["dilation_rate"])
    from convx.export.onnx_layers import _pads

    pads = _pads(config, list(node.input_tensors[0].shape[1:-1]), list(kernel.shape[2:]), strides, dilation)
    ins = [_quantized_input(graph, layer, x.name), _dequantized_kernel(graph, layer, kernel, axis=0)]
    if layer.bias is not None:
        ins.append(graph.const(np.asarray(layer.bias.value, np.float32), layer.name + "/B"))
    out = graph.op("Conv", ins, layer.name, kernel_shape=list(kernel.shape[2:]), strides=strides, dilations=dilation,
                   pads=pads, group=config.get("groups", 1))
    return type(x)(out, x.rank, "nchw")


def int8_dense(graph, layer, x):
    """The int8 Dense's pre-activation output."""
    x = graph.to_nhwc(x)
    out = graph.op("MatMul", [_quantized_input(graph, layer, x.name),
                              _dequantized_kernel(graph, layer, layer.kernel.value, axis=1)], layer.name)
    if layer.bias is not None:
        out = graph.op("Add", [out, graph.const(np.asarray(layer.bias.value, np.float32), layer.name + "/B")],
                       layer.name + "/bias")
    return type(x)(out, x.rank, "nhwc")
