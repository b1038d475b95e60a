"""``ModelInputs``: user data (arrays, lists, dicts, strings) checked and cast once into the lists per
input and per output the loops run on."""

import numpy as np

from convx.models import data_adapters as _adapters


class ModelInputs:
    """Mixin of :class:`~convx.models.model.Model`: preparing ``x`` and ``y``."""

    def _as_input_list(self, x, name):
        inputs = self._graph.inputs if self._graph is not None else None
        if isinstance(x, dict):
            if inputs is None:
                raise ValueError(f"Argument `{name}` is a dict, but model '{self.name}' is not built: its input "
                                 "names are unknown")
            missing = [t.name for t in inputs if t.name not in x]
            if missing:
                raise ValueError(f"Argument `{name}` lacks the model inputs {missing}; it has keys {sorted(x)}")
            return [x[t.name] for t in inputs], [f"{name}[{t.name!r}]" for t in inputs]
        if isinstance(x, (list, tuple)) and (inputs is None and len(x) > 1 or inputs is not None and len(inputs) > 1):
            return list(x), [f"{name}[{i}]" for i in range(len(x))]
        if isinstance(x, (list, tuple)) and len(x) == 1 and isinstance(x[0], np.ndarray):
            return [x[0]], [f"{name}[0]"]  # Keras takes a one-element list for a one-input model
        return [x], [name]

    def _prepare_x(self, x, name="x"):
        """Validate once and cast to float32 (no copy when already float32 and contiguous): a list per input."""
        if x is None:
            raise ValueError(f"Argument `{name}` must be an array, received None")
        arrays, names = self._as_input_list(x, name)
        prepared = []
        for index, (array, array_name) in enumerate(zip(arrays, names)):
            text = _text_batch(array)
            prepared.append(_adapters.float32_batch(array, array_name) if text is None else self._shaped_text(text, index))
        if len({len(a) for a in prepared}) > 1:
            raise ValueError(
                "Data cardinality is ambiguous: make sure all arrays contain the same number of samples. "
                + ", ".join(f"'{n}' sizes: {len(a)}" for n, a in zip(names, prepared))
            )
        if self._graph is None:
            shapes = [a.shape for a in prepared]
            self.build(shapes if len(shapes) > 1 else shapes[0])
        sample_shapes = [a.shape[1:] for a in prepared]
        if sample_shapes != self._checked_shapes:  # checked once per new sample shape, not per batch
            self._check_model_input_shapes([a.shape for a in prepared])
            self._checked_shapes = sample_shapes
        return prepared

    def _shaped_text(self, text, index):
        """Strings for a model input of shape (None, 1) given as (N,): Keras adds the axis."""
        inputs = self._graph.inputs if self._graph is not None else None
        if inputs is not None and len(inputs[index].shape) == text.ndim + 1 and inputs[index].shape[-1] == 1:
            return text.reshape(text.shape + (1,))
        return text

    def _prepare_xy(self, x, y, name="x", y_name="y"):
        custom = self._overrides("train_step") or self._overrides("test_step")
        if y is None and (custom or self._losses_only(y)):  # a custom step, or add_loss alone: x alone
            x = self._prepare_x(x, name)
            if self._metric_objects is None:
                self._metric_objects = []
            return x, [None] * len(self._graph.outputs)
        if y is None:
            raise ValueError(f"Argument `{y_name}` (targets) is required, received None")
        x = self._prepare_x(x, name)
        if not self._output_losses:
            self._resolve_losses()
        n = len(x[0])
        outputs = self._graph.outputs
        if isinstance(y, dict):
            ys = self._per_output(y, y_name)
        elif isinstance(y, (list, tuple)) and len(outputs) > 1:
            ys = self._per_output(list(y), y_name)
        elif isinstance(y, (list, tuple)) and len(y) == 1 and isinstance(y[0], np.ndarray):
            ys = [y[0]]
        else:
            ys = [y] * len(outputs) if len(outputs) > 1 else [y]
        targets = [None] * len(outputs)
        for ol in self._output_losses:
            target = ys[ol.index]
            if target is None:
                raise ValueError(f"No target given for output '{self.output_names[ol.index]}', which has a loss")
            target = np.asarray(target)
            if target.ndim < 1 or len(target) != n:
                raise ValueError(
                    "Data cardinality is ambiguous: make sure all arrays contain the same number of samples. "
                    f"'{name}' sizes: {n}, '{y_name}' sizes: {len(target) if target.ndim else 'scalar'}"
                )
            targets[ol.index] = ol.loss.prepare_targets(target, outputs[ol.index].shape)
        if custom:  # the step's own code reads the targets of outputs without a compiled loss
            targets = [np.asarray(t) if p is None and t is not None else p for p, t in zip(targets, ys)]
        if n == 0:
            raise ValueError(f"Argument `{name}` must contain at least one sample, received shape {x[0].shape}")
        if self._metric_objects is None:
            metrics = self._build_metrics(targets)
            self._metric_objects = metrics + self._build_weighted_metrics(targets, metrics)
        return x, targets

    def _structure(self, arrays):
        """Arrays per output, shaped like the model's outputs (one array, a list or a dict)."""
        structure = self._outputs_structure
        if isinstance(structure, dict):
            return dict(zip(structure, arrays))
        if isinstance(structure, (list, tuple)):
            return list(arrays)
        return arrays[0]


def _text_batch(array):
    """``array`` as a NumPy array when it holds strings (for a TextVectorization first layer), else None."""
    if isinstance(array, (list, tuple)):
        array = np.asarray(array, dtype=object)
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "USO":
        return None
    if array.dtype.kind == "O" and not (array.size and isinstance(array.flat[0], (str, bytes))):
        return None
    return array
