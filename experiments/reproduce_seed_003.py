"""Reproduce seed 003's published results and compare them figure by figure.

    .venv/bin/python experiments/reproduce_seed_003.py [--db PATH]

Solves the electronics instance (three-point scenarios, integer), stores the run, and prints
the seed's figures next to stochplan's with the difference. Exit status 1 if any differs.
"""

from __future__ import annotations

import argparse
import sys

from stochplan.config import RunConfig
from stochplan.run import solve_instance, to_record
from stochplan.store import ResultsStore

#: (label, seed value, how to read it from the outcome, digits the seed prints)
PUBLISHED = [
    ("cumulative profit ($)", 2_476_316.00, lambda o: o.kpis.headline["profit"], 2),
    ("operating margin (%)", 81.4, lambda o: 100 * o.kpis.headline["operating_margin"], 1),
    ("labour share (%)", 79.25, lambda o: _share(o, "Labor (Reg)"), 2),
    ("production share (%)", 11.58, lambda o: _share(o, "Production"), 2),
    ("backorder share (%)", 1.63, lambda o: _share(o, "Backorder"), 2),
]
TABLE = {  # product: units produced, turnover, avg unit cost, profit margin %
    "A": (3045, 8.56, 51.09, 65.9),
    "B": (2702, 7.26, 61.72, 87.7),
    "C": (2464, 6.70, 98.27, 84.9),
}


def _share(outcome, category: str) -> float:
    comp = outcome.kpis.tables["composition"].set_index("category")
    return float(comp.loc[category, "percent"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None, help="results database (default ./stochplan.db)")
    args = parser.parse_args()

    outcome = solve_instance(RunConfig(instance="electronics"))
    with ResultsStore(args.db) as store:
        run_id = store.save_run(to_record(outcome))

    rows = [(label, seed, get(outcome), digits) for label, seed, get, digits in PUBLISHED]
    products = outcome.kpis.tables["products"].set_index("product")
    for p, (units, turnover, unit_cost, margin) in TABLE.items():
        row = products.loc[p]
        rows += [
            (f"{p} units produced", units, row["units_produced"], 0),
            (f"{p} turnover", turnover, row["turnover"], 2),
            (f"{p} avg unit cost ($)", unit_cost, row["avg_unit_cost"], 2),
            (f"{p} profit margin (%)", margin, 100 * row["profit_margin"], 1),
        ]
    failures = 0
    print(f"{'figure':<26}{'seed':>16}{'stochplan':>16}  match")
    for label, seed, ours, digits in rows:
        same = round(ours, digits) == round(seed, digits)
        failures += not same
        print(f"{label:<26}{seed:>16,.{digits}f}{ours:>16,.{digits}f}  {'yes' if same else 'NO'}")
    print(f"\nstored as run {run_id}; {len(rows) - failures} of {len(rows)} figures match")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
