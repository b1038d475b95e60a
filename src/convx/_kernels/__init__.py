"""Compiled core of convx: one extension module per kernel family (see docs/kernels.md)."""

import os

# Unless the user chose a wait policy, a thread waiting at an OpenMP barrier
# spins for ~3,000 pauses (libgomp; about 20-60 us here) and then sleeps. A
# training step's kernels follow each other at about that distance, so the
# worker is still awake for the next one (a sleeping one starts ~50 us late on
# a VM): seed training at batch 32 on 2 threads -12 to -19% in three A/B runs.
# Unbounded spinning collapses when another process holds a core (100x measured
# here); with this short spin, training with a busy core took 1.64-1.77x longer
# than without (sleeping at once: 1.51-1.75x). Other OpenMP runtimes (macOS,
# Windows) sleep at once. libgomp reads both once, when the first extension
# below loads it.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ["GOMP_SPINCOUNT"] = "3000"
