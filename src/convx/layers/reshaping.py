"""Keras 3 reshaping layers: zero padding, cropping, upsampling (1-D and 2-D), Reshape, Permute.

Padding, cropping and Permute are copies: NumPy writes them into the layer's
reused buffers (Reshape returns a view of its input). Upsampling runs the
``resample`` kernels: nearest is Keras' repetition, bilinear TensorFlow's
half-pixel bilinear resize, as Keras computes it.
"""

import math

import numpy as np

from convx._kernels import resample as _resample
from convx.layers.base import Layer, check_data_format


def _int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _pair(value, name, layer):
    """An int n (-> (n, n)) or a pair of ints >= 0, as a tuple."""
    values = (value, value) if _int(value) else value
    try:
        values = tuple(values)
    except TypeError:
        values = None
    if values is None or len(values) != 2 or not all(_int(v) and v >= 0 for v in values):
        raise ValueError(
            f"{layer}: `{name}` must be an int >= 0 or a tuple of 2 ints >= 0. Received: {name}={value!r}"
        )
    return tuple(int(v) for v in values)


def _pairs2d(value, name, layer):
    """Keras' 2-D padding/cropping argument: int, (sym_h, sym_w) or ((top, bottom), (left, right))."""
    if _int(value):
        return _pair(value, name, layer), _pair(value, name, layer)
    try:
        parts = tuple(value)
    except TypeError:
        parts = ()
    if len(parts) == 2 and all(_int(p) for p in parts):
        return _pair(parts[0], name, layer), _pair(parts[1], name, layer)
    if len(parts) == 2:
        try:
            return _pair(parts[0], name, layer), _pair(parts[1], name, layer)
        except ValueError:
            pass
    raise ValueError(
        f"{layer}: `{name}` should be an int, a tuple of 2 ints (symmetric_height, symmetric_width) or a tuple of "
        f"2 tuples of 2 ints ((top, bottom), (left, right)). Received: {name}={value!r}"
    )


def _copy_into(buffer, region, source):
    np.copyto(buffer[region], source)
    return buffer


class _Padding(Layer):
    """Zero padding of the spatial axes (``pads``: one (before, after) pair per spatial axis)."""

    def _spatial_rank(self):
        return len(self.pads)

    def compute_output_shape(self, input_shape):
        self._require_ndim(input_shape, self._spatial_rank() + 2)
        spatial = tuple(None if n is None else n + a + b for n, (a, b) in zip(input_shape[1:-1], self.pads))
        return (input_shape[0],) + spatial + (input_shape[-1],)

    def _region(self, shape):
        return (slice(None),) + tuple(slice(a, a + n) for n, (a, _) in zip(shape[1:-1], self.pads)) + (slice(None),)

    def forward(self, x, training=False):
        y = self._buffer("y", self._output_shape_for(x.shape), x.dtype)
        y.fill(0)
        if training:
            self._state.x_shape = x.shape
        return _copy_into(y, self._region(x.shape), x)

    def backward(self, dy):
        shape = self._state.x_shape
        return _copy_into(self._buffer("dx", shape, dy.dtype), (Ellipsis,), dy[self._region(shape)])


class ZeroPadding1D(_Padding):
    """Pads the steps axis of (batch, steps, channels) with zeros.

    Parameters
    ----------
    padding : int or (int, int), default 1
        Zeros before and after (an int: both).
    data_format : None or 'channels_last'
    """

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        check_data_format(data_format)
        self.padding = _pair(padding, "padding", "ZeroPadding1D")
        self.pads = (self.padding,)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "data_format": "channels_last"}


class ZeroPadding2D(_Padding):
    """Pads rows and columns of NHWC images with zeros.

    Parameters
    ----------
    padding : int, (int, int) or ((int, int), (int, int)), default (1, 1)
        Symmetric, per axis, or ((top, bottom), (left, right)).
    data_format : None or 'channels_last'
    """

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        check_data_format(data_format)
        self.padding = _pairs2d(padding, "padding", "ZeroPadding2D")
        self.pads = self.padding

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "data_format": "channels_last"}


class _Cropping(Layer):
    """Crops the spatial axes (``crops``: one (before, after) pair per spatial axis)."""

    def compute_output_shape(self, input_shape):
        self._require_ndim(input_shape, len(self.crops) + 2)
        spatial = []
        for n, (a, b) in zip(input_shape[1:-1], self.crops):
            if n is not None and n - a - b < 1:
                raise ValueError(
                    f'Layer "{self.name}": cropping={self.cropping} leaves nothing of an input of shape '
                    f"{input_shape}: the input must be larger than the cropping on each axis"
                )
            spatial.append(None if n is None else n - a - b)
        return (input_shape[0],) + tuple(spatial) + (input_shape[-1],)

    def _region(self, shape):
        return (slice(None),) + tuple(slice(a, n - b) for n, (a, b) in zip(shape[1:-1], self.crops)) + (slice(None),)

    def forward(self, x, training=False):
        y = self._buffer("y", self._output_shape_for(x.shape), x.dtype)
        if training:
            self._state.x_shape = x.shape
        return _copy_into(y, (Ellipsis,), x[self._region(x.shape)])

    def backward(self, dy):
        shape = self._state.x_shape
        dx = self._buffer("dx", shape, dy.dtype)
        dx.fill(0)
        return _copy_into(dx, self._region(shape), dy)


class Cropping1D(_Cropping):
    """Crops the steps axis of (batch, steps, channels).

    Parameters
    ----------
    cropping : int or (int, int), default (1, 1)
        Steps removed at the start and at the end.
    """

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.cropping = _pair(cropping, "cropping", "Cropping1D")
        self.crops = (self.cropping,)

    def get_config(self):
        return {**super().get_config(), "cropping": self.cropping}


class Cropping2D(_Cropping):
    """Crops rows and columns of NHWC images.

    Parameters
    ----------
    cropping : int, (int, int) or ((int, int), (int, int)), default ((0, 0), (0, 0))
        Symmetric, per axis, or ((top, bottom), (left, right)).
    data_format : None or 'channels_last'
    """

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(**kwargs)
        check_data_format(data_format)
        self.cropping = _pairs2d(cropping, "cropping", "Cropping2D")
        self.crops = self.cropping

    def get_config(self):
        return {**super().get_config(), "cropping": self.cropping, "data_format": "channels_last"}


def _positive(value, n, name, layer):
    values = (value,) * n if _int(value) else value
    try:
        values = tuple(values)
    except TypeError:
        values = None
    if values is None or len(values) != n or not all(_int(v) and v >= 1 for v in values):
        raise ValueError(f"{layer}: `{name}` must be an int >= 1 or a tuple of {n} such ints. Received: {name}={value!r}")
    return tuple(int(v) for v in values)


class _Repeat(Layer):
    """Upsampling by whole factors (each sample repeated ``sizes[i]`` times along spatial axis i) through the
    resample kernels: TensorFlow's half-pixel nearest (or bilinear) resize to the multiplied size, whose nearest
    source index floor((j + 0.5) / s) is j // s, Keras' repetition."""

    interpolation = "nearest"

    def compute_output_shape(self, input_shape):
        self._require_ndim(input_shape, len(self.sizes) + 2)
        spatial = tuple(None if n is None else n * s for n, s in zip(input_shape[1:-1], self.sizes))
        return (input_shape[0],) + spatial + (input_shape[-1],)

    @staticmethod
    def _as_images(shape):
        """A (batch, steps, channels) shape as images of height 1; 2-D shapes unchanged."""
        return tuple(shape) if len(shape) == 4 else (shape[0], 1) + tuple(shape[1:])

    def forward(self, x, training=False):
        if training:
            self._state.x_shape = x.shape
        y = self._buffer("y", self._output_shape_for(x.shape), x.dtype)
        y4 = y.reshape(self._as_images(y.shape))
        _resample.resize_forward(x.reshape(self._as_images(x.shape)), y4.shape[1:3], self.interpolation, out=y4)
        return y

    def backward(self, dy):
        shape = self._state.x_shape
        dx = self._buffer("dx", shape, dy.dtype)
        dx4 = dx.reshape(self._as_images(shape))
        _resample.resize_backward(dy.reshape(self._as_images(dy.shape)), dx4.shape[1:3], self.interpolation, out=dx4)
        return dx


class UpSampling1D(_Repeat):
    """Repeats each step of (batch, steps, channels) ``size`` times.

    Parameters
    ----------
    size : int, default 2
    """

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        self.size = _positive(size, 1, "size", "UpSampling1D")[0]
        self.sizes = (self.size,)

    def get_config(self):
        return {**super().get_config(), "size": self.size}


class UpSampling2D(_Repeat):
    """Upsamples NHWC images by whole factors.

    Parameters
    ----------
    size : int or (int, int), default (2, 2)
        Factors for rows and columns.
    data_format : None or 'channels_last'
    interpolation : {'nearest', 'bilinear'}, default 'nearest'
        'nearest' repeats rows and columns; 'bilinear' is TensorFlow's half-pixel
        bilinear resize to (size[0] * H, size[1] * W), as Keras computes it.
    """

    _INTERPOLATIONS = ("nearest", "bilinear")

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        check_data_format(data_format)
        self.size = _positive(size, 2, "size", "UpSampling2D")
        self.sizes = self.size
        if interpolation not in self._INTERPOLATIONS:
            raise ValueError(
                f"`interpolation` argument should be one of: {self._INTERPOLATIONS}. "
                f"Received: interpolation={interpolation!r}"
            )
        self.interpolation = interpolation

    def get_config(self):
        return {**super().get_config(), "size": self.size, "data_format": "channels_last",
                "interpolation": self.interpolation}


class Reshape(Layer):
    """Reshapes each sample to ``target_shape`` (one entry may be -1: inferred).

    Parameters
    ----------
    target_shape : tuple of int
        Shape of one sample, without the batch axis.
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        try:
            shape = tuple(target_shape)
        except TypeError:
            shape = None
        if (
            shape is None
            or not all(_int(s) and (s >= 1 or s == -1) for s in shape)
            or sum(1 for s in shape if s == -1) > 1
        ):
            raise ValueError(
                "`target_shape` must be a tuple of ints >= 1, with at most one -1 (inferred). "
                f"Received: target_shape={target_shape!r}"
            )
        self.target_shape = tuple(int(s) for s in shape)

    def output_may_alias_input(self):
        return True

    def _resolved(self, input_shape):
        rest = input_shape[1:]
        if any(s is None for s in rest):
            if -1 in self.target_shape:
                return tuple(None if s == -1 else s for s in self.target_shape)
            return self.target_shape
        size = math.prod(rest)
        known = math.prod(s for s in self.target_shape if s != -1)
        if -1 in self.target_shape:
            if known == 0 or size % known:
                self._reshape_error(input_shape)
            return tuple(size // known if s == -1 else s for s in self.target_shape)
        if known != size:
            self._reshape_error(input_shape)
        return self.target_shape

    def _reshape_error(self, input_shape):
        raise ValueError(
            f'Layer "{self.name}": cannot reshape samples of shape {tuple(input_shape[1:])} '
            f"({math.prod(input_shape[1:])} values) to target_shape={self.target_shape}"
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self._resolved(input_shape)

    def forward(self, x, training=False):
        if training:
            self._state.x_shape = x.shape
        return x.reshape(self._output_shape_for(x.shape))

    def backward(self, dy):
        return dy.reshape(self._state.x_shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": self.target_shape}


class Permute(Layer):
    """Permutes the axes of each sample (``dims`` index them from 1, the batch axis staying first).

    Parameters
    ----------
    dims : tuple of int
        A permutation of ``1..rank``; e.g. ``(2, 1)`` swaps the two axes of a 2-D sample.
    """

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        try:
            dims = tuple(dims)
        except TypeError:
            dims = None
        if dims is None or not all(_int(d) for d in dims) or sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(
                "Invalid permutation argument `dims` for Permute Layer. The set of indices in `dims` must be "
                f"consecutive and start from 1. Received: dims={dims!r}"
            )
        self.dims = tuple(int(d) for d in dims)
        self._axes = (0,) + self.dims
        self._inverse = tuple(int(a) for a in np.argsort(self._axes))

    def compute_output_shape(self, input_shape):
        self._require_ndim(input_shape, len(self.dims) + 1)
        return tuple(input_shape[a] for a in self._axes)

    def forward(self, x, training=False):
        y = self._buffer("y", self._output_shape_for(x.shape), x.dtype)
        np.copyto(y, x.transpose(self._axes))
        return y

    def backward(self, dy):
        shape = tuple(dy.shape[a] for a in self._inverse)
        dx = self._buffer("dx", shape, dy.dtype)
        np.copyto(dx, dy.transpose(self._inverse))
        return dx

    def get_config(self):
        return {**super().get_config(), "dims": self.dims}


__all__ = ["ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", "UpSampling1D", "UpSampling2D", "Reshape",
           "Permute"]
