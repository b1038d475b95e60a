"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate.

Each is called on a list of tensors (``Add()([a, b])``) and computed by
``convx._kernels.merge``; the lower-case functions (``add([a, b])``) are
Keras' one-line forms.
"""

from convx._kernels import merge as _merge
from convx.layers.base import Layer, format_shape


class Merge(Layer):
    """Elementwise merge of a list of same-shaped tensors; ``mode`` names the kernel operation."""

    mode = None
    min_inputs, max_inputs = 2, None

    def _check_input_list(self, input_shape):
        if not isinstance(input_shape, list):
            raise ValueError(
                f'A merge layer ("{self.name}") should be called on a list of inputs. '
                f"Received: input_shape={input_shape} (not a list of shapes)"
            )
        count = len(input_shape)
        if count < self.min_inputs or (self.max_inputs is not None and count > self.max_inputs):
            expected = (f"exactly {self.min_inputs}" if self.max_inputs == self.min_inputs
                        else f"at least {self.min_inputs}")
            raise ValueError(
                f'A `{type(self).__name__}` layer ("{self.name}") should be called on {expected} inputs. '
                f"Received: {count} inputs"
            )

    def compute_output_shape(self, input_shape):
        self._check_input_list(input_shape)
        first = input_shape[0]
        for other in input_shape[1:]:
            if len(other) != len(first) or any(a is not None and b is not None and a != b
                                               for a, b in zip(first[1:], other[1:])):
                raise ValueError(
                    f'Layer "{self.name}" ({type(self).__name__}): inputs have incompatible shapes. '
                    f"Received shapes {format_shape(first)} and {format_shape(other)}"
                )
        return tuple(first)

    def forward(self, inputs, training=False):
        shape = inputs[0].shape
        for x in inputs[1:]:
            if x.shape != shape:
                raise ValueError(f'Layer "{self.name}": inputs have incompatible shapes. '
                                 f"Received shapes {format_shape(shape)} and {format_shape(x.shape)}")
        if training:
            self._state.inputs = inputs if self._backward_reads_inputs() else None
        return _merge.merge_forward(inputs, self.mode, out=self._buffer("y", shape, inputs[0].dtype))

    def _backward_reads_inputs(self):
        return self.mode in ("multiply", "maximum", "minimum")

    def backward(self, dy, needed=None):
        """Gradients w.r.t. each input (None where ``needed[i]`` is False)."""
        state = self._state
        count = len(state.inputs) if state.inputs is not None else len(self.input_shape)
        needed = [True] * count if needed is None else list(needed)
        out = [self._buffer(f"dx{i}", dy.shape, dy.dtype) if need else None for i, need in enumerate(needed)]
        return _merge.merge_backward(dy, state.inputs, self.mode, needed=needed, out=out)


class Add(Merge):
    """Sum of a list of same-shaped inputs: ``Add()([a, b])``, shape kept."""

    mode = "add"

    def backward(self, dy, needed=None):
        # d(sum)/d(input) is the identity: every input receives dy itself (never written to afterwards)
        count = len(self.input_shape)
        return [dy if needed is None or needed[i] else None for i in range(count)]


class Subtract(Merge):
    """``inputs[0] - inputs[1]`` (exactly two inputs)."""

    mode = "subtract"
    max_inputs = 2


class Multiply(Merge):
    """Elementwise product of a list of inputs."""

    mode = "multiply"


class Average(Merge):
    """Elementwise mean of a list of inputs (their sum divided by their count)."""

    mode = "average"


class Maximum(Merge):
    """Elementwise maximum of a list of inputs (the gradient goes to the first maximal input)."""

    mode = "maximum"


class Minimum(Merge):
    """Elementwise minimum of a list of inputs (the gradient goes to the first minimal input)."""

    mode = "minimum"


class Concatenate(Layer):
    """Concatenates a list of inputs along ``axis``.

    Parameters
    ----------
    axis : int, default -1
        Inputs must have the same shape on every other axis.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def _axis(self, rank):
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 1 <= axis < rank:
            raise ValueError(f'Layer "{self.name}": axis={self.axis} is out of range for inputs of rank {rank} '
                             "(the batch axis cannot be concatenated)")
        return axis

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, list) or len(input_shape) < 1:
            raise ValueError(
                f'A `Concatenate` layer ("{self.name}") should be called on a list of inputs. '
                f"Received: input_shape={input_shape}"
            )
        axis = self._axis(len(input_shape[0]))
        first = input_shape[0]
        for other in input_shape[1:]:
            if len(other) != len(first) or any(a is not None and b is not None and a != b
                                               for i, (a, b) in enumerate(zip(first[1:], other[1:]), 1) if i != axis):
                raise ValueError(
                    f'A `Concatenate` layer ("{self.name}") requires inputs with matching shapes except for the '
                    f"concatenation axis ({self.axis}). Received shapes {format_shape(first)} and "
                    f"{format_shape(other)}"
                )
        sizes = [s[axis] for s in input_shape]
        total = None if any(s is None for s in sizes) else sum(sizes)
        return tuple(first[:axis]) + (total,) + tuple(first[axis + 1:])

    def forward(self, inputs, training=False):
        axis = self._axis(inputs[0].ndim)
        shape = self.compute_output_shape([x.shape for x in inputs])
        if training:
            self._state.sizes = [x.shape[axis] for x in inputs]
        return _merge.concat_forward(inputs, axis, out=self._buffer("y", shape, inputs[0].dtype))

    def backward(self, dy, needed=None):
        """Gradients w.r.t. each input: the slices of ``dy`` along the axis."""
        sizes = self._state.sizes
        needed = [True] * len(sizes) if needed is None else list(needed)
        axis = self._axis(dy.ndim)
        out = []
        for i, size in enumerate(sizes):
            shape = dy.shape[:axis] + (size,) + dy.shape[axis + 1:]
            out.append(self._buffer(f"dx{i}", shape, dy.dtype))
        grads = _merge.concat_backward(dy, sizes, axis, out=out)
        return [g if need else None for g, need in zip(grads, needed)]

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def _functional(layer_class, doc):
    def merge(inputs, **kwargs):
        return layer_class(**kwargs)(inputs)

    merge.__doc__ = doc
    return merge


add = _functional(Add, "``Add(**kwargs)(inputs)``.")
subtract = _functional(Subtract, "``Subtract(**kwargs)(inputs)``.")
multiply = _functional(Multiply, "``Multiply(**kwargs)(inputs)``.")
average = _functional(Average, "``Average(**kwargs)(inputs)``.")
maximum = _functional(Maximum, "``Maximum(**kwargs)(inputs)``.")
minimum = _functional(Minimum, "``Minimum(**kwargs)(inputs)``.")


def concatenate(inputs, axis=-1, **kwargs):
    """``Concatenate(axis=axis, **kwargs)(inputs)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)
