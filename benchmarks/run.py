"""Run the benchmark registry.

    .venv/bin/python benchmarks/run.py                 # every spec at every size (make bench)
    .venv/bin/python benchmarks/run.py --only ef-speed --sizes 100 1000
    .venv/bin/python benchmarks/run.py --smoke --out /tmp/bench   # smallest sizes (make test)
    .venv/bin/python benchmarks/run.py --only ef-speed --instance path/to/instance --out DIR

Writes one section per spec to OUT/RESULTS.md and all rows to OUT/RESULTS.json (OUT defaults
to benchmarks/ for full runs; a smoke run needs --out, so it never overwrites real results).
``--instance`` (a built-in instance name or an instance folder, of any registered family) goes to
the specs that take one (``takes_instance``); a spec with its own list of instances
(``instances``: ``mip-decomposition`` runs ``furniture``, ``laser`` and ``laser-integer``)
runs only the one named; the others keep their own instance, and naming another instance for
them is an error.

A spec that keeps rows (``keeps_rows``) is handed its previous run's rows and keeps those this run
does not measure again, each row labelled with the command and commit that measured it: a run of
one instance or size adds its rows to the section instead of replacing the section.

A spec that checkpoints (``checkpoints``) has its section rewritten as its rows finish, headed
"(partial: N of M rows)" (or cells; ``"partial"`` set in RESULTS.json) until the last one: an
interrupted run keeps what it measured. The others are written when they finish.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "specs"))

import _results  # noqa: E402
from registry import SPECS, Checkpoint, Outcome, Spec  # noqa: E402

SPEC_MODULES = ("ef_speed", "plan_quality", "decomposition", "ph_levers", "multisite",
                "mip_decomposition", "risk", "ph_scale")
#: The instance of the specs that take one, unless ``--instance`` names another.
DEFAULT_INSTANCE = "electronics"


def load_specs() -> None:
    import importlib

    for name in SPEC_MODULES:
        importlib.import_module(name)


def main(argv: list[str] | None = None) -> int:
    load_specs()
    parser = argparse.ArgumentParser(description="stochplan benchmarks")
    parser.add_argument("--only", nargs="+", choices=sorted(SPECS), help="these specs only")
    parser.add_argument("--sizes", nargs="+", type=int, help="override the size axis")
    parser.add_argument("--smoke", action="store_true", help="smallest size of every spec")
    parser.add_argument("--out", type=Path, help="folder for RESULTS.md / RESULTS.json")
    generic = ", ".join(n for n, s in SPECS.items() if s.takes_instance)
    own = "; ".join(f"{n}: {', '.join(s.instances)}" for n, s in SPECS.items() if s.instances)
    parser.add_argument("--instance", metavar="INSTANCE",
                        help=f"instance name or folder, of any registered family, for the "
                        f"specs that take one ({generic}; default {DEFAULT_INSTANCE}); for a "
                        f"spec with its own instances ({own}), one of them")
    args = parser.parse_args(argv)
    if args.smoke and args.out is None:
        parser.error("--smoke needs --out (smoke numbers never replace the real results)")
    if args.instance is not None:
        fixed = [n + (f" ({', '.join(SPECS[n].instances)})" if SPECS[n].instances else "")
                 for n in args.only or SPECS if not SPECS[n].takes_instance
                 and args.instance not in SPECS[n].instances]
        if fixed:
            parser.error(f"--instance applies to {generic} only; {', '.join(fixed)} use their "
                         "own instance (choose specs with --only)")
    out = args.out or HERE
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/run.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    _results.RESULTS = out / "RESULTS.md"
    for name in args.only or list(SPECS):
        spec = SPECS[name]
        sizes = tuple(args.sizes) if args.sizes else (spec.smoke if args.smoke else spec.sizes)
        print(f"{name}: sizes {sizes}", flush=True)
        kwargs: dict[str, Any] = {}
        if spec.takes_instance:
            kwargs["instance"] = args.instance or DEFAULT_INSTANCE
        if spec.instances:
            kwargs["instances"] = (args.instance,) if args.instance else spec.instances
        if spec.keeps_rows:
            kwargs["earlier"] = earlier_rows(out, spec)
        start = time.perf_counter()
        if spec.checkpoints:
            kwargs["checkpoint"] = checkpointer(out, spec, sizes, command, start)
        outcome = spec.run(sizes, out, args.smoke, **kwargs)
        write(out, spec, sizes, outcome, time.perf_counter() - start, command)
    return 0


def earlier_rows(out: Path, spec: Spec) -> list[dict[str, Any]]:
    """The rows of ``spec``'s last run in OUT/RESULTS.json, each with ``"run"`` (command and
    commit of the run that measured it: kept from an earlier merge, else that entry's own)."""
    path = out / "RESULTS.json"
    entry = json.loads(path.read_text()).get(spec.name) if path.exists() else None
    if not entry:
        return []
    run = {"command": entry.get("command"),
           "commit": entry.get("commit") or _results.section_commit(spec.title)}
    return [dict(row, run=row.get("run") or run) for row in entry.get("rows", [])]


def checkpointer(out: Path, spec: Spec, sizes: tuple[Any, ...], command: str,
                 start: float) -> Checkpoint:
    """The ``checkpoint`` handed to a spec: each call rewrites its entries, marked partial
    until ``done == total``."""

    def checkpoint(outcome: Outcome, done: int, total: int, unit: str) -> None:
        partial = None if done >= total else f"{done} of {total} {unit}"
        write(out, spec, sizes, outcome, time.perf_counter() - start, command, partial)

    return checkpoint


def write(out: Path, spec: Spec, sizes: tuple[Any, ...], outcome: Outcome, seconds: float,
          command: str, partial: str | None = None) -> None:
    """Rewrite ``spec``'s section of OUT/RESULTS.md and its entry in OUT/RESULTS.json (the
    other specs' stay as they are); ``partial`` (``"N of M rows"``) marks both as unfinished."""
    _results.RESULTS = out / "RESULTS.md"
    results_json = out / "RESULTS.json"
    versions = _results.versions("stochplan", "pyomo", "highspy", "mpi-sppy", "numpy", "scipy")
    header = (f"Command: `{command.strip()}` (commit {_results.commit()}, {seconds:.0f} s)  \n"
              f"Machine: {_results.machine_line()}; {versions}.\n\n"
              f"{spec.description}\n\n")
    _results.write_section(spec.title, header + outcome.markdown, partial)
    stored = json.loads(results_json.read_text()) if results_json.exists() else {}
    stored[spec.name] = {"sizes": list(sizes), "rows": outcome.rows, "goals": outcome.goals,
                         "seconds": seconds, "command": command.strip(),
                         "commit": _results.commit(), "partial": partial}
    results_json.write_text(json.dumps(stored, indent=1, default=_jsonable))


def _jsonable(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
