"""EF speed: stochplan's extensive-form pipeline against a raw highspy solve of the same LP.

Each cell runs in its own process (ef_child.py) so that peak memory is the process's own:
- pipeline: scenario generation, model compile, EF assembly, HiGHS, solution tables;
- raw: highspy reading the identical LP (exported by the pipeline run as MPS) and solving it,
  timing only ``run()``;
- pyomo (S <= 1000): the same pipeline through Pyomo and mpi-sppy's EF, for reference.
Electronics by default (``--instance`` names any instance of any registered family), LP
relaxation, Poisson scenarios with seed 0, HiGHS's interior-point method.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
from registry import Outcome, Spec, register

CHILD = Path(__file__).with_name("ef_child.py")
ALGORITHM = "ipm"
DEFAULT_INSTANCE = "electronics"


def _child(*args: str) -> dict:
    out = subprocess.run([sys.executable, str(CHILD), *args], capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        raise RuntimeError(f"ef_child {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def exponent(sizes: list[int], times: list[float]) -> float:
    """Least-squares slope of log(time) on log(S)."""
    if len(sizes) < 2:
        return math.nan
    return float(np.polyfit(np.log(sizes), np.log(times), 1)[0])


def run(sizes: tuple[int, ...], workdir: Path, smoke: bool,
        instance: str = DEFAULT_INSTANCE) -> Outcome:
    rows = []
    for n in sizes:
        mps = workdir / f"ef-{n}.mps"
        ours = _child("pipeline", str(n), ALGORITHM, str(mps), "--instance", instance)
        raw = _child("raw", str(mps), ALGORITHM)
        mps.unlink(missing_ok=True)
        pyomo = (_child("pyomo", str(n), ALGORITHM, "--instance", instance) if n <= 1000
                 else None)
        rows.append({
            "S": n, "instance": instance, "pipeline_s": ours["wall"], "raw_s": raw["wall"],
            "time_ratio": ours["wall"] / raw["wall"], "pipeline_mib": ours["peak_mib"],
            "raw_mib": raw["peak_mib"], "memory_ratio": ours["peak_mib"] / raw["peak_mib"],
            "pipeline_phases": ours["timings"], "pyomo_s": pyomo["wall"] if pyomo else None,
            "pyomo_mib": pyomo["peak_mib"] if pyomo else None,
            "objective": ours["objective"], "raw_objective": raw["objective"],
            "same_objective": math.isclose(ours["objective"], raw["objective"], rel_tol=1e-7),
        })
        print(f"  ef-speed S={n}: {rows[-1]['pipeline_s']:.2f} s vs raw {raw['wall']:.2f} s",
              flush=True)
    lines = [
        f"Instance: `{instance}`.",
        "",
        "| S | stochplan pipeline (s) | raw HiGHS (s) | time ratio | pipeline peak (MiB) "
        "| raw peak (MiB) | memory ratio | Pyomo/mpi-sppy pipeline (s, MiB) | same objective |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        py = f"{r['pyomo_s']:.1f}, {r['pyomo_mib']:.0f}" if r["pyomo_s"] is not None else "—"
        lines.append(f"| {r['S']} | {r['pipeline_s']:.2f} | {r['raw_s']:.2f} "
                     f"| {r['time_ratio']:.2f} "
                     f"| {r['pipeline_mib']:.0f} | {r['raw_mib']:.0f} | {r['memory_ratio']:.2f} "
                     f"| {py} | {'yes' if r['same_objective'] else 'NO'} |")
    ns = [r["S"] for r in rows]
    e_ours = exponent(ns, [r["pipeline_s"] for r in rows])
    e_raw = exponent(ns, [r["raw_s"] for r in rows])
    lines += ["", f"Growth with S (least-squares slope of log time on log S): pipeline "
              f"S^{e_ours:.2f}, raw HiGHS S^{e_raw:.2f}."]
    lines += ["", "Pipeline phases (s): " + "; ".join(
        f"S={r['S']}: " + ", ".join(f"{k} {v:.2f}" for k, v in r["pipeline_phases"].items())
        for r in rows)]
    goals = {}
    at_1000 = [r for r in rows if r["S"] == 1000]
    if at_1000:
        r = at_1000[0]
        goals = {"time_within_1.5x_at_1000": r["time_ratio"] <= 1.5,
                 "memory_within_2x_at_1000": r["memory_ratio"] <= 2.0}
        lines += ["", f"Goal at S = 1000: time within 1.5x of raw — "
                  f"{'met' if goals['time_within_1.5x_at_1000'] else 'NOT met'} "
                  f"({r['time_ratio']:.2f}x); peak memory within 2x — "
                  f"{'met' if goals['memory_within_2x_at_1000'] else 'NOT met'} "
                  f"({r['memory_ratio']:.2f}x)."]
    return Outcome(rows, "\n".join(lines), goals)


register(Spec(
    name="ef-speed",
    title="EF pipeline against the raw solver",
    sizes=(100, 1000, 5000),
    smoke=(20,),
    run=run,
    description=__doc__.strip().splitlines()[0],
    takes_instance=True,
))
