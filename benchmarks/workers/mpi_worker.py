"""convx data-parallel training for benchmarks/mpi_scaling.py: run alone (one process) or under mpirun.

    python mpi_worker.py '<json spec>'

spec: model ("seed": the MNIST example model on MNIST, or one of _common.MODEL_CASES on synthetic
images), batch (global), steps, warmup, threads (per process), data (MNIST directory), allreduce_iters.
Rank 0 prints one ``BENCH_RESULT`` line: seconds per step, the gradient all-reduce's seconds per step
inside training (rank 0's), the same all-reduce timed alone (median), the gradient buffer's bytes.
"""

import json
import statistics
import sys
import time

import _common
import convx_worker


def _model(convx, spec):
    if spec["model"] == "seed":
        return convx_worker._seed_model(convx)
    convx.utils.set_random_seed(0)
    return _common.keras_model(convx, spec["model"])


def _data(spec, count):
    if spec["model"] == "seed":
        return _common.load_mnist(spec["data"], count)
    return _common.synthetic_images(count, seed=0)


def _allreduce_alone(world, grads, iters):
    buffer, extra = grads.copy(), __import__("numpy").zeros(4)
    times = []
    for _ in range(iters):
        world.comm.Barrier()
        start = time.perf_counter()
        world.allreduce_gradients(buffer, extra, "benchmark")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(spec):
    import convx

    convx.set_num_threads(spec["threads"])
    convx.distribution.set_distribution(convx.distribution.DataParallel())
    world = convx.distribution._state["world"]
    batch, steps, warmup = spec["batch"], spec["steps"], spec["warmup"]
    x, y = _data(spec, batch * (warmup + steps))
    model = _model(convx, spec)
    model.fit(x[: batch * warmup], y[: batch * warmup], batch_size=batch, epochs=1, verbose=0, shuffle=False)
    if world is not None:
        world.comm_seconds = 0.0
        world.comm.Barrier()
    start = time.perf_counter()
    model.fit(x[batch * warmup:], y[batch * warmup:], batch_size=batch, epochs=1, verbose=0, shuffle=False)
    seconds = time.perf_counter() - start
    result = {"s_per_step": seconds / steps, "ranks": 1 if world is None else world.size,
              "threads": spec["threads"], "grad_bytes": int(model._grads.nbytes), "params": int(model.count_params())}
    if world is not None:
        result["comm_s_per_step"] = world.comm_seconds / steps
        result["allreduce_alone_s"] = _allreduce_alone(world, model._grads, spec["allreduce_iters"])
        if world.rank != 0:
            return None
    return result


if __name__ == "__main__":
    outcome = bench(json.loads(sys.argv[1]))
    if outcome is not None:
        print(_common.RESULT_PREFIX + json.dumps(outcome), flush=True)
