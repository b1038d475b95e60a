"""Regularization and constraints of a model during training (``_Penalties``)."""

import numpy as np


class _Penalties:
    """A model's regularization and constraints, as Keras 3 counts them: the training loss adds the
    weights' regularizer penalties and the layers' activity penalties (``model.losses``); the
    penalties' gradients go into the weights' gradients (views of the flat buffer) in place, before
    the optimizer step; constraints project their variables after it. Nothing here allocates per
    step for the built-in regularizers and constraints (each entry keeps a scratch array)."""

    def __init__(self, model, key):
        self.key = key
        trainable = {id(w) for w in model.trainable_weights}
        layers = [layer for layer in model._all_layers if not getattr(layer, "_is_model", False)]
        seen, self.weights, self.constraints = set(), [], []
        for layer in layers:
            for w in layer.weights:
                if id(w) in seen:
                    continue
                seen.add(id(w))
                if w.regularizer is not None:
                    if id(w) in trainable and not callable(getattr(w.regularizer, "add_gradient", None)):
                        raise ValueError(
                            f"The regularizer of weight {w.path!r} ({w.regularizer!r}) has no add_gradient(x, grad, "
                            "scratch) method: convx (no autograd) trains only with regularizers that define it, "
                            "such as those of convx.regularizers"
                        )
                    self.weights.append((w, w.regularizer, id(w) in trainable, np.empty_like(w.value)))
                if w.constraint is not None and id(w) in trainable:
                    self.constraints.append((w, w.constraint, np.empty_like(w.value)))
        # layers with call() may add_loss; their values are collected like activity penalties
        self.activity_layers = [layer for layer in layers if layer.activity_regularizer is not None or layer._has_call]
        self.active = bool(self.weights or self.activity_layers)

    def clear_activity(self):
        for layer in self.activity_layers:
            layer._activity_losses.clear()

    def value(self):
        """Sum of the penalties (float32), or None when the model has none."""
        if not self.active:
            return None
        total = np.float32(0.0)
        for w, regularizer, _, scratch in self.weights:
            penalty = getattr(regularizer, "penalty", None)
            total = total + np.float32(penalty(w.value, scratch) if penalty else regularizer(w.value))
        for layer in self.activity_layers:
            for loss in layer._activity_losses:
                total = total + np.float32(loss)
        return np.float32(total)

    def value_and_add_grads(self):
        """The penalty (before the update), its gradients added to the trainable weights' ``grad``."""
        total = self.value()
        for w, regularizer, trains, scratch in self.weights:
            if trains:
                regularizer.add_gradient(w.value, w.grad, scratch)
        return total

    def constrain(self):
        for w, constraint, scratch in self.constraints:
            apply = getattr(constraint, "apply", None)
            if apply is not None:
                apply(w.value, scratch)
            else:
                np.copyto(w.value, constraint(w.value), casting="unsafe")
