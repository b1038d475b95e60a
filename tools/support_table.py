"""Write docs/supported.md: which Keras 3 names convx provides, category by category.

The Keras 3 names are pinned in ``docs/_data/keras3_api.json`` (listed from Keras
itself, so the docs build needs no Keras); convx's are read from the installed
package. Run by the Sphinx build (``docs/conf.py``) and by hand::

    python tools/support_table.py docs/supported.md
"""

import importlib
import json
import sys
from pathlib import Path

KERAS_NAMES = Path(__file__).resolve().parent.parent / "docs" / "_data" / "keras3_api.json"

# category -> (convx module, title)
CATEGORIES = {
    "layers": ("convx.layers", "Layers"),
    "optimizers": ("convx.optimizers", "Optimizers"),
    "schedules": ("convx.optimizers.schedules", "Learning-rate schedules"),
    "callbacks": ("convx.callbacks", "Callbacks"),
    "losses": ("convx.losses", "Losses"),
    "metrics": ("convx.metrics", "Metrics"),
    "activations": ("convx.activations", "Activations"),
    "initializers": ("convx.initializers", "Initializers"),
    "ops": ("convx.ops", "Operations (`keras.ops`)"),
    "utils": ("convx.utils", "Utilities"),
}


def _provided(module_name):
    """The public names of a convx module, or an empty set when the module does not exist yet."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return set()
    return {name for name in dir(module) if not name.startswith("_")}


def table(keras_names):
    """The page's Markdown text."""
    lines = [
        "# What convx supports",
        "",
        f"Every public name of Keras {keras_names['keras_version']} in the categories below, and whether "
        "`import convx as keras` provides it. Generated from the installed package by "
        "`tools/support_table.py`; a missing name raises `AttributeError` in convx.",
        "",
        "| Category | Provided | Keras 3 names |",
        "| --- | --- | --- |",
    ]
    sections = []
    for key, (module_name, title) in CATEGORIES.items():
        names = keras_names[key]
        provided = _provided(module_name)
        have = [name for name in names if name in provided]
        missing = [name for name in names if name not in provided]
        lines.append(f"| {title} | {len(have)} | {len(names)} |")
        sections += ["", f"## {title}", "", f"Provided ({len(have)}): " + (", ".join(f"`{n}`" for n in have) or "none")]
        sections += ["", f"Not provided ({len(missing)}): " + (", ".join(f"`{n}`" for n in missing) or "none")]
    return "\n".join(lines + sections) + "\n"


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: python tools/support_table.py OUTPUT.md")
    keras_names = json.loads(KERAS_NAMES.read_text(encoding="utf-8"))
    Path(argv[1]).write_text(table(keras_names), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv)
