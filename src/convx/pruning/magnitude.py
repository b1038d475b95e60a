"""Magnitude pruning during training (the TensorFlow Model Optimization toolkit's API).

``prune_low_magnitude(model, pruning_schedule)`` returns a copy of the model whose Conv / Dense
kernels carry a 0/1 mask (a non-trainable weight ``pruning_mask`` after the layer's own, so it is
saved and loaded with the model). The mask works through the kernel variable's regularizer and
constraint slots, which the training step already visits: the regularizer's gradient hook zeroes
the pruned weights' gradients before the optimizer step, the constraint multiplies the kernel by
the mask after it. ``UpdatePruningStep`` recomputes the masks on the schedule's steps (the
smallest magnitudes of each kernel pruned to the schedule's sparsity), and ``strip_pruning``
returns the plain model with the zeros in place.
"""

import json

import numpy as np

from convx.callbacks import Callback
from convx.layers.base import Variable
from convx.pruning.schedules import ConstantSparsity, PruningSchedule, deserialize

PRUNABLE = ("Conv1D", "Conv2D", "Dense", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose")
CONFIG_KEY = "pruning_schedule"


class _MaskHooks:
    """The kernel's regularizer and constraint with the mask applied around the original ones."""

    def __init__(self, mask, regularizer, constraint):
        self.mask, self.regularizer, self.constraint = mask, regularizer, constraint

    # regularizer slot: penalty of the (masked) weights, gradient of pruned weights zeroed
    def __call__(self, x):
        return np.float32(self.regularizer(x)) if self.regularizer is not None else np.float32(0.0)

    def penalty(self, x, scratch):
        if self.regularizer is None:
            return np.float32(0.0)
        penalty = getattr(self.regularizer, "penalty", None)
        return penalty(x, scratch) if penalty else np.float32(self.regularizer(x))

    def add_gradient(self, x, grad, scratch):
        if self.regularizer is not None:
            self.regularizer.add_gradient(x, grad, scratch)
        np.multiply(grad, self.mask, out=grad)


class _MaskConstraint:
    def __init__(self, hooks):
        self.hooks = hooks

    def apply(self, value, scratch):
        original = self.hooks.constraint
        if original is not None:
            if getattr(original, "apply", None) is not None:
                original.apply(value, scratch)
            else:
                np.copyto(value, original(value), casting="unsafe")
        np.multiply(value, self.hooks.mask, out=value)

    def __call__(self, value):
        return value * self.hooks.mask


def _attach(layer, schedule):
    kernel = layer.kernel
    mask = Variable(np.ones(kernel.shape, dtype=np.float32), "pruning_mask", f"{layer.name}/pruning_mask",
                    trainable=False)
    layer._weights.append(mask)
    hooks = _MaskHooks(mask.value, kernel.regularizer, kernel.constraint)
    kernel.regularizer, kernel.constraint = hooks, _MaskConstraint(hooks)
    layer._pruning = (schedule, mask, hooks)
    schedule_config = json.loads(json.dumps(schedule.get_config()))
    get_config = layer.get_config
    layer.get_config = lambda: {**get_config(), CONFIG_KEY: schedule_config}


def prunable_layers(model):
    from convx.models.model import _all_layers

    return [layer for layer in _all_layers(model.layers)
            if type(layer).__name__ in PRUNABLE and getattr(layer, "kernel", None) is not None]


def pruned_layers(model):
    from convx.models.model import _all_layers

    return [layer for layer in _all_layers(model.layers) if getattr(layer, "_pruning", None) is not None]


def prune_low_magnitude(to_prune, pruning_schedule=None, block_size=(1, 1), block_pooling_type="AVG", **kwargs):
    """A copy of the built model ``to_prune`` whose Conv / Dense kernels get pruned while it trains.

    Parameters
    ----------
    to_prune : Sequential or functional Model
    pruning_schedule : ConstantSparsity or PolynomialDecay, default ConstantSparsity(0.5, 0)
    block_size, block_pooling_type : only the toolkit's defaults ((1, 1), 'AVG') are supported

    Returns
    -------
    Model
        Uncompiled, with the weights of ``to_prune``; train it with the ``UpdatePruningStep`` callback.
    """
    from convx.models import clone_model

    if kwargs or tuple(block_size) != (1, 1) or block_pooling_type != "AVG":
        raise ValueError("convx prunes single weights: block_size=(1, 1), block_pooling_type='AVG' and no other "
                         f"arguments; received block_size={block_size!r}, {kwargs or ''}")
    schedule = ConstantSparsity(0.5, 0) if pruning_schedule is None else pruning_schedule
    if not isinstance(schedule, PruningSchedule):
        raise ValueError(f"pruning_schedule must be a ConstantSparsity or PolynomialDecay, got {schedule!r}")
    if not getattr(to_prune, "built", False) or getattr(to_prune, "_graph", None) is None:
        raise ValueError("prune_low_magnitude expects a built Sequential or functional model")
    if pruned_layers(to_prune):
        raise ValueError(f"Model {to_prune.name!r} is already wrapped for pruning (strip_pruning it first)")
    model = clone_model(to_prune)
    model.set_weights(to_prune.get_weights())
    layers = prunable_layers(model)
    if not layers:
        raise ValueError(f"Model {to_prune.name!r} has no Conv or Dense layer to prune")
    for layer in layers:
        _attach(layer, schedule)
    return model


def from_config(cls, config):
    """A layer from a config of a pruned layer (its mask weight restored with the weights)."""
    config = dict(config)
    schedule = deserialize(config.pop(CONFIG_KEY))
    layer = cls.from_config(config)
    build = layer.build

    def build_pruned(input_shape):
        build(input_shape)
        _attach(layer, schedule)

    layer.build = build_pruned
    return layer


def update_masks(model, step):
    """Recompute the masks whose schedule says so at ``step``; returns the layers updated."""
    updated = []
    for layer in pruned_layers(model):
        schedule, mask, _ = layer._pruning
        should_prune, sparsity = schedule(step)
        if should_prune:
            mask.value[...] = magnitude_mask(layer.kernel.value, sparsity)
            np.multiply(layer.kernel.value, mask.value, out=layer.kernel.value)
            updated.append(layer)
    return updated


def magnitude_mask(kernel, sparsity):
    """1 for the weights kept, 0 for the ``round(sparsity * size)`` smallest |w| (ties: lowest index first)."""
    flat = np.abs(kernel).reshape(-1)
    count = int(round(sparsity * flat.size))
    mask = np.ones(flat.size, dtype=np.float32)
    if count:
        mask[np.argsort(flat, kind="stable")[:count]] = 0.0
    return mask.reshape(kernel.shape)


class UpdatePruningStep(Callback):
    """Updates the pruning masks before each training batch, on the schedule's steps (the
    optimizer's iteration count is the step)."""

    def on_train_begin(self, logs=None):
        if not pruned_layers(self.model):
            raise ValueError("UpdatePruningStep: the model has no layer wrapped by prune_low_magnitude")

    def on_train_batch_begin(self, batch, logs=None):
        update_masks(self.model, int(self.model.optimizer.iterations))


def strip_pruning(model):
    """The model without its pruning masks: plain layers holding the pruned (zeroed) kernels."""
    from convx.models import clone_model
    from convx.saving import deserialize_layer, serialize_layer

    def plain(layer):
        entry = serialize_layer(layer)
        entry["config"].pop(CONFIG_KEY, None)
        return deserialize_layer(entry)

    stripped = clone_model(model, clone_function=plain)
    masks = {id(layer._pruning[1]) for layer in pruned_layers(model)}
    stripped.set_weights([w.numpy() for w in model.weights if id(w) not in masks])
    return stripped


def sparsity(model):
    """The fraction of zeros in the model's Conv / Dense kernels (a float)."""
    kernels = [layer.kernel.value for layer in prunable_layers(model)]
    total = sum(k.size for k in kernels)
    return float(sum(int(np.count_nonzero(k == 0)) for k in kernels) / total) if total else 0.0
