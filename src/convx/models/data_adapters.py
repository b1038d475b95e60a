"""What ``fit`` / ``evaluate`` / ``predict`` accept as data, turned into batches per epoch.

Arrays (one per input, or a list/dict), a :class:`convx.data.Dataset`, a
:class:`convx.utils.PyDataset` or a Python generator/iterator. Each batch comes
out as ``(x, targets, sample_weight)`` already validated and converted by the
model (``x`` a list per input, ``targets`` a list per output, ``sample_weight``
None or a list per output), as Keras 3 unpacks ``(x,)``, ``(x, y)`` and
``(x, y, sample_weight)`` elements; ``class_weight`` becomes sample weights.
"""

import math
import warnings

import numpy as np

from convx import random as _random


def is_stream(x):
    """True for a Dataset, a PyDataset or an iterator/generator (data read batch by batch)."""
    if isinstance(x, (np.ndarray, list, tuple, dict)):  # in-memory data: the common case, decided without imports
        return False
    from convx.data import Dataset
    from convx.utils.py_dataset import PyDataset

    return isinstance(x, (Dataset, PyDataset)) or (hasattr(x, "__next__") and hasattr(x, "__iter__"))


def unpack_x_y_sample_weight(data):
    """``(x, y, sample_weight)`` from a batch ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data
    raise ValueError(f"Data is expected to be in format `x`, `(x,)`, `(x, y)`, or `(x, y, sample_weight)`, "
                     f"found a tuple of {len(data)} elements")


def check_stream_arguments(x, **arguments):
    """Keras' errors for arguments that a dataset or generator already carries."""
    kind = type(x).__name__
    for name, value in arguments.items():
        if value is None or (name == "validation_split" and not value):
            continue
        what = {"y": "the targets", "sample_weight": "the sample weights"}.get(name)
        if what is None:
            raise ValueError(f"`{name}` is only supported for NumPy arrays, not for a {kind}")
        raise ValueError(f"When providing `x` as a {kind}, `{name}` should not be passed. Instead, "
                         f"{what} should be included as part of the {kind}.")


def check_class_weight(class_weight):
    """``class_weight`` as a dict int -> float, checked as Keras 3 checks it (None stays None)."""
    if class_weight is None:
        return None
    if not hasattr(class_weight, "items") or not hasattr(class_weight, "get"):
        raise ValueError(f"`class_weight` must be a dict-like mapping of class indices to weights. Received: "
                         f"class_weight={class_weight} of type {type(class_weight)}.")
    cleaned = {}
    for key, value in class_weight.items():
        try:
            cleaned[int(key)] = float(value)
        except (TypeError, ValueError):
            raise ValueError("`class_weight` must be a dictionary with integer keys representing class indices. "
                             f"Received an invalid key: {key!r} of type {type(key)}.") from None
    return cleaned


def class_weight_to_sample_weights(y, class_weight):
    """Keras 3's rule: the weight of each sample's class (argmax of one-hot rows), 1.0 when absent."""
    labels = np.asarray(y)
    if labels.ndim > 1:
        labels = np.argmax(labels, axis=-1) if labels.shape[-1] != 1 else labels[..., 0]
    labels = np.round(labels).astype(np.int64).reshape(len(labels), -1)[:, 0]
    table_size = max(max(class_weight) + 1, int(labels.max()) + 1 if labels.size else 0)
    table = np.ones(table_size, dtype=np.float32)
    for key, value in class_weight.items():
        if key >= 0:
            table[key] = value
    return table[labels]


def float32_batch(array, name):
    """``array`` as a C-contiguous float32 batch (no copy when it already is), refusing NaN/inf."""
    if array is None:
        raise ValueError(f"Argument `{name}` must be an array, received None")
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"Argument `{name}` must hold numbers, received dtype {array.dtype}")
    if array.ndim < 1:
        raise ValueError(f"Argument `{name}` must have a batch axis, received a scalar")
    x32 = np.ascontiguousarray(array, dtype=np.float32)
    if array.dtype.kind == "f":
        check_finite(x32, name)
    return x32


def check_finite(array, name):
    """Refuse NaN or infinite values in a float ``array`` (inputs or targets: one NaN would turn every
    weight into NaN) with a ValueError naming the argument; None and integer arrays pass."""
    # min and max propagate NaN and expose +-inf without a dataset-sized boolean temporary
    if isinstance(array, np.ndarray) and array.dtype.kind == "f" and array.size and \
            not (np.isfinite(array.min()) and np.isfinite(array.max())):
        raise ValueError(f"Argument `{name}` contains NaN or infinite values (or values too large for float32); "
                         "expected finite values")


def weigh(losses, grad, weights):
    """Per-sample losses and gradient scaled by the samples' weights (rows of several values per sample
    share their sample's weight)."""
    n = len(weights)
    losses = losses * np.repeat(weights, losses.size // n).reshape(losses.shape)
    np.multiply(grad, weights.reshape((n,) + (1,) * (grad.ndim - 1)), out=grad)
    return losses, grad


class BatchPreparer:
    """Validates one batch's ``(x, y, sample_weight)`` through the model (float32 inputs, kernel targets)."""

    def __init__(self, model, class_weight, with_targets=True):
        self.model = model
        self.class_weight = class_weight
        self.with_targets = with_targets

    def __call__(self, x, y, sample_weight, names=("x", "y")):
        model = self.model
        if not self.with_targets:
            return model._prepare_x(x, names[0]), None, None
        if self.class_weight is not None and y is not None:
            if sample_weight is not None:
                raise ValueError("You cannot specify `class_weight` and `sample_weight` at the same time.")
            sample_weight = class_weight_to_sample_weights(y if not isinstance(y, (list, tuple, dict)) else
                                                           _single(y), self.class_weight)
        x, targets = model._prepare_xy(x, y, *names)
        for target in targets:
            check_finite(target, names[1])
        if self.class_weight is not None and len(model._graph.outputs) > 1:
            raise ValueError("`class_weight` is only supported for Models with a single output.")
        return x, targets, self.weights(sample_weight, len(x[0]))

    def weights(self, sample_weight, n):
        """``sample_weight`` (an array, or a list/dict per output) as a float32 (n,) array per output."""
        if sample_weight is None:
            return None
        model = self.model
        outputs = len(model._graph.outputs)
        if isinstance(sample_weight, (dict, list, tuple)) and not isinstance(sample_weight, np.ndarray) \
                and (isinstance(sample_weight, dict) or outputs > 1):
            per_output = model._per_output(sample_weight if isinstance(sample_weight, dict) else list(sample_weight),
                                           "sample_weight")
        else:
            per_output = [sample_weight] * outputs
        return [None if w is None else _weight_array(w, n) for w in per_output]


def _single(y):
    values = list(y.values()) if isinstance(y, dict) else list(y)
    return values[0]


def _weight_array(weights, n):
    w = np.asarray(weights)
    if w.dtype.kind not in "biuf":
        raise ValueError(f"sample_weight must hold numbers, received dtype {w.dtype}")
    if w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},) (one weight per sample), received shape {w.shape}")
    w = np.ascontiguousarray(w, dtype=np.float32)
    if not np.isfinite(w).all():
        raise ValueError("sample_weight contains NaN or infinite values")
    return w


class ArrayBatches:
    """In-memory arrays: batches sliced in order, or gathered into reused buffers when shuffling."""

    def __init__(self, x, y, sample_weight, batch_size, shuffle):
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.n = len(x[0])
        self.batch_size, self.shuffle = batch_size, shuffle
        self.steps = -(-self.n // batch_size)
        capacity = min(batch_size, self.n) if shuffle else 0
        self.x_buffers = [np.empty((capacity,) + a.shape[1:], dtype=a.dtype) for a in x]
        self.y_buffers = [None if t is None else np.empty((capacity,) + t.shape[1:], dtype=t.dtype) for t in y]
        self.ran_out = False

    def epoch(self):
        order = _random.generator().permutation(self.n) if self.shuffle else None
        size = self.batch_size
        for step in range(self.steps):
            start, stop = step * size, min((step + 1) * size, self.n)
            xb, yb = self.take(start, stop, order)
            yield xb, yb, self.take_weights(start, stop, order)

    def take(self, start, stop, order):
        if order is None:
            return [a[start:stop] for a in self.x], [None if t is None else t[start:stop] for t in self.y]
        idx = order[start:stop]
        count = stop - start
        xb = [np.take(a, idx, axis=0, out=buf[:count]) for a, buf in zip(self.x, self.x_buffers)]
        yb = [None if t is None else np.take(t, idx, axis=0, out=buf[:count]) for t, buf in zip(self.y, self.y_buffers)]
        return xb, yb

    def take_weights(self, start, stop, order):
        if self.sample_weight is None:
            return None
        rows = slice(start, stop) if order is None else order[start:stop]
        return [None if w is None else w[rows] for w in self.sample_weight]


def split_validation(x, y, sw, validation_split, batch_size):
    """The last ``validation_split`` of the samples (before shuffling) as validation batches:
    ``(x, y, sample_weight)`` of the rest and the validation ``ArrayBatches``."""
    n = len(x[0])
    split = int(math.floor(n * (1.0 - validation_split)))
    if split == 0 or split == n:
        raise ValueError(
            f"Training data contains {n} samples, which is not sufficient to split it into a "
            f"validation and training set as specified by `validation_split={validation_split}`. "
            "Either provide more data, or a different value for the `validation_split` argument."
        )
    head, tail = slice(None, split), slice(split, None)
    val = ArrayBatches(_rows(x, tail), _rows(y, tail), _rows(sw, tail), batch_size, False)
    return _rows(x, head), _rows(y, head), _rows(sw, head), val


def _rows(arrays, rows):
    return None if arrays is None else [None if a is None else a[rows] for a in arrays]


def validation_batches(model, validation_data, batch_size, steps):
    """Batches of ``validation_data``: arrays ``(x, y[, sample_weight])`` or a Dataset/PyDataset/iterator."""
    if is_stream(validation_data):
        return StreamBatches(validation_data, BatchPreparer(model, None), steps, kind="validation")
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise ValueError(
            "validation_data must be a tuple (x_val, y_val) or (x_val, y_val, val_sample_weight), or a "
            f"Dataset, PyDataset or generator; received {type(validation_data).__name__}"
        )
    x, y, sw = unpack_x_y_sample_weight(tuple(validation_data))
    x, y, sw = BatchPreparer(model, None)(x, y, sw, ("validation_data[0]", "validation_data[1]"))
    return ArrayBatches(x, y, sw, batch_size, False)


class StreamBatches:
    """Batches read from a Dataset, a PyDataset or an iterator, epoch after epoch, as Keras 3 reads them.

    Without ``steps``, an epoch is one full pass (a Dataset or PyDataset restarts each epoch; an
    iterator is read once). With ``steps``, an epoch is ``steps`` batches taken from one iterator kept
    across epochs (restarted after a full pass of a finite source); running out of data early stops
    training with Keras' warning.
    """

    def __init__(self, source, prepare, steps=None, shuffle=False, kind="training"):
        from convx.data import Dataset
        from convx.utils.py_dataset import PyDataset

        self.source, self.prepare, self.shuffle, self.kind = source, prepare, shuffle, kind
        self.is_dataset, self.is_py_dataset = isinstance(source, Dataset), isinstance(source, PyDataset)
        self.size = self._known_size()
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1):
            raise ValueError(f"steps must be a positive integer or None, received {steps!r}")
        self.steps_arg = None if steps is None else int(steps)
        if self.steps_arg is None and self.size is None and self.is_py_dataset:
            raise ValueError("This PyDataset is endless (num_batches is None): pass steps_per_epoch / steps")
        self.steps = self.steps_arg if self.steps_arg is not None else self.size
        self.iterator, self.seen, self.ran_out = None, 0, False

    def _known_size(self):
        if self.is_dataset:
            n = self.source.cardinality()
            if n == -1 and self.kind == "training":
                return None
            return n if n >= 0 else None
        if self.is_py_dataset:
            return self.source.num_batches
        return None

    def _new_iterator(self):
        if self.is_dataset:
            return iter(self.source)
        if self.is_py_dataset:
            from convx.utils.py_dataset import read_batches

            count = self.size
            if count is None:
                import itertools

                return read_batches(self.source, itertools.count())
            order = self.shuffled_order(count) if self.shuffle else range(count)
            return read_batches(self.source, order)
        return self.source  # an iterator is read once, across the epochs

    def shuffled_order(self, count):
        """A random order of a PyDataset's ``count`` batches (data parallelism uses rank 0's on every rank)."""
        return _random.generator().permutation(count)

    def epoch(self):
        if self.is_py_dataset:
            self.source.on_epoch_begin()
        if self.iterator is None or self.steps_arg is None:
            self.close()
            self.iterator, self.seen = self._new_iterator(), 0
        step = 0
        while self.steps_arg is None or step < self.steps_arg:
            try:
                data = next(self.iterator)
            except StopIteration:
                if self.steps_arg is not None or (self.is_py_dataset is False and self.is_dataset is False
                                                  and self.seen == 0):
                    self._warn_out_of_data()
                self.iterator = None
                break
            self.seen += 1
            step += 1
            yield self.prepare(*unpack_x_y_sample_weight(data))
            if self.size is not None and self.steps_arg is not None and self.seen >= self.size:
                self.close()  # a full pass of a finite source: the next epoch starts a new one
                break
        if self.is_py_dataset:
            self.source.on_epoch_end()

    def _warn_out_of_data(self):
        self.ran_out = True
        if self.kind == "training":
            warnings.warn("Your input ran out of data; interrupting training. Make sure that your dataset or "
                          "generator can generate at least `steps_per_epoch * epochs` batches. You may need to "
                          "use the `.repeat()` function when building your dataset.", stacklevel=4)

    def close(self):
        if self.iterator is not None and self.iterator is not self.source:
            close = getattr(self.iterator, "close", None)
            if close is not None:
                close()
        self.iterator = None




def predict_stream(model, data, callbacks):
    """``model.predict`` over batches read from a stream: the outputs concatenated per output."""
    plan, chunks = None, None
    callbacks.on_predict_begin()
    step = -1
    for step, (xb, _, _) in enumerate(data.epoch()):
        if plan is None:
            plan = model._plan(False, False)
            chunks = [[] for _ in model._graph.outputs]
        model._clear_activity_losses()
        callbacks.on_predict_batch_begin(step)
        values = [np.array(v) for v in plan.forward(xb, training=False)]  # own copies of the plan's buffers
        for chunk, value in zip(chunks, values):
            chunk.append(value)
        callbacks.on_predict_batch_end(step, {"outputs": model._structure(values)})
    callbacks.on_predict_end()
    if step < 0:
        raise ValueError("The prediction data is empty: no batch was received")
    return model._structure([np.concatenate(chunk) for chunk in chunks])


def predict_arrays(model, x, batch_size, steps, callbacks):
    """``model.predict`` over in-memory inputs ``x`` (a float32 array per input), written into one
    array per output."""
    n = len(x[0])
    plan = model._plan(False, False)
    outs = [np.empty((n,) + tuple(t.shape[1:]), dtype=np.float32) for t in model._graph.outputs]
    callbacks.on_predict_begin()
    for step in range(steps):
        model._clear_activity_losses()
        callbacks.on_predict_batch_begin(step)
        rows = slice(step * batch_size, (step + 1) * batch_size)
        for out, value in zip(outs, plan.forward([a[rows] for a in x], training=False)):
            out[rows] = value
        # callbacks see the rows of the returned arrays, not the plan's reused buffers
        callbacks.on_predict_batch_end(step, {"outputs": model._structure([out[rows] for out in outs])})
    callbacks.on_predict_end()
    return model._structure(outs)
