"""Layers that define ``call()``: what Keras users write when the built-in layers are not enough.

A subclass of ``convx.layers.Layer`` that defines ``call(inputs, training=None)``
over ``convx.ops`` (and other layers) gets its ``forward`` / ``backward``
from here:

- symbolic (building a model): ``call()`` runs once on KerasTensors to find
  the output shape (unless the layer defines ``compute_output_shape``); the
  model's graph records the layer as one node;
- forward in a training plan, when the step runs backward: ``call()`` runs
  on :class:`~convx.ops.core.TapeTensor` inputs under a fresh
  :class:`~convx.ops.core.Tape`, which records every op and every built-in
  layer called inside (each such call gets its own CallState, kept from step
  to step so its buffers are reused);
- backward: the tape is replayed in reverse from the output's gradient and
  a gradient of 1 for every ``add_loss`` value; the gradients of the layer's
  trainable weights (its own and its sublayers') land in ``variable.grad``,
  i.e. in the model's flat gradient buffer, and the optimizer's single
  kernel call updates them with every other weight;
- forward otherwise (inference, or no gradient needed): ``call()`` runs on
  plain NumPy arrays, the ops eager, nothing recorded.
"""

import inspect

import numpy as np

from convx.layers.node import KerasTensor
from convx.ops.core import Tape, TapeTensor, current_plan_trace, current_tape, training_scope, untraceable, value_of

_CALL_PARAMETERS = {}


def _call_parameters(layer):
    cls = type(layer)
    params = _CALL_PARAMETERS.get(cls)
    if params is None:
        params = _CALL_PARAMETERS[cls] = set(inspect.signature(layer.call).parameters)
    return params


def invoke(layer, inputs, training, kwargs):
    """``layer.call(inputs, ...)``, passing ``training`` when ``call`` takes it (Keras' rule), with
    ``training`` the default of the layers called inside."""
    if "training" in _call_parameters(layer) and "training" not in kwargs:
        kwargs = dict(kwargs, training=training)
    with training_scope(training):
        return layer.call(inputs, **kwargs)


def output_array(layer, out):
    """What a call returned as the plan's value: a C-contiguous float32 array."""
    if isinstance(out, (list, tuple, dict)):
        raise ValueError(f"Layer {layer.name!r}: convx layers return one tensor from call(), received "
                         f"{type(out).__name__}")
    out = np.asarray(value_of(out))
    if out.dtype != np.float32:
        out = out.astype(np.float32)
    return np.ascontiguousarray(out)


def check_traced_arguments(layer, training, kwargs):
    """Inside a plan trace, a layer called with arguments a plan step would not pass (a ``training`` other
    than the plan's, ``mask``, ...) ends the trace: the call then runs on a tape."""
    trace = current_plan_trace()
    if trace is not None and (kwargs or (training is not None and bool(training) != trace.training)):
        untraceable(f"{layer.name} called with training={training!r}, {sorted(kwargs)}")


def traced_output_shape(layer, input_shape):
    """Keras' default ``compute_output_shape`` of a layer with ``call()``: call it on symbolic inputs."""
    inputs = [KerasTensor(s) for s in input_shape] if isinstance(input_shape, list) else KerasTensor(input_shape)
    out = invoke(layer, inputs, None, {})
    if isinstance(out, KerasTensor):
        return out.shape
    if isinstance(out, (list, tuple)):
        raise ValueError(f"Layer {layer.name!r}: convx layers return one tensor from call(), received "
                         f"{type(out).__name__}")
    return tuple(np.shape(value_of(out)))


# ----- the plan's forward and backward ------------------------------------------------------------------------------

def forward(layer, x, training):
    """The output of ``layer.call`` for ``x`` (an array or a list), on a tape when backward will run."""
    state = layer._state
    if not (training and getattr(state, "records_tape", False)):
        return _unaliased(output_array(layer, invoke(layer, x, training, {})), x)
    tape = Tape(state.__dict__.setdefault("tape_states", {}), training)
    inputs = [tape.watch(v) for v in x] if isinstance(x, list) else tape.watch(x)
    with tape:
        out = invoke(layer, inputs, training, {})
    state.tape, state.tape_inputs, state.tape_output = tape, inputs, out
    return _unaliased(output_array(layer, out), x)


def _unaliased(out, x):
    """``out``, copied when it shares memory with an input (``return inputs``, a reshape): the plan may
    reuse an input's memory once its readers ran."""
    inputs = x if isinstance(x, list) else [x]
    return out.copy() if any(np.may_share_memory(out, v) for v in inputs) else out


def backward(layer, dy, needed=None):
    """Replay the tape of the last training forward: input gradients (a list when ``needed`` is given);
    the layer's trainable weights' gradients written into ``variable.grad``. ``dy`` None: no loss reached
    the output, only the call's ``add_loss`` values seed the replay."""
    state = layer._state
    tape = getattr(state, "tape", None)
    if tape is None:
        raise RuntimeError(f"Layer {layer.name!r}: backward() needs a training forward() recorded on a tape first")
    out = state.tape_output
    seeds = []
    if isinstance(out, TapeTensor) and out.tape is tape and dy is not None:
        seeds.append((out.id, np.asarray(dy).reshape(out.shape).astype(out.dtype, copy=False)))
    seeds += [(loss_id, np.ones_like(value)) for loss_id, value in tape.loss_ids]
    grads = tape.backward(seeds)
    _write_weight_grads(layer, tape, grads)
    inputs = state.tape_inputs if isinstance(state.tape_inputs, list) else [state.tape_inputs]
    dxs = []
    for tensor in inputs:
        grad = grads.get(tensor.id)
        dxs.append(np.zeros(tensor.shape, np.float32) if grad is None
                   else np.ascontiguousarray(grad, dtype=np.float32))
    return dxs if needed is not None else dxs[0]


def _write_weight_grads(layer, tape, grads):
    """Op gradients of the layer's trainable Variables into ``variable.grad`` (added to what the built-in
    sublayers wrote); trainable weights the call did not reach get zeros, not stale values."""
    trainable = layer.trainable_weights
    trainable_ids = {id(v) for v in trainable}
    for tensor_id, variable in tape.variables.values():
        grad = grads.get(tensor_id)
        if grad is None or id(variable) not in trainable_ids:
            continue
        if id(variable) in tape.written:
            np.add(variable.grad, grad, out=variable.grad, casting="unsafe")
        else:
            np.copyto(variable.grad, grad, casting="unsafe")
            tape.written.add(id(variable))
    for variable in trainable:
        if id(variable) not in tape.written:
            variable.grad.fill(0)


# ----- layers called inside a taped call ----------------------------------------------------------------------------

def on_tape(x):
    """Whether ``x`` (or an item of a list) is a TapeTensor."""
    if isinstance(x, (list, tuple)):
        return any(isinstance(v, TapeTensor) for v in x)
    return isinstance(x, TapeTensor)


def call_on_tape(layer, x, training, kwargs):
    """``layer(x)`` inside a taped call: a layer with ``call()`` runs inline (its ops record on the same
    tape); a built-in layer runs its forward and is recorded as one op whose vjp is its backward."""
    from convx.layers.base import CallState

    tape = current_tape()
    if training is None:
        training = tape.training
    tensors = list(x) if isinstance(x, (list, tuple)) else [x]
    shapes = [(None,) + tuple(np.shape(value_of(t)))[1:] for t in tensors]
    layer.build_for(shapes if isinstance(x, (list, tuple)) else shapes[0])
    if layer._has_call:
        return invoke(layer, x, training, kwargs)
    key = (tape.layer_calls, id(layer))
    tape.layer_calls += 1
    state = tape.states.get(key)
    if state is None:
        state = tape.states[key] = CallState()
    ids = [tape.tensor_id(t) for t in tensors]
    state.need_dx = any(i is not None for i in ids)
    values = [np.ascontiguousarray(value_of(t), dtype=np.float32) for t in tensors]
    layer._state = state
    y = layer.forward(values if isinstance(x, (list, tuple)) else values[0], training=training)
    list_input = isinstance(x, (list, tuple))

    def vjp(grad):
        layer._state = state
        grad = np.ascontiguousarray(grad, dtype=np.float32).reshape(y.shape)
        dxs = _layer_backward(layer, tape, state, grad, [i is not None for i in ids] if list_input else None)
        return dxs if list_input else [dxs]

    return tape.record(vjp, ids, [v.shape for v in values], y)


def _layer_backward(layer, tape, state, grad, needed):
    """A built-in layer's backward inside a replay; its weight gradients added to those already written."""
    variables = layer.trainable_weights
    run = (lambda: layer.backward(grad, needed=needed)) if needed is not None else (lambda: layer.backward(grad))
    if not any(id(v) in tape.written for v in variables):
        dx = run()
        tape.written.update(id(v) for v in variables)
        return dx
    kept = [v.grad for v in variables]
    scratch = state.__dict__.setdefault("grad_scratch", [np.empty_like(g) for g in kept])
    for v, s in zip(variables, scratch):
        v.grad = s
    try:
        dx = run()
    finally:
        for v, g in zip(variables, kept):
            v.grad = g
    for g, s in zip(kept, scratch):
        np.add(g, s, out=g)
    return dx


# ----- weights and sublayers ----------------------------------------------------------------------------------------

def sublayers(layer):
    """The layers a layer holds as attributes (directly or in lists), in assignment order (Keras' ``_layers``)."""
    from convx.layers.base import Layer

    found, seen = [], set()
    for value in vars(layer).values():
        items = value if isinstance(value, (list, tuple)) else (value,)
        for item in items:
            if isinstance(item, Layer) and item is not layer and id(item) not in seen:
                seen.add(id(item))
                found.append(item)
    return found


def _unique(variables):
    seen, unique = set(), []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            unique.append(v)
    return unique


def weights(layer):
    """Keras 3's order: the layer's trainable variables, its non-trainable ones, then each sublayer's weights."""
    own = layer._weights
    nested = [w for sub in sublayers(layer) for w in sub.weights]
    return _unique([w for w in own if w.trainable] + [w for w in own if not w.trainable] + nested)


def trainable_weights(layer):
    if not layer.trainable:
        return []
    nested = [w for sub in sublayers(layer) for w in sub.trainable_weights]
    return _unique([w for w in layer._weights if w.trainable] + nested)


def flatten_layers(layer):
    """``layer``'s sublayers, recursively, depth first."""
    found = []
    for sub in sublayers(layer):
        found.append(sub)
        found.extend(flatten_layers(sub) if sub._has_call else [])
    return found
