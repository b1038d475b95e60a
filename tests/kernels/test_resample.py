"""Tests for convx._kernels.resample: resize (nearest, bilinear) and the projective sampler with fill modes.

The references below are TensorFlow 2.21's outputs (``keras.ops.image.resize`` and
``keras.ops.image.affine_transform`` under Keras 3.15.1, float32) for the images
that ``_image`` builds; the kernels must reproduce them bit for bit. Gradients are
checked by central differences in float64; every result must be bit-identical for
1, 2 and 3 threads.
"""

import numpy as np
import pytest

from convx._kernels.resample import resize_backward, resize_forward, transform_backward, transform_forward
from gradcheck import check_gradient
from thread_identity import assert_same_for_any_thread_count

FILL_MODES = ["reflect", "wrap", "constant", "nearest"]
INTERPOLATIONS = ["bilinear", "nearest"]
# translation; rotation by 30 degrees about a point (ImageProjectiveTransformV3 rows, output -> input)
TRANSFORMS = np.array([[1, 0, -1.3, 0, 1, 2.6, 0, 0], [0.8660254, -0.5, 1.2, 0.5, 0.8660254, -0.9, 0, 0]], np.float32)


def _image(shape):
    """The deterministic test image the references were computed for (multiples of 0.25 in [-1.25, 3.75])."""
    return ((np.arange(np.prod(shape)) * 7 % 11) * 0.5 - 1.25).astype(np.float32).reshape(shape)


# keras.ops.image.affine_transform(_image((2, 3, 4, 1)), TRANSFORMS, interpolation, fill_mode, fill_value=0.5)
AFFINE = {('constant', 'bilinear'): [0.5, 0.14999988675117493, 0.9800002574920654, 0.8400000333786011, 0.5, 0.5, 0.5, 0.5, 0.5,
                            0.5, 0.5, 0.5, 0.5450000166893005, 2.370769500732422, 1.635898470878601,
                            0.4495190382003784, 0.8381087779998779, 2.1783628463745117, 0.4708349108695984,
                            0.6039383411407471, 0.6851289868354797, 2.2878217697143555, -0.6942289471626282,
                            1.19684898853302],
 ('constant', 'nearest'): [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 3.75, 1.75, 0.5, 0.25,
                           3.75, 1.25, -0.75, -0.25, 3.25, -1.25, 2.25],
 ('nearest', 'bilinear'): [-0.75, -0.75, 1.700000286102295, 1.3499999046325684, -0.75, -0.75, 1.700000286102295,
                           1.3499999046325684, -0.75, -0.75, 1.700000286102295, 1.3499999046325684,
                           0.9500001668930054, 3.6179490089416504, 1.635898470878601, 0.24999991059303284,
                           0.8499999046325684, 2.1783628463745117, 0.4708349108695984, 0.6480764150619507,
                           0.6851289868354797, 2.2878217697143555, -0.6942289471626282, 1.5432665348052979],
 ('nearest', 'nearest'): [-0.75, -0.75, 2.75, 0.75, -0.75, -0.75, 2.75, 0.75, -0.75, -0.75, 2.75, 0.75, 0.25, 3.75,
                          1.75, -0.75, 0.25, 3.75, 1.25, -0.75, -0.25, 3.25, -1.25, 2.25],
 ('reflect', 'bilinear'): [0.29999983310699463, -0.75, 1.700000286102295, 1.3499999046325684, 0.8099998831748962,
                           0.7499997615814209, 0.8900002241134644, 1.8599998950958252, 0.34000009298324585,
                           -0.04999971389770508, 0.8599998950958252, 1.3900001049041748, 0.9500001668930054,
                           3.6179490089416504, 1.635898470878601, 0.24999991059303284, 0.8499999046325684,
                           2.1783628463745117, 0.4708349108695984, 0.6480764150619507, 0.6851289868354797,
                           2.2878217697143555, -0.6942289471626282, 1.5432665348052979],
 ('reflect', 'nearest'): [-0.75, -0.75, 2.75, 0.75, 1.75, 1.75, -0.25, 3.25, -1.25, -1.25, 2.25, 0.25, 0.25, 3.75,
                          1.75, -0.75, 0.25, 3.75, 1.25, -0.75, -0.25, 3.25, -1.25, 2.25],
 ('wrap', 'bilinear'): [2.700000286102295, 3.75, 1.2000000476837158, 0.8499999046325684, 2.190000057220459,
                        2.250000238418579, 0.690000057220459, 1.6599998474121094, 2.700000286102295, 3.75,
                        1.2000000476837158, 0.8499999046325684, 0.34999990463256836, -1.0189106464385986,
                        1.635898470878601, 0.75, 1.3499999046325684, 2.1783628463745117, 0.4708349108695984,
                        1.1480764150619507, 0.6851289868354797, 2.2878217697143555, -0.6942289471626282,
                        2.1538476943969727],
 ('wrap', 'nearest'): [3.75, 3.75, 2.25, 0.25, 1.25, 1.25, -0.25, 3.25, 3.75, 3.75, 2.25, 0.25, 0.75, -1.25, 1.75,
                       -0.25, 0.75, 3.75, 1.25, -0.25, -0.25, 3.25, -1.25, 1.75]}
# keras.ops.image.resize(_image((1, 5, 6, 2)), size, interpolation)
RESIZE = {('bilinear', (3, 4)): [0.2916666269302368, 1.9583333730697632, 1.1666667461395264, 1.4583332538604736,
                        2.0416667461395264, 0.9583333730697632, 0.1666666865348816, 0.4583333134651184, 0.625, 2.75,
                        2.875, 0.875, -0.375, 1.75, 1.875, -0.125, 2.3333334922790527, 0.7916669845581055,
                        0.45833343267440796, 1.6666662693023682, 1.3333334922790527, -0.20833301544189453,
                        2.2083327770233154, 2.0416669845581055],
 ('bilinear', (7, 9)): [-1.25, 2.25, -0.5, 3.0, 0.5000001192092896, 3.0833330154418945, 1.500000238418579,
                        0.41666603088378906, 2.5, 0.5, 2.5833330154418945, 1.5000001192092896, -0.08333396911621094,
                        2.500000238418579, 0.0, 0.75, 0.75, -1.25, 0.7499998807907104, 1.1071429252624512,
                        1.4999998807907104, 1.8571429252624512, 1.9761903285980225, 2.4642856121063232,
                        0.8809521794319153, 1.8928569555282593, 1.3571429252624512, 0.9285714030265808,
                        1.9642856121063232, 0.3571430444717407, 1.3928569555282593, 1.3571431636810303,
                        0.4285714030265808, 1.1785714626312256, -0.39285707473754883, 0.7499998807907104,
                        1.6785712242126465, 1.2500003576278687, 2.4285712242126465, 1.2142858505249023,
                        2.7738091945648193, 1.4285712242126465, 1.154761791229248, 2.4285714626312256,
                        0.7142857909202576, 1.4642858505249023, 0.928571343421936, 0.23809552192687988,
                        1.9285714626312256, 0.19047605991363525, 0.9642857909202576, 0.9285712242126465,
                        -0.24999964237213135, 1.6785712242126465, 0.25, 3.75, 1.0, 1.75, 2.0, 1.1920928955078125e-07,
                        3.000000238418579, 1.000000238418579, 1.25, 2.0, -0.49999988079071045, 2.0833330154418945,
                        0.5000002384185791, -0.5833339691162109, 1.5, -0.5, 2.25, 0.25, 2.750000476837158,
                        2.3214282989501953, 1.5357143878936768, 2.2857143878936768, 0.5714284181594849,
                        1.8452383279800415, 1.5714285373687744, 0.2261899709701538, 1.7857143878936768,
                        0.5714282989501953, 1.3452383279800415, 1.309523582458496, -0.2738100290298462,
                        1.2619050741195679, 0.07142829895019531, 2.000000476837158, 0.8214282989501953,
                        2.750000476837158, 2.892857074737549, 0.8928570747375488, 2.0714285373687744,
                        1.6428570747375488, 1.1071429252624512, 2.1190474033355713, 0.5357141494750977,
                        1.0238093137741089, 1.1428570747375488, 0.3214285969734192, 1.6190474033355713,
                        0.14285719394683838, 0.5238093137741089, 1.142857313156128, 1.0000001192092896,
                        2.142857074737549, 1.7500001192092896, 2.892857074737549, 1.75, -0.25, 2.5, 0.5,
                        2.5833330154418945, 1.5000001192092896, -0.08333396911621094, 2.500000238418579, 0.0, 0.75,
                        1.0000001192092896, -0.9999998807907104, 2.000000238418579, 2.384185791015625e-07, 3.0, 1.0,
                        3.75, 1.75],
 ('nearest', (3, 4)): [-1.25, 2.25, 1.75, -0.25, 3.25, 1.25, 0.75, -1.25, 0.25, 3.75, 3.25, 1.25, -0.75, 2.75, 2.25,
                       0.25, 1.75, -0.25, -0.75, 2.75, 0.75, -1.25, 3.75, 1.75],
 ('nearest', (7, 9)): [-1.25, 2.25, 0.25, 3.75, 0.25, 3.75, 1.75, -0.25, 3.25, 1.25, 3.25, 1.25, -0.75, 2.75, 0.75,
                       -1.25, 0.75, -1.25, 2.25, 0.25, 3.75, 1.75, 3.75, 1.75, -0.25, 3.25, 1.25, -0.75, 1.25, -0.75,
                       2.75, 0.75, -1.25, 2.25, -1.25, 2.25, 2.25, 0.25, 3.75, 1.75, 3.75, 1.75, -0.25, 3.25, 1.25,
                       -0.75, 1.25, -0.75, 2.75, 0.75, -1.25, 2.25, -1.25, 2.25, 0.25, 3.75, 1.75, -0.25, 1.75, -0.25,
                       3.25, 1.25, -0.75, 2.75, -0.75, 2.75, 0.75, -1.25, 2.25, 0.25, 2.25, 0.25, 3.75, 1.75, -0.25,
                       3.25, -0.25, 3.25, 1.25, -0.75, 2.75, 0.75, 2.75, 0.75, -1.25, 2.25, 0.25, 3.75, 0.25, 3.75,
                       3.75, 1.75, -0.25, 3.25, -0.25, 3.25, 1.25, -0.75, 2.75, 0.75, 2.75, 0.75, -1.25, 2.25, 0.25,
                       3.75, 0.25, 3.75, 1.75, -0.25, 3.25, 1.25, 3.25, 1.25, -0.75, 2.75, 0.75, -1.25, 0.75, -1.25,
                       2.25, 0.25, 3.75, 1.75, 3.75, 1.75]}

@pytest.mark.parametrize("fill_mode", FILL_MODES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_transform_matches_tensorflow_bit_for_bit(fill_mode, interpolation):
    y = transform_forward(_image((2, 3, 4, 1)), TRANSFORMS, interpolation, fill_mode, 0.5)
    want = np.array(AFFINE[(fill_mode, interpolation)], np.float32).reshape(2, 3, 4, 1)
    np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("size", [(3, 4), (7, 9)])
def test_resize_matches_tensorflow_bit_for_bit(interpolation, size):
    y = resize_forward(_image((1, 5, 6, 2)), size, interpolation)
    want = np.array(RESIZE[(interpolation, size)], np.float32).reshape((1,) + size + (2,))
    np.testing.assert_array_equal(y, want)


def _reflect(v, n):
    """Whole-pixel reflection [abcd] -> [dcba|abcd|dcba] (where TensorFlow's rule lands for integer shifts)."""
    v = np.mod(v, 2 * n)
    return np.where(v >= n, 2 * n - 1 - v, v)


@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_integer_shifts_fold_as_keras_documents(fill_mode, rng):
    """Whole-pixel shifts larger than the image: reflect mirrors about the edge, wrap tiles, nearest
    repeats the edge, constant fills; nearest and bilinear interpolation agree. (TensorFlow's wrap
    rule divides by len - 1, so it tiles exactly only for shifts of less than about one image; the
    bit-for-bit comparisons above cover its other cases.)"""
    x = rng.standard_normal((1, 5, 7, 2)).astype(np.float32)
    dx, dy = (-16, 11) if fill_mode != "wrap" else (-4, 3)  # output (i, j) reads input (i + dy, j + dx)
    t = np.array([[1, 0, dx, 0, 1, dy, 0, 0]], np.float32)
    rows, cols = np.arange(5)[:, None] + dy, np.arange(7)[None, :] + dx
    if fill_mode == "reflect":
        want = x[0, _reflect(rows, 5), _reflect(cols, 7)]
    elif fill_mode == "wrap":
        want = x[0, rows % 5, cols % 7]
    elif fill_mode == "nearest":
        want = x[0, np.clip(rows, 0, 4), np.clip(cols, 0, 6)]
    else:
        want = np.full((5, 7, 2), -3.0, np.float32)
    for interpolation in INTERPOLATIONS:
        np.testing.assert_array_equal(transform_forward(x, t, interpolation, fill_mode, -3.0)[0], want)


def test_identity_transform_and_same_size_resize_copy_the_input(rng):
    x = rng.standard_normal((2, 6, 5, 3)).astype(np.float32)
    identity = np.tile(np.array([1, 0, 0, 0, 1, 0, 0, 0], np.float32), (2, 1))
    for interpolation in INTERPOLATIONS:
        np.testing.assert_array_equal(transform_forward(x, identity, interpolation), x)
        np.testing.assert_array_equal(resize_forward(x, (6, 5), interpolation), x)


def test_projection_zero_reads_the_fill_value():
    """k = c0 x + c1 y + 1 == 0 (here at x = 2): TensorFlow returns the fill value there."""
    x = _image((1, 3, 4, 1))
    t = np.array([[1, 0, 0, 0, 1, 0, -0.5, 0]], np.float32)
    y = transform_forward(x, t, "bilinear", "constant", 9.0)
    np.testing.assert_array_equal(y[0, :, 2, 0], [9.0, 9.0, 9.0])


def test_positions_beyond_any_image_read_the_fill_value():
    """k = c0 x + c1 y + 1 tiny (positions ~1e30) or a huge offset: every fill mode gives the fill value there."""
    x = _image((1, 3, 4, 1))
    for fill_mode in FILL_MODES:
        t = np.array([[1, 0, 0, 0, 1, 0, -(1 - 1e-7) / 2, 0], [1, 0, 3e20, 0, 1, 0, 0, 0]], np.float32)
        y = transform_forward(np.concatenate([x, x]), t, "bilinear", fill_mode, 9.0)
        assert (y[1] == 9.0).all()
        assert np.isfinite(y).all()


def _random_transforms(rng, n):
    """Rotations, zooms, shifts and a little perspective, moving content well outside the image."""
    angle = rng.uniform(-np.pi, np.pi, n)
    zoom = rng.uniform(0.6, 1.6, n)
    t = np.zeros((n, 8), np.float32)
    t[:, 0], t[:, 1] = zoom * np.cos(angle), -zoom * np.sin(angle)
    t[:, 3], t[:, 4] = zoom * np.sin(angle), zoom * np.cos(angle)
    t[:, 2], t[:, 5] = rng.uniform(-6, 6, n), rng.uniform(-6, 6, n)
    t[:, 6:] = rng.uniform(-0.01, 0.01, (n, 2))
    return t


@pytest.mark.parametrize("fill_mode", FILL_MODES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_transform_gradient_float64(fill_mode, interpolation, rng):
    x = rng.standard_normal((2, 5, 6, 3))
    t = _random_transforms(rng, 2)
    w = rng.standard_normal((2, 4, 7, 3))  # a smaller and a wider output than the input
    dx = transform_backward(w, t, (5, 6), interpolation, fill_mode)
    check_gradient(lambda: float(np.sum(w * transform_forward(x, t, interpolation, fill_mode, 0.7, (4, 7)))), x, dx)
    assert dx.dtype == np.float64


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("size", [(3, 4), (9, 13), (5, 2)])
def test_resize_gradient_float64(interpolation, size, rng):
    x = rng.standard_normal((2, 5, 6, 3))
    w = rng.standard_normal((2,) + size + (3,))
    dx = resize_backward(w, (5, 6), interpolation)
    check_gradient(lambda: float(np.sum(w * resize_forward(x, size, interpolation))), x, dx)


def test_float32_and_float64_agree(rng):
    x = rng.standard_normal((2, 7, 5, 3))
    t = _random_transforms(rng, 2)
    for interpolation in INTERPOLATIONS:
        np.testing.assert_allclose(transform_forward(x.astype(np.float32), t, interpolation),
                                   transform_forward(x, t, interpolation), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(resize_forward(x.astype(np.float32), (9, 4), interpolation),
                                   resize_forward(x, (9, 4), interpolation), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_identical_for_any_thread_count(dtype, rng):
    """Shapes above the parallel threshold (32768 outputs); 40 channels make 3 channel blocks per image."""
    x = rng.standard_normal((3, 33, 29, 40)).astype(dtype)
    dy = rng.standard_normal((3, 31, 35, 40)).astype(dtype)
    t = _random_transforms(rng, 3)

    def compute():
        return (
            resize_forward(x, (31, 35), "bilinear"), resize_backward(dy, (33, 29), "bilinear"),
            resize_forward(x, (31, 35), "nearest"), resize_backward(dy, (33, 29), "nearest"),
            transform_forward(x, t, "bilinear", "reflect", 0.0, (31, 35)),
            transform_backward(dy, t, (33, 29), "bilinear", "reflect"),
            transform_backward(dy, t, (33, 29), "nearest", "wrap"),
        )

    assert_same_for_any_thread_count(compute)


def test_out_buffers_are_used(rng):
    x = rng.standard_normal((2, 4, 5, 3)).astype(np.float32)
    t = _random_transforms(rng, 2)
    out = np.empty((2, 6, 7, 3), np.float32)
    assert resize_forward(x, (6, 7), out=out) is out
    dx = np.full(x.shape, np.nan, np.float32)
    assert resize_backward(out, (4, 5), out=dx) is dx and np.isfinite(dx).all()
    y = np.empty_like(x)
    assert transform_forward(x, t, out=y) is y
    dx2 = np.full(x.shape, np.nan, np.float32)
    assert transform_backward(y, t, (4, 5), out=dx2) is dx2 and np.isfinite(dx2).all()


def test_errors(rng):
    x = rng.standard_normal((2, 4, 5, 3)).astype(np.float32)
    t = np.zeros((2, 8), np.float32)
    with pytest.raises(ValueError, match="interpolation.*'bicubic'"):
        resize_forward(x, (3, 3), "bicubic")
    with pytest.raises(ValueError, match="fill_mode.*'mirror'"):
        transform_forward(x, t, "bilinear", "mirror")
    with pytest.raises(ValueError, match="size"):
        resize_forward(x, (0, 3))
    with pytest.raises(ValueError, match="4-D"):
        resize_forward(x[0], (3, 3))
    with pytest.raises(TypeError, match="float32 or float64"):
        resize_forward(x.astype(np.int32), (3, 3))
    with pytest.raises(ValueError, match=r"transforms must have shape \(2, 8\)"):
        transform_forward(x, np.zeros((1, 8), np.float32))
    with pytest.raises(ValueError, match="finite"):
        transform_forward(x, np.full((2, 8), np.nan, np.float32))
    with pytest.raises(ValueError, match="out must have shape"):
        resize_forward(x, (3, 3), out=np.empty((2, 3, 4, 3), np.float32))
    with pytest.raises(ValueError, match="share memory"):
        transform_forward(x, t, out=x)
