"""Nadam (Adam with Nesterov momentum), Keras 3's rule."""

import numpy as np

from convx._kernels import optimizers as _k
from convx.optimizers._arguments import check_range
from convx.optimizers.base_optimizer import Optimizer


class Nadam(Optimizer):
    """Keras 3's Nadam: Adam's moments with the momentum schedule
    ``u_t = b1 (1 - 0.5 * 0.96^t)`` and its running product (see
    ``convx._kernels.optimizers.nadam_update``).

    Parameters
    ----------
    learning_rate : float, schedule or callable, default 0.001
    beta_1 : float in [0, 1), default 0.9
    beta_2 : float in [0, 1), default 0.999
    epsilon : float >= 0, default 1e-7
    **kwargs
        The common arguments of :class:`Optimizer`.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name=None, **kwargs):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                         ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps, name, **kwargs)
        self.beta_1 = check_range(beta_1, "beta_1", high_open=True)
        self.beta_2 = check_range(beta_2, "beta_2", high_open=True)
        self.epsilon = check_range(epsilon, "epsilon", high=None)
        self._u_product = 1.0

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

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}
