"""AdamW: Adam with decoupled weight decay (Keras 3: weight_decay defaults to 0.004)."""

from convx.optimizers.adam import Adam


class AdamW(Adam):
    """Adam whose weights decay as ``w -= w * weight_decay * lr`` before each update.

    Parameters
    ----------
    learning_rate : float, schedule or callable, default 0.001
    weight_decay : float, default 0.004
        Required (None is refused, as in Keras).
    beta_1, beta_2, epsilon, amsgrad
        As for :class:`Adam`.
    **kwargs
        The common arguments of :class:`Optimizer`.
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None, name=None,
                 **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay, clipnorm, clipvalue,
                         global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name, **kwargs)
        if self.weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")
