"""Reading CIFAR's python batches (pickled dicts) without unpickling, as Keras' ``cifar.load_batch``."""

from convx.datasets._pickle_data import PickleDataError, read_pickle


def load_batch(fpath, label_key="labels"):
    """The images and labels of one CIFAR batch file.

    Parameters
    ----------
    fpath : path-like
        A batch of the python version (``data_batch_1``, ``test_batch``, ``train``, ...).
    label_key : str, default "labels"
        Dict key of the labels: ``"labels"`` (CIFAR-10), ``"fine_labels"`` or ``"coarse_labels"`` (CIFAR-100).

    Returns
    -------
    data : numpy.ndarray
        uint8 (N, 3, 32, 32), channels first as stored.
    labels : list of int
        N labels, as stored.

    Raises
    ------
    PickleDataError
        If the file holds anything but plain data and NumPy arrays, or lacks the keys.
    """
    with open(fpath, "rb") as stream:
        batch = read_pickle(stream, encoding="bytes", source=str(fpath))
    if not isinstance(batch, dict):
        raise PickleDataError(f"{fpath}: a CIFAR batch is a dict, the file holds {type(batch).__name__}")
    batch = {key.decode("utf8") if isinstance(key, bytes) else key: value for key, value in batch.items()}
    missing = [key for key in ("data", label_key) if key not in batch]
    if missing:
        raise PickleDataError(f"{fpath}: not a CIFAR batch: no {' or '.join(map(repr, missing))} among "
                              f"its keys {sorted(batch)}")
    data = batch["data"]
    return data.reshape(data.shape[0], 3, 32, 32), batch[label_key]
