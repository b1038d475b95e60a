"""NumPy-like ops of ``convx.ops`` (Keras 3's ``keras.ops`` names and signatures), each with its backward.

Each public function takes NumPy arrays, numbers, Variables, TapeTensors or
KerasTensors (see :mod:`convx.ops.core`); gradients of broadcast arguments are
summed back to their shapes.
"""

import builtins

import numpy as np

from convx.ops.core import TapeTensor, add_arrays, apply, value_of
from convx.ops.operations import record_all
from convx.layers.node import KerasTensor


def _float(x):
    x = np.asarray(x)
    return x if x.dtype.kind in "fc" else x.astype(np.float32)


# ----- elementwise arithmetic -----------------------------------------------------------------------------------------

def _binary(name, forward, grad_a, grad_b):
    def op(x1, x2):
        def impl(a, b):
            out = forward(a, b)
            return out, lambda g: (grad_a(g, a, b, out), grad_b(g, a, b, out))

        return apply(name, impl, x1, x2)

    op.__name__ = name
    op.__doc__ = f"Elementwise ``{name}`` with NumPy broadcasting (Keras' ``ops.{name}``)."
    return op


add = _binary("add", add_arrays, lambda g, a, b, y: g, lambda g, a, b, y: g)
subtract = _binary("subtract", np.subtract, lambda g, a, b, y: g, lambda g, a, b, y: -g)
multiply = _binary("multiply", np.multiply, lambda g, a, b, y: g * b, lambda g, a, b, y: g * a)
divide = _binary("divide", np.true_divide, lambda g, a, b, y: g / b, lambda g, a, b, y: -g * y / b)
true_divide = divide
maximum = _binary("maximum", np.maximum, lambda g, a, b, y: g * (a >= b), lambda g, a, b, y: g * (a < b))
minimum = _binary("minimum", np.minimum, lambda g, a, b, y: g * (a <= b), lambda g, a, b, y: g * (a > b))


def _power_grad_b(g, a, b, y):
    a = np.asarray(a)
    positive = a > 0
    return g * y * np.log(np.where(positive, a, 1)) * positive


power = _binary("power", np.power, lambda g, a, b, y: g * b * np.power(a, np.asarray(b) - 1), _power_grad_b)


def _constant_binary(name, forward):
    def op(x1, x2):
        return apply(name, lambda a, b: (forward(a, b), None), x1, x2)

    op.__name__ = name
    op.__doc__ = f"Elementwise ``{name}`` (no gradient)."
    return op


floor_divide = _constant_binary("floor_divide", np.floor_divide)
mod = _constant_binary("mod", np.mod)
equal = _constant_binary("equal", np.equal)
not_equal = _constant_binary("not_equal", np.not_equal)
less = _constant_binary("less", np.less)
less_equal = _constant_binary("less_equal", np.less_equal)
greater = _constant_binary("greater", np.greater)
greater_equal = _constant_binary("greater_equal", np.greater_equal)
logical_and = _constant_binary("logical_and", np.logical_and)
logical_or = _constant_binary("logical_or", np.logical_or)


def _unary(name, forward, grad):
    def op(x):
        def impl(a):
            out = forward(a)
            return out, lambda g: (grad(g, a, out),)

        return apply(name, impl, x)

    op.__name__ = name
    op.__doc__ = f"Elementwise ``{name}`` (Keras' ``ops.{name}``)."
    return op


negative = _unary("negative", np.negative, lambda g, x, y: -g)
abs = _unary("abs", np.abs, lambda g, x, y: g * np.sign(x))
absolute = abs
exp = _unary("exp", lambda x: np.exp(_float(x)), lambda g, x, y: g * y)
log = _unary("log", lambda x: np.log(_float(x)), lambda g, x, y: g / x)
sqrt = _unary("sqrt", lambda x: np.sqrt(_float(x)), lambda g, x, y: g / (2 * y))
square = _unary("square", np.square, lambda g, x, y: 2 * g * x)
sign = _unary("sign", np.sign, lambda g, x, y: None)
floor = _unary("floor", np.floor, lambda g, x, y: None)
round = _unary("round", np.round, lambda g, x, y: None)


def clip(x, x_min, x_max):
    """``x`` limited to ``[x_min, x_max]``; the gradient flows where ``x`` is inside."""
    def impl(a):
        return np.clip(a, x_min, x_max), lambda g: (g * ((a >= x_min) & (a <= x_max)),)

    return apply("clip", impl, x)


def where(condition, x1=None, x2=None):
    """``x1`` where ``condition`` holds, else ``x2`` (broadcast); with neither: the indices (``np.nonzero``)."""
    if x1 is None and x2 is None:
        return apply("where", lambda c: (np.nonzero(c), None), condition)
    if x1 is None or x2 is None:
        raise ValueError("where(): give both `x1` and `x2`, or neither")

    def impl(c, a, b):
        c = np.asarray(c, dtype=bool)
        return np.where(c, a, b), lambda g: (None, np.where(c, g, 0), np.where(c, 0, g))

    return apply("where", impl, condition, x1, x2)


# ----- matrix products ------------------------------------------------------------------------------------------------

def matmul(x1, x2):
    """Matrix product with NumPy's ``matmul`` rules (batch axes broadcast, 1-D operands promoted)."""
    def impl(a, b):
        out = np.matmul(a, b)

        def vjp(g):
            # 1-D operands as Keras and NumPy promote them: a (K,) -> (1, K), b (K,) -> (K, 1)
            a2 = a.reshape(1, -1) if a.ndim == 1 else a
            b2 = b.reshape(-1, 1) if b.ndim == 1 else b
            batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
            g2 = np.reshape(g, batch + (a2.shape[-2], b2.shape[-1]))
            ga = unbroadcast_matmul(np.matmul(g2, np.swapaxes(b2, -1, -2)), a2.shape)
            gb = unbroadcast_matmul(np.matmul(np.swapaxes(a2, -1, -2), g2), b2.shape)
            return ga.reshape(a.shape), gb.reshape(b.shape)

        return out, vjp

    return apply("matmul", impl, x1, x2)


def unbroadcast_matmul(grad, shape):
    """The batch axes of a matmul gradient summed back to the operand's."""
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape[:-2]) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=axes, keepdims=True) if axes else grad


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def dot(x1, x2):
    """NumPy's ``dot``: a product for scalars, ``matmul`` when ``x2`` has at most 2 axes, else the sum
    over the last axis of ``x1`` and the second-to-last of ``x2``."""
    ndim1, ndim2 = len(shape(x1)), len(shape(x2))
    if ndim1 == 0 or ndim2 == 0:
        return multiply(x1, x2)
    if ndim2 <= 2:
        return matmul(x1, x2)
    a = _LETTERS[:ndim1 - 1] + "z"
    b = _LETTERS[ndim1 - 1:ndim1 + ndim2 - 3] + "z" + "y"
    return einsum(f"{a},{b}->{a[:-1]}{b[:-2]}y", x1, x2)


def _einsum_grad(g, out_spec, other, other_spec, target_spec, target_shape):
    """d einsum / d one operand: an einsum of ``g`` and the other operand, broadcast over the operand's
    indices that appear nowhere else (summed away in the forward)."""
    known = set(out_spec) | set(other_spec)
    kept = "".join(c for c in target_spec if c in known or c == ".")
    if other is None:
        grad = np.einsum(f"{out_spec}->{kept}", g)
    else:
        grad = np.einsum(f"{out_spec},{other_spec}->{kept}", g, other)
    if kept == target_spec:
        return grad
    index = tuple(slice(None) if c in known else None for c in target_spec)
    return np.broadcast_to(grad[index], target_shape)


def _explicit_ellipsis(specs, out_spec, ndims):
    """The subscripts with ``...`` spelled out as letters (right-aligned, shared), so gradients may drop them."""
    if "..." not in out_spec and not any("..." in spec for spec in specs):
        return specs, out_spec
    used = set("".join(specs) + out_spec)
    free = [c for c in _LETTERS + _LETTERS.upper() if c not in used]
    widths = [ndim - len(spec.replace("...", "")) for spec, ndim in zip(specs, ndims) if "..." in spec]
    block = "".join(free[:builtins.max(widths)])
    specs = [spec.replace("...", block[len(block) - (ndim - len(spec) + 3):]) if "..." in spec else spec
             for spec, ndim in zip(specs, ndims)]
    return specs, out_spec.replace("...", block)


def einsum(subscripts, *operands):
    """``np.einsum`` for one or two operands with explicit output (``'ij,jk->ik'``, ``'...ij,jk->...ik'``)."""
    if "->" not in subscripts or len(operands) not in (1, 2):
        raise ValueError("convx.ops.einsum supports one or two operands and an explicit output ('ij,jk->ik'); "
                         f"received {subscripts!r} with {len(operands)} operands")
    inputs, out_spec = subscripts.replace(" ", "").split("->")
    specs = inputs.split(",")
    if any(len(set(s.replace(".", ""))) != len(s.replace(".", "")) for s in specs):
        raise ValueError(f"convx.ops.einsum: an index repeated within one operand (a trace) is not supported: "
                         f"{subscripts!r}")

    def impl(*arrays):
        out = np.einsum(subscripts, *arrays)
        specs_, out_spec_ = _explicit_ellipsis(specs, out_spec, [np.ndim(a) for a in arrays])

        def vjp(g):
            if len(arrays) == 1:
                return (_einsum_grad(g, out_spec_, None, "", specs_[0], arrays[0].shape),)
            a, b = arrays
            return (_einsum_grad(g, out_spec_, b, specs_[1], specs_[0], a.shape),
                    _einsum_grad(g, out_spec_, a, specs_[0], specs_[1], b.shape))

        return out, vjp

    return apply("einsum", impl, *operands)


# ----- reductions -----------------------------------------------------------------------------------------------------

def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(builtins.sorted(int(a) % builtins.max(ndim, 1) for a in axes))


def _expand(g, axis, keepdims, ndim):
    """A reduction's gradient with the reduced axes back (length 1)."""
    if keepdims or ndim == 0:
        return g
    return np.expand_dims(g, _axes(axis, ndim))


def _reduction(name, forward, grad):
    def op(x, axis=None, keepdims=False):
        def impl(a):
            out = forward(a, axis, keepdims)

            def vjp(g):
                return (grad(_expand(g, axis, keepdims, a.ndim), a, _expand(out, axis, keepdims, a.ndim), axis),)

            return out, vjp

        return apply(name, impl, x)

    op.__name__ = name
    op.__doc__ = f"``{name}`` over ``axis`` (int, tuple or None for all), keeping them as length 1 when ``keepdims``."
    return op


def _count(a, axis):
    return int(np.prod([a.shape[i] for i in _axes(axis, a.ndim)])) if a.ndim else 1


def _extremum_grad(g, a, y, axis):
    mask = (a == y)
    return g * mask / mask.sum(axis=_axes(axis, a.ndim), keepdims=True)  # ties share the gradient, as TF does


def _var_grad(g, a, y, axis):
    mean = np.mean(a, axis=axis, keepdims=True)
    return g * 2 * (a - mean) / _count(a, axis)


def _std_grad(g, a, y, axis):
    mean = np.mean(a, axis=axis, keepdims=True)
    return g * (a - mean) / (_count(a, axis) * np.where(y == 0, 1, y))


def _prod_grad(g, a, y, axis):
    """The product of every other element of each reduced group (exclusive products from both ends: no
    division, so zeros are exact)."""
    axes = _axes(axis, a.ndim)
    rest = [i for i in range(a.ndim) if i not in axes]
    moved = np.transpose(a, rest + list(axes))
    flat = moved.reshape(moved.shape[:len(rest)] + (-1,))
    ones = np.ones(flat.shape[:-1] + (1,), dtype=flat.dtype)
    left = np.cumprod(np.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    right = np.cumprod(np.concatenate([ones, flat[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    others = (left * right).reshape(moved.shape)
    return g * np.transpose(others, np.argsort(rest + list(axes)))


sum = _reduction("sum", lambda a, axis, k: np.sum(a, axis=axis, keepdims=k), lambda g, a, y, axis: np.broadcast_to(g, a.shape))
mean = _reduction("mean", lambda a, axis, k: np.mean(a, axis=axis, keepdims=k),
                  lambda g, a, y, axis: np.broadcast_to(g / _count(a, axis), a.shape))
max = _reduction("max", lambda a, axis, k: np.max(a, axis=axis, keepdims=k), _extremum_grad)
min = _reduction("min", lambda a, axis, k: np.min(a, axis=axis, keepdims=k), _extremum_grad)
prod = _reduction("prod", lambda a, axis, k: np.prod(a, axis=axis, keepdims=k), _prod_grad)
var = _reduction("var", lambda a, axis, k: np.var(a, axis=axis, keepdims=k), _var_grad)
std = _reduction("std", lambda a, axis, k: np.std(a, axis=axis, keepdims=k), _std_grad)
amax, amin = max, min


def argmax(x, axis=None, keepdims=False):
    """Indices of the maxima (no gradient)."""
    return apply("argmax", lambda a: (np.argmax(a, axis=axis, keepdims=keepdims), None), x)


def argmin(x, axis=None, keepdims=False):
    """Indices of the minima (no gradient)."""
    return apply("argmin", lambda a: (np.argmin(a, axis=axis, keepdims=keepdims), None), x)


# ----- shapes ---------------------------------------------------------------------------------------------------------

def _reshaping(name, forward):
    """An op that only moves values (reshape, expand_dims, ...): its gradient is ``g`` reshaped back."""
    def impl(a):
        a = np.asarray(a)
        return forward(a), lambda g: (np.reshape(g, a.shape),)

    return impl


def reshape(x, newshape):
    """``x`` with shape ``newshape`` (one entry may be -1)."""
    newshape = (newshape,) if isinstance(newshape, (int, np.integer)) else tuple(-1 if n is None else n for n in newshape)
    return apply("reshape", _reshaping("reshape", lambda a: np.reshape(a, newshape)), x)


def expand_dims(x, axis):
    """``x`` with a new axis of length 1 at ``axis`` (int or tuple)."""
    return apply("expand_dims", _reshaping("expand_dims", lambda a: np.expand_dims(a, axis)), x)


def squeeze(x, axis=None):
    """``x`` without its axes of length 1 (or only ``axis``)."""
    return apply("squeeze", _reshaping("squeeze", lambda a: np.squeeze(a, axis)), x)


def transpose(x, axes=None):
    """``x`` with its axes permuted (reversed when ``axes`` is None)."""
    def impl(a):
        order = tuple(range(a.ndim))[::-1] if axes is None else tuple(int(i) % a.ndim for i in axes)
        return np.transpose(a, order), lambda g: (np.transpose(g, np.argsort(order)),)

    return apply("transpose", impl, x)


def _pieces_op(name, forward, axis):
    def impl(*arrays):
        out = forward(arrays)

        def vjp(g):
            return _split_grad(g, arrays, axis, name == "stack")

        return out, vjp

    return impl


def _split_grad(g, arrays, axis, stacked):
    if stacked:
        return tuple(np.take(g, i, axis=axis) for i in range(len(arrays)))
    bounds = np.cumsum([np.shape(a)[axis] for a in arrays])[:-1]
    return tuple(np.split(g, bounds, axis=axis))


def concatenate(xs, axis=0):
    """The tensors of ``xs`` joined along ``axis``."""
    return apply("concatenate", _pieces_op("concatenate", lambda arrays: np.concatenate(arrays, axis=axis), axis), *xs)


def stack(x, axis=0):
    """The tensors of ``x`` stacked along a new ``axis``."""
    return apply("stack", _pieces_op("stack", lambda arrays: np.stack(arrays, axis=axis), axis), *x)


def split(x, indices_or_sections, axis=0):
    """``x`` cut along ``axis`` into equal sections (an int) or at ``indices``: a list of tensors."""
    length = shape(x)[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        if length is None or length % indices_or_sections:
            raise ValueError(f"split(): axis {axis} of length {length} does not divide into {indices_or_sections} "
                             "equal sections")
        step = length // indices_or_sections
        bounds = [i * step for i in range(indices_or_sections + 1)]
    else:
        bounds = [0] + [int(i) for i in indices_or_sections] + [length]
    ndim = len(shape(x))
    pieces = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        key = (slice(None),) * (axis % ndim) + (slice(start, stop),)
        pieces.append(get_item(x, key))
    return pieces


def get_item(x, key):
    """``x[key]`` with basic indices (ints, slices, None, Ellipsis)."""
    def impl(a):
        def vjp(g):
            grad = np.zeros(np.shape(a), dtype=np.result_type(g))
            grad[key] = g
            return (grad,)

        return np.asarray(a)[key], vjp

    _check_basic_key(key)
    return apply("get_item", impl, x)


def _check_basic_key(key):
    for k in key if isinstance(key, tuple) else (key,):
        if not (k is None or k is Ellipsis or isinstance(k, (slice, int, np.integer))):
            raise TypeError(f"convx tensors take basic indices (ints, slices, None, ...); for gathers use "
                            f"convx.ops.take. Received index {k!r}")


def take(x, indices, axis=None):
    """Values of ``x`` at ``indices`` along ``axis`` (the flattened ``x`` when None); repeated indices add
    their gradients."""
    def impl(a, idx):
        idx = np.asarray(idx).astype(np.int64)
        out = np.take(a, idx, axis=axis)

        def vjp(g):
            grad = np.zeros(a.size if axis is None else a.shape, dtype=g.dtype)
            if axis is None:
                np.add.at(grad, idx, g)
                return grad.reshape(a.shape), None
            moved = np.moveaxis(grad, axis, 0)
            np.add.at(moved, idx, np.moveaxis(g, tuple(range(axis, axis + idx.ndim)), tuple(range(idx.ndim))))
            return grad, None

        return out, vjp

    return apply("take", impl, x, indices)


# ----- conversions ----------------------------------------------------------------------------------------------------

def cast(x, dtype):
    """``x`` converted to ``dtype``; the gradient flows back between floating dtypes."""
    dtype = np.dtype(dtype)

    def impl(a):
        a = np.asarray(a)
        differentiable = a.dtype.kind == "f" and dtype.kind == "f"
        return a.astype(dtype), (lambda g: (g.astype(a.dtype),)) if differentiable else None

    return apply("cast", impl, x)


def zeros_like(x, dtype=None):
    """Zeros of ``x``'s shape (and dtype unless given)."""
    return apply("zeros_like", lambda a: (np.zeros_like(a, dtype=dtype), None), x)


def ones_like(x, dtype=None):
    """Ones of ``x``'s shape (and dtype unless given)."""
    return apply("ones_like", lambda a: (np.ones_like(a, dtype=dtype), None), x)


def ones(shape, dtype=None):
    """An array of ones (float32 unless ``dtype``)."""
    return np.ones(shape, dtype=dtype or np.float32)


def zeros(shape, dtype=None):
    """An array of zeros (float32 unless ``dtype``)."""
    return np.zeros(shape, dtype=dtype or np.float32)


def convert_to_tensor(x, dtype=None, sparse=None):
    """``x`` as a tensor: a NumPy array (float32 for Python floats), or the tensor itself."""
    if sparse:
        raise ValueError("convx has no sparse tensors; received sparse=True")
    if isinstance(x, (TapeTensor, KerasTensor)):
        return x if dtype is None or np.dtype(dtype) == np.dtype(x.dtype) else cast(x, dtype)
    value = value_of(x)
    if dtype is None and isinstance(value, float) or dtype is None and np.asarray(value).dtype == np.float64 \
            and not isinstance(value, np.ndarray):
        dtype = np.float32  # Keras' default float type for Python floats
    return np.asarray(value, dtype=dtype)


def convert_to_numpy(x):
    """A NumPy copy of ``x``'s values (a constant to any tape)."""
    if isinstance(x, KerasTensor):
        raise TypeError(f"convert_to_numpy() of a symbolic tensor: it has no values yet ({x!r})")
    return np.array(value_of(x))


def shape(x):
    """The shape of ``x`` as a tuple (``None`` for unknown dimensions of symbolic tensors)."""
    if isinstance(x, (TapeTensor, KerasTensor)) or hasattr(x, "shape"):
        return tuple(x.shape)
    return np.shape(x)


def ndim(x):
    return len(shape(x))


record_all(globals())  # symbolic calls record their Keras 3 Operation (convx.ops.operations)
