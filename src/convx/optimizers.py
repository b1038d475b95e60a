"""Optimizers with Keras 3 names, defaults and update rules (``convx._kernels.optimizers``).

A model keeps all trainable weights in one contiguous float32 buffer and all
gradients in a matching one, so a training step is one kernel call; the
optimizer's state (momentum, m, v, ...) is flat too. ``apply_gradients`` also
works on separate variables, keeping one state per variable.
"""

import numpy as np

from convx._kernels import optimizers as _k


def _check_positive(value, name, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueError(f"{name} must be a number, received {name}={value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, received {name}={value!r}")
    return float(value)


class Optimizer:
    """Base class: holds the learning rate, the step counter and per-buffer state.

    Parameters
    ----------
    learning_rate : float or callable
        A callable is called with the step counter (``iterations``) at every update,
        like a Keras ``LearningRateSchedule``.
    name : str
    """

    _slot_names = ()

    def __init__(self, learning_rate, name):
        if not callable(learning_rate):
            learning_rate = _check_positive(learning_rate, "learning_rate")
        self._learning_rate = learning_rate
        self.name = name
        self.iterations = 0
        self._state = {}

    @property
    def learning_rate(self):
        """Current learning rate (a float); assignable, as callbacks do."""
        lr = self._learning_rate
        return float(lr(self.iterations)) if callable(lr) else lr

    @learning_rate.setter
    def learning_rate(self, value):
        self._learning_rate = value if callable(value) else _check_positive(value, "learning_rate")

    @property
    def built(self):
        return bool(self._state)

    def variable_count(self):
        """Scalars of optimizer state (plus the step counter and learning rate, as Keras counts)."""
        return sum(slot.size for slots in self._state.values() for slot in slots) + 2 if self._state else 0

    def _slots(self, key, param):
        slots = self._state.get(key)
        if slots is None or (slots and slots[0].shape != param.shape):
            slots = tuple(np.zeros_like(param) for _ in self._slot_names)
            self._state[key] = slots
        return slots

    def update_flat(self, params, grads):
        """One step on the model's flat weight and gradient buffers (one kernel call)."""
        self._update(params, grads, self._slots("flat", params), self.learning_rate, self.iterations + 1)
        self.iterations += 1

    def apply_gradients(self, grads_and_vars):
        """Keras' ``apply_gradients([(grad, variable), ...])``; one step for all of them."""
        lr, step = self.learning_rate, self.iterations + 1
        for grad, var in grads_and_vars:
            param = var.value if hasattr(var, "value") else var
            grad = np.ascontiguousarray(grad, dtype=param.dtype)
            if grad.shape != param.shape:
                raise ValueError(f"gradient of shape {grad.shape} does not match variable of shape {param.shape}")
            self._update(param, grad, self._slots(id(param), param), lr, step)
        self.iterations += 1

    def apply(self, grads, trainable_variables):
        """Keras' ``apply(grads, trainable_variables)``."""
        self.apply_gradients(zip(grads, trainable_variables))

    def reset_state(self):
        """Forget the state (called when a model's weight buffer is rebuilt)."""
        self._state = {}

    def get_config(self):
        lr = self._learning_rate
        return {"name": self.name, "learning_rate": lr}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, Keras 3 update.

    Parameters
    ----------
    learning_rate : float, default 0.01
    momentum : float >= 0, default 0.0
    nesterov : bool, default False
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, name="SGD"):
        super().__init__(learning_rate, name)
        self.momentum = _check_positive(momentum, "momentum", allow_zero=True)
        self.nesterov = bool(nesterov)
        self._slot_names = ("momentum",) if self.momentum else ()

    def _update(self, param, grad, slots, lr, step):
        _k.sgd_update(param, grad, slots[0] if slots else None, lr, momentum=self.momentum, nesterov=self.nesterov)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam, Keras 3 form (epsilon added to sqrt(v), bias correction folded into the step).

    Parameters
    ----------
    learning_rate : float, default 0.001
    beta_1 : float, default 0.9
    beta_2 : float, default 0.999
    epsilon : float, default 1e-7
    amsgrad : False
        Not supported.
    """

    _slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, name="adam"):
        super().__init__(learning_rate, name)
        if amsgrad:
            raise ValueError("amsgrad=True is not supported by convx")
        for value, arg in ((beta_1, "beta_1"), (beta_2, "beta_2")):
            if not 0.0 <= _check_positive(value, arg, allow_zero=True) < 1.0:
                raise ValueError(f"{arg} must be in [0, 1), received {arg}={value!r}")
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)
        self.epsilon = _check_positive(epsilon, "epsilon")

    def _update(self, param, grad, slots, lr, step):
        _k.adam_update(param, grad, slots[0], slots[1], lr, self.beta_1, self.beta_2, self.epsilon, step)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": False}


class RMSprop(Optimizer):
    """RMSprop, Keras 3 form.

    Parameters
    ----------
    learning_rate : float, default 0.001
    rho : float, default 0.9
    momentum : float, default 0.0
    epsilon : float, default 1e-7
    centered : bool, default False
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, name="rmsprop"):
        super().__init__(learning_rate, name)
        self.rho = _check_positive(rho, "rho", allow_zero=True)
        self.momentum = _check_positive(momentum, "momentum", allow_zero=True)
        self.epsilon = _check_positive(epsilon, "epsilon")
        self.centered = bool(centered)
        self._slot_names = ("velocity",) + (("momentum",) if self.momentum else ()) + (("average_gradient",) if self.centered else ())

    def _update(self, param, grad, slots, lr, step):
        momentum_buffer = slots[1] if self.momentum else None
        average = slots[-1] if self.centered else None
        _k.rmsprop_update(param, grad, slots[0], lr, rho=self.rho, momentum=self.momentum, epsilon=self.epsilon,
                          momentum_buffer=momentum_buffer, average_grad=average)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


_BY_NAME = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop}


def get(identifier):
    """An Optimizer from a name ('adam', 'sgd', 'rmsprop'), a config dict or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    if isinstance(identifier, dict) and str(identifier.get("class_name", "")).lower() in _BY_NAME:
        return _BY_NAME[identifier["class_name"].lower()].from_config(identifier.get("config", {}))
    raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}; expected one of {sorted(_BY_NAME)} or an Optimizer")


def serialize(optimizer):
    """``{'class_name': ..., 'config': ...}``."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}
