"""``train_step`` / ``test_step`` overrides: custom training logic as Keras 3 users write it.

convx has no ``GradientTape``. The idiom is Keras 3's PyTorch-backend one, with
``v.grad`` for ``v.value.grad``::

    class CustomModel(convx.Model):
        def train_step(self, data):
            x, y = data
            y_pred = self(x, training=True)             # the training plan's forward, on a tape
            loss = self.compute_loss(y=y, y_pred=y_pred)  # compiled loss(es) + sum(self.losses)
            loss.backward()                              # the plan's backward: grads into v.grad
            trainable_weights = self.trainable_weights
            gradients = [v.grad for v in trainable_weights]
            self.optimizer.apply(gradients, trainable_weights)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

Why this idiom: a convx model already records its forward pass, as its
execution plan, so a second tape context around the call would only repeat
it. ``self(x, training=True)`` inside ``train_step`` runs the training plan
and returns tape tensors; whatever the step computes from them with
``convx.ops`` (or ``compute_loss``) is recorded on the step's tape, and
``loss.backward()`` replays it, then runs the plan's backward once with the
gradients of the model's outputs. The weight gradients land in the model's
flat gradient buffer (``v.grad`` are views of it), so nothing is gathered or
copied per variable, and the same kernels run as in the built-in step.
"""

import numpy as np

from convx.models.plan import Plan
from convx.ops.core import Tape, TapeTensor, apply, value_of


class StepTape(Tape):
    """The tape of one ``train_step``: the model's forward is one record, its backward one plan call."""

    def __init__(self, model):
        super().__init__({}, True)
        self.model = model
        self.after_plan = []  # gradient additions that must follow the plan's (which overwrites v.grad)

    def backward_from(self, loss):
        model = self.model
        grads = self.backward([(loss.id, np.ones_like(loss.value))])
        for tensor_id, variable in self.variables.values():
            grad = grads.get(tensor_id)
            if grad is None:
                continue
            if id(variable) in self.written:
                np.add(variable.grad, grad, out=variable.grad, casting="unsafe")
            else:
                np.copyto(variable.grad, grad, casting="unsafe")
                self.written.add(id(variable))
        for variable in model.trainable_weights:
            if id(variable) not in self.written:
                variable.grad.fill(0)


def _training_plan(model):
    """The training plan with a gradient entering every output (no activation folded into a loss: the step's
    own code decides how outputs become the loss)."""
    model._plan(True, False)  # drops the cached plans when a trainable flag changed
    key = (True, (True,) * len(model._graph.outputs))
    plan = model._plans.get(key)
    if plan is None:
        plan = model._plans[key] = Plan(model._graph, True, key[1], model.trainable)
    return plan


def record_forward(model, tape, x):
    """``model(x, training=True)`` inside ``train_step``: the plan's outputs as tape tensors."""
    x = model._prepare_x(x)
    model._penalties.clear_activity()
    plan = _training_plan(model)
    outputs = [np.array(o) for o in plan.forward(x, training=True)]
    output_grads = [None] * len(outputs)

    def plan_backward(_):
        plan.backward(output_grads)
        tape.written.update(id(v) for v in model.trainable_weights)
        for add_grads in tape.after_plan:
            add_grads()
        return ()

    anchor = tape.record(plan_backward, [], [], np.float32(0.0))
    tensors = []
    for k, value in enumerate(outputs):
        def stash(grad, k=k):
            output_grads[k] = np.ascontiguousarray(grad, dtype=np.float32)
            return (np.float32(0.0),)

        tensors.append(tape.record(stash, [anchor.id], [()], value))
    return model._structure(tensors)


def compute_loss(model, y, y_pred):
    """The compiled losses of ``y_pred`` against ``y`` (weighted, summed) plus ``sum(model.losses)``."""
    predictions = _per_output(model, y_pred, "y_pred")
    targets = _per_output(model, y, "y")
    total = None
    outputs = model._graph.outputs
    for ol in model._output_losses:
        target = ol.loss.prepare_targets(np.asarray(value_of(targets[ol.index])), outputs[ol.index].shape)
        term = apply("loss", _loss_impl(ol, target), predictions[ol.index])
        total = term if total is None else total + term
    penalties = model._penalties
    penalty = penalties.value() if penalties is not None else None
    if penalty is not None:
        tape = getattr(total, "tape", None)
        if isinstance(total, TapeTensor) and isinstance(tape, StepTape):
            tape.after_plan.append(penalties.value_and_add_grads)
        total = penalty if total is None else total + penalty
    return np.float32(0.0) if total is None else total


def _loss_impl(ol, target):
    def impl(y_pred):
        y_pred = np.ascontiguousarray(y_pred, dtype=np.float32)
        losses, grad = ol.loss.value_and_grad(y_pred, target)
        value = np.float32(ol.weight) * (losses.sum() / losses.size)
        return np.float32(value), lambda g: (grad * (np.float32(ol.weight) * g),)

    return impl


def _per_output(model, values, name):
    names = model.output_names
    if isinstance(values, dict):
        return [values.get(n) for n in names]
    if isinstance(values, (list, tuple)) and len(names) > 1:
        return list(values)
    return [values]


def run_train_step(model, x, targets):
    """Call the user's ``train_step`` on one batch, on a fresh step tape; its returned logs."""
    model._in_custom_step = True
    try:
        with StepTape(model):
            logs = model.train_step(_data(model, x, targets))
    finally:
        model._in_custom_step = False
    return _float_logs(logs)


def run_test_step(model, x, targets):
    model._in_custom_step = True
    try:
        logs = model.test_step(_data(model, x, targets))
    finally:
        model._in_custom_step = False
    return _float_logs(logs)


def _data(model, x, targets):
    xs = x[0] if len(x) == 1 else list(x)
    if all(t is None for t in targets):
        return xs
    return xs, (targets[0] if len(targets) == 1 else model._structure(targets))


def _float_logs(logs):
    """Logs as Keras reports them: nested results (a metric returning a dict) flattened, values as floats."""
    flat = {}
    for name, value in dict(logs).items():
        if isinstance(value, dict):
            flat.update(_float_logs(value))
        else:
            flat[name] = float(np.asarray(value_of(value)))
    return flat
