"""Signals held back while state that must change all at once is updated.

Python runs a signal's handler (``KeyboardInterrupt`` for Ctrl-C, an alarm handler that raises) in the
main thread between two bytecodes. Inside an optimizer step that can fall after the weights and moments
were updated but before the step counter was, and the next step's bias correction is then wrong. Within
:class:`deferred_signals` the handlers of the signals below only record the signal; on leaving, the
original handlers are put back and called for what was recorded, so the exception surfaces after the
step, all of it done. The C kernels release the GIL and never run Python handlers themselves.
"""

import signal
import threading

_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGALRM", "SIGTERM", "SIGVTALRM", "SIGPROF",
                                                    "SIGUSR1", "SIGUSR2", "SIGHUP", "SIGQUIT", "SIGBREAK")
                 if hasattr(signal, name))


class deferred_signals:
    """Context manager: Python signal handlers that would run inside it run right after it instead.

    Only the main thread runs Python signal handlers, so elsewhere it does nothing. A handler set
    inside the block is replaced by the saved one on exit.
    """

    __slots__ = ("_saved", "_pending", "_active")

    def __enter__(self):
        self._saved, self._pending, self._active = {}, [], True
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in _SIGNALS:
            handler = signal.getsignal(signum)
            if callable(handler):
                try:
                    signal.signal(signum, self._record)
                except ValueError:  # a subinterpreter's main thread: it cannot set handlers
                    return self
                self._saved[signum] = handler
        return self

    def _record(self, signum, frame):
        if self._active:
            self._pending.append(signum)
        else:  # still installed after an exception cut __exit__ short: behave as the original handler
            self._saved[signum](signum, frame)

    def __exit__(self, *exc_info):
        self._active = False
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)
        for signum in self._pending:
            self._saved[signum](signum, None)
        return False
