"""The custom layers of Keras 3's guide "Making new layers and models via subclassing", as the guide
writes them, for any Keras-like module: ``guide_layers(keras, ops)`` with ``keras=convx, ops=convx.ops``
is the guide with its import swapped (``make_keras_custom_layers_reference.py`` runs the same code on
Keras 3 to pin the reference). ``ResidualBlock`` (a residual block as a Layer) and ``ScaledSum`` (a
non-trainable weight next to a trainable one, in training) follow the guide's patterns."""


def guide_layers(keras, ops):
    class Linear(keras.layers.Layer):
        def __init__(self, units=32, input_dim=32):
            super().__init__()
            self.w = self.add_weight(
                shape=(input_dim, units),
                initializer="random_normal",
                trainable=True,
            )
            self.b = self.add_weight(shape=(units,), initializer="zeros", trainable=True)

        def call(self, inputs):
            return ops.matmul(inputs, self.w) + self.b

    class ComputeSum(keras.layers.Layer):
        def __init__(self, input_dim):
            super().__init__()
            self.total = self.add_weight(
                initializer="zeros", shape=(input_dim,), trainable=False
            )

        def call(self, inputs):
            self.total.assign_add(ops.sum(inputs, axis=0))
            return self.total

    class DeferredLinear(keras.layers.Layer):
        def __init__(self, units=32, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(
                shape=(input_shape[-1], self.units),
                initializer="random_normal",
                trainable=True,
            )
            self.b = self.add_weight(
                shape=(self.units,), initializer="random_normal", trainable=True
            )

        def call(self, inputs):
            return ops.matmul(inputs, self.w) + self.b

        def get_config(self):
            config = super().get_config()
            config.update({"units": self.units})
            return config

    class MLPBlock(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.linear_1 = DeferredLinear(32)
            self.linear_2 = DeferredLinear(32)
            self.linear_3 = DeferredLinear(1)

        def call(self, inputs):
            x = self.linear_1(inputs)
            x = keras.activations.relu(x)
            x = self.linear_2(x)
            x = keras.activations.relu(x)
            return self.linear_3(x)

    class ActivityRegularizationLayer(keras.layers.Layer):
        def __init__(self, rate=1e-2):
            super().__init__()
            self.rate = rate

        def call(self, inputs):
            self.add_loss(self.rate * ops.sum(inputs))
            return inputs

    class OuterLayer(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.activity_reg = ActivityRegularizationLayer(1e-2)

        def call(self, inputs):
            return self.activity_reg(inputs)

    class ScaledSum(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.scale = self.add_weight(shape=(units,), initializer="ones", trainable=True)
            self.total = self.add_weight(shape=(units,), initializer="zeros", trainable=False)

        def call(self, inputs):
            self.total.assign_add(ops.mean(inputs, axis=0))
            return inputs * self.scale - 0.1 * self.total

    class ResidualBlock(keras.layers.Layer):
        def __init__(self, filters, **kwargs):
            super().__init__(**kwargs)
            self.filters = filters
            self.conv_1 = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")
            self.conv_2 = keras.layers.Conv2D(filters, 3, padding="same")

        def call(self, inputs):
            x = self.conv_1(inputs)
            x = self.conv_2(x)
            return ops.relu(x + inputs)

        def get_config(self):
            config = super().get_config()
            config.update({"filters": self.filters})
            return config

    class TinyResNet(keras.Model):
        def __init__(self, classes, **kwargs):
            super().__init__(**kwargs)
            self.block = ResidualBlock(4)
            self.head = keras.layers.Dense(classes)

        def call(self, inputs):
            x = self.block(inputs)
            x = ops.mean(x, axis=(1, 2))
            return ops.softmax(self.head(x))

    return dict(Linear=Linear, ComputeSum=ComputeSum, DeferredLinear=DeferredLinear, MLPBlock=MLPBlock,
                ActivityRegularizationLayer=ActivityRegularizationLayer, OuterLayer=OuterLayer, ScaledSum=ScaledSum,
                ResidualBlock=ResidualBlock, TinyResNet=TinyResNet)


def guide_models(keras, ops):
    """(name, model, loss, x shape, y kind) of each training comparison; built, weights not yet set."""
    g = guide_layers(keras, ops)
    models = []

    inputs = keras.Input(shape=(8,))
    models.append(("linear_mlp", keras.Model(inputs, g["MLPBlock"]()(g["Linear"](16, 8)(inputs))), "mse"))

    inputs = keras.Input(shape=(4,))
    x = g["DeferredLinear"](8)(inputs)
    x = g["OuterLayer"]()(x)
    models.append(("add_loss", keras.Model(inputs, g["DeferredLinear"](2)(x)), "mse"))

    inputs = keras.Input(shape=(3,))
    x = g["ScaledSum"](3)(keras.layers.Dense(3)(inputs))
    models.append(("non_trainable", keras.Model(inputs, keras.layers.Dense(2)(x)), "mse"))

    inputs = keras.Input(shape=(8, 8, 4))
    x = g["ResidualBlock"](4)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    models.append(("residual", keras.Model(inputs, outputs), "sparse_categorical_crossentropy"))

    inputs = keras.Input(shape=(4,))
    h = keras.layers.Dense(8)(inputs)
    y = ops.relu(h) * 2.0 + h[:, :1] - ops.mean(h, axis=-1, keepdims=True)
    y = ops.concatenate([y, ops.tanh(inputs) @ ops.ones((4, 3))], axis=-1)
    models.append(("functional_ops", keras.Model(inputs, keras.layers.Dense(2)(ops.square(y) / 4.0 + y)), "mse"))

    import numpy as np

    model = g["TinyResNet"](3)
    model(np.zeros((1, 8, 8, 4), "float32"))  # builds it, in Keras and in convx
    models.append(("subclassed_model", model, "sparse_categorical_crossentropy"))
    return models


def training_data(name, rng):
    """(x, y) for the model ``name`` (float32, fixed by ``rng``)."""
    import numpy as np

    if name in ("residual", "subclassed_model"):
        return rng.normal(size=(48, 8, 8, 4)).astype(np.float32), rng.integers(0, 3, size=48)
    width = {"linear_mlp": 8, "add_loss": 4, "non_trainable": 3, "functional_ops": 4}[name]
    outputs = {"linear_mlp": 1, "add_loss": 2, "non_trainable": 2, "functional_ops": 2}[name]
    return rng.normal(size=(48, width)).astype(np.float32), rng.normal(size=(48, outputs)).astype(np.float32)
