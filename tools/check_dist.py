"""Check the contents of convx's sdist and wheels.

    python tools/check_dist.py sdist dist/convx_cnn-*.tar.gz
    python tools/check_dist.py wheel wheelhouse/*.whl [--vendored-openmp]

sdist: every Cython and C source, header and build file of the checkout is
there, with LICENSE; nothing stray (compiled objects, generated C, the MNIST
copy in data/, build/ trees, caches).

wheel: one compiled module per kernel family, no sources or data; with
``--vendored-openmp``, the platform's OpenMP runtime is bundled (libgomp in
convx.libs/ for manylinux, libomp in convx/.dylibs/ for macOS, vcomp140 for
Windows). Prints each file's size.
"""

import argparse
import fnmatch
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = ["threads", "gemm", "conv", "dense", "pool", "activations", "losses", "optimizers"]

SDIST_REQUIRED = ["LICENSE", "README.md", "pyproject.toml", "setup.py", "MANIFEST.in"]
# Patterns match whole path components from the right (PurePosixPath.match);
# directories ("name/") match at the root only (convx/data/ is a package, data/
# the repository's data sets), or at any depth when written "*/name/".
SDIST_FORBIDDEN = [
    "*.so", "*.pyd", "*.o", "*.obj", "*.dylib", "*.dll", "*.pyc", "*.npz", "*.gz",
    "src/convx/_kernels/*.c", "src/convx/_build_info.py",
    "data/", "build/", "dist/", ".ci/", ".github/", "*/__pycache__/",
]
WHEEL_FORBIDDEN = ["*.c", "*.h", "*.pyx", "*.pxi", "*.gz", "data/", "tests/", "convx/_kernels/csrc/"]
VENDORED_OPENMP = {
    # auditwheel and delvewheel name the folder after the distribution (convx-cnn), delocate after the package
    "manylinux": "convx_cnn.libs/libgomp*.so*",
    "macosx": "convx/.dylibs/libomp*.dylib",
    "win": "convx_cnn.libs/vcomp140*.dll",
}


def _sources():
    """The checkout's files that a source build needs, relative to ROOT."""
    kernels = ROOT / "src" / "convx" / "_kernels"
    files = [*kernels.glob("*.pyx"), *kernels.glob("*.pxd"), *kernels.glob("*.pxi"), *(kernels / "csrc").glob("*.[ch]")]
    files += (ROOT / "src" / "convx").rglob("*.py")
    return {
        str(f.relative_to(ROOT)).replace("\\", "/")
        for f in files
        if "__pycache__" not in f.parts and f.name != "_build_info.py"
    }


def _in_directory(name, pattern):
    if pattern.startswith("*/"):
        return name.startswith(pattern[2:]) or f"/{pattern[2:]}" in name
    return name.startswith(pattern)


def _matches(name, patterns):
    return [
        p for p in patterns
        if (_in_directory(name, p) if p.endswith("/") else PurePosixPath(name).match(p))
    ]


def check_sdist(path):
    with tarfile.open(path) as tar:
        members = [m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile() and "/" in m.name]
    problems = [f"missing: {name}" for name in sorted(set(SDIST_REQUIRED) | _sources()) if name not in members]
    problems += [f"stray: {name} ({', '.join(_matches(name, SDIST_FORBIDDEN))})"
                 for name in members if _matches(name, SDIST_FORBIDDEN)]
    print(f"{path}: {len(members)} files, {Path(path).stat().st_size / 1024:.0f} KiB")
    return problems


def check_wheel(path, vendored_openmp):
    with zipfile.ZipFile(path) as whl:
        infos = [i for i in whl.infolist() if not i.is_dir()]
    names = [i.filename for i in infos]
    problems = []
    for family in FAMILIES:
        if not any(n.startswith(f"convx/_kernels/{family}.") and n.endswith((".so", ".pyd")) for n in names):
            problems.append(f"missing compiled module convx._kernels.{family}")
    problems += [f"stray: {name}" for name in names if _matches(name, WHEEL_FORBIDDEN)]
    if vendored_openmp:
        tag = Path(path).name
        pattern = next((p for key, p in VENDORED_OPENMP.items() if f"-{key}" in tag or f"_{key}" in tag), None)
        if pattern is None:
            problems.append(f"no vendored-runtime rule for platform tag of {tag}")
        elif not any(fnmatch.fnmatch(n, pattern) for n in names):
            problems.append(f"OpenMP runtime not vendored: nothing matches {pattern}")
    for info in sorted(infos, key=lambda i: -i.file_size)[:12]:
        print(f"  {info.file_size / 1024:9.0f} KiB  {info.filename}")
    print(f"{path}: {len(names)} files, {Path(path).stat().st_size / 1024:.0f} KiB compressed, "
          f"{sum(i.file_size for i in infos) / 1024:.0f} KiB installed")
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    p_sdist = sub.add_parser("sdist")
    p_sdist.add_argument("paths", nargs="+")
    p_wheel = sub.add_parser("wheel")
    p_wheel.add_argument("paths", nargs="+")
    p_wheel.add_argument("--vendored-openmp", action="store_true")
    args = parser.parse_args(argv)
    failed = False
    for path in args.paths:
        if args.kind == "sdist":
            problems = check_sdist(path)
        else:
            problems = check_wheel(path, args.vendored_openmp)
        for problem in problems:
            print(f"  PROBLEM: {problem}")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
