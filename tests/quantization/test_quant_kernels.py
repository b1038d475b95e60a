"""The int8 kernels against exact integer NumPy references: every variant this CPU runs, bit for bit."""

import os
import shutil
import subprocess

import numpy as np
import pytest

from convx._kernels import quant
from quant_reference import conv_sums, epilogue, max_pool, quantize
from thread_identity import assert_same_for_any_thread_count

ISAS = quant.supported_isas()


def _case(rng, n, h, w, c, kh, kw, cout, low=0, high=256):
    x = rng.integers(low, high, size=(n, h, w, c), dtype=np.uint8)
    kernel = rng.integers(-127, 128, size=(kh, kw, c, cout), dtype=np.int8)
    return x, kernel


def _run(x, kernel, isa, zp=3, pool=(1, 1), u8=False, relu=True, **geometry):
    kh, kw, c, cout = kernel.shape
    packed = quant.pack_weights(kernel.reshape(-1, cout))
    rng = np.random.default_rng(1)
    offset = rng.integers(-5000, 5000, size=cout).astype(np.int32)
    if u8:
        args = dict(scale=rng.uniform(1e-4, 1e-2, size=cout).astype(np.float32), out_dtype="uint8", out_zero_point=7)
    else:
        args = dict(scale=rng.uniform(1e-4, 1e-2, size=cout).astype(np.float32))
    got = quant.conv2d(x, zp, packed, kernel.shape, offset, relu=relu, pool_size=pool, isa=isa, **args, **geometry)
    sums = conv_sums(x, kernel, zero_point=zp, **geometry)
    want = epilogue(max_pool(sums, pool), offset, relu=relu, **args)
    return got, want


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("shape", [(1, 5, 7, 3, 3, 3, 5), (2, 9, 8, 17, 3, 2, 33), (3, 6, 6, 1, 1, 1, 16),
                                   (1, 4, 4, 64, 3, 3, 40)])
def test_conv_bit_exact_odd_shapes(isa, shape):
    rng = np.random.default_rng(sum(shape))
    x, kernel = _case(rng, *shape)
    for u8 in (False, True):
        got, want = _run(x, kernel, isa, u8=u8)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("isa", ISAS)
def test_conv_strides_dilation_same_padding(isa):
    rng = np.random.default_rng(5)
    x, kernel = _case(rng, 2, 11, 10, 5, 3, 3, 18)
    for geometry in (dict(strides=(2, 2), padding="same"), dict(dilation=(2, 2), padding="same"),
                     dict(strides=(2, 1), padding="valid")):
        got, want = _run(x, kernel, isa, zp=200, **geometry)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("pool", [(2, 2), (3, 2)])
def test_fused_conv_relu_maxpool(isa, pool):
    rng = np.random.default_rng(7)
    x, kernel = _case(rng, 3, 13, 12, 6, 3, 3, 20)
    for u8 in (False, True):
        got, want = _run(x, kernel, isa, pool=pool, u8=u8)
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("xv,wv", [(255, 127), (255, -128), (255, -127), (127, 127), (0, -128), (128, 127)])
def test_saturation_edge_values(isa, xv, wv):
    """Constant inputs at the ends of the ranges: the u8 x s8 pair sums that saturate vpmaddubsw's int16."""
    x = np.full((1, 6, 6, 40), xv, dtype=np.uint8)
    kernel = np.full((3, 3, 40, 24), wv, dtype=np.int8)
    for u8 in (False, True):
        got, want = _run(x, kernel, isa, zp=0, u8=u8, relu=False)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("isa", ISAS)
def test_alternating_extremes(isa):
    rng = np.random.default_rng(11)
    x = rng.choice(np.array([0, 127, 128, 255], dtype=np.uint8), size=(2, 5, 5, 33))
    kernel = rng.choice(np.array([-128, -127, 0, 127], dtype=np.int8), size=(3, 3, 33, 17))
    got, want = _run(x, kernel, isa, relu=False)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("n,k,units", [(1, 7, 3), (5, 64, 16), (33, 129, 45), (256, 1152, 128)])
def test_dense_bit_exact(isa, n, k, units):
    rng = np.random.default_rng(n + k)
    x = rng.integers(0, 256, size=(n, k), dtype=np.uint8)
    kernel = rng.integers(-128, 128, size=(k, units), dtype=np.int8)
    offset = rng.integers(-100, 100, size=units).astype(np.int32)
    scale = rng.uniform(0.001, 0.01, size=units).astype(np.float32)
    got = quant.dense(x, 9, quant.pack_weights(kernel), units, offset, scale=scale, isa=isa)
    sums = x.astype(np.int64) @ kernel.astype(np.int64)
    np.testing.assert_array_equal(got, epilogue(sums, offset, scale=scale))


def test_variants_agree_and_thread_counts():
    rng = np.random.default_rng(3)
    x, kernel = _case(rng, 8, 14, 14, 16, 3, 3, 32)
    results = [_run(x, kernel, isa, pool=(2, 2))[0] for isa in ISAS]
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    assert_same_for_any_thread_count(lambda: _run(x, kernel, None, pool=(2, 2), u8=True)[0])


def test_quantize_rounding_and_clipping():
    x = np.array([-1.0, 0.0, 0.5, 1.5, 2.5, 1e30, -1e30, np.nan, np.inf, 300.0, 127.4], dtype=np.float32)
    for zp, qmax in ((0, 255), (10, 127), (128, 255)):
        np.testing.assert_array_equal(quant.quantize(x, 1.0, zp, qmax), quantize(x, 1.0, zp, qmax))
    rng = np.random.default_rng(0)
    y = rng.normal(size=(3, 70000)).astype(np.float32)
    np.testing.assert_array_equal(quant.quantize(y, 0.013, 128), quantize(y, 0.013, 128))


def test_bad_arguments():
    x = np.zeros((1, 4, 4, 2), np.uint8)
    kernel = np.zeros((3, 3, 2, 4), np.int8)
    packed = quant.pack_weights(kernel.reshape(-1, 4))
    offset = np.zeros(4, np.int32)
    scale = np.ones(4, np.float32)
    with pytest.raises(TypeError, match="x must have dtype uint8"):
        quant.conv2d(x.astype(np.float32), 0, packed, kernel.shape, offset, scale=scale)
    with pytest.raises(ValueError, match="channels"):
        quant.conv2d(np.zeros((1, 4, 4, 3), np.uint8), 0, packed, kernel.shape, offset, scale=scale)
    with pytest.raises(ValueError, match="packed"):
        quant.conv2d(x, 0, packed[:-1], kernel.shape, offset, scale=scale)
    with pytest.raises(ValueError, match="out_dtype"):
        quant.conv2d(x, 0, packed, kernel.shape, offset, scale, out_dtype="int16")
    with pytest.raises(ValueError, match="x_zero_point"):
        quant.conv2d(x, 256, packed, kernel.shape, offset, scale=scale)
    with pytest.raises(ValueError, match="empty"):
        quant.conv2d(x, 0, packed, kernel.shape, offset, scale=scale, pool_size=(3, 3))
    with pytest.raises(ValueError, match="isa"):
        quant.conv2d(x, 0, packed, kernel.shape, offset, scale=scale, isa="sse9")
    with pytest.raises(ValueError, match="scale must be a positive"):
        quant.quantize(np.zeros(3, np.float32), 0.0, 0)


CSRC = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "src", "convx", "_kernels", "csrc")
ARM64_TOOLS = ("aarch64-linux-gnu-gcc", "qemu-aarch64")


def test_arm64_neon_dot_under_qemu(tmp_path):
    """The arm64 build's int8 convolution (NEON sdot micro-kernel) against its generic C one, under qemu.

    Needs Debian's gcc-aarch64-linux-gnu and qemu-user, as the float NEON check in test_gemm.py;
    CONVX_REQUIRE_ARM64=1 (set by .ci/run) turns their absence into a failure."""
    missing = [tool for tool in ARM64_TOOLS if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CONVX_REQUIRE_ARM64") == "1":
            pytest.fail(f"CONVX_REQUIRE_ARM64=1 but missing: {missing}")
        pytest.skip(f"needs {missing}")
    exe = tmp_path / "quant_arm64_check"
    sources = [os.path.join(os.path.dirname(__file__), "quant_arm64_check.c"), os.path.join(CSRC, "quant.c"),
               os.path.join(CSRC, "cpu_features.c")]
    subprocess.run(["aarch64-linux-gnu-gcc", "-O3", "-fno-math-errno", "-fopenmp", "-Wall", "-Wno-unused-function",
                    "-Werror", "-I", CSRC, *sources, "-o", str(exe), "-lm"], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k != "CONVX_ISA"}  # an x86 cap (avx2) would pick generic there
    result = subprocess.run(["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", str(exe)], capture_output=True,
                            text=True, timeout=600, env=env)
    assert result.stdout.startswith("isa neon_dot\n"), result.stdout[:200]
    assert result.returncode == 0 and result.stdout.rstrip().endswith("0 failures"), result.stdout[-3000:]
