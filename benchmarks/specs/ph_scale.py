"""Progressive hedging at scale: stochplan's PH (highspy subproblems) against plain mpi-sppy.

Electronics, LP relaxation, lost sales at $1000/unit (complete recourse), ``poisson:S`` with
seed 0, 3 MPI ranks (hub + Lagrangian bound + xhat-shuffle incumbent), asked for a 1 % gap
within a time limit:

- stochplan: ``solve_ph`` with its defaults (highspy guest: each scenario or bundle compiled
  once by the matrix backend, automatic bundles, rho 1 with the primal-dual updater), under
  ``mpiexec`` (``decomp_child.py``): time to 1 % (from just after the imports, scenario
  generation and compilation included) and each rank's peak resident memory;
- the same with small bundles (:data:`SMALL_BUNDLE` scenarios each): at S >= 1,000 the
  automatic bundles (:data:`stochplan.solve.ph.MAX_AUTO_BUNDLE` scenarios) are so large that
  PH meets the target at iteration 0; with small ones it iterates, and the row shows the
  time per PH iteration (PH's wall time over its iterations, iteration 0 included);
- plain ``mpisppy.generic_cylinders`` on the same module (Pyomo's ``highs`` interface, no
  bundles, rho 1; ``ph_levers.plain_generic_cylinders``): time to 1 % read off its trace
  (mpi-sppy's own clock, from the start of its PH), up to S = :data:`PLAIN_MAX_S`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from decomposition import _s, decomposed
from ph_levers import plain_generic_cylinders
from registry import Outcome, Spec, register

MODEL = {"lost_sales_penalty": 1000.0}
TIME_LIMIT, SMOKE_LIMIT = 300.0, 20.0
#: The plain command runs up to this S (beyond, Pyomo's models alone exceed the memory).
PLAIN_MAX_S = 1000
#: Scenarios per bundle of the small-bundle rows (at most a quarter of S, for the smoke size).
SMALL_BUNDLE = 10
#: Goals of issue 19 (3 ranks, to 1 %).
GOAL_S1000_SECONDS, GOAL_S5000_GIB = 30.0, 1.0


def run(sizes: tuple[int, ...], workdir: Path, smoke: bool) -> Outcome:
    limit = SMOKE_LIMIT if smoke else TIME_LIMIT
    rows: list[dict[str, Any]] = []
    options = {"rel_gap": 0.01, "time_limit": limit, "max_iterations": 100_000}
    for n in sizes:
        ours = decomposed("ph", n, 3, MODEL, options, limit + 900)
        row: dict[str, Any] = {"S": n, "bundles": "auto", "stochplan": ours}
        _progress(row)
        if not smoke and n <= PLAIN_MAX_S:
            plain = plain_generic_cylinders(n, limit, MODEL)
            row["plain"] = plain
            print(f"  ph-scale S={n} plain: to 1 % {_s(plain.get('t_0.01'))} s", flush=True)
        rows.append(row)
        small = min(SMALL_BUNDLE, max(1, n // 4))
        ours = decomposed("ph", n, 3, MODEL, {**options, "bundle_size": small}, limit + 900)
        rows.append({"S": n, "bundles": small, "stochplan": ours})
        _progress(rows[-1])
    return Outcome(rows, report(rows, limit),
                   {"S1000_to_1pct_s": GOAL_S1000_SECONDS, "S5000_gib_per_rank": GOAL_S5000_GIB})


def _progress(row: dict[str, Any]) -> None:
    ours = row["stochplan"]
    print(f"  ph-scale S={row['S']} bundles {row['bundles']} stochplan: to 1 % "
          f"{_s(ours.get('t_0.01'))} s, {ours.get('iterations', '?')} iterations, peak "
          f"{max(ours.get('peak_rss_gib') or [float('nan')]):.2f} GiB/rank", flush=True)


def seconds_per_iteration(out: dict[str, Any]) -> float | None:
    """PH's wall time (iteration 0 included) over its iteration count (at least 1)."""
    ph = (out.get("timings") or {}).get("ph")
    iterations = out.get("iterations")
    if ph is None or iterations is None:
        return None
    return float(ph) / max(1, int(iterations))


def report(rows: list[dict[str, Any]], limit: float) -> str:
    lines = [f"3 ranks, 1 % target, {limit:.0f} s at most, one run each. Bundles: automatic "
             f"(scenarios per bundle in brackets), or {SMALL_BUNDLE} scenarios each.", "",
             "| S | bundles | stochplan PH: to 1 % (s) | wall (s) | iterations | PH s/iteration "
             "| final gap | peak memory per rank (GiB) | plain generic_cylinders: to 1 % (s) "
             "| plain: final gap |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ours, plain = r["stochplan"], r.get("plain")
        bundles = str(r["bundles"])
        if bundles == "auto" and ours.get("bundle_size") is not None:
            bundles = f"auto ({ours['bundle_size']})"
        peaks = ours.get("peak_rss_gib") or []
        peak = ", ".join(f"{p:.2f}" for p in peaks) if peaks else "—"
        gap = ours.get("gap")
        gap_text = "—" if gap is None else f"{gap:.3%}"
        if "error" in ours and ours.get("t_0.01") is None:
            gap_text = f"failed: {str(ours['error'])[:80]}"
        plain_t = "not run" if plain is None else _s(plain.get("t_0.01"))
        if r["bundles"] != "auto":  # the plain command has no bundles: once per S
            plain_t = "—"
        plain_gap = "—" if plain is None else (
            f"failed: {str(plain['error'])[:60]}" if "error" in plain and plain.get(
                "t_0.01") is None else f"{plain.get('gap', float('nan')):.3%}")
        lines.append(f"| {r['S']} | {bundles} | {_s(ours.get('t_0.01'))} | "
                     f"{_s(ours.get('wall'))} | {ours.get('iterations', '—')} | "
                     f"{_s(seconds_per_iteration(ours))} | {gap_text} | {peak} | {plain_t} | "
                     f"{plain_gap} |")
    lines += ["", f"Goals (issue 19): S = 1,000 to 1 % within {GOAL_S1000_SECONDS:.0f} s; "
              f"S = 5,000 finishing with at most {GOAL_S5000_GIB:.0f} GiB per rank."]
    commands = {r["plain"]["command"] for r in rows if r.get("plain", {}).get("command")}
    if commands:
        lines += ["", "Plain command: " + "; ".join(f"`{c}`" for c in sorted(commands))]
    return "\n".join(lines) + "\n"


register(Spec(
    name="ph-scale",
    title="Progressive hedging at scale: highspy subproblems against plain mpi-sppy",
    sizes=(1000, 5000),
    smoke=(12,),
    run=run,
    description=__doc__ or "",
))
