"""Keras 3 preprocessing layers (channels-last images): Rescaling, Normalization (with ``adapt``),
Resizing, CenterCrop; the training-only augmentations are in :mod:`convx.layers.augmentation`.

Resizing runs the ``resample`` kernels (TensorFlow's half-pixel resize, which
Keras 3 uses); its backward pass is the transposed sampling.
"""

import math

import numpy as np

from convx._kernels import resample as _resample
from convx.layers.base import Layer, check_data_format

_EPSILON = 1e-7  # keras.backend.epsilon()
_INTERPOLATIONS = ("nearest", "bilinear")


def _int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _positive_int(value, name, layer):
    if not _int(value) or value < 1:
        raise ValueError(f"{layer}: `{name}` must be an int >= 1. Received: {name}={value!r}")
    return int(value)


def _choice(value, name, allowed, layer):
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{layer}: `{name}` must be one of {allowed}. Received: {name}={value!r}")
    return value


def _require_images(layer, input_shape):
    layer._require_ndim(input_shape, 4)


def _aspect_crop(h, w, target_h, target_w):
    """Keras' crop_to_aspect_ratio / smart_resize window: (h_start, crop_h, w_start, crop_w), float32 arithmetic."""
    crop_h = int(np.float32(w * target_h) / np.float32(target_w))
    crop_h = max(min(h, crop_h), 1)
    crop_w = int(np.float32(h * target_w) / np.float32(target_h))
    crop_w = max(min(w, crop_w), 1)
    return int(np.float32(h - crop_h) / np.float32(2)), crop_h, int(np.float32(w - crop_w) / np.float32(2)), crop_w


def _aspect_pad(h, w, target_h, target_w):
    """Keras' pad_to_aspect_ratio: rows and columns of fill added on each side (top = bottom, left = right)."""
    pad_h = max(h, int(np.float32(w * target_h) / np.float32(target_w)))
    pad_w = max(w, int(np.float32(h * target_w) / np.float32(target_h)))
    return int(np.float32(pad_h - h) / np.float32(2)), int(np.float32(pad_w - w) / np.float32(2))


class _CropResize:
    """A crop window, an optional constant border, then a resize of every image in a batch (NHWC).

    ``window``: (h0, ch, w0, cw) of the input; ``border``: (rows, columns) of ``fill`` added
    on each side of the window; then a resize to ``size`` (skipped when the sizes agree).
    """

    def __init__(self, layer, window, border, size, interpolation, fill=0.0):
        self.layer, self.window, self.border, self.size = layer, window, border, tuple(size)
        self.interpolation, self.fill = interpolation, fill

    def _source_shape(self, x_shape):
        h0, ch, w0, cw = self.window
        return (x_shape[0], ch + 2 * self.border[0], cw + 2 * self.border[1], x_shape[3])

    def _region(self):
        h0, ch, w0, cw = self.window
        return slice(h0, h0 + ch), slice(w0, w0 + cw)

    def _whole(self, x_shape):
        """The window is the whole input and there is no border: the resize reads the input itself."""
        return self.window == (0, x_shape[1], 0, x_shape[2]) and self.border == (0, 0)

    def forward(self, x):
        layer = self.layer
        y_shape = (x.shape[0],) + self.size + (x.shape[3],)
        source_shape = self._source_shape(x.shape)
        if self._whole(x.shape):
            src = x
        else:
            rows, cols = self._region()
            bh, bw = self.border
            src = layer._buffer("y" if source_shape == y_shape else "source", source_shape, x.dtype)
            if bh or bw:
                src.fill(self.fill)
            np.copyto(src[:, bh:bh + rows.stop - rows.start, bw:bw + cols.stop - cols.start], x[:, rows, cols])
            if source_shape == y_shape:
                return src
        return _resample.resize_forward(src, self.size, self.interpolation, out=layer._buffer("y", y_shape, x.dtype))

    def backward(self, dy, x_shape):
        layer = self.layer
        x_shape = tuple(x_shape)
        source_shape = self._source_shape(x_shape)
        dx = layer._buffer("dx", x_shape, dy.dtype)
        if self._whole(x_shape):
            return _resample.resize_backward(dy, source_shape[1:3], self.interpolation, out=dx)
        if source_shape == dy.shape:
            dsrc = dy
        else:
            dsrc = _resample.resize_backward(dy, source_shape[1:3], self.interpolation,
                                             out=layer._buffer("dsource", source_shape, dy.dtype))
        rows, cols = self._region()
        bh, bw = self.border
        dx.fill(0)
        np.copyto(dx[:, rows, cols], dsrc[:, bh:bh + rows.stop - rows.start, bw:bw + cols.stop - cols.start])
        return dx


# ----- deterministic preprocessing -------------------------------------------------------------------------------


class Rescaling(Layer):
    """``x * scale + offset`` (e.g. ``Rescaling(1 / 255)`` maps [0, 255] to [0, 1]).

    Parameters
    ----------
    scale : float (or per-channel sequence broadcast against the input)
    offset : float (or per-channel sequence), default 0.0
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("scale", scale), ("offset", offset)):
            try:
                array = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                array = None
            if array is None or not np.isfinite(array).all():
                raise ValueError(f"Rescaling: `{name}` must be a finite number (or sequence of numbers). "
                                 f"Received: {name}={value!r}")
        self.scale, self.offset = scale, offset
        self._scale = np.asarray(scale, dtype=np.float32)
        self._offset = np.asarray(offset, dtype=np.float32)

    def forward(self, x, training=False):
        y = self._buffer("y", np.broadcast_shapes(x.shape, self._scale.shape, self._offset.shape), x.dtype)
        np.multiply(x, self._scale.astype(x.dtype, copy=False), out=y)
        return np.add(y, self._offset.astype(x.dtype, copy=False), out=y)

    def backward(self, dy):
        dx = self._buffer("dx", dy.shape, dy.dtype)
        return np.multiply(dy, self._scale.astype(dy.dtype, copy=False), out=dx)

    def get_config(self):
        scale = self.scale.tolist() if isinstance(self.scale, np.ndarray) else self.scale
        offset = self.offset.tolist() if isinstance(self.offset, np.ndarray) else self.offset
        return {**super().get_config(), "scale": scale, "offset": offset}


class Normalization(Layer):
    """``(x - mean) / max(sqrt(variance), 1e-7)`` per position along ``axis`` (Keras 3).

    Parameters
    ----------
    axis : int, tuple of int or None, default -1
        Axes that keep their own statistics (None: one mean and variance for all).
    mean, variance : float or array, optional
        Fixed statistics (both or neither); otherwise call :meth:`adapt`.
    invert : bool, default False
        Apply the inverse: ``mean + x * max(sqrt(variance), 1e-7)``.

    Adapted statistics are the non-trainable weights ``mean``, ``variance`` and
    ``count`` (Keras' names), so they are saved with the model.
    """

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif _int(axis):
            axis = (int(axis),)
        else:
            if not isinstance(axis, (tuple, list)) or not all(_int(a) for a in axis):
                raise ValueError(f"Normalization: `axis` must be an int, a tuple of ints or None. Received: axis={axis!r}")
            axis = tuple(int(a) for a in axis)
        self.axis = axis
        if (mean is None) != (variance is None):
            raise ValueError("When setting values directly, both `mean` and `variance` must be set. "
                             f"Received: mean={mean!r} and variance={variance!r}")
        if mean is not None:
            if np.shape(mean) != np.shape(variance):
                raise ValueError("When setting values directly, `mean` and `variance` must have the same shape. "
                                 f"Received: mean shape {np.shape(mean)} and variance shape {np.shape(variance)}")
            if len(np.shape(mean)) > len(self.axis):
                raise ValueError(f"The rank of `mean` must be less than or equal to the number of axes "
                                 f"({len(self.axis)}). Received: mean shape {np.shape(mean)} for axis {self.axis}")
            if np.any(np.asarray(variance, dtype=np.float64) < 0):
                raise ValueError(f"Normalization: `variance` must be >= 0. Received: variance={variance!r}")
        self.input_mean, self.input_variance = mean, variance
        self.invert = bool(invert)
        self.adapt_mean = self.adapt_variance = self.count = None

    def build(self, input_shape):
        ndim = len(input_shape)
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ValueError(f"All `axis` values must be in the range [-ndim, ndim). Received inputs with "
                             f"ndim={ndim}, while axis={self.axis}")
        self._keep_axis = tuple(sorted(a % ndim for a in self.axis))
        for d in self._keep_axis:
            if input_shape[d] is None:
                raise ValueError(f"All `axis` values to be kept must have a known shape. Received axis={self.axis}, "
                                 f"inputs.shape={tuple(input_shape)}, with unknown axis at index {d}")
        self._reduce_axis = tuple(d for d in range(ndim) if d not in self._keep_axis)
        self._broadcast_shape = tuple(input_shape[d] if d in self._keep_axis else 1 for d in range(ndim))
        self._stats_shape = tuple(input_shape[d] for d in self._keep_axis)
        if self.input_mean is None:
            # Keras' weights: mean and variance of the kept axes (scalars when axis=None), a scalar count
            shape = self._stats_shape
            zeros = lambda shape, dtype=None: np.zeros(shape, np.float32)
            ones = lambda shape, dtype=None: np.ones(shape, np.float32)
            self.adapt_mean = self.add_weight(shape, zeros, "mean", trainable=False)
            self.adapt_variance = self.add_weight(shape, ones, "variance", trainable=False)
            self.count = self.add_weight((), zeros, "count", trainable=False)
        else:
            self._fixed = tuple(self._broadcast_stat(v) for v in (self.input_mean, self.input_variance))

    @property
    def mean(self):
        """The mean in the input's broadcast shape (None before the layer is built)."""
        return None if not self.built else self._stats()[0]

    @property
    def variance(self):
        """The variance in the input's broadcast shape (None before the layer is built)."""
        if not self.built:
            return None
        return self._fixed[1] if self.adapt_mean is None else self.adapt_variance.value.reshape(self._broadcast_shape)

    def _broadcast_stat(self, value):
        value = np.asarray(value, dtype=np.float32)
        if value.ndim:
            expanded = [1] * len(self._broadcast_shape)
            for i in range(1, value.ndim + 1):
                expanded[self._keep_axis[-i]] = value.shape[-i]
            value = value.reshape(expanded)
        return np.broadcast_to(value, self._broadcast_shape)

    def _stats(self):
        if self.adapt_mean is None:
            mean, variance = self._fixed
        else:
            mean = self.adapt_mean.value.reshape(self._broadcast_shape)
            variance = self.adapt_variance.value.reshape(self._broadcast_shape)
        return mean, np.maximum(np.sqrt(variance), np.float32(_EPSILON))

    def adapt(self, data):
        """Compute the mean and variance of ``data`` along the non-kept axes.

        Parameters
        ----------
        data : numpy.ndarray, or an iterable of batches (arrays, or (x, y) tuples whose first entry is used)
            Batches are combined with Keras' running update of mean and variance.
        """
        if isinstance(data, np.ndarray):
            batches, first = None, data
        elif hasattr(data, "__iter__") and not isinstance(data, (str, bytes, dict)):
            iterator = iter(data)
            first = next(iterator, None)
            if first is None:
                raise ValueError("adapt() received an empty iterable (no batches); expected at least one batch")
            batches = _chain(first, iterator)
        else:
            raise TypeError(f"adapt() supports numpy arrays and iterables of batches. Received: {type(data).__name__}")
        first = _batch_array(first)
        if not self.built:
            self.build_for((None,) + first.shape[1:])
        else:
            for d in self._keep_axis:
                if first.shape[d] != self.input_shape[d]:
                    raise ValueError(f"The layer was built with input_shape={self.input_shape}, but adapt() is being "
                                     f"called with data with an incompatible shape, data.shape={first.shape}")
        if self.adapt_mean is None:
            raise ValueError("adapt() cannot change a Normalization layer given fixed `mean` and `variance`")
        if batches is None:
            data = first.astype(np.float32, copy=False)
            total_mean = np.mean(data, axis=self._reduce_axis)
            total_var = np.var(data, axis=self._reduce_axis)
            count = math.prod(data.shape[d] for d in self._reduce_axis)
        else:
            total_mean = np.zeros(self._stats_shape, np.float32)
            total_var = np.zeros(self._stats_shape, np.float32)
            count = 0
            for batch in batches:
                batch = _batch_array(batch).astype(np.float32, copy=False)
                for d in self._keep_axis:
                    if batch.shape[d] != self.input_shape[d]:
                        raise ValueError(f"adapt() yielded a batch with incompatible shape. Expected "
                                         f"{self.input_shape}, got {batch.shape}.")
                batch_mean = np.mean(batch, axis=self._reduce_axis)
                batch_var = np.var(batch, axis=self._reduce_axis)
                batch_count = math.prod(batch.shape[d] for d in self._reduce_axis)
                count += batch_count
                w_new = np.float32(batch_count / count)
                w_old = np.float32(1.0) - w_new
                new_mean = total_mean * w_old + batch_mean * w_new
                total_var = (total_var + (total_mean - new_mean) ** 2) * w_old + (
                    batch_var + (batch_mean - new_mean) ** 2) * w_new
                total_mean = new_mean
        self.adapt_mean.assign(np.reshape(total_mean, self.adapt_mean.shape))
        self.adapt_variance.assign(np.reshape(total_var, self.adapt_variance.shape))
        self.count.assign(np.float32(count))

    def forward(self, x, training=False):
        mean, denom = self._stats()
        y = self._buffer("y", x.shape, x.dtype)
        if self.invert:
            np.multiply(x, denom, out=y)
            np.add(mean, y, out=y)
        else:
            np.subtract(x, mean, out=y)
            np.divide(y, denom, out=y)
        return y

    def backward(self, dy):
        _, denom = self._stats()
        dx = self._buffer("dx", dy.shape, dy.dtype)
        return np.multiply(dy, denom, out=dx) if self.invert else np.divide(dy, denom, out=dx)

    def get_config(self):
        def plain(value):
            return value.tolist() if isinstance(value, np.ndarray) else value
        return {**super().get_config(), "axis": self.axis, "invert": self.invert,
                "mean": plain(self.input_mean), "variance": plain(self.input_variance)}


def _chain(first, rest):
    yield first
    yield from rest


def _batch_array(batch):
    if isinstance(batch, (tuple, list)) and batch and not np.isscalar(batch[0]):
        batch = batch[0]
    array = np.asarray(batch)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"adapt() expects numeric arrays; received dtype {array.dtype}")
    return array


class _SizedOutput(Layer):
    """Layers whose output is a crop / border / resize (``_CropResize``) of the input to (height, width).

    Subclasses define ``_plan(x_shape)``; the state keeps the input's shape for backward.
    """

    def _init_size(self, height, width, data_format):
        check_data_format(data_format)
        name = type(self).__name__
        self.height = _positive_int(height, "height", name)
        self.width = _positive_int(width, "width", name)

    def compute_output_shape(self, input_shape):
        _require_images(self, input_shape)
        return (input_shape[0], self.height, self.width, input_shape[3])

    def _resample_forward(self, x):
        self._state.x_shape = x.shape
        return self._plan(x.shape).forward(x)

    def _resample_backward(self, dy):
        shape = self._state.x_shape
        return self._plan(shape).backward(dy, shape)

    def _size_config(self):
        return {"data_format": "channels_last", "height": self.height, "width": self.width}


class Resizing(_SizedOutput):
    """Resizes NHWC images to (height, width) (``tf.image.resize``: half-pixel centres, no antialias).

    Parameters
    ----------
    height, width : int
    interpolation : {'bilinear', 'nearest'}, default 'bilinear'
    crop_to_aspect_ratio : bool, default False
        First crop the largest centred window of the target aspect ratio.
    pad_to_aspect_ratio : bool, default False
        First pad (with ``fill_value``) to the target aspect ratio.
    fill_mode : 'constant'
    fill_value : float, default 0.0
    antialias : False
    """

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False, pad_to_aspect_ratio=False,
                 fill_mode="constant", fill_value=0.0, antialias=False, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._init_size(height, width, data_format)
        self.interpolation = _choice(interpolation, "interpolation", _INTERPOLATIONS, "Resizing")
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise ValueError("Only one of `pad_to_aspect_ratio` & `crop_to_aspect_ratio` can be `True`. Received: "
                             f"crop_to_aspect_ratio={crop_to_aspect_ratio!r}, pad_to_aspect_ratio={pad_to_aspect_ratio!r}")
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)
        self.pad_to_aspect_ratio = bool(pad_to_aspect_ratio)
        self.fill_mode = _choice(fill_mode, "fill_mode", ("constant",), "Resizing")
        if not _number(fill_value):
            raise ValueError(f"Resizing: `fill_value` must be a number. Received: fill_value={fill_value!r}")
        self.fill_value = float(fill_value)
        if antialias:
            raise ValueError(f"Resizing: convx supports only antialias=False. Received: antialias={antialias!r}")

    def _plan(self, x_shape):
        h, w = x_shape[1:3]
        size = (self.height, self.width)
        if self.crop_to_aspect_ratio:
            return _CropResize(self, _aspect_crop(h, w, *size), (0, 0), size, self.interpolation)
        border = _aspect_pad(h, w, *size) if self.pad_to_aspect_ratio else (0, 0)
        return _CropResize(self, (0, h, 0, w), border, size, self.interpolation, self.fill_value)

    def forward(self, x, training=False):
        return self._resample_forward(x)

    def backward(self, dy):
        return self._resample_backward(dy)

    def get_config(self):
        return {**super().get_config(), **self._size_config(), "interpolation": self.interpolation, "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
                "pad_to_aspect_ratio": self.pad_to_aspect_ratio, "fill_mode": self.fill_mode,
                "fill_value": self.fill_value, "antialias": False}


class CenterCrop(_SizedOutput):
    """Crops the centre (height, width) of NHWC images (Keras 3; smaller images are aspect-cropped and resized).

    Parameters
    ----------
    height, width : int
    """

    def __init__(self, height, width, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._init_size(height, width, data_format)

    def _plan(self, x_shape):
        """Keras' CenterCrop: the centred window when the image is at least (height, width), else
        smart_resize (the largest centred window of the target aspect ratio, resized bilinearly)."""
        h, w = x_shape[1:3]
        size = (self.height, self.width)
        if h >= self.height and w >= self.width:
            window = ((h - self.height) // 2, self.height, (w - self.width) // 2, self.width)
        else:
            window = _aspect_crop(h, w, *size)
        return _CropResize(self, window, (0, 0), size, "bilinear")

    def forward(self, x, training=False):
        return self._resample_forward(x)

    def backward(self, dy):
        return self._resample_backward(dy)

    def get_config(self):
        return {**super().get_config(), **self._size_config()}


# ----- augmentation ------------------------------------------------------------------------------------------------


__all__ = ["Rescaling", "Normalization", "Resizing", "CenterCrop"]
