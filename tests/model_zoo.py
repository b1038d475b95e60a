"""One small model per layer convx supports (and a few graphs), with non-trivial weights, for file round trips.

``MODELS`` maps a name to ``(builder, input shapes)``; ``builder(api)`` builds the
model with ``api`` = convx (Keras builds the same through the file).
"""

import numpy as np

IMAGE, SEQUENCE, VOLUME = (8, 8, 3), (10, 3), (4, 4, 4, 2)


def _one(layer_factory, shape=IMAGE, head=True):
    def build(api):
        inputs = api.Input(shape)
        x = layer_factory(api.layers)(inputs)
        if head:
            x = api.layers.Dense(2)(api.layers.Flatten()(x))
        return api.Model(inputs, x)

    return build, [shape]


def _merge(cls_name):
    def build(api):
        a, b = api.Input(IMAGE), api.Input(IMAGE)
        if cls_name == "Concatenate":
            x = api.layers.Concatenate(axis=-1)([a, b])
        else:
            x = getattr(api.layers, cls_name)()([a, b])
        return api.Model([a, b], api.layers.Dense(2)(api.layers.GlobalAveragePooling2D()(x)))

    return build, [IMAGE, IMAGE]


def _residual(api):
    L = api.layers
    inputs = api.Input(IMAGE, name="image")
    x = L.Conv2D(8, 3, padding="same", use_bias=False)(inputs)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    y = L.SeparableConv2D(8, 3, padding="same", activation="relu")(x)
    y = L.DepthwiseConv2D(3, padding="same")(y)
    x = L.Add()([x, y])
    x = L.Conv2DTranspose(4, 3, strides=2, padding="same")(x)
    x = L.MaxPooling2D()(x)
    x = L.GlobalAveragePooling2D()(x)
    outputs = L.Dense(3, activation="softmax", name="probabilities")(x)
    return api.Model(inputs, outputs)


def _sequential(api):
    L = api.layers
    inner = api.Sequential([L.Dense(6, activation="relu"), L.Dense(4)], name="inner")
    return api.Sequential([api.Input(IMAGE), L.Conv2D(4, 3, activation="relu"), L.MaxPooling2D(), L.Flatten(),
                           inner, L.Dense(2, activation="softmax")])


def _graph_ops(api):
    """Ops between layers (Keras 3 saves each as an Operation entry of config.json)."""
    L, ops = api.layers, api.ops
    inputs = api.Input(IMAGE)
    x = L.Conv2D(4, 3, padding="same")(inputs)
    x = ops.relu(x) + x
    x = ops.concatenate([ops.sigmoid(x) * 2.0, ops.tanh(x) - 0.5], axis=-1)
    x = ops.mean(x, axis=(1, 2))
    x = ops.matmul(x, np.linspace(-1.0, 1.0, 40, dtype=np.float32).reshape(8, 5)) / 3.0
    x = ops.reshape(ops.expand_dims(ops.softmax(x, axis=-1), 1), (-1, 5))
    x = ops.clip(x, 0.05, 0.9) ** 2 + ops.sum(ops.square(x), axis=-1, keepdims=True)
    return api.Model(inputs, L.Dense(2)(x))


MODELS = {
    "residual": (_residual, [IMAGE]),
    "graph_ops": (_graph_ops, [IMAGE]),
    "sequential_nested": (_sequential, [IMAGE]),
    "Conv2D": _one(lambda L: L.Conv2D(4, 3, strides=2, padding="same", activation="relu")),
    "Conv2DTranspose": _one(lambda L: L.Conv2DTranspose(4, 3, strides=2)),
    "DepthwiseConv2D": _one(lambda L: L.DepthwiseConv2D(3, depth_multiplier=2)),
    "SeparableConv2D": _one(lambda L: L.SeparableConv2D(4, 3, depth_multiplier=2)),
    "Conv1D": _one(lambda L: L.Conv1D(4, 3, dilation_rate=2), SEQUENCE),
    "Conv1DTranspose": _one(lambda L: L.Conv1DTranspose(4, 3, strides=2), SEQUENCE),
    "DepthwiseConv1D": _one(lambda L: L.DepthwiseConv1D(3), SEQUENCE),
    "SeparableConv1D": _one(lambda L: L.SeparableConv1D(4, 3), SEQUENCE),
    "Dense": _one(lambda L: L.Dense(5, activation="gelu")),
    "BatchNormalization": _one(lambda L: L.BatchNormalization()),
    "LayerNormalization": _one(lambda L: L.LayerNormalization()),
    "GroupNormalization": _one(lambda L: L.GroupNormalization(groups=3)),
    "Normalization": _one(lambda L: L.Normalization(mean=[0.1, 0.2, 0.3], variance=[1.0, 2.0, 0.5])),
    "MaxPooling2D": _one(lambda L: L.MaxPooling2D()),
    "AveragePooling2D": _one(lambda L: L.AveragePooling2D(padding="same")),
    "MaxPooling1D": _one(lambda L: L.MaxPooling1D(), SEQUENCE),
    "AveragePooling1D": _one(lambda L: L.AveragePooling1D(), SEQUENCE),
    "GlobalMaxPooling2D": _one(lambda L: L.GlobalMaxPooling2D(), head=False),
    "GlobalAveragePooling1D": _one(lambda L: L.GlobalAveragePooling1D(), SEQUENCE, head=False),
    "GlobalMaxPooling1D": _one(lambda L: L.GlobalMaxPooling1D(), SEQUENCE, head=False),
    "Activation": _one(lambda L: L.Activation("swish")),
    "ReLU": _one(lambda L: L.ReLU(max_value=6.0)),
    "LeakyReLU": _one(lambda L: L.LeakyReLU(negative_slope=0.2)),
    "ELU": _one(lambda L: L.ELU()),
    "PReLU": _one(lambda L: L.PReLU()),
    "Softmax": _one(lambda L: L.Softmax()),
    "Dropout": _one(lambda L: L.Dropout(0.3)),
    "SpatialDropout2D": _one(lambda L: L.SpatialDropout2D(0.3)),
    "SpatialDropout1D": _one(lambda L: L.SpatialDropout1D(0.3), SEQUENCE),
    "SpatialDropout3D": _one(lambda L: L.SpatialDropout3D(0.3), VOLUME),
    "GaussianNoise": _one(lambda L: L.GaussianNoise(0.1)),
    "GaussianDropout": _one(lambda L: L.GaussianDropout(0.1)),
    "ActivityRegularization": _one(lambda L: L.ActivityRegularization(l1=0.01)),
    "Reshape": _one(lambda L: L.Reshape((4, 48))),
    "Permute": _one(lambda L: L.Permute((2, 1, 3))),
    "ZeroPadding2D": _one(lambda L: L.ZeroPadding2D(((1, 2), (0, 1)))),
    "ZeroPadding1D": _one(lambda L: L.ZeroPadding1D(2), SEQUENCE),
    "Cropping2D": _one(lambda L: L.Cropping2D(((1, 0), (2, 1)))),
    "Cropping1D": _one(lambda L: L.Cropping1D((1, 2)), SEQUENCE),
    "UpSampling2D": _one(lambda L: L.UpSampling2D(2)),
    "UpSampling1D": _one(lambda L: L.UpSampling1D(2), SEQUENCE),
    "Rescaling": _one(lambda L: L.Rescaling(1 / 255.0, offset=-0.5)),
    "Resizing": _one(lambda L: L.Resizing(6, 5, interpolation="bilinear")),
    "CenterCrop": _one(lambda L: L.CenterCrop(6, 6)),
    "RandomFlip": _one(lambda L: L.RandomFlip()),
    "RandomRotation": _one(lambda L: L.RandomRotation(0.1)),
    "RandomTranslation": _one(lambda L: L.RandomTranslation(0.1, 0.1)),
    "RandomZoom": _one(lambda L: L.RandomZoom(0.1)),
    "RandomContrast": _one(lambda L: L.RandomContrast(0.2)),
    "RandomBrightness": _one(lambda L: L.RandomBrightness(0.2)),
    "Add": _merge("Add"),
    "Subtract": _merge("Subtract"),
    "Multiply": _merge("Multiply"),
    "Average": _merge("Average"),
    "Maximum": _merge("Maximum"),
    "Minimum": _merge("Minimum"),
    "Concatenate": _merge("Concatenate"),
}


def build(api, name, seed=0):
    """The model ``name`` built with ``api``, its weights drawn (variances positive) so outputs are not trivial."""
    builder, _ = MODELS[name]
    model = builder(api)
    rng = np.random.default_rng(seed)
    weights = []
    for w in model.weights:
        value = rng.normal(0.0, 0.5, w.shape).astype(np.float32)
        if "variance" in w.path or w.path.endswith("count"):
            value = np.abs(value) + 0.5
        weights.append(value)
    model.set_weights(weights)
    return model


def inputs(name, batch=3, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.random((batch,) + shape, dtype=np.float32) for shape in MODELS[name][1]]
