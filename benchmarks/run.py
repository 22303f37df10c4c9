"""Run the benchmark registry.

    .venv/bin/python benchmarks/run.py                 # every spec at every size (make bench)
    .venv/bin/python benchmarks/run.py --only ef-speed --sizes 100 1000
    .venv/bin/python benchmarks/run.py --smoke --out /tmp/bench   # smallest sizes (make test)
    .venv/bin/python benchmarks/run.py --only ef-speed --instance path/to/instance --out DIR

Writes one section per spec to OUT/RESULTS.md and all rows to OUT/RESULTS.json (OUT defaults
to benchmarks/ for full runs; a smoke run needs --out, so it never overwrites real results).
``--instance`` (a built-in instance name or an instance folder, of any registered family) goes to
the specs that take one (``takes_instance``); the others keep their own instance, and naming
another instance for them is an error.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "specs"))

import _results  # noqa: E402
from registry import SPECS  # noqa: E402

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
    parser.add_argument("--instance", default=DEFAULT_INSTANCE, metavar="INSTANCE",
                        help=f"instance name or folder, of any registered family, for the "
                        f"specs that take one ({generic}; default {DEFAULT_INSTANCE})")
    args = parser.parse_args(argv)
    if args.smoke and args.out is None:
        parser.error("--smoke needs --out (smoke numbers never replace the real results)")
    fixed = [n for n in args.only or SPECS if not SPECS[n].takes_instance]
    if args.instance != DEFAULT_INSTANCE and fixed:
        parser.error(f"--instance applies to {generic} only; {', '.join(fixed)} use their own "
                     "instance (choose specs with --only)")
    out = args.out or HERE
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/run.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    results_md, results_json = out / "RESULTS.md", out / "RESULTS.json"
    _results.RESULTS = results_md
    stored = json.loads(results_json.read_text()) if results_json.exists() else {}
    for name in args.only or list(SPECS):
        spec = SPECS[name]
        sizes = tuple(args.sizes) if args.sizes else (spec.smoke if args.smoke else spec.sizes)
        print(f"{name}: sizes {sizes}", flush=True)
        start = time.perf_counter()
        if spec.takes_instance:
            outcome = spec.run(sizes, out, args.smoke, instance=args.instance)
        else:
            outcome = spec.run(sizes, out, args.smoke)
        seconds = time.perf_counter() - start
        versions = _results.versions("stochplan", "pyomo", "highspy", "mpi-sppy", "numpy",
                                     "scipy")
        header = (f"Command: `{command.strip()}` (commit {_results.commit()}, {seconds:.0f} s)  \n"
                  f"Machine: {_results.machine_line()}; {versions}.\n\n"
                  f"{spec.description}\n\n")
        _results.write_section(spec.title, header + outcome.markdown)
        stored[name] = {"sizes": list(sizes), "rows": outcome.rows, "goals": outcome.goals,
                        "seconds": seconds, "command": command.strip()}
        results_json.write_text(json.dumps(stored, indent=1, default=_jsonable))
    return 0


def _jsonable(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
