"""Shared fixtures and helpers for convx's tests."""

import numpy as np
import pytest


@pytest.fixture
def rng():
    """A NumPy Generator with a fixed seed, fresh for each test."""
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def torch():
    """PyTorch CPU, the independent oracle; skips with a visible reason when absent."""
    return pytest.importorskip("torch", reason="PyTorch oracle not installed: pip install torch==2.13.0")


def optional(module_name, extra):
    """Import an optional dependency for a test, or skip naming the extra that brings it.

    CI sets ``CONVX_REQUIRE_OPTIONAL=1`` where every extra is installed: there a
    missing package fails the test instead of skipping it.
    """
    import importlib
    import os

    try:
        return importlib.import_module(module_name)
    except ImportError:
        message = f"{module_name} not installed: pip install 'convx-cnn[{extra}]'"
        if os.environ.get("CONVX_REQUIRE_OPTIONAL") == "1":
            pytest.fail(message)
        pytest.skip(message, allow_module_level=True)
