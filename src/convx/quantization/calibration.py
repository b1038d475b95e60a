"""Activation ranges for static int8 quantization: the float model runs on calibration data while
each layer to quantize records the range of its input (min / max, or percentiles of a sample)."""

import numpy as np

_SAMPLE_PER_BATCH = 16384  # values kept per layer and batch for the percentile method


class _Recorder:
    def __init__(self, method, seed):
        self.method = method
        self.low, self.high = np.inf, -np.inf
        self.samples = []
        self.rng = np.random.default_rng(seed)

    def record(self, x):
        if x.size == 0:
            return
        self.low = min(self.low, float(np.min(x)))
        self.high = max(self.high, float(np.max(x)))
        if self.method == "percentile":
            flat = x.reshape(-1)
            take = self.rng.integers(0, flat.size, size=min(flat.size, _SAMPLE_PER_BATCH))
            self.samples.append(flat[take].copy())

    def range(self, percentile):
        if self.method == "minmax":
            return self.low, self.high
        values = np.concatenate(self.samples)
        return float(np.percentile(values, 100.0 - percentile)), float(np.percentile(values, percentile))


def _wrap(layer, name, recorder):
    original = getattr(layer, name)

    def recording(x, *args, **kwargs):
        recorder.record(x)
        return original(x, *args, **kwargs)

    setattr(layer, name, recording)


def input_ranges(model, layers, data, method, percentile, batch_size):
    """(low, high) of each layer's input over ``data`` (the float model's predict)."""
    recorders = [_Recorder(method, seed=i) for i in range(len(layers))]
    for layer, recorder in zip(layers, recorders):
        _wrap(layer, "forward", recorder)
        if hasattr(layer, "forward_pooled"):
            _wrap(layer, "forward_pooled", recorder)
    try:
        model.predict(data, batch_size=batch_size, verbose=0)
    finally:
        for layer in layers:  # the instance attributes go; the class's methods show again
            layer.__dict__.pop("forward", None)
            layer.__dict__.pop("forward_pooled", None)
    ranges = []
    for layer, recorder in zip(layers, recorders):
        if recorder.low > recorder.high:
            raise ValueError(f"Layer {layer.name!r} received no calibration data (is it on a path from the inputs?)")
        ranges.append(recorder.range(percentile))
    return ranges
