"""Sequential: a Keras 3-compatible model that is a list of layers.

Training step: batch -> forward through the layers -> fused loss + gradient
kernel -> backward in reverse -> one optimizer kernel call on a flat buffer
holding every trainable weight (layer weights are views into it), with the
gradients in a matching flat buffer.
"""

import math

import numpy as np

from convx import losses as _losses
from convx import metrics as _metrics
from convx import optimizers as _optimizers
from convx import random as _random
from convx._summary import summary_text
from convx.layers.base import ActivationOutput, Layer, format_shape, unique_name
from convx.layers.convolutional import Conv2D
from convx.layers.core import InputLayer
from convx.layers.pooling import _Pooling


def _callback_list(callbacks, **kwargs):
    from convx.callbacks import CallbackList

    if isinstance(callbacks, CallbackList):
        return callbacks
    return CallbackList(callbacks, **kwargs)


def _verbosity(verbose):
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, received verbose={verbose!r}")
    return verbose


def _batch_size(batch_size, name="batch_size"):
    if batch_size is None:
        return 32
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"{name} must be a positive integer or None, received {name}={batch_size!r}")
    return int(batch_size)


def _unsupported(**kwargs):
    for name, value in kwargs.items():
        if value is not None:
            raise ValueError(f"Argument `{name}` is not supported by convx; received {name}={value!r}")


class Sequential:
    """A linear stack of layers (Keras 3 ``keras.Sequential``).

    Parameters
    ----------
    layers : list of Layer, optional
        May start with ``convx.Input(shape)``, or give ``input_shape=`` to the
        first layer; otherwise the model builds on the first data it sees.
    trainable : bool, default True
    name : str, optional
        Defaults to ``sequential``, ``sequential_1``, ...
    """

    def __init__(self, layers=None, trainable=True, name=None):
        self.name = name if name is not None else unique_name("sequential")
        self.trainable = trainable
        self._layers = []
        self._windows = {}
        self._trained_pooled = set()  # indices of the Conv2D layers trained fused with their pooling in the last step
        self._input_layer = None
        self.built = False
        self.compiled = False
        self.optimizer = self.loss = None
        self.stop_training = False
        self.history = None
        self._params = self._grads = None
        self._bound_key = None
        for layer in layers or []:
            self.add(layer, rebuild=False)
        self._build_from_input_layer()

    # ----- structure -----------------------------------------------------------

    @property
    def layers(self):
        """The layers, without the input layer (as in Keras)."""
        return list(self._layers)

    def add(self, layer, rebuild=True):
        """Append a layer (or an ``Input``) to the stack."""
        if isinstance(layer, InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError(
                    f"Sequential model '{self.name}': an Input can only be the first entry and only once; "
                    f"received {layer!r} after {len(self._layers)} layers"
                )
            self._input_layer = layer
        elif isinstance(layer, Layer):
            if any(existing.name == layer.name for existing in self._layers):
                raise ValueError(
                    "All layers added to a Sequential model should have unique names. "
                    f"Name '{layer.name}' is already the name of a layer in this model."
                )
            if not self._layers and self._input_layer is None and layer._input_shape_arg is not None:
                self._input_layer = InputLayer(shape=layer._input_shape_arg)
            self._layers.append(layer)
            self._windows = {}
            self.built = self.built and layer.built
        else:
            raise ValueError(
                "Only instances of `convx.layers.Layer` can be added to a Sequential model. "
                f"Received: {layer!r} (of type {type(layer).__name__})"
            )
        if rebuild:
            self._build_from_input_layer()

    def pop(self):
        """Remove and return the last layer."""
        if not self._layers:
            raise ValueError(f"There are no layers in model '{self.name}' to pop")
        layer = self._layers.pop()
        self._windows = {}
        if self.built:
            self._output_shape = self._layers[-1].output_shape if self._layers else self.input_shape
            self._bind_flat()
        return layer

    def get_layer(self, name=None, index=None):
        """A layer by name or by index."""
        if index is not None:
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: {[layer.name for layer in self._layers]}.")

    def _build_from_input_layer(self):
        if self._input_layer is not None and self._layers:
            self.build(self._input_layer.shape)

    def build(self, input_shape):
        """Build every layer for inputs of ``input_shape`` (batch axis first, may be None)."""
        shape = (None,) + tuple(input_shape)[1:]
        self.input_shape = shape
        for layer in self._layers:
            shape = layer.build_for(shape)
        self._output_shape = shape
        self.built = True
        self._bind_flat()

    @property
    def output_shape(self):
        if not self.built:
            raise AttributeError(f"Sequential model '{self.name}' has not been built yet")
        return self._output_shape

    def _bind_flat(self):
        """Move all trainable weights into one flat buffer (weights become views of it)."""
        trainable = self.trainable_weights
        key = tuple(id(w) for w in trainable)
        if key == self._bound_key:
            return
        total = sum(w.value.size for w in trainable)
        params = np.empty(total, dtype=np.float32)
        grads = np.zeros(total, dtype=np.float32)
        offset = 0
        for w in trainable:
            n = w.value.size
            params[offset:offset + n] = w.value.reshape(-1)
            w.value = params[offset:offset + n].reshape(w.shape)
            w.grad = grads[offset:offset + n].reshape(w.shape)
            offset += n
        self._params, self._grads, self._bound_key = params, grads, key
        if self.optimizer is not None:
            self.optimizer.reset_state()
        self._set_backward_range()

    def _set_backward_range(self):
        # backward stops at the first layer with trainable weights, which needs no dx
        self._first_trainable = next((i for i, layer in enumerate(self._layers) if layer.trainable_weights), None)
        for i, layer in enumerate(self._layers):
            layer._need_dx = i != self._first_trainable

    # ----- weights -------------------------------------------------------------

    @property
    def weights(self):
        return [w for layer in self._layers for w in layer.weights]

    @property
    def trainable_weights(self):
        return [w for layer in self._layers for w in layer.trainable_weights] if self.trainable else []

    @property
    def non_trainable_weights(self):
        if not self.trainable:
            return self.weights
        return [w for layer in self._layers for w in layer.non_trainable_weights]

    def get_weights(self):
        """Copies of all weights, layer by layer in Keras order."""
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights):
        """Assign a list of arrays as returned by ``get_weights``."""
        variables, weights = self.weights, list(weights)
        if len(weights) != len(variables):
            raise ValueError(
                f"Model '{self.name}' expects {len(variables)} weight arrays, received {len(weights)}"
            )
        for var, value in zip(variables, weights):
            if np.shape(value) != var.shape:
                raise ValueError(f"Weight {var.path!r} expects shape {var.shape}, received shape {np.shape(value)}")
        for var, value in zip(variables, weights):
            var.assign(value)

    def count_params(self):
        """Number of scalars in the weights (the model must be built)."""
        if not self.built:
            raise ValueError(
                f"You tried to call `count_params` on layer '{self.name}', but the layer isn't built. "
                "You can build it manually via: `model.build(input_shape)`."
            )
        return int(sum(math.prod(w.shape) for w in self.weights))

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False, show_trainable=False,
                layer_range=None):
        """Print the Keras 3 summary table (layers, output shapes, parameter counts)."""
        _unsupported(layer_range=layer_range)
        text = summary_text(self, line_length=line_length, positions=positions)
        if print_fn is None:
            print(text, end="")
        else:
            print_fn(text)

    # ----- compile -------------------------------------------------------------

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True):
        """Set the optimizer, the loss and the metrics (Keras names or objects).

        ``run_eagerly``, ``steps_per_execution``, ``jit_compile`` and
        ``auto_scale_loss`` are accepted for compatibility and have no effect.
        """
        _unsupported(loss_weights=loss_weights, weighted_metrics=weighted_metrics)
        self.optimizer = _optimizers.get(optimizer)
        self.loss = None if loss is None else _losses.get(loss)
        if metrics is None:
            metrics = []
        if not isinstance(metrics, (list, tuple)):
            raise ValueError(f"metrics must be a list or tuple, received metrics={metrics!r}")
        for metric in metrics:
            if not (isinstance(metric, str) and metric.lower() in ("accuracy", "acc")):
                _metrics.get(metric)
        self._metric_specs = list(metrics)
        self._metric_objects = None
        self._loss_tracker = _metrics.Mean(name="loss")
        self.compiled = True
        if self.built:
            self.optimizer.reset_state()

    def _require_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(f"You must call `compile()` before using the model for {what}.")
        if self.loss is None:
            raise ValueError(f"Model '{self.name}' was compiled without a loss; `{what}` needs one")

    @property
    def metrics_names(self):
        names = ["loss"]
        if self._metric_objects:
            names += [m.name for m in self._metric_objects]
        return names

    def _fused_loss(self):
        """True when the last layer's activation is folded into the loss kernel."""
        last = self._layers[-1]
        fused = (
            isinstance(last, ActivationOutput)
            and self.loss.fused_activation is not None
            and last.activation == self.loss.fused_activation
            and not self.loss.from_logits
        )
        last.expose_logits = fused if isinstance(last, ActivationOutput) else False
        return fused

    # ----- data ----------------------------------------------------------------

    def _prepare_x(self, x, name="x"):
        """Validate once and cast to float32 (no copy when already float32 and contiguous)."""
        if x is None:
            raise ValueError(f"Argument `{name}` must be an array, received None")
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise ValueError(f"Argument `{name}` must hold numbers, received dtype {x.dtype}")
        if x.ndim < 1:
            raise ValueError(f"Argument `{name}` must have a batch axis, received a scalar")
        if not self._layers:
            raise ValueError(f"Sequential model '{self.name}' has no layers")
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        # min and max propagate NaN and expose +-inf without a dataset-sized boolean temporary
        if x.dtype.kind == "f" and x32.size and not (np.isfinite(x32.min()) and np.isfinite(x32.max())):
            raise ValueError(
                f"Argument `{name}` contains NaN or infinite values (or values too large for float32); "
                "expected finite inputs"
            )
        if self.built:
            self._layers[0].check_input_shape((x.shape[0],) + x.shape[1:])
        else:
            self.build((x.shape[0],) + x.shape[1:])
        return x32

    def _prepare_xy(self, x, y, name="x", y_name="y"):
        if y is None:
            raise ValueError(f"Argument `{y_name}` (targets) is required, received None")
        x = self._prepare_x(x, name)
        y = np.asarray(y)
        if y.ndim < 1 or len(y) != len(x):
            raise ValueError(
                "Data cardinality is ambiguous: make sure all arrays contain the same number of samples. "
                f"'{name}' sizes: {len(x)}, '{y_name}' sizes: {len(y) if y.ndim else 'scalar'}"
            )
        if len(x) == 0:
            raise ValueError(f"Argument `{name}` must contain at least one sample, received shape {x.shape}")
        targets = self.loss.prepare_targets(y, self._output_shape)
        if self._metric_objects is None:
            self._metric_objects = [
                _metrics.get(spec, targets.shape, self._output_shape) for spec in self._metric_specs
            ]
        return x, targets

    def _validation_data(self, validation_data):
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError(
                "validation_data must be a tuple (x_val, y_val) or (x_val, y_val, val_sample_weight); "
                f"received {type(validation_data).__name__}"
            )
        if len(validation_data) == 3 and validation_data[2] is not None:
            raise ValueError("validation sample weights are not supported by convx")
        return self._prepare_xy(validation_data[0], validation_data[1], "validation_data[0]", "validation_data[1]")

    # ----- steps ---------------------------------------------------------------

    def _forward(self, x, training):
        layers, i = self._layers, 0
        self._trained_pooled = set()
        while i < len(layers):
            layer = layers[i]
            if self._pools_in_one_pass(i) and (not training or layer.trains_pooled(layers[i + 1].pool_size)):
                # the convolution's output is pooled band by band, never stored; the
                # backward pass goes through both layers at once (none below the first trainable one)
                trained = training and self._first_trainable is not None and i >= self._first_trainable
                x = layer.forward_pooled(x, layers[i + 1].pool_size, training=trained)
                if trained:
                    self._trained_pooled.add(i)
                i += 2
                continue
            window = self._output_window(i, x.shape)
            if window is None:
                x = layer.forward(x, training=training)
            else:
                x = layer.forward(x, training=training, output_window=window)
            i += 1
        return x

    def _following_pooling(self, i):
        """Layer i + 1 when layer i is a Conv2D and it is a pooling, else None."""
        following = self._layers[i + 1] if i + 1 < len(self._layers) else None
        return following if isinstance(self._layers[i], Conv2D) and isinstance(following, _Pooling) else None

    def _pools_in_one_pass(self, i):
        """Layer i is a Conv2D followed by a max pooling whose windows tile its output."""
        pooling = self._following_pooling(i)
        return pooling is not None and pooling.tiles_its_input()

    def _output_window(self, i, input_shape):
        """The part of layer i's output that layer i + 1 reads, when layer i can
        skip the rest (a 2-D convolution before a valid pooling that drops edge
        rows or columns); else None. Cached per layer and input shape."""
        key = (i, input_shape[1:])
        if key not in self._windows:
            pooling = self._following_pooling(i)
            self._windows[key] = (None if pooling is None
                                  else pooling.input_window(self._layers[i]._output_shape_for(input_shape)))
        return self._windows[key]

    def _loss_and_grad(self, output, targets, fused):
        loss_input = self._layers[-1].logits if fused else output
        return self.loss.value_and_grad(loss_input, targets, logits=fused)

    def _backward(self, grad, fused):
        if self._first_trainable is None:
            return
        pre_activation = fused  # grad is already w.r.t. the next layer's pre-activation output
        i = len(self._layers) - 1
        while i >= self._first_trainable:
            layer = self._layers[i]
            if i - 1 in self._trained_pooled:
                # a convolution and its pooling in one pass (a pooling's input has no pending activation)
                grad = self._layers[i - 1].backward_pooled(grad)
                i -= 2
                continue
            if pre_activation:
                grad = layer.backward(grad, from_logits=True)
                pre_activation = False
            elif i > self._first_trainable and self._relu_before_max_pool(i):
                # the relu's backward pass rides on the pooling's scatter (one pass, not two)
                grad = layer.backward(grad, through_relu=True)
                pre_activation = True
            else:
                grad = layer.backward(grad)
            i -= 1

    def _relu_before_max_pool(self, i):
        """Layer i is a max pooling fed by a layer whose own activation is relu."""
        pool, before = self._layers[i], self._layers[i - 1]
        return (isinstance(pool, _Pooling) and pool.mode == "max" and isinstance(before, ActivationOutput)
                and before.activation == "relu" and not before.expose_logits
                and getattr(before, "_y", None) is not None)

    def _update_trackers(self, losses, targets, output):
        # losses.mean() in float32, as Keras averages the batch; sum / n is that value without np.mean's Python layer
        self._loss_tracker.update_state(float(losses.sum() / losses.size), sample_weight=len(output))
        for metric in self._metric_objects:
            metric.update_state(targets, output)

    def _train_step(self, x, targets, fused):
        output = self._forward(x, training=True)
        losses, grad = self._loss_and_grad(output, targets, fused)
        self._backward(grad, fused)
        if self._params.size:
            self.optimizer.update_flat(self._params, self._grads)
        self._update_trackers(losses, targets, output)

    def _test_step(self, x, targets, fused):
        output = self._forward(x, training=False)
        losses, _ = self._loss_and_grad(output, targets, fused)
        self._update_trackers(losses, targets, output)

    def _reset_metrics(self):
        self._loss_tracker.reset_state()
        for metric in self._metric_objects or []:
            metric.reset_state()

    def reset_metrics(self):
        """Reset the loss tracker and the metrics."""
        self._reset_metrics()

    def _logs(self):
        # Keras 3 sorts log keys: 'accuracy', 'loss', 'val_accuracy', 'val_loss'
        logs = {m.name: m.result() for m in self._metric_objects}
        logs["loss"] = self._loss_tracker.result()
        return dict(sorted(logs.items()))

    def _flatten_logs(self, logs):
        values = [logs[name] for name in self.metrics_names]
        return values[0] if len(values) == 1 else values

    def _prepare_step(self):
        self._bind_flat()
        return self._fused_loss()

    # ----- public loops --------------------------------------------------------

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs; returns the History (also ``model.history``).

        Inputs are validated and cast to float32 once. ``validation_split``
        takes the last fraction of the samples (before shuffling) as validation
        data; ``validation_data`` takes precedence over it. Logged training
        values are running means over the epoch, as in Keras 3.
        """
        self._require_compiled("fit")
        _unsupported(class_weight=class_weight, sample_weight=sample_weight, steps_per_epoch=steps_per_epoch,
                     validation_steps=validation_steps)
        batch_size = _batch_size(batch_size)
        validation_batch_size = _batch_size(validation_batch_size or batch_size, "validation_batch_size")
        verbose = _verbosity(verbose)
        for value, arg in ((epochs, "epochs"), (initial_epoch, "initial_epoch"), (validation_freq, "validation_freq")):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < (1 if arg == "validation_freq" else 0):
                raise ValueError(f"{arg} must be a {'positive' if arg == 'validation_freq' else 'non-negative'} integer, received {arg}={value!r}")
        if not isinstance(validation_split, (int, float)) or not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be a float in [0, 1), received validation_split={validation_split!r}")
        if not isinstance(shuffle, (bool, np.bool_)):
            raise ValueError(f"shuffle must be True or False, received shuffle={shuffle!r}")
        x, y = self._prepare_xy(x, y)
        val = None
        if validation_data is not None:
            val = self._validation_data(validation_data)
        elif validation_split:
            split = int(math.floor(len(x) * (1.0 - validation_split)))
            if split == 0 or split == len(x):
                raise ValueError(
                    f"Training data contains {len(x)} samples, which is not sufficient to split it into a "
                    f"validation and training set as specified by `validation_split={validation_split}`. "
                    "Either provide more data, or a different value for the `validation_split` argument."
                )
            x, y, val = x[:split], y[:split], (x[split:], y[split:])
        return self._fit_loop(x, y, val, batch_size, validation_batch_size, epochs, initial_epoch, verbose,
                              callbacks, bool(shuffle), validation_freq)

    def _fit_loop(self, x, y, val, batch_size, val_batch_size, epochs, initial_epoch, verbose, callbacks,
                  shuffle, validation_freq):
        fused = self._prepare_step()
        n = len(x)
        steps = -(-n // batch_size)
        callbacks = _callback_list(callbacks, add_history=True, add_progbar=verbose != 0, model=self,
                                   verbose=verbose, epochs=epochs, steps=steps)
        # batches are gathered into reused buffers when shuffling
        x_buf = np.empty((min(batch_size, n),) + x.shape[1:], dtype=x.dtype)
        y_buf = np.empty((min(batch_size, n),) + y.shape[1:], dtype=y.dtype)
        self.stop_training = False
        callbacks.on_train_begin()
        logs = None
        for epoch in range(initial_epoch, epochs):
            self._reset_metrics()
            callbacks.on_epoch_begin(epoch)
            order = _random.generator().permutation(n) if shuffle else None
            for step in range(steps):
                start, stop = step * batch_size, min((step + 1) * batch_size, n)
                callbacks.on_train_batch_begin(step)
                if order is None:
                    xb, yb = x[start:stop], y[start:stop]
                else:
                    idx = order[start:stop]
                    xb = np.take(x, idx, axis=0, out=x_buf[: stop - start])
                    yb = np.take(y, idx, axis=0, out=y_buf[: stop - start])
                self._train_step(xb, yb, fused)
                callbacks.on_train_batch_end(step, self._logs())
                if self.stop_training:
                    break
            logs = self._logs()
            if val is not None and (epoch + 1) % validation_freq == 0:
                val_logs = self._evaluate_prepared(val[0], val[1], val_batch_size, callbacks, fused)
                logs.update({"val_" + name: value for name, value in val_logs.items()})
            callbacks.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        callbacks.on_train_end(logs=logs)
        return self._history_from(callbacks)

    def _history_from(self, callbacks):
        from convx.callbacks import History

        for callback in getattr(callbacks, "callbacks", []):
            if isinstance(callback, History):
                self.history = callback
        return self.history

    def _evaluate_prepared(self, x, y, batch_size, callbacks, fused):
        self._reset_metrics()
        callbacks.on_test_begin()
        for step in range(-(-len(x) // batch_size)):
            callbacks.on_test_batch_begin(step)
            self._test_step(x[step * batch_size:(step + 1) * batch_size], y[step * batch_size:(step + 1) * batch_size], fused)
            callbacks.on_test_batch_end(step, self._logs())
        logs = self._logs()
        callbacks.on_test_end(logs)
        return logs

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """Loss and metrics on ``(x, y)``: a float (loss only), a list ``[loss, *metrics]`` or a dict."""
        self._require_compiled("evaluate")
        _unsupported(sample_weight=sample_weight, steps=steps)
        batch_size = _batch_size(batch_size)
        verbose = _verbosity(verbose)
        x, y = self._prepare_xy(x, y)
        fused = self._prepare_step()
        callbacks = _callback_list(callbacks, add_progbar=verbose != 0, model=self, verbose=verbose, epochs=1,
                                   steps=-(-len(x) // batch_size))
        logs = self._evaluate_prepared(x, y, batch_size, callbacks, fused)
        return logs if return_dict else self._flatten_logs(logs)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for ``x``, computed in batches, as one float32 array."""
        _unsupported(steps=steps)
        batch_size = _batch_size(batch_size)
        verbose = _verbosity(verbose)
        x = self._prepare_x(x)
        n = len(x)
        steps = -(-n // batch_size)
        callbacks = _callback_list(callbacks, add_progbar=verbose != 0, model=self, verbose=verbose, epochs=1,
                                   steps=steps)
        out = np.empty((n,) + self._output_shape[1:], dtype=np.float32)
        callbacks.on_predict_begin()
        for step in range(steps):
            callbacks.on_predict_batch_begin(step)
            rows = slice(step * batch_size, (step + 1) * batch_size)
            out[rows] = self._forward(x[rows], training=False)
            # callbacks see the rows of the returned array, not the last layer's reused buffer
            callbacks.on_predict_batch_end(step, {"outputs": out[rows]})
        callbacks.on_predict_end()
        return out

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One training step on one batch; returns the running loss/metrics (Keras 3: not reset per call)."""
        self._require_compiled("train_on_batch")
        _unsupported(sample_weight=sample_weight, class_weight=class_weight)
        x, y = self._prepare_xy(x, y)
        self._train_step(x, y, self._prepare_step())
        logs = self._logs()
        return logs if return_dict else self._flatten_logs(logs)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """Loss/metrics on one batch without updating the weights."""
        self._require_compiled("test_on_batch")
        _unsupported(sample_weight=sample_weight)
        x, y = self._prepare_xy(x, y)
        self._test_step(x, y, self._prepare_step())
        logs = self._logs()
        return logs if return_dict else self._flatten_logs(logs)

    def predict_on_batch(self, x):
        """Outputs for one batch (a new array)."""
        return np.array(self._forward(self._prepare_x(x), training=False))

    def __call__(self, x, training=False):
        # the forward result is (a view of) a layer's reused buffer, or of x itself
        return np.array(self._forward(self._prepare_x(x), training=training))

    # ----- config --------------------------------------------------------------

    def get_config(self):
        """``{'name', 'trainable', 'layers': [{'class_name', 'config'}, ...]}``."""
        entries = [self._input_layer] if self._input_layer is not None else []
        entries += self._layers
        return {
            "name": self.name,
            "trainable": self.trainable,
            "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()} for layer in entries],
        }

    @classmethod
    def from_config(cls, config):
        from convx import layers as layers_module

        layers = []
        for entry in config["layers"]:
            layer_cls = getattr(layers_module, entry["class_name"], None)
            if not (isinstance(layer_cls, type) and issubclass(layer_cls, Layer)):
                raise ValueError(f"Unknown layer class {entry['class_name']!r} in config")
            layers.append(layer_cls.from_config(entry["config"]))
        return cls(layers, trainable=config.get("trainable", True), name=config.get("name"))

    # ----- saving --------------------------------------------------------------

    def save(self, filepath, overwrite=True):
        """Save the architecture, weights, compile settings and optimizer state to
        ``filepath`` (conventionally ``*.keras``; a zip of JSON and ``.npy``, see
        :mod:`convx.saving`). The previous file survives a failed save."""
        from convx import saving

        saving.save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath, overwrite=True):
        """Save the weights alone (conventionally ``*.weights.npz``)."""
        from convx import saving

        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath):
        """Load weights saved by :meth:`save_weights` or :meth:`save` into this built model."""
        from convx import saving

        saving.load_weights(self, filepath)

    def __repr__(self):
        return f"<Sequential name={self.name}, built={self.built}>"


def load_model(filepath, compile=True):
    """The model saved by :meth:`Sequential.save` (see :func:`convx.saving.load_model`)."""
    from convx import saving

    return saving.load_model(filepath, compile=compile)


__all__ = ["Sequential", "load_model", "format_shape"]
