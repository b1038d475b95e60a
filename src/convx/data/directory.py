"""Indexing a directory of files by class, as Keras 3's ``*_dataset_from_directory`` do.

The same tree, ``seed`` and ``validation_split`` give the same file order,
split and ``class_names`` as Keras: classes are the sorted subdirectory names,
files are sorted per directory, the shuffle is NumPy's ``RandomState(seed)``
applied to the paths and (separately seeded) to the labels.
"""

import os

import numpy as np

from convx.data.dataset import Dataset


def index_directory(directory, labels, formats, class_names=None, shuffle=True, seed=None, follow_links=False,
                    verbose=True):
    """``(file_paths, labels, class_names)`` of the files of ``directory`` with one of ``formats``."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"The directory {directory!r} does not exist or is not a directory")
    if labels == "inferred":
        subdirs = [d.rstrip("/") for d in sorted(os.listdir(directory))
                   if os.path.isdir(os.path.join(directory, d)) and not d.startswith(".")]
        if class_names is not None:
            if not set(class_names).issubset(set(subdirs)):
                raise ValueError("The `class_names` passed did not match the names of the subdirectories of the "
                                 f"target directory. Expected: {subdirs} (or a subset of it), but received: "
                                 f"class_names={class_names}")
            subdirs = list(class_names)
    else:
        subdirs = [""]
        if class_names is not None:
            raise ValueError("When `labels=None` (no labels), argument `class_names` cannot be specified."
                             if labels is None else
                             "When argument `labels` is specified, argument `class_names` cannot be specified "
                             "(the `class_names` will be the sorted list of labels).")
    filenames, per_class = [], []
    for index, subdir in enumerate(subdirs):
        found = _index_subdirectory(os.path.join(directory, subdir), follow_links, formats)
        filenames += found
        per_class.append(np.full(len(found), index, dtype=np.int32))
    if labels == "inferred":
        labels = np.concatenate(per_class) if per_class else np.zeros(0, np.int32)
        class_names = subdirs
    elif labels is None:
        class_names = None
    else:
        if len(labels) != len(filenames):
            raise ValueError(f"Expected the lengths of `labels` to match the number of files in the target "
                             f"directory. len(labels) is {len(labels)} while we found {len(filenames)} files in "
                             f"directory {directory}.")
        class_names = [str(label) for label in sorted(set(labels))]
        labels = np.asarray(labels)
    if verbose:
        print(f"Found {len(filenames)} files." if labels is None else
              f"Found {len(filenames)} files belonging to {len(class_names)} classes.")
    file_paths = [os.path.join(directory, name) for name in filenames]
    if shuffle:
        if seed is None:
            seed = np.random.randint(1e6)
        np.random.RandomState(seed).shuffle(file_paths)
        if labels is not None:
            np.random.RandomState(seed).shuffle(labels)
    return file_paths, labels, class_names


def _index_subdirectory(directory, follow_links, formats):
    dirname = os.path.basename(directory)
    found = []
    for root, _, files in sorted(os.walk(directory, followlinks=follow_links), key=lambda entry: entry[0]):
        for name in sorted(files):
            if name.lower().endswith(formats):
                found.append(os.path.join(dirname, os.path.relpath(os.path.join(root, name), directory)))
    return found


def check_validation_split_arg(validation_split, subset, shuffle, seed):
    if validation_split and not 0 < validation_split < 1:
        raise ValueError(f"`validation_split` must be between 0 and 1, received: {validation_split}")
    if (validation_split or subset) and not (validation_split and subset):
        raise ValueError("If `subset` is set, `validation_split` must be set, and inversely.")
    if subset not in ("training", "validation", "both", None):
        raise ValueError(f'`subset` must be either "training", "validation" or "both", received: {subset}')
    if validation_split and shuffle and seed is None:
        raise ValueError("If using `validation_split` and shuffling the data, you must provide a `seed` argument, "
                         "to make sure that there is no overlap between the training and validation subset.")


def split(samples, labels, validation_split, subset, verbose=True):
    """The training (first) or validation (last ``int(validation_split * n)``) part."""
    if not validation_split:
        return samples, labels
    num_val = int(validation_split * len(samples))
    num_train = len(samples) - num_val
    if subset == "training":
        if verbose:
            print(f"Using {num_train} files for training.")
        return samples[:num_train], None if labels is None else labels[:num_train]
    if subset == "validation":
        if verbose:
            print(f"Using {num_val} files for validation.")
        return samples[num_train:], None if labels is None else labels[num_train:]
    raise ValueError(f'`subset` must be either "training" or "validation", received: {subset}')


def encode_labels(labels, label_mode, num_classes):
    """Labels as Keras gives them: int32 (``"int"``), float32 one-hot (``"categorical"``) or float32
    (n, 1) (``"binary"``)."""
    labels = np.asarray(labels)
    if label_mode == "binary":
        return labels.astype(np.float32)[:, None]
    if label_mode == "categorical":
        return np.eye(num_classes, dtype=np.float32)[labels.astype(np.int64)]
    return labels.astype(np.int32) if labels.dtype.kind in "iu" else labels


def paths_dataset(paths, labels, label_mode, num_classes, load, shuffle, buffer_size, seed, batch_size):
    """paths (+ labels) -> shuffled -> ``load`` in parallel -> batched -> prefetched, as Keras builds it."""
    from convx.data.dataset import AUTOTUNE

    paths = np.array(paths)
    if label_mode:
        ds = Dataset.from_tensor_slices((paths, encode_labels(labels, label_mode, num_classes)))
    else:
        ds = Dataset.from_tensor_slices(paths)
    if shuffle:
        ds = ds.shuffle(buffer_size, seed=seed)
    if label_mode:
        ds = ds.map(lambda path, label: (load(path), label), num_parallel_calls=AUTOTUNE)
    else:
        ds = ds.map(load, num_parallel_calls=AUTOTUNE)
    if batch_size is not None:
        ds = ds.batch(batch_size)
    return ds.prefetch(AUTOTUNE)


def subset_datasets(paths, labels, class_names, label_mode, load, subset, shuffle, validation_split, seed,
                    batch_size, verbose, empty_message):
    """The dataset of ``subset`` (None, ``"training"`` or ``"validation"``; ``"both"``: a list of the two, the
    validation one unshuffled), each with ``class_names`` and ``file_paths``; ``empty_message(subset_name)`` is the
    ValueError's text when a subset has no file."""
    buffer_size = batch_size * 8 if batch_size is not None else 1024

    def make(subset_name, shuffled):
        part_paths, part_labels = split(paths, labels, validation_split, subset_name, verbose)
        if not part_paths:
            raise ValueError(empty_message(subset_name))
        ds = paths_dataset(part_paths, part_labels, label_mode, len(class_names or ()), load, shuffled, buffer_size,
                           seed, batch_size)
        ds.class_names, ds.file_paths = class_names, list(part_paths)
        return ds

    if subset == "both":
        return [make("training", shuffle), make("validation", False)]
    return make(subset, shuffle)


def check_label_arguments(labels, label_mode, class_names):
    if labels not in ("inferred", None):
        if not isinstance(labels, (list, tuple)):
            raise ValueError("`labels` argument should be a list/tuple of integer labels, of the same size as the "
                             "number of files in the target directory. If you wish to infer the labels from the "
                             'subdirectory names in the target directory, pass `labels="inferred"`. If you wish to '
                             f"get a dataset that only contains the files (no labels), pass `labels=None`. "
                             f"Received: labels={labels}")
        if class_names:
            raise ValueError(f'You can only pass `class_names` if `labels="inferred"`. Received: labels={labels}, '
                             f"and class_names={class_names}")
