# The contract between the C kernels and their Cython wrappers, from csrc/convx_common.h: the size type,
# the dtype and status codes, the activation codes; and the few inline helpers every wrapper uses.

cimport numpy as cnp
from libc.stdint cimport int64_t

cdef extern from "convx_common.h" nogil:
    ctypedef int64_t cx_int

    ctypedef enum cx_dtype:
        CX_F32
        CX_F64

    ctypedef enum cx_status:
        CX_OK
        CX_ERR_NOMEM
        CX_ERR_UNSUPPORTED
        CX_ERR_BAD_INDEX
        CX_ERR_OVERFLOW

    enum convx_activation:
        CX_ACT_LINEAR
        CX_ACT_RELU
        CX_ACT_SIGMOID
        CX_ACT_TANH
        CX_ACT_SOFTMAX
        CX_ACT_SOFTPLUS
        CX_ACT_SOFTSIGN
        CX_ACT_ELU
        CX_ACT_SELU
        CX_ACT_GELU
        CX_ACT_GELU_TANH
        CX_ACT_SILU
        CX_ACT_HARD_SIGMOID
        CX_ACT_HARD_SILU
        CX_ACT_LEAKY_RELU
        CX_ACT_RELU6
        CX_ACT_MISH
        CX_ACT_EXPONENTIAL
        CX_ACT_LOG_SOFTMAX
        CX_ACT_RELU_GENERAL


cdef inline cx_dtype dtype_of(cnp.ndarray a) noexcept:
    """CX_F32 or CX_F64: which instance of a kernel takes `a` (a float32 or float64 array, already checked)."""
    return CX_F32 if cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT32 else CX_F64


cdef inline void *data_of(cnp.ndarray a) noexcept:
    """The data pointer of `a`, or NULL for None (an optional argument the kernel skips)."""
    return cnp.PyArray_DATA(a) if a is not None else NULL


cdef inline int raise_for_status(int status, str what) except -1:
    """Raise the exception a kernel's cx_status stands for (nothing for CX_OK); `what` names the call."""
    if status == CX_OK:
        return 0
    if status == CX_ERR_NOMEM:
        raise MemoryError(f"{what}: could not allocate scratch memory")
    if status == CX_ERR_UNSUPPORTED:
        raise ValueError(f"{what}: arguments outside what the kernel handles")
    if status == CX_ERR_BAD_INDEX:
        raise ValueError(f"{what}: an index read from the inputs is out of range")
    if status == CX_ERR_OVERFLOW:
        raise ValueError(f"{what}: a size is too large (it overflows a 64-bit integer)")
    raise SystemError(f"{what}: unknown kernel status {status}")
