"""Model pruning: magnitude pruning while training (``prune_low_magnitude``, ``UpdatePruningStep``,
``strip_pruning``, the TensorFlow Model Optimization toolkit's names) and structured filter pruning
(``prune_filters``) that returns a smaller, faster model."""

from convx.pruning.filters import prune_filters
from convx.pruning.magnitude import UpdatePruningStep, prune_low_magnitude, sparsity, strip_pruning
from convx.pruning.schedules import ConstantSparsity, PolynomialDecay, PruningSchedule

__all__ = ["ConstantSparsity", "PolynomialDecay", "PruningSchedule", "UpdatePruningStep", "prune_filters",
           "prune_low_magnitude", "sparsity", "strip_pruning"]
