"""Nadam (Adam with Nesterov momentum), Keras 3's rule."""

import numpy as np

from convx._kernels import optimizers as _k
from convx.optimizers._adam_like import AdamLike


class Nadam(AdamLike):
    """Keras 3's Nadam: Adam's moments with the momentum schedule
    ``u_t = b1 (1 - 0.5 * 0.96^t)`` and its running product (see
    ``convx._kernels.optimizers.nadam_update``).

    Parameters
    ----------
    learning_rate, beta_1, beta_2, epsilon, **kwargs
        As :class:`Adamax` (Keras 3's defaults 0.001, 0.9, 0.999, 1e-7; beta_1 and beta_2 in [0, 1), epsilon >= 0).
    """

    def _slot_specs(self):
        return ((("momentum", 0.0), ("velocity", 0.0)),)

    def reset_state(self):
        super().reset_state()
        self._u_product = 1.0

    def _update_parts(self, parts, grads, lr, step):
        # Keras advances the product once per step, before updating the variables
        previous = self._u_product
        product = previous
        for segment, param in parts:
            g = grads if segment is None else grads[segment.slice]
            slots = self._slots if segment is None else [s[segment.slice] for s in self._slots]
            product = _k.nadam_update(param, g, slots[0], slots[1], lr, self.beta_1, self.beta_2, self.epsilon,
                                      step, previous)
        self._u_product = product

    def _extra_variables(self):
        def put(value):
            self._u_product = float(np.asarray(value))

        return [(lambda: np.asarray(self._u_product, np.float32), put)]
