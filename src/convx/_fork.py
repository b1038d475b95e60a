"""Keep kernels working in children created by ``fork()``.

GNU libgomp (GCC's OpenMP runtime) does not survive ``fork()``: once the parent
has run a parallel region, a child that opens a parallel region with more than
one thread waits forever for worker threads that were not copied into it.
A team of one thread never touches the inherited pool, so convx drops to one
thread in fork children. Results do not change (kernels are bit-identical for
any thread count); a child that needs several threads should be started with
the ``'spawn'`` or ``'forkserver'`` multiprocessing context instead.
"""

import os

from convx._kernels import threads


def _single_thread_in_child():
    threads.set_num_threads(1)


if threads.openmp_enabled() and hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_single_thread_in_child)
