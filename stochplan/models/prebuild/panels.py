"""The pre-build family's text report and dashboard panels, drawn from a stored run.

Everything is read from what the run stored (:func:`stochplan.run.to_record`): the KPI tables
``build_plan`` (one row per scenario and month, see :mod:`.kpis`) and ``scenario_kpis``, the
headline KPIs, ``config["instance_data"]`` (capacity, warehouse capacities, threshold,
expedite cap) and, after ``stochplan value``, the mean-value plan ``ev_plan``. Nothing here
solves or reads live solver objects.

Units: quantities in units per month, money in $, utilisation in % (capacity: of the monthly
capacity; warehouse: of the physical warehouse, whose threshold then reads e.g. 87 %).
Runs with more than :data:`~stochplan.reports.view.FAN_THRESHOLD` scenarios are drawn as
quantile bands (5-95 %, 25-75 %, median) instead of one line per scenario.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from stochplan.family import Panel
from stochplan.reports.figures import (
    FIRST_STAGE_COLOUR,
    GREY,
    MONEY_HOVER,
    OKABE_ITO,
    UNITS_HOVER,
    fan,
    plan_colour,
    scenario_colours,
    style,
)
from stochplan.reports.panels import chart_panel, esc, format_kpi, kpi_attrs, kpi_label
from stochplan.reports.text import money
from stochplan.reports.view import MissingData, RunView

__all__ = [
    "capacity_figure",
    "cumulative_cost_figure",
    "demand_figure",
    "ev_plan_figure",
    "inventory_figure",
    "panels",
    "report_text",
]

THRESHOLD = OKABE_ITO["black"]
PHYSICAL = GREY
CAPACITY = OKABE_ITO["reddish_purple"]
STAGE_LINE = GREY
#: Cost columns of the build plan, with their labels, in the objective's order.
COSTS = (
    ("production_cost", "Production"),
    ("storage_cost", "Storage"),
    ("overflow_cost", "Overflow"),
    ("expedite_cost", "Expedite"),
    ("lost_sales_cost", "Lost sales"),
)


# ----------------------------------------------------------------------------------------------
# The text report


def report_text(headline: Mapping[str, float], tables: Mapping[str, pd.DataFrame]) -> str:
    """Key figures and the recommended build plan as aligned text.

    Up to 10 scenarios, the plan is printed for each (first-stage rows are the same in all);
    beyond, the first-stage rows and the expected second-stage rows.
    """
    h = headline
    lines = ["PRE-BUILD SUMMARY (expected over the scenarios)"]
    lines.append(f"  Expected total cost         {money(h['expected_cost']):>16}")
    for key, label in COSTS:
        lines.append(f"    {label:<26}{money(h[key]):>16}")
    lines.append(f"  Q3 production               {h['q3_production']:>16,.0f} units "
                 f"({h['q3_build']:,.0f} above Q3 demand)")
    lines.append(f"  Fill rate                   {h['fill_rate']:>15.2%}  "
                 f"(worst scenario {h['worst_scenario_fill_rate']:.2%})")
    lines.append(f"  Peak inventory              {h['expected_peak_inventory']:>16,.0f} units "
                 f"(worst scenario {h['worst_peak_inventory']:,.0f})")
    lines.append(f"  Peak warehouse utilisation  {h['expected_peak_warehouse_pct']:>15.1f}%  "
                 f"(worst scenario {h['worst_peak_warehouse_pct']:.1f}%, of the physical "
                 "warehouse)")
    lines.append(f"  Months at/above threshold   {h['expected_months_at_threshold']:>16.2f} "
                 f"(worst scenario {h['worst_months_at_threshold']:.0f})")
    lines.append(f"  Expedited / lost sales      {h['expected_expedited']:>16,.1f} / "
                 f"{h['expected_lost_sales']:,.1f} units")
    plan = tables.get("build_plan")
    if plan is None or plan.empty:
        return "\n".join(lines)
    lines += ["", "RECOMMENDED BUILD PLAN (units; costs in $; total = all cost parts)"]
    head = (f"  {'Period':>6} {'Month':<10}{'Qtr':<4}{'Demand':>9}{'Produce':>9}"
            f"{'Expedite':>9}{'Lost':>7}{'Cap %':>7}{'Inventory':>10}{'WH %':>7}"
            f"{'Production':>12}{'Storage':>11}{'Total':>12}")
    names = list(dict.fromkeys(plan["scenario"]))
    if len(names) <= 10:
        for name in names:
            rows = plan[plan["scenario"] == name]
            first = rows.iloc[0]
            lines.append(f"  Scenario {first['label']} (probability {first['probability']:.4g})")
            lines.append(head)
            lines += [_plan_line(r) for r in rows.to_dict("records")]
    else:
        first_rows = plan[(plan["scenario"] == names[0]) & (plan["stage"] == "first")]
        lines.append("  First stage (the same in every scenario)")
        lines.append(head)
        lines += [_plan_line(r) for r in first_rows.to_dict("records")]
        second = plan[plan["stage"] == "second"]
        numeric = [c for c in second.columns if pd.api.types.is_float_dtype(second[c])
                   and c != "probability"]
        weighted = second[numeric].mul(second["probability"], axis=0)
        weighted[["period"]] = second[["period"]]
        mean = weighted.groupby("period").sum().reset_index()
        labels = second.drop_duplicates("period").set_index("period")
        lines.append(f"  Second stage, expected over {len(names)} scenarios")
        lines.append(head)
        for rec in mean.to_dict("records"):
            rec.update(labels.loc[rec["period"], ["fiscal_month", "fiscal_quarter"]].to_dict())
            lines.append(_plan_line(rec))
    lines.append(f"  Model version: {plan['model_version'].iloc[0]}")
    return "\n".join(lines)


def _plan_line(r: Mapping[str, Any]) -> str:
    return (f"  {int(r['period']):>6} {str(r['fiscal_month'])[:10]:<10}"
            f"{str(r['fiscal_quarter'])[:3]:<4}{r['demand']:>9,.0f}"
            f"{r['recommended_quantity']:>9,.0f}{r['expedited_quantity']:>9,.0f}"
            f"{r['lost_sales']:>7,.0f}{r['capacity_utilisation_pct']:>7.1f}"
            f"{r['projected_inventory']:>10,.0f}{r['warehouse_utilisation_pct']:>7.1f}"
            f"{r['production_cost']:>12,.2f}{r['storage_cost']:>11,.2f}"
            f"{r['total_cost']:>12,.2f}")


# ----------------------------------------------------------------------------------------------
# A stored run as scenario x month arrays


@dataclass(frozen=True)
class PlanView:
    """The stored build plan as (S, T) arrays, with the run's instance figures."""

    table: pd.DataFrame
    periods: list[int]
    months: list[str]
    stages: list[str]
    names: list[str]
    labels: list[str]
    probabilities: np.ndarray
    info: dict[str, Any]

    @property
    def fan(self) -> bool:
        from stochplan.reports.view import FAN_THRESHOLD

        return len(self.names) > FAN_THRESHOLD

    def grid(self, column: str) -> np.ndarray:
        """A build-plan column as (S, T)."""
        pivot = self.table.pivot(index="scenario", columns="period", values=column)
        return pivot.reindex(index=self.names, columns=self.periods).to_numpy(float)

    def number(self, key: str) -> float:
        value = self.info.get(key)
        if value is None:
            raise MissingData("config.instance_data", key, "not stored with this run")
        return float(value)

    @property
    def n_first(self) -> int:
        return self.stages.count("first")


def plan_view(view: RunView) -> PlanView:
    """The :class:`PlanView` of a stored pre-build run; :class:`MissingData` without a
    ``build_plan`` table."""
    table = view.table("build_plan")
    periods = sorted(int(t) for t in pd.unique(table["period"]))
    per = table.drop_duplicates("period").set_index("period").reindex(periods)
    scen = table.drop_duplicates("scenario")
    return PlanView(
        table=table,
        periods=periods,
        months=[str(m) for m in per["fiscal_month"]],
        stages=[str(s) for s in per["stage"]],
        names=[str(s) for s in scen["scenario"]],
        labels=[str(s) for s in scen["label"]],
        probabilities=scen["probability"].to_numpy(float),
        info=view.instance_data,
    )


def _month_axis(fig: go.Figure, pv: PlanView, with_start: bool = False) -> None:
    ticks = ([0] if with_start else []) + pv.periods
    text = (["now"] if with_start else []) + pv.months
    fig.update_xaxes(tickmode="array", tickvals=ticks, ticktext=text, showline=True,
                     linecolor="#BBBBBB", ticks="outside", tickcolor="#BBBBBB",
                     range=[ticks[0] - 0.4, ticks[-1] + 0.4])


def _stage_boundary(fig: go.Figure, pv: PlanView, **where: Any) -> None:
    """A dashed vertical line between the first- and second-stage months."""
    x = pv.n_first + 0.5
    fig.add_vline(x=x, line={"color": STAGE_LINE, "dash": "dash", "width": 1}, **where)


def _scenario_lines(fig: go.Figure, pv: PlanView, x: list[Any], values: np.ndarray, *,
                    what: str, unit: str, dash: str, colour: str, row: int = 1,
                    showlegend: bool = True, mode: str = "lines+markers") -> None:
    """One line per scenario, or quantile bands beyond the fan threshold."""
    if pv.fan:
        fan(fig, x, values, pv.probabilities, colour=colour, name=what, unit=unit, dash=dash,
            legendgroup=what, showlegend=showlegend, row=row)
        return
    colours = scenario_colours(pv.labels)
    for s, label in enumerate(pv.labels):
        fig.add_trace(go.Scatter(
            x=x, y=values[s], name=f"{what} ({label})", mode=mode,
            line={"color": colours[label], "width": 2, "dash": dash}, marker={"size": 6},
            legendgroup=f"scenario-{label}", showlegend=showlegend,
            hovertemplate=UNITS_HOVER + f" {unit}" if unit != "$" else MONEY_HOVER,
        ), row=row, col=1)


def _level(fig: go.Figure, x: list[Any], y: float, name: str, colour: str, dash: str,
           row: int = 1, showlegend: bool = True) -> None:
    fig.add_trace(go.Scatter(
        x=[x[0], x[-1]], y=[y, y], name=name, mode="lines",
        line={"color": colour, "dash": dash, "width": 1.5}, showlegend=showlegend,
        legendgroup=name, hovertemplate=f"{name}: {y:,.0f}<extra></extra>"), row=row, col=1)


# ----------------------------------------------------------------------------------------------
# Figures


def demand_figure(view: RunView) -> go.Figure:
    """Demand per month in each scenario (first-stage months are the same in all), against
    the monthly capacity and, in the two-stage model, capacity plus the expedite cap."""
    pv = plan_view(view)
    fig = make_subplots(rows=1, cols=1)
    x: list[Any] = list(pv.periods)
    _scenario_lines(fig, pv, x, pv.grid("demand"), what="Demand", unit="units", dash="solid",
                    colour=OKABE_ITO["orange"])
    C = pv.number("capacity")
    _level(fig, x, C, "Monthly capacity", CAPACITY, "dash")
    if not pv.info.get("deterministic"):
        _level(fig, x, C + pv.number("expedite_cap"), "Capacity + expedite cap", CAPACITY, "dot")
    _stage_boundary(fig, pv)
    _month_axis(fig, pv)
    fig.update_yaxes(title_text="units per month", rangemode="tozero")
    return style(fig, "Demand by scenario against capacity", 460, legend_rows=2)


def inventory_figure(view: RunView) -> go.Figure:
    """The inventory "camel hump": stock at the end of each month (from the current stock),
    per scenario, against the threshold W_safe and the physical warehouse W_phys."""
    pv = plan_view(view)
    fig = make_subplots(rows=1, cols=1)
    I0 = pv.number("initial_inventory")
    inv = pv.grid("projected_inventory")
    x: list[Any] = [0, *pv.periods]
    values = np.hstack([np.full((inv.shape[0], 1), I0), inv])
    _scenario_lines(fig, pv, x, values, what="Inventory", unit="units", dash="solid",
                    colour=OKABE_ITO["bluish_green"])
    threshold = pv.number("threshold")
    _level(fig, x, pv.number("safe_capacity"), f"Threshold ({threshold:.0%})", THRESHOLD,
           "dash")
    _level(fig, x, pv.number("physical_capacity"), "Physical capacity", PHYSICAL, "dot")
    _stage_boundary(fig, pv)
    _month_axis(fig, pv, with_start=True)
    fig.update_yaxes(title_text="units on hand (end of month)", rangemode="tozero")
    return style(fig, "Inventory build-up and draw-down by scenario", 460, legend_rows=2)


def capacity_figure(view: RunView) -> go.Figure:
    """Capacity utilisation (production / monthly capacity) and warehouse utilisation
    (inventory / physical warehouse) by month, per scenario, in %."""
    pv = plan_view(view)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.14,
                        subplot_titles=("<b>Production capacity utilisation</b>",
                                        "<b>Warehouse utilisation</b> (of the physical "
                                        "warehouse)"))
    x: list[Any] = list(pv.periods)
    cap = pv.grid("capacity_utilisation_pct")
    wh = pv.grid("warehouse_utilisation_pct")
    if pv.fan:
        fan(fig, x, cap, pv.probabilities, colour=OKABE_ITO["blue"], name="Capacity", unit="%",
            dash="solid", legendgroup="cap", showlegend=True, row=1)
        fan(fig, x, wh, pv.probabilities, colour=OKABE_ITO["bluish_green"], name="Warehouse",
            unit="%", dash="solid", legendgroup="wh", showlegend=True, row=2)
    else:
        colours = scenario_colours(pv.labels)
        for s, label in enumerate(pv.labels):
            for row, values in ((1, cap), (2, wh)):
                fig.add_trace(go.Bar(
                    x=x, y=values[s], name=label, marker_color=colours[label],
                    legendgroup=f"scenario-{label}", showlegend=row == 1,
                    hovertemplate="%{y:.1f} %"), row=row, col=1)
    _level(fig, x, 100.0, "Full capacity", CAPACITY, "dash", row=1)
    _level(fig, x, 100.0 * pv.number("threshold"), "Threshold", THRESHOLD, "dash", row=2)
    _level(fig, x, 100.0, "Physical capacity", PHYSICAL, "dot", row=2)
    for row in (1, 2):
        _stage_boundary(fig, pv, row=row, col=1)
    _month_axis(fig, pv)
    fig.update_yaxes(title_text="%", rangemode="tozero")
    fig.update_layout(barmode="group")
    return style(fig, "Capacity and warehouse utilisation by month", 640, legend_rows=2)


def cumulative_cost_figure(view: RunView) -> go.Figure:
    """Cumulative cost by month: stacked areas of the expected cost parts, with each
    scenario's cumulative total (lines; bands beyond the fan threshold)."""
    pv = plan_view(view)
    fig = make_subplots(rows=1, cols=1)
    x: list[Any] = list(pv.periods)
    base = np.zeros(len(x))
    palette = (OKABE_ITO["blue"], OKABE_ITO["bluish_green"], OKABE_ITO["yellow"],
               OKABE_ITO["orange"], OKABE_ITO["black"])
    for (column, label), colour in zip(COSTS, palette, strict=True):
        part = np.cumsum(pv.probabilities @ pv.grid(column))
        if not np.any(part):
            continue
        base = base + part
        fig.add_trace(go.Scatter(
            x=x, y=base.copy(), name=f"{label} (expected)", mode="lines",
            fill="tonexty" if fig.data else "tozeroy", line={"color": colour, "width": 0.5},
            customdata=part, hovertemplate="%{customdata:$,.2f}"))
    totals = np.cumsum(pv.grid("total_cost"), axis=1)
    _scenario_lines(fig, pv, x, totals, what="Cumulative cost", unit="$", dash="dash",
                    colour=FIRST_STAGE_COLOUR)
    _stage_boundary(fig, pv)
    _month_axis(fig, pv)
    fig.update_yaxes(title_text="$ (cumulative)", tickformat="$~s", rangemode="tozero")
    return style(fig, "Cumulative cost", 460, legend_rows=2)


def ev_plan_figure(view: RunView) -> go.Figure:
    """The mean-value (EV) plan against the stochastic plan, month by month: production P,
    end-of-month inventory I and overflow O of the first-stage months."""
    pv = plan_view(view)
    ev = view.table("ev_plan")
    rp = view.plan
    variables = [("P", "Production"), ("I", "Inventory"), ("O", "Overflow above threshold")]
    both = pd.concat([rp, ev], ignore_index=True)
    shown = [(v, t) for v, t in variables if v in set(both["variable"])
             and (v != "O" or bool(np.any(both.loc[both["variable"] == v, "value"] > 0)))]
    fig = make_subplots(rows=len(shown), cols=1, shared_xaxes=True, vertical_spacing=0.1,
                        subplot_titles=[f"<b>{t}</b> ({v})" for v, t in shown])
    months = dict(zip(pv.periods, pv.months, strict=True))
    for row, (var, _) in enumerate(shown, start=1):
        for label, table in (("stochastic (RP)", rp), ("mean-value (EV)", ev)):
            rows = table[table["variable"] == var]
            x = [months.get(int(t), str(t)) for t in rows["month"]]
            fig.add_trace(go.Bar(
                x=x, y=rows["value"].to_numpy(float), name=f"{label} plan",
                marker_color=plan_colour(label), legendgroup=label, showlegend=row == 1,
                hovertemplate=UNITS_HOVER + " units"), row=row, col=1)
    if "safe_capacity" in pv.info and any(v == "I" for v, _ in shown):
        row = [v for v, _ in shown].index("I") + 1
        fig.add_hline(y=pv.number("safe_capacity"), row=row, col=1,
                      line={"color": THRESHOLD, "dash": "dash", "width": 1.5},
                      annotation_text="threshold", annotation_position="top left")
    fig.update_yaxes(title_text="units", rangemode="tozero")
    fig.update_layout(barmode="group")
    return style(fig, "Mean-value plan against the stochastic plan (first stage)",
                 140 + 230 * len(shown))


# ----------------------------------------------------------------------------------------------
# Tables


def kpi_table(view: RunView) -> str:
    """The headline KPIs as an HTML table (``data-kpi`` on every number)."""
    rows = []
    for key, value in view.kpis.items():
        if key in ("rp", "ev", "eev", "ws", "vss", "evpi") or key.startswith("oos_"):
            continue
        text = format_kpi(key, value)
        if key.endswith("_pct"):
            text = f"{value:.1f} %"
        rows.append(f"<tr><td>{esc(kpi_label(key))}</td><td {kpi_attrs(key, value)}>"
                    f"{esc(text)}</td></tr>")
    return ('<table class="kpi"><caption>Key figures (expected over the scenarios unless '
            'worst)</caption><tbody>' + "".join(rows) + "</tbody></table>")


def build_plan_table(view: RunView) -> str:
    """The recommended build plan as an HTML table: every scenario's rows up to 10 scenarios,
    else the first-stage rows only (the second stage is in the charts)."""
    pv = plan_view(view)
    table = pv.table
    if pv.fan:
        table = table[(table["scenario"] == pv.names[0]) & (table["stage"] == "first")]
    columns = (("fiscal_month", "Month", str), ("demand", "Demand", "{:,.0f}"),
               ("recommended_quantity", "Produce", "{:,.0f}"),
               ("expedited_quantity", "Expedite", "{:,.0f}"), ("lost_sales", "Lost", "{:,.0f}"),
               ("capacity_utilisation_pct", "Capacity %", "{:.1f}"),
               ("projected_inventory", "Inventory", "{:,.0f}"),
               ("warehouse_utilisation_pct", "Warehouse %", "{:.1f}"),
               ("total_cost", "Cost", "${:,.2f}"))
    head = "".join(f"<th>{esc(label)}</th>" for _, label, _ in columns)
    body = []
    for rec in table.to_dict("records"):
        cells = []
        for col, _, fmt in columns:
            value = rec[col]
            if isinstance(fmt, str):
                key = f"build_plan.{rec['scenario']}.{int(rec['period'])}.{col}"
                cells.append(f"<td {kpi_attrs(key, float(value))}>"
                             f"{esc(fmt.format(float(value)))}</td>")
            else:
                cells.append(f"<td>{esc(value)}</td>")
        body.append(f"<tr><td>{esc(rec['label'])}</td>{''.join(cells)}</tr>")
    caption = ("Recommended build plan" if not pv.fan else
               "Recommended build plan: first stage (the same in every scenario)")
    return (f'<table class="kpi"><caption>{esc(caption)}</caption><thead><tr><th>Scenario</th>'
            f"{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


# ----------------------------------------------------------------------------------------------
# Panels


def panels(view: RunView) -> list[Panel]:
    """Key figures and the build plan; demand against capacity; the inventory camel hump;
    capacity and warehouse utilisation; cumulative cost; the mean-value plan against the
    stochastic plan (after ``stochplan value``)."""
    try:
        tables = f'<div class="tables"><div>{kpi_table(view)}</div></div>' + \
            build_plan_table(view)
    except MissingData as err:
        tables = f'<p class="note">Not drawn: {esc(err)}</p>'
    out = [
        Panel("prebuild-plan", "Key figures and recommended build plan", None,
              note="Expected over the scenarios (worst: the worst scenario). Quantities in "
              "units, costs in $; capacity % = production / monthly capacity, warehouse % = "
              "inventory / physical warehouse (the threshold is a % of it).", html=tables),
        chart_panel("prebuild-demand", "Demand by scenario against capacity",
               "Units demanded per month in each scenario (the first-stage months are the same "
               "in all), against the monthly capacity (dashed) and capacity plus the expedite "
               "cap (dotted). The dashed vertical line separates the first stage (decided now) "
               "from the second.", lambda: demand_figure(view)),
        chart_panel("prebuild-inventory", "Inventory camel hump",
               "Units on hand at the end of each month, from the current stock, in each "
               "scenario, against the overflow threshold (dashed) and the physical warehouse "
               "(dotted).", lambda: inventory_figure(view)),
        chart_panel("prebuild-utilisation", "Capacity and warehouse utilisation",
               "Production / monthly capacity and inventory / physical warehouse, in % by "
               "month and scenario, with full capacity and the threshold.",
               lambda: capacity_figure(view)),
        chart_panel("prebuild-cost", "Cumulative cost",
               "Expected cumulative cost by month, stacked by part (production, storage, "
               "overflow, expedite, lost sales), and each scenario's cumulative total (dashed).",
               lambda: cumulative_cost_figure(view)),
    ]
    if view.has_table("ev_plan"):
        out.append(chart_panel(
            "prebuild-ev-plan", "Mean-value plan against the stochastic plan",
            "First-stage months: production, inventory (and overflow, when either plan has "
            "some) of the stochastic plan (RP) and of the plan for the mean demand (EV), in "
            "units; the dashed line is the threshold.", lambda: ev_plan_figure(view)))
    else:
        out.append(Panel("prebuild-ev-plan", "Mean-value plan against the stochastic plan",
                         None, html='<p class="note">Not drawn: run <code>stochplan value</code> '
                         "on this instance and scenarios to store the mean-value plan "
                         "(ev_plan).</p>"))
    return out
