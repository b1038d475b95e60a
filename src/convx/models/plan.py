"""The execution plan: a model's graph compiled once into the steps that run it.

A plan is made per model and mode (training or inference, and which outputs
hand their final activation to the loss). Building it:

1. flattens the graph into steps in topological order, models called as
   layers inlined (so fusions cross their borders), one
   :class:`~convx.layers.base.CallState` per call of a layer, every tensor a
   numbered slot;
2. marks what backward needs: a slot needs a gradient when a trainable
   weight lies upstream of it; a step runs backward when its output needs a
   gradient and a loss is downstream of it; a step computes an input's
   gradient only when that input needs one;
3. applies the fusion rules, each a rewrite of the step list, in the order of
   ``REWRITES``: at inference a BatchNormalization folded into the
   convolution or dense layer before it; a relu fused into the
   BatchNormalization before it; the final activation folded into the loss;
   convolution + max pooling in one pass; a convolution computing only the
   part of its output a valid pooling reads; relu folded into the max
   pooling's backward scatter;
4. at inference, lends each step's output a shared memory arena chosen by
   interval colouring: a tensor's memory is reused once its last reader ran
   (training keeps every forward output: backward reads them).

Backward walks the steps in reverse and sums the gradients of tensors that
several steps read, in the fixed reverse order: the same bits for any thread
count. A layer called several times (shared weights): the call whose backward
runs first (the last call in forward order) writes the weight gradients, the
others add theirs to them, also in a fixed order.
"""

import math

import numpy as np

from convx._kernels import merge as _merge
from convx._kernels import norm as _norm
from convx.layers.activations import Activation, PReLU
from convx.layers.base import ActivationOutput, CallState
from convx.layers.convolutional import Conv1D, Conv2D, DepthwiseConv2D
from convx.layers.core import Dense, Dropout
from convx.layers.merging import Concatenate, Merge
from convx.layers.normalization import BatchNormalization, LayerNormalization
from convx.layers.pooling import _Pooling
from convx.layers.preprocessing import Rescaling
from convx.layers.regularization import ActivityRegularization, GaussianDropout, GaussianNoise
from convx.models.traced_call import adds_losses, inlined_graph, step_layer


class Arena:
    """Growable memory that tensors with disjoint lifetimes take in turn."""

    def __init__(self):
        self._memory = np.empty(0, dtype=np.uint8)
        self._views = {}  # (shape, dtype) -> view of the current memory: the same views serve batch after batch

    def array(self, shape, dtype):
        view = self._views.get((shape, dtype))
        if view is not None:
            return view
        itemsize = np.dtype(dtype).itemsize
        size = math.prod(shape) * itemsize
        if size > self._memory.size:
            self._memory = np.empty(size, dtype=np.uint8)
            self._views = {}
        view = self._views[(shape, dtype)] = self._memory[:size].view(dtype).reshape(shape)
        return view


class Step:
    """One call of a layer: reads slots ``inputs``, writes slot ``output``.

    Attributes set by the plan and its rewrites:
    ``needed`` (per input: compute its gradient), ``in_backward``,
    ``expose_logits`` (the loss takes over the final activation),
    ``pre_activation_grad`` (backward receives the gradient w.r.t. the
    pre-activation output), ``through_relu`` (a max pooling whose backward
    also applies the preceding relu's), ``window_pooling`` (the valid pooling
    reading this convolution's output), ``accumulate_grads`` (a later call of
    a shared layer), ``arena``, ``fold`` (a :class:`BatchNormFold`: the
    layer runs with a following BatchNormalization folded into its weights),
    ``in_frozen_model`` (a model around the layer is not trainable: Keras
    freezes every layer inside, so a BatchNormalization runs in inference mode),
    ``relu_max`` (a BatchNormalization with a following relu fused in: its
    ceiling, ``inf`` for a plain relu; None otherwise).
    """

    def __init__(self, layer, state, inputs, output, list_input, trainable):
        self.layer, self.state = layer, state
        self.inputs, self.output = inputs, output
        self.list_input = list_input
        self.trainable = trainable  # the layer's weights train (the layer and every model around it trainable)
        self.needed = [False] * len(inputs)
        self.in_backward = False
        self.expose_logits = False
        self.pre_activation_grad = False
        self.through_relu = False
        self.window_pooling = None
        self._windows = {}
        self.accumulate_grads = False
        self.arena = None
        self.fold = None
        self.in_frozen_model = False
        self.relu_max = None

    def _enter(self):
        layer = self.layer
        layer._state = self.state
        return layer

    def settle_state(self):
        """Write what the layer reads of this call's plan on its call state (once: a plan owns its states)."""
        state = self.state
        state.need_dx = any(self.needed)
        state.expose_logits = self.expose_logits
        state.output_arena = self.arena
        state.in_frozen_model = self.in_frozen_model
        state.fused_relu_max = self.relu_max
        state.records_tape = self.in_backward  # a layer with call() records its ops only when backward will run

    def forward(self, values, training):
        fold = self.fold
        if fold is None:
            self._forward(values, training)
            return
        fold.enter()
        try:
            self._forward(values, training)
        finally:
            fold.exit()

    def _forward(self, values, training):
        layer = self._enter()
        if self.list_input:
            values[self.output] = layer.forward([values[i] for i in self.inputs], training=training)
            return
        x = values[self.inputs[0]]
        window = self._output_window(x.shape) if self.window_pooling is not None else None
        if window is None:
            values[self.output] = layer.forward(x, training=training)
        else:
            values[self.output] = layer.forward(x, training=training, output_window=window)

    def _output_window(self, input_shape):
        key = input_shape[1:]
        if key not in self._windows:
            self._windows[key] = self.window_pooling.input_window(self.layer._output_shape_for(input_shape))
        return self._windows[key]

    def backward(self, dy):
        """The input gradients (a list, None where not needed) for ``dy``; weight gradients into ``.grad``."""
        self.layer._state = self.state
        if not self.accumulate_grads:
            return self._backward(dy)
        variables = self.layer.trainable_weights
        kept = [v.grad for v in variables]
        scratch = self.state.buffers.setdefault("grad_scratch", [np.empty_like(g) for g in kept])
        for v, s in zip(variables, scratch):
            v.grad = s
        try:
            grads = self._backward(dy)
        finally:
            for v, g in zip(variables, kept):
                v.grad = g
        for g, s in zip(kept, scratch):
            np.add(g, s, out=g)
        return grads

    def _backward(self, dy):
        layer = self.layer
        if self.list_input:
            return layer.backward(dy, needed=self.needed)
        if self.pre_activation_grad:
            dx = layer.backward(dy, from_logits=True)
        elif self.through_relu:
            dx = layer.backward(dy, through_relu=True)
        else:
            dx = layer.backward(dy)
        return [dx]


class ConvPoolStep(Step):
    """A Conv2D and the max pooling that tiles its output, run in one pass (its output never stored)."""

    def __init__(self, conv_step, pool_step, training):
        super().__init__(conv_step.layer, conv_step.state, conv_step.inputs, pool_step.output, False,
                         conv_step.trainable)
        self.needed, self.in_backward = conv_step.needed, conv_step.in_backward
        self.pool_size = pool_step.layer.pool_size
        self.trained = training and conv_step.in_backward
        self.fold = conv_step.fold
        self.in_frozen_model = conv_step.in_frozen_model

    def _forward(self, values, training):
        layer = self._enter()
        values[self.output] = layer.forward_pooled(values[self.inputs[0]], self.pool_size, training=self.trained)

    def _backward(self, dy):
        return [self.layer.backward_pooled(dy)]


def fuse_conv_pool(plan):
    """Conv2D -> max pooling whose windows tile the conv output (its only reader): one pass each way."""
    steps = []
    skip = set()
    for step in plan.steps:
        if id(step) in skip:
            continue
        pool = plan.only_reader(step)
        if (isinstance(step.layer, Conv2D) and type(step) is Step and isinstance(pool, Step)
                and isinstance(pool.layer, _Pooling) and pool.layer.tiles_its_input()
                and (not plan.training or step.layer.trains_pooled(pool.layer.pool_size))):
            steps.append(ConvPoolStep(step, pool, plan.training))
            skip.add(id(pool))
        else:
            steps.append(step)
    plan.steps = steps


def window_conv_outputs(plan):
    """A Conv2D read only by a valid pooling computes only the rows and columns the pooling reads."""
    for step in plan.steps:
        pool = plan.only_reader(step)
        if type(step) is Step and isinstance(step.layer, Conv2D) and pool is not None \
                and isinstance(pool.layer, _Pooling):
            step.window_pooling = pool.layer


def relu_into_pool_backward(plan):
    """A max pooling reading a relu's output (its only reader): one scatter for both backward passes."""
    if not plan.training:
        return
    for step in plan.steps:
        pool = plan.only_reader(step)
        if (type(step) is Step and isinstance(step.layer, ActivationOutput) and step.layer.activation == "relu"
                and not step.expose_logits and step.in_backward and pool is not None and type(pool) is Step
                and pool.in_backward and isinstance(pool.layer, _Pooling) and pool.layer.mode == "max"):
            pool.through_relu = True
            step.pre_activation_grad = True


def activation_into_loss(plan):
    """A model output whose final activation is the loss's (softmax + cross-entropy, ...): the loss
    kernel takes the logits, and the backward pass starts from its gradient w.r.t. them."""
    for k, activation in enumerate(plan.losses):
        step = plan.producer.get(plan.output_slots[k])
        if (isinstance(activation, str) and type(step) is Step and isinstance(step.layer, ActivationOutput)
                and step.layer.activation == activation and not plan.readers[step.output]
                and plan.output_slots.count(step.output) == 1):
            step.expose_logits = True
            step.pre_activation_grad = True
            plan.logits_steps[k] = step


class _FoldedWeight:
    """Stands in for a layer's Variable while it runs with folded weights (``.value``, ``.shape``)."""

    def __init__(self, value):
        self.value = value

    @property
    def shape(self):
        return self.value.shape


class BatchNormFold:
    """A Conv2D / Conv1D / DepthwiseConv2D / Dense layer (linear activation) followed by an inference
    BatchNormalization over its output channels, run as the layer alone with
    ``kernel * a`` and ``(bias - moving_mean) * a + beta``, ``a = gamma /
    sqrt(moving_variance + epsilon)`` per channel.

    The folded weights are recomputed from the current weights at every call
    (O(weights), ``norm.fold_batch_norm``), so no update of either layer's
    weights (fit, set_weights, load) can leave them stale. ``activation``: a
    relu (or relu6) layer after the BatchNormalization, run in the layer's
    epilogue instead of its linear activation.
    """

    def __init__(self, layer, batch_norm):
        self.layer, self.batch_norm = layer, batch_norm
        channels = batch_norm.moving_mean.shape
        self.kernel = _FoldedWeight(np.empty(layer.kernel.shape, dtype=layer.kernel.value.dtype))
        self.bias = _FoldedWeight(np.empty(channels, dtype=layer.kernel.value.dtype))
        self.activation = None
        self._saved = None

    def enter(self):
        layer, bn = self.layer, self.batch_norm
        gamma, beta = bn._values()
        _norm.fold_batch_norm(_output_channels_last(layer, layer.kernel.value),
                              None if layer.bias is None else layer.bias.value,
                              bn.moving_mean.value, bn.moving_variance.value, gamma, beta, bn.epsilon,
                              out=(_output_channels_last(layer, self.kernel.value), self.bias.value))
        self._saved = (layer.kernel, layer.bias, layer.activation)
        layer.kernel, layer.bias = self.kernel, self.bias
        if self.activation is not None:
            layer.activation = self.activation

    def exit(self):
        self.layer.kernel, self.layer.bias, self.layer.activation = self._saved
        self._saved = None


def _output_channels_last(layer, kernel):
    """``kernel`` viewed with the layer's output channels as its last axis: a depthwise kernel
    (KH, KW, C, M) writes channel c * M + m, which is (KH, KW, C * M) in memory order."""
    return kernel.reshape(kernel.shape[:-2] + (-1,)) if isinstance(layer, DepthwiseConv2D) else kernel


def _folds_into(step, batch_norm_step):
    """Whether ``batch_norm_step`` (an inference BatchNormalization) can be folded into ``step``."""
    layer, bn = step.layer, batch_norm_step.layer
    # an activity regularizer reads the output that the fold would change (or remove)
    if not (type(step) is Step and step.fold is None and type(layer) in (Conv2D, Conv1D, DepthwiseConv2D, Dense)
            and layer.activation == "linear" and not step.expose_logits and layer.built
            and getattr(layer, "activity_regularizer", None) is None):
        return False
    if not (type(batch_norm_step) is Step and type(bn) is BatchNormalization and bn.built
            and bn.activity_regularizer is None):
        return False
    rank = len(bn.input_shape)
    channels = _output_channels_last(layer, layer.kernel.value).shape[-1]
    return bn.axis % rank == rank - 1 and bn.moving_mean.shape[0] == channels


def _epilogue_relu(step):
    """The activation name of a relu / relu6 layer step that a conv or dense epilogue can run, else None."""
    layer = step.layer if type(step) is Step else None
    if (isinstance(layer, Activation) and layer.activation in ("relu", "relu6") and layer._activation_params is None
            and layer.activity_regularizer is None):
        return layer.activation
    return None


def fold_batch_norm(plan):
    """At inference, a BatchNormalization reading a linear Conv2D / Conv1D / DepthwiseConv2D / Dense (its only reader)
    disappears into that layer's weights (:class:`BatchNormFold`), and a relu or relu6 layer
    reading the BatchNormalization (its only reader) into the layer's epilogue: one or two passes
    fewer over the data."""
    if plan.training:
        return
    removed = set()
    for step in plan.steps:
        if id(step) in removed:
            continue
        bn_step = plan.only_reader(step)
        if bn_step is not None and _folds_into(step, bn_step):
            step.fold = BatchNormFold(step.layer, bn_step.layer)
            step.output = bn_step.output
            removed.add(id(bn_step))
            relu = plan.only_reader(step)  # the readers of the BatchNormalization's output
            if relu is not None and _epilogue_relu(relu) is not None:
                step.fold.activation = _epilogue_relu(relu)
                step.output = relu.output
                removed.add(id(relu))
    plan.steps = [s for s in plan.steps if id(s) not in removed]


class BatchNormReluStep(Step):
    """A BatchNormalization and the relu (or relu6, or ReLU(max_value)) that reads its output,
    in one pass each way: the layer clamps its output as it writes it, and its backward
    applies the relu's mask; the relu's own output is never stored."""

    def __init__(self, bn_step, relu_step, relu_max):
        super().__init__(bn_step.layer, bn_step.state, bn_step.inputs, relu_step.output, False, bn_step.trainable)
        self.needed, self.in_backward = bn_step.needed, bn_step.in_backward
        self.in_frozen_model = bn_step.in_frozen_model
        self.relu_max = relu_max


def _relu_max(layer):
    """``max_value`` of a relu layer (inf when unbounded), None when ``layer`` is no plain relu."""
    if not isinstance(layer, Activation) or layer.activity_regularizer is not None:
        return None
    params = layer._activation_params
    if layer.activation == "relu" and params is None:
        return math.inf
    if layer.activation == "relu6" and params is None:
        return 6.0
    if layer.activation == "relu_general" and params is not None and params[0] == 0.0 and params[2] == 0.0:
        return float(params[1])  # ReLU(max_value=...): no slope, no threshold
    return None


def relu_into_batch_norm(plan):
    """A relu layer reading a BatchNormalization's output (its only reader) runs inside it
    (:class:`BatchNormReluStep`): one pass fewer over the data each way."""
    steps, removed = [], set()
    for step in plan.steps:
        if id(step) in removed:
            continue
        relu = plan.only_reader(step)
        relu_max = None if relu is None or type(relu) is not Step else _relu_max(relu.layer)
        if (type(step) is Step and type(step.layer) is BatchNormalization and step.layer.activity_regularizer is None
                and relu_max is not None and not relu.expose_logits):
            steps.append(BatchNormReluStep(step, relu, relu_max))
            removed.add(id(relu))
        else:
            steps.append(step)
    plan.steps = steps


# Layers that hand their input's mask on to their output, as Keras' ``supports_masking`` ones do (a layer's own
# ``supports_masking`` attribute, when it has one, decides instead). BatchNormalization passes it on but its
# training statistics include the masked steps (Keras leaves them out).
_MASK_PASSING = (Activation, PReLU, Dense, Dropout, BatchNormalization, LayerNormalization, GaussianNoise,
                 GaussianDropout, ActivityRegularization, Rescaling)


def route_masks(plan):
    """Keras' mask propagation, resolved once per plan: a layer with ``mask_zero`` (Embedding) computes a mask
    in its call state; single-input layers that support masking pass it on; any other layer drops it. A layer
    that uses a mask (``uses_mask``: GlobalAveragePooling1D) gets ``state.mask_source``, the call state whose
    ``mask`` holds it at run time."""
    source = {}
    for step in plan.steps:
        layer = step.layer
        if getattr(layer, "mask_zero", False):
            source[step.output] = step.state
        elif not step.list_input and step.inputs[0] in source and getattr(
                layer, "supports_masking", isinstance(layer, _MASK_PASSING)):
            source[step.output] = source[step.inputs[0]]
        if getattr(layer, "uses_mask", False):
            step.state.mask_source = source.get(step.inputs[0])


REWRITES = [fold_batch_norm, relu_into_batch_norm, activation_into_loss, fuse_conv_pool, window_conv_outputs,
            relu_into_pool_backward]


class Plan:
    """Steps that run ``graph`` in one mode.

    Parameters
    ----------
    graph : Graph
    training : bool
    losses : tuple
        Per output: False (no loss), True (a loss), or the activation the
        output's loss can take over (``'softmax'``, ``'sigmoid'``).
    trainable : bool
        The model's own ``trainable`` flag.
    """

    def __init__(self, graph, training, losses, trainable):
        self.training = training
        self.losses = tuple(losses)
        self.steps = []
        self.unreached_layers = []
        self._sum_buffers = {}
        self.input_slots = []
        self._slot_of = {}
        self.slot_count = 0
        self.states = {}  # call path -> CallState: the plan's own, so what a step sets on it is set once
        self._flatten(graph, (), trainable, None)
        route_masks(self)
        self.output_slots = [self._slot_of[((), id(t))] for t in graph.outputs]
        self._index_readers()
        self.logits_steps = [None] * len(self.output_slots)
        if training:
            self._mark_backward()
        for rewrite in REWRITES:
            rewrite(self)
            self._index_readers()
        self.backward_steps = [s for s in self.steps if s.in_backward]
        self._mark_shared_layers()
        if not training:
            self._assign_arenas()
        for step in self.steps:
            step.settle_state()

    # ----- building ----------------------------------------------------------------------------------------------

    def _slot(self, path, tensor):
        """The slot of ``tensor`` inside the (nested) model call at ``path``."""
        key = (path, id(tensor))
        if key not in self._slot_of:
            self._slot_of[key] = self.slot_count
            self.slot_count += 1
        return self._slot_of[key]

    def _flatten(self, graph, path, trainable, bound_inputs):
        """Steps of ``graph``'s nodes; ``bound_inputs`` maps a nested model's inputs to the caller's slots.

        A model called as a layer is inlined under the path of its call, so a model
        called twice has its own slots and call states for each call.
        """
        for i, tensor in enumerate(graph.inputs):
            if bound_inputs is None:
                self.input_slots.append(self._slot(path, tensor))
            else:
                self._slot_of[(path, id(tensor))] = bound_inputs[i]
        for node in graph.nodes:
            layer = node.operation
            if node.is_input:
                continue
            inputs = [self._slot(path, t) for t in node.input_tensors]
            inner = inlined_graph(node, self.training)  # a nested model's graph, a custom layer's traced call
            if inner is not None:
                inner_path = path + (id(node),)
                self._flatten(inner, inner_path, trainable and layer.trainable, inputs)
                for outer, tensor in zip(node.output_tensors, inner.outputs):
                    self._slot_of[(path, id(outer))] = self._slot_of[(inner_path, id(tensor))]
                continue
            layer = step_layer(node)  # an op with a built-in equivalent runs as that layer
            state = self.states[path + (id(node),)] = CallState()
            output = self._slot(path, node.output_tensors[0])
            step_trainable = trainable and layer.trainable and bool(layer.trainable_weights)
            step = Step(layer, state, inputs, output, node.call_structure == "list", step_trainable)
            step.in_frozen_model = not trainable
            self.steps.append(step)

    def _index_readers(self):
        self.readers = [[] for _ in range(self.slot_count)]
        self.producer = {}
        for step in self.steps:
            self.producer[step.output] = step
            for slot in step.inputs:
                self.readers[slot].append(step)

    def only_reader(self, step):
        """The single step reading ``step``'s output, None if it has several readers or is a model output."""
        readers = self.readers[step.output]
        if len(readers) != 1 or step.output in self.output_slots:
            return None
        return readers[0]

    def _mark_backward(self):
        requires = [False] * self.slot_count
        for step in self.steps:
            step.needed = [requires[slot] for slot in step.inputs]
            requires[step.output] = step.trainable or any(step.needed)
        receives = [False] * self.slot_count
        for k, slot in enumerate(self.output_slots):
            receives[slot] = receives[slot] or self.losses[k] is not False
        for step in self.steps:  # a call that may add_loss is a loss of its own
            receives[step.output] = receives[step.output] or adds_losses(step.layer)
        for step in reversed(self.steps):
            if receives[step.output] and requires[step.output]:
                step.in_backward = True
                for slot, needed in zip(step.inputs, step.needed):
                    receives[slot] = receives[slot] or needed
        for step in self.steps:
            if not step.in_backward:
                step.needed = [False] * len(step.inputs)
        # trainable weights no loss reaches (an output without a loss) get a zero gradient, not a stale one
        self.unreached_layers = list({id(s.layer): s.layer for s in self.steps if s.trainable and not s.in_backward
                                      and not any(o.in_backward for o in self.steps if o.layer is s.layer)}.values())

    def _mark_shared_layers(self):
        """Every backward call of a layer after the first (in backward order) adds its weight gradients."""
        seen = set()
        for step in reversed(self.backward_steps):
            if step.trainable and id(step.layer) in seen:
                step.accumulate_grads = True
            seen.add(id(step.layer))

    def _assign_arenas(self):
        """Interval colouring of the steps' outputs: a colour's arena serves tensors that are never live together."""
        owner = list(range(self.slot_count))  # the slot whose memory a slot's values live in
        for step in self.steps:
            if not step.list_input and step.layer.output_may_alias_input():
                owner[step.output] = owner[step.inputs[0]]
        last_use = [-1] * self.slot_count
        for index, step in enumerate(self.steps):
            for slot in step.inputs:
                last_use[owner[slot]] = max(last_use[owner[slot]], index)
        for slot in self.output_slots + self.input_slots:
            last_use[owner[slot]] = len(self.steps)
        free, arena_of = [], {}
        for index, step in enumerate(self.steps):
            if owner[step.output] != step.output:
                continue  # a view of its input: no memory of its own
            for slot in [slot for slot in arena_of if last_use[slot] < index]:
                free.append(arena_of.pop(slot))
            step.arena = free.pop() if free else Arena()
            arena_of[step.output] = step.arena

    # ----- running -----------------------------------------------------------------------------------------------

    def forward(self, inputs, training):
        """Outputs (a list of arrays, valid until the next run) for ``inputs`` (a list of arrays)."""
        values = [None] * self.slot_count
        for slot, x in zip(self.input_slots, inputs):
            values[slot] = x
        for step in self.steps:
            step.forward(values, training)
        return [values[slot] for slot in self.output_slots]

    def logits(self, k):
        """The pre-activation values of output ``k`` when the loss took over its activation, else None."""
        step = self.logits_steps[k]
        return None if step is None else step.state.logits

    def backward(self, output_grads):
        """Walk the steps in reverse from ``output_grads`` (per output; None: no loss on it)."""
        for layer in self.unreached_layers:
            for variable in layer.trainable_weights:
                variable.grad.fill(0)
        grads = [None] * self.slot_count
        sums = {}
        for slot, grad in zip(self.output_slots, output_grads):
            if grad is not None:
                self._add(grads, sums, slot, grad)
        for step in reversed(self.backward_steps):
            dy = grads[step.output]
            if dy is None and not adds_losses(step.layer):  # (its add_loss values seed its backward)
                continue
            for slot, needed, dx in zip(step.inputs, step.needed, step.backward(dy)):
                if needed and dx is not None:  # None: an op without a gradient (a comparison, one_hot, ...)
                    self._add(grads, sums, slot, dx)

    def _add(self, grads, sums, slot, grad):
        """Gradient contributions to one tensor sum in the order they arrive (fixed: the reverse step order)."""
        if grads[slot] is None:
            grads[slot] = grad
            return
        total = sums.get(slot)
        if total is None:
            # the merge kernel: the same sums as np.add, on the whole team for large tensors
            total = sums[slot] = _merge.merge_forward([grads[slot], grad], "add", out=self._sum_buffer(slot, grad))
        else:
            np.add(total, grad, out=total)
        grads[slot] = total

    def _sum_buffer(self, slot, like):
        buffer = self._sum_buffers.get(slot)
        if buffer is None or buffer.shape != like.shape:
            buffer = self._sum_buffers[slot] = np.empty_like(like)
        return buffer
