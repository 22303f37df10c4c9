"""The aggregate family's text report: the seed's executive summary, cost composition and
operational metrics (``stochplan solve`` and ``show``). Apart from the panels, so that
printing a report does not load the plotting code."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from stochplan.models.aggregate.kpis import category_label
from stochplan.reports.text import money


def report_text(headline: Mapping[str, float], tables: Mapping[str, pd.DataFrame]) -> str:
    """The seed's executive summary, cost composition and per-product table as aligned text."""
    lines = []
    lines.append("EXECUTIVE SUMMARY")
    lines.append(f"  Cumulative revenue   {money(headline['revenue']):>16}")
    lines.append(f"  Cumulative cost      {money(headline['cost']):>16}")
    lines.append(f"  Cumulative profit    {money(headline['profit']):>16}")
    lines.append(f"  Operating margin     {headline['operating_margin']:>15.1%} ")
    lines.append(f"  Fill rate            {headline['fill_rate']:>15.1%} ")
    lines.append("")
    lines.append("COST COMPOSITION")
    lines.append(f"  {'Category':<28}{'Total cost ($)':>16}{'Share':>10}")
    for row in tables["composition"].itertuples(index=False):
        label = category_label(str(row.category))
        lines.append(f"  {label:<28}{row.cost:>16,.2f}{row.percent:>9.2f}%")
    lines.append("")
    lines.append("OPERATIONAL METRICS (expected over scenarios)")
    lines.append(
        f"  {'Product':<18}{'Total demand':>13}{'Units produced':>16}{'Turnover':>10}"
        f"{'Avg unit cost':>15}{'Profit margin':>15}"
    )
    for row in tables["products"].itertuples(index=False):
        name = f"{row.product} ({row.label})"
        lines.append(
            f"  {name:<18}{row.total_demand:>13,.1f}{row.units_produced:>16,.0f}"
            f"{row.turnover:>10.2f}{money(row.avg_unit_cost):>15}{row.profit_margin:>14.1%} "
        )
    return "\n".join(lines)
