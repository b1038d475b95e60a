"""Tests for convx._kernels.activations (forward epilogue and backward kernels)."""

import os
import warnings

import numpy as np
import pytest

from convx._kernels.activations import (
    ACTIVATION_CODES,
    activation_backward,
    activation_code,
    activation_forward,
    needs_input,
    simd_variant,
)
from gradcheck import check_gradient
from thread_identity import assert_same_for_any_thread_count

ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "softmax"]


def _away_from_kink(rng, shape):
    """Values with |x| in [0.1, 2]: relu's kink at 0 would break finite differences."""
    x = rng.uniform(0.1, 2.0, size=shape)
    return x * rng.choice([-1.0, 1.0], size=shape)



@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_backward_matches_finite_differences(rng, activation):
    x = _away_from_kink(rng, (3, 2, 5))
    w = rng.standard_normal(x.shape)
    y = activation_forward(x, activation)
    dx = activation_backward(y, w, activation)
    check_gradient(lambda: float(np.sum(activation_forward(x, activation) * w)), x, dx)


TORCH_FORWARD = {
    "linear": lambda F, t: t,
    "relu": lambda F, t: F.relu(t),
    "sigmoid": lambda F, t: F.sigmoid(t),
    "tanh": lambda F, t: F.tanh(t),
    "softmax": lambda F, t: F.softmax(t, dim=-1),
}


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_matches_torch_float32(rng, torch, activation):
    # float32 against PyTorch: forward within 1e-6 absolute (outputs are O(1)),
    # backward within 1e-6 absolute / 1e-5 relative.
    import torch.nn.functional as F

    x = (3 * rng.standard_normal((4, 3, 3, 6))).astype(np.float32)
    w = rng.standard_normal(x.shape).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    yt = TORCH_FORWARD[activation](F, xt)
    (yt * torch.tensor(w)).sum().backward()

    y = activation_forward(x, activation)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(activation_backward(y, w, activation), xt.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_inputs_are_stable(dtype):
    x = np.array([[-1e4, -100.0, 0.0, 100.0, 1e4]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = activation_forward(x, "sigmoid")
        sm = activation_forward(x, "softmax")
        t = activation_forward(x, "tanh")
    assert s[0, 0] == 0.0 and s[0, -1] == 1.0 and s[0, 2] == 0.5
    assert np.all(np.isfinite(sm)) and sm[0, -1] == 1.0 and np.sum(sm) == 1.0
    np.testing.assert_array_equal(t[0, [0, -1]], [-1.0, 1.0])


def test_softmax_rows_sum_to_one_and_shift_invariant(rng):
    x = rng.standard_normal((5, 7))
    y = activation_forward(x, "softmax")
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(activation_forward(x + 500.0, "softmax"), y, rtol=1e-12)


def test_in_place_forward_and_backward(rng):
    x = rng.standard_normal((4, 6))
    expected = np.tanh(x)
    out = activation_forward(x, "tanh", out=x)
    assert out is x
    np.testing.assert_allclose(x, expected, rtol=1e-15)

    dy = rng.standard_normal(x.shape)
    expected_dx = dy * (1 - x * x)
    dx = activation_backward(x, dy, "tanh", out=dy)
    assert dx is dy
    np.testing.assert_allclose(dy, expected_dx, rtol=1e-14)


def test_softmax_backward_in_place_on_y(rng):
    y = activation_forward(rng.standard_normal((3, 5)), "softmax")
    dy = rng.standard_normal(y.shape)
    expected = y * (dy - np.sum(dy * y, axis=-1, keepdims=True))
    activation_backward(y, dy, "softmax", out=y)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-15)


def test_out_given_and_non_contiguous_input(rng):
    base = rng.standard_normal((4, 10))
    x = base[:, ::2]
    out = np.empty((4, 5))
    y = activation_forward(x, "relu", out=out)
    assert y is out
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    np.testing.assert_array_equal(base[:, ::2], x)  # input untouched


def test_input_is_not_modified_without_out(rng):
    x = rng.standard_normal((3, 4))
    saved = x.copy()
    activation_forward(x, "sigmoid")
    np.testing.assert_array_equal(x, saved)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_empty_batch(activation):
    for dtype in (np.float32, np.float64):
        x = np.zeros((0, 4, 4, 3), dtype=dtype)
        y = activation_forward(x, activation)
        assert y.shape == x.shape and y.dtype == dtype
        dx = activation_backward(y, y, activation)
        assert dx.shape == x.shape and dx.dtype == dtype


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_deterministic_across_thread_counts(rng, activation):
    # 600 * 257 elements is above the kernels' parallel threshold (131072).
    x = rng.standard_normal((600, 257)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)

    def forward_and_backward():
        y = activation_forward(x, activation)
        return y, activation_backward(y, dy, activation)

    assert_same_for_any_thread_count(forward_and_backward)


def test_zero_dimensional_input_keeps_its_shape():
    y = activation_forward(np.array(-3.0), "sigmoid")
    assert y.shape == () and y == pytest.approx(1 / (1 + np.exp(3.0)), rel=1e-15)
    assert activation_backward(y, np.array(2.0), "sigmoid").shape == ()


def test_activation_codes():
    assert activation_code(None) == 0
    assert [activation_code(a) for a in ACTIVATIONS] == [0, 1, 2, 3, 4]
    assert activation_code("ReLU") == 1
    assert sorted(ACTIVATION_CODES.values()) == list(range(20))  # enum convx_activation, CX_ACT_COUNT
    assert activation_forward(np.array([-1.0, 2.0]), None).tolist() == [-1.0, 2.0]


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match=r"'linear', 'relu', 'sigmoid', 'tanh', 'softmax'.*got 'geluu'"):
        activation_forward(np.zeros(3), "geluu")
    with pytest.raises(ValueError, match="got 'swish'"):  # the kernels know canonical names; 'swish' is convx.activations'
        activation_backward(np.zeros(3), np.zeros(3), "swish")
    with pytest.raises(TypeError, match="activation must be a str or None, got int"):
        activation_code(3)


def test_bad_arrays():
    x = np.zeros((2, 3))
    with pytest.raises(TypeError, match="x must be a numpy.ndarray, got list"):
        activation_forward([1.0, 2.0], "relu")
    with pytest.raises(TypeError, match="x must have dtype float32 or float64, got int64"):
        activation_forward(np.zeros(3, dtype=np.int64), "relu")
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 3\), got \(3, 2\)"):
        activation_backward(x, np.zeros((3, 2)), "relu")
    with pytest.raises(TypeError, match="dy must have dtype float64.*got float32"):
        activation_backward(x, np.zeros((2, 3), np.float32), "relu")


def test_bad_out():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"out must have shape \(2, 3\), got \(3, 2\)"):
        activation_forward(x, "relu", out=np.zeros((3, 2)))
    with pytest.raises(TypeError, match="out must have dtype float64, got float32"):
        activation_forward(x, "relu", out=np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="out must be a writeable C-contiguous array"):
        activation_forward(x, "relu", out=np.zeros((3, 2)).T)
    with pytest.raises(TypeError, match="out must be a numpy.ndarray or None, got list"):
        activation_backward(x, x, "relu", out=[0.0])


# ----- the modern activations (issue 14) --------------------------------------------------------------------------

# name -> (kernel name, params) ; every elementwise code, parameterised ones with non-default values too
ELEMENTWISE = {
    "softplus": ("softplus", None), "softsign": ("softsign", None), "elu": ("elu", None),
    "elu_alpha_0.5": ("elu", (0.5,)), "elu_alpha_-0.5": ("elu", (-0.5,)), "selu": ("selu", None),
    "gelu": ("gelu", None), "gelu_tanh": ("gelu_tanh", None), "silu": ("silu", None),
    "hard_sigmoid": ("hard_sigmoid", None), "hard_silu": ("hard_silu", None), "leaky_relu": ("leaky_relu", None),
    "leaky_relu_0.3": ("leaky_relu", (0.3,)), "leaky_relu_-0.1": ("leaky_relu", (-0.1,)), "relu6": ("relu6", None),
    "mish": ("mish", None), "exponential": ("exponential", None),
    "relu_general": ("relu_general", (0.1, 4.5, 0.5)), "relu_max": ("relu_general", (0.0, 1.5, 0.0)),
    "relu_slope": ("relu_general", (0.25, np.inf, 0.0)),
}
ROWS = {"log_softmax": ("log_softmax", None)}
KINKS = (-3.0, 0.0, 0.5, 1.5, 3.0, 4.5, 6.0)  # hard_sigmoid, relu6, relu_general corners


def _np_reference(name, x):
    """float64 formulas (independent of the C code)."""
    from math import erf

    sig = 1 / (1 + np.exp(-x))
    sp = np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)
    a, s = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    ref = {
        "softplus": sp, "softsign": x / (1 + np.abs(x)), "elu": np.where(x > 0, x, np.expm1(x)),
        "elu_alpha_0.5": np.where(x > 0, x, 0.5 * np.expm1(x)), "elu_alpha_-0.5": np.where(x > 0, x, -0.5 * np.expm1(x)),
        "selu": s * np.where(x > 0, x, a * np.expm1(x)),
        "gelu": 0.5 * x * (1 + np.vectorize(erf)(x / np.sqrt(2))),
        "gelu_tanh": 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))),
        "silu": x * sig, "hard_sigmoid": np.clip(x + 3, 0, 6) / 6, "hard_silu": x * np.clip(x + 3, 0, 6) / 6,
        "leaky_relu": np.where(x > 0, x, 0.2 * x), "leaky_relu_0.3": np.where(x > 0, x, 0.3 * x),
        "leaky_relu_-0.1": np.where(x > 0, x, -0.1 * x), "relu6": np.clip(x, 0, 6), "mish": x * np.tanh(sp),
        "exponential": np.exp(x),
        "relu_general": np.clip(np.where(x > 0.5, x, 0), 0, 4.5) - 0.1 * np.maximum(0.5 - x, 0),
        "relu_max": np.clip(x, 0, 1.5), "relu_slope": np.where(x > 0, x, 0.25 * x),
    }
    return ref[name]


def _smooth_points(rng, shape):
    x = rng.uniform(-5, 7, size=shape)
    for k in KINKS:  # keep finite differences off the kinks
        x = np.where(np.abs(x - k) < 0.05, x + 0.1, x)
    return x


@pytest.mark.parametrize("case", sorted(ELEMENTWISE) + sorted(ROWS))
def test_new_activations_finite_differences_float64(rng, case):
    name, params = {**ELEMENTWISE, **ROWS}[case]
    x = _smooth_points(rng, (3, 2, 5))
    if name == "exponential":
        x = x / 3
    w = rng.standard_normal(x.shape)
    y = activation_forward(x, name, params=params)
    dx = activation_backward(y, w, name, x=x, params=params)
    check_gradient(lambda: float(np.sum(activation_forward(x, name, params=params) * w)), x, dx, rtol=1e-5, atol=1e-6)
    if not needs_input(name, params):  # works from the output alone
        np.testing.assert_array_equal(activation_backward(y, w, name, params=params), dx)


@pytest.mark.parametrize("case", sorted(ELEMENTWISE))
def test_new_activations_match_float64_formulas(rng, case):
    name, params = ELEMENTWISE[case]
    x = np.concatenate([rng.uniform(-9, 9, 200), np.linspace(-30, 30, 61), [0.0, -3.0, 3.0, 6.0]])
    if name == "exponential":
        x = x / 4
    y = activation_forward(x, name, params=params)
    np.testing.assert_allclose(y, _np_reference(case, x), rtol=2e-15, atol=1e-15)


TORCH_NEW = {
    "softplus": lambda F, t: F.softplus(t), "softsign": lambda F, t: F.softsign(t), "elu": lambda F, t: F.elu(t),
    "elu_alpha_0.5": lambda F, t: F.elu(t, alpha=0.5), "selu": lambda F, t: F.selu(t),
    "gelu": lambda F, t: F.gelu(t), "gelu_tanh": lambda F, t: F.gelu(t, approximate="tanh"),
    "silu": lambda F, t: F.silu(t), "hard_sigmoid": lambda F, t: F.hardsigmoid(t),
    "hard_silu": lambda F, t: F.hardswish(t), "leaky_relu": lambda F, t: F.leaky_relu(t, 0.2),
    "leaky_relu_0.3": lambda F, t: F.leaky_relu(t, 0.3), "relu6": lambda F, t: F.relu6(t),
    "mish": lambda F, t: F.mish(t), "exponential": lambda F, t: t.exp(),
    "log_softmax": lambda F, t: F.log_softmax(t, dim=-1),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(TORCH_NEW))
def test_new_activations_match_torch(rng, torch, case, dtype):
    import torch.nn.functional as F

    name, params = {**ELEMENTWISE, **ROWS}[case]
    x = _smooth_points(rng, (4, 3, 3, 6)).astype(dtype)
    if name == "exponential":
        x = x / 3
    w = rng.standard_normal(x.shape).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    yt = TORCH_NEW[case](F, xt)
    (yt * torch.tensor(w)).sum().backward()
    y = activation_forward(x, name, params=params)
    assert y.dtype == dtype
    tol = dict(rtol=2e-6, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    gtol = tol
    if dtype == np.float32:
        gtol = dict(rtol=1e-5, atol=1e-5)
    elif case in ("hard_sigmoid", "hard_silu"):
        gtol = dict(rtol=1e-7, atol=1e-7)  # PyTorch's backward uses the float constant 1.0f / 6.0f in float64 too
    np.testing.assert_allclose(activation_backward(y, w, name, x=x, params=params), xt.grad.numpy(), **gtol)


def _keras_reference():
    import os

    path = os.path.join(os.path.dirname(__file__), "data", "keras_activations.npz")
    return np.load(path)


KERAS_CASES = {**{k: v for k, v in ELEMENTWISE.items() if k in (
    "softplus", "softsign", "elu", "elu_alpha_0.5", "selu", "gelu", "gelu_tanh", "silu", "hard_sigmoid", "hard_silu",
    "leaky_relu", "leaky_relu_0.3", "relu6", "mish", "exponential", "relu_general")},
    "relu": ("relu", None), "sigmoid": ("sigmoid", None), "tanh": ("tanh", None), "softmax": ("softmax", None),
    "log_softmax": ("log_softmax", None)}


@pytest.mark.parametrize("case", sorted(KERAS_CASES))
def test_match_keras_float32(case):
    """Against Keras 3.15.1 with TensorFlow 2.21 (make_keras_activation_reference.py), float32: forward
    and the gradient of sum(f(x) * w), away from the kinks where the subgradient is a convention."""
    ref = _keras_reference()
    name, params = KERAS_CASES[case]
    x, w = ref["x"], ref["w"]
    y = activation_forward(x, name, params=params)
    scale = np.maximum(np.abs(ref[case]), 1.0)  # exponential reaches e^8
    np.testing.assert_array_less(np.abs(y - ref[case]) / scale, 2e-6)
    away = np.all([np.abs(x - k) > 1e-3 for k in KINKS], axis=0)
    dx = activation_backward(y, w, name, x=x, params=params)
    gscale = np.maximum(np.abs(ref[case + "_grad"]), 1.0)
    np.testing.assert_array_less((np.abs(dx - ref[case + "_grad"]) / gscale)[away], 1e-5)


@pytest.mark.parametrize("case", sorted(ELEMENTWISE) + ["log_softmax"])
def test_new_activations_same_for_any_thread_count(rng, case):
    # 300k elements: above the kernels' parallel threshold (131072)
    name, params = {**ELEMENTWISE, **ROWS}[case]
    x = rng.uniform(-6, 6, (600, 500)).astype(np.float32)
    w = rng.standard_normal(x.shape).astype(np.float32)

    def compute():
        y = activation_forward(x, name, params=params)
        return y, activation_backward(y, w, name, x=x, params=params)

    assert_same_for_any_thread_count(compute)


def test_needs_input_and_params_errors():
    assert needs_input("gelu") and needs_input("silu") and needs_input("mish") and needs_input("relu_general")
    assert not needs_input("elu") and not needs_input("relu6") and not needs_input("log_softmax")
    assert needs_input("elu", (-1.0,)) and needs_input("leaky_relu", (0.0,))
    with pytest.raises(ValueError, match="needs the forward input x, got x=None"):
        activation_backward(np.zeros(3), np.zeros(3), "gelu")
    with pytest.raises(ValueError, match="takes no parameters"):
        activation_forward(np.zeros(3), "gelu", params=(1.0,))
    with pytest.raises(ValueError, match="at most 1 parameters"):
        activation_forward(np.zeros(3), "elu", params=(1.0, 2.0))
    with pytest.raises(ValueError, match="must not be NaN"):
        activation_forward(np.zeros(3), "leaky_relu", params=(float("nan"),))
    with pytest.raises(ValueError, match=r"x must have shape \(3,\), got \(2,\)"):
        activation_backward(np.zeros(3), np.zeros(3), "silu", x=np.zeros(2))


def test_log_softmax_is_stable_and_consistent(rng):
    x = np.array([[-1e4, 0.0, 1e4], [1.0, 2.0, 3.0]])
    y = activation_forward(x, "log_softmax")
    assert np.all(np.isfinite(y)) and y[0, 2] == 0.0
    np.testing.assert_allclose(np.exp(y[1]), activation_forward(x[1], "softmax"), rtol=1e-15)


# ----- the AVX2 float32 kernels (csrc/activations_avx2.h) -----------------------------------------------------

VECTOR = ["sigmoid", "tanh", "elu", "selu", "softplus", "silu", "gelu", "gelu_tanh", "mish", "exponential"]


@pytest.mark.parametrize("name", VECTOR)
def test_a_value_does_not_depend_on_its_position(rng, name):
    """Tails go through the same vector formula (masked loads): any slice of a row gives the same bits,
    which is what makes a fused epilogue (rows of C_out) equal to the separate activation (flat blocks)."""
    x = rng.uniform(-6, 6, 37).astype(np.float32)
    w = rng.standard_normal(37).astype(np.float32)
    y = activation_forward(x, name)
    dx = activation_backward(y, w, name, x=x)
    for start, stop in [(0, 1), (3, 10), (5, 21), (30, 37), (1, 36)]:
        np.testing.assert_array_equal(activation_forward(x[start:stop].copy(), name), y[start:stop])
        np.testing.assert_array_equal(
            activation_backward(y[start:stop].copy(), w[start:stop].copy(), name, x=x[start:stop].copy()),
            dx[start:stop])


@pytest.mark.parametrize("name", VECTOR)
def test_extremes_and_nan(name):
    x = np.array([np.nan, -np.inf, np.inf, -1e4, -100, -88.5, 88.5, 100, 1e4, -0.0, 0.0], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = activation_forward(x, name)
    assert np.isnan(y[0]) and y[2] == (1.0 if name in ("sigmoid", "tanh") else np.inf)
    x64 = x[3:].astype(np.float64)
    with np.errstate(over="ignore"):
        big = {"silu": x64 / (1 + np.exp(-x64)), "exponential": np.exp(x64),
               "gelu_tanh": np.where(x64 > 0, x64, 0.0), "gelu": np.where(x64 > 0, x64, 0.0), "sigmoid": 1 / (1 + np.exp(-x64)), "tanh": np.tanh(x64),
                   "softplus": np.log1p(np.exp(-np.abs(x64))) + np.maximum(x64, 0),
                   "elu": np.where(x64 > 0, x64, np.expm1(np.minimum(x64, 0))),
                   "selu": 1.0507009873554804934193349852946 * np.where(
                       x64 > 0, x64, 1.6732632423543772848170429916717 * np.expm1(np.minimum(x64, 0))), "mish": np.where(x64 > 0, x64, 0.0)}[name]
        np.testing.assert_allclose(y[3:].astype(np.float64), big.astype(np.float32), rtol=1e-6, atol=1e-30)


def test_vector_and_generic_kernels_agree(rng, tmp_path):
    """CONVX_ISA=generic (scalar libm loops) against this process's choice, within 2 ulps-ish."""
    import subprocess
    import sys

    x = rng.uniform(-9, 9, 4096).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    script = (
        "import numpy as np, sys\n"
        "from convx._kernels.activations import activation_forward as f, activation_backward as b\n"
        "x = np.load(sys.argv[1])\n"
        "out = {n: f(x, n) for n in %r}\n"
        "out.update({n + '_grad': b(out[n], np.ones_like(x), n, x=x) for n in %r})\n"
        "np.savez(sys.argv[2], **out)\n" % (VECTOR, VECTOR)
    )
    env = {**os.environ, "CONVX_ISA": "generic"}
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "x.npy"), str(tmp_path / "g.npz")], env=env,
                   check=True)
    generic = np.load(tmp_path / "g.npz")
    for name in VECTOR:
        y = activation_forward(x, name)
        np.testing.assert_allclose(y, generic[name], rtol=1e-6, atol=5e-7, err_msg=name)
        np.testing.assert_allclose(activation_backward(y, np.ones_like(x), name, x=x), generic[name + "_grad"],
                                   rtol=2e-6, atol=5e-6, err_msg=name)


@pytest.mark.skipif(simd_variant() not in ("avx2", "avx512"), reason="the AVX2 activation kernels are not in use")
@pytest.mark.parametrize("name", ["tanh", "elu", "selu", "silu", "gelu", "gelu_tanh", "mish"])
def test_vector_kernels_keep_relative_accuracy_for_small_inputs(name):
    """No cancellation near 0 (tanh's and expm1's polynomials): within 3e-7 relative of float64 on
    x = -+[1e-30, 3], where the outputs are as small as the inputs (gelu's: 1e-6 near -3, where the
    gate comes from exp(-x^2 / 2) of a rounded x^2)."""
    mag = np.logspace(-30, np.log10(3), 4001)
    x = np.concatenate([-mag, mag]).astype(np.float32)
    x64 = x.astype(np.float64)
    a, s = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    sp = np.log1p(np.exp(-np.abs(x64))) + np.maximum(x64, 0)
    ref = {"tanh": np.tanh(x64), "elu": np.where(x64 > 0, x64, np.expm1(np.minimum(x64, 0))),
           "selu": s * np.where(x64 > 0, x64, a * np.expm1(np.minimum(x64, 0))), "silu": x64 / (1 + np.exp(-x64)),
           "gelu": _np_reference("gelu", x64),
           "gelu_tanh": x64 / (1 + np.exp(-2 * np.sqrt(2 / np.pi) * (x64 + 0.044715 * x64 ** 3))),
           "mish": x64 * np.tanh(sp)}[name]
    y = activation_forward(x, name).astype(np.float64)
    np.testing.assert_array_less(np.abs(y - ref) / np.abs(ref), 1e-6 if name.startswith("gelu") else 3e-7)
