"""CLI commands of the analysis: ``value``, ``evaluate`` and ``saa``.

::

    stochplan value INSTANCE [--scenarios SPEC] [--seed S] [--relax] [--integer-policy round|relax]
    stochplan value --module MODULE --num-scens N [--set KEY=VALUE ...]
    stochplan evaluate RUN [--scenarios poisson:M] [--seed S]
    stochplan saa INSTANCE --target-gap 0.5% [--start N] [--max-n N] [--batches B] [--seed S]

Every command stores what it computed in the results database with the run it belongs to, and
``--json`` prints one JSON object. Under ``mpiexec`` the scenario solves are spread over the
ranks; only rank 0 prints and writes.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import tomllib
from typing import Any

import pandas as pd

from stochplan.cli import Progress, _captured_stdout, _json_safe
from stochplan.errors import InputError


def add_commands(sub: Any) -> None:
    value = sub.add_parser("value", help="RP, EV, EEV, WS, VSS and EVPI of an instance or module")
    value.add_argument("instance", nargs="?", metavar="INSTANCE",
                       help="built-in instance or instance folder (or use --module)")
    value.add_argument("--module", metavar="MODULE",
                       help="an importable module following mpi-sppy's contract")
    value.add_argument("--num-scens", type=int, metavar="N", help="scenarios of --module")
    value.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="a --module option (as its inparser_adder names it)")
    value.add_argument("--scenarios", metavar="SPEC", help="three-point, poisson:N or qmc:N")
    value.add_argument("--seed", type=int, metavar="S")
    value.add_argument("--relax", action="store_true", help="LP relaxation")
    value.add_argument("--integer-policy", choices=("round", "relax"), default="round",
                       help="EV of an integer model with fractional mean demand (default round)")
    _common(value)
    value.set_defaults(handler=_value)

    evaluate = sub.add_parser("evaluate", help="evaluate a stored run's plan out of sample")
    evaluate.add_argument("run", type=int, metavar="RUN")
    evaluate.add_argument("--scenarios", default="poisson:2000", metavar="SPEC",
                          help="fresh scenarios (default poisson:2000)")
    evaluate.add_argument("--seed", type=int, metavar="S",
                          help="seed of the fresh scenarios (default: the run's seed + 1)")
    evaluate.add_argument("--cvar-level", type=float, default=0.95, metavar="A")
    _common(evaluate, config=False)
    evaluate.set_defaults(handler=_evaluate)

    saa = sub.add_parser("saa", help="grow N until the optimality gap's confidence bound is small")
    saa.add_argument("instance", metavar="INSTANCE")
    saa.add_argument("--target-gap", required=True, metavar="G",
                     help="relative gap target, e.g. 0.5%% or 0.005")
    saa.add_argument("--start", type=int, default=10, metavar="N")
    saa.add_argument("--max-n", type=int, default=640, metavar="N")
    saa.add_argument("--batches", type=int, default=10, metavar="B")
    saa.add_argument("--seed", type=int, metavar="S")
    saa.add_argument("--relax", action="store_true", help="LP relaxation")
    _common(saa)
    saa.set_defaults(handler=_saa)


def _common(parser: argparse.ArgumentParser, config: bool = True) -> None:
    if config:
        parser.add_argument("--config", metavar="FILE.toml")
    parser.add_argument("--db", metavar="PATH", help="results database (default ./stochplan.db)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress display")


# ----------------------------------------------------------------------------------------------


def _value(args: argparse.Namespace) -> int:
    from stochplan.parallel import rank, world

    if (args.module is None) == (args.instance is None):
        raise InputError("INSTANCE/--module", args.instance or args.module,
                         "give an instance or --module MODULE, not both")
    db = _check_db(args.db)
    comm = world()
    progress = Progress(enabled=not (args.quiet or args.json) and rank(comm) == 0)
    with _captured_stdout(), progress:
        if args.module:
            report, record = _value_of_module(args, comm, progress)
        else:
            report, record = _value_of_instance(args, comm, progress)
        if rank(comm) != 0:
            return 0
        progress.phase("store")
        run_id, db_path = _save(record, db)
    out = {"run_id": run_id, "db": db_path, **report.to_dict()}
    if args.json:
        print(json.dumps(_json_safe(out)))
        return 0
    print(_value_text(report, run_id, db_path, record.instance, record.scenarios))
    return 0


def _value_of_instance(args: argparse.Namespace, comm: Any, progress: Progress):
    from stochplan.analysis.value import value_report
    from stochplan.config import load_config
    from stochplan.models import aggregate
    from stochplan.parallel import rank
    from stochplan.run import outcome_from_result, solve_instance, to_record

    config = load_config(args.config, instance=args.instance, db=args.db,
                         model={"integer": False} if args.relax else None,
                         scenarios={"spec": args.scenarios, "seed": args.seed})
    progress.phase("rp")
    outcome = solve_instance(config) if rank(comm) == 0 else None
    if comm is not None:
        outcome = comm.bcast(outcome, root=0)
    assert outcome is not None
    inst, sc = outcome.instance, config.scenarios
    kwargs = aggregate.creator_kwargs(inst, sc.spec, sc.seed, sc.multipliers, sc.weights)
    report = value_report(aggregate, outcome.scenarios.names, kwargs, config.solver,
                          integer_policy=args.integer_policy, rp=outcome.result, comm=comm,
                          progress=_phase_progress(progress))
    record = to_record(outcome_from_result(config, inst, outcome.scenarios, outcome.result,
                                           outcome.timings))
    record = _with_value(record, report)
    return report, record


def _value_of_module(args: argparse.Namespace, comm: Any, progress: Progress):
    from mpisppy.utils import config as mpisppy_config

    from stochplan.analysis.value import value_report
    from stochplan.run import package_versions
    from stochplan.store import RunRecord

    if args.num_scens is None or args.num_scens < 1:
        raise InputError("--num-scens", args.num_scens, "a positive number of scenarios is needed")
    try:
        module = importlib.import_module(args.module)
    except ImportError as err:
        raise InputError("--module", args.module, f"cannot be imported ({err})") from None
    for fn in ("scenario_creator", "scenario_names_creator", "kw_creator", "inparser_adder",
               "average_scenario_creator"):
        if not hasattr(module, fn):
            raise InputError("--module", args.module, f"has no {fn} (mpi-sppy's module contract)")
    cfg = mpisppy_config.Config()
    module.inparser_adder(cfg)
    cfg.num_scens = args.num_scens
    for item in args.set:
        key, _, text = item.partition("=")
        if key not in cfg:
            raise InputError("--set", item, f"{args.module} has no option {key!r}")
        try:
            cfg[key] = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            cfg[key] = text
    kwargs = module.kw_creator(cfg)
    names = module.scenario_names_creator(args.num_scens)
    report = value_report(module, names, kwargs, comm=comm, progress=_phase_progress(progress))
    rp = report.rp_result
    assert rp is not None
    record = RunRecord(
        instance=args.module, family="module", method="ef", scenarios=f"{args.num_scens}",
        seed=None, n_scenarios=len(names), status=rp.status, objective=rp.objective,
        bound=rp.bound, gap=rp.gap,
        config={"module": args.module, "num_scens": args.num_scens, "set": list(args.set)},
        versions=package_versions(), timings=dict(report.timings),
        # the plans table holds (variable, product, week) plans; a module's own index columns
        # go into the table "plan" instead
        plan=pd.DataFrame({"variable": [], "product": [], "week": [], "value": []}),
        kpis={}, tables={"plan": rp.plan},
    )
    return report, _with_value(record, report)


def _with_value(record: Any, report: Any) -> Any:
    import dataclasses

    config = dict(record.config)
    config["value"] = {"integer_policy": report.integer_policy, "sense": report.sense,
                       "infeasible_scenarios": list(report.infeasible)}
    return dataclasses.replace(
        record,
        config=config,
        kpis={**record.kpis, **report.kpis()},
        timings={**record.timings, **{f"value_{k}": v for k, v in report.timings.items()}},
        tables={**record.tables, "value_by_scenario": report.by_scenario,
                "ev_plan": report.ev_plan},
    )


def _value_text(report: Any, run_id: int, db: str, instance: str, scenarios: str) -> str:
    def fmt(x: float) -> str:
        return f"{x:>18,.2f}" if math.isfinite(x) else f"{'+inf' if x > 0 else '-inf':>18}"

    lines = [f"run {run_id}: {instance}, {scenarios} ({report.n_scenarios} scenarios), "
             f"objective sense {report.sense}"]
    names = {"rp": "RP  (recourse problem)", "ev": "EV  (mean-value problem)",
             "eev": "EEV (mean-value plan)", "ws": "WS  (wait-and-see)",
             "vss": "VSS (value of the stochastic solution)",
             "evpi": "EVPI (value of perfect information)"}
    for key, label in names.items():
        lines.append(f"  {label:<40}{fmt(getattr(report, key))}")
    if report.infeasible:
        shown = ", ".join(report.infeasible[:10]) + (" ..." if len(report.infeasible) > 10 else "")
        lines.append(f"  The mean-value plan has no feasible recourse in {len(report.infeasible)} "
                     f"scenario(s): {shown}; EEV and VSS are infinite.")
    if report.integer_policy:
        lines.append(f"  EV with integer recourse: mean demand handled by '{report.integer_policy}'.")
    seconds = sum(report.timings.values())
    lines.append(f"Stored with run {run_id} in {db} ({seconds:.1f} s of solves).")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------


def _evaluate(args: argparse.Namespace) -> int:
    from stochplan.analysis.oos import out_of_sample
    from stochplan.metrics.production import fill_rate
    from stochplan.models import aggregate
    from stochplan.parallel import rank, world
    from stochplan.scenarios import parse_spec
    from stochplan.store import ResultsStore

    db = _check_db(args.db, must_exist=True)
    with ResultsStore(db) as store:
        stored = store.get_run(args.run)
    rec = stored.record
    if rec.family != "aggregate":
        raise InputError("run", args.run, f"is a {rec.family} run; evaluate takes aggregate runs")
    spec = parse_spec(args.scenarios)
    if spec.kind == "three-point":
        raise InputError("--scenarios", args.scenarios, "out-of-sample needs poisson:M or qmc:M")
    seed = args.seed if args.seed is not None else (rec.seed or 0) + 1
    if seed == rec.seed and rec.scenarios != "three-point":
        raise InputError("--seed", seed, f"is run {args.run}'s own seed; out-of-sample needs an "
                         "independent one")
    cfg = rec.config
    scen_cfg = cfg.get("scenarios", {})
    model = {k: v for k, v in cfg.get("model", {}).items()}
    inst = aggregate.resolve(cfg.get("instance", rec.instance), model)
    multipliers = tuple(scen_cfg.get("multipliers") or (1.0,))
    weights = scen_cfg.get("weights")
    kwargs = aggregate.creator_kwargs(inst, str(spec), seed, multipliers,
                                      tuple(weights) if weights else None)
    scen_set = aggregate.scenario_set(inst, str(spec), seed, multipliers,
                                      tuple(weights) if weights else None)
    plans = [(f"stochastic (run {args.run})", rec.plan)]
    if "ev_plan" in rec.tables:
        plans.append(("mean-value (EV)", rec.tables["ev_plan"]))
    comm = world()
    progress = Progress(enabled=not (args.quiet or args.json) and rank(comm) == 0)
    results = []
    with _captured_stdout(), progress:
        for label, plan in plans:
            progress.phase(f"evaluate {label} on {len(scen_set)} scenarios")
            oos = out_of_sample(aggregate, plan, scen_set.names, kwargs, label,
                                cvar_level=args.cvar_level, keep_recourse=True, comm=comm)
            feasible = [i for i, c in enumerate(oos.solves.objective) if math.isfinite(c)]
            fill = math.nan
            if feasible and oos.solves.recourse is not None:
                names = tuple(scen_set.names[i] for i in feasible)
                arrays = aggregate.recourse_arrays(oos.solves.recourse, inst, names)
                sub = scen_set.subset(feasible)
                fill = fill_rate(sub.demand, arrays["B"], arrays.get("L"), sub.probabilities)
            results.append((oos, fill))
    if rank(comm) != 0:
        return 0
    summary = pd.DataFrame([{
        "plan": oos.label, "scenarios": str(spec), "seed": seed, "n": oos.summary.n,
        "mean": oos.summary.mean, "ci_low": oos.summary.ci_low, "ci_high": oos.summary.ci_high,
        **oos.summary.quantiles, "cvar": oos.summary.cvar, "cvar_level": oos.summary.cvar_level,
        "prob_infeasible": oos.summary.prob_infeasible,
        "feasible_mean": oos.summary.feasible_mean, "fill_rate": fill,
    } for oos, fill in results])
    costs = pd.concat([oos.costs() for oos, _ in results], ignore_index=True)
    own = summary.iloc[0]
    kpis = {"oos_mean": own["mean"], "oos_ci_low": own["ci_low"], "oos_ci_high": own["ci_high"],
            "oos_cvar": own["cvar"], "oos_prob_infeasible": own["prob_infeasible"],
            "oos_fill_rate": own["fill_rate"], "oos_n": float(own["n"])}
    with ResultsStore(db) as store:
        store.add_table(args.run, "oos_costs", costs, replace=True)
        store.add_table(args.run, "oos_summary", summary, replace=True)
        store.add_kpis(args.run, kpis)
    if args.json:
        print(json.dumps(_json_safe({"run_id": args.run, "db": str(db),
                                     "plans": summary.to_dict(orient="records")})))
        return 0
    print(f"run {args.run}: plans evaluated on {spec} (seed {seed}), costs in $")
    for row in summary.itertuples(index=False):
        print(f"  {row.plan:<26} mean {_money(row.mean)}  95% CI [{_money(row.ci_low)}, "
              f"{_money(row.ci_high)}]  CVaR{row.cvar_level:.0%} {_money(row.cvar)}  "
              f"P(infeasible) {row.prob_infeasible:.1%}  fill rate {row.fill_rate:.1%}")
    print(f"Stored with run {args.run} in {db} (tables oos_costs, oos_summary).")
    return 0


# ----------------------------------------------------------------------------------------------


def _saa(args: argparse.Namespace) -> int:
    from stochplan.analysis.mrp import grow_sample
    from stochplan.config import load_config
    from stochplan.models import aggregate
    from stochplan.parallel import rank, world
    from stochplan.run import outcome_from_result, to_record

    target = _fraction(args.target_gap)
    db = _check_db(args.db)
    config = load_config(args.config, instance=args.instance, db=args.db,
                         model={"integer": False} if args.relax else None,
                         scenarios={"seed": args.seed})
    inst = aggregate.resolve(config.instance, config.model or None)
    sc = config.scenarios

    def sample(n: int):
        spec = f"poisson:{n}"
        return (aggregate.scenario_names_creator(n),
                aggregate.creator_kwargs(inst, spec, sc.seed, sc.multipliers, sc.weights))

    def batches_for(n: int):
        def batch(b: int):
            spec = f"poisson:{n}"
            return (aggregate.scenario_names_creator(n),
                    aggregate.creator_kwargs(inst, spec, sc.seed + 1 + b, sc.multipliers,
                                             sc.weights))
        return batch

    comm = world()
    progress = Progress(enabled=not (args.quiet or args.json) and rank(comm) == 0)
    with _captured_stdout(), progress:
        steps, result = grow_sample(aggregate, sample, batches_for, target, args.start,
                                    args.max_n, args.batches, config.solver, comm=comm,
                                    progress=progress.phase)
        if rank(comm) != 0:
            return 0
        n = steps[-1].n
        final = config.replace(scenarios=type(sc)(f"poisson:{n}", sc.seed, sc.multipliers,
                                                  sc.weights))
        scen_set = aggregate.scenario_set(inst, f"poisson:{n}", sc.seed, sc.multipliers,
                                          sc.weights)
        record = to_record(outcome_from_result(final, inst, scen_set, result))
    table = pd.DataFrame([{"n": s.n, "objective": s.objective, "gap_mean": s.gap.mean,
                           "gap_half_width": s.gap.half_width, "gap_upper": s.gap.upper,
                           "relative_upper": s.gap.relative_upper, "batches": s.gap.n_batches,
                           "seconds": s.seconds} for s in steps])
    import dataclasses

    last = steps[-1].gap
    reached = last.relative_upper <= target
    record = dataclasses.replace(
        record,
        kpis={**record.kpis, "gap_mean": last.mean, "gap_half_width": last.half_width,
              "gap_upper": last.upper, "gap_relative_upper": last.relative_upper},
        tables={**record.tables, "saa_steps": table},
        label=f"saa target {target:.3%} {'reached' if reached else 'not reached'}",
    )
    run_id, db_path = _save(record, db)
    if args.json:
        print(json.dumps(_json_safe({"run_id": run_id, "db": db_path, "target": target,
                                     "reached": reached, "steps": table.to_dict("records")})))
        return 0
    print(f"run {run_id}: {inst.name}, SAA with Poisson scenarios (seed {sc.seed}), MRP with "
          f"{args.batches} batches; target: relative gap bound <= {target:.3%}")
    for s in steps:
        print(f"  N = {s.n:>5}  objective {_money(s.objective)}  gap {_money(s.gap.mean)} "
              f"+/- {_money(s.gap.half_width)}  (upper bound {s.gap.relative_upper:.3%})  "
              f"{s.seconds:.1f} s")
    print(("Target reached" if reached else f"Target NOT reached by N = {steps[-1].n} "
           f"(--max-n {args.max_n})") + f"; stored as run {run_id} in {db_path}.")
    return 0 if reached else 1


# ----------------------------------------------------------------------------------------------


def _check_db(value: str | None, must_exist: bool = False):
    from stochplan.store import ResultsStore, resolve_db

    db = resolve_db(value)
    if db.exists():
        ResultsStore(db).close()
    elif must_exist:
        raise InputError("--db", str(db), "no results database there")
    return db


def _save(record: Any, db: Any) -> tuple[int, str]:
    from stochplan.store import ResultsStore

    with ResultsStore(db) as store:
        return store.save_run(record), str(store.path)


def _phase_progress(progress: Progress):
    return lambda phase, done, total: progress.phase(f"{phase} {done}/{total}")


def _money(x: float) -> str:
    return f"${x:,.2f}" if math.isfinite(x) else ("+inf" if x > 0 else "nan")


def _fraction(text: str) -> float:
    try:
        value = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        raise InputError("--target-gap", text, "expected a percentage like 0.5% or a fraction") from None
    if not 0 < value < 1:
        raise InputError("--target-gap", text, "must be between 0 and 100%")
    return value

