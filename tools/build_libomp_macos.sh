#!/usr/bin/env bash
# Build LLVM's OpenMP runtime (libomp) for macOS wheels: cibuildwheel's
# before-all step (see [tool.cibuildwheel.macos] in pyproject.toml).
#
#   tools/build_libomp_macos.sh PREFIX
#
# Apple's clang understands -Xpreprocessor -fopenmp but ships no runtime. A
# Homebrew libomp is built for the runner's own macOS version, so vendoring it
# (delocate) would raise the wheel's minimum macOS or be refused; this builds
# libomp for MACOSX_DEPLOYMENT_TARGET and the runner's architecture (each
# architecture is built on its own native runner) into PREFIX/{include,lib}.
set -euo pipefail

prefix=${1:?usage: $0 PREFIX}
version=${LIBOMP_LLVM_VERSION:-18.1.8}
: "${MACOSX_DEPLOYMENT_TARGET:?set MACOSX_DEPLOYMENT_TARGET (pyproject.toml does)}"
release="https://github.com/llvm/llvm-project/releases/download/llvmorg-${version}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# Since LLVM 15 a standalone openmp build needs LLVM's shared CMake modules
# beside it, as ../cmake.
mkdir openmp cmake
curl -fsSL --retry 3 "$release/openmp-${version}.src.tar.xz" | tar xJ --strip-components 1 -C openmp
curl -fsSL --retry 3 "$release/cmake-${version}.src.tar.xz" | tar xJ --strip-components 1 -C cmake

cmake -S openmp -B build -Wno-dev \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DCMAKE_OSX_DEPLOYMENT_TARGET="$MACOSX_DEPLOYMENT_TARGET" \
    -DCMAKE_OSX_ARCHITECTURES="$(uname -m)" \
    -DLIBOMP_INSTALL_ALIASES=OFF \
    -DOPENMP_ENABLE_LIBOMPTARGET=OFF \
    -DLIBOMP_OMPD_SUPPORT=OFF \
    -DOPENMP_ENABLE_OMPT_TOOLS=OFF
cmake --build build -j "$(sysctl -n hw.ncpu)"
cmake --install build
# Record the install name delocate will follow, and the minimum macOS it got.
otool -L "$prefix/lib/libomp.dylib" | head -2
otool -l "$prefix/lib/libomp.dylib" | grep -A3 -E 'LC_BUILD_VERSION|LC_VERSION_MIN' | head -8
