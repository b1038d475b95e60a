"""convx.utils.plot_history (a matplotlib Figure: one axes per metric, train and validation curves, epochs on x)
and plot_model / model_to_dot (pydot + Graphviz, or an ImportError naming them)."""

import sys
import types

import numpy as np
import pytest

import convx
from conftest import optional


def _history(rng):
    model = convx.Sequential([convx.Input((4,)), convx.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    x, y = rng.random((20, 4)), np.eye(3)[rng.integers(0, 3, 20)]
    return model, model.fit(x, y, epochs=3, validation_split=0.25, verbose=0)


def test_plot_history_one_axes_per_metric(rng, tmp_path):
    optional("matplotlib", "plot")
    _, history = _history(rng)
    figure = convx.utils.plot_history(history)
    assert type(figure).__name__ == "Figure"
    axes = figure.get_axes()
    assert [a.get_title() for a in axes] == ["accuracy", "loss"]
    for a, name in zip(axes, ["accuracy", "loss"]):
        train, val = a.get_lines()
        assert [line.get_label() for line in (train, val)] == ["train", "validation"]
        np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3])
        np.testing.assert_allclose(train.get_ydata(), history.history[name])
        np.testing.assert_allclose(val.get_ydata(), history.history["val_" + name])
        assert a.get_xlabel() == "epoch"
    figure.savefig(tmp_path / "history.png")
    assert (tmp_path / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    only_loss = convx.utils.plot_history(history.history, metrics=["loss"])
    assert len(only_loss.get_axes()) == 1
    with pytest.raises(ValueError, match=r"metrics \['auc'\] are not in the history"):
        convx.utils.plot_history(history, metrics=["auc"])


def test_plot_history_without_matplotlib_names_it(monkeypatch, rng):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match="plot_history requires matplotlib: pip install matplotlib"):
        convx.utils.plot_history({"loss": [1.0, 0.5]})


def test_plot_model_without_pydot_names_pydot_and_graphviz(monkeypatch, rng, tmp_path):
    model, _ = _history(rng)
    monkeypatch.setitem(sys.modules, "pydot", None)
    with pytest.raises(ImportError, match=r"You must install pydot \(`pip install pydot`\) and Graphviz"):
        convx.utils.plot_model(model, to_file=tmp_path / "model.png")


def _fake_pydot():
    """Just enough of pydot's API to record the graph that model_to_dot builds."""
    module = types.ModuleType("pydot")

    class Dot:
        def __init__(self, **attrs):
            self.attrs, self.nodes, self.edges, self.written = attrs, [], [], None

        def set_node_defaults(self, **attrs):
            pass

        def add_node(self, node):
            self.nodes.append(node)

        def add_edge(self, edge):
            self.edges.append(edge)

        def write(self, path, format):
            self.written = (path, format)

    class Node:
        def __init__(self, name, label):
            self.name, self.label = name, label

    class Edge:
        def __init__(self, source, target):
            self.source, self.target = source, target

    module.Dot, module.Node, module.Edge = Dot, Node, Edge
    return module


def test_model_to_dot_draws_the_layer_graph(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydot", _fake_pydot())
    inputs = convx.Input((8,), name="x")
    a = convx.layers.Dense(4, name="a")(inputs)
    b = convx.layers.Dense(4, name="b")(inputs)
    out = convx.layers.Add(name="sum")([a, b])
    model = convx.Model(inputs, out)
    dot = convx.utils.model_to_dot(model, show_shapes=True)
    labels = {n.name: n.label for n in dot.nodes}
    names = {n.label.split("\n")[0] for n in dot.nodes}
    assert names == {"x (InputLayer)", "a (Dense)", "b (Dense)", "sum (Add)"}
    by_label = {v.split(" ")[0]: k for k, v in labels.items()}
    assert sorted((e.source, e.target) for e in dot.edges) == sorted(
        [(by_label["x"], by_label["a"]), (by_label["x"], by_label["b"]),
         (by_label["a"], by_label["sum"]), (by_label["b"], by_label["sum"])])
    assert "output: (None, 4)" in labels[by_label["sum"]]
    convx.utils.plot_model(model, to_file="graph.svg")
