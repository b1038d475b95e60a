"""Ring all-reduce cost model of convx's data-parallel step (the tables of docs/distributed.md).

    python benchmarks/mpi_cost_model.py [--seed-ms 4.37,14.5] [--resnet-ms 396] [--latency-us 10]

Per step every host sends and receives ``2 (p - 1) / p * M`` bytes of the flat float32 gradient
buffer (M bytes) in ``2 (p - 1)`` messages (reduce-scatter, then all-gather, around a ring) and sums
``(p - 1) / p * M`` bytes:

    T(p) = 2 (p - 1) alpha + 2 (p - 1) / p * M / B + (p - 1) / p * M / gamma

alpha: per-message latency, B: link bandwidth (bytes/s), gamma: summing speed of a core (bytes/s).
A host computes like the 2-vCPU machine measured by benchmarks/mpi_scaling.py (one process, 2 threads):
``t(b) = a + c b`` for a local batch of b rows, fitted through two measured batch sizes. convx sums the
gradients after the backward pass, so a step takes ``t(b) + T(p)``; with buckets all-reduced during the
backward pass (about 2/3 of ``t``) the communication is hidden once ``T(p) <= 2/3 t(b)``, i.e. from the
global batch ``p * b*`` with ``b* = (1.5 T(p) - a) / c``.
"""

import argparse

SEED_BYTES = 110_474 * 4  # the MNIST example model: every weight trains
RESNET_BYTES = 696_618 * 4  # benchmarks' resnet: trainable weights (BatchNormalization's moving statistics do not travel)


def allreduce_seconds(p, nbytes, gbit, alpha, gamma):
    bandwidth = gbit * 1e9 / 8
    return 2 * (p - 1) * alpha + 2 * (p - 1) / p * nbytes / bandwidth + (p - 1) / p * nbytes / gamma


def fit_line(points):
    """(a, c) of t(b) = a + c b through two (batch, seconds) points; one point: a = 0."""
    if len(points) == 1:
        (b, t), = points
        return 0.0, t / b
    (b0, t0), (b1, t1) = points
    c = (t1 - t0) / (b1 - b0)
    return t0 - c * b0, c


def table(name, nbytes, line, local_batch, alpha, gamma):
    a, c = line
    step = a + c * local_batch
    print(f"\n{name}: M = {nbytes / 1e6:.2f} MB; compute t(b) = {a * 1e3:.2f} ms + {c * 1e3:.3f} ms x b; "
          f"local batch {local_batch}: {step * 1e3:.1f} ms\n")
    print("| hosts | link | all-reduce T | of which latency | efficiency, all-reduce after backward "
          f"(b = {local_batch}) | global batch from which T hides under backward |")
    print("|---|---|---|---|---|---|")
    for p in (8, 64, 512):
        for gbit in (25, 100):
            t = allreduce_seconds(p, nbytes, gbit, alpha, gamma)
            b_star = max(1.0, (1.5 * t - a) / c)
            print(f"| {p} | {gbit} Gb/s | {t * 1e3:.2f} ms | {2 * (p - 1) * alpha * 1e3:.2f} ms | "
                  f"{step / (step + t):.0%} (speed-up {p * step / (step + t):.0f}x) | "
                  f"{p * b_star:,.0f} ({b_star:.0f} per host) |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-ms", default="4.37,14.5", help="seed model step at batch 32,128, 2 threads (README, uncontended)")
    parser.add_argument("--resnet-ms", default="396", help="resnet's step at batch 64 (README, 2 threads)")
    parser.add_argument("--latency-us", type=float, default=10.0, help="alpha: MPI message latency over the link")
    parser.add_argument("--sum-gbs", type=float, default=8.0, help="gamma: GB/s at which a core sums float32")
    args = parser.parse_args()
    alpha, gamma = args.latency_us * 1e-6, args.sum_gbs * 1e9
    seed = [float(v) / 1e3 for v in args.seed_ms.split(",")]
    table("seed (MNIST example) model", SEED_BYTES, fit_line(list(zip((32, 128), seed))), 32, alpha, gamma)
    table("resnet (benchmarks/run.py 'resnet')", RESNET_BYTES, fit_line([(64, float(args.resnet_ms) / 1e3)]), 64,
          alpha, gamma)


if __name__ == "__main__":
    main()
