"""Decomposition against the extensive form: time to a 1 % and a 0.1 % gap.

Electronics, LP relaxation, Poisson scenarios with seed 0 (the EF benchmark's instance),
without lost sales (the seed's model: no relatively complete recourse) and with lost sales
at $1000/unit (complete recourse). For each scenario count S, each cell in its own process:

- EF: stochplan's pipeline (``solve_ef``, matrix backend) and raw highspy on the identical
  LP, both with HiGHS's interior-point method (``ef_child.py``);
- L-shaped: ``solve_lshaped`` (level-stabilised, 50 cuts per iteration) under ``mpiexec``
  on 1 and 2 ranks, asked for 0.01 %;
- PH: ``solve_ph`` (automatic bundles, rho 1 with the primal-dual updater) under
  ``mpiexec`` on 3 ranks (hub + Lagrangian bound + xhat-shuffle incumbent) and, up to
  S = 1000, on 1 rank; asked for 0.1 % within a time limit. Each rank may use at most 7 GiB
  of address space (``decomp_child.py``): a run that needs more fails alone.

Times count from just after the imports (scenario generation and model building included,
as the EF pipeline counts them); a decomposition's time to a gap is read off its record of
bound and incumbent after each iteration (``decomp_child.py``).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from registry import Outcome, Spec, register

HERE = Path(__file__).resolve().parent
EF_CHILD = HERE / "ef_child.py"
CHILD = HERE / "decomp_child.py"
MPIEXEC = Path(sys.executable).parent / "mpiexec"
GAPS = (0.01, 0.001)
VARIANTS: dict[str, dict[str, Any]] = {
    "no lost sales": {},
    "lost sales $1000/unit": {"lost_sales_penalty": 1000.0},
}
#: PH's time limit (seconds of PH) in a full run and in the smoke run.
PH_TIME_LIMIT, PH_SMOKE_LIMIT = 600.0, 15.0
#: PH on one rank only at S up to this (it has no spokes: one rank does everything).
PH_ONE_RANK_MAX_S = 1000
LSHAPED = {"rel_gap": 1e-4}


def _run(cmd: list[str], timeout: float | None = None) -> dict[str, Any]:
    """A child's last stdout line as JSON; a failure becomes {"error": ...}."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=tempfile.gettempdir(),
                             timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"no answer within {timeout:.0f} s"}
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"error": f"exit {out.returncode}: {_reason(out.stderr)}"}
    return json.loads(lines[-1])


def _reason(stderr: str) -> str:
    """The line of a failed child's stderr that says why: the last exception line (a rank
    that raised, e.g. ``MemoryError``), else the last line (mpiexec's ``Abort(1)``)."""
    lines = stderr.strip().splitlines() or ["(no output)"]
    errors = [line for line in lines if re.search(r"\w(Error|Exception)\b", line)]
    return (errors or lines)[-1][-160:]


def ef_cells(n: int, model: dict[str, Any], workdir: Path) -> dict[str, Any]:
    mps = workdir / f"decomp-ef-{n}.mps"
    ours = _run([sys.executable, str(EF_CHILD), "pipeline", str(n), "ipm", str(mps),
                 json.dumps(model)])
    raw = _run([sys.executable, str(EF_CHILD), "raw", str(mps), "ipm"])
    mps.unlink(missing_ok=True)
    return {"pipeline_s": ours.get("wall"), "raw_s": raw.get("wall"),
            "objective": ours.get("objective"), "raw_objective": raw.get("objective"),
            "error": ours.get("error") or raw.get("error")}


def decomposed(method: str, n: int, ranks: int, model: dict[str, Any],
               options: dict[str, Any], timeout: float) -> dict[str, Any]:
    cmd = [str(MPIEXEC), "-n", str(ranks), sys.executable, "-m", "mpi4py", str(CHILD), method,
           str(n), json.dumps(model), json.dumps(options)]
    out = _run(cmd, timeout)
    out["ranks"] = ranks
    out.setdefault("method", method)  # a failed child says nothing of itself
    for gap in GAPS:
        out[f"t_{gap}"] = time_to_gap(out, gap)
    out.pop("history", None)  # kept out of RESULTS.json: long, and summarised by t_*
    return out


def time_to_gap(out: dict[str, Any], gap: float) -> float | None:
    """Seconds from after the imports until (incumbent - bound) / max(1, |incumbent|) <= gap."""
    for seconds, _it, bound, incumbent in out.get("history", []):
        if bound is None or incumbent is None:
            continue
        bound, incumbent = float(bound), float(incumbent)
        if math.isfinite(bound) and math.isfinite(incumbent) and \
                (incumbent - bound) / max(1.0, abs(incumbent)) <= gap + 1e-12:
            return out["offset"] + seconds
    return None


def run(sizes: tuple[int, ...], workdir: Path, smoke: bool) -> Outcome:
    rows = []
    ph_limit = PH_SMOKE_LIMIT if smoke else PH_TIME_LIMIT
    for label, model in VARIANTS.items():
        for n in sizes:
            row: dict[str, Any] = {"variant": label, "S": n, "ef": ef_cells(n, model, workdir)}
            row["lshaped"] = [decomposed("lshaped", n, k, model, LSHAPED, 3600) for k in (1, 2)]
            ph_ranks = [3] + ([1] if n <= PH_ONE_RANK_MAX_S else [])
            if smoke:  # PH smoke: 3 ranks, on the complete-recourse variant only
                ph_ranks = [3] if model else []
            row["ph"] = [decomposed("ph", n, k, model,
                                    {"rel_gap": 0.001, "time_limit": ph_limit,
                                     "max_iterations": 100_000}, ph_limit + 900)
                         for k in ph_ranks]
            rows.append(row)
            _progress(row)
    return Outcome(rows, report(rows, ph_limit), goals(rows))


def _progress(row: dict[str, Any]) -> None:
    ef = row["ef"]
    parts = [f"EF {_s(ef['pipeline_s'])} s (raw {_s(ef['raw_s'])} s)"]
    for cell in row["lshaped"] + row["ph"]:
        parts.append(f"{cell['method']}x{cell['ranks']} to 0.1 % {_s(cell['t_0.001'])} s")
    print(f"  decomposition {row['variant']} S={row['S']}: " + "; ".join(parts), flush=True)


def _s(x: float | None) -> str:
    return "—" if x is None else f"{x:,.1f}"


def _cell(out: dict[str, Any]) -> str:
    """'t1 / t0.1' or what stopped it."""
    if "error" in out:
        return f"failed ({out['error'][:70]})"
    a, b = out.get("t_0.01"), out.get("t_0.001")
    text = f"{_s(a)} / {_s(b)}"
    if b is None:
        gap = out.get("gap")
        gap_text = "no incumbent" if gap is None else f"gap {gap:.2%}"
        text += f" ({str(out.get('stop_reason', '?')).replace('_', ' ')}, {gap_text})"
    return text


def best_time(row: dict[str, Any], gap: float) -> tuple[float | None, str]:
    """The fastest decomposition's time to ``gap`` in a row, and its name."""
    best: tuple[float | None, str] = (None, "—")
    for cell in row["lshaped"] + row["ph"]:
        t = cell.get(f"t_{gap}")
        if t is not None and (best[0] is None or t < best[0]):
            best = (t, f"{cell['method']} on {cell['ranks']} rank(s)")
    return best


def report(rows: list[dict[str, Any]], ph_limit: float) -> str:
    lines = [
        "Time to a 1 % / a 0.1 % gap (s). EF cells solve to optimality (HiGHS's IPM with "
        f"crossover). PH is stopped after {ph_limit:.0f} s of PH.",
        "",
        "| recourse | S | EF pipeline | raw HiGHS | L-shaped, 1 rank | L-shaped, 2 ranks "
        "| PH, 3 ranks | PH, 1 rank | best to 0.1 % / raw |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ef = row["ef"]
        ph = {c["ranks"]: c for c in row["ph"]}
        best, who = best_time(row, 0.001)
        ratio = (f"{best / ef['raw_s']:.2f} ({who})" if best is not None and ef["raw_s"]
                 else "—")
        lines.append(
            f"| {row['variant']} | {row['S']} | {_s(ef['pipeline_s'])} | {_s(ef['raw_s'])} | "
            f"{_cell(row['lshaped'][0])} | {_cell(row['lshaped'][1])} | "
            f"{_cell(ph[3]) if 3 in ph else 'not run'} | "
            f"{_cell(ph[1]) if 1 in ph else 'not run'} | {ratio} |")
    lines += ["", "L-shaped details (1 rank): " + "; ".join(
        f"{r['variant']} S={r['S']}: {r['lshaped'][0].get('iterations', '—')} iterations, "
        f"{r['lshaped'][0].get('feasibility_cuts', '—')} feasibility cuts, recourse "
        f"{_s(r['lshaped'][0].get('timings', {}).get('recourse'))} s, master "
        f"{_s(r['lshaped'][0].get('timings', {}).get('master'))} s"
        for r in rows if "error" not in r["lshaped"][0])]
    for label in VARIANTS:
        mine = [r for r in rows if r["variant"] == label]
        sizes = [r["S"] for r in mine if r["lshaped"][0].get("t_0.001") and r["ef"]["raw_s"]]
        if len(sizes) >= 2:
            pick = [r for r in mine if r["S"] in sizes]
            ours = _slope(sizes, [r["lshaped"][0]["t_0.001"] for r in pick])
            raw = _slope(sizes, [r["ef"]["raw_s"] for r in pick])
            lines.append(f"Growth with S ({label}, least-squares slope of log time on log S): "
                         f"L-shaped (1 rank, to 0.1 %) S^{ours:.2f}, raw HiGHS EF S^{raw:.2f}.")
    wins = []
    for r in rows:
        best, who = best_time(r, 0.001)
        if best is not None and r["ef"]["pipeline_s"] and best < r["ef"]["pipeline_s"]:
            wins.append(f"{r['variant']} S={r['S']} ({who})")
    lines += ["", "Decomposition reaches 0.1 % before the EF pipeline finishes: "
              + (", ".join(wins) if wins else "nowhere in this run") + "."]
    g = goals(rows)
    for label in VARIANTS:
        key = f"best_0.1%_within_third_of_raw_at_5000 ({label})"
        if key in g:
            lines.append(f"Goal (S = 5000, {label}): a 0.1 % gap in at most a third of raw "
                         f"HiGHS's EF time — {'met' if g[key] else 'NOT met'}.")
    return "\n".join(lines)


def _slope(sizes: list[int], times: list[float]) -> float:
    import numpy as np

    return float(np.polyfit(np.log(sizes), np.log(times), 1)[0])


def goals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in rows:
        if r["S"] == 5000 and r["ef"]["raw_s"]:
            best, _ = best_time(r, 0.001)
            out[f"best_0.1%_within_third_of_raw_at_5000 ({r['variant']})"] = (
                best is not None and best <= r["ef"]["raw_s"] / 3)
    return out


register(Spec(
    name="decomposition",
    title="Decomposition against the extensive form",
    sizes=(100, 1000, 5000),
    smoke=(20,),
    run=run,
    description=__doc__.strip().splitlines()[0],
))
