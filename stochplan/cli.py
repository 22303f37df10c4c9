"""The ``stochplan`` command line.

::

    stochplan instances
    stochplan solve INSTANCE [--scenarios three-point|poisson:N|qmc:N] [--seed S] [--relax]
                             [--config FILE.toml] [--db PATH] [--time-limit SEC] [--partial] [--json]
                             [--quiet] [--method ef|ph|lshaped] [--rel-gap G] [--max-iterations N]
    mpiexec -n 3 python -m mpi4py -m stochplan solve INSTANCE --method ph ...   (decomposed)
    mpiexec -n 2 python -m mpi4py -m stochplan solve INSTANCE --method lshaped --relax ...
    stochplan runs [--db PATH] [--limit N]
    stochplan show RUN [--db PATH] [--json]
    stochplan value INSTANCE | --module MODULE --num-scens N     (stochplan.cli_value)
    stochplan evaluate RUN [--scenarios poisson:M] [--seed S]   (stochplan.cli_value)
    stochplan saa INSTANCE --target-gap G                       (stochplan.cli_value)
    stochplan dashboard RUN [-o FILE.html]                      (stochplan.reports.commands)
    stochplan compare RUN RUN... [-o FILE.html]                 (stochplan.reports.commands)

User mistakes print one line, ``stochplan: error: ...``, and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from stochplan.errors import InfeasibleError, SolveError, StochplanError

log = logging.getLogger("stochplan")

#: Modules that add subcommands: each has ``add_commands(subparsers)``, which adds its parsers
#: with ``set_defaults(handler=function)``; the handler takes the parsed arguments and returns
#: the exit status. Keep these modules light to import (import heavy things in the handlers).
COMMAND_MODULES: tuple[str, ...] = (
    "stochplan.cli_value",
    "stochplan.reports.commands",
)

EXIT_USAGE = 2
EXIT_SOLVE = 3
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"stochplan: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stochplan", description="Two-stage stochastic production planning.")
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    sub.add_parser("instances", help="list the built-in instances").set_defaults(handler=_instances)

    solve = sub.add_parser("solve", help="solve an instance's recourse problem (extensive form, "
                           "or progressive hedging under mpiexec)")
    solve.add_argument("instance", metavar="INSTANCE",
                       help="built-in instance name (see `stochplan instances`) or instance folder")
    solve.add_argument("--scenarios", metavar="SPEC",
                       help="three-point (default), poisson:N or qmc:N")
    solve.add_argument("--seed", type=int, metavar="S", help="base seed of the scenario draws")
    solve.add_argument("--relax", action="store_true", help="solve the LP relaxation")
    solve.add_argument("--config", metavar="FILE.toml", help="run configuration file")
    solve.add_argument("--db", metavar="PATH", help="results database (default ./stochplan.db)")
    solve.add_argument("--time-limit", type=float, metavar="SEC",
                       help="solver time limit (with --method ph: PH's time limit)")
    solve.add_argument("--partial", action="store_true",
                       help="keep a solve stopped by the time limit (with its gap) instead of failing")
    solve.add_argument("--method", choices=("ef", "ph", "lshaped"),
                       help="ef: extensive form (default); ph: progressive hedging with mpi-sppy "
                       "(run under mpiexec; 3 or more ranks add bound and incumbent spokes); "
                       "lshaped: level-stabilised L-shaped method for LPs (serial, or under "
                       "mpiexec with the scenarios shared among ranks)")
    solve.add_argument("--rel-gap", type=float, metavar="G",
                       help="--method ph or lshaped: stop at this relative gap (default 0.01 "
                       "for ph, 1e-4 for lshaped)")
    solve.add_argument("--max-iterations", type=int, metavar="N",
                       help="--method ph or lshaped: iteration limit (default 200 for ph, "
                       "1000 for lshaped)")
    solve.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    solve.add_argument("--quiet", action="store_true", help="no progress display")
    solve.set_defaults(handler=_solve)

    runs = sub.add_parser("runs", help="list the runs in the results database")
    runs.add_argument("--db", metavar="PATH")
    runs.add_argument("--limit", type=int, default=20, metavar="N")
    runs.add_argument("--json", action="store_true")
    runs.set_defaults(handler=_runs)

    show = sub.add_parser("show", help="print one stored run")
    show.add_argument("run", type=int, metavar="RUN")
    show.add_argument("--db", metavar="PATH")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_show)

    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.handler(args))
    except InfeasibleError as err:
        print(f"stochplan: infeasible: {err}", file=sys.stderr)
        return EXIT_SOLVE
    except SolveError as err:
        print(f"stochplan: solve failed: {err}", file=sys.stderr)
        return EXIT_SOLVE
    except StochplanError as err:
        print(f"stochplan: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("stochplan: interrupted; the results database is unchanged", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout closed early (`stochplan ... | head`): not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep Python's exit flush quiet
        return 0


# ----------------------------------------------------------------------------------------------
# Commands


def _instances(args: argparse.Namespace) -> int:
    from stochplan.data import builtin_instances

    for name, description in builtin_instances().items():
        print(f"{name:<16}{description}")
    return 0


def _solve(args: argparse.Namespace) -> int:
    from stochplan.config import DECOMPOSED, load_config

    config = load_config(
        args.config,
        instance=args.instance,
        method=args.method,
        db=args.db,
        model={"integer": False} if args.relax else None,
        scenarios={"spec": args.scenarios, "seed": args.seed},
        solver={"time_limit": args.time_limit},
        ph={"rel_gap": args.rel_gap, "max_iterations": args.max_iterations,
            "time_limit": args.time_limit},
        lshaped={"rel_gap": args.rel_gap, "max_iterations": args.max_iterations,
                 "time_limit": args.time_limit},
    )
    if config.method not in DECOMPOSED:
        for flag, value in (("--rel-gap", args.rel_gap), ("--max-iterations", args.max_iterations)):
            if value is not None:
                from stochplan.errors import InputError

                raise InputError(flag, value, "applies to --method ph or lshaped only")
        return _solve_once(args, config)
    # decomposed: every MPI rank solves, rank 0 alone stores and prints
    from stochplan.parallel import world

    comm = world()
    if comm is None or comm.Get_rank() == 0:
        return _solve_once(args, config, comm)
    try:
        _solve_once(args, config, comm)
    except InfeasibleError:
        return EXIT_SOLVE
    except SolveError:
        return EXIT_SOLVE
    except StochplanError:  # rank 0 reports it
        return EXIT_USAGE
    return 0


def _solve_once(args: argparse.Namespace, config: Any, comm: Any = None) -> int:
    """Solve, store and print; under MPI (``comm``), ranks other than 0 only solve."""
    from stochplan.store import ResultsStore, resolve_db

    me = 0 if comm is None else comm.Get_rank()
    db_error: StochplanError | None = None
    if me == 0:
        try:
            db = resolve_db(config.db)  # a bad --db fails here, before any solving ...
            if db.exists():
                ResultsStore(db).close()  # ... and so does an existing file that is not ours
        except StochplanError as err:
            db_error = err
    if comm is not None and not comm.bcast(db_error is None, root=0):
        if db_error is not None:
            raise db_error
        return EXIT_USAGE
    if db_error is not None:
        raise db_error
    show = me == 0 and not (args.quiet or args.json)
    with _captured_stdout(), Progress(enabled=show) as progress:
        from stochplan.run import solve_instance, to_record

        outcome = solve_instance(config, progress=progress.phase, allow_partial=args.partial)
        if outcome is None:  # an MPI rank other than 0
            return 0
        progress.phase("store")
        record = to_record(outcome)
        with ResultsStore(db) as store:
            run_id = store.save_run(record)
            db_path = str(store.path)

    if args.json:
        payload = {
            "run_id": run_id,
            "db": db_path,
            "instance": record.instance,
            "scenarios": record.scenarios,
            "seed": record.seed,
            "n_scenarios": record.n_scenarios,
            **outcome.result.to_dict(),
            "kpis": outcome.kpis.headline,
            "timings": outcome.timings,
        }
        print(json.dumps(_json_safe(payload)))
        return 0

    from stochplan.reports.text import kpi_report_text

    header = _header(run_id, record.instance, record.scenarios, record.n_scenarios,
                     record.method, record.status, record.objective, record.gap,
                     outcome.instance.options.integer)
    print(kpi_report_text(header, outcome.kpis.headline, outcome.kpis.composition,
                          outcome.kpis.products))
    if outcome.result.method == "ph":
        print("\n" + _ph_summary(outcome.result))
    elif outcome.result.method == "lshaped":
        print("\n" + _lshaped_summary(outcome.result))
    print(f"\nStored as run {run_id} in {db_path} "
          f"(solve {outcome.timings.get('solve', 0.0):.1f} s); `stochplan show {run_id}` prints it again.")
    return 0


def _runs(args: argparse.Namespace) -> int:
    from stochplan.store import ResultsStore, resolve_db

    path = resolve_db(args.db)
    if not path.exists():
        print(f"no results database at {path} yet: `stochplan solve` creates it", file=sys.stderr)
        return 0
    with ResultsStore(path) as store:
        table = store.list_runs(limit=args.limit)
    if args.json:
        print(table.to_json(orient="records"))
    elif table.empty:
        print(f"no runs in {path}")
    else:
        print(table.to_string(index=False))
    return 0


def _show(args: argparse.Namespace) -> int:
    from stochplan.reports.text import kpi_report_text
    from stochplan.store import ResultsStore, resolve_db

    path = resolve_db(args.db)
    if not path.exists():
        from stochplan.errors import InputError

        raise InputError("--db", str(path), "no results database there")
    with ResultsStore(path) as store:
        stored = store.get_run(args.run)
    rec = stored.record
    if args.json:
        payload = {
            "run_id": stored.id, "created": stored.created, "instance": rec.instance,
            "family": rec.family, "method": rec.method, "scenarios": rec.scenarios,
            "seed": rec.seed, "n_scenarios": rec.n_scenarios, "status": rec.status,
            "objective": rec.objective, "bound": rec.bound, "gap": rec.gap,
            "kpis": rec.kpis, "config": rec.config, "versions": rec.versions,
            "timings": rec.timings,
        }
        print(json.dumps(_json_safe(payload)))
        return 0
    header = _header(stored.id, rec.instance, rec.scenarios, rec.n_scenarios, rec.method,
                     rec.status, rec.objective, rec.gap,
                     bool(rec.config.get("model", {}).get("integer", True)))
    print(f"created {stored.created}")
    print(kpi_report_text(header, rec.kpis, rec.tables["composition"], rec.tables["products"]))
    return 0


# ----------------------------------------------------------------------------------------------
# Helpers


def _header(run_id: int, instance: str, scenarios: str, n: int, method: str, status: str,
            objective: float | None, gap: float | None, integer: bool) -> dict[str, Any]:
    return {"run_id": run_id, "instance": instance, "scenarios": scenarios, "n_scenarios": n,
            "method": method, "status": status, "objective": objective, "gap": gap,
            "integer": integer}


def _ph_summary(result: Any) -> str:
    """One paragraph on a progressive hedging solve: ranks, iterations, why it stopped."""
    info = result.info
    gap = "n/a" if result.gap is None else f"{result.gap:.3%}"
    bound = "none" if result.bound is None else f"${result.bound:,.2f}"
    return (f"Progressive hedging on {info.get('ranks')} rank(s) "
            f"({', '.join(info.get('cylinders', []))}), bundles of {info.get('bundle_size')} "
            f"scenario(s): {info.get('iterations')} iterations, stopped on "
            f"{str(info.get('stop_reason')).replace('_', ' ')}.\n"
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
            f"{info.get('feasibility_cuts')} feasibility cuts), stopped on "
            f"{str(info.get('stop_reason')).replace('_', ' ')}.\n"
            f"Bound {bound}, plan ${result.objective:,.2f}, gap {gap} "
            f"(target {info.get('rel_gap_target', 0):.4%}).")


def _version() -> str:
    from stochplan import __version__

    return f"stochplan {__version__}"


def _json_safe(value: Any) -> Any:
    """JSON has no inf/nan: write them as the strings "inf", "-inf", "nan"."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


@contextlib.contextmanager
def _captured_stdout() -> Iterator[None]:
    """Keep what libraries print (mpi-sppy prints on import) out of our stdout."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield
    if buffer.getvalue().strip():
        log.debug("library output: %s", buffer.getvalue().strip())


class Progress:
    """A one-line elapsed-time display on stderr, shown only on a terminal."""

    def __init__(self, enabled: bool = True, stream: Any = None):
        self.stream = stream or sys.stderr
        self.enabled = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._phase = "start"
        self._start = time.perf_counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def phase(self, name: str) -> None:
        self._phase = name
        log.info("phase: %s", name)

    def __enter__(self) -> Progress:
        if self.enabled:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self.stream.write("\r\033[K")
            self.stream.flush()

    def _run(self) -> None:
        frames = "|/-\\"
        i = 0
        while not self._stop.wait(0.2):
            elapsed = time.perf_counter() - self._start
            if elapsed >= 1.0:
                self.stream.write(f"\r\033[K{frames[i % 4]} {self._phase} ... {elapsed:5.1f} s")
                self.stream.flush()
            i += 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
