"""Normalization layers: Keras 3.15 numbers, PyTorch float64, the plan's inference folding, config and file round
trips, trainable=False, thread identity, argument errors."""

import numpy as np
import pytest

import convx
from convx import layers as L
from convx.models import plan as plan_module
from thread_identity import assert_same_for_any_thread_count


# LayerNormalization(rms_scaling=True) warns as Keras does (test_rms_scaling_warns_as_keras); the models use it
pytestmark = pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`:UserWarning")


@pytest.fixture(autouse=True)
def fresh_names():
    convx.utils.clear_session()


# ----- Keras 3.15.1 reference numbers ---------------------------------------------------------------------------------
# Generated once with TensorFlow 2.21 + Keras 3.15.1 (/work/venvs/tf) by _KERAS_SCRIPT below (run it
# with that interpreter to regenerate); inputs and initial weights come from NumPy's default_rng, so the test
# rebuilds them and checks the inputs' sum against Keras'.
#   last / axis1: BatchNormalization(axis=-1 | 1, momentum=0.9) built with given weights, called with
#       training=True (y_train; updates the moving statistics), then training=False on other data (y_inf).
#   dense_fit / conv_fit: the models of _fit_models, SGD(0.1), sparse categorical cross-entropy,
#       fit(batch_size=4, epochs=2, shuffle=False): every weight after (moving statistics included), and predict.

KERAS = {
    "last": {
        "xsum": 52.94997787475586,
        "y_train":
            [0.26447231, -0.37475371, -0.23328738, 1.044052, 0.03165257, 1.4387041, -0.057455257, 0.8077901,
             0.76401418, 2.7071142, -0.32505041, 0.82878625, 0.71739793, 1.0631438, 0.19725506, 0.53775567,
             0.81842536, 1.1265322, 0.13650192, 0.42198235, -0.36953479, 2.3871708, -0.010545418, 1.1274062,
             -1.1055026, 1.714182, 0.22101246, 1.3992413, -0.8055945, 0.89670163, -0.14537816, 0.89988697,
             -0.28069675, 0.56194556, -0.0970539, 0.934672, 0.62227535, -0.070252419, 0.15104383, 1.2017576,
             0.48418176, 0.6940276, -0.19948755, 1.4467692, -0.22323301, 1.7373539, 0.56097984, 0.71286821,
             0.61045527, 1.6418567, -0.27648771, 0.35112828, 0.68024778, 0.54588479, -0.16106103, 1.4714227,
             0.6708225, 0.35266483, 0.57002759, 0.59813154],
        "y_inf":
            [0.21237566, 0.78635079, -0.28449452, 0.50878716, 0.5054419, 2.0027194, -0.52355725, 0.53745496,
             0.57935703, 1.7426673, -0.63589489, 0.3026956, 0.24813816, 0.8960917, -0.67587936, -0.089351773,
             -0.44123942, 0.71179694, -0.49279416, 0.53378481, -0.16119528, 0.43733972, -0.094961017, 0.31534204,
             0.97917902, 2.5335064, -0.31595251, 0.93554521, 0.45663774, 0.24863386, -0.85184884, 1.0905488,
             0.052064747, 0.8435654, -0.74951494, 0.36351761, -0.032506466, 1.1417639, -0.38181973, 0.57010782,
             -0.026736319, 1.075634, -0.45657992, 0.53349501, 0.22656944, 2.3025625, -0.27364022, 0.10394111,
             0.24194697, 2.4161301, -0.69308639, 0.32746738, 1.377437, 1.3139114, -0.27935174, 0.98130524,
             0.99003202, -0.52555299, -0.19651613, 0.71666503],
        "moving_mean":
            [-0.29175231, 0.36111313, -1.769704, -1.2588944],
        "moving_variance":
            [1.4556154, 1.2796876, 1.3781366, 1.1189694],
    },
    "axis1": {
        "xsum": 128.93850708007812,
        "y_train":
            [-0.26237339, 0.67405921, 0.57867032, -0.64703298, -0.49702802, -0.65909708, 0.11595207, -0.32613519,
             0.24110544, -1.5915636, -1.7338413, -0.045320272, -0.83406115, -0.0045697093, 0.24168733, -0.61345601,
             -0.98040986, 0.062406898, 0.011899263, -0.839463, 0.70500189, 1.5328116, -0.92135924, 0.44822469,
             2.0546017, 0.63265431, 0.18734278, 1.119987, 1.5046375, -0.46076775, 0.34732926, -0.45122388,
             -0.81183898, -0.014551461, 0.22015953, -0.49846995, 0.098249495, 0.45020634, -0.43273222, -0.86123335,
             -0.49622321, -0.39458096, -1.2589217, 1.1610759, 0.52854055, 0.70780611, 1.6174124, -0.27160978,
             -0.67914355, 0.60690296, -2.194694, -1.4701226, -1.2200639, -0.93000335, -1.64203, 1.2983623, -1.20278,
             -1.1884449, 1.8584316, -0.8597253, -0.4634378, 0.26557475, -0.59670234, -0.2994149, -0.04432267,
             -0.90556014, 0.13634735, -0.36067951, 0.061383605, -0.65517867, -1.2461169, -0.75773001, 0.037525684,
             -0.78489614, -1.4223359, -1.9619175, 1.4545099, -1.0399283, -0.61544442, -0.047931135, 0.88022411,
             -2.029582, 1.2080779, -1.1423898, -2.0870101, 1.6424322, -0.024839669, 1.269104, -0.72736675,
             -2.3601527, 1.1430039, -1.5426702, -0.69269902, 0.21048778, 0.82921249, 0.011033773, -0.81364465,
             -0.076621354, -0.29826927, -0.43046048, 0.60251766, -0.53644067, -0.45584142, -0.048821241, 0.081859201,
             1.1614168, 0.35040891, -1.3682116, 0.050251424, 1.3185747, -2.1288795, -1.0952437, -3.1232703,
             -0.49402487, 0.17935702, 1.4470301, -2.1152494, -3.7163544, 0.6414991, 0.41804737],
        "y_inf":
            [-0.42424744, -1.1291347, -0.85252953, -0.89170343, -0.62398779, -0.17786169, -0.70793545, -0.26478255,
             -0.92631757, -0.55686593, 2.3965435, 1.9248123, 0.38554603, 1.3355244, 0.53358686, 0.55933702,
             0.024786174, 0.37461722, 0.23402381, 1.0075855, 0.12736368, 0.1659618, -0.11652035, 0.62796342,
             -0.047615588, -0.57527912, -0.97453594, -0.28954098, 1.5488496, -0.59881139, -0.60749048, -0.18297231,
             -0.43330225, -1.0368395, -1.0764763, 0.27464831, -0.34496537, 0.18612188, 0.33337367, -1.1230758,
             0.6669929, 0.61703032, 0.54750192, 0.55963993, 0.79256439, 0.81170386, 1.9608303, 1.0444109, 1.4434512,
             0.84463078, -0.14029807, -1.4001575, -1.6328052, -1.0407504, -1.0494224, -0.79048109, -0.16320652,
             -0.49183631, -0.10770172, -1.1327338, -0.71186584, -0.43160871, -1.3753589, -0.28016523, -1.0957074,
             -1.0816674, -0.8164013, -0.99722242, -0.57498717, -1.0025492, 1.6640458, 1.5107439, 0.03184253,
             0.90071464, 1.7312491, 0.92530668, 1.9974614, -0.29548299, 1.9758937, 0.60292137, -1.3132777,
             0.99937701, -1.0309879, -1.8394005, -1.2250577, -0.98544514, -1.7836322, -0.86931354, -1.072921,
             -0.53567314, -0.40664819, -1.1840018, -0.32760906, -0.96852213, -1.2577596, -0.53836071, 0.11769319,
             -0.24364969, -0.97363549, -0.3739104, 1.2423538, 1.0160487, 0.86968744, 2.5192213, 0.79971963,
             1.6367209, 1.4090308, 1.9415647, 1.9704655, 1.5775421, -1.6403704, -2.6153023, -0.65342265, -1.9491603,
             -0.37643823, 1.5352657, -0.85656732, -1.1996219, -0.18545729, -1.0332472],
        "moving_mean":
            [1.0070018, 1.6663902, -0.28447598],
        "moving_variance":
            [1.3416455, 1.5859747, 1.6198113],
    },
    "dense_fit": {
        "xsum": -9.199115753173828,
        "weights": [
            [-0.40258867, -0.66217947, -0.14178023, 0.21022262, 0.57774508, 0.054853201, -0.28622723, -0.39239019,
             0.35684553, 0.81739151, 0.13954329, -0.61666435, -0.46175548, 0.80000955, 0.092950746, -0.86606741,
             -0.036110364, -0.581613, -0.30119303, -0.24400291, -0.38036403, 0.27668923, -0.024774205, -0.29471564],
            [0.20481892, 0.41492766, -0.82151169, -0.12836507],
            [-0.41524833, -0.086577609, -0.68469894, 0.010345197],
            [-0.092247233, -0.15216887, -0.49123088, -0.19809517],
            [0.08052016, -0.12015095, -0.33495203, -0.30605984],
            [0.83393002, 0.66350698, 0.85895008, 0.47094321],
            [-0.49258775, 0.0027278734, -0.022653837, -0.99421489, -0.11671126, -0.12789501, 0.49199694, -0.59967613,
             0.36697701, -0.5494864, -0.16564545, -0.42023659],
            [0.92498547, 0.27279985, 1.026553],
        ],
        "paths":
            ['dense/kernel', 'dense/bias', 'batch_normalization_2/gamma', 'batch_normalization_2/beta',
             'batch_normalization_2/moving_mean', 'batch_normalization_2/moving_variance', 'dense_1/kernel',
             'dense_1/bias'],
        "predict":
            [0.38841146, 0.18582308, 0.42576554, 0.3805449, 0.19822815, 0.42122698, 0.3805449, 0.19822815,
             0.42122698, 0.3805449, 0.19822815, 0.42122698, 0.3805449, 0.19822815, 0.42122698, 0.3805449, 0.19822815,
             0.42122698, 0.3805449, 0.19822815, 0.42122698, 0.41059959, 0.15225594, 0.43714446, 0.40958798,
             0.15373741, 0.43667462, 0.37637204, 0.19962323, 0.42400473, 0.41214326, 0.15000491, 0.43785188,
             0.3805449, 0.19822815, 0.42122698],
    },
    "conv_fit": {
        "xsum": 6.234025955200195,
        "weights": [
            [-0.40080619, -0.66208613, -0.12279855, 0.21060175, 0.56692964, 0.055430304, -0.27614945, -0.39229792,
             0.37521714, 0.81730527, 0.13537166, -0.61645573, -0.47888887, 0.80040067, 0.10247128, -0.86611557,
             -0.041282732, -0.58050662, -0.31471395, -0.24415043, -0.35755339, 0.27654013, -0.031493124, -0.29685745,
             0.20457084, 0.41619134, -0.82174045, -0.12837356, -0.49072263, -0.087323099, -0.64478695, 0.01036502,
             -0.020367496, -0.1523478, -0.52331394, -0.19917789, -0.54583085, -0.67698658, 0.10994456, -0.5546422,
             0.5855698, 0.35668209, -0.99898559, 0.13634187, -0.55062449, 0.016050268, 0.022511914, -0.9955737,
             -0.11675786, -0.12794641, 0.47806534, -0.59076506, 0.36979464, -0.54963863],
            [-0.16564545, -0.42023659, 0.72436565],
            [0.28823766, 1.2152102, 0.33024162],
            [0.42000824, 0.41885939, -0.2987695],
            [-0.26403666, -0.22074127, 0.3313306],
            [3.5343621, 2.3017874, 3.0628366],
            [-0.18894674, -0.069688551, 0.12820657, 0.044495717, -0.43398145, 0.4493866],
            [-0.63539433, -0.61440408],
        ],
        "paths":
            ['conv2d/kernel', 'conv2d/bias', 'batch_normalization_3/gamma', 'batch_normalization_3/beta',
             'batch_normalization_3/moving_mean', 'batch_normalization_3/moving_variance', 'dense_2/kernel',
             'dense_2/bias'],
        "predict":
            [0.48558924, 0.51441073, 0.49743563, 0.50256443, 0.48045692, 0.51954305, 0.48844868, 0.51155132,
             0.49568972, 0.50431025, 0.48790252, 0.51209754, 0.4573372, 0.54266274, 0.49949008, 0.50050998,
             0.48494944, 0.51505059, 0.47379151, 0.52620852, 0.47141734, 0.52858257, 0.48303106, 0.51696891],
    },
}

_KERAS_SCRIPT = """
import numpy as np
import keras
from keras import layers as L

def data(seed, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]

out = {}
# 1. BN alone, axis -1 and axis 1
for name, shape, axis in (("last", (5, 3, 4), -1), ("axis1", (4, 3, 2, 5), 1)):
    c = shape[axis]
    x, x2, gamma, beta, mm, mv = data(11, shape, shape, (c,), (c,), (c,), (c,))
    mv = np.abs(mv) + 0.5
    x = x * 2 + 1
    bn = L.BatchNormalization(axis=axis, momentum=0.9, epsilon=1e-3)
    bn.build(shape)
    bn.set_weights([gamma, beta, mm, mv])
    y_train = np.asarray(bn(x, training=True))
    y_inf = np.asarray(bn(x2, training=False))
    w = bn.get_weights()
    out[name] = dict(xsum=float(x.sum()), y_train=y_train, y_inf=y_inf, moving_mean=w[2], moving_variance=w[3])

# 2. fit: the models of _fit_models(keras), pasted from tests/layers/test_normalization.py
for name, build in _fit_models(keras).items():
    model, xshape, classes = build()
    rng = np.random.default_rng(5)
    weights = [(rng.standard_normal(w.shape) * 0.5).astype(np.float32) for w in model.get_weights()]
    # moving variances positive
    bn = [l for l in model.layers if isinstance(l, L.BatchNormalization)][0]
    weights = [np.abs(w) + 0.5 if v.path.endswith("moving_variance") else w for w, v in zip(weights, model.weights)]
    model.set_weights(weights)
    x = rng.standard_normal(xshape).astype(np.float32)
    y = rng.integers(0, classes, xshape[0])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    out[name] = dict(xsum=float(x.sum()), weights=model.get_weights(), paths=[v.path for v in model.weights],
                     predict=model.predict(x, verbose=0))
# then each array printed with 8 significant digits
"""


def _data(seed, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


@pytest.mark.parametrize("name,shape,axis", [("last", (5, 3, 4), -1), ("axis1", (4, 3, 2, 5), 1)])
def test_batch_normalization_matches_keras_training_inference_and_moving_statistics(name, shape, axis):
    ref = KERAS[name]
    c = shape[axis]
    x, x2, gamma, beta, mm, mv = _data(11, shape, shape, (c,), (c,), (c,), (c,))
    mv = np.abs(mv) + 0.5
    x = x * 2 + 1
    assert float(x.sum()) == pytest.approx(ref["xsum"], rel=1e-6)  # the same inputs as Keras had
    bn = L.BatchNormalization(axis=axis, momentum=0.9, epsilon=1e-3)
    bn.build_for((None,) + shape[1:])
    bn.set_weights([gamma, beta, mm, mv])
    np.testing.assert_allclose(bn(x, training=True).ravel(), ref["y_train"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn(x2, training=False).ravel(), ref["y_inf"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.moving_mean.value, ref["moving_mean"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(bn.moving_variance.value, ref["moving_variance"], rtol=1e-6, atol=1e-7)


def _fit_models(api):
    """Builders of the models of KERAS' fits; ``api`` is convx or keras (the same names)."""
    def dense_model():
        inp = api.Input((6,))
        h = api.layers.Dense(4)(inp)
        h = api.layers.BatchNormalization(momentum=0.9)(h)
        h = api.layers.Activation("relu")(h)
        return api.Model(inp, api.layers.Dense(3, activation="softmax")(h)), (12, 6), 3

    def conv_model():
        inp = api.Input((6, 6, 2))
        h = api.layers.Conv2D(3, 3)(inp)
        h = api.layers.BatchNormalization(momentum=0.8, epsilon=1e-2)(h)
        h = api.layers.Activation("relu")(h)
        h = api.layers.GlobalAveragePooling2D()(h)
        return api.Model(inp, api.layers.Dense(2, activation="softmax")(h)), (12, 6, 6, 2), 2

    return {"dense_fit": dense_model, "conv_fit": conv_model}


@pytest.mark.parametrize("name", ["dense_fit", "conv_fit"])
def test_fit_matches_keras_weights_moving_statistics_and_predictions(name):
    ref = KERAS[name]
    model, xshape, classes = _fit_models(convx)[name]()
    rng = np.random.default_rng(5)
    weights = [(rng.standard_normal(w.shape) * 0.5).astype(np.float32) for w in model.get_weights()]
    weights = [np.abs(w) + 0.5 if v.path.endswith("moving_variance") else w for w, v in zip(weights, model.weights)]
    model.set_weights(weights)
    x = rng.standard_normal(xshape).astype(np.float32)
    y = rng.integers(0, classes, xshape[0])
    assert float(x.sum()) == pytest.approx(ref["xsum"], rel=1e-6)
    model.compile(optimizer=convx.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    assert [v.path.split("/")[1] for v in model.weights] == [p.split("/")[1] for p in ref["paths"]]
    for got, want, var in zip(model.get_weights(), ref["weights"], model.weights):
        np.testing.assert_allclose(got.ravel(), want, rtol=2e-5, atol=2e-6, err_msg=var.path)
    np.testing.assert_allclose(model.predict(x, verbose=0).ravel(), ref["predict"], rtol=2e-5, atol=2e-6)


# ----- PyTorch float64: forward, gradients, one SGD step --------------------------------------------------------------

def _norm_model(input_shape=(6, 5, 3)):
    inp = convx.Input(input_shape)
    h = L.Conv2D(4, 3, padding="same")(inp)
    h = L.BatchNormalization(momentum=0.7, beta_initializer="random_normal", gamma_initializer="random_uniform")(h)
    h = L.Activation("relu")(h)
    h = L.GroupNormalization(groups=2, beta_initializer="random_normal", gamma_initializer="random_uniform")(h)
    h = L.LayerNormalization(beta_initializer="random_normal", gamma_initializer="random_uniform")(h)
    h = L.BatchNormalization(axis=1, epsilon=0.01)(h)  # over image rows: the strided path
    h = L.GlobalAveragePooling2D()(h)
    h = L.LayerNormalization(rms_scaling=True)(h)
    out = L.Dense(3, activation="softmax")(h)
    return convx.Model(inp, out)


def _torch_norm_model(torch, model, x, labels):
    """The model of _norm_model in torch float64, training mode; returns (loss, params, batch stats per BN)."""
    F = torch.nn.functional
    params = {id(v): torch.tensor(v.numpy(), dtype=torch.float64, requires_grad=True) for v in model.weights}
    conv, bn1, gn, ln, bn2, ln2, dense = [layer for layer in model.layers if layer.weights]
    p = lambda var: params[id(var)]  # noqa: E731
    h = torch.tensor(x, dtype=torch.float64).permute(0, 3, 1, 2)
    h = F.conv2d(h, p(conv.kernel).permute(3, 2, 0, 1), p(conv.bias), padding=1)  # 3x3 'same', stride 1
    stats = [(h.mean((0, 2, 3)), h.var((0, 2, 3), unbiased=False))]
    h = F.batch_norm(h, None, None, p(bn1.gamma), p(bn1.beta), training=True, eps=bn1.epsilon)
    h = F.group_norm(torch.relu(h), 2, p(gn.gamma), p(gn.beta), eps=gn.epsilon).permute(0, 2, 3, 1)
    h = F.layer_norm(h, (4,), p(ln.gamma), p(ln.beta), eps=ln.epsilon)  # NHWC again
    stats.append((h.mean((0, 2, 3)), h.var((0, 2, 3), unbiased=False)))
    h = F.batch_norm(h, None, None, p(bn2.gamma), p(bn2.beta), training=True, eps=bn2.epsilon)
    h = h.mean((1, 2))
    h = h / torch.sqrt(h.var(-1, unbiased=False, keepdim=True) + ln2.epsilon) * p(ln2.gamma)
    logits = h @ p(dense.kernel) + p(dense.bias)
    loss = F.cross_entropy(logits, torch.as_tensor(labels))
    return loss, params, stats


def test_forward_gradients_and_one_sgd_step_match_torch_float64(rng, torch):
    convx.utils.set_random_seed(4)
    model = _norm_model()
    x = rng.standard_normal((5, 6, 5, 3)).astype(np.float32) * 2 + 1
    labels = rng.integers(0, 3, 5)
    loss, params, stats = _torch_norm_model(torch, model, x, labels)
    loss.backward()
    bns = [layer for layer in model.layers if isinstance(layer, L.BatchNormalization)]
    moving_before = [(bn.moving_mean.numpy(), bn.moving_variance.numpy()) for bn in bns]
    before = model.get_weights()
    model.compile(optimizer=convx.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    got = model.train_on_batch(x, labels)
    np.testing.assert_allclose(got, float(loss.detach()), rtol=1e-5)
    for w0, w1, var in zip(before, model.get_weights(), model.weights):
        if var.name.startswith("moving"):
            continue
        np.testing.assert_allclose((w0 - w1) / 0.1, params[id(var)].grad.numpy(), rtol=2e-3, atol=2e-5,
                                   err_msg=var.path)
    # the moving statistics: Keras' update with the biased batch variance
    for bn, (mm, mv), (mean, var) in zip(bns, moving_before, stats):
        mean, var = mean.detach().numpy(), var.detach().numpy()
        np.testing.assert_allclose(bn.moving_mean.value, mm * bn.momentum + mean * (1 - bn.momentum), rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(bn.moving_variance.value, mv * bn.momentum + var * (1 - bn.momentum), rtol=1e-5,
                                   atol=1e-6)


def test_layer_normalization_over_inner_axes_matches_torch(rng, torch):
    x = rng.standard_normal((3, 4, 5, 2)).astype(np.float32)
    layer = L.LayerNormalization(axis=[1, 3], gamma_initializer="random_normal", beta_initializer="random_normal")
    y = layer(x, training=True)
    assert layer.gamma.shape == (4, 2) and layer.axis == [1, 3]
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    moved = xt.permute(0, 2, 1, 3)  # normalized axes last
    yt = torch.nn.functional.layer_norm(moved, (4, 2), torch.tensor(layer.gamma.numpy(), dtype=torch.float64),
                                        torch.tensor(layer.beta.numpy(), dtype=torch.float64), eps=1e-3)
    yt = yt.permute(0, 2, 1, 3)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    (yt * torch.tensor(dy, dtype=torch.float64)).sum().backward()
    layer._state.need_dx = True
    np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), rtol=1e-4, atol=1e-5)


# ----- the plan's inference folding -----------------------------------------------------------------------------------

def _fold_model(activation=None, bn_axis=-1, output_bn=False):
    inp = convx.Input((9, 7, 3))
    h = L.Conv2D(5, 3, strides=2, padding="same", activation=activation, use_bias=False)(inp)
    bn = L.BatchNormalization(axis=bn_axis)(h)
    x = L.Activation("relu")(bn)
    x = L.Conv2D(6, 3, padding="same")(x)
    x = L.BatchNormalization()(x)
    x = L.MaxPooling2D()(x)  # after the fold the conv and the pooling fuse
    x = L.Dense(7)(L.Flatten()(x))
    x = L.BatchNormalization(center=False)(x)
    out = x if output_bn else L.Dense(3, activation="softmax")(L.Activation("tanh")(x))
    return convx.Model(inp, out)


def _trained(model, rng, steps=2):
    """Weights moved away from their initial values and moving statistics updated by training."""
    x = rng.standard_normal((16,) + model.inputs[0].shape[1:]).astype(np.float32)
    if model.outputs[0].shape[-1] == 3:
        model.compile(optimizer=convx.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
        model.fit(x, rng.integers(0, 3, 16), batch_size=8, epochs=steps, verbose=0)
    else:
        model.compile(optimizer=convx.optimizers.SGD(0.05), loss="mse")
        model.fit(x, rng.standard_normal((16,) + model.outputs[0].shape[1:]), batch_size=8, epochs=steps, verbose=0)
    return x


def _predict_without_folding(model, x, monkeypatch):
    with monkeypatch.context() as patch:
        rewrites = [r for r in plan_module.REWRITES if r is not plan_module.fold_batch_norm]
        patch.setattr(plan_module, "REWRITES", rewrites)
        model._plans.clear()
        plain = model.predict(x, verbose=0)
        steps = [s.layer.name for s in model._plan(False, False).steps]
    model._plans.clear()
    return plain, steps


@pytest.mark.parametrize("output_bn", [False, True])
def test_inference_folds_batch_normalization_into_conv_and_dense(rng, monkeypatch, output_bn):
    convx.utils.set_random_seed(1)
    model = _fold_model(output_bn=output_bn)
    x = _trained(model, rng)
    folded = model.predict(x, verbose=0)
    plan = model._plan(False, False)
    names = [s.layer.name for s in plan.steps]
    assert not any(name.startswith("batch_normalization") for name in names)  # every BN step is gone
    assert [type(s).__name__ for s in plan.steps if s.fold is not None] == ["Step", "ConvPoolStep", "Step"]
    assert [s.fold.batch_norm.name for s in plan.steps if s.fold is not None] == [
        "batch_normalization", "batch_normalization_1", "batch_normalization_2"]
    plain, plain_names = _predict_without_folding(model, x, monkeypatch)
    assert [s.fold.activation for s in plan.steps if s.fold is not None] == ["relu", None, None]
    # without the rewrite: the three BN steps (the relu after the first runs in it instead of the conv's
    # epilogue), and the max pooling no longer fused with its conv
    assert "activation" not in names and "activation" not in plain_names
    assert [n for n in plain_names if n not in names] == [
        "batch_normalization", "batch_normalization_1", "max_pooling2d", "batch_normalization_2"]
    np.testing.assert_allclose(folded, plain, rtol=1e-5, atol=1e-5 * np.abs(plain).max())
    # the training plan keeps the BN steps
    assert sum(s.layer.name.startswith("batch_normalization") for s in model._plan(True, True).steps) == 3


def test_folded_weights_follow_every_weight_update(rng, monkeypatch):
    convx.utils.set_random_seed(2)
    model = _fold_model()
    x = _trained(model, rng, steps=1)
    model.predict(x, verbose=0)  # the folded plan exists
    _trained(model, rng, steps=1)  # fit changes kernels, gamma, beta and the moving statistics
    bn = model.get_layer("batch_normalization")
    bn.moving_variance.assign(bn.moving_variance.numpy() * 3)  # and a direct assignment
    folded = model.predict(x, verbose=0)
    plain, _ = _predict_without_folding(model, x, monkeypatch)
    np.testing.assert_allclose(folded, plain, rtol=1e-5, atol=1e-5 * np.abs(plain).max())
    conv = model.get_layer("conv2d")
    # the layer's own weights and activation are back
    assert conv.kernel.__class__.__name__ == "Variable" and conv.bias is None and conv.activation == "linear"


@pytest.mark.parametrize("case", ["conv1d", "dense_3d", "positive_axis"])
def test_fold_of_conv1d_dense_on_sequences_and_a_positive_axis(rng, monkeypatch, case):
    convx.utils.set_random_seed(6)
    inp = convx.Input((7, 4) if case != "positive_axis" else (5, 5, 2))
    if case == "conv1d":
        h = L.Conv1D(3, 3, padding="same")(inp)
    elif case == "dense_3d":
        h = L.Dense(3)(inp)
    else:
        h = L.Conv2D(3, 2)(inp)
    h = L.BatchNormalization(axis=-1 if case != "positive_axis" else 3, gamma_initializer="random_uniform",
                             beta_initializer="random_normal", moving_mean_initializer="random_normal",
                             moving_variance_initializer="random_uniform")(h)
    model = convx.Model(inp, L.Activation("tanh")(h))
    x = rng.standard_normal((4,) + inp.shape[1:]).astype(np.float32)
    folded = model.predict(x, verbose=0)
    assert [s.fold is not None for s in model._plan(False, False).steps] == [True, False]
    plain, _ = _predict_without_folding(model, x, monkeypatch)
    np.testing.assert_allclose(folded, plain, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs", [dict(activation="relu"), dict(bn_axis=1)])
def test_no_fold_through_an_activation_or_another_axis(rng, kwargs):
    model = _fold_model(**kwargs)
    model.predict(rng.standard_normal((2, 9, 7, 3)).astype(np.float32), verbose=0)
    names = [s.layer.name for s in model._plan(False, False).steps]
    assert "batch_normalization" in names and "batch_normalization_1" not in names


def test_no_fold_when_the_conv_output_has_another_reader(rng):
    inp = convx.Input((5, 5, 2))
    h = L.Conv2D(3, 3)(inp)
    out = L.Add()([L.BatchNormalization()(h), h])
    model = convx.Model(inp, out)
    x = rng.standard_normal((2, 5, 5, 2)).astype(np.float32)
    model.predict(x, verbose=0)
    assert [s.layer.name for s in model._plan(False, False).steps] == ["conv2d", "batch_normalization", "add"]


def test_the_seed_model_plan_is_unchanged():
    model = convx.Sequential([L.Conv2D(32, 3, activation="relu", input_shape=(28, 28, 1)), L.MaxPooling2D((2, 2)),
                              L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D((2, 2)),
                              L.Conv2D(128, 3, activation="relu"), L.MaxPooling2D((2, 2)), L.Flatten(),
                              L.Dense(128, activation="relu"), L.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    for training, with_loss in ((True, True), (False, False)):
        plan = model._plan(training, with_loss)
        assert [(type(s).__name__, s.layer.name, s.inputs, s.output) for s in plan.steps] == [
            ("ConvPoolStep", "conv2d", [0], 2), ("ConvPoolStep", "conv2d_1", [2], 4),
            ("ConvPoolStep", "conv2d_2", [4], 6), ("Step", "flatten", [6], 7), ("Step", "dense", [7], 8),
            ("Step", "dense_1", [8], 9)]
        assert all(s.fold is None for s in plan.steps)


@pytest.mark.parametrize("relu", [lambda: L.Activation("relu"), lambda: L.ReLU(), lambda: L.ReLU(6.0),
                                  lambda: L.Activation("relu6")], ids=["relu", "ReLU", "ReLU6", "relu6"])
def test_relu_fused_into_batch_normalization_changes_nothing(rng, monkeypatch, relu):
    def build():
        convx.utils.clear_session()
        convx.utils.set_random_seed(8)
        inp = convx.Input((6, 6, 3))
        h = L.Conv2D(4, 3, padding="same", activation="tanh")(inp)  # not folded: tanh
        h = relu()(L.BatchNormalization(gamma_initializer=convx.initializers.Constant(4.0))(h))  # beyond 6 too
        model = convx.Model(inp, L.Dense(3, activation="softmax")(L.GlobalAveragePooling2D()(h)))
        model.compile(optimizer=convx.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        return model

    x, labels = rng.standard_normal((5, 6, 6, 3)).astype(np.float32) * 2, rng.integers(0, 3, 5)
    fused = build()
    fused.train_on_batch(x, labels)
    kinds = [type(s).__name__ for s in fused._plan(True, True).steps]
    assert "BatchNormReluStep" in kinds and len(kinds) == 4 and \
        [type(s).__name__ for s in fused._plan(False, False).steps].count("BatchNormReluStep") == 1
    with monkeypatch.context() as patch:
        patch.setattr(plan_module, "REWRITES", [r for r in plan_module.REWRITES
                                                if r is not plan_module.relu_into_batch_norm])
        plain = build()
        plain.train_on_batch(x, labels)
        assert "BatchNormReluStep" not in [type(s).__name__ for s in plain._plan(True, True).steps]
        want = plain.predict(x, verbose=0)
    for a, b, var in zip(fused.get_weights(), plain.get_weights(), fused.weights):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=var.path)
    np.testing.assert_allclose(fused.predict(x, verbose=0), want, rtol=1e-6, atol=1e-7)


# ----- trainable = False ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("freeze", ["layer", "nested_model"])
def test_a_frozen_batch_normalization_runs_in_inference_mode_in_training(rng, torch, freeze):
    convx.utils.set_random_seed(3)
    inner_in = convx.Input((4,))
    bn = L.BatchNormalization(gamma_initializer="random_uniform", beta_initializer="random_normal",
                              moving_mean_initializer="random_normal")
    block = convx.Model(inner_in, bn(inner_in), name="block")
    inp = convx.Input((3,))
    dense = L.Dense(4)
    out = L.Dense(2, activation="softmax")(block(dense(inp)))
    model = convx.Model(inp, out)
    (bn if freeze == "layer" else block).trainable = False
    x, labels = rng.standard_normal((6, 3)).astype(np.float32), rng.integers(0, 2, 6)
    model.compile(optimizer=convx.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    frozen = [w.numpy() for w in bn.weights]
    kernel = dense.kernel.numpy()
    # torch: the moving statistics normalize, and the gradient flows through them to the first Dense
    p = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in model.get_weights()]
    h = torch.tensor(x, dtype=torch.float64) @ p[0] + p[1]
    h = torch.nn.functional.batch_norm(h, p[4].detach(), p[5].detach(), p[2], p[3], training=False, eps=1e-3)
    loss = torch.nn.functional.cross_entropy(h @ p[6] + p[7], torch.as_tensor(labels))
    loss.backward()
    np.testing.assert_allclose(model.train_on_batch(x, labels), float(loss.detach()), rtol=1e-5)
    for w, before in zip(bn.weights, frozen):  # gamma, beta and the moving statistics unchanged
        np.testing.assert_array_equal(w.value, before)
    np.testing.assert_allclose((kernel - dense.kernel.value) / 0.1, p[0].grad.numpy(), rtol=1e-4, atol=1e-6)
    assert len(model.trainable_weights) == 4 and len(model.non_trainable_weights) == 4


# ----- config, shapes, summary, files ---------------------------------------------------------------------------------

KERAS_KEYS = {
    "BatchNormalization": ["name", "trainable", "dtype", "axis", "momentum", "epsilon", "center", "scale",
                           "beta_initializer", "gamma_initializer", "moving_mean_initializer",
                           "moving_variance_initializer", "beta_regularizer", "gamma_regularizer", "beta_constraint",
                           "gamma_constraint", "synchronized", "renorm", "renorm_clipping", "renorm_momentum"],
    "LayerNormalization": ["name", "trainable", "dtype", "axis", "epsilon", "center", "scale", "rms_scaling",
                           "beta_initializer", "gamma_initializer", "beta_regularizer", "gamma_regularizer",
                           "beta_constraint", "gamma_constraint"],
    "GroupNormalization": ["name", "trainable", "dtype", "groups", "axis", "epsilon", "center", "scale",
                           "beta_initializer", "gamma_initializer", "beta_regularizer", "gamma_regularizer",
                           "beta_constraint", "gamma_constraint"],
}


@pytest.mark.parametrize("layer", [
    lambda: L.BatchNormalization(axis=1, momentum=0.5, epsilon=1e-2, center=False, moving_variance_initializer="zeros"),
    lambda: L.LayerNormalization(axis=[-2, -1], scale=False, epsilon=1e-5),
    lambda: L.LayerNormalization(rms_scaling=True),
    lambda: L.GroupNormalization(groups=-1, gamma_initializer="random_normal", beta_regularizer="l2",
                                 gamma_constraint="non_neg"),
], ids=["batch", "layer", "layer_rms", "group"])
def test_config_round_trip_with_keras_keys(layer, rng):
    layer = layer()
    config = layer.get_config()
    assert list(config) == KERAS_KEYS[type(layer).__name__]
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    x = rng.standard_normal((2, 3, 4, 6)).astype(np.float32)
    assert layer.compute_output_shape((None, 3, 4, 6)) == (None, 3, 4, 6)
    clone.build_for((None, 3, 4, 6))
    layer.build_for((None, 3, 4, 6))
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x), layer(x))
    assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()  # after build too


def test_summary_counts_and_save_load_round_trip(rng, tmp_path):
    convx.utils.set_random_seed(5)
    model = _norm_model()
    x = _trained_norm(model, rng)
    assert [l.count_params() for l in model.layers if l.weights] == [112, 16, 8, 8, 24, 4, 15]
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Trainable params: 167" in text and "Non-trainable params: 20" in text
    path = tmp_path / "norm.keras"
    model.save(path)
    loaded = convx.models.load_model(path)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert [type(l).__name__ for l in loaded.layers] == [type(l).__name__ for l in model.layers]


def _trained_norm(model, rng):
    x = rng.standard_normal((8, 6, 5, 3)).astype(np.float32)
    model.compile(optimizer=convx.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    model.fit(x, rng.integers(0, 3, 8), batch_size=4, epochs=1, verbose=0)
    return x


def test_training_is_bit_identical_for_any_thread_count():
    def train():
        convx.utils.clear_session()
        convx.utils.set_random_seed(7)
        rng = np.random.default_rng(3)
        model = _norm_model((24, 20, 3))
        x = rng.standard_normal((32, 24, 20, 3)).astype(np.float32)
        model.compile(optimizer=convx.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        model.fit(x, rng.integers(0, 3, 32), batch_size=16, epochs=1, verbose=0)
        return (*model.get_weights(), model.predict(x, verbose=0))

    assert_same_for_any_thread_count(train)


def test_batch_one(rng):
    x = rng.standard_normal((1, 3, 3, 4)).astype(np.float32)
    for layer in (L.BatchNormalization(), L.LayerNormalization(), L.GroupNormalization(2)):
        y = layer(x, training=True)
        assert y.shape == x.shape and np.all(np.isfinite(y))
    bn = L.BatchNormalization(beta_initializer="random_normal")
    flat = rng.standard_normal((1, 5)).astype(np.float32)
    # one sample of a 2-D input: zero variance, the output is beta (as in Keras)
    # (to rounding: Keras computes x * a + (beta - mean * a), a = 1 / sqrt(epsilon) here)
    np.testing.assert_allclose(bn(flat, training=True), bn.beta.value[None], atol=1e-5)


def _regularized_model(regularized):
    convx.utils.clear_session()
    convx.utils.set_random_seed(9)
    extra = dict(gamma_regularizer=convx.regularizers.L2(0.1)) if regularized else {}
    inp = convx.Input((4, 4, 4))
    h = L.BatchNormalization(beta_initializer="random_normal", **extra,
                             **(dict(beta_constraint="non_neg") if regularized else {}))(inp)
    h = L.GroupNormalization(2, gamma_initializer="random_normal", **extra)(h)
    h = L.LayerNormalization(gamma_initializer="random_normal", **extra)(h)
    model = convx.Model(inp, L.Dense(2, activation="softmax")(L.Flatten()(h)))
    model.compile(optimizer=convx.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    return model


def test_regularizers_and_constraints_enter_training_as_in_keras(rng):
    x, labels = rng.standard_normal((6, 4, 4, 4)).astype(np.float32), rng.integers(0, 2, 6)
    plain, regularized = _regularized_model(False), _regularized_model(True)
    gammas = [w.numpy() for w in regularized.weights if w.name == "gamma"]
    penalty = sum(0.1 * float(np.sum(g.astype(np.float64) ** 2)) for g in gammas)
    np.testing.assert_allclose(sum(float(v) for v in regularized.losses), penalty, rtol=1e-5)
    loss_plain, loss_reg = plain.train_on_batch(x, labels), regularized.train_on_batch(x, labels)
    np.testing.assert_allclose(loss_reg - loss_plain, penalty, rtol=1e-4)
    after = {w.path: w.numpy() for w in plain.weights}
    for w, g0 in zip([w for w in regularized.weights if w.name == "gamma"], gammas):
        # SGD: the penalty's gradient 2 * 0.1 * gamma, times the learning rate
        np.testing.assert_allclose(w.value - after[w.path], -0.1 * 0.2 * g0, rtol=1e-4, atol=1e-6)
    beta = regularized.get_layer("batch_normalization").beta.value
    np.testing.assert_array_equal(beta, np.maximum(after["batch_normalization/beta"], 0))  # non_neg after the step
    assert (after["batch_normalization/beta"] < 0).any()


def test_activity_regularizer_of_a_normalization_layer(rng, torch):
    convx.utils.set_random_seed(2)
    inp = convx.Input((5,))
    ln = L.LayerNormalization(activity_regularizer="l2", gamma_initializer="random_normal")
    model = convx.Model(inp, L.Dense(2, activation="softmax")(ln(inp)))
    x, labels = rng.standard_normal((4, 5)).astype(np.float32), rng.integers(0, 2, 4)
    p = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in model.get_weights()]
    y = torch.nn.functional.layer_norm(torch.tensor(x, dtype=torch.float64), (5,), p[0], p[1], eps=1e-3)
    loss = torch.nn.functional.cross_entropy(y @ p[2] + p[3], torch.as_tensor(labels)) + 0.01 * (y ** 2).sum() / 4
    loss.backward()
    before = model.get_weights()
    model.compile(optimizer=convx.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    np.testing.assert_allclose(model.train_on_batch(x, labels), float(loss.detach()), rtol=1e-5)
    for w0, w1, t in zip(before, model.get_weights(), p):
        np.testing.assert_allclose((w0 - w1) / 0.1, t.grad.numpy(), rtol=1e-3, atol=1e-5)
    model.predict(x, verbose=0)  # an activity regularizer keeps the layer out of any fold


# ----- argument errors ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make,match", [
    (lambda: L.BatchNormalization(momentum=1.5), r"`momentum` must be a number in \[0, 1\], received momentum=1.5"),
    (lambda: L.BatchNormalization(momentum=-0.1), r"momentum=-0.1"),
    (lambda: L.BatchNormalization(epsilon=0), r"`epsilon` must be a finite number > 0, received epsilon=0"),
    (lambda: L.BatchNormalization(axis="last"), r"`axis` must be an int, received axis='last'"),
    (lambda: L.BatchNormalization(center="yes"), r"`center` must be a bool, received center='yes'"),
    (lambda: L.BatchNormalization(renorm=True), r"renorm=True"),
    (lambda: L.LayerNormalization(axis=[]), r"received axis=\[\]"),
    (lambda: L.LayerNormalization(epsilon=-1.0), r"received epsilon=-1.0"),
    (lambda: L.GroupNormalization(groups=0), r"Received: groups=0"),
    (lambda: L.GroupNormalization(groups=2.5), r"Received: groups=2.5"),
])
def test_bad_arguments_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("make,shape,match", [
    (lambda: L.GroupNormalization(groups=4), (None, 5, 6), r"Number of groups \(4\) must divide the number of "
                                                           r"channels \(6\). Received: groups=4"),
    (lambda: L.GroupNormalization(groups=8), (None, 5, 6), r"cannot be more than the number of channels"),
    (lambda: L.GroupNormalization(axis=0), (None, 5, 6), r"cannot be the batch axis, received axis=0"),
    (lambda: L.BatchNormalization(axis=3), (None, 5, 6), r"Axis 3 is out of bounds for input shape \(None, 5, 6\)"),
    (lambda: L.LayerNormalization(axis=[1, -2]), (None, 5, 6),
     r"duplicate axes are not allowed, received axis=\[1, -2\]"),
    (lambda: L.LayerNormalization(axis=0), (None, 5, 6), r"the batch axis \(0\) cannot be normalized"),
])
def test_bad_shapes_raise_value_error(make, shape, match):
    with pytest.raises(ValueError, match=match):
        make().build_for(shape)


def test_rms_scaling_warns_as_keras():
    with pytest.warns(UserWarning, match=r"You passed `rms_scaling=True`, which is deprecated"):
        L.LayerNormalization(rms_scaling=True)


@pytest.mark.parametrize("use_bias", [False, True])
def test_inference_folds_batch_normalization_into_depthwise_conv(rng, monkeypatch, use_bias):
    """The MobileNet pattern: DepthwiseConv2D (channel c * M + m) -> BatchNormalization -> ReLU(6)."""
    convx.utils.set_random_seed(4)
    inp = convx.Input((9, 9, 3))
    x = L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, use_bias=use_bias)(inp)
    x = L.ReLU(6.0)(L.BatchNormalization()(x))
    model = convx.Model(inp, L.Dense(3, activation="softmax")(L.GlobalAveragePooling2D()(x)))
    x = _trained(model, rng)
    folded = model.predict(x, verbose=0)
    plan = model._plan(False, False)
    assert [(type(s.layer).__name__, s.fold.activation) for s in plan.steps if s.fold is not None] == [
        ("DepthwiseConv2D", "relu6")]
    plain, _ = _predict_without_folding(model, x, monkeypatch)
    np.testing.assert_allclose(folded, plain, rtol=1e-5, atol=1e-6)
