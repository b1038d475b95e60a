"""Bit-identity of kernel results across thread counts (kernels split work by problem size, never by threads)."""

import numpy as np

import convx


def assert_same_for_any_thread_count(compute, counts=(1, 2, 3)):
    """Call ``compute()`` once per thread count in ``counts``; each call's outputs must equal the first's bit for bit.

    ``compute`` returns an array or a tuple of arrays (entries may be None). The
    thread count in force before the call is restored afterwards.
    """
    saved = convx.get_num_threads()
    results = []
    try:
        for count in counts:
            convx.set_num_threads(count)
            out = compute()
            results.append(out if isinstance(out, tuple) else (out,))
    finally:
        convx.set_num_threads(saved)
    for other in results[1:]:
        for got, want in zip(other, results[0]):
            np.testing.assert_array_equal(got, want)
