"""How many scenarios do I need? Sample average approximation (SAA) with a gap target.

    .venv/bin/python experiments/how_many_scenarios.py [--instance electronics]
        [--target-gap 0.005] [--start 10] [--max-n 640] [--batches 10] [--seed 0] [--out DIR]

Doubles the sample size N from ``--start``: solves the N-scenario SAA problem, then estimates
the optimality gap of its plan with the multiple-replication procedure (``--batches``
independent batches of N scenarios, seeds seed + 1 + b), and stops once the one-sided 95 %
upper confidence bound on the gap, relative to the plan's cost, is at most the target (or N
would pass ``--max-n``). This is :func:`stochplan.analysis.mrp.grow_sample`, the same as
``stochplan saa``. Demand: the instance's Poisson rates (``poisson:N``); model: the LP
relaxation with lost sales at $500 per unit (a model without relatively complete recourse
makes the procedure stop at once, naming the scenarios: see the README).

Writes ``how_many_scenarios.csv`` (one row per N: SAA objective, gap mean, half-width, upper
bound, relative upper bound, seconds) and ``how_many_scenarios.html`` (the figure, plotly
inline) to ``--out``; prints the table and whether the target was reached.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from stochplan.analysis.mrp import grow_sample
from stochplan.data import instance_family
from stochplan.family import get_family

#: Model options of every solve: LP, lost sales priced (complete recourse on shortage).
MODEL = {"integer": False, "lost_sales_penalty": 500.0}


def compute(instance: str, target: float, start: int, max_n: int, batches: int,
            seed: int) -> pd.DataFrame:
    """One row per sample size N of the SAA sequence (costs in $)."""
    family = get_family(instance_family(instance))
    inst = family.resolve(instance, MODEL)

    def sample(n: int) -> tuple[Any, dict[str, Any]]:
        return family.scenario_names_creator(n), family.creator_kwargs(inst, f"poisson:{n}", seed)

    def batches_for(n: int) -> Any:
        return lambda b: (family.scenario_names_creator(n),
                          family.creator_kwargs(inst, f"poisson:{n}", seed + 1 + b))

    steps, _ = grow_sample(family.module, sample, batches_for, target, start, max_n, batches)
    return pd.DataFrame([{
        "n": s.n, "objective": s.objective, "gap_mean": s.gap.mean,
        "gap_half_width": s.gap.half_width, "gap_upper": s.gap.upper,
        "relative_upper": s.gap.relative_upper, "min_batch_gap": min(s.gap.gaps),
        "seconds": s.seconds,
    } for s in steps])


def figure(table: pd.DataFrame, target: float, title: str) -> go.Figure:
    """The gap estimate with its confidence bound against N (left, against the target), and
    the SAA objective against N (right), from the table."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        "Optimality gap of the N-scenario plan (MRP, % of its cost)", "SAA objective, $"))
    cost = table["gap_upper"] / table["relative_upper"]
    fig.add_trace(go.Scatter(
        x=table["n"], y=100 * table["gap_mean"] / cost, name="gap estimate (mean of batches)",
        mode="lines+markers", hovertemplate="%{y:.3f} %"), row=1, col=1)
    fig.add_trace(go.Scatter(x=table["n"], y=100 * table["relative_upper"],
                             name="95 % upper bound", mode="lines+markers",
                             hovertemplate="%{y:.3f} %"), row=1, col=1)
    fig.add_hline(y=100 * target, line_dash="dash", annotation_text=f"target {target:.2%}",
                  row=1, col=1)
    fig.add_trace(go.Scatter(x=table["n"], y=table["objective"], name="SAA objective",
                             mode="lines+markers", hovertemplate="%{y:$,.0f}"), row=1, col=2)
    # one-sided interval [0, upper]: the mean and the bound, no symmetric error bars
    fig.update_xaxes(title_text="scenarios N", type="log", tickvals=list(table["n"]))
    fig.update_yaxes(title_text="% of the plan's cost", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="$", tickformat="$~s", row=1, col=2)
    fig.update_layout(title=title, height=480, template="plotly_white")
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    """Compute the SAA sequence, write it and its figure; exit status 0 if the target was
    reached, 1 if not."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instance", default="electronics")
    parser.add_argument("--target-gap", type=float, default=0.005,
                        help="relative gap target, a fraction (0.005 = 0.5 %%)")
    parser.add_argument("--start", type=int, default=10)
    parser.add_argument("--max-n", type=int, default=640)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results", help="folder of the CSV and HTML")
    args = parser.parse_args(argv)

    table = compute(args.instance, args.target_gap, args.start, args.max_n, args.batches,
                    args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "how_many_scenarios.csv", index=False)
    title = (f"{args.instance}: SAA to a {args.target_gap:.2%} gap bound ({args.batches} MRP "
             f"batches, seed {args.seed}, LP with lost sales at $500/unit)")
    figure(table, args.target_gap, title).write_html(out / "how_many_scenarios.html",
                                                     include_plotlyjs=True)
    reached = bool(table["relative_upper"].iloc[-1] <= args.target_gap)
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.4g}"))
    print(("target reached" if reached else "target NOT reached")
          + f" at N = {int(table['n'].iloc[-1])}; wrote {out / 'how_many_scenarios.html'}")
    return 0 if reached else 1


if __name__ == "__main__":
    sys.exit(main())
