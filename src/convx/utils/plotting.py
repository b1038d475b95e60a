"""Pictures of training: ``plot_history`` (matplotlib) and ``plot_model`` / ``model_to_dot`` (pydot + Graphviz).

Both libraries are optional and imported only here, by the function that needs them.
"""

import os


def _history_dict(history):
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or not logs:
        raise ValueError("plot_history needs a History (what fit returns) or a non-empty dict of metric lists, "
                         f"received {history!r}")
    return logs


def plot_history(history, metrics=None):
    """One axes per metric with its training and validation curves, epochs (1-based) on x.

    Parameters
    ----------
    history : History or dict
        What ``model.fit`` returns, or its ``history`` dict (``{"loss": [...],
        "val_loss": [...], ...}``).
    metrics : list of str or None
        Metric names without the ``val_`` prefix; default: every training
        metric of ``history``.

    Returns
    -------
    matplotlib.figure.Figure
        Not shown; save it with ``fig.savefig("history.png")``.
    """
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError as error:
        raise ImportError("plot_history requires matplotlib: pip install matplotlib "
                          "(or pip install 'convx-cnn[plot]')") from error
    logs = _history_dict(history)
    names = list(metrics) if metrics is not None else [k for k in logs if not k.startswith("val_")]
    unknown = [name for name in names if name not in logs and "val_" + name not in logs]
    if unknown or not names:
        raise ValueError(f"plot_history: metrics {unknown or names} are not in the history (it has {sorted(logs)})")
    epochs = getattr(history, "epoch", None)
    figure = Figure(figsize=(5 * len(names), 4), layout="constrained")
    for axes, name in zip(figure.subplots(1, len(names), squeeze=False)[0], names):
        for key, label in ((name, "train"), ("val_" + name, "validation")):
            if key in logs:
                values = list(logs[key])
                xs = [e + 1 for e in epochs] if epochs is not None and len(epochs) == len(values) else \
                    list(range(1, len(values) + 1))
                axes.plot(xs, values, marker="o", label=label)
        axes.set_title(name)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(name)
        axes.legend()
    return figure


def _require_pydot():
    try:
        import pydot
    except ImportError as error:
        raise ImportError("You must install pydot (`pip install pydot`) and Graphviz (see instructions at "
                          "https://graphviz.gitlab.io/download/) for `plot_model` to work.") from error
    return pydot


def _shape_text(tensors):
    shapes = ["(" + ", ".join(str(s) for s in t.shape) + ")" for t in tensors]
    return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"


def _label(layer, show_shapes, show_dtype, show_layer_names, show_layer_activations, show_trainable):
    lines = [f"{layer.name} ({type(layer).__name__})" if show_layer_names else type(layer).__name__]
    activation = getattr(layer, "activation", None)
    if show_layer_activations and activation is not None:
        lines.append(f"activation: {getattr(activation, '__name__', activation)}")
    if show_dtype:
        lines.append(f"dtype: {getattr(layer, 'dtype', 'float32')}")
    if show_trainable:
        lines.append(f"trainable: {layer.trainable}")
    node = layer._inbound_nodes[-1] if getattr(layer, "_inbound_nodes", None) else None
    if show_shapes and node is not None:
        lines.append(f"input: {_shape_text(node.input_tensors) if node.input_tensors else '-'}")
        lines.append(f"output: {_shape_text(node.output_tensors)}")
    return "\n".join(lines)


def model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True, rankdir="TB",
                 expand_nested=False, dpi=200, show_layer_activations=False, show_trainable=False, **kwargs):
    """The model's layer graph as a ``pydot.Dot`` (one box per layer, an edge per tensor between layers)."""
    pydot = _require_pydot()
    dot = pydot.Dot(graph_type="digraph", rankdir=rankdir, dpi=str(dpi), concentrate="true")
    dot.set_node_defaults(shape="record")
    layers = list(model.layers)
    inputs = [t._keras_history[0] for t in getattr(model, "inputs", None) or []]
    layers = [layer for layer in inputs if all(layer is not other for other in layers)] + layers
    for layer in layers:
        text = _label(layer, show_shapes, show_dtype, show_layer_names, show_layer_activations, show_trainable)
        dot.add_node(pydot.Node(str(id(layer)), label=text))
    for target in layers:
        for node in getattr(target, "_inbound_nodes", []):
            for tensor in node.input_tensors:
                source = tensor._keras_history[0]
                if any(source is layer for layer in layers):
                    dot.add_edge(pydot.Edge(str(id(source)), str(id(target))))
    return dot


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False, show_layer_names=False,
               rankdir="TB", expand_nested=False, dpi=200, show_layer_activations=False, show_trainable=False,
               **kwargs):
    """Draw the model's layer graph to ``to_file`` with Graphviz (Keras 3's ``plot_model``).

    Parameters
    ----------
    model : Model
        A built Sequential or functional model.
    to_file : str or path, default "model.png"
        The extension picks the format (png, svg, pdf, dot, ...).
    show_shapes, show_dtype, show_layer_names, show_layer_activations, show_trainable : bool
        What each box shows besides the layer class.
    rankdir : {"TB", "LR"}, default "TB"
    dpi : int, default 200

    Raises
    ------
    ImportError
        Naming pydot and Graphviz when they are not installed.
    """
    if not getattr(model, "built", False):
        raise ValueError("This model has not yet been built. Build the model first by calling `build()` or by "
                         "calling the model on a batch of data.")
    dot = model_to_dot(model, show_shapes=show_shapes, show_dtype=show_dtype, show_layer_names=show_layer_names,
                       rankdir=rankdir, expand_nested=expand_nested, dpi=dpi,
                       show_layer_activations=show_layer_activations, show_trainable=show_trainable)
    to_file = os.fspath(to_file)
    extension = os.path.splitext(to_file)[1][1:] or "png"
    try:
        dot.write(to_file, format=extension)
    except (FileNotFoundError, OSError) as error:
        raise ImportError("You must install Graphviz (the `dot` program; see https://graphviz.gitlab.io/download/) "
                          f"for `plot_model` to work: {error}") from error
    return None
