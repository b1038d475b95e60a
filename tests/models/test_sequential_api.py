"""Sequential's Keras 3 behaviour: building, summary, compile/fit/evaluate/predict, logs, errors, seeding."""

import numpy as np
import pytest

import convx
from convx import layers as L

SEED_SUMMARY = """\
Model: "sequential"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ conv2d (Conv2D)                 │ (None, 26, 26, 32)     │           320 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ max_pooling2d (MaxPooling2D)    │ (None, 13, 13, 32)     │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_1 (Conv2D)               │ (None, 11, 11, 64)     │        18,496 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ max_pooling2d_1 (MaxPooling2D)  │ (None, 5, 5, 64)       │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_2 (Conv2D)               │ (None, 3, 3, 128)      │        73,856 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ max_pooling2d_2 (MaxPooling2D)  │ (None, 1, 1, 128)      │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ flatten (Flatten)               │ (None, 128)            │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense (Dense)                   │ (None, 128)            │        16,512 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense_1 (Dense)                 │ (None, 10)             │         1,290 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 110,474 (431.54 KB)
 Trainable params: 110,474 (431.54 KB)
 Non-trainable params: 0 (0.00 B)
"""


def seed_model():
    tf = type("tf", (), {"keras": convx})  # the article's code, verbatim below
    return tf.keras.Sequential([
        tf.keras.layers.Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1)),
        tf.keras.layers.MaxPooling2D((2, 2)),
        tf.keras.layers.Conv2D(64, (3, 3), activation='relu'),
        tf.keras.layers.MaxPooling2D((2, 2)),
        tf.keras.layers.Conv2D(128, (3, 3), activation='relu'),
        tf.keras.layers.MaxPooling2D((2, 2)),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(128, activation='relu'),
        tf.keras.layers.Dense(10, activation='softmax')
    ])


def small_model(classes=3, **dense_kwargs):
    return convx.Sequential([
        L.Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1)), L.MaxPooling2D(), L.Flatten(),
        L.Dense(classes, activation="softmax", **dense_kwargs),
    ])


@pytest.fixture(autouse=True)
def fresh_names():
    convx.utils.clear_session()


def data(rng, n=40, classes=3):
    return rng.random((n, 8, 8, 1), dtype=np.float32), rng.integers(0, classes, n)


def summary_of(model):
    lines = []
    model.summary(print_fn=lines.append)
    return "".join(lines)


def test_seed_model_summary_matches_keras(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # Keras' width rule: min(88, terminal - 4)
    model = seed_model()
    assert model.count_params() == 110474
    assert [layer.count_params() for layer in model.layers] == [320, 0, 18496, 0, 73856, 0, 0, 16512, 1290]
    assert summary_of(model) == SEED_SUMMARY


def test_summary_after_training_counts_optimizer_state(monkeypatch, rng):
    monkeypatch.setenv("COLUMNS", "80")
    model = seed_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.train_on_batch(rng.random((2, 28, 28, 1)), np.array([1, 2]))
    tail = summary_of(model).splitlines()[-4:]
    assert tail == [
        " Total params: 331,424 (1.26 MB)",
        " Trainable params: 110,474 (431.54 KB)",
        " Non-trainable params: 0 (0.00 B)",
        " Optimizer params: 220,950 (863.09 KB)",
    ]


def test_summary_wide_terminal_unbuilt_and_wrapping(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    model = convx.Sequential([L.GlobalAveragePooling2D(), L.Dense(2)])
    text = summary_of(model).splitlines()
    assert len(text[1]) == 88
    assert text[2].startswith("┃ Layer (type)") and text[2].endswith("Param # ┃")
    assert text[4].split("│")[1].strip() == "global_average_pooling2d"  # wrapped onto two lines
    assert text[5].split("│")[1].strip() == "(GlobalAveragePooling2D)"
    assert text[4].split("│")[2].strip() == "?" and text[4].split("│")[3].strip() == "0 (unbuilt)"


def test_names_are_numbered_like_keras():
    model = seed_model()
    assert model.name == "sequential"
    assert [layer.name for layer in model.layers][:4] == ["conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1"]
    assert convx.Sequential().name == "sequential_1"
    assert L.ReLU().name == "re_lu" and L.GlobalMaxPooling2D().name == "global_max_pooling2d"
    with pytest.raises(ValueError, match="unique names.*'dense'"):
        convx.Sequential([L.Dense(2, name="dense"), L.Dense(2, name="dense")])


def test_input_first_and_lazy_build(rng):
    model = convx.Sequential([convx.Input(shape=(8, 8, 1)), L.Flatten(), L.Dense(3)])
    assert model.built and model.output_shape == (None, 3) and len(model.layers) == 2
    lazy = convx.Sequential([L.Flatten(), L.Dense(3)])
    assert not lazy.built
    out = lazy.predict(rng.random((5, 4, 2)), verbose=0)
    assert lazy.built and out.shape == (5, 3) and lazy.layers[1].kernel.shape == (8, 3)
    lazy.add(L.Dense(2))
    assert lazy.predict(rng.random((5, 4, 2)), verbose=0).shape == (5, 2)


def test_fit_history_keys_epochs_params_and_running_means(rng):
    convx.utils.set_random_seed(1)
    x, y = data(rng, 50)
    model = small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0, validation_data=(x[:10], y[:10]))
    assert history is model.history
    assert list(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert history.epoch == [0, 1, 2]
    assert history.params["epochs"] == 3 and history.params["steps"] == 4
    assert all(len(values) == 3 for values in history.history.values())
    assert all(isinstance(v, float) for values in history.history.values() for v in values)


def test_epoch_loss_is_the_running_mean_over_batches(rng):
    # with a negligible learning rate the weights stay put, so the epoch mean must equal evaluate()
    x, y = data(rng, 45)
    model = small_model()
    model.compile(optimizer=convx.optimizers.SGD(learning_rate=1e-30), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=10, epochs=1, verbose=0, shuffle=False)
    loss, acc = model.evaluate(x, y, batch_size=45, verbose=0)
    np.testing.assert_allclose(history.history["loss"][0], loss, rtol=1e-6)
    np.testing.assert_allclose(history.history["accuracy"][0], acc)
    batch_loss = model.evaluate(x[40:], y[40:], verbose=0)[0]
    assert abs(batch_loss - loss) > 1e-4  # the last batch alone differs from the epoch mean


def test_validation_split_takes_the_last_samples(rng):
    x, y = data(rng, 40)
    model = small_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["acc"])
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0, validation_split=0.25)
    assert list(history.history) == ["acc", "loss", "val_acc", "val_loss"]
    assert history.params["steps"] == 4  # 30 training samples
    tail = model.evaluate(x[30:], y[30:], verbose=0, return_dict=True)
    head = model.evaluate(x[:10], y[:10], verbose=0, return_dict=True)
    np.testing.assert_allclose(history.history["val_loss"][0], tail["loss"], rtol=1e-6)
    assert abs(history.history["val_loss"][0] - head["loss"]) > 1e-4
    with pytest.raises(ValueError, match="not sufficient to split"):
        model.fit(x[:1], y[:1], validation_split=0.4, verbose=0)


def test_evaluate_predict_and_batch_methods(rng):
    x, y = data(rng, 30)
    model = small_model()
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    result = model.evaluate(x, y, verbose=0)
    assert isinstance(result, list) and len(result) == 2
    assert model.evaluate(x, y, verbose=0, return_dict=True) == {"accuracy": result[1], "loss": result[0]}
    probs = model.predict(x, batch_size=7, verbose=0)
    np.testing.assert_allclose(probs, model.predict(x, verbose=0), rtol=1e-6)
    np.testing.assert_allclose(probs, model.predict_on_batch(x), rtol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(result[1], np.mean(probs.argmax(1) == y))
    before = model.test_on_batch(x, y)
    model.train_on_batch(x, y, return_dict=True)
    assert model.evaluate(x, y, verbose=0)[0] != before[0]
    loss_only = small_model()
    loss_only.compile(loss="sparse_categorical_crossentropy")
    assert isinstance(loss_only.evaluate(x, y, verbose=0), float)


def test_accuracy_resolves_from_shapes_like_keras(rng):
    x = rng.random((12, 8, 8, 1), dtype=np.float32)
    labels = rng.integers(0, 3, 12)
    onehot = convx.utils.to_categorical(labels, 3)
    cat = small_model()
    cat.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    sparse = small_model()
    sparse.set_weights(cat.get_weights())
    sparse.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    a = cat.evaluate(x, onehot, verbose=0)
    b = sparse.evaluate(x, labels, verbose=0)
    np.testing.assert_allclose(a, b, rtol=1e-5)
    assert type(cat._metric_objects[0][2]).__name__ == "CategoricalAccuracy"
    binary = convx.Sequential([L.Flatten(input_shape=(8, 8, 1)), L.Dense(1, activation="sigmoid")])
    binary.compile(loss="binary_crossentropy", metrics=["accuracy"])
    acc = binary.evaluate(x, labels % 2, verbose=0)[1]
    np.testing.assert_allclose(acc, np.mean((binary.predict(x, verbose=0)[:, 0] > 0.5) == (labels % 2)))


def test_weights_roundtrip_and_config(rng):
    model = small_model()
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(3, 3, 1, 4), (4,), (36, 3), (3,)]
    assert [w.path for w in model.weights] == ["conv2d/kernel", "conv2d/bias", "dense/kernel", "dense/bias"]
    other = convx.Sequential.from_config(model.get_config())
    assert [w.shape for w in other.get_weights()] == [w.shape for w in weights]
    other.set_weights(weights)
    x = rng.random((4, 8, 8, 1))
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ValueError, match=r"conv2d/kernel.*\(3, 3, 1, 4\).*\(3, 3, 1, 5\)"):
        model.set_weights([np.zeros((3, 3, 1, 5))] + weights[1:])
    with pytest.raises(ValueError, match="expects 4 weight arrays, received 1"):
        model.set_weights(weights[:1])


def test_flat_buffer_holds_all_trainable_weights():
    model = small_model()
    assert model._params.size == model.count_params()
    for var in model.trainable_weights:
        assert np.shares_memory(var.value, model._params) and np.shares_memory(var.grad, model._grads)


def test_inputs_of_any_numeric_dtype_are_cast_once(rng):
    x, y = data(rng, 20)
    x8 = (x * 255).astype(np.uint8)
    model = small_model()
    model.compile(loss="sparse_categorical_crossentropy")
    np.testing.assert_array_equal(model.predict(x8, verbose=0), model.predict(x8.astype(np.float32), verbose=0))
    np.testing.assert_allclose(model.evaluate(x8.astype(np.float64), y.astype(np.uint8), verbose=0),
                               model.evaluate(x8, y, verbose=0), rtol=1e-6)


def test_set_random_seed_makes_fit_reproducible(rng):
    x, y = data(rng, 40)

    def run(seed):
        convx.utils.set_random_seed(seed)
        model = convx.Sequential([L.Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1)), L.Flatten(),
                                  L.Dropout(0.5), L.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        return model.get_weights()

    first, again, other = run(5), run(5), run(6)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))


def test_callback_can_stop_training(rng):
    x, y = data(rng, 40)
    seen = []

    class StopAfterTwo(convx.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)
            if batch == 1:
                self.model.stop_training = True

    model = small_model()
    model.compile(loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=[StopAfterTwo()])
    assert seen == [0, 1] and history.epoch == [0]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(optimizer="adamwx"), "Could not interpret optimizer identifier: 'adamwx'"),
        (dict(loss="hinge_loss"), "Could not interpret loss identifier: 'hinge_loss'"),
        (dict(loss="mse", metrics=["f1"]), "Could not interpret metric identifier: 'f1'"),
    ],
)
def test_compile_rejects_unknown_strings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small_model().compile(**kwargs)


def test_bad_data_is_rejected_before_any_work(rng):
    x, y = data(rng, 20)
    model = small_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    weights = model.get_weights()
    with pytest.raises(ValueError, match=r'layer "sequential".*expected shape=\(None, 8, 8, 1\), found shape=\(20, 8, 8\)'):
        model.fit(x[..., 0], y, verbose=0)
    with pytest.raises(ValueError, match=r"labels y must be in \[0, 3\).*received labels in \[1, 3\]"):
        model.fit(x, np.where(y == 0, 3, y), verbose=0)
    with pytest.raises(ValueError, match="'x' sizes: 20, 'y' sizes: 19"):
        model.fit(x, y[:19], verbose=0)
    bad = x.copy()
    bad[3, 2, 2, 0] = np.nan
    with pytest.raises(ValueError, match="`x` contains NaN or infinite"):
        model.fit(bad, y, verbose=0)
    with pytest.raises(ValueError, match="`x` contains NaN or infinite"):
        model.predict(np.full((2, 8, 8, 1), np.inf), verbose=0)
    with pytest.raises(ValueError, match="validation_data\\[1\\]"):
        model.fit(x, y, validation_data=(x, y[:5]), verbose=0)
    with pytest.raises(ValueError, match=r"expects targets y of shape \(N,\) \+ \(3,\)"):
        mse_model = small_model()
        mse_model.compile(loss="mse")
        mse_model.fit(x, y[:, None] * np.ones((1, 2)), verbose=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="non-integer"):
        model.fit(x, y + 0.5, verbose=0)
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_fit_before_compile_raises(rng):
    x, y = data(rng, 4)
    with pytest.raises(RuntimeError, match="compile"):
        small_model().fit(x, y, verbose=0)
