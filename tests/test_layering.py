"""Layering: one adapter module owns every contact with mpi-sppy.

``stochplan/_mpisppy.py`` is the only module that imports mpi-sppy and the only one that
names the private state mpi-sppy keeps on models (``_mpisppy_node_list``,
``_mpisppy_probability``, ``_mpisppy_data``, ``_mpisppy_model``, ...). The check reads the
source (no imports), so it needs no solver.
"""

from __future__ import annotations

import ast
from pathlib import Path

import stochplan

PACKAGE = Path(stochplan.__file__).parent
ADAPTER = PACKAGE / "_mpisppy.py"
#: The second half of the adapter: PH's hub and spokes driving the highspy guest.
ADAPTER_HIGHS = PACKAGE / "_mpisppy_highs.py"


def _imports_mpisppy(node: ast.AST) -> bool:
    """``import mpisppy[.x]``, ``from mpisppy[.x] import y``, or ``import_module("mpisppy...")``
    / ``__import__("mpisppy...")`` with a literal name."""
    def is_mpisppy(name: str | None) -> bool:
        return name is not None and (name == "mpisppy" or name.startswith("mpisppy."))

    if isinstance(node, ast.Import):
        return any(is_mpisppy(alias.name) for alias in node.names)
    if isinstance(node, ast.ImportFrom):
        return node.level == 0 and is_mpisppy(node.module)
    if isinstance(node, ast.Call) and node.args:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        first = node.args[0]
        return (name in ("import_module", "__import__") and isinstance(first, ast.Constant)
                and isinstance(first.value, str) and is_mpisppy(first.value))
    return False


def _names_mpisppy_state(node: ast.AST) -> bool:
    """``x._mpisppy_...`` or a string naming such an attribute (``getattr(x, "_mpisppy_...")``,
    a ``"_mpisppy"`` name prefix)."""
    if isinstance(node, ast.Attribute):
        return node.attr.startswith("_mpisppy_")
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value == "_mpisppy" or node.value.startswith("_mpisppy_")
    return False


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        if _imports_mpisppy(node):
            found.append(f"line {line}: imports mpi-sppy")
        elif _names_mpisppy_state(node):
            found.append(f"line {line}: mpi-sppy's private state ({ast.unparse(node)})")
    return found


def test_the_checks_see_what_they_look_for():
    """Each form the scan must catch is caught, and the adapter's own name is not."""
    caught = [
        "import mpisppy", "import mpisppy.utils.sputils as s", "from mpisppy import log",
        "from mpisppy.utils import config", "importlib.import_module('mpisppy.opt.ph')",
        "m._mpisppy_probability = 0.5", "v = m._mpisppy_node_list[0]",
        "getattr(m, '_mpisppy_model', None)", "name.startswith(('_C_EF_', '_mpisppy'))",
    ]
    missed = [
        "from stochplan import _mpisppy", "from stochplan._mpisppy import attach_root",
        "_mpisppy.nonant_vars(m)", "import mpisppy_like", "x = 'mpi-sppy'",
    ]
    def flags(src: str) -> bool:
        return any(_imports_mpisppy(n) or _names_mpisppy_state(n) for n in ast.walk(ast.parse(src)))

    assert [s for s in caught if not flags(s)] == []
    assert [s for s in missed if flags(s)] == []


def test_only_the_adapter_touches_mpisppy():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert ADAPTER in modules and ADAPTER_HIGHS in modules and len(modules) > 10
    offending = {
        str(path.relative_to(PACKAGE.parent)): found
        for path in modules
        if path not in (ADAPTER, ADAPTER_HIGHS) and (found := _offences(path))
    }
    report = "\n".join(f"  {name}: {'; '.join(found)}" for name, found in offending.items())
    assert not offending, (
        "only stochplan/_mpisppy.py and _mpisppy_highs.py may import mpi-sppy or name its "
        "_mpisppy_* attributes; "
        f"use the adapter's functions instead in:\n{report}")
