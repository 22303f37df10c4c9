"""Multi-site: every site's two-stage problem solved apart, serially, on 2 processes and on 2
MPI ranks, against the naive loop (each site's Pyomo extensive form built through mpi-sppy and
solved through Pyomo's HiGHS interface, one after another: the seed notebook's way).

Sites from the multi-site generator (seed 0, documented defaults), S Poisson demand scenarios
(seed 0), the LP relaxation (``relax``) and the integer model. The size axis is the number of
sites. stochplan's time is the blocks' wall time (:func:`stochplan.solve.blocks.solve_blocks`);
the MPI run is ``stochplan solve --input-db`` under ``mpiexec -n 2`` (its ``timings.solve``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from registry import Outcome, Spec, register

from stochplan.cli import main as cli
from stochplan.family import get_family
from stochplan.models.multisite.db import read_instance
from stochplan.solve.blocks import solve_blocks
from stochplan.solve.ef import solve_ef
from stochplan.solve.solvers import SolverOptions

SEED = 0
SCENARIOS, SMOKE_SCENARIOS = 100, 4
#: Sites of the naive loop at most (it is measured per site and extrapolated beyond).
NAIVE_SITES = 100


def _naive(family, inst, spec: str, sites: int) -> tuple[float, float]:
    """Seconds and objective of the Pyomo loop over the first ``sites`` sites."""
    start = time.perf_counter()
    total = 0.0
    for n in range(sites):
        sub = inst.subset([n])
        names = family.scenario_set(sub, spec, SEED).names
        res = solve_ef(family.module, names, family.creator_kwargs(sub, spec, SEED),
                       SolverOptions(backend="pyomo"))
        total += float(res.objective)
    return time.perf_counter() - start, total


def _mpi(db: Path, spec: str, relax: bool, workdir: Path) -> dict:
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        return {"error": f"no mpiexec beside {sys.executable}"}
    cmd = [str(mpiexec), "-n", "2", sys.executable, "-m", "stochplan", "solve", "multisite",
           "--input-db", str(db), "--scenarios", spec, "--seed", str(SEED), "--json",
           "--db", str(workdir / "multisite-runs.db"), *(["--relax"] if relax else [])]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=7200,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wall = time.perf_counter() - start
    if out.returncode != 0:
        return {"error": out.stderr.strip()[-500:]}
    line = next(x for x in out.stdout.splitlines() if x.startswith("{"))
    data = json.loads(line)
    return {"seconds": float(data["timings"]["solve"]), "wall": wall,
            "objective": float(data["objective"])}


def run(sizes: tuple[int, ...], workdir: Path, smoke: bool) -> Outcome:
    family = get_family("multisite")
    S = SMOKE_SCENARIOS if smoke else SCENARIOS
    spec = f"sample:{S}"
    rows = []
    for sites in sizes:
        db = workdir / f"multisite-{sites}.db"
        db.unlink(missing_ok=True)
        cli(["generate", "multisite", "--sites", str(sites), "--seed", str(SEED), "--db",
             str(db)])
        base = read_instance(str(db))
        for relax in (True, False):
            inst = base.with_options(integer=not relax)
            row: dict = {"sites": sites, "scenarios": S, "relax": relax}
            for label, workers in (("serial", 1), ("processes_2", 2)):
                start = time.perf_counter()
                res = solve_blocks(family, inst, spec, SEED, workers=workers)
                assert res is not None
                row[label] = {"seconds": time.perf_counter() - start,
                              "objective": float(res.objective)}
            row["mpi_2"] = _mpi(db, spec, relax, workdir)
            n_naive = min(sites, NAIVE_SITES)
            seconds, objective = _naive(family, inst, spec, n_naive)
            row["naive"] = {"sites": n_naive, "seconds": seconds,
                            "seconds_per_site": seconds / n_naive, "objective": objective}
            rows.append(row)
            print(f"  {sites} sites, relax={relax}: serial {row['serial']['seconds']:.1f} s, "
                  f"2 processes {row['processes_2']['seconds']:.1f} s, "
                  f"naive {seconds / n_naive:.2f} s/site", flush=True)
    lines = ["| sites | S | model | serial s (s/site) | 2 processes s | 2 MPI ranks s | "
             "naive loop s/site | naive / serial per site | same objective |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        per = r["serial"]["seconds"] / r["sites"]
        mpi = r["mpi_2"].get("seconds")
        same = np.isclose(r["serial"]["objective"], r["processes_2"]["objective"], rtol=1e-12)
        if mpi is not None:
            same = same and np.isclose(r["serial"]["objective"], r["mpi_2"]["objective"],
                                       rtol=1e-12)
        if r["naive"]["sites"] == r["sites"]:
            same = same and np.isclose(r["serial"]["objective"], r["naive"]["objective"],
                                       rtol=1e-4)
        lines.append(
            f"| {r['sites']} | {r['scenarios']} | {'LP' if r['relax'] else 'MIP'} | "
            f"{r['serial']['seconds']:.1f} ({per:.3f}) | {r['processes_2']['seconds']:.1f} | "
            f"{'n/a' if mpi is None else f'{mpi:.1f}'} | "
            f"{r['naive']['seconds_per_site']:.3f} | "
            f"{r['naive']['seconds_per_site'] / per:.1f}x | {'yes' if same else 'NO'} |")
    goal = ("Goal (issue 13): 1,000 sites x 100 scenarios within 137.5 s (the seed notebook's "
            "time for 100 deterministic sites) on this 2-core machine.")
    return Outcome(rows, "\n".join(lines) + "\n\n" + goal + "\n",
                   {"sites_1000_within_s": 137.5})


register(Spec(
    name="multisite",
    title="Multi-site: sites solved apart (serial, processes, MPI) against the naive loop",
    sizes=(100,),
    smoke=(3,),
    run=run,
    description=__doc__ or "",
))
