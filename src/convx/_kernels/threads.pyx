"""Thread control for convx's OpenMP team.

All kernels run with the team size returned by :func:`get_num_threads`: the
value given to :func:`set_num_threads` if any, otherwise OpenMP's default
(``OMP_NUM_THREADS`` when set, else the number of CPUs, and limits applied by
``threadpoolctl`` in the calling thread).
"""

cdef extern from "convx_omp.h":
    int convx_max_threads() nogil
    void convx_set_max_threads(int n) nogil
    int CONVX_HAVE_OPENMP

cdef int _requested = 0
# set in a child created by fork() after the parent ran OpenMP (see convx._fork)
cdef bint _forked_child = False

# A team far above the core count only slows kernels down, and libgomp aborts the
# whole process when it cannot create the threads asked for: refuse such requests.
MAX_THREADS_PER_CPU = 8
MIN_THREAD_CAP = 256


def max_threads():
    """The largest team :func:`set_num_threads` accepts: ``max(256, 8 * os.cpu_count())``."""
    import os

    return max(MIN_THREAD_CAP, MAX_THREADS_PER_CPU * (os.cpu_count() or 1))


def _mark_forked_child():
    """Called in a fork() child: the inherited OpenMP pool is unusable there, keep one thread."""
    global _forked_child
    _forked_child = True
    set_num_threads(1)


cdef int effective_num_threads() noexcept nogil:
    if _requested > 0:
        return _requested
    return convx_max_threads()


def set_num_threads(n):
    """Set the number of threads convx kernels use.

    Parameters
    ----------
    n : int
        Team size, from 1 to :func:`max_threads`. Results are bit-identical whatever the value.

    Raises
    ------
    ValueError
        ``n`` below 1 or above :func:`max_threads`.
    RuntimeError
        ``n > 1`` in a child created by ``fork()`` (see :mod:`convx._fork`).
    """
    global _requested
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    if n > max_threads():
        raise ValueError(f"set_num_threads: n={n} is more than {max_threads()} threads "
                         f"({MAX_THREADS_PER_CPU} per CPU); convx would only oversubscribe the cores")
    if _forked_child and n > 1 and CONVX_HAVE_OPENMP:
        raise RuntimeError(
            "set_num_threads: this process was created by fork() after its parent ran OpenMP threads, whose pool "
            "does not survive fork() (GNU libgomp would hang); it stays on one thread. Start the process with the "
            "'spawn' or 'forkserver' multiprocessing context to compute with several threads")
    _requested = n
    convx_set_max_threads(n)


def get_num_threads():
    """Return the number of threads convx kernels will use (an int >= 1)."""
    return effective_num_threads()


def openmp_enabled():
    """Return True when this build of convx was compiled with OpenMP."""
    return bool(CONVX_HAVE_OPENMP)
