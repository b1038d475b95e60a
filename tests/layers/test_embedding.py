"""Embedding: the gather / scatter-add kernels (finite differences, PyTorch nn.Embedding dense and sparse,
thread counts), the layer (Keras 3's config and errors), training against PyTorch, and mask_zero masks as
Keras 3.15.1 applies them in GlobalAveragePooling1D / GlobalMaxPooling1D."""

import numpy as np
import pytest

import convx
from convx import layers as L
from convx._kernels import embedding as E
from gradcheck import check_gradient
from thread_identity import assert_same_for_any_thread_count


def _indices_with_repeats(rng, vocab, shape):
    idx = rng.integers(0, vocab, size=shape)
    idx.reshape(-1)[: idx.size // 3] = min(1, vocab - 1)  # row 1 seen many times: its contributions must accumulate
    return idx


# ----- kernels ---------------------------------------------------------------------------------------------


def test_forward_gathers_rows(rng):
    table = rng.standard_normal((13, 5)).astype(np.float32)
    x = _indices_with_repeats(rng, 13, (4, 7))
    for dtype in (np.int32, np.int64, np.float32, np.float64, np.uint8):
        idx = E.embedding_indices(x.astype(dtype), 13)
        np.testing.assert_array_equal(E.embedding_forward(table, idx).reshape(4, 7, 5), table[x])


def test_backward_matches_finite_differences_float64(rng):
    table = rng.standard_normal((6, 3))
    x = np.array([[1, 4, 1], [0, 1, 5]])
    weights = rng.standard_normal((6, 3))
    idx = E.embedding_indices(x, 6)

    def loss():
        return float(np.sum(E.embedding_forward(table, idx) * weights))

    grad, rows, count = E.embedding_backward(weights, idx, 6)
    check_gradient(loss, table, grad)
    np.testing.assert_array_equal(rows[:count], [0, 1, 4, 5])
    sparse, rows, count = E.embedding_backward(weights, idx, 6, dense=False)
    np.testing.assert_array_equal(sparse[:count], grad[[0, 1, 4, 5]])


@pytest.mark.parametrize("vocab", [1, 7, 300, 70000])
def test_backward_matches_torch_dense_and_sparse(torch, rng, vocab):
    dim = 9
    x = _indices_with_repeats(rng, vocab, (11, 23))
    table = rng.standard_normal((vocab, dim)).astype(np.float32)
    dy = rng.standard_normal((11, 23, dim)).astype(np.float32)
    idx = E.embedding_indices(x, vocab)
    dense, rows, count = E.embedding_backward(dy.reshape(-1, dim), idx, vocab)
    values, _, _ = E.embedding_backward(dy.reshape(-1, dim), idx, vocab, dense=False)
    for sparse in (False, True):
        module = torch.nn.Embedding(vocab, dim, sparse=sparse)
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(table))
        out = module(torch.from_numpy(x))
        np.testing.assert_array_equal(out.detach().numpy(), table[x])
        out.backward(torch.from_numpy(dy))
        grad = module.weight.grad
        if sparse:
            grad = grad.coalesce()
            np.testing.assert_array_equal(grad.indices().numpy()[0], rows[:count])
            np.testing.assert_allclose(values[:count], grad.values().numpy(), rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_allclose(dense, grad.numpy(), rtol=1e-5, atol=1e-5)


def test_backward_bit_identical_for_any_thread_count(rng):
    vocab, dim = 5000, 64
    x = _indices_with_repeats(rng, vocab, (64, 56))
    dy = rng.standard_normal((x.size, dim)).astype(np.float32)
    table = rng.standard_normal((vocab, dim)).astype(np.float32)
    idx = E.embedding_indices(x, vocab)

    def run():
        dense, rows, count = E.embedding_backward(dy, idx, vocab)
        values, _, _ = E.embedding_backward(dy, idx, vocab, dense=False)
        return dense, values[:count], E.embedding_forward(table, idx)

    assert_same_for_any_thread_count(run)


@pytest.mark.parametrize("bad", [5, -1, 7.0, 2.5, np.nan, np.inf])
def test_out_of_range_or_fractional_indices_raise(bad):
    x = np.array([[0, 1], [2, bad]], dtype=np.float64 if isinstance(bad, float) else np.int64)
    with pytest.raises(ValueError, match=r"position \(1, 1\).*\[0, 5\)"):
        E.embedding_indices(x, 5)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        E.embedding_forward(np.zeros((5, 2), np.float32), np.array([0, 5]))
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        E.embedding_backward(np.zeros((2, 2), np.float32), np.array([0, -1]), 5)


# ----- layer -----------------------------------------------------------------------------------------------


def test_layer_config_as_keras():
    layer = L.Embedding(6, 2)
    config = layer.get_config()
    # Keras 3.15.1's get_config of Embedding(6, 2), the initializer in convx's serialized form
    assert {k: v for k, v in config.items() if k not in ("name", "embeddings_initializer")} == {
        "trainable": True,
        "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
                  "registered_name": None},
        "input_dim": 6, "output_dim": 2, "embeddings_regularizer": None, "activity_regularizer": None,
        "embeddings_constraint": None, "mask_zero": False, "quantization_config": None,
    }
    assert config["embeddings_initializer"]["class_name"] == "RandomUniform"
    assert config["embeddings_initializer"]["config"]["minval"] == -0.05
    clone = L.Embedding.from_config(config)
    assert clone.get_config() == config


def test_layer_errors_and_call():
    with pytest.raises(ValueError, match="input_dim"):
        L.Embedding(0, 3)
    with pytest.raises(ValueError, match="output_dim"):
        L.Embedding(3, 2.5)
    layer = L.Embedding(4, 3, weights=np.arange(12, dtype=np.float32).reshape(4, 3))
    np.testing.assert_array_equal(layer(np.array([[3, 0]])), [[[9, 10, 11], [0, 1, 2]]])
    assert layer.weights[0].path == f"{layer.name}/embeddings"
    with pytest.raises(ValueError, match="out of range"):
        layer(np.array([[4]]))
    model = convx.Sequential([convx.Input((2,)), L.Embedding(4, 3), L.Flatten()])
    with pytest.raises(ValueError, match=r"index 4\b.*\[0, 4\)"):
        model.predict(np.array([[1, 4]]), verbose=0)
    mask = L.Embedding(4, 3, mask_zero=True).compute_mask(np.array([[0, 2]]))
    np.testing.assert_array_equal(mask, [[False, True]])


def test_own_variables_store_round_trip(rng):
    layer = L.Embedding(5, 2)
    layer.build_for((None, 3))
    store = {}
    layer.save_own_variables(store)
    assert list(store) == ["0"]
    other = L.Embedding(5, 2)
    other.build_for((None, 3))
    other.load_own_variables(store)
    np.testing.assert_array_equal(other.get_weights()[0], layer.get_weights()[0])


def _text_model(vocab, dim, seq):
    inputs = convx.Input((seq,), dtype="int32")
    h = L.Embedding(vocab, dim)(inputs)
    h = L.Conv1D(4, 3, activation="relu")(h)
    outputs = L.Dense(1, activation="sigmoid")(L.GlobalMaxPooling1D()(h))
    return convx.Model(inputs, outputs)


@pytest.mark.parametrize("optimizer", ["sgd", "sgd_sparse", "adam"])
def test_training_steps_match_torch(torch, rng, optimizer):
    """convx's steps against torch's float64 gradients (nn.Embedding's dense, or sparse for 'sgd_sparse')
    with Keras' update rules: SGD moves only the rows seen, Adam every row (its moments)."""
    vocab, dim, seq = 30, 6, 9
    model = _text_model(vocab, dim, seq)
    x = _indices_with_repeats(rng, vocab, (16, seq))
    y = rng.integers(0, 2, (16, 1)).astype(np.float32)
    emb, kernel, bias, dense_k, dense_b = [w.astype(np.float64) for w in model.get_weights()]
    params = [torch.tensor(w, requires_grad=True) for w in (emb, kernel, bias, dense_k, dense_b)]
    moments = [[torch.zeros_like(p), torch.zeros_like(p)] for p in params]
    model.compile(optimizer=optimizer.split("_")[0], loss="binary_crossentropy")
    for t in range(1, 4):
        model.train_on_batch(x, y)
        e = torch.nn.functional.embedding(torch.from_numpy(x), params[0], sparse=optimizer == "sgd_sparse")
        h = torch.nn.functional.conv1d(e.transpose(1, 2), params[1].permute(2, 1, 0), params[2]).relu()
        p = torch.sigmoid(h.amax(dim=2) @ params[3] + params[4])
        grads = torch.autograd.grad(torch.nn.functional.binary_cross_entropy(p, torch.from_numpy(y).double()), params)
        with torch.no_grad():  # Keras 3's SGD and Adam updates on torch's float64 gradients (dense, every row)
            for w, g, (m, v) in zip(params, grads, moments):
                if optimizer.startswith("sgd"):
                    w.add_(g, alpha=-0.01)  # a sparse g: only its rows
                    continue
                m += (g - m) * 0.1
                v += (g * g - v) * 0.001
                w -= 0.001 * (1 - 0.999 ** t) ** 0.5 / (1 - 0.9 ** t) * m / (v.sqrt() + 1e-7)
    for got, want in zip(model.get_weights(), params):
        np.testing.assert_allclose(got, want.detach().numpy(), rtol=2e-4, atol=2e-6)


# ----- masks (pinned from Keras 3.15.1: Embedding(6, 2, mask_zero=True) with rows arange(12) - 5) -----------

_MASK_X = np.array([[3, 1, 0, 0], [2, 0, 5, 0]])
_KERAS_MASKED = {
    ("avg", None): [[-1.0, 0.0], [2.0, 3.0]],
    ("avg", "dropout"): [[-1.0, 0.0], [2.0, 3.0]],
    ("avg", "dense"): [[-1.0, 0.0], [2.0, 3.0]],
    ("avg", "conv"): [[-3.0, -2.0], [-1.5, -0.5]],  # Conv1D drops the mask (a warning in Keras)
    ("max", None): [[1.0, 2.0], [5.0, 6.0]],  # GlobalMaxPooling1D ignores masks in Keras 3
    ("max", "conv"): [[1.0, 2.0], [5.0, 6.0]],
}


@pytest.mark.parametrize("pool,middle", list(_KERAS_MASKED))
def test_mask_zero_through_the_model_as_keras(pool, middle):
    inputs = convx.Input((4,), dtype="int32")
    embedding = L.Embedding(6, 2, mask_zero=True)
    h = embedding(inputs)
    if middle == "dropout":
        h = L.Dropout(0.5)(h)
    elif middle == "dense":
        h = L.Dense(2, kernel_initializer="zeros")(h)
    elif middle == "conv":
        h = L.Conv1D(2, 1)(h)
    model = convx.Model(inputs, (L.GlobalAveragePooling1D() if pool == "avg" else L.GlobalMaxPooling1D())(h))
    embedding.set_weights([np.arange(12, dtype=np.float32).reshape(6, 2) - 5])
    if middle in ("dense", "conv"):
        model.layers[2].set_weights([np.eye(2, dtype=np.float32).reshape(model.layers[2].kernel.shape),
                                     np.zeros(2, np.float32)])
    np.testing.assert_allclose(model.predict(_MASK_X, verbose=0), _KERAS_MASKED[(pool, middle)])


def test_masked_average_gradient_finite_differences(rng):
    layer = L.GlobalAveragePooling1D()
    mask = np.array([[True, False, True], [False, True, True]])
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    weights = rng.standard_normal((2, 4))
    y = layer(x, mask=mask)
    expected = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    layer.forward(x, training=True)
    dx = layer.backward(weights.astype(np.float32))
    x64 = x.astype(np.float64)
    check_gradient(lambda: float(np.sum((x64 * mask[..., None]).sum(1) / mask.sum(1, keepdims=True) * weights)),
                   x64, dx, rtol=1e-5, atol=1e-6)


def test_masked_average_trains_like_unmasked_rows(rng):
    """A masked model's step equals the same model on the unpadded sequence (the padding has no effect)."""
    def model():
        convx.utils.set_random_seed(3)
        inputs = convx.Input((None,), dtype="int32")
        h = L.GlobalAveragePooling1D()(L.Embedding(10, 3, mask_zero=True)(inputs))
        m = convx.Model(inputs, L.Dense(1)(h))
        m.compile(optimizer="sgd", loss="mse")
        return m

    padded, short = model(), model()
    padded.train_on_batch(np.array([[4, 7, 0, 0, 0]]), np.array([[1.0]]))
    short.train_on_batch(np.array([[4, 7]]), np.array([[1.0]]))
    for a, b in zip(padded.get_weights(), short.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_text_cnn_training_bit_identical_for_any_thread_count(rng):
    x = _indices_with_repeats(rng, 500, (40, 20))
    y = rng.integers(0, 2, (40, 1)).astype(np.float32)

    def train():
        convx.utils.set_random_seed(0)
        inputs = convx.Input((20,), dtype="int32")
        h = L.Embedding(500, 32)(inputs)
        branches = [L.GlobalMaxPooling1D()(L.Conv1D(16, w, activation="relu")(h)) for w in (3, 4, 5)]
        model = convx.Model(inputs, L.Dense(1, activation="sigmoid")(L.Concatenate()(branches)))
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.fit(x, y, batch_size=20, epochs=1, verbose=0, shuffle=False)
        return tuple(model.get_weights())

    assert_same_for_any_thread_count(train)
