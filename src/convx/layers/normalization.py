"""Normalization layers: BatchNormalization, LayerNormalization, GroupNormalization (Keras 3 semantics).

The arithmetic is in ``convx._kernels.norm``: statistics summed in double over
blocks of rows fixed by the problem size (bit-identical for any thread count),
two passes over the data forward in training (statistics, then normalize),
two backward (one reduction of x and dy, one pass writing dx), one at
inference. A model's plan (``models/plan.py``) runs a relu layer reading a
BatchNormalization inside it, and at inference folds a BatchNormalization
that reads a convolution or dense layer into that layer's weights.
"""

import warnings

import numpy as np

from convx import constraints, initializers, regularizers
from convx._kernels import norm as _norm
from convx.distribution import _synchronizing_world
from convx.layers.base import Layer


def _check_bool(value, name, owner):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{owner}: argument `{name}` must be a bool, received {name}={value!r}")
    return bool(value)


def _check_epsilon(value, owner):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or not value > 0 \
            or not np.isfinite(value):
        raise ValueError(f"{owner}: argument `epsilon` must be a finite number > 0, received epsilon={value!r}")
    return float(value)


class _Normalization(Layer):
    """What the three layers share: epsilon, center/scale, gamma/beta initializers, gradients."""

    _supports_activity_regularizer = True  # forward records it, backward adds its gradient

    def __init__(self, epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                 gamma_regularizer, beta_constraint, gamma_constraint, **kwargs):
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.epsilon = _check_epsilon(epsilon, owner)
        self.center = _check_bool(center, "center", owner)
        self.scale = _check_bool(scale, "scale", owner)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.gamma = self.beta = None

    def _add_affine(self, shape, gamma=True, beta=True):
        if gamma:
            self.gamma = self.add_weight(shape=shape, initializer=self.gamma_initializer, name="gamma",
                                         regularizer=self.gamma_regularizer, constraint=self.gamma_constraint)
        if beta:
            self.beta = self.add_weight(shape=shape, initializer=self.beta_initializer, name="beta",
                                        regularizer=self.beta_regularizer, constraint=self.beta_constraint)

    def _activity(self, y, training):
        """Record the activity penalty of output ``y`` (a layer with an activity regularizer); returns y."""
        if self.activity_regularizer is not None:
            self._activity_forward(y)
            self._state.y = y if training else None
        return y

    def _output_grad(self, dy):
        """``dy`` plus the gradient of the activity penalty, if any."""
        if self.activity_regularizer is None:
            return dy
        return np.add(dy, self._activity_grad(self._state.y), out=self._buffer("dy_activity", dy.shape, dy.dtype))

    def _values(self):
        return (None if self.gamma is None else self.gamma.value, None if self.beta is None else self.beta.value)

    def _grad_buffers(self, shape, need_dx, x):
        """(dx, dgamma, dbeta) outputs: the variables' grad arrays (views of a model's flat buffer) or scratch."""
        dgamma = self.gamma.grad if self.gamma is not None else self._buffer("dgamma", shape)
        dbeta = self.beta.grad if self.beta is not None else self._buffer("dbeta", shape)
        return (self._buffer("dx", x.shape, x.dtype) if need_dx else None), dgamma, dbeta

    def _axis_error(self, axis, input_shape):
        raise ValueError(f"Axis {axis} is out of bounds for input shape {tuple(input_shape)}. "
                         f"Received: axis={self.axis}")

    def _common_config(self):
        return {
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": constraints.serialize(self.beta_constraint),
            "gamma_constraint": constraints.serialize(self.gamma_constraint),
        }


class BatchNormalization(_Normalization):
    """Normalizes each channel with the batch's statistics in training and moving ones at inference.

    Training (``training=True`` and the layer trainable): ``y = (x - mean) /
    sqrt(var + epsilon) * gamma + beta`` with the batch mean and biased
    variance over every axis but ``axis``, and the moving statistics updated as
    ``moving = moving * momentum + batch * (1 - momentum)``. Inference (or a
    layer with ``trainable = False``, or inside a model that is not trainable:
    Keras 3's rule): the moving statistics instead, and nothing is updated.

    Passes over the data: training forward 2 (statistics, then normalize),
    backward 2 (one reduction of x and dy, one pass writing dx), inference 1
    (and 0 when the model's plan folds the layer into the convolution or dense
    layer before it). A relu, relu6 or ``ReLU(max_value)`` layer reading the
    layer's output runs in these same passes (the plan's
    ``relu_into_batch_norm``).

    Parameters
    ----------
    axis : int, default -1
        The channel axis (-1, channels last, is the fast path).
    momentum : float in [0, 1], default 0.99
    epsilon : float > 0, default 1e-3
    center, scale : bool, default True
        Whether beta / gamma exist (and are used).
    beta_initializer, gamma_initializer, moving_mean_initializer, moving_variance_initializer
        Defaults 'zeros', 'ones', 'zeros', 'ones'.
    beta_regularizer, gamma_regularizer : optional
        Their penalties enter the training loss (``layer.losses``), as in Keras.
    beta_constraint, gamma_constraint : optional
        Applied after each optimizer update.
    synchronized : bool, default False
        In a data-parallel job (``convx.distribution.DataParallel``), normalize
        with the statistics of the global batch (summed over the ranks: two
        small all-reduces forward, one backward) instead of each rank's share.
        In one process the batch statistics already are the global ones.

    Weights, in Keras' order: gamma, beta (trainable), moving_mean,
    moving_variance (non-trainable), each of shape (C,).
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 synchronized=False, renorm=False, renorm_clipping=None, renorm_momentum=0.99, **kwargs):
        super().__init__(epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                         gamma_regularizer, beta_constraint, gamma_constraint, **kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"BatchNormalization: argument `axis` must be an int, received axis={axis!r}")
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float, np.floating, np.integer)) \
                or not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNormalization: argument `momentum` must be a number in [0, 1], "
                             f"received momentum={momentum!r}")
        if renorm or renorm_clipping is not None:
            raise ValueError(f"BatchNormalization: convx does not support batch renormalization; received "
                             f"renorm={renorm!r}, renorm_clipping={renorm_clipping!r}")
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.synchronized = _check_bool(synchronized, "synchronized", "BatchNormalization")
        self.renorm_momentum = float(renorm_momentum)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.moving_mean = self.moving_variance = None

    def _channel_axis(self, input_shape):
        if not -len(input_shape) <= self.axis < len(input_shape):
            self._axis_error(self.axis, input_shape)
        return self.axis % len(input_shape)

    def compute_output_shape(self, input_shape):
        axis = self._channel_axis(input_shape)
        if input_shape[axis] is None:
            self._incompatible(f"the normalized axis {self.axis} must be defined", input_shape)
        return tuple(input_shape)

    def build(self, input_shape):
        shape = (input_shape[self._channel_axis(input_shape)],)
        self._add_affine(shape, self.scale, self.center)
        self.moving_mean = self.add_weight(shape=shape, initializer=self.moving_mean_initializer,
                                           name="moving_mean", trainable=False)
        self.moving_variance = self.add_weight(shape=shape, initializer=self.moving_variance_initializer,
                                               name="moving_variance", trainable=False)

    def uses_batch_statistics(self, training):
        """Whether a call with ``training`` normalizes with the batch's statistics (Keras:
        ``training and self.trainable``; a model that is not trainable freezes it too)."""
        return bool(training) and self.trainable and not getattr(self._state, "in_frozen_model", False)

    def forward(self, x, training=False):
        """``state.fused_relu_max`` (set by a model's plan): a relu that follows, fused into the
        writing pass (and its mask into backward); None: none."""
        state = self._state
        gamma, beta = self._values()
        channels = self.moving_mean.shape
        relu_max = getattr(state, "fused_relu_max", None)
        y = self._buffer("y", x.shape, x.dtype)
        world = _synchronizing_world() if self.synchronized else None
        if world is not None and self.uses_batch_statistics(training):
            y = self._synchronized_forward(world, x, gamma, beta, y, relu_max)
        elif self.uses_batch_statistics(training):
            y, state.mean, state.invstd = _norm.batch_norm_train(
                x, gamma, beta, self.axis, self.epsilon, self.moving_mean.value, self.moving_variance.value,
                self.momentum, out=y, stats=(self._buffer("mean", channels), self._buffer("invstd", channels)),
                relu_max=relu_max)
            state.batch_stats = True
        else:
            invstd = self._buffer("invstd", channels) if training else None
            y = _norm.batch_norm_infer(x, self.moving_mean.value, self.moving_variance.value, gamma, beta, self.axis,
                                       self.epsilon, out=y, invstd=invstd, relu_max=relu_max)
            state.mean, state.invstd, state.batch_stats = self.moving_mean.value, invstd, False
        if world is None or not self.uses_batch_statistics(training):
            state.sync = None
        state.x = x if training else None
        state.relu_y = y if training and relu_max is not None else None
        return self._activity(y, training)

    def _synchronized_forward(self, world, x, gamma, beta, y, relu_max):
        """Normalize with the global batch's mean and variance (two passes, each summed over the ranks
        in float64) and update the moving statistics with them."""
        state, axis = self._state, self.axis % x.ndim
        axes, channels = tuple(i for i in range(x.ndim) if i != axis), x.shape[axis]
        sums = np.empty(channels + 1)
        sums[:channels], sums[channels] = x.sum(axis=axes, dtype=np.float64), x.size // channels
        world.allreduce_sum(sums, "the all-reduce of BatchNormalization(synchronized=True)'s mean")
        count = sums[channels]
        mean = self._buffer("mean", (channels,))
        mean[...] = sums[:channels] / count
        centered = x - mean.reshape([channels if i == axis else 1 for i in range(x.ndim)])
        squares = np.square(centered, out=centered).sum(axis=axes, dtype=np.float64)
        world.allreduce_sum(squares, "the all-reduce of BatchNormalization(synchronized=True)'s variance")
        variance = self._buffer("variance", (channels,))
        variance[...] = squares / count
        state.invstd = self._buffer("invstd", (channels,))
        y = _norm.batch_norm_infer(x, mean, variance, gamma, beta, self.axis, self.epsilon, out=y,
                                   invstd=state.invstd, relu_max=relu_max)
        keep = np.float32(self.momentum)
        for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            moving.value[...] = moving.value * keep + batch * (np.float32(1.0) - keep)
        state.mean, state.batch_stats, state.sync = mean, True, (world, count)
        return y

    def backward(self, dy):
        """Gradient w.r.t. the input from ``dy``, the gradient w.r.t. the output (after the fused
        relu, if any); fills gamma's and beta's gradients."""
        state = self._state
        x, dy = state.x, self._output_grad(dy)
        out = self._grad_buffers(self.moving_mean.shape, state.need_dx, x)
        relu_y = state.relu_y
        gamma = None if self.gamma is None else self.gamma.value
        dx, dgamma, dbeta = _norm.batch_norm_backward(x, dy, state.mean, state.invstd, gamma, self.axis,
                                                      batch_stats=state.batch_stats and state.sync is None,
                                                      need_dx=state.need_dx, out=out, y=relu_y,
                                                      relu_max=None if relu_y is None else state.fused_relu_max)
        if state.sync is not None and dx is not None:
            self._synchronized_dx(dx, x, gamma, dgamma, dbeta)
        return dx

    def _synchronized_dx(self, dx, x, gamma, dgamma, dbeta):
        """Turn ``dx = dy * gamma * invstd`` (fixed statistics) into the gradient through the global
        batch's statistics, with sum(dy) and sum(dy * xhat) summed over the ranks (the weights'
        gradients keep this rank's sums: the training step sums those)."""
        state = self._state
        world, count = state.sync
        channels, axis = dbeta.shape[0], self.axis % x.ndim
        sums = np.concatenate([dbeta, dgamma]).astype(np.float64)
        world.allreduce_sum(sums, "the all-reduce of BatchNormalization(synchronized=True)'s gradient")
        shape = [channels if i == axis else 1 for i in range(x.ndim)]
        scale = (state.invstd if gamma is None else gamma * state.invstd) / np.float32(count)
        xhat = np.multiply(x - state.mean.reshape(shape), state.invstd.reshape(shape))
        correction = xhat * sums[channels:].astype(np.float32).reshape(shape)
        correction += sums[:channels].astype(np.float32).reshape(shape)
        dx -= correction * scale.reshape(shape)

    def get_config(self):
        common = self._common_config()
        head = {key: common.pop(key) for key in ("epsilon", "center", "scale", "beta_initializer", "gamma_initializer")}
        # Keras' key order
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            **head,
            "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer),
            **common,
            "synchronized": self.synchronized,
            "renorm": False,
            "renorm_clipping": None,
            "renorm_momentum": self.renorm_momentum,
        }


class LayerNormalization(_Normalization):
    """Normalizes each sample over ``axis`` (default the last): Keras 3's LayerNormalization.

    ``y = (x - mean) / sqrt(var + epsilon) * gamma + beta`` with the mean and
    biased variance over the axes in ``axis``; gamma and beta have those axes'
    shape. ``rms_scaling=True`` is Keras' deprecated mode ``y = x /
    sqrt(var + epsilon) * gamma`` (no beta). Two passes over the data forward,
    two backward; normalized axes that are not the trailing ones are moved
    there first (a copy).

    Parameters
    ----------
    axis : int or list of ints, default -1
        Not the batch axis.
    epsilon : float > 0, default 1e-3
    center, scale : bool, default True
    rms_scaling : bool, default False
    beta_initializer, gamma_initializer : default 'zeros', 'ones'
    beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint : optional
    """

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, rms_scaling=False, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        super().__init__(epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                         gamma_regularizer, beta_constraint, gamma_constraint, **kwargs)
        if isinstance(axis, (list, tuple)):
            if not axis or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis):
                raise ValueError(f"LayerNormalization: argument `axis` must be an int or a non-empty list of ints, "
                                 f"received axis={axis!r}")
            self.axis = [int(a) for a in axis]
        elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
            self.axis = int(axis)
        else:
            raise ValueError(f"LayerNormalization: argument `axis` must be an int or a list of ints, "
                             f"received axis={axis!r}")
        self.rms_scaling = _check_bool(rms_scaling, "rms_scaling", "LayerNormalization")
        if self.rms_scaling:  # Keras 3's warning, word for word
            warnings.warn(
                "You passed `rms_scaling=True`, which is deprecated. This argument incorrectly scales the input by "
                "the variance, not the root mean square. To correctly use RMS Normalization, please use "
                "`keras.layers.RMSNormalization` instead.")
        self._perm = None

    def _axes(self, input_shape):
        rank = len(input_shape)
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        for a in axes:
            if not -rank <= a < rank:
                self._axis_error(a, input_shape)
        axes = sorted(a % rank for a in axes)
        if len(set(axes)) != len(axes):
            raise ValueError(f"LayerNormalization: duplicate axes are not allowed, received axis={self.axis!r}")
        if 0 in axes:
            raise ValueError(f"LayerNormalization: the batch axis (0) cannot be normalized, "
                             f"received axis={self.axis!r}")
        return axes

    def compute_output_shape(self, input_shape):
        for a in self._axes(input_shape):
            if input_shape[a] is None:
                self._incompatible(f"the normalized axis {a} must be defined", input_shape)
        return tuple(input_shape)

    def build(self, input_shape):
        axes = self._axes(input_shape)
        self.axis = axes
        rank = len(input_shape)
        # the kernels normalize trailing axes: others are moved there (and back)
        if axes != list(range(axes[0], rank)):
            self._perm = [a for a in range(rank) if a not in axes] + axes
            self._inverse = list(np.argsort(self._perm))
        self._first = rank - len(axes)
        self._add_affine(tuple(input_shape[a] for a in axes), self.scale or self.rms_scaling,
                         self.center and not self.rms_scaling)

    def _to_kernel(self, array, slot):
        if self._perm is None:
            return array
        moved = array.transpose(self._perm)
        out = self._buffer(slot, moved.shape, array.dtype)
        np.copyto(out, moved)
        return out

    def _from_kernel(self, array, shape, slot):
        if self._perm is None:
            return array
        out = self._buffer(slot, shape, array.dtype)
        np.copyto(out, array.transpose(self._inverse))
        return out

    def forward(self, x, training=False):
        state = self._state
        gamma, beta = self._values()
        xk = self._to_kernel(x, "x_moved")
        stats_shape = xk.shape[:self._first]
        y, mean, invstd = _norm.layer_norm_forward(
            xk, gamma, beta, self._first, self.epsilon, self.rms_scaling,
            out=self._buffer("y_moved" if self._perm is not None else "y", xk.shape, x.dtype),
            stats=(self._buffer("mean", stats_shape), self._buffer("invstd", stats_shape)))
        if training:
            state.x, state.mean, state.invstd = xk, mean, invstd
        return self._activity(self._from_kernel(y, x.shape, "y"), training)

    def backward(self, dy):
        state = self._state
        x, dy = state.x, self._output_grad(dy)
        dyk = self._to_kernel(dy, "dy_moved")
        dx_slot = "dx_moved" if self._perm is not None else "dx"
        dgamma = self.gamma.grad if self.gamma is not None else self._buffer("dgamma", x.shape[self._first:])
        dbeta = None if self.rms_scaling else (
            self.beta.grad if self.beta is not None else self._buffer("dbeta", x.shape[self._first:]))
        dx = self._buffer(dx_slot, x.shape, x.dtype) if state.need_dx else None
        dx, _, _ = _norm.layer_norm_backward(x, dyk, state.mean, state.invstd, self._values()[0], self._first,
                                             self.rms_scaling, need_dx=state.need_dx, out=(dx, dgamma, dbeta))
        return None if dx is None else self._from_kernel(dx, dy.shape, "dx")

    def get_config(self):
        common = self._common_config()
        head = {key: common.pop(key) for key in ("epsilon", "center", "scale")}
        # Keras' key order: axis, epsilon, center, scale, rms_scaling, then initializers, regularizers, constraints
        return {**super().get_config(), "axis": self.axis, **head, "rms_scaling": self.rms_scaling, **common}


class GroupNormalization(_Normalization):
    """Normalizes groups of channels per sample: Keras 3's GroupNormalization.

    The ``C`` channels of ``axis`` are split into ``groups`` groups of ``C /
    groups`` consecutive channels; each (sample, group) is normalized with its
    mean and biased variance over every other axis but the batch axis, then
    scaled by gamma and shifted by beta per channel. ``groups=-1`` is one group
    per channel (instance normalization), ``groups=1`` LayerNormalization over
    all axes. Two passes over the data forward, two backward.

    Parameters
    ----------
    groups : int, default 32
        Positive and dividing C (or -1).
    axis : int, default -1
        The channel axis (not the batch axis).
    epsilon : float > 0, default 1e-3
    center, scale : bool, default True
    beta_initializer, gamma_initializer : default 'zeros', 'ones'
    beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint : optional
    """

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or (groups <= 0 and groups != -1):
            raise ValueError("Received an invalid value for argument `groups`, expected a positive integer (or `-1` "
                             f"for instance normalization). Received: groups={groups!r}")
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"GroupNormalization: argument `axis` must be an int, received axis={axis!r}")
        super().__init__(epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                         gamma_regularizer, beta_constraint, gamma_constraint, **kwargs)
        self.groups = int(groups)
        self.axis = int(axis)

    def _channel_axis(self, input_shape):
        if not -len(input_shape) <= self.axis < len(input_shape):
            self._axis_error(self.axis, input_shape)
        axis = self.axis % len(input_shape)
        if axis == 0:
            raise ValueError(f"GroupNormalization: `axis` cannot be the batch axis, received axis={self.axis}")
        return axis

    def compute_output_shape(self, input_shape):
        dim = input_shape[self._channel_axis(input_shape)]
        if dim is None:
            raise ValueError(f"Axis {self.axis} of input tensor should have a defined dimension but the layer "
                             f"received an input with shape {tuple(input_shape)}.")
        groups = dim if self.groups == -1 else self.groups
        if dim < groups:
            raise ValueError(f"Number of groups ({groups}) cannot be more than the number of channels ({dim}). "
                             f"Received: groups={self.groups}")
        if dim % groups != 0:
            raise ValueError(f"Number of groups ({groups}) must divide the number of channels ({dim}). "
                             f"Received: groups={self.groups}")
        return tuple(input_shape)

    def build(self, input_shape):
        dim = input_shape[self._channel_axis(input_shape)]
        if self.groups == -1:
            self.groups = dim
        self._add_affine((dim,), self.scale, self.center)

    def forward(self, x, training=False):
        state = self._state
        gamma, beta = self._values()
        stats_shape = (x.shape[0], self.groups)
        y, mean, invstd = _norm.group_norm_forward(
            x, gamma, beta, self.groups, self.axis, self.epsilon, out=self._buffer("y", x.shape, x.dtype),
            stats=(self._buffer("mean", stats_shape), self._buffer("invstd", stats_shape)))
        if training:
            state.x, state.mean, state.invstd = x, mean, invstd
        return self._activity(y, training)

    def backward(self, dy):
        state = self._state
        x, dy = state.x, self._output_grad(dy)
        out = self._grad_buffers((x.shape[self.axis],), state.need_dx, x)
        dx, _, _ = _norm.group_norm_backward(x, dy, state.mean, state.invstd, self._values()[0], self.groups,
                                             self.axis, need_dx=state.need_dx, out=out)
        return dx

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "axis": self.axis, **self._common_config()}


__all__ = ["BatchNormalization", "LayerNormalization", "GroupNormalization"]
