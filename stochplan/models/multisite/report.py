"""The multi-site family's text report (``stochplan solve`` and ``show``): network totals,
profit and its parts, then one line per site (sorted by expected profit) with its
deterministic profit, VSS, fill rate and utilisation. Apart from the panels, so that printing
a report does not load the plotting code."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from stochplan.reports.text import money

__all__ = ["report_text"]

#: Sites listed one per line in the report; more are summarised (the dashboard has them all).
MAX_SITE_LINES = 60


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.1%}"


def report_text(headline: Mapping[str, float], tables: Mapping[str, pd.DataFrame]) -> str:
    """Aligned text: network totals, then the sites by expected profit."""
    h = headline
    lines = [f"NETWORK ({h.get('sites', 0):,.0f} sites; expected over the scenarios)"]
    for key, label in (("expected_profit", "Expected profit"), ("revenue", "Revenue"),
                       ("salvage", "Salvage"), ("raw_material_cost", "Raw-material cost"),
                       ("machine_cost", "Machine cost"), ("goodwill_cost", "Goodwill cost"),
                       ("deterministic_profit", "Deterministic plan"),
                       ("vss", "VSS (stochastic - det.)")):
        if key in h:
            lines.append(f"  {label:<26}{money(h[key]):>18}")
    for key in sorted(k for k in h if k.startswith("machine_cost_")):
        lines.append(f"    {key.removeprefix('machine_cost_'):<24}{money(h[key]):>18}")
    lines.append(f"  {'Volume':<26}{h.get('volume', math.nan):>18,.1f} units")
    lines.append(f"  {'Fill rate':<26}{_pct(h.get('fill_rate', math.nan)):>18}")
    lines.append(f"  {'Machine utilisation':<26}"
                 f"{_pct(h.get('machine_utilisation_rate', math.nan)):>18}")
    lines.append(f"  {'Raw-material utilisation':<26}"
                 f"{_pct(h.get('raw_material_utilisation_rate', math.nan)):>18}")
    sites = tables.get("sites")
    if sites is None or sites.empty:
        return "\n".join(lines)
    ordered = sites.sort_values("expected_profit", ascending=False)
    lines += ["", "SITES (by expected profit)",
              f"  {'Site':<14}{'Exp. profit':>16}{'Deterministic':>16}{'VSS':>12}"
              f"{'Fill':>8}{'Machines':>10}{'Raw mat.':>10}"]
    shown = ordered.head(MAX_SITE_LINES)
    for r in shown.itertuples(index=False):
        lines.append(f"  {str(r.site)[:13]:<14}{money(r.expected_profit):>16}"
                     f"{money(r.deterministic_profit):>16}{money(r.vss):>12}"
                     f"{_pct(r.fill_rate):>8}{_pct(r.machine_utilisation):>10}"
                     f"{_pct(r.raw_material_utilisation):>10}")
    if len(ordered) > len(shown):
        rest = ordered.iloc[len(shown):]
        lines.append(f"  ... {len(rest)} more site(s), expected profit "
                     f"{money(float(rest['expected_profit'].min()))} to "
                     f"{money(float(rest['expected_profit'].max()))}")
    return "\n".join(lines)
