"""Keep kernels working in children created by ``fork()``.

GNU libgomp (GCC's OpenMP runtime) does not survive ``fork()``: once the parent
has run a parallel region, a child that opens a parallel region with more than
one thread waits forever for worker threads that were not copied into it.
A team of one thread never touches the inherited pool, so convx drops to one
thread in fork children. Results do not change (kernels are bit-identical for
any thread count); a child that needs several threads should be started with
the ``'spawn'`` or ``'forkserver'`` multiprocessing context instead; asking for
more threads in a fork child raises RuntimeError rather than hanging.
"""

import os

from convx._kernels import threads

if threads.openmp_enabled() and hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=threads._mark_forked_child)
