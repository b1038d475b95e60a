"""Compiled core of convx: one extension module per kernel family (see docs/kernels.md)."""

import os

# Threads waiting at an OpenMP barrier spin only briefly, then sleep, unless the
# user chose otherwise. Spinning without a bound collapses throughput (100x
# measured here) when another process holds a core; sleeping at once costs a
# ~50 us wake-up per parallel region on a VM. GOMP_SPINCOUNT=3000 (tens of
# microseconds) spans the Python work between the kernel calls of a training
# step: seed training +9% on an idle machine, 1.7x slower with a busy process on
# one core (2.2x at 10000, 1.4x without spinning). libgomp reads both once, when
# the first extension below loads it; GOMP_SPINCOUNT overrides the policy's count.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ["GOMP_SPINCOUNT"] = "3000"
