"""Exact integer NumPy references of the int8 kernels (csrc/quant.h's arithmetic, in int64)."""

import numpy as np


def conv_sums(x, kernel, strides=(1, 1), padding="valid", dilation=(1, 1), zero_point=0):
    """int64 sums (N, OH, OW, C_out) of uint8 x (N, H, W, C) and int8 HWIO kernel; padding filled with zero_point."""
    n, h, w, c = x.shape
    kh, kw, _, cout = kernel.shape
    sh, sw = strides
    dh, dw = dilation
    if padding == "same":
        oh, ow = -(-h // sh), -(-w // sw)
        pad_h = max((oh - 1) * sh + (kh - 1) * dh + 1 - h, 0)
        pad_w = max((ow - 1) * sw + (kw - 1) * dw + 1 - w, 0)
    else:
        oh, ow = (h - (kh - 1) * dh - 1) // sh + 1, (w - (kw - 1) * dw - 1) // sw + 1
        pad_h = pad_w = 0
    xp = np.full((n, h + pad_h, w + pad_w, c), zero_point, dtype=np.int64)
    xp[:, pad_h // 2:pad_h // 2 + h, pad_w // 2:pad_w // 2 + w] = x
    sums = np.zeros((n, oh, ow, cout), dtype=np.int64)
    k64 = kernel.astype(np.int64)
    for a in range(kh):
        for b in range(kw):
            patch = xp[:, a * dh:a * dh + (oh - 1) * sh + 1:sh, b * dw:b * dw + (ow - 1) * sw + 1:sw]
            sums += patch @ k64[a, b]
    return sums


def max_pool(v, pool):
    ph, pw = pool
    n, oh, ow, c = v.shape
    v = v[:, :oh // ph * ph, :ow // pw * pw]
    return v.reshape(n, oh // ph, ph, ow // pw, pw, c).max(axis=(2, 4))


def epilogue(sums, offset, scale, out_dtype="float32", out_zero_point=0, relu=False):
    v = sums.astype(np.int64) + offset.astype(np.int64)
    if out_dtype == "float32":
        if relu:
            v = np.maximum(v, 0)
        return v.astype(np.int32).astype(np.float32) * scale.astype(np.float32)
    product = v.astype(np.int32).astype(np.float32) * scale.astype(np.float32)
    r = np.rint(np.clip(product, -4194304.0, 4194304.0)).astype(np.int64) + out_zero_point
    return np.clip(r, out_zero_point if relu else 0, 255).astype(np.uint8)


def quantize(x, scale, zero_point, qmax=255):
    v = x.astype(np.float32) * (np.float32(1.0) / np.float32(scale))
    v = np.nan_to_num(v, nan=-4194304.0)
    return np.clip(np.rint(np.clip(v, -4194304.0, 4194304.0)) + zero_point, 0, qmax).astype(np.uint8)
