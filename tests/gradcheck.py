"""Finite-difference gradient checks (float64) used by the kernel and layer tests."""

import numpy as np


def numerical_gradient(f, x, eps=1e-6):
    """Central-difference gradient of the scalar function ``f`` at float64 ``x``.

    ``x`` is perturbed in place and restored; returns an array shaped like ``x``.
    """
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        up = f()
        flat[i] = saved - eps
        down = f()
        flat[i] = saved
        gflat[i] = (up - down) / (2 * eps)
    return grad


def check_gradient(f, x, analytic, eps=1e-6, rtol=1e-5, atol=1e-7):
    """Assert that ``analytic`` matches the central-difference gradient of ``f`` at ``x``."""
    numeric = numerical_gradient(f, x, eps)
    np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol)
