"""The lot-sizing family's text report (``stochplan solve`` and ``show``): profit and its parts,
the setup plan and expected production grids, order fulfilment by tier, customer and order,
machine and material utilisation. Apart from the panels, so that printing a report does not
load the plotting code."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from stochplan.reports.text import money

__all__ = ["grid", "report_text"]


def grid(table: pd.DataFrame, row: str, value: str) -> pd.DataFrame:
    """A tidy table (``row``, ``week``, ``value``) as a row x week grid, rows in stored order."""
    rows = list(pd.unique(table[row]))
    out = table.pivot_table(index=row, columns="week", values=value, aggfunc="sum", sort=False)
    return out.reindex(index=rows, columns=sorted(out.columns))


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.1%}"


def _setup_mark(v: float) -> str:
    if abs(v - 1.0) < 1e-9:
        return "X"
    if abs(v) < 1e-9:
        return "."
    return f"{v:.2f}"


def report_text(headline: Mapping[str, float], tables: Mapping[str, pd.DataFrame]) -> str:
    """Aligned text: summary, setup plan, production, fulfilment, utilisation."""
    h = headline
    lines = ["EXPECTED PROFIT (over the scenarios)"]
    for key, label in (("expected_profit", "Expected profit"), ("revenue", "Revenue"),
                       ("order_revenue", "  from orders"), ("market_revenue", "  open market"),
                       ("setup_cost", "Setup cost"), ("holding_cost", "Holding cost"),
                       ("lateness_cost", "Lateness cost"),
                       ("unmet_penalty_cost", "Unmet-order penalties")):
        lines.append(f"  {label:<24}{money(h[key]):>16}")
    lines.append("")
    lines.append("OPERATIONS")
    lines.append(f"  {'Setups':<24}{h['setups']:>16,.2f}")
    lines.append(f"  {'Average batch size':<24}{h['avg_batch_size']:>16,.2f} units")
    lines.append(f"  {'Expected production':<24}{h['expected_production']:>16,.2f} units")
    lines.append(f"  {'Average inventory':<24}{h['avg_inventory']:>16,.2f} units")
    lines.append(f"  {'Machine utilisation':<24}{_pct(h['machine_utilisation_rate']):>16}"
                 "  (hours incl. setups / available)")
    lines.append(f"  {'Material utilisation':<24}{_pct(h['material_utilisation_rate']):>16}"
                 "  (mean over materials and weeks)")
    lines.append(f"  {'Fill rate':<24}{_pct(h['fill_rate']):>16}")
    lines.append(f"  {'On-time rate':<24}{_pct(h['on_time_rate']):>16}")

    schedule = tables["schedule"]
    setups = grid(schedule, "product", "setup")
    production = grid(schedule, "product", "production")
    weeks = list(setups.columns)
    width = max(12, *(len(str(p)) for p in setups.index)) + 2
    head = f"  {'Product':<{width}}" + "".join(f"{'W' + str(w):>10}" for w in weeks)
    lines += ["", "SETUP PLAN (X: setup, first stage)", head]
    for p, row in setups.iterrows():
        lines.append(f"  {p!s:<{width}}" + "".join(f"{_setup_mark(v):>10}" for v in row))
    lines += ["", "EXPECTED PRODUCTION (units)", head]
    for p, row in production.iterrows():
        lines.append(f"  {p!s:<{width}}" + "".join(f"{v:>10,.1f}" for v in row))

    lines += ["", "ORDER FULFILMENT BY TIER (expected units)",
              f"  {'Tier':<8}{'Orders':>7}{'Ordered':>10}{'On time':>10}{'Late':>9}"
              f"{'Unmet':>9}{'Fill':>8}{'On time':>9}{'Penalty':>14}"]
    for r in tables["tiers"].itertuples(index=False):
        lines.append(f"  {r.tier:<8}{r.orders:>7}{r.quantity:>10,.1f}{r.on_time:>10,.1f}"
                     f"{r.late:>9,.1f}{r.unmet:>9,.1f}{_pct(r.fill_rate):>8}"
                     f"{_pct(r.on_time_rate):>9}{money(r.unmet_penalty_cost):>14}")
    lines += ["", "ORDER FULFILMENT PER ORDER (expected units)",
              f"  {'Order':<7}{'Customer':<28}{'Tier':<8}{'Product':<12}{'Week':>5}"
              f"{'Target':>8}{'Ordered':>9}{'On time':>9}{'Late':>7}{'Unmet':>7}{'Fill':>8}"]
    for r in tables["orders"].itertuples(index=False):
        lines.append(f"  {r.order!s:<7}{str(r.customer)[:27]:<28}{r.tier:<8}"
                     f"{str(r.product)[:11]:<12}{r.week:>5}{r.target:>8,.0f}{r.quantity:>9,.1f}"
                     f"{r.on_time:>9,.1f}{r.late:>7,.1f}{r.unmet:>7,.1f}{_pct(r.fill_rate):>8}")
    lines += ["", "FILL RATE PER CUSTOMER",
              f"  {'Customer':<28}{'Tier':<8}{'Orders':>7}{'Fill':>8}{'On time':>9}"]
    for r in tables["customers"].itertuples(index=False):
        lines.append(f"  {str(r.customer)[:27]:<28}{r.tier:<8}{r.orders:>7}"
                     f"{_pct(r.fill_rate):>8}{_pct(r.on_time_rate):>9}")

    machines = tables["machines"].assign(
        used=lambda d: d["production_hours"] + d["setup_hours"])
    util = grid(machines, "machine", "utilisation")
    setup_h = grid(machines, "machine", "setup_hours")
    mwidth = max(20, *(len(str(m)) for m in util.index)) + 2
    lines += ["", "MACHINE UTILISATION (production + setup hours / available; setup hours)",
              f"  {'Machine':<{mwidth}}" + "".join(f"{'W' + str(w):>16}" for w in util.columns)]
    for m, row in util.iterrows():
        cells = [f"{_pct(u)} ({s:,.0f} h)" for u, s in zip(row, setup_h.loc[m])]
        lines.append(f"  {m!s:<{mwidth}}" + "".join(f"{c:>16}" for c in cells))
    mat = grid(tables["materials"], "material", "utilisation")
    kwidth = max(20, *(len(str(k)) for k in mat.index)) + 2 if len(mat) else 22
    lines += ["", "MATERIAL USE (used / available per week)",
              f"  {'Material':<{kwidth}}" + "".join(f"{'W' + str(w):>10}" for w in mat.columns)]
    for k, row in mat.iterrows():
        lines.append(f"  {k!s:<{kwidth}}" + "".join(f"{_pct(u):>10}" for u in row))
    return "\n".join(lines)
