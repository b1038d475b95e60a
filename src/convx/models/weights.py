"""``ModelWeights``: a model's weights in Keras' order, the flat trainable buffer the optimizer updates,
and the penalties Keras lists as ``model.losses``."""

import math

import numpy as np

from convx.layers.base import _weight_penalties


class ModelWeights:
    """Mixin of :class:`~convx.models.model.Model`: weights, the flat buffer, quantization, ``losses``."""

    def _weight_layers(self):
        return self.layers

    @property
    def weights(self):
        """Every weight once, layer by layer in ``model.layers`` order (Keras' order)."""
        seen, weights = set(), []
        for layer in self._weight_layers():
            for w in layer.weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    weights.append(w)
        return weights

    def _weight_trainable(self):
        """id(variable) -> whether it trains (its layer and every model around it trainable)."""
        flags = {}
        for layer in self._weight_layers():
            if getattr(layer, "_is_model", False):
                inner = layer._weight_trainable()
                for w in layer.weights:
                    flags.setdefault(id(w), self.trainable and layer.trainable and inner[id(w)])
            else:
                trains = {id(w) for w in layer.trainable_weights}
                for w in layer.weights:
                    flags.setdefault(id(w), self.trainable and id(w) in trains)
        return flags

    @property
    def trainable_weights(self):
        flags = self._weight_trainable()
        return [w for w in self.weights if flags[id(w)]]

    @property
    def non_trainable_weights(self):
        flags = self._weight_trainable()
        return [w for w in self.weights if not flags[id(w)]]

    def get_weights(self):
        """Copies of all weights, in ``model.weights`` order (Keras' order)."""
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights):
        """Assign a list of arrays as returned by ``get_weights`` (or by Keras' for the same architecture)."""
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

    def quantize(self, mode, calibration_data=None, filters=None, method="minmax", percentile=99.99, batch_size=256,
                 activation_bits=None):
        """Quantize the Conv2D and Dense layers to int8 in place (Keras 3's method, plus static
        calibration on ``calibration_data``); see :func:`convx.quantization.quantize_model`."""
        from convx.quantization import quantize_model

        quantize_model(self, mode, calibration_data=calibration_data, filters=filters, method=method,
                       percentile=percentile, batch_size=batch_size, activation_bits=activation_bits)

    @property
    def losses(self):
        """The penalties as Keras' ``model.losses`` lists them (float32 scalars): the layers' activity
        penalties of the last call, in layer order, then the weights' regularizers in weight order."""
        if self._graph is None:
            return []
        activity = [loss for layer in self._all_layers for loss in getattr(layer, "_activity_losses", ())]
        return activity + _weight_penalties(self.weights)

    def zero_grad(self):
        """Zero the trainable weights' gradients (the flat buffer)."""
        if self._grads is not None:
            self._grads.fill(0)
