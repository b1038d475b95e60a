"""General matrix multiply on convx's packed GEMM (see csrc/gemm.h)."""

import numpy as np

cimport numpy as cnp

from convx._kernels._checks cimport check_distinct, check_shape, float_array
from convx._kernels._common cimport cx_dtype, cx_int, data_of, dtype_of, raise_for_status
from convx._kernels.threads cimport effective_num_threads

cnp.import_array()

cdef extern from "cpu_features.h":
    int CX_ISA_COUNT
    int cx_isa_supported(int isa) nogil
    int cx_isa_selected() nogil
    const char *cx_isa_name(int isa) nogil

# The dtype-generic name of csrc/gemm.h: arrays' data as void pointers, the dtype first.
cdef extern from "gemm.h" nogil:
    int cx_gemm(cx_dtype dtype, int trans_a, int trans_b, cx_int m, cx_int n, cx_int k, const void *a, cx_int lda,
                const void *b, cx_int ldb, double beta, void *c, cx_int ldc, int n_threads)


def simd_variant():
    """Name of the GEMM micro-kernel variant in use ('avx2', 'neon' or 'generic')."""
    return cx_isa_name(cx_isa_selected()).decode()


def supported_variants():
    """Names of the variants this CPU can run, slowest first."""
    return [cx_isa_name(i).decode() for i in range(CX_ISA_COUNT) if cx_isa_supported(i)]


def gemm(a, b, c=None, trans_a=False, trans_b=False, beta=0.0):
    """Matrix product ``c = op(a) @ op(b) + beta * c``.

    Parameters
    ----------
    a : ndarray, shape (m, k), or (k, m) when `trans_a`
    b : ndarray, shape (k, n), or (n, k) when `trans_b`; same dtype as `a`
    c : ndarray, shape (m, n), optional
        Output, updated in place (must be C-contiguous); allocated when None.
    trans_a, trans_b : bool, default False
    beta : float, default 0.0
        Scale of the previous content of `c` (ignored, and `c` not read, when 0).

    Returns
    -------
    c : ndarray, shape (m, n), dtype of `a`
    """
    a = float_array(a, "a", 2)
    b = float_array(b, "b", 2, a.dtype)
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    kb, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if kb != k:
        raise ValueError(f"b must have {k} {'columns' if trans_b else 'rows'} to match a, got shape {b.shape}")
    if c is None:
        if beta != 0:
            raise ValueError("c must be given when beta != 0")
        c = np.empty((m, n), dtype=a.dtype)
    else:
        if not isinstance(c, np.ndarray) or c.dtype != a.dtype:
            raise TypeError(f"c must be a {a.dtype.name} ndarray")
        check_shape(c, "c", (m, n))
        if not c.flags.c_contiguous or not c.flags.writeable:
            raise ValueError("c must be a writeable C-contiguous array (it is written in place)")
        check_distinct((c,), ("c",), (a, b), ("a", "b"))
    _gemm(a, b, c, bool(trans_a), bool(trans_b), float(beta))
    return c


cdef _gemm(cnp.ndarray a, cnp.ndarray b, cnp.ndarray c, bint trans_a, bint trans_b, double beta):
    cdef int nt = effective_num_threads(), status
    cdef cx_int m = c.shape[0], n = c.shape[1]
    cdef cx_int k = a.shape[0] if trans_a else a.shape[1]
    cdef cx_int lda = a.shape[1], ldb = b.shape[1]
    cdef void *pa = data_of(a)
    cdef void *pb = data_of(b)
    cdef void *pc = data_of(c)
    cdef cx_dtype dt = dtype_of(a)
    with nogil:
        status = cx_gemm(dt, trans_a, trans_b, m, n, k, pa, lda, pb, ldb, beta, pc, n, nt)
    raise_for_status(status, "gemm")
