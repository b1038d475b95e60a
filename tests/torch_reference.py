"""A PyTorch twin of a convx Sequential model, for oracle tests.

The twin works on channels-last tensors like convx and copies the convx
weights (conv kernels HWIO -> OIHW); TensorFlow's 'same' padding (extra pixel
after) is applied with an explicit pad, since torch pads symmetrically.
"""

import numpy as np

from convx import layers as L
from convx._kernels import _checks


def _same_pad(size, kernel, stride, dilation, padding):
    if padding != "same":
        return 0, 0
    out, before = _checks.output_length(size, kernel, stride, dilation, True)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return before, total - before


def _pad_nchw(torch, x, kernel, strides, dilation, padding, value=0.0):
    (t, b), (l, r) = (_same_pad(x.shape[2 + i], kernel[i], strides[i], dilation[i], padding) for i in range(2))
    return torch.nn.functional.pad(x, (l, r, t, b), value=value)


def _activation(torch, x, name):
    return {
        "linear": lambda v: v,
        "relu": torch.relu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "softmax": lambda v: torch.softmax(v, -1),
    }[name](x)


class TorchTwin:
    """Parameters (torch leaf tensors, float32) and forward of a built convx model.

    ``forward(x, logits=True)`` stops before the last layer's activation.
    """

    def __init__(self, torch, model):
        self.torch, self.model = torch, model
        self.params = {}
        for layer in model.layers:
            for var in layer.weights:
                value = var.numpy()
                if isinstance(layer, L.Conv2D) and var.name == "kernel":
                    value = value.transpose(3, 2, 0, 1)  # HWIO -> OIHW
                self.params[var.path] = torch.tensor(value, requires_grad=True)

    def parameters(self):
        return list(self.params.values())

    def keras_weights(self):
        """Current torch parameters in convx's layout and order."""
        out = []
        for layer in self.model.layers:
            for var in layer.weights:
                value = self.params[var.path].detach().numpy()
                out.append(value.transpose(2, 3, 1, 0) if value.ndim == 4 else value)
        return out

    def forward(self, x, logits=False):
        torch, F = self.torch, self.torch.nn.functional
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        last = self.model.layers[-1]
        for layer in self.model.layers:
            act = getattr(layer, "activation", "linear")
            if logits and layer is last:
                act = "linear"
            if isinstance(layer, L.Conv2D):
                xc = _pad_nchw(torch, x.permute(0, 3, 1, 2), layer.kernel_size, layer.strides, layer.dilation_rate, layer.padding)
                bias = self.params.get(f"{layer.name}/bias")
                y = F.conv2d(xc, self.params[f"{layer.name}/kernel"], bias, stride=layer.strides, dilation=layer.dilation_rate)
                x = _activation(torch, y.permute(0, 2, 3, 1), act)
            elif isinstance(layer, L.Dense):
                x = x @ self.params[f"{layer.name}/kernel"]
                if layer.use_bias:
                    x = x + self.params[f"{layer.name}/bias"]
                x = _activation(torch, x, act)
            elif isinstance(layer, L.MaxPooling2D):
                xc = _pad_nchw(torch, x.permute(0, 3, 1, 2), layer.pool_size, layer.strides, (1, 1), layer.padding, -np.inf)
                x = F.max_pool2d(xc, layer.pool_size, layer.strides).permute(0, 2, 3, 1)
            elif isinstance(layer, L.AveragePooling2D):
                xc = x.permute(0, 3, 1, 2)
                ones = torch.ones_like(xc[:1, :1])
                pad = lambda v: _pad_nchw(torch, v, layer.pool_size, layer.strides, (1, 1), layer.padding)  # noqa: E731
                # Keras divides by the number of real cells in each window
                x = (F.avg_pool2d(pad(xc), layer.pool_size, layer.strides)
                     / F.avg_pool2d(pad(ones), layer.pool_size, layer.strides)).permute(0, 2, 3, 1)
            elif isinstance(layer, L.GlobalAveragePooling2D):
                x = x.mean(dim=(1, 2))
            elif isinstance(layer, L.GlobalMaxPooling2D):
                x = x.amax(dim=(1, 2))
            elif isinstance(layer, L.Flatten):
                x = x.reshape(x.shape[0], -1)
            elif isinstance(layer, L.Activation):
                x = _activation(torch, x, act)
            else:
                raise NotImplementedError(type(layer).__name__)
        return x


def _apply(torch, layer, inputs, weight):
    """``layer`` on torch tensors (channels last); ``weight(var)`` gives a torch parameter in convx's layout."""
    F = torch.nn.functional
    if isinstance(layer, L.Concatenate):
        return torch.cat(inputs, dim=layer.axis)
    if isinstance(layer, L.Add):
        return sum(inputs[1:], inputs[0])
    if isinstance(layer, L.Subtract):
        return inputs[0] - inputs[1]
    if isinstance(layer, L.Multiply):
        out = inputs[0]
        for x in inputs[1:]:
            out = out * x
        return out
    if isinstance(layer, L.Average):
        return sum(inputs[1:], inputs[0]) / len(inputs)
    if isinstance(layer, (L.Maximum, L.Minimum)):
        out = inputs[0]
        for x in inputs[1:]:
            out = torch.maximum(out, x) if isinstance(layer, L.Maximum) else torch.minimum(out, x)
        return out
    x = inputs[0]
    act = getattr(layer, "activation", "linear")
    if isinstance(layer, (L.Conv2D, L.Conv1D)):
        rank2 = isinstance(layer, L.Conv2D)
        x4 = x if rank2 else x[:, None]
        kernel = weight(layer.kernel)
        kernel = (kernel if rank2 else kernel[None]).permute(3, 2, 0, 1)
        strides, dilation = layer._as2d(layer.strides), layer._as2d(layer.dilation_rate)
        xc = _pad_nchw(torch, x4.permute(0, 3, 1, 2), layer._as2d(layer.kernel_size), strides, dilation, layer.padding)
        bias = weight(layer.bias) if layer.use_bias else None
        y = F.conv2d(xc, kernel, bias, stride=strides, dilation=dilation).permute(0, 2, 3, 1)
        return _activation(torch, y if rank2 else y[:, 0], act)
    if isinstance(layer, L.Dense):
        y = x @ weight(layer.kernel)
        return _activation(torch, y + weight(layer.bias) if layer.use_bias else y, act)
    if isinstance(layer, L.MaxPooling2D):
        xc = _pad_nchw(torch, x.permute(0, 3, 1, 2), layer.pool_size, layer.strides, (1, 1), layer.padding, -np.inf)
        return F.max_pool2d(xc, layer.pool_size, layer.strides).permute(0, 2, 3, 1)
    if isinstance(layer, L.GlobalAveragePooling2D):
        return x.mean(dim=(1, 2))
    if isinstance(layer, L.GlobalMaxPooling1D):
        return x.amax(dim=1)
    if isinstance(layer, L.Flatten):
        return x.reshape(x.shape[0], -1)
    if isinstance(layer, L.Activation):
        return _activation(torch, x, act)
    raise NotImplementedError(type(layer).__name__)


class TorchGraph:
    """A functional convx model (nested models, shared layers, several inputs and outputs) in PyTorch.

    Parameters are float64 leaf tensors, one per convx weight (shared layers share them).
    """

    def __init__(self, torch, model, dtype=None):
        self.torch, self.model = torch, model
        self.dtype = dtype or torch.float64
        self.params = {id(v): torch.tensor(v.numpy(), dtype=self.dtype, requires_grad=True) for v in model.weights}

    def forward(self, inputs):
        tensors = [self.torch.as_tensor(np.asarray(x), dtype=self.dtype) for x in inputs]
        return self._run(self.model, tensors)

    def _run(self, model, inputs):
        values = {id(t): x for t, x in zip(model._graph.inputs, inputs)}
        for node in model._graph.nodes:
            if node.is_input:
                continue
            args = [values[id(t)] for t in node.input_tensors]
            layer = node.operation
            if getattr(layer, "_graph", None) is not None and getattr(layer, "_is_model", False):
                outputs = self._run(layer, args)
            else:
                outputs = [_apply(self.torch, layer, args, lambda var: self.params[id(var)])]
            values.update({id(t): v for t, v in zip(node.output_tensors, outputs)})
        return [values[id(t)] for t in model._graph.outputs]

    def grads(self):
        """Gradients in ``model.weights`` order (zeros where no gradient flowed)."""
        return [np.zeros(v.shape) if self.params[id(v)].grad is None else self.params[id(v)].grad.numpy()
                for v in self.model.weights]
