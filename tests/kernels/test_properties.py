"""Property-based checks of the kernels' contract over their arguments (Hypothesis).

Every call either raises one of the documented exceptions (TypeError or
ValueError naming the argument; MemoryError for sizes that cannot be
allocated) or matches an independent NumPy reference: over shapes, strides,
dilation, padding, dtypes, memory layouts (non-contiguous inputs), huge
(overflow-sized) window arguments, and ``out`` buffers that are read-only or
share memory with an input. The default run draws a bounded number of
examples; the ``slow`` variants draw more.
"""

import numpy as np
import pytest
from conftest import optional

optional("hypothesis", "test")  # the test extra brings it; CI requires it
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from convx._kernels import conv, dense, depthwise, pool

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DOCUMENTED = (TypeError, ValueError, MemoryError)

# window arguments: small ones, and sizes whose arithmetic overflows 64 bits unless checked
WINDOW = st.one_of(st.integers(1, 3), st.sampled_from([2**31, 2**40, 2**62, 2**63 - 1, 2**63, 2**64]))
PAIR = st.one_of(WINDOW, st.tuples(WINDOW, WINDOW))


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _layout(data, a):
    """`a` as drawn: C-contiguous, or a non-contiguous view with the same values."""
    if data.draw(st.booleans(), label="non-contiguous"):
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        wide[..., ::2] = a
        return wide[..., ::2]
    return a


def _axis(size, kernel, stride, dilation, same):
    """TensorFlow's output length and padding before, in Python integers (never overflowing)."""
    span = (kernel - 1) * dilation + 1
    if same:
        out = -(-size // stride)
        return out, max((out - 1) * stride + span - size, 0) // 2
    return (max(size - span, -1) // stride + 1 if size >= span else 0), 0


def _fits(*values):
    return all(v < 2**63 for v in values)


def _conv_reference(x, kernel, bias, strides, dilation, same):
    n, h, w, _ = x.shape
    kh, kw, _, cout = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    oh, top = _axis(h, kh, sh, dh, same)
    ow, left = _axis(w, kw, sw, dw, same)
    y = np.zeros((n, oh, ow, cout))
    for oy in range(oh):
        for ox in range(ow):
            for ky in range(kh):
                for kx in range(kw):
                    iy, ix = oy * sh - top + ky * dh, ox * sw - left + kx * dw
                    if 0 <= iy < h and 0 <= ix < w:
                        y[:, oy, ox] += x[:, iy, ix].astype(np.float64) @ kernel[ky, kx].astype(np.float64)
    return y + (0 if bias is None else bias)


@st.composite
def conv_cases(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    n, h, w = draw(st.integers(0, 2)), draw(st.integers(1, 7)), draw(st.integers(1, 7))
    cin, cout = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((n, h, w, cin)).astype(dtype)
    kernel = rng.standard_normal((kh, kw, cin, cout)).astype(dtype)
    bias = rng.standard_normal(cout).astype(dtype) if draw(st.booleans()) else None
    return dict(x=x, kernel=kernel, bias=bias, strides=draw(PAIR), dilation=draw(PAIR),
                padding=draw(st.sampled_from(["valid", "same"])))


def _check_conv_forward(data, case):
    x, kernel, bias = case["x"], case["kernel"], case["bias"]
    args = dict(bias=bias, strides=case["strides"], padding=case["padding"], dilation=case["dilation"])
    strides, dilation = _pair(case["strides"]), _pair(case["dilation"])
    same = case["padding"] == "same"
    spans = [(k - 1) * d + 1 for k, d in zip(kernel.shape[:2], dilation)]
    try:
        y = conv.conv2d_forward(_layout(data, x), _layout(data, kernel), **args)
    except DOCUMENTED as e:
        # the only refusals: sizes past 2**63, a window larger than the input without padding
        too_big = not _fits(*strides, *dilation, *spans)
        empty = not same and any(s > size for s, size in zip(spans, x.shape[1:3]))
        assert too_big or empty, f"unexpected refusal: {e!r}"
        return
    assert _fits(*strides, *dilation, *spans)
    expected = _conv_reference(x, kernel, bias, strides, dilation, same)
    tol = 1e-4 if x.dtype == np.float32 else 1e-10
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol * 10)


@FAST
@given(st.data(), conv_cases())
def test_conv2d_forward_raises_or_matches_reference(data, case):
    _check_conv_forward(data, case)


@pytest.mark.slow
@SLOW
@given(st.data(), conv_cases())
def test_conv2d_forward_raises_or_matches_reference_long(data, case):
    _check_conv_forward(data, case)


def _check_depthwise_forward(data, case):
    x, kernel = case["x"], case["kernel"][:, :, :, :2]
    cin = x.shape[3]
    kernel = np.ascontiguousarray(kernel)
    strides, dilation = _pair(case["strides"]), _pair(case["dilation"])
    same = case["padding"] == "same"
    spans = [(k - 1) * d + 1 for k, d in zip(kernel.shape[:2], dilation)]
    try:
        y = depthwise.depthwise_forward(_layout(data, x), kernel, strides=case["strides"], padding=case["padding"],
                                        dilation=case["dilation"])
    except DOCUMENTED as e:
        too_big = not _fits(*strides, *dilation, *spans)
        empty = not same and any(s > size for s, size in zip(spans, x.shape[1:3]))
        assert too_big or empty, f"unexpected refusal: {e!r}"
        return
    m = kernel.shape[3]
    expected = np.concatenate(
        [_conv_reference(x[..., c:c + 1], kernel[:, :, c:c + 1, :], None, strides, dilation, same)
         for c in range(cin)], axis=3)
    tol = 1e-4 if x.dtype == np.float32 else 1e-10
    np.testing.assert_allclose(y, expected.reshape(y.shape[:3] + (cin * m,)), rtol=tol, atol=tol * 10)


@FAST
@given(st.data(), conv_cases())
def test_depthwise_forward_raises_or_matches_reference(data, case):
    _check_depthwise_forward(data, case)


def _pool_reference(x, pool_size, strides, same, op):
    n, h, w, c = x.shape
    (kh, kw), (sh, sw) = pool_size, strides
    oh, top = _axis(h, kh, sh, 1, same)
    ow, left = _axis(w, kw, sw, 1, same)
    y = np.empty((n, oh, ow, c))
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * sh - top, ox * sw - left
            cells = x[:, max(y0, 0):min(y0 + kh, h), max(x0, 0):min(x0 + kw, w)].astype(np.float64)
            y[:, oy, ox] = cells.max(axis=(1, 2)) if op == "max" else cells.mean(axis=(1, 2))
    return y


@st.composite
def pool_cases(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = (draw(st.integers(0, 2)), draw(st.integers(1, 7)), draw(st.integers(1, 7)), draw(st.integers(1, 3)))
    x = np.random.default_rng(draw(st.integers(0, 2**16))).standard_normal(shape).astype(dtype)
    strides = draw(st.one_of(st.none(), PAIR))
    return dict(x=x, pool_size=draw(PAIR), strides=strides, padding=draw(st.sampled_from(["valid", "same"])),
                op=draw(st.sampled_from(["max", "avg"])))


def _check_pool_forward(data, case):
    x, pool_size, same = case["x"], _pair(case["pool_size"]), case["padding"] == "same"
    strides = pool_size if case["strides"] is None else _pair(case["strides"])
    forward = pool.max_pool2d_forward if case["op"] == "max" else pool.avg_pool2d_forward
    try:
        y = forward(_layout(data, x), case["pool_size"], case["strides"], case["padding"])
    except DOCUMENTED as e:
        too_big = not _fits(*pool_size, *strides) or pool_size[0] * x.shape[2] * x.shape[3] >= 2**31
        empty = not same and any(k > size for k, size in zip(pool_size, x.shape[1:3]))
        assert too_big or empty, f"unexpected refusal: {e!r}"
        return
    y = y[0] if case["op"] == "max" else y
    expected = _pool_reference(x, pool_size, strides, same, case["op"])
    tol = 1e-5 if x.dtype == np.float32 else 1e-12  # an average of float32 values may cancel: atol too
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)


@FAST
@given(st.data(), pool_cases())
def test_pool_forward_raises_or_matches_reference(data, case):
    _check_pool_forward(data, case)


@pytest.mark.slow
@SLOW
@given(st.data(), pool_cases())
def test_pool_forward_raises_or_matches_reference_long(data, case):
    _check_pool_forward(data, case)


# ---------------------------------------------------------------- out buffers: read-only, aliasing

def _conv_setup(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 5, 4)).astype(dtype)
    return x, rng.standard_normal((1, 1, 4, 4)).astype(dtype)


# each: (name, call(out) writing an output shaped like x, a (2, 5, 5, 4) array) for the aliasing checks
def _calls(x, kernel):
    dz = np.ones_like(x)
    return {
        "conv2d_forward": lambda out: conv.conv2d_forward(x, kernel, out=out),
        "conv2d_backward dx": lambda out: conv.conv2d_backward(x, kernel, dz, out=(out, None, None)),
        "depthwise_forward": lambda out: depthwise.depthwise_forward(x, kernel[:, :, :, :1], out=out),
        "avg_pool2d_forward": lambda out: pool.avg_pool2d_forward(x, 1, out=out),
        "max_pool2d_forward": lambda out: pool.max_pool2d_forward(x, 1, out=(out, None)),
        "dense_forward": lambda out: dense.dense_forward(x.reshape(50, 4), kernel[0, 0], out=out.reshape(50, 4)),
    }


@pytest.mark.parametrize("name", sorted(_calls(*_conv_setup(np.float32))))
def test_out_sharing_memory_with_an_input_is_refused(name):
    x, kernel = _conv_setup(np.float32)
    call = _calls(x, kernel)[name]
    before = x.copy()
    with pytest.raises(ValueError, match="must be distinct arrays, got arrays that share memory"):
        call(x)
    np.testing.assert_array_equal(x, before)  # refused before anything was written


@FAST
@given(st.data())
def test_out_partly_over_an_input_is_refused(data):
    """An out view that overlaps x by any number of elements, at any offset, is refused; a disjoint one works."""
    x_size = 2 * 5 * 5 * 4
    buf = np.zeros(3 * x_size, np.float64)
    start = data.draw(st.integers(0, x_size), label="x offset")
    x = buf[start:start + x_size].reshape(2, 5, 5, 4)
    x[...] = np.random.default_rng(start).standard_normal(x.shape)
    other = data.draw(st.integers(0, 2 * x_size), label="out offset")
    out = buf[other:other + x_size].reshape(2, 5, 5, 4)
    kernel = np.eye(4).reshape(1, 1, 4, 4)
    overlap = max(start, other) < min(start, other) + x_size
    if overlap:
        with pytest.raises(ValueError, match="share memory"):
            conv.conv2d_forward(x, kernel, out=out)
    else:
        expected = x.copy()
        conv.conv2d_forward(x, kernel, out=out)
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("name", sorted(_calls(*_conv_setup(np.float32))))
def test_read_only_out_is_refused(name):
    x, kernel = _conv_setup(np.float32)
    out = np.zeros_like(x)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="writeable C-contiguous"):
        _calls(x, kernel)[name](out)
    assert not out.any()


def test_gemm_c_read_only_or_aliasing_is_refused():
    from convx._kernels import gemm

    a = np.ones((4, 4))
    c = np.zeros((4, 4))
    c.flags.writeable = False
    with pytest.raises(ValueError, match="writeable C-contiguous"):
        gemm.gemm(a, a, c)
    with pytest.raises(ValueError, match="c and a must be distinct arrays"):
        gemm.gemm(a, np.eye(4), a)


def test_activation_backward_in_place_or_refused():
    """Elementwise: out may be exactly y or dy (each value read before its own is written), not partly over them."""
    from convx._kernels import activations

    rng = np.random.default_rng(2)
    y = rng.random(20)
    dy = rng.standard_normal(20)
    expected = activations.activation_backward(y, dy, "sigmoid")
    got = activations.activation_backward(y, dy.copy(), "sigmoid", out=None)
    np.testing.assert_array_equal(got, expected)
    dy2 = dy.copy()
    np.testing.assert_array_equal(activations.activation_backward(y, dy2, "sigmoid", out=dy2), expected)
    buf = np.concatenate([dy, [0.0]])
    with pytest.raises(ValueError, match="share memory"):
        activations.activation_backward(y, buf[:20], "sigmoid", out=buf[1:])


# ---------------------------------------------------------------- overflow-sized arguments

@pytest.mark.parametrize(
    "kwargs",
    [
        dict(dilation=(2**62, 1)),
        dict(dilation=(1, 2**63 - 1)),
        dict(strides=2**63),
        dict(dilation=2**64),
    ],
)
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_overflowing_window_arguments_raise_value_error(kwargs, padding):
    x = np.ones((1, 4, 4, 1))
    kernel = np.ones((3, 3, 1, 1))
    with pytest.raises(ValueError, match="2\\*\\*63"):
        conv.conv2d_forward(x, kernel, padding=padding, **kwargs)
    with pytest.raises(ValueError, match="2\\*\\*63"):
        depthwise.depthwise_forward(x, kernel, padding=padding, **kwargs)


def test_huge_strides_within_range_give_one_output_per_axis():
    """strides 2**62 with 'same' padding: ceil(4 / 2**62) = 1 output, as TensorFlow's rule says."""
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    y = conv.conv2d_forward(x, np.ones((1, 1, 1, 1)), strides=2**62, padding="same")
    assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == 0.0
    y, _ = pool.max_pool2d_forward(x, 2, strides=2**62, padding="same")
    assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == 5.0
