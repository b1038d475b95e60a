"""Argument checks shared by the compiled entry points.

Every public function of a kernel module validates its arguments here before
releasing the GIL, so that bad input raises a TypeError or ValueError naming
the argument, the expected value and the received one, and never reaches C.
"""

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_array(value, name, ndim=None, dtype=None):
    """Return `value` as a C-contiguous float32/float64 ndarray.

    Parameters
    ----------
    value : numpy.ndarray
        The argument to check. Non-contiguous arrays are copied.
    name : str
        Argument name used in error messages.
    ndim : int, optional
        Required number of dimensions.
    dtype : numpy.dtype, optional
        Required dtype (usually the dtype of the first array argument).
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(value).__name__}")
    if dtype is not None:
        if value.dtype != dtype:
            raise TypeError(f"{name} must have dtype {np.dtype(dtype).name} (like the other inputs), got {value.dtype.name}")
    elif value.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {value.dtype.name}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got {value.ndim}-D array of shape {value.shape}")
    return np.ascontiguousarray(value)


def int_array(value, name, ndim=None):
    """Return `value` as a C-contiguous int64 ndarray (labels, indices)."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(value).__name__}")
    if value.dtype.kind not in "iu":
        raise TypeError(f"{name} must have an integer dtype, got {value.dtype.name}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got {value.ndim}-D array of shape {value.shape}")
    return np.ascontiguousarray(value, dtype=np.int64)


def check_shape(arr, name, expected):
    """Raise ValueError unless arr.shape == expected (None entries match anything)."""
    if arr.shape == expected:
        return
    if len(arr.shape) != len(expected) or any(e is not None and a != e for a, e in zip(arr.shape, expected)):
        shown = tuple("?" if e is None else e for e in expected)
        raise ValueError(f"{name} must have shape {shown}, got {arr.shape}")


def positive_pair(value, name):
    """Return `value` (an int or a pair of ints, each >= 1) as a tuple of two ints."""
    if type(value) is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int:
        if value[0] >= 1 and value[1] >= 1:
            return value
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return int(pair[0]), int(pair[1])


def padding_mode(value):
    """Return 0 for 'valid', 1 for 'same' (case-insensitive), else raise ValueError."""
    if isinstance(value, str) and value.lower() in ("valid", "same"):
        return 0 if value.lower() == "valid" else 1
    raise ValueError(f"padding must be 'valid' or 'same', got {value!r}")


def output_length(size, kernel, stride, dilation, same):
    """Output length and padding before, along one axis (TensorFlow's rule).

    Returns
    -------
    (out, pad_before) : tuple of int
        ``same``: out = ceil(size / stride), total padding
        max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0), of which
        total // 2 goes before. ``valid``: out = floor((size - span) / stride) + 1.
    """
    span = (kernel - 1) * dilation + 1
    if same:
        out = -(-size // stride)
        total = max((out - 1) * stride + span - size, 0)
        return out, total // 2
    return (size - span) // stride + 1 if size >= span else 0, 0


def check_output_size(out_h, out_w, what, in_h, in_w):
    """Raise ValueError when a window does not fit (output size < 1)."""
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"{what} gives an empty output ({out_h}x{out_w}) for input of spatial size {in_h}x{in_w}: "
            "the window is larger than the input; use padding='same' or a smaller kernel"
        )


def output_array(out, name, shape, dtype):
    """Return `out` checked as a writeable C-contiguous array of `shape` and `dtype`, or a new one.

    Kernels write their results into `out` when given, so that callers can reuse
    buffers from step to step instead of allocating (and page-faulting) anew.
    """
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray or None, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype).name}, got {out.dtype.name}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {out.shape}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{name} must be a writeable C-contiguous array")
    return out


def output_arrays(out, names, shapes, dtypes):
    """Like :func:`output_array` for a tuple of outputs.

    `out` is None or a tuple whose entries may be None (allocate); a None shape
    marks an output that is not wanted (returned as None). Outputs must not
    overlap the inputs.
    """
    if out is None:
        out = (None,) * len(names)
    elif not isinstance(out, tuple) or len(out) != len(names):
        raise TypeError(f"out must be None or a tuple of {len(names)} arrays ({', '.join(names)})")
    return tuple(
        None if s is None else output_array(o, f"out[{i}] ({n})", s, d)
        for i, (o, n, s, d) in enumerate(zip(out, names, shapes, dtypes))
    )
