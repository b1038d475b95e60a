"""A data-parallel job for tests/distribution (run under mpirun, or alone as the one-process reference).

    python mpi_worker.py SCENARIO OUTDIR

Scenarios: train (a small CNN, Adam, uneven global batches, sample weights; weights, logs, evaluate and
predict results saved per rank), syncbn (the same with BatchNormalization(synchronized=True)), raise / kill /
hang (rank 1 raises, is killed, or stops joining collectives at its 4th step), resume (Dropout, 3 epochs,
BackupAndRestore into a directory of each rank's own, of which rank 0's alone gets a backup, and a CSVLogger; with
CONVX_KILL_STEP=k, rank 1 kills itself with SIGKILL at its k-th step), dataset (a Dataset, a PyDataset and a
generator in fit, evaluate and predict), mismatch (the same with a different Dataset shuffle on each rank).
"""

import os
import signal
import sys
import time

import numpy as np

import convx as keras

# 201 samples: 4 full global batches of 50 and one of 1 row, so one rank has none (batch norm: 203, 3 rows)
BATCH, EPOCHS = 50, 2


def data(samples):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((samples, 8, 8, 2)).astype(np.float32)
    y = rng.integers(0, 3, samples)
    return x, y


def model(batch_norm, dropout=False):
    keras.utils.set_random_seed(int(os.environ.get("SEED", "1")))  # ranks differ: the broadcast makes them equal
    layers = [keras.Input((8, 8, 2)), keras.layers.Conv2D(4, 3, activation="relu")]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization(synchronized=True))
    layers += [keras.layers.MaxPooling2D(2), keras.layers.Flatten()]
    layers += [keras.layers.Dropout(0.3)] if dropout else []  # each rank's own draws: a resume restores them
    layers.append(keras.layers.Dense(3, activation="softmax"))
    net = keras.Sequential(layers)
    net.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return net


class Fault(keras.callbacks.Callback):
    def __init__(self, kind, rank, at_step=4):
        super().__init__()
        self.kind, self.rank, self.steps, self.at_step = kind, rank, 0, at_step

    def on_train_batch_begin(self, batch, logs=None):
        self.steps += 1
        if self.rank != 1 or self.steps != self.at_step:
            return
        if self.kind == "raise":
            raise RuntimeError("a fault injected on rank 1")
        if self.kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.kind == "hang":
            time.sleep(3600)


def resume(net, x, y, outdir, rank):
    """Fit with BackupAndRestore; rank 1 dies at its CONVX_KILL_STEP-th step when that is set."""
    backup = keras.callbacks.BackupAndRestore(os.path.join(outdir, f"backup_rank{rank}"))
    kill = Fault("kill", rank, int(os.environ.get("CONVX_KILL_STEP", "0")))
    log = keras.callbacks.CSVLogger(os.path.join(outdir, f"log_rank{rank}.csv"))  # rank 0's alone is written
    history = net.fit(x, y, batch_size=BATCH, epochs=3, verbose=0, callbacks=[backup, kill, log])
    return {f"log_{k}": np.array(v) for k, v in history.history.items()}


class Batches(keras.utils.PyDataset):
    """The arrays in batches of ``BATCH`` rows."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y = x, y

    @property
    def num_batches(self):
        return -(-len(self.x) // BATCH)

    def __getitem__(self, index):
        rows = slice(index * BATCH, (index + 1) * BATCH)
        return self.x[rows], self.y[rows]


def streams(net, x, y, rank, mismatch=False):
    """An epoch on a shuffled Dataset (with sample weights, validated on a PyDataset), one on a shuffled
    PyDataset; evaluate on a generator, predict on a Dataset. ``mismatch``: rank 1's shuffle differs."""
    weights = np.random.default_rng(3).uniform(0.5, 1.5, len(x))
    # built before the per-rank reseed below, as every rank's script would: the shuffle's seed is the same
    dataset = keras.data.Dataset.from_tensor_slices((x, y, weights)).shuffle(len(x), seed=rank if mismatch else None)
    keras.utils.set_random_seed(int(os.environ.get("SEED", "1")) + rank)  # rank 0's PyDataset order is used
    first = net.fit(dataset.batch(BATCH), epochs=1, verbose=0, validation_data=Batches(x[:90], y[:90]))
    second = net.fit(Batches(x, y), epochs=1, verbose=0, shuffle=True)
    logs = {f"log1_{k}": np.array(v) for k, v in first.history.items()}
    logs.update({f"log2_{k}": np.array(v) for k, v in second.history.items()})
    evaluated = net.evaluate((batch for batch in Batches(x, y)), verbose=0)
    predicted = net.predict(keras.data.Dataset.from_tensor_slices(x).batch(37), verbose=0)
    return dict(logs, evaluated=np.array(evaluated), predicted=predicted)


def main(scenario, outdir):
    keras.set_num_threads(1)
    timeout = float(os.environ.get("CONVX_TEST_TIMEOUT", "60"))
    keras.distribution.set_distribution(keras.distribution.DataParallel(timeout=timeout))
    dist = keras.distribution.distribution()
    rank = dist.data_shard_id
    x, y = data(203 if scenario == "syncbn" else 201)
    net = model(scenario == "syncbn", dropout=scenario == "resume")
    seed = int(os.environ.get("SEED", "1"))
    if scenario in ("dataset", "mismatch"):
        results = streams(net, x, y, rank, mismatch=scenario == "mismatch")
        np.savez(os.path.join(outdir, f"{scenario}_rank{rank}_of{dist.num_processes}.npz"), *net.get_weights(),
                 **results)
        return
    keras.utils.set_random_seed(seed + rank)  # different shuffles per rank unless rank 0's is shared
    if scenario == "resume":
        logs = resume(net, x, y, outdir, rank)
        np.savez(os.path.join(outdir, f"{scenario}_rank{rank}_of{dist.num_processes}.npz"), *net.get_weights(),
                 predicted=net.predict(x, batch_size=BATCH, verbose=0), **logs)
        return
    # per-sample weights in the plain case: a rank's weighted loss sums over its rows, divided by the global batch
    weights = np.random.default_rng(3).uniform(0.5, 1.5, len(x)) if scenario == "train" else None
    history = net.fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0, callbacks=[Fault(scenario, rank)],
                      sample_weight=weights)
    evaluated = net.evaluate(x, y, batch_size=37, verbose=0)
    predicted = net.predict(x, batch_size=37, verbose=0)
    np.savez(os.path.join(outdir, f"{scenario}_rank{rank}_of{dist.num_processes}.npz"),
             *net.get_weights(), evaluated=np.array(evaluated), predicted=predicted,
             **{f"log_{k}": np.array(v) for k, v in history.history.items()})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
