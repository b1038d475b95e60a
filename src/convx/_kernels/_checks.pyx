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

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX

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
    """Return `value` (an int or a pair of ints, each in [1, 2**63 - 1]) as a tuple of two ints."""
    if type(value) is tuple and len(<tuple>value) == 2 and type(value[0]) is int and type(value[1]) is int:
        if 1 <= value[0] <= PY_SSIZE_T_MAX and 1 <= value[1] <= PY_SSIZE_T_MAX:
            return value
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    ints = len(pair) == 2
    for v in pair:
        ints = ints and isinstance(v, (int, np.integer)) and not isinstance(v, bool)
    if not ints:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    if max(pair) > PY_SSIZE_T_MAX:
        raise ValueError(f"{name} must be < 2**63, got {value!r}")
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

    Raises
    ------
    ValueError
        When the window's span ``(kernel - 1) * dilation + 1`` does not fit a
        64-bit integer (no arithmetic below can overflow otherwise: size,
        kernel, stride and dilation are in [0, 2**63)).
    """
    if kernel > 1 and dilation > (PY_SSIZE_T_MAX - 1) // (kernel - 1):
        raise ValueError(f"a window of {kernel} taps with dilation {dilation} spans 2**63 or more elements")
    cdef Py_ssize_t span = (kernel - 1) * dilation + 1, out, total
    if same:
        out = (size - 1) // stride + 1 if size > 0 else 0
        total = max((out - 1) * stride - size + span, 0)  # in this order: no intermediate overflows
        return out, total // 2
    return (size - span) // stride + 1 if size >= span else 0, 0


cpdef tuple conv_geometry(tuple x_shape, tuple kernel_shape, object strides, object padding, object dilation,
                          str what, str channels):
    """Validate a convolution window (HW kernel axes first, input channels on axis 2) over NHWC `x_shape`.

    `what` names the operation and `channels` the input channels' symbol in error messages.

    Returns
    -------
    (oh, ow, pad_top, pad_left, sh, sw, dh, dw) : tuple of int
        Output size, padding before (TensorFlow's rule, :func:`output_length`),
        strides and dilation.
    """
    sh, sw = positive_pair(strides, "strides")
    dh, dw = positive_pair(dilation, "dilation")
    same = padding_mode(padding)
    if kernel_shape[2] != x_shape[3]:
        raise ValueError(
            f"kernel must have {channels} = {x_shape[3]} (the channels of x) on axis 2, got kernel shape {kernel_shape}"
        )
    if min(kernel_shape) < 1:
        raise ValueError(f"kernel dimensions must be >= 1, got kernel shape {kernel_shape}")
    oh, pad_top = output_length(x_shape[1], kernel_shape[0], sh, dh, same)
    ow, pad_left = output_length(x_shape[2], kernel_shape[1], sw, dw, same)
    if oh < 1 or ow < 1:
        raise empty_output_error(oh, ow, f"{what} with kernel {kernel_shape[0]}x{kernel_shape[1]}, dilation "
                                 f"{(dh, dw)}", x_shape[1], x_shape[2])
    return oh, ow, pad_top, pad_left, sh, sw, dh, dw


cpdef object empty_output_error(object out_h, object out_w, str what, object in_h, object in_w):
    """The ValueError to raise when a window does not fit (an output size < 1)."""
    return ValueError(
        f"{what} gives an empty output ({out_h}x{out_w}) for input of spatial size {in_h}x{in_w}: "
        "the window is larger than the input; use padding='same' or a smaller kernel"
    )


cpdef bint share_memory(cnp.ndarray a, cnp.ndarray b):
    """Whether the bytes of two C-contiguous arrays overlap (a byte-range test, like np.may_share_memory)."""
    cdef char *pa = <char *>cnp.PyArray_DATA(a)
    cdef char *pb = <char *>cnp.PyArray_DATA(b)
    cdef Py_ssize_t na = cnp.PyArray_NBYTES(a), nb = cnp.PyArray_NBYTES(b)
    return na > 0 and nb > 0 and pa < pb + nb and pb < pa + na


cpdef check_distinct(tuple outputs, tuple out_names, tuple inputs, tuple in_names, bint same_ok=False):
    """Raise ValueError if an output shares memory with an input or with another output.

    Kernels read their inputs while writing their outputs, so that an output
    overlapping an input gives wrong numbers (or an output another output).
    None entries are skipped. With `same_ok` (elementwise kernels, which read
    each element before writing it), an output may be exactly an input (the
    same data and shape); a partial overlap is still refused.
    """
    cdef Py_ssize_t i, j
    for i in range(len(outputs)):
        out = outputs[i]
        if out is None:
            continue
        for j in range(len(inputs)):
            arr = inputs[j]
            if arr is None or not share_memory(out, arr):
                continue
            if same_ok and _same_elements(out, arr):
                continue
            raise ValueError(f"{out_names[i]} and {in_names[j]} must be distinct arrays, got arrays that share "
                             f"memory (the kernel reads {in_names[j]} while it writes {out_names[i]})")
        for j in range(i):
            if outputs[j] is not None and share_memory(out, outputs[j]):
                raise ValueError(f"{out_names[i]} and {out_names[j]} must be distinct arrays, got arrays that "
                                 "share memory")


cdef bint _same_elements(cnp.ndarray a, cnp.ndarray b):
    """Whether two C-contiguous arrays are views of the same elements in the same order."""
    return (cnp.PyArray_DATA(a) == cnp.PyArray_DATA(b) and cnp.PyArray_NBYTES(a) == cnp.PyArray_NBYTES(b)
            and a.dtype == b.dtype)


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


cpdef object output_array(object out, str name, tuple shape, object dtype, tuple inputs=(), tuple in_names=()):
    """Return `out` checked as a writeable C-contiguous array of `shape` and `dtype`, or a new one.

    Kernels write their results into `out` when given, so that callers can reuse
    buffers from step to step instead of allocating (and page-faulting) anew.
    A given `out` must not share memory with any of `inputs` (named `in_names`;
    see :func:`check_distinct`).
    """
    if out is None:
        return np.empty(shape, dtype=dtype)
    cdef int problem = _output_problem(out, shape, dtype)
    if problem:
        _raise_output_problem(problem, out, name, shape, dtype)
    if inputs:
        check_distinct((out,), (name,), inputs, in_names)
    return out


cpdef tuple output_arrays(object out, tuple names, tuple shapes, tuple dtypes, tuple inputs=(),
                          tuple in_names=()):
    """Like :func:`output_array` for a tuple of outputs.

    `out` is None or a tuple whose entries may be None (allocate); a None shape
    marks an output that is not wanted (returned as None). When `inputs` are
    named, given outputs must not share memory with each other nor with them
    (:func:`check_distinct`).
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
    result = tuple(result)
    if inputs and _any_given(out):
        check_distinct(result, names, inputs, in_names)
    return result


cdef bint _any_given(tuple out):
    for entry in out:
        if entry is not None:
            return True
    return False
