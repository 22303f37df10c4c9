"""Integer first stages: the integer L-shaped method and PH against HiGHS on the extensive form.

Lot sizing (``furniture``, 36 first-stage setup binaries, continuous recourse, maximise
profit), Poisson scenarios with seed 0. For each scenario count S, each cell in its own
process (this file is also the child: ``python mip_decomposition.py child ...``):

- EF: raw HiGHS (highspy) on the extensive form as a matrix, asked for a 0.1 % gap within
  :data:`EF_TIME_LIMIT` seconds: its solve time, or its gap at the limit;
- L-shaped: ``solve_lshaped`` (phase 1 on the master's LP relaxation, then the master MIP)
  under ``mpiexec`` on 1 and 2 ranks, asked for 0.1 % within :data:`LSHAPED_TIME_LIMIT`;
  the times to 1 % and to 0.1 % are read off its record of bound and incumbent;
- PH: ``solve_ph`` (highspy subproblems, linearised proximal term, bundles of
  :data:`PH_BUNDLE` scenarios: the automatic bundles, sized for LPs, would make each bundle a
  MIP of a quarter of the extensive form) under ``mpiexec`` on 3 ranks (hub, Lagrangian bound,
  xhat-shuffle incumbent), stopped after :data:`PH_TIME_LIMIT` seconds of PH: bound,
  incumbent and gap.

Times count from just after the imports (scenario generation and compilation included); the
EF's solver time is shown apart. Gaps are (bound - incumbent) / max(1, |incumbent|).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
MPIEXEC = Path(sys.executable).parent / "mpiexec"
INSTANCE = "furniture"
GAPS = (0.01, 0.001)
#: Seconds (full run / smoke run).
EF_TIME_LIMIT, EF_SMOKE_LIMIT = 600.0, 30.0
LSHAPED_TIME_LIMIT, LSHAPED_SMOKE_LIMIT = 300.0, 15.0
PH_TIME_LIMIT, PH_SMOKE_LIMIT = 300.0, 10.0
#: Scenarios per PH bundle (at most a third of the scenarios).
PH_BUNDLE = 10
#: Grace beyond a cell's own time limit before its process is abandoned (building, MPI).
GRACE = 900.0


# ----------------------------------------------------------------------------------------------
# The child: one measured solve, one JSON line on stdout (rank 0)


def _child(argv: list[str]) -> None:
    import os
    import resource

    cap = int(float(os.environ.get("STOCHPLAN_BENCH_MEMORY_GIB", "7")) * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    method, n, options = argv[0], int(argv[1]), json.loads(argv[2])
    from stochplan.errors import SolveError
    from stochplan.family import get_family
    from stochplan.parallel import rank, world
    from stochplan.solve import matrix
    from stochplan.solve.lshaped import LShapedOptions, solve_lshaped
    from stochplan.solve.ph import PHOptions, solve_ph

    t0 = time.perf_counter()
    comm = world()
    family = get_family("lotsizing")
    inst = family.resolve(INSTANCE, None)
    spec = f"poisson:{n}"
    names = family.scenario_set(inst, spec, 0).names
    kwargs = family.creator_kwargs(inst, spec, 0)
    offset = time.perf_counter() - t0
    if method == "ef":
        print(json.dumps(_raw_ef(matrix, family.module, names, kwargs, options, t0)))
        return
    try:
        if method == "lshaped":
            result = solve_lshaped(family.module, names, kwargs, LShapedOptions(**options),
                                   comm=comm, allow_partial=True)
        else:
            result = solve_ph(family.module, names, kwargs, PHOptions(**options), comm=comm,
                              allow_partial=True)
    except SolveError as exc:  # e.g. no incumbent within the time limit: a result
        if rank(comm) == 0:
            print(json.dumps({"error": str(exc), "wall": time.perf_counter() - t0}))
        return
    if result is not None:
        out = result.to_dict()
        out["wall"] = time.perf_counter() - t0
        out["offset"] = offset
        print(json.dumps(out, default=float))


def _raw_ef(matrix: Any, module: Any, names: Any, kwargs: Any, options: dict[str, Any],
            t0: float) -> dict[str, Any]:
    """HiGHS alone on the extensive form's arrays (maximisation: reported in profit)."""
    import highspy

    compiled = matrix.compile_scenarios(module, names, kwargs)
    ef = matrix.extensive_form_arrays(compiled)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(options["time_limit"]))
    h.setOptionValue("mip_rel_gap", float(options["rel_gap"]))
    matrix._pass(h, ef["A"], ef["cost"], ef["col_lo"], ef["col_hi"], ef["row_lo"],
                 ef["row_hi"], ef["integer"], ef["offset"])
    built = time.perf_counter() - t0
    start = time.perf_counter()
    h.run()
    solve = time.perf_counter() - start
    info = h.getInfo()
    sense = compiled.sense
    has = info.primal_solution_status == 2
    objective = sense * float(info.objective_function_value) if has else None
    bound = sense * float(info.mip_dual_bound)
    return {"status": h.getModelStatus().name.removeprefix("k"), "objective": objective,
            "bound": bound if math.isfinite(bound) else None,
            "gap": _gap(objective, bound), "solve": solve, "build": built,
            "wall": time.perf_counter() - t0, "nodes": int(info.mip_node_count)}


def _gap(objective: float | None, bound: float | None) -> float | None:
    if objective is None or bound is None or not math.isfinite(bound):
        return None
    return abs(bound - objective) / max(1.0, abs(objective))


# ----------------------------------------------------------------------------------------------
# The spec


def _cell(method: str, n: int, ranks: int, options: dict[str, Any], timeout: float
          ) -> dict[str, Any]:
    from decomposition import _run

    launcher = [] if method == "ef" else [str(MPIEXEC), "-n", str(ranks)]
    cmd = [*launcher, sys.executable, *([] if method == "ef" else ["-m", "mpi4py"]), str(HERE),
           "child", method, str(n), json.dumps(options)]
    out = _run(cmd, timeout)
    out["ranks"] = ranks
    out.setdefault("method", method)
    if method != "ef":
        for gap in GAPS:
            out[f"t_{gap}"] = time_to_gap(out, gap)
        out.pop("history", None)
    out.pop("plan", None)
    out.pop("recourse", None)
    return out


def time_to_gap(out: dict[str, Any], gap: float) -> float | None:
    """Seconds from after the imports until |bound - incumbent| / max(1, |incumbent|) <= gap
    (either sense: a maximisation's bound lies above its incumbent)."""
    for seconds, _it, bound, incumbent in out.get("history", []):
        if bound is None or incumbent is None:
            continue
        if _within(float(incumbent), float(bound), gap):
            return out["offset"] + seconds
    return None


def _within(incumbent: float, bound: float, gap: float) -> bool:
    return (math.isfinite(bound) and math.isfinite(incumbent)
            and abs(bound - incumbent) / max(1.0, abs(incumbent)) <= gap + 1e-12)


def run(sizes: tuple[int, ...], workdir: Path, smoke: bool) -> Any:
    from registry import Outcome

    ef_limit = EF_SMOKE_LIMIT if smoke else EF_TIME_LIMIT
    ls_limit = LSHAPED_SMOKE_LIMIT if smoke else LSHAPED_TIME_LIMIT
    ph_limit = PH_SMOKE_LIMIT if smoke else PH_TIME_LIMIT
    rows = []
    for n in sizes:
        row: dict[str, Any] = {"S": n}
        row["ef"] = _cell("ef", n, 1, {"time_limit": ef_limit, "rel_gap": 0.001},
                          ef_limit + GRACE)
        row["lshaped"] = [_cell("lshaped", n, k, {"rel_gap": 0.001, "time_limit": ls_limit},
                                ls_limit + GRACE) for k in (1, 2)]
        row["ph"] = [_cell("ph", n, 3, {"rel_gap": 0.001, "time_limit": ph_limit,
                                        "max_iterations": 100_000, "linearize_proximal": True,
                                        "bundle_size": min(PH_BUNDLE, max(1, n // 3))},
                           ph_limit + GRACE)]
        rows.append(row)
        _progress(row)
    return Outcome(rows, report(rows, ef_limit, ls_limit, ph_limit), goals(rows))


def _s(x: float | None) -> str:
    return "—" if x is None else f"{x:,.1f}"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.2%}"


def _money(x: float | None) -> str:
    return "—" if x is None else f"{x:,.2f}"


def _progress(row: dict[str, Any]) -> None:
    ef = row["ef"]
    parts = [f"EF {ef.get('status', ef.get('error'))} {_s(ef.get('wall'))} s gap "
             f"{_pct(ef.get('gap'))}"]
    for cell in row["lshaped"] + row["ph"]:
        parts.append(f"{cell['method']}x{cell['ranks']} to 1 % {_s(cell.get('t_0.01'))} s, to "
                     f"0.1 % {_s(cell.get('t_0.001'))} s, gap {_pct(cell.get('gap'))}")
    print(f"  mip-decomposition S={row['S']}: " + "; ".join(parts), flush=True)


def _ef_text(ef: dict[str, Any]) -> str:
    if "error" in ef:
        return f"failed ({ef['error'][:70]})"
    if ef.get("status") == "Optimal":
        return f"{_s(ef['wall'])} (solver {_s(ef['solve'])})"
    return f"gap {_pct(ef.get('gap'))} at the limit ({ef.get('status')})"


def _ls_text(cell: dict[str, Any]) -> str:
    if "error" in cell:
        return f"failed ({cell['error'][:70]})"
    text = f"{_s(cell.get('t_0.01'))} / {_s(cell.get('t_0.001'))}"
    if cell.get("t_0.001") is None:
        text += f" (gap {_pct(cell.get('gap'))} after {_s(cell.get('wall'))} s)"
    return text


def report(rows: list[dict[str, Any]], ef_limit: float, ls_limit: float,
           ph_limit: float) -> str:
    lines = [
        f"Profit (maximised). EF: raw HiGHS asked for 0.1 % within {ef_limit:.0f} s (time in s "
        "from after the imports, or its gap at the limit). L-shaped: time (s) to a 1 % / a "
        f"0.1 % gap, asked for 0.1 % within {ls_limit:.0f} s. PH: 3 ranks, linearised "
        f"proximal term, stopped after {ph_limit:.0f} s of PH.",
        "",
        "| S | EF (raw HiGHS) | EF incumbent / bound | L-shaped, 1 rank | L-shaped, 2 ranks "
        "| L-shaped incumbent / bound | PH incumbent / bound (gap) | EF / L-shaped to 0.1 % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ef, ls1, ls2 = row["ef"], row["lshaped"][0], row["lshaped"][1]
        ph = row["ph"][0]
        ph_text = (f"failed ({ph['error'][:60]})" if "error" in ph else
                   f"{_money(ph.get('objective'))} / {_money(ph.get('bound'))} "
                   f"({_pct(ph.get('gap'))})")
        lines.append(
            f"| {row['S']} | {_ef_text(ef)} | {_money(ef.get('objective'))} / "
            f"{_money(ef.get('bound'))} | {_ls_text(ls1)} | {_ls_text(ls2)} | "
            f"{_money(ls1.get('objective'))} / {_money(ls1.get('bound'))} | {ph_text} | "
            f"{_ratio(row)} |")
    lines += ["", "L-shaped details (1 rank): " + "; ".join(
        f"S={r['S']}: {r['lshaped'][0].get('iterations', '—')} iterations "
        f"({(r['lshaped'][0].get('relaxation') or {}).get('iterations', '—')} on the "
        f"relaxation), {(r['lshaped'][0].get('master_mip') or {}).get('solves', '—')} master "
        f"MIPs taking {_s((r['lshaped'][0].get('master_mip') or {}).get('seconds'))} s, "
        f"recourse {_s(r['lshaped'][0].get('timings', {}).get('recourse'))} s"
        for r in rows if "error" not in r["lshaped"][0])]
    g = goals(rows)
    for key, met in g.items():
        lines.append(f"Goal ({key}): {'met' if met else 'NOT met'}.")
    return "\n".join(lines)


def _ratio(row: dict[str, Any]) -> str:
    """The EF's time to 0.1 % over the faster L-shaped run's ("> x" when the EF hit its limit)."""
    ls = [c["t_0.001"] for c in row["lshaped"] if c.get("t_0.001")]
    ef = row["ef"]
    if not ls:
        return "—"
    if ef.get("status") == "Optimal":
        return f"{ef['wall'] / min(ls):.2f}"
    if ef.get("wall"):
        return f"> {ef['wall'] / min(ls):.2f}"
    return "—"


def goals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in rows:
        ls = [c["t_0.001"] for c in r["lshaped"] if c.get("t_0.001")]
        ef = r["ef"]
        if r["S"] == 1000:
            out["S = 1000: L-shaped to 0.1 % at least 5x faster than the EF"] = bool(
                ls and ef.get("wall") and ef["wall"] >= 5 * min(ls))
        if r["S"] == 5000:
            out["S = 5000: L-shaped reaches 0.1 % where the EF does not finish"] = bool(
                ls and ef.get("status") != "Optimal")
    return out


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "child":
    _child(sys.argv[2:])
else:
    from registry import Spec, register

    register(Spec(
        name="mip-decomposition",
        title="Integer first stages: decomposition against the extensive form",
        sizes=(100, 1000, 5000),
        smoke=(3,),
        run=run,
        description=__doc__.strip().splitlines()[0],
    ))
