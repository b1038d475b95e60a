"""FTRL-proximal, Keras 3's rule."""

from convx._kernels import optimizers as _k
from convx.optimizers._arguments import is_number
from convx.optimizers.base_optimizer import Optimizer


def _check(value, name, sign):
    if not is_number(value) or (value < 0.0 if sign > 0 else value > 0.0):
        kind = "positive or zero" if sign > 0 else "negative or zero"
        raise ValueError(f"`{name}` needs to be {kind}. Received: {name}={value}.")
    return float(value)


class Ftrl(Optimizer):
    """Follow-the-regularized-leader with L1/L2 and shrinkage terms (see Keras' ``Ftrl``).

    Parameters
    ----------
    learning_rate : float, schedule or callable, default 0.001
    learning_rate_power : float <= 0, default -0.5
    initial_accumulator_value : float >= 0, default 0.1
    l1_regularization_strength, l2_regularization_strength : float >= 0, default 0.0
    l2_shrinkage_regularization_strength : float >= 0, default 0.0
    beta : float, default 0.0
    **kwargs
        The common arguments of :class:`Optimizer`.
    """

    def __init__(self, learning_rate=0.001, learning_rate_power=-0.5, initial_accumulator_value=0.1,
                 l1_regularization_strength=0.0, l2_regularization_strength=0.0,
                 l2_shrinkage_regularization_strength=0.0, beta=0.0, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name=None, **kwargs):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                         ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps, name, **kwargs)
        self.initial_accumulator_value = _check(initial_accumulator_value, "initial_accumulator_value", 1)
        self.learning_rate_power = _check(learning_rate_power, "learning_rate_power", -1)
        self.l1_regularization_strength = _check(l1_regularization_strength, "l1_regularization_strength", 1)
        self.l2_regularization_strength = _check(l2_regularization_strength, "l2_regularization_strength", 1)
        self.l2_shrinkage_regularization_strength = _check(
            l2_shrinkage_regularization_strength, "l2_shrinkage_regularization_strength", 1)
        self.beta = _check(beta, "beta", 1)

    def _slot_specs(self):
        return ((("accumulator", self.initial_accumulator_value), ("linear", 0.0)),)

    def _update_step(self, param, grad, slots, lr, step):
        _k.ftrl_update(param, grad, slots[0], slots[1], lr, self.learning_rate_power, self.l1_regularization_strength,
                       self.l2_regularization_strength, self.l2_shrinkage_regularization_strength, self.beta)

    def get_config(self):
        return {**super().get_config(), "learning_rate_power": self.learning_rate_power,
                "initial_accumulator_value": self.initial_accumulator_value,
                "l1_regularization_strength": self.l1_regularization_strength,
                "l2_regularization_strength": self.l2_regularization_strength,
                "l2_shrinkage_regularization_strength": self.l2_shrinkage_regularization_strength,
                "beta": self.beta}
