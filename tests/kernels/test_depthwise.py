"""Depthwise kernels (and the transposed convolution's forward, column sums): finite differences
(float64), PyTorch oracle (float32), ISA variants, bad input, bit-identity across thread counts."""

import os
import subprocess
import sys

import numpy as np
import pytest

from convx._kernels import conv, depthwise
from convx._kernels.activations import activation_backward, activation_forward
from gradcheck import check_gradient
from thread_identity import assert_same_for_any_thread_count
from torch_reference import _same_pad

# (N, H, W, C, KH, KW, M, strides, padding, dilation)
CASES = [
    (2, 5, 6, 3, 3, 3, 1, (1, 1), "valid", (1, 1)),
    (2, 8, 8, 2, 3, 3, 1, (2, 2), "same", (1, 1)),  # stride 2, same, even size
    (2, 7, 7, 3, 3, 3, 2, (2, 2), "same", (1, 1)),  # stride 2, same, odd size, multiplier 2
    (1, 7, 6, 2, 3, 3, 1, (1, 1), "same", (2, 2)),  # dilation 2, batch 1
    (2, 7, 9, 1, 2, 3, 3, (1, 1), "valid", (2, 1)),  # dilation, non-square kernel, one channel
    (1, 5, 4, 4, 1, 1, 2, (2, 1), "valid", (1, 1)),  # 1x1, mixed strides
    (2, 3, 3, 2, 5, 5, 1, (1, 1), "same", (1, 1)),  # kernel larger than the input
    (1, 1, 9, 3, 1, 3, 1, (1, 2), "same", (1, 1)),  # H = 1
    (2, 5, 6, 37, 3, 3, 1, (1, 1), "same", (1, 1)),  # 37 channels: 32-wide blocks, 8-wide, scalar tail
    (1, 6, 5, 11, 3, 3, 3, (2, 2), "valid", (1, 1)),  # 33 output channels from 11 x 3
    (2, 6, 7, 16, 3, 2, 1, (3, 2), "same", (1, 1)),  # stride 3
    (1, 7, 7, 8, 3, 3, 1, (2, 2), "same", (2, 2)),  # strides and dilation together (PyTorch has both)
    # stride 1, 3-wide rows, channels a multiple of the vector width: the sliding row kernel (AVX2)
    (2, 6, 12, 8, 3, 3, 1, (1, 1), "same", (1, 1)),
    (1, 5, 15, 4, 3, 3, 4, (1, 1), "valid", (1, 1)),
]


def _random_case(rng, case, dtype=np.float64):
    n, h, w, c, kh, kw, m = case[:7]
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    kernel = rng.standard_normal((kh, kw, c, m)).astype(dtype)
    bias = rng.standard_normal(c * m).astype(dtype)
    return x, kernel, bias


@pytest.mark.parametrize("case", CASES)
def test_depthwise_gradients_match_finite_differences(rng, case):
    x, kernel, bias = _random_case(rng, case)
    strides, padding, dilation = case[7:]
    y = depthwise.depthwise_forward(x, kernel, bias, strides, padding, dilation)
    weights = rng.standard_normal(y.shape)

    def loss():
        return float(np.sum(depthwise.depthwise_forward(x, kernel, bias, strides, padding, dilation) * weights))

    dx, dkernel, dbias = depthwise.depthwise_backward(x, kernel, weights, strides, padding, dilation)
    check_gradient(loss, x, dx)
    check_gradient(loss, kernel, dkernel)
    check_gradient(loss, bias, dbias)


@pytest.mark.parametrize("case", CASES + [(4, 16, 16, 32, 3, 3, 1, (1, 1), "same", (1, 1)),
                                          (3, 15, 13, 48, 5, 5, 1, (2, 2), "same", (1, 1)),
                                          (2, 9, 9, 20, 3, 3, 4, (1, 1), "valid", (1, 1))])
def test_depthwise_matches_pytorch(rng, torch, case):
    """Forward and all gradients against a grouped torch conv2d (groups = C), float32."""
    F = torch.nn.functional
    x, kernel, bias = _random_case(rng, case, np.float32)
    n, h, w, c, kh, kw, m, strides, padding, dilation = case
    y = depthwise.depthwise_forward(x, kernel, bias, strides, padding, dilation)
    dz = rng.standard_normal(y.shape).astype(np.float32)
    dx, dkernel, dbias = depthwise.depthwise_backward(x, kernel, dz, strides, padding, dilation)

    xt = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_()
    # (KH, KW, C, M) -> (C * M, 1, KH, KW): output channel c * M + m
    kt = torch.tensor(kernel.reshape(kh, kw, c * m)).permute(2, 0, 1)[:, None].contiguous().requires_grad_()
    bt = torch.tensor(bias).requires_grad_()
    xp = xt
    if padding == "same":
        top, bottom = _same_pad(h, kh, strides[0], dilation[0], padding)
        left, right = _same_pad(w, kw, strides[1], dilation[1], padding)
        xp = F.pad(xt, (left, right, top, bottom))
    yt = F.conv2d(xp, kt, bt, stride=strides, dilation=dilation, groups=c)
    yt.backward(torch.tensor(dz).permute(0, 3, 1, 2))

    def close(ours, ref):
        ref = ref.detach().numpy()
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-4 * max(1.0, np.abs(ref).max()))

    close(y, yt.permute(0, 2, 3, 1))
    close(dx, xt.grad.permute(0, 2, 3, 1))
    close(dkernel, kt.grad[:, 0].permute(1, 2, 0).reshape(kh, kw, c, m))
    close(dbias, bt.grad)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "softmax"])
def test_fused_activation_equals_separate_and_backprops(rng, activation):
    x, kernel, bias = _random_case(rng, (2, 6, 5, 12, 3, 3, 2))
    fused = depthwise.depthwise_forward(x, kernel, bias, 1, "same", 1, activation=activation)
    plain = depthwise.depthwise_forward(x, kernel, bias, 1, "same", 1)
    np.testing.assert_allclose(fused, activation_forward(plain, activation), rtol=1e-12, atol=1e-14)
    weights = rng.standard_normal(fused.shape)

    def loss():
        return float(np.sum(depthwise.depthwise_forward(x, kernel, bias, 1, "same", 1, activation) * weights))

    dx, dkernel, _ = depthwise.depthwise_backward(x, kernel, activation_backward(fused, weights, activation), 1,
                                                  "same", 1)
    check_gradient(loss, x, dx)
    check_gradient(loss, kernel, dkernel)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sliding_rows_give_the_bits_of_the_per_pixel_loop(rng, dtype):
    """Runs of 6 or more pixels slide along the row (stride 1, 3 wide); fewer go pixel by pixel."""
    x, kernel, bias = _random_case(rng, (2, 5, 15, 16, 3, 3, 1), dtype)
    wide = depthwise.depthwise_forward(x, kernel, bias, activation="relu")  # 13 outputs per row: one run
    narrow = depthwise.depthwise_forward(x[:, :, :7], kernel, bias, activation="relu")  # 5 per row
    np.testing.assert_array_equal(wide[:, :, :5], narrow)


def test_relu_keeps_nan_and_matches_epilogue_rule(rng):
    x, kernel, _ = _random_case(rng, (1, 4, 4, 40, 3, 3, 1), np.float32)
    x[0, 1, 1, :] = np.nan
    fused = depthwise.depthwise_forward(x, kernel, None, 1, "same", 1, "relu")
    plain = depthwise.depthwise_forward(x, kernel, None, 1, "same", 1)
    np.testing.assert_array_equal(fused, activation_forward(plain, "relu"))
    assert np.isnan(fused).any()


def test_need_dx_false_and_out_buffers(rng):
    x, kernel, bias = _random_case(rng, (2, 6, 6, 5, 3, 3, 2))
    dz = rng.standard_normal((2, 4, 4, 10))
    full = depthwise.depthwise_backward(x, kernel, dz)
    dx, dkernel, dbias = depthwise.depthwise_backward(x, kernel, dz, need_dx=False)
    assert dx is None
    np.testing.assert_array_equal(dkernel, full[1])
    out = (np.empty_like(x), np.empty_like(kernel), np.empty(10))
    got = depthwise.depthwise_backward(x, kernel, dz, out=out)
    assert all(g is o for g, o in zip(got, out))
    y = np.empty((2, 4, 4, 10))
    assert depthwise.depthwise_forward(x, kernel, bias, out=y) is y


def test_empty_batch_returns_empty_results(rng):
    x = np.zeros((0, 5, 5, 2), np.float32)
    kernel = rng.standard_normal((3, 3, 2, 2)).astype(np.float32)
    y = depthwise.depthwise_forward(x, kernel, padding="same")
    assert y.shape == (0, 5, 5, 4)
    dx, dkernel, dbias = depthwise.depthwise_backward(x, kernel, y, padding="same")
    assert dx.shape == x.shape and not dkernel.any() and not dbias.any()


def test_generic_and_avx2_variants_agree(rng, tmp_path):
    """The portable loops (CONVX_ISA=generic, another process) give the AVX2 results up to rounding."""
    x, kernel, bias = _random_case(rng, (2, 9, 8, 45, 3, 3, 1), np.float32)
    dz = rng.standard_normal((2, 5, 4, 45)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x, kernel=kernel, bias=bias, dz=dz)
    script = (
        "import sys, numpy as np\n"
        "from convx._kernels import depthwise as d\n"
        "a = np.load(sys.argv[1])\n"
        "y = d.depthwise_forward(a['x'], a['kernel'], a['bias'], 2, 'same', 1, 'relu')\n"
        "g = d.depthwise_backward(a['x'], a['kernel'], a['dz'], 2, 'same', 1)\n"
        "np.savez(sys.argv[2], y=y, dx=g[0], dk=g[1], db=g[2])\n"
    )
    results = {}
    for isa in ("generic", "avx2"):
        env = dict(os.environ, CONVX_ISA=isa)
        subprocess.run([sys.executable, "-c", script, str(tmp_path / "in.npz"), str(tmp_path / f"{isa}.npz")],
                       check=True, env=env)
        results[isa] = np.load(tmp_path / f"{isa}.npz")
    for key in ("y", "dx", "dk", "db"):
        np.testing.assert_allclose(results["generic"][key], results["avx2"][key], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("multiplier", [1, 2])
def test_results_are_bit_identical_for_any_thread_count(rng, dtype, multiplier):
    x, kernel, bias = _random_case(rng, (8, 20, 19, 24, 3, 3, multiplier), dtype)
    dz = rng.standard_normal((8, 10, 10, 24 * multiplier)).astype(dtype)
    assert_same_for_any_thread_count(lambda: (
        (depthwise.depthwise_forward(x, kernel, bias, 2, "same", 1, "relu"),)
        + depthwise.depthwise_backward(x, kernel, dz, 2, "same", 1)
        + (depthwise.column_sums(dz),)))


def test_column_sums(rng):
    m = rng.standard_normal((37, 5, 3, 19))
    np.testing.assert_allclose(depthwise.column_sums(m), m.reshape(-1, 19).sum(0), rtol=1e-12)
    big = rng.standard_normal((300, 40, 24)).astype(np.float32)
    np.testing.assert_allclose(depthwise.column_sums(big), big.reshape(-1, 24).sum(0, dtype=np.float64), rtol=1e-4)
    assert_same_for_any_thread_count(lambda: depthwise.column_sums(big))
    assert not depthwise.column_sums(np.zeros((0, 3))).any()


# (N, H, W, C_in, KH, KW, filters, strides, padding, output_padding, dilation)
TRANSPOSE_CASES = [
    (2, 4, 5, 3, 3, 3, 2, (2, 2), "valid", None, (1, 1)),
    (1, 4, 5, 3, 3, 3, 2, (2, 2), "same", None, (1, 1)),
    (2, 3, 4, 2, 3, 3, 3, (2, 2), "same", (1, 1), (1, 1)),
    (2, 3, 3, 2, 2, 4, 2, (3, 2), "valid", (2, 1), (1, 1)),
    (1, 5, 5, 2, 3, 3, 2, (1, 1), "same", None, (2, 2)),
    (2, 3, 3, 40, 3, 3, 20, (2, 2), "same", None, (1, 1)),  # depth over the GEMM's K block
]


def _transpose_geometry(case):
    n, h, w, cin, kh, kw, f, strides, padding, op, dil = case
    size = tuple(depthwise.conv_transpose_output_length(v, k, s, d, padding, None if op is None else p)
                 for v, k, s, d, p in zip((h, w), (kh, kw), strides, dil, op or (0, 0)))
    return size, dict(strides=strides, padding=padding, dilation=dil)


@pytest.mark.parametrize("case", TRANSPOSE_CASES)
def test_conv_transpose_is_the_conv_input_gradient_and_matches_pytorch(rng, torch, case):
    n, h, w, cin, kh, kw, f = case[:7]
    size, geometry = _transpose_geometry(case)
    x = rng.standard_normal((n, h, w, cin))
    kernel = rng.standard_normal((kh, kw, f, cin))
    bias = rng.standard_normal(f)
    y = depthwise.conv_transpose_forward(x, kernel, size, bias, **geometry)
    # the input gradient of the convolution from y's shape to x's shape
    dx, _, _ = conv.conv2d_backward(np.zeros((n,) + size + (f,)), kernel, x, **geometry)
    np.testing.assert_allclose(y, dx + bias, rtol=1e-12, atol=1e-12)
    # PyTorch: conv_transpose2d, then TensorFlow's padding cropped off
    (top, _), (left, _) = (_same_pad(s, k, st, d, geometry["padding"])
                           for s, k, st, d in zip(size, (kh, kw), geometry["strides"], geometry["dilation"]))
    yt = torch.nn.functional.conv_transpose2d(torch.tensor(x).permute(0, 3, 1, 2),
                                              torch.tensor(kernel).permute(3, 2, 0, 1),
                                              stride=geometry["strides"], dilation=geometry["dilation"])
    full = yt.permute(0, 2, 3, 1).numpy()
    ref = np.zeros((n,) + size + (f,))
    rows, cols = min(size[0], full.shape[1] - top), min(size[1], full.shape[2] - left)
    ref[:, :rows, :cols] = full[:, top:top + rows, left:left + cols]
    np.testing.assert_allclose(y, ref + bias, rtol=1e-10, atol=1e-10)


def test_conv_transpose_activation_and_thread_identity(rng):
    case = (6, 12, 11, 16, 3, 3, 24, (2, 2), "same", (1, 0), (1, 1))
    size, geometry = _transpose_geometry(case)
    x = rng.standard_normal((6, 12, 11, 16)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 24, 16)).astype(np.float32)
    bias = rng.standard_normal(24).astype(np.float32)
    plain = depthwise.conv_transpose_forward(x, kernel, size, bias, **geometry)
    fused = depthwise.conv_transpose_forward(x, kernel, size, bias, activation="tanh", **geometry)
    np.testing.assert_array_equal(fused, activation_forward(plain, "tanh"))
    assert_same_for_any_thread_count(
        lambda: depthwise.conv_transpose_forward(x, kernel, size, bias, activation="relu", **geometry))


class TestBadInput:
    def setup_method(self):
        self.x = np.zeros((2, 5, 5, 3), np.float32)
        self.k = np.zeros((3, 3, 3, 2), np.float32)

    def test_wrong_type_and_dtype(self):
        with pytest.raises(TypeError, match="x must be a numpy.ndarray, got list"):
            depthwise.depthwise_forward([[1.0]], self.k)
        with pytest.raises(TypeError, match="kernel must have dtype float32"):
            depthwise.depthwise_forward(self.x, self.k.astype(np.float64))

    def test_channel_mismatch(self):
        with pytest.raises(ValueError, match=r"kernel must have C = 3 .* got kernel shape \(3, 3, 2, 2\)"):
            depthwise.depthwise_forward(self.x, np.zeros((3, 3, 2, 2), np.float32))

    def test_bias_and_dz_shapes(self):
        with pytest.raises(ValueError, match=r"bias must have shape \(6,\), got \(3,\)"):
            depthwise.depthwise_forward(self.x, self.k, np.zeros(3, np.float32))
        with pytest.raises(ValueError, match=r"dz must have shape \(2, 3, 3, 6\)"):
            depthwise.depthwise_backward(self.x, self.k, np.zeros((2, 3, 3, 3), np.float32))

    @pytest.mark.parametrize("arg", ["strides", "dilation"])
    def test_strides_and_dilation_at_least_one(self, arg):
        with pytest.raises(ValueError, match=f"{arg} must be >= 1"):
            depthwise.depthwise_forward(self.x, self.k, **{arg: (1, -1)})

    def test_window_larger_than_input(self):
        with pytest.raises(ValueError, match="empty output"):
            depthwise.depthwise_forward(self.x, np.zeros((7, 7, 3, 1), np.float32))

    def test_kernel_too_tall(self):
        with pytest.raises(ValueError, match="kernel height must be <= 64, got 65"):
            depthwise.depthwise_forward(np.zeros((1, 70, 3, 1)), np.zeros((65, 1, 1, 1)))

    def test_any_kernel_width(self, rng):
        x, kernel = rng.standard_normal((1, 2, 80, 2)), rng.standard_normal((2, 70, 2, 1))
        y = depthwise.depthwise_forward(x, kernel)
        want = [[sum(np.correlate(x[0, i, :, c], kernel[i, :, c, 0], "valid") for i in range(2)) for c in range(2)]]
        np.testing.assert_allclose(y[0, 0], np.transpose(want[0]), rtol=1e-12)
        assert depthwise.depthwise_backward(x, kernel, y)[1].shape == kernel.shape

    def test_transpose_output_size_must_fit(self):
        with pytest.raises(ValueError, match=r"output_size \(9, 9\) does not fit x of spatial size \(5, 5\)"):
            depthwise.conv_transpose_forward(self.x, np.zeros((3, 3, 2, 3), np.float32), (9, 9), strides=1)
