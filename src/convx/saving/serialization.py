"""Layer and model configs in Keras 3's serialized form, and back (Keras 2 / tf.keras configs read too).

An entry is ``{'module', 'class_name', 'config', 'registered_name', 'build_config'}``
as Keras 3 writes it. Reading an entry finds its class by name only: convx's own
layers, or classes registered (``register_keras_serializable``) or passed
(``custom_objects``, :class:`~convx.saving.CustomObjectScope`). The module a file
names is never imported and ``Lambda`` layers (which carry code) are refused.
"""

from convx.saving.registration import _GLOBAL_CUSTOM_NAMES, get_registered_object

MODEL_CLASSES = ("Sequential", "Functional", "Model")

# config keys whose values are serialized objects of a Keras module (filled in when convx's form omits it)
_OBJECT_MODULES = (("_initializer", "keras.initializers"), ("_regularizer", "keras.regularizers"),
                   ("_constraint", "keras.constraints"))


def serialize_layer(layer):
    """A layer's (or a model's) entry as Keras 3 writes it in ``config.json``."""
    cls = type(layer)
    own = cls.__module__.startswith("convx.")
    if own:
        from convx.models import Model

        class_name = "Functional" if cls.__name__ == "Model" else cls.__name__
        module = "keras" if isinstance(layer, Model) else "keras.layers"
        registered = None
        if class_name == "Functional":  # as Keras 3 names it: not exported under keras.*
            module, registered = "keras.src.models.functional", "Functional"
    else:
        module, class_name = cls.__module__, cls.__name__
        registered = _GLOBAL_CUSTOM_NAMES.get(cls, cls.__name__)
    entry = {"module": module, "class_name": class_name, "config": _with_modules(layer.get_config()),
             "registered_name": registered}
    build_config = _build_config(layer)
    if build_config is not None:
        entry["build_config"] = build_config
    return entry


def serialize_model(model):
    """A model's architecture entry; subclassed models, which have no config, are refused by name."""
    from convx.models import Functional, Sequential

    if not isinstance(model, (Functional, Sequential)) and type(model).__module__.startswith("convx."):
        raise ValueError(f"Model '{model.name}' is a subclassed model ({type(model).__name__}): convx saves the "
                         "architecture of Sequential and functional models only; save its weights instead")
    return serialize_layer(model)


def _build_config(layer):
    from convx.layers import InputLayer
    from convx.models import Functional

    if isinstance(layer, InputLayer) or not layer.built:
        return None
    if isinstance(layer, Functional):
        return {"input_shape": None}  # Keras rebuilds a functional model from its graph
    return {"input_shape": _shape_json(layer.input_shape)}


def _shape_json(shape):
    if isinstance(shape, list):
        return [_shape_json(s) for s in shape]
    return None if shape is None else list(shape)


def _with_modules(config):
    out = dict(config)
    for key, value in config.items():
        if isinstance(value, dict) and "class_name" in value and "module" not in value:
            for suffix, module in _OBJECT_MODULES:
                if key.endswith(suffix):
                    out[key] = {"module": module, "class_name": value["class_name"],
                                "config": value.get("config", {}), "registered_name": None}
    return out


def deserialize_layer(entry, custom_objects=None):
    """The layer or model an entry describes (Keras 3, Keras 2 / tf.keras or older convx form).

    Raises
    ------
    ValueError
        For an entry that is not a layer's, a ``Lambda`` layer, or a class that is
        neither convx's nor registered / given in ``custom_objects``.
    """
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ValueError(f"Invalid layer entry in config: {str(entry)[:200]}")
    cls = _layer_class(entry, custom_objects)
    config = entry["config"]
    from convx.models import Functional, Sequential

    if cls is Functional or cls is Sequential:
        config = _keras2_model_config(config)
    elif entry.get("class_name") == "InputLayer":
        config = _keras2_input_config(config)
    else:
        config = _without_default_axes(config)
    return cls.from_config(config)


def _without_default_axes(config):
    """Keras 3.15's variance-scaling initializers write ``input_axes``/``output_axes`` (None: Keras 3's
    fan computation, which is convx's): dropped so the entry reads as earlier Keras wrote it."""
    out = dict(config)
    for key, value in config.items():
        inner = value.get("config") if isinstance(value, dict) and key.endswith("_initializer") else None
        if isinstance(inner, dict) and inner.get("input_axes") is None and inner.get("output_axes") is None:
            out[key] = {**value, "config": {k: v for k, v in inner.items() if k not in ("input_axes", "output_axes")}}
    if isinstance(config.get("axis"), list) and len(config["axis"]) == 1 and "momentum" in config:
        out["axis"] = config["axis"][0]  # Keras 2's BatchNormalization writes axis=[3]
    return out


def _layer_class(entry, custom_objects):
    from convx import layers as layers_module
    from convx import models

    name, registered, module = entry.get("class_name"), entry.get("registered_name"), entry.get("module")
    if not isinstance(name, str):
        raise ValueError(f"Invalid layer entry in config: class_name {name!r}")
    for key in (registered, name):
        found = get_registered_object(key, custom_objects) if isinstance(key, str) else None
        if found is not None:
            return found
    if name == "Lambda":
        raise ValueError("The config holds a Lambda layer: its code would have to be executed to load it, which convx "
                         "never does. Rewrite it as a layer class registered with "
                         "convx.saving.register_keras_serializable (or passed in custom_objects)")
    if module is None or not isinstance(module, str) or module.split(".")[0] in ("keras", "tf_keras", "convx"):
        if name in MODEL_CLASSES:
            return models.Functional if name == "Model" else getattr(models, name)
        layer_cls = getattr(layers_module, name, None)
        if isinstance(layer_cls, type) and issubclass(layer_cls, layers_module.Layer):
            return layer_cls
    raise ValueError(f"Unknown layer class {name!r} (module {module!r}, registered name {registered!r}): convx does "
                     "not implement it; a custom class must be registered with "
                     "convx.saving.register_keras_serializable or passed in custom_objects")


def _keras2_input_config(config):
    """Keras 2's InputLayer config (``batch_input_shape``, ``ragged``) in Keras 3's terms."""
    config = dict(config)
    if "batch_input_shape" in config:
        config["batch_shape"] = config.pop("batch_input_shape")
    config.pop("ragged", None)
    return config


def _keras2_model_config(config):
    """Keras 2's functional node lists (``[[['conv2d', 0, 0, {}]]]``) as Keras 3's ``{'args', 'kwargs'}``."""
    layers = config.get("layers")
    if not isinstance(layers, list):
        raise ValueError("Invalid model config: 'layers' is not a list")
    converted = []
    for entry in layers:
        nodes = entry.get("inbound_nodes") if isinstance(entry, dict) else None
        if isinstance(nodes, list) and nodes and isinstance(nodes[0], list):
            entry = {**entry, "inbound_nodes": [_keras2_node(node) for node in nodes]}
        elif isinstance(nodes, list):
            entry = {**entry, "inbound_nodes": [_without_none_kwargs(node, entry) for node in nodes]}
        converted.append(entry)
    return {**config, "layers": converted}


def _without_none_kwargs(node, entry):
    """A Keras 3 node without the call arguments a convx graph call implies: ``mask=None``, and ``training``
    (Keras records it on preprocessing layers; the model's own call decides it, in Keras as in convx)."""
    if not isinstance(node, dict):
        raise ValueError(f"Invalid inbound node in model config: {str(node)[:200]}")
    kwargs = {k: v for k, v in (node.get("kwargs") or {}).items() if v is not None and k != "training"}
    if kwargs:
        raise ValueError(f"Layer {entry.get('name')!r} is called with arguments {sorted(kwargs)}, which convx "
                         "does not support")
    return {**node, "kwargs": {}}


def _keras2_node(node):
    tensors = []
    for ref in node:
        if not (isinstance(ref, list) and len(ref) >= 3):
            raise ValueError(f"Invalid inbound node in model config: {str(node)[:200]}")
        if len(ref) > 3 and ref[3]:
            raise ValueError(f"Layer call arguments {ref[3]!r} in a Keras 2 config are not supported")
        tensors.append({"class_name": "__keras_tensor__", "config": {"keras_history": list(ref[:3])}})
    return {"args": [tensors if len(tensors) > 1 else tensors[0]], "kwargs": {}}
