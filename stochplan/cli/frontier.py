"""The ``frontier`` command: a mean-CVaR efficient frontier, solved, stored and drawn.

::

    stochplan frontier INSTANCE [--cvar ALPHA] [--weights W,W,...] [--scenarios SPEC]
                                [--seed S] [--set KEY=VALUE ...] [--relax] [--config FILE.toml]
                                [--method ef|lshaped] [--time-limit SEC] [-o FILE.html]
                                [--db PATH] [--json] [--quiet]
    stochplan frontier --show ID [-o FILE.html] [--db PATH] [--json]

The sweep (:func:`stochplan.analysis.frontier.solve_frontier`) solves one run per weight of
CVaR, on the same scenarios, and stores each as it finishes, linked to the frontier by its
configuration's ``frontier`` entry; then the table and the page are drawn from the stored
runs. ``--show`` redraws them for a stored frontier: ID is the frontier's id (``F...``), the
run id of any of its points, or ``last``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from stochplan.cli.common import (
    LAST,
    Progress,
    add_model_options,
    add_output_options,
    add_scenario_options,
    check_config_db,
    check_risk_flags,
    load_instance_first,
    model_overrides,
    money,
    open_store,
    print_json,
    risk_overrides,
    save_run,
    solving,
)
from stochplan.errors import InputError, SolveError


def add_commands(sub: Any) -> None:
    """Add ``frontier`` to the ``stochplan`` command line."""
    front = sub.add_parser(
        "frontier",
        help="solve and draw the mean-CVaR efficient frontier (one stored run per CVaR weight)",
        description="Solve INSTANCE once per weight LAMBDA of (1 - LAMBDA) E[cost] + LAMBDA "
        "CVaR_ALPHA(cost) (of the loss, minus the profit, for maximising families), on the "
        "same scenarios; store each point as a run linked to the frontier; print the table "
        "and write the frontier page (expected cost against CVaR). With --show, redraw a "
        "stored frontier.",
    )
    front.add_argument("instance", nargs="?", metavar="INSTANCE",
                       help="built-in instance name (see `stochplan instances`) or instance "
                       "folder")
    front.add_argument("--show", metavar="ID",
                       help="redraw a stored frontier: its id (F...), the run id of one of its "
                       "points, or 'last'")
    front.add_argument("--cvar", type=float, metavar="ALPHA",
                       help="CVaR level in (0, 1) of every point (default: [risk] alpha of "
                       "--config, else 0.95)")
    front.add_argument("--weights", type=_weights, metavar="W,W,...",
                       help="weights of CVaR in [0, 1], a comma list (sorted, duplicates "
                       "dropped; default 0,0.1,...,1)")
    add_scenario_options(front)
    add_model_options(front)
    front.add_argument("--method", choices=("ef", "lshaped"),
                       help="ef: extensive form (default); lshaped: L-shaped method (serial)")
    front.add_argument("--time-limit", type=float, metavar="SEC",
                       help="time limit of each point's solve")
    front.add_argument("-o", "--output", metavar="FILE.html",
                       help="frontier page (default ./stochplan-frontier-<id>.html)")
    add_output_options(front)
    front.set_defaults(handler=frontier_command)


def _weights(text: str) -> tuple[float, ...]:
    from stochplan.analysis.frontier import parse_weights

    try:
        return parse_weights(text)
    except InputError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: {err.problem}") from None


def frontier_command(args: argparse.Namespace) -> int:
    """Solve, store and draw a frontier, or (``--show``) redraw a stored one."""
    if args.show is not None:
        if args.instance is not None:
            raise InputError("--show", args.show, "give INSTANCE (to solve a frontier) or "
                             "--show ID (to redraw one), not both")
        solve_only = {"--cvar": args.cvar, "--weights": args.weights,
                      "--scenarios": args.scenarios, "--seed": args.seed,
                      "--config": args.config, "--method": args.method,
                      "--time-limit": args.time_limit,
                      "--set": args.set or None, "--relax": args.relax or None}
        for flag, value in solve_only.items():
            if value is not None:
                raise InputError(flag, value, "applies when solving a frontier, not to --show")
        return _show(args)
    if args.instance is None:
        raise InputError("INSTANCE", None, "give the instance to solve (or --show ID to "
                         "redraw a stored frontier)")
    return _solve(args)


def _solve(args: argparse.Namespace) -> int:
    from stochplan.analysis.frontier import DEFAULT_WEIGHTS, new_frontier_id, point_record
    from stochplan.config import load_config

    load_instance_first(args.instance)
    method = args.method
    try:
        config = load_config(
            args.config,
            instance=args.instance,
            method=method,
            db=args.db,
            model=model_overrides(args, args.instance),
            scenarios={"spec": args.scenarios, "seed": args.seed},
            solver={"time_limit": args.time_limit},
            lshaped={"time_limit": args.time_limit} if method in (None, "lshaped") else {},
            risk={**risk_overrides(args), "measure": "cvar"},
        )
    except InputError as err:
        if err.field.startswith("risk."):
            check_risk_flags(args, None, err)
        if err.field.endswith(".time_limit") and args.time_limit is not None:
            raise InputError("--time-limit", args.time_limit, err.problem) from None
        if err.field == "scenarios.seed" and args.seed is not None:
            raise InputError("--seed", args.seed, err.problem) from None
        raise
    if config.method == "ph":
        raise InputError("method", "ph", "a frontier solves its points serially: use "
                         "--method ef or lshaped")
    weights = args.weights or DEFAULT_WEIGHTS
    db = check_config_db(config)  # a bad --db fails here, before solving
    taken: set[str] = set()
    if db.exists() or str(db) == ":memory:":
        with open_store(db) as store:
            taken = set(store.frontier_runs()["frontier"])
    frontier_id = new_frontier_id(taken)
    quiet = args.quiet or args.json
    db_path = str(db)

    stored: list[int] = []

    def store_point(k: int, outcome: Any) -> None:
        nonlocal db_path
        run_id, db_path = save_run(point_record(outcome, frontier_id, k, weights), db)
        stored.append(run_id)
        if not quiet:  # one line per point, over the progress display on a terminal
            risk = outcome.result.info["risk"]
            what = "expected cost" if risk["sense"] == "min" else "expected profit"
            clear = "\r\033[K" if progress.enabled else ""
            sys.stderr.write(
                f"{clear}{frontier_id} point {k + 1}/{len(weights)}: weight {weights[k]:g}, "
                f"{what} {money(risk['expected'])}, CVaR {risk['alpha']:.0%} "
                f"{money(risk['cvar'])}, stored as run {run_id} "
                f"({outcome.timings.get('frontier_point', 0.0):.1f} s)\n")
            sys.stderr.flush()

    from stochplan.analysis.frontier import solve_frontier

    progress = Progress(enabled=not quiet)
    try:
        with solving(), progress:
            solve_frontier(config, weights, progress=progress.phase, on_point=store_point)
    except SolveError as err:
        if stored:  # say where the points solved so far are
            err.args = (f"{err} (the {len(stored)} point(s) before it are stored as frontier "
                        f"{frontier_id}: `stochplan frontier --show {frontier_id}"
                        f"{'' if args.db is None else ' --db ' + shlex.quote(db_path)}` "
                        "draws them)",)
        raise
    return _draw(args, frontier_id, db)


def _show(args: argparse.Namespace) -> int:
    from stochplan.analysis.frontier import frontier_info

    text = str(args.show).strip()
    with open_store(args.db) as store:
        runs = store.frontier_runs()
        if runs.empty:
            raise InputError("--show", text, f"no frontiers in {store.path} yet (`stochplan "
                             "frontier INSTANCE` solves one)")
        if text.lower() in LAST:
            frontier_id = str(runs["frontier"].iloc[-1])
        elif text.isdigit():
            try:
                info = frontier_info(store.get_run(int(text)))
            except InputError as err:
                raise InputError("--show", text, err.problem) from None
            if info is None:
                raise InputError("--show", text, f"run {text} is not a frontier point")
            frontier_id = str(info["id"])
        elif text in set(runs["frontier"]):
            frontier_id = text
        else:
            raise InputError("--show", text, f"no such frontier in {store.path} (frontiers: "
                             f"{_listing(runs)})")
        db = store.path
    return _draw(args, frontier_id, db)


def _draw(args: argparse.Namespace, frontier_id: str, db: Any) -> int:
    """Read the frontier's runs back from ``db`` (a path or a database URL), print its table
    (or JSON) and write its page."""
    from stochplan.analysis.frontier import frontier_table, frontier_violations
    from stochplan.reports.frontier import frontier_text, write_frontier

    db_path = str(db)  # for display: a URL's password hidden
    with open_store(db) as store:
        ids = store.frontier_runs(frontier_id)["id"].tolist()
        runs = [store.get_run(int(i)) for i in ids]
    path = write_frontier(runs, args.output, db=db_path).resolve()
    table = frontier_table(runs)
    if args.json:
        print_json({"frontier": frontier_id, "db": db_path, "page": str(path),
                    "points": table.to_dict(orient="records"),
                    "violations": frontier_violations(table)})
        return 0
    print(frontier_text(runs, db=None if args.db is None else db_path))
    print(f"\nFrontier page: {path}")
    return 0


def _listing(runs: Any) -> str:
    names = list(dict.fromkeys(str(f) for f in runs["frontier"]))
    shown = ", ".join(names[-5:])
    return shown if len(names) <= 5 else f"{shown} and {len(names) - 5} older"
