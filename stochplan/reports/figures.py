"""Plotly figures of stored runs of any model family, and the house style every figure uses.

Pure functions from a :class:`~stochplan.store.StoredRun` (or its
:class:`~stochplan.reports.view.RunView`) to a :class:`plotly.graph_objects.Figure`. Nothing here
solves, reads a database or touches live solver objects, and nothing names a family: the
figures read what every run may store (the first-stage plan, the scenarios and their random
data, the value-of-information KPIs, out-of-sample costs, a decomposition's convergence). A
family's own figures live with the family and use the palette and helpers of this module
(:func:`style`, :func:`fan`, :func:`rgba`, :func:`spacing`, :func:`integer_axes`).

Conventions, the same in every figure:

- Colours come from the Okabe-Ito palette (safe for the common colour-vision deficiencies).
  Each scenario has one colour (:func:`scenario_colours`), each evaluated plan one colour
  (:func:`plan_colour`: stochastic blue, mean-value vermillion, wait-and-see green), each run
  of a comparison one colour (:func:`run_colours`); the first-stage plan is black.
- Runs with more than :data:`~stochplan.reports.view.FAN_THRESHOLD` scenarios show scenario
  quantities as quantile bands (5-95 % and 25-75 %, median line) instead of one line each.
- Axis titles carry units where the run says them ($ for objectives); hover labels show values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
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
    "DARK_GREY",
    "FIRST_STAGE_COLOUR",
    "GREY",
    "MONEY_HOVER",
    "OKABE_ITO",
    "SERIES",
    "UNITS_HOVER",
    "bottom_x_title",
    "compare_objective_figure",
    "compare_oos_figure",
    "convergence_figure",
    "fan",
    "integer_axes",
    "numeric_labels",
    "oos_figure",
    "ordered_labels",
    "plan_colour",
    "plan_figure",
    "rgba",
    "run_colours",
    "scenario_colours",
    "scenario_data_figure",
    "scenario_objective_figure",
    "spacing",
    "style",
    "value_figure",
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
#: The first-stage plan is drawn in black in every figure.
FIRST_STAGE_COLOUR = OKABE_ITO["black"]
FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", "DejaVu Sans", sans-serif'

#: Series colours in order of use (scenarios, runs, index values); three-point scenarios get
#: low/med/high below.
SERIES = (
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


def scenario_colours(labels: Sequence[str]) -> dict[str, str]:
    """One colour per scenario label: low/med/high get light blue/blue/vermillion, others the
    palette in order (cycling beyond ten, where runs are drawn as fan charts anyway)."""
    labels = [str(x) for x in labels]
    if labels and all(x.lower() in _NAMED_SCENARIOS for x in labels):
        return {x: _NAMED_SCENARIOS[x.lower()] for x in labels}
    return {x: SERIES[i % len(SERIES)] for i, x in enumerate(labels)}


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
    return {v.run_id: SERIES[i % len(SERIES)] for i, v in enumerate(views)}


def rgba(hex_colour: str, alpha: float) -> str:
    """``#0072B2`` with opacity ``alpha`` as ``rgba(0,114,178,alpha)``."""
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


# ----------------------------------------------------------------------------------------------
# Layout helpers

MONEY_HOVER = "%{y:$,.2f}"
UNITS_HOVER = "%{y:,.1f}"


def style(
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


def integer_axes(fig: go.Figure, ticks: Sequence[Any]) -> None:
    """x axes of periods (weeks, stages): one tick per period up to 26 of them, axis lines."""
    if len(ticks) <= 26:
        fig.update_xaxes(tickmode="linear", dtick=1)
    fig.update_xaxes(showline=True, linecolor="#BBBBBB", ticks="outside", tickcolor="#BBBBBB")


def bottom_x_title(fig: go.Figure, rows: int, text: str) -> None:
    """Title the x axis of the bottom row only (rows share their x axis)."""
    fig.update_xaxes(title_text=text, row=rows, col=1)


def fan(
    fig: go.Figure,
    x: Sequence[Any],
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
    where: dict[str, Any] = {"row": row, "col": col}
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
                fillcolor=rgba(colour, alpha),
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


def spacing(rows: int, gap_px: int, height: int) -> float:
    """Vertical spacing of ``rows`` subplots that leaves about ``gap_px`` pixels between them."""
    return min(0.12, gap_px / max(height, 1)) if rows > 1 else 0.0


# ----------------------------------------------------------------------------------------------
# One run: the first-stage plan, the scenarios, the convergence of a decomposition


def numeric_labels(labels: Sequence[Any]) -> bool:
    """Whether index labels are numbers (periods: drawn on a numeric axis, sorted)."""
    return bool(labels) and all(
        isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)
        for x in labels
    )


def ordered_labels(values: pd.Series) -> list[Any]:
    """The distinct values of an index column: ascending when numeric, else as stored."""
    labels = list(pd.unique(values.dropna()))
    return sorted(labels) if numeric_labels(labels) else labels


def plan_figure(view: RunView | StoredRun) -> go.Figure:
    """The first-stage plan, one subplot per variable, in the plan's own units.

    One index column (``crop``): bars over it. Two (``product``, ``week``): one series per
    value of the first over the second, lines when the second is numeric (periods), grouped
    bars otherwise. Rows of a variable without those indices are left out. Raises
    :class:`MissingData` when the plan is empty or has no, or more than two, index columns
    (the page then shows the plan as a table only).
    """
    view = as_view(view)
    plan, index = view.plan, view.index_names
    if not view.variables or len(index) not in (1, 2):
        raise MissingData("plan", index, "only plans with one or two index columns are drawn")
    rows = plan.dropna(subset=list(index))
    variables = [v for v in view.variables if (rows["variable"] == v).any()]
    if not variables:
        raise MissingData("plan", index, "no plan entry has all its index values")
    x_name = index[-1]
    x_labels = ordered_labels(rows[x_name])
    numeric_x = numeric_labels(x_labels)
    series = ordered_labels(rows[index[0]]) if len(index) == 2 else [None]
    colours = {s: SERIES[i % len(SERIES)] for i, s in enumerate(series)}
    n = len(variables)
    height = 120 + 260 * n
    fig = make_subplots(
        rows=n,
        cols=1,
        shared_xaxes=True,
        subplot_titles=[f"<b>{v}</b>" for v in variables],
        vertical_spacing=spacing(n, 52, height),
    )
    for i, var in enumerate(variables, start=1):
        part = rows[rows["variable"] == var]
        for s in series:
            cells = part if s is None else part[part[index[0]] == s]
            if cells.empty:
                continue
            values = cells.groupby(x_name, sort=False)["value"].sum().reindex(x_labels)
            name = var if s is None else f"{index[0]} {s}"
            hover = f"{var}[%{{x}}]" if s is None else f"{var}[{s}, %{{x}}]"
            common = {
                "x": [str(x) for x in x_labels] if not numeric_x else x_labels,
                "y": values.to_numpy(float),
                "name": name,
                "legendgroup": name,
                "showlegend": i == 1 and s is not None,
                "hovertemplate": hover + " = %{y:,.6g}<extra></extra>",
            }
            colour = FIRST_STAGE_COLOUR if s is None else colours[s]
            if numeric_x and s is not None:
                fig.add_trace(
                    go.Scatter(
                        mode="lines+markers",
                        line={"color": colour, "width": 2},
                        marker={"size": 5},
                        **common,
                    ),
                    row=i,
                    col=1,
                )
            else:
                fig.add_trace(go.Bar(marker_color=colour, **common), row=i, col=1)
        fig.update_yaxes(title_text=var, row=i, col=1)
    if numeric_x:
        integer_axes(fig, x_labels)
    bottom_x_title(fig, n, x_name)
    fig.update_layout(barmode="group")
    by = f" by {index[0]}" if len(index) == 2 else ""
    return style(
        fig,
        f"First-stage plan over {x_name}{by} ({n} variable{'s' if n != 1 else ''})",
        height,
        hovermode="closest",
        legend_rows=1 if len(index) == 2 else 0,
    )


_OBJECTIVE_SERIES = {  # column of value_by_scenario -> (label, colour)
    "ws": ("WS: wait-and-see (perfect information)", OKABE_ITO["bluish_green"]),
    "eev": ("EEV: mean-value plan", OKABE_ITO["vermillion"]),
    "rp": ("RP: stochastic plan", OKABE_ITO["blue"]),
}


def scenario_objective_figure(view: RunView | StoredRun) -> go.Figure:
    """The objective in each scenario, as the value step stored it (``value_by_scenario``):
    wait-and-see (the scenario solved with perfect information) and the mean-value plan's
    (EEV), $. Few scenarios: bars per scenario; more than FAN_THRESHOLD: probability-weighted
    histograms. Dashed lines: the expectations stored as KPIs (WS, EEV and RP). Scenarios where
    a plan is infeasible (+inf) are counted in its legend entry, not drawn. Raises
    :class:`MissingData` when the run stores no ``value_by_scenario``."""
    view = as_view(view)
    table = view.value_by_scenario
    if table is None:
        raise MissingData("tables", "value_by_scenario", f"run {view.run_id} stores no such table")
    columns = [
        c
        for c in table.columns
        if c not in ("scenario", "probability", "label") and pd.api.types.is_numeric_dtype(table[c])
    ]
    if not columns:
        raise MissingData("value_by_scenario", "objectives", "the table has no objective column")
    names = [str(s) for s in table["scenario"]]
    label_of = dict(zip(view.scenario_names, view.scenario_labels, strict=True))
    labels = [label_of.get(s, s) for s in names]
    weights = (
        table["probability"].to_numpy(float)
        if "probability" in table
        else np.full(len(table), 1.0 / max(len(table), 1))
    )
    fig = go.Figure()
    others = (OKABE_ITO["reddish_purple"], OKABE_ITO["orange"], OKABE_ITO["sky_blue"], DARK_GREY)
    for j, col in enumerate(columns):
        label, colour = _OBJECTIVE_SERIES.get(col, (col, others[j % len(others)]))
        values = table[col].to_numpy(float)
        finite = np.isfinite(values)
        note = (
            f" — infeasible in {int((~finite).sum())} of {len(values)}" if not finite.all() else ""
        )
        if view.fan:
            fig.add_trace(
                go.Histogram(
                    x=values[finite],
                    y=weights[finite],
                    histfunc="sum",
                    name=f"{label}{note}",
                    marker_color=rgba(colour, 0.55),
                    marker_line={"color": colour, "width": 0.6},
                    legendgroup=col,
                    hovertemplate="%{x:$,.0f}: probability %{y:.3f}<extra>"
                    + col.upper()
                    + "</extra>",
                )
            )
        else:
            fig.add_trace(
                go.Bar(
                    x=[lab for lab, ok in zip(labels, finite, strict=True) if ok],
                    y=values[finite],
                    name=f"{label}{note}",
                    marker_color=colour,
                    legendgroup=col,
                    customdata=weights[finite],
                    hovertemplate="%{y:$,.2f} (probability %{customdata:.3f})",
                )
            )
    for key in ("ws", "eev", "rp"):
        value = view.kpis.get(key)
        if value is None or not math.isfinite(value):
            continue
        _, colour = _OBJECTIVE_SERIES[key]
        line = {"color": colour, "width": 2, "dash": "dash"}
        if view.fan:
            fig.add_vline(x=value, line=line)
        else:
            fig.add_hline(y=value, line=line)
        # the line's legend entry (shapes have none of their own)
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                line=line,
                name=f"{key.upper()} expected: {money(value)}",
                hoverinfo="skip",
            )
        )
    if view.fan:
        fig.update_layout(barmode="overlay")
        fig.update_xaxes(title_text="objective in the scenario, $", tickformat="$~s")
        fig.update_yaxes(title_text="probability")
    else:
        fig.update_layout(barmode="group")
        fig.update_xaxes(title_text="scenario", type="category")
        fig.update_yaxes(title_text="objective in the scenario, $", tickformat="$~s")
    better = "higher" if view.sense == "max" else "lower"
    return style(
        fig,
        f"Objective in each scenario ({better} is better; dashed: expectations)",
        480,
        hovermode="closest" if view.fan else "x unified",
        legend_rows=2,
    )


def scenario_data_figure(view: RunView | StoredRun) -> go.Figure:
    """The scenarios' random data (the stored table named after it, e.g. ``demand``), summed
    over all its axes but the last, in its own unit: one line per scenario (scenario colours),
    or quantile bands beyond FAN_THRESHOLD scenarios, with the probability-weighted mean
    (black). Data without an axis: one bar per scenario. Raises :class:`MissingData` when the
    run stores no such table."""
    view = as_view(view)
    axis, labels, values = view.scenario_series()
    name = view.scenario_data_name or "data"
    table = view.table(name)
    summed = [c for c in table.columns if c not in ("scenario", "value", axis)]
    over = f" (summed over {', '.join(summed)})" if summed else ""
    fig = make_subplots(rows=1, cols=1)
    if axis is None:
        colours = scenario_colours(view.scenario_labels)
        fig.add_trace(
            go.Bar(
                x=list(view.scenario_labels),
                y=values[:, 0],
                marker_color=[colours[s] for s in view.scenario_labels],
                customdata=view.probabilities,
                name=name,
                hovertemplate="%{y:,.6g} (probability %{customdata:.3f})<extra></extra>",
            ),
            row=1,
            col=1,
        )
        fig.update_xaxes(title_text="scenario", type="category")
        fig.update_yaxes(title_text=f"{name}{over}")
        return style(fig, f"Scenarios: {name}{over}", 440, hovermode="closest", legend_rows=0)
    numeric = numeric_labels(labels)
    x = list(labels) if numeric else [str(t) for t in labels]
    if view.fan:
        fan(
            fig,
            x,
            values,
            view.probabilities,
            colour=OKABE_ITO["orange"],
            name=name.capitalize(),
            unit="",
            dash="dot",
            legendgroup="data",
            showlegend=True,
            row=1,
        )
    else:
        colours = scenario_colours(view.scenario_labels)
        for s, label in enumerate(view.scenario_labels):
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=values[s],
                    name=f"{label} (p = {view.probabilities[s]:.3g})",
                    mode="lines+markers",
                    line={"color": colours[label], "width": 2, "dash": "dot"},
                    marker={"size": 5},
                    legendgroup=f"scenario-{label}",
                    hovertemplate=UNITS_HOVER,
                ),
                row=1,
                col=1,
            )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=view.expect(values),
            name="Expected (probability-weighted)",
            mode="lines+markers",
            line={"color": FIRST_STAGE_COLOUR, "width": 2.5},
            marker={"size": 5},
            legendgroup="mean",
            hovertemplate=UNITS_HOVER,
        ),
        row=1,
        col=1,
    )
    if numeric:
        integer_axes(fig, labels)
    fig.update_xaxes(title_text=axis)
    fig.update_yaxes(title_text=f"{name}{over}", rangemode="tozero")
    kind = (
        f"{view.n_scenarios} scenarios as quantile bands"
        if view.fan
        else f"{view.n_scenarios} scenarios"
    )
    return style(
        fig,
        f"Scenarios: {name} by {axis}{over} ({kind})",
        460,
        legend_rows=2 if view.fan or view.n_scenarios > 4 else 1,
    )


def convergence_figure(view: RunView | StoredRun) -> go.Figure:
    """A decomposition's progress (PH, L-shaped) from the stored ``convergence`` table: the
    bound and the incumbent (best feasible objective) per iteration ($), and below, their
    relative gap |incumbent - bound| / |incumbent| on a log scale. Iterations without a finite
    value are left out of that line. Raises :class:`MissingData` when the run stores no
    convergence history (the extensive form)."""
    view = as_view(view)
    table = view.convergence
    if table is None:
        raise MissingData("tables", "convergence", f"run {view.run_id} stores no such table")
    table = table.sort_values("iteration")
    it = table["iteration"].to_numpy()
    bound = table["bound"].to_numpy(float)
    inc = table["incumbent"].to_numpy(float)
    seconds = (
        table["seconds"].to_numpy(float) if "seconds" in table else np.full(len(table), np.nan)
    )

    def shown(y: np.ndarray) -> list[float | None]:
        return [float(v) if math.isfinite(v) else None for v in y]

    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.abs(inc - bound) / np.maximum(np.abs(inc), 1e-10)
    gap = np.where(np.isfinite(gap) & (gap > 0), gap, np.nan)
    has_gap = bool(np.isfinite(gap).any())
    rows = 2 if has_gap else 1
    height = 520 if has_gap else 420
    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.65, 0.35] if has_gap else None,
        subplot_titles=["<b>Bound and incumbent</b>"]
        + (["<b>Relative gap</b>"] if has_gap else []),
        vertical_spacing=spacing(rows, 60, height),
    )
    hover = "%{y:$,.2f}<br>%{customdata:.2f} s<extra>%{fullData.name}</extra>"
    for y, name, colour, dash in (
        (bound, "Bound", OKABE_ITO["blue"], "solid"),
        (inc, "Incumbent", OKABE_ITO["vermillion"], "dash"),
    ):
        fig.add_trace(
            go.Scatter(
                x=it,
                y=shown(y),
                name=name,
                mode="lines+markers",
                line={"color": colour, "width": 2, "dash": dash},
                marker={"size": 5},
                customdata=seconds,
                connectgaps=False,
                hovertemplate=hover,
            ),
            row=1,
            col=1,
        )
    fig.update_yaxes(title_text="objective, $", tickformat="$~s", row=1, col=1)
    if has_gap:
        fig.add_trace(
            go.Scatter(
                x=it,
                y=shown(gap),
                name="Relative gap",
                mode="lines+markers",
                line={"color": DARK_GREY, "width": 2},
                marker={"size": 5},
                hovertemplate="%{y:.3%}<extra></extra>",
            ),
            row=2,
            col=1,
        )
        fig.update_yaxes(title_text="relative gap", type="log", tickformat=".1~%", row=2, col=1)
    bottom_x_title(fig, rows, "iteration")
    fig.update_xaxes(showline=True, linecolor="#BBBBBB", ticks="outside", tickcolor="#BBBBBB")
    method = view.record.method.upper()
    last = float(seconds[-1]) if len(seconds) and math.isfinite(seconds[-1]) else None
    took = f", {last:.1f} s" if last is not None else ""
    return style(
        fig,
        f"Convergence of {method} ({len(table)} iterations{took})",
        height,
        legend_rows=1,
    )


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

    For a cost (minimised) VSS = EEV - RP and EVPI = RP - WS; for a
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
    for key, _label, colour, symbol in rows:
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
    fig.update_xaxes(
        title_text=f"expected objective, $ ({better} is better)",
        range=x_range,
        tickformat="$,.0f",
    )
    style(
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
                marker_color=rgba(colour, 0.55),
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
    return style(
        fig,
        f"Out-of-sample cost of each plan ({n} scenarios)",
        500,
        hovermode="closest",
        legend_rows=1,
    )


# ----------------------------------------------------------------------------------------------
# Several runs


def compare_objective_figure(runs: Sequence[RunView | StoredRun]) -> go.Figure:
    """The objective of each run (filled dot) and its bound (open dot), in run colours ($)."""
    views = [as_view(r) for r in runs]
    colours = run_colours(views)
    fig = go.Figure()
    for v in views:
        rec = v.record
        for value, name, symbol in (
            (rec.objective, "objective", "circle"),
            (rec.bound, "bound", "circle-open"),
        ):
            if value is None or not math.isfinite(value):
                continue
            fig.add_trace(
                go.Scatter(
                    x=[value],
                    y=[v.short_name],
                    mode="markers+text" if name == "objective" else "markers",
                    text=[money(value)] if name == "objective" else None,
                    textposition="top center",
                    marker={
                        "size": 14,
                        "symbol": symbol,
                        "color": colours[v.run_id],
                        "line": {"width": 2, "color": colours[v.run_id]},
                    },
                    name=f"{v.short_name} {name}",
                    showlegend=False,
                    hovertemplate=f"{v.short_name} {name}: %{{x:$,.2f}}<extra></extra>",
                )
            )
    if not fig.data:
        raise MissingData("runs", [v.run_id for v in views], "no run stores a finite objective")
    fig.update_xaxes(title_text="objective, $", tickformat="$~s")
    fig.update_yaxes(type="category", autorange="reversed")
    style(
        fig,
        "Objective of each run (open: bound)",
        160 + 60 * len(views),
        hovermode="closest",
        legend_rows=0,
    )
    fig.update_layout(margin={"l": 110})
    return fig


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
    style(
        fig,
        "Out-of-sample cost distributions (box: quartiles; dashed: mean ± s.d.)",
        160 + 70 * k,
        hovermode="closest",
        legend_rows=0,
    )
    fig.update_layout(showlegend=False, margin={"l": 260})
    return fig
