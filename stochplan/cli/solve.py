"""Commands to set up, solve and look at runs: ``instances``, ``config-schema``, ``solve``,
``runs`` and ``show``.

::

    stochplan instances
    stochplan config-schema [INSTANCE | --family NAME]
    stochplan solve INSTANCE [--scenarios SPEC] [--seed S] [--set KEY=VALUE ...] [--relax]
                             [--config FILE.toml] [--method ef|ph|lshaped] [--time-limit SEC]
                             [--cvar ALPHA [--risk-weight LAMBDA]] [--workers N]
                             [--rel-gap G] [--max-iterations N] [--partial]
                             [--start-plan RUN] [--db PATH] [--json] [--quiet]
    stochplan runs [--db PATH] [--limit N] [--json]
    stochplan show RUN [--db PATH] [--json]
    stochplan import FILE [--db PATH]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any

from stochplan.cli.common import (
    EXIT_SOLVE,
    EXIT_USAGE,
    Progress,
    add_db_option,
    add_model_options,
    add_output_options,
    add_risk_options,
    add_scenario_options,
    check_config_db,
    check_db,
    check_risk_flags,
    load_instance_first,
    lock_timeout,
    model_overrides,
    print_json,
    resolve_run,
    risk_overrides,
    run_argument,
    save_run,
    solving,
)
from stochplan.errors import InputError, SolveError, StochplanError


def add_commands(sub: Any) -> None:
    sub.add_parser("instances", help="list the built-in instances").set_defaults(
        handler=instances_command)

    schema = sub.add_parser("config-schema", aliases=["schema"],
                            help="print the JSON schema of a run configuration file",
                            description="Print the JSON schema of a run configuration (TOML) "
                            "for the model family of INSTANCE, its [model] options included; "
                            "editors with a TOML language server check and complete files "
                            "with it.")
    schema.add_argument("instance", nargs="?", metavar="INSTANCE",
                        help="built-in instance or instance folder (default: the default "
                        "instance, `stochplan instances` lists them)")
    schema.add_argument("--family", metavar="NAME", help="a model family, instead of INSTANCE")
    schema.set_defaults(handler=schema_command)

    solve = sub.add_parser("solve", help="solve an instance's recourse problem (extensive form, "
                           "L-shaped method, or progressive hedging under mpiexec)")
    solve.add_argument("instance", metavar="INSTANCE",
                       help="built-in instance name (see `stochplan instances`) or instance folder")
    add_scenario_options(solve)
    add_model_options(solve)
    add_risk_options(solve)
    solve.add_argument("--method", choices=("ef", "ph", "lshaped"),
                       help="ef: extensive form (default); ph: progressive hedging with mpi-sppy "
                       "(run under mpiexec; 3 or more ranks add bound and incumbent spokes); "
                       "lshaped: level-stabilised L-shaped method, continuous recourse (integer "
                       "recourse with an integer first stage) "
                       "(serial, or under mpiexec with the scenarios shared among ranks)")
    solve.add_argument("--time-limit", type=float, metavar="SEC",
                       help="solver time limit (with --method ph or lshaped: the method's)")
    solve.add_argument("--rel-gap", type=float, metavar="G",
                       help="--method ph or lshaped: stop at this relative gap (default 0.01 "
                       "for ph, 1e-4 for lshaped)")
    solve.add_argument("--max-iterations", type=int, metavar="N",
                       help="--method ph or lshaped: iteration limit (default 200 for ph, "
                       "1000 for lshaped)")
    solve.add_argument("--partial", action="store_true",
                       help="keep a solve stopped by the time limit (with its gap) instead of "
                       "failing")
    solve.add_argument("--start-plan", type=run_argument, metavar="RUN",
                       help="start from a stored run's plan (run id or 'last', in the results "
                       "database): a MIP start for ef, the first plan lshaped values (so it "
                       "gets lshaped's bound); ph takes none")
    add_output_options(solve)
    solve.add_argument("--workers", type=int, metavar="N",
                       help="families whose instance splits into independent blocks (the sites "
                       "of multisite): solve them in N processes (default: one per core; 1: in "
                       "this process); under mpiexec the ranks share them instead")
    solve.add_argument("--input-db", metavar="URL",
                       help="read the instance from a database (SQLAlchemy URL or SQLite file; "
                       "families that support it) and write the results back there")
    solve.set_defaults(handler=solve_command)

    runs = sub.add_parser("runs", help="list the runs in the results database")
    add_db_option(runs)
    runs.add_argument("--limit", type=int, default=20, metavar="N")
    runs.add_argument("--json", action="store_true", help="print one JSON array on stdout")
    runs.set_defaults(handler=runs_command)

    show = sub.add_parser("show", help="print one stored run")
    show.add_argument("run", type=run_argument, metavar="RUN",
                      help="run id (see `stochplan runs`) or 'last' for the newest run")
    add_db_option(show)
    show.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    show.set_defaults(handler=show_command)

    imp = sub.add_parser("import", help="bring the runs of a recovery file (or of another "
                         "results database) into the results database",
                         description="Copy every run of FILE into the results database, in "
                         "one transaction. A run that could not be stored is written to a "
                         "recovery file, and the message names it.")
    imp.add_argument("file", metavar="FILE", help="recovery file or results database")
    add_db_option(imp)
    imp.set_defaults(handler=import_command)


# ----------------------------------------------------------------------------------------------


def instances_command(args: argparse.Namespace) -> int:
    from stochplan.data import builtin_instances

    for name, description in builtin_instances().items():
        print(f"{name:<16}{description}")
    return 0


def schema_command(args: argparse.Namespace) -> int:
    from stochplan.config import config_schema
    from stochplan.data import instance_family
    from stochplan.family import get_family

    if args.family is not None and args.instance is not None:
        raise InputError("--family", args.family, "give INSTANCE or --family, not both")
    from stochplan.models import DEFAULT_INSTANCE

    name = args.family or instance_family(args.instance or DEFAULT_INSTANCE)
    print(json.dumps(config_schema(get_family(name)), indent=2))
    return 0


def solve_command(args: argparse.Namespace) -> int:
    from stochplan.config import DECOMPOSED, load_config

    load_instance_first(args.instance)
    # --rel-gap, --max-iterations and --time-limit go to the section of the method asked for
    # (both decomposition sections when the method comes from the file), and a bad value is
    # named by its flag
    flags = {"rel_gap": ("--rel-gap", args.rel_gap),
             "max_iterations": ("--max-iterations", args.max_iterations),
             "time_limit": ("--time-limit", args.time_limit)}
    decomposed = {key: value for key, (_, value) in flags.items()}
    try:
        config = load_config(
            args.config,
            instance=args.instance,
            method=args.method,
            db=args.db,
            model=model_overrides(args, args.instance),
            scenarios={"spec": args.scenarios, "seed": args.seed},
            solver={"time_limit": args.time_limit},
            ph=decomposed if args.method in (None, "ph") else {},
            lshaped=decomposed if args.method in (None, "lshaped") else {},
            risk=risk_overrides(args),
        )
    except InputError as err:
        if err.field.startswith("risk."):
            check_risk_flags(args, None, err)
        section, _, key = err.field.partition(".")
        if section in ("solver", "ph", "lshaped") and key in flags:
            flag, value = flags[key]
            if value is not None:
                raise InputError(flag, value, err.problem) from None
        if err.field == "scenarios.seed" and args.seed is not None:
            raise InputError("--seed", args.seed, err.problem) from None
        raise
    check_risk_flags(args, config)
    if args.workers is not None and args.workers < 1:
        raise InputError("--workers", args.workers, "must be a positive number of processes")
    if config.method not in DECOMPOSED:
        for flag, value in (("--rel-gap", args.rel_gap), ("--max-iterations", args.max_iterations)):
            if value is not None:
                raise InputError(flag, value, "applies to --method ph or lshaped only")
        return _solve_once(args, config)
    # decomposed: every MPI rank solves, rank 0 alone stores and prints
    from stochplan.parallel import world

    comm = world()
    if comm is None or comm.Get_rank() == 0:
        return _solve_once(args, config, comm)
    try:
        return _solve_once(args, config, comm)
    except SolveError:  # InfeasibleError included; rank 0 reports it
        return EXIT_SOLVE
    except StochplanError:
        return EXIT_USAGE


def _solve_once(args: argparse.Namespace, config: Any, comm: Any = None) -> int:
    """Solve, store and print; under MPI (``comm``), ranks other than 0 only solve."""
    from stochplan.parallel import from_root

    me = 0 if comm is None else comm.Get_rank()

    def checked() -> tuple[Any, Any]:  # rank 0's: a bad --db fails here, before solving
        db = check_config_db(config)
        return db, (None if args.start_plan is None
                    else _stored_plan(db, args.start_plan, config))

    # the database and start plan, on every rank; a mistake ends every rank with its status,
    # said once
    db, start_plan = from_root(checked, comm)
    show = me == 0 and not (args.quiet or args.json)
    with solving(), Progress(enabled=show) as progress:
        from stochplan.run import input_db_of, to_record
        from stochplan.solve.blocks import solve_run  # solve_instance, + --input-db and blocks

        outcome = solve_run(config, args.input_db, progress=progress.phase,
                            allow_partial=args.partial, workers=args.workers,
                            start_plan=start_plan)
        if outcome is None:  # an MPI rank other than 0
            return 0
        progress.phase("store")
        record = to_record(outcome)
        if args.input_db is not None:  # evaluate and simulate read the instance from it again
            record.config["input_db"] = input_db_of(args.input_db)
        # results written back to an input database commit inside the store's transaction:
        # if either write fails, neither database changes (the run goes to a recovery file)
        run_id, db_path = save_run(
            record, db, before_commit=lambda run_id: outcome.family.write_back(outcome, run_id))

    if args.json:
        print_json({
            "run_id": run_id,
            "db": db_path,
            "instance": record.instance,
            "scenarios": record.scenarios,
            "seed": record.seed,
            "n_scenarios": record.n_scenarios,
            **outcome.result.to_dict(),
            "kpis": outcome.kpis.headline,
            "timings": outcome.timings,
        })
        return 0

    from stochplan.reports.text import report_text, risk_header

    header = _header(run_id, record.instance, record.scenarios, record.n_scenarios,
                     record.method, record.status, record.objective, record.gap,
                     getattr(outcome.instance.options, "integer", None))
    header["sense"] = outcome.family.objective_sense(outcome.instance)
    header["rel_gap_target"] = outcome.result.info.get("rel_gap_target")
    header["risk"] = risk_header(record.config, record.kpis)
    print(report_text(header, outcome.family, outcome.kpis.headline, outcome.kpis.tables))
    if outcome.result.method == "ph":
        print("\n" + _ph_summary(outcome.result))
    elif outcome.result.method == "lshaped":
        print("\n" + _lshaped_summary(outcome.result))
    elif outcome.result.info.get("start_plan"):
        print(_started(outcome.result))
    print(f"\nStored as run {run_id} in {db_path} "
          f"(solve {outcome.timings.get('solve', 0.0):.1f} s); "
          f"`stochplan show {run_id}{_db_flag(None if args.db is None else db_path)}` prints it "
          "again.")
    return 0


def _stored_plan(db: Any, run: int | str, config: Any) -> Any:
    """The plan of run ``run`` (an id or ``last``) in the results database ``db``, as a start
    plan (``attrs`` name ``--start-plan`` and the run id); it must be a run of the family
    being solved."""
    from stochplan.store import ResultsStore

    if not db.exists():
        raise InputError("--start-plan", run, f"no results database at {db} to read it from")
    with ResultsStore(db, lock_timeout=lock_timeout()) as store:
        try:
            run_id = resolve_run(store, run)
        except InputError as err:
            raise InputError("--start-plan", run, err.problem) from None
        try:
            stored = store.get_run(run_id)
        except InputError as err:
            raise InputError("--start-plan", run, err.problem) from None
    family = config.family_object().name
    if stored.record.family != family:
        raise InputError("--start-plan", run_id, f"is a run of the {stored.record.family} "
                         f"family, not {family}")
    plan = stored.record.plan.copy()
    plan.attrs.update(field="--start-plan", value=run_id)
    return plan


def _db_flag(db: str | None) -> str:
    """`` --db PATH`` when a command must name the database to find a run again."""
    if db is None:
        return ""
    return f" --db {shlex.quote(str(db))}"


def import_command(args: argparse.Namespace) -> int:
    from stochplan.store import import_runs

    source = check_db(args.file, must_exist=True)
    db = check_db(args.db, writable=True)
    ids = import_runs(source, db)
    print(f"imported {len(ids)} run(s) from {source} into {db}: "
          f"{', '.join(str(i) for i in ids) or 'none'}")
    return 0


def runs_command(args: argparse.Namespace) -> int:
    from stochplan.cli.common import open_store

    path = check_db(args.db)
    if not path.exists():
        print(f"no results database at {path} yet: `stochplan solve` creates it", file=sys.stderr)
        return 0
    with open_store(args.db) as store:
        table = store.list_runs(limit=args.limit)
    if args.json:
        print(table.to_json(orient="records"))
    elif table.empty:
        print(f"no runs in {path}")
    else:
        print(table.to_string(index=False))
    return 0


def show_command(args: argparse.Namespace) -> int:
    from stochplan.cli.common import open_store
    from stochplan.family import stored_family
    from stochplan.reports.text import report_text, risk_header

    with open_store(args.db) as store:
        stored = store.get_run(resolve_run(store, args.run))
    rec = stored.record
    if args.json:
        print_json({
            "run_id": stored.id, "created": stored.created, "instance": rec.instance,
            "family": rec.family, "method": rec.method, "scenarios": rec.scenarios,
            "seed": rec.seed, "n_scenarios": rec.n_scenarios, "status": rec.status,
            "objective": rec.objective, "bound": rec.bound, "gap": rec.gap,
            "kpis": rec.kpis, "config": rec.config, "versions": rec.versions,
            "timings": rec.timings, "plan": rec.plan.to_dict(orient="records"),
        })
        return 0
    header = _header(stored.id, rec.instance, rec.scenarios, rec.n_scenarios, rec.method,
                     rec.status, rec.objective, rec.gap,
                     rec.config.get("model", {}).get("integer"))
    header["sense"] = rec.config.get("sense") or rec.config.get("value", {}).get("sense", "min")
    header["rel_gap_target"] = rec.config.get("solve_info", {}).get("rel_gap_target")
    header["risk"] = risk_header(rec.config, rec.kpis)
    print(f"created {stored.created}")
    print(report_text(header, stored_family(rec.family), rec.kpis, rec.tables))
    return 0


# ----------------------------------------------------------------------------------------------


def _header(run_id: int, instance: str, scenarios: str, n: int, method: str, status: str,
            objective: float | None, gap: float | None,
            integer: bool | None) -> dict[str, Any]:
    return {"run_id": run_id, "instance": instance, "scenarios": scenarios, "n_scenarios": n,
            "method": method, "status": status, "objective": objective, "gap": gap,
            "integer": integer}


def _stopped(result: Any) -> str:
    """Why a decomposition stopped: ``gap target reached``, ``optimal`` (the gap closed) or
    ``stopped on <reason>``."""
    from stochplan.solve.results import SOLVED, status_text

    if result.status in SOLVED:
        return status_text(result.status)
    return f"stopped on {str(result.info.get('stop_reason')).replace('_', ' ')}"


def _ph_summary(result: Any) -> str:
    """One paragraph on a progressive hedging solve: ranks, iterations, why it stopped."""
    info = result.info
    gap = "n/a" if result.gap is None else f"{result.gap:.3%}"
    bound = "none" if result.bound is None else f"${result.bound:,.2f}"
    return (f"Progressive hedging on {info.get('ranks')} rank(s) "
            f"({', '.join(info.get('cylinders', []))}), bundles of {info.get('bundle_size')} "
            f"scenario(s): {info.get('iterations')} iterations, {_stopped(result)}.\n"
            f"Best bound {bound}, incumbent ${result.objective:,.2f}, gap {gap} "
            f"(target {info.get('rel_gap_target', 0):.2%}).")


def _lshaped_summary(result: Any) -> str:
    """One paragraph on an L-shaped solve: ranks, iterations, cuts, why it stopped."""
    info = result.info
    gap = "n/a" if result.gap is None else f"{result.gap:.4%}"
    bound = "none" if result.bound is None else f"${result.bound:,.2f}"
    return (f"L-shaped method (level-stabilised) on {info.get('ranks')} rank(s): "
            f"{info.get('iterations')} iterations, {info.get('cuts')} cuts "
            f"({info.get('clusters')} optimality cuts per iteration, "
            f"{info.get('feasibility_cuts')} feasibility cuts), {_stopped(result)}.\n"
            f"Bound {bound}, plan ${result.objective:,.2f}, gap {gap} "
            f"(target {info.get('rel_gap_target', 0):.4%})." + _started(result))


def _started(result: Any) -> str:
    """`` Start plan: run 12: valued $X.`` when the solve started from a stored plan."""
    use = result.info.get("start_plan")
    return f"\nStart plan: {use}." if use else ""
