"""Adagrad, Keras 3's rule."""

from convx._kernels import optimizers as _k
from convx.optimizers._arguments import check_range
from convx.optimizers.base_optimizer import Optimizer


class Adagrad(Optimizer):
    """``acc += g^2``, ``w -= lr g / sqrt(acc + epsilon)``.

    Parameters
    ----------
    learning_rate : float, schedule or callable, default 0.001
    initial_accumulator_value : float >= 0, default 0.1
    epsilon : float >= 0, default 1e-7
    **kwargs
        The common arguments of :class:`Optimizer`.
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None, name=None,
                 **kwargs):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                         ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps, name, **kwargs)
        self.initial_accumulator_value = check_range(initial_accumulator_value, "initial_accumulator_value", high=None)
        self.epsilon = check_range(epsilon, "epsilon", high=None)

    def _slot_specs(self):
        return ((("accumulator", self.initial_accumulator_value),),)

    def _update_step(self, param, grad, slots, lr, step):
        _k.adagrad_update(param, grad, slots[0], lr, self.epsilon)

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}
