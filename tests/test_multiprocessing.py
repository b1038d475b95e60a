"""Kernels run in multiprocessing children after the parent ran a parallel kernel.

With GNU libgomp a fork()ed child that opens a parallel region after its parent
did hangs forever unless convx guards it (``convx._fork``); the pool timeout
turns such a hang into a failure instead of a blocked CI job.
"""

import multiprocessing
import sys

import numpy as np
import pytest

import convx
from convx._kernels import gemm

CHILD_TIMEOUT = 60  # seconds: ample for a spawn child importing NumPy and convx

CONTEXTS = [
    pytest.param(method, marks=pytest.mark.skipif(
        method not in multiprocessing.get_all_start_methods(),
        reason=f"start method {method!r} not available on {sys.platform}"))
    for method in ("fork", "forkserver", "spawn")
]


@pytest.fixture
def parent_ran_parallel_kernel():
    """Run a GEMM on a team of 2 in the parent, so that the OpenMP pool exists."""
    previous = convx.get_num_threads()
    convx.set_num_threads(2)
    a = np.random.default_rng(0).standard_normal((256, 256))
    expected = gemm.gemm(a, a)
    yield a, expected
    convx.set_num_threads(previous)


@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork.*:DeprecationWarning")
@pytest.mark.parametrize("method", CONTEXTS)
def test_child_runs_kernel_after_parent(method, parent_ran_parallel_kernel):
    a, expected = parent_ran_parallel_kernel
    with multiprocessing.get_context(method).Pool(1) as pool:
        pending = pool.apply_async(gemm.gemm, (a, a))
        try:
            result = pending.get(timeout=CHILD_TIMEOUT)
        except multiprocessing.TimeoutError:
            pool.terminate()
            pytest.fail(f"{method!r} child hung running a kernel after the parent ran one in parallel")
    np.testing.assert_array_equal(result, expected)


def _child_thread_count():
    from convx._kernels import threads

    return threads.get_num_threads()


@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork.*:DeprecationWarning")
@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork() here")
def test_fork_child_is_single_threaded_when_openmp(parent_ran_parallel_kernel):
    with multiprocessing.get_context("fork").Pool(1) as pool:
        count = pool.apply_async(_child_thread_count).get(timeout=CHILD_TIMEOUT)
    assert count == (1 if convx._kernels.threads.openmp_enabled() else convx.get_num_threads())


def _ask_for_threads(n):
    try:
        convx.set_num_threads(n)
    except RuntimeError as error:
        return str(error)
    return "no error"


@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork.*:DeprecationWarning")
@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork() here")
def test_more_threads_in_a_fork_child_raise_instead_of_hanging(parent_ran_parallel_kernel):
    with multiprocessing.get_context("fork").Pool(1) as pool:
        outcome = pool.apply_async(_ask_for_threads, (2,)).get(timeout=CHILD_TIMEOUT)
        one_is_fine = pool.apply_async(_ask_for_threads, (1,)).get(timeout=CHILD_TIMEOUT)
    if convx._kernels.threads.openmp_enabled():
        assert "fork()" in outcome and "spawn" in outcome
    else:
        assert outcome == "no error"
    assert one_is_fine == "no error"


def test_absurd_thread_counts_are_refused_before_libgomp_sees_them():
    previous = convx.get_num_threads()
    limit = convx._kernels.threads.max_threads()
    with pytest.raises(ValueError, match="more than"):
        convx.set_num_threads(limit + 1)
    with pytest.raises(ValueError, match="more than"):
        convx.set_num_threads(10**6)
    assert convx.get_num_threads() == previous
