"""Argument checks shared by the optimizers (Keras 3's messages where Keras checks)."""

import numbers

import numpy as np


def is_number(value):
    return isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_learning_rate(value):
    if not is_number(value):
        raise ValueError(
            "Argument `learning_rate` should be float, or an instance of LearningRateSchedule, or a callable "
            "(that takes in the current iteration value and returns the corresponding learning rate value). "
            f"Received instead: learning_rate={value!r}"
        )
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"learning_rate must be a finite number >= 0, received learning_rate={value!r}")
    return float(value)


def check_range(value, name, low=0.0, high=1.0, low_open=False, high_open=False):
    """``value`` as a float, or ValueError naming ``name`` and the allowed range."""
    inside = is_number(value) and (value > low if low_open else value >= low)
    inside = inside and (high is None or (value < high if high_open else value <= high))
    if not inside:
        interval = f"{'(' if low_open else '['}{low}, {'inf)' if high is None else str(high) + (')' if high_open else ']')}"
        raise ValueError(f"`{name}` must be a number in {interval}. Received: {name}={value!r}")
    return float(value)


def check_base_arguments(weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                         ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps):
    for name, value in (("weight_decay", weight_decay), ("clipnorm", clipnorm), ("clipvalue", clipvalue),
                        ("global_clipnorm", global_clipnorm), ("loss_scale_factor", loss_scale_factor)):
        if value is not None:
            check_range(value, name, high=None)
    if loss_scale_factor is not None and loss_scale_factor == 0:
        raise ValueError("`loss_scale_factor` must be > 0. Received: loss_scale_factor=0")
    if gradient_accumulation_steps:
        if not isinstance(gradient_accumulation_steps, (int, np.integer)) or gradient_accumulation_steps < 2:
            raise ValueError("`gradient_accumulation_steps` must be an integer >= 2. Received: "
                             f"gradient_accumulation_steps={gradient_accumulation_steps}")
    if use_ema:
        if not is_number(ema_momentum) or ema_momentum > 1 or ema_momentum < 0:
            raise ValueError(f"`ema_momentum` must be in the range [0, 1]. Received: ema_momentum={ema_momentum}")
        if ema_overwrite_frequency and (not isinstance(ema_overwrite_frequency, int) or ema_overwrite_frequency < 1):
            raise ValueError("`ema_overwrite_frequency` must be an integer >= 1 or None. Received: "
                             f"ema_overwrite_frequency={ema_overwrite_frequency}")
    if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
        raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: "
                         f"clipnorm={clipnorm}, clipvalue={clipvalue}, global_clipnorm={global_clipnorm}")


def serialize_callable(fn):
    """A plain function as Keras' serialize_keras_object writes one (lambdas cannot be saved)."""
    name = getattr(fn, "__name__", None)
    if name is None or name == "<lambda>":
        raise ValueError(f"A lambda learning rate cannot be serialized: use a named function or a "
                         f"LearningRateSchedule subclass with get_config(). Received: {fn!r}")
    return {"module": fn.__module__, "class_name": "function", "config": name, "registered_name": name}
