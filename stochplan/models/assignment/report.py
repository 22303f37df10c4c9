"""The assignment family's text report (``stochplan solve`` and ``show``): expected profit and
its parts, acceptance and reassignment, the offers, the producers' volumes against their
targets and, after ``stochplan simulate``, the simulated policies. Apart from the panels, so
that printing a report does not load the plotting code."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from stochplan.reports.text import money

__all__ = ["report_text"]


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.1%}"


def report_text(headline: Mapping[str, float], tables: Mapping[str, pd.DataFrame]) -> str:
    """Aligned text: summary, operations, offers, producers (and a stored simulation)."""
    h = headline
    lines = ["EXPECTED PROFIT (over the scenarios)"]
    for key, label in (("expected_profit", "Expected profit"),
                       ("net_benefit", "Net benefit"), ("shipped_value", "  value shipped"),
                       ("transport_cost", "  transport"),
                       ("reassignment_cost", "  reassignment cost"),
                       ("gap_penalty", "Gap penalty"),
                       ("public_benefit", "Public benefit figure")):
        lines.append(f"  {label:<26}{money(h[key]):>16}")
    lines += ["", "OFFERS AND ANSWERS (expected)"]
    lines.append(f"  {'Offers made':<26}{h['offers']:>16,.2f}  for {h['orders']:,.0f} "
                 f"assignable orders, {money(h['offered_value'])} of order value")
    lines.append(f"  {'Accepted offers':<26}{h['accepted_offers']:>16,.2f}")
    lines.append(f"  {'Acceptance rate':<26}{_pct(h['acceptance_rate']):>16}")
    lines.append(f"  {'Reassignments':<26}{h['reassignments']:>16,.2f}")
    lines.append(f"  {'Orders shipped':<26}{h['shipped_orders']:>16,.2f}"
                 f"  ({_pct(h['shipped_share'])} of the assignable orders)")
    lines.append(f"  {'Orders lost':<26}{h['lost_orders']:>16,.2f}")
    lines.append(f"  {'Volume gap':<26}{money(h['total_gap']):>16}  open after the day "
                 f"{money(h['open_gap'])}, spread {money(h['gap_spread'])}")
    if h.get("over_target", 0.0) > 0:
        lines.append(f"  {'Shipped beyond targets':<26}{money(h['over_target']):>16}")

    orders = tables["orders"]
    lines += ["", "OFFERS PER ORDER (probabilities over the scenarios)",
              f"  {'Order':>6}{'Value':>12}{'Producer':>10}{'Accepted':>10}{'Reassigned':>12}"
              f"{'Shipped':>9}{'Transport':>11}{'Net benefit':>14}"]
    for r in orders.itertuples(index=False):
        producer = str(r.producer) if r.offered > 0 else "-"
        lines.append(f"  {r.order:>6}{money(r.value):>12}{producer:>10}"
                     f"{_pct(r.p_accepted):>10}{_pct(r.p_reassigned):>12}"
                     f"{_pct(r.p_shipped):>9}{r.transport:>11,.1f}{money(r.net_benefit):>14}")
    producers = tables["producers"]
    lines += ["", "PRODUCERS AGAINST TARGETS (expected value shipped, $)",
              f"  {'Producer':>8}{'Target':>10}{'Current':>10}{'Gap':>10}{'Rate':>7}"
              f"{'Offers':>8}{'Offered':>11}{'Shipped':>11}{'After':>10}{'Open gap':>10}"]
    for r in producers.itertuples(index=False):
        lines.append(f"  {r.producer:>8}{r.target:>10,.0f}{r.current:>10,.0f}{r.gap:>10,.0f}"
                     f"{r.rate:>7.2f}{r.offers:>8,.1f}{r.offered_value:>11,.0f}"
                     f"{r.shipped_value:>11,.0f}{r.volume_after:>10,.0f}{r.open_gap:>10,.0f}")
    if "simulation" in tables:
        sim = tables["simulation"]
        lines += ["", f"SIMULATION ({int(sim['days'].iloc[0])} days, means per day)",
                  f"  {'Policy':<28}{'Accept':>8}{'Reassign':>10}{'Shipped':>9}"
                  f"{'Net benefit':>14}{'Transport':>11}{'Open gap':>11}{'Spread':>10}"]
        for r in sim.itertuples(index=False):
            lines.append(f"  {str(r.policy)[:27]:<28}{_pct(r.acceptance_rate):>8}"
                         f"{r.reassignments:>10,.2f}{r.shipped:>9,.2f}"
                         f"{money(r.net_benefit):>14}{r.transport:>11,.1f}"
                         f"{r.open_gap:>11,.0f}{r.gap_spread:>10,.0f}")
    return "\n".join(lines)
