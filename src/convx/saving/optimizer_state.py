"""An optimizer's state as Keras 3 stores it: ``iterations``, ``learning_rate``, then its slot variables.

Keras orders the slots per trainable variable for optimizers that create them
together (Adam: ``momentum_0, velocity_0, momentum_1, ...``) and slot by slot for
the others (RMSprop: every ``velocity``, then every ``momentum``, ...). An
optimizer with its own ``save_own_variables`` / ``load_own_variables`` (Keras'
protocol) is asked directly; for the others this module maps convx's flat state
buffer (one array per slot over the model's flat trainable weights) to that list.
"""

import numpy as np

# Keras' optimizers whose slot variables are created together, so interleaved per variable
_INTERLEAVED = ("Adam", "AdamW", "Adamax", "Nadam", "Lamb", "Lion")


def save(model, store):
    """Write ``model.optimizer``'s variables into ``store`` in Keras 3's order."""
    optimizer = model.optimizer
    if hasattr(optimizer, "save_own_variables"):
        optimizer.save_own_variables(store)
        return
    for i, value in enumerate(_variables(model)):
        store[str(i)] = value


def load(model, store):
    """Assign the variables :func:`save` (or Keras) wrote to ``model.optimizer``."""
    optimizer = model.optimizer
    if hasattr(optimizer, "load_own_variables"):
        if not optimizer.built:  # as Keras' compile_from_config builds it on the model's variables
            model._bind_flat()
            optimizer.build(model.trainable_weights)
        optimizer.load_own_variables(store)
        return
    variables = _variables(model)
    if len(store.keys()) != len(variables):
        raise ValueError(f"optimizer '{optimizer.name}' has {len(variables)} variables for this model, the file "
                         f"{len(store.keys())}")
    values = [store[str(i)] for i in range(len(variables))]
    for value, expected in zip(values, variables):
        if np.shape(value) != np.shape(expected):
            raise ValueError(f"an optimizer variable has shape {np.shape(value)}, expected {np.shape(expected)}")
    optimizer.iterations = int(values[0])
    head = 1 if callable(optimizer._learning_rate) else 2
    if head == 2 and np.float32(optimizer.learning_rate) != np.float32(values[1]):  # else keep the config's exact value
        optimizer.learning_rate = float(values[1])
    if optimizer._slot_names:
        model._bind_flat()
        slots = tuple(np.zeros_like(model._params) for _ in optimizer._slot_names)
        for (slot, start, stop), value in zip(_slot_views(model), values[head:]):
            slots[slot][start:stop] = np.asarray(value, dtype=np.float32).reshape(-1)
        optimizer._state["flat"] = slots


def _variables(model):
    optimizer = model.optimizer
    head = [np.array(optimizer.iterations, dtype=np.int64)]
    if not callable(optimizer._learning_rate):
        head.append(np.array(optimizer.learning_rate, dtype=np.float32))
    state = optimizer._state.get("flat")
    arrays = []
    for slot, start, stop, shape in _slot_views(model, with_shapes=True):
        arrays.append(np.zeros(shape, np.float32) if state is None else state[slot][start:stop].reshape(shape))
    return head + arrays


def _slot_views(model, with_shapes=False):
    """``(slot index, start, stop[, shape])`` of each Keras slot variable in the flat state, in Keras' order."""
    optimizer = model.optimizer
    spans, offset = [], 0
    for w in model.trainable_weights:
        spans.append((offset, offset + w.value.size, w.shape))
        offset += w.value.size
    n_slots = len(optimizer._slot_names)
    if type(optimizer).__name__ in _INTERLEAVED:
        order = [(s, span) for span in spans for s in range(n_slots)]
    else:
        order = [(s, span) for s in range(n_slots) for span in spans]
    return [(s, a, b, shape) if with_shapes else (s, a, b) for s, (a, b, shape) in order]
