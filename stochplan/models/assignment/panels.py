"""The assignment family's dashboard panels, drawn from a stored run.

- ``map``: producers and clients on the map, a line from each client to the producer its
  order is offered to (dotted: expected reassignments), producers sized by their volume gap;
- ``benefit``: the distribution of the net benefit over the scenarios and, after
  ``stochplan simulate``, over the simulated days per policy;
- ``volumes``: each producer's volume before and after the day (expected) against its target;
- ``simulation``: after ``stochplan simulate``, the producers' volumes under each policy
  against their targets, and the policies' measures side by side.

Everything is read from the stored tables of :mod:`.kpis` and :mod:`.simulate`
(``producers``, ``orders``, ``reassignments``, ``benefit``, ``simulation``,
``simulation_days``, ``simulation_producers``) and the instance tables
(``instance_orders``); nothing is solved. Money and volumes in $, distances in map units.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from stochplan.family import Panel
from stochplan.reports.figures import DARK_GREY, GREY, OKABE_ITO, style
from stochplan.reports.panels import chart_panel, esc, kpi_attrs
from stochplan.reports.text import money
from stochplan.reports.view import RunView

__all__ = ["benefit_figure", "map_figure", "panels", "simulation_table",
           "simulation_volumes_figure", "volumes_figure"]

OFFER = OKABE_ITO["blue"]
REASSIGN = OKABE_ITO["orange"]
CLIENT = OKABE_ITO["vermillion"]
PRODUCER = OKABE_ITO["bluish_green"]
POLICY_COLOURS = (OKABE_ITO["blue"], OKABE_ITO["orange"], OKABE_ITO["reddish_purple"],
                  OKABE_ITO["bluish_green"], OKABE_ITO["sky_blue"])


def _lines(xs: list[float], ys: list[float], x0: np.ndarray, y0: np.ndarray, x1: np.ndarray,
           y1: np.ndarray) -> None:
    for a, b, c, d in zip(x0, y0, x1, y1):
        xs += [float(a), float(c), math.nan]
        ys += [float(b), float(d), math.nan]


def map_figure(view: RunView) -> go.Figure:
    """Producers (size: volume gap) and clients (size: order value) with the offers as solid
    lines and the expected reassignments as dotted lines (width: probability)."""
    producers = view.table("producers")
    orders = view.table("orders")
    clients = view.table("instance_orders").set_index("order")
    where = producers.set_index("producer")[["x", "y"]]
    fig = go.Figure()
    offered = orders[orders["offered"] > 0]
    xs: list[float] = []
    ys: list[float] = []
    _lines(xs, ys, clients.loc[offered["order"], "x"].to_numpy(float),
           clients.loc[offered["order"], "y"].to_numpy(float),
           where.loc[offered["producer"], "x"].to_numpy(float),
           where.loc[offered["producer"], "y"].to_numpy(float))
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="offer (first stage)",
                             line={"color": OFFER, "width": 1.6}, hoverinfo="skip"))
    if view.has_table("reassignments"):
        re = view.table("reassignments")
        re = re[re["expected"] >= 0.05]
        xs, ys = [], []
        _lines(xs, ys, clients.loc[re["order"], "x"].to_numpy(float),
               clients.loc[re["order"], "y"].to_numpy(float),
               where.loc[re["producer"], "x"].to_numpy(float),
               where.loc[re["producer"], "y"].to_numpy(float))
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines",
                                 name="reassignment (probability >= 5 %)",
                                 line={"color": REASSIGN, "width": 1.0, "dash": "dot"},
                                 hoverinfo="skip"))
    value = clients["value"].to_numpy(float)
    fig.add_trace(go.Scatter(
        x=clients["x"], y=clients["y"], mode="markers", name="client (order)",
        marker={"color": CLIENT, "size": 6 + 10 * value / max(value.max(), 1.0),
                "symbol": "circle-open", "line": {"width": 2}},
        text=[f"order {o}: {money(v)}" for o, v in zip(clients.index, value)],
        hovertemplate="%{text}<extra></extra>"))
    gap = producers["gap"].to_numpy(float)
    fig.add_trace(go.Scatter(
        x=producers["x"], y=producers["y"], mode="markers+text", name="producer (size: gap)",
        marker={"color": PRODUCER, "size": 10 + 22 * np.sqrt(gap / max(gap.max(), 1.0)),
                "symbol": "square", "line": {"color": DARK_GREY, "width": 1}},
        text=[str(p) for p in producers["producer"]], textposition="top center",
        customdata=np.stack([gap, producers["rate"].to_numpy(float)], axis=1),
        hovertemplate="producer %{text}: gap $%{customdata[0]:,.0f}, rate "
        "%{customdata[1]:.2f}<extra></extra>"))
    fig.update_xaxes(title_text="x")
    fig.update_yaxes(title_text="y", scaleanchor="x", scaleratio=1)
    n = int((orders["offered"] > 0).sum())
    return style(fig, f"Offers on the map: {n} of {len(orders)} orders offered", 640,
                 hovermode="closest")


def benefit_figure(view: RunView) -> go.Figure:
    """Net benefit per scenario of the run (histogram, probability-weighted) and, after a
    simulation, per simulated day of each policy (box plots), $."""
    benefit = view.table("benefit")
    fig = go.Figure()
    fig.add_trace(go.Histogram(
        x=benefit["net_benefit"], y=benefit["probability"], histfunc="sum",
        name="scenarios of the run", marker_color=GREY, opacity=0.75,
        hovertemplate="%{x}: probability %{y:.3f}<extra></extra>"))
    if view.has_table("simulation_days"):
        days = view.table("simulation_days")
        for k, (policy, rows) in enumerate(days.groupby("policy", sort=False)):
            fig.add_trace(go.Box(
                x=rows["net_benefit"], name=str(policy), yaxis="y2", boxmean=True,
                marker_color=POLICY_COLOURS[k % len(POLICY_COLOURS)], orientation="h",
                hovertemplate="%{x:$,.0f}<extra>" + esc(policy) + "</extra>"))
        fig.update_layout(yaxis2={"overlaying": "y", "side": "right", "showticklabels": False})
    fig.update_xaxes(title_text="net benefit, $ (value - transport of what is shipped)",
                     tickformat="$,.0f")
    fig.update_yaxes(title_text="probability")
    mean = float(np.dot(benefit["probability"], benefit["net_benefit"]))
    return style(fig, f"Net benefit: {money(mean)} expected", 460, hovermode="closest")


def volumes_figure(view: RunView) -> go.Figure:
    """Each producer's current volume and the expected value shipped to it (accepted offers
    and reassignments) against its target (the marker), $."""
    p = view.table("producers")
    labels = [f"P{x}" for x in p["producer"]]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=labels, y=p["current"], name="current volume", marker_color=GREY,
                         hovertemplate="%{y:$,.0f}<extra>current</extra>"))
    fig.add_trace(go.Bar(x=labels, y=p["accepted_value"], name="accepted offers (expected)",
                         marker_color=OFFER, hovertemplate="%{y:$,.0f}<extra>accepted</extra>"))
    fig.add_trace(go.Bar(x=labels, y=p["reassigned_value"], name="reassignments (expected)",
                         marker_color=REASSIGN,
                         hovertemplate="%{y:$,.0f}<extra>reassigned</extra>"))
    fig.add_trace(go.Scatter(x=labels, y=p["target"], mode="markers", name="target",
                             marker={"symbol": "line-ew-open", "size": 26,
                                     "line": {"width": 3, "color": DARK_GREY}},
                             hovertemplate="%{y:$,.0f}<extra>target</extra>"))
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="volume, $", tickformat="$~s")
    return style(fig, "Producers' volumes against their targets", 460, hovermode="closest")


def simulation_volumes_figure(view: RunView) -> go.Figure:
    """Each producer's volume after a simulated day (current + mean value shipped) under each
    policy, against its target (the marker), $."""
    table = view.table("simulation_producers")
    fig = go.Figure()
    first = table.drop_duplicates("producer")
    labels = [f"P{x}" for x in first["producer"]]
    for k, (policy, rows) in enumerate(table.groupby("policy", sort=False)):
        fig.add_trace(go.Bar(x=[f"P{x}" for x in rows["producer"]], y=rows["volume_after"],
                             name=str(policy),
                             marker_color=POLICY_COLOURS[k % len(POLICY_COLOURS)],
                             hovertemplate="%{y:$,.0f}<extra>" + esc(policy) + "</extra>"))
    fig.add_trace(go.Scatter(x=labels, y=first["target"], mode="markers", name="target",
                             marker={"symbol": "line-ew-open", "size": 30,
                                     "line": {"width": 3, "color": DARK_GREY}},
                             hovertemplate="%{y:$,.0f}<extra>target</extra>"))
    fig.add_trace(go.Scatter(x=labels, y=first["current"], mode="markers",
                             name="current volume",
                             marker={"symbol": "line-ew-open", "size": 30,
                                     "line": {"width": 2, "color": GREY}},
                             hovertemplate="%{y:$,.0f}<extra>current</extra>"))
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="volume after the day, $", tickformat="$~s")
    return style(fig, "Producers' volumes by policy (simulated days)", 460,
                 hovermode="closest")


def simulation_table(view: RunView) -> str:
    """The simulated policies as an HTML table (numbers with
    ``data-kpi="simulation.<policy>.<measure>"``)."""
    sim = view.table("simulation")
    measures = [("acceptance_rate", "Acceptance rate", "{:.1%}"),
                ("offers", "Offers", "{:,.2f}"), ("reassignments", "Reassignments", "{:,.2f}"),
                ("shipped", "Orders shipped", "{:,.2f}"),
                ("net_benefit", "Net benefit", "${:,.2f}"),
                ("net_benefit_std", "Net benefit s.d.", "${:,.2f}"),
                ("transport", "Transport", "{:,.1f}"),
                ("public_benefit", "Public benefit figure", "${:,.2f}"),
                ("open_gap", "Open gap", "${:,.0f}"), ("gap_spread", "Gap spread", "${:,.0f}"),
                ("over_target", "Over target", "${:,.0f}")]
    head = "".join(f"<th>{esc(p)}</th>" for p in sim["policy"])
    rows = []
    for col, label, fmt in measures:
        cells = []
        for policy, value in zip(sim["policy"], sim[col]):
            v = float(value)
            text = fmt.format(v) if math.isfinite(v) else "n/a"
            cells.append(f"<td {kpi_attrs(f'simulation.{policy}.{col}', v)}>{esc(text)}</td>")
        rows.append(f"<tr><td>{esc(label)}</td>{''.join(cells)}</tr>")
    days = int(sim["days"].iloc[0])
    return (f'<table class="kpi"><caption>Simulated policies, means over {days} days'
            f"</caption><thead><tr><th>Measure</th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def panels(view: RunView) -> list[Panel]:
    """The map, the benefit distribution, the producers' volumes and a stored simulation."""
    out = [
        chart_panel("map", "Producer map and offers",
                    "Producers (squares, sized by their volume gap) and clients (circles, sized "
                    "by order value); solid lines: the first-stage offers; dotted: "
                    "reassignments expected in at least 5 % of the scenarios.",
                    lambda: map_figure(view)),
        chart_panel("benefit", "Net benefit distribution",
                    "Net benefit ($: value less transport of the orders shipped, less "
                    "reassignment costs) per scenario of the run, and per simulated day of "
                    "each policy after `stochplan simulate`.",
                    lambda: benefit_figure(view)),
        chart_panel("volumes", "Producers' volumes against targets",
                    "Current volume, plus the expected value of accepted offers and "
                    "reassignments, against the target volume ($).",
                    lambda: volumes_figure(view)),
    ]
    if view.has_table("simulation"):
        out.append(chart_panel(
            "simulation", "Simulated policies",
            "Each producer's volume after a simulated day (current volume plus the mean value "
            "shipped) under each policy, against its target; then the policies' measures, "
            "means per day. Every policy faces the same days.",
            lambda: simulation_volumes_figure(view), lambda: simulation_table(view)))
    return out
