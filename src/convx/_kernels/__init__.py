"""Compiled core of convx: one extension module per kernel family (see docs/kernels.md)."""

import os

# Threads waiting at an OpenMP barrier sleep instead of spinning, unless the user
# chose otherwise. Spinning wins a few microseconds per parallel region on an idle
# machine but collapses throughput (100x measured here) when another process holds
# a core. libgomp reads this once, when it is loaded by the first extension below.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
