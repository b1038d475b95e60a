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
    """rich's wrap with overflow 'ellipsis': greedy word wrap, a line still too long cut to ``width`` with '…'."""
    lines, line = [], None
    for word in text.split(" "):
        candidate = word if line is None else f"{line} {word}"
        if line is None or len(candidate) <= width:
            line = candidate
        else:
            lines.append(line)
            line = word
    lines.append(line or "")
    return [line if len(line) <= width else line[:width - 1] + "…" for line in lines]


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


def default_line_length(columns=3):
    """Keras' default: 88 columns (108 with "Connected to"), less when the terminal is narrower (terminal - 4)."""
    return min(88 if columns == 3 else 108, shutil.get_terminal_size().columns - 4)


def _sequential_like(model):
    """Keras' test: no depth of the graph holds two nodes, no node reads two tensors, no layer is called twice."""
    from convx.models.functional import Functional

    if not isinstance(model, Functional):
        return True
    graph = model._graph
    for nodes in graph.nodes_by_depth.values():
        if len(nodes) > 1 or (len(nodes) == 1 and len(nodes[0].input_tensors) > 1):
            return False
    in_graph = graph.node_set
    return all(sum(node in in_graph for node in layer._inbound_nodes) <= 1 for layer in model.layers)


def _output_shape(layer):
    if not layer._inbound_nodes:
        return "(" + ", ".join(str(s) for s in layer.output_shape) + ")" if layer.built else "?"
    shapes = ["(" + ", ".join(str(s) for s in t.shape) + ")" for t in layer._inbound_nodes[-1].output_tensors]
    return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"


def _connections(layer, in_graph):
    links = []
    for node in layer._inbound_nodes:
        if node not in in_graph:
            continue
        for tensor in node.input_tensors:
            source, node_index, tensor_index = tensor._keras_history
            links.append(f"{source.name}[{node_index}][{tensor_index}]")
    return ", ".join(links) or "-"


def summary_text(model, line_length=None, positions=None):
    """The full summary of a model as one string (ending in a newline)."""
    sequential_like = _sequential_like(model)
    header = ["Layer (type)", "Output Shape", "Param #"]
    aligns = ["left", "left", "right"]
    if not sequential_like:
        header.append("Connected to")
        aligns.append("left")
    line_length = line_length or default_line_length(len(header))
    positions = positions or ([0.45, 0.80, 1.0] if sequential_like else [0.3, 0.56, 0.74, 1.0])
    widths = column_widths(line_length, positions)
    in_graph = model._graph.node_set if model._graph is not None else set()
    rows = []
    for layer in model.layers:
        params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
        kind = type(layer).__name__ + (", int8" if getattr(layer, "_int8", None) is not None else "")
        row = [f"{layer.name} ({kind})", _output_shape(layer), params]
        if not sequential_like:
            row.append(_connections(layer, in_graph))
        rows.append(row)
    lines = [f'Model: "{model.name}"']
    lines += render_table(header, rows, widths, aligns)
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    non_trainable = sum(math.prod(w.shape) for w in model.non_trainable_weights)
    optimizer = model.optimizer if model.compiled else None
    optimizer_count = optimizer.variable_count() if optimizer is not None and optimizer.built else 0
    # Keras counts the optimizer's int64 step counter as 8 bytes, its other variables as float32
    optimizer_bytes = (optimizer_count - 1) * 4 + 8 if optimizer_count else 0
    # bytes by each weight's dtype, as Keras counts them (an int8 kernel: 1 byte per parameter)
    trainable_bytes = sum(math.prod(w.shape) * w.dtype.itemsize for w in model.trainable_weights)
    non_trainable_bytes = sum(math.prod(w.shape) * w.dtype.itemsize for w in model.non_trainable_weights)
    total_bytes = trainable_bytes + non_trainable_bytes + optimizer_bytes
    lines.append(f" Total params: {trainable + non_trainable + optimizer_count:,} ({readable_memory_size(total_bytes)})")
    lines.append(f" Trainable params: {trainable:,} ({readable_memory_size(trainable_bytes)})")
    lines.append(f" Non-trainable params: {non_trainable:,} ({readable_memory_size(non_trainable_bytes)})")
    if optimizer_count:
        lines.append(f" Optimizer params: {optimizer_count:,} ({readable_memory_size(optimizer_bytes)})")
    return "\n".join(lines) + "\n"
