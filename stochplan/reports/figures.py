"""Plotly figures of stored runs: pure functions from a :class:`~stochplan.store.StoredRun` (or
its :class:`~stochplan.reports.view.RunView`) to a :class:`plotly.graph_objects.Figure`.

Nothing here solves, reads a database or touches live solver objects: the figures are drawn
from what the results store holds, so any past run can be redrawn.

Conventions, the same in every figure:

- Colours come from the Okabe-Ito palette (safe for the common colour-vision deficiencies).
  Each cost category has one colour (:data:`COST_CATEGORIES`), each scenario one colour
  (:func:`scenario_colours`), each evaluated plan one colour (:func:`plan_colour`), each run
  of a comparison one colour (:func:`run_colours`); production (the first-stage plan) is black.
- Runs with more than :data:`~stochplan.reports.view.FAN_THRESHOLD` scenarios show scenario
  quantities as quantile bands (5-95 % and 25-75 %, median line) instead of one line each.
- Axis titles carry units ($, units, hours, workers, space units); hover labels show values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from stochplan.reports.text import money
from stochplan.reports.view import (
    MissingData,
    RunView,
    as_view,
    oos_summary,
    weighted_quantiles,
)
from stochplan.store import StoredRun

__all__ = [
    "COST_CATEGORIES",
    "OKABE_ITO",
    "CostCategory",
    "compare_costs_figure",
    "compare_oos_figure",
    "compare_production_figure",
    "compare_profit_figure",
    "cost_categories",
    "cost_composition_figure",
    "financials_figure",
    "oos_figure",
    "plan_colour",
    "production_figure",
    "run_colours",
    "scenario_colours",
    "value_figure",
    "warehouse_figure",
    "workforce_figure",
]

# ----------------------------------------------------------------------------------------------
# Palette

#: Okabe & Ito (2008), "Color Universal Design": distinguishable with the common colour-vision
#: deficiencies.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
GREY = "#8C8C8C"
DARK_GREY = "#4D4D4D"
#: Revenue is neutral, so that costs keep their category colours next to it.
REVENUE = "#A9BCCB"
PRODUCTION = OKABE_ITO["black"]
DEMAND = OKABE_ITO["orange"]
INVENTORY = OKABE_ITO["bluish_green"]
FOOTPRINT = OKABE_ITO["blue"]
FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", "DejaVu Sans", sans-serif'

#: Scenario colours in order of use; three-point scenarios get low/med/high below.
_SERIES = (
    OKABE_ITO["blue"],
    OKABE_ITO["vermillion"],
    OKABE_ITO["bluish_green"],
    OKABE_ITO["reddish_purple"],
    OKABE_ITO["orange"],
    OKABE_ITO["sky_blue"],
    DARK_GREY,
    OKABE_ITO["yellow"],
    "#8C510A",
    "#01665E",
)
_NAMED_SCENARIOS = {
    "low": OKABE_ITO["sky_blue"],
    "med": OKABE_ITO["blue"],
    "medium": OKABE_ITO["blue"],
    "high": OKABE_ITO["vermillion"],
}


@dataclass(frozen=True)
class CostCategory:
    """A cost component: the ``weekly`` table's column, its display label and its colour."""

    column: str
    label: str
    colour: str
    composition: str  # the category in the stored ``composition`` table


#: Every cost category the aggregate family reports, in the seed's order.
COST_CATEGORIES = (
    CostCategory("production", "Production (material)", OKABE_ITO["blue"], "Production"),
    CostCategory("labor_reg", "Regular labour", OKABE_ITO["sky_blue"], "Labor (Reg)"),
    CostCategory("labor_ot", "Overtime labour", OKABE_ITO["orange"], "Labor (OT)"),
    CostCategory("hiring_firing", "Hiring/firing", OKABE_ITO["reddish_purple"], "Hiring/Firing"),
    CostCategory("inventory_regular", "Regular holding", OKABE_ITO["bluish_green"], "Inventory"),
    CostCategory("inventory_overflow", "Overflow holding", OKABE_ITO["yellow"], "Inventory"),
    CostCategory("backorder", "Backorders", OKABE_ITO["vermillion"], "Backorder"),
    CostCategory("wages", "Wages", GREY, "Wages"),
    CostCategory("lost_sales", "Lost sales", OKABE_ITO["black"], "Lost sales"),
)
_OPTIONAL = {"wages", "lost_sales"}


def cost_categories(view: RunView) -> list[CostCategory]:
    """The run's cost categories: the seven standard ones, plus wages and lost sales when the
    run's model has them (they are then rows of its ``composition`` table)."""
    weekly = view.weekly
    shown = set(view.table("composition")["category"]) if view.has_table("composition") else set()
    out = []
    for cat in COST_CATEGORIES:
        if cat.column not in weekly:
            continue
        if cat.column in _OPTIONAL and cat.composition not in shown:
            continue
        out.append(cat)
    return out


def scenario_colours(labels: Sequence[str]) -> dict[str, str]:
    """One colour per scenario label: low/med/high get light blue/blue/vermillion, others the
    palette in order (cycling beyond ten, where runs are drawn as fan charts anyway)."""
    labels = [str(x) for x in labels]
    if labels and all(x.lower() in _NAMED_SCENARIOS for x in labels):
        return {x: _NAMED_SCENARIOS[x.lower()] for x in labels}
    return {x: _SERIES[i % len(_SERIES)] for i, x in enumerate(labels)}


def plan_colour(label: str, position: int = 0) -> str:
    """Colour of an evaluated plan: the stochastic (RP) plan blue, the mean-value (EV) or
    deterministic plan vermillion, wait-and-see green, others by position."""
    text = label.lower()
    if "(rp)" in text or text.startswith("stochastic") or "recourse" in text:
        return OKABE_ITO["blue"]
    if "(ev)" in text or "mean-value" in text or "mean value" in text or "determin" in text:
        return OKABE_ITO["vermillion"]
    if "(ws)" in text or "wait" in text or "perfect" in text:
        return OKABE_ITO["bluish_green"]
    others = (OKABE_ITO["reddish_purple"], OKABE_ITO["orange"], OKABE_ITO["sky_blue"], DARK_GREY)
    return others[position % len(others)]


def run_colours(views: Sequence[RunView]) -> dict[int, str]:
    """One colour per run of a comparison, by position."""
    return {v.run_id: _SERIES[i % len(_SERIES)] for i, v in enumerate(views)}


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


# ----------------------------------------------------------------------------------------------
# Layout helpers

_MONEY = "%{y:$,.2f}"
_UNITS = "%{y:,.1f}"


def _style(
    fig: go.Figure,
    title: str,
    height: int,
    *,
    hovermode: str | bool = "x unified",
    legend_rows: int = 1,
) -> go.Figure:
    """The house layout: white template, title top left, legend in rows under the title."""
    top = 70 + 22 * legend_rows
    fig.update_layout(
        template="plotly_white",
        title={
            "text": title,
            "x": 0.01,
            "xanchor": "left",
            "y": 1,
            "yref": "container",
            "yanchor": "top",
            "pad": {"t": 14},
            "font": {"size": 18},
        },
        legend={
            "orientation": "h",
            "x": 0.01,
            "xanchor": "left",
            "y": 1 - 46 / height,
            "yref": "container",
            "yanchor": "top",
            "font": {"size": 12},
            "tracegroupgap": 4,
        },
        height=height,
        hovermode=hovermode,
        font={"family": FONT, "size": 13, "color": "#1D2327"},
        margin={"l": 80, "r": 80, "t": top + 10, "b": 56},
        hoverlabel={"namelength": -1},
        bargap=0.18,
    )
    fig.update_annotations(font={"size": 14})  # subplot titles
    return fig


def _week_axes(fig: go.Figure, view_weeks: Sequence[int]) -> None:
    if len(view_weeks) <= 26:
        fig.update_xaxes(tickmode="linear", dtick=1)
    fig.update_xaxes(showline=True, linecolor="#BBBBBB", ticks="outside", tickcolor="#BBBBBB")


def _bottom_x_title(fig: go.Figure, rows: int, text: str = "week") -> None:
    fig.update_xaxes(title_text=text, row=rows, col=1)


def _fan(
    fig: go.Figure,
    x: Sequence[int],
    samples: np.ndarray,
    weights: np.ndarray,
    *,
    colour: str,
    name: str,
    unit: str,
    dash: str,
    legendgroup: str,
    showlegend: bool,
    row: int,
    col: int = 1,
    secondary_y: bool | None = None,
) -> None:
    """Quantile bands of (S, T) samples: 5-95 % light, 25-75 % darker, median line."""
    q = weighted_quantiles(samples, weights, (0.05, 0.25, 0.5, 0.75, 0.95))
    where = {"row": row, "col": col}
    if secondary_y is not None:
        where["secondary_y"] = secondary_y
    for lo, hi, alpha, band in ((0, 4, 0.16, "5–95 %"), (1, 3, 0.32, "25–75 %")):
        fig.add_trace(
            go.Scatter(
                x=list(x),
                y=q[lo],
                mode="lines",
                line={"width": 0, "color": colour},
                hoverinfo="skip",
                showlegend=False,
                legendgroup=legendgroup,
            ),
            **where,
        )
        fig.add_trace(
            go.Scatter(
                x=list(x),
                y=q[hi],
                mode="lines",
                line={"width": 0, "color": colour},
                fill="tonexty",
                fillcolor=_rgba(colour, alpha),
                name=f"{name} {band}",
                legendgroup=legendgroup,
                showlegend=showlegend,
                customdata=q[lo],
                hovertemplate=f"%{{customdata:,.1f}} – %{{y:,.1f}} {unit}",
            ),
            **where,
        )
    fig.add_trace(
        go.Scatter(
            x=list(x),
            y=q[2],
            mode="lines",
            line={"color": colour, "width": 2, "dash": dash},
            name=f"{name} median",
            legendgroup=legendgroup,
            showlegend=showlegend,
            hovertemplate=f"%{{y:,.1f}} {unit}",
        ),
        **where,
    )


def _spacing(rows: int, gap_px: int, height: int) -> float:
    return min(0.12, gap_px / max(height, 1)) if rows > 1 else 0.0


# ----------------------------------------------------------------------------------------------
# One run


def financials_figure(view: RunView | StoredRun) -> go.Figure:
    """Expected revenue, cost (stacked by category) and profit by week, company and products.

    One row for all products, then one per product; the row titles carry the totals. Revenue
    is price x expected demand met, cost the objective's terms (see
    :mod:`stochplan.metrics.production`), profit their difference; all in $ per week.
    """
    view = as_view(view)
    weekly = view.weekly
    weeks = list(view.weeks)
    cats = [c for c in cost_categories(view) if float(weekly[c.column].abs().sum()) > 0]
    numeric = weekly.drop(columns=["product"]).groupby("week").sum()
    rows = [("All products", numeric.reindex(weeks).fillna(0.0))]
    for p in view.products:
        part = weekly[weekly["product"] == p].set_index("week").reindex(weeks).fillna(0.0)
        rows.append((view.product_labels[p], part))
    titles = [
        f"<b>{name}</b>: revenue {money(df['revenue'].sum())} · cost {money(df['cost'].sum())}"
        f" · profit {money(df['profit'].sum())}"
        for name, df in rows
    ]
    height = 120 + 270 * len(rows)
    fig = make_subplots(
        rows=len(rows),
        cols=1,
        shared_xaxes=True,
        subplot_titles=titles,
        vertical_spacing=_spacing(len(rows), 62, height),
    )
    for i, (_, df) in enumerate(rows, start=1):
        first = i == 1
        fig.add_trace(
            go.Bar(
                x=weeks,
                y=df["revenue"],
                name="Expected revenue",
                marker_color=REVENUE,
                offsetgroup="revenue",
                legendgroup="revenue",
                showlegend=first,
                hovertemplate=_MONEY,
            ),
            row=i,
            col=1,
        )
        base = np.zeros(len(weeks))
        for cat in cats:
            y = df[cat.column].to_numpy(float)
            fig.add_trace(
                go.Bar(
                    x=weeks,
                    y=y,
                    base=base.copy(),
                    name=cat.label,
                    marker_color=cat.colour,
                    offsetgroup="cost",
                    legendgroup=cat.column,
                    showlegend=first,
                    hovertemplate=_MONEY,
                ),
                row=i,
                col=1,
            )
            base += y
        fig.add_trace(
            go.Scatter(
                x=weeks,
                y=df["profit"],
                name="Expected profit",
                mode="lines+markers",
                line={"color": PRODUCTION, "width": 2.5},
                marker={"size": 6},
                legendgroup="profit",
                showlegend=first,
                hovertemplate=_MONEY,
            ),
            row=i,
            col=1,
        )
    fig.update_yaxes(
        title_text="$ per week", tickformat="$~s", zeroline=True, zerolinecolor="#999999"
    )
    _week_axes(fig, weeks)
    _bottom_x_title(fig, len(rows))
    fig.update_layout(barmode="group")
    return _style(
        fig,
        "Revenue, cost and profit by week (expected over scenarios; costs stacked by category)",
        height,
        legend_rows=2,
    )


def production_figure(view: RunView | StoredRun) -> go.Figure:
    """First-stage production against demand, with inventory, per product and scenario.

    Few scenarios: one demand line (dotted) and one inventory line (dashed, regular plus
    overflow units on hand at the end of the week) per scenario, in the scenario's colour.
    Sampled sets (more than FAN_THRESHOLD scenarios): quantile bands of demand and inventory.
    """
    view = as_view(view)
    weeks = list(view.weeks)
    X = view.plan["X"]
    D = view.demand
    inv = view.recourse["I_reg"] + view.recourse["I_ovr"]
    n = len(view.products)
    height = 120 + 300 * n
    titles = [f"<b>{view.product_labels[p]}</b>" for p in view.products]
    fig = make_subplots(
        rows=n,
        cols=1,
        shared_xaxes=True,
        subplot_titles=titles,
        vertical_spacing=_spacing(n, 48, height),
    )
    colours = scenario_colours(view.scenario_labels)
    for i, p in enumerate(view.products):
        row, first = i + 1, i == 0
        if view.fan:
            _fan(
                fig,
                weeks,
                D[:, i, :],
                view.probabilities,
                colour=DEMAND,
                name="Demand",
                unit="units",
                dash="dot",
                legendgroup="demand",
                showlegend=first,
                row=row,
            )
            _fan(
                fig,
                weeks,
                inv[:, i, :],
                view.probabilities,
                colour=INVENTORY,
                name="Inventory",
                unit="units",
                dash="dash",
                legendgroup="inventory",
                showlegend=first,
                row=row,
            )
        else:
            for s, label in enumerate(view.scenario_labels):
                colour = colours[label]
                group = f"scenario-{label}"
                fig.add_trace(
                    go.Scatter(
                        x=weeks,
                        y=D[s, i, :],
                        name=f"Demand ({label})",
                        mode="lines+markers",
                        line={"color": colour, "width": 1.5, "dash": "dot"},
                        marker={"size": 5},
                        legendgroup=group,
                        showlegend=first,
                        hovertemplate=_UNITS + " units",
                    ),
                    row=row,
                    col=1,
                )
                fig.add_trace(
                    go.Scatter(
                        x=weeks,
                        y=inv[s, i, :],
                        name=f"Inventory ({label})",
                        mode="lines",
                        line={"color": colour, "width": 2, "dash": "dash"},
                        legendgroup=group,
                        showlegend=first,
                        hovertemplate=_UNITS + " units",
                    ),
                    row=row,
                    col=1,
                )
        fig.add_trace(
            go.Scatter(
                x=weeks,
                y=X[i],
                name="Production (first stage)",
                mode="lines+markers",
                line={"color": PRODUCTION, "width": 3},
                marker={"size": 6},
                legendgroup="production",
                showlegend=first,
                hovertemplate=_UNITS + " units",
            ),
            row=row,
            col=1,
        )
    fig.update_yaxes(title_text="units", rangemode="tozero")
    _week_axes(fig, weeks)
    _bottom_x_title(fig, n)
    kind = (
        f"{view.n_scenarios} scenarios as quantile bands"
        if view.fan
        else f"{view.n_scenarios} scenarios"
    )
    return _style(
        fig, f"Production plan against demand, with inventory ({kind})", height, legend_rows=3
    )


def warehouse_figure(view: RunView | StoredRun) -> go.Figure:
    """Warehouse footprint: regular and overflow space used (expected, stacked) against both
    capacities, with units in stock on a secondary axis; all products, then each product.

    Footprint = space per unit x units held (space units). The capacities bind all products
    together, so they are drawn in the all-products row, with each scenario's total footprint
    (lines, or a quantile band for sampled sets) to show where the warehouse fills up.
    """
    view = as_view(view)
    weeks = list(view.weeks)
    space = view.product_param("space_per_unit")  # (P,)
    reg_cap = view.instance_value("regular_capacity")
    ovr_cap = view.instance_value("overflow_capacity")
    I_reg, I_ovr = view.recourse["I_reg"], view.recourse["I_ovr"]
    foot_reg = I_reg * space[None, :, None]  # (S, P, T)
    foot_ovr = I_ovr * space[None, :, None]
    cats = {c.column: c for c in COST_CATEGORIES}
    reg_colour = cats["inventory_regular"].colour
    ovr_colour = cats["inventory_overflow"].colour
    n = 1 + len(view.products)
    height = 120 + 280 * n
    titles = ["<b>All products</b>: footprint against the warehouse capacities"]
    titles += [f"<b>{view.product_labels[p]}</b>" for p in view.products]
    fig = make_subplots(
        rows=n,
        cols=1,
        shared_xaxes=True,
        subplot_titles=titles,
        specs=[[{"secondary_y": True}]] * n,
        vertical_spacing=_spacing(n, 52, height),
    )

    def stacked(row: int, reg: np.ndarray, ovr: np.ndarray, units: np.ndarray, first: bool) -> None:
        for y, name, colour, group in (
            (reg, "Regular warehouse (expected)", reg_colour, "reg"),
            (ovr, "Overflow (expected)", ovr_colour, "ovr"),
        ):
            fig.add_trace(
                go.Scatter(
                    x=weeks,
                    y=y,
                    name=name,
                    mode="lines",
                    stackgroup=f"space{row}",
                    line={"width": 0.8, "color": colour},
                    fillcolor=_rgba(colour, 0.55),
                    legendgroup=group,
                    showlegend=first,
                    hovertemplate="%{y:,.1f} space units",
                ),
                row=row,
                col=1,
                secondary_y=False,
            )
        fig.add_trace(
            go.Scatter(
                x=weeks,
                y=units,
                name="Units in stock (expected, right axis)",
                mode="lines+markers",
                line={"color": PRODUCTION, "width": 1.5, "dash": "dot"},
                marker={"size": 4},
                legendgroup="units",
                showlegend=first,
                hovertemplate=_UNITS + " units",
            ),
            row=row,
            col=1,
            secondary_y=True,
        )

    # All products: expected footprint, per-scenario total, capacities.
    total = (foot_reg + foot_ovr).sum(axis=1)  # (S, T)
    stacked(
        1,
        view.expect(foot_reg.sum(axis=1)),
        view.expect(foot_ovr.sum(axis=1)),
        view.expect((I_reg + I_ovr).sum(axis=1)),
        True,
    )
    if view.fan:
        _fan(
            fig,
            weeks,
            total,
            view.probabilities,
            colour=FOOTPRINT,
            name="Footprint",
            unit="space units",
            dash="solid",
            legendgroup="footprint",
            showlegend=True,
            row=1,
            secondary_y=False,
        )
    else:
        colours = scenario_colours(view.scenario_labels)
        for s, label in enumerate(view.scenario_labels):
            fig.add_trace(
                go.Scatter(
                    x=weeks,
                    y=total[s],
                    name=f"Footprint ({label})",
                    mode="lines",
                    line={"color": colours[label], "width": 1.5},
                    legendgroup=f"scenario-{label}",
                    hovertemplate="%{y:,.1f} space units",
                ),
                row=1,
                col=1,
                secondary_y=False,
            )
    for y, name, dash in (
        (reg_cap, "Regular capacity", "dash"),
        (reg_cap + ovr_cap, "Regular + overflow capacity", "dot"),
    ):
        fig.add_trace(
            go.Scatter(
                x=weeks,
                y=[y] * len(weeks),
                name=name,
                mode="lines",
                line={"color": DARK_GREY, "width": 2, "dash": dash},
                legendgroup=name,
                hovertemplate="%{y:,.1f} space units",
            ),
            row=1,
            col=1,
            secondary_y=False,
        )
    for i, _ in enumerate(view.products):
        stacked(
            i + 2,
            view.expect(foot_reg[:, i, :]),
            view.expect(foot_ovr[:, i, :]),
            view.expect(I_reg[:, i, :] + I_ovr[:, i, :]),
            False,
        )
    fig.update_yaxes(title_text="space units", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(
        title_text="units", rangemode="tozero", secondary_y=True, showgrid=False, tickmode="auto"
    )
    _week_axes(fig, weeks)
    _bottom_x_title(fig, n)
    return _style(
        fig,
        "Warehouse footprint against capacity (regular and overflow stacked)",
        height,
        legend_rows=4 if view.fan else 2,
    )


def workforce_figure(view: RunView | StoredRun) -> go.Figure:
    """Labour per product: regular capacity, maximum with overtime, hours required, regular and
    overtime hours used (hours), units produced (right axis); below it, the workforce (workers)
    with hires and fires."""
    view = as_view(view)
    weeks = list(view.weeks)
    plan = view.plan
    hpw = view.instance_value("hours_per_worker")
    otf = view.instance_value("overtime_fraction")
    hours_per_unit = view.product_param("hours_per_unit")
    cats = {c.column: c for c in COST_CATEGORIES}
    n = len(view.products)
    height = 120 + 400 * n
    specs, heights, titles = [], [], []
    for p in view.products:
        specs += [[{"secondary_y": True}], [{"secondary_y": False}]]
        heights += [0.72, 0.28]
        titles += [
            f"<b>{view.product_labels[p]}</b>: labour hours",
            f"<b>{view.product_labels[p]}</b>: workforce",
        ]
    fig = make_subplots(
        rows=2 * n,
        cols=1,
        shared_xaxes=True,
        specs=specs,
        row_heights=heights,
        subplot_titles=titles,
        vertical_spacing=_spacing(2 * n, 46, height),
    )
    for i, _ in enumerate(view.products):
        hours_row, crew_row, first = 2 * i + 1, 2 * i + 2, i == 0
        W = plan["W"][i]
        hours = "%{y:,.1f} hours"
        fig.add_trace(
            go.Bar(
                x=weeks,
                y=hours_per_unit[i] * plan["X"][i],
                name="Hours required",
                marker_color=_rgba(GREY, 0.45),
                legendgroup="required",
                showlegend=first,
                hovertemplate=hours,
            ),
            row=hours_row,
            col=1,
            secondary_y=False,
        )
        for y, name, colour, width, dash, group in (
            (W * hpw, "Regular capacity", DARK_GREY, 2, "solid", "cap"),
            (W * hpw * (1 + otf), "Maximum with overtime", DARK_GREY, 2, "dash", "max"),
            (plan["R"][i], "Regular hours used", cats["labor_reg"].colour, 3, "solid", "reg"),
            (plan["O"][i], "Overtime hours used", cats["labor_ot"].colour, 3, "solid", "ot"),
        ):
            fig.add_trace(
                go.Scatter(
                    x=weeks,
                    y=y,
                    name=name,
                    mode="lines+markers",
                    line={"color": colour, "width": width, "dash": dash},
                    marker={"size": 5},
                    legendgroup=group,
                    showlegend=first,
                    hovertemplate=hours,
                ),
                row=hours_row,
                col=1,
                secondary_y=False,
            )
        fig.add_trace(
            go.Scatter(
                x=weeks,
                y=plan["X"][i],
                name="Units produced (right axis)",
                mode="lines+markers",
                line={"color": PRODUCTION, "width": 1.5, "dash": "dot"},
                marker={"size": 5, "symbol": "diamond"},
                legendgroup="units",
                showlegend=first,
                hovertemplate=_UNITS + " units",
            ),
            row=hours_row,
            col=1,
            secondary_y=True,
        )
        hr = cats["hiring_firing"].colour
        fig.add_trace(
            go.Bar(
                x=weeks,
                y=plan["H"][i],
                name="Hired",
                marker_color=hr,
                legendgroup="hired",
                showlegend=first,
                hovertemplate="%{y:,.1f} workers",
            ),
            row=crew_row,
            col=1,
        )
        fig.add_trace(
            go.Bar(
                x=weeks,
                y=-plan["F"][i],
                name="Fired (below zero)",
                marker={
                    "color": _rgba(hr, 0.45),
                    "line": {"color": hr, "width": 1},
                    "pattern": {"shape": "/", "fgcolor": hr},
                },
                legendgroup="fired",
                showlegend=first,
                hovertemplate="%{y:,.1f} workers",
            ),
            row=crew_row,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=weeks,
                y=W,
                name="Workers",
                mode="lines",
                line={"color": DARK_GREY, "width": 2, "shape": "hv"},
                legendgroup="workers",
                showlegend=first,
                hovertemplate="%{y:,.1f} workers",
            ),
            row=crew_row,
            col=1,
        )
        fig.update_yaxes(
            title_text="hours", rangemode="tozero", row=hours_row, col=1, secondary_y=False
        )
        fig.update_yaxes(
            title_text="units",
            rangemode="tozero",
            row=hours_row,
            col=1,
            secondary_y=True,
            showgrid=False,
            tickmode="auto",
        )
        fig.update_yaxes(
            title_text="workers", row=crew_row, col=1, zeroline=True, zerolinecolor="#999999"
        )
    fig.update_layout(barmode="relative")
    _week_axes(fig, weeks)
    _bottom_x_title(fig, 2 * n)
    return _style(
        fig,
        f"Workforce and labour hours ({hpw:g} regular hours per worker, overtime "
        f"up to {otf:.0%} of regular hours)",
        height,
        legend_rows=2,
    )


def cost_composition_figure(view: RunView | StoredRun) -> go.Figure:
    """Expected cost by week, stacked by category (all products), and the totals by category
    with their shares of the expected total cost ($)."""
    view = as_view(view)
    weekly = view.weekly
    weeks = list(view.weeks)
    cats = cost_categories(view)
    by_week = weekly.drop(columns=["product"]).groupby("week").sum().reindex(weeks).fillna(0.0)
    totals = {c.column: float(weekly[c.column].sum()) for c in cats}
    grand = sum(totals.values())
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.64, 0.36],
        horizontal_spacing=0.2,
        subplot_titles=["<b>By week</b> (all products)", f"<b>In total</b>: {money(grand)}"],
    )
    for cat in cats:
        fig.add_trace(
            go.Scatter(
                x=weeks,
                y=by_week[cat.column],
                name=cat.label,
                mode="lines",
                stackgroup="cost",
                line={"width": 0.8, "color": cat.colour},
                fillcolor=_rgba(cat.colour, 0.8),
                legendgroup=cat.column,
                hovertemplate=_MONEY,
            ),
            row=1,
            col=1,
        )
    labels = [c.label for c in cats]
    values = [totals[c.column] for c in cats]
    shares = [100 * v / grand if grand else math.nan for v in values]
    fig.add_trace(
        go.Bar(
            y=labels,
            x=values,
            orientation="h",
            marker_color=[c.colour for c in cats],
            marker_line={"color": "#555555", "width": 0.5},
            showlegend=False,
            name="Total",
            text=[f"{money(v)} ({s:.2f} %)" for v, s in zip(values, shares, strict=True)],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:$,.2f}<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.update_yaxes(title_text="expected cost, $ per week", tickformat="$~s", row=1, col=1)
    fig.update_xaxes(title_text="week", row=1, col=1)
    fig.update_xaxes(
        title_text="expected cost over the horizon, $",
        tickformat="$~s",
        range=[0, 1.6 * max(values + [1.0])],
        row=1,
        col=2,
    )
    fig.update_yaxes(autorange="reversed", row=1, col=2)
    _week_axes(fig, weeks)
    fig.update_xaxes(tickmode="auto", row=1, col=2)
    return _style(fig, "Expected cost composition", 520, legend_rows=1)


_VALUE_ROWS = (  # key, row label, colour, marker symbol
    ("ws", "WS: wait-and-see<br>(perfect information)", OKABE_ITO["bluish_green"], "circle"),
    ("rp", "RP: recourse problem<br>(stochastic plan)", OKABE_ITO["blue"], "circle"),
    ("eev", "EEV: mean-value plan<br>over the scenarios", OKABE_ITO["vermillion"], "circle"),
    (
        "ev",
        "EV: mean-value problem<br>(one average scenario)",
        OKABE_ITO["vermillion"],
        "circle-open",
    ),
)


def value_figure(view: RunView | StoredRun) -> go.Figure:
    """RP, EV, EEV and WS as a dot plot ($, expected objective), with VSS and EVPI drawn as
    brackets between the dots.

    For a cost (minimised, the aggregate family) VSS = EEV - RP and EVPI = RP - WS; for a
    maximised objective (the run's ``config["value"]["sense"]`` is ``"max"``) the mirror
    images. The bracket labels show the stored ``vss``/``evpi``. Raises :class:`MissingData`
    when none of rp, ev, eev, ws is stored. An infinite value (the mean-value plan infeasible
    in some scenario) is drawn at the worse edge and labelled "infeasible (+inf)".
    """
    view = as_view(view)
    values = view.value_metrics
    rows = [r for r in _VALUE_ROWS if r[0] in values]
    if not rows:
        raise MissingData("kpis", "rp/ev/eev/ws", f"run {view.run_id} stores no value metrics")
    maximise = view.sense == "max"
    finite = [values[k] for k, *_ in rows if math.isfinite(values[k])]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    span = (hi - lo) or max(abs(hi), 1.0) * 0.05
    right = lo - 0.35 * span if maximise else hi + 0.35 * span  # where infinities are drawn
    x_range = (
        [lo - 0.55 * span, hi + 0.25 * span] if maximise else [lo - 0.25 * span, hi + 0.55 * span]
    )
    ypos = {key: len(rows) - 1 - j for j, (key, *_) in enumerate(rows)}
    fig = go.Figure()
    for key, label, colour, symbol in rows:
        v = values[key]
        shown = v if math.isfinite(v) else right
        text = money(v) if math.isfinite(v) else f"infeasible ({v:+})"
        fig.add_trace(
            go.Scatter(
                x=[shown],
                y=[ypos[key]],
                mode="markers+text",
                name=key.upper(),
                marker={
                    "size": 16,
                    "color": colour,
                    "symbol": symbol if math.isfinite(v) else "triangle-right",
                    "line": {"width": 2, "color": colour},
                },
                text=[text],
                textposition="top center",
                textfont={"size": 13},
                showlegend=False,
                hovertemplate=f"{key.upper()}: {text}<extra></extra>",
            )
        )
    for metric, a, b in (("evpi", "ws", "rp"), ("vss", "rp", "eev")):
        if a not in ypos or b not in ypos:
            continue
        xa = values[a] if math.isfinite(values[a]) else right
        xb = values[b] if math.isfinite(values[b]) else right
        y = (ypos[a] + ypos[b]) / 2
        # VSS = EEV - RP and EVPI = RP - WS: the stored value when there is one.
        stored = values.get(metric, values[b] - values[a])
        label = f"infeasible ({stored:+})" if math.isinf(stored) else money(stored)
        fig.add_shape(type="line", x0=xa, x1=xb, y0=y, y1=y, line={"color": DARK_GREY, "width": 2})
        for x in (xa, xb):
            fig.add_shape(
                type="line",
                x0=x,
                x1=x,
                y0=y - 0.12,
                y1=y + 0.12,
                line={"color": DARK_GREY, "width": 2},
            )
        fig.add_annotation(
            x=(xa + xb) / 2,
            y=y,
            text=f"<b>{metric.upper()}</b> = {label}",
            showarrow=False,
            yshift=12,
            font={"size": 13},
            bgcolor="white",
        )
    fig.update_yaxes(
        tickmode="array",
        tickvals=list(ypos.values()),
        ticktext=[label for _, label, *_ in rows],
        range=[-0.6, len(rows) - 0.4],
        showgrid=False,
        zeroline=False,
    )
    better = "higher" if maximise else "lower"
    what = "expected objective" if view.record.family != "aggregate" else "expected total cost"
    fig.update_xaxes(
        title_text=f"{what}, $ ({better} is better)", range=x_range, tickformat="$,.0f"
    )
    _style(
        fig,
        "Value of the stochastic solution and of perfect information",
        140 + 95 * len(rows),
        hovermode="closest",
        legend_rows=0,
    )
    fig.update_layout(margin={"l": 190})
    return fig


def oos_figure(view: RunView | StoredRun) -> go.Figure:
    """Out-of-sample cost per plan: overlaid histograms (finite costs) with the means, and the
    mean with its 95 % confidence interval ($). Plans infeasible in some scenarios say how
    often in their legend entry. Raises :class:`MissingData` when no ``oos_costs`` is stored."""
    view = as_view(view)
    oos = view.oos
    if oos is None:
        raise MissingData("tables", "oos_costs", f"run {view.run_id} stores no such table")
    summary = oos_summary(oos)
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.62, 0.38],
        horizontal_spacing=0.16,
        subplot_titles=[
            "<b>Distribution</b> over the out-of-sample scenarios",
            "<b>Mean</b> with 95 % CI (hollow: where feasible)",
        ],
    )
    finite_all = oos["cost"].astype(float)
    finite_all = finite_all[np.isfinite(finite_all)]
    bins = None
    if len(finite_all):
        lo, hi = float(finite_all.min()), float(finite_all.max())
        size = (hi - lo) / 40 if hi > lo else max(abs(hi), 1.0) / 40
        bins = {"start": lo - size / 2, "end": hi + size / 2, "size": size}
    for j, row in enumerate(summary.itertuples(index=False)):
        colour = plan_colour(row.plan, j)
        cost = oos.loc[oos["plan"] == row.plan, "cost"].astype(float).to_numpy()
        finite = cost[np.isfinite(cost)]
        note = f" — infeasible in {row.infeasible} of {row.n}" if row.infeasible else ""
        fig.add_trace(
            go.Histogram(
                x=finite,
                name=f"{row.plan}{note}",
                marker_color=_rgba(colour, 0.55),
                marker_line={"color": colour, "width": 0.6},
                xbins=bins,
                legendgroup=row.plan,
                hovertemplate="%{x:$,.0f}: %{y} scenarios<extra>" + row.plan + "</extra>",
            ),
            row=1,
            col=1,
        )
        # Mean and CI over all scenarios; for a plan infeasible somewhere (mean +inf), over
        # the scenarios where it is feasible, drawn hollow and labelled so.
        whole = math.isfinite(row.mean)
        mean, lo, hi = (
            (row.mean, row.ci_low, row.ci_high)
            if whole
            else (row.feasible_mean, row.feasible_ci_low, row.feasible_ci_high)
        )
        if not math.isfinite(mean):
            continue
        fig.add_vline(
            x=mean,
            line={"color": colour, "width": 2, "dash": "dash" if whole else "dot"},
            row=1,
            col=1,
        )
        where = "" if whole else f"feasible in {row.n - row.infeasible} of {row.n}: "
        fig.add_trace(
            go.Scatter(
                x=[mean],
                y=[row.plan],
                mode="markers",
                marker={
                    "size": 12,
                    "color": colour if whole else "white",
                    "symbol": "circle",
                    "line": {"color": colour, "width": 2},
                },
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": [max(hi - mean, 0.0)],
                    "arrayminus": [max(mean - lo, 0.0)],
                    "color": colour,
                    "thickness": 2,
                    "width": 8,
                },
                showlegend=False,
                legendgroup=row.plan,
                hovertemplate=(
                    f"{row.plan}<br>{where}mean {money(mean)}<br>95 % CI {money(lo)} – "
                    f"{money(hi)}<extra></extra>"
                ),
            ),
            row=1,
            col=2,
        )
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title_text="total cost in the scenario, $", tickformat="$~s", row=1, col=1)
    fig.update_yaxes(title_text="scenarios", row=1, col=1)
    fig.update_xaxes(title_text="expected total cost, $", tickformat="$~s", row=1, col=2)
    fig.update_yaxes(type="category", autorange="reversed", row=1, col=2)
    n = int(summary["n"].max()) if len(summary) else 0
    return _style(
        fig,
        f"Out-of-sample cost of each plan ({n} scenarios)",
        500,
        hovermode="closest",
        legend_rows=1,
    )


# ----------------------------------------------------------------------------------------------
# Several runs


def compare_costs_figure(runs: Sequence[RunView | StoredRun]) -> go.Figure:
    """Expected cost composition of each run: one stacked bar per run, categories coloured as
    everywhere else ($)."""
    views = [as_view(r) for r in runs]
    names = [v.short_name for v in views]
    present: list[CostCategory] = []
    for v in views:
        for c in cost_categories(v):
            if c not in present:
                present.append(c)
    order = [c for c in COST_CATEGORIES if c in present]
    fig = go.Figure()
    for cat in order:
        y = [float(v.weekly[cat.column].sum()) if cat.column in v.weekly else 0.0 for v in views]
        fig.add_trace(
            go.Bar(
                x=names,
                y=y,
                name=cat.label,
                marker_color=cat.colour,
                legendgroup=cat.column,
                hovertemplate=_MONEY,
            )
        )
    totals = [float(sum(v.weekly[c.column].sum() for c in cost_categories(v))) for v in views]
    fig.add_trace(
        go.Scatter(
            x=names,
            y=totals,
            mode="text",
            text=[money(t) for t in totals],
            textposition="top center",
            showlegend=False,
            hoverinfo="skip",
        )
    )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(
        title_text="expected total cost, $", tickformat="$~s", range=[0, 1.15 * max(totals + [1.0])]
    )
    fig.update_xaxes(title_text="run")
    return _style(fig, "Expected cost composition of each run", 520, hovermode="x unified")


def compare_production_figure(runs: Sequence[RunView | StoredRun]) -> go.Figure:
    """First-stage production of each run overlaid, per product (units), with expected demand:
    one grey line when all runs share it, else one dotted line per run."""
    views = [as_view(r) for r in runs]
    colours = run_colours(views)
    products: list[str] = []
    for v in views:
        products += [p for p in v.products if p not in products]
    labels: dict[str, str] = {}
    for v in views:
        for p in v.products:
            labels.setdefault(p, v.product_labels[p])
    weeks = sorted({t for v in views for t in v.weeks})
    expected = [v.expect(v.demand) for v in views]
    same = all(e.shape == expected[0].shape and np.allclose(e, expected[0]) for e in expected)
    n = len(products)
    height = 120 + 280 * n
    fig = make_subplots(
        rows=n,
        cols=1,
        shared_xaxes=True,
        subplot_titles=[f"<b>{labels[p]}</b>" for p in products],
        vertical_spacing=_spacing(n, 48, height),
    )
    for i, p in enumerate(products):
        row, first = i + 1, i == 0
        for k, v in enumerate(views):
            if p not in v.products:
                continue
            j = v.products.index(p)
            if k == 0 or not same:
                fig.add_trace(
                    go.Scatter(
                        x=list(v.weeks),
                        y=expected[k][j],
                        name="Expected demand" if same else f"Expected demand ({v.short_name})",
                        mode="lines",
                        line={
                            "color": GREY if same else colours[v.run_id],
                            "width": 1.5,
                            "dash": "dot",
                        },
                        legendgroup="demand" if same else f"demand-{v.run_id}",
                        showlegend=first,
                        hovertemplate=_UNITS + " units",
                    ),
                    row=row,
                    col=1,
                )
            fig.add_trace(
                go.Scatter(
                    x=list(v.weeks),
                    y=v.plan["X"][j],
                    name=f"Production, {v.short_name}",
                    mode="lines+markers",
                    line={"color": colours[v.run_id], "width": 2.5},
                    marker={"size": 6},
                    legendgroup=f"run-{v.run_id}",
                    showlegend=first,
                    hovertemplate=_UNITS + " units",
                ),
                row=row,
                col=1,
            )
    fig.update_yaxes(title_text="units", rangemode="tozero")
    _week_axes(fig, weeks)
    _bottom_x_title(fig, n)
    return _style(fig, "Production plans (first stage) overlaid", height, legend_rows=2)


def compare_profit_figure(runs: Sequence[RunView | StoredRun]) -> go.Figure:
    """Expected profit by week of each run, all products ($ per week)."""
    views = [as_view(r) for r in runs]
    colours = run_colours(views)
    fig = go.Figure()
    weeks: set[int] = set()
    for v in views:
        by_week = v.weekly.groupby("week")["profit"].sum().reindex(list(v.weeks)).fillna(0.0)
        weeks.update(v.weeks)
        fig.add_trace(
            go.Scatter(
                x=list(v.weeks),
                y=by_week.to_numpy(),
                mode="lines+markers",
                name=f"{v.short_name}: {money(float(by_week.sum()))} in total",
                line={"color": colours[v.run_id], "width": 2.5},
                hovertemplate=_MONEY,
            )
        )
    fig.update_yaxes(title_text="expected profit, $ per week", tickformat="$~s")
    fig.update_xaxes(title_text="week")
    _week_axes(fig, sorted(weeks))
    return _style(fig, "Expected profit by week", 440)


def compare_oos_figure(runs: Sequence[RunView | StoredRun]) -> go.Figure:
    """Out-of-sample cost distributions of every plan of every run that stores them: box plots
    with mean and standard deviation ($). Raises :class:`MissingData` when no run has any."""
    views = [as_view(r) for r in runs]
    fig = go.Figure()
    k = 0
    for v in views:
        if v.oos is None:
            continue
        for j, row in enumerate(oos_summary(v.oos).itertuples(index=False)):
            cost = v.oos.loc[v.oos["plan"] == row.plan, "cost"].astype(float).to_numpy()
            note = f" (infeasible in {row.infeasible} of {row.n})" if row.infeasible else ""
            colour = plan_colour(row.plan, j)
            fig.add_trace(
                go.Box(
                    x=cost[np.isfinite(cost)],
                    name=f"{v.short_name}: {row.plan}{note}",
                    marker_color=colour,
                    line={"color": colour},
                    boxmean="sd",
                    orientation="h",
                    hovertemplate="%{x:$,.0f}",
                )
            )
            k += 1
    if not k:
        raise MissingData("tables", "oos_costs", "none of the runs stores one")
    fig.update_xaxes(title_text="total cost in an out-of-sample scenario, $", tickformat="$~s")
    fig.update_yaxes(autorange="reversed")
    _style(
        fig,
        "Out-of-sample cost distributions (box: quartiles; dashed: mean ± s.d.)",
        160 + 70 * k,
        hovermode="closest",
        legend_rows=0,
    )
    fig.update_layout(showlegend=False, margin={"l": 260})
    return fig
