"""Input pipelines with ``tf.data``'s names and semantics, over NumPy arrays.

>>> ds = (convx.data.Dataset.from_tensor_slices((x, y)).shuffle(1000)
...       .map(augment, num_parallel_calls=convx.data.AUTOTUNE).batch(32).prefetch(convx.data.AUTOTUNE))
>>> model.fit(ds, epochs=3)
"""

import types

from convx.data.dataset import AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY, Dataset
from convx.data.structure import TensorSpec

# tf.data.experimental's names for the same constants
experimental = types.SimpleNamespace(AUTOTUNE=AUTOTUNE, INFINITE_CARDINALITY=INFINITE_CARDINALITY,
                                     UNKNOWN_CARDINALITY=UNKNOWN_CARDINALITY,
                                     cardinality=lambda dataset: dataset.cardinality())

__all__ = ["AUTOTUNE", "INFINITE_CARDINALITY", "UNKNOWN_CARDINALITY", "Dataset", "TensorSpec", "experimental"]
