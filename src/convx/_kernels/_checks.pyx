"""Argument checks shared by the compiled entry points.

Every public function of a kernel module validates its arguments here before
releasing the GIL, so that bad input raises a TypeError or ValueError naming
the argument, the expected value and the received one, and never reaches C.
The kernel modules cimport these functions (``_checks.pxd``): C calls rather
than Python ones. In a training step, with the interpreter's caches cold after
each kernel, the Python checks took about half of an entry point's own time,
which the other thread spent waiting.
"""

import numpy as np

cimport numpy as cnp

cnp.import_array()

cdef object FLOAT32 = np.dtype(np.float32)
cdef object FLOAT64 = np.dtype(np.float64)


cdef inline bint _plain_c_contiguous(object value):
    """An ndarray itself (no subclass) that is already C-contiguous: np.ascontiguousarray would return it."""
    return type(value) is cnp.ndarray and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>value)


cpdef object float_array(object value, str name, object ndim=None, object dtype=None):
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
    if not isinstance(value, cnp.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(value).__name__}")
    got = value.dtype
    if dtype is not None:
        if got is not dtype and got != dtype:
            raise TypeError(f"{name} must have dtype {np.dtype(dtype).name} (like the other inputs), got {got.name}")
    elif got is not FLOAT32 and got is not FLOAT64 and got != FLOAT32 and got != FLOAT64:
        raise TypeError(f"{name} must have dtype float32 or float64, got {got.name}")
    if ndim is not None and cnp.PyArray_NDIM(<cnp.ndarray>value) != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got {value.ndim}-D array of shape {value.shape}")
    return value if _plain_c_contiguous(value) else np.ascontiguousarray(value)


cpdef object int_array(object value, str name, object ndim=None):
    """Return `value` as a C-contiguous int64 ndarray (labels, indices)."""
    if not isinstance(value, cnp.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(value).__name__}")
    if value.dtype.kind not in "iu":
        raise TypeError(f"{name} must have an integer dtype, got {value.dtype.name}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got {value.ndim}-D array of shape {value.shape}")
    return np.ascontiguousarray(value, dtype=np.int64)


cpdef check_shape(object arr, str name, tuple expected):
    """Raise ValueError unless arr.shape == expected (None entries match anything)."""
    shape = arr.shape
    if shape == expected:
        return
    matches = len(shape) == len(expected)
    for got, want in zip(shape, expected):
        matches = matches and (want is None or got == want)
    if not matches:
        shown = tuple(["?" if e is None else e for e in expected])
        raise ValueError(f"{name} must have shape {shown}, got {shape}")


cpdef tuple positive_pair(object value, str name):
    """Return `value` (an int or a pair of ints, each >= 1) as a tuple of two ints."""
    if type(value) is tuple and len(<tuple>value) == 2 and type(value[0]) is int and type(value[1]) is int:
        if value[0] >= 1 and value[1] >= 1:
            return value
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    ints = len(pair) == 2
    for v in pair:
        ints = ints and isinstance(v, (int, np.integer)) and not isinstance(v, bool)
    if not ints:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return int(pair[0]), int(pair[1])


cpdef int padding_mode(object value) except -1:
    """Return 0 for 'valid', 1 for 'same' (case-insensitive), else raise ValueError."""
    if isinstance(value, str) and value.lower() in ("valid", "same"):
        return 0 if value.lower() == "valid" else 1
    raise ValueError(f"padding must be 'valid' or 'same', got {value!r}")


cpdef tuple output_length(Py_ssize_t size, Py_ssize_t kernel, Py_ssize_t stride, Py_ssize_t dilation, bint same):
    """Output length and padding before, along one axis (TensorFlow's rule).

    Returns
    -------
    (out, pad_before) : tuple of int
        ``same``: out = ceil(size / stride), total padding
        max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0), of which
        total // 2 goes before. ``valid``: out = floor((size - span) / stride) + 1.
    """
    cdef Py_ssize_t span = (kernel - 1) * dilation + 1, out, total
    if same:
        out = (size + stride - 1) // stride
        total = max((out - 1) * stride + span - size, 0)
        return out, total // 2
    return (size - span) // stride + 1 if size >= span else 0, 0


cpdef object empty_output_error(object out_h, object out_w, str what, object in_h, object in_w):
    """The ValueError to raise when a window does not fit (an output size < 1)."""
    return ValueError(
        f"{what} gives an empty output ({out_h}x{out_w}) for input of spatial size {in_h}x{in_w}: "
        "the window is larger than the input; use padding='same' or a smaller kernel"
    )


cdef int _output_problem(object out, tuple shape, object dtype):
    """0 if `out` is a writeable C-contiguous ndarray of `shape` and `dtype`, else which check fails (1-4)."""
    if not isinstance(out, cnp.ndarray):
        return 1
    got = out.dtype
    if got is not dtype and got != dtype:
        return 2
    if out.shape != shape:
        return 3
    if not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>out) or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>out):
        return 4
    return 0


cdef _raise_output_problem(int problem, object out, str name, tuple shape, object dtype):
    if problem == 1:
        raise TypeError(f"{name} must be a numpy.ndarray or None, got {type(out).__name__}")
    if problem == 2:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype).name}, got {out.dtype.name}")
    if problem == 3:
        raise ValueError(f"{name} must have shape {shape}, got {out.shape}")
    raise ValueError(f"{name} must be a writeable C-contiguous array")


cpdef object output_array(object out, str name, tuple shape, object dtype):
    """Return `out` checked as a writeable C-contiguous array of `shape` and `dtype`, or a new one.

    Kernels write their results into `out` when given, so that callers can reuse
    buffers from step to step instead of allocating (and page-faulting) anew.
    """
    if out is None:
        return np.empty(shape, dtype=dtype)
    cdef int problem = _output_problem(out, shape, dtype)
    if problem:
        _raise_output_problem(problem, out, name, shape, dtype)
    return out


cpdef tuple output_arrays(object out, tuple names, tuple shapes, tuple dtypes):
    """Like :func:`output_array` for a tuple of outputs.

    `out` is None or a tuple whose entries may be None (allocate); a None shape
    marks an output that is not wanted (returned as None). Outputs must not
    overlap the inputs.
    """
    cdef Py_ssize_t i, count = len(names)
    cdef int problem
    if out is None:
        out = (None,) * count
    elif not isinstance(out, tuple) or len(out) != count:
        raise TypeError(f"out must be None or a tuple of {count} arrays ({', '.join(names)})")
    result = []
    for i in range(count):
        given, shape, dtype = out[i], shapes[i], dtypes[i]
        if shape is None:
            result.append(None)
        elif given is None:
            result.append(np.empty(shape, dtype=dtype))
        else:
            problem = _output_problem(given, shape, dtype)
            if problem:
                _raise_output_problem(problem, given, f"out[{i}] ({names[i]})", shape, dtype)
            result.append(given)
    return tuple(result)
