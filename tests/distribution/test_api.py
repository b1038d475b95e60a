"""convx.distribution without an MPI launcher: Keras 3's API as a no-op, and the sharding arithmetic."""

import numpy as np
import pytest

import convx
from convx.distribution import _replica


@pytest.fixture(autouse=True)
def no_distribution():
    yield
    convx.distribution.set_distribution(None)


def test_one_process_is_one_cpu_device_and_data_parallel_is_a_no_op():
    dist = convx.distribution
    assert dist.list_devices() == ["cpu:0"] and dist.list_devices("gpu") == [] and dist.get_device_count() == 1
    data_parallel = dist.DataParallel()
    assert (data_parallel.num_processes, data_parallel.data_shard_id, data_parallel.num_model_replicas) == (1, 0, 1)
    assert data_parallel.batch_dim_name == "batch" and data_parallel.device_mesh.shape == (1,)
    dist.set_distribution(data_parallel)
    assert dist.distribution() is data_parallel and dist._data_parallel() is None
    with dist.DataParallel(devices=["cpu:0"]).scope() as _:
        assert dist.distribution() is not data_parallel
    assert dist.distribution() is data_parallel
    dist.initialize(num_processes=1, process_id=0)


def test_bad_arguments_are_refused_by_name():
    dist = convx.distribution
    with pytest.raises(ValueError, match="device_type"):
        dist.list_devices("quantum")
    with pytest.raises(ValueError, match="timeout"):
        dist.DataParallel(timeout=0)
    with pytest.raises(ValueError, match="every MPI rank"):
        dist.DataParallel(devices=["cpu:0", "cpu:1"])
    with pytest.raises(ValueError, match="Shape and axis_names"):
        dist.DeviceMesh((1,), ["batch", "model"])
    with pytest.raises(ValueError, match="set_distribution"):
        dist.set_distribution("data_parallel")
    with pytest.raises(ValueError, match="num_processes"):
        dist.initialize(num_processes=4)


@pytest.mark.parametrize("size", [1, 2, 3, 8])
def test_shards_cover_each_global_batch_once_in_rank_order_and_differ_by_at_most_one_row(size):
    for start, stop in [(0, 1), (0, 7), (10, 42), (5, 5 + 3 * size + 2), (100, 100 + size - 1)]:
        bounds = [_replica.shard_bounds(start, stop, rank, size) for rank in range(size)]
        assert bounds[0][0] == start and bounds[-1][1] == stop
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        counts = np.array([hi - lo for lo, hi in bounds])
        assert counts.min() >= 0 and counts.max() - counts.min() <= 1


def test_a_launcher_without_mpi4py_is_a_clear_error(monkeypatch):
    from convx.distribution import _mpi

    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    monkeypatch.setitem(__import__("sys").modules, "mpi4py", None)
    assert _mpi.launched_size() == 4
    with pytest.raises(ImportError, match=r"convx-cnn\[mpi\]"):
        _mpi._import_mpi()
