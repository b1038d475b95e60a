"""convx.data.Dataset against tf.data's documented semantics (written from the documentation)."""

import gc
import threading
import time
import traceback

import numpy as np
import pytest

import convx
from convx.data import AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY, Dataset, TensorSpec


def values(ds):
    return [np.asarray(v).tolist() for v in ds]


# ----- sources ---------------------------------------------------------------------------------------------------

def test_from_tensor_slices_structures_and_spec():
    x, y = np.arange(12, dtype=np.float32).reshape(6, 2), np.arange(6)
    ds = Dataset.from_tensor_slices((x, y))
    assert ds.cardinality() == 6 and len(ds) == 6
    assert ds.element_spec == (TensorSpec((2,), np.float32), TensorSpec((), np.int64))
    first = next(iter(ds))
    assert isinstance(first, tuple) and first[0].tolist() == [0.0, 1.0] and first[1] == 0
    d = Dataset.from_tensor_slices({"a": x, "b": y})
    element = next(iter(d))
    assert set(element) == {"a", "b"} and element["b"] == 0


def test_python_values_take_tf_dtypes():
    assert next(iter(Dataset.from_tensor_slices([1, 2]))).dtype == np.int32
    assert next(iter(Dataset.from_tensor_slices([1.5, 2.0]))).dtype == np.float32
    assert next(iter(Dataset.from_tensors(3.0))).dtype == np.float32
    # a list is a value (stacked into one array), not a structure
    ds = Dataset.from_tensor_slices([[1, 2], [3, 4]])
    assert ds.element_spec == TensorSpec((2,), np.int32)


def test_strings_pass_through():
    ds = Dataset.from_tensor_slices(np.array(["a", "bb", "ccc"])).batch(2)
    batches = list(ds)
    assert batches[0].dtype.kind == "U" and batches[0].tolist() == ["a", "bb"]
    assert values(ds.unbatch()) == ["a", "bb", "ccc"]


def test_from_tensor_slices_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="same first dimension"):
        Dataset.from_tensor_slices((np.zeros(3), np.zeros(4)))


def test_range_and_zip_and_enumerate():
    assert values(Dataset.range(5)) == [0, 1, 2, 3, 4]
    assert values(Dataset.range(2, 10, 3)) == [2, 5, 8]
    assert Dataset.range(2, 10, 3).cardinality() == 3
    assert next(iter(Dataset.range(3))).dtype == np.int64
    z = Dataset.zip(Dataset.range(3), Dataset.range(10, 20))
    assert [tuple(map(int, e)) for e in z] == [(0, 10), (1, 11), (2, 12)]
    assert z.cardinality() == 3
    assert Dataset.zip((Dataset.range(3), Dataset.range(1).repeat())).cardinality() == 3
    assert Dataset.zip((Dataset.range(3), Dataset.range(5).filter(lambda x: x > 0))).cardinality() \
        == UNKNOWN_CARDINALITY
    zd = Dataset.zip({"a": Dataset.range(2), "b": Dataset.range(2)})
    assert [sorted(e) for e in zd] == [["a", "b"], ["a", "b"]]
    assert [(int(i), int(v)) for i, v in Dataset.range(10, 13).enumerate(start=5)] == [(5, 10), (6, 11), (7, 12)]


def test_from_generator_checks_signature():
    def gen():
        for i in range(3):
            yield np.full((2,), i), i

    sig = (TensorSpec(shape=(2,), dtype=np.float32), TensorSpec(shape=(), dtype=np.int32))
    ds = Dataset.from_generator(gen, output_signature=sig)
    assert ds.cardinality() == UNKNOWN_CARDINALITY and ds.element_spec == sig
    out = list(ds)
    assert out[2][0].dtype == np.float32 and out[2][1].dtype == np.int32 and out[2][0].tolist() == [2.0, 2.0]
    assert len(list(ds)) == 3  # the generator is called anew for each pass
    bad = Dataset.from_generator(lambda: iter([np.zeros(3)]), output_signature=TensorSpec((2,), np.float32))
    with pytest.raises(ValueError, match="shape"):
        list(bad)
    with pytest.raises(TypeError):
        Dataset.from_generator(gen)


def test_list_files_sorted_or_shuffled(tmp_path):
    for name in ("b.txt", "a.txt", "c.txt", "d.dat"):
        (tmp_path / name).write_text(name)
    ds = Dataset.list_files(str(tmp_path / "*.txt"), shuffle=False)
    assert values(ds) == [str(tmp_path / n) for n in ("a.txt", "b.txt", "c.txt")]
    shuffled = Dataset.list_files(str(tmp_path / "*.txt"), seed=3)
    assert sorted(values(shuffled)) == values(ds)
    with pytest.raises(FileNotFoundError):
        Dataset.list_files(str(tmp_path / "*.png"))


# ----- transformations --------------------------------------------------------------------------------------------

def test_map_unpacks_tuples_and_list_results_become_tuples():
    ds = Dataset.from_tensor_slices((np.arange(3), np.arange(3) * 10)).map(lambda a, b: [a + b, b])
    assert [tuple(map(int, e)) for e in ds] == [(0, 0), (11, 10), (22, 20)]
    d = Dataset.from_tensor_slices({"a": np.arange(3)}).map(lambda e: e["a"] * 2)
    assert values(d) == [0, 2, 4]


@pytest.mark.parametrize("workers", [2, 4, AUTOTUNE])
def test_parallel_map_keeps_order(workers):
    def slow(x):
        time.sleep(0.001 * (int(x) % 3))
        return x * 2

    ds = Dataset.range(50).map(slow, num_parallel_calls=workers)
    assert values(ds) == [2 * i for i in range(50)]
    nondet = Dataset.range(50).map(slow, num_parallel_calls=workers, deterministic=False)
    assert sorted(values(nondet)) == [2 * i for i in range(50)]


def test_filter_take_skip_take_while():
    ds = Dataset.range(10)
    assert values(ds.filter(lambda x: x % 3 == 0)) == [0, 3, 6, 9]
    assert ds.filter(lambda x: x > 1).cardinality() == UNKNOWN_CARDINALITY
    assert values(ds.take(3)) == [0, 1, 2] and ds.take(3).cardinality() == 3
    assert values(ds.take(-1)) == list(range(10)) and ds.take(20).cardinality() == 10
    assert values(ds.skip(7)) == [7, 8, 9] and ds.skip(7).cardinality() == 3
    assert values(ds.skip(-1)) == [] and ds.skip(-1).cardinality() == 0
    assert values(ds.take_while(lambda x: x < 4)) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="scalar boolean"):
        list(ds.filter(lambda x: x))


def test_repeat_and_cardinality_constants():
    ds = Dataset.range(3)
    assert values(ds.repeat(2)) == [0, 1, 2, 0, 1, 2] and ds.repeat(2).cardinality() == 6
    assert ds.repeat().cardinality() == INFINITE_CARDINALITY == -1
    assert UNKNOWN_CARDINALITY == -2 and AUTOTUNE == -1
    assert values(ds.repeat().take(7)) == [0, 1, 2, 0, 1, 2, 0]
    assert ds.repeat().take(7).cardinality() == 7
    assert values(ds.take(0).repeat()) == []  # an empty dataset repeated forever ends
    with pytest.raises(TypeError, match="infinite"):
        len(ds.repeat())
    with pytest.raises(TypeError, match="unknown"):
        len(ds.filter(lambda x: x > 0))


def test_shard():
    ds = Dataset.range(10)
    assert values(ds.shard(3, 0)) == [0, 3, 6, 9] and ds.shard(3, 0).cardinality() == 4
    assert values(ds.shard(3, 2)) == [2, 5, 8] and ds.shard(3, 2).cardinality() == 3
    with pytest.raises(ValueError):
        ds.shard(3, 3)


def test_concatenate():
    ds = Dataset.range(3).concatenate(Dataset.range(10, 12))
    assert values(ds) == [0, 1, 2, 10, 11] and ds.cardinality() == 5
    assert Dataset.range(3).concatenate(Dataset.range(1).repeat()).cardinality() == INFINITE_CARDINALITY
    with pytest.raises(TypeError):
        Dataset.range(3).concatenate(Dataset.from_tensor_slices(np.zeros(3, np.float32)))


def test_interleave_order_matches_tf_documentation():
    # the example of tf.data.Dataset.interleave's documentation
    ds = Dataset.range(1, 6).interleave(lambda x: Dataset.from_tensors(x).repeat(6), cycle_length=2, block_length=4)
    assert values(ds) == [1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 3, 3, 4, 4, 5, 5, 5, 5, 5, 5]
    assert values(Dataset.range(3).flat_map(lambda x: Dataset.range(x))) == [0, 0, 1]


def test_apply_and_reduce():
    ds = Dataset.range(5).apply(lambda d: d.filter(lambda x: x % 2 == 0))
    assert values(ds) == [0, 2, 4]
    assert int(Dataset.range(5).reduce(np.int64(0), lambda s, x: s + x)) == 10


# ----- shuffle ----------------------------------------------------------------------------------------------------

def test_shuffle_buffer_window_and_permutation():
    n, size = 200, 10
    out = values(Dataset.range(n).shuffle(size, seed=0))
    assert sorted(out) == list(range(n)) and out != list(range(n))
    # the i-th output comes from the first i + buffer_size elements
    assert all(v < i + size for i, v in enumerate(out))
    assert values(Dataset.range(n).shuffle(1, seed=0)) == list(range(n))


def test_shuffle_reshuffles_each_iteration_and_seeds_reproduce():
    ds = Dataset.range(100).shuffle(100, seed=5)
    a, b = values(ds), values(ds)
    assert a != b and sorted(a) == sorted(b)
    assert values(Dataset.range(100).shuffle(100, seed=5)) == a
    fixed = Dataset.range(100).shuffle(100, seed=5, reshuffle_each_iteration=False)
    assert values(fixed) == values(fixed)
    # repeat() after shuffle reshuffles each epoch
    epochs = values(Dataset.range(20).shuffle(20, seed=1).repeat(2))
    assert sorted(epochs[:20]) == sorted(epochs[20:]) == list(range(20)) and epochs[:20] != epochs[20:]


def test_shuffle_reproducible_under_set_random_seed():
    convx.utils.set_random_seed(7)
    a = values(Dataset.range(50).shuffle(50).repeat(2))
    convx.utils.set_random_seed(7)
    b = values(Dataset.range(50).shuffle(50).repeat(2))
    assert a == b


# ----- batching ---------------------------------------------------------------------------------------------------

def test_batch_shapes_and_spec():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    ds = Dataset.from_tensor_slices((x, np.arange(10))).batch(4)
    shapes = [(a.shape, b.shape) for a, b in ds]
    assert shapes == [((4, 2), (4,)), ((4, 2), (4,)), ((2, 2), (2,))]
    assert ds.cardinality() == 3
    assert ds.element_spec == (TensorSpec((None, 2), np.float32), TensorSpec((None,), np.int64))
    dropped = Dataset.from_tensor_slices(x).batch(4, drop_remainder=True)
    assert dropped.cardinality() == 2 and dropped.element_spec == TensorSpec((4, 2), np.float32)
    assert [b.shape for b in dropped] == [(4, 2), (4, 2)]
    # batching after a map stacks element by element: same values
    mapped = Dataset.from_tensor_slices(x).map(lambda r: r).batch(4)
    assert all(np.array_equal(a, b) for a, b in zip(mapped, Dataset.from_tensor_slices(x).batch(4)))


def test_batch_rejects_different_shapes():
    ds = Dataset.range(1, 4).map(lambda n: np.zeros(int(n))).batch(3)
    with pytest.raises(ValueError, match="Cannot batch tensors with different shapes in component 0"):
        list(ds)


def test_padded_batch():
    ds = Dataset.range(1, 5).map(lambda n: np.full(int(n), n)).padded_batch(2)
    out = [b.tolist() for b in ds]
    assert out == [[[1, 0], [2, 2]], [[3, 3, 3, 0], [4, 4, 4, 4]]]
    fixed = Dataset.range(1, 4).map(lambda n: np.full(int(n), n)).padded_batch(3, padded_shapes=(5,), padding_values=np.int64(-1))
    assert next(iter(fixed)).tolist() == [[1, -1, -1, -1, -1], [2, 2, -1, -1, -1], [3, 3, 3, -1, -1]]
    assert fixed.element_spec == TensorSpec((None, 5), np.int64)
    with pytest.raises(ValueError, match="smaller"):
        list(Dataset.range(1, 4).map(lambda n: np.full(int(n), n)).padded_batch(3, padded_shapes=(2,)))


def test_unbatch_and_rebatch():
    x = np.arange(10)
    ds = Dataset.from_tensor_slices(x).batch(3)
    assert values(ds.unbatch()) == list(range(10))
    assert Dataset.from_tensor_slices(np.zeros((4, 3, 2))).unbatch().cardinality() == 12
    assert ds.unbatch().cardinality() == UNKNOWN_CARDINALITY
    assert [b.tolist() for b in ds.rebatch(4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [b.tolist() for b in ds.rebatch(4, drop_remainder=True)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert [len(b) for b in ds.rebatch([1, 2])] == [1, 2, 1, 2, 1, 2, 1]
    with pytest.raises(ValueError):
        list(Dataset.range(3).unbatch())


# ----- cache ------------------------------------------------------------------------------------------------------

def test_cache_in_memory_replays_first_pass():
    calls = []
    ds = Dataset.range(5).map(lambda x: calls.append(1) or x).cache()
    assert values(ds) == values(ds) == list(range(5))
    assert len(calls) == 5


def test_cache_to_file(tmp_path):
    calls = []
    name = str(tmp_path / "cache")
    make = lambda: Dataset.from_tensor_slices((np.arange(4.0), np.array(list("abcd")))).map(
        lambda a, b: calls.append(1) or (a, b)).cache(name)
    first = [(float(a), str(b)) for a, b in make()]
    assert (tmp_path / "cache.index").exists()
    again = [(float(a), str(b)) for a, b in make()]
    assert first == again and len(calls) == 4  # the second dataset read the files


def test_cache_to_file_incomplete_pass_leaves_no_index(tmp_path):
    name = str(tmp_path / "cache")
    it = iter(Dataset.range(10).cache(name))
    next(it)
    del it
    gc.collect()
    assert not (tmp_path / "cache.index").exists()
    assert not list(tmp_path.glob("*tmp*"))


# ----- threads ----------------------------------------------------------------------------------------------------

def _data_threads():
    return [t for t in threading.enumerate() if t.name.startswith("convx-data")]


def test_prefetch_same_elements():
    ds = Dataset.range(100).map(lambda x: x + 1, num_parallel_calls=3).batch(7).prefetch(AUTOTUNE)
    assert np.concatenate(list(ds)).tolist() == list(range(1, 101))
    assert ds.cardinality() == 15
    assert values(Dataset.range(5).prefetch(0)) == list(range(5))


def test_worker_errors_reach_consumer_with_traceback():
    def explode(x):
        if x == 13:
            raise KeyError("worker failure at 13")
        return x

    for ds in (Dataset.range(40).map(explode, num_parallel_calls=3),
               Dataset.range(40).map(explode).prefetch(2),
               Dataset.range(40).map(explode, num_parallel_calls=2).batch(4).prefetch(2)):
        seen = []
        with pytest.raises(KeyError, match="worker failure at 13") as info:
            for element in ds:
                seen.append(element)
        frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
        assert "explode" in frames
        assert np.concatenate([np.atleast_1d(s) for s in seen]).tolist() == list(range(len(np.concatenate([np.atleast_1d(s) for s in seen]))))
    assert not _data_threads()


@pytest.mark.parametrize("batch, buffer, drop", [(7, 50, False), (8, 10, True), (1, 3, False), (64, 100, False)])
def test_batch_of_shuffled_arrays_equals_the_element_path(batch, buffer, drop):
    # shuffle().batch() over arrays gathers each batch by index; an identity map forces element-wise batching
    x, y = np.arange(150, dtype=np.float32).reshape(50, 3), np.arange(50)
    base = Dataset.from_tensor_slices((x, {"y": y, "flag": y % 3 == 0}))
    for kwargs in ({"seed": 3}, {"seed": 5, "reshuffle_each_iteration": False}):
        gathered = base.shuffle(buffer, **kwargs).batch(batch, drop_remainder=drop)
        stacked = base.shuffle(buffer, **kwargs).map(lambda a, b: (a, b)).batch(batch, drop_remainder=drop)
        assert gathered.cardinality() == stacked.cardinality()
        for _ in range(2):  # a second epoch reshuffles both the same way
            pairs = list(zip(gathered, stacked, strict=True))
            for (xa, da), (xb, db) in pairs:
                assert xa.dtype == xb.dtype and xa.shape == xb.shape and np.array_equal(xa, xb)
                assert all(da[k].dtype == db[k].dtype and np.array_equal(da[k], db[k]) for k in db)


def test_autotune_map_runs_cheap_functions_inline_and_slow_ones_on_the_pool(monkeypatch):
    from convx.data import parallel

    # a bar far above a cheap call's time even on a loaded machine, far below a slow call's sleep
    monkeypatch.setattr(parallel, "_INLINE_SECONDS", 0.01)
    seen = []

    def record(x):
        seen.append(threading.current_thread().name)
        if int(x) >= 40:  # from here on each call is slow: AUTOTUNE hands them to its threads
            time.sleep(0.03)
        return x * 2

    ds = Dataset.range(64).map(record, num_parallel_calls=AUTOTUNE)
    assert values(ds) == [2 * i for i in range(64)]
    assert set(seen[:40]) == {threading.current_thread().name}
    assert any(name.startswith("convx-data-map") for name in seen[48:])
    assert not _data_threads()
    seen.clear()
    assert values(Dataset.range(30).map(lambda x: record(x) // 2, num_parallel_calls=AUTOTUNE)) == list(range(30))
    assert set(seen) == {threading.current_thread().name}


def test_autotune_map_inline_errors_and_early_close():
    def explode(x):
        if x == 5:
            raise KeyError("inline failure at 5")
        return x

    with pytest.raises(KeyError, match="inline failure at 5") as info:
        list(Dataset.range(20).map(explode, num_parallel_calls=AUTOTUNE))
    assert "explode" in [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    closed = []

    def source():
        try:
            yield from range(1000)
        finally:
            closed.append(True)

    ds = Dataset.from_generator(source, output_signature=TensorSpec((), np.int64)).map(
        lambda x: x, num_parallel_calls=AUTOTUNE)
    it = iter(ds)
    assert [int(next(it)) for _ in range(3)] == [0, 1, 2]
    it.close()
    assert closed == [True]


def test_threads_end_when_iterator_dropped():
    before = len(_data_threads())
    ds = Dataset.range(10**6).map(lambda x: x, num_parallel_calls=2).prefetch(4).map(
        lambda x: x, num_parallel_calls=2).prefetch(2)
    it = iter(ds)
    for _ in range(10):
        next(it)
    assert len(_data_threads()) > before
    del it
    gc.collect()
    assert len(_data_threads()) == before
    it = iter(ds)
    next(it)
    it.close()
    assert len(_data_threads()) == before


def test_prefetch_memory_bounded():
    produced = []

    def gen():
        for i in range(1000):
            produced.append(i)
            yield i

    ds = Dataset.from_generator(gen, output_signature=TensorSpec((), np.int64)).prefetch(3)
    it = iter(ds)
    next(it)
    time.sleep(0.2)
    # one consumed, at most 3 buffered, one held by the producer waiting to put
    assert len(produced) <= 1 + 3 + 1
    it.close()


@pytest.mark.slow
def test_streams_10_gb_with_flat_rss():
    # 10 GB of generated data through map/batch/prefetch: the resident set stays flat
    import resource

    chunk = 1 << 20  # 1 MiB elements, 10240 of them
    ds = (Dataset.range(10 * 1024).map(lambda i: np.full(chunk // 8, i, dtype=np.float64),
                                       num_parallel_calls=2).batch(8).prefetch(2))
    rss = []
    total = 0
    for k, batch in enumerate(ds):
        total += batch.nbytes
        if k in (20, 1270):
            rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    assert total == 10 * 1024 * chunk
    assert rss[1] - rss[0] < 64 * 1024  # KiB: peak grew by less than 64 MB over 10 GB streamed
