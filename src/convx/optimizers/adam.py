"""Adam (and AMSGrad), Keras 3's rule."""

from convx._kernels import optimizers as _k
from convx.optimizers._arguments import check_range
from convx.optimizers.base_optimizer import Optimizer


class Adam(Optimizer):
    """Adam as Keras 3 computes it: ``m += (g - m)(1 - b1)``, ``v += (g^2 - v)(1 - b2)``,
    ``w -= m * lr * sqrt(1 - b2^t) / (1 - b1^t) / (sqrt(v) + epsilon)``; with ``amsgrad``
    the running maximum of ``v`` replaces ``v``.

    Parameters
    ----------
    learning_rate : float, schedule or callable, default 0.001
    beta_1 : float in [0, 1), default 0.9
    beta_2 : float in [0, 1), default 0.999
    epsilon : float >= 0, default 1e-7
        Added to ``sqrt(v)`` (Keras' "epsilon hat").
    amsgrad : bool, default False
    **kwargs
        The common arguments of :class:`Optimizer`.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None, name=None,
                 **kwargs):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                         ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps, name, **kwargs)
        self.beta_1 = check_range(beta_1, "beta_1", high_open=True)
        self.beta_2 = check_range(beta_2, "beta_2", high_open=True)
        self.epsilon = check_range(epsilon, "epsilon", high=None)
        self.amsgrad = bool(amsgrad)

    def _slot_specs(self):
        slots = ((("momentum", 0.0), ("velocity", 0.0)),)
        return slots + ((("velocity_hat", 0.0),),) if self.amsgrad else slots

    def _update_step(self, param, grad, slots, lr, step):
        _k.adam_update(param, grad, slots[0], slots[1], lr, self.beta_1, self.beta_2, self.epsilon, step,
                       v_hat=slots[2] if self.amsgrad else None)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "amsgrad": self.amsgrad}
