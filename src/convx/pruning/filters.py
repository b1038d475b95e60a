"""Structured pruning: whole filters / units removed, so the model itself gets smaller and faster."""

import numpy as np

CRITERIA = ("l1", "l2")
# layers between two weighted layers that keep the channel axis as it is (BatchNormalization's
# per-channel weights are sliced with it)
_PASS_THROUGH = ("MaxPooling2D", "AveragePooling2D", "Activation", "ReLU", "LeakyReLU", "ELU", "Dropout",
                 "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "BatchNormalization",
                 "GlobalAveragePooling2D", "GlobalMaxPooling2D")
_WEIGHTED = ("Conv2D", "Dense")


def _norms(kernel, criterion):
    columns = np.abs(kernel.reshape(-1, kernel.shape[-1]).astype(np.float64))
    return columns.sum(axis=0) if criterion == "l1" else np.sqrt((columns ** 2).sum(axis=0))


def _kept(kernel, fraction, criterion):
    """Indices (ascending) of the output channels kept: the largest norms, at least one."""
    n = kernel.shape[-1]
    keep = max(1, n - int(round(fraction * n)))
    return np.sort(np.argsort(-_norms(kernel, criterion), kind="stable")[:keep])


def _plan(layers, fraction, criterion):
    """Per layer index: kept output channels (weighted sources) and the input selection of readers."""
    weighted = [i for i, layer in enumerate(layers) if type(layer).__name__ in _WEIGHTED]
    outputs, inputs, passes = {}, {}, {}
    for i in weighted[:-1]:  # the last weighted layer makes the model's output: its units stay
        chain, j = [], i + 1
        while j < len(layers) and type(layers[j]).__name__ in _PASS_THROUGH + ("Flatten",):
            chain.append(j)
            j += 1
        if j >= len(layers) or type(layers[j]).__name__ not in _WEIGHTED:
            continue  # an unknown layer reads the channels: leave them
        if any(type(layers[k]).__name__ == "Flatten" for k in chain) and type(layers[i]).__name__ != "Conv2D":
            continue
        keep = _kept(layers[i].kernel.value, fraction, criterion)
        outputs[i] = keep
        for k in chain:
            passes[k] = keep
        reader = layers[j]
        if type(reader).__name__ == "Conv2D":
            inputs[j] = ("channels", keep)
        else:
            channels = layers[i].kernel.shape[-1]
            rows = np.arange(reader.kernel.shape[0]).reshape(-1, channels)[:, keep].reshape(-1)
            inputs[j] = ("rows", rows)
    return outputs, inputs, passes


def _new_weights(layer, index, outputs, inputs, passes):
    weights = layer.get_weights()
    name = type(layer).__name__
    if name in _WEIGHTED:
        kernel = weights[0]
        if index in inputs:
            kind, selection = inputs[index]
            kernel = kernel[:, :, selection, :] if kind == "channels" else kernel[selection]
        if index in outputs:
            kernel = kernel[..., outputs[index]]
            weights = [kernel] + [w[outputs[index]] for w in weights[1:]]
        else:
            weights = [kernel] + weights[1:]
    elif name == "BatchNormalization" and index in passes:
        weights = [w[passes[index]] for w in weights]
    return weights


def prune_filters(model, fraction, criterion="l1"):
    """A smaller copy of ``model`` without the ``fraction`` of filters (Conv2D) / units (Dense) of
    smallest norm in each layer, and without the matching input channels of the next layer
    (BatchNormalization entries included). The output layer keeps its units.

    Parameters
    ----------
    model : Sequential
        Built; Conv2D / Dense layers with only channel-preserving layers between them (pooling,
        activations, dropout, BatchNormalization, Flatten after a Conv2D).
    fraction : float in [0, 1)
        Share of each layer's filters removed (rounded; at least one filter stays).
    criterion : 'l1' (default) or 'l2'
        Norm of a filter's weights.

    Returns
    -------
    Sequential
        New, uncompiled model with the kept weights (fine-tune it).
    """
    from convx.models import Sequential
    from convx.saving import deserialize_layer, serialize_layer

    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be a number in [0, 1), got {fraction!r}")
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    if not isinstance(model, Sequential):
        raise ValueError(f"prune_filters works on Sequential models; got {type(model).__name__}")
    if not model.built:
        raise ValueError(f"Model {model.name!r} is not built: build and train it before pruning filters")
    if any(getattr(layer, "_int8", None) is not None or getattr(layer, "_pruning", None) is not None
           for layer in model.layers):
        raise ValueError("prune_filters expects a float model (not quantized, not wrapped by prune_low_magnitude)")
    layers = model.layers
    outputs, inputs, passes = _plan(layers, fraction, criterion)
    new_layers = []
    for i, layer in enumerate(layers):
        entry = serialize_layer(layer)
        if i in outputs:
            key = "filters" if "filters" in entry["config"] else "units"
            entry["config"][key] = int(len(outputs[i]))
        new_layers.append(deserialize_layer(entry))
    pruned = Sequential(new_layers, name=model.name)
    pruned.build(model.input_shape)
    for i, (old, new) in enumerate(zip(layers, new_layers)):
        new.set_weights(_new_weights(old, i, outputs, inputs, passes))
    return pruned
