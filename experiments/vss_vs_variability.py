"""How the value of the stochastic solution grows with demand variability.

    .venv/bin/python experiments/vss_vs_variability.py [--instance electronics]
        [--spreads 0,0.05,0.1,0.15,0.2,0.25] [--scenarios 50] [--seed 0] [--out DIR]

Demand is the instance's mixture: a level drawn per scenario, (1 - d, 1, 1 + d) x base demand
with probabilities 0.25/0.5/0.25, then Poisson. For each spread d the experiment draws the
same N scenarios (seed fixed, so only the levels change) and computes RP, EV, EEV and WS with
:func:`stochplan.analysis.value.value_report`, hence VSS = EEV - RP and EVPI = RP - WS
(minimisation). Model: the LP relaxation with lost sales at $500 per unit, so that every plan
has a recourse and EEV is finite (without lost sales the electronics mean-value plan is
infeasible in the higher levels and VSS is +inf; see the README). Lost sales do not cover
excess stock: at large spreads the mean-value plan can overfill the warehouse in a low-demand
scenario, and EEV = VSS = +inf again (the ``infeasible`` column counts those scenarios; the
figure leaves such spreads out of the VSS and EEV lines and says so).

Writes ``vss_vs_variability.csv`` (one row per spread) and ``vss_vs_variability.html`` (the
figure, plotly inline: it opens offline) to ``--out``; prints the table. Adapt it by changing
the instance, the model options (``MODEL``), or the levels in :func:`levels`.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from stochplan.analysis.value import value_report
from stochplan.data import instance_family
from stochplan.family import get_family

#: Model options of every solve: LP, lost sales priced (complete recourse on shortage).
MODEL = {"integer": False, "lost_sales_penalty": 500.0}
#: Probabilities of the low, middle and high demand levels.
WEIGHTS = (0.25, 0.5, 0.25)


def levels(spread: float) -> tuple[float, float, float]:
    """The demand levels (multipliers of the base Poisson rates) of a spread ``d``."""
    return (1.0 - spread, 1.0, 1.0 + spread)


def compute(instance: str, spreads: Sequence[float], n_scenarios: int, seed: int) -> pd.DataFrame:
    """RP, EV, EEV, WS, VSS and EVPI ($) per spread: one row each."""
    family = get_family(instance_family(instance))
    inst = family.resolve(instance, MODEL)
    spec = f"sample:{n_scenarios}"
    rows = []
    for d in spreads:
        scen = family.scenario_set(inst, spec, seed, levels(d), WEIGHTS)
        kwargs = family.creator_kwargs(inst, spec, seed, levels(d), WEIGHTS)
        report = value_report(family.module, scen.names, kwargs)
        rows.append({"spread": d, **report.kpis(), "infeasible": len(report.infeasible)})
    return pd.DataFrame(rows)


def figure(table: pd.DataFrame, title: str) -> go.Figure:
    """VSS and EVPI against the spread (left), and WS <= RP <= EEV (right), from the table."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        "Value of the stochastic solution and of perfect information",
        "Expected cost: wait-and-see, stochastic plan, mean-value plan"))
    x = 100 * table["spread"]
    finite = table.replace([math.inf, -math.inf], math.nan)  # +inf: left out, see the note
    for key, name in (("vss", "VSS = EEV − RP"), ("evpi", "EVPI = RP − WS")):
        fig.add_trace(go.Scatter(x=x, y=finite[key], name=name, mode="lines+markers",
                                 hovertemplate="%{y:$,.0f}"), row=1, col=1)
    for key, name in (("ws", "WS"), ("rp", "RP"), ("eev", "EEV")):
        fig.add_trace(go.Scatter(x=x, y=finite[key], name=name, mode="lines+markers",
                                 hovertemplate="%{y:$,.0f}"), row=1, col=2)
    bad = table[table["infeasible"] > 0]
    if len(bad):
        fig.add_annotation(
            text="EEV = VSS = +inf (mean-value plan infeasible in some scenario) at d = "
            + ", ".join(f"{100 * d:g} %" for d in bad["spread"]),
            xref="paper", yref="paper", x=0, y=-0.22, showarrow=False, align="left")
    fig.update_xaxes(title_text="demand level spread d (levels 1 − d, 1, 1 + d), %")
    fig.update_yaxes(title_text="$", tickformat="$~s")
    fig.update_layout(title=title, height=480, template="plotly_white")
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    """Compute the table, write it and its figure; exit status 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instance", default="electronics")
    parser.add_argument("--spreads", default="0,0.05,0.1,0.15,0.2,0.25",
                        help="comma-separated spreads d in [0, 1)")
    parser.add_argument("--scenarios", type=int, default=50, help="scenarios per spread")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results", help="folder of the CSV and HTML")
    args = parser.parse_args(argv)

    spreads = [float(s) for s in args.spreads.split(",")]
    table = compute(args.instance, spreads, args.scenarios, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "vss_vs_variability.csv", index=False)
    title = (f"{args.instance}: VSS against demand variability ({args.scenarios} scenarios "
             f"per spread, seed {args.seed}, LP with lost sales at $500/unit)")
    figure(table, title).write_html(out / "vss_vs_variability.html", include_plotlyjs=True)
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
    print(f"wrote {out / 'vss_vs_variability.csv'} and {out / 'vss_vs_variability.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
