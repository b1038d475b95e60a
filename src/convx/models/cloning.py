"""``clone_model``: the same architecture with new layers (and freshly initialised weights)."""


def clone_model(model, input_tensors=None, clone_function=None, call_function=None, recursive=False, **kwargs):
    """A new model of ``model``'s architecture, its layers rebuilt from their configs.

    As in Keras, the clone's weights are newly initialised (copy them with
    ``clone.set_weights(model.get_weights())``) and it is not compiled.

    Parameters
    ----------
    model : Sequential or functional Model
    clone_function : callable, optional
        ``layer -> new layer``, applied to every layer (default: rebuild from ``get_config()``).
    """
    from convx.models.functional import Functional
    from convx.models.sequential import Sequential
    from convx.saving import deserialize_layer, serialize_layer

    if input_tensors is not None or call_function is not None or kwargs:
        raise ValueError("convx's clone_model supports `model`, `clone_function` and `recursive` only")
    if not isinstance(model, (Sequential, Functional)):
        raise ValueError(
            f"clone_model expects a Sequential or functional model; {type(model).__name__} is a subclassed model, "
            "which cannot be cloned from its config"
        )
    clone_function = clone_function or (lambda layer: deserialize_layer(serialize_layer(layer)))
    if isinstance(model, Sequential):
        layers = [clone_function(layer) for layer in model.layers]
        clone = Sequential(layers, trainable=model.trainable)
        if model.built and not clone.built:
            clone.build(model.input_shape)
        return clone
    config = model.get_config()
    clones = {layer.name: clone_function(layer) for layer in model.layers}
    from convx.ops.operations import OpCall, is_op_entry

    clones.update({entry["name"]: OpCall(entry) for entry in config["layers"] if is_op_entry(entry)})  # ops anew
    return Functional._from_config_with_layers(config, clones)
