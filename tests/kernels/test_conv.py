"""Conv2D kernels: finite differences (float64), PyTorch oracle (float32), bad input, determinism."""

import numpy as np
import pytest

from convx._kernels import conv
from convx._kernels.activations import activation_backward, activation_forward
from gradcheck import check_gradient
from thread_identity import assert_same_for_any_thread_count

# (N, H, W, C_in, KH, KW, C_out, strides, padding, dilation)
CASES = [
    (2, 5, 6, 3, 3, 3, 4, (1, 1), "valid", (1, 1)),
    (2, 8, 8, 2, 3, 3, 3, (2, 2), "same", (1, 1)),  # stride 2, same, even size
    (2, 7, 7, 2, 3, 3, 3, (2, 2), "same", (1, 1)),  # stride 2, same, odd size
    (1, 7, 6, 2, 3, 3, 2, (1, 1), "same", (2, 2)),  # dilation 2, same
    (2, 7, 7, 1, 2, 3, 2, (1, 1), "valid", (2, 1)),  # dilation, non-square kernel
    (2, 4, 5, 3, 1, 1, 4, (1, 1), "valid", (1, 1)),  # 1x1, pointwise fast path
    (2, 5, 5, 3, 1, 1, 2, (2, 2), "same", (1, 1)),  # 1x1 strided
    (1, 6, 6, 2, 5, 5, 2, (1, 1), "same", (1, 1)),  # 5x5
    (1, 5, 4, 1, 3, 3, 1, (2, 1), "valid", (1, 1)),  # batch 1, one channel, mixed strides
    (2, 3, 3, 2, 5, 5, 2, (1, 1), "same", (1, 1)),  # kernel larger than the input
    (1, 1, 9, 2, 1, 3, 3, (1, 2), "same", (1, 1)),  # Conv1D as H = 1
    # patches of more than CX_SMALL_PATCH = 32 elements take the packed-GEMM path
    (2, 6, 5, 5, 3, 3, 4, (1, 1), "valid", (1, 1)),
    (1, 7, 7, 4, 3, 3, 5, (2, 2), "same", (1, 1)),
    # small patches with C_out multiples of 8 / 16 / 32 take the register-blocked AVX2 loops
    (2, 9, 9, 2, 3, 3, 24, (1, 1), "valid", (1, 1)),
    (2, 6, 6, 3, 3, 3, 48, (1, 1), "same", (1, 1)),
    # depth over 256: the indirect GEMM accumulates over several K blocks (forward; 'same' input gradient)
    (1, 4, 4, 30, 3, 3, 4, (1, 1), "valid", (1, 1)),
    (1, 4, 4, 3, 3, 3, 30, (1, 1), "same", (1, 1)),
]


def _random_case(rng, case, dtype=np.float64):
    n, h, w, cin, kh, kw, cout = case[:7]
    x = rng.standard_normal((n, h, w, cin)).astype(dtype)
    kernel = rng.standard_normal((kh, kw, cin, cout)).astype(dtype)
    bias = rng.standard_normal(cout).astype(dtype)
    return x, kernel, bias


def _check_finite_differences(rng, case, make_weights):
    """FD check (float64) of all three gradients of sum(conv(x) * weights)."""
    x, kernel, bias = _random_case(rng, case)
    strides, padding, dilation = case[7:]
    y = conv.conv2d_forward(x, kernel, bias, strides, padding, dilation)
    weights = make_weights(y.shape)

    def loss():
        return float(np.sum(conv.conv2d_forward(x, kernel, bias, strides, padding, dilation) * weights))

    dx, dkernel, dbias = conv.conv2d_backward(x, kernel, weights, strides, padding, dilation)
    check_gradient(loss, x, dx)
    check_gradient(loss, kernel, dkernel)
    check_gradient(loss, bias, dbias)


@pytest.mark.parametrize("case", CASES)
def test_conv_gradients_match_finite_differences(rng, case):
    _check_finite_differences(rng, case, rng.standard_normal)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "softmax"])
def test_fused_activation_equals_separate_and_backprops(rng, activation):
    x, kernel, bias = _random_case(rng, (2, 6, 5, 3, 3, 3, 4))
    fused = conv.conv2d_forward(x, kernel, bias, 1, "same", 1, activation=activation)
    plain = conv.conv2d_forward(x, kernel, bias, 1, "same", 1)
    np.testing.assert_allclose(fused, activation_forward(plain, activation), rtol=1e-12, atol=1e-14)
    weights = rng.standard_normal(fused.shape)

    def loss():
        return float(np.sum(conv.conv2d_forward(x, kernel, bias, 1, "same", 1, activation) * weights))

    dz = activation_backward(fused, weights, activation)
    dx, dkernel, _ = conv.conv2d_backward(x, kernel, dz, 1, "same", 1)
    check_gradient(loss, x, dx)
    check_gradient(loss, kernel, dkernel)


def _tf_same_pads(size, k, s, d):
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize("case", CASES + [(8, 28, 28, 1, 3, 3, 32, (1, 1), "valid", (1, 1)),
                                          (8, 13, 13, 32, 3, 3, 64, (1, 1), "valid", (1, 1)),
                                          (4, 16, 16, 16, 3, 3, 16, (1, 1), "same", (1, 1)),
                                          (2, 8, 8, 8, 3, 3, 64, (1, 1), "same", (1, 1)),
                                          (1, 5, 5, 300, 3, 3, 8, (1, 1), "same", (1, 1)),
                                          (1, 5, 5, 4, 3, 3, 300, (1, 1), "same", (1, 1))])
def test_conv_matches_pytorch(rng, torch, case):
    """Forward and all gradients against torch.nn.functional.conv2d, float32.

    Tolerance: 1e-4 relative to the largest magnitude of each output (float32
    sums of up to a few thousand terms in a different order).
    """
    F = torch.nn.functional
    x, kernel, bias = _random_case(rng, case, np.float32)
    n, h, w, cin, kh, kw, cout, strides, padding, dilation = case
    y = conv.conv2d_forward(x, kernel, bias, strides, padding, dilation)
    dz = rng.standard_normal(y.shape).astype(np.float32)
    dx, dkernel, dbias = conv.conv2d_backward(x, kernel, dz, strides, padding, dilation)

    xt = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_()
    kt = torch.tensor(kernel).permute(3, 2, 0, 1).requires_grad_()
    bt = torch.tensor(bias).requires_grad_()
    xp = xt
    if padding == "same":
        top, bottom = _tf_same_pads(h, kh, strides[0], dilation[0])
        left, right = _tf_same_pads(w, kw, strides[1], dilation[1])
        xp = F.pad(xt, (left, right, top, bottom))
    yt = F.conv2d(xp, kt, bt, stride=strides, dilation=dilation)
    yt.backward(torch.tensor(dz).permute(0, 3, 1, 2))

    def close(ours, ref):
        ref = ref.detach().numpy()
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-4 * max(1.0, np.abs(ref).max()))

    close(y, yt.permute(0, 2, 3, 1))
    close(dx, xt.grad.permute(0, 2, 3, 1))
    close(dkernel, kt.grad.permute(2, 3, 1, 0))
    close(dbias, bt.grad)


def test_need_dx_false_skips_input_gradient(rng):
    x, kernel, _ = _random_case(rng, (2, 5, 5, 2, 3, 3, 3))
    dz = rng.standard_normal((2, 3, 3, 3))
    dx, dkernel, dbias = conv.conv2d_backward(x, kernel, dz, need_dx=False)
    assert dx is None
    np.testing.assert_array_equal(dkernel, conv.conv2d_backward(x, kernel, dz)[1])


def test_empty_batch_returns_empty_results(rng):
    x = np.zeros((0, 5, 5, 2), np.float32)
    kernel = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)
    y = conv.conv2d_forward(x, kernel, padding="same")
    assert y.shape == (0, 5, 5, 4)
    dx, dkernel, dbias = conv.conv2d_backward(x, kernel, y, padding="same")
    assert dx.shape == x.shape
    assert not dkernel.any() and not dbias.any()


def test_non_contiguous_inputs_are_accepted(rng):
    x, kernel, bias = _random_case(rng, (2, 6, 6, 3, 3, 3, 2))
    wide = np.zeros((2, 6, 12, 3))
    wide[:, :, ::2] = x
    np.testing.assert_array_equal(conv.conv2d_forward(wide[:, :, ::2], kernel, bias), conv.conv2d_forward(x, kernel, bias))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_are_bit_identical_for_any_thread_count(rng, dtype):
    x, kernel, bias = _random_case(rng, (16, 20, 20, 8, 3, 3, 16), dtype)
    dz = rng.standard_normal((16, 10, 10, 16)).astype(dtype)
    sparse_dz = _dz_with_zero_rows(np.random.default_rng(1), dz.shape, dtype)
    assert_same_for_any_thread_count(lambda: (
        (conv.conv2d_forward(x, kernel, bias, 2, "same", 1, "relu"),) + conv.conv2d_backward(x, kernel, dz, 2, "same", 1)
        + conv.conv2d_backward(x, kernel, sparse_dz, 2, "same", 1)))


class TestBadInput:
    def setup_method(self):
        self.x = np.zeros((2, 5, 5, 3), np.float32)
        self.k = np.zeros((3, 3, 3, 4), np.float32)

    def test_wrong_type(self):
        with pytest.raises(TypeError, match="x must be a numpy.ndarray, got list"):
            conv.conv2d_forward([[1.0]], self.k)

    def test_wrong_dtype(self):
        with pytest.raises(TypeError, match="x must have dtype float32 or float64, got int64"):
            conv.conv2d_forward(np.zeros((2, 5, 5, 3), np.int64), self.k)

    def test_mixed_dtypes(self):
        with pytest.raises(TypeError, match="kernel must have dtype float32"):
            conv.conv2d_forward(self.x, self.k.astype(np.float64))

    def test_wrong_ndim(self):
        with pytest.raises(ValueError, match=r"x must be 4-D, got 3-D array of shape \(5, 5, 3\)"):
            conv.conv2d_forward(self.x[0], self.k)

    def test_channel_mismatch(self):
        with pytest.raises(ValueError, match=r"kernel must have C_in = 3 .* got kernel shape \(3, 3, 2, 4\)"):
            conv.conv2d_forward(self.x, np.zeros((3, 3, 2, 4), np.float32))

    def test_bias_shape(self):
        with pytest.raises(ValueError, match=r"bias must have shape \(4,\), got \(3,\)"):
            conv.conv2d_forward(self.x, self.k, np.zeros(3, np.float32))

    @pytest.mark.parametrize("arg", ["strides", "dilation"])
    @pytest.mark.parametrize("value", [0, (1, 0), (-1, 1)])
    def test_strides_and_dilation_at_least_one(self, arg, value):
        with pytest.raises(ValueError, match=f"{arg} must be >= 1"):
            conv.conv2d_forward(self.x, self.k, **{arg: value})

    def test_malformed_strides(self):
        with pytest.raises(TypeError, match="strides must be an int or a pair of ints"):
            conv.conv2d_forward(self.x, self.k, strides=(1, 2, 3))

    def test_bad_padding(self):
        with pytest.raises(ValueError, match="padding must be 'valid' or 'same', got 'full'"):
            conv.conv2d_forward(self.x, self.k, padding="full")

    def test_kernel_larger_than_input_valid(self):
        with pytest.raises(ValueError, match="empty output"):
            conv.conv2d_forward(self.x, np.zeros((7, 7, 3, 4), np.float32))

    def test_bad_activation(self):
        with pytest.raises(ValueError, match="activation must be one of"):
            conv.conv2d_forward(self.x, self.k, activation="swishy")

    def test_dz_shape(self):
        with pytest.raises(ValueError, match=r"dz must have shape \(2, 3, 3, 4\), got \(2, 3, 3, 5\)"):
            conv.conv2d_backward(self.x, self.k, np.zeros((2, 3, 3, 5), np.float32))


def _naive_conv(x, kernel, strides, padding, dilation):
    """Direct float64 convolution with TensorFlow's padding, for random-shape checks."""
    n, h, w, _ = x.shape
    kh, kw, _, cout = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    if padding == "same":
        (top, bottom), (left, right) = _tf_same_pads(h, kh, sh, dh), _tf_same_pads(w, kw, sw, dw)
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    oh = (x.shape[1] - (kh - 1) * dh - 1) // sh + 1
    ow = (x.shape[2] - (kw - 1) * dw - 1) // sw + 1
    y = np.zeros((n, oh, ow, cout))
    for ky in range(kh):
        for kx in range(kw):
            patch = x[:, ky * dh: ky * dh + (oh - 1) * sh + 1: sh, kx * dw: kx * dw + (ow - 1) * sw + 1: sw, :]
            y += patch @ kernel[ky, kx]
    return y


def test_random_geometries_match_direct_convolution():
    """Many random strides / dilations / paddings / sizes, forward and input gradient, float64."""
    rng = np.random.default_rng(7)
    for _ in range(150):
        kh, kw = rng.integers(1, 6, size=2)
        sh, sw, dh, dw = rng.integers(1, 4, size=4)
        padding = str(rng.choice(["valid", "same"]))
        h = int(rng.integers(1, 12)) + (0 if padding == "same" else (kh - 1) * dh)
        w = int(rng.integers(1, 12)) + (0 if padding == "same" else (kw - 1) * dw)
        cin, cout, n = (int(v) for v in rng.integers(1, 5, size=3))
        x = rng.standard_normal((n, h, w, cin))
        kernel = rng.standard_normal((kh, kw, cin, cout))
        args = ((sh, sw), padding, (dh, dw))
        y = conv.conv2d_forward(x, kernel, None, *args)
        np.testing.assert_allclose(y, _naive_conv(x, kernel, *args), rtol=1e-12, atol=1e-12, err_msg=str(args))
        dz = rng.standard_normal(y.shape)
        dx = conv.conv2d_backward(x, kernel, dz, *args)[0]
        # <dz, conv(x)> is linear in x, so its gradient is dx: check it on a random direction.
        direction = rng.standard_normal(x.shape)
        expected = np.sum(dz * _naive_conv(direction, kernel, *args))
        np.testing.assert_allclose(np.sum(dx * direction), expected, rtol=1e-10, atol=1e-10, err_msg=str(args))


@pytest.mark.parametrize("case", [
    (3, 9, 8, 16, 3, 3, 7, (1, 1), "valid", (1, 1)),
    (2, 9, 9, 32, 3, 3, 16, (2, 2), "same", (1, 1)),
    (2, 8, 7, 16, 3, 2, 6, (1, 1), "same", (2, 1)),
    (1, 6, 6, 48, 2, 2, 13, (1, 1), "valid", (1, 1)),
    (2, 7, 7, 16, 3, 3, 5, (1, 1), "same", (1, 1)),
])
def test_float32_weight_gradient_matches_float64(rng, case):
    """The float32 weight gradient (AVX2 micro-kernels where the CPU has them)
    against the float64 one on the same values: float32 rounding only."""
    x, kernel, _ = _random_case(rng, case)
    strides, padding, dilation = case[7:]
    dz = rng.standard_normal(conv.conv2d_forward(x, kernel, None, strides, padding, dilation).shape)
    x, kernel, dz = (a.astype(np.float32).astype(np.float64) for a in (x, kernel, dz))
    _, want, want_b = conv.conv2d_backward(x, kernel, dz, strides, padding, dilation, need_dx=False)
    f32 = [a.astype(np.float32) for a in (x, kernel, dz)]
    _, got, got_b = conv.conv2d_backward(*f32, strides, padding, dilation, need_dx=False)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
    np.testing.assert_allclose(got_b, want_b, rtol=0, atol=1e-5 * np.abs(want_b).max())


# patches of more than 32 values skip all-zero dz rows; small patches do not
ZERO_ROW_CASES = [
    (2, 11, 11, 4, 3, 3, 5, (1, 1), "valid", (1, 1)),  # packed GEMM + scattered dx
    (2, 9, 9, 5, 3, 3, 8, (2, 2), "same", (1, 1)),     # strided, padded
    (2, 8, 8, 4, 3, 3, 4, (1, 1), "same", (1, 1)),     # dx by the indirect GEMM over dz
    (2, 10, 10, 1, 3, 3, 8, (1, 1), "valid", (1, 1)),  # small patch
]


def _dz_with_zero_rows(rng, shape, dtype):
    """dz as a max pooling leaves it: the last output row and column of each image
    and a third of the other pixels all zero, one zero channel elsewhere."""
    dz = rng.standard_normal(shape).astype(dtype)
    dz[:, -1], dz[:, :, -1] = 0, 0
    dz[rng.random(shape[:3]) < 1 / 3] = 0
    dz[..., 0] = 0
    return dz


@pytest.mark.parametrize("case", ZERO_ROW_CASES)
def test_gradients_with_all_zero_dz_rows(rng, case):
    """Pixels whose dz row is all zero are skipped: FD gradients still hold (float64)."""
    _check_finite_differences(rng, case, lambda shape: _dz_with_zero_rows(rng, shape, np.float64))


@pytest.mark.parametrize("case", ZERO_ROW_CASES)
def test_zero_dz_rows_match_float64(rng, case):
    """float32 with skipped rows against float64 on the same values; an all-zero
    dz gives zero gradients."""
    x, kernel, _ = _random_case(rng, case)
    strides, padding, dilation = case[7:]
    shape = conv.conv2d_forward(x, kernel, None, strides, padding, dilation).shape
    dz = _dz_with_zero_rows(rng, shape, np.float32)
    x, kernel = x.astype(np.float32), kernel.astype(np.float32)
    want = conv.conv2d_backward(x.astype(np.float64), kernel.astype(np.float64), dz.astype(np.float64), strides,
                                padding, dilation)
    for got, ref in zip(conv.conv2d_backward(x, kernel, dz, strides, padding, dilation), want):
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * np.abs(ref).max())
    zero = conv.conv2d_backward(x, kernel, np.zeros(shape, np.float32), strides, padding, dilation)
    assert all(not g.any() for g in zero)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("window", [(10, 10), (2, 2), (11, 4), (1, 11)])
# 8 input channels: the tiled indirect GEMM; 16 and 12 images: Winograd, in parallel
@pytest.mark.parametrize("case", [(3, 13, 13, 8, 3, 3, 16), (12, 13, 13, 16, 3, 3, 16)])
def test_output_window_computes_the_window_exactly_and_zeros_the_rest(rng, dtype, window, case):
    x, kernel, bias = _random_case(rng, case, dtype)
    full = conv.conv2d_forward(x, kernel, bias, activation="relu")
    out = np.full_like(full, np.nan)
    got = conv.conv2d_forward(x, kernel, bias, activation="relu", out=out, output_window=window)
    h, w = window
    if case[3] < 16:
        np.testing.assert_array_equal(got[:, :h, :w], full[:, :h, :w])
    else:  # Winograd applies to some windows only: a few ulps apart from the direct product
        np.testing.assert_allclose(got[:, :h, :w], full[:, :h, :w], rtol=1e-5, atol=1e-5 * np.abs(full).max())
    assert not got[:, h:].any() and not got[:, :, w:].any()


def test_output_window_is_validated(rng):
    x, kernel, _ = _random_case(rng, (1, 6, 6, 8, 3, 3, 4))
    with pytest.raises(ValueError, match="output_window must fit the output"):
        conv.conv2d_forward(x, kernel, output_window=(5, 4))
    with pytest.raises(ValueError, match="output_window must be >= 1"):
        conv.conv2d_forward(x, kernel, output_window=(0, 4))
    with pytest.raises(TypeError, match="output_window must be an int or a pair"):
        conv.conv2d_forward(x, kernel, output_window=(2.5, 4))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case, pool_size, activation", [
    ((3, 28, 28, 1, 3, 3, 32, (1, 1), "valid", (1, 1)), 2, "relu"),    # small patch (im2col loops)
    ((2, 13, 13, 32, 3, 3, 64, (1, 1), "valid", (1, 1)), 2, "relu"),   # indirect GEMM, odd output (11)
    ((2, 9, 10, 5, 3, 3, 16, (1, 1), "same", (1, 1)), (2, 3), "tanh"),  # non-square pool, padded conv
    ((3, 15, 14, 8, 3, 3, 7, (2, 1), "valid", (1, 1)), (3, 2), "softmax"),
    ((2, 5, 5, 64, 3, 3, 128, (1, 1), "valid", (1, 1)), 2, "linear"),  # one pooled pixel from a 3x3 output
    ((9, 5, 5, 16, 3, 3, 24, (1, 1), "valid", (1, 1)), 2, "relu"),      # tasks of whole images (5 + 4)
    ((16, 9, 8, 16, 3, 3, 20, (1, 1), "same", (1, 1)), 2, "relu"),       # Winograd: a tile is a pooling window
    ((16, 9, 8, 16, 3, 3, 20, (1, 1), "same", (1, 1)), (2, 3), "relu"),  # Winograd, but the fused pass is direct
])
def test_conv_maxpool_forward_equals_conv_then_pool(rng, dtype, case, pool_size, activation):
    from convx._kernels.pool import max_pool2d_forward

    x, kernel, bias = _random_case(rng, case, dtype)
    strides, padding, dilation = case[7:]
    y = conv.conv2d_forward(x, kernel, bias, strides, padding, dilation, activation)
    want, _ = max_pool2d_forward(y, pool_size, with_argmax=False)
    got = conv.conv2d_maxpool_forward(x, kernel, bias, strides, padding, dilation, activation, pool_size)
    assert got.dtype == dtype
    if _winograd(case) and pool_size != 2:  # Winograd conv2d_forward, direct product when fused
        np.testing.assert_allclose(got, want, rtol=0, atol=(1e-5 if dtype == np.float32 else 1e-12) * abs(want).max())
    else:
        np.testing.assert_array_equal(got, want)


def test_conv_maxpool_forward_rejects_a_pool_larger_than_the_output(rng):
    x, kernel, _ = _random_case(rng, (1, 4, 4, 2, 3, 3, 2))
    with pytest.raises(ValueError, match="larger than the convolution's output"):
        conv.conv2d_maxpool_forward(x, kernel, pool_size=3)


def _winograd(case):
    """conv2d_forward uses Winograd F(2x2, 3x3): 3x3, stride 1, undilated, >= 16 channels in and out,
    >= 256 tiles of 2x2 outputs per call, at least 3/4 of their outputs inside the output."""
    n, h, w, cin, kh, kw, cout, strides, padding, dilation = case
    oh, ow = (h, w) if padding == "same" else (h - 2, w - 2)
    tiles = ((oh + 1) // 2) * ((ow + 1) // 2)
    return ((kh, kw) == (3, 3) and tuple(strides) == (1, 1) and tuple(dilation) == (1, 1)
            and min(cin, cout) >= 16 and n * tiles >= 256 and oh * ow >= 3 * tiles)


def _direct_reference(x, kernel, bias, padding):
    """float64 direct convolution (stride 1, undilated) with NumPy, TensorFlow's 'same' padding."""
    kh, kw = kernel.shape[:2]
    if padding == "same":
        (top, bottom), (left, right) = _tf_same_pads(x.shape[1], kh, 1, 1), _tf_same_pads(x.shape[2], kw, 1, 1)
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # (N, OH, OW, C, KH, KW)
    return np.einsum("nhwcij,ijco->nhwo", windows, kernel) + bias


WINOGRAD_CASES = [
    (8, 13, 13, 32, 3, 3, 64, (1, 1), "valid", (1, 1)),  # the seed's conv2: odd output, a half tile
    (4, 16, 17, 17, 3, 3, 20, (1, 1), "same", (1, 1)),   # channels not multiples of 8, padded tiles
    (16, 10, 10, 16, 3, 3, 16, (1, 1), "valid", (1, 1)),
]


@pytest.mark.parametrize("case", WINOGRAD_CASES + [(3, 5, 5, 64, 3, 3, 128, (1, 1), "valid", (1, 1))])
def test_winograd_forward_matches_the_direct_convolution(rng, case):
    """Winograd cases, and a 3x3 output that stays direct (2x2 tiles would waste 7 of 16 outputs)."""
    assert _winograd(case) == (case in WINOGRAD_CASES)
    x, kernel, bias = _random_case(rng, case)
    padding = case[8]
    want = _direct_reference(x, kernel, bias, padding)
    np.testing.assert_allclose(conv.conv2d_forward(x, kernel, bias, padding=padding), want, rtol=0,
                               atol=1e-12 * np.abs(want).max())
    relu = conv.conv2d_forward(x.astype(np.float32), kernel.astype(np.float32), bias.astype(np.float32),
                               padding=padding, activation="relu")
    np.testing.assert_allclose(relu, np.maximum(want, 0), rtol=0, atol=1e-5 * np.abs(want).max())
    windowed = conv.conv2d_forward(x, kernel, bias, padding=padding, output_window=(3, 2))
    np.testing.assert_allclose(windowed[:, :3, :2], want[:, :3, :2], rtol=0, atol=1e-12 * np.abs(want).max())
    assert not windowed[:, 3:].any() and not windowed[:, :, 2:].any()


def test_winograd_gradients_match_finite_differences(rng):
    """The kernel and bias gradients (direct) against FD of the Winograd forward, float64."""
    case = (64, 4, 4, 16, 3, 3, 16, (1, 1), "same", (1, 1))
    assert _winograd(case)
    x, kernel, bias = _random_case(rng, case)
    weights = rng.standard_normal(x.shape[:3] + (16,))

    def loss():
        return float(np.sum(conv.conv2d_forward(x, kernel, bias, padding="same") * weights))

    _, dkernel, dbias = conv.conv2d_backward(x, kernel, weights, padding="same", need_dx=False)
    check_gradient(loss, kernel, dkernel)
    check_gradient(loss, bias, dbias)


def test_winograd_is_bit_identical_for_any_thread_count(rng):
    x, kernel, bias = _random_case(rng, (16, 14, 14, 32, 3, 3, 32), np.float32)
    assert_same_for_any_thread_count(lambda: conv.conv2d_forward(x, kernel, bias, padding="same", activation="relu"))


# (case, pool_size, activation) of conv2d_maxpool_backward: small patches (KH * KW * C_in <= 32) only
MAXPOOL_BACKWARD_CASES = [
    ((3, 12, 12, 1, 3, 3, 32, (1, 1), "valid", (1, 1)), 2, "relu"),   # the seed's first layer, odd output (10 -> 5)
    ((2, 9, 11, 3, 3, 3, 8, (1, 1), "same", (1, 1)), 2, "linear"),    # RGB, padded, a dropped column
    ((2, 13, 13, 2, 2, 2, 16, (1, 1), "valid", (1, 1)), 3, "relu"),   # 3x3 windows, 12 -> 4
    ((2, 15, 14, 2, 3, 3, 5, (2, 1), "valid", (1, 1)), (3, 2), "relu"),  # strided conv, C_out not a multiple of 8
    ((1, 11, 11, 1, 3, 3, 4, (1, 1), "same", (2, 2)), 2, "relu"),     # dilated
]


def _maxpool_layer_by_layer(x, kernel, bias, dy, case, pool_size, activation):
    """Gradients of conv -> max pool through the separate kernels (the unfused model path)."""
    from convx._kernels.pool import max_pool2d_backward_windows, max_pool2d_forward

    strides, padding, dilation = case[7:]
    y = conv.conv2d_forward(x, kernel, bias, strides, padding, dilation, activation)
    pooled, _ = max_pool2d_forward(y, pool_size, with_argmax=False)
    dz = max_pool2d_backward_windows(dy, y, pooled, pool_size, through_relu=activation == "relu")
    _, dkernel, dbias = conv.conv2d_backward(x, kernel, dz, strides, padding, dilation, need_dx=False)
    return pooled, dkernel, dbias


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case, pool_size, activation", MAXPOOL_BACKWARD_CASES)
def test_conv_maxpool_backward_equals_pool_then_conv_backward(rng, dtype, case, pool_size, activation):
    x, kernel, bias = _random_case(rng, case, dtype)
    strides, padding, dilation = case[7:]
    pooled = conv.conv2d_maxpool_forward(x, kernel, bias, strides, padding, dilation, activation, pool_size)
    dy = rng.standard_normal(pooled.shape).astype(dtype)
    want_pooled, want_dk, want_db = _maxpool_layer_by_layer(x, kernel, bias, dy, case, pool_size, activation)
    np.testing.assert_array_equal(pooled, want_pooled)
    dk, db = conv.conv2d_maxpool_backward(x, kernel, dy, pooled, bias, strides, padding, dilation, activation,
                                          pool_size)
    assert dk.dtype == db.dtype == dtype
    # the same dz, summed in another order
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(dk, want_dk, rtol=rtol, atol=rtol * abs(want_dk).max())
    np.testing.assert_allclose(db, want_db, rtol=rtol, atol=rtol * abs(want_db).max())


@pytest.mark.parametrize("case, pool_size, activation", MAXPOOL_BACKWARD_CASES[:3])
def test_conv_maxpool_backward_matches_finite_differences(rng, case, pool_size, activation):
    x, kernel, bias = _random_case(rng, case)
    strides, padding, dilation = case[7:]
    weights = rng.standard_normal(
        conv.conv2d_maxpool_forward(x, kernel, bias, strides, padding, dilation, activation, pool_size).shape)

    def loss():
        pooled = conv.conv2d_maxpool_forward(x, kernel, bias, strides, padding, dilation, activation, pool_size)
        return float(np.sum(pooled * weights))

    pooled = conv.conv2d_maxpool_forward(x, kernel, bias, strides, padding, dilation, activation, pool_size)
    dk, db = conv.conv2d_maxpool_backward(x, kernel, weights, pooled, bias, strides, padding, dilation, activation,
                                          pool_size)
    check_gradient(loss, kernel, dk)
    check_gradient(loss, bias, db)


@pytest.mark.parametrize("case, pool_size, activation", MAXPOOL_BACKWARD_CASES)
def test_conv_maxpool_backward_matches_pytorch(rng, torch, case, pool_size, activation):
    x, kernel, bias = _random_case(rng, case, np.float32)
    strides, padding, dilation = case[7:]
    pooled = conv.conv2d_maxpool_forward(x, kernel, bias, strides, padding, dilation, activation, pool_size)
    dy = rng.standard_normal(pooled.shape).astype(np.float32)
    dk, db = conv.conv2d_maxpool_backward(x, kernel, dy, pooled, bias, strides, padding, dilation, activation,
                                          pool_size)
    _, want_dk, want_db = _torch_conv_pool_grads(torch, x, kernel, bias, dy, pooled, case, pool_size, activation)
    np.testing.assert_allclose(dk, want_dk, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, want_db, rtol=1e-4, atol=1e-4)


def _torch_conv_pool_grads(torch, x, kernel, bias, dy, pooled, case, pool_size, activation):
    """PyTorch's (dx, dkernel, dbias) of max_pool(act(conv(x))) given dy, in convx's layouts,
    after checking its forward against `pooled`."""
    strides, padding, dilation = case[7:]
    F = torch.nn.functional
    xt = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_()
    kt = torch.tensor(kernel).permute(3, 2, 0, 1).requires_grad_()
    bt = torch.tensor(bias).requires_grad_()
    z = F.conv2d(xt, kt, bt, stride=strides, dilation=dilation, padding=padding if strides == (1, 1) else 0)
    if activation == "relu":
        z = F.relu(z)
    pt = F.max_pool2d(z, pool_size)
    np.testing.assert_allclose(pt.permute(0, 2, 3, 1).detach().numpy(), pooled, rtol=1e-4, atol=1e-4)
    pt.backward(torch.tensor(dy).permute(0, 3, 1, 2))
    return xt.grad.permute(0, 2, 3, 1).numpy(), kt.grad.permute(2, 3, 1, 0).numpy(), bt.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_maxpool_backward_is_bit_identical_for_any_thread_count(rng, dtype):
    # 64 images of the seed's first layer: many task groups, each summed in a fixed order
    case = (64, 28, 28, 1, 3, 3, 32, (1, 1), "valid", (1, 1))
    x, kernel, bias = _random_case(rng, case, dtype)
    pooled = conv.conv2d_maxpool_forward(x, kernel, bias, activation="relu")
    dy = rng.standard_normal(pooled.shape).astype(dtype)
    assert_same_for_any_thread_count(
        lambda: conv.conv2d_maxpool_backward(x, kernel, dy, pooled, bias, activation="relu"))


def test_conv_maxpool_backward_of_an_empty_batch_is_zero(rng):
    x, kernel, bias = _random_case(rng, (0, 8, 8, 1, 3, 3, 8))
    dk, db = conv.conv2d_maxpool_backward(x, kernel, np.zeros((0, 3, 3, 8)), np.zeros((0, 3, 3, 8)), bias,
                                          activation="relu", out=(np.full((3, 3, 1, 8), np.nan), None))
    assert not dk.any() and not db.any()


def test_conv_maxpool_backward_rejects_what_it_cannot_fuse(rng):
    x, kernel, bias = _random_case(rng, (1, 8, 8, 1, 3, 3, 4))
    grads = np.zeros((1, 3, 3, 4))
    with pytest.raises(ValueError, match="'relu' or 'linear', got 'tanh'"):
        conv.conv2d_maxpool_backward(x, kernel, grads, grads, bias, activation="tanh")
    wide_x, wide_kernel, _ = _random_case(rng, (1, 8, 8, 4, 3, 3, 4))
    with pytest.raises(ValueError, match=r"KH \* KW \* C_in <= 32, got kernel shape \(3, 3, 4, 4\)"):
        conv.conv2d_maxpool_backward(wide_x, wide_kernel, grads, grads, activation="relu")
    with pytest.raises(ValueError, match="dy must have shape"):
        conv.conv2d_maxpool_backward(x, kernel, np.zeros((1, 6, 6, 4)), grads, bias, activation="relu")
    with pytest.raises(ValueError, match="pooled must have shape"):
        conv.conv2d_maxpool_backward(x, kernel, grads, np.zeros((1, 3, 3, 5)), bias, activation="relu")
    with pytest.raises(TypeError, match="pooled"):
        conv.conv2d_maxpool_backward(x, kernel, grads, grads.astype(np.float32), bias, activation="relu")


# (case, pool_size, activation) of conv2d_maxpool_backward_codes: any patch, with dx
MAXPOOL_CODES_CASES = [
    ((4, 13, 13, 32, 3, 3, 64, (1, 1), "valid", (1, 1)), 2, "relu"),    # the seed's second layer: rows listed
    ((3, 5, 5, 64, 3, 3, 128, (1, 1), "valid", (1, 1)), 2, "linear"),   # the seed's third: 1 pooled pixel of 3x3
    ((16, 9, 8, 16, 3, 3, 20, (1, 1), "same", (1, 1)), 2, "relu"),      # Winograd tiles as pooling windows
    ((2, 9, 11, 3, 3, 3, 8, (1, 1), "same", (1, 1)), 2, "linear"),      # small patch: the whole dz
    ((3, 8, 8, 16, 1, 1, 16, (1, 1), "valid", (1, 1)), 2, "relu"),      # pointwise: dx is a GEMM of all of dz
    ((2, 12, 12, 20, 3, 3, 24, (1, 1), "same", (1, 1)), (3, 2), "relu"),  # dx as a convolution of all of dz
    ((2, 15, 14, 8, 3, 3, 7, (2, 1), "valid", (1, 1)), (3, 2), "relu"),   # strided, C_out not a multiple of 8
    ((1, 11, 11, 6, 3, 3, 4, (1, 1), "same", (2, 2)), 2, "relu"),        # dilated
]


def _window_positions(argmax, y_shape, pool_size):
    """Positions (row-major in the window) of max_pool2d_forward's argmax (flat indices into y)."""
    ph, pw = (pool_size, pool_size) if isinstance(pool_size, int) else pool_size
    _, h, w, c = y_shape
    oy = argmax // c % (h * w) // w
    ox = argmax // c % w
    return ((oy % ph) * pw + ox % pw).astype(np.uint8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case, pool_size, activation", MAXPOOL_CODES_CASES)
def test_conv_maxpool_codes_are_the_poolings_first_maxima(rng, dtype, case, pool_size, activation):
    from convx._kernels.pool import max_pool2d_forward

    x, kernel, bias = _random_case(rng, case, dtype)
    strides, padding, dilation = case[7:]
    pooled_shape = conv.conv2d_maxpool_forward(x, kernel, bias, strides, padding, dilation, activation,
                                               pool_size).shape
    codes = np.full(pooled_shape, 255, np.uint8)
    pooled = conv.conv2d_maxpool_forward(x, kernel, bias, strides, padding, dilation, activation, pool_size,
                                         codes=codes)
    y = conv.conv2d_forward(x, kernel, bias, strides, padding, dilation, activation)
    want, argmax = max_pool2d_forward(y, pool_size)
    if not np.array_equal(pooled, want):  # 1x1 kernels: a GEMM of x when whole, an indirect GEMM when fused
        np.testing.assert_allclose(pooled, want, rtol=1e-5, atol=1e-5 * abs(want).max())
        return
    np.testing.assert_array_equal(codes, _window_positions(argmax, y.shape, pool_size))


def _codes_layer_by_layer(x, kernel, bias, dy, case, pool_size, activation):
    """conv -> max pool gradients through the separate kernels, dx included."""
    from convx._kernels.pool import max_pool2d_backward_windows, max_pool2d_forward

    strides, padding, dilation = case[7:]
    y = conv.conv2d_forward(x, kernel, bias, strides, padding, dilation, activation)
    pooled, _ = max_pool2d_forward(y, pool_size, with_argmax=False)
    dz = max_pool2d_backward_windows(dy, y, pooled, pool_size, through_relu=activation == "relu")
    return pooled, conv.conv2d_backward(x, kernel, dz, strides, padding, dilation)


def _codes_forward(x, kernel, bias, case, pool_size, activation):
    strides, padding, dilation = case[7:]
    shape = conv.conv2d_maxpool_forward(x, kernel, bias, strides, padding, dilation, activation, pool_size).shape
    codes = np.empty(shape, np.uint8)
    pooled = conv.conv2d_maxpool_forward(x, kernel, bias, strides, padding, dilation, activation, pool_size,
                                         codes=codes)
    return pooled, codes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case, pool_size, activation", MAXPOOL_CODES_CASES)
def test_conv_maxpool_backward_codes_is_pool_then_conv_backward_bit_for_bit(rng, dtype, case, pool_size,
                                                                             activation):
    x, kernel, bias = _random_case(rng, case, dtype)
    x = np.maximum(x, 0)  # a relu's output: most rows of dz are zero after a relu and a pooling
    strides, padding, dilation = case[7:]
    pooled, codes = _codes_forward(x, kernel, bias, case, pool_size, activation)
    dy = rng.standard_normal(pooled.shape).astype(dtype)
    want_pooled, want = _codes_layer_by_layer(x, kernel, bias, dy, case, pool_size, activation)
    got = conv.conv2d_maxpool_backward_codes(x, kernel, dy, want_pooled, codes, strides, padding, dilation,
                                             activation, pool_size)
    if not np.array_equal(pooled, want_pooled):  # 1x1: the forward passes differ by ulps (see above)
        got = conv.conv2d_maxpool_backward_codes(x, kernel, dy, pooled, codes, strides, padding, dilation,
                                                 activation, pool_size)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * abs(b).max())
        return
    for a, b in zip(got, want):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case, pool_size, activation", [
    ((2, 5, 5, 4, 3, 3, 6, (1, 1), "valid", (1, 1)), 2, "linear"),  # 1 pooled pixel of 3x3, like the seed's third
    ((2, 7, 7, 5, 3, 3, 4, (1, 1), "valid", (1, 1)), 2, "relu"),    # rows listed (a patch of 45 values)
] + [MAXPOOL_CODES_CASES[i] for i in (3, 6, 7)])
def test_conv_maxpool_backward_codes_matches_finite_differences(rng, case, pool_size, activation):
    x, kernel, bias = _random_case(rng, case)
    strides, padding, dilation = case[7:]
    pooled, codes = _codes_forward(x, kernel, bias, case, pool_size, activation)
    weights = rng.standard_normal(pooled.shape)

    def loss():
        return float(np.sum(_codes_forward(x, kernel, bias, case, pool_size, activation)[0] * weights))

    dx, dk, db = conv.conv2d_maxpool_backward_codes(x, kernel, weights, pooled, codes, strides, padding, dilation,
                                                    activation, pool_size)
    check_gradient(loss, x, dx)
    check_gradient(loss, kernel, dk)
    check_gradient(loss, bias, db)


@pytest.mark.parametrize("case, pool_size, activation", MAXPOOL_CODES_CASES)
def test_conv_maxpool_backward_codes_matches_pytorch(rng, torch, case, pool_size, activation):
    x, kernel, bias = _random_case(rng, case, np.float32)
    strides, padding, dilation = case[7:]
    pooled, codes = _codes_forward(x, kernel, bias, case, pool_size, activation)
    dy = rng.standard_normal(pooled.shape).astype(np.float32)
    dx, dk, db = conv.conv2d_maxpool_backward_codes(x, kernel, dy, pooled, codes, strides, padding, dilation,
                                                    activation, pool_size)
    want = _torch_conv_pool_grads(torch, x, kernel, bias, dy, pooled, case, pool_size, activation)
    for got, ref in zip((dx, dk, db), want):
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_maxpool_backward_codes_is_bit_identical_for_any_thread_count(rng, dtype):
    # 32 images of the seed's second layer: the listing, gathering and gradients all run in parallel
    case = (32, 13, 13, 32, 3, 3, 64, (1, 1), "valid", (1, 1))
    x, kernel, bias = _random_case(rng, case, dtype)
    x = np.maximum(x, 0)

    def forward_and_backward():
        pooled, codes = _codes_forward(x, kernel, bias, case, 2, "relu")
        dy = np.random.default_rng(5).standard_normal(pooled.shape).astype(dtype)
        return (pooled, codes) + conv.conv2d_maxpool_backward_codes(x, kernel, dy, pooled, codes, activation="relu")

    assert_same_for_any_thread_count(forward_and_backward)


def test_conv_maxpool_backward_codes_of_an_empty_batch_is_zero(rng):
    x, kernel, _ = _random_case(rng, (0, 8, 8, 3, 3, 3, 8))
    empty = np.zeros((0, 3, 3, 8))
    dx, dk, db = conv.conv2d_maxpool_backward_codes(x, kernel, empty, empty, np.zeros((0, 3, 3, 8), np.uint8),
                                                    activation="relu", out=(None, np.full((3, 3, 3, 8), np.nan), None))
    assert dx.shape == x.shape and not dk.any() and not db.any()


def test_conv_maxpool_codes_reject_bad_input(rng):
    x, kernel, _ = _random_case(rng, (1, 8, 8, 2, 3, 3, 4))
    grads, codes = np.zeros((1, 3, 3, 4)), np.zeros((1, 3, 3, 4), np.uint8)
    with pytest.raises(ValueError, match="'relu' or 'linear', got 'tanh'"):
        conv.conv2d_maxpool_backward_codes(x, kernel, grads, grads, codes, activation="tanh")
    with pytest.raises(TypeError, match="codes must be a uint8 numpy.ndarray, got int64"):
        conv.conv2d_maxpool_backward_codes(x, kernel, grads, grads, codes.astype(np.int64), activation="relu")
    with pytest.raises(ValueError, match="codes must have shape"):
        conv.conv2d_maxpool_backward_codes(x, kernel, grads, grads, codes[:, :2], activation="relu")
    with pytest.raises(ValueError, match=r"codes must be < 4 \(positions in 2x2 windows\), got 4"):
        conv.conv2d_maxpool_backward_codes(x, kernel, grads, grads, codes + 4, activation="relu")
    with pytest.raises(TypeError, match="codes must have dtype uint8"):
        conv.conv2d_maxpool_forward(x, kernel, codes=grads)
    big_x, big_kernel, _ = _random_case(rng, (1, 19, 19, 1, 3, 3, 2))
    with pytest.raises(ValueError, match=r"at most 64 cells, got pool_size \(9, 9\)"):
        conv.conv2d_maxpool_forward(big_x, big_kernel, pool_size=9, codes=np.zeros((1, 1, 1, 2), np.uint8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_image_gets_the_bits_it_gets_in_a_batch(rng, dtype):
    """A batch of one (few output rows: the kernel read in place, not packed) gives the image the same
    bits as a large batch (kernel packed), fused with pooling or not."""
    x = rng.standard_normal((40, 7, 7, 24)).astype(dtype)
    kernel = rng.standard_normal((3, 3, 24, 40)).astype(dtype)
    bias = rng.standard_normal(40).astype(dtype)
    batch = conv.conv2d_forward(x, kernel, bias, activation="relu")
    pooled = conv.conv2d_maxpool_forward(x, kernel, bias, activation="relu", pool_size=(2, 2))
    for n in (1, 2):
        np.testing.assert_array_equal(conv.conv2d_forward(x[:n], kernel, bias, activation="relu"), batch[:n])
        np.testing.assert_array_equal(
            conv.conv2d_maxpool_forward(x[:n], kernel, bias, activation="relu", pool_size=(2, 2)), pooled[:n])
