"""Helpers for the convx.ops tests: run an op on a tape, and check its gradient by finite differences."""

import numpy as np

from convx.ops.core import Tape
from gradcheck import numerical_gradient


def taped(fn, arrays):
    """(output, gradients of sum(seed * output) per input, seed) of ``fn`` on a tape."""
    tape = Tape({}, True)
    with tape:
        tensors = [tape.watch(a) for a in arrays]
        out = fn(*tensors)
    seed = np.random.default_rng(7).normal(size=out.shape)
    grads = tape.backward([(out.id, seed)])
    return out.value, [grads.get(t.id) for t in tensors], seed


def check_op(fn, reference, arrays, differentiable=None, rtol=1e-6, atol=1e-8):
    """The op eagerly and on a tape equals ``reference`` (NumPy); its gradients equal central differences
    (float64) for every argument in ``differentiable`` (default: all)."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    expected = reference(*arrays)
    np.testing.assert_allclose(fn(*arrays), expected, rtol=rtol, atol=atol)
    out, grads, seed = taped(fn, arrays)
    np.testing.assert_allclose(out, expected, rtol=rtol, atol=atol)
    for i in differentiable if differentiable is not None else range(len(arrays)):
        numeric = numerical_gradient(lambda: float(np.sum(seed * fn(*arrays))), arrays[i])
        assert grads[i] is not None and grads[i].shape == arrays[i].shape, (i, grads[i])
        np.testing.assert_allclose(grads[i], numeric, rtol=1e-5, atol=1e-6, err_msg=f"argument {i}")
