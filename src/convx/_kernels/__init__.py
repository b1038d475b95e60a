"""Compiled core of convx: one extension module per kernel family (see docs/kernels.md)."""

import os

# Unless the user chose a wait policy, a thread waiting at an OpenMP barrier
# spins for ~3,000 pauses (libgomp) and then sleeps. The rule: spin about as
# long as the gap between two kernels of a training step, so that the worker
# is still awake for the next one (a sleeping one starts late), but no longer,
# because unbounded spinning collapses when another process holds a core.
# `python benchmarks/run.py --cases train,contention` measures both sides.
# Other OpenMP runtimes (macOS, Windows) sleep at once. libgomp reads both
# once, when the first extension below loads it.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ["GOMP_SPINCOUNT"] = "3000"
