"""The packed GEMM: every transpose combination and edge size against NumPy, on every SIMD variant."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from convx._kernels import gemm
from thread_identity import assert_same_for_any_thread_count

SIZES = [(1, 1, 1), (7, 5, 3), (13, 17, 300), (150, 70, 513), (5, 2000, 40), (300, 9, 1)]


def _reference(a, b, ta, tb):
    return (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, n, k", SIZES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
def test_gemm_matches_numpy(rng, dtype, m, n, k, trans_a, trans_b):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    expected = _reference(a, b, trans_a, trans_b) + 0.5 * c
    gemm.gemm(a, b, c, trans_a, trans_b, beta=0.5)
    tol = 2e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(c, expected, rtol=0, atol=tol * np.sqrt(k) * max(1.0, np.abs(expected).max()))


def test_beta_zero_ignores_nan_in_output(rng):
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    c = np.full((4, 5), np.nan)
    np.testing.assert_allclose(gemm.gemm(a, b, c), a @ b, rtol=1e-13)


def test_k_zero_gives_beta_times_c():
    c = np.ones((2, 3))
    gemm.gemm(np.zeros((2, 0)), np.zeros((0, 3)), c, beta=2.0)
    np.testing.assert_array_equal(c, 2.0)


def test_bit_identical_for_any_thread_count(rng):
    a = rng.standard_normal((333, 517)).astype(np.float32)
    b = rng.standard_normal((517, 291)).astype(np.float32)
    wide = rng.standard_normal((517, 1000)).astype(np.float32)
    # few rows (above the 2^23 multiply-add parallel threshold): threads split the columns
    assert_same_for_any_thread_count(lambda: (gemm.gemm(a, b), gemm.gemm(a[:20], wide)))


def test_simd_variant_is_reported():
    assert gemm.simd_variant() in gemm.supported_variants()
    assert "generic" in gemm.supported_variants()


@pytest.mark.parametrize("variant", ["generic", "avx2", "avx512", "neon"])
def test_every_variant_runs_the_kernel_oracles(variant):
    """Re-run the GEMM, conv, dense and pool tests in a child process forced to each variant."""
    if variant not in gemm.supported_variants():
        pytest.skip(f"this CPU cannot run the {variant} variant")
    env = dict(os.environ, CONVX_ISA=variant)
    here = os.path.dirname(__file__)
    check = f"from convx._kernels import gemm; assert gemm.simd_variant() == {variant!r}, gemm.simd_variant()"
    subprocess.run([sys.executable, "-c", check], env=env, check=True)
    tests = [os.path.join(here, name) for name in ("test_conv.py", "test_dense.py", "test_pool.py")]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests, "-k", "not variant",
         os.path.join(here, "test_gemm.py")],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


CSRC = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "src", "convx", "_kernels", "csrc")
ARM64_TOOLS = ("aarch64-linux-gnu-gcc", "qemu-aarch64")


@pytest.mark.parametrize("variant", ["neon", "generic"])
def test_arm64_microkernels_under_qemu(variant, tmp_path):
    """The arm64 build's GEMM (NEON micro-kernels, or the generic ones) cross-compiled and run under qemu.

    Needs the checkout's C sources and Debian's gcc-aarch64-linux-gnu and qemu-user; .ci/run installs
    them and sets CONVX_REQUIRE_ARM64=1, which turns their absence into a failure.
    """
    missing = [tool for tool in ARM64_TOOLS if shutil.which(tool) is None]
    if not os.path.isdir(CSRC):
        missing.append("the checkout's src/convx/_kernels/csrc")
    if missing:
        if os.environ.get("CONVX_REQUIRE_ARM64") == "1":
            pytest.fail(f"CONVX_REQUIRE_ARM64=1 but missing: {missing}")
        pytest.skip(f"needs {missing}")
    exe = tmp_path / "neon_gemm_check"
    sources = [os.path.join(os.path.dirname(__file__), "neon_gemm_check.c"), os.path.join(CSRC, "gemm.c"),
               os.path.join(CSRC, "cpu_features.c")]
    subprocess.run(["aarch64-linux-gnu-gcc", "-O3", "-fno-math-errno", "-fopenmp", "-Wall", "-Wno-unused-function",
                    "-Werror", "-I", CSRC, *sources, "-o", str(exe), "-lm"], check=True, timeout=300)
    result = subprocess.run(["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", str(exe)], capture_output=True,
                            text=True, timeout=600, env=dict(os.environ, CONVX_ISA=variant))
    assert result.stdout.startswith(f"isa {variant}\n"), result.stdout[:200]
    assert result.returncode == 0 and result.stdout.rstrip().endswith("0 failures"), result.stdout[-3000:]


@pytest.mark.parametrize(
    "call, exc, message",
    [
        (lambda: gemm.gemm(np.zeros((2, 3)), np.zeros((4, 2))), ValueError, r"b must have 3 rows to match a"),
        (lambda: gemm.gemm(np.zeros((2, 3)), np.zeros((3, 2), np.float32)), TypeError, "b must have dtype float64"),
        (lambda: gemm.gemm(np.zeros(3), np.zeros((3, 2))), ValueError, "a must be 2-D"),
        (lambda: gemm.gemm(np.zeros((2, 3)), np.zeros((3, 2)), np.zeros((2, 3))), ValueError, r"c must have shape \(2, 2\)"),
        (lambda: gemm.gemm(np.zeros((2, 3)), np.zeros((3, 2)), beta=1.0), ValueError, "c must be given when beta"),
    ],
)
def test_bad_input(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, k", [(10, 128), (70, 300), (33, 600), (128, 5)])
def test_few_rows_read_b_in_place_with_the_packed_bits(rng, dtype, n, k):
    """A product of a few rows (B read in place, unpacked) gives each row the bits it gets inside a product
    of many rows (B packed): the result of a row never depends on how many rows come with it."""
    a = rng.standard_normal((400, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    many = gemm.gemm(a, b)
    for rows in (1, 3, 8, 17, 32):
        np.testing.assert_array_equal(gemm.gemm(a[:rows], b), many[:rows])


def test_avx512_and_avx2_variants_give_the_same_bits(tmp_path):
    """The avx512 micro-kernels repeat the AVX2 kernels' chain of operations for every value."""
    if "avx512" not in gemm.supported_variants():
        pytest.skip("this CPU cannot run the avx512 variant")
    script = (
        "import sys, numpy as np; from convx._kernels import gemm, conv, dense\n"
        "rng = np.random.default_rng(5)\n"
        "a = rng.standard_normal((300, 700)).astype(np.float32); b = rng.standard_normal((700, 45)).astype(np.float32)\n"
        "x = rng.standard_normal((3, 12, 12, 16)).astype(np.float32)\n"
        "w = rng.standard_normal((3, 3, 16, 40)).astype(np.float32)\n"
        "np.savez(sys.argv[1], g=gemm.gemm(a, b), g1=gemm.gemm(a[:5], b), c=conv.conv2d_forward(x, w),\n"
        "         c1=conv.conv2d_forward(x[:1, :6, :6], w), d=dense.dense_forward(a[:2], b))\n"
    )
    results = {}
    for variant in ("avx2", "avx512"):
        path = tmp_path / f"{variant}.npz"
        subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=300,
                       env=dict(os.environ, CONVX_ISA=variant))
        results[variant] = np.load(path)
    for key in results["avx2"].files:
        np.testing.assert_array_equal(results["avx512"][key], results["avx2"][key], err_msg=key)
