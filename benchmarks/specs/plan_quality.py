"""Plan quality: the deterministic mean-value plan against stochastic plans, out of sample.

Variants of the electronics instance (LP relaxation): demand variability low / medium / high
(scenario-level Poisson rate multipliers 0.9-1.1, 0.8-1.2 (the seed's), 0.6-1.4 with weights
0.25/0.5/0.25), warehouse capacity tight (the seed's 1000 + 500 space units) or loose (3x),
with or without lost sales at $1000/unit. Plans: EV (the mean-demand plan) and stochastic
plans from N = 3, 30, 300 Poisson scenarios (seed 0), all evaluated on the same M fresh
scenarios (seed 10,000); the wait-and-see cost on those scenarios bounds what any plan can do.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
from registry import Outcome, Spec, register

from stochplan.analysis.oos import out_of_sample
from stochplan.analysis.value import solve_mean_value
from stochplan.errors import InfeasibleError
from stochplan.models import aggregate
from stochplan.models.aggregate.kpis import fill_rate
from stochplan.solve.ef import solve_ef
from stochplan.solve.evaluate import wait_and_see

VARIABILITY = {"low": (0.9, 1.0, 1.1), "medium": (0.8, 1.0, 1.2), "high": (0.6, 1.0, 1.4)}
WEIGHTS = (0.25, 0.5, 0.25)
PLAN_SEED, OOS_SEED = 0, 10_000


def variant(capacity: str, lost_sales: bool) -> aggregate.AggregateInstance:
    inst = aggregate.resolve("electronics", {"integer": False})
    if capacity == "loose":
        inst = dataclasses.replace(inst, regular_capacity=3 * inst.regular_capacity)
        inst = inst.with_options(overflow_capacity=3 * inst.options.overflow_capacity)
    if lost_sales:
        inst = inst.with_options(lost_sales_penalty=1000.0)
    return inst


def evaluate_variant(inst, multipliers, ns, m) -> list[dict]:
    def kw(spec, seed):
        return aggregate.creator_kwargs(inst, spec, seed, multipliers, WEIGHTS)

    oos_spec = f"poisson:{m}"
    oos_names = aggregate.scenario_names_creator(m)
    oos_kw = kw(oos_spec, OOS_SEED)
    oos_set = aggregate.scenario_set(inst, oos_spec, OOS_SEED, multipliers, WEIGHTS)
    plans = [("EV (mean demand)",
              solve_mean_value(aggregate, ["scen0"], kw(f"poisson:{max(ns)}", PLAN_SEED),
                               _solver())[1])]
    for n in ns:
        names = aggregate.scenario_names_creator(n)
        try:
            plan = solve_ef(aggregate, names, kw(f"poisson:{n}", PLAN_SEED)).plan
        except InfeasibleError:
            plan = None  # no first stage serves every sampled scenario (no complete recourse)
        plans.append((f"stochastic N={n}", plan))
    ws = wait_and_see(aggregate, oos_names, oos_kw)
    ws_mean = ws.expected()
    rows = []
    for label, plan in plans:
        if plan is None:
            rows.append({"plan": label, "mean": math.nan, "ci_low": math.nan,
                         "ci_high": math.nan, "feasible_mean": math.nan,
                         "prob_infeasible": math.nan, "fill_rate": math.nan, "cvar95": math.nan,
                         "ws_mean": ws_mean, "saa_infeasible": True})
            continue
        oos = out_of_sample(aggregate, plan, oos_names, oos_kw, label, keep_recourse=True)
        ok = [i for i, c in enumerate(oos.solves.objective) if math.isfinite(c)]
        fill = math.nan
        if ok and oos.solves.recourse is not None:
            sub = oos_set.subset(ok)
            arrays = aggregate.recourse_arrays(oos.solves.recourse, inst, sub.names)
            fill = fill_rate(sub.demand, arrays["B"], arrays.get("L"), sub.probabilities)
        s = oos.summary
        rows.append({"plan": label, "mean": s.mean, "ci_low": s.ci_low, "ci_high": s.ci_high,
                     "feasible_mean": s.feasible_mean, "prob_infeasible": s.prob_infeasible,
                     "fill_rate": fill, "cvar95": s.cvar, "ws_mean": ws_mean,
                     "saa_infeasible": False})
    ev_mean = rows[0]["mean"]
    solved = [r for r in rows[1:] if not r["saa_infeasible"]]
    best = min(solved, key=lambda r: r["mean"]) if solved else None
    for r in rows:
        r["vss"] = ev_mean - r["mean"] if r is not rows[0] else 0.0
        r["vss_pct"] = 100.0 * r["vss"] / ev_mean if math.isfinite(ev_mean) else math.inf
        r["evpi"] = r["mean"] - ws_mean
        r["best_stochastic"] = r is best
    return rows


def _solver():
    from stochplan.solve.solvers import SolverOptions

    return SolverOptions()


def run(sizes: tuple, workdir: Path, smoke: bool) -> Outcome:
    m = 100 if smoke else 2000
    ns = tuple(sizes)
    grid = [("medium", "tight", True)] if smoke else list(
        itertools.product(VARIABILITY, ("tight", "loose"), (False, True)))
    rows = []
    for variability, capacity, lost in grid:
        inst = variant(capacity, lost)
        for r in evaluate_variant(inst, VARIABILITY[variability], ns, m):
            rows.append({"variability": variability, "capacity": capacity,
                         "lost_sales": lost, **r})
        print(f"  plan-quality {variability}/{capacity}/{'lost sales' if lost else 'no lost sales'}"
              " done", flush=True)
    frame = pd.DataFrame(rows)
    html = workdir / "plan_quality.html"
    _figure(frame, html)

    def money(x):
        if math.isnan(x):
            return "—"
        return f"{x:,.0f}" if math.isfinite(x) else "inf"

    lines = [f"M = {m} out-of-sample scenarios per variant; costs in $; 95 % intervals. "
             f"Figure: `{html.name}` (written next to the results when run).", "",
             "| variability | capacity | lost sales | plan | mean cost [95 % CI] | VSS ($) "
             "| VSS (%) | EVPI ($) | fill rate | P(infeasible) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["saa_infeasible"]:
            ci = "no plan: the N-scenario problem is infeasible"
        elif math.isfinite(r["mean"]):
            ci = f"{money(r['mean'])} [{money(r['ci_low'])}, {money(r['ci_high'])}]"
        else:
            ci = f"inf (feasible mean {money(r['feasible_mean'])})"
        lines.append(f"| {r['variability']} | {r['capacity']} "
                     f"| {'yes' if r['lost_sales'] else 'no'} "
                     f"| {r['plan']} | {ci} | {money(r['vss'])} | "
                     f"{_pct(r['vss_pct'])} | {money(r['evpi'])} | {_pct(100 * r['fill_rate'])} | "
                     f"{_pct(100 * r['prob_infeasible'])} |")
    lines += ["", "VSS = mean cost of the EV plan - mean cost of the plan (out of sample); "
              "EVPI = the plan's mean cost - the wait-and-see mean on the same scenarios. "
              "An infinite mean: the plan has no feasible recourse in some scenarios (no lost "
              "sales, and the backorder cap binds). \"No plan\": without lost sales, no single "
              "first stage serves every sampled scenario (a high-demand sample needs production "
              "that a low-demand one has no room to store)."]
    return Outcome(rows, "\n".join(lines))


def _pct(x: float) -> str:
    return "—" if math.isnan(x) else ("inf" if math.isinf(x) else f"{x:.2f} %")


def _figure(frame: pd.DataFrame, path: Path) -> None:
    import plotly.graph_objects as go

    fig = go.Figure()
    palette = ["#000000", "#E69F00", "#56B4E9", "#009E73", "#D55E00", "#0072B2"]
    frame = frame.assign(variant=frame["variability"] + " / " + frame["capacity"] + " / "
                         + np.where(frame["lost_sales"], "lost sales", "no lost sales"))
    for i, (plan, part) in enumerate(frame.groupby("plan", sort=False)):
        finite = part[np.isfinite(part["mean"])]
        fig.add_bar(name=plan, x=finite["variant"], y=finite["mean"],
                    marker_color=palette[i % len(palette)],
                    error_y={"type": "data", "symmetric": False,
                             "array": finite["ci_high"] - finite["mean"],
                             "arrayminus": finite["mean"] - finite["ci_low"]})
    fig.update_layout(title="Out-of-sample expected cost by plan "
                            "(95 % CI; infeasible plans omitted)",
                      barmode="group", yaxis_title="expected cost ($)", xaxis_title="variant",
                      template="plotly_white")
    fig.write_html(path, include_plotlyjs=True)


register(Spec(
    name="plan-quality",
    title="Plan quality: deterministic against stochastic",
    sizes=(3, 30, 300),
    smoke=(3, 30),
    run=run,
    description=__doc__.strip().splitlines()[0],
))
