"""int8 kernels: u8 activations x s8 per-channel weights, int32 sums (see csrc/quant.h).

``conv2d`` / ``dense`` take the quantized input, packed weights and the
epilogue's per-channel constants; their output is float32 (dequantized) or
uint8 (requantized into the next layer's scale). The arithmetic is exact
integer arithmetic plus one float32 multiply and one documented rounding,
so every variant (generic C, AVX2, AVX-VNNI, AVX-512 VNNI) and every thread
count give the same bits.
"""

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int8_t, int32_t, uint8_t

from convx._kernels._checks cimport check_shape, output_array, output_length, positive_pair
from convx._kernels.threads cimport effective_num_threads

cnp.import_array()

ctypedef long long cx_int

cdef extern from "quant.h" nogil:
    int CX_Q8_ISA_COUNT
    ctypedef struct cx_q8_epilogue:
        const int32_t *offset
        const float *scale
        int zp_out
        int relu
        int out_u8
    int cx_q8_isa_supported(int isa)
    int cx_q8_isa_best()
    const char *cx_q8_isa_name(int isa)
    cx_int cx_q8_packed_size(cx_int k, cx_int n)
    void cx_q8_pack(cx_int k, cx_int n, const int8_t *w, int8_t *packed)
    void cx_q8_quantize(cx_int count, const float *x, float inv_scale, int zp, int qmax, uint8_t *q, int n_threads)
    int cx_q8_conv2d(cx_int n, cx_int h, cx_int w, cx_int cin, const uint8_t *x, int zp_x,
                     cx_int kh, cx_int kw, cx_int cout, const int8_t *packed,
                     cx_int sh, cx_int sw, cx_int dh, cx_int dw, cx_int pad_t, cx_int pad_l,
                     cx_int oh, cx_int ow, cx_int ph, cx_int pw,
                     const cx_q8_epilogue *epi, void *y, int isa, int n_threads)


def isa():
    """Name of the int8 variant in use: 'avx512_vnni', 'avx_vnni', 'avx2' or 'generic'
    (``CONVX_ISA=generic`` or ``avx2`` caps it, as for the float kernels)."""
    return cx_q8_isa_name(cx_q8_isa_best()).decode()


def supported_isas():
    """Names of the int8 variants this CPU runs, slowest first."""
    return [cx_q8_isa_name(i).decode() for i in range(CX_Q8_ISA_COUNT) if cx_q8_isa_supported(i)]


cdef int _isa_code(object name) except -2:
    if name is None:
        return cx_q8_isa_best()
    for i in range(CX_Q8_ISA_COUNT):
        if cx_q8_isa_name(i).decode() == name:
            if not cx_q8_isa_supported(i):
                raise ValueError(f"isa {name!r} is not supported by this CPU; supported: {supported_isas()}")
            return i
    raise ValueError(f"isa must be one of {[cx_q8_isa_name(i).decode() for i in range(CX_Q8_ISA_COUNT)]} "
                     f"or None, got {name!r}")


def _typed(value, str name, dtype, ndim):
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(value).__name__}")
    if value.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype).name}, got {value.dtype.name}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got {value.ndim}-D array of shape {value.shape}")
    return np.ascontiguousarray(value)


def _zero_point(value, str name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= 255:
        raise ValueError(f"{name} must be an int in [0, 255], got {value!r}")
    return int(value)


def packed_size(k, n):
    """Bytes of the packed form of a (k, n) int8 matrix."""
    return int(cx_q8_packed_size(k, n))


def pack_weights(kernel):
    """Packed form of an int8 weight matrix ``kernel`` (K, N) (HWIO kernels reshaped to
    (KH*KW*C_in, C_out)): 1-D int8 of ``packed_size(K, N)`` bytes."""
    kernel = _typed(kernel, "kernel", np.int8, 2)
    cdef cx_int k = kernel.shape[0], n = kernel.shape[1]
    if k < 1 or n < 1:
        raise ValueError(f"kernel must be non-empty, got shape {kernel.shape}")
    cdef cnp.ndarray packed = np.empty(cx_q8_packed_size(k, n), dtype=np.int8)
    cdef cnp.ndarray w = kernel
    with nogil:
        cx_q8_pack(k, n, <const int8_t *>cnp.PyArray_DATA(w), <int8_t *>cnp.PyArray_DATA(packed))
    return packed


def quantize(x, scale, zero_point, qmax=255, out=None):
    """``clip(rint(x * float32(1 / scale)) + zero_point, 0, qmax)`` as uint8 (half to even; NaN -> 0).

    Parameters
    ----------
    x : ndarray, float32, any shape
    scale : float > 0
    zero_point : int in [0, 255]
    qmax : int in [1, 255], default 255
    out : ndarray, uint8, shape of `x`, optional
    """
    x = _typed(x, "x", np.float32, None)
    scale = float(scale)
    if not (scale > 0 and np.isfinite(scale)):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    cdef int zp = _zero_point(zero_point, "zero_point")
    cdef int top = _zero_point(qmax, "qmax")
    cdef cnp.ndarray q = output_array(out, "out", x.shape, np.uint8)
    cdef cnp.ndarray xa = x
    cdef float inv = np.float32(1.0) / np.float32(scale)
    cdef cx_int count = x.size
    cdef int nt = effective_num_threads()
    with nogil:
        cx_q8_quantize(count, <const float *>cnp.PyArray_DATA(xa), inv, zp, top, <uint8_t *>cnp.PyArray_DATA(q), nt)
    return q


def _epilogue_arrays(cout, offset, scale, out_dtype):
    offset = _typed(offset, "offset", np.int32, 1)
    check_shape(offset, "offset", (cout,))
    scale = _typed(scale, "scale", np.float32, 1)
    check_shape(scale, "scale", (cout,))
    if out_dtype not in ("float32", "uint8"):
        raise ValueError(f"out_dtype must be 'float32' or 'uint8', got {out_dtype!r}")
    return offset, scale


cdef const void *_ptr(object a):
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


def conv2d(x, x_zero_point, packed, kernel_shape, offset, scale, out_dtype="float32", out_zero_point=0, relu=False,
           strides=(1, 1), padding="valid", dilation=(1, 1), pool_size=(1, 1), isa=None, out=None):
    """int8 convolution, optionally followed by a valid max pooling with windows = strides = `pool_size`.

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C_in), uint8
        Quantized input; real value ``s_x * (x - x_zero_point)``.
    x_zero_point : int in [0, 255]
        Fills the padding ('same').
    packed : ndarray, int8
        ``pack_weights(kernel.reshape(KH * KW * C_in, C_out))``.
    kernel_shape : tuple (KH, KW, C_in, C_out)
    offset : ndarray, shape (C_out,), int32
        Added to each int32 sum: ``bias_q - x_zero_point * kernel.sum((0, 1, 2))``.
    scale : ndarray, shape (C_out,), float32
        float32 output: ``float32(sum + offset) * scale`` (``scale = s_x * s_w``). uint8 output:
        ``clip(out_zero_point + rint(float32(sum + offset) * scale), 0, 255)`` (``scale = s_x * s_w / s_out``,
        the product clipped to +-2**22 and rounded half to even).
    out_dtype : 'float32' (default) or 'uint8'
    out_zero_point : int in [0, 255]
        Of the uint8 output.
    relu : bool
        Negative ``sum + offset`` become 0 (the output's zero point).
    strides, padding, dilation : as Conv2D ('valid' or 'same')
    pool_size : (PH, PW), default (1, 1) (no pooling)
    isa : str, optional
        Force a variant (tests); default the fastest this CPU runs.
    out : ndarray, optional

    Returns
    -------
    y : ndarray, shape (N, OH // PH, OW // PW, C_out), float32 or uint8
    """
    x = _typed(x, "x", np.uint8, 4)
    cdef int zx = _zero_point(x_zero_point, "x_zero_point")
    cdef int zo = _zero_point(out_zero_point, "out_zero_point")
    if len(kernel_shape) != 4 or any(int(s) < 1 for s in kernel_shape):
        raise ValueError(f"kernel_shape must be 4 positive ints (KH, KW, C_in, C_out), got {kernel_shape!r}")
    cdef cx_int kh = kernel_shape[0], kw = kernel_shape[1], cin = kernel_shape[2], cout = kernel_shape[3]
    if x.shape[3] != cin:
        raise ValueError(f"x has {x.shape[3]} channels, kernel_shape {tuple(kernel_shape)} expects {cin}")
    packed = _typed(packed, "packed", np.int8, 1)
    check_shape(packed, "packed", (cx_q8_packed_size(kh * kw * cin, cout),))
    offset, scale = _epilogue_arrays(cout, offset, scale, out_dtype)
    sh, sw = positive_pair(strides, "strides")
    dh, dw = positive_pair(dilation, "dilation")
    ph, pw = positive_pair(pool_size, "pool_size")
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    oh, pad_t = output_length(x.shape[1], kh, sh, dh, padding == "same")
    ow, pad_l = output_length(x.shape[2], kw, sw, dw, padding == "same")
    if oh // ph < 1 or ow // pw < 1:
        raise ValueError(f"the output ({oh}x{ow}, pooled by {ph}x{pw}) is empty for input of spatial size "
                         f"{x.shape[1]}x{x.shape[2]} and kernel {kh}x{kw}")
    cdef int code = _isa_code(isa)
    cdef cnp.ndarray y = output_array(out, "out", (x.shape[0], oh // ph, ow // pw, cout),
                                      np.dtype(out_dtype))
    cdef cx_q8_epilogue epi
    epi.offset = <const int32_t *>_ptr(offset)
    epi.scale = <const float *>_ptr(scale)
    epi.zp_out = zo
    epi.relu = bool(relu)
    epi.out_u8 = out_dtype == "uint8"
    cdef cx_int n = x.shape[0], h = x.shape[1], w = x.shape[2]
    cdef cx_int csh = sh, csw = sw, cdh = dh, cdw = dw, cpt = pad_t, cpl = pad_l, coh = oh, cow = ow
    cdef cx_int cph = ph, cpw = pw
    cdef const uint8_t *px = <const uint8_t *>_ptr(x)
    cdef const int8_t *pk = <const int8_t *>_ptr(packed)
    cdef void *py = cnp.PyArray_DATA(y)
    cdef int nt = effective_num_threads(), status
    with nogil:
        status = cx_q8_conv2d(n, h, w, cin, px, zx, kh, kw, cout, pk, csh, csw, cdh, cdw, cpt, cpl, coh, cow,
                              cph, cpw, &epi, py, code, nt)
    if status:
        raise MemoryError("int8 convolution: could not allocate a thread's scratch memory")
    return y


def dense(x, x_zero_point, packed, units, offset, scale, out_dtype="float32", out_zero_point=0, relu=False, isa=None,
          out=None):
    """int8 dense layer: ``x`` (N, K) uint8 times the packed (K, units) kernel; the epilogue as in
    :func:`conv2d`. Returns (N, units), float32 or uint8."""
    x = _typed(x, "x", np.uint8, 2)
    if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
        raise ValueError(f"units must be a positive int, got {units!r}")
    y4 = None if out is None else out.reshape(out.shape[0], 1, 1, -1) if out.ndim == 2 else out
    y = conv2d(x.reshape(x.shape[0], 1, 1, x.shape[1]), x_zero_point, packed, (1, 1, x.shape[1], int(units)),
               offset, scale, out_dtype, out_zero_point, relu, isa=isa, out=y4)
    return y.reshape(x.shape[0], int(units))
