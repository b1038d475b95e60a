"""Pruning schedules (TensorFlow Model Optimization's names and arithmetic): called with the
optimizer's step, they return (whether to update the masks now, the target sparsity)."""


def _sparsity(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def _step(value, name, minimum=0):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


class PruningSchedule:
    """Masks update every ``frequency`` steps from ``begin_step`` to ``end_step`` (-1: no end)."""

    def __init__(self, begin_step, end_step, frequency):
        self.begin_step = _step(begin_step, "begin_step")
        self.end_step = _step(end_step, "end_step", minimum=-1)
        self.frequency = _step(frequency, "frequency", minimum=1)
        if self.end_step != -1 and self.end_step < self.begin_step:
            raise ValueError(f"end_step ({end_step}) must be >= begin_step ({begin_step}) or -1")

    def _should_prune(self, step):
        in_range = step >= self.begin_step and (self.end_step == -1 or step <= self.end_step)
        return in_range and (step - self.begin_step) % self.frequency == 0

    def get_config(self):
        return {"class_name": type(self).__name__, "config": self._config()}


class ConstantSparsity(PruningSchedule):
    """Prune to ``target_sparsity`` at ``begin_step`` and keep updating the masks at that level."""

    def __init__(self, target_sparsity, begin_step, end_step=-1, frequency=100):
        super().__init__(begin_step, end_step, frequency)
        self.target_sparsity = _sparsity(target_sparsity, "target_sparsity")

    def __call__(self, step):
        return self._should_prune(step), self.target_sparsity

    def _config(self):
        return {"target_sparsity": self.target_sparsity, "begin_step": self.begin_step, "end_step": self.end_step,
                "frequency": self.frequency}


class PolynomialDecay(PruningSchedule):
    """Sparsity rising from ``initial_sparsity`` to ``final_sparsity`` between ``begin_step`` and
    ``end_step``: ``final + (initial - final) * (1 - p) ** power``, ``p`` the fraction of the way."""

    def __init__(self, initial_sparsity, final_sparsity, begin_step, end_step, power=3, frequency=100):
        super().__init__(begin_step, end_step, frequency)
        if self.end_step == -1:
            raise ValueError("PolynomialDecay needs an end_step >= begin_step, got -1")
        self.initial_sparsity = _sparsity(initial_sparsity, "initial_sparsity")
        self.final_sparsity = _sparsity(final_sparsity, "final_sparsity")
        self.power = power

    def __call__(self, step):
        span = max(self.end_step - self.begin_step, 1)
        p = min(1.0, max(0.0, (step - self.begin_step) / span))
        sparsity = self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * (1.0 - p) ** self.power
        return self._should_prune(step), sparsity

    def _config(self):
        return {"initial_sparsity": self.initial_sparsity, "final_sparsity": self.final_sparsity,
                "begin_step": self.begin_step, "end_step": self.end_step, "power": self.power,
                "frequency": self.frequency}


def deserialize(entry):
    classes = {"ConstantSparsity": ConstantSparsity, "PolynomialDecay": PolynomialDecay}
    if not isinstance(entry, dict) or entry.get("class_name") not in classes:
        raise ValueError(f"Unknown pruning schedule {entry!r}")
    return classes[entry["class_name"]](**entry["config"])
