"""The cost of risk aversion: solving under mean-CVaR against solving for the expectation.

Electronics, LP relaxation, lost sales at $500/unit (complete recourse), Poisson scenarios
with seed 0. For each scenario count S, each cell in its own process (this file is also the
child: ``python risk.py child METHOD S MEASURE``), through ``stochplan.run.solve_instance``
(what ``stochplan solve`` runs):

- EF: the extensive form with HiGHS (matrix backend, dual simplex with devex pricing, the
  default), risk-neutral and under 0.5 E + 0.5 CVaR_95% (the Rockafellar-Uryasev form: one
  more first-stage column, one more column and row per scenario, the row holding the
  recourse cost's columns; from 200 scenarios solved classified, with the tail rows of the
  scenarios near the value at risk only, ``stochplan.solve.cvar_ef``). With the whole form
  the EF cells at S = 1000 took 3.7 s and 6.6 s (1.81x, commit 258a679); with HiGHS's
  steepest-edge pricing before that (commit ea68424) 6.4 s and 10.2 s (1.59x);
- L-shaped: serial, gap target 0.01 %, risk-neutral and under the same measure (the measure
  is taken by the method itself: per iteration one aggregated CVaR cut and one cut per tail
  scenario besides the expectation's).

A risk-averse EF run reads each scenario's cost off its own solution for the in-sample
expectation, VaR and CVaR (``stochplan.solve.risk.risk_result``; it solved every scenario
again at the plan before, 0.9 s at S = 1000; the L-shaped method measures its own plans);
that time is counted (column "plan re-evaluation").
Times are wall seconds from just after the imports (scenario generation included); each
cell's CPU seconds over the same span give a second ratio.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ALPHA, WEIGHT = 0.95, 0.5
MODEL = {"integer": False, "lost_sales_penalty": 500.0}
#: Goal of issue 17: a risk-averse solve within this factor of the risk-neutral one.
GOAL_RATIO = 1.5


def _child(argv: list[str]) -> None:
    method, n, measure = argv[0], int(argv[1]), argv[2]
    from stochplan.config import load_config
    from stochplan.run import solve_instance

    risk = {"measure": measure, "alpha": ALPHA, "weight": WEIGHT}
    config = load_config(instance="electronics", method=method, model=MODEL,
                         scenarios={"spec": f"poisson:{n}", "seed": 0}, risk=risk,
                         lshaped={"rel_gap": 1e-4})
    start, cpu = time.perf_counter(), time.process_time()
    outcome = solve_instance(config)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert outcome is not None
    out = {"wall": wall, "cpu": cpu, "objective": outcome.result.objective,
           "gap": outcome.result.gap, "status": outcome.result.status, "timings": outcome.timings,
           "iterations": outcome.result.info.get("iterations"),
           "cvar_rounds": outcome.result.info.get("cvar_rounds"),
           "cvar_tail_rows": outcome.result.info.get("cvar_tail_rows")}
    out.update({k: v for k, v in outcome.kpis.headline.items() if k.startswith("risk_")})
    print(json.dumps(out, default=float))


def run(sizes: tuple[int, ...], workdir: Path, smoke: bool) -> Any:
    from decomposition import _run
    from registry import Outcome

    rows = []
    for n in sizes:
        for method in ("ef", "lshaped"):
            cells = {m: _run([sys.executable, str(HERE), "child", method, str(n), m],
                             timeout=3600) for m in ("expectation", "cvar")}
            neutral, averse = cells["expectation"], cells["cvar"]
            ratio = (averse["wall"] / neutral["wall"]
                     if "wall" in averse and "wall" in neutral else None)
            cpu_ratio = (averse["cpu"] / neutral["cpu"]
                         if "cpu" in averse and "cpu" in neutral else None)
            row = {"S": n, "method": method, "neutral": neutral, "cvar": averse,
                   "ratio": ratio, "cpu_ratio": cpu_ratio}
            rows.append(row)
            print(f"  S={n} {method}: neutral {neutral.get('wall', neutral.get('error'))} s, "
                  f"CVaR {averse.get('wall', averse.get('error'))} s", flush=True)
    return Outcome(rows, report(rows), {"ratio_at_most": GOAL_RATIO})


def _s(x: Any) -> str:
    return "—" if x is None else f"{x:,.1f}"


def report(rows: list[dict[str, Any]]) -> str:
    lines = ["| S | method | risk-neutral s | mean-CVaR s | ratio | CPU ratio | iterations (EF: "
             "classified rounds) | "
             "of which plan re-evaluation s | expected cost, neutral plan | expected cost, "
             "CVaR plan | CVaR 95 %, CVaR plan |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a, b = r["neutral"], r["cvar"]
        if "error" in a or "error" in b:
            lines.append(f"| {r['S']} | {r['method']} | {_s(a.get('wall'))} | "
                         f"{_s(b.get('wall'))} | — | — | — | — | "
                         f"{a.get('error') or b.get('error')} | | |")
            continue
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "—"
        cpu_ratio = f"{r['cpu_ratio']:.2f}x" if r.get("cpu_ratio") is not None else "—"
        its = (f"{a['iterations']} / {b['iterations']}" if a.get("iterations") is not None
               else f"{b['cvar_rounds']} rounds, {b['cvar_tail_rows']} of {r['S']} tail rows"
               if b.get("cvar_rounds") is not None else "—")
        lines.append(
            f"| {r['S']} | {r['method']} | {_s(a['wall'])} | {_s(b['wall'])} | {ratio} | "
            f"{cpu_ratio} | {its} | {_s(b['timings'].get('risk'))} | {a['objective']:,.0f} | "
            f"{b.get('risk_expected', float('nan')):,.0f} | "
            f"{b.get('risk_cvar', float('nan')):,.0f} |")
    goal = (f"Goal (issue 17): the mean-CVaR solve within {GOAL_RATIO}x of the risk-neutral "
            "one at S = 1000. The CPU ratio (each cell's process time) is steadier than the "
            "wall ratio when other jobs share the machine. The risk-neutral plan's CVaR is "
            "not computed here (`stochplan evaluate` or a frontier's weight-0 point gives it).")
    verdicts = [f"{r['method']} {r['ratio']:.2f}x, "
                f"{'met' if r['ratio'] <= GOAL_RATIO else 'NOT met'}"
                for r in rows if r["S"] == 1000 and r["ratio"] is not None]
    if verdicts:
        goal += " At S = 1000: " + "; ".join(verdicts) + "."
    return "\n".join(lines) + "\n\n" + goal + "\n"


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "child":
    _child(sys.argv[2:])
else:
    from registry import Spec, register

    register(Spec(
        name="risk",
        title="The cost of risk aversion: mean-CVaR against the expectation",
        sizes=(100, 1000),
        smoke=(5,),
        run=run,
        description=__doc__ or "",
    ))
