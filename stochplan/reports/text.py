"""Plain-text reports of a run: a generic header, then the family's own sections.

The functions take the stored pieces (headline KPIs and tables), so a report can be printed for
any run in the results database, not only for the one just solved.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from stochplan.solve.results import status_text


def money(x: float) -> str:
    """``$1,234.50``, ``-$1,234.50``; non-finite values as they are (``inf``, ``nan``)."""
    if not math.isfinite(x):
        return str(x)
    return f"-${-x:,.2f}" if x < 0 else f"${x:,.2f}"


def header_text(header: Mapping[str, Any]) -> str:
    """The run's identity and objective in two lines.

    ``header`` carries ``instance``, ``scenarios``, ``n_scenarios``, ``method``, ``status``,
    ``objective``, ``gap`` and optionally ``run_id``, ``integer``,
    ``rel_gap_target`` (a decomposition's gap target, shown with status ``"gap_reached"``).
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
    risk = header.get("risk")
    if risk:
        what = f"Risk measure {risk['label']} (objective)"
    text = (
        f"{run}{header['instance']}, {header['scenarios']} ({header['n_scenarios']} scenarios"
        f"{kind}), {str(header['method']).upper()} with HiGHS: "
        f"{status_text(header['status'], gap, header.get('rel_gap_target'))}\n"
        f"{what}: {value}{gap_text}"
    )
    if risk:
        expected = "expected cost" if header.get("sense", "min") == "min" else "expected profit"
        text += (f"\nIn sample: {expected} {money(risk['expected'])}, VaR {risk['alpha']:.0%} "
                 f"{money(risk['value_at_risk'])}, CVaR {risk['alpha']:.0%} "
                 f"{money(risk['cvar'])} (of the loss)")
    return text


def risk_header(config: Mapping[str, Any], kpis: Mapping[str, float]) -> dict[str, Any] | None:
    """The ``risk`` entry of a report header from a run's stored configuration and KPIs (None
    for a run without a risk measure)."""
    risk = config.get("risk") or {}
    if risk.get("measure", "expectation") == "expectation" or "risk_cvar" not in kpis:
        return None
    from stochplan.solve.risk import RiskConfig

    alpha, weight = float(risk["alpha"]), float(risk["weight"])
    label = RiskConfig(measure="cvar", alpha=alpha, weight=weight).label()
    return {"label": label, "alpha": alpha, "weight": weight,
            "expected": kpis["risk_expected"], "value_at_risk": kpis["risk_value_at_risk"],
            "cvar": kpis["risk_cvar"]}


def report_text(
    header: Mapping[str, Any],
    family: Any,
    headline: Mapping[str, float],
    tables: Mapping[str, pd.DataFrame],
) -> str:
    """The header, then the family's sections (``family`` may be None for a bare module), then
    the out-of-sample evaluation when the run stores one (:func:`oos_text`)."""
    body = family.report_text(headline, tables) if family is not None else ""
    if not body and headline:
        body = key_figures(headline)
    oos = oos_text(tables["oos_summary"]) if "oos_summary" in tables else ""
    return header_text(header) + ("\n\n" + body if body else "") + (
        "\n\n" + oos if oos else "")


def oos_text(summary: pd.DataFrame) -> str:
    """The stored out-of-sample evaluation (``evaluate``'s ``oos_summary``): where its
    scenarios came from ("evaluated under: ..."), then each plan's mean cost and 95 % CI ($)."""
    from stochplan.reports.view import evaluated_under

    if not len(summary):
        return ""
    under, note = evaluated_under(summary)
    lines = ["OUT OF SAMPLE", f"  evaluated under: {under}"]
    if note:
        lines.append(f"  {note}")
    for row in summary.to_dict("records"):
        lines.append(f"  {str(row['plan']):<26} mean {money(float(row['mean']))}  95% CI "
                     f"[{money(float(row['ci_low']))}, {money(float(row['ci_high']))}]  "
                     f"P(infeasible) {float(row['prob_infeasible']):.1%}")
    return "\n".join(lines)


def key_figures(headline: Mapping[str, float]) -> str:
    """Headline KPIs one per line (for families without report sections of their own)."""
    width = max(len(k) for k in headline)
    lines = ["KEY FIGURES"]
    lines += [f"  {k:<{width}}  {v:>18,.6g}" for k, v in headline.items()]
    return "\n".join(lines)
