"""Keras 3's text progress bar (``Progbar``), used by ProgbarLogger and usable on its own."""

import math
import re
import sys
import time

import numpy as np

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_BOLD, _GREEN, _WHITE = "\x1b[1m", "\x1b[32m", "\x1b[37m"
_RESET = "\x1b[0m"
_FULL, _EMPTY_PLAIN = "\u2501", "\u2500"  # ━ (done, and to-do when coloured), ─ (to-do, plain)


def _format_value(value):
    """Keras's metric format: 4 decimals, scientific notation for tiny magnitudes."""
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"


def _format_time(time_per_unit, unit_name):
    """Per-unit duration in the unit Keras picks: `` 12s/step``, `` 6ms/step``, `` 350us/step``."""
    if time_per_unit >= 1 or time_per_unit == 0:
        return f" {time_per_unit:.0f}s/{unit_name}"
    if time_per_unit >= 1e-3:
        return f" {time_per_unit * 1e3:.0f}ms/{unit_name}"
    return f" {time_per_unit * 1e6:.0f}us/{unit_name}"


def _format_eta(eta):
    if eta > 3600:
        return "%d:%02d:%02d" % (eta // 3600, (eta % 3600) // 60, eta % 60)
    if eta > 60:
        return "%d:%02d" % (eta // 60, eta % 60)
    return "%ds" % eta


def _is_terminal(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progbar:
    """A text progress bar with Keras 3's look.

    ``verbose=1`` on a terminal redraws one line in place (``\\r``), at most
    once per ``interval`` seconds, with Keras's colours, e.g.
    ``1875/1875 ━━━━━━━━━━━━━━━━━━━━ 12s 6ms/step - accuracy: 0.9512 - loss: 0.1623``
    (while running, the elapsed time is replaced by the estimated time left).
    On any other stream ``verbose=1`` writes only the final line, without
    colour codes, so that logs stay readable. ``verbose=2`` writes only the
    final line, as ``1875/1875 - 12s - 6ms/step - accuracy: 0.9512``.
    ``verbose=0`` writes nothing.

    Parameters
    ----------
    target : int or None
        Total number of steps, None if unknown.
    width : int, default 20
        Bar width in characters.
    verbose : {0, 1, 2}, default 1
        Display mode, see above.
    interval : float, default 0.05
        Minimum time in seconds between two redraws of the in-place bar.
    stateful_metrics : iterable of str, optional
        Names of values shown as given. By default every value is averaged
        over the steps since the start, weighted by steps (Keras's default);
        the final update shows the values it is given.
    stateless_metrics : iterable of str, optional
        Alternatively, names of the only values to average. At most one of
        ``stateful_metrics`` and ``stateless_metrics`` may be given.
    unit_name : str, default "step"
        Name of a step in the time-per-step display.
    stream : file-like, optional
        Where to write; ``sys.stdout`` (looked up at each write) by default.
        The in-place display is used when ``stream.isatty()`` is true, or in
        a Jupyter kernel when writing to ``sys.stdout``.
    clock : callable, optional
        Returns the current time in seconds; ``time.monotonic`` by default.
    """

    def __init__(
        self,
        target,
        width=20,
        verbose=1,
        interval=0.05,
        stateful_metrics=None,
        stateless_metrics=None,
        unit_name="step",
        *,
        stream=None,
        clock=None,
    ):
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError(
                "Progbar: give at most one of stateful_metrics and stateless_metrics, received both"
            )
        if verbose not in (0, 1, 2):
            raise ValueError(f"Progbar: verbose must be 0, 1 or 2, received {verbose!r}")
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        self.stateful_metrics = None if stateless_metrics is not None else set(stateful_metrics or ())
        self.stateless_metrics = None if stateless_metrics is None else set(stateless_metrics)
        self._stream = stream
        self._clock = clock or time.monotonic
        self._dynamic_display = _is_terminal(self.stream) or (
            stream is None and "ipykernel" in sys.modules
        )
        self._seen_so_far = 0
        self._values = {}  # name -> [weighted sum, weight]
        self._values_order = []
        self._start = self._clock()
        self._last_update = -math.inf
        self._time_after_first_step = None
        self._prev_total_width = 0

    @property
    def stream(self):
        """The output stream."""
        return self._stream if self._stream is not None else sys.stdout

    def update(self, current, values=None, finalize=None):
        """Record progress and redraw the bar when due.

        Parameters
        ----------
        current : int
            Number of steps done (1-based index of the current step).
        values : list of (str, float), optional
            ``(name, value)`` pairs for this step, shown in the order first seen.
        finalize : bool, optional
            Whether this is the last update; defaults to ``current >= target``
            (False when the target is unknown).
        """
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        self._record(current, values or [], finalize)
        now = self._clock()
        time_per_unit = self._estimate_step_duration(current, now)
        if self.verbose == 1 and self._dynamic_display:
            if now - self._last_update < self.interval and not finalize:
                return
            self._redraw(current, finalize, now, time_per_unit)
        elif self.verbose == 1 and finalize:
            self._write(self._line(current, finalize, now, time_per_unit, color=False) + "\n")
        elif self.verbose == 2 and finalize and self.target is not None and self.target > 0:
            self._write(self._summary_line(current, now, time_per_unit) + "\n")
        self._last_update = now

    def add(self, n, values=None):
        """Advance by ``n`` steps; see :meth:`update` for ``values``."""
        self.update(self._seen_so_far + n, values)

    def _record(self, current, values, finalize):
        for name, value in values:
            if name not in self._values_order:
                self._values_order.append(name)
            value = float(np.mean(value))
            if self.stateful_metrics is not None:
                averaged = name not in self.stateful_metrics
            else:
                averaged = name in self.stateless_metrics
            if not averaged or finalize:
                self._values[name] = [value, 1]
                continue
            # At least 1 so that a repeated step still counts.
            weight = max(current - self._seen_so_far, 1)
            total = self._values.setdefault(name, [0.0, 0])
            total[0] += value * weight
            total[1] += weight
        self._seen_so_far = current

    def _average(self, name):
        total, weight = self._values[name]
        return total / max(1, weight)

    def _metrics_text(self):
        return "".join(f" - {name}: {_format_value(self._average(name))}" for name in self._values_order)

    def _count_text(self, current):
        digits = int(math.log10(self.target)) + 1
        return f"{current:{digits}d}/{self.target}"

    def _line(self, current, finalize, now, time_per_unit, color):
        def style(text, code):
            return f"{code}{text}{_RESET}" if color else text

        known = self.target is not None and self.target > 0
        if known:
            done = int(self.width * current / self.target)
            bar = style(self._count_text(current), _BOLD) + " "
            if color:
                if done > 0:
                    bar += style(_FULL * done, _GREEN)
                bar += style(_FULL * (self.width - done), _WHITE)
            else:
                bar += _FULL * done + _EMPTY_PLAIN * (self.width - done)
        else:
            bar = "%7d/Unknown" % current
        if known and not finalize:
            clock_text = _format_eta(time_per_unit * (self.target - current))
        else:
            clock_text = f"{now - self._start:.0f}s"
        info = " " + style(clock_text, _BOLD) + _format_time(time_per_unit, self.unit_name)
        return bar + info + self._metrics_text()

    def _redraw(self, current, finalize, now, time_per_unit):
        line = self._line(current, finalize, now, time_per_unit, color=True)
        width = len(_ANSI.sub("", line))
        # Blank out what remains of a longer previous line.
        padding = " " * max(self._prev_total_width - width, 0)
        self._write("\r" + line + padding + ("\n" if finalize else ""))
        self._prev_total_width = width

    def _summary_line(self, current, now, time_per_unit):
        return (
            f"{self._count_text(current)} - {now - self._start:.0f}s -"
            f"{_format_time(time_per_unit, self.unit_name)}{self._metrics_text()}"
        )

    def _write(self, text):
        stream = self.stream
        stream.write(text)
        flush = getattr(stream, "flush", None)
        if flush is not None:
            flush()

    def _estimate_step_duration(self, current, now):
        """Seconds per step, leaving out the (usually slower) first step when possible."""
        if not current:
            return 0
        if self._time_after_first_step is not None and current > 1:
            time_per_unit = (now - self._time_after_first_step) / (current - 1)
        else:
            time_per_unit = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return time_per_unit
