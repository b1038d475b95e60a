"""Writes data/keras_conv_reference.npz: outputs of real Keras 3 (TensorFlow backend) for the
convolution layers of convolutional.py, on fixed inputs and weights, for test_conv_layers.py.

Run with TensorFlow + Keras 3 installed (not needed by the tests):
    python tests/layers/make_keras_conv_reference.py
"""

import os

import numpy as np

# name -> (layer class, constructor arguments, input shape); test_conv_layers.py imports this table
CASES = {
    "tconv_valid_s2": ("Conv2DTranspose", dict(filters=3, kernel_size=3, strides=2), (2, 5, 4, 2)),
    "tconv_valid_s2_op1": ("Conv2DTranspose", dict(filters=3, kernel_size=3, strides=2, output_padding=1),
                           (2, 5, 4, 2)),
    "tconv_same_s2": ("Conv2DTranspose", dict(filters=2, kernel_size=3, strides=2, padding="same"), (1, 4, 5, 3)),
    "tconv_same_s2_op1": ("Conv2DTranspose",
                          dict(filters=2, kernel_size=3, strides=2, padding="same", output_padding=1), (1, 4, 5, 3)),
    "tconv_same_s3_k2_op": ("Conv2DTranspose",
                            dict(filters=2, kernel_size=(2, 4), strides=(3, 2), padding="same", output_padding=(2, 1)),
                            (2, 3, 4, 2)),
    "tconv_valid_s3_k2": ("Conv2DTranspose", dict(filters=2, kernel_size=2, strides=3), (1, 3, 3, 2)),
    "tconv_same_dil2": ("Conv2DTranspose", dict(filters=2, kernel_size=3, padding="same", dilation_rate=2),
                        (1, 6, 5, 2)),
    "tconv1d_same_s2": ("Conv1DTranspose", dict(filters=3, kernel_size=4, strides=2, padding="same"), (2, 7, 2)),
    "depthwise_same_s2_m2": ("DepthwiseConv2D", dict(kernel_size=3, strides=2, padding="same", depth_multiplier=2),
                             (2, 7, 8, 3)),
    "separable_same": ("SeparableConv2D", dict(filters=4, kernel_size=3, padding="same", depth_multiplier=2),
                       (1, 6, 5, 3)),
    "depthwise1d_same_s2_m2": ("DepthwiseConv1D", dict(kernel_size=3, strides=2, padding="same", depth_multiplier=2),
                               (2, 9, 3)),
    "separable1d_dil2": ("SeparableConv1D", dict(filters=4, kernel_size=3, dilation_rate=2, depth_multiplier=2),
                         (1, 11, 3)),
    "conv1d_causal_dil2": ("Conv1D", dict(filters=3, kernel_size=3, padding="causal", dilation_rate=2), (2, 9, 2)),
}


def main():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    rng = np.random.default_rng(7)
    out = {}
    for name, (cls, kwargs, shape) in CASES.items():
        layer = getattr(keras.layers, cls)(**kwargs)
        x = rng.standard_normal(shape).astype(np.float32)
        layer.build(shape)
        weights = [rng.standard_normal(w.shape).astype(np.float32) for w in layer.weights]
        layer.set_weights(weights)
        y = np.asarray(layer(x))
        out[f"{name}/x"] = x
        out[f"{name}/y"] = y
        for i, w in enumerate(weights):
            out[f"{name}/w{i}"] = w
        out[f"{name}/n_weights"] = np.array(len(weights))
        out[f"{name}/params"] = np.array(layer.count_params())
        out[f"{name}/config_keys"] = np.array(sorted(layer.get_config()))
        out[f"{name}/weight_names"] = np.array([w.path.split("/")[-1] for w in layer.weights])
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "keras_conv_reference.npz")
    np.savez_compressed(path, keras_version=np.array(keras.__version__), **out)
    print(f"wrote {path} (Keras {keras.__version__})")


if __name__ == "__main__":
    main()
