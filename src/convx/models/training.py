"""``TrainingLoop``: ``fit``, ``train_on_batch`` and the training step.

Training step: batch -> plan forward -> fused loss + gradient kernel per
output -> plan backward -> one optimizer kernel call on a flat buffer holding
every trainable weight (layer weights are views into it), with the gradients
in a matching flat buffer.
"""

import numpy as np

from convx._signals import deferred_signals
from convx.distribution import _data_parallel
from convx.layers.base import Layer
from convx.models import custom_step as _custom_step
from convx.models import data_adapters as _adapters
from convx.models.arguments import _batch_size, _callback_list, _one_at_a_time, _unsupported, _verbosity
from convx.models.penalties import _Penalties
from convx.models.plan import Plan


class TrainingLoop:
    """Mixin of :class:`~convx.models.model.Model`: the plans per mode and the training loop."""

    def _plan(self, training, with_loss):
        """The plan for this mode, made once per mode and set of trainable flags."""
        if with_loss:
            losses = [False] * len(self._graph.outputs)
            for ol in self._output_losses:
                fused = ol.loss.fused_activation is not None and not ol.loss.from_logits
                losses[ol.index] = ol.loss.fused_activation if fused else True
        else:
            losses = [False] * len(self._graph.outputs)
        if self._plans_generation != Layer.trainable_generation:
            # a layer's trainable flag changed somewhere: the plans (which steps run backward) are rebuilt
            self._plans, self._plans_generation = {}, Layer.trainable_generation
        key = (training, tuple(losses))
        plan = self._plans.get(key)
        if plan is None:
            if any(layer._int8 is not None for layer in self._graph.layers):  # a quantized model (also once loaded)
                from convx.quantization.layers import link_chains

                link_chains(self)
            plan = self._plans[key] = Plan(self._graph, training, losses, self.trainable)
        return plan

    def _prepare_step(self):
        self._bind_flat()
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.trainable_weights)  # per-variable state views, in Keras' order
        key = (self._bound_key, tuple(id(layer) for layer in self._all_layers))
        if self._penalties is None or self._penalties.key != key:
            self._penalties = _Penalties(self, key)
        return self._plan(True, True), self._plan(False, True)

    def _loss_and_grads(self, plan, outputs, targets, sample_weight=None):
        """(loss values per output loss, gradient per output) for one batch; with ``sample_weight`` (a
        float32 (n,) array or None per output) each sample's loss and gradient are scaled by its weight,
        the mean still over the batch size (Keras 3's ``sum_over_batch_size``)."""
        values, grads = [], [None] * len(outputs)
        for ol in self._output_losses:
            logits = plan.logits(ol.index)
            loss_input = outputs[ol.index] if logits is None else logits
            losses, grad = ol.loss.value_and_grad(loss_input, targets[ol.index], logits=logits is not None)
            if sample_weight is not None and sample_weight[ol.index] is not None:
                losses, grad = _adapters.weigh(losses, grad, sample_weight[ol.index])
            if ol.weight != 1.0:
                np.multiply(grad, np.float32(ol.weight), out=grad)
            values.append(losses)
            grads[ol.index] = grad
        return values, grads

    def _train_step(self, x, targets, plan, sample_weight=None):
        self._step_logs = _custom_step.run_train_step(self, x, targets) if self._dispatches("train_step") else None
        if self._step_logs is not None:
            return
        penalties = self._penalties
        penalties.clear_activity()
        outputs = plan.forward(x, training=True)
        loss_values, grads = self._loss_and_grads(plan, outputs, targets, sample_weight)
        plan.backward(grads)
        penalty = penalties.value_and_add_grads()
        with deferred_signals():  # the constraints complete the update: Ctrl-C lands after both
            if self._params.size:
                self.optimizer.update_flat(self._params, self._grads)
            penalties.constrain()
        self._update_trackers(loss_values, targets, outputs, penalty, sample_weight)

    @_one_at_a_time
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs; returns the History (also ``model.history``).

        ``x`` is an array, or for several inputs a list (input order) or a dict
        (by input name); ``y`` likewise per output. Inputs are validated and
        cast to float32 once. ``x`` may instead be a :class:`convx.data.Dataset`,
        a :class:`convx.utils.PyDataset` or a generator yielding batches ``(x, y)``
        or ``(x, y, sample_weight)`` (then ``y`` is None; ``steps_per_epoch``
        bounds an epoch). ``sample_weight`` (n,) and ``class_weight`` (class ->
        weight) scale each sample's loss (and the ``weighted_metrics``).
        ``validation_split`` takes the last fraction of the samples (before
        shuffling) as validation data; ``validation_data`` (arrays or any of the
        streams above) takes precedence over it. Logged training values are
        running means over the epoch, as in Keras 3.
        """
        self._require_compiled("fit")
        batch_size = _batch_size(batch_size)
        validation_batch_size = _batch_size(validation_batch_size or batch_size, "validation_batch_size")
        verbose = _verbosity(verbose)
        for value, arg in ((epochs, "epochs"), (initial_epoch, "initial_epoch"), (validation_freq, "validation_freq")):
            low = 1 if arg == "validation_freq" else 0
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{arg} must be a {'positive' if low else 'non-negative'} integer, "
                                 f"received {arg}={value!r}")
        if not isinstance(validation_split, (int, float)) or not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be a float in [0, 1), received validation_split={validation_split!r}")
        if not isinstance(shuffle, (bool, np.bool_)):
            raise ValueError(f"shuffle must be True or False, received shuffle={shuffle!r}")
        prepare = _adapters.BatchPreparer(self, _adapters.check_class_weight(class_weight))
        if _adapters.is_stream(x):
            _adapters.check_stream_arguments(x, y=y, sample_weight=sample_weight, validation_split=validation_split)
            data = _adapters.StreamBatches(x, prepare, steps_per_epoch, bool(shuffle))
            val = None
        else:
            _unsupported(steps_per_epoch=steps_per_epoch)
            x, y, sw = prepare(x, y, sample_weight)
            val = None
            if validation_split and validation_data is None:
                x, y, sw, val = _adapters.split_validation(x, y, sw, validation_split, validation_batch_size)
            data = _adapters.ArrayBatches(x, y, sw, batch_size, bool(shuffle))
        if validation_data is not None:
            val = _adapters.validation_batches(self, validation_data, validation_batch_size, validation_steps)
        return self._fit_loop(data, val, epochs, initial_epoch, verbose, callbacks, validation_freq)

    def _fit_loop(self, data, val, epochs, initial_epoch, verbose, callbacks, validation_freq):
        replica = _data_parallel()
        if replica is not None:  # each rank takes its share of every global batch; rank 0 prints
            data, verbose = replica.shares(data), verbose if replica.rank == 0 else 0
        callbacks = _callback_list(callbacks, add_history=True, add_progbar=verbose != 0, model=self,
                                   verbose=verbose, epochs=epochs, steps=data.steps)
        plans = None  # made at the first batch: a model fed by a dataset is built by it
        self.stop_training = False
        self._initial_epoch = None
        callbacks.on_train_begin()
        initial_epoch = self._initial_epoch or initial_epoch  # BackupAndRestore resumes after its last epoch
        logs = None
        for epoch in range(initial_epoch, epochs):
            self._reset_metrics()
            callbacks.on_epoch_begin(epoch)
            batches, step = data.epoch(), -1
            for step, (xb, yb, swb) in enumerate(batches):
                if plans is None:
                    plans = self._prepare_step()
                    if replica is not None:  # after on_train_begin: weights restored on rank 0 reach every rank
                        replica.broadcast_weights(self)
                callbacks.on_train_batch_begin(step)
                if replica is None:
                    self._train_step(xb, yb, plans[0], swb)
                else:  # the step sums every rank's gradients
                    replica.train_step(self, xb, yb, plans[0], swb)
                callbacks.on_train_batch_end(step, self._logs())
                if self.stop_training:
                    break
            batches.close()
            if step < 0:
                if plans is None:
                    raise ValueError("The training data is empty: fit received no batch")
                break  # the data ran out (Keras' warning was given)
            logs = self._logs()
            if val is not None and (epoch + 1) % validation_freq == 0:
                val_logs = self._evaluate_prepared(val, callbacks, plans[1])
                logs.update({"val_" + name: value for name, value in val_logs.items()})
            callbacks.on_epoch_end(epoch, logs)
            if self.stop_training or data.ran_out:
                break
        if epochs > initial_epoch:
            self.optimizer.finalize_variable_values(self.trainable_weights)  # use_ema: the averaged weights
        callbacks.on_train_end(logs=logs)
        return self._history_from(callbacks)

    def _history_from(self, callbacks):
        from convx.callbacks import History

        for callback in getattr(callbacks, "callbacks", []):
            if isinstance(callback, History):
                self.history = callback
        return self.history

    @_one_at_a_time
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One training step on one batch; returns the running loss/metrics (Keras 3: not reset per call)."""
        self._require_compiled("train_on_batch")
        prepare = _adapters.BatchPreparer(self, _adapters.check_class_weight(class_weight))
        x, y, sw = prepare(x, y, sample_weight)
        self._train_step(x, y, self._prepare_step()[0], sw)
        logs = self._logs()
        return logs if return_dict else self._flatten_logs(logs)

    def train_step(self, data):
        """One training step on ``data`` (``(x, y)``); returns the logs. Override it for custom training
        logic: ``self(x, training=True)``, ``self.compute_loss(...)``, ``loss.backward()``,
        ``self.optimizer.apply([v.grad for v in self.trainable_weights], self.trainable_weights)``."""
        x, y = data if isinstance(data, tuple) else (data, None)
        x, targets = self._prepare_xy(x, y)
        self._train_step(x, targets, self._prepare_step()[0])
        return self._logs()

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled loss(es) of ``y_pred`` against ``y`` plus ``sum(self.losses)`` (Keras 3's
        ``compute_loss``); in a train_step a tape tensor whose ``backward()`` trains the model."""
        _unsupported(sample_weight=sample_weight)
        return _custom_step.compute_loss(self, y, y_pred)
