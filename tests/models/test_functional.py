"""Functional models: graphs of layer calls against PyTorch float64, config and file round trips, errors."""

import json

import numpy as np
import pytest

import convx
from convx import layers as L
from convx.models import plan as plan_module
from thread_identity import assert_same_for_any_thread_count
from torch_reference import TorchGraph


@pytest.fixture(autouse=True)
def fresh_names():
    convx.utils.clear_session()


# ----- graphs -----------------------------------------------------------------------------------------------------
# Each builder returns (model, inputs, targets, losses, loss_weights); losses are 'sce' (sparse categorical
# cross-entropy on a softmax output) or 'mse' per output.

def residual(rng):
    inputs = convx.Input(shape=(8, 8, 3))
    x = L.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    y = L.Conv2D(4, 3, padding="same")(x)
    x = L.Activation("relu")(L.Add()([x, y]))
    shortcut = L.Conv2D(6, 1, strides=2)(x)
    y = L.Conv2D(6, 3, strides=2, padding="same", activation="relu")(x)
    x = L.Add()([L.Conv2D(6, 3, padding="same")(y), shortcut])
    x = L.MaxPooling2D()(L.Activation("relu")(x))
    outputs = L.Dense(3, activation="softmax")(L.Flatten()(x))
    return convx.Model(inputs, outputs), [rng.random((6, 8, 8, 3))], [rng.integers(0, 3, 6)], ["sce"], None


def inception(rng):
    inputs = convx.Input(shape=(7, 7, 2))
    branches = [L.Conv2D(3, 1, activation="relu")(inputs), L.Conv2D(4, 3, padding="same", activation="relu")(inputs),
                L.Conv2D(2, 5, padding="same", activation="tanh")(inputs)]
    x = L.Concatenate()(branches)
    x = L.Conv2D(5, 3, activation="relu")(x)
    x = L.MaxPooling2D()(x)  # conv + pooling fused in the plan
    outputs = L.Dense(4, activation="softmax")(L.GlobalAveragePooling2D()(x))
    return convx.Model(inputs, outputs), [rng.random((5, 7, 7, 2))], [rng.integers(0, 4, 5)], ["sce"], None


def text_cnn(rng):
    inputs = convx.Input(shape=(12, 4))
    pooled = [L.GlobalMaxPooling1D()(L.Conv1D(3, width, activation="relu")(inputs)) for width in (2, 3, 4)]
    outputs = L.Dense(2, activation="softmax")(L.concatenate(pooled))
    return convx.Model(inputs, outputs), [rng.standard_normal((6, 12, 4))], [rng.integers(0, 2, 6)], ["sce"], None


def shared_and_merges(rng):
    a, b = convx.Input(shape=(5,), name="a"), convx.Input(shape=(5,), name="b")
    shared = L.Dense(4, activation="tanh")
    ha, hb = shared(a), shared(b)  # one layer, two calls: gradients add up
    merged = [L.Subtract()([ha, hb]), L.Multiply()([ha, hb, ha]), L.Average()([ha, hb]), L.Maximum()([ha, hb]),
              L.Minimum()([ha, hb])]
    x = L.Concatenate()(merged)
    out1 = L.Dense(3, activation="softmax", name="classes")(x)
    out2 = L.Dense(2, name="values")(L.add([ha, hb]))
    model = convx.Model([a, b], [out1, out2])
    data = [rng.standard_normal((7, 5)), rng.standard_normal((7, 5))]
    return model, data, [rng.integers(0, 3, 7), rng.standard_normal((7, 2))], ["sce", "mse"], [1.0, 0.5]


def nested(rng):
    inner_in = convx.Input(shape=(6, 6, 2))
    h = L.Conv2D(3, 3, activation="relu")(inner_in)
    inner = convx.Model(inner_in, L.Add()([h, L.Conv2D(3, 3)(inner_in)]), name="block")
    head = convx.Sequential([L.Flatten(), L.Dense(4, activation="relu")], name="head")
    inputs = convx.Input(shape=(6, 6, 2))
    x = head(inner(inputs))
    y = head(inner(L.Activation("sigmoid")(inputs)))  # both nested models called twice
    outputs = L.Dense(3, activation="softmax")(L.Concatenate()([x, y]))
    return convx.Model(inputs, outputs), [rng.random((4, 6, 6, 2))], [rng.integers(0, 3, 4)], ["sce"], None


def random_dag(seed):
    """A random graph of Dense, Activation, Dropout-free merges and a shared layer, two inputs and two outputs."""
    def build(rng):
        width = 4
        tensors = [convx.Input(shape=(width,), name="u"), convx.Input(shape=(width,), name="v")]
        shared = L.Dense(width, activation="tanh")
        for _ in range(int(rng.integers(4, 8))):
            kind = rng.choice(["dense", "shared", "activation", "add", "multiply", "concat", "maximum", "average"])
            picks = [tensors[i] for i in rng.choice(len(tensors), size=min(len(tensors), 2), replace=False)]
            if kind == "dense":
                new = L.Dense(width, activation=str(rng.choice(["relu", "tanh", "sigmoid", "linear"])))(picks[0])
            elif kind == "shared":
                new = shared(picks[0])
            elif kind == "activation":
                new = L.Activation(str(rng.choice(["tanh", "sigmoid"])))(picks[0])
            elif kind == "concat":
                new = L.Dense(width)(L.Concatenate()(picks))
            else:
                merge = {"add": L.Add, "multiply": L.Multiply, "maximum": L.Maximum, "average": L.Average}[kind]
                new = merge()(picks)
            tensors.append(new)
        # the outputs read the last tensor and a random earlier one, so every branch may end in a loss
        out1 = L.Dense(3, activation="softmax")(L.Concatenate()([tensors[-1], tensors[int(rng.integers(2, len(tensors)))]]))
        out2 = L.Dense(2)(L.Add()([tensors[-2], tensors[-1]]))
        model = convx.Model(tensors[:2], [out1, out2])
        data = [rng.standard_normal((6, width)), rng.standard_normal((6, width))]
        return model, data, [rng.integers(0, 3, 6), rng.standard_normal((6, 2))], ["sce", "mse"], [0.7, 1.3]

    build.__name__ = f"random_dag_{seed}"
    return build


GRAPHS = [residual, inception, text_cnn, shared_and_merges, nested] + [random_dag(seed) for seed in range(6)]


def _torch_loss(torch, outputs, targets, losses, weights):
    total = 0.0
    for k, (out, target, loss) in enumerate(zip(outputs, targets, losses)):
        if loss == "sce":
            labels = torch.as_tensor(target)
            value = -torch.log(out[torch.arange(len(labels)), labels]).mean()
        else:
            value = ((out - torch.as_tensor(target, dtype=out.dtype)) ** 2).mean()
        total = total + (1.0 if weights is None else weights[k]) * value
    return total


def _compile(model, losses, weights, learning_rate=0.1):
    names = {"sce": "sparse_categorical_crossentropy", "mse": "mse"}
    loss = [names[loss] for loss in losses]
    model.compile(optimizer=convx.optimizers.SGD(learning_rate), loss=loss if len(loss) > 1 else loss[0],
                  loss_weights=weights)


@pytest.mark.parametrize("build", GRAPHS, ids=lambda build: build.__name__)
def test_forward_gradients_and_one_sgd_step_match_torch_float64(build, torch, rng):
    convx.utils.set_random_seed(3)
    model, inputs, targets, losses, weights = build(rng)
    inputs = [x.astype(np.float32) for x in inputs]
    twin = TorchGraph(torch, model)
    expected = twin.forward(inputs)
    got = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    got = got if isinstance(got, list) else [got]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e.detach().numpy(), rtol=1e-5, atol=1e-6)

    total = _torch_loss(torch, expected, targets, losses, weights)
    total.backward()
    before = model.get_weights()
    _compile(model, losses, weights, learning_rate=0.1)
    loss = model.train_on_batch(inputs if len(inputs) > 1 else inputs[0], targets if len(targets) > 1 else targets[0])
    np.testing.assert_allclose(loss if np.ndim(loss) == 0 else loss[0], float(total.detach()), rtol=1e-5)
    for w0, w1, grad, var in zip(before, model.get_weights(), twin.grads(), model.weights):
        np.testing.assert_allclose((w0 - w1) / 0.1, grad, rtol=2e-3, atol=2e-5, err_msg=var.path)


@pytest.mark.parametrize("build", [residual, shared_and_merges, nested])
def test_training_is_bit_identical_for_any_thread_count(build, rng):
    def train():
        convx.utils.clear_session()
        convx.utils.set_random_seed(7)
        model, inputs, targets, losses, weights = build(np.random.default_rng(5))
        _compile(model, losses, weights)
        x = [a.astype(np.float32) for a in inputs]
        for _ in range(3):
            model.train_on_batch(x, targets if len(targets) > 1 else targets[0])
        return tuple(model.get_weights())

    assert_same_for_any_thread_count(train)


def test_residual_gradient_sums_reach_the_stem_in_a_fixed_order(rng):
    """The stem's output has two readers: its gradient is their sum, made in the plan's reverse order."""
    model, inputs, targets, losses, weights = residual(rng)
    _compile(model, losses, weights)
    plan = model._plan(True, True)
    stem = plan.steps[0]
    assert len(plan.readers[stem.output]) == 2 and stem.in_backward and stem.needed == [False]


# ----- the plan ---------------------------------------------------------------------------------------------------

def test_inference_reuses_memory_without_changing_a_bit(rng, monkeypatch):
    convx.utils.set_random_seed(2)
    model, inputs, *_ = residual(rng)
    x = inputs[0].astype(np.float32)
    shared = model.predict(x, verbose=0)
    plan = model._plan(False, False)
    arenas = {id(s.arena) for s in plan.steps if s.arena is not None}
    assert len(arenas) < len([s for s in plan.steps if s.arena is not None])  # tensors take turns
    monkeypatch.setattr(plan_module.Plan, "_assign_arenas", lambda self: None)
    model._plans.clear()
    np.testing.assert_array_equal(shared, model.predict(x, verbose=0))


def test_sequential_is_a_model_on_the_same_plan():
    model = convx.Sequential([L.Conv2D(4, 3, activation="relu", input_shape=(9, 9, 1)), L.MaxPooling2D(),
                              L.Flatten(), L.Dense(2, activation="softmax")])
    assert isinstance(model, convx.Model)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    steps = model._plan(True, True).steps
    assert [type(s).__name__ for s in steps] == ["ConvPoolStep", "Step", "Step"]
    assert steps[-1].expose_logits  # softmax handed to the loss


# ----- the Keras API ----------------------------------------------------------------------------------------------

def test_input_is_a_symbolic_tensor_and_layers_record_their_calls():
    x = convx.Input(shape=(28, 28, 1), name="image")
    assert isinstance(x, convx.KerasTensor) and x.shape == (None, 28, 28, 1) and x.dtype == "float32"
    conv = L.Conv2D(8, 3)
    y = conv(x)
    assert y.shape == (None, 26, 26, 8) and conv.input is x and conv.output is y
    model = convx.Model(x, y)
    assert model.input is x and model.output is y and model.inputs == [x] and model.outputs == [y]
    assert [layer.name for layer in model.layers] == ["image", conv.name]
    assert model.name == "functional"


def test_sub_model_extracts_features_of_a_sequential_model(rng):
    seq = convx.Sequential([L.Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1), name="conv1"),
                            L.MaxPooling2D(), L.Conv2D(5, 2, name="conv2"), L.Flatten(), L.Dense(2)])
    features = convx.Model(seq.input, seq.get_layer("conv2").output)
    x = rng.random((3, 8, 8, 1)).astype(np.float32)
    conv1, pool, conv2 = seq.layers[:3]
    np.testing.assert_array_equal(features.predict(x, verbose=0), conv2(pool(conv1(x))))
    assert features.count_params() == conv1.count_params() + conv2.count_params()


def test_weights_follow_keras_layer_order(rng):
    # Keras sorts layers by depth from the outputs, then by first visit from the outputs
    a = convx.Input(shape=(4,), name="a")
    left = L.Dense(3, name="left")(a)
    right = L.Dense(3, name="right")(L.Dense(3, name="right_0")(a))
    out = L.Dense(2, name="out")(L.Concatenate(name="cat")([left, right]))
    model = convx.Model(a, out)
    assert [layer.name for layer in model.layers] == ["a", "right_0", "left", "right", "cat", "out"]
    assert [w.path for w in model.weights][:2] == ["right_0/kernel", "right_0/bias"]
    model.set_weights([np.full(w.shape, i, np.float32) for i, w in enumerate(model.weights)])
    assert [float(w.value.flat[0]) for w in model.weights] == list(range(8))


def test_multi_output_losses_weights_and_metrics_log_keras_names(rng):
    convx.utils.set_random_seed(1)
    model, inputs, targets, _, _ = shared_and_merges(rng)
    model.compile(optimizer="adam", loss={"classes": "sparse_categorical_crossentropy", "values": "mse"},
                  loss_weights={"classes": 1.0, "values": 0.5}, metrics={"classes": ["accuracy"], "values": ["mae"]})
    x = [a.astype(np.float32) for a in inputs]
    history = model.fit(x, {"classes": targets[0], "values": targets[1]}, epochs=2, batch_size=4, verbose=0)
    assert sorted(history.history) == ["classes_accuracy", "classes_loss", "loss", "values_loss",
                                       "values_mae"]
    logs = model.evaluate(x, targets, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["loss"], logs["classes_loss"] + 0.5 * logs["values_loss"], rtol=1e-6)
    predictions = model.predict(x, verbose=0)
    assert isinstance(predictions, list) and [p.shape for p in predictions] == [(7, 3), (7, 2)]


def test_dict_inputs_and_outputs(rng):
    a, b = convx.Input(shape=(3,), name="a"), convx.Input(shape=(2,), name="b")
    model = convx.Model({"a": a, "b": b}, {"sum": L.Dense(1, name="sum")(L.Concatenate()([a, b]))})
    x = {"b": rng.random((4, 2)), "a": rng.random((4, 3))}
    out = model.predict(x, verbose=0)
    assert list(out) == ["sum"] and out["sum"].shape == (4, 1)
    np.testing.assert_allclose(out["sum"], model.predict([x["a"], x["b"]], verbose=0)["sum"])


def test_subclassed_model_is_traced_into_the_plan(rng):
    class Residual(convx.Model):
        def __init__(self):
            super().__init__()
            self.conv = L.Conv2D(3, 3, padding="same", activation="relu")
            self.conv2 = L.Conv2D(3, 3, padding="same")
            self.head = [L.Flatten(), L.Dense(2, activation="softmax")]

        def call(self, inputs, training=None):
            x = self.conv(inputs)
            x = L.add([x, self.conv2(x)])
            for layer in self.head:
                x = layer(x)
            return x

    convx.utils.set_random_seed(4)
    model = Residual()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = rng.random((6, 5, 5, 2)).astype(np.float32), rng.integers(0, 2, 6)
    model.fit(x, y, epochs=1, batch_size=3, verbose=0)
    assert [layer.name for layer in model.layers] == ["conv2d", "conv2d_1", "flatten", "dense"]
    assert [w.path for w in model.weights][0] == "conv2d/kernel"
    np.testing.assert_array_equal(model(x), model.predict(x, verbose=0))


def test_subclassed_call_with_other_python_says_so():
    class Bad(convx.Model):
        def __init__(self):
            super().__init__()
            self.dense = L.Dense(2)

        def call(self, inputs):
            return np.sin(self.dense(inputs))  # no convx op: NumPy cannot run on a symbolic tensor

    with pytest.raises(TypeError, match="NumPy's sin.*symbolic KerasTensor.*convx layers and convx.ops"):
        Bad().predict(np.zeros((2, 3)), verbose=0)

    class Arithmetic(Bad):
        def call(self, inputs):
            return np.tanh(self.dense(inputs)) * 2  # convx ops, through NumPy's ufunc and Python's operator

    model = Arithmetic()
    x = np.ones((2, 3), np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), np.tanh(model.dense(x)) * 2, rtol=1e-6)


def test_config_json_and_clone_round_trips(rng):
    model, inputs, *_ = shared_and_merges(rng)
    x = [a.astype(np.float32) for a in inputs]
    expected = model.predict(x, verbose=0)
    for rebuilt in (convx.Model.from_config(model.get_config()),
                    convx.models.model_from_json(model.to_json()), convx.models.clone_model(model)):
        assert [layer.name for layer in rebuilt.layers] == [layer.name for layer in model.layers]
        assert rebuilt.get_config() == model.get_config()
        rebuilt.set_weights(model.get_weights())
        for got, want in zip(rebuilt.predict(x, verbose=0), expected):
            np.testing.assert_array_equal(got, want)
    config = json.loads(model.to_json())
    assert config["class_name"] == "Functional"
    assert config["config"]["input_layers"] == [["a", 0, 0], ["b", 0, 0]]
    assert config["config"]["output_layers"] == [["classes", 0, 0], ["values", 0, 0]]


@pytest.mark.parametrize("build", [residual, nested, shared_and_merges])
def test_save_and_load_round_trip(build, rng, tmp_path):
    convx.utils.set_random_seed(9)
    model, inputs, targets, losses, weights = build(rng)
    _compile(model, losses, weights)
    x = [a.astype(np.float32) for a in inputs]
    y = targets if len(targets) > 1 else targets[0]
    model.fit(x, y, epochs=1, batch_size=3, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = convx.models.load_model(path)
    for got, want in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(got, want)
    model.fit(x, y, epochs=1, batch_size=3, verbose=0, shuffle=False)
    loaded.fit(x, y, epochs=1, batch_size=3, verbose=0, shuffle=False)
    for got, want in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(got, want)  # the optimizer state came back too


# Printed by Keras 3.15.1 (TensorFlow backend) for the same model, line_length=76
KERAS_RESIDUAL_SUMMARY = """\
Model: "functional"
┏━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┓
┃ Layer (type)        ┃ Output Shape      ┃    Param # ┃ Connected to      ┃
┡━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━┩
│ input_layer         │ (None, 8, 8, 3)   │          0 │ -                 │
│ (InputLayer)        │                   │            │                   │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ conv2d (Conv2D)     │ (None, 8, 8, 4)   │        112 │ input_layer[0][0] │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ conv2d_1 (Conv2D)   │ (None, 8, 8, 4)   │        148 │ conv2d[0][0]      │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ add (Add)           │ (None, 8, 8, 4)   │          0 │ conv2d[0][0],     │
│                     │                   │            │ conv2d_1[0][0]    │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ activation          │ (None, 8, 8, 4)   │          0 │ add[0][0]         │
│ (Activation)        │                   │            │                   │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ conv2d_3 (Conv2D)   │ (None, 4, 4, 6)   │        222 │ activation[0][0]  │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ conv2d_4 (Conv2D)   │ (None, 4, 4, 6)   │        330 │ conv2d_3[0][0]    │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ conv2d_2 (Conv2D)   │ (None, 4, 4, 6)   │         30 │ activation[0][0]  │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ add_1 (Add)         │ (None, 4, 4, 6)   │          0 │ conv2d_4[0][0],   │
│                     │                   │            │ conv2d_2[0][0]    │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ global_average_poo… │ (None, 6)         │          0 │ add_1[0][0]       │
│ (GlobalAveragePool… │                   │            │                   │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ dense (Dense)       │ (None, 3)         │         21 │ global_average_p… │
└─────────────────────┴───────────────────┴────────────┴───────────────────┘
 Total params: 863 (3.37 KB)
 Trainable params: 863 (3.37 KB)
 Non-trainable params: 0 (0.00 B)
"""


def test_summary_of_a_branching_model_matches_keras_text():
    i = convx.Input(shape=(8, 8, 3))
    x = L.Conv2D(4, 3, padding="same", activation="relu")(i)
    y = L.Conv2D(4, 3, padding="same")(x)
    x = L.Activation("relu")(L.Add()([x, y]))
    s = L.Conv2D(6, 1, strides=2)(x)
    y = L.Conv2D(6, 3, strides=2, padding="same", activation="relu")(x)
    x = L.Add()([L.Conv2D(6, 3, padding="same")(y), s])
    model = convx.Model(i, L.Dense(3, activation="softmax")(L.GlobalAveragePooling2D()(x)))
    lines = []
    model.summary(line_length=76, print_fn=lines.append)
    assert lines == [KERAS_RESIDUAL_SUMMARY]


# ----- errors -----------------------------------------------------------------------------------------------------

def test_disconnected_graph_is_refused():
    a, b = convx.Input(shape=(3,), name="a"), convx.Input(shape=(3,), name="b")
    out = L.Add()([a, L.Dense(3)(b)])
    with pytest.raises(ValueError, match="Graph disconnected.*'b'"):
        convx.Model(a, out)


def test_merge_shape_mismatch_names_both_shapes():
    a, b = convx.Input(shape=(3,)), convx.Input(shape=(4,))
    with pytest.raises(ValueError, match=r"incompatible shapes.*\(None, 3\) and \(None, 4\)"):
        L.Add()([a, b])
    c = convx.Input(shape=(5, 2))
    with pytest.raises(ValueError, match=r"matching shapes except for the concatenation axis.*\(None, 3\)"):
        L.Concatenate()([a, c])
    with pytest.raises(ValueError, match="should be called on a list of inputs"):
        L.Add()(a)


def test_a_layer_called_on_symbolic_and_concrete_inputs_is_refused():
    a = convx.Input(shape=(3,))
    with pytest.raises(ValueError, match="mix of symbolic tensors and other values"):
        L.Add()([a, np.zeros((1, 3), np.float32)])
    with pytest.raises(ValueError, match="must be symbolic tensors"):
        convx.Model(a, np.zeros(3))


def test_wrong_number_or_shape_of_inputs(rng):
    model, inputs, *_ = shared_and_merges(rng)
    with pytest.raises(ValueError, match="expects 2 input"):
        model.predict(inputs[0], verbose=0)
    with pytest.raises(ValueError, match=r'Input 1 of layer "functional".*expected shape=\(None, 5\), found shape=\(7, 4\)'):
        model.predict([inputs[0], inputs[1][:, :4]], verbose=0)


def test_multi_output_compile_arguments_keras_refuses(rng):
    model, inputs, targets, _, _ = shared_and_merges(rng)
    x = [a.astype(np.float32) for a in inputs]
    with pytest.raises(ValueError, match=r"Expected keys \['classes', 'values'\] in loss dict"):
        model.compile(optimizer="sgd", loss={"classes": "sparse_categorical_crossentropy"})
    model.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", "mse"], metrics=["accuracy"])
    with pytest.raises(ValueError, match="one list of metrics per output"):
        model.fit(x, targets, verbose=0)
    model.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", None], metrics=[["accuracy"], None])
    history = model.fit(x, targets, verbose=0)
    assert sorted(history.history) == ["classes_accuracy", "loss"]  # one loss: no per-output loss entries
