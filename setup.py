"""Build script for convx's compiled core.

Each kernel family under ``src/convx/_kernels/`` is one extension module: a
typed Cython wrapper (``<family>.pyx``) over C sources in ``csrc/``. OpenMP is
used when a test compile with the platform's flag succeeds, and can be turned
off with ``CONVX_NO_OPENMP=1``; the serial build gives identical results.
``CONVX_SANITIZE=1`` builds with AddressSanitizer and UndefinedBehaviorSanitizer
(GCC/Clang; for tests only: ``.ci/run`` runs the kernel tests under it).

No flag here ties the build to the building CPU (no native-CPU tuning): SIMD
variants are compiled per function with target attributes and chosen at run
time (see ``csrc/cpu_features.c``).
"""

import os
import shlex
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

KERNELS = Path("src/convx/_kernels")
CSRC = KERNELS / "csrc"

# family -> C sources it links (besides its .pyx)
FAMILIES = {
    "_checks": [],
    "threads": [],
    "gemm": ["gemm.c", "cpu_features.c"],
    "conv": ["conv.c", "gemm.c", "cpu_features.c", "epilogue.c", "pool.c"],
    "dense": ["dense.c", "gemm.c", "cpu_features.c", "epilogue.c"],
    "pool": ["pool.c", "cpu_features.c"],
    "activations": ["activations.c", "epilogue.c"],
    "losses": ["losses.c"],
    "optimizers": ["optimizers.c"],
    "merge": ["merge.c"],
    "norm": ["norm.c"],
    "depthwise": ["depthwise.c", "cpu_features.c", "epilogue.c", "gemm.c"],
    "resample": ["resample.c"],
    "quant": ["quant.c", "cpu_features.c"],
    "embedding": ["embedding.c"],
}

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
    """
)


def _openmp_flags(compiler):
    """Return (compile_args, link_args) for OpenMP, or None when unavailable."""
    if os.environ.get("CONVX_NO_OPENMP", "") not in ("", "0"):
        return None
    if compiler.compiler_type == "msvc":
        candidates = [(["/openmp"], [])]
    elif sys.platform == "darwin":
        candidates = [
            (["-Xpreprocessor", "-fopenmp"], ["-lomp"]),
            (["-fopenmp"], ["-fopenmp"]),
        ]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    for cflags, ldflags in candidates:
        if _compiles(compiler, OPENMP_PROBE, cflags, ldflags):
            return cflags, ldflags
    return None


def _compiles(compiler, source, cflags, ldflags):
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.c"
        src.write_text(source)
        try:
            objects = compiler.compile([str(src)], output_dir=tmp, extra_postargs=cflags)
            # LDFLAGS reaches extension links (linker_so) but not executables:
            # pass it here too so that -L paths to a non-system libomp count.
            env_ldflags = shlex.split(os.environ.get("LDFLAGS", ""))
            compiler.link_executable(
                objects, "probe", output_dir=tmp, extra_postargs=ldflags + env_ldflags
            )
        except Exception:  # any compiler or linker failure means "not available"
            return False
    return True


class BuildExt(build_ext):
    """build_ext that adds OpenMP and portable optimisation flags per compiler."""

    def build_extensions(self):
        msvc = self.compiler.compiler_type == "msvc"
        base = ["/O2", "/fp:precise"] if msvc else ["-O3", "-fno-math-errno"]
        if not msvc:
            base += ["-fno-semantic-interposition"]
        openmp = _openmp_flags(self.compiler)
        cflags, ldflags = openmp if openmp else ([], [])
        print(f"convx: OpenMP {'enabled: ' + ' '.join(cflags) if openmp else 'disabled (serial build)'}")
        if os.environ.get("CONVX_SANITIZE", "") not in ("", "0"):
            sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
            print(f"convx: sanitizers: {' '.join(sanitize)}")
            cflags, ldflags = cflags + sanitize, ldflags + sanitize
        for ext in self.extensions:
            ext.extra_compile_args = base + cflags
            ext.extra_link_args = list(ldflags)
        super().build_extensions()
        self._build_info = {
            "compiler": _compiler_version(self.compiler),
            "compile_args": " ".join(base + cflags),
            "openmp": openmp is not None,
        }

    def run(self):
        super().run()
        # Record how this build was compiled, for convx.show_config(), next to
        # the package it describes: the source tree for --inplace, else build/lib.
        if self.inplace:
            package = Path(self.get_finalized_command("build_py").get_package_dir("convx"))
        else:
            package = Path(self.build_lib) / "convx"
        lines = [f"{key} = {value!r}" for key, value in self._build_info.items()]
        (package / "_build_info.py").write_text(
            '"""Generated by setup.py at build time; do not edit."""\n\n' + "\n".join(lines) + "\n"
        )


def _compiler_version(compiler):
    """First line of the C compiler's --version, or its distutils type."""
    if compiler.compiler_type == "msvc":
        return "msvc"
    try:
        out = subprocess.run(
            [compiler.compiler_so[0], "--version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return compiler.compiler_type
    return out.splitlines()[0].strip() if out else compiler.compiler_type


def _extensions():
    common = dict(
        include_dirs=[np.get_include(), str(CSRC)],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
    )
    # Every family includes shared headers and *_impl.h templates: any edit rebuilds.
    headers = sorted(str(h) for h in CSRC.glob("*.h"))
    return [
        Extension(
            f"convx._kernels.{family}",
            [str(KERNELS / f"{family}.pyx")] + [str(CSRC / c) for c in csources],
            depends=headers,
            **common,
        )
        for family, csources in FAMILIES.items()
    ]


setup(
    ext_modules=cythonize(
        _extensions(),
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    ),
    cmdclass={"build_ext": BuildExt},
)
