"""Plain-text reports of a run: a generic header, then the family's own sections.

The functions take the stored pieces (headline KPIs and tables), so a report can be printed for
any run in the results database, not only for the one just solved.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd


def money(x: float) -> str:
    """``$1,234.50``, ``-$1,234.50``; non-finite values as they are (``inf``, ``nan``)."""
    if not math.isfinite(x):
        return str(x)
    return f"-${-x:,.2f}" if x < 0 else f"${x:,.2f}"


def header_text(header: Mapping[str, Any]) -> str:
    """The run's identity and objective in two lines.

    ``header`` carries ``instance``, ``scenarios``, ``n_scenarios``, ``method``, ``status``,
    ``objective``, ``gap`` and optionally ``run_id``, ``integer``.
    """
    run = f"run {header['run_id']}: " if header.get("run_id") is not None else ""
    integer = header.get("integer")
    kind = "" if integer is None else (", integer" if integer else ", LP relaxation")
    gap = header.get("gap")
    gap_text = f", gap {gap:.4%}" if gap is not None and math.isfinite(gap) else ""
    objective = header.get("objective")
    value = money(objective) if objective is not None else "none"
    what = ("Expected total cost (objective)" if header.get("sense", "min") == "min"
            else "Expected objective (maximised)")
    return (
        f"{run}{header['instance']}, {header['scenarios']} ({header['n_scenarios']} scenarios"
        f"{kind}), {str(header['method']).upper()} with HiGHS: {header['status']}\n"
        f"{what}: {value}{gap_text}"
    )


def report_text(
    header: Mapping[str, Any],
    family: Any,
    headline: Mapping[str, float],
    tables: Mapping[str, pd.DataFrame],
) -> str:
    """The header, then the family's sections (``family`` may be None for a bare module)."""
    body = family.report_text(headline, tables) if family is not None else ""
    if not body and headline:
        body = key_figures(headline)
    return header_text(header) + ("\n\n" + body if body else "")


def key_figures(headline: Mapping[str, float]) -> str:
    """Headline KPIs one per line (for families without report sections of their own)."""
    width = max(len(k) for k in headline)
    lines = ["KEY FIGURES"]
    lines += [f"  {k:<{width}}  {v:>18,.6g}" for k, v in headline.items()]
    return "\n".join(lines)
