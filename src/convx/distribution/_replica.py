"""One rank's part in the training loops: its share of each global batch, the all-reduced step,
global logs, and predictions gathered from every rank.

Exactness: the gradient of a global batch of N rows is ``sum_r (n_r / N) * g_r`` where ``g_r`` is
rank r's gradient of the mean loss over its n_r rows. The loss kernels average over the local
batch, so each rank scales the loss gradient by ``n_r / N`` before its backward pass and the
all-reduce sums: the result equals one process's gradient up to float32 summation order. The
weights' regularizer gradients are added after the sum (once); the activity penalties' gradients
are sums over rows, so they enter each rank's backward pass unscaled. Every rank receives the same
sum and runs the same optimizer kernel, so every rank's weights stay bit-identical.

Logs: the loss and metric trackers keep float64 (total, count) states; each rank's change of them
in a step travels in a small float64 all-reduce next to the gradients, so every rank holds the
global running values (what one process on the global batches would log).
"""

import numpy as np

from convx import random as _random
from convx.distribution._streams import StreamShares, predict_stream


def shard_bounds(start, stop, rank, size):
    """Rank ``rank``'s rows ``[lo, hi)`` of the global batch ``[start, stop)``: contiguous shares in rank
    order whose sizes differ by at most one (a rank gets none when the batch has fewer rows than ranks)."""
    n = stop - start
    return start + rank * n // size, start + (rank + 1) * n // size


class Replica:
    """The training loops' view of the MPI world for one ``fit`` / ``evaluate`` / ``predict`` call."""

    def __init__(self, world, auto_shard):
        if not auto_shard:
            raise ValueError("convx.distribution.DataParallel(auto_shard_dataset=False) is not supported: every "
                             "rank passes the same arrays and takes its share of each global batch")
        self.world, self.rank, self.size = world, world.rank, world.size
        self.step, self.global_rows = 0, 0

    def shares(self, batches):
        """This rank's shares of the global batches of ``batches`` (in-memory arrays, or a stream: a
        Dataset, PyDataset or generator that every rank reads whole)."""
        if not hasattr(batches, "take"):
            return StreamShares(batches, self)
        return _Shares(batches, self)

    # ----- replicas start equal -------------------------------------------------------------------------------

    def broadcast_weights(self, model):
        """Rank 0's weights (trainable, in the flat buffer, and non-trainable) on every rank."""
        sizes = np.array([model._params.size, sum(w.value.size for w in model.non_trainable_weights)], np.int64)
        reference = sizes.copy()
        self.world.broadcast(reference, "the broadcast of the model's size")
        if not np.array_equal(sizes, reference):
            raise ValueError(f"convx.distribution: rank {self.rank}'s model has {sizes[0]} trainable and {sizes[1]} "
                             f"non-trainable weights, rank 0's {reference[0]} and {reference[1]}: every rank must "
                             "build the same model")
        if model._params.size:
            self.world.broadcast(model._params, "the broadcast of the initial weights")
        others = [w for w in model.non_trainable_weights if w.value.size]
        if others:
            packed = np.concatenate([w.value.astype(np.float64).reshape(-1) for w in others])
            self.world.broadcast(packed, "the broadcast of the non-trainable weights")
            offset = 0
            for w in others:
                w.value[...] = packed[offset:offset + w.value.size].reshape(w.value.shape)
                offset += w.value.size

    # ----- steps ----------------------------------------------------------------------------------------------

    def train_step(self, model, x, targets, plan, sample_weight=None):
        """One synchronous step on this rank's rows ``x`` of a global batch of ``self.global_rows`` rows."""
        global_rows = self.global_rows
        penalties = model._penalties
        penalties.clear_activity()
        trackers = _Trackers(model)
        local = len(x[0])
        if global_rows < self.size and _synchronized_layers(model):
            raise ValueError(
                f"convx.distribution: a global batch of {global_rows} rows over {self.size} ranks leaves a rank "
                f"without rows, which BatchNormalization(synchronized=True) ({_synchronized_layers(model)}) cannot "
                "normalize: choose a batch_size (and a number of samples) whose batches have at least one row per rank"
            )
        if local:
            outputs = plan.forward(x, training=True)
            loss_values, grads = model._loss_and_grads(plan, outputs, targets, sample_weight)
            share = np.float32(local / global_rows)
            for grad in grads:
                if grad is not None:
                    np.multiply(grad, share, out=grad)
            plan.backward(grads)
            trackers.record(model, loss_values, targets, outputs, penalties, sample_weight)
        else:
            model._grads.fill(0.0)
        self.step += 1
        self.world.allreduce_gradients(model._grads, trackers.deltas, f"the gradient all-reduce of step {self.step}")
        penalty = penalties.value_and_add_grads()
        if model._params.size:
            model.optimizer.update_flat(model._params, model._grads)
        penalties.constrain()
        trackers.apply(model, penalty, global_rows)

    def test_step(self, model, x, targets, plan, sample_weight=None):
        global_rows = self.global_rows
        penalties = model._penalties
        penalties.clear_activity()
        trackers = _Trackers(model)
        if len(x[0]):
            outputs = plan.forward(x, training=False)
            loss_values, _ = model._loss_and_grads(plan, outputs, targets, sample_weight)
            trackers.record(model, loss_values, targets, outputs, penalties, sample_weight)
        self.world.allreduce_sum(trackers.deltas, "the all-reduce of the evaluation's metrics")
        trackers.apply(model, penalties.value(), global_rows)

    def predict_stream(self, model, data, callbacks):
        """``model.predict`` over a Dataset, PyDataset or generator: see ``_streams.predict_stream``."""
        return predict_stream(self, model, data, callbacks)

    def predict_arrays(self, model, x, batch_size, steps, callbacks):
        """``model.predict`` over in-memory inputs: this rank's share of every batch, then every rank's rows."""
        n = len(x[0])
        plan = model._plan(False, False)
        outs = [np.empty((n,) + tuple(t.shape[1:]), dtype=np.float32) for t in model._graph.outputs]
        callbacks.on_predict_begin()
        for step in range(steps):
            model._clear_activity_losses()
            callbacks.on_predict_batch_begin(step)
            rows = slice(*shard_bounds(step * batch_size, min((step + 1) * batch_size, n), self.rank, self.size))
            if rows.stop > rows.start:
                for out, value in zip(outs, plan.forward([a[rows] for a in x], training=False)):
                    out[rows] = value
            callbacks.on_predict_batch_end(step, {"outputs": model._structure([out[rows] for out in outs])})
        sizes = [min(batch_size, n - start) for start in range(0, n, batch_size)]
        outs = self.gather([out[self._rows_of(self.rank, sizes)] for out in outs], sizes)
        callbacks.on_predict_end()
        return model._structure(outs)

    def gather(self, local, sizes):
        """Every row of the batches of ``sizes`` rows, on every rank, from each rank's ``local`` arrays (the
        rows of its share of every batch, in batch order)."""
        indices = [self._rows_of(rank, sizes) for rank in range(self.size)]
        counts, order = [len(i) for i in indices], np.concatenate(indices)
        gathered = []
        for rows in local:
            out = np.empty((sum(sizes),) + rows.shape[1:], dtype=rows.dtype)
            out[order] = self.world.allgather_rows(rows, counts, "the gather of the predictions")
            gathered.append(out)
        return gathered

    def _rows_of(self, rank, sizes):
        """Indices of the rows rank ``rank`` predicts: its share of every batch of ``sizes`` rows."""
        starts = np.cumsum([0] + list(sizes[:-1]))
        shares = [shard_bounds(start, start + n, rank, self.size) for start, n in zip(starts.tolist(), sizes)]
        return np.concatenate([np.arange(lo, hi) for lo, hi in shares])


def _synchronized_layers(model):
    return [layer.name for layer in model._all_layers if getattr(layer, "synchronized", False)]


class _Shares:
    """The batches of an ``ArrayBatches`` as this rank sees them: its share of every global batch (rank 0's
    shuffle, broadcast each epoch); the replica learns each global batch's size."""

    def __init__(self, batches, replica):
        self.batches, self.replica = batches, replica
        self.steps, self.ran_out = batches.steps, False

    def epoch(self):
        batches, replica = self.batches, self.replica
        order = _random.generator().permutation(batches.n) if batches.shuffle else None
        if order is not None:
            replica.world.broadcast(order, "the broadcast of the epoch's shuffle")
        for step in range(batches.steps):
            start, stop = step * batches.batch_size, min((step + 1) * batches.batch_size, batches.n)
            lo, hi = shard_bounds(start, stop, replica.rank, replica.size)
            replica.global_rows = stop - start
            xb, yb = batches.take(lo, hi, order)
            yield xb, yb, batches.take_weights(lo, hi, order)


class _Trackers:
    """A step's changes of the loss and metric trackers, recorded locally, summed over the ranks, applied.

    deltas: [sum of the weighted mean losses times the local rows, the local activity penalty,
    per output loss: its mean times the local rows, per metric: (total, count) changes]."""

    def __init__(self, model):
        self.output_trackers = model._output_loss_trackers
        self.metrics = [metric for _, _, metric in model._metric_objects]
        self.deltas = np.zeros(2 + len(self.output_trackers) + 2 * len(self.metrics), np.float64)
        self.activity = 0.0

    def record(self, model, loss_values, targets, outputs, penalties, sample_weight=None):
        n = len(outputs[0])
        means = [values.sum() / values.size for values in loss_values]
        total = 0.0
        for ol, mean in zip(model._output_losses, means):
            total += ol.weight * float(mean)
        activity = sum(float(loss) for layer in penalties.activity_layers for loss in layer._activity_losses)
        self.activity = activity
        self.deltas[0], self.deltas[1] = total * n, activity
        k = 2
        for mean in means[:len(self.output_trackers)]:
            self.deltas[k] = float(mean) * n
            k += 1
        for _, index, metric in model._metric_objects:
            before = metric._total, metric._count
            weight = None
            if sample_weight is not None and id(metric) in model._weighted_metric_ids:
                weight = sample_weight[index]
            metric.update_state(targets[index], outputs[index], sample_weight=weight)
            self.deltas[k], self.deltas[k + 1] = metric._total - before[0], metric._count - before[1]
            metric._total, metric._count = before
            k += 2

    def apply(self, model, penalty, global_rows):
        """Update every tracker with the global batch's values (``penalty``: this rank's penalty
        value, whose activity part is replaced by the sum over the ranks)."""
        deltas = self.deltas
        loss = deltas[0] / global_rows
        if penalty is not None:
            loss += float(penalty) - self.activity + deltas[1]
        model._loss_tracker.update_state(loss, sample_weight=global_rows)
        k = 2
        for tracker in self.output_trackers:
            tracker.update_state(deltas[k] / global_rows, sample_weight=global_rows)
            k += 1
        for metric in self.metrics:
            metric._total += deltas[k]
            metric._count += deltas[k + 1]
            k += 2
