"""NumPy (OpenBLAS) SGEMM reference; run by benchmarks/run.py.

run.py removes OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE from this worker's
environment (they can pin OpenBLAS to a slower kernel), and the result records
which kernel OpenBLAS actually picked, as threadpoolctl reports it.
"""

import os

import _common


def _blas_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [{key: pool.get(key) for key in ("internal_api", "version", "architecture", "threading_layer",
                                            "num_threads", "filepath")}
            for pool in threadpool_info() if pool["user_api"] == "blas"]


def gemm(spec):
    import numpy as np

    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(spec["threads"], user_api="blas")
    except ImportError:  # OPENBLAS_NUM_THREADS, set by run.py, still applies
        pass
    rng = np.random.default_rng(0)
    sizes = {}
    for n in spec["sizes"]:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        c = np.empty((n, n), dtype=np.float32)
        sizes[str(n)] = _common.time_calls(lambda: np.matmul(a, b, out=c), spec["iters"], spec["max_seconds"])
    return {"sizes": sizes, "blas": _blas_info(),
            "env": {name: os.environ.get(name) for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}}


def versions():
    import numpy

    return {"numpy": numpy.__version__}


if __name__ == "__main__":
    _common.run({"gemm": gemm}, versions)
