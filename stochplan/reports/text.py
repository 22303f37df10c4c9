"""Plain-text reports: the seed's executive summary, cost composition and operational table.

The functions take the stored pieces (headline KPIs and tables), so a report can be printed for
any run in the results database, not only for the one just solved.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd


def money(x: float) -> str:
    return f"${x:,.2f}" if math.isfinite(x) else str(x)


def kpi_report_text(
    header: Mapping[str, Any],
    headline: Mapping[str, float],
    composition: pd.DataFrame,
    products: pd.DataFrame,
) -> str:
    """The executive summary, cost composition and per-product table as aligned text.

    ``header`` carries the run's identity: ``instance``, ``scenarios``, ``n_scenarios``,
    ``method``, ``status``, ``objective``, ``gap`` and optionally ``run_id``, ``integer``.
    """
    lines = []
    run = f"run {header['run_id']}: " if header.get("run_id") is not None else ""
    kind = "integer" if header.get("integer", True) else "LP relaxation"
    lines.append(
        f"{run}{header['instance']}, {header['scenarios']} ({header['n_scenarios']} scenarios, "
        f"{kind}), {str(header['method']).upper()} with HiGHS: {header['status']}"
    )
    gap = header.get("gap")
    gap_text = f", gap {gap:.4%}" if gap is not None and math.isfinite(gap) else ""
    lines.append(f"Expected total cost (objective): {money(header['objective'])}{gap_text}")
    lines.append("")
    lines.append("EXECUTIVE SUMMARY")
    lines.append(f"  Cumulative revenue   {money(headline['revenue']):>16}")
    lines.append(f"  Cumulative cost      {money(headline['cost']):>16}")
    lines.append(f"  Cumulative profit    {money(headline['profit']):>16}")
    lines.append(f"  Operating margin     {headline['operating_margin']:>15.1%} ")
    lines.append(f"  Fill rate            {headline['fill_rate']:>15.1%} ")
    lines.append("")
    lines.append("COST COMPOSITION")
    lines.append(f"  {'Category':<14}{'Total cost ($)':>16}{'Share':>10}")
    for row in composition.itertuples(index=False):
        lines.append(f"  {row.category:<14}{row.cost:>16,.2f}{row.percent:>9.2f}%")
    lines.append("")
    lines.append("OPERATIONAL METRICS (expected over scenarios)")
    lines.append(
        f"  {'Product':<18}{'Total demand':>13}{'Units produced':>16}{'Turnover':>10}"
        f"{'Avg unit cost':>15}{'Profit margin':>15}"
    )
    for row in products.itertuples(index=False):
        name = f"{row.product} ({row.label})"
        lines.append(
            f"  {name:<18}{row.total_demand:>13,.1f}{row.units_produced:>16,.0f}"
            f"{row.turnover:>10.2f}{money(row.avg_unit_cost):>15}{row.profit_margin:>14.1%} "
        )
    return "\n".join(lines)
