"""``EvaluationLoops``: ``evaluate``, ``predict``, the test step and the calls on one batch."""

import numpy as np

from convx.distribution import _data_parallel, _writes_files
from convx.models import custom_step as _custom_step
from convx.models import data_adapters as _adapters
from convx.models.arguments import _batch_size, _callback_list, _one_at_a_time, _unsupported, _verbosity


class EvaluationLoops:
    """Mixin of :class:`~convx.models.model.Model`: evaluation and prediction."""

    def _test_step(self, x, targets, plan, sample_weight=None):
        self._step_logs = _custom_step.run_test_step(self, x, targets) if self._dispatches("test_step") else None
        if self._step_logs is not None:
            return
        penalties = self._penalties
        penalties.clear_activity()
        outputs = plan.forward(x, training=False)
        loss_values, _ = self._loss_and_grads(plan, outputs, targets, sample_weight)
        self._update_trackers(loss_values, targets, outputs, penalties.value(), sample_weight)

    def _evaluate_prepared(self, data, callbacks, plan=None):
        self._reset_metrics()
        callbacks.on_test_begin()
        replica = _data_parallel()
        data = data if replica is None else replica.shares(data)
        step = -1
        for step, (xb, yb, swb) in enumerate(data.epoch()):
            if plan is None:
                plan = self._prepare_step()[1]
            callbacks.on_test_batch_begin(step)
            if replica is None:
                self._test_step(xb, yb, plan, swb)
            else:
                replica.test_step(self, xb, yb, plan, swb)
            callbacks.on_test_batch_end(step, self._logs())
        if step < 0:
            raise ValueError("The evaluation data is empty: no batch was received")
        logs = self._logs()
        callbacks.on_test_end(logs)
        return logs

    @_one_at_a_time
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """Loss and metrics on ``(x, y)`` (arrays, or a Dataset/PyDataset/generator of batches): a float
        (loss only), a list ``[loss, *metrics]`` or a dict."""
        self._require_compiled("evaluate")
        batch_size = _batch_size(batch_size)
        verbose = _verbosity(verbose) if _writes_files() else 0
        prepare = _adapters.BatchPreparer(self, None)
        if _adapters.is_stream(x):
            _adapters.check_stream_arguments(x, y=y, sample_weight=sample_weight)
            data = _adapters.StreamBatches(x, prepare, steps, kind="evaluation")
        else:
            _unsupported(steps=steps)
            data = _adapters.ArrayBatches(*prepare(x, y, sample_weight), batch_size, False)
        callbacks = _callback_list(callbacks, add_progbar=verbose != 0, model=self, verbose=verbose, epochs=1,
                                   steps=data.steps)
        logs = self._evaluate_prepared(data, callbacks)
        return logs if return_dict else self._flatten_logs(logs)

    @_one_at_a_time
    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for ``x`` (arrays, or a Dataset/PyDataset/generator of batches), computed in batches:
        one float32 array, or a list/dict like the model's outputs."""
        batch_size = _batch_size(batch_size)
        verbose = _verbosity(verbose) if _writes_files() else 0
        if _adapters.is_stream(x):
            data = _adapters.StreamBatches(x, _adapters.BatchPreparer(self, None, with_targets=False), steps,
                                           kind="prediction")
            callbacks = _callback_list(callbacks, add_progbar=verbose != 0, model=self, verbose=verbose, epochs=1,
                                       steps=data.steps)
            replica = _data_parallel()
            if replica is not None:  # each rank predicts its share of every batch; every rank returns all rows
                return replica.predict_stream(self, data, callbacks)
            return _adapters.predict_stream(self, data, callbacks)
        _unsupported(steps=steps)
        x = self._prepare_x(x)
        steps = -(-len(x[0]) // batch_size)
        callbacks = _callback_list(callbacks, add_progbar=verbose != 0, model=self, verbose=verbose, epochs=1,
                                   steps=steps)
        replica = _data_parallel()
        if replica is not None:  # each rank predicts its share of every batch; every rank returns all rows
            return replica.predict_arrays(self, x, batch_size, steps, callbacks)
        return _adapters.predict_arrays(self, x, batch_size, steps, callbacks)

    def _clear_activity_losses(self):
        """Forget the activity penalties of earlier calls (Keras clears them at each top-level call)."""
        for layer in self._all_layers:
            if getattr(layer, "_activity_losses", None):
                layer._activity_losses.clear()

    @_one_at_a_time
    def _run_copy(self, x, training):
        x = self._prepare_x(x)  # builds a subclassed model on its first call
        self._clear_activity_losses()
        outputs = self._plan(bool(training), False).forward(x, training=bool(training))
        # the plan's outputs are reused buffers (or the input itself): the caller gets its own arrays
        return self._structure([np.array(o) for o in outputs])

    @_one_at_a_time
    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """Loss/metrics on one batch without updating the weights."""
        self._require_compiled("test_on_batch")
        x, y, sw = _adapters.BatchPreparer(self, None)(x, y, sample_weight)
        self._test_step(x, y, self._prepare_step()[1], sw)
        logs = self._logs()
        return logs if return_dict else self._flatten_logs(logs)

    def predict_on_batch(self, x):
        """Outputs for one batch (new arrays)."""
        return self._run_copy(x, False)

    def test_step(self, data):
        """One evaluation step on ``data`` (``(x, y)``); returns the logs (override as ``train_step``)."""
        x, y = data if isinstance(data, tuple) else (data, None)
        x, targets = self._prepare_xy(x, y)
        self._test_step(x, targets, self._prepare_step()[1])
        return self._logs()
