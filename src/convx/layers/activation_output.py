"""``ActivationOutput``: the mixin of layers ending in an activation that a fused loss may take over."""

import numpy as np

from convx import activations


class ActivationOutput:
    """Mixin for layers ending in an activation that a fused loss may take over.

    When a model's plan sets ``expose_logits`` on a call's state (softmax +
    cross-entropy, sigmoid + binary cross-entropy), ``forward`` keeps the
    pre-activation output in ``state.logits`` and ``backward(dz,
    from_logits=True)`` takes the gradient w.r.t. those logits directly.
    """

    # parameters of a parameterised activation code (LeakyReLU's slope, ...); None: the defaults
    _activation_params = None

    def _activate(self, compute, training):
        """``compute(activation_name, slot)`` runs the kernel with its fused epilogue into buffer ``slot``.

        The pre-activation output is kept (``state.logits``) when the loss takes over the
        activation, and in training when the activation's gradient needs its input (gelu, silu, ...).
        """
        act, state, params = self.activation, self._state, self._activation_params
        if act != "linear" and (state.expose_logits or (training and activations.needs_input(act, params))):
            state.logits = compute("linear", "logits")
            y = activations.forward(state.logits, act, out=self._buffer("y", state.logits.shape, state.logits.dtype),
                                    params=params)
        else:
            y = compute(act, "y")
            state.logits = y if act == "linear" else None
        state.y = y if training else None
        return y

    def _add_activity_grad(self, dy, from_logits):
        """``dy`` plus the activity penalty's gradient (w.r.t. the output ``state.y``; taken back
        through the activation when ``dy`` is already w.r.t. the pre-activation)."""
        state = self._state
        y = state.y.reshape(dy.shape)
        grad = self._activity_grad(y)
        if from_logits and self.activation != "linear":
            grad = activations.backward(y, grad, self.activation, out=grad, x=state.logits,
                                        params=self._activation_params)
        return np.add(dy, grad, out=self._buffer("dy_activity", dy.shape, dy.dtype))

    def _pre_activation_grad(self, dy, from_logits):
        if from_logits or self.activation == "linear":
            return dy
        state, params = self._state, self._activation_params
        y = state.y
        return activations.backward(y, dy, self.activation, out=self._buffer("dz", y.shape, y.dtype),
                                    x=state.logits, params=params)
