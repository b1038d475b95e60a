"""``CompileState``: what ``compile`` sets (optimizer, per-output losses, metrics) and the running
loss/metric trackers that make the logs."""

import numpy as np

from convx import losses as _losses
from convx import metrics as _metrics
from convx import optimizers as _optimizers
from convx.layers.node import flatten


class _OutputLoss:
    """The loss of one output: the Loss object, its weight and its log name."""

    def __init__(self, index, loss, weight, name):
        self.index, self.loss, self.weight, self.name = index, loss, weight, name


class CompileState:
    """Mixin of :class:`~convx.models.model.Model`: compile settings, metrics and logs."""

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True):
        """Set the optimizer, the loss(es) and the metrics (Keras names or objects).

        For several outputs, ``loss``, ``loss_weights`` and ``metrics`` may be
        lists (in output order) or dicts keyed by output name
        (``model.output_names``); a single loss applies to every output.
        ``run_eagerly``, ``steps_per_execution``, ``jit_compile`` and
        ``auto_scale_loss`` are accepted for compatibility and have no effect.
        """
        self.optimizer = _optimizers.get(optimizer)
        self._loss_spec, self._loss_weights_spec = loss, loss_weights
        self.loss = None if loss is None or isinstance(loss, (list, tuple, dict)) else _losses.get(loss)
        self._check_metric_specs(metrics)
        self._check_metric_specs(weighted_metrics)
        self._metric_specs = metrics if metrics is not None else []
        self._weighted_metric_specs = weighted_metrics if weighted_metrics is not None else []
        self._weighted_metric_ids = frozenset()
        self._metric_objects = None
        self._output_losses = []
        self._loss_tracker = _metrics.Mean(name="loss")
        self.compiled = True
        if self._graph is not None:
            self._resolve_losses()
        if self.built:
            self.optimizer.reset_state()

    @staticmethod
    def _check_metric_specs(metrics):
        if metrics is None:
            return
        if not isinstance(metrics, (list, tuple, dict)):
            raise ValueError(f"metrics must be a list, tuple or dict, received metrics={metrics!r}")
        for metric in flatten(metrics):
            if metric is not None and not (isinstance(metric, str) and metric.lower() in ("accuracy", "acc")):
                _metrics.get(metric)

    def _per_output(self, spec, what, default=None):
        """``spec`` (one value, list in output order or dict by output name) as a list per output."""
        names = self.output_names
        if isinstance(spec, dict):
            unknown = sorted(set(spec) - set(names))
            if unknown:
                raise ValueError(f"{what} has keys {unknown} that are not output names; the outputs are {names}")
            return [spec.get(name, default) for name in names]
        if isinstance(spec, (list, tuple)):
            if len(spec) != len(names):
                raise ValueError(f"{what} has {len(spec)} entries for a model with {len(names)} outputs {names}")
            return list(spec)
        return [spec] * len(names)

    def _resolve_losses(self):
        spec = self._loss_spec
        if isinstance(spec, dict) and set(spec) != set(self.output_names):
            # as Keras 3: a loss dict names every output (None for an output without a loss)
            raise ValueError(f"Expected keys {self.output_names} in loss dict, but found loss.keys()={list(spec)}")
        losses = self._per_output(spec, "loss")
        weights = self._per_output(self._loss_weights_spec, "loss_weights", 1.0) \
            if self._loss_weights_spec is not None else [1.0] * len(losses)
        self._output_losses = []
        names = self.output_names
        for k, (loss, weight) in enumerate(zip(losses, weights)):
            if loss is None:
                continue
            loss = _losses.get(loss)
            name = names[k] if len(names) > 1 else loss.name
            self._output_losses.append(_OutputLoss(k, loss, float(1.0 if weight is None else weight), name))
        if len(self._output_losses) > 1:
            self._output_loss_trackers = [_metrics.Mean(name=f"{ol.name}_loss") for ol in self._output_losses]
        else:
            self._output_loss_trackers = []

    def _require_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(f"You must call `compile()` before using the model for {what}.")
        if self._loss_spec is None and not (self._overrides("train_step") or self._overrides("test_step")) \
                and not self._may_add_losses():
            raise ValueError(f"Model '{self.name}' was compiled without a loss and adds none (add_loss, regularizers): "
                             f"No loss to compute. Provide a `loss` argument in `compile()` for `{what}`.")

    def _may_add_losses(self):
        """Whether the model's own losses can train it without a compiled loss (Keras then minimises
        ``sum(model.losses)``): a layer with ``call()`` (``add_loss``), an activity or weight regularizer."""
        if self._graph is None:
            return True  # a subclassed model not built yet: decided when data builds it
        return any(layer._has_call or layer.activity_regularizer is not None
                   or any(w.regularizer is not None for w in layer.weights) for layer in self._all_layers)

    def _losses_only(self, y):
        """Compiled without a loss, no targets given: the model trains on its own losses (Keras' ``fit(x)``)."""
        return y is None and self._loss_spec is None and not self._output_losses

    @property
    def metrics_names(self):
        names = ["loss"] + [t.name for t in getattr(self, "_output_loss_trackers", [])]
        if self._metric_objects:
            names += [name for name, _, _ in self._metric_objects]
        return names

    def _build_weighted_metrics(self, targets, metrics):
        """The ``weighted_metrics`` entries (updated with the sample weights); a name taken by a metric
        becomes ``weighted_<name>``, as Keras 3 names it."""
        taken = {name for name, _, _ in metrics}
        weighted = []
        for name, k, metric in self._build_metrics(targets, getattr(self, "_weighted_metric_specs", [])):
            if name in taken:
                name = f"weighted_{metric.name}" if len(self._graph.outputs) == 1 \
                    else f"{self.output_names[k]}_weighted_{metric.name}"
            taken.add(name)
            weighted.append((name, k, metric))
        self._weighted_metric_ids = frozenset(id(metric) for _, _, metric in weighted)
        return weighted

    def _build_metrics(self, targets, specs=None):
        """(log name, output index, Metric) for every metric, named as Keras 3 names them."""
        outputs, names = self._graph.outputs, self.output_names
        specs = self._metric_specs if specs is None else specs
        per_output_lists = (isinstance(specs, (list, tuple)) and specs
                            and all(isinstance(s, (list, tuple)) or s is None for s in specs))
        if isinstance(specs, dict) or (len(outputs) > 1 and per_output_lists):
            per_output = self._per_output(specs, "metrics", [])
        elif len(outputs) > 1 and specs:
            raise ValueError(
                f"Invalid `metrics` for a model with {len(outputs)} outputs {names}: give a dict keyed by output "
                f"name or a list with one list of metrics per output (as Keras 3 requires); received metrics={specs!r}"
            )
        else:
            per_output = [list(specs)] * len(outputs)
        metrics = []
        for k, entry in enumerate(per_output):
            entry = [] if entry is None else (list(entry) if isinstance(entry, (list, tuple)) else [entry])
            target = targets[k]
            for spec in entry:
                if target is None:
                    raise ValueError(f"Metric {spec!r} on output '{names[k]}' needs a target; that output has no loss")
                metric = _metrics.get(spec, target.shape, outputs[k].shape)
                log_name = metric.name if len(outputs) == 1 else f"{names[k]}_{metric.name}"
                metrics.append((log_name, k, metric))
        return metrics

    def _update_trackers(self, loss_values, targets, outputs, penalty=None, sample_weight=None):
        n = len(outputs[0])
        # losses.mean() in float32, as Keras averages the batch; sum / n is that value without np.mean's Python layer
        means = [values.sum() / values.size for values in loss_values]
        if len(means) == 1 and self._output_losses[0].weight == 1.0:
            total = means[0]
        else:
            total = np.float32(0.0)
            for ol, mean in zip(self._output_losses, means):
                total = total + np.float32(ol.weight) * mean
        if penalty is not None:  # Keras adds sum(model.losses) to the loss it logs
            total = np.float32(total) + penalty
        self._loss_tracker.update_state(float(total), sample_weight=n)
        for tracker, mean in zip(self._output_loss_trackers, means):
            tracker.update_state(float(mean), sample_weight=n)
        if sample_weight is None:
            for _, k, metric in self._metric_objects:
                metric.update_state(targets[k], outputs[k])
            return
        weighted = self._weighted_metric_ids
        for _, k, metric in self._metric_objects:
            metric.update_state(targets[k], outputs[k], sample_weight=sample_weight[k] if id(metric) in weighted else None)

    def _reset_metrics(self):
        for metric in self.metrics:  # an override of `metrics` lists its own (Keras resets them per epoch)
            metric.reset_state()
        self._loss_tracker.reset_state()
        for tracker in getattr(self, "_output_loss_trackers", []):
            tracker.reset_state()
        for _, _, metric in self._metric_objects or []:
            metric.reset_state()

    def reset_metrics(self):
        """Reset the loss trackers and the metrics."""
        self._reset_metrics()

    def _logs(self):
        if getattr(self, "_step_logs", None) is not None:  # what an overridden train_step/test_step returned
            return dict(self._step_logs)
        # Keras 3 sorts log keys: 'accuracy', 'loss', 'val_accuracy', 'val_loss'
        logs = {name: metric.result() for name, _, metric in self._metric_objects}
        for tracker in self._output_loss_trackers:
            logs[tracker.name] = tracker.result()
        logs["loss"] = self._loss_tracker.result()
        return dict(sorted(logs.items()))

    def _flatten_logs(self, logs):
        values = [logs[name] for name in self.metrics_names]
        return values[0] if len(values) == 1 else values

    @property
    def metrics(self):
        """The loss tracker and the compiled metrics (Keras 3's ``model.metrics``)."""
        tracker = getattr(self, "_loss_tracker", None)
        return ([tracker] if tracker is not None else []) + [m for _, _, m in self._metric_objects or []]
