"""The constructor and config shared by the optimizers with Adam's ``beta_1``, ``beta_2`` and ``epsilon``
(Adamax, Nadam): Keras 3 gives them the same signature and defaults."""

from convx.optimizers._arguments import check_range
from convx.optimizers.base_optimizer import Optimizer


class AdamLike(Optimizer):
    """An optimizer taking ``beta_1``, ``beta_2`` and ``epsilon`` after ``learning_rate`` (Keras 3's defaults)."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name=None, **kwargs):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                         ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps, name, **kwargs)
        self.beta_1 = check_range(beta_1, "beta_1", high_open=True)
        self.beta_2 = check_range(beta_2, "beta_2", high_open=True)
        self.epsilon = check_range(epsilon, "epsilon", high=None)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}
