"""Build and runtime configuration report: :func:`show_config`."""

import platform
import sys

import numpy as np


def config_info():
    """Return what :func:`show_config` prints, as a dict.

    Returns
    -------
    info : dict
        Keys ``'convx'`` (the version; the distribution is ``convx-cnn`` on PyPI), ``'python'``, ``'numpy'``, ``'compiler'``,
        ``'compile_args'``, ``'openmp_enabled'`` (bool), ``'openmp_runtimes'``
        (list of str, the OpenMP libraries loaded in this process as seen by
        threadpoolctl, or None when threadpoolctl is not installed),
        ``'num_threads'`` (int) and ``'simd_variant'`` (str).
    """
    from convx import __version__
    from convx._kernels import threads

    build = _build_info()
    return {
        "convx": __version__,
        "python": f"{platform.python_version()} ({platform.python_implementation()}, {sys.platform})",
        "numpy": np.__version__,
        "compiler": getattr(build, "compiler", "unknown (no build information)"),
        "compile_args": getattr(build, "compile_args", "unknown"),
        "openmp_enabled": threads.openmp_enabled(),
        "openmp_runtimes": _openmp_runtimes(),
        "num_threads": threads.get_num_threads(),
        "simd_variant": _simd_variant(),
    }


def show_config(file=None):
    """Print convx's version, build and threading configuration.

    Parameters
    ----------
    file : file-like, optional
        Where to write; defaults to ``sys.stdout``.
    """
    info = config_info()
    runtimes = info["openmp_runtimes"]
    if runtimes is None:
        loaded = "unknown (install threadpoolctl to list it)"
    else:
        loaded = "; ".join(runtimes) or "none loaded"
    lines = [
        f"convx:            {info['convx']}",
        f"Python:           {info['python']}",
        f"NumPy:            {info['numpy']}",
        f"C compiler:       {info['compiler']}",
        f"compile flags:    {info['compile_args']}",
        f"OpenMP enabled:   {'yes' if info['openmp_enabled'] else 'no (serial build)'}",
        f"OpenMP runtime:   {loaded}",
        f"threads:          {info['num_threads']}",
        f"SIMD variant:     {info['simd_variant']}",
    ]
    print("\n".join(lines), file=file if file is not None else sys.stdout)


def _build_info():
    try:
        from convx import _build_info
    except ImportError:  # a tree built by something other than setup.py
        return None
    return _build_info


def _openmp_runtimes():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [
        " ".join(filter(None, [pool["internal_api"], pool.get("version"), f"({pool['filepath']})"]))
        for pool in threadpool_info()
        if pool["user_api"] == "openmp"
    ]


def _simd_variant():
    from convx._kernels import gemm

    variant = getattr(gemm, "simd_variant", None)
    return variant() if variant is not None else "unknown"
