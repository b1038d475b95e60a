"""SGD with optional (Nesterov) momentum, Keras 3's rule."""

from convx._kernels import optimizers as _k
from convx.optimizers._arguments import check_range
from convx.optimizers.base_optimizer import Optimizer


class SGD(Optimizer):
    """Gradient descent with momentum: ``v = momentum * v - lr * g``; ``w += v`` (Nesterov:
    ``w += momentum * v - lr * g``); without momentum ``w -= lr * g``.

    Parameters
    ----------
    learning_rate : float, schedule or callable, default 0.01
    momentum : float in [0, 1], default 0.0
    nesterov : bool, default False
    **kwargs
        The common arguments of :class:`Optimizer` (weight_decay, clipnorm, ...).
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name=None, **kwargs):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                         ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps, name, **kwargs)
        self.momentum = check_range(momentum, "momentum")
        self.nesterov = bool(nesterov)

    def _slot_specs(self):
        return ((("momentum", 0.0),),) if self.momentum != 0 else ()

    def _update_step(self, param, grad, slots, lr, step):
        _k.sgd_update(param, grad, slots[0] if slots else None, lr, momentum=self.momentum, nesterov=self.nesterov)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}
