"""The aggregate family's dashboard panels and text report, drawn from a stored run.

Nothing above the family layer knows what is drawn here: the page asks the family for its
panels (:func:`panels`, :func:`compare_panels`) after the generic ones. Everything is read from
what the run stored (see :meth:`stochplan.models.aggregate.AggregateFamily.instance_tables` and
:func:`stochplan.run.to_record`): the tables ``products``, ``composition`` and ``weekly`` (the
KPIs of :mod:`.kpis`), ``recourse``, ``demand`` (the random data), ``instance_products`` (labels
and per-product parameters) and ``config["instance_data"]`` (hours per worker, overtime
fraction, warehouse capacities, weeks).

Units: money in $, quantities in units, labour in hours, workforce in workers, warehouse
footprint in space units (``space_per_unit`` x units). Colours: each cost category has one
(:data:`COST_CATEGORIES`), in every figure and table; the rest follow
:mod:`stochplan.reports.figures`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from stochplan.family import Panel
from stochplan.models.aggregate.kpis import category_label
from stochplan.models.aggregate.model import FIRST_STAGE
from stochplan.reports.figures import (
    DARK_GREY,
    FIRST_STAGE_COLOUR,
    GREY,
    MONEY_HOVER,
    OKABE_ITO,
    UNITS_HOVER,
    bottom_x_title,
    fan,
    integer_axes,
    rgba,
    run_colours,
    scenario_colours,
    spacing,
    style,
)
from stochplan.reports.panels import chart_panel, esc, format_kpi, kpi_attrs
from stochplan.reports.text import money
from stochplan.reports.view import MissingData, RunView, as_view
from stochplan.store import StoredRun

__all__ = [
    "COST_CATEGORIES",
    "AggregateView",
    "CostCategory",
    "aggregate_view",
    "compare_costs_figure",
    "compare_panels",
    "compare_production_figure",
    "compare_profit_figure",
    "kpi_label",
    "composition_table",
    "cost_categories",
    "cost_composition_figure",
    "financials_figure",
    "panels",
    "production_figure",
    "products_table",
    "shares_html",
    "warehouse_figure",
    "workforce_figure",
]

#: Revenue is neutral, so that costs keep their category colours next to it.
REVENUE = "#A9BCCB"
DEMAND = OKABE_ITO["orange"]
INVENTORY = OKABE_ITO["bluish_green"]
FOOTPRINT = OKABE_ITO["blue"]


# ----------------------------------------------------------------------------------------------
# The text report


# ----------------------------------------------------------------------------------------------
# A stored run as products x weeks arrays


class AggregateView(RunView):
    """A :class:`~stochplan.reports.view.RunView` of an aggregate run with its products x
    weeks arrays.

    Product order is the instance's (``instance_products``), week order ascending (the stored
    ``config["instance_data"]["weeks"]``), scenario order that of the ``scenarios`` table.
    """

    @cached_property
    def products(self) -> tuple[str, ...]:
        if self.has_table("instance_products"):
            return tuple(str(p) for p in self.table("instance_products")["product"])
        if "product" not in self.plan:
            raise MissingData("plan", "product", f"run {self.run_id} has no products")
        return tuple(str(p) for p in pd.unique(self.plan["product"].dropna()))

    @cached_property
    def product_labels(self) -> dict[str, str]:
        """Product -> display name, e.g. ``"A (Monitor)"``."""
        if not self.has_table("instance_products"):
            return {p: p for p in self.products}
        inst = self.table("instance_products")
        out = {}
        for p, label in zip(inst["product"], inst["label"], strict=True):
            missing = label is None or (isinstance(label, float) and math.isnan(label))
            label = "" if missing else str(label)
            out[str(p)] = f"{p} ({label})" if label and label != str(p) else str(p)
        return out

    @cached_property
    def weeks(self) -> tuple[int, ...]:
        weeks = self.instance_data.get("weeks")
        if weeks:
            return tuple(int(t) for t in weeks)
        if "week" not in self.plan:
            raise MissingData("plan", "week", f"run {self.run_id} has no weeks")
        return tuple(sorted(int(t) for t in pd.unique(self.plan["week"].dropna())))

    @cached_property
    def plan_arrays(self) -> dict[str, np.ndarray]:
        """First-stage plan, variable -> (P, T) array (zeros for a variable not stored)."""
        plan = self.plan
        if plan.empty or not {"product", "week"} <= set(plan.columns):
            raise MissingData("plan", "product x week", f"run {self.run_id} stores no such plan")
        out = {}
        for var in FIRST_STAGE:
            rows = plan[plan["variable"] == var]
            grid = np.zeros((len(self.products), len(self.weeks)))
            if len(rows):
                pivot = rows.pivot_table(
                    index="product", columns="week", values="value", aggfunc="sum"
                )
                grid = pivot.reindex(index=list(self.products), columns=list(self.weeks))
                grid = grid.fillna(0.0).to_numpy(float)
            out[var] = grid
        return out

    @cached_property
    def recourse(self) -> dict[str, np.ndarray]:
        """Second stage, variable (``I_reg``, ``I_ovr``, ``B``, ``L``) -> (S, P, T) array."""
        table = self.table("recourse")
        out = {var: self._spt(rows) for var, rows in table.groupby("variable", sort=False)}
        zeros = np.zeros((len(self.scenario_names), len(self.products), len(self.weeks)))
        for var in ("I_reg", "I_ovr", "B", "L"):
            out.setdefault(var, zeros.copy())
        return {str(k): v for k, v in out.items()}

    @cached_property
    def demand(self) -> np.ndarray:
        """Demand per scenario, (S, P, T) units."""
        return self._spt(self.table("demand"))

    def _spt(self, rows: pd.DataFrame) -> np.ndarray:
        s_pos = {name: i for i, name in enumerate(self.scenario_names)}
        p_pos = {p: i for i, p in enumerate(self.products)}
        t_pos = {t: i for i, t in enumerate(self.weeks)}
        arr = np.zeros((len(s_pos), len(p_pos), len(t_pos)))
        s = rows["scenario"].astype(str).map(s_pos)
        p = rows["product"].astype(str).map(p_pos)
        t = rows["week"].astype(int).map(t_pos)
        keep = s.notna() & p.notna() & t.notna()
        arr[
            s[keep].astype(int).to_numpy(),
            p[keep].astype(int).to_numpy(),
            t[keep].astype(int).to_numpy(),
        ] = rows.loc[keep, "value"].to_numpy(float)
        return arr

    def product_param(self, column: str) -> np.ndarray:
        """A per-product instance parameter (``hours_per_unit``, ``space_per_unit``...), (P,)."""
        table = self.table("instance_products").set_index("product")
        if column not in table:
            raise MissingData(
                "instance_products", column, f"run {self.run_id} stores no such column"
            )
        return table[column].reindex(list(self.products)).to_numpy(float)

    @cached_property
    def weekly(self) -> pd.DataFrame:
        """Expected revenue, cost and profit and the cost components per (product, week), $."""
        return self.table("weekly")


def aggregate_view(run: RunView | StoredRun) -> AggregateView:
    """An :class:`AggregateView` of a stored run (one is returned as it is)."""
    if isinstance(run, AggregateView):
        return run
    return AggregateView(as_view(run).stored)


# ----------------------------------------------------------------------------------------------
# Cost categories


@dataclass(frozen=True)
class CostCategory:
    """A cost component: the ``weekly`` table's column, its display label and its colour."""

    column: str
    label: str
    colour: str
    composition: str  # the category in the stored ``composition`` table


#: Every cost category of the family, in the seed's order.
#: Labels are the family's one naming (:data:`~stochplan.models.aggregate.kpis.CATEGORY_LABELS`).
COST_CATEGORIES = tuple(
    CostCategory(column, category_label(column), colour, composition)
    for column, colour, composition in (
        ("production", OKABE_ITO["blue"], "Production"),
        ("labor_reg", OKABE_ITO["sky_blue"], "Labor (Reg)"),
        ("labor_ot", OKABE_ITO["orange"], "Labor (OT)"),
        ("hiring_firing", OKABE_ITO["reddish_purple"], "Hiring/Firing"),
        ("inventory_regular", OKABE_ITO["bluish_green"], "Inventory"),
        ("inventory_overflow", OKABE_ITO["yellow"], "Inventory"),
        ("backorder", OKABE_ITO["vermillion"], "Backorder"),
        ("wages", GREY, "Wages"),
        ("lost_sales", OKABE_ITO["black"], "Lost sales"),
    )
)
_OPTIONAL = {"wages", "lost_sales"}


def cost_categories(view: AggregateView) -> list[CostCategory]:
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


# ----------------------------------------------------------------------------------------------
# One run


def financials_figure(view: RunView | StoredRun) -> go.Figure:
    """Expected revenue, cost (stacked by category) and profit by week, company and products.

    One row for all products, then one per product; the row titles carry the totals. Revenue
    is price x expected demand met, cost the objective's terms (see
    :mod:`stochplan.models.aggregate.kpis`), profit their difference; all in $ per week.
    """
    view = aggregate_view(view)
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
        vertical_spacing=spacing(len(rows), 62, height),
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
                hovertemplate=MONEY_HOVER,
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
                    hovertemplate=MONEY_HOVER,
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
                line={"color": FIRST_STAGE_COLOUR, "width": 2.5},
                marker={"size": 6},
                legendgroup="profit",
                showlegend=first,
                hovertemplate=MONEY_HOVER,
            ),
            row=i,
            col=1,
        )
    fig.update_yaxes(
        title_text="$ per week", tickformat="$~s", zeroline=True, zerolinecolor="#999999"
    )
    integer_axes(fig, weeks)
    bottom_x_title(fig, len(rows), "week")
    fig.update_layout(barmode="group")
    return style(
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
    view = aggregate_view(view)
    weeks = list(view.weeks)
    X = view.plan_arrays["X"]
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
        vertical_spacing=spacing(n, 48, height),
    )
    colours = scenario_colours(view.scenario_labels)
    for i, _p in enumerate(view.products):
        row, first = i + 1, i == 0
        if view.fan:
            fan(
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
            fan(
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
                        hovertemplate=UNITS_HOVER + " units",
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
                        hovertemplate=UNITS_HOVER + " units",
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
                line={"color": FIRST_STAGE_COLOUR, "width": 3},
                marker={"size": 6},
                legendgroup="production",
                showlegend=first,
                hovertemplate=UNITS_HOVER + " units",
            ),
            row=row,
            col=1,
        )
    fig.update_yaxes(title_text="units", rangemode="tozero")
    integer_axes(fig, weeks)
    bottom_x_title(fig, n, "week")
    kind = (
        f"{view.n_scenarios} scenarios as quantile bands"
        if view.fan
        else f"{view.n_scenarios} scenarios"
    )
    return style(
        fig, f"Production plan against demand, with inventory ({kind})", height, legend_rows=3
    )


def warehouse_figure(view: RunView | StoredRun) -> go.Figure:
    """Warehouse footprint: regular and overflow space used (expected, stacked) against both
    capacities; all products, then each product with its units in stock.

    Footprint = space per unit x units held (space units). The capacities bind all products
    together, so they are drawn in the all-products row, with each scenario's total footprint
    (lines, or a quantile band for sampled sets) to show where the warehouse fills up; that
    row has one y-axis (units held are in the hover), so nothing on it can seem to touch a
    capacity it does not. Each product's row draws its units in stock on a right axis scaled
    to the left one (one unit = its space per unit), so the stock line runs along the top of
    the stacked footprint, as it should.
    """
    view = aggregate_view(view)
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
    titles += [f"<b>{view.product_labels[p]}</b>: footprint and units in stock"
               for p in view.products]
    fig = make_subplots(
        rows=n,
        cols=1,
        shared_xaxes=True,
        subplot_titles=titles,
        specs=[[{"secondary_y": False}]] + [[{"secondary_y": True}]] * (n - 1),
        vertical_spacing=spacing(n, 52, height),
    )

    def stacked(row: int, reg: np.ndarray, ovr: np.ndarray, units: tuple[np.ndarray, np.ndarray],
                first: bool) -> None:
        for y, held, name, colour, group in (
            (reg, units[0], "Regular warehouse (expected)", reg_colour, "reg"),
            (ovr, units[1], "Overflow (expected)", ovr_colour, "ovr"),
        ):
            fig.add_trace(
                go.Scatter(
                    x=weeks,
                    y=y,
                    customdata=held,
                    name=name,
                    mode="lines",
                    stackgroup=f"space{row}",
                    line={"width": 0.8, "color": colour},
                    fillcolor=rgba(colour, 0.55),
                    legendgroup=group,
                    showlegend=first,
                    hovertemplate="%{y:,.1f} space units (%{customdata:,.1f} units)",
                ),
                row=row,
                col=1,
            )

    # All products: expected footprint, per-scenario total, capacities.
    total = (foot_reg + foot_ovr).sum(axis=1)  # (S, T)
    stacked(
        1,
        view.expect(foot_reg.sum(axis=1)),
        view.expect(foot_ovr.sum(axis=1)),
        (view.expect(I_reg.sum(axis=1)), view.expect(I_ovr.sum(axis=1))),
        True,
    )
    if view.fan:
        fan(
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
    fig.update_yaxes(title_text="space units", rangemode="tozero", row=1, col=1)
    for i, _ in enumerate(view.products):
        row = i + 2
        reg, ovr = view.expect(foot_reg[:, i, :]), view.expect(foot_ovr[:, i, :])
        held = view.expect(I_reg[:, i, :] + I_ovr[:, i, :])
        stacked(row, reg, ovr,
                (view.expect(I_reg[:, i, :]), view.expect(I_ovr[:, i, :])), False)
        fig.add_trace(
            go.Scatter(
                x=weeks,
                y=held,
                name="Units in stock (expected, right axis)",
                mode="lines+markers",
                line={"color": FIRST_STAGE_COLOUR, "width": 1.5, "dash": "dot"},
                marker={"size": 4},
                legendgroup="units",
                showlegend=i == 0,
                hovertemplate=UNITS_HOVER + " units",
            ),
            row=row,
            col=1,
            secondary_y=True,
        )
        # one scale on both axes: the right axis is the left one divided by space per unit
        top = 1.08 * float(max(np.max(reg + ovr, initial=0.0), 1e-9)) if len(weeks) else 1.0
        per_unit = float(space[i]) if space[i] > 0 else 1.0
        fig.update_yaxes(title_text="space units", range=[0.0, top], row=row, col=1,
                         secondary_y=False)
        fig.update_yaxes(title_text=f"units (x {per_unit:g} space units)",
                         range=[0.0, top / per_unit], row=row, col=1, secondary_y=True,
                         showgrid=False)
    integer_axes(fig, weeks)
    bottom_x_title(fig, n, "week")
    return style(
        fig,
        "Warehouse footprint against capacity (regular and overflow stacked)",
        height,
        legend_rows=4 if view.fan else 2,
    )


def workforce_figure(view: RunView | StoredRun) -> go.Figure:
    """Labour per product: regular capacity, maximum with overtime, hours required, regular and
    overtime hours used (hours), units produced (right axis); below it, the workforce (workers)
    with hires and fires."""
    view = aggregate_view(view)
    weeks = list(view.weeks)
    plan = view.plan_arrays
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
        vertical_spacing=spacing(2 * n, 46, height),
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
                marker_color=rgba(GREY, 0.45),
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
                line={"color": FIRST_STAGE_COLOUR, "width": 1.5, "dash": "dot"},
                marker={"size": 5, "symbol": "diamond"},
                legendgroup="units",
                showlegend=first,
                hovertemplate=UNITS_HOVER + " units",
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
                    "color": rgba(hr, 0.45),
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
    integer_axes(fig, weeks)
    bottom_x_title(fig, 2 * n, "week")
    return style(
        fig,
        f"Workforce and labour hours ({hpw:g} regular hours per worker, overtime "
        f"up to {otf:.0%} of regular hours)",
        height,
        legend_rows=2,
    )


def cost_composition_figure(view: RunView | StoredRun) -> go.Figure:
    """Expected cost by week, stacked by category (all products), and the totals by category
    with their shares of the expected total cost ($)."""
    view = aggregate_view(view)
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
                fillcolor=rgba(cat.colour, 0.8),
                legendgroup=cat.column,
                hovertemplate=MONEY_HOVER,
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
    integer_axes(fig, weeks)
    fig.update_xaxes(tickmode="auto", row=1, col=2)
    return style(fig, "Expected cost composition", 520, legend_rows=1)


# ----------------------------------------------------------------------------------------------
# Several runs


def compare_costs_figure(runs: Sequence[RunView | StoredRun]) -> go.Figure:
    """Expected cost composition of each run: one stacked bar per run, categories coloured as
    everywhere else ($)."""
    views = [aggregate_view(r) for r in runs]
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
                hovertemplate=MONEY_HOVER,
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
    return style(fig, "Expected cost composition of each run", 520, hovermode="x unified")


def compare_production_figure(runs: Sequence[RunView | StoredRun]) -> go.Figure:
    """First-stage production of each run overlaid, per product (units), with expected demand:
    one grey line when all runs share it, else one dotted line per run."""
    views = [aggregate_view(r) for r in runs]
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
        vertical_spacing=spacing(n, 48, height),
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
                        hovertemplate=UNITS_HOVER + " units",
                    ),
                    row=row,
                    col=1,
                )
            fig.add_trace(
                go.Scatter(
                    x=list(v.weeks),
                    y=v.plan_arrays["X"][j],
                    name=f"Production, {v.short_name}",
                    mode="lines+markers",
                    line={"color": colours[v.run_id], "width": 2.5},
                    marker={"size": 6},
                    legendgroup=f"run-{v.run_id}",
                    showlegend=first,
                    hovertemplate=UNITS_HOVER + " units",
                ),
                row=row,
                col=1,
            )
    fig.update_yaxes(title_text="units", rangemode="tozero")
    integer_axes(fig, weeks)
    bottom_x_title(fig, n, "week")
    return style(fig, "Production plans (first stage) overlaid", height, legend_rows=2)


def compare_profit_figure(runs: Sequence[RunView | StoredRun]) -> go.Figure:
    """Expected profit by week of each run, all products ($ per week)."""
    views = [aggregate_view(r) for r in runs]
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
                hovertemplate=MONEY_HOVER,
            )
        )
    fig.update_yaxes(title_text="expected profit, $ per week", tickformat="$~s")
    fig.update_xaxes(title_text="week")
    integer_axes(fig, sorted(weeks))
    return style(fig, "Expected profit by week", 440)


# ----------------------------------------------------------------------------------------------
# Tables


def _share_label(name: str) -> tuple[str, str]:
    """``share_labor_reg`` -> (``Regular labour``, its colour)."""
    column = name[len("share_") :]
    aliases = {"inventory": (category_label("Inventory"), COST_CATEGORIES[4].colour)}
    for cat in COST_CATEGORIES:
        if cat.column == column:
            return cat.label, cat.colour
    return aliases.get(column, (column.replace("_", " ").capitalize(), GREY))


def kpi_label(name: str) -> str | None:
    """The family's label of a KPI it names itself: a cost share ``share_<category>`` ->
    ``Share: <the category as every chart names it>``; None for the others (the generic
    label then applies)."""
    if not name.startswith("share_"):
        return None
    return f"Share: {_share_label(name)[0]}"


def shares_html(view: RunView) -> str:
    """The cost shares (``share_*`` KPIs) as one bar and a list, in the category colours."""
    shares = [(k, v) for k, v in view.kpis.items() if k.startswith("share_")]
    if not shares:
        return ""
    bar, items = [], []
    for name, value in shares:
        label, colour = _share_label(name)
        width = 100 * value if math.isfinite(value) and value > 0 else 0.0
        if width > 0:
            bar.append(
                f'<span style="width:{width:.4f}%;background:{colour}" '
                f'title="{esc(label)}: {esc(format_kpi(name, value))}"></span>'
            )
        items.append(
            f'<li><span class="swatch" style="background:{colour}"></span>{esc(label)} '
            f"<b {kpi_attrs(name, value)}>{esc(format_kpi(name, value))}</b></li>"
        )
    return (
        '<h3>Share of the expected cost by category</h3><div class="sharebar" role="img" '
        f'aria-label="cost shares">{"".join(bar)}</div><ul class="shares">{"".join(items)}</ul>'
    )


def products_table(view: RunView | StoredRun) -> str:
    """The stored per-product KPIs (``products``) as an HTML table, each number with
    ``data-kpi="products.<product>.<column>"``; ``""`` when not stored."""
    view = aggregate_view(view)
    if not view.has_table("products"):
        return ""
    table = view.table("products")
    columns: list[tuple[str, str, Callable[[float], str]]] = [  # column, header, format
        ("total_demand", "Expected demand (units)", lambda v: f"{v:,.1f}"),
        ("demand_met", "Demand met (units)", lambda v: f"{v:,.1f}"),
        ("units_produced", "Produced (units)", lambda v: f"{v:,.0f}"),
        ("turnover", "Turnover", lambda v: f"{v:.2f}"),
        ("avg_unit_cost", "Avg unit cost", money),
        ("price", "Price", money),
        ("profit_margin", "Profit margin", lambda v: f"{v:.1%}"),
        ("revenue", "Revenue", money),
        ("cost", "Cost", money),
        ("profit", "Profit", money),
    ]
    columns = [c for c in columns if c[0] in table]
    head = "".join(f"<th>{esc(h)}</th>" for _, h, _ in columns)
    labels = view.product_labels if view.has_table("instance_products") else {}
    rows = []
    for rec in table.to_dict("records"):
        p = str(rec["product"])
        cells = []
        for col, _, fmt in columns:
            value = float(rec[col])
            text = (
                fmt(value) if math.isfinite(value) else ("n/a" if math.isnan(value) else str(value))
            )
            cells.append(f"<td {kpi_attrs(f'products.{p}.{col}', value)}>{esc(text)}</td>")
        rows.append(f"<tr><td>{esc(labels.get(p, p))}</td>{''.join(cells)}</tr>")
    return (
        '<table class="kpi"><caption>Per product (expected over scenarios)</caption>'
        f"<thead><tr><th>Product</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table>"
    )


def composition_table(view: RunView | StoredRun) -> str:
    """The stored cost composition as an HTML table, with ``data-kpi`` of
    ``composition.<category>.cost`` and ``.percent``; ``""`` when not stored."""
    view = as_view(view)
    if not view.has_table("composition"):
        return ""
    comp = view.table("composition")
    colours: dict[str, str] = {}
    for cat in COST_CATEGORIES:
        colours.setdefault(cat.composition, cat.colour)
    rows = []
    for rec in comp.to_dict("records"):
        category = str(rec["category"])
        cost, pct = float(rec["cost"]), float(rec["percent"])
        rows.append(
            f'<tr><td><span class="swatch" style="background:{colours.get(category, GREY)}">'
            f"</span>{esc(category_label(category))}</td>"
            f"<td {kpi_attrs(f'composition.{category}.cost', cost)}>{esc(money(cost))}</td>"
            f"<td {kpi_attrs(f'composition.{category}.percent', pct)}>{pct:.2f}%</td></tr>"
        )
    total = float(comp["cost"].sum())
    rows.append(
        f'<tr class="total"><td>Total</td><td>{esc(money(total))}</td><td>100.00%</td></tr>'
    )
    return (
        '<table class="kpi"><caption>Cost composition (expected, whole horizon)</caption>'
        "<thead><tr><th>Category</th><th>Total cost</th><th>Share</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


# ----------------------------------------------------------------------------------------------
# Panels


def panels(view: RunView) -> list[Panel]:
    """The family's dashboard panels: operational metrics, then revenue/cost/profit by week,
    cost composition, production against demand, warehouse and workforce."""
    view = aggregate_view(view)
    tables = (
        f'{shares_html(view)}<div class="tables"><div>{products_table(view)}</div>'
        f'<div class="narrow">{composition_table(view)}</div></div>'
    )
    scenario_note = (
        "Sampled scenario set: bands hold 90 % and 50 % of the probability, the line is the median."
        if view.fan
        else "One colour per scenario; dotted: demand, dashed: inventory."
    )
    return [
        Panel(
            "metrics",
            "Operational metrics",
            None,
            note="Expected over the scenarios, whole horizon. Revenue is price × expected "
            "demand met; cost is the objective (first stage plus expected recourse); operating "
            "margin = profit / revenue; fill rate = expected demand met / expected demand. "
            "Turnover = expected demand met / average expected inventory; average unit cost = "
            "the product's expected cost / units produced; profit margin = (price − average "
            "unit cost) / price.",
            html=tables,
        ),
        chart_panel(
            "financials",
            "Revenue, cost and profit by week",
            "Expected over the scenarios, in $ per week: revenue bars (grey) next to cost bars "
            "stacked by category, and the profit line; first for all products, then per "
            "product, with the totals in each title.",
            lambda: financials_figure(view),
        ),
        chart_panel(
            "composition",
            "Cost composition",
            "Expected cost by category: by week (stacked areas) and over the whole horizon "
            "with each category's share. Each category keeps its colour in every chart.",
            lambda: cost_composition_figure(view),
        ),
        chart_panel(
            "production",
            "Production against demand",
            "The first-stage production plan (black) against demand, with the inventory it "
            "leaves (units on hand at the end of each week, regular plus overflow). "
            + scenario_note,
            lambda: production_figure(view),
        ),
        chart_panel(
            "warehouse",
            "Warehouse footprint",
            "Space used (space per unit × units held), expected over the scenarios: regular "
            "warehouse and overflow stacked, against both capacities (dashed: regular, dotted: "
            "regular + overflow), with each scenario's total footprint; units in stock on the "
            "right axis.",
            lambda: warehouse_figure(view),
        ),
        chart_panel(
            "workforce",
            "Workforce and labour hours",
            "Per product: hours required by the plan (bars) against regular capacity and the "
            "maximum with overtime, the regular and overtime hours scheduled, units produced "
            "(right axis); below, the workforce with hires and fires.",
            lambda: workforce_figure(view),
        ),
    ]


def compare_panels(views: Sequence[RunView]) -> list[Panel]:
    """Charts comparing aggregate runs: cost composition, production plans, profit by week."""
    runs = [aggregate_view(v) for v in views]
    return [
        chart_panel(
            "costs",
            "Cost composition",
            "Expected cost of each run over the horizon, stacked by category (same colours as "
            "on the single-run dashboards).",
            lambda: compare_costs_figure(runs),
        ),
        chart_panel(
            "production",
            "Production plans",
            "First-stage production of each run, one colour per run, with expected demand "
            "(dotted).",
            lambda: compare_production_figure(runs),
        ),
        chart_panel(
            "profit",
            "Profit by week",
            "Expected profit of each run by week, all products.",
            lambda: compare_profit_figure(runs),
        ),
    ]
