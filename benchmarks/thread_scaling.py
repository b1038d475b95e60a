"""convx's 1 -> 2 thread speed-up of seed training, within one process.

The runner's `threads` case times 1 and 2 threads in separate processes, so the
ratio also carries whatever the shared machine did between them. This
diagnostic trains one model in one process and alternates the thread count
chunk by chunk (`convx.set_num_threads`), so that both counts see the same
drifts; it reports the median time per step of each and their ratio.

Usage: python benchmarks/thread_scaling.py [--batch 128] [--chunks 20] [--steps 10]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

WORKERS = Path(__file__).resolve().parent / "workers"
sys.path.insert(0, str(WORKERS))
import _common  # noqa: E402
import convx_worker  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--chunks", type=int, default=20, help="chunks per thread count (default 20)")
    parser.add_argument("--steps", type=int, default=10, help="training steps per chunk (default 10)")
    args = parser.parse_args(argv)
    import convx

    data = Path(__file__).resolve().parents[1] / "data" / "mnist"
    per_chunk = args.batch * args.steps
    x, y = _common.load_mnist(str(data), per_chunk * (2 * args.chunks + 1))
    model = convx_worker._seed_model(convx)
    model.fit(x[:per_chunk], y[:per_chunk], batch_size=args.batch, epochs=1, verbose=0)  # warm-up
    times = {1: [], 2: []}
    for chunk in range(2 * args.chunks):
        threads = (1, 2)[(chunk + chunk // 2) % 2]  # 1, 2, 2, 1, 1, 2, ...: neither always goes first
        convx.set_num_threads(threads)
        start = per_chunk * (chunk + 1)
        t0 = time.perf_counter()
        model.fit(x[start:start + per_chunk], y[start:start + per_chunk], batch_size=args.batch, epochs=1,
                  verbose=0)
        times[threads].append(1e3 * (time.perf_counter() - t0) / args.steps)
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(f"batch {args.batch}: 1 thread {one:.2f} ms/step, 2 threads {two:.2f} ms/step, "
          f"speed-up {one / two:.2f}x (medians of {args.chunks} chunks of {args.steps} steps each)")


if __name__ == "__main__":
    main()
