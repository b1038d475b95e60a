"""Datasets, PyDatasets and generators under data parallelism: every rank reads the whole stream and takes
its share of each global batch.

This is tf.distribute's "DATA" auto-sharding with a global batch: a ``Dataset`` batched to the global batch
size is read whole by every rank, and rank r keeps rows ``shard_bounds(0, n, r, p)`` of each batch of n rows
(the same contiguous shares as in-memory arrays get), so p ranks train on the very global batches one process
would. That needs every rank's stream to give the same batches: a ``Dataset``'s shuffle seeds are drawn from
convx's generator when the pipeline is built (the same ``convx.utils.set_random_seed`` on every rank, or
``shuffle(seed=...)``, makes them equal), and a shuffled ``PyDataset`` reads its batches in rank 0's order.
Before each batch a small all-reduce checks that every rank has one, of the same size and with the same
targets (a checksum), and refuses a stream that differs between ranks with an error instead of training on
overlapping rows.
"""

import numpy as np

from convx import random as _random


def _checksum(arrays):
    """A number that changes when the rows of ``arrays`` (a list, None entries skipped) change or move."""
    total = 0.0
    for array in arrays or ():
        if array is not None and len(array):
            rows = np.asarray(array, np.float64).reshape(len(array), -1).sum(axis=1)
            total += float(np.dot(rows, np.arange(1, len(rows) + 1, dtype=np.float64)))
    return total


class StreamShares:
    """The batches of a ``StreamBatches`` as this rank sees them: its share of every global batch.

    Parameters
    ----------
    batches : convx.models.data_adapters.StreamBatches
    replica : convx.distribution._replica.Replica
        Learns each global batch's number of rows (``global_rows``).
    """

    def __init__(self, batches, replica):
        self.batches, self.replica = batches, replica
        self.steps = batches.steps
        if batches.is_py_dataset and batches.shuffle:
            batches.shuffled_order = self._rank0_order

    @property
    def ran_out(self):
        return self.batches.ran_out

    def _rank0_order(self, count):
        order = _random.generator().permutation(count)
        self.replica.world.broadcast(order, "the broadcast of the PyDataset's shuffle")
        return order

    def epoch(self):
        replica = self.replica
        rank, size = replica.rank, replica.size
        step = 0
        for xb, yb, swb in self.batches.epoch():
            n = len(xb[0])
            self._agree(step, n, _checksum(yb))
            lo, hi = rank * n // size, (rank + 1) * n // size
            replica.global_rows = n
            step += 1
            yield ([a[lo:hi] for a in xb], None if yb is None else [None if t is None else t[lo:hi] for t in yb],
                   None if swb is None else [None if w is None else w[lo:hi] for w in swb])
        self._agree(step, 0, 0.0)

    def _agree(self, step, rows, checksum):
        """Check that every rank has a batch (or none) of ``rows`` rows with the same targets."""
        has = 1.0 if rows else 0.0
        values = np.array([has, -has, rows, -rows, checksum, -checksum], np.float64)
        self.replica.world.allreduce_max(values, f"the check of the {self.batches.kind} data's batch {step}")
        if values[0] == -values[1] and values[2] == -values[3] and values[4] == -values[4 + 1]:
            return
        if values[0] != -values[1]:
            what = f"ran out of batches after {step} while another rank's had more"
        elif values[2] != -values[3]:
            what = f"gave batch {step} with {rows} rows while another rank's had {int(values[2])} or {int(-values[3])}"
        else:
            what = f"gave batch {step} with other targets than another rank's"
        raise ValueError(
            f"convx.distribution: rank {self.replica.rank}'s {self.batches.kind} data {what}. Every rank reads the "
            "whole Dataset, PyDataset or generator and takes its share of each global batch, so it must give every "
            "rank the same batches: build it after the same convx.utils.set_random_seed(...) on every rank, or pass "
            "shuffle(seed=...)"
        )


def predict_stream(replica, model, data, callbacks):
    """``model.predict`` over a stream: this rank predicts its share of every batch, then every rank's rows
    are gathered in the order of the batches, on every rank."""
    plan, chunks, sizes = None, None, []
    shapes = [tuple(t.shape[1:]) for t in model._graph.outputs]
    callbacks.on_predict_begin()
    for step, (xb, _, _) in enumerate(StreamShares(data, replica).epoch()):
        if plan is None:
            plan, chunks = model._plan(False, False), [[] for _ in shapes]
        sizes.append(replica.global_rows)
        model._clear_activity_losses()
        callbacks.on_predict_batch_begin(step)
        if len(xb[0]):
            values = [np.array(v) for v in plan.forward(xb, training=False)]  # own copies of the plan's buffers
        else:
            values = [np.empty((0,) + shape, np.float32) for shape in shapes]
        for chunk, value in zip(chunks, values):
            chunk.append(value)
        callbacks.on_predict_batch_end(step, {"outputs": model._structure(values)})
    callbacks.on_predict_end()
    if not sizes:
        raise ValueError("The prediction data is empty: no batch was received")
    return model._structure(replica.gather([np.concatenate(chunk) for chunk in chunks], sizes))
