"""A trained model is freed as soon as its last reference goes, without the cyclic garbage collector."""

import gc
import weakref

import numpy as np

import convx


def test_fit_leaves_no_reference_cycle_through_history():
    gc.disable()
    try:
        model = convx.Sequential([convx.Input((4,)), convx.layers.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(np.ones((8, 4), np.float32), np.zeros(8, np.int64), epochs=1, verbose=0)
        assert history.model is model  # usable while the model lives
        alive = weakref.ref(model)
        del model
        assert alive() is None, "the model outlived its last reference (a reference cycle)"
        assert history.model is None
    finally:
        gc.enable()
