"""``timeseries_dataset_from_array``: sliding windows over an array as a Dataset (Keras 3's)."""

import numpy as np

from convx.data.dataset import Dataset


def _check_arguments(data, start_index, end_index, sampling_rate, sequence_stride):
    n = len(data)
    if start_index:
        if start_index < 0:
            raise ValueError(f"`start_index` must be 0 or greater. Received: start_index={start_index}")
        if start_index >= n:
            raise ValueError(f"`start_index` must be lower than the length of the data. Received: "
                             f"start_index={start_index}, for data of length {n}")
    if end_index:
        if start_index and end_index <= start_index:
            raise ValueError(f"`end_index` must be higher than `start_index`. Received: start_index={start_index}, "
                             f"and end_index={end_index} ")
        if end_index >= n:
            raise ValueError(f"`end_index` must be lower than the length of the data. Received: "
                             f"end_index={end_index}, for data of length {n}")
        if end_index <= 0:
            raise ValueError(f"`end_index` must be higher than 0. Received: end_index={end_index}")
    for name, value in (("sampling_rate", sampling_rate), ("sequence_stride", sequence_stride)):
        if value <= 0:
            raise ValueError(f"`{name}` must be higher than 0. Received: {name}={value}")
        if value >= n:
            raise ValueError(f"`{name}` must be lower than the length of the data. Received: {name}={value}, "
                             f"for data of length {n}")


def timeseries_dataset_from_array(data, targets, sequence_length, sequence_stride=1, sampling_rate=1,
                                  batch_size=128, shuffle=False, seed=None, start_index=None, end_index=None):
    """Batches of windows ``data[i : i + sequence_length * sampling_rate : sampling_rate]``.

    Parameters
    ----------
    data : array_like, shape (timesteps, ...)
    targets : array_like or None
        ``targets[i]`` goes with the window starting at ``i`` (None: windows only).
    sequence_length : int
        Time steps per window.
    sequence_stride : int, default 1
        Offset between consecutive window starts.
    sampling_rate : int, default 1
        Step between the time steps of a window.
    batch_size : int or None, default 128
        None yields single windows.
    shuffle, seed : bool, int
        Shuffle the window starts (NumPy ``RandomState(seed)``, as Keras) and each epoch's order.
    start_index, end_index : int, optional
        Only ``data[start_index:end_index]`` is used.

    Returns
    -------
    Dataset of arrays (batch, sequence_length, ...) with data's dtype, or of ``(windows, targets)``.
    """
    data = np.asarray(data)
    _check_arguments(data, start_index, end_index, sampling_rate, sequence_stride)
    start_index = 0 if start_index is None else int(start_index)
    end_index = len(data) if end_index is None else int(end_index)
    num_seqs = end_index - start_index - (sequence_length - 1) * sampling_rate
    if targets is not None:
        targets = np.asarray(targets)
        num_seqs = min(num_seqs, len(targets))
    index_dtype = np.int32 if num_seqs < 2147483647 else np.int64
    starts = np.arange(0, max(num_seqs, 0), sequence_stride, dtype=index_dtype)
    if shuffle:
        if seed is None:
            seed = np.random.randint(1e6)
        np.random.RandomState(seed).shuffle(starts)
    window = np.arange(sequence_length, dtype=np.int64) * sampling_rate
    series = data[start_index:end_index]
    labels = None if targets is None else targets[start_index:end_index]

    def gather(positions):
        windows = series[np.asarray(positions, dtype=np.int64)[..., None] + window]
        return windows if labels is None else (windows, labels[positions])

    ds = Dataset.from_tensor_slices(starts)
    if shuffle:
        ds = ds.shuffle(batch_size * 8 if batch_size is not None else 1024, seed=seed)
    if batch_size is not None:
        ds = ds.batch(batch_size)
    return ds.map(gather)
