"""``image_dataset_from_directory``: a Dataset of decoded, resized images and their labels.

Images are decoded with Pillow (the optional ``images`` extra), in parallel
threads (Pillow's decoders release the GIL). Resizing follows
``tf.image.resize``: ``"bilinear"`` and ``"nearest"`` are computed exactly as
TensorFlow does (half-pixel centres, no antialiasing); the other methods use
Pillow's nearest equivalents.
"""

import numpy as np

from convx.data import directory as _directory

ALLOWLIST_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5", "gaussian", "mitchellcubic")
_CHANNELS = {"rgb": 3, "rgba": 4, "grayscale": 1}
_PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def _pillow():
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError("Reading images needs Pillow: pip install 'convx-cnn[images]' (or pip install pillow)") \
            from exc
    return Image


def image_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None, color_mode="rgb",
                                 batch_size=32, image_size=(256, 256), shuffle=True, seed=None, validation_split=None,
                                 subset=None, interpolation="bilinear", follow_links=False,
                                 crop_to_aspect_ratio=False, pad_to_aspect_ratio=False, data_format=None,
                                 verbose=True):
    """A Dataset of ``(images, labels)`` batches from image files in class subdirectories (Keras 3's).

    Parameters
    ----------
    directory : str
        With ``labels="inferred"``, one subdirectory per class (sorted names give the class indices).
    labels : "inferred", None or list of int
        Labels per file, in the sorted order of the file paths (``os.walk``).
    label_mode : "int", "categorical", "binary" or None
        int32 indices (batch,), float32 one-hot (batch, num_classes), float32 (batch, 1), or no labels.
    class_names : list of str, optional
        Subdirectories to use, in this order.
    color_mode : "rgb", "rgba" or "grayscale"
        3, 4 or 1 channels.
    batch_size : int or None, default 32
        None yields single images.
    image_size : (int, int), default (256, 256)
        (height, width) every image is resized to.
    shuffle, seed : bool, int
        Shuffle the file order (and each epoch's order); a seed makes it reproducible.
    validation_split : float, optional
        Fraction held out for validation (the last files after shuffling).
    subset : "training", "validation" or "both"
        Which part to return (``"both"``: a list of two datasets).
    interpolation : str, default "bilinear"
    crop_to_aspect_ratio, pad_to_aspect_ratio : bool
        Center-crop or zero-pad to the target aspect ratio before resizing.
    data_format : "channels_last" (default) or "channels_first"

    Returns
    -------
    Dataset (or list of two) of float32 images (batch, height, width, channels), with
    ``class_names`` and ``file_paths`` attributes.
    """
    _pillow()
    _directory.check_label_arguments(labels, label_mode, class_names)
    if label_mode not in {"int", "categorical", "binary", None}:
        raise ValueError('`label_mode` argument must be one of "int", "categorical", "binary", or None. '
                         f"Received: label_mode={label_mode}")
    if labels is None or label_mode is None:
        labels, label_mode = None, None
    if color_mode not in _CHANNELS:
        raise ValueError(f'`color_mode` must be one of {{"rgb", "rgba", "grayscale"}}. Received: color_mode={color_mode}')
    image_size = _check_image_size(image_size)
    interpolation = str(interpolation).lower()
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"Argument `interpolation` should be one of {_INTERPOLATIONS}. "
                         f"Received: interpolation={interpolation}")
    if data_format not in (None, "channels_last", "channels_first"):
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first', received {data_format!r}")
    _directory.check_validation_split_arg(validation_split, subset, shuffle, seed)
    if seed is None:
        seed = np.random.randint(1e6)
    paths, labels, class_names = _directory.index_directory(directory, labels, ALLOWLIST_FORMATS, class_names,
                                                            shuffle, seed, follow_links, verbose)
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError(f'When passing `label_mode="binary"`, there must be exactly 2 class_names. '
                         f"Received: class_names={class_names}")
    loader = _ImageLoader(image_size, _CHANNELS[color_mode], interpolation, crop_to_aspect_ratio,
                          pad_to_aspect_ratio, data_format == "channels_first")

    def empty(subset_name):
        which = {"training": "training ", "validation": "validation "}.get(subset_name, "") if subset == "both" else ""
        return f"No {which}images found in directory {directory}. Allowed formats: {ALLOWLIST_FORMATS}"

    return _directory.subset_datasets(paths, labels, class_names, label_mode, loader, subset, shuffle,
                                      validation_split, seed, batch_size, verbose, empty)


def _check_image_size(image_size):
    if isinstance(image_size, int):
        return image_size, image_size
    if not isinstance(image_size, (list, tuple)) or len(image_size) != 2:
        raise ValueError(f"Invalid `image_size` value. Expected a tuple of 2 integers. Received: image_size={image_size}")
    return int(image_size[0]), int(image_size[1])


class _ImageLoader:
    """path -> float32 (height, width, channels) image, decoded and resized as Keras does."""

    def __init__(self, size, channels, interpolation, crop, pad, channels_first):
        self.size, self.channels, self.interpolation = size, channels, interpolation
        self.crop, self.pad, self.channels_first = crop, pad, channels_first

    def __call__(self, path):
        image = decode_image(str(path), self.channels)
        if self.crop:
            image = _crop_to_aspect(image, self.size)
        elif self.pad:
            image = _pad_to_aspect(image, self.size)
        image = resize(image, self.size, self.interpolation)
        return np.transpose(image, (2, 0, 1)) if self.channels_first else image


def decode_image(path, channels):
    """The first frame of a PNG/JPEG/BMP/GIF file as uint8 (height, width, channels)."""
    Image = _pillow()
    mode = _PIL_MODES[channels]
    try:
        with Image.open(path) as image:
            image.load()
            if channels == 1 and image.mode not in ("L", "1"):
                return _grey(np.asarray(image.convert("RGB")))
            if image.mode != mode:
                image = image.convert(mode)
            array = np.asarray(image)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"Cannot decode the image file {path}: {exc}") from exc
    return array[:, :, None] if array.ndim == 2 else array


def _grey(rgb):
    # ITU-R 601 luma truncated, as TensorFlow's decoders give within one grey level (Pillow rounds)
    r, g, b = (rgb[..., c].astype(np.uint32) for c in range(3))
    return ((r * 299 + g * 587 + b * 114) // 1000).astype(np.uint8)[:, :, None]


def resize(image, size, interpolation="bilinear"):
    """``tf.image.resize(image, size, method)`` of a (height, width, channels) array: float32, except
    ``"nearest"`` which keeps the dtype (as TensorFlow does)."""
    height, width = size
    if interpolation == "nearest":
        rows = _nearest_index(image.shape[0], height)
        cols = _nearest_index(image.shape[1], width)
        return image[rows][:, cols]
    if image.shape[:2] == (height, width) and interpolation in ("bilinear", "area", "bicubic"):
        return image.astype(np.float32)  # these methods map an image to itself
    if interpolation == "bilinear":
        return _bilinear(image.astype(np.float32), height, width)
    return _pillow_resize(image, height, width, interpolation)


def _nearest_index(in_size, out_size):
    scale = in_size / out_size
    return np.minimum(np.floor((np.arange(out_size) + 0.5) * scale).astype(np.int64), in_size - 1)


def _axis_weights(in_size, out_size):
    # TensorFlow's half-pixel scaler: source coordinate (i + 0.5) * scale - 0.5, clamped neighbours
    position = (np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5
    floor = np.floor(position)
    lower = np.clip(floor, 0, in_size - 1).astype(np.int64)
    upper = np.clip(np.ceil(position), 0, in_size - 1).astype(np.int64)
    return lower, upper, (position - floor).astype(np.float32)


def _bilinear(image, height, width):
    top, bottom, wy = _axis_weights(image.shape[0], height)
    left, right, wx = _axis_weights(image.shape[1], width)
    wx = wx[None, :, None]
    upper = image[top][:, left] + (image[top][:, right] - image[top][:, left]) * wx
    lower = image[bottom][:, left] + (image[bottom][:, right] - image[bottom][:, left]) * wx
    return upper + (lower - upper) * wy[:, None, None]


def _pillow_resize(image, height, width, interpolation):
    Image = _pillow()
    filters = {"bicubic": Image.BICUBIC, "area": Image.BOX, "lanczos3": Image.LANCZOS, "lanczos5": Image.LANCZOS,
               "gaussian": Image.BICUBIC, "mitchellcubic": Image.BICUBIC}
    channels = [Image.fromarray(image[:, :, c].astype(np.float32), mode="F").resize((width, height),
                                                                                     filters[interpolation])
                for c in range(image.shape[2])]
    return np.stack([np.asarray(c, dtype=np.float32) for c in channels], axis=-1)


def _crop_to_aspect(image, size):
    height, width = image.shape[:2]
    crop_h = min(height, int(float(width * size[0]) / size[1]))
    crop_w = min(width, int(float(height * size[1]) / size[0]))
    top, left = int(float(height - crop_h) / 2), int(float(width - crop_w) / 2)
    return image[top:top + crop_h, left:left + crop_w]


def _pad_to_aspect(image, size):
    height, width = image.shape[:2]
    pad_h = max(height, int(float(width * size[0]) / size[1]))
    pad_w = max(width, int(float(height * size[1]) / size[0]))
    top, left = int(float(pad_h - height) / 2), int(float(pad_w - width) / 2)
    padded = np.zeros((pad_h, pad_w, image.shape[2]), dtype=image.dtype)
    padded[top:top + height, left:left + width] = image
    return padded
