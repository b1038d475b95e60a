"""predict / predict_on_batch / model(x) from several threads on one model give each caller its own right answer."""

import threading

import numpy as np

import convx
from convx import layers as L


def test_concurrent_inference_on_one_model_is_correct():
    convx.utils.clear_session()
    convx.utils.set_random_seed(0)
    model = convx.Sequential([convx.Input((12, 12, 3)), L.Conv2D(8, 3, activation="relu"), L.MaxPooling2D(),
                              L.Flatten(), L.Dense(10, activation="softmax")])
    rng = np.random.default_rng(0)
    inputs = [rng.random((n, 12, 12, 3), dtype=np.float32) for n in (1, 3, 7, 1)]
    expected = [model.predict(x, verbose=0) for x in inputs]
    errors = []
    start = threading.Barrier(len(inputs))

    def serve(i):
        start.wait()
        for round_ in range(40):
            call = (lambda x: model.predict(x, verbose=0), model.predict_on_batch, model)[round_ % 3]
            if not np.array_equal(call(inputs[i]), expected[i]):
                errors.append((i, round_))

    threads = [threading.Thread(target=serve, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
