"""Dense (fully connected) layer kernels: x (N, in) @ kernel (in, out) (see csrc/dense.h)."""

import numpy as np

cimport numpy as cnp

from convx._kernels._checks cimport check_shape, float_array, output_array, output_arrays
from convx._kernels.activations import activation_code
from convx._kernels.threads cimport effective_num_threads

cnp.import_array()

ctypedef long long cx_int

cdef extern from "dense.h" nogil:
    void cx_dense_forward_f32(cx_int n, cx_int nin, cx_int nout, const float *x, const float *kernel,
                              const float *bias, int act, float *y, int n_threads)
    void cx_dense_forward_f64(cx_int n, cx_int nin, cx_int nout, const double *x, const double *kernel,
                              const double *bias, int act, double *y, int n_threads)
    void cx_dense_backward_f32(cx_int n, cx_int nin, cx_int nout, const float *x, const float *kernel,
                               const float *dz, float *dx, float *dkernel, float *dbias, int n_threads)
    void cx_dense_backward_f64(cx_int n, cx_int nin, cx_int nout, const double *x, const double *kernel,
                               const double *dz, double *dx, double *dkernel, double *dbias, int n_threads)


def _inputs(x, kernel):
    x = float_array(x, "x", 2)
    kernel = float_array(kernel, "kernel", 2, x.dtype)
    if kernel.shape[0] != x.shape[1]:
        raise ValueError(
            f"kernel must have {x.shape[1]} rows (the features of x), got kernel shape {kernel.shape}"
        )
    return x, kernel


cdef void *_data(cnp.ndarray a):
    return cnp.PyArray_DATA(a) if a is not None else NULL


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
    cdef cnp.ndarray y = output_array(out, "out", (n, nout), x.dtype)
    cdef void *px = _data(x)
    cdef void *pk = _data(kernel)
    cdef void *pb = _data(bias)
    cdef void *py = _data(y)
    cdef int nt = effective_num_threads()
    if x.dtype == np.float32:
        with nogil:
            cx_dense_forward_f32(n, nin, nout, <float *>px, <float *>pk, <float *>pb, act, <float *>py, nt)
    else:
        with nogil:
            cx_dense_forward_f64(n, nin, nout, <double *>px, <double *>pk, <double *>pb, act, <double *>py, nt)
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
    dx_, dkernel_, dbias_ = output_arrays(out, ("dx", "dkernel", "dbias"), ((n, nin) if need_dx else None, (nin, nout), (nout,)), (x.dtype,) * 3)
    cdef cnp.ndarray dkernel = dkernel_
    cdef cnp.ndarray dbias = dbias_
    cdef cnp.ndarray dx = dx_
    cdef void *px = _data(x)
    cdef void *pk = _data(kernel)
    cdef void *pdz = _data(dz)
    cdef void *pdx = _data(dx)
    cdef void *pdk = _data(dkernel)
    cdef void *pdb = _data(dbias)
    cdef int nt = effective_num_threads()
    if x.dtype == np.float32:
        with nogil:
            cx_dense_backward_f32(n, nin, nout, <float *>px, <float *>pk, <float *>pdz, <float *>pdx,
                                  <float *>pdk, <float *>pdb, nt)
    else:
        with nogil:
            cx_dense_backward_f64(n, nin, nout, <double *>px, <double *>pk, <double *>pdz, <double *>pdx,
                                  <double *>pdk, <double *>pdb, nt)
    return dx, dkernel, dbias
