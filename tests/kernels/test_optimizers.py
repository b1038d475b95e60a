"""Optimizer update kernels: Keras 3 rules (NumPy spec in float64), PyTorch oracle
(float32), bad input, determinism across thread counts, empty arrays."""

import itertools

import numpy as np
import pytest

from convx._kernels.optimizers import adam_update, rmsprop_update, sgd_update
from thread_identity import assert_same_for_any_thread_count

STEPS = 5
SHAPES = [(7,), (3, 4, 5), ()]


def _grads(rng, shape, dtype, steps=STEPS):
    """Gradients spanning several magnitudes so that epsilon terms matter."""
    scale = 10.0 ** rng.uniform(-3, 0, size=shape)
    return [np.asarray(rng.standard_normal(shape) * scale, dtype=dtype) for _ in range(steps)]


# ---- NumPy transcription of keras/src/optimizers/{sgd,adam,rmsprop}.py update_step ----

def keras_sgd(w, grads, lr, momentum, nesterov):
    w, m = w.copy(), np.zeros_like(w)
    for g in grads:
        if momentum != 0:
            m = m * momentum - g * lr
            w = w + (m * momentum - g * lr if nesterov else m)
        else:
            w = w - g * lr
    return w, m


def keras_adam(w, grads, lr, b1, b2, eps):
    w, m, v = w.copy(), np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        m = m + (g - m) * (1 - b1)
        v = v + (np.square(g) - v) * (1 - b2)
        w = w - (m * alpha) / (np.sqrt(v) + eps)
    return w, m, v


def keras_rmsprop(w, grads, lr, rho, momentum, eps, centered):
    w, vel, mb, ag = w.copy(), np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for g in grads:
        vel = rho * vel + (1 - rho) * np.square(g)
        if centered:
            ag = rho * ag + (1 - rho) * g
            den = vel - np.square(ag) + eps
        else:
            den = vel + eps
        inc = (lr * g) / np.sqrt(den)
        if momentum > 0:
            mb = momentum * mb + inc
            w = w - mb
        else:
            w = w - inc
    return w, vel, mb, ag


# ---- running the kernels for several steps ----

def run_sgd(w0, grads, lr, momentum, nesterov):
    w, vel = w0.copy(), np.zeros_like(w0)
    for g in grads:
        sgd_update(w, g, vel, lr, momentum=momentum, nesterov=nesterov)
    return w, vel


def run_adam(w0, grads, lr, b1, b2, eps, eps_at=None):
    w, m, v = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
    for t, g in enumerate(grads, start=1):
        adam_update(w, g, m, v, lr, b1, b2, eps if eps_at is None else eps_at(t), t)
    return w, m, v


def run_rmsprop(w0, grads, lr, rho, momentum, eps, centered):
    w, vel = w0.copy(), np.zeros_like(w0)
    mb = np.zeros_like(w0) if momentum > 0 else None
    ag = np.zeros_like(w0) if centered else None
    for g in grads:
        rmsprop_update(w, g, vel, lr, rho=rho, momentum=momentum, epsilon=eps, momentum_buffer=mb,
                       average_grad=ag)
    return w, vel, mb, ag


# Float64 runs follow Keras' operation order, so only rounding (e.g. FMA
# contraction on some targets) can separate them from the NumPy transcription.
SPEC = dict(rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.0, True), (0.9, False), (0.9, True), (0.5, True)])
def test_sgd_matches_keras_rule(rng, shape, momentum, nesterov):
    w0 = np.asarray(rng.standard_normal(shape))
    grads = _grads(rng, shape, np.float64)
    w, vel = run_sgd(w0, grads, 0.05, momentum, nesterov)
    w_ref, vel_ref = keras_sgd(w0, grads, 0.05, momentum, nesterov)
    np.testing.assert_allclose(w, w_ref, **SPEC)
    if momentum:
        np.testing.assert_allclose(vel, vel_ref, **SPEC)
    else:
        assert not vel.any(), "velocity must be left untouched when momentum == 0"


def test_sgd_without_velocity(rng):
    w0, g = rng.standard_normal(6), rng.standard_normal(6)
    w = w0.copy()
    sgd_update(w, g, None, 0.1)
    np.testing.assert_array_equal(w, w0 - g * 0.1)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("b1,b2,eps", [(0.9, 0.999, 1e-7), (0.5, 0.9, 1e-2), (0.0, 0.0, 0.0)])
def test_adam_matches_keras_rule(rng, shape, b1, b2, eps):
    w0 = np.asarray(rng.standard_normal(shape))
    grads = _grads(rng, shape, np.float64)
    for got, want in zip(run_adam(w0, grads, 0.01, b1, b2, eps), keras_adam(w0, grads, 0.01, b1, b2, eps)):
        np.testing.assert_allclose(got, want, **SPEC)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("momentum,centered", list(itertools.product([0.0, 0.8], [False, True])))
@pytest.mark.parametrize("rho,eps", [(0.9, 1e-7), (0.5, 1e-2)])
def test_rmsprop_matches_keras_rule(rng, shape, momentum, centered, rho, eps):
    w0 = np.asarray(rng.standard_normal(shape))
    grads = _grads(rng, shape, np.float64)
    w, vel, mb, ag = run_rmsprop(w0, grads, 0.01, rho, momentum, eps, centered)
    w_ref, vel_ref, mb_ref, ag_ref = keras_rmsprop(w0, grads, 0.01, rho, momentum, eps, centered)
    np.testing.assert_allclose(w, w_ref, **SPEC)
    np.testing.assert_allclose(vel, vel_ref, **SPEC)
    if momentum:
        np.testing.assert_allclose(mb, mb_ref, **SPEC)
    if centered:
        np.testing.assert_allclose(ag, ag_ref, **SPEC)


def test_float32_follows_float64_rule(rng):
    """float32 runs the same rule in single precision (checked loosely against float64)."""
    w0 = rng.standard_normal(50)
    grads = _grads(rng, 50, np.float64)
    w32 = run_adam(w0.astype(np.float32), [g.astype(np.float32) for g in grads], 0.01, 0.9, 0.999, 1e-7)[0]
    w64 = run_adam(w0, grads, 0.01, 0.9, 0.999, 1e-7)[0]
    assert w32.dtype == np.float32
    np.testing.assert_allclose(w32, w64, rtol=1e-5, atol=1e-6)


# ---- PyTorch oracle, float32 ----
# Parameters are N(0, 1) and updates O(lr); the displacement w - w0 is compared
# with rtol 1e-4 / atol 1e-6 (a few float32 ulps of w accumulated over 5 steps).
ORACLE = dict(rtol=1e-4, atol=1e-6)


def _torch_run(torch, opt_cls, w0, grads, **kwargs):
    w = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    opt = opt_cls([w], **kwargs)
    for g in grads:
        w.grad = torch.from_numpy(g.copy())
        opt.step()
    return w.detach().numpy(), opt.state[w]


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_matches_torch(rng, torch, momentum, nesterov):
    """torch keeps b = mu b + g and steps w -= lr b (Nesterov: w -= lr (g + mu b)).

    With a constant lr, Keras' velocity is v = -lr b by induction
    (v_k = mu v_{k-1} - lr g_k = -lr (mu b_{k-1} + g_k) = -lr b_k), and Keras'
    Nesterov step mu v - lr g = -lr (g + mu b): the weights coincide.
    """
    lr, shape = 0.1, (4, 9)
    w0 = rng.standard_normal(shape).astype(np.float32)
    grads = _grads(rng, shape, np.float32)
    w, vel = run_sgd(w0, grads, lr, momentum, nesterov)
    w_t, state = _torch_run(torch, torch.optim.SGD, w0, grads, lr=lr, momentum=momentum, nesterov=nesterov)
    np.testing.assert_allclose(w - w0, w_t - w0, **ORACLE)
    if momentum:
        np.testing.assert_allclose(vel, -lr * state["momentum_buffer"].numpy(), **ORACLE)


@pytest.mark.parametrize("eps_torch", [1e-8, 1e-3])
def test_adam_matches_torch(rng, torch, eps_torch):
    """torch: w -= lr/(1-b1^t) m / (sqrt(v)/sqrt(1-b2^t) + eps_t). Multiplying through by
    sqrt(1-b2^t) gives Keras' form with eps = eps_t sqrt(1-b2^t), so we pass that epsilon at
    each step and the two updates are the same; eps_t = 1e-3 makes the term matter for the
    small gradients in the batch."""
    lr, b1, b2, shape = 0.01, 0.9, 0.999, (5, 6)
    w0 = rng.standard_normal(shape).astype(np.float32)
    grads = _grads(rng, shape, np.float32)
    w, m, v = run_adam(w0, grads, lr, b1, b2, None, eps_at=lambda t: eps_torch * np.sqrt(1 - b2**t))
    w_t, state = _torch_run(torch, torch.optim.Adam, w0, grads, lr=lr, betas=(b1, b2), eps=eps_torch)
    np.testing.assert_allclose(w - w0, w_t - w0, **ORACLE)
    np.testing.assert_allclose(m, state["exp_avg"].numpy(), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(v, state["exp_avg_sq"].numpy(), rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("momentum,centered", list(itertools.product([0.0, 0.8], [False, True])))
def test_rmsprop_matches_torch(rng, torch, momentum, centered):
    """torch divides by sqrt(den) + eps, Keras by sqrt(den + eps): the placements only agree at
    eps = 0, so both run with eps = 0 and must then agree to float32 rounding (ORACLE). The
    placement of Keras' eps is checked by the float64 spec test with eps = 1e-2. torch's
    momentum buffer is ours divided by lr."""
    lr, rho, shape = 0.01, 0.9, (3, 11)
    w0 = rng.standard_normal(shape).astype(np.float32)
    grads = _grads(rng, shape, np.float32)
    w, vel, mb, ag = run_rmsprop(w0, grads, lr, rho, momentum, 0.0, centered)
    w_t, state = _torch_run(torch, torch.optim.RMSprop, w0, grads, lr=lr, alpha=rho, eps=0.0,
                            momentum=momentum, centered=centered)
    np.testing.assert_allclose(w - w0, w_t - w0, **ORACLE)
    np.testing.assert_allclose(vel, state["square_avg"].numpy(), rtol=1e-5, atol=1e-12)
    if momentum:
        np.testing.assert_allclose(mb, lr * state["momentum_buffer"].numpy(), **ORACLE)
    if centered:
        np.testing.assert_allclose(ag, state["grad_avg"].numpy(), rtol=1e-5, atol=1e-9)


# ---- layout ----

def test_non_contiguous_grad_is_copied(rng):
    w0 = rng.standard_normal((4, 5))
    g_full = rng.standard_normal((5, 4))
    w_a, w_b = w0.copy(), w0.copy()
    v_a, v_b = np.zeros_like(w0), np.zeros_like(w0)
    m_a, m_b = np.zeros_like(w0), np.zeros_like(w0)
    adam_update(w_a, g_full.T, m_a, v_a, 0.01, 0.9, 0.999, 1e-7, 1)
    adam_update(w_b, np.ascontiguousarray(g_full.T), m_b, v_b, 0.01, 0.9, 0.999, 1e-7, 1)
    np.testing.assert_array_equal(w_a, w_b)
    assert not np.array_equal(w_a, w0)


@pytest.mark.parametrize("shape", [(0,), (3, 0, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_size_zero(shape, dtype):
    w, g, s1, s2, s3 = (np.zeros(shape, dtype) for _ in range(5))
    sgd_update(w, g, s1, 0.1, momentum=0.9, nesterov=True)
    adam_update(w, g, s1, s2, 0.1, 0.9, 0.999, 1e-7, 1)
    rmsprop_update(w, g, s1, 0.1, momentum=0.9, momentum_buffer=s2, average_grad=s3)
    assert w.shape == shape and w.dtype == dtype


# ---- determinism across thread counts ----

def _all_updates(w0, grads):
    """Every kernel variant, each a few steps, on copies of w0; returns all final arrays."""
    out = []
    for momentum, nesterov in [(0.0, False), (0.9, False), (0.9, True)]:
        out += run_sgd(w0, grads, 0.1, momentum, nesterov)
    out += run_adam(w0, grads, 0.01, 0.9, 0.999, 1e-7)
    for momentum, centered in itertools.product([0.0, 0.8], [False, True]):
        out += [a for a in run_rmsprop(w0, grads, 0.01, 0.9, momentum, 1e-7, centered) if a is not None]
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_identical_across_thread_counts(rng, dtype):
    n = 200_003  # above the serial threshold (32768), and not a multiple of 2 or 3
    w0 = rng.standard_normal(n).astype(dtype)
    grads = _grads(rng, n, dtype, steps=2)
    assert_same_for_any_thread_count(lambda: tuple(_all_updates(w0, grads)))


# ---- bad input ----

def _adam_args(dtype=np.float64, shape=(3, 4)):
    return [np.zeros(shape, dtype) for _ in range(4)]


def test_rejects_non_array_and_bad_dtype():
    w, g, m, v = _adam_args()
    with pytest.raises(TypeError, match="param must be a numpy.ndarray, got list"):
        adam_update([0.0], g, m, v, 0.1, 0.9, 0.999, 1e-7, 1)
    with pytest.raises(TypeError, match="param must have dtype float32 or float64, got int64"):
        sgd_update(np.zeros(3, np.int64), np.zeros(3), None, 0.1)
    with pytest.raises(TypeError, match="grad must have dtype float64 .*got float32"):
        adam_update(w, g.astype(np.float32), m, v, 0.1, 0.9, 0.999, 1e-7, 1)
    with pytest.raises(TypeError, match="v must have dtype float64 .*got float32"):
        adam_update(w, g, m, v.astype(np.float32), 0.1, 0.9, 0.999, 1e-7, 1)
    with pytest.raises(TypeError, match="average_grad must have dtype float32 .*got float64"):
        rmsprop_update(w.astype(np.float32), g.astype(np.float32), m.astype(np.float32), 0.1,
                       average_grad=v)


def test_rejects_shape_mismatch():
    w, g, m, v = _adam_args()
    with pytest.raises(ValueError, match=r"grad must have shape \(3, 4\), got \(4, 3\)"):
        sgd_update(w, g.reshape(4, 3), None, 0.1)
    with pytest.raises(ValueError, match=r"m must have shape \(3, 4\), got \(12,\)"):
        adam_update(w, g, m.reshape(12), v, 0.1, 0.9, 0.999, 1e-7, 1)
    with pytest.raises(ValueError, match=r"momentum_buffer must have shape \(3, 4\), got \(3, 5\)"):
        rmsprop_update(w, g, m, 0.1, momentum=0.5, momentum_buffer=np.zeros((3, 5)))


def test_rejects_non_contiguous_or_read_only_in_place_arrays():
    w, g, m, v = _adam_args(shape=(4, 4))
    with pytest.raises(ValueError, match="param must be C-contiguous because it is updated in place"):
        sgd_update(w.T, g, None, 0.1)
    with pytest.raises(ValueError, match="v must be C-contiguous because it is updated in place"):
        adam_update(w, g, m, np.zeros((4, 4)).T, 0.1, 0.9, 0.999, 1e-7, 1)
    with pytest.raises(ValueError, match="velocity must be C-contiguous"):
        rmsprop_update(w, g, np.zeros((4, 8))[:, ::2], 0.1)
    w.flags.writeable = False
    with pytest.raises(ValueError, match="param must be writeable"):
        sgd_update(w, g, None, 0.1)


def test_rejects_missing_or_aliased_state():
    w, g, m, v = _adam_args()
    with pytest.raises(ValueError, match="velocity must be an array shaped like param when momentum > 0"):
        sgd_update(w, g, None, 0.1, momentum=0.9)
    with pytest.raises(ValueError, match="momentum_buffer must be an array shaped like param when momentum > 0"):
        rmsprop_update(w, g, m, 0.1, momentum=0.9)
    with pytest.raises(ValueError, match="param and grad must be distinct arrays"):
        sgd_update(w, w, None, 0.1)
    with pytest.raises(ValueError, match="m and v must be distinct arrays"):
        adam_update(w, g, m, m, 0.1, 0.9, 0.999, 1e-7, 1)
    with pytest.raises(ValueError, match="velocity and average_grad must be distinct arrays"):
        rmsprop_update(w, g, m, 0.1, average_grad=m)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(learning_rate=-0.1), ValueError, r"learning_rate must be a finite number >= 0.0, got -0.1"),
    (dict(learning_rate=float("nan")), ValueError, "learning_rate must be a finite number >= 0.0, got nan"),
    (dict(learning_rate=float("inf")), ValueError, "learning_rate must be a finite number"),
    (dict(learning_rate="0.1"), TypeError, "learning_rate must be a real number, got str"),
    (dict(beta_1=1.0), ValueError, r"beta_1 must be a finite number >= 0.0 and < 1.0, got 1.0"),
    (dict(beta_2=-0.5), ValueError, r"beta_2 must be a finite number >= 0.0 and < 1.0, got -0.5"),
    (dict(beta_2=float("nan")), ValueError, "beta_2 must be a finite number .* got nan"),
    (dict(epsilon=-1e-7), ValueError, r"epsilon must be a finite number >= 0.0, got -1e-07"),
    (dict(epsilon=None), TypeError, "epsilon must be a real number, got NoneType"),
    (dict(step=0), ValueError, r"step must be >= 1 \(the first update is step 1\), got 0"),
    (dict(step=1.0), TypeError, "step must be an int, got float"),
    (dict(step=True), TypeError, "step must be an int, got bool"),
])
def test_adam_rejects_bad_hyper_parameters(kwargs, exc, match):
    w, g, m, v = _adam_args()
    args = dict(learning_rate=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-7, step=1) | kwargs
    with pytest.raises(exc, match=match):
        adam_update(w, g, m, v, **args)
    assert not w.any() and not m.any(), "nothing may be written when validation fails"


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(momentum=1.0), ValueError, r"momentum must be a finite number >= 0.0 and < 1.0, got 1.0"),
    (dict(momentum=float("nan")), ValueError, "momentum must be a finite number .* got nan"),
    (dict(nesterov=1), TypeError, "nesterov must be a bool, got int"),
])
def test_sgd_rejects_bad_hyper_parameters(kwargs, exc, match):
    w, g, vel, _ = _adam_args()
    with pytest.raises(exc, match=match):
        sgd_update(w, g, vel, 0.1, **kwargs)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(rho=1.0), ValueError, r"rho must be a finite number >= 0.0 and < 1.0, got 1.0"),
    (dict(rho=float("nan")), ValueError, "rho must be a finite number .* got nan"),
    (dict(momentum=-0.1), ValueError, r"momentum must be a finite number >= 0.0 and < 1.0, got -0.1"),
    (dict(epsilon=float("nan")), ValueError, "epsilon must be a finite number >= 0.0, got nan"),
])
def test_rmsprop_rejects_bad_hyper_parameters(kwargs, exc, match):
    w, g, vel, mb = _adam_args()
    with pytest.raises(exc, match=match):
        rmsprop_update(w, g, vel, 0.1, momentum_buffer=mb, **kwargs)


# ---- the rules behind cx_opt_step and the shared steps ----

from convx._kernels import optimizers as K  # noqa: E402


def _new_rules(w0, grads):
    """Every rule added with cx_opt_step, several steps each; returns all the arrays it wrote."""
    out = []
    runs = [
        ("adam amsgrad", 3, lambda w, g, s, t: K.adam_update(w, g, s[0], s[1], 0.01, 0.9, 0.99, 1e-7, t, v_hat=s[2])),
        ("adamax", 2, lambda w, g, s, t: K.adamax_update(w, g, s[0], s[1], 0.01, 0.9, 0.999, 1e-7, t)),
        ("adagrad", 1, lambda w, g, s, t: K.adagrad_update(w, g, s[0], 0.01)),
        ("adadelta", 2, lambda w, g, s, t: K.adadelta_update(w, g, s[0], s[1], 1.0)),
        ("ftrl", 2, lambda w, g, s, t: K.ftrl_update(w, g, s[0], s[1], 0.01, -0.5, 0.01, 0.01, 0.01, 0.1)),
        ("lion", 1, lambda w, g, s, t: K.lion_update(w, g, s[0], 0.01)),
    ]
    for _, n_slots, step in runs:
        w = w0.copy()
        slots = [np.full_like(w0, 0.1) for _ in range(n_slots)]
        for t, g in enumerate(grads, start=1):
            step(w, g, slots, t)
        out += [w, *slots]
    w, m, v = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
    product = 1.0
    for t, g in enumerate(grads, start=1):
        product = K.nadam_update(w, g, m, v, 0.01, 0.9, 0.999, 1e-7, t, product)
    out += [w, m, v]
    w, average, acc, mean = w0.copy(), np.zeros_like(w0), np.zeros_like(w0), np.empty_like(w0)
    K.weight_decay_update(w, 0.01, 0.1)
    K.ema_update(average, w, 0.9)
    K.accumulate_gradients(acc, grads[0])
    K.accumulate_gradients(acc, grads[1], mean, 2)
    return out + [w, average, acc, mean, np.array(K.sum_squares(grads[0]))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_new_rules_bit_identical_across_thread_counts(rng, dtype):
    n = 200_003
    w0 = rng.standard_normal(n).astype(dtype)
    grads = _grads(rng, n, dtype, steps=2)
    assert_same_for_any_thread_count(lambda: tuple(_new_rules(w0, grads)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_new_rules_on_empty_arrays(dtype):
    w0 = np.zeros(0, dtype)
    assert all(a.size == 0 for a in _new_rules(w0, [w0, w0])[:-1])


def test_shared_steps_follow_their_formulas(rng):
    w0, g0, g1 = rng.standard_normal(50), rng.standard_normal(50), rng.standard_normal(50)
    w = w0.copy()
    K.weight_decay_update(w, 0.3, 0.1)
    np.testing.assert_allclose(w, w0 - w0 * 0.3 * 0.1, rtol=1e-15)
    average = np.full(50, 2.0)
    K.ema_update(average, w0, 0.75)
    np.testing.assert_allclose(average, 0.75 * 2.0 + 0.25 * w0, rtol=1e-15)
    acc, out = np.zeros(50), np.empty(50)
    K.accumulate_gradients(acc, g0)
    K.accumulate_gradients(acc, g1, out, 2)
    np.testing.assert_allclose(out, (g0 + g1) / 2, rtol=1e-15)
    assert not acc.any()
    np.testing.assert_allclose(K.sum_squares(w0), np.sum(w0 * w0), rtol=1e-13)


def test_new_rules_reject_bad_input():
    w, g = np.zeros(4), np.zeros(4)
    with pytest.raises(ValueError, match="m and u must be distinct arrays"):
        m = np.zeros(4)
        K.adamax_update(w, g, m, m, 0.1, 0.9, 0.999, 1e-7, 1)
    with pytest.raises(ValueError, match="accumulator"):
        K.adagrad_update(w, g, np.zeros(3), 0.1)
    with pytest.raises(ValueError, match="beta_1 must be in \\(0, 1\\]"):
        K.lion_update(w, g, np.zeros(4), 0.1, beta_1=0.0)
    with pytest.raises(ValueError, match="learning_rate must be > 0 for Ftrl"):
        K.ftrl_update(w, g, np.zeros(4), np.zeros(4), 0.0)
    with pytest.raises(ValueError, match="rho must be a finite number"):
        K.adadelta_update(w, g, np.zeros(4), np.zeros(4), 1.0, rho=1.5)
    with pytest.raises(TypeError, match="step must be an int"):
        K.nadam_update(w, g, np.zeros(4), np.zeros(4), 0.1, 0.9, 0.999, 1e-7, 1.5, 1.0)
    with pytest.raises(ValueError, match="read-only"):
        ro = np.zeros(4)
        ro.flags.writeable = False
        K.weight_decay_update(ro, 0.1, 0.1)
