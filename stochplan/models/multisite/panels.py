"""The multi-site family's dashboard panels, drawn from a stored run.

- ``site-profit``: expected profit by site as sorted horizontal bars (one row per site, the
  height grows with the number of sites so 100+ sites stay readable; labels every site);
- ``utilisation``: a heat map of machine utilisation, site x machine (and raw material as the
  last column), sites in the order of the profit bars;
- ``deterministic``: the deterministic (mean-value) plan's expected profit against the
  stochastic plan's, one point per site, with the diagonal: points above it are sites where
  planning for uncertainty pays (their VSS).

Everything is read from the stored tables of :mod:`.kpis` (``sites``, ``machines``);
nothing is solved. Money in $, utilisation as shares of what is available.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from stochplan.family import Panel
from stochplan.reports.figures import DARK_GREY, OKABE_ITO, style
from stochplan.reports.panels import chart_panel
from stochplan.reports.text import money
from stochplan.reports.view import RunView

__all__ = ["deterministic_figure", "panels", "site_profit_figure", "utilisation_figure"]

_ROW_PX = 16  # pixels per site row in the bar chart and heat map


def _sorted_sites(view: RunView) -> list[str]:
    sites = view.table("sites").sort_values("expected_profit", ascending=False)
    return [str(s) for s in sites["site"]]


def site_profit_figure(view: RunView) -> go.Figure:
    """Expected profit by site, sorted, best on top ($)."""
    sites = view.table("sites").sort_values("expected_profit", ascending=False)
    n = len(sites)
    fig = go.Figure(go.Bar(
        y=sites["site"].astype(str), x=sites["expected_profit"], orientation="h",
        marker_color=OKABE_ITO["blue"], hovertemplate="%{y}: %{x:$,.2f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category", tickfont={"size": 10},
                     dtick=1)
    fig.update_xaxes(title_text="expected profit, $ per week", tickformat="$~s")
    total = float(sites["expected_profit"].sum())
    return style(fig, f"Expected profit by site: {money(total)} over {n} sites",
                 max(300, 120 + _ROW_PX * n), hovermode="closest", legend_rows=0)


def utilisation_figure(view: RunView) -> go.Figure:
    """Machine utilisation per site and machine, and raw-material utilisation (share)."""
    order = _sorted_sites(view)
    machines = view.table("machines")
    grid = machines.pivot_table(index="site", columns="machine", values="utilisation",
                                aggfunc="sum", sort=False)
    grid.index = grid.index.astype(str)
    sites = view.table("sites").set_index("site")
    sites.index = sites.index.astype(str)
    grid["raw material"] = sites["raw_material_utilisation"]
    grid = grid.reindex(order)
    z = grid.to_numpy(float)
    fig = go.Figure(go.Heatmap(
        z=z, x=[str(c) for c in grid.columns], y=list(grid.index), zmin=0.0, zmax=1.0,
        colorscale=[[0.0, "#FFFFFF"], [1.0, OKABE_ITO["vermillion"]]],
        colorbar={"title": {"text": "share used"}, "tickformat": ".0%"}, xgap=1, ygap=1,
        text=np.vectorize(lambda v: "" if not np.isfinite(v) else f"{v:.0%}")(z),
        texttemplate="%{text}" if len(grid) <= 60 else None,
        hovertemplate="%{y}, %{x}: %{z:.1%}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category", tickfont={"size": 10}, dtick=1)
    return style(fig, "Utilisation by site: machines and raw material",
                 max(300, 120 + _ROW_PX * len(grid)), hovermode="closest", legend_rows=0)


def deterministic_figure(view: RunView) -> go.Figure:
    """Per site: the deterministic plan's expected profit (x) against the stochastic plan's
    (y), $; the dashed diagonal is equality."""
    sites = view.table("sites")
    det = sites["deterministic_profit"].to_numpy(float)
    sto = sites["expected_profit"].to_numpy(float)
    fig = go.Figure(go.Scatter(
        x=det, y=sto, mode="markers", text=sites["site"].astype(str),
        marker={"color": OKABE_ITO["bluish_green"], "size": 8},
        customdata=sites["vss"].to_numpy(float),
        hovertemplate="%{text}: stochastic %{y:$,.2f}, deterministic %{x:$,.2f}"
        "<br>VSS %{customdata:$,.2f}<extra></extra>"))
    finite = np.concatenate([det[np.isfinite(det)], sto[np.isfinite(sto)]])
    if finite.size:
        lo, hi = float(finite.min()), float(finite.max())
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", showlegend=False,
                                 line={"color": DARK_GREY, "dash": "dash", "width": 1},
                                 hoverinfo="skip"))
    fig.update_xaxes(title_text="deterministic plan, expected profit $", tickformat="$~s")
    fig.update_yaxes(title_text="stochastic plan, expected profit $", tickformat="$~s")
    vss = float(np.nansum(sites["vss"].to_numpy(float)))
    return style(fig, f"Deterministic against stochastic profit per site: VSS {money(vss)}",
                 520, hovermode="closest", legend_rows=0)


def panels(view: RunView) -> list[Panel]:
    """Profit by site, utilisation heat map, deterministic against stochastic profit."""
    return [
        chart_panel("site-profit", "Profit by site",
                    "Expected profit of each site over the scenarios ($ per week), best first.",
                    lambda: site_profit_figure(view)),
        chart_panel("utilisation", "Utilisation by site",
                    "Hours used / weekly hours per site and machine, and raw material used / "
                    "inventory; sites in the order of the profit bars.",
                    lambda: utilisation_figure(view)),
        chart_panel("deterministic", "Deterministic against stochastic profit",
                    "Each site's expected profit under the plan of the mean-value problem "
                    "(x) and under the stochastic plan (y), over the same scenarios; the "
                    "vertical distance to the diagonal is the site's VSS.",
                    lambda: deterministic_figure(view)),
    ]
