"""Sphinx configuration for convx's documentation (``sphinx-build -W -b html docs docs/_build``)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import convx  # noqa: E402  (the installed package: the API reference documents what users get)
import support_table  # noqa: E402

project = "convx"
author = "the convx developers"
copyright = "the convx developers, BSD-3-Clause"
release = convx.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.autosummary"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "_data"]
myst_heading_anchors = 3
napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
html_theme = "alabaster"
html_title = f"convx {release}"
# links to repository files outside docs/ (README, benchmarks/), and attribute names (shape, dtype) that
# several classes share, which Sphinx cannot resolve to one
suppress_warnings = ["myst.xref_missing", "ref.python"]
napoleon_use_ivar = True


def _write_support_table(app):
    support_table.main(["support_table", str(Path(app.srcdir) / "supported.md")])


def setup(app):
    app.connect("builder-inited", _write_support_table)
