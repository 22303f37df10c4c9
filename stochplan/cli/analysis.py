"""Commands of the analysis: ``value``, ``evaluate`` and ``saa``.

::

    stochplan value INSTANCE [--scenarios SPEC] [--seed S] [--set KEY=VALUE ...] [--relax]
                             [--config FILE.toml] [--integer-policy round|relax]
    stochplan value --module MODULE --num-scens N [--set KEY=VALUE ...]
    stochplan evaluate RUN [--draws M | --scenarios SPEC | --config FILE.toml] [--seed S]
                           [--cvar-level A]
    stochplan saa INSTANCE --target-gap 0.5% [--scenarios sample:N|poisson:N|qmc:N] [--seed S]
                           [--set KEY=VALUE ...] [--relax] [--config FILE.toml]
                           [--start N] [--max-n N] [--batches B]

Every command stores what it computed in the results database with the run it belongs to, and
``--json`` prints one JSON object. Under ``mpiexec`` the scenario solves are spread over the
ranks; only rank 0 prints and writes.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

from stochplan.cli.common import (
    SPEC_HELP,
    Progress,
    add_model_options,
    add_output_options,
    add_risk_options,
    add_scenario_options,
    check_db,
    check_risk_flags,
    guarded_module,
    import_user_module,
    load_instance_first,
    lock_timeout,
    model_overrides,
    money,
    parse_sets,
    print_json,
    resolve_run,
    risk_overrides,
    run_argument,
    save_run,
    solving,
    user_code,
)
from stochplan.errors import InputError


def add_commands(sub: Any) -> None:
    value = sub.add_parser("value", help="RP, EV, EEV, WS, VSS and EVPI of an instance or module")
    value.add_argument("instance", nargs="?", metavar="INSTANCE",
                       help="built-in instance or instance folder (or use --module)")
    value.add_argument("--module", metavar="MODULE",
                       help="an importable module following mpi-sppy's contract; --set then "
                       "sets its options (as its inparser_adder names them)")
    value.add_argument("--num-scens", type=int, metavar="N", help="scenarios of --module")
    add_scenario_options(value)
    add_model_options(value)
    value.add_argument("--integer-policy", choices=("round", "relax"), default="round",
                       help="EV of an integer model with fractional mean demand (default round)")
    add_risk_options(value)
    value.add_argument("--input-db", metavar="URL",
                       help="read the instance from a database (SQLAlchemy URL or SQLite file; "
                       "families that support it)")
    add_output_options(value)
    value.set_defaults(handler=value_command)

    evaluate = sub.add_parser("evaluate", help="evaluate a stored run's plan out of sample")
    evaluate.add_argument("run", type=run_argument, metavar="RUN",
                          help="run id (see `stochplan runs`) or 'last' for the newest run")
    add_scenario_options(evaluate,
                         spec_help=f"another distribution to draw from ({SPEC_HELP}; not "
                         "named), with the levels of --config's [scenarios] (default: the "
                         "distribution the run's scenarios came from)",
                         seed_help="seed of the fresh scenarios (default: the run's seed + 1)")
    evaluate.add_argument("--config", metavar="FILE.toml",
                          help="another distribution: the [scenarios] section of a run "
                          "configuration (spec, seed, multipliers, weights)")
    evaluate.add_argument("--draws", type=int, metavar="M",
                          help="fresh scenarios drawn from the run's own distribution "
                          "(default 2000)")
    evaluate.add_argument("--cvar-level", type=float, default=0.95, metavar="A")
    add_output_options(evaluate)
    evaluate.set_defaults(handler=evaluate_command)

    saa = sub.add_parser("saa", help="grow N until the optimality gap's confidence bound is small")
    saa.add_argument("instance", metavar="INSTANCE")
    saa.add_argument("--target-gap", required=True, metavar="G",
                     help="relative gap target, e.g. 0.5%% or 0.005")
    add_scenario_options(saa, spec_help="how the samples are drawn: sample:N, poisson:N or "
                         "qmc:N, N the first sample size (default sample:10, or a sampled "
                         "spec of --config)")
    add_model_options(saa)
    saa.add_argument("--start", type=int, metavar="N",
                     help="first sample size (overrides N of --scenarios; default 10)")
    saa.add_argument("--max-n", type=int, default=640, metavar="N")
    saa.add_argument("--batches", type=int, default=10, metavar="B")
    add_output_options(saa)
    saa.set_defaults(handler=saa_command)


# ----------------------------------------------------------------------------------------------
# value


def value_command(args: argparse.Namespace) -> int:
    from stochplan.parallel import rank, root

    if args.module is not None and args.instance is not None:
        raise InputError("INSTANCE/--module", f"{args.instance} and {args.module}",
                         "give INSTANCE or --module MODULE, not both")
    if args.module is None and args.instance is None:
        raise InputError("INSTANCE/--module", None, "give INSTANCE (see `stochplan instances`) "
                         "or --module MODULE")
    db = check_db(args.db, writable=True)
    # the ranks take their communicator once the command line and the inputs are checked
    # (every rank finds a mistake there, and rank 0 alone says it)
    progress = Progress(enabled=not (args.quiet or args.json) and root())
    with solving(), progress:
        if args.module:
            report, record, comm = _value_of_module(args, progress)
        else:
            report, record, comm = _value_of_instance(args, progress)
        if rank(comm) != 0:
            return 0
        progress.phase("store")
        run_id, db_path = save_run(record, db)
    if args.json:
        print_json({"run_id": run_id, "db": db_path, **report.to_dict()})
        return 0
    print(_value_text(report, run_id, db_path, record.instance, record.scenarios))
    return 0


def _value_of_instance(args: argparse.Namespace, progress: Progress) -> Any:
    """The value report, the run record and the communicator (None without MPI)."""
    from stochplan.analysis.value import value_report
    from stochplan.config import load_config
    from stochplan.parallel import from_root, world
    from stochplan.run import outcome_from_result, solve_instance, to_record

    load_instance_first(args.instance)
    try:
        config = load_config(args.config, instance=args.instance, db=args.db,
                             model=model_overrides(args, args.instance),
                             scenarios={"spec": args.scenarios, "seed": args.seed},
                             risk=risk_overrides(args))
    except InputError as err:
        if err.field.startswith("risk."):
            check_risk_flags(args, None, err)
        raise
    check_risk_flags(args, config)
    source = _input_instance(args, config)
    by_blocks = _blocks_of(config, source)
    comm = world()
    if by_blocks is not None:
        report, record = _value_by_blocks(args, config, *by_blocks, comm, progress)
        return report, _with_input_db(record, args), comm
    progress.phase("rp")
    outcome = from_root(lambda: solve_instance(config, instance=source), comm)
    assert outcome is not None
    inst, sc, family = outcome.instance, config.scenarios, outcome.family
    kwargs = family.creator_kwargs(inst, sc.spec, sc.seed, sc.multipliers, sc.weights)
    report = value_report(family.module, outcome.scenarios.names, kwargs, config.solver,
                          integer_policy=args.integer_policy, rp=outcome.result, comm=comm,
                          progress=progress.counter(), risk=config.risk)
    record = to_record(outcome_from_result(config, inst, outcome.scenarios, outcome.result,
                                           outcome.timings))
    return report, _with_input_db(_with_value(record, report), args), comm


def _input_instance(args: argparse.Namespace, config: Any) -> Any:
    """The instance ``--input-db`` names, read with the run's options; None without it."""
    if getattr(args, "input_db", None) is None:
        return None
    from stochplan.run import run_family

    return run_family(config).load_database(args.input_db, config.model or None)


def _with_input_db(record: Any, args: argparse.Namespace) -> Any:
    """The record with the input database it was read from (as ``solve`` stores it)."""
    if getattr(args, "input_db", None) is not None:
        from stochplan.run import input_db_of

        record.config["input_db"] = input_db_of(args.input_db)
    return record


def _blocks_of(config: Any, source: Any = None) -> tuple[Any, Any] | None:
    """(family, instance) when the value report goes block by block: the family splits the
    instance into independent blocks, the scenarios are the family's own (``named`` or
    ``sample:N``, whose rows a block draws alone) and there is no risk measure (the CVaR of
    the total does not split)."""
    from stochplan.run import run_family
    from stochplan.scenarios import parse_spec

    family = run_family(config)
    inst = source if source is not None else family.resolve(config.instance,
                                                             config.model or None)
    if (config.method != "ef" or config.risk.measure != "expectation"
            or parse_spec(config.scenarios.spec).kind not in ("named", "sample")
            or family.blocks(inst) is None):
        return None
    return family, inst


def _value_by_blocks(args: argparse.Namespace, config: Any, family: Any, inst: Any,
                     comm: Any, progress: Progress) -> Any:
    """The value report block by block (:func:`stochplan.analysis.value.value_by_blocks`),
    stored as a run of its recourse problem with the table ``value_by_block``."""
    from stochplan.analysis.value import value_by_blocks
    from stochplan.run import outcome_from_result, to_record

    sc = config.scenarios
    start = time.perf_counter()
    scen_set = family.scenario_set(inst, sc.spec, sc.seed, sc.multipliers, sc.weights)
    timings = {"scenarios": time.perf_counter() - start}
    progress.phase("blocks")
    report = value_by_blocks(family, inst, sc.spec, sc.seed, sc.multipliers, sc.weights,
                             config.solver, integer_policy=args.integer_policy, comm=comm,
                             progress=progress.counter())
    assert report.rp_result is not None
    timings.update(report.rp_result.timings)
    record = to_record(outcome_from_result(config, inst, scen_set, report.rp_result, timings))
    return report, _with_value(record, report)


def _value_of_module(args: argparse.Namespace, progress: Progress) -> Any:
    """The value report, the run record and the communicator (None without MPI)."""
    from stochplan import _mpisppy
    from stochplan.analysis.value import value_report
    from stochplan.parallel import world
    from stochplan.run import package_versions
    from stochplan.store import RunRecord

    if args.num_scens is None or args.num_scens < 1:
        raise InputError("--num-scens", args.num_scens, "a positive number of scenarios is needed")
    for flag, given in (("--relax", args.relax), ("--config", args.config),
                        ("--scenarios", args.scenarios), ("--seed", args.seed),
                        ("--cvar", args.cvar), ("--risk-weight", args.risk_weight),
                        ("--input-db", args.input_db)):
        if given not in (None, False):
            raise InputError(flag, given, "applies to an INSTANCE; a --module's options are set "
                             "with --set KEY=VALUE")
    module = import_user_module(args.module)
    for fn in ("scenario_creator", "scenario_names_creator", "kw_creator", "inparser_adder",
               "average_scenario_creator"):
        if not hasattr(module, fn):
            raise InputError("--module", args.module, f"has no {fn} (mpi-sppy's module contract)")
    cfg = _mpisppy.config_class()()
    with user_code(args.module, "inparser_adder"):
        module.inparser_adder(cfg)
    cfg.num_scens = args.num_scens
    for key, value in parse_sets(args.set).items():
        if key not in cfg:
            raise InputError(f"--set {key}", value, f"{args.module} has no option {key!r}")
        try:
            cfg[key] = value
        except (TypeError, ValueError) as err:  # the option's domain refused it
            raise InputError(f"--set {key}", value, str(err).splitlines()[0]) from None
    with user_code(args.module, "kw_creator"):
        kwargs = module.kw_creator(cfg)
    with user_code(args.module, "scenario_names_creator"):
        names = module.scenario_names_creator(args.num_scens)
    module = guarded_module(module, args.module)
    comm = world()
    report = value_report(module, names, kwargs, comm=comm, progress=progress.counter())
    rp = report.rp_result
    assert rp is not None
    record = RunRecord(
        instance=args.module, family="module", method="ef", scenarios=f"{args.num_scens}",
        seed=None, n_scenarios=len(names), status=rp.status, objective=rp.objective,
        bound=rp.bound, gap=rp.gap,
        config={"module": args.module, "num_scens": args.num_scens, "set": list(args.set)},
        versions=package_versions(), timings=dict(report.timings),
        plan=rp.plan, kpis={}, tables={"recourse": rp.recourse},
    )
    return report, _with_value(record, report), comm


def _with_value(record: Any, report: Any) -> Any:
    import dataclasses

    config = dict(record.config)
    config["value"] = {"integer_policy": report.integer_policy, "sense": report.sense,
                       "infeasible_scenarios": list(report.infeasible),
                       "measure": report.measure}
    return dataclasses.replace(
        record,
        config=config,
        kpis={**record.kpis, **report.kpis()},
        timings={**record.timings, **{f"value_{k}": v for k, v in report.timings.items()}},
        tables={**record.tables, "value_by_scenario": report.by_scenario,
                "ev_plan": report.ev_plan,
                **({"value_by_block": report.by_block} if report.by_block is not None
                   else {})},
    )


def _value_text(report: Any, run_id: int, db: str, instance: str, scenarios: str) -> str:
    def fmt(x: float) -> str:
        return f"{x:>18,.2f}" if math.isfinite(x) else f"{'+inf' if x > 0 else '-inf':>18}"

    lines = [(f"run {run_id}: {instance}, {scenarios} ({report.n_scenarios} scenarios), "
              f"objective sense {report.sense}")]
    if report.risk is not None:
        lines.append(f"  under the risk measure {report.measure}: RP, EEV and WS are its values "
                     "(EV is the mean-value problem's own)")
    names = {"rp": "RP  (recourse problem)", "ev": "EV  (mean-value problem)",
             "eev": "EEV (mean-value plan)", "ws": "WS  (wait-and-see)",
             "vss": "VSS (value of the stochastic solution)",
             "evpi": "EVPI (value of perfect information)"}
    for key, label in names.items():
        lines.append(f"  {label:<40}{fmt(getattr(report, key))}")
    if report.infeasible:
        lines.append(f"  {report.note}")
    if report.by_block is not None:
        lines += _by_block_text(report.by_block, fmt)
    if report.integer_policy:
        lines.append("  EV with integer recourse: the mean data handled by "
                     f"'{report.integer_policy}'.")
    seconds = sum(report.timings.values())
    lines.append(f"Stored with run {run_id} in {db} ({seconds:.1f} s of solves).")
    return "\n".join(lines)


#: Blocks listed one per line by ``value`` (the stored table ``value_by_block`` has them all).
MAX_BLOCK_LINES = 30


def _by_block_text(by_block: Any, fmt: Any) -> list[str]:
    """One line per block (largest EVPI first): RP, EEV, WS, VSS, EVPI."""
    ordered = by_block.sort_values("evpi", ascending=False, kind="stable")
    lines = [f"  {len(ordered)} independent blocks, valued apart (the totals above are their "
             "sums):",
             f"  {'block':<16}{'RP':>18}{'EEV':>18}{'WS':>18}{'VSS':>18}{'EVPI':>18}"]
    for r in ordered.head(MAX_BLOCK_LINES).itertuples(index=False):
        lines.append(f"  {str(r.block)[:15]:<16}{fmt(r.rp)}{fmt(r.eev)}{fmt(r.ws)}"
                     f"{fmt(r.vss)}{fmt(r.evpi)}")
    if len(ordered) > MAX_BLOCK_LINES:
        lines.append(f"  ... {len(ordered) - MAX_BLOCK_LINES} more (table value_by_block of "
                     "the run)")
    return lines


# ----------------------------------------------------------------------------------------------
# evaluate


def evaluate_command(args: argparse.Namespace) -> int:
    """Both plans of a stored run (its own and, after ``value``, the mean-value plan) on fresh
    scenarios of the run's own distribution (or of one chosen with ``--scenarios`` or
    ``--config``); stored with the run with the distribution drawn from."""
    import pandas as pd

    from stochplan.analysis.oos import evaluate_plans, summary_table
    from stochplan.family import get_family
    from stochplan.parallel import rank, world
    from stochplan.solve.risk import RiskConfig
    from stochplan.store import ResultsStore

    db = check_db(args.db, must_exist=True, writable=True)
    with ResultsStore(db, lock_timeout=lock_timeout()) as store:
        args.run = resolve_run(store, args.run)
        stored = store.get_run(args.run)
    rec = stored.record
    if rec.family == "module":
        raise InputError("run", args.run, "is a `value --module` run; evaluate takes runs of a "
                         "model family (a module's plan has no scenario generator here)")
    family = get_family(rec.family)
    cfg = rec.config
    from stochplan.run import stored_instance

    inst = stored_instance(family, cfg, rec.instance)  # its input database, if any
    fresh = _fresh_scenarios(args, rec, family, inst)
    plans = [(f"stochastic (run {args.run})", rec.plan)]
    if "ev_plan" in rec.tables:
        plans.append(("mean-value (EV)", rec.tables["ev_plan"]))
    comm = world()
    progress = Progress(enabled=not (args.quiet or args.json) and rank(comm) == 0)
    with solving(), progress:
        results = evaluate_plans(family, inst, plans, fresh, cvar_level=args.cvar_level,
                                 comm=comm, phase=progress.phase)
    if rank(comm) != 0:
        return 0
    summary = summary_table(results, fresh)
    costs = pd.concat([oos.costs() for oos, _ in results], ignore_index=True)
    first = summary.iloc[0]
    kpis = {"oos_mean": first["mean"], "oos_ci_low": first["ci_low"],
            "oos_ci_high": first["ci_high"], "oos_cvar": first["cvar"],
            "oos_prob_infeasible": first["prob_infeasible"],
            **{f"oos_{k}": float(first[k]) for k in results[0][1]}, "oos_n": float(first["n"])}
    risk = _oos_risk(rec, results)
    if risk:
        first_risk = next(iter(risk.values()))
        kpis.update({"oos_risk_objective": first_risk.objective,
                     "oos_risk_value_at_risk": first_risk.value_at_risk,
                     "oos_risk_cvar": first_risk.cvar})
    with ResultsStore(db, lock_timeout=lock_timeout()) as store:
        store.attach(args.run, {"oos_costs": costs, "oos_summary": summary}, kpis)
    if args.json:
        rows = summary.drop(columns=["distribution"]).to_dict(orient="records")
        print_json({"run_id": args.run, "db": str(db), "evaluated_under": fresh.text,
                    "note": fresh.note, "distribution": fresh.distribution.to_dict(),
                    "plans": rows, "risk": {k: v.to_dict() for k, v in risk.items()}})
        return 0
    print(f"run {args.run}: plans evaluated out of sample, costs in $")
    print(f"  evaluated under: {fresh.text}")
    if fresh.note:
        print(f"  {fresh.note}")
    for row in summary.to_dict("records"):
        extra = "".join(f"  {k.replace('_', ' ')} {row[k]:.1%}" for k in results[0][1])
        print(f"  {row['plan']:<26} mean {money(row['mean'])}  95% CI [{money(row['ci_low'])}, "
              f"{money(row['ci_high'])}]  CVaR{row['cvar_level']:.0%} {money(row['cvar'])}  "
              f"P(infeasible) {row['prob_infeasible']:.1%}{extra}")
    for line in _paired_lines(costs):
        print(f"  {line}")
    for label, value in risk.items():
        print(f"  {label:<26} under the run's risk measure "
              f"{RiskConfig(**rec.config['risk']).label()}: "
              f"{money(value.objective)} (VaR {money(value.value_at_risk)}, CVaR "
              f"{money(value.cvar)} of the loss)")
    for oos, _ in results:
        if oos.note:
            print(f"  {oos.note}")
    print(f"Stored with run {args.run} in {db} (tables oos_costs, oos_summary).")
    return 0


def _paired_lines(costs: Any) -> list[str]:
    """Each later plan's paired difference to the first (its cost minus the first plan's,
    scenario by scenario), and, when one of them lacks recourse somewhere, the difference
    where both have it."""
    from stochplan.reports.view import oos_summary

    summary = oos_summary(costs)
    if len(summary) < 2:
        return []
    first = summary["plan"].iloc[0]
    lines = []
    for r in summary.iloc[1:].itertuples(index=False):
        head = f"{r.plan} minus {first}, paired:"
        if math.isfinite(r.diff_mean):
            lines.append(f"{head} mean {money(r.diff_mean)}  95% CI [{money(r.diff_ci_low)}, "
                         f"{money(r.diff_ci_high)}]")
        elif math.isnan(r.diff_mean):
            lines.append(f"{head} undefined (each plan lacks recourse where the other has it)")
        else:
            where = (f"; where both are feasible ({r.both_feasible:,} scenarios): mean "
                     f"{money(r.diff_feasible_mean)}  95% CI [{money(r.diff_feasible_ci_low)}, "
                     f"{money(r.diff_feasible_ci_high)}]" if r.both_feasible else "")
            lines.append(f"{head} {r.diff_mean:+}{where}")
    return lines


def _oos_risk(rec: Any, results: Any) -> dict[str, Any]:
    """Each plan's out-of-sample value under the run's risk measure (the same definition as
    in sample, :func:`stochplan.metrics.stats.risk_value`); empty for a risk-neutral run."""
    from stochplan.metrics.stats import risk_value

    risk = rec.config.get("risk") or {}
    if risk.get("measure", "expectation") != "cvar":
        return {}
    sense = rec.config.get("sense", "min")
    return {oos.label: risk_value(oos.solves.objective, oos.solves.probabilities,
                                  float(risk["alpha"]), float(risk["weight"]), sense)
            for oos, _ in results}


def _fresh_scenarios(args: argparse.Namespace, rec: Any, family: Any, inst: Any) -> Any:
    """The fresh scenarios of ``evaluate``: of the run's stored distribution by default (the
    instance's sampling distribution, said so, when its scenarios are not draws of one); of
    ``--scenarios``/``--config`` when given; as before (Poisson draws with the run's
    ``[scenarios]`` levels, said so) for a run stored without a distribution."""
    import dataclasses

    from stochplan.analysis.oos import (
        DEFAULT_DRAWS,
        fresh_scenarios,
        run_distribution,
        stored_distribution,
    )
    from stochplan.scenarios import distribution_of, parse_spec

    unc = family.uncertainty(inst)
    seed = args.seed if args.seed is not None else (rec.seed or 0) + 1
    own = stored_distribution(rec.config)
    chosen = args.scenarios is not None or args.config is not None
    if chosen and args.draws is not None:
        raise InputError("--draws", args.draws, "counts draws of the run's own distribution; "
                         "with --scenarios or --config give the count in the spec (poisson:M)")
    if args.draws is not None and args.draws < 1:
        raise InputError("--draws", args.draws, "must be a positive integer")
    spec_text, multipliers, weights, given_seed = _chosen_scenarios(args) if chosen else (
        None, (1.0,), None, None)
    if chosen:
        if args.seed is None and given_seed is not None:
            seed = given_seed
        spec = parse_spec(spec_text or f"poisson:{DEFAULT_DRAWS}")
        if spec.kind == "named":
            raise InputError("--scenarios", spec_text,
                             "out-of-sample needs fresh scenarios: sample:M, poisson:M, qmc:M "
                             "or file:PATH")
        if spec.kind == "file":
            assert spec.path is not None
            law = _file_law(spec.path, unc)
        else:
            law = distribution_of(unc, spec, seed, multipliers, weights)
            if law is None:
                raise InputError("--scenarios", str(spec), f"the {family.name} family cannot "
                                 "draw it (no rates and no sampler): use file:PATH")
            law = dataclasses.replace(law, basis="chosen", seed=None, note="")
        note = ""
        if own is not None and own.law() != law.law():
            note = (f"This is not the distribution run {args.run}'s scenarios came from "
                    f"({own.describe()}).")
        elif own is None:
            note = f"Run {args.run} was stored without the distribution of its scenarios."
        _check_seed_is_fresh(args.run, rec, spec.kind, seed)
        return fresh_scenarios(family, inst, law, spec.n, seed, spec=str(spec), note=note)
    n = args.draws or DEFAULT_DRAWS
    law, note = run_distribution(rec.config, unc, args.run, advice="Choose one with "
                                 "--scenarios or --config, or solve the run again.")
    _check_seed_is_fresh(args.run, rec, "poisson", seed)
    return fresh_scenarios(family, inst, law, n, seed, note=note)


def _chosen_scenarios(args: argparse.Namespace) -> tuple[str | None, tuple[float, ...],
                                                          tuple[float, ...] | None, int | None]:
    """(spec, multipliers, weights, seed) of ``--scenarios`` and ``--config``'s [scenarios]
    (the flag wins over the file's spec; the file's other sections are not read)."""
    from pathlib import Path

    from stochplan.config import read_section
    from stochplan.data import read_toml

    if args.config is None:
        return args.scenarios, (1.0,), None, None
    path = Path(args.config)
    if not path.is_file():
        raise InputError("--config", args.config, "file not found")
    raw = read_toml(path)
    table = raw.get("scenarios")
    if not isinstance(table, dict):
        raise InputError("--config", args.config, "has no [scenarios] section: evaluate draws "
                         "from the distribution it describes", path)
    sc = read_section("scenarios", table, path)
    spec = args.scenarios if args.scenarios is not None else table.get("spec")
    return (spec, sc.multipliers, sc.weights, sc.seed if "seed" in table else None)


def _file_law(path: str, unc: Any) -> Any:
    from stochplan.scenarios import Distribution

    return Distribution("file", "chosen", unc.name, data_shape=unc.shape, path=path)


def _check_seed_is_fresh(run: int, rec: Any, kind: str, seed: int) -> None:
    """Refuse the run's own seed when its scenarios were drawn from it by the same kind of
    stream (Monte Carlo streams ``default_rng([seed, k])`` of every family alike, or QMC)."""
    from stochplan.scenarios import parse_spec

    own = parse_spec(rec.scenarios)
    if seed == rec.seed and own.sampled and kind != "file" and (
            (own.kind == "qmc") == (kind == "qmc")):
        raise InputError("--seed", seed, f"is run {run}'s own seed; out-of-sample needs an "
                         "independent one")


# ----------------------------------------------------------------------------------------------
# saa


def saa_command(args: argparse.Namespace) -> int:
    import dataclasses

    import pandas as pd

    from stochplan.analysis.mrp import grow_sample
    from stochplan.config import load_config
    from stochplan.parallel import rank, world
    from stochplan.run import outcome_from_result, to_record
    from stochplan.scenarios import parse_spec

    target = _fraction(args.target_gap)
    db = check_db(args.db, writable=True)
    load_instance_first(args.instance)
    config = load_config(args.config, instance=args.instance, db=args.db,
                         model=model_overrides(args, args.instance),
                         scenarios={"spec": args.scenarios, "seed": args.seed})
    sc = config.scenarios
    spec = parse_spec(sc.spec)
    if args.scenarios is not None and not spec.sampled:
        raise InputError("--scenarios", args.scenarios, "SAA draws samples: expected sample:N, "
                         "poisson:N or qmc:N")
    # the kind and first N of a sampled spec (--scenarios or the file's); else sample:10
    kind = spec.kind if spec.sampled else "sample"
    start: int = args.start if args.start is not None else (spec.n if spec.n else 10)
    family = config.family_object()
    inst = family.resolve(config.instance, config.model or None)

    def sample(n: int) -> Any:
        return (family.scenario_names_creator(n),
                family.creator_kwargs(inst, f"{kind}:{n}", sc.seed, sc.multipliers, sc.weights))

    def batches_for(n: int) -> Any:
        def batch(b: int) -> Any:
            return (family.scenario_names_creator(n),
                    family.creator_kwargs(inst, f"{kind}:{n}", sc.seed + 1 + b, sc.multipliers,
                                          sc.weights))
        return batch

    comm = world()
    progress = Progress(enabled=not (args.quiet or args.json) and rank(comm) == 0)
    with solving(), progress:
        steps, result = grow_sample(family.module, sample, batches_for, target, start,
                                    args.max_n, args.batches, config.solver, comm=comm,
                                    progress=progress.phase)
        if rank(comm) != 0:
            return 0
        n = steps[-1].n
        final = config.replace(scenarios=dataclasses.replace(sc, spec=f"{kind}:{n}"))
        scen_set = family.scenario_set(inst, f"{kind}:{n}", sc.seed, sc.multipliers,
                                       sc.weights)
        record = to_record(outcome_from_result(final, inst, scen_set, result))
    table = pd.DataFrame([{"n": s.n, "objective": s.objective, "gap_mean": s.gap.mean,
                           "gap_half_width": s.gap.half_width, "gap_upper": s.gap.upper,
                           "relative_upper": s.gap.relative_upper, "batches": s.gap.n_batches,
                           "seconds": s.seconds} for s in steps])
    last = steps[-1].gap
    reached = last.relative_upper <= target
    record = dataclasses.replace(
        record,
        kpis={**record.kpis, "gap_mean": last.mean, "gap_half_width": last.half_width,
              "gap_upper": last.upper, "gap_relative_upper": last.relative_upper},
        tables={**record.tables, "saa_steps": table},
        label=f"saa target {target:.3%} {'reached' if reached else 'not reached'}",
    )
    run_id, db_path = save_run(record, db)
    if args.json:
        print_json({"run_id": run_id, "db": db_path, "target": target, "reached": reached,
                    "steps": table.to_dict("records")})
        return 0
    print(f"run {run_id}: {inst.name}, SAA with {kind} scenarios (seed {sc.seed}), MRP with "
          f"{args.batches} batches; target: relative gap bound <= {target:.3%}")
    for s in steps:
        print(f"  N = {s.n:>5}  objective {money(s.objective)}  gap {money(s.gap.mean)} "
              f"+/- {money(s.gap.half_width)}  (upper bound {s.gap.relative_upper:.3%})  "
              f"{s.seconds:.1f} s")
    print(("Target reached" if reached else f"Target NOT reached by N = {steps[-1].n} "
           f"(--max-n {args.max_n})") + f"; stored as run {run_id} in {db_path}.")
    return 0 if reached else 1


def _fraction(text: str) -> float:
    try:
        value = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        raise InputError("--target-gap", text,
                         "expected a percentage like 0.5% or a fraction") from None
    if not 0 < value < 1:
        raise InputError("--target-gap", text, "must be between 0 and 100%")
    return value
