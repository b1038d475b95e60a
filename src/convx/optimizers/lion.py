"""Lion (evolved sign momentum), Keras 3's rule."""

from convx._kernels import optimizers as _k
from convx.optimizers._arguments import check_range
from convx.optimizers.base_optimizer import Optimizer


class Lion(Optimizer):
    """``w -= lr sign(b1 m + (1 - b1) g)``, then ``m = b2 m + (1 - b2) g``.

    Parameters
    ----------
    learning_rate : float, schedule or callable, default 0.001
    beta_1 : float in (0, 1], default 0.9
    beta_2 : float in [0, 1], default 0.99
    **kwargs
        The common arguments of :class:`Optimizer`.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name=None, **kwargs):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                         ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps, name, **kwargs)
        self.beta_1 = check_range(beta_1, "beta_1", low_open=True)
        self.beta_2 = check_range(beta_2, "beta_2")

    def _slot_specs(self):
        return ((("momentum", 0.0),),)

    def _update_step(self, param, grad, slots, lr, step):
        _k.lion_update(param, grad, slots[0], lr, self.beta_1, self.beta_2)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}
