"""convx.ops NumPy-like ops: forward against NumPy, gradients against central differences (float64),
with NumPy broadcasting both ways."""

import numpy as np
import pytest

from convx import ops
from opcheck import check_op


def data(rng, *shapes, low=None):
    arrays = [rng.normal(size=s) for s in shapes]
    return [np.abs(a) + low if low is not None else a for a in arrays]


BINARY = [
    ("add", ops.add, np.add), ("subtract", ops.subtract, np.subtract), ("multiply", ops.multiply, np.multiply),
    ("divide", ops.divide, np.divide), ("maximum", ops.maximum, np.maximum), ("minimum", ops.minimum, np.minimum),
]
BROADCASTS = [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((4,), (2, 3, 4)), ((2, 1, 4), (3, 1)), ((), (2, 3)),
              ((2, 3), ())]


@pytest.mark.parametrize("name,op,reference", BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize("shapes", BROADCASTS, ids=str)
def test_binary_ops_broadcast_both_ways(rng, name, op, reference, shapes):
    a, b = data(rng, *shapes, low=0.5 if name == "divide" else None)
    check_op(op, reference, [a, b])


def test_python_operators_on_tape_and_arrays(rng):
    a, b = data(rng, (2, 3), (3,), low=0.5)
    check_op(lambda x, y: (x + y) * 2 - y / x + (-x) ** 2 + 1 / y - 3 - abs(x), lambda x, y:
             (x + y) * 2 - y / x + (-x) ** 2 + 1 / y - 3 - np.abs(x), [a, b])
    w = rng.normal(size=(3, 4))
    check_op(lambda x, y: x @ y, lambda x, y: x @ y, [a, w])
    check_op(lambda x: np.float64(2.0) * x + np.ones(3) - x[:, 1:2], lambda x: 2 * x + 1 - x[:, 1:2], [a])


def test_power(rng):
    a, b = data(rng, (2, 3), (3,), low=0.5)
    check_op(ops.power, np.power, [a, b])
    check_op(lambda x: ops.power(x, 3), lambda x: x ** 3, [rng.normal(size=(4,))])


UNARY = [
    ("negative", ops.negative, np.negative, None), ("abs", ops.abs, np.abs, None), ("exp", ops.exp, np.exp, None),
    ("log", ops.log, np.log, 0.1), ("sqrt", ops.sqrt, np.sqrt, 0.1), ("square", ops.square, np.square, None),
    ("tanh", ops.tanh, np.tanh, None), ("sigmoid", ops.sigmoid, lambda x: 1 / (1 + np.exp(-x)), None),
    ("relu", ops.relu, lambda x: np.maximum(x, 0), None),
    ("silu", ops.silu, lambda x: x / (1 + np.exp(-x)), None),
    ("gelu", ops.gelu, lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))), None),
    ("clip", lambda x: ops.clip(x, -0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7), None),
]


@pytest.mark.parametrize("name,op,reference,low", UNARY, ids=[u[0] for u in UNARY])
def test_unary_ops(rng, name, op, reference, low):
    (a,) = data(rng, (3, 5), low=low)
    check_op(op, reference, [a])


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_and_log_softmax(rng, axis):
    (a,) = data(rng, (3, 4, 5))
    check_op(lambda x: ops.softmax(x, axis=axis), lambda x: _softmax(x, axis), [a])
    check_op(lambda x: ops.log_softmax(x, axis=axis), lambda x: np.log(_softmax(x, axis)), [a])


REDUCTIONS = ["sum", "mean", "max", "min", "prod", "var", "std"]


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)], ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions(rng, name, axis, keepdims):
    (a,) = data(rng, (2, 3, 4))
    op = getattr(ops, name)
    check_op(lambda x: op(x, axis=axis, keepdims=keepdims),
             lambda x: getattr(np, name)(x, axis=axis, keepdims=keepdims), [a])


def test_prod_gradient_with_a_zero():
    a = np.array([[2.0, 0.0, 3.0], [1.0, 4.0, 5.0]])
    check_op(lambda x: ops.prod(x, axis=1), lambda x: np.prod(x, axis=1), [a])


def test_matmul_shapes(rng):
    for sa, sb in [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (4, 5)), ((3, 4), (4,)),
                   ((4,), (4,))]:
        a, b = data(rng, sa, sb)
        check_op(ops.matmul, np.matmul, [a, b])


def test_dot_and_einsum(rng):
    a, b, c = data(rng, (3, 4), (4, 5), (2, 4, 6))
    check_op(ops.dot, np.dot, [a, b])
    check_op(ops.dot, np.dot, [a, c])
    check_op(lambda x: ops.dot(x, 2.0), lambda x: x * 2.0, [a])
    for spec, shapes in [("ij,jk->ik", ((3, 4), (4, 5))), ("bij,bjk->bik", ((2, 3, 4), (2, 4, 5))),
                         ("...ij,jk->...ik", ((2, 3, 4), (4, 5))), ("ij,ij->i", ((3, 4), (3, 4))),
                         ("ij,k->jk", ((3, 4), (2,))), ("ij->ji", ((3, 4),)), ("ij->", ((3, 4),))]:
        arrays = data(rng, *shapes)
        check_op(lambda *xs: ops.einsum(spec, *xs), lambda *xs: np.einsum(spec, *xs), arrays)


def test_shape_ops(rng):
    (a,) = data(rng, (2, 3, 4))
    check_op(lambda x: ops.reshape(x, (4, -1)), lambda x: x.reshape(4, -1), [a])
    check_op(lambda x: ops.transpose(x, (2, 0, 1)), lambda x: x.transpose(2, 0, 1), [a])
    check_op(ops.transpose, np.transpose, [a])
    check_op(lambda x: ops.expand_dims(x, 1), lambda x: np.expand_dims(x, 1), [a])
    check_op(lambda x: ops.squeeze(ops.expand_dims(x, 0), 0), lambda x: x, [a])
    check_op(lambda x: x[1, ::2, None, 1:], lambda x: x[1, ::2, None, 1:], [a])
    check_op(lambda x: x[..., -1], lambda x: x[..., -1], [a])


def test_joining_and_splitting(rng):
    a, b, c = data(rng, (2, 3), (2, 5), (2, 3))
    check_op(lambda x, y: ops.concatenate([x, y], axis=1), lambda x, y: np.concatenate([x, y], 1), [a, b])
    check_op(lambda x, y: ops.stack([x, y], axis=1), lambda x, y: np.stack([x, y], 1), [a, c])
    check_op(lambda x: ops.split(x, [1, 3], axis=1)[1] * 2 + ops.split(x, 5, axis=1)[4],
             lambda x: np.split(x, [1, 3], axis=1)[1] * 2 + np.split(x, 5, axis=1)[4], [b])


def test_take_with_repeated_indices(rng):
    (a,) = data(rng, (4, 3))
    idx = np.array([[0, 2], [2, 2]])
    check_op(lambda x: ops.take(x, idx, axis=0), lambda x: np.take(x, idx, axis=0), [a])
    check_op(lambda x: ops.take(x, idx, axis=1), lambda x: np.take(x, idx, axis=1), [a])
    check_op(lambda x: ops.take(x, idx), lambda x: np.take(x, idx), [a])


def test_where_and_comparisons(rng):
    a, b = data(rng, (3, 4), (4,))
    check_op(lambda x, y: ops.where(x > y, x, y * 2), lambda x, y: np.where(x > y, x, y * 2), [a, b])
    check_op(lambda x, y: ops.where(ops.greater_equal(x, 0), x, 0.0) + ops.cast(ops.less(x, y), "float64"),
             lambda x, y: np.where(x >= 0, x, 0.0) + (x < y), [a, b], differentiable=[0])
    for op, reference in [(ops.equal, np.equal), (ops.not_equal, np.not_equal), (ops.less_equal, np.less_equal),
                          (ops.greater, np.greater)]:
        np.testing.assert_array_equal(op(a, b), reference(a, b))


def test_conversions_and_constants(rng):
    (a,) = data(rng, (2, 3))
    check_op(lambda x: ops.cast(ops.cast(x, "float32"), "float64") * x, lambda x: x.astype(np.float32) * x, [a],
             rtol=1e-6, atol=1e-6, differentiable=[])
    check_op(lambda x: x * ops.ones_like(x) + ops.zeros_like(x), lambda x: x, [a])
    assert ops.convert_to_tensor(1.5).dtype == np.float32
    assert ops.convert_to_tensor([1, 2]).dtype == np.int64
    assert ops.convert_to_numpy(ops.convert_to_tensor(a)) is not a
    assert ops.shape(a) == (2, 3) and ops.one_hot(np.array([0, 2]), 3).tolist() == [[1, 0, 0], [0, 0, 1]]
    np.testing.assert_array_equal(ops.one_hot(np.array([1]), 3, axis=0), [[0], [1], [0]])
