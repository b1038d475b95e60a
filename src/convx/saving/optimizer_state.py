"""An optimizer's state in a ``.weights.h5`` file, as Keras 3 stores it: ``iterations``, ``learning_rate``, then
its slot variables in Keras' order (written and read by ``Optimizer.save_own_variables`` /
``load_own_variables``)."""


def save(model, store):
    """Write ``model.optimizer``'s variables into ``store`` in Keras 3's order."""
    model.optimizer.save_own_variables(store)


def load(model, store):
    """Assign the variables :func:`save` (or Keras) wrote to ``model.optimizer``."""
    optimizer = model.optimizer
    if not optimizer.built:  # as Keras' compile_from_config builds it on the model's variables
        optimizer = model._built_optimizer()
    optimizer.load_own_variables(store)
