"""Synchronous data-parallel training across processes and hosts on MPI (Keras 3's distribution API names).

>>> import convx as keras
>>> keras.distribution.set_distribution(keras.distribution.DataParallel())  # the ranks come from MPI
>>> model.fit(x, y, batch_size=256)  # batch_size is the global batch

launched as ``mpirun -np 4 python train.py`` (or ``mpiexec``, or Slurm's ``srun``). Every rank holds
the whole model and the same arrays; each takes its contiguous share of every global batch (sizes
differ by at most one row), the gradients are summed by one ``MPI_Allreduce`` per step on the
model's flat gradient buffer, and every rank applies the same update, so every rank's weights stay
bit-identical. See ``docs/distributed.md``.

Devices are MPI ranks: ``list_devices()`` is ``["cpu:0", ..., "cpu:{size - 1}"]``. Without an MPI
launcher, or with one rank, ``DataParallel`` is a no-op and mpi4py is never imported.
"""

import contextlib
import math

import numpy as np

from convx.distribution import _mpi

DEFAULT_BATCH_DIM_NAME = "batch"

_state = {"distribution": None, "world": None}


def _world(timeout=600.0):
    """The MPI world when this process is one of several ranks (made once), else None."""
    if _state["world"] is None and _mpi.launched_size() > 1:
        _state["world"] = _mpi.World(timeout)
    return _state["world"]


def list_devices(device_type=None):
    """The devices of the job: one ``"cpu:<rank>"`` per MPI rank (``["cpu:0"]`` without MPI).

    Parameters
    ----------
    device_type : str, optional
        ``"cpu"`` (the default); ``"gpu"`` and ``"tpu"`` give an empty list.

    Returns
    -------
    list of str
    """
    if device_type is not None and str(device_type).lower() not in ("cpu", "gpu", "tpu"):
        raise ValueError(f"device_type must be 'cpu', 'gpu' or 'tpu', received device_type={device_type!r}")
    if device_type is not None and str(device_type).lower() != "cpu":
        return []
    world = _world()
    return [f"cpu:{rank}" for rank in range(1 if world is None else world.size)]


def get_device_count(device_type=None):
    """``len(list_devices(device_type))``."""
    return len(list_devices(device_type))


def initialize(job_addresses=None, num_processes=None, process_id=None):
    """Join the MPI job (MPI itself knows the addresses: ``job_addresses`` is ignored).

    ``num_processes`` and ``process_id``, when given, are checked against the MPI world.
    """
    world = _world()
    size, rank = (1, 0) if world is None else (world.size, world.rank)
    if num_processes is not None and int(num_processes) != size:
        raise ValueError(f"initialize: num_processes={num_processes} but the MPI job has {size} ranks")
    if process_id is not None and int(process_id) != rank:
        raise ValueError(f"initialize: process_id={process_id} but this process is MPI rank {rank}")


class DeviceMesh:
    """A grid of devices (here MPI ranks) with a name per axis.

    Parameters
    ----------
    shape : tuple of int
    axis_names : list of str
        One per axis of ``shape``.
    devices : list of str, optional
        Defaults to ``list_devices()``.
    """

    def __init__(self, shape, axis_names, devices=None):
        if not shape or not axis_names:
            raise ValueError(f"Shape and axis_names cannot be empty. Received: shape={shape}, axis_names={axis_names}")
        if len(shape) != len(axis_names):
            raise ValueError(f"Shape and axis_names should have same size. Received: shape={shape}, "
                             f"axis_names={axis_names}")
        devices = np.array(list_devices() if devices is None else devices)
        if math.prod(shape) != devices.size:
            raise ValueError(f"Shape does not match the number of devices. Received: shape={shape}; "
                             f"devices.shape={devices.shape}")
        self._shape, self._axis_names = tuple(shape), list(axis_names)
        self._devices = devices.reshape(shape)

    @property
    def shape(self):
        return self._shape

    @property
    def axis_names(self):
        return self._axis_names

    @property
    def devices(self):
        return self._devices

    def __repr__(self):
        return f"<DeviceMesh shape={self.shape}, axis_names={self.axis_names}>"


class Distribution:
    """Base class of distributions: a device mesh, the batch axis' name and whether data is auto-sharded."""

    def __init__(self, device_mesh, batch_dim_name=None, auto_shard_dataset=True):
        self._device_mesh, self._batch_dim_name = device_mesh, batch_dim_name
        self._auto_shard_dataset = auto_shard_dataset
        world = _world()
        self._num_processes, self._process_id = (1, 0) if world is None else (world.size, world.rank)

    @property
    def num_processes(self):
        return self._num_processes

    @property
    def num_model_replicas(self):
        raise NotImplementedError

    @property
    def num_data_shards(self):
        return min(self.num_model_replicas, self.num_processes)

    @property
    def data_shard_id(self):
        return self._process_id

    @property
    def device_mesh(self):
        return self._device_mesh

    @property
    def batch_dim_name(self):
        return self._batch_dim_name

    @property
    def auto_shard_dataset(self):
        return self._auto_shard_dataset

    @auto_shard_dataset.setter
    def auto_shard_dataset(self, value):
        self._auto_shard_dataset = value

    @contextlib.contextmanager
    def scope(self):
        """Make this distribution current inside a ``with`` block."""
        previous = distribution()
        set_distribution(self)
        try:
            yield
        finally:
            set_distribution(previous)

    def __repr__(self):
        return f"<{type(self).__name__} device_mesh={self.device_mesh}>"


class DataParallel(Distribution):
    """Data parallelism over the MPI ranks: every rank a replica, each global batch split among them.

    Parameters
    ----------
    device_mesh : DeviceMesh, optional
        One-dimensional, over every rank.
    devices : list of str, optional
        Every rank's device (``list_devices()``, the default).
    auto_shard_dataset : bool, default True
        Whether each rank takes its share of every global batch (False: each rank's data already
        is its share, and ``batch_size`` is per rank).
    timeout : float, default 600
        Seconds a rank may wait inside one collective (for a rank that failed, died or hangs)
        before the whole job is aborted with a message naming the collective. Not a Keras argument.
    """

    def __init__(self, device_mesh=None, devices=None, auto_shard_dataset=True, timeout=600.0):
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"DataParallel: timeout must be a positive number of seconds, received timeout={timeout!r}")
        world = _world(timeout)
        if world is not None:
            world.watchdog.timeout = float(timeout)
        if device_mesh is not None:
            if not isinstance(device_mesh, DeviceMesh):
                raise ValueError(f"Expect `mesh` to be an instance of `DeviceMesh`. Received: mesh={device_mesh} "
                                 f"(of type {type(device_mesh)})")
            mesh = device_mesh
        else:
            devices = np.array(list_devices() if not devices else devices)
            mesh = DeviceMesh(devices.shape, [DEFAULT_BATCH_DIM_NAME], devices)
        if mesh.devices.ndim != 1 or sorted(mesh.devices.tolist()) != sorted(list_devices()):
            raise ValueError(f"DataParallel: the devices must be every MPI rank's, once ({list_devices()}); "
                             f"received {mesh.devices.tolist()}")
        super().__init__(mesh, mesh.axis_names[0], auto_shard_dataset)

    @property
    def num_model_replicas(self):
        return self.device_mesh.devices.size


def distribution():
    """The current distribution (None when none was set)."""
    return _state["distribution"]


def set_distribution(value):
    """Make ``value`` (a ``Distribution``, or None) the current distribution."""
    if value is not None and not isinstance(value, Distribution):
        raise ValueError(f"set_distribution expects a convx.distribution.Distribution or None, received {value!r}")
    _state["distribution"] = value


def _data_parallel():
    """The replica context of the training loops: None unless a DataParallel over several ranks is current."""
    current = _data_parallel_current()
    if current is None:
        return None
    from convx.distribution._replica import Replica

    return Replica(_state["world"], current.auto_shard_dataset)


def _training_world():
    """The MPI world of a data-parallel job (a DataParallel over several ranks is current), or None:
    callbacks that keep state across runs (BackupAndRestore) share it through this world."""
    return None if _data_parallel_current() is None else _state["world"]


def _synchronizing_world():
    """The MPI world that BatchNormalization(synchronized=True) sums its statistics over, or None."""
    return None if _data_parallel_current() is None else _state["world"]


def _data_parallel_current():
    current = _state["distribution"]
    if current is None or current.num_processes == 1 or not isinstance(current, DataParallel):
        return None
    return current


def _writes_files():
    """Whether this process writes files (saves, checkpoints, logs): always, except ranks other than 0
    of a data-parallel job."""
    current = _state["distribution"]
    return current is None or current._process_id == 0


__all__ = ["DataParallel", "DeviceMesh", "Distribution", "distribution", "get_device_count", "initialize",
           "list_devices", "set_distribution"]
