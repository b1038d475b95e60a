"""Dense (fully connected) layer kernels: x (N, in) @ kernel (in, out) (see csrc/dense.h)."""

import numpy as np

cimport numpy as cnp

from convx._kernels._checks cimport check_shape, float_array, output_array, output_arrays
from convx._kernels._common cimport cx_dtype, cx_int, data_of, dtype_of, raise_for_status
from convx._kernels.activations import activation_code
from convx._kernels.threads cimport effective_num_threads

cnp.import_array()

# The dtype-generic names of csrc/dense.h: arrays' data as void pointers, the dtype first.
cdef extern from "dense.h" nogil:
    int cx_dense_forward(cx_dtype dtype, cx_int n, cx_int nin, cx_int nout, const void *x, const void *kernel,
                         const void *bias, int act, void *y, int n_threads)
    int cx_dense_backward(cx_dtype dtype, cx_int n, cx_int nin, cx_int nout, const void *x, const void *kernel,
                          const void *dz, void *dx, void *dkernel, void *dbias, int n_threads)


def _inputs(x, kernel):
    x = float_array(x, "x", 2)
    kernel = float_array(kernel, "kernel", 2, x.dtype)
    if kernel.shape[0] != x.shape[1]:
        raise ValueError(
            f"kernel must have {x.shape[1]} rows (the features of x), got kernel shape {kernel.shape}"
        )
    return x, kernel


def dense_forward(x, kernel, bias=None, activation="linear", out=None):
    """Dense forward pass ``act(x @ kernel + bias)``.

    Parameters
    ----------
    x : ndarray, shape (N, in), float32 or float64
    kernel : ndarray, shape (in, out), dtype of `x`
    bias : ndarray, shape (out,), optional
    activation : str or None, default 'linear'
        Fused into the output ('softmax' is row-wise).
    out : ndarray, shape (N, out), optional
        Written in place and returned.

    Returns
    -------
    y : ndarray, shape (N, out)
    """
    x, kernel = _inputs(x, kernel)
    cdef int act = activation_code(activation)
    cdef cx_int n = x.shape[0], nin = x.shape[1], nout = kernel.shape[1]
    if bias is not None:
        bias = float_array(bias, "bias", 1, x.dtype)
        check_shape(bias, "bias", (nout,))
    cdef cnp.ndarray y = output_array(out, "out", (n, nout), x.dtype, (x, kernel, bias), ("x", "kernel", "bias"))
    cdef void *px = data_of(x)
    cdef void *pk = data_of(kernel)
    cdef void *pb = data_of(bias)
    cdef void *py = data_of(y)
    cdef cx_dtype dt = dtype_of(x)
    cdef int nt = effective_num_threads(), status
    with nogil:
        status = cx_dense_forward(dt, n, nin, nout, px, pk, pb, act, py, nt)
    raise_for_status(status, "dense_forward")
    return y


def dense_backward(x, kernel, dz, need_dx=True, out=None):
    """Gradients of a dense layer.

    Parameters
    ----------
    x : ndarray, shape (N, in)
    kernel : ndarray, shape (in, out)
    dz : ndarray, shape (N, out)
        Gradient w.r.t. the pre-activation output.
    need_dx : bool, default True
    out : tuple (dx, dkernel, dbias), optional
        Arrays written in place and returned (any entry may be None to allocate it).

    Returns
    -------
    dx : ndarray, shape (N, in), or None when `need_dx` is False
    dkernel : ndarray, shape (in, out)
    dbias : ndarray, shape (out,)
    """
    x, kernel = _inputs(x, kernel)
    cdef cx_int n = x.shape[0], nin = x.shape[1], nout = kernel.shape[1]
    dz = float_array(dz, "dz", 2, x.dtype)
    check_shape(dz, "dz", (n, nout))
    dx_, dkernel_, dbias_ = output_arrays(
        out, ("dx", "dkernel", "dbias"), ((n, nin) if need_dx else None, (nin, nout), (nout,)), (x.dtype,) * 3,
        (x, kernel, dz), ("x", "kernel", "dz")
    )
    cdef cnp.ndarray dkernel = dkernel_
    cdef cnp.ndarray dbias = dbias_
    cdef cnp.ndarray dx = dx_
    cdef void *px = data_of(x)
    cdef void *pk = data_of(kernel)
    cdef void *pdz = data_of(dz)
    cdef void *pdx = data_of(dx)
    cdef void *pdk = data_of(dkernel)
    cdef void *pdb = data_of(dbias)
    cdef cx_dtype dt = dtype_of(x)
    cdef int nt = effective_num_threads(), status
    with nogil:
        status = cx_dense_backward(dt, n, nin, nout, px, pk, pdz, pdx, pdk, pdb, nt)
    raise_for_status(status, "dense_backward")
    return dx, dkernel, dbias
