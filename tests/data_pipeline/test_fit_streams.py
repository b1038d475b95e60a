"""fit / evaluate / predict fed by Datasets, generators and PyDatasets; sample and class weights."""

import threading

import numpy as np
import pytest
from conftest import optional

import convx
from convx import layers
from convx.data import Dataset


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype(np.float32)
    y = rng.integers(0, 3, 96)
    w = rng.uniform(0.1, 2.0, 96).astype(np.float32)
    return x, y, w


def make_model(weighted=False, seed=1):
    convx.utils.set_random_seed(seed)
    model = convx.Sequential([convx.Input((6,)), layers.Dense(5, activation="relu"), layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"],
                  weighted_metrics=["accuracy"] if weighted else None)
    return model


def same_weights(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))


def test_dataset_generator_pydataset_train_like_arrays(data):
    x, y, _ = data
    reference = make_model()
    expected = reference.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history

    def gen():
        for _ in range(2):
            for i in range(0, 96, 16):
                yield x[i:i + 16], y[i:i + 16]

    class Batches(convx.utils.PyDataset):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)

        def __len__(self):
            return 6

        def __getitem__(self, i):
            return x[16 * i:16 * (i + 1)], y[16 * i:16 * (i + 1)]

    sources = [
        (Dataset.from_tensor_slices((x, y)).batch(16), {}),
        (Dataset.from_tensor_slices((x, y)).map(lambda a, b: (a, b), num_parallel_calls=2).batch(16).prefetch(2), {}),
        (gen(), {"steps_per_epoch": 6}),
        (Batches(), {"shuffle": False}),
        (Batches(workers=3, max_queue_size=4), {"shuffle": False}),
    ]
    for source, kwargs in sources:
        model = make_model()
        history = model.fit(source, epochs=2, verbose=0, **kwargs).history
        assert history == expected
        assert same_weights(model, reference)


def test_pydataset_in_processes(data):
    x, y, _ = data

    class Batches(convx.utils.Sequence):
        def __init__(self):
            super().__init__(workers=2, use_multiprocessing=True)

        def __len__(self):
            return 6

        def __getitem__(self, i):
            return x[16 * i:16 * (i + 1)], y[16 * i:16 * (i + 1)]

    reference = make_model()
    reference.fit(x, y, batch_size=16, shuffle=False, verbose=0)
    model = make_model()
    model.fit(Batches(), shuffle=False, verbose=0)
    assert same_weights(model, reference)


def test_pydataset_shuffles_batches_and_calls_epoch_hooks(data):
    x, y, _ = data
    seen, ends = [], []

    class Batches(convx.utils.PyDataset):
        def __init__(self):  # without super().__init__(): Keras' warning, then the defaults
            pass

        def __len__(self):
            return 6

        def __getitem__(self, i):
            seen.append(i)
            return x[16 * i:16 * (i + 1)], y[16 * i:16 * (i + 1)]

        def on_epoch_end(self):
            ends.append(len(seen))

    with pytest.warns(UserWarning, match="super"):
        make_model().fit(Batches(), epochs=2, verbose=0)
    assert sorted(seen[:6]) == sorted(seen[6:]) == list(range(6)) and ends == [6, 12]


def test_steps_per_epoch_keeps_iterator_across_epochs(data):
    x, y, _ = data
    ds = Dataset.from_tensor_slices((x, y)).batch(16).repeat()
    model = make_model()
    model.fit(ds, epochs=3, steps_per_epoch=2, verbose=0)
    reference = make_model()
    reference.fit(x, y, batch_size=16, shuffle=False, verbose=0)  # 6 batches = the 3 x 2 steps above
    assert same_weights(model, reference)


def test_generator_running_out_stops_training_with_warning(data):
    x, y, _ = data
    gen = ((x[i:i + 16], y[i:i + 16]) for i in range(0, 96, 16))
    model = make_model()
    with pytest.warns(UserWarning, match="ran out of data"):
        history = model.fit(gen, epochs=5, steps_per_epoch=4, verbose=0)
    assert len(history.history["loss"]) == 2


def test_validation_data_streams_and_evaluate_predict(data):
    x, y, w = data
    model = make_model()
    val = Dataset.from_tensor_slices((x[:32], y[:32])).batch(8)
    history = model.fit(x, y, validation_data=val, verbose=0, shuffle=False).history
    assert set(history) == {"accuracy", "loss", "val_accuracy", "val_loss"}
    def loss(data, y=None):
        return model.evaluate(data, y, verbose=0, return_dict=True)["loss"]

    assert history["val_loss"][0] == pytest.approx(loss(x[:32], y[:32]), rel=1e-6)
    assert loss(val) == pytest.approx(loss(x[:32], y[:32]), rel=1e-6)
    from_stream = model.predict(Dataset.from_tensor_slices(x).batch(10), verbose=0)
    np.testing.assert_allclose(from_stream, model.predict(x, verbose=0), rtol=1e-6)
    # predict ignores the targets of (x, y) elements
    np.testing.assert_allclose(model.predict(Dataset.from_tensor_slices((x, y)).batch(32), verbose=0),
                               from_stream, rtol=1e-6)
    assert model.evaluate(Dataset.from_tensor_slices((x, y)).batch(32).repeat(), steps=1, verbose=0,
                          return_dict=True)["loss"] == pytest.approx(loss(x[:32], y[:32]), rel=1e-6)
    with pytest.raises(ValueError, match="should not be passed"):
        model.fit(val, y, verbose=0)


def test_dict_inputs_from_dataset():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(40, 3)).astype(np.float32), rng.normal(size=(40, 2)).astype(np.float32)
    y = rng.normal(size=(40, 1)).astype(np.float32)

    def build():
        convx.utils.set_random_seed(4)
        ia, ib = convx.Input((3,), name="a"), convx.Input((2,), name="b")
        out = layers.Dense(1)(layers.Concatenate()([ia, ib]))
        model = convx.Model([ia, ib], out)
        model.compile("sgd", "mse")
        return model

    reference = build()
    reference.fit({"a": a, "b": b}, y, batch_size=8, shuffle=False, verbose=0)
    model = build()
    model.fit(Dataset.from_tensor_slices(({"a": a, "b": b}, y)).batch(8), verbose=0)
    assert same_weights(model, reference)


def test_sample_weight_scales_loss_and_weighted_metrics(data):
    x, y, w = data
    model = make_model(weighted=True)
    logs = model.evaluate(x, y, sample_weight=w, batch_size=96, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)
    losses = -np.log(p[np.arange(96), y])
    hits = (p.argmax(1) == y).astype(np.float64)
    assert logs["loss"] == pytest.approx(np.mean(losses * w), rel=1e-5)  # sum over the batch size, as Keras 3
    assert logs["weighted_accuracy"] == pytest.approx(np.sum(hits * w) / np.sum(w), rel=1e-6)
    assert logs["accuracy"] == pytest.approx(hits.mean(), rel=1e-6)
    same = model.evaluate(Dataset.from_tensor_slices((x, y, w)).batch(96), verbose=0, return_dict=True)
    assert same == pytest.approx(logs, rel=1e-6)


def test_class_weight_is_sample_weight_of_the_class(data):
    x, y, _ = data
    table = {0: 2.0, 1: 0.5, 2: 1.5}
    a = make_model()
    a.fit(x, y, class_weight=table, batch_size=16, shuffle=False, verbose=0)
    b = make_model()
    b.fit(x, y, sample_weight=np.array([table[int(c)] for c in y], np.float32), batch_size=16, shuffle=False, verbose=0)
    assert same_weights(a, b)
    c = make_model()
    c.fit(Dataset.from_tensor_slices((x, y)).batch(16), class_weight=table, verbose=0)
    assert same_weights(a, c)
    with pytest.raises(ValueError, match="at the same time"):
        make_model().fit(x, y, class_weight=table, sample_weight=np.ones(96), verbose=0)


def test_sample_and_class_weight_match_keras(data):
    tf = optional("tensorflow", "test")
    keras = tf.keras
    x, y, w = data
    model = make_model(weighted=True)
    initial = model.get_weights()
    k = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="relu"),
                          keras.layers.Dense(3, activation="softmax")])
    for kwargs in ({"sample_weight": w}, {"class_weight": {0: 2.0, 1: 0.5, 2: 1.5}}):
        model.set_weights(initial)
        k.set_weights(initial)
        model.compile(convx.optimizers.SGD(0.1), "sparse_categorical_crossentropy", weighted_metrics=["accuracy"])
        k.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", weighted_metrics=["accuracy"])
        ours = model.fit(x, y, batch_size=16, shuffle=False, verbose=0, **kwargs).history
        theirs = k.fit(x, y, batch_size=16, shuffle=False, verbose=0, **kwargs).history
        for key in theirs:
            assert ours[key] == pytest.approx(theirs[key], rel=1e-4), key
        for p, q in zip(model.get_weights(), k.get_weights()):
            np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-6)


def test_progress_bar_unknown_steps(data):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    x, y, _ = data
    gen = ((x[i:i + 16], y[i:i + 16]) for i in range(0, 96, 16))
    screen = Terminal()
    make_model().fit(gen, verbose=1, callbacks=[convx.callbacks.ProgbarLogger(stream=screen, clock=lambda: 0.0)])
    assert "      1/Unknown" in screen.getvalue()
    screen = Terminal()
    make_model().fit(Dataset.from_tensor_slices((x, y)).batch(16), verbose=1,
                     callbacks=[convx.callbacks.ProgbarLogger(stream=screen, clock=lambda: 0.0)])
    assert "1/6" in screen.getvalue() and "Unknown" not in screen.getvalue()


def test_no_threads_left_after_fit(data):
    x, y, _ = data
    ds = Dataset.from_tensor_slices((x, y)).map(lambda a, b: (a, b), num_parallel_calls=2).batch(16).prefetch(2)
    model = make_model()
    model.fit(ds.repeat(), steps_per_epoch=2, epochs=2, verbose=0)
    model.fit(ds, epochs=1, verbose=0)
    import gc

    gc.collect()
    assert not [t for t in threading.enumerate() if t.name.startswith("convx-data")]
