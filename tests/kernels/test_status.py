"""Kernel status codes reach Python as exceptions: an allocation failure is a MemoryError.

The build's test hook (csrc/convx_common.h, ``cx_alloc_fails``) makes every
scratch allocation of the C kernels fail when ``CONVX_TEST_ALLOC_FAIL`` is set
as a module loads; each call below then runs in a child process with it set.
"""

import os
import subprocess
import sys
import textwrap

import pytest

# One call per kernel that allocates scratch memory, small enough to run on the calling thread (and with
# rows enough for the GEMM to pack: a few rows read B in place, allocating nothing).
CALLS = {
    "gemm": "gemm.gemm(r(300, 8), r(8, 8))",
    "dense_forward": "dense.dense_forward(r(300, 8), r(8, 3))",
    "dense_backward": "dense.dense_backward(r(4, 8), r(8, 3), r(4, 3))",
    "conv2d_forward (small patch)": "conv.conv2d_forward(r(1, 6, 6, 1), r(3, 3, 1, 4))",
    "conv2d_forward (indirect GEMM)": "conv.conv2d_forward(r(1, 6, 6, 8), r(3, 3, 8, 4))",
    "conv2d_forward (pointwise)": "conv.conv2d_forward(r(1, 6, 6, 8), r(1, 1, 8, 4))",
    "conv2d_maxpool_forward": "conv.conv2d_maxpool_forward(r(1, 6, 6, 8), r(3, 3, 8, 4))",
    "conv2d_backward": "conv.conv2d_backward(r(1, 6, 6, 8), r(3, 3, 8, 4), r(1, 4, 4, 4))",
    "conv2d_maxpool_backward": "conv.conv2d_maxpool_backward(r(1, 6, 6, 1), r(3, 3, 1, 4), r(1, 2, 2, 4), "
    "r(1, 2, 2, 4))",
    "depthwise_forward": "depthwise.depthwise_forward(r(1, 6, 6, 4), r(3, 3, 4, 2))",
    "depthwise_backward": "depthwise.depthwise_backward(r(1, 6, 6, 4), r(3, 3, 4, 2), r(1, 4, 4, 8))",
    "conv_transpose_forward": "depthwise.conv_transpose_forward(r(1, 4, 4, 4), r(3, 3, 2, 4), (6, 6))",
    "resize_forward": "resample.resize_forward(r(1, 4, 4, 2), (7, 7))",
    "batch_norm_train": "norm.batch_norm_train(r(4, 3), r(3), r(3))",
}

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from convx._kernels import conv, dense, depthwise, gemm, norm, resample

    rng = np.random.default_rng(0)

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    try:
        {call}
    except MemoryError as e:
        print("MemoryError:", e)
    else:
        print("no exception")
    """
)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_allocation_failure_is_a_memory_error(name):
    env = dict(os.environ, CONVX_TEST_ALLOC_FAIL="1", OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(call=CALLS[name])], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("MemoryError:"), done.stdout + done.stderr[-2000:]
    assert "could not allocate" in done.stdout or "out of memory" in done.stdout


def test_the_hook_is_off_by_default():
    """Without the variable the same calls succeed (the hook is read from the environment only)."""
    from convx._kernels import gemm

    import numpy as np

    a = np.eye(3)
    np.testing.assert_array_equal(gemm.gemm(a, a), a)
