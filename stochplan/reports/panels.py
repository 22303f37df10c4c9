"""Dashboard panels every stored run gets, whatever its family, and the HTML helpers of panels.

A panel is a :class:`stochplan.family.Panel`: a title, a Plotly figure and/or an HTML fragment,
and a note. The page (:mod:`stochplan.reports.dashboard`) draws the generic panels of this
module for every run, then the family's own (``family.panels(view)``). A panel that does not
apply to a run (no convergence history for the extensive form, no scenario table for a bare
module) is left out rather than drawn empty.

Generic panels of one run, in page order:

- ``plan``: the first-stage plan as a table (one row per variable and leading index, one column
  per value of the last index, every number with ``data-kpi="plan.<variable>.<index>..."``),
  with a chart when the plan has one or two index columns (:func:`~.figures.plan_figure`);
- ``scenarios``: the objective in each scenario when the value step stored it
  (``value_by_scenario``), else the scenarios' random data summed over all axes but the last;
- ``convergence``: bound and incumbent per iteration of a decomposition (PH, L-shaped).

The value-of-information and out-of-sample section is assembled by the page itself (cards,
two charts and a table). KPI names, labels and formats (:func:`format_kpi`) live here too, so
that a family's panels show numbers exactly as the generic parts do.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from stochplan.family import Panel
from stochplan.reports import figures as F
from stochplan.reports.text import money
from stochplan.reports.view import VALUE_METRICS, MissingData, RunView

__all__ = [
    "OOS_KPIS",
    "VALUE_LABELS",
    "chart_panel",
    "comparison_panels",
    "convergence_panel",
    "esc",
    "format_kpi",
    "kpi_attrs",
    "kpi_label",
    "plan_panel",
    "plan_table",
    "run_panels",
    "scenarios_panel",
]

# ----------------------------------------------------------------------------------------------
# KPI names, labels and formats

#: Out-of-sample KPIs of the run's own plan, as ``stochplan evaluate`` stores them:
#: name -> (label, kind). A family's extra ones are ``oos_<name>`` (formatted by their name).
OOS_KPIS = {
    "oos_mean": ("Out-of-sample mean cost", "money"),
    "oos_ci_low": ("95 % CI, low", "money"),
    "oos_ci_high": ("95 % CI, high", "money"),
    "oos_cvar": ("Out-of-sample CVaR", "money"),
    "oos_prob_infeasible": ("P(infeasible)", "percent"),
    "oos_n": ("Out-of-sample scenarios", "count"),
}
#: KPIs of a run under a risk measure (``[risk] measure = "cvar"``): name -> label. Money; VaR
#: and CVaR are of the loss (the cost, or the negative profit).
RISK_KPIS = {
    "risk_objective": "Risk measure (objective)",
    "risk_expected": "In sample: expected objective",
    "risk_value_at_risk": "In sample: VaR of the loss",
    "risk_cvar": "In sample: CVaR of the loss",
    "oos_risk_objective": "Out of sample: risk measure",
    "oos_risk_value_at_risk": "Out of sample: VaR of the loss",
    "oos_risk_cvar": "Out of sample: CVaR of the loss",
}
#: Value-of-information KPIs: stored name -> (label, explanation).
VALUE_LABELS = {
    "rp": ("RP", "recourse problem: expected cost of the stochastic plan"),
    "ev": ("EV", "mean-value problem: cost of the plan for the average scenario"),
    "eev": ("EEV", "expected cost of the mean-value plan over the scenarios"),
    "ws": ("WS", "wait-and-see: expected cost with perfect information"),
    "vss": ("VSS", "value of the stochastic solution, EEV − RP"),
    "evpi": ("EVPI", "expected value of perfect information, RP − WS"),
}
SHARE_PREFIX = "share_"
#: KPI names (after an ``oos_`` prefix) that are money, and suffixes that make a name money or
#: a fraction shown as a percentage: the naming convention of stored KPIs.
_MONEY_NAMES = frozenset({"profit", "revenue", "cost", "objective", "mean", "cvar"})
_MONEY_SUFFIXES = ("_cost", "_profit", "_revenue")
_PERCENT_SUFFIXES = ("_margin", "_rate")


def kpi_kind(name: str) -> str:
    """How a KPI is shown, from its name: ``money``, ``percent``, ``share``, ``count`` or
    ``number``.

    >>> [kpi_kind(k) for k in ("vss", "profit", "fill_rate", "share_labor_reg", "iterations")]
    ['money', 'money', 'percent', 'share', 'number']
    """
    if name in VALUE_METRICS or name in RISK_KPIS:
        return "money"
    if name in OOS_KPIS:
        return OOS_KPIS[name][1]
    if name.startswith(SHARE_PREFIX):
        return "share"
    base = name.removeprefix("oos_")
    if base in _MONEY_NAMES or base.endswith(_MONEY_SUFFIXES):
        return "money"
    if base.endswith(_PERCENT_SUFFIXES) or base.startswith("prob_"):
        return "percent"
    return "number"


def format_kpi(name: str, value: float) -> str:
    """A KPI as the page shows it (money like the text report, fractions as percentages).

    >>> format_kpi("profit", 2476316.0)
    '$2,476,316.00'
    >>> format_kpi("operating_margin", 0.8143666)
    '81.4%'
    >>> format_kpi("share_labor_reg", 0.79251654)
    '79.25%'
    >>> format_kpi("eev", float("inf"))
    'infeasible (+inf)'
    """
    value = float(value)
    kind = kpi_kind(name)
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        # an infinite money value is an infeasible plan (+inf cost / -inf profit)
        return f"infeasible ({value:+})" if kind == "money" else f"{value:+}"
    if kind == "money":
        return money(value)
    if kind == "percent":
        return f"{value:.1%}"
    if kind == "share":
        return f"{value:.2%}"
    if kind == "count":
        return f"{value:,.0f}"
    return f"{value:,.6g}"


def kpi_label(name: str) -> str:
    """A KPI's display label: ``operating_margin`` -> ``Operating margin``, ``vss`` -> ``VSS
    (value of the stochastic solution, EEV − RP)``."""
    if name in VALUE_LABELS:
        return f"{VALUE_LABELS[name][0]} ({VALUE_LABELS[name][1]})"
    if name in RISK_KPIS:
        return RISK_KPIS[name]
    if name in OOS_KPIS:
        return f"Out of sample: {OOS_KPIS[name][0]}"
    if name.startswith(SHARE_PREFIX):
        return "Share: " + name[len(SHARE_PREFIX) :].replace("_", " ")
    if name.startswith("oos_"):
        return "Out of sample: " + name[4:].replace("_", " ")
    return name.replace("_", " ").capitalize()


def esc(text: object) -> str:
    """HTML-escaped text (quotes too, so it can go in an attribute)."""
    return html.escape(str(text), quote=True)


def kpi_attrs(name: str, value: float, run_id: int | None = None) -> str:
    """``data-kpi="NAME" data-value="REPR"`` (and ``data-run``): the machine-readable value
    of a number on a page, ``data-value`` being the stored float's ``repr``."""
    run = f' data-run="{run_id}"' if run_id is not None else ""
    return f'data-kpi="{esc(name)}" data-value="{float(value)!r}"{run}'


# ----------------------------------------------------------------------------------------------
# The first-stage plan

#: The plan table spreads its last index over columns up to this many values; beyond, or when
#: some entries lack an index value, it is a long table (one row per entry).
PLAN_COLUMNS = 24
#: Rows of a long plan table shown (the rest are counted in a note).
PLAN_ROWS = 500


def _plan_number(value: float) -> str:
    if not math.isfinite(value):
        return "n/a" if math.isnan(value) else str(value)
    if abs(value) < 1e-9:  # zero, or a solver's rounding noise around it
        return "0"
    if value == round(value) and abs(value) < 1e15:
        return f"{value:,.0f}"
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4g}"


def _plan_cell(key: list[object], value: float) -> str:
    name = ".".join(["plan", *(str(k) for k in key)])
    return f"<td {kpi_attrs(name, value)}>{esc(_plan_number(value))}</td>"


def chart_panel(key: str, title: str, note: str, build: Callable[[], Any],
                table: Callable[[], str] | None = None) -> Panel:
    """A family's chart panel: ``build()`` draws the figure (and ``table()`` an HTML fragment
    after it); when the stored run lacks what they need (an older run), the panel says what
    is missing instead of failing the page."""
    try:
        return Panel(key, title, build(), note=note, html=table() if table else "")
    except MissingData as err:
        return Panel(key, title, None, html=f'<p class="note">Not drawn: {esc(err)}</p>')


def plan_table(view: RunView) -> str:
    """The first-stage plan as an HTML table; ``""`` when the run stores no plan.

    With index columns and at most :data:`PLAN_COLUMNS` values of the last one: one row per
    variable and leading index values, one column per value of the last index. Otherwise one
    row per plan entry. Each number carries ``data-kpi="plan.<variable>.<index values>"``.
    """
    plan, index = view.plan, list(view.index_names)
    if not view.variables:
        return ""
    last = index[-1] if index else None
    complete = bool(index) and not plan[index].isna().any().any()
    columns = F.ordered_labels(plan[last]) if last is not None else []
    if complete and last is not None and len(columns) <= PLAN_COLUMNS:
        lead = ["variable", *index[:-1]]
        head = "".join(f'<th class="key">{esc(c)}</th>' for c in lead)
        head += "".join(f"<th>{esc(c)}</th>" for c in columns)
        body = []
        groups = plan.groupby(lead, sort=False)
        for key, rows in groups:
            key_list = list(key) if isinstance(key, tuple) else [key]
            values = rows.groupby(last, sort=False)["value"].sum()
            cells = "".join(f'<td class="key">{esc(k)}</td>' for k in key_list)
            for c in columns:
                cells += (
                    _plan_cell([*key_list, c], float(values[c])) if c in values else "<td></td>"
                )
            body.append(f"<tr>{cells}</tr>")
        caption = f"First-stage plan: {last} across, {', '.join(lead)} down"
        note = ""
    else:
        head = "".join(f'<th class="key">{esc(c)}</th>' for c in ["variable", *index])
        head += "<th>value</th>"
        body = []
        for rec in plan.head(PLAN_ROWS).to_dict("records"):
            labels = [rec["variable"], *(rec[c] for c in index)]
            shown = ["" if _missing(x) else x for x in labels]
            key = [x for x in labels if not _missing(x)]
            cells = "".join(f'<td class="key">{esc(x)}</td>' for x in shown)
            body.append(f"<tr>{cells}{_plan_cell(key, float(rec['value']))}</tr>")
        caption = "First-stage plan"
        note = (
            f'<p class="note">The first {PLAN_ROWS} of {len(plan):,} entries.</p>'
            if len(plan) > PLAN_ROWS
            else ""
        )
    return (
        f'<div class="scroll"><table class="kpi plan"><caption>{esc(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>{note}"
    )


def _missing(x: object) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA


def plan_panel(view: RunView) -> Panel | None:
    """The plan table, with a chart for one or two index columns; None without a plan."""
    table = plan_table(view)
    if not table:
        return None
    try:
        figure = F.plan_figure(view)
    except MissingData:
        figure = None
    index = ", ".join(view.index_names) or "no index"
    n = len(view.variables)
    return Panel(
        "plan",
        "First-stage plan",
        figure,
        note=f"The here-and-now decisions of the run ({n} variable{'s' if n != 1 else ''}, "
        f"indexed by {index}), as stored, in the model's units.",
        html=table,
    )


# ----------------------------------------------------------------------------------------------
# Scenarios and convergence


def scenarios_panel(view: RunView) -> Panel | None:
    """The objective in each scenario (``value_by_scenario``), else the scenarios' random data;
    None when the run stores neither."""
    if view.value_by_scenario is not None:
        return Panel(
            "scenarios",
            "Objective by scenario",
            F.scenario_objective_figure(view),
            note="The objective in each scenario: solved with perfect information (WS) and "
            "with the mean-value plan fixed (EEV), $; dashed lines are the expected values "
            "(RP: the stochastic plan's).",
        )
    if view.scenario_data_name is None:
        return None
    axis, _, _ = view.scenario_series()
    how = f"by {axis}, summed over the other axes" if axis else "one number per scenario"
    each = (
        "bands hold 90 % and 50 % of the probability, the line is the median"
        if view.fan
        else "one colour per scenario"
    )
    return Panel(
        "scenarios",
        "Scenarios",
        F.scenario_data_figure(view),
        note=f"What is random in the run ({view.scenario_data_name}), {how}: {each}; black, "
        "the probability-weighted mean.",
    )


def convergence_panel(view: RunView) -> Panel | None:
    """Bound and incumbent per iteration of a decomposition; None for the extensive form."""
    if view.convergence is None:
        return None
    return Panel(
        "convergence",
        "Convergence",
        F.convergence_figure(view),
        note="The decomposition's lower bound and best feasible objective (incumbent) after "
        "each iteration, $, and the relative gap between them (log scale).",
    )


def run_panels(view: RunView) -> list[Panel]:
    """The generic panels of one run that apply to it, in page order."""
    built = (plan_panel(view), scenarios_panel(view), convergence_panel(view))
    return [p for p in built if p is not None]


def comparison_panels(views: Sequence[RunView]) -> list[Panel]:
    """The generic charts of a comparison: the objectives, and the out-of-sample costs when
    some run stores them."""
    out = []
    try:
        out.append(
            Panel(
                "objective",
                "Objective",
                F.compare_objective_figure(views),
                note="The objective of each run (filled) and its bound (open), $.",
            )
        )
    except MissingData:  # no run has a finite objective: nothing to draw
        pass
    if any(v.oos is not None for v in views):
        out.append(
            Panel(
                "oos",
                "Out-of-sample cost",
                F.compare_oos_figure(views),
                note="Cost of each evaluated plan over the out-of-sample scenarios.",
            )
        )
    return out
