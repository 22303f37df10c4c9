"""Model families. Each module follows mpi-sppy's module contract.

``aggregate``: the workforce/production/inventory/backorder/overflow model (seed 003).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from stochplan.errors import InputError

#: Family name -> module path.
FAMILIES = {"aggregate": "stochplan.models.aggregate"}


def family_module(family: str) -> ModuleType:
    """The module of a model family."""
    if family not in FAMILIES:
        raise InputError("family", family, f"unknown model family (known: {', '.join(FAMILIES)})")
    return importlib.import_module(FAMILIES[family])
