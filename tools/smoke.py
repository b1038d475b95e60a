"""Smoke test of an installed convx: import, configuration, one parallel kernel.

Run from outside the source tree (cibuildwheel's test-command, .ci/run) so that
the installed package is what gets imported::

    python tools/smoke.py [--require-openmp]

With ``--require-openmp`` it fails when the build is serial, and on Linux it
also checks that the OpenMP runtime in use is the copy vendored in the wheel
(``convx.libs/``), not one found on the system.
"""

import argparse
import sys
from pathlib import Path

import numpy as np


def _loaded_libraries():
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return []
    return sorted({line.split()[-1] for line in maps.read_text().splitlines() if "/" in line})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--require-openmp", action="store_true")
    args = parser.parse_args(argv)

    import convx
    from convx._kernels import dense, threads

    print(f"convx imported from {Path(convx.__file__).parent}")
    convx.show_config()
    rng = np.random.default_rng(0)
    x, kernel = rng.standard_normal((64, 200)), rng.standard_normal((200, 32))
    np.testing.assert_allclose(dense.dense_forward(x, kernel), x @ kernel, rtol=1e-10, atol=1e-10)

    if args.require_openmp:
        if not threads.openmp_enabled():
            sys.exit("smoke: this build has no OpenMP")
        # auditwheel puts the vendored runtime in convx.libs/ beside the package.
        libs_dir = Path(convx.__file__).parent.parent / "convx.libs"
        gomp = [lib for lib in _loaded_libraries() if "gomp" in Path(lib).name]
        print(f"libgomp loaded: {gomp or 'none'}")
        if libs_dir.is_dir() and gomp and not all(lib.startswith(str(libs_dir)) for lib in gomp):
            sys.exit(f"smoke: the libgomp in use is not the one vendored in {libs_dir}")
    print("smoke: OK")


if __name__ == "__main__":
    main()
