"""Text rendering of ``model.summary()``, laid out as Keras 3 prints it.

Keras 3 draws the table with ``rich`` (heavy-head box, a rule between rows,
columns at 45% / 80% / 100% of the line, line length min(88, terminal - 4));
this module reproduces that layout in plain text without the dependency.
"""

import math
import shutil

_PADDING = 2  # one space each side of a cell


def readable_memory_size(size):
    """Keras' byte count format: ``431.54 KB`` (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def _ratio_reduce(total, values):
    """rich's ``ratio_reduce`` with equal ratios: take ``total`` off the cells, front first."""
    result, remaining, ratio_left = [], total, len(values)
    for value in values:
        taken = min(value, round(remaining / ratio_left))
        result.append(value - taken)
        remaining -= taken
        ratio_left -= 1
    return result


def column_widths(line_length, positions):
    """Content widths of the columns, shrunk as rich shrinks fixed-width columns."""
    cells, current = [], 0
    for position in positions:
        width = int(position * line_length) - current
        if width < 4:
            raise ValueError("Insufficient console width to print summary.")
        cells.append(width + _PADDING)
        current += width
    excess = sum(cells) - (line_length - (len(cells) + 1))
    if excess > 0:
        cells = _ratio_reduce(excess, cells)
    return [c - _PADDING for c in cells]


def _wrap(text, width):
    """Greedy word wrap; words longer than ``width`` are folded."""
    lines, line = [], ""
    for word in text.split(" "):
        while len(word) > width:
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:width])
            word = word[width:]
        candidate = f"{line} {word}" if line else word
        if len(candidate) <= width:
            line = candidate
        else:
            lines.append(line)
            line = word
    lines.append(line)
    return lines


def _row(cells, widths, aligns, vertical):
    wrapped = [_wrap(text, w) for text, w in zip(cells, widths)]
    height = max(len(w) for w in wrapped)
    out = []
    for i in range(height):
        parts = []
        for lines, width, align in zip(wrapped, widths, aligns):
            text = lines[i] if i < len(lines) else ""
            parts.append(" " + (text.rjust(width) if align == "right" else text.ljust(width)) + " ")
        out.append(vertical + vertical.join(parts) + vertical)
    return out


def render_table(header, rows, widths, aligns):
    """Lines of a rich HEAVY_HEAD table with show_lines=True."""
    cells = [w + _PADDING for w in widths]
    rule = lambda left, mid, right, fill: left + mid.join(fill * c for c in cells) + right  # noqa: E731
    lines = [rule("┏", "┳", "┓", "━")]
    lines += _row(header, widths, aligns, "┃")
    for i, row in enumerate(rows):
        lines.append(rule("┡", "╇", "┩", "━") if i == 0 else rule("├", "┼", "┤", "─"))
        lines += _row(row, widths, aligns, "│")
    lines.append(rule("└", "┴", "┘", "─"))
    return lines


def default_line_length():
    """Keras' default: 88 columns, less when the terminal is narrower (terminal - 4)."""
    return min(88, shutil.get_terminal_size().columns - 4)


def summary_text(model, line_length=None, positions=None):
    """The full summary of a Sequential model as one string (ending in a newline)."""
    line_length = line_length or default_line_length()
    positions = positions or [0.45, 0.80, 1.0]
    widths = column_widths(line_length, positions)
    rows = []
    for layer in model.layers:
        shape = "?" if not layer.built else "(" + ", ".join(str(s) for s in layer.output_shape) + ")"
        params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
        rows.append([f"{layer.name} ({type(layer).__name__})", shape, params])
    lines = [f'Model: "{model.name}"']
    lines += render_table(["Layer (type)", "Output Shape", "Param #"], rows, widths, ["left", "left", "right"])
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    non_trainable = sum(math.prod(w.shape) for w in model.non_trainable_weights)
    optimizer = model.optimizer if model.compiled else None
    optimizer_count = optimizer.variable_count() if optimizer is not None and optimizer.built else 0
    # Keras counts the optimizer's int64 step counter as 8 bytes, its other variables as float32
    optimizer_bytes = (optimizer_count - 1) * 4 + 8 if optimizer_count else 0
    total_bytes = (trainable + non_trainable) * 4 + optimizer_bytes
    lines.append(f" Total params: {trainable + non_trainable + optimizer_count:,} ({readable_memory_size(total_bytes)})")
    lines.append(f" Trainable params: {trainable:,} ({readable_memory_size(trainable * 4)})")
    lines.append(f" Non-trainable params: {non_trainable:,} ({readable_memory_size(non_trainable * 4)})")
    if optimizer_count:
        lines.append(f" Optimizer params: {optimizer_count:,} ({readable_memory_size(optimizer_bytes)})")
    return "\n".join(lines) + "\n"
