"""Which solve method at which size: the extensive form against the L-shaped method.

    .venv/bin/python experiments/which_method.py [--instance electronics]
        [--sizes 50,200,1000] [--repeats 1] [--seed 0] [--out DIR]

For each scenario count S, solves the same S-scenario problem (``poisson:S``, seed fixed) by
the extensive form with HiGHS (``method="ef"``) and by the level-stabilised L-shaped method
(``method="lshaped"``, stopping at a relative gap of 1e-4), through
:func:`stochplan.run.solve_instance`, and times each (wall clock of the whole call, the best
of ``--repeats``). Model: the LP relaxation with lost sales at $500 per unit (the L-shaped
method takes LPs only). Both objectives must agree within the L-shaped gap; the table says by
how much they differ.

Writes ``which_method.csv`` (one row per S and method: seconds, objective, gap) and
``which_method.html`` (seconds against S, log-log, plotly inline) to ``--out``; prints the
table. On this 2-core machine the measured crossover is in ``benchmarks/RESULTS.md``
("Decomposition against the extensive form"); run this to find yours.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from stochplan.config import RunConfig, ScenarioConfig
from stochplan.run import solve_instance

#: Model options of every solve: LP, lost sales priced (complete recourse on shortage).
MODEL = {"integer": False, "lost_sales_penalty": 500.0}
METHODS = ("ef", "lshaped")


def compute(instance: str, sizes: Sequence[int], seed: int, repeats: int = 1) -> pd.DataFrame:
    """One row per (S, method): ``seconds`` (best of ``repeats``), ``objective`` ($),
    ``gap`` (the method's reported relative gap) and ``rel_diff`` (|objective - EF's| / EF's)."""
    # untimed warm-up of both methods: the first solve of a process also pays for imports
    for method in METHODS:
        solve_instance(RunConfig(instance=instance, method=method, model=dict(MODEL),
                                 scenarios=ScenarioConfig(spec="poisson:2", seed=seed)))
    rows = []
    for n in sizes:
        ef_objective = None
        for method in METHODS:
            config = RunConfig(instance=instance, method=method, model=dict(MODEL),
                               scenarios=ScenarioConfig(spec=f"poisson:{n}", seed=seed))
            best = float("inf")
            outcome = None
            for _ in range(max(1, repeats)):
                start = time.perf_counter()
                outcome = solve_instance(config)
                best = min(best, time.perf_counter() - start)
            assert outcome is not None  # not under MPI
            objective = float(outcome.result.objective or float("nan"))
            if method == "ef":
                ef_objective = objective
            assert ef_objective is not None
            rows.append({"scenarios": n, "method": method, "seconds": best,
                         "objective": objective, "gap": outcome.result.gap,
                         "rel_diff": abs(objective - ef_objective) / abs(ef_objective)})
    return pd.DataFrame(rows)


def figure(table: pd.DataFrame, title: str) -> go.Figure:
    """Seconds against the scenario count, one line per method, from the table."""
    names = {"ef": "extensive form (HiGHS)", "lshaped": "L-shaped (level-stabilised)"}
    fig = go.Figure()
    for method, rows in table.groupby("method", sort=False):
        fig.add_trace(go.Scatter(x=rows["scenarios"], y=rows["seconds"], mode="lines+markers",
                                 name=names.get(str(method), str(method)),
                                 hovertemplate="%{y:.2f} s at %{x} scenarios"))
    fig.update_xaxes(title_text="scenarios S", type="log",
                     tickvals=sorted(set(table["scenarios"])))
    fig.update_yaxes(title_text="seconds (wall clock, whole solve)", type="log")
    fig.update_layout(title=title, height=480, template="plotly_white")
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    """Time both methods at each size, write the table and its figure; exit status 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instance", default="electronics")
    parser.add_argument("--sizes", default="50,200,1000", help="comma-separated scenario counts")
    parser.add_argument("--repeats", type=int, default=1, help="timings per solve (best kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results", help="folder of the CSV and HTML")
    args = parser.parse_args(argv)

    sizes = [int(s) for s in args.sizes.split(",")]
    table = compute(args.instance, sizes, args.seed, args.repeats)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "which_method.csv", index=False)
    title = (f"{args.instance}: extensive form against L-shaped (LP with lost sales, "
             f"poisson:S, seed {args.seed})")
    figure(table, title).write_html(out / "which_method.html", include_plotlyjs=True)
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.6g}"))
    print(f"wrote {out / 'which_method.csv'} and {out / 'which_method.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
