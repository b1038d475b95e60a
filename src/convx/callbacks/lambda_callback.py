"""LambdaCallback: a callback made of plain functions."""

from convx.callbacks.callback import HOOKS, Callback


class LambdaCallback(Callback):
    """A callback made of plain functions, one per hook.

    Parameters
    ----------
    on_epoch_begin, on_epoch_end : callable, optional
        Called as ``f(epoch, logs)``.
    on_train_begin, on_train_end : callable, optional
        Called as ``f(logs)``.
    on_train_batch_begin, on_train_batch_end : callable, optional
        Called as ``f(batch, logs)``.
    **kwargs : callable
        Any other hook of :class:`Callback` by name, e.g. ``on_test_end=f``.

    Raises
    ------
    TypeError
        If a keyword is not a hook name or its value is not callable.
    """

    def __init__(
        self,
        on_epoch_begin=None,
        on_epoch_end=None,
        on_train_begin=None,
        on_train_end=None,
        on_train_batch_begin=None,
        on_train_batch_end=None,
        **kwargs,
    ):
        super().__init__()
        hooks = dict(
            on_epoch_begin=on_epoch_begin,
            on_epoch_end=on_epoch_end,
            on_train_begin=on_train_begin,
            on_train_end=on_train_end,
            on_train_batch_begin=on_train_batch_begin,
            on_train_batch_end=on_train_batch_end,
            **kwargs,
        )
        for name, function in hooks.items():
            if name not in HOOKS:
                raise TypeError(f"LambdaCallback: unknown hook {name!r}; expected one of {', '.join(HOOKS)}")
            if function is None:
                continue
            if not callable(function):
                raise TypeError(f"LambdaCallback: {name} must be callable, received {type(function).__name__}")
            setattr(self, name, function)
