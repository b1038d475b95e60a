"""Compiled core of convx: one extension module per kernel family (see docs/kernels.md)."""

import os

# Threads waiting at an OpenMP barrier sleep instead of spinning, unless the user
# chose otherwise. Spinning collapses throughput (100x measured here) when another
# process holds a core; even a short spin (GOMP_SPINCOUNT=3000, ~30 us) took the
# seed's training to 1.98x slower with a busy process on one core (passive:
# 1.4-1.7x) for ~9% on an idle machine. Kernel loops are scheduled dynamically, so
# the calling thread does not wait for a sleeping worker to wake (~50 us on a VM).
# libgomp reads this once, when it is loaded by the first extension below.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
