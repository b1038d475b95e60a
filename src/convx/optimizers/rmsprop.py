"""RMSprop (with momentum and the centered variant), Keras 3's rule."""

from convx._kernels import optimizers as _k
from convx.optimizers._arguments import check_range
from convx.optimizers.base_optimizer import Optimizer


class RMSprop(Optimizer):
    """``v = rho v + (1 - rho) g^2``; centered: ``a = rho a + (1 - rho) g`` and the
    denominator ``sqrt(v - a^2 + eps)``, else ``sqrt(v + eps)``; ``inc = lr g / den``;
    with momentum ``mb = momentum mb + inc; w -= mb``, else ``w -= inc``.

    Parameters
    ----------
    learning_rate : float, schedule or callable, default 0.001
    rho : float in [0, 1), default 0.9
    momentum : float in [0, 1), default 0.0
    epsilon : float >= 0, default 1e-7
    centered : bool, default False
    **kwargs
        The common arguments of :class:`Optimizer`.
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None, name=None,
                 **kwargs):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                         ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps, name, **kwargs)
        self.rho = check_range(rho, "rho", high_open=True)
        self.momentum = check_range(momentum, "momentum", high_open=True)
        self.epsilon = check_range(epsilon, "epsilon", high=None)
        self.centered = bool(centered)

    def _slot_specs(self):
        # three separate groups: Keras adds them with three add_optimizer_variables calls
        groups = ((("velocity", 0.0),),)
        groups += ((("momentum", 0.0),),) if self.momentum > 0 else ()
        return groups + ((("average_gradient", 0.0),),) if self.centered else groups

    def _update_step(self, param, grad, slots, lr, step):
        momentum_buffer = slots[1] if self.momentum > 0 else None
        average = slots[-1] if self.centered else None
        _k.rmsprop_update(param, grad, slots[0], lr, rho=self.rho, momentum=self.momentum, epsilon=self.epsilon,
                          momentum_buffer=momentum_buffer, average_grad=average)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered}
