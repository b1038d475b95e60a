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
