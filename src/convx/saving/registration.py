"""Registering custom classes so that saved configs can name them (Keras 3's ``keras.saving`` registry).

A class is found again by the name it was registered under (``'package>Name'``),
or through ``custom_objects`` / :class:`CustomObjectScope`: loading never imports
the module a file mentions, so a file cannot make convx run code of its choosing.
"""

import threading

_GLOBAL_CUSTOM_OBJECTS = {}
_GLOBAL_CUSTOM_NAMES = {}
_scopes = threading.local()


def register_keras_serializable(package="Custom", name=None):
    """Class decorator registering a class (or function) as ``'package>name'`` for saving and loading.

    Parameters
    ----------
    package : str, default 'Custom'
    name : str, optional
        Defaults to the class' ``__name__``.

    Examples
    --------
    >>> @convx.saving.register_keras_serializable(package="my_app")
    ... class Scale(convx.layers.Layer): ...
    """
    if not isinstance(package, str) or ">" in package:
        raise ValueError(f"`package` must be a str without '>', received package={package!r}")

    def decorator(arg):
        class_name = name if name is not None else arg.__name__
        registered_name = f"{package}>{class_name}"
        if isinstance(arg, type) and not hasattr(arg, "get_config"):
            raise ValueError("Cannot register a class that does not have a get_config() method.")
        _GLOBAL_CUSTOM_OBJECTS[registered_name] = arg
        _GLOBAL_CUSTOM_NAMES[arg] = registered_name
        return arg

    return decorator


def get_registered_name(obj):
    """The name ``obj`` is registered under, else its ``__name__``."""
    return _GLOBAL_CUSTOM_NAMES.get(obj, getattr(obj, "__name__", None))


def get_registered_object(name, custom_objects=None, module_objects=None):
    """The object registered (or given in a scope, ``custom_objects`` or ``module_objects``) as ``name``, else None.

    The innermost :class:`CustomObjectScope` wins, then the global registry, then the two dicts.
    """
    for scope in reversed(_scope_stack()):
        if name in scope:
            return scope[name]
    for table in (_GLOBAL_CUSTOM_OBJECTS, custom_objects or {}, module_objects or {}):
        if name in table:
            return table[name]
    return None


def get_custom_objects():
    """The global registry (``registered name -> object``); entries added to it are found when loading."""
    return _GLOBAL_CUSTOM_OBJECTS


def _scope_stack():
    if not hasattr(_scopes, "stack"):
        _scopes.stack = []
    return _scopes.stack


class CustomObjectScope:
    """Within ``with CustomObjectScope({'Name': cls}):`` loading finds ``cls`` by ``'Name'`` (this thread only).

    Parameters
    ----------
    custom_objects : dict, optional
        Name -> class or function. Several dicts may be given positionally (Keras' form).
    """

    def __init__(self, custom_objects=None, *more):
        merged = {}
        for objects in (custom_objects, *more):
            if objects is not None and not isinstance(objects, dict):
                raise TypeError(f"custom_objects must be a dict, received {type(objects).__name__}")
            merged.update(objects or {})
        self.custom_objects = merged

    def __enter__(self):
        _scope_stack().append(self.custom_objects)
        return self

    def __exit__(self, *exc_info):
        _scope_stack().pop()


custom_object_scope = CustomObjectScope
