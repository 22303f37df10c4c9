"""The lot-sizing family's dashboard panels, drawn from a stored run.

The seed's HTML report had tabs (summary, production schedule, resource utilisation, order
fulfilment); they are the sections here, after the generic panels:

- ``schedule``: the production schedule, products x weeks, cells coloured by expected
  production with the setups marked, and the setup plan and production grids as tables;
- ``utilisation``: machine hours per machine and week (production and setup hours apart) and
  material use per material and week, both as shares of what is available;
- ``fulfilment``: order fulfilment by tier (on time, late, unmet) and by customer, and the
  per-order table;
- ``profit``: profit by week, revenue against the costs.

Everything is read from the stored tables of :mod:`.kpis` (``schedule``, ``machines``,
``materials``, ``orders``, ``customers``, ``tiers``, ``weekly``); nothing is solved. Units:
quantities in units, hours in hours, money in $. Colours follow
:mod:`stochplan.reports.figures`; the tiers have their own (gold, silver, bronze).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from stochplan.family import Panel
from stochplan.models.lotsizing.report import grid
from stochplan.reports.figures import (
    DARK_GREY,
    FIRST_STAGE_COLOUR,
    GREY,
    MONEY_HOVER,
    OKABE_ITO,
    integer_axes,
    rgba,
    spacing,
    style,
)
from stochplan.reports.panels import chart_panel, esc, kpi_attrs
from stochplan.reports.text import money
from stochplan.reports.view import RunView

__all__ = [
    "TIER_COLOURS",
    "fulfilment_figure",
    "orders_table",
    "panels",
    "profit_figure",
    "schedule_figure",
    "schedule_tables",
    "utilisation_figure",
]

#: Tier colours: gold, silver, bronze.
TIER_COLOURS = {"GOLD": "#D4A017", "SILVER": "#9EA7AD", "BRONZE": "#A0652A"}
PRODUCTION_HOURS = OKABE_ITO["blue"]
SETUP_HOURS = OKABE_ITO["orange"]
ON_TIME = OKABE_ITO["bluish_green"]
LATE = OKABE_ITO["yellow"]
UNMET = OKABE_ITO["vermillion"]
_COSTS = (  # weekly column, label, colour
    ("setup_cost", "Setups", OKABE_ITO["orange"]),
    ("holding_cost", "Holding", OKABE_ITO["bluish_green"]),
    ("lateness_cost", "Lateness", OKABE_ITO["yellow"]),
    ("unmet_penalty_cost", "Unmet-order penalties", OKABE_ITO["vermillion"]),
)


# ----------------------------------------------------------------------------------------------
# Production schedule


def schedule_figure(view: RunView) -> go.Figure:
    """Products x weeks: expected production (colour and number, units) with the setups
    marked (a setup as "● setup"; a fractional one, from an LP relaxation, with its value)."""
    schedule = view.table("schedule")
    production = grid(schedule, "product", "production")
    setups = grid(schedule, "product", "setup").reindex_like(production)
    products = [str(p) for p in production.index]
    weeks = [int(w) for w in production.columns]
    z = production.to_numpy(float)
    y = setups.to_numpy(float)
    text = []
    for i in range(len(products)):
        row = []
        for j in range(len(weeks)):
            mark = ("● setup" if abs(y[i, j] - 1) < 1e-9
                    else "" if abs(y[i, j]) < 1e-9 else f"setup {y[i, j]:.2f}")
            row.append(f"{z[i, j]:,.1f}<br>{mark}" if mark or z[i, j] > 1e-9 else "·")
        text.append(row)
    fig = go.Figure(go.Heatmap(
        z=z, x=[f"Week {w}" for w in weeks], y=products, text=text, texttemplate="%{text}",
        colorscale=[[0.0, "#FFFFFF"], [1.0, OKABE_ITO["blue"]]], zmin=0.0,
        colorbar={"title": {"text": "units"}}, xgap=2, ygap=2,
        customdata=y, hovertemplate="%{y}, %{x}: %{z:,.1f} units<br>setup %{customdata:.2f}"
        "<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    total = float(y.sum())
    style(fig, f"Production schedule: {total:,.4g} setups, {z.sum():,.1f} units expected",
          140 + 44 * len(products), hovermode="closest", legend_rows=0)
    return fig


def _grid_table(table: pd.DataFrame, caption: str, key: str, fmt: Callable[[float], str]) -> str:
    head = "".join(f"<th>Week {esc(w)}</th>" for w in table.columns)
    rows = []
    for p, row in table.iterrows():
        cells = "".join(
            f"<td {kpi_attrs(f'{key}.{p}.{w}', float(v))}>{esc(fmt(float(v)))}</td>"
            for w, v in row.items())
        rows.append(f"<tr><td>{esc(p)}</td>{cells}</tr>")
    return (f'<table class="kpi"><caption>{esc(caption)}</caption><thead><tr><th>Product</th>'
            f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def schedule_tables(view: RunView) -> str:
    """The setup plan and the expected production as product x week HTML tables (numbers
    with ``data-kpi="setup.<product>.<week>"`` and ``production.<product>.<week>``)."""
    schedule = view.table("schedule")

    def mark(v: float) -> str:
        return "setup" if abs(v - 1) < 1e-9 else "–" if abs(v) < 1e-9 else f"{v:.2f}"

    return (
        '<div class="tables"><div>'
        + _grid_table(grid(schedule, "product", "setup"), "Setup plan (first stage)", "setup",
                      mark)
        + "</div><div>"
        + _grid_table(grid(schedule, "product", "production"),
                      "Expected production (units)", "production", lambda v: f"{v:,.1f}")
        + "</div></div>"
    )


# ----------------------------------------------------------------------------------------------
# Machines and materials


def utilisation_figure(view: RunView) -> go.Figure:
    """Machine hours (production and setup apart) and material use, per week, as shares of
    what is available (the dashed line is 100 %)."""
    machines = view.table("machines")
    materials = view.table("materials")
    height = 720
    fig = make_subplots(
        rows=2, cols=1, vertical_spacing=spacing(2, 90, height),
        subplot_titles=["<b>Machines</b>: production and setup hours / available hours",
                        "<b>Materials</b>: used / available"])
    x = [machines["machine"].astype(str).tolist(), [f"W{w}" for w in machines["week"]]]
    cap = machines["capacity"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        for column, name, colour in (("production_hours", "Production hours", PRODUCTION_HOURS),
                                     ("setup_hours", "Setup hours", SETUP_HOURS)):
            hours = machines[column].to_numpy(float)
            fig.add_trace(go.Bar(
                x=x, y=np.where(cap > 0, hours / cap, 0.0), name=name, marker_color=colour,
                customdata=np.stack([hours, cap], axis=1),
                hovertemplate="%{y:.1%}: %{customdata[0]:,.1f} of %{customdata[1]:,.0f} h"
                "<extra>" + name + "</extra>"), row=1, col=1)
        used = materials["used"].to_numpy(float)
        avail = materials["available"].to_numpy(float)
        fig.add_trace(go.Bar(
            x=[materials["material"].astype(str).tolist(), [f"W{w}" for w in materials["week"]]],
            y=np.where(avail > 0, used / avail, 0.0), name="Material used",
            marker_color=GREY, customdata=np.stack([used, avail], axis=1),
            hovertemplate="%{y:.1%}: %{customdata[0]:,.1f} of %{customdata[1]:,.0f}"
            "<extra>material</extra>"), row=2, col=1)
    for row in (1, 2):
        fig.add_hline(y=1.0, line={"color": DARK_GREY, "dash": "dash", "width": 1.5},
                      row=row, col=1)
    fig.update_layout(barmode="stack")
    fig.update_yaxes(tickformat=".0%", rangemode="tozero", title_text="share of available")
    style(fig, "Machine and material utilisation by week", height, hovermode="closest")
    fig.update_layout(legend_traceorder="normal")
    return fig


# ----------------------------------------------------------------------------------------------
# Orders


def fulfilment_figure(view: RunView) -> go.Figure:
    """Expected units ordered by tier, split into on time, late and unmet; and each
    customer's fill rate in its tier's colour."""
    tiers = view.table("tiers")
    customers = view.table("customers")
    height = 330 + 26 * len(customers) + 40 * len(tiers)
    fig = make_subplots(
        rows=2, cols=1, row_heights=[0.4, 0.6], vertical_spacing=spacing(2, 120, height),
        subplot_titles=["<b>By tier</b>: expected units ordered",
                        "<b>By customer</b>: fill rate (expected delivered / ordered)"])
    labels = [f"{t} ({r:.1%} filled)" if math.isfinite(r) else str(t)
              for t, r in zip(tiers["tier"], tiers["fill_rate"])]
    for column, name, colour in (("on_time", "On time", ON_TIME), ("late", "Late", LATE),
                                 ("unmet", "Unmet", UNMET)):
        fig.add_trace(go.Bar(
            y=labels, x=tiers[column], name=name, orientation="h", marker_color=colour,
            hovertemplate="%{x:,.1f} units<extra>" + name + "</extra>"), row=1, col=1)
    fill = customers["fill_rate"].to_numpy(float)
    fig.add_trace(go.Bar(
        y=[f"{c} ({t})" for c, t in zip(customers["customer"], customers["tier"])],
        x=np.nan_to_num(fill), orientation="h", showlegend=False,
        marker_color=[TIER_COLOURS.get(str(t), GREY) for t in customers["tier"]],
        text=[f"{v:.1%}" if math.isfinite(v) else "no orders" for v in fill],
        textposition="auto", hovertemplate="%{y}: %{x:.1%}<extra></extra>"), row=2, col=1)
    fig.update_layout(barmode="stack")
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title_text="units", row=1, col=1)
    fig.update_xaxes(title_text="fill rate", tickformat=".0%", range=[0, 1.05], row=2, col=1)
    style(fig, "Order fulfilment by priority tier", height, hovermode="closest")
    fig.update_layout(margin={"l": 230}, legend_traceorder="normal")
    return fig


def orders_table(view: RunView) -> str:
    """Order fulfilment per order as an HTML table (numbers with
    ``data-kpi="orders.<order>.<column>"``)."""
    orders = view.table("orders")
    columns = [("target", "Target", "{:,.0f}"), ("quantity", "Ordered", "{:,.1f}"),
               ("on_time", "On time", "{:,.1f}"), ("late", "Late", "{:,.1f}"),
               ("unmet", "Unmet", "{:,.1f}"), ("fill_rate", "Fill rate", "{:.1%}"),
               ("on_time_rate", "On-time rate", "{:.1%}")]
    head = "".join(f"<th>{esc(h)}</th>" for _, h, _ in columns)
    rows = []
    for r in orders.to_dict("records"):
        tier = str(r["tier"])
        swatch = (f'<span class="swatch" style="background:{TIER_COLOURS.get(tier, GREY)}">'
                  "</span>")
        cells = []
        order = str(r["order"])
        for col, _, fmt in columns:
            v = float(r[col])
            text = fmt.format(v) if math.isfinite(v) else "n/a"
            cells.append(f"<td {kpi_attrs(f'orders.{order}.{col}', v)}>{esc(text)}</td>")
        rows.append(f"<tr><td>{esc(r['order'])}</td><td>{esc(r['customer'])}</td>"
                    f"<td>{swatch}{esc(tier)}</td><td>{esc(r['product'])}</td>"
                    f"<td>{esc(r['week'])}</td>{''.join(cells)}</tr>")
    return ('<table class="kpi"><caption>Order fulfilment per order (expected units)</caption>'
            "<thead><tr><th>Order</th><th>Customer</th><th>Tier</th><th>Product</th>"
            f"<th>Week</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


# ----------------------------------------------------------------------------------------------
# Profit


def profit_figure(view: RunView) -> go.Figure:
    """Expected revenue (orders and open market) against the costs by week, with the profit
    line ($ per week)."""
    weekly = view.table("weekly").sort_values("week")
    weeks = [int(w) for w in weekly["week"]]
    fig = go.Figure()
    for column, name, colour in (("order_revenue", "Revenue from orders", OKABE_ITO["blue"]),
                                 ("market_revenue", "Open-market revenue",
                                  OKABE_ITO["sky_blue"])):
        fig.add_trace(go.Bar(x=weeks, y=weekly[column], name=name, marker_color=colour,
                             offsetgroup="revenue", hovertemplate=MONEY_HOVER))
    for column, name, colour in _COSTS:
        fig.add_trace(go.Bar(x=weeks, y=-weekly[column].to_numpy(float), name=name,
                             marker_color=rgba(colour, 0.9), offsetgroup="revenue",
                             hovertemplate=MONEY_HOVER))
    fig.add_trace(go.Scatter(x=weeks, y=weekly["profit"], name="Expected profit",
                             mode="lines+markers", line={"color": FIRST_STAGE_COLOUR, "width": 2.5},
                             marker={"size": 7}, hovertemplate=MONEY_HOVER))
    fig.update_layout(barmode="relative")
    fig.update_yaxes(title_text="$ per week (costs below zero)", tickformat="$~s",
                     zeroline=True, zerolinecolor="#999999")
    fig.update_xaxes(title_text="week")
    integer_axes(fig, weeks)
    total = float(weekly["profit"].sum())
    return style(fig, f"Expected profit by week: {money(total)} in total", 460, legend_rows=2)


# ----------------------------------------------------------------------------------------------
# Panels


def panels(view: RunView) -> list[Panel]:
    """The seed report's tabs as sections: schedule, utilisation, fulfilment, profit by week."""
    return [
        chart_panel("schedule", "Production schedule",
               "Expected production per product and week (units; colour and number) over the "
               "scenarios, setups marked: the setup plan is first stage, the quantities adapt "
               "to each scenario unless production is first stage too.",
               lambda: schedule_figure(view), lambda: schedule_tables(view)),
        chart_panel("utilisation", "Machine and material utilisation",
               "Per machine and week: expected production hours and the setup hours of the "
               "plan, stacked, as shares of the hours available; per material and week: "
               "expected use as a share of what is available. Dashed: 100 %.",
               lambda: utilisation_figure(view)),
        chart_panel("fulfilment", "Order fulfilment by priority",
               "Expected units ordered by tier: delivered in the order's week (on time), "
               "later (late) or never (unmet); each customer's fill rate; then every order.",
               lambda: fulfilment_figure(view), lambda: orders_table(view)),
        chart_panel("profit", "Profit by week",
               "Expected revenue from orders (where delivered) and the open market, the setup, "
               "holding and lateness costs and the unmet-order penalties (in the order's week) "
               "below zero, and the profit, $ per week.",
               lambda: profit_figure(view)),
    ]
