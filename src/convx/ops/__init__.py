"""``convx.ops``: the ``keras.ops`` functions a CNN user needs, each with its gradient.

On NumPy arrays the ops compute eagerly and return arrays; on symbolic
tensors (``convx.Input`` and layers' outputs) they add nodes to the model's
graph; inside a custom layer's ``call()`` in training they are recorded on a
tape and differentiated by the model's backward pass (:mod:`convx.ops.core`).
``convx.ops.nn`` holds the neural-network ops; they are also here, as in Keras.
"""

from convx.ops import nn
from convx.ops.nn import (average_pool, conv, depthwise_conv, elu, gelu, leaky_relu, log_softmax, max_pool,
                          one_hot, relu, relu6, sigmoid, silu, softmax, softplus, swish, tanh)
from convx.ops.numpy import (abs, absolute, add, amax, amin, argmax, argmin, cast, clip, concatenate, convert_to_numpy,
                             convert_to_tensor, divide, dot, einsum, equal, exp, expand_dims, floor, floor_divide,
                             get_item, greater, greater_equal, less, less_equal, log, logical_and, logical_or, matmul,
                             max, maximum, mean, min, minimum, mod, multiply, ndim, negative, not_equal, ones_like,
                             ones, power, prod, reshape, round, shape, sign, split, sqrt, square, squeeze, stack, std,
                             subtract, sum, take, transpose, true_divide, var, where, zeros, zeros_like)
