"""The reverse-mode core of ``convx.ops``: how one op runs eagerly, on a tape, or symbolically.

Every op is written once as ``impl(*arrays) -> (out, vjp)``: ``out`` the NumPy
result, ``vjp(g)`` a tuple with the gradient w.r.t. each array argument (None
where there is none), possibly of the broadcast shape: :func:`unbroadcast` sums
it back to the argument's shape (NumPy's rules, both directions). :func:`apply`
decides how it runs from its arguments:

- on NumPy arrays (and Python numbers): eagerly, the result an array;
- on :class:`TapeTensor` values (and, while a tape is active, on Variables): the
  result is a TapeTensor and the op is recorded on the thread's :class:`Tape`.
  A custom layer's ``call()`` runs this way in training, so the plan's backward
  step replays what the call did in reverse (``Tape.backward``);
- on symbolic tensors (``KerasTensor``): the op becomes a node of the graph
  (:mod:`convx.ops.symbolic`), a step of the model's execution plan.

Why a tape and not a graph per call: ``call()`` is Python; what it computes may
depend on ``training`` or on shapes, so it is recorded as it runs, each step.
The records are the vjp closures, which keep exactly what their backward
needs.
"""

import threading

import numpy as np

from convx.layers.node import KerasTensor, dispatch_ufunc, install_operators

_local = threading.local()


def _tape_stack():
    stack = getattr(_local, "tapes", None)
    if stack is None:
        stack = _local.tapes = []
    return stack


def current_tape():
    """The tape recording on this thread (inside a training call of a custom layer), or None."""
    stack = _tape_stack()
    return stack[-1] if stack else None


class training_scope:
    """What layers called without an explicit ``training`` receive inside a custom layer's call."""

    def __init__(self, training):
        self.training = training

    def __enter__(self):
        stack = getattr(_local, "training", None)
        if stack is None:
            stack = _local.training = []
        stack.append(self.training)

    def __exit__(self, *exc):
        _local.training.pop()


def current_training():
    """The ``training`` flag of the innermost custom-layer call on this thread (None outside any)."""
    stack = getattr(_local, "training", None)
    return stack[-1] if stack else None


class Untraceable(Exception):
    """A custom layer's ``call()`` did something a plan cannot hold as a graph (see :func:`untraceable`)."""


class plan_trace:
    """While a custom layer's ``call()`` is traced into plan steps (:mod:`convx.models.traced_call`).

    ``training`` is the plan's mode; ``variables`` maps id(Variable) -> the
    KerasTensor reading it, so each weight the call uses is one node of the
    traced graph; ``anchor`` is the call's first input, the tensor those
    nodes hang from.
    """

    def __init__(self, anchor, training):
        self.anchor, self.training = anchor, bool(training)
        self.variables = {}

    def __enter__(self):
        _local.plan_trace = self
        return self

    def __exit__(self, *exc):
        _local.plan_trace = None


def current_plan_trace():
    """The :class:`plan_trace` active on this thread, or None."""
    return getattr(_local, "plan_trace", None)


def untraceable(reason):
    """Inside a plan trace, give up the trace (the layer then runs as one taped step): ``reason`` is
    something only a run on values does (an ``assign`` to a weight, ``add_loss``, a call argument that
    the plan would not pass)."""
    if current_plan_trace() is not None:
        raise Untraceable(reason)


def is_variable(value):
    return getattr(type(value), "_convx_variable", False)


def unbroadcast(grad, shape):
    """``grad`` summed over the axes NumPy broadcast an argument of ``shape`` along."""
    grad = np.asarray(grad)
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


class TapeTensor:
    """A value computed on a tape: a NumPy array that remembers which op made it.

    Inside a custom layer's ``call()`` in training, the inputs and what ops
    return are TapeTensors. They take Python's operators (``x + y``, ``x @ w``,
    ``x[1:]``, ...) and every ``convx.ops`` function; NumPy functions see the
    values (``np.asarray(t)``) but their results are constants to the tape.

    Attributes
    ----------
    value : numpy.ndarray
    shape, dtype, ndim
        Those of ``value``.
    """

    __slots__ = ("value", "tape", "id")
    __array_priority__ = 100

    def __init__(self, value, tape, tensor_id):
        self.value, self.tape, self.id = value, tape, tensor_id

    shape = property(lambda self: self.value.shape)
    dtype = property(lambda self: self.value.dtype)
    ndim = property(lambda self: self.value.ndim)
    size = property(lambda self: self.value.size)

    def numpy(self):
        return np.array(self.value)

    def __array__(self, dtype=None, copy=None):
        return self.value if dtype is None else self.value.astype(dtype)

    def __len__(self):
        return len(self.value)

    def __repr__(self):
        return f"<TapeTensor shape={self.shape}, dtype={self.dtype}>"

    def __float__(self):
        return float(self.value)

    def __int__(self):
        return int(self.value)

    def __bool__(self):
        return bool(self.value)

    def backward(self):
        """Backpropagate this scalar, the loss of a ``train_step`` (see :mod:`convx.models.custom_step`):
        the gradients of the model's trainable weights land in their ``grad``."""
        backward_from = getattr(self.tape, "backward_from", None)
        if backward_from is None:
            raise RuntimeError("backward() applies to the loss computed in a model's train_step (from "
                               "self(x, training=True)); a custom layer's gradients flow through fit")
        backward_from(self)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        def on_values(*args, **kw):
            return getattr(ufunc, method)(*[value_of(a) for a in args], **kw)

        return dispatch_ufunc(ufunc, method, inputs, kwargs, on_values)


install_operators(TapeTensor)


class Tape:
    """The ops one taped call ran, and where its leaves' gradients go.

    Parameters
    ----------
    states : dict
        (call index, id(layer)) -> CallState of a built-in layer called inside
        the taped call; kept by the caller's own call state so buffers are
        reused from step to step.
    training : bool
        What layers called inside without an explicit ``training`` receive.
    """

    def __init__(self, states, training):
        self.records = []
        self.count = 0
        self.variables = {}  # id(variable) -> (tensor id, variable)
        self.loss_ids = []
        self.states = states
        self.training = training
        self.layer_calls = 0
        self.written = set()  # ids of Variables whose .grad this replay has written

    def __enter__(self):
        _tape_stack().append(self)
        return self

    def __exit__(self, *exc):
        _tape_stack().pop()

    def watch(self, value):
        """A TapeTensor for ``value`` (an input of the taped call)."""
        self.count += 1
        return TapeTensor(value, self, self.count)

    def tensor_id(self, arg):
        """The tape's id of an op argument, None for a constant."""
        if isinstance(arg, TapeTensor):
            return arg.id if arg.tape is self else None
        if is_variable(arg):
            entry = self.variables.get(id(arg))
            if entry is None:
                self.count += 1
                entry = self.variables[id(arg)] = (self.count, arg)
            return entry[0]
        return None

    def record(self, vjp, ids, shapes, out):
        self.count += 1
        self.records.append((vjp, ids, shapes, self.count))
        return TapeTensor(out, self, self.count)

    def add_loss(self, loss):
        """A scalar TapeTensor that enters the training loss: backward seeds it with 1."""
        if isinstance(loss, TapeTensor) and loss.tape is self:
            self.loss_ids.append((loss.id, loss.value))

    def backward(self, seeds):
        """Gradients of the leaves (inputs, Variables) from ``seeds`` ({tensor id: gradient})."""
        grads = {}
        for tensor_id, grad in seeds:
            _accumulate(grads, tensor_id, grad)
        for vjp, ids, shapes, out in reversed(self.records):
            grad = grads.pop(out, None)
            if grad is None:
                continue
            for tensor_id, shape, input_grad in zip(ids, shapes, vjp(grad)):
                if tensor_id is not None and input_grad is not None:
                    _accumulate(grads, tensor_id, unbroadcast(input_grad, shape))
        return grads


def _accumulate(grads, tensor_id, grad):
    previous = grads.get(tensor_id)
    grads[tensor_id] = grad if previous is None else add_arrays(previous, grad)  # never in place: grads may alias


_PARALLEL_ADD_MIN = 65536  # elements: below it NumPy's add is as fast as a kernel call


def add_arrays(a, b):
    """``a + b`` as a new array; large float arrays of one shape and dtype through the merge kernel (the
    whole thread team, the same sums as NumPy's serial add)."""
    if (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype
            and a.dtype in (np.float32, np.float64) and a.size >= _PARALLEL_ADD_MIN):
        from convx._kernels import merge

        return merge.merge_forward([a, b], "add")
    return np.add(a, b)


def value_of(arg):
    """The NumPy value of an op argument (arrays and numbers as they are)."""
    if isinstance(arg, TapeTensor):
        return arg.value
    if is_variable(arg):
        return arg.value
    if isinstance(arg, (list, tuple)):
        return np.asarray([value_of(a) for a in arg])
    return arg


def apply(name, impl, *args):
    """Run ``impl`` (``impl(*arrays) -> (out, vjp)``) on ``args``: eagerly, taped or symbolically."""
    if any(isinstance(a, KerasTensor) for a in args):
        from convx.ops.symbolic import symbolic_call

        return symbolic_call(name, impl, args)
    values = [value_of(a) for a in args]
    tape = _tape_of(args)
    out, vjp = impl(*values)
    if tape is None or vjp is None:
        return out
    ids = [tape.tensor_id(a) for a in args]
    if all(i is None for i in ids):
        return out
    return tape.record(vjp, ids, [np.shape(v) for v in values], out)


def _tape_of(args):
    tape = current_tape()
    for a in args:
        if isinstance(a, TapeTensor) and a.tape is tape:
            return tape
    if tape is not None and any(is_variable(a) for a in args):
        return tape
    return None


def is_traced(value):
    """Whether ``value`` (or an item of a list of values) is a TapeTensor or a KerasTensor."""
    if isinstance(value, (list, tuple)):
        return any(is_traced(v) for v in value)
    return isinstance(value, (TapeTensor, KerasTensor))
