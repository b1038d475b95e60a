"""Merge layers (Keras Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate), forward and backward.

Elementwise merges take a list of arrays of one shape and dtype (float32 or
float64) and combine them left to right as Keras does:
``out = inputs[0]; for x in inputs[1:]: out = out op x``; ``'average'`` divides
that sum by the number of inputs. ``'maximum'`` and ``'minimum'`` keep the
earlier input on ties (TensorFlow's gradient rule ``x >= y`` selects ``x``) and
propagate a NaN (the first one). Concatenation joins arrays along one axis.

Non-contiguous inputs are copied. Results go into new C-contiguous arrays, or
into caller-owned ``out`` buffers (C-contiguous, writeable, of the result's
shape and dtype), which must not share memory with any array that the call
reads or with each other. Results are bit-identical for any thread count.
"""

import numpy as np

cimport numpy as cnp
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int64_t

from convx._kernels cimport threads
from convx._kernels cimport _checks
from convx._kernels._common cimport cx_int, raise_for_status

cnp.import_array()

cdef extern from "merge.h" nogil:
    void cx_merge_forward_f32(const float *const *inputs, int k, float *out, cx_int n, int mode, int n_threads)
    void cx_merge_forward_f64(const double *const *inputs, int k, double *out, cx_int n, int mode, int n_threads)
    void cx_merge_backward_f32(const float *dy, const float *const *inputs, int k, float *const *dx, cx_int n,
                               int mode, int n_threads)
    void cx_merge_backward_f64(const double *dy, const double *const *inputs, int k, double *const *dx, cx_int n,
                               int mode, int n_threads)
    void cx_concat(char *const *parts, const cx_int *part_len, int k, char *whole, cx_int outer, cx_int elem_size,
                   int split, int n_threads)

# Must match enum convx_merge_mode in csrc/merge.h.
MERGE_MODES = {"add": 0, "subtract": 1, "multiply": 2, "average": 3, "maximum": 4, "minimum": 5}
cdef enum:
    SUBTRACT = 1
    MULTIPLY = 2
    MAXIMUM = 4
    MINIMUM = 5


cdef int _mode(object mode) except -1:
    """The C code of a merge mode name (case-insensitive)."""
    if isinstance(mode, str):
        code = MERGE_MODES.get(mode.lower())
        if code is not None:
            return code
    valid = ", ".join(repr(m) for m in MERGE_MODES)
    raise ValueError(f"mode must be one of {valid}, got {mode!r}")


cdef object _array(object value, str name, object dtype):
    """`value` checked as a float32/float64 ndarray (of `dtype` when given), C-contiguous, its shape kept."""
    arr = _checks.float_array(value, name, None, dtype)
    return arr if arr.ndim == value.ndim else arr.reshape(value.shape)


cdef Py_ssize_t _count(object arrays, str name) except -1:
    """Length of a non-empty list or tuple argument."""
    if not isinstance(arrays, (list, tuple)):
        raise TypeError(f"{name} must be a list or tuple of arrays, got {type(arrays).__name__}")
    if len(arrays) < 1:
        raise ValueError(f"{name} must hold at least one array, got an empty {type(arrays).__name__}")
    return len(arrays)


cdef list _same_shape_inputs(object inputs, int mode, object like, str like_name):
    """Check `inputs` (list or tuple, >= 1 arrays; exactly 2 for subtract) of one shape and dtype.

    The reference shape and dtype are those of `like` (named `like_name`) when given, else of inputs[0].
    """
    cdef Py_ssize_t i, k = _count(inputs, "inputs")
    if mode == SUBTRACT and k != 2:
        raise ValueError(f"mode 'subtract' needs exactly 2 inputs, got {k}")
    arrays = []
    for i in range(k):
        name = f"inputs[{i}]"
        arr = _array(inputs[i], name, None if like is None else like.dtype)
        if like is None:
            like, like_name = arr, name
        elif arr.shape != like.shape:
            raise ValueError(f"{name} has shape {arr.shape} but {like_name} has shape {like.shape}: "
                             "merged arrays must all have one shape")
        arrays.append(arr)
    return arrays


cdef list _names(str name, Py_ssize_t k):
    return [f"{name}[{i}]" for i in range(k)]


cdef _check_distinct(list outputs, list out_names, list read, list read_names):
    """Raise ValueError if an output (None entries skipped) shares memory with an array read or another output."""
    _checks.check_distinct(tuple(outputs), tuple(out_names), tuple(read), tuple(read_names))


cdef tuple _gradient_buffers(object out, Py_ssize_t k, tuple shapes, object dtype):
    """Checked gradient outputs: `out` (None, or a list/tuple of k entries, each an array or None)."""
    if isinstance(out, list):
        out = tuple(out)
    names = tuple([f"gradient of inputs[{i}]" for i in range(k)])
    return _checks.output_arrays(out, names, shapes, (dtype,) * k)


cdef void **_pointers(list arrays) except NULL:
    """A PyMem_Malloc'ed array of the arrays' data pointers (NULL for None entries); free with PyMem_Free."""
    cdef Py_ssize_t i, k = len(arrays)
    cdef void **p = <void **>PyMem_Malloc(max(k, 1) * sizeof(void *))
    if p == NULL:
        raise MemoryError()
    for i in range(k):
        p[i] = NULL if arrays[i] is None else cnp.PyArray_DATA(<cnp.ndarray>arrays[i])
    return p


def merge_forward(inputs, mode, out=None):
    """Elementwise merge of arrays of one shape (Keras Add, Subtract, Multiply, Average, Maximum, Minimum).

    ``out = inputs[0] op inputs[1] op ...`` evaluated left to right; ``'average'``
    is that sum divided by ``len(inputs)``; ``'maximum'``/``'minimum'`` keep the
    earlier operand on ties and propagate NaN.

    Parameters
    ----------
    inputs : list or tuple of numpy.ndarray
        At least one array (``'subtract'``: exactly two), float32 or float64, all
        of one shape and dtype; any shape. Non-contiguous arrays are copied.
    mode : str
        ``'add'``, ``'subtract'``, ``'multiply'``, ``'average'``, ``'maximum'`` or
        ``'minimum'`` (case-insensitive).
    out : numpy.ndarray, optional
        Writeable C-contiguous array of the inputs' shape and dtype for the
        result; must not share memory with any input.

    Returns
    -------
    out : numpy.ndarray, shape and dtype of the inputs
    """
    cdef int code = _mode(mode)
    arrays = _same_shape_inputs(inputs, code, None, None)
    first = arrays[0]
    y = _checks.output_array(out, "out", first.shape, first.dtype)
    _check_distinct([y], ["out"], arrays, _names("inputs", len(arrays)))
    cdef cx_int n = first.size
    cdef int k = len(arrays)
    cdef int n_threads = threads.effective_num_threads()
    cdef bint single = first.dtype == np.float32
    cdef void *py = cnp.PyArray_DATA(<cnp.ndarray>y)
    if n == 0:
        return y
    cdef void **pin = _pointers(arrays)
    try:
        with nogil:
            if single:
                cx_merge_forward_f32(<const float **>pin, k, <float *>py, n, code, n_threads)
            else:
                cx_merge_forward_f64(<const double **>pin, k, <double *>py, n, code, n_threads)
    finally:
        PyMem_Free(pin)
    return y


cdef Py_ssize_t _backward_count(object inputs, int mode, object needed, object out) except -1:
    """Number of merged inputs when they are not read: len(inputs), len(needed) or len(out), which must agree."""
    cdef Py_ssize_t k = -1
    if inputs is not None:
        k = _count(inputs, "inputs")
    for value, name in ((needed, "needed"), (out, "out")):
        if value is None:
            continue
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be None or a list or tuple, got {type(value).__name__}")
        if k < 0:
            k = len(value)
        elif len(value) != k:
            raise ValueError(f"{name} has {len(value)} entries but the merge has {k} inputs")
    if k < 0 and mode == SUBTRACT:
        k = 2
    if k < 0:
        raise ValueError("the number of merged inputs is unknown: pass inputs, needed or out")
    if mode == SUBTRACT and k != 2:
        raise ValueError(f"mode 'subtract' needs exactly 2 inputs, got {k}")
    if k < 1:
        raise ValueError("a merge has at least one input, got 0")
    return k


cdef list _needed(object needed, Py_ssize_t k):
    """`needed` as a list of k bools (None: all True)."""
    if needed is None:
        return [True] * k
    if not isinstance(needed, (list, tuple)) or len(needed) != k:
        raise TypeError(f"needed must be None or a list or tuple of {k} bools, got {needed!r}")
    for flag in needed:
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"needed must hold bools, got {flag!r}")
    return [bool(flag) for flag in needed]


def merge_backward(dy, inputs, mode, needed=None, out=None):
    """Gradients of an elementwise merge w.r.t. each input, given the gradient of its output.

    ``'add'``: ``dy``; ``'subtract'``: ``dy`` and ``-dy``; ``'average'``:
    ``dy / n``; ``'multiply'``: ``dy * p_i`` with ``p_i`` the product of the
    other inputs taken in input order; ``'maximum'``/``'minimum'``: ``dy`` where
    input ``i`` is the one the forward pass selected (ties go to the earlier
    input, NaN to the first NaN input), else 0. Every returned gradient is a
    new array or the given ``out`` entry, never ``dy`` itself.

    Parameters
    ----------
    dy : numpy.ndarray, float32 or float64, any shape
        Gradient w.r.t. the merge output. Copied if non-contiguous.
    inputs : list or tuple of numpy.ndarray, or None
        The n forward inputs, shape and dtype of ``dy``. Read by
        ``'multiply'``, ``'maximum'`` and ``'minimum'``, which require them; for
        ``'add'``, ``'subtract'`` and ``'average'`` only their count is used,
        and None is allowed when ``needed`` or ``out`` gives the count
        (``'subtract'``: always 2).
    mode : str
        As for :func:`merge_forward`.
    needed : list or tuple of n bools, optional
        Which gradients to compute (default: all).
    out : list or tuple of n entries, optional
        Each None or a writeable C-contiguous array of ``dy``'s shape and
        dtype for that gradient (ignored where ``needed`` is False). Must not
        share memory with ``dy``, the inputs or each other.

    Returns
    -------
    grads : list of n numpy.ndarray or None
        ``grads[i]``, shape and dtype of ``dy``, is the gradient w.r.t.
        ``inputs[i]``, or None where ``needed[i]`` is False.
    """
    cdef int code = _mode(mode)
    dyc = _array(dy, "dy", None)
    cdef bint reads = code == MULTIPLY or code == MAXIMUM or code == MINIMUM
    cdef Py_ssize_t k
    if reads:
        if inputs is None:
            raise ValueError(f"mode {mode!r} needs the forward inputs, got inputs=None")
        arrays = _same_shape_inputs(inputs, code, dyc, "dy")
        k = len(arrays)
    else:
        k = _backward_count(inputs, code, needed, out)
        arrays = []
    wanted = _needed(needed, k)
    shapes = tuple([dyc.shape if flag else None for flag in wanted])
    grads = list(_gradient_buffers(out, k, shapes, dyc.dtype))
    _check_distinct(grads, _names("out", k), [dyc] + arrays, ["dy"] + _names("inputs", len(arrays)))
    cdef cx_int n = dyc.size
    cdef int kk = k
    cdef int n_threads = threads.effective_num_threads()
    cdef bint single = dyc.dtype == np.float32
    cdef void *pdy = cnp.PyArray_DATA(<cnp.ndarray>dyc)
    if n == 0:
        return grads
    cdef void **pin = _pointers(arrays) if reads else NULL
    cdef void **pdx = NULL
    try:
        pdx = _pointers(grads)
        with nogil:
            if single:
                cx_merge_backward_f32(<const float *>pdy, <const float **>pin, kk, <float **>pdx, n, code, n_threads)
            else:
                cx_merge_backward_f64(<const double *>pdy, <const double **>pin, kk, <double **>pdx, n, code,
                                      n_threads)
    finally:
        PyMem_Free(pin)
        PyMem_Free(pdx)
    return grads


cdef Py_ssize_t _axis(object axis, Py_ssize_t rank) except -1:
    """`axis` (an int in [-rank, rank)) as an index in [0, rank)."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an int, got {type(axis).__name__}")
    if not -rank <= axis < rank:
        raise ValueError(f"axis must be in [-{rank}, {rank}) for arrays of rank {rank}, got {axis}")
    return axis + rank if axis < 0 else axis


cdef _concat_copy(list parts, object whole, Py_ssize_t axis, bint split):
    """Copy between `parts` and `whole` (checked, C-contiguous, non-overlapping) along `axis`."""
    shape = whole.shape
    cdef Py_ssize_t i, k = len(parts)
    cdef cx_int outer = 1, inner = 1
    for i in range(axis):
        outer *= shape[i]
    for i in range(axis + 1, len(shape)):
        inner *= shape[i]
    if whole.size == 0:
        return
    cdef cx_int *lengths = <cx_int *>PyMem_Malloc(k * sizeof(cx_int))
    if lengths == NULL:
        raise MemoryError()
    cdef void **pparts = NULL
    cdef char *pwhole = <char *>cnp.PyArray_DATA(<cnp.ndarray>whole)
    cdef cx_int elem_size = whole.itemsize
    cdef int kk = k
    cdef int n_threads = threads.effective_num_threads()
    try:
        for i in range(k):
            lengths[i] = parts[i].shape[axis] * inner
        pparts = _pointers(parts)
        with nogil:
            cx_concat(<char **>pparts, lengths, kk, pwhole, outer, elem_size, split, n_threads)
    finally:
        PyMem_Free(lengths)
        PyMem_Free(pparts)


def concat_forward(inputs, axis, out=None):
    """Concatenate arrays along one axis (Keras Concatenate).

    Parameters
    ----------
    inputs : list or tuple of numpy.ndarray
        At least one array, float32 or float64, all of one dtype and rank
        (>= 1), with equal sizes on every axis but ``axis``. Non-contiguous
        arrays are copied.
    axis : int
        The axis to join along, in ``[-rank, rank)``.
    out : numpy.ndarray, optional
        Writeable C-contiguous array of the result's shape and dtype; must not
        share memory with any input.

    Returns
    -------
    out : numpy.ndarray
        The inputs' shape with ``shape[axis]`` the sum of theirs, their dtype.
    """
    cdef Py_ssize_t i, ax, k = _count(inputs, "inputs")
    first = _array(inputs[0], "inputs[0]", None)
    if first.ndim == 0:
        raise ValueError("concat_forward needs arrays of rank >= 1, got a 0-d inputs[0]")
    ax = _axis(axis, first.ndim)
    arrays = [first]
    total = first.shape[ax]
    for i in range(1, k):
        arr = _array(inputs[i], f"inputs[{i}]", first.dtype)
        if arr.ndim != first.ndim or arr.shape[:ax] != first.shape[:ax] or arr.shape[ax + 1:] != first.shape[ax + 1:]:
            raise ValueError(f"inputs[{i}] has shape {arr.shape} but inputs[0] has shape {first.shape}: "
                             f"concatenation along axis {axis} needs one rank and equal sizes on the other axes")
        total += arr.shape[ax]
        arrays.append(arr)
    shape = first.shape[:ax] + (total,) + first.shape[ax + 1:]
    y = _checks.output_array(out, "out", shape, first.dtype)
    _check_distinct([y], ["out"], arrays, _names("inputs", k))
    _concat_copy(arrays, y, ax, False)
    return y


def concat_backward(dy, sizes, axis, out=None):
    """Split the gradient of a concatenation into the gradients of its inputs.

    Parameters
    ----------
    dy : numpy.ndarray, float32 or float64, rank >= 1
        Gradient w.r.t. the concatenation. Copied if non-contiguous.
    sizes : list or tuple of int
        The inputs' sizes along ``axis`` (each >= 0, at least one), adding up
        to ``dy.shape[axis]``.
    axis : int
        The concatenation axis, in ``[-rank, rank)``.
    out : list or tuple of len(sizes) entries, optional
        Each None or a writeable C-contiguous array of that gradient's shape
        and ``dy``'s dtype; must not share memory with ``dy`` or each other.

    Returns
    -------
    grads : list of numpy.ndarray
        ``grads[i]`` has ``dy``'s shape with ``shape[axis] = sizes[i]``, and
        ``dy``'s dtype: a C-contiguous copy of its slice of ``dy``.
    """
    dyc = _array(dy, "dy", None)
    if dyc.ndim == 0:
        raise ValueError("concat_backward needs dy of rank >= 1, got a 0-d array")
    cdef Py_ssize_t ax = _axis(axis, dyc.ndim)
    if not isinstance(sizes, (list, tuple)) or len(sizes) < 1:
        raise TypeError(f"sizes must be a non-empty list or tuple of ints, got {sizes!r}")
    cdef Py_ssize_t k = len(sizes)
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
            raise TypeError(f"sizes must hold ints, got {size!r}")
        if size < 0:
            raise ValueError(f"sizes must be >= 0, got {list(sizes)}")
    if sum(sizes) != dyc.shape[ax]:
        raise ValueError(f"sizes {list(sizes)} add up to {sum(sizes)}, but dy of shape {dyc.shape} "
                         f"has {dyc.shape[ax]} along axis {axis}")
    shapes = tuple([dyc.shape[:ax] + (int(size),) + dyc.shape[ax + 1:] for size in sizes])
    grads = list(_gradient_buffers(out, k, shapes, dyc.dtype))
    _check_distinct(grads, _names("out", k), [dyc], ["dy"])
    _concat_copy(grads, dyc, ax, True)
    return grads
