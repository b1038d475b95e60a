"""Checks and normalisation of layer arguments (shapes, tuples, padding, data format, dtypes)."""

import math

import numpy as np

_DTYPE_NAMES = ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")


def _is_dtype(value):
    """Whether ``value`` names a dtype (Keras' names, NumPy dtypes or types), not a weight name."""
    if isinstance(value, str):
        return value in _DTYPE_NAMES
    return isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic))


def normalize_shape(shape):
    """A shape as a tuple of ints and None; a list of shapes as a list of such tuples."""
    if isinstance(shape, list) and shape and isinstance(shape[0], (tuple, list)):
        return [normalize_shape(tuple(s)) for s in shape]
    return tuple(None if s is None else int(s) for s in shape)


def normalize_tuple(value, n, name, allow_zero=False):
    """An int or a length-n sequence of positive ints, as a tuple (Keras' rule and message)."""
    values = (value,) * n if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    try:
        values = tuple(values)
    except TypeError:
        values = None
    low = 0 if allow_zero else 1
    if (
        values is None
        or len(values) != n
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= low for v in values)
    ):
        raise ValueError(
            f"The `{name}` argument must be a tuple of {n} integers >= {low} (or a single one). Received {name}={value!r}"
        )
    return tuple(int(v) for v in values)


def normalize_padding(value, allowed=("valid", "same")):
    if isinstance(value, str) and value.lower() in allowed:
        return value.lower()
    raise ValueError(f"The `padding` argument must be one of {allowed}. Received padding={value!r}")


def check_data_format(value):
    if value not in (None, "channels_last"):
        raise ValueError(f"convx supports only data_format='channels_last' (or None). Received data_format={value!r}")


MAX_SAMPLE_VALUES = 1 << 40  # 4 TiB of float32 per sample: no buffer of that size can be allocated


def check_output_size(name, shape):
    """Refuse an output shape no buffer can hold (``UpSampling2D(size=10**6)``, ``ZeroPadding2D(10**9)``)
    when the layer is built, rather than a MemoryError (or a wrapped size) when it first runs."""
    if not (isinstance(shape, tuple) and all(d is None or isinstance(d, int) for d in shape)):
        return
    values = math.prod(d for d in shape[1:] if d is not None)
    if values > MAX_SAMPLE_VALUES:
        raise ValueError(f'Layer "{name}": output shape {shape} holds {values} values per sample, more than any '
                         "buffer can; check the arguments that size it")
