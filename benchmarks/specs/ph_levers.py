"""Progressive hedging: which levers help, against a plain mpi-sppy run.

Electronics, LP relaxation, without and with lost sales (the decomposition spec's two
variants), S Poisson scenarios (seed 0), 3 MPI ranks (hub + Lagrangian bound + xhat-shuffle
incumbent), asked for a 0.1 % gap within a time limit; one run per configuration. First
the plain ``mpisppy.generic_cylinders`` command of issue 3 (Pyomo's ``highs`` interface, no
bundles, rho 1); then stochplan's ``solve_ph`` with one lever changed at a time. Times count
from just after the imports (``decomp_child.py``); the plain command's times are mpi-sppy's
own (from the start of its PH).
"""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from decomposition import MPIEXEC, VARIANTS, _reason, _s, decomposed
from registry import Outcome, Spec, register

#: Configurations: name -> PHOptions fields (stochplan's defaults last).
LEVERS: dict[str, dict[str, Any]] = {
    "no bundles, rho 1": {"bundle_size": 1, "adaptive_rho": False},
    "bundles of 10, rho 1": {"bundle_size": 10, "adaptive_rho": False},
    "automatic bundles, SEP rho": {"rho": "sep", "adaptive_rho": False},
    "automatic bundles, coefficient rho x0.01": {"rho": "coeff", "rho_multiplier": 0.01,
                                                 "adaptive_rho": False},
    "automatic bundles, rho 1": {"adaptive_rho": False},
    "automatic bundles, rho 1 + primal-dual updater (default)": {},
}
SMOKE_LEVERS = ("automatic bundles, rho 1 + primal-dual updater (default)",)
TIME_LIMIT, SMOKE_LIMIT = 300.0, 15.0


def plain_generic_cylinders(n: int, time_limit: float, model: dict[str, Any]) -> dict[str, Any]:
    """Issue 3's plain mpi-sppy command; times to 1 % read off its printed trace."""
    cmd = [str(MPIEXEC), "-n", "3", sys.executable, "-m", "mpi4py", "-m",
           "mpisppy.generic_cylinders", "--module-name", "stochplan.models.aggregate",
           "--num-scens", str(n), "--scenario-kind", "poisson", "--relax-integrality",
           "--solver-name", "highs",
           "--default-rho", "1", "--lagrangian", "--xhatshuffle", "--rel-gap", "0.001",
           "--time-limit", str(int(time_limit)),  # an integer: mpi-sppy refuses "300.0"
           "--max-iterations", "100000"]
    if "lost_sales_penalty" in model:
        cmd += ["--lost-sales-penalty", str(model["lost_sales_penalty"])]
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, check=False,
                              timeout=time_limit + 600)
    trace = []
    for line in proc.stdout.splitlines():
        parts = line.replace("[", " ").replace("]", " ").split()
        if len(parts) >= 6 and parts[1].isdigit() and parts[-2].endswith("%"):
            try:
                trace.append((float(parts[0]), int(parts[1]), float(parts[-2].rstrip("%")) / 100))
            except ValueError:
                pass
    out: dict[str, Any] = {"command": "mpiexec -n 3 python -m mpi4py " + " ".join(cmd[6:]),
                           "returncode": proc.returncode,
                           "iterations": trace[-1][1] if trace else 0,
                           "gap": trace[-1][2] if trace else math.inf}
    for gap in (0.01, 0.001):
        reached = [t for t, _, g in trace if g <= gap]
        out[f"t_{gap}"] = reached[0] if reached else None
    if proc.returncode != 0 or not trace:
        out["error"] = f"exit {proc.returncode}: {_reason(proc.stderr)}"
    return out


def run(sizes: tuple[int, ...], workdir: Path, smoke: bool) -> Outcome:
    limit = SMOKE_LIMIT if smoke else TIME_LIMIT
    rows = []
    for label, model in VARIANTS.items():
        if smoke and not model:  # the smoke run: stochplan's default, complete recourse
            continue
        for n in sizes:
            if not smoke:  # the smoke run checks stochplan's own PH only
                plain = plain_generic_cylinders(n, limit, model)
                rows.append({"variant": label, "S": n, "name": "plain generic_cylinders",
                             "out": plain})
                print(f"  ph-levers {label} S={n} plain: to 1 % {_s(plain['t_0.01'])} s",
                      flush=True)
            for name, fields in LEVERS.items():
                if smoke and name not in SMOKE_LEVERS:
                    continue
                out = decomposed("ph", n, 3, model,
                                 {"rel_gap": 0.001, "time_limit": limit,
                                  "max_iterations": 100_000, **fields}, limit + 600)
                rows.append({"variant": label, "S": n, "name": name, "out": out})
                print(f"  ph-levers {label} S={n} {name}: to 1 % {_s(out['t_0.01'])} s, "
                      f"to 0.1 % {_s(out['t_0.001'])} s", flush=True)
    lines = [f"3 ranks, 0.1 % target, {limit:.0f} s of PH at most, one run each.", "",
             "| recourse | S | configuration | to 1 % (s) | to 0.1 % (s) | iterations | "
             "final gap |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        out = row["out"]
        gap = out.get("gap")
        gap_text = ("no incumbent" if gap is None or not math.isfinite(gap) else f"{gap:.3%}")
        if "error" in out and out.get("t_0.01") is None:
            gap_text = f"failed: {out['error'][:100]}"
        lines.append(f"| {row['variant']} | {row['S']} | {row['name']} | "
                     f"{_s(out.get('t_0.01'))} | {_s(out.get('t_0.001'))} | "
                     f"{out.get('iterations', '—')} | {gap_text} |")
    commands = {row["out"]["command"] for row in rows if "command" in row["out"]}
    if commands:
        lines += ["", "Plain generic_cylinders commands (times are mpi-sppy's, from its start):"]
        lines += [f"`{c}`" for c in sorted(commands)]
    return Outcome(rows, "\n".join(lines))


register(Spec(
    name="ph-levers",
    title="Progressive hedging levers",
    sizes=(100,),
    smoke=(12,),
    run=run,
    description=__doc__.strip().splitlines()[0],
))
