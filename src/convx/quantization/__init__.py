"""int8 quantization of trained models (``model.quantize('int8', calibration_data=...)``).

Weights: per output channel, symmetric, int8 in [-127, 127] (Keras 3's ``kernel`` and
``kernel_scale``). Activations: per tensor, asymmetric uint8 (scale and zero point), either
calibrated once on ``calibration_data`` (static: min/max or percentiles of each quantized
layer's input) or taken from each batch's min and max (dynamic, when no data are given, as
Keras 3 does). Conv2D and Dense layers run int8 kernels (``convx._kernels.quant``), with a
following valid max pooling fused in; the other layers stay float32. Quantized layers take and
return float32, except inside a model's plan with static scales, where an int8 layer whose output
only feeds the next int8 layer (through a fused pooling and Flatten) hands it uint8 already in
its input scale (the requantizing epilogue), so the model keeps its whole API.
"""

import re

import numpy as np

from convx.quantization import calibration
from convx.quantization.layers import attach, default_activation_bits

MODES = ("int8",)
METHODS = ("minmax", "percentile")


def quantize_model(model, mode, calibration_data=None, filters=None, method="minmax", percentile=99.99,
                   batch_size=256, activation_bits=None):
    """Quantize ``model``'s Conv2D and Dense layers to int8 in place (see the module doc).

    Parameters
    ----------
    model : Sequential or functional Model
        Built and trained.
    mode : 'int8'
    calibration_data : ndarray (or list of them, one per model input), optional
        Samples like the training inputs (float, no NaN/inf): static activation scales.
        None: dynamic scales computed per batch.
    filters : str (regex on layer names), callable ``f(layer) -> bool`` or None
        Which layers to quantize (Keras 3's argument); None: every eligible one.
    method : 'minmax' or 'percentile'
        Range of each layer's input over the calibration data.
    percentile : float in (50, 100], default 99.99
        With 'percentile': the range is [p(100 - percentile), p(percentile)] of a sample of the values.
    batch_size : int, default 256
        Batch size of the calibration run.
    activation_bits : 8, 7 or None (default)
        Levels of the uint8 activations: 256, or 128 (the AVX2 kernels without VNNI then need no
        split of each byte, about 3x faster there; the saved model keeps its choice). None: with
        calibration data, 7 on CPUs whose int8 kernels are AVX2 without VNNI, else 8.
    """
    if mode not in MODES:
        raise ValueError(f"Invalid quantization mode {mode!r}: convx supports {MODES}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if activation_bits is None:  # dynamic scales keep 8 bits: ONNX's DynamicQuantizeLinear is 8-bit
        activation_bits = default_activation_bits() if calibration_data is not None else 8
    if activation_bits not in (7, 8):
        raise ValueError(f"activation_bits must be 7, 8 or None, got {activation_bits!r}")
    if not (isinstance(percentile, (int, float)) and 50.0 < percentile <= 100.0):
        raise ValueError(f"percentile must be a number in (50, 100], got {percentile!r}")
    _check_model(model)
    layers = _eligible_layers(model, filters)
    if not layers:
        raise ValueError(f"Model {model.name!r} has no layer to quantize (convx quantizes built Conv2D and Dense "
                         "layers not followed by BatchNormalization)")
    ranges = None
    if calibration_data is not None:
        calibration_data = _check_calibration_data(model, calibration_data)
        ranges = calibration.input_ranges(model, layers, calibration_data, method, percentile, batch_size)
    for i, layer in enumerate(layers):
        attach(layer, static=ranges is not None, input_range=None if ranges is None else ranges[i],
               activation_bits=activation_bits)
    model._plans = {}  # plans built for the float layers (their fusions) are made again, linking the int8 layers
    if model.optimizer is not None:
        model._bind_flat()  # the trainable weights changed: the optimizer's state for the old ones goes


def _check_model(model):
    if not model.built or getattr(model, "_graph", None) is None:
        raise ValueError(f"Model {model.name!r} is not built: build and train it before quantizing")
    from convx.models.model import _all_layers

    layers = _all_layers(model.layers)
    if any(layer._int8 is not None for layer in layers):
        raise ValueError(f"Model {model.name!r} is already quantized")
    optimizer = getattr(model, "optimizer", None)
    trained = optimizer is not None and int(optimizer.iterations) > 0
    biases = [layer.bias.value for layer in layers if getattr(layer, "bias", None) is not None]
    if not trained and biases and all(not np.any(b) for b in biases):
        raise ValueError(f"Model {model.name!r} looks untrained (no optimizer step and every bias still zero): "
                         "quantizing it would calibrate random weights; train it (or load trained weights) first")


def _followed_by_batch_norm(model):
    """ids of layers whose output some BatchNormalization reads (the plan folds those; they stay float)."""
    from convx.layers.normalization import BatchNormalization
    from convx.models.model import _all_layers

    found = set()
    for layer in _all_layers(model.layers):
        if isinstance(layer, BatchNormalization):
            for node in layer._inbound_nodes:
                for tensor in node.input_tensors:
                    found.add(id(tensor._keras_history[0]))
    return found


def _eligible_layers(model, filters):
    from convx.layers.convolutional import Conv2D
    from convx.layers.core import Dense
    from convx.models.model import _all_layers

    before_bn = _followed_by_batch_norm(model)
    chosen = []
    for layer in _all_layers(model.layers):
        if type(layer) not in (Conv2D, Dense) or not layer.built or id(layer) in before_bn:
            continue
        if layer.activity_regularizer is not None:
            continue
        if isinstance(filters, str) and not re.search(filters, layer.name):
            continue
        if callable(filters) and not filters(layer):
            continue
        if id(layer) not in {id(c) for c in chosen}:
            chosen.append(layer)
    return chosen


def _check_calibration_data(model, data):
    arrays = model._prepare_x(data, "calibration_data")
    if not len(arrays[0]):
        raise ValueError("calibration_data holds no samples")
    for array in arrays:
        if not np.all(np.isfinite(array)):
            raise ValueError("calibration_data holds NaN or inf values: activation ranges would be undefined")
    return arrays if len(arrays) > 1 else arrays[0]
