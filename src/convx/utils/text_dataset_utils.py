"""``text_dataset_from_directory``: a Dataset of text files' contents and their labels (Keras 3's)."""

import numpy as np

from convx.data import directory as _directory


def text_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None, batch_size=32,
                                max_length=None, shuffle=True, seed=None, validation_split=None, subset=None,
                                follow_links=False, verbose=True):
    """A Dataset of ``(texts, labels)`` batches from ``.txt`` files in class subdirectories.

    Same arguments, file order, splits and ``class_names`` as Keras 3. Texts are
    NumPy unicode strings (the files decoded as UTF-8), truncated to
    ``max_length`` characters when given; labels as in
    :func:`convx.utils.image_dataset_from_directory`.

    Returns
    -------
    Dataset (or, for ``subset="both"``, a list of two) with ``class_names`` and ``file_paths``.
    """
    _directory.check_label_arguments(labels, label_mode, class_names)
    if label_mode not in {"int", "categorical", "binary", None}:
        raise ValueError('`label_mode` argument must be one of "int", "categorical", "binary", or None. '
                         f"Received: label_mode={label_mode}")
    if labels is None or label_mode is None:
        labels, label_mode = None, None
    _directory.check_validation_split_arg(validation_split, subset, shuffle, seed)
    if seed is None:
        seed = np.random.randint(1e6)
    paths, labels, class_names = _directory.index_directory(directory, labels, (".txt",), class_names, shuffle,
                                                            seed, follow_links, verbose)
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError(f'When passing `label_mode="binary"`, there must be exactly 2 class_names. '
                         f"Received: class_names={class_names}")

    def load(path):
        with open(str(path), encoding="utf-8") as stream:
            text = stream.read()
        return np.str_(text if max_length is None else text[:max_length])

    return _directory.subset_datasets(paths, labels, class_names, label_mode, load, subset, shuffle,
                                      validation_split, seed, batch_size, verbose,
                                      lambda _: f"No text files found in directory {directory}. Allowed format: .txt")
