"""Adamax (Adam with the infinity norm), Keras 3's rule."""

from convx._kernels import optimizers as _k
from convx.optimizers._adam_like import AdamLike


class Adamax(AdamLike):
    """``m += (g - m)(1 - b1)``, ``u = max(b2 u, |g|)``, ``w -= lr m / ((1 - b1^t)(u + epsilon))``.

    Parameters
    ----------
    learning_rate : float, schedule or callable, default 0.001
    beta_1 : float in [0, 1), default 0.9
    beta_2 : float in [0, 1), default 0.999
    epsilon : float >= 0, default 1e-7
    **kwargs
        The common arguments of :class:`Optimizer`.
    """

    def _slot_specs(self):
        return ((("momentum", 0.0), ("norm", 0.0)),)

    def _update_step(self, param, grad, slots, lr, step):
        _k.adamax_update(param, grad, slots[0], slots[1], lr, self.beta_1, self.beta_2, self.epsilon, step)
