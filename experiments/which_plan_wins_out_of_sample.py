"""Which plan wins out of sample: the stochastic plan or the mean-value plan, and under what.

    .venv/bin/python experiments/which_plan_wins_out_of_sample.py [--instance electronics]
        [--draws 2000] [--seed 1] [--relax] [--out DIR]

The instance's three-point problem (its named scenarios) is solved with lost sales at $500 per
unit (``MODEL``), and RP, EV, EEV and VSS are computed in sample
(:func:`stochplan.analysis.value.value_report`). Then both plans, the stochastic one (RP) and
the mean-value one (EV), are evaluated on the same fresh draws of two distributions:

- the run's own distribution, the one ``stochplan evaluate RUN`` samples by default
  (:func:`stochplan.scenarios.distribution_of` of the named scenarios: for electronics the
  seed's mixture, a level 0.8/1.0/1.2 x base demand with probabilities 0.25/0.5/0.25, then
  Poisson, which its ``instance.toml`` declares with ``named_levels``);
- plain Poisson around base demand, which ``evaluate`` drew before (and which is what
  ``evaluate RUN --scenarios poisson:M`` draws now, as an explicit choice).

Per distribution and plan: the mean cost with its 95 % CI, the probability that the plan has
no feasible recourse (lost sales cover shortage, not excess stock: a plan that overfills the
warehouse when demand is low is infeasible there, and its mean cost is +inf), the mean where
feasible; per distribution, the paired difference mean-value minus stochastic over the draws
where both are feasible, and which plan wins as measured: the lower mean cost (a plan
infeasible in some draw loses to one that is not), "neither" when the paired 95 % CI holds 0.

Writes ``which_plan_wins.csv`` (one row per distribution) and ``which_plan_wins.html`` (the
figure, plotly inline: it opens offline) to ``--out``; prints the table. Adapt it by changing
the instance, the model options (``MODEL``) or the distributions in :func:`distributions`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from stochplan.analysis.oos import evaluate_plans, fresh_scenarios
from stochplan.analysis.value import value_report
from stochplan.data import instance_family
from stochplan.family import get_family
from stochplan.metrics.stats import mean_std_ci
from stochplan.scenarios import Distribution, distribution_of

#: Model options of every solve: lost sales priced at $500 per unit.
MODEL: dict[str, Any] = {"lost_sales_penalty": 500.0}
PLANS = ("stochastic", "mean-value")


def distributions(unc: Any) -> list[tuple[str, Distribution]]:
    """The distributions the plans are evaluated under: the run's own (as a three-point run
    stores it) and plain Poisson around the rates."""
    own = distribution_of(unc, "named", None)
    plain = distribution_of(unc, "poisson:1", None)
    assert own is not None and plain is not None
    return [("run's distribution", own),
            ("plain Poisson", dataclasses.replace(plain, basis="chosen"))]


def compute(instance: str, draws: int, seed: int, relax: bool) -> tuple[pd.DataFrame, dict]:
    """One row per distribution (costs in $); and the in-sample value report's KPIs."""
    family = get_family(instance_family(instance))
    inst = family.resolve(instance, {**MODEL, **({"integer": False} if relax else {})})
    named = family.scenario_set(inst, "named")
    report = value_report(family.module, named.names, family.creator_kwargs(inst, "named"))
    assert report.rp_result is not None
    plans = [(PLANS[0], report.rp_result.plan), (PLANS[1], report.ev_plan)]
    rows = []
    for label, law in distributions(family.uncertainty(inst)):
        fresh = fresh_scenarios(family, inst, law, draws, seed)
        results = evaluate_plans(family, inst, plans, fresh)
        row: dict[str, Any] = {"distribution": label, "evaluated_under": fresh.text}
        costs = {}
        for oos, _ in results:
            s, key = oos.summary, oos.label.replace("-", "_")
            costs[oos.label] = np.asarray(oos.solves.objective, dtype=float)
            finite = costs[oos.label][np.isfinite(costs[oos.label])]
            _, _, f_lo, f_hi = mean_std_ci(finite)
            row.update({f"{key}_mean": s.mean, f"{key}_ci_low": s.ci_low,
                        f"{key}_ci_high": s.ci_high, f"{key}_p_infeasible": s.prob_infeasible,
                        f"{key}_feasible_mean": s.feasible_mean,
                        f"{key}_feasible_ci_low": f_lo, f"{key}_feasible_ci_high": f_hi})
        both = np.isfinite(costs[PLANS[0]]) & np.isfinite(costs[PLANS[1]])
        diff_mean, _, diff_lo, diff_hi = mean_std_ci(costs[PLANS[1]][both] - costs[PLANS[0]][both])
        row.update({"diff_mean": diff_mean, "diff_ci_low": diff_lo, "diff_ci_high": diff_hi,
                    "n": draws, "winner": winner(row, diff_lo, diff_hi),
                    "why": why(row, diff_lo, diff_hi)})
        rows.append(row)
    return pd.DataFrame(rows), report.kpis()


def winner(row: dict[str, Any], diff_lo: float, diff_hi: float) -> str:
    """The plan with the lower mean cost (minimisation); a plan infeasible in some draw (mean
    +inf) loses to one that is not; "neither" when both are, or when the paired 95 % CI of
    mean-value minus stochastic holds 0."""
    sto, ev = row["stochastic_mean"], row["mean_value_mean"]
    if math.isinf(sto) and math.isinf(ev):
        return "neither"
    if math.isinf(sto) or math.isinf(ev):
        return PLANS[1] if math.isinf(sto) else PLANS[0]
    if diff_lo > 0:
        return PLANS[0]
    if diff_hi < 0:
        return PLANS[1]
    return "neither"


def why(row: dict[str, Any], diff_lo: float, diff_hi: float) -> str:
    """The reason :func:`winner` gives, in words."""
    bad = [f"the {plan} plan has no feasible recourse in {row[f'{key}_p_infeasible']:.1%} of "
           "draws" for plan, key in zip(PLANS, ("stochastic", "mean_value"))
           if math.isinf(row[f"{key}_mean"])]
    if bad:
        return "; ".join(bad)
    if diff_lo > 0 or diff_hi < 0:
        return "lower mean cost; the paired 95 % CI of the difference excludes 0"
    return "the paired 95 % CI of the difference holds 0"


def figure(table: pd.DataFrame, title: str) -> go.Figure:
    """Mean cost where feasible (95 % CI) of each plan under each distribution, with the
    probability of no feasible recourse written on the bars."""
    fig = go.Figure()
    for plan in PLANS:
        key = plan.replace("-", "_")
        mean = table[f"{key}_feasible_mean"]
        fig.add_trace(go.Bar(
            x=table["distribution"], y=mean, name=f"{plan} plan",
            error_y={"type": "data", "symmetric": False,
                     "array": table[f"{key}_feasible_ci_high"] - mean,
                     "arrayminus": mean - table[f"{key}_feasible_ci_low"]},
            text=[f"P(infeasible) {p:.1%}" for p in table[f"{key}_p_infeasible"]],
            hovertemplate="%{y:$,.0f}"))
    notes = "<br>".join(f"{r.distribution}: {r.evaluated_under}; wins: {r.winner}"
                        for r in table.itertuples())
    fig.add_annotation(text=notes, xref="paper", yref="paper", x=0, y=-0.25, showarrow=False,
                       align="left")
    fig.update_yaxes(title_text="mean cost where feasible, $ (95 % CI)", tickformat="$~s")
    fig.update_layout(title=title, barmode="group", height=520, template="plotly_white",
                      margin={"b": 140})
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    """Compute the table, write it and its figure; exit status 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instance", default="electronics")
    parser.add_argument("--draws", type=int, default=2000, help="fresh draws per distribution")
    parser.add_argument("--seed", type=int, default=1, help="seed of the fresh draws")
    parser.add_argument("--relax", action="store_true", help="solve the LP relaxation")
    parser.add_argument("--out", default="results", help="folder of the CSV and HTML")
    args = parser.parse_args(argv)

    table, kpis = compute(args.instance, args.draws, args.seed, args.relax)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "which_plan_wins.csv", index=False)
    kind = "LP relaxation" if args.relax else "integer"
    title = (f"{args.instance}, three-point plans ({kind}, lost sales $500/unit): in sample "
             f"VSS = {kpis['vss']:,.0f}; out of sample, {args.draws} draws per distribution")
    figure(table, title).write_html(out / "which_plan_wins.html", include_plotlyjs=True)
    print(f"in sample: RP {kpis['rp']:,.2f}  EEV {kpis['eev']:,.2f}  VSS {kpis['vss']:,.2f}")
    for r in table.itertuples():
        print(f"{r.distribution}: evaluated under: {r.evaluated_under}")
        for plan in PLANS:
            key = plan.replace("-", "_")
            print(f"  {plan:<11} mean {getattr(r, f'{key}_mean'):>14,.2f}  "
                  f"P(infeasible) {getattr(r, f'{key}_p_infeasible'):6.1%}  "
                  f"mean where feasible {getattr(r, f'{key}_feasible_mean'):>14,.2f}")
        print(f"  mean-value minus stochastic (paired, both feasible) {r.diff_mean:,.2f} "
              f"[{r.diff_ci_low:,.2f}, {r.diff_ci_high:,.2f}]  wins: {r.winner} ({r.why})")
    print(f"wrote {out / 'which_plan_wins.csv'} and {out / 'which_plan_wins.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
