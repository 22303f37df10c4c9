"""The ``simulate`` command: a stored plan played day by day, beside the mean-value plan.

::

    stochplan simulate FAMILY --plan RUN --days D [--seed S] [--db PATH] [--json] [--quiet]

The days are D fresh scenarios of base seed S (default: the run's seed + 1) drawn from the
distribution the run's scenarios came from, as the run stored it (the same law ``evaluate``
samples by default: a three-point run of an instance that declares its named scenarios Poisson
draws at levels is simulated under that mixture, not plain Poisson), the same days for every
policy; day k depends on (S, k) only. A run stored without its distribution (by an older
stochplan) is simulated under its ``[scenarios]`` levels, with a note saying so. What the days
were drawn from is printed and stored ("simulated under: ...", columns ``simulated_under``,
``simulation_note`` and ``distribution`` of the ``simulation`` table). The policies are the
run's plan, the mean-value plan of the run's scenarios (its stored ``ev_plan`` when
``stochplan value`` stored one, else solved here with a zero MIP gap: EV problems have
near-ties) and whatever the family adds.
For each plan the model's second stage is solved for every day with the first stage fixed;
the family turns the solutions into its measures
(:meth:`stochplan.family.Family.simulate`). The tables are stored with the run (replacing an
earlier simulation's) and the policies are printed side by side. Nothing here names a family.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from stochplan.cli.common import (
    Progress,
    add_db_option,
    check_db,
    lock_timeout,
    print_json,
    resolve_run,
    run_argument,
    solving,
)
from stochplan.errors import InputError


def add_commands(sub: Any) -> None:
    """Add ``simulate`` to the ``stochplan`` command line."""
    sim = sub.add_parser(
        "simulate",
        help="simulate a stored plan day by day against the mean-value plan (and the "
        "family's own policies)",
        description="Play a stored run's first-stage plan over D simulated days (fresh "
        "scenarios of seed S, drawn from the distribution the run's scenarios came from), "
        "beside the mean-value plan and the policies the family adds, all on the same days; "
        "store the results with the run and print them.",
    )
    sim.add_argument("family", metavar="FAMILY", help="model family of the run")
    sim.add_argument("--plan", type=run_argument, required=True, metavar="RUN",
                     help="run id (see `stochplan runs`) or 'last'")
    sim.add_argument("--days", type=_positive, required=True, metavar="D",
                     help="number of simulated days")
    sim.add_argument("--seed", type=int, metavar="S",
                     help="base seed of the simulated days (default: the run's seed + 1)")
    add_db_option(sim)
    sim.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    sim.add_argument("--quiet", action="store_true", help="no progress display")
    sim.set_defaults(handler=simulate_command)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: a positive integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: a positive integer")
    return value


#: Columns ``simulate`` adds to the family's ``simulation`` table: where the days came from.
DISTRIBUTION_COLUMNS = ("simulated_under", "simulation_note", "distribution")


def simulate_command(args: argparse.Namespace) -> int:
    import json

    from stochplan.analysis.oos import fresh_scenarios, run_distribution
    from stochplan.analysis.value import solve_mean_value
    from stochplan.family import get_family
    from stochplan.solve.evaluate import evaluate_plan
    from stochplan.solve.solvers import SolverOptions
    from stochplan.store import ResultsStore

    family = get_family(args.family)
    if args.seed is not None and args.seed < 0:
        raise InputError("--seed", args.seed, "must be a non-negative integer")
    db = check_db(args.db, must_exist=True, writable=True)
    with ResultsStore(db, lock_timeout=lock_timeout()) as store:
        args.plan = resolve_run(store, args.plan)
        stored = store.get_run(args.plan)
    rec = stored.record
    if rec.family != family.name:
        raise InputError("--plan", args.plan, f"is a run of the {rec.family} family, not "
                         f"{family.name}")
    cfg = rec.config
    from stochplan.run import stored_instance

    inst = stored_instance(family, cfg, rec.instance)  # its input database, if any
    seed = args.seed if args.seed is not None else (rec.seed or 0) + 1
    law, note = run_distribution(cfg, family.uncertainty(inst), args.plan, verb="simulated",
                                 advice="Solve the run again to store it.")
    fresh = fresh_scenarios(family, inst, law, args.days, seed, note=note)
    days, kwargs, spec = fresh.scenarios, fresh.creator_kwargs, fresh.spec
    _, multipliers, weights = law.draw_args(args.days)
    exact = SolverOptions(mip_rel_gap=0.0)
    progress = Progress(enabled=not (args.quiet or args.json))
    plans = {f"stochastic (run {args.plan})": rec.plan}
    with solving(), progress:
        if "ev_plan" in rec.tables:
            plans["mean-value (EV)"] = rec.tables["ev_plan"]
        else:
            progress.phase("mean-value problem")
            scen_cfg = cfg.get("scenarios", {})
            own_mult = tuple(scen_cfg.get("multipliers") or (1.0,))
            own_weights = tuple(scen_cfg["weights"]) if scen_cfg.get("weights") else None
            own = family.scenario_set(inst, rec.scenarios, rec.seed, own_mult, own_weights)
            own_kwargs = family.creator_kwargs(inst, rec.scenarios, rec.seed, own_mult,
                                               own_weights)
            _, ev_plan, _, _ = solve_mean_value(family.module, own.names, own_kwargs, exact)
            plans["mean-value (EV)"] = ev_plan

        def recourse(plan: Any, options: Any = None) -> Any:
            progress.phase(f"second stage of {args.days} days")
            day_kwargs = kwargs
            if options:
                day_kwargs = family.creator_kwargs(family.with_options(inst, options), spec,
                                                   seed, multipliers, weights)
            solves = evaluate_plan(family.module, plan, days.names, day_kwargs, exact,
                                   keep_recourse=True)
            return solves.recourse

        progress.phase("simulate")
        result = family.simulate(inst, plans, days, recourse)
    kpis = {**result.headline, "sim_seed": float(seed)}
    tables = dict(result.tables)
    table = tables["simulation"].assign(simulated_under=fresh.text, simulation_note=fresh.note,
                                        distribution=json.dumps(law.to_dict()))
    tables["simulation"] = table
    with ResultsStore(db, lock_timeout=lock_timeout()) as store:
        store.attach(args.plan, tables, kpis)
    if args.json:
        print_json({"run_id": args.plan, "db": str(db), "seed": seed, "days": args.days,
                    "scenarios": spec, "simulated_under": fresh.text, "note": fresh.note,
                    "distribution": law.to_dict(),
                    "simulation": table.drop(columns=list(DISTRIBUTION_COLUMNS))
                    .to_dict(orient="records")})
        return 0
    print(f"run {args.plan}: {args.days} simulated days ({spec}, seed {seed}), stored with the "
          "run")
    print(f"  simulated under: {fresh.text}")
    if fresh.note:
        print(f"  {fresh.note}")
    print(format_table(table.drop(columns=list(DISTRIBUTION_COLUMNS))))
    return 0


def format_table(table: Any, label: str = "policy") -> str:
    """A table with one row per policy, printed transposed: one line per measure, one column
    per policy."""
    names = [str(x) for x in table[label]]
    width = max(16, *(len(n) + 2 for n in names))
    measures = [c for c in table.columns if c != label]
    lead = max(20, *(len(m) + 2 for m in measures))
    lines = [f"  {'':<{lead}}" + "".join(f"{n:>{width}}" for n in names)]
    for m in measures:
        cells = []
        for value in table[m]:
            cells.append(f"{_number(m, value):>{width}}")
        lines.append(f"  {m.replace('_', ' '):<{lead}}" + "".join(cells))
    return "\n".join(lines)


def _number(name: str, value: Any) -> str:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(x):
        return "n/a"
    if name.endswith("rate") or name.endswith("share"):
        return f"{x:.1%}"
    return f"{x:,.2f}"
