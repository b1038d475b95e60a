"""Embedding: integer indices to rows of a trainable table (Keras 3's ``keras.layers.Embedding``).

The forward pass gathers rows, the backward pass scatter-adds the output
gradient into the rows seen in the batch (``convx._kernels.embedding``), each
row summed in position order on one thread. The table's gradient is dense
(zero in the rows not seen), as the optimizers that update every weight at
every step (Adam, RMSprop, SGD with momentum, ...) need and as Keras applies
them (no convx optimizer updates lazily yet: plain SGD would leave the unseen
rows unchanged anyway, the others move them).
"""

import warnings

import numpy as np

from convx import constraints, initializers, regularizers
from convx._kernels import embedding as _embedding
from convx.layers.base import Layer
from convx.layers.node import is_symbolic

# Keras 3's short initializer names that convx.initializers spells in full
_INITIALIZER_ALIASES = {"uniform": "random_uniform", "normal": "random_normal"}


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value} "
                         f"(of type {type(value).__name__}).")
    return int(value)


class Embedding(Layer):
    """Turns non-negative integers (indexes) into dense vectors of fixed size.

    Parameters
    ----------
    input_dim : int
        Size of the vocabulary: the largest index + 1.
    output_dim : int
        Size of each vector.
    embeddings_initializer : default 'uniform' (uniform on [-0.05, 0.05))
    embeddings_regularizer : optional
        Its penalty of the table enters the training loss (and makes the gradient dense).
    embeddings_constraint : optional
        Applied to the table after each optimizer update.
    mask_zero : bool, default False
        Index 0 is padding: the layer's mask (``compute_mask``) is ``inputs != 0``, which the plan hands to
        the layers that use a mask (``GlobalAveragePooling1D``) through those that pass it on.
    weights : numpy.ndarray, optional
        Initial table (input_dim, output_dim).

    Notes
    -----
    Input: indices of any shape ``(batch, ...)``, integers or floats holding whole numbers (a model's
    float32 input), each in ``[0, input_dim)`` (else ValueError). Output: ``(batch, ..., output_dim)``
    float32.
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", embeddings_regularizer=None,
                 embeddings_constraint=None, mask_zero=False, weights=None, lora_rank=None, lora_alpha=None,
                 quantization_config=None, **kwargs):
        input_dim = _positive_int(input_dim, "input_dim")
        output_dim = _positive_int(output_dim, "output_dim")
        if kwargs.pop("input_length", None) is not None:
            warnings.warn("Argument `input_length` is deprecated. Just remove it.")
        if lora_rank is not None or quantization_config is not None:
            raise ValueError("Embedding supports neither LoRA nor a quantization_config; received "
                             f"lora_rank={lora_rank!r}, quantization_config={quantization_config!r}")
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = input_dim, output_dim
        if isinstance(embeddings_initializer, str):
            embeddings_initializer = _INITIALIZER_ALIASES.get(embeddings_initializer, embeddings_initializer)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero
        self.embeddings = None
        if weights is not None:
            self.build_for((None, None))
            self.set_weights(weights if isinstance(weights, list) and len(weights) == 1 else [weights])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(shape=(self.input_dim, self.output_dim),
                                          initializer=self.embeddings_initializer, name="embeddings",
                                          regularizer=self.embeddings_regularizer,
                                          constraint=self.embeddings_constraint)

    def check_input_shape(self, input_shape):
        """Any indices of rank >= 1: the table does not depend on the input's shape (as in Keras)."""
        if isinstance(input_shape, list) or len(input_shape) < 1:
            raise ValueError(f'Layer "{self.name}" expects one array of indices, received shape {input_shape}')

    def build_for(self, input_shape):
        output_shape = super().build_for(input_shape)
        return self.compute_output_shape(input_shape) if not isinstance(input_shape, list) else output_shape

    def compute_mask(self, inputs, mask=None):
        """``inputs != 0`` when ``mask_zero``, else None (Keras' rule)."""
        return np.not_equal(inputs, 0) if self.mask_zero else None

    def __call__(self, x, training=False):
        # indices keep their integer dtype (the base class would cast to float32)
        if is_symbolic(x):
            return self._call_symbolic(x)
        self._state = self._own_state
        x = np.asarray(x)
        self.build_for((None,) + x.shape[1:])
        return np.array(self.forward(x, training=training))

    def forward(self, x, training=False):
        state = self._state
        idx = _embedding.embedding_indices(x, self.input_dim, out=self._buffer("indices", (x.size,), np.int64))
        rows = _embedding.embedding_forward(self.embeddings.value, idx,
                                            out=self._buffer("y", (x.size, self.output_dim)))
        if self.mask_zero:
            state.mask = np.not_equal(idx.reshape(x.shape), 0, out=self._buffer("mask", x.shape, np.bool_))
        if training:
            state.indices, state.x_shape = idx, x.shape
        return rows.reshape(x.shape + (self.output_dim,))

    def backward(self, dy):
        """Writes the table's gradient (dense: zero in the rows not seen); indices have no gradient."""
        state = self._state
        grad = self.embeddings.grad
        _embedding.embedding_backward(dy.reshape(-1, self.output_dim), state.indices, self.input_dim, dense=True,
                                      out=grad, rows_out=self._buffer("rows", state.indices.shape, np.int64))
        if not state.need_dx:
            return None
        dx = self._buffer("dx", state.x_shape)
        dx.fill(0)
        return dx

    def get_config(self):
        config = super().get_config()
        config.pop("activity_regularizer", None)
        return {
            **config,
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
            "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "embeddings_constraint": constraints.serialize(self.embeddings_constraint),
            "mask_zero": self.mask_zero,
            "quantization_config": None,
        }

    # ----- Keras 3's saving hooks: the variables in order, under "0", "1", ...

    def save_own_variables(self, store):
        """Write the weights into ``store`` (a dict-like) under ``"0"``, ``"1"``, ... as Keras 3 does."""
        for i, variable in enumerate(self._weights):
            store[str(i)] = variable.numpy()

    def load_own_variables(self, store):
        """Read the weights that :meth:`save_own_variables` wrote."""
        if len(store.keys()) != len(self._weights):
            raise ValueError(f"Layer '{self.name}' expected {len(self._weights)} variables, but received "
                             f"{len(store.keys())} variables during loading. Expected: "
                             f"{[v.name for v in self._weights]}")
        for i, variable in enumerate(self._weights):
            variable.assign(np.asarray(store[str(i)]))


__all__ = ["Embedding"]
