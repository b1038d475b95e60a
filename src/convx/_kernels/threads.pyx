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


cdef int effective_num_threads() noexcept nogil:
    if _requested > 0:
        return _requested
    return convx_max_threads()


def set_num_threads(n):
    """Set the number of threads convx kernels use.

    Parameters
    ----------
    n : int
        Team size, >= 1. Results are bit-identical whatever the value.
    """
    global _requested
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    _requested = n
    convx_set_max_threads(n)


def get_num_threads():
    """Return the number of threads convx kernels will use (an int >= 1)."""
    return effective_num_threads()


def openmp_enabled():
    """Return True when this build of convx was compiled with OpenMP."""
    return bool(CONVX_HAVE_OPENMP)
