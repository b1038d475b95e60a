"""Keras 3 augmentation layers (channels-last images): RandomFlip, RandomTranslation, RandomRotation,
RandomZoom, RandomCrop, RandomContrast, RandomBrightness.

They transform only when called with ``training=True`` and return their input
unchanged otherwise, as Keras 3 does. Their draws come from their own generator
when given a ``seed``, else from the process-wide one
(``convx.utils.set_random_seed``). The geometric ones run the ``resample``
kernels (TensorFlow's ``ImageProjectiveTransformV3`` sampler, which Keras 3
uses); their backward passes are the transposed samplings. Flips and crops are
NumPy copies into reused buffers; contrast and brightness are a few elementwise
NumPy passes.
"""

import math

import numpy as np

from convx import random as _random
from convx._kernels import resample as _resample
from convx.layers.base import Layer, check_data_format
from convx.layers.preprocessing import (
    _INTERPOLATIONS,
    _aspect_crop,
    _choice,
    _CropResize,
    _int,
    _number,
    _require_images,
    _SizedOutput,
)

_FILL_MODES = ("reflect", "wrap", "constant", "nearest")


def _factor_pair(factor, name, bounds, layer, open_lower=False):
    """Keras' factor convention: a number f -> (max(-abs(f), low), abs(f)); a pair -> sorted. Both ends within bounds."""
    low, high = bounds
    def inside(v):
        return _number(v) and (low < v if open_lower else low <= v) and v <= high
    if isinstance(factor, (tuple, list)) and len(factor) == 2 and all(inside(v) for v in factor):
        return tuple(float(v) for v in sorted(factor))
    if inside(factor):
        f = abs(float(factor))
        return (max(-f, float(low)), f)
    interval = f"({low}, {high}]" if open_lower else f"[{low}, {high}]"
    raise ValueError(f"{layer}: `{name}` should be a number (or a list of two numbers) in the range {interval}. "
                     f"Received: {name}={factor!r}")


class _Augmentation(Layer):
    """An augmentation: transforms in training, returns its input (no copy) at inference."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        if seed is not None and (not _int(seed) or seed < 0):
            raise ValueError(f"{type(self).__name__}: `seed` must be None or an int >= 0. Received: seed={seed!r}")
        self.seed = seed
        self._generator = _random.make_generator(seed) if seed is not None else None

    def _rng(self):
        return self._generator or _random.generator()

    def output_may_alias_input(self):
        return True

    def compute_output_shape(self, input_shape):
        _require_images(self, input_shape)
        return tuple(input_shape)

    def forward(self, x, training=False):
        state = self._state
        state.active = bool(training)
        if not training:
            return x
        state.x_shape = x.shape
        return self._augment(x)

    def backward(self, dy):
        if not self._state.active:
            return dy
        return self._augment_backward(dy)


class RandomFlip(_Augmentation):
    """Flips each image (probability 1/2) horizontally, vertically or both (Keras 3: one draw per image).

    Parameters
    ----------
    mode : {'horizontal', 'vertical', 'horizontal_and_vertical'}, default 'horizontal_and_vertical'
        With 'horizontal_and_vertical' a drawn image is flipped along both axes.
    seed : int, optional
    """

    _MODES = ("horizontal", "vertical", "horizontal_and_vertical")

    def __init__(self, mode="horizontal_and_vertical", seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        check_data_format(data_format)
        self.mode = _choice(mode, "mode", self._MODES, "RandomFlip")
        self._axes = {"horizontal": (1,), "vertical": (0,), "horizontal_and_vertical": (0, 1)}[self.mode]

    def _flip(self, src, dst):
        index = [slice(None)] * 3
        for a in self._axes:
            index[a] = slice(None, None, -1)
        for i, flip in enumerate(self._state.flips):
            np.copyto(dst[i], src[i][tuple(index)] if flip else src[i])
        return dst

    def _augment(self, x):
        self._state.flips = self._rng().uniform(size=x.shape[0]) <= 0.5
        return self._flip(x, self._buffer("y", x.shape, x.dtype))

    def _augment_backward(self, dy):
        return self._flip(dy, self._buffer("dx", dy.shape, dy.dtype))

    def get_config(self):
        return {**super().get_config(), "data_format": "channels_last", "seed": self.seed, "mode": self.mode}


class _Affine(_Augmentation):
    """Augmentations that resample each image through a projective transform (the ``resample`` kernels)."""

    def _init_sampling(self, fill_mode, interpolation, fill_value):
        name = type(self).__name__
        self.fill_mode = _choice(fill_mode, "fill_mode", _FILL_MODES, name)
        self.interpolation = _choice(interpolation, "interpolation", _INTERPOLATIONS, name)
        if not _number(fill_value):
            raise ValueError(f"{name}: `fill_value` must be a number. Received: fill_value={fill_value!r}")
        self.fill_value = float(fill_value)

    def transform_matrices(self, n, height, width):
        """Draw ``n`` transforms for images of (height, width): an (n, 8) float32 array (output -> input)."""
        raise NotImplementedError

    def _augment(self, x):
        t = self.transform_matrices(x.shape[0], x.shape[1], x.shape[2])
        self._state.transforms = t
        return self.apply_transforms(x, t, out=self._buffer("y", x.shape, x.dtype))

    def apply_transforms(self, x, transforms, out=None):
        """Resample ``x`` (NHWC) through given (n, 8) transforms with this layer's interpolation and fill."""
        return _resample.transform_forward(x, transforms, self.interpolation, self.fill_mode, self.fill_value, out=out)

    def _augment_backward(self, dy):
        shape = self._state.x_shape
        return _resample.transform_backward(dy, self._state.transforms, shape[1:3], self.interpolation, self.fill_mode,
                                            out=self._buffer("dx", shape, dy.dtype))

    def _sampling_config(self):
        return {"fill_mode": self.fill_mode, "interpolation": self.interpolation, "seed": self.seed,
                "fill_value": self.fill_value}


def translation_matrices(dx, dy):
    """Keras' translation transforms: output pixel (x, y) reads input (x - dx, y - dy)."""
    n = len(dx)
    t = np.zeros((n, 8), np.float32)
    t[:, 0] = t[:, 4] = 1
    t[:, 2] = -np.asarray(dx, np.float32)
    t[:, 5] = -np.asarray(dy, np.float32)
    return t


def rotation_matrices(degrees, height, width):
    """Keras' rotation about the image centre ((W - 1) / 2, (H - 1) / 2) by ``degrees`` (float32 as Keras)."""
    angle = np.asarray(degrees, np.float32) * np.float32(math.pi / 180.0)
    cos, sin = np.cos(angle), np.sin(angle)
    cx, cy = np.float32(0.5) * np.float32(width - 1), np.float32(0.5) * np.float32(height - 1)
    t = np.zeros((len(angle), 8), np.float32)
    t[:, 0], t[:, 1] = cos, -sin
    t[:, 2] = cx - cx * cos - cy * -sin
    t[:, 3], t[:, 4] = sin, cos
    t[:, 5] = cy - cx * sin - cy * cos
    return t


def zoom_matrices(zoom_x, zoom_y, height, width):
    """Keras' zoom about the image centre: output (x, y) reads (zx x + (W - 1)/2 (1 - zx), zy y + ...)."""
    zx, zy = np.asarray(zoom_x, np.float32), np.asarray(zoom_y, np.float32)
    t = np.zeros((len(zx), 8), np.float32)
    t[:, 0], t[:, 4] = zx, zy
    t[:, 2] = (np.float32(width) - 1) / 2 * (1 - zx)
    t[:, 5] = (np.float32(height) - 1) / 2 * (1 - zy)
    return t


class RandomTranslation(_Affine):
    """Shifts each image by a random fraction of its size.

    Parameters
    ----------
    height_factor, width_factor : float or (float, float), in [-1, 1]
        Fractions of the height / width; a number ``f`` means ``(-abs(f), abs(f))``. A positive
        shift moves the content down / right.
    fill_mode : {'reflect', 'wrap', 'constant', 'nearest'}, default 'reflect'
    interpolation : {'bilinear', 'nearest'}, default 'bilinear'
    seed : int, optional
    fill_value : float, default 0.0
    """

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        check_data_format(data_format)
        self.height_factor, self.width_factor = height_factor, width_factor
        self._height = _factor_pair(height_factor, "height_factor", (-1, 1), "RandomTranslation")
        self._width = _factor_pair(width_factor, "width_factor", (-1, 1), "RandomTranslation")
        self._init_sampling(fill_mode, interpolation, fill_value)

    def transform_matrices(self, n, height, width):
        rng = self._rng()
        dy = rng.uniform(*self._height, size=n) * height
        dx = rng.uniform(*self._width, size=n) * width
        return translation_matrices(dx, dy)

    def get_config(self):
        return {**super().get_config(), "data_format": "channels_last", "height_factor": self.height_factor,
                "width_factor": self.width_factor, **self._sampling_config()}


class RandomRotation(_Affine):
    """Rotates each image about its centre by a random angle.

    Parameters
    ----------
    factor : float or (float, float), in [-1, 1]
        Fractions of a full turn (2 pi): the angle in degrees is drawn from
        (360 lower, 360 upper); a number ``f`` means ``(-abs(f), abs(f))``. The transform is
        Keras' (``rotation_matrices``).
    fill_mode : {'reflect', 'wrap', 'constant', 'nearest'}, default 'reflect'
    interpolation : {'bilinear', 'nearest'}, default 'bilinear'
    seed : int, optional
    fill_value : float, default 0.0
    """

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0,
                 data_format=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        check_data_format(data_format)
        self.factor = _factor_pair(factor, "factor", (-1, 1), "RandomRotation")
        self._init_sampling(fill_mode, interpolation, fill_value)

    def transform_matrices(self, n, height, width):
        degrees = self._rng().uniform(self.factor[0] * 360.0, self.factor[1] * 360.0, size=n)
        return rotation_matrices(degrees, height, width)

    def get_config(self):
        return {**super().get_config(), "data_format": "channels_last", "factor": self.factor,
                **self._sampling_config()}


class RandomZoom(_Affine):
    """Zooms each image about its centre by a random factor.

    Parameters
    ----------
    height_factor : float or (float, float), in (-1, 1]
        The sampled height is scaled by 1 + a draw from (lower, upper): positive
        values zoom out, negative values zoom in (Keras' convention).
    width_factor : same, optional
        None: the width uses the height's draw (aspect ratio kept).
    fill_mode, interpolation, seed, fill_value : as RandomTranslation
    """

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        check_data_format(data_format)
        self.height_factor, self.width_factor = height_factor, width_factor
        self._height = _factor_pair(height_factor, "height_factor", (-1, 1), "RandomZoom", open_lower=True)
        self._width = None if width_factor is None else _factor_pair(width_factor, "width_factor", (-1, 1),
                                                                     "RandomZoom", open_lower=True)
        self._init_sampling(fill_mode, interpolation, fill_value)

    def transform_matrices(self, n, height, width):
        rng = self._rng()
        zy = rng.uniform(1 + self._height[0], 1 + self._height[1], size=n)
        zx = zy if self._width is None else rng.uniform(1 + self._width[0], 1 + self._width[1], size=n)
        return zoom_matrices(zx, zy, height, width)

    def get_config(self):
        return {**super().get_config(), "data_format": "channels_last", "height_factor": self.height_factor,
                "width_factor": self.width_factor, **self._sampling_config()}


class RandomCrop(_SizedOutput, _Augmentation):
    """Crops a random (height, width) window, one position per batch (Keras 3).

    In training, an input larger than the window on both axes is cropped at a
    random position; otherwise it is aspect-cropped and resized (bilinear) to
    (height, width). At inference the input is returned unchanged, as Keras 3
    does (so its spatial size is then the input's, not (height, width)).

    Parameters
    ----------
    height, width : int
    seed : int, optional
    """

    def __init__(self, height, width, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self._init_size(height, width, data_format)

    def _plan(self, x_shape):
        h, w = x_shape[1:3]
        size = (self.height, self.width)
        if h > self.height and w > self.width:
            return _CropResize(self, (self._state.start[0], self.height, self._state.start[1], self.width), (0, 0),
                               size, "bilinear")
        return _CropResize(self, _aspect_crop(h, w, *size), (0, 0), size, "bilinear")

    def _augment(self, x):
        h, w = x.shape[1:3]
        if h > self.height and w > self.width:
            rng = self._rng()
            self._state.start = (int(rng.uniform(0, h - self.height + 1)), int(rng.uniform(0, w - self.width + 1)))
        return self._resample_forward(x)

    def _augment_backward(self, dy):
        return self._resample_backward(dy)

    def get_config(self):
        return {**super().get_config(), **self._size_config(), "seed": self.seed}


def _value_range(value_range, layer, ordered=True):
    """(low, high) checked: two numbers, low < high (``ordered=False``: either order, as RandomBrightness sorts)."""
    if (not isinstance(value_range, (tuple, list)) or len(value_range) != 2 or not all(_number(v) for v in value_range)
            or value_range[0] == value_range[1] or (ordered and value_range[0] > value_range[1])):
        raise ValueError(f"{layer}: `value_range` must be a tuple or list of two numbers (low, high), low < high. "
                         f"Received: value_range={value_range!r}")
    return tuple(sorted(value_range))


class _ClippedColor(_Augmentation):
    """Augmentations ``clip(f(x), value_range)`` with a per-image affine f; backward masks the clipped values."""

    def _clip(self, y):
        low, high = self._range
        # the gradient passes where the value was inside the range (TensorFlow's clip gradient)
        keep = self._buffer("keep", y.shape, np.bool_)
        np.greater_equal(y, low, out=keep)
        np.logical_and(keep, y <= high, out=keep)
        self._state.keep = keep
        return np.clip(y, low, high, out=y)


class RandomContrast(_ClippedColor):
    """``(x - mean) * f + mean`` per image and channel (mean over height and width), then clipped.

    Parameters
    ----------
    factor : float or (float, float), in [0, 1]
        Keras 3's draw: f uniform in (1 - lower, 1 + upper), where a number c gives (0, c).
    value_range : (low, high), default (0, 255)
    seed : int, optional
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        check_data_format(data_format)
        self.factor = _factor_pair(factor, "factor", (0, 1), "RandomContrast")
        self.value_range = value_range
        self._range = _value_range(value_range, "RandomContrast")

    def _augment(self, x):
        f = self._rng().uniform(1.0 - self.factor[0], 1.0 + self.factor[1], size=x.shape[0]).astype(x.dtype)
        f = f.reshape(-1, 1, 1, 1)
        self._state.contrast = f
        # Keras averages over the height, then over the width
        mean = x.mean(axis=1, keepdims=True, dtype=x.dtype).mean(axis=2, keepdims=True, dtype=x.dtype)
        y = self._buffer("y", x.shape, x.dtype)
        np.subtract(x, mean, out=y)
        np.multiply(y, f, out=y)
        np.add(y, mean, out=y)
        return self._clip(y)

    def _augment_backward(self, dy):
        f, keep = self._state.contrast, self._state.keep
        g = self._buffer("dx", dy.shape, dy.dtype)
        np.multiply(dy, keep, out=g)
        mean = g.mean(axis=(1, 2), keepdims=True, dtype=dy.dtype) * (1 - f)
        np.multiply(g, f, out=g)
        return np.add(g, mean, out=g)

    def get_config(self):
        return {**super().get_config(), "data_format": "channels_last", "factor": self.factor,
                "value_range": self.value_range, "seed": self.seed}


class RandomBrightness(_ClippedColor):
    """Adds a random offset per image, ``factor * (high - low)``, then clips to ``value_range``.

    Parameters
    ----------
    factor : float or (float, float), in [-1, 1]
        A number ``f`` means ``(-abs(f), abs(f))``.
    value_range : (low, high), default (0, 255)
    seed : int, optional
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        check_data_format(data_format)
        self.factor = _factor_pair(factor, "factor", (-1, 1), "RandomBrightness")
        self._range = _value_range(value_range, "RandomBrightness", ordered=False)
        self.value_range = list(self._range)  # Keras keeps the sorted list

    def _augment(self, x):
        low, high = self._range
        delta = self._rng().uniform(self.factor[0], self.factor[1], size=x.shape[0]) * (high - low)
        y = self._buffer("y", x.shape, x.dtype)
        np.add(x, delta.astype(x.dtype).reshape(-1, 1, 1, 1), out=y)
        return self._clip(y)

    def _augment_backward(self, dy):
        return np.multiply(dy, self._state.keep, out=self._buffer("dx", dy.shape, dy.dtype))

    def get_config(self):
        return {**super().get_config(), "data_format": "channels_last", "factor": self.factor,
                "value_range": self.value_range, "seed": self.seed}


__all__ = ["RandomFlip", "RandomTranslation", "RandomRotation", "RandomZoom", "RandomCrop", "RandomContrast",
           "RandomBrightness"]
