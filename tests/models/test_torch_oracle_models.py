"""Sequential models against a PyTorch twin: forward, loss, gradients through one or more updates.

Tolerances (float32): outputs and losses agree to 1e-5 relative / 2e-6
absolute; after SGD steps the weights agree to 2e-6; after Adam steps to 2e-5
(the Adam step is about lr * sign(g), so a gradient near zero may differ in
the last bits, which moves that weight by a small fraction of lr = 1e-3).
"""

import numpy as np
import pytest

import convx
from convx import layers as L
from torch_reference import TorchTwin


def seed_model():
    return convx.Sequential([
        L.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        L.MaxPooling2D((2, 2)),
        L.Conv2D(64, (3, 3), activation="relu"),
        L.MaxPooling2D((2, 2)),
        L.Conv2D(128, (3, 3), activation="relu"),
        L.MaxPooling2D((2, 2)),
        L.Flatten(),
        L.Dense(128, activation="relu"),
        L.Dense(10, activation="softmax"),
    ])


def _torch_steps(torch, twin, x, y, optimizer, steps, adam_eps=None, loss="sparse"):
    losses = []
    for t in range(1, steps + 1):
        optimizer.zero_grad()
        logits = twin.forward(x, logits=True)
        if loss == "sparse":
            value = torch.nn.functional.cross_entropy(logits, torch.as_tensor(y, dtype=torch.int64))
        else:
            value = ((twin.forward(x) - torch.as_tensor(y)) ** 2).mean()
        value.backward()
        if adam_eps is not None:
            # Keras adds eps to sqrt(v); torch to sqrt(v / (1 - b2^t)): rescale eps per step
            optimizer.param_groups[0]["eps"] = adam_eps / np.sqrt(1 - 0.999**t)
        optimizer.step()
        losses.append(float(value.detach()))
    return losses


def _mnist_like_batch(rng, n=32):
    return rng.random((n, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, n)


@pytest.mark.parametrize("steps", [1, 3])
def test_seed_model_sgd_steps_match_torch(torch, rng, steps):
    convx.utils.set_random_seed(7)
    model = seed_model()
    model.compile(optimizer=convx.optimizers.SGD(learning_rate=0.1), loss="sparse_categorical_crossentropy")
    twin = TorchTwin(torch, model)
    x, y = _mnist_like_batch(rng)
    expected = _torch_steps(torch, twin, x, y, torch.optim.SGD(twin.parameters(), lr=0.1), steps)
    got = [model.train_on_batch(x, y) for _ in range(steps)]
    # train_on_batch reports the running mean of the batch losses, as Keras 3 does
    np.testing.assert_allclose(got, np.cumsum(expected) / np.arange(1, steps + 1), rtol=1e-5)
    for mine, ref in zip(model.get_weights(), twin.keras_weights()):
        np.testing.assert_allclose(mine, ref, rtol=0, atol=2e-6)


def test_seed_model_adam_steps_match_torch(torch, rng):
    convx.utils.set_random_seed(8)
    model = seed_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    twin = TorchTwin(torch, model)
    before = model.get_weights()
    x, y = _mnist_like_batch(rng)
    opt = torch.optim.Adam(twin.parameters(), lr=1e-3, betas=(0.9, 0.999))
    _torch_steps(torch, twin, x, y, opt, 3, adam_eps=1e-7)
    for _ in range(3):
        model.train_on_batch(x, y)
    moved = max(np.abs(a - b).max() for a, b in zip(model.get_weights(), before))
    assert moved > 1e-3  # the weights did move by about 3 * lr
    for mine, ref in zip(model.get_weights(), twin.keras_weights()):
        np.testing.assert_allclose(mine, ref, rtol=0, atol=2e-5)
    np.testing.assert_allclose(model.predict(x, verbose=0), twin.forward(x).detach().numpy(), rtol=1e-4, atol=2e-6)


ARCHITECTURES = {
    "valid_stride_max": lambda: [
        L.Conv2D(4, 3, strides=2, activation="relu", input_shape=(9, 9, 2)), L.MaxPooling2D(2),
        L.Flatten(), L.Dense(5, activation="softmax")],
    "same_avg_tanh": lambda: [
        L.Conv2D(3, (3, 2), padding="same", activation="tanh", input_shape=(7, 8, 3)),
        L.AveragePooling2D(3, strides=2, padding="same"), L.Flatten(), L.Dense(6, activation="tanh"),
        L.Dense(4, activation="softmax")],
    "same_stride_maxsame_gap": lambda: [
        L.Conv2D(5, 3, strides=2, padding="same", activation="relu", input_shape=(10, 9, 1)),
        L.MaxPooling2D(3, strides=2, padding="same"), L.Conv2D(6, 2, activation="relu"),
        L.GlobalAveragePooling2D(), L.Dense(3), L.Activation("softmax")],
    "dilated_globalmax_sigmoid": lambda: [
        L.Conv2D(4, 3, dilation_rate=2, activation="sigmoid", input_shape=(11, 11, 2)),
        L.GlobalMaxPooling2D(), L.Dense(7, activation="relu"), L.Dense(3, activation="softmax")],
}


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_random_conv_nets_forward_and_update_match_torch(torch, rng, name):
    convx.utils.set_random_seed(3)
    model = convx.Sequential(ARCHITECTURES[name]())
    model.compile(optimizer=convx.optimizers.SGD(learning_rate=0.5), loss="sparse_categorical_crossentropy")
    twin = TorchTwin(torch, model)
    x = rng.standard_normal((6,) + model.input_shape[1:]).astype(np.float32)
    y = rng.integers(0, model.output_shape[-1], 6)
    np.testing.assert_allclose(model.predict(x, verbose=0), twin.forward(x).detach().numpy(), rtol=1e-5, atol=2e-6)
    expected = _torch_steps(torch, twin, x, y, torch.optim.SGD(twin.parameters(), lr=0.5), 1)
    np.testing.assert_allclose(model.train_on_batch(x, y), expected[0], rtol=1e-5)
    for mine, ref in zip(model.get_weights(), twin.keras_weights()):
        np.testing.assert_allclose(mine, ref, rtol=0, atol=2e-6)


def test_mse_through_softmax_is_not_fused_and_matches_torch(torch, rng):
    # softmax output with MSE: the loss gradient goes back through softmax's Jacobian
    convx.utils.set_random_seed(4)
    model = convx.Sequential([L.Dense(5, activation="tanh", input_shape=(4,)), L.Dense(3, activation="softmax")])
    model.compile(optimizer=convx.optimizers.SGD(learning_rate=1.0), loss="mse")
    twin = TorchTwin(torch, model)
    x = rng.standard_normal((8, 4)).astype(np.float32)
    y = rng.random((8, 3)).astype(np.float32)
    expected = _torch_steps(torch, twin, x, y, torch.optim.SGD(twin.parameters(), lr=1.0), 1, loss="mse")
    np.testing.assert_allclose(model.train_on_batch(x, y), expected[0], rtol=1e-5)
    for mine, ref in zip(model.get_weights(), twin.keras_weights()):
        np.testing.assert_allclose(mine, ref, rtol=0, atol=2e-6)


def test_sigmoid_binary_crossentropy_fused_step_matches_torch(torch, rng):
    convx.utils.set_random_seed(5)
    model = convx.Sequential([L.Conv2D(3, 2, activation="relu", input_shape=(5, 5, 2)), L.Flatten(),
                              L.Dense(1, activation="sigmoid")])
    model.compile(optimizer=convx.optimizers.SGD(learning_rate=0.5), loss="binary_crossentropy")
    twin = TorchTwin(torch, model)
    x = rng.standard_normal((10, 5, 5, 2)).astype(np.float32)
    y = rng.integers(0, 2, 10)
    opt = torch.optim.SGD(twin.parameters(), lr=0.5)
    value = torch.nn.functional.binary_cross_entropy_with_logits(
        twin.forward(x, logits=True)[:, 0], torch.as_tensor(y, dtype=torch.float32))
    value.backward()
    opt.step()
    np.testing.assert_allclose(model.train_on_batch(x, y), float(value.detach()), rtol=1e-5)
    plan = model._plan(True, True)
    assert plan.logits_steps[0].layer is model.layers[-1]  # the loss took over the sigmoid
    for mine, ref in zip(model.get_weights(), twin.keras_weights()):
        np.testing.assert_allclose(mine, ref, rtol=0, atol=2e-6)
