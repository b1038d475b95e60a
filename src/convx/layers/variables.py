"""``Variable``: a layer's weight, as Keras 3 exposes it (``value``, ``assign``, ``assign_add``, operators).

Layers read ``variable.value`` at every call, so a model may rebind it to a view
of its flat weight buffer; ``variable.grad`` likewise becomes a view of the flat
gradient buffer the optimizer reads. In a custom layer's ``call()`` a Variable
is an operand of ``convx.ops`` (and of Python's operators): eagerly its value,
on a training tape a leaf whose gradient lands in ``grad``.
"""

import numpy as np

from convx.layers.node import KerasTensor, install_operators
from convx.ops.core import TapeTensor, untraceable


class Variable:
    """A weight: a float32 array (possibly a view into a model's flat buffer) and its gradient.

    Attributes
    ----------
    value : numpy.ndarray
        The current values; layers read it at every call, so rebinding it to a
        view of a larger buffer is invisible to them.
    grad : numpy.ndarray
        Same shape; filled by the owning layer's ``backward``.
    name, path : str
        ``'kernel'`` and ``'dense/kernel'``, as in Keras.
    regularizer : callable or None
        Its penalty enters the training loss (``layer.losses``, ``model.losses``).
    constraint : callable or None
        Applied to the value after every optimizer update.
    """

    _convx_variable = True  # convx.ops reads .value, and records the variable on a tape in a custom layer's call
    __array_priority__ = 100  # ndarray + variable defers to the variable's operators

    def __init__(self, value, name, path, trainable=True, regularizer=None, constraint=None, aggregation="none",
                 overwrite_with_gradient=False, autocast=True):
        self.value = value
        self.grad = np.zeros_like(value)
        self.name = name
        self.path = path
        self.trainable = trainable
        self.regularizer = regularizer
        self.constraint = constraint
        self.aggregation = aggregation
        self.overwrite_with_gradient = overwrite_with_gradient
        self.autocast = autocast

    @property
    def shape(self):
        return self.value.shape

    @property
    def dtype(self):
        return self.value.dtype

    def numpy(self):
        """A copy of the values."""
        return self.value.copy()

    def assign(self, value):
        """Copy ``value`` (same shape) into the variable in place (nothing while a model is traced)."""
        if isinstance(value, KerasTensor):
            untraceable(f"assign() to {self.path!r}")
            return self
        value = np.asarray(value.value if isinstance(value, TapeTensor) else value)
        if value.shape != self.value.shape:
            raise ValueError(f"Variable {self.path!r} has shape {self.value.shape}, received value of shape {value.shape}")
        np.copyto(self.value, value, casting="unsafe")
        return self

    def assign_add(self, value):
        """``variable += value`` in place (Keras' ``assign_add``; no gradient flows through it)."""
        if isinstance(value, KerasTensor):
            untraceable(f"assign_add() to {self.path!r}")
        else:
            np.add(self.value, np.asarray(value.value if isinstance(value, TapeTensor) else value), out=self.value,
                   casting="unsafe")
        return self

    def assign_sub(self, value):
        """``variable -= value`` in place."""
        if isinstance(value, KerasTensor):
            untraceable(f"assign_sub() to {self.path!r}")
        else:
            np.subtract(self.value, np.asarray(value.value if isinstance(value, TapeTensor) else value),
                        out=self.value, casting="unsafe")
        return self

    @property
    def ndim(self):
        return self.value.ndim

    def __array__(self, dtype=None, copy=None):
        return self.value if dtype is None else self.value.astype(dtype)

    def __repr__(self):
        return f"<Variable path={self.path}, shape={self.shape}, dtype={self.dtype.name}>"

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from convx.layers.node import dispatch_ufunc

        def on_values(*args, **kw):
            return getattr(ufunc, method)(*[a.value if isinstance(a, Variable) else a for a in args], **kw)

        return dispatch_ufunc(ufunc, method, inputs, kwargs, on_values)


install_operators(Variable)
