"""Sphinx configuration of the stochplan documentation (``make docs``)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

from stochplan import __version__  # noqa: E402

project = "stochplan"
author = "the stochplan developers"
copyright = "2026, the stochplan developers"
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_parser",
    "stochplan_docs",  # the generated pages: commands, configuration, database, families
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_generated", "_ext"]
myst_heading_anchors = 3

# The docstrings are numpy style; their type names are prose ("float or None"), not
# cross-references, so they are not resolved.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_mock_imports = ["mpi4py"]

html_theme = "alabaster"
html_title = f"stochplan {release}"
html_static_path: list[str] = []


# The docstrings are read as plain text first: they write absolute values as |x| and shapes
# as (S, *shape), which reStructuredText would take for substitutions and emphasis. Escape
# them (outside literals and literal blocks) before autodoc parses the docstring.
_ABS = re.compile(r"(?<![|\\`])\|([^|`\n]+?)\|(?![|_`])")
_STAR = re.compile(r"(\(\s*[^()\s]*,\s*)\*(\w)")


def _plain_text_math(app, what, name, obj, options, lines: list[str]) -> None:
    block_indent: int | None = None
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if block_indent is not None:
            if not line.strip() or indent > block_indent:
                continue
            block_indent = None
        text = line.strip()
        if text.startswith(("| ", "+-", "+=", ">>>", "...")) or (
                text.startswith("|") and text.endswith("|") and len(text) > 1):
            pass  # a table row, a line block or a doctest
        else:
            parts = line.split("``")
            for k in range(0, len(parts), 2):  # the even parts are outside ``literals``
                parts[k] = _STAR.sub(r"\1\\*\2", _ABS.sub(r"\\|\1\\|", parts[k]))
            lines[i] = "``".join(parts)
        if line.rstrip().endswith("::"):
            block_indent = indent


def setup(app) -> None:
    app.connect("autodoc-process-docstring", _plain_text_math)
