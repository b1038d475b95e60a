"""Adadelta, Keras 3's rule."""

from convx._kernels import optimizers as _k
from convx.optimizers._arguments import check_range
from convx.optimizers.base_optimizer import Optimizer


class Adadelta(Optimizer):
    """``a = rho a + (1 - rho) g^2``, ``d = -sqrt(b + eps) g / sqrt(a + eps)``,
    ``b = rho b + (1 - rho) d^2``, ``w += lr d``.

    Parameters
    ----------
    learning_rate : float, schedule or callable, default 0.001
    rho : float in [0, 1), default 0.95
    epsilon : float >= 0, default 1e-7
    **kwargs
        The common arguments of :class:`Optimizer`.
    """

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name=None, **kwargs):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                         ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps, name, **kwargs)
        self.rho = check_range(rho, "rho", high_open=True)
        self.epsilon = check_range(epsilon, "epsilon", high=None)

    def _slot_specs(self):
        return ((("accumulated_grad", 0.0), ("accumulated_delta_var", 0.0)),)

    def _update_step(self, param, grad, slots, lr, step):
        _k.adadelta_update(param, grad, slots[0], slots[1], lr, self.rho, self.epsilon)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}
