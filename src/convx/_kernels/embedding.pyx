"""Embedding kernels (Keras Embedding): index checks, row gather, row scatter-add.

A table is a (vocab, dim) float32 or float64 array. Indices are first checked
and converted to int64 by :func:`embedding_indices`, which raises a
ValueError naming the first index outside ``[0, vocab)``: the gather and the
scatter then never touch memory outside the table. The scatter-add sums each
row's contributions in position order on one thread, so results are
bit-identical for any thread count. Results go into new arrays or into
caller-owned ``out`` buffers (writeable, C-contiguous, of the result's shape
and dtype).
"""

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t

from convx._kernels cimport threads
from convx._kernels cimport _checks

cnp.import_array()

cdef extern from "convx_common.h":
    ctypedef int64_t cx_int

cdef extern from "embedding.h" nogil:
    cx_int cx_embedding_indices_f32(const float *x, cx_int n, cx_int vocab, int64_t *idx)
    cx_int cx_embedding_indices_f64(const double *x, cx_int n, cx_int vocab, int64_t *idx)
    cx_int cx_embedding_indices_i32(const int32_t *x, cx_int n, cx_int vocab, int64_t *idx)
    cx_int cx_embedding_indices_i64(const int64_t *x, cx_int n, cx_int vocab, int64_t *idx)
    void cx_embedding_forward_f32(const float *table, cx_int dim, const int64_t *idx, cx_int n, float *out,
                                  int n_threads)
    void cx_embedding_forward_f64(const double *table, cx_int dim, const int64_t *idx, cx_int n, double *out,
                                  int n_threads)
    int cx_embedding_backward_f32(const float *dy, const int64_t *idx, cx_int n, cx_int dim, cx_int vocab,
                                  int dense, float *out, int64_t *rows, cx_int *n_rows, int n_threads)
    int cx_embedding_backward_f64(const double *dy, const int64_t *idx, cx_int n, cx_int dim, cx_int vocab,
                                  int dense, double *out, int64_t *rows, cx_int *n_rows, int n_threads)

_SUPPORTED = ("float32", "float64", "int32", "int64")


def embedding_indices(x, Py_ssize_t vocab, out=None):
    """Check and convert indices for a table of ``vocab`` rows.

    Parameters
    ----------
    x : numpy.ndarray
        Indices of any shape: an integer dtype, or float32/float64 holding whole numbers (a model's
        float32 input).
    vocab : int
        Number of rows of the table (``input_dim``).
    out : numpy.ndarray, optional
        int64 array of ``x.size`` elements for the result.

    Returns
    -------
    numpy.ndarray
        int64, shape ``(x.size,)``.

    Raises
    ------
    ValueError
        Naming the first index that is not a whole number in ``[0, vocab)``.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"indices must be a numpy.ndarray, got {type(x).__name__}")
    if vocab < 1:
        raise ValueError(f"vocab must be >= 1, got {vocab}")
    if x.dtype.kind in "iub" and x.dtype.name not in _SUPPORTED:
        x = x.astype(np.int64)
    elif x.dtype.name not in _SUPPORTED:
        raise TypeError(f"indices must have an integer or float dtype, got {x.dtype.name}")
    x = np.ascontiguousarray(x)
    cdef cnp.ndarray flat = x.reshape(-1)
    cdef cnp.ndarray idx = _checks.output_array(out, "out", (flat.shape[0],), np.int64)
    cdef cx_int n = flat.shape[0], bad
    cdef void *src = cnp.PyArray_DATA(flat)
    cdef int64_t *dst = <int64_t *>cnp.PyArray_DATA(idx)
    cdef int kind = _SUPPORTED.index(x.dtype.name)
    with nogil:
        if kind == 0:
            bad = cx_embedding_indices_f32(<const float *>src, n, vocab, dst)
        elif kind == 1:
            bad = cx_embedding_indices_f64(<const double *>src, n, vocab, dst)
        elif kind == 2:
            bad = cx_embedding_indices_i32(<const int32_t *>src, n, vocab, dst)
        else:
            bad = cx_embedding_indices_i64(<const int64_t *>src, n, vocab, dst)
    if bad >= 0:
        where = tuple(int(i) for i in np.unravel_index(bad, x.shape))
        raise ValueError(f"Embedding index {flat[bad].item()!r} at position {where} is out of range: indices must be "
                         f"whole numbers in [0, {vocab}) (input_dim={vocab})")
    return idx


def embedding_forward(table, indices, out=None):
    """``out[i] = table[indices[i]]``.

    Parameters
    ----------
    table : numpy.ndarray
        (vocab, dim), float32 or float64.
    indices : numpy.ndarray
        int64 (n,), from :func:`embedding_indices` (each checked in range again here).
    out : numpy.ndarray, optional
        (n, dim), the table's dtype.

    Returns
    -------
    numpy.ndarray
        (n, dim).
    """
    table = _checks.float_array(table, "table", 2)
    idx = _indices(indices, table.shape[0])
    cdef cx_int n = idx.shape[0], dim = table.shape[1]
    cdef cnp.ndarray y = _checks.output_array(out, "out", (n, dim), table.dtype)
    cdef int nt = threads.effective_num_threads()
    cdef void *t = cnp.PyArray_DATA(table)
    cdef void *o = cnp.PyArray_DATA(y)
    cdef const int64_t *ix = <const int64_t *>cnp.PyArray_DATA(idx)
    cdef bint f32 = table.dtype == np.float32
    with nogil:
        if f32:
            cx_embedding_forward_f32(<const float *>t, dim, ix, n, <float *>o, nt)
        else:
            cx_embedding_forward_f64(<const double *>t, dim, ix, n, <double *>o, nt)
    return y


def embedding_backward(dy, indices, Py_ssize_t vocab, bint dense=True, out=None, rows_out=None):
    """Scatter-add of ``dy`` rows into the table rows ``indices`` name.

    Parameters
    ----------
    dy : numpy.ndarray
        (n, dim), float32 or float64: the gradient w.r.t. the gathered rows.
    indices : numpy.ndarray
        int64 (n,).
    vocab : int
        Rows of the table.
    dense : bool, default True
        True: ``out`` is the (vocab, dim) table gradient (rows not seen are zero). False: ``out`` is
        (n, dim) and its first ``count`` rows are the gradients of ``rows[:count]`` (a sparse gradient).
    out : numpy.ndarray, optional
    rows_out : numpy.ndarray, optional
        int64 (n,).

    Returns
    -------
    (grad, rows, count)
        ``rows[:count]``: the distinct indices, ascending.
    """
    dy = _checks.float_array(dy, "dy", 2)
    idx = _indices(indices, vocab)
    cdef cx_int n = idx.shape[0], dim = dy.shape[1], count = 0
    if dy.shape[0] != n:
        raise ValueError(f"dy must have {n} rows (one per index), got shape {dy.shape}")
    cdef cnp.ndarray g = _checks.output_array(out, "out", (vocab if dense else n, dim), dy.dtype)
    cdef cnp.ndarray rows = _checks.output_array(rows_out, "rows_out", (n,), np.int64)
    cdef int nt = threads.effective_num_threads(), status
    cdef void *d = cnp.PyArray_DATA(dy)
    cdef void *o = cnp.PyArray_DATA(g)
    cdef const int64_t *ix = <const int64_t *>cnp.PyArray_DATA(idx)
    cdef int64_t *r = <int64_t *>cnp.PyArray_DATA(rows)
    cdef bint f32 = dy.dtype == np.float32
    with nogil:
        if f32:
            status = cx_embedding_backward_f32(<const float *>d, ix, n, dim, vocab, dense, <float *>o, r, &count, nt)
        else:
            status = cx_embedding_backward_f64(<const double *>d, ix, n, dim, vocab, dense, <double *>o, r, &count,
                                               nt)
    if status:
        raise MemoryError("embedding_backward: could not allocate its scratch memory")
    return g, rows, int(count)


cdef object _indices(object indices, Py_ssize_t vocab):
    """int64 (n,) indices, each in [0, vocab): a cheap re-check, so that no call can reach outside the table."""
    idx = _checks.int_array(indices, "indices", 1)
    if idx.shape[0] and (idx.min() < 0 or idx.max() >= vocab):
        raise ValueError(f"indices must lie in [0, {vocab}), got values in [{idx.min()}, {idx.max()}]")
    return idx
