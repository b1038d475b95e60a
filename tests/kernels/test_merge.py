"""Tests for convx._kernels.merge (Keras Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate)."""

import numpy as np
import pytest

from convx._kernels.merge import concat_backward, concat_forward, merge_backward, merge_forward
from gradcheck import check_gradient
from thread_identity import assert_same_for_any_thread_count

MODES = ["add", "subtract", "multiply", "average", "maximum", "minimum"]
DTYPES = [np.float32, np.float64]
NUMPY_OPS = {
    "add": np.add,
    "average": np.add,
    "subtract": np.subtract,
    "multiply": np.multiply,
    "maximum": np.maximum,
    "minimum": np.minimum,
}


def _inputs(rng, mode, shape, dtype=np.float64, count=3):
    """`count` random arrays (2 for subtract)."""
    return [rng.standard_normal(shape).astype(dtype) for _ in range(2 if mode == "subtract" else count)]


def _forward_reference(xs, mode):
    """Keras' formula in NumPy, in the inputs' dtype: left to right, average divided by the count."""
    out = xs[0]
    for x in xs[1:]:
        out = NUMPY_OPS[mode](out, x)
    return out / out.dtype.type(len(xs)) if mode == "average" else out.copy()


def _winners(xs, mode):
    """Index of the input that the left-to-right maximum/minimum selects (the earlier on ties, the first NaN)."""
    best, winner = xs[0], np.zeros(xs[0].shape, np.int64)
    for j, x in enumerate(xs[1:], start=1):
        keep = (best >= x if mode == "maximum" else best <= x) | np.isnan(best)
        best, winner = np.where(keep, best, x), np.where(keep, winner, j)
    return winner


def _backward_reference(dy, xs, mode):
    """The documented gradients in NumPy, in dy's dtype."""
    n = len(xs)
    if mode == "add":
        return [dy.copy() for _ in xs]
    if mode == "subtract":
        return [dy.copy(), -dy]
    if mode == "average":
        return [dy / dy.dtype.type(n) for _ in xs]
    if mode == "multiply":
        grads = []
        for i in range(n):
            others = [x for j, x in enumerate(xs) if j != i]
            product = others[0] if others else np.ones_like(dy)
            for x in others[1:]:
                product = product * x
            grads.append(dy * product)
        return grads
    winner = _winners(xs, mode)
    return [np.where(winner == i, dy, dy.dtype.type(0)) for i in range(n)]


# ---------------------------------------------------------------- elementwise merges: values


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_forward_is_keras_left_to_right_order_bit_for_bit(rng, mode, dtype):
    xs = _inputs(rng, mode, (4, 3, 5), dtype)
    y = merge_forward(xs, mode)
    assert y.dtype == dtype and y.shape == (4, 3, 5) and y.flags.c_contiguous
    np.testing.assert_array_equal(y, _forward_reference(xs, mode))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_forward_matches_float64_formula(rng, mode, dtype):
    xs = _inputs(rng, mode, (6, 7), dtype)
    expected = _forward_reference([x.astype(np.float64) for x in xs], mode)
    tol = 1e-6 if dtype == np.float32 else 1e-15
    np.testing.assert_allclose(merge_forward(xs, mode), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_backward_matches_documented_formulas(rng, mode, dtype):
    xs = _inputs(rng, mode, (5, 6), dtype)
    dy = rng.standard_normal((5, 6)).astype(dtype)
    grads = merge_backward(dy, xs, mode)
    assert isinstance(grads, list) and len(grads) == len(xs)
    for got, want in zip(grads, _backward_reference(dy, xs, mode)):
        assert got.dtype == dtype and got.shape == dy.shape
        np.testing.assert_array_equal(got, want)
    # and within rounding of the same formulas in float64
    wide = _backward_reference(dy.astype(np.float64), [x.astype(np.float64) for x in xs], mode)
    tol = 1e-6 if dtype == np.float32 else 1e-15
    for got, want in zip(grads, wide):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_average_divides_by_the_count():
    # Keras divides the sum by len(inputs): x / 3 and x * (1 / 3) differ in the last bit for some x.
    x = np.arange(1, 2001, dtype=np.float32) / np.float32(7)
    zero = np.zeros_like(x)
    divided, multiplied = x / np.float32(3), x * (np.float32(1) / np.float32(3))
    assert np.any(divided != multiplied)
    np.testing.assert_array_equal(merge_forward([x, zero, zero], "average"), divided)
    np.testing.assert_array_equal(merge_backward(x, None, "average", needed=[True] * 3)[0], divided)


@pytest.mark.parametrize("mode", MODES)
def test_backward_matches_finite_differences(rng, mode):
    xs = _inputs(rng, mode, (2, 3))
    w = rng.standard_normal((2, 3))
    grads = merge_backward(w, xs, mode)
    for x, analytic in zip(xs, grads):
        check_gradient(lambda: float(np.sum(merge_forward(xs, mode) * w)), x, analytic)


TORCH_MERGE = {
    "add": lambda torch, a, b: torch.add(a, b),
    "average": lambda torch, a, b: torch.add(a, b),
    "subtract": lambda torch, a, b: torch.sub(a, b),
    "multiply": lambda torch, a, b: torch.mul(a, b),
    "maximum": lambda torch, a, b: torch.maximum(a, b),
    "minimum": lambda torch, a, b: torch.minimum(a, b),
}


@pytest.mark.parametrize("mode", MODES)
def test_matches_torch_float32(rng, torch, mode):
    # Random data has no ties, where torch splits a maximum's gradient 50/50 (see the ties test).
    xs = _inputs(rng, mode, (4, 5, 6), np.float32)
    w = rng.standard_normal((4, 5, 6)).astype(np.float32)
    ts = [torch.tensor(x, requires_grad=True) for x in xs]
    yt = ts[0]
    for t in ts[1:]:
        yt = TORCH_MERGE[mode](torch, yt, t)
    if mode == "average":
        yt = yt / len(ts)
    (yt * torch.tensor(w)).sum().backward()

    np.testing.assert_allclose(merge_forward(xs, mode), yt.detach().numpy(), rtol=1e-6, atol=1e-6)
    for got, t in zip(merge_backward(w, xs, mode), ts):
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["maximum", "minimum"])
def test_ties_go_to_the_earlier_input(mode):
    # columns: all three tie; inputs 1 and 2 tie on the extreme; inputs 0 and 1 tie; no tie (input 2)
    sign = 1.0 if mode == "maximum" else -1.0
    xs = [sign * np.array(v) for v in ([1.0, 2.0, 3.0, 0.0], [1.0, 5.0, 3.0, 1.0], [1.0, 5.0, 0.0, 4.0])]
    dy = np.array([10.0, 20.0, 30.0, 40.0])
    np.testing.assert_array_equal(merge_forward(xs, mode), sign * np.array([1.0, 5.0, 3.0, 4.0]))
    dx0, dx1, dx2 = merge_backward(dy, xs, mode)
    np.testing.assert_array_equal(dx0, [10.0, 0.0, 30.0, 0.0])
    np.testing.assert_array_equal(dx1, [0.0, 20.0, 0.0, 0.0])
    np.testing.assert_array_equal(dx2, [0.0, 0.0, 0.0, 40.0])


def test_ties_with_two_inputs_follow_tensorflow_x_ge_y(torch):
    # TensorFlow's Maximum gradient sends a tie to x (x >= y); torch splits it, which the sum still matches.
    x = np.array([1.0, 2.0, 3.0], np.float32)
    y = np.array([1.0, 1.0, 3.0], np.float32)
    dy = np.ones(3, np.float32)
    dx, dyy = merge_backward(dy, [x, y], "maximum")
    np.testing.assert_array_equal(dx, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(dyy, [0.0, 0.0, 0.0])
    xt, yt = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    torch.maximum(xt, yt).sum().backward()
    np.testing.assert_array_equal(xt.grad.numpy() + yt.grad.numpy(), dx + dyy)
    assert xt.grad.numpy()[0] == 0.5  # the 50/50 split that convx does not follow


@pytest.mark.parametrize("mode", ["maximum", "minimum"])
def test_nan_propagates_and_takes_the_gradient(mode):
    nan = np.nan
    xs = [np.array([nan, 1.0, 2.0]), np.array([1.0, nan, 2.0]), np.array([nan, 0.0, nan])]
    y = merge_forward(xs, mode)
    assert np.all(np.isnan(y))
    np.testing.assert_array_equal(NUMPY_OPS[mode](NUMPY_OPS[mode](xs[0], xs[1]), xs[2]), y)  # NaN like NumPy
    grads = merge_backward(np.ones(3), xs, mode)
    np.testing.assert_array_equal(np.stack(grads), [[1, 0, 0], [0, 1, 0], [0, 0, 1]])


@pytest.mark.parametrize("mode", ["add", "multiply", "average", "maximum", "minimum"])
def test_single_input(rng, mode):
    x = rng.standard_normal((3, 4))
    y = merge_forward([x], mode)
    assert y is not x
    np.testing.assert_array_equal(y, x)
    (dx,) = merge_backward(x, [x], mode)
    np.testing.assert_array_equal(dx, x)


# ---------------------------------------------------------------- elementwise merges: buffers and calling conventions


@pytest.mark.parametrize("mode", MODES)
def test_out_buffers_are_written_and_returned(rng, mode):
    xs = _inputs(rng, mode, (3, 4))
    dy = rng.standard_normal((3, 4))
    out = np.full((3, 4), np.nan)
    assert merge_forward(xs, mode, out=out) is out
    np.testing.assert_array_equal(out, merge_forward(xs, mode))
    bufs = [np.full((3, 4), np.nan) for _ in xs]
    grads = merge_backward(dy, xs, mode, out=tuple(bufs))
    for got, buf, want in zip(grads, bufs, merge_backward(dy, xs, mode)):
        assert got is buf
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode", MODES)
def test_needed_skips_gradients(rng, mode):
    xs = _inputs(rng, mode, (2, 5))
    dy = rng.standard_normal((2, 5))
    needed = [False, True] + [False] * (len(xs) - 2)
    spare = np.full((2, 5), 7.0)
    out = [spare] + [None] * (len(xs) - 1)
    grads = merge_backward(dy, xs, mode, needed=needed, out=out)
    assert grads[0] is None and all(g is None for g in grads[2:])
    np.testing.assert_array_equal(grads[1], merge_backward(dy, xs, mode)[1])
    np.testing.assert_array_equal(spare, 7.0)  # an out entry whose gradient is not needed is left alone


@pytest.mark.parametrize("mode", ["add", "subtract", "average"])
def test_modes_that_do_not_read_inputs_take_their_count(rng, mode):
    dy = rng.standard_normal((3, 2))
    xs = _inputs(rng, mode, (3, 2))
    want = merge_backward(dy, xs, mode)
    for kwargs in ({"needed": [True] * len(xs)}, {"out": [None] * len(xs)}):
        for got, expected in zip(merge_backward(dy, None, mode, **kwargs), want):
            np.testing.assert_array_equal(got, expected)
    # the inputs themselves are not read: any arrays of the right count will do
    assert len(merge_backward(dy, [None] * len(xs), mode)) == len(xs)


def test_add_backward_returns_copies_not_dy(rng):
    dy = rng.standard_normal((3, 4))
    grads = merge_backward(dy, None, "add", needed=[True, True])
    for g in grads:
        assert g is not dy and not np.shares_memory(g, dy)
        np.testing.assert_array_equal(g, dy)
    assert not np.shares_memory(grads[0], grads[1])


def test_subtract_needs_no_count(rng):
    dy = rng.standard_normal(5)
    dx0, dx1 = merge_backward(dy, None, "subtract")
    np.testing.assert_array_equal(dx0, dy)
    np.testing.assert_array_equal(dx1, -dy)


def test_non_contiguous_inputs_are_copied(rng):
    base = rng.standard_normal((2, 4, 6))
    xs = [base[0, :, ::2], base[1, :, 1::2]]
    for mode in ("add", "maximum"):
        np.testing.assert_array_equal(merge_forward(xs, mode), _forward_reference([x.copy() for x in xs], mode))
    dy = rng.standard_normal((8, 3))[::2]
    for got, want in zip(merge_backward(dy, xs, "multiply"), [dy * xs[1], dy * xs[0]]):
        np.testing.assert_array_equal(got, want)


def test_mode_is_case_insensitive(rng):
    xs = _inputs(rng, "add", (2, 2))
    np.testing.assert_array_equal(merge_forward(xs, "Maximum"), merge_forward(xs, "maximum"))


@pytest.mark.parametrize("mode", MODES)
def test_empty_and_zero_dimensional_arrays(mode):
    n = 2 if mode == "subtract" else 3
    for dtype in DTYPES:
        xs = [np.zeros((0, 4), dtype) for _ in range(n)]
        assert merge_forward(xs, mode).shape == (0, 4)
        assert all(g.shape == (0, 4) and g.dtype == dtype for g in merge_backward(xs[0], xs, mode))
    xs = [np.array(float(i + 2)) for i in range(n)]
    y = merge_forward(xs, mode)
    assert y.shape == () and y == _forward_reference(xs, mode)
    assert all(g.shape == () for g in merge_backward(np.array(1.0), xs, mode))


@pytest.mark.parametrize("mode", MODES)
def test_merge_deterministic_across_thread_counts(rng, mode):
    # 600 * 257 elements is above the merge kernels' parallel threshold (65536 elements).
    xs = _inputs(rng, mode, (600, 257), np.float32)
    dy = rng.standard_normal((600, 257)).astype(np.float32)
    assert_same_for_any_thread_count(lambda: (merge_forward(xs, mode), *merge_backward(dy, xs, mode)))


# ---------------------------------------------------------------- concatenation


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -3])
def test_concat_matches_numpy(rng, axis, dtype):
    sizes = [2, 1, 3]
    shapes = []
    for size in sizes:
        shape = [2, 3, 4, 5]
        shape[axis] = size
        shapes.append(tuple(shape))
    xs = [rng.standard_normal(s).astype(dtype) for s in shapes]
    y = concat_forward(xs, axis)
    assert y.dtype == dtype and y.flags.c_contiguous
    np.testing.assert_array_equal(y, np.concatenate(xs, axis=axis))
    parts = concat_backward(y, sizes, axis)
    assert [p.shape for p in parts] == shapes
    for got, want in zip(parts, xs):
        assert got.dtype == dtype and got.flags.c_contiguous
        np.testing.assert_array_equal(got, want)


def test_concat_matches_torch_cat_float32(rng, torch):
    xs = [rng.standard_normal((4, 3, s, 2)).astype(np.float32) for s in (1, 4, 2)]
    w = rng.standard_normal((4, 3, 7, 2)).astype(np.float32)
    ts = [torch.tensor(x, requires_grad=True) for x in xs]
    yt = torch.cat(ts, dim=2)
    (yt * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(concat_forward(xs, 2), yt.detach().numpy())
    for got, t in zip(concat_backward(w, [1, 4, 2], 2), ts):
        np.testing.assert_array_equal(got, t.grad.numpy())


def test_concat_backward_matches_finite_differences(rng):
    xs = [rng.standard_normal((2, s, 3)) for s in (2, 1)]
    w = rng.standard_normal((2, 3, 3))
    grads = concat_backward(w, [2, 1], axis=-2)
    for x, analytic in zip(xs, grads):
        check_gradient(lambda: float(np.sum(concat_forward(xs, -2) * w)), x, analytic)


def test_concat_edge_cases(rng):
    # one input; a part of size 0 along the axis; non-contiguous inputs; an empty batch
    x = rng.standard_normal((3, 4))
    y = concat_forward([x], 1)
    assert y is not x
    np.testing.assert_array_equal(y, x)
    empty = np.zeros((3, 0))
    np.testing.assert_array_equal(concat_forward([empty, x, empty], 1), x)
    parts = concat_backward(x, [0, 4, 0], 1)
    assert parts[0].shape == (3, 0) and parts[2].shape == (3, 0)
    np.testing.assert_array_equal(parts[1], x)
    base = rng.standard_normal((4, 8))
    np.testing.assert_array_equal(concat_forward([base[:, ::2], base[:2, 1::2]], 0),
                                  np.concatenate([base[:, ::2], base[:2, 1::2]], 0))
    np.testing.assert_array_equal(concat_backward(base.T, [3, 1], 1)[0], base.T[:, :3])
    batch = [np.zeros((0, 2), np.float32), np.zeros((0, 3), np.float32)]
    assert concat_forward(batch, 1).shape == (0, 5)
    assert [p.shape for p in concat_backward(np.zeros((0, 5), np.float32), [2, 3], 1)] == [(0, 2), (0, 3)]


def test_concat_out_buffers(rng):
    xs = [rng.standard_normal((3, s)) for s in (2, 5)]
    out = np.full((3, 7), np.nan)
    assert concat_forward(xs, -1, out=out) is out
    np.testing.assert_array_equal(out, np.concatenate(xs, -1))
    bufs = (np.empty((3, 2)), None)
    parts = concat_backward(out, [2, 5], 1, out=bufs)
    assert parts[0] is bufs[0]
    np.testing.assert_array_equal(parts[0], xs[0])
    np.testing.assert_array_equal(parts[1], xs[1])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat_deterministic_across_thread_counts(rng, axis):
    # 60 x 10 x (100 + 157 + 40) = 178200 elements, above the parallel threshold (65536); the copy
    # is split over the 60 or 600 rows before the axis (axis 0: one row, serial)
    sizes = [100, 157, 40]
    shapes = [[60, 10][:axis % 3] + [s] + [60, 10][axis % 3:] for s in sizes]
    xs = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]

    def forward_and_backward():
        y = concat_forward(xs, axis)
        return (y, *concat_backward(y, sizes, axis))

    assert_same_for_any_thread_count(forward_and_backward)
    y = forward_and_backward()
    np.testing.assert_array_equal(y[0], np.concatenate(xs, axis))
    for got, want in zip(y[1:], xs):
        np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------- argument errors


def test_merge_shape_mismatch_names_both_shapes():
    xs = [np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 4))]
    with pytest.raises(ValueError, match=r"inputs\[2\] has shape \(2, 4\) but inputs\[0\] has shape \(2, 3\)"):
        merge_forward(xs, "add")
    with pytest.raises(ValueError, match=r"inputs\[0\] has shape \(2, 3\) but dy has shape \(3, 2\)"):
        merge_backward(np.zeros((3, 2)), xs[:2], "multiply")


def test_merge_dtype_errors():
    with pytest.raises(TypeError, match=r"inputs\[1\] must have dtype float32 \(like the other inputs\), got float64"):
        merge_forward([np.zeros(3, np.float32), np.zeros(3)], "add")
    with pytest.raises(TypeError, match=r"inputs\[0\] must have dtype float32 or float64, got int64"):
        merge_forward([np.zeros(3, np.int64)], "add")
    with pytest.raises(TypeError, match=r"inputs\[0\] must have dtype float32 \(like the other inputs\), got float64"):
        merge_backward(np.zeros(3, np.float32), [np.zeros(3), np.zeros(3)], "maximum")
    with pytest.raises(TypeError, match=r"inputs\[1\] must be a numpy.ndarray, got list"):
        merge_forward([np.zeros(3), [0.0, 0.0, 0.0]], "add")


def test_merge_bad_mode_and_input_lists():
    x = np.zeros(3)
    with pytest.raises(ValueError, match=r"mode must be one of 'add', 'subtract', 'multiply', 'average', 'maximum', "
                                         r"'minimum', got 'mean'"):
        merge_forward([x, x], "mean")
    with pytest.raises(ValueError, match="got None"):
        merge_backward(x, [x], None)
    with pytest.raises(ValueError, match="mode 'subtract' needs exactly 2 inputs, got 3"):
        merge_forward([x, x, x], "subtract")
    with pytest.raises(ValueError, match="mode 'subtract' needs exactly 2 inputs, got 3"):
        merge_backward(x, [x, x, x], "subtract")
    with pytest.raises(ValueError, match="mode 'subtract' needs exactly 2 inputs, got 1"):
        merge_forward([x], "subtract")
    with pytest.raises(ValueError, match="inputs must hold at least one array, got an empty list"):
        merge_forward([], "add")
    with pytest.raises(TypeError, match="inputs must be a list or tuple of arrays, got ndarray"):
        merge_forward(np.zeros((2, 3)), "add")
    with pytest.raises(ValueError, match="mode 'multiply' needs the forward inputs, got inputs=None"):
        merge_backward(x, None, "multiply")
    with pytest.raises(ValueError, match="number of merged inputs is unknown"):
        merge_backward(x, None, "add")
    with pytest.raises(ValueError, match="out has 3 entries but the merge has 2 inputs"):
        merge_backward(x, [x, x], "average", out=[None] * 3)
    with pytest.raises(TypeError, match="needed must be None or a list or tuple of 2 bools"):
        merge_backward(x, [x, x], "maximum", needed=[True])
    with pytest.raises(TypeError, match="needed must hold bools, got 1"):
        merge_backward(x, [x, x], "maximum", needed=[1, 0])


def test_merge_bad_out():
    xs = [np.zeros((2, 3)), np.ones((2, 3))]
    with pytest.raises(ValueError, match=r"out must have shape \(2, 3\), got \(3, 2\)"):
        merge_forward(xs, "add", out=np.zeros((3, 2)))
    with pytest.raises(TypeError, match="out must have dtype float64, got float32"):
        merge_forward(xs, "add", out=np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="out must be a writeable C-contiguous array"):
        merge_forward(xs, "add", out=np.zeros((3, 2)).T)
    read_only = np.zeros((2, 3))
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="out must be a writeable C-contiguous array"):
        merge_forward(xs, "add", out=read_only)
    with pytest.raises(ValueError, match=r"out\[1\] \(gradient of inputs\[1\]\) must be a writeable C-contiguous"):
        merge_backward(xs[0], xs, "add", out=[None, read_only])
    with pytest.raises(ValueError, match=r"out\[0\] \(gradient of inputs\[0\]\) must have shape \(2, 3\), got \(6,\)"):
        merge_backward(xs[0], xs, "maximum", out=[np.zeros(6), None])
    with pytest.raises(TypeError, match="out must be None or a tuple of 2 arrays"):
        merge_backward(xs[0], xs, "maximum", out=[None] * 3)


def test_merge_out_must_not_overlap_what_is_read():
    base = np.zeros(10)
    x, y = base[:6], np.ones(6)
    with pytest.raises(ValueError, match=r"out and inputs\[1\] must be distinct arrays, got arrays that share memory"):
        merge_forward([y, x], "add", out=base[4:])  # partial overlap
    with pytest.raises(ValueError, match=r"out and inputs\[0\] must be distinct arrays"):
        merge_forward([y, x], "maximum", out=y)
    dy = np.ones(6)
    with pytest.raises(ValueError, match=r"out\[0\] and dy must be distinct arrays"):
        merge_backward(dy, None, "add", out=[dy, None])
    with pytest.raises(ValueError, match=r"out\[1\] and inputs\[0\] must be distinct arrays"):
        merge_backward(dy, [y, x], "multiply", out=[None, y])
    shared = np.zeros(6)
    with pytest.raises(ValueError, match=r"out\[1\] and out\[0\] must be distinct arrays"):
        merge_backward(dy, None, "subtract", out=[shared, shared])
    # an input that is not read (add) may be the output buffer of its own gradient
    (got,) = merge_backward(dy, [shared], "add", out=[shared])
    assert got is shared


def test_concat_errors():
    a = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"inputs\[1\] has shape \(3, 3\) but inputs\[0\] has shape \(2, 3\)"):
        concat_forward([a, np.zeros((3, 3))], axis=1)
    with pytest.raises(ValueError, match=r"inputs\[1\] has shape \(2, 3, 1\) but inputs\[0\] has shape \(2, 3\)"):
        concat_forward([a, np.zeros((2, 3, 1))], axis=0)
    with pytest.raises(TypeError, match=r"inputs\[1\] must have dtype float64 \(like the other inputs\), got float32"):
        concat_forward([a, np.zeros((2, 3), np.float32)], axis=0)
    with pytest.raises(ValueError, match=r"axis must be in \[-2, 2\) for arrays of rank 2, got 2"):
        concat_forward([a, a], axis=2)
    with pytest.raises(ValueError, match=r"axis must be in \[-2, 2\) for arrays of rank 2, got -3"):
        concat_backward(a, [1, 1], axis=-3)
    with pytest.raises(TypeError, match="axis must be an int, got float"):
        concat_forward([a, a], axis=1.0)
    with pytest.raises(ValueError, match="rank >= 1"):
        concat_forward([np.array(1.0)], axis=0)
    with pytest.raises(ValueError, match="inputs must hold at least one array"):
        concat_forward((), axis=0)
    with pytest.raises(ValueError, match=r"out must have shape \(4, 3\), got \(2, 6\)"):
        concat_forward([a, a], axis=0, out=np.zeros((2, 6)))
    with pytest.raises(ValueError, match=r"out and inputs\[1\] must be distinct arrays"):
        concat_forward([np.zeros((1, 3)), a[:1]], axis=0, out=a)
    with pytest.raises(ValueError, match=r"sizes \[1, 1\] add up to 2, but dy of shape \(2, 3\) has 3 along axis 1"):
        concat_backward(a, [1, 1], axis=1)
    with pytest.raises(ValueError, match="sizes must be >= 0"):
        concat_backward(a, [4, -1], axis=1)
    with pytest.raises(TypeError, match="sizes must be a non-empty list or tuple of ints"):
        concat_backward(a, 3, axis=1)
    with pytest.raises(ValueError, match=r"out\[0\] and dy must be distinct arrays"):
        concat_backward(a, [3], 1, out=[a])
    read_only = np.zeros((2, 1))
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match=r"out\[0\] \(gradient of inputs\[0\]\) must be a writeable C-contiguous"):
        concat_backward(a, [1, 2], 1, out=[read_only, None])
