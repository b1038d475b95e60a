"""Loss functions: per-row losses and the gradient of their mean, in one pass.

Every function takes a 2-D ``(N, C)`` first argument (the caller reshapes
other ranks to rows) and returns ``(losses, grad)``: ``losses`` of shape
``(N,)`` and ``grad``, shaped like the first argument, the gradient of
``mean(losses)`` with respect to it (it includes the 1/N factor). Semantics
follow Keras 3: losses on probabilities clip them to ``[1e-7, 1 - 1e-7]``
(categorical ones first divide by the row sum); the from-logits forms are the
fused, numerically stable ones. An empty batch gives empty results.
"""

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int64_t

from convx._kernels cimport threads
from convx._kernels cimport _checks

cnp.import_array()

cdef extern from "losses.h" nogil:
    int64_t cx_first_label_outside(const int64_t *labels, int64_t n, int64_t c)
    void cx_softmax_xent_sparse_f32(const float *, const int64_t *, int64_t, int64_t, float *, float *, int)
    void cx_softmax_xent_sparse_f64(const double *, const int64_t *, int64_t, int64_t, double *, double *, int)
    void cx_xent_sparse_f32(const float *, const int64_t *, int64_t, int64_t, float *, float *, int)
    void cx_xent_sparse_f64(const double *, const int64_t *, int64_t, int64_t, double *, double *, int)
    void cx_softmax_xent_f32(const float *, const float *, int64_t, int64_t, float *, float *, int)
    void cx_softmax_xent_f64(const double *, const double *, int64_t, int64_t, double *, double *, int)
    void cx_xent_f32(const float *, const float *, int64_t, int64_t, float *, float *, int)
    void cx_xent_f64(const double *, const double *, int64_t, int64_t, double *, double *, int)
    void cx_sigmoid_bce_f32(const float *, const float *, int64_t, int64_t, float *, float *, int)
    void cx_sigmoid_bce_f64(const double *, const double *, int64_t, int64_t, double *, double *, int)
    void cx_bce_f32(const float *, const float *, int64_t, int64_t, float *, float *, int)
    void cx_bce_f64(const double *, const double *, int64_t, int64_t, double *, double *, int)
    void cx_mse_f32(const float *, const float *, int64_t, int64_t, float *, float *, int)
    void cx_mse_f64(const double *, const double *, int64_t, int64_t, double *, double *, int)

ctypedef void (*sparse_f32_t)(const float *, const int64_t *, int64_t, int64_t, float *, float *, int) noexcept nogil
ctypedef void (*sparse_f64_t)(const double *, const int64_t *, int64_t, int64_t, double *, double *, int) noexcept nogil
ctypedef void (*dense_f32_t)(const float *, const float *, int64_t, int64_t, float *, float *, int) noexcept nogil
ctypedef void (*dense_f64_t)(const double *, const double *, int64_t, int64_t, double *, double *, int) noexcept nogil


cdef object _first(object a, str name):
    """Validate the (N, C) float first argument; C must be >= 1."""
    a = _checks.float_array(a, name, 2)
    if a.shape[1] < 1:
        raise ValueError(f"{name} must have at least one column (class), got shape {a.shape}")
    return a


cdef object _labels(object labels, int64_t n, int64_t c):
    """Validate integer labels of shape (N,) or (N, 1), each in [0, C); return (N,) int64."""
    labels = _checks.int_array(labels, "labels")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels.reshape(-1)
    _checks.check_shape(labels, "labels", (n,))
    cdef int64_t bad = cx_first_label_outside(<const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>labels), n, c)
    if bad >= 0:
        lo, hi = int(labels.min()), int(labels.max())
        raise ValueError(f"labels must be in [0, C) = [0, {c}) for C = {c} classes, got {lo if lo < 0 else hi}")
    return labels


cdef object _targets(object targets, object a):
    """Validate float targets of the first argument's shape and dtype."""
    t = _checks.float_array(targets, "targets", None, a.dtype)
    _checks.check_shape(t, "targets", a.shape)
    return t


cdef tuple _run_sparse(cnp.ndarray a, cnp.ndarray labels, sparse_f32_t f32, sparse_f64_t f64):
    cdef int64_t n = a.shape[0], c = a.shape[1]
    cdef int n_threads = threads.effective_num_threads()
    cdef bint single = a.dtype == np.float32
    cdef cnp.ndarray loss = np.empty(n, dtype=a.dtype)
    cdef cnp.ndarray grad = np.empty_like(a)
    cdef void *pa = cnp.PyArray_DATA(a)
    cdef const int64_t *pl = <const int64_t *>cnp.PyArray_DATA(labels)
    cdef void *ploss = cnp.PyArray_DATA(loss)
    cdef void *pgrad = cnp.PyArray_DATA(grad)
    if n > 0:
        with nogil:
            if single:
                f32(<const float *>pa, pl, n, c, <float *>ploss, <float *>pgrad, n_threads)
            else:
                f64(<const double *>pa, pl, n, c, <double *>ploss, <double *>pgrad, n_threads)
    return loss, grad


cdef tuple _run_dense(cnp.ndarray a, cnp.ndarray t, dense_f32_t f32, dense_f64_t f64):
    cdef int64_t n = a.shape[0], c = a.shape[1]
    cdef int n_threads = threads.effective_num_threads()
    cdef bint single = a.dtype == np.float32
    cdef cnp.ndarray loss = np.empty(n, dtype=a.dtype)
    cdef cnp.ndarray grad = np.empty_like(a)
    cdef void *pa = cnp.PyArray_DATA(a)
    cdef void *pt = cnp.PyArray_DATA(t)
    cdef void *ploss = cnp.PyArray_DATA(loss)
    cdef void *pgrad = cnp.PyArray_DATA(grad)
    if n > 0:
        with nogil:
            if single:
                f32(<const float *>pa, <const float *>pt, n, c, <float *>ploss, <float *>pgrad, n_threads)
            else:
                f64(<const double *>pa, <const double *>pt, n, c, <double *>ploss, <double *>pgrad, n_threads)
    return loss, grad


def sparse_softmax_cross_entropy(logits, labels):
    """Fused softmax + sparse categorical cross-entropy (Keras ``from_logits=True``).

    ``loss = logsumexp(logits) - logits[label]``, computed with the row maximum
    subtracted so that logits of any magnitude stay finite.

    Parameters
    ----------
    logits : numpy.ndarray, (N, C), float32 or float64
    labels : numpy.ndarray, (N,) or (N, 1), any integer dtype, values in [0, C)

    Returns
    -------
    losses : numpy.ndarray, (N,), dtype of logits
    grad : numpy.ndarray, (N, C)
        ``(softmax(logits) - onehot(labels)) / N``.
    """
    a = _first(logits, "logits")
    return _run_sparse(a, _labels(labels, a.shape[0], a.shape[1]),
                       cx_softmax_xent_sparse_f32, cx_softmax_xent_sparse_f64)


def softmax_cross_entropy(logits, targets):
    """Fused softmax + categorical cross-entropy (Keras ``from_logits=True``).

    ``loss = -sum(targets * log_softmax(logits))`` per row.

    Parameters
    ----------
    logits : numpy.ndarray, (N, C), float32 or float64
    targets : numpy.ndarray, (N, C), dtype of logits
        Need not sum to 1 (the gradient accounts for the row sum).

    Returns
    -------
    losses : numpy.ndarray, (N,)
    grad : numpy.ndarray, (N, C)
        ``(softmax(logits) * sum(targets, 1) - targets) / N``.
    """
    a = _first(logits, "logits")
    return _run_dense(a, _targets(targets, a), cx_softmax_xent_f32, cx_softmax_xent_f64)


def sparse_categorical_crossentropy(probs, labels):
    """Sparse categorical cross-entropy on probabilities (Keras ``from_logits=False``).

    ``loss = -log(clip(probs[label] / sum(probs), 1e-7, 1 - 1e-7))``.

    Parameters
    ----------
    probs : numpy.ndarray, (N, C), float32 or float64
    labels : numpy.ndarray, (N,) or (N, 1), any integer dtype, values in [0, C)

    Returns
    -------
    losses : numpy.ndarray, (N,)
    grad : numpy.ndarray, (N, C)
        Gradient of the mean loss w.r.t. probs; zero in rows where the clip is active.
    """
    a = _first(probs, "probs")
    return _run_sparse(a, _labels(labels, a.shape[0], a.shape[1]), cx_xent_sparse_f32, cx_xent_sparse_f64)


def categorical_crossentropy(probs, targets):
    """Categorical cross-entropy on probabilities (Keras ``from_logits=False``).

    ``loss = -sum(targets * log(clip(probs / sum(probs), 1e-7, 1 - 1e-7)))`` per row.

    Parameters
    ----------
    probs : numpy.ndarray, (N, C), float32 or float64
    targets : numpy.ndarray, (N, C), dtype of probs

    Returns
    -------
    losses : numpy.ndarray, (N,)
    grad : numpy.ndarray, (N, C)
        Gradient of the mean loss w.r.t. probs (through the row normalisation;
        clipped entries contribute nothing).
    """
    a = _first(probs, "probs")
    return _run_dense(a, _targets(targets, a), cx_xent_f32, cx_xent_f64)


def sigmoid_binary_crossentropy(logits, targets):
    """Fused sigmoid + binary cross-entropy, averaged over the last axis.

    Element loss ``max(x, 0) - x * t + log1p(exp(-|x|))``, stable for any x
    (as ``torch.nn.functional.binary_cross_entropy_with_logits``).

    Parameters
    ----------
    logits : numpy.ndarray, (N, C), float32 or float64
    targets : numpy.ndarray, (N, C), dtype of logits

    Returns
    -------
    losses : numpy.ndarray, (N,)
    grad : numpy.ndarray, (N, C)
        ``(sigmoid(logits) - targets) / (N * C)``.
    """
    a = _first(logits, "logits")
    return _run_dense(a, _targets(targets, a), cx_sigmoid_bce_f32, cx_sigmoid_bce_f64)


def binary_crossentropy(probs, targets):
    """Binary cross-entropy on probabilities (Keras' clipped form), averaged over the last axis.

    Element loss ``-(t * log(p) + (1 - t) * log(1 - p))`` with
    ``p = clip(probs, 1e-7, 1 - 1e-7)``.

    Parameters
    ----------
    probs : numpy.ndarray, (N, C), float32 or float64
    targets : numpy.ndarray, (N, C), dtype of probs

    Returns
    -------
    losses : numpy.ndarray, (N,)
    grad : numpy.ndarray, (N, C)
        Gradient of the mean loss w.r.t. probs; zero where the clip is active.
    """
    a = _first(probs, "probs")
    return _run_dense(a, _targets(targets, a), cx_bce_f32, cx_bce_f64)


def mean_squared_error(pred, targets):
    """Mean squared error, averaged over the last axis.

    Parameters
    ----------
    pred : numpy.ndarray, (N, C), float32 or float64
    targets : numpy.ndarray, (N, C), dtype of pred

    Returns
    -------
    losses : numpy.ndarray, (N,)
        ``mean((pred - targets) ** 2, axis=-1)``.
    grad : numpy.ndarray, (N, C)
        ``2 * (pred - targets) / (N * C)``.
    """
    a = _first(pred, "pred")
    return _run_dense(a, _targets(targets, a), cx_mse_f32, cx_mse_f64)
