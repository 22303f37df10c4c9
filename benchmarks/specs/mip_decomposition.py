"""Integer first stages: the integer L-shaped method and PH against HiGHS on the extensive form.

Instances (:data:`INSTANCES`), all with binary first stages, all maximising profit,
scenarios with seed 0:

- lot sizing, ``furniture`` (36 setup binaries), Poisson scenarios (``poisson:S``);
- order assignment, ``laser`` (226 binary offers), Bernoulli acceptances (``sample:S``), the
  reassignments relaxed to [0, 1] (model option ``recourse_integer = false``, as ``--set
  recourse_integer=false`` on the command line) so that the recourse is an LP;
- ``laser-integer``: the same instance and scenarios with binary reassignments (the family's
  default): integer recourse, where the L-shaped method values each plan with every
  scenario's recourse MIP and adds integer L-shaped cuts, and PH's bundles are MIPs with
  binary recourse.

For each instance and scenario count S (a row), each cell in its own process (this file is
also the child: ``python mip_decomposition.py child ...``):

- EF: raw HiGHS (highspy) on the extensive form as a matrix, asked for a 0.1 % gap within
  :data:`EF_TIME_LIMIT` seconds (longer where a goal compares with its time,
  :data:`EF_GOAL_SECONDS`): its solve time, or its gap at the limit;
- L-shaped: ``solve_lshaped`` (phase 1 on the master's LP relaxation, then the master MIP)
  under ``mpiexec`` on 1 and 2 ranks, asked for 0.1 % within :data:`LSHAPED_TIME_LIMIT`
  (longer where a goal needs it, :data:`GOAL_SECONDS` and :data:`LSHAPED_GOAL_SECONDS`);
  the times to 1 % and to 0.1 % are read off its record of bound and incumbent;
- PH: ``solve_ph`` (highspy subproblems, linearised proximal term, bundles of
  :data:`PH_BUNDLE` scenarios: the automatic bundles, sized for LPs, would make each bundle a
  MIP of a quarter of the extensive form) under ``mpiexec`` on 3 ranks (hub, Lagrangian bound,
  xhat-shuffle incumbent), stopped after :data:`PH_TIME_LIMIT` seconds of PH: bound,
  incumbent and gap, and the times to 1 % and to 0.1 % read off its record as for L-shaped;
- PH, then L-shaped: ``solve_lshaped`` on 1 rank started from the PH cell's best plan
  (``start_plan``, what ``stochplan solve --method lshaped --start-plan RUN`` does), asked for
  0.1 % within :data:`LSHAPED_TIME_LIMIT`. Its times count the PH cell's whole wall time
  first: the pair is one decomposition, PH finding plans and L-shaped bounding them.

A run of some instances or sizes keeps the other rows of the last run, each labelled with the
command and commit that measured it (``run.py``'s ``keeps_rows``). A row's cells are written
to RESULTS.md and RESULTS.json as each finishes (``run.py``'s checkpoint), so an interrupted
run keeps them.

Times count from just after the imports (scenario generation and compilation included); the
EF's solver time is shown apart. Gaps are (bound - incumbent) / max(1, |incumbent|).
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

HERE = Path(__file__).resolve()
MPIEXEC = Path(sys.executable).parent / "mpiexec"


class Setup(NamedTuple):
    """How one instance is benchmarked: its family, scenario spec (``KIND:S``), model
    options, and the built-in instance (None: the row's own name)."""

    family: str
    kind: str
    options: dict[str, Any]
    instance: str | None = None


#: The instances, in the order of the rows.
INSTANCES = {
    "furniture": Setup("lotsizing", "poisson", {}),
    "laser": Setup("assignment", "sample", {"recourse_integer": False}),
    "laser-integer": Setup("assignment", "sample", {"recourse_integer": True}, "laser"),
}
#: Base seed of every instance's scenarios.
SEED = 0
GAPS = (0.01, 0.001)
#: Seconds (full run / smoke run).
EF_TIME_LIMIT, EF_SMOKE_LIMIT = 600.0, 30.0
LSHAPED_TIME_LIMIT, LSHAPED_SMOKE_LIMIT = 300.0, 4.0
PH_TIME_LIMIT, PH_SMOKE_LIMIT = 300.0, 3.0
#: Rows whose goal is a time to a gap: their decomposition cells (full run) get at least that
#: long, so that the goal is judged and not cut short by the limit above.
GOAL_SECONDS = {("laser", 1000): 600.0, ("furniture", 1000): 600.0}
#: Rows whose goal is judged on the L-shaped cells alone (1 and 2 ranks) and needs longer:
#: those two cells (full run) get at least that long; PH and PH-then-L-shaped keep their
#: limits. "Solved where the EF does not finish" sets no time of its own.
LSHAPED_GOAL_SECONDS = {("furniture", 5000): 2400.0}
#: Rows whose goal compares a decomposition's time with the EF's: the EF (full run) gets at
#: least that long, so that "five times faster" can be seen in one run (an EF stopped at its
#: limit took at least its wall time; 1,800 s judges decompositions up to 360 s).
EF_GOAL_SECONDS = {("furniture", 1000): 1800.0}
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
    method, instance, n, options = argv[0], argv[1], int(argv[2]), json.loads(argv[3])
    start_file = options.pop("start_plan_file", None)
    from stochplan.errors import SolveError
    from stochplan.family import get_family
    from stochplan.parallel import rank, world
    from stochplan.solve import matrix
    from stochplan.solve.lshaped import LShapedOptions, solve_lshaped
    from stochplan.solve.ph import PHOptions, solve_ph

    t0 = time.perf_counter()
    comm = world()
    setup = INSTANCES[instance]
    family = get_family(setup.family)
    inst = family.resolve(setup.instance or instance, setup.options or None)
    spec = f"{setup.kind}:{n}"
    names = family.scenario_set(inst, spec, SEED).names
    kwargs = family.creator_kwargs(inst, spec, SEED)
    offset = time.perf_counter() - t0
    if method == "ef":
        print(json.dumps(_raw_ef(matrix, family.module, names, kwargs, options, t0)))
        return
    try:
        if method == "lshaped":
            start_plan = None
            if start_file is not None:
                import pandas as pd

                start_plan = pd.DataFrame(json.loads(Path(start_file).read_text()))
            result = solve_lshaped(family.module, names, kwargs, LShapedOptions(**options),
                                   comm=comm, allow_partial=True, start_plan=start_plan)
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
        if method == "ph":  # the plan the next cell starts from
            out["plan"] = result.plan.to_dict(orient="records")
        print(json.dumps(out, default=float))


def _raw_ef(matrix: Any, module: Any, names: Any, kwargs: Any, options: dict[str, Any],
            t0: float) -> dict[str, Any]:
    """HiGHS alone on the extensive form's arrays, reported in the model's own sense (profit
    for both instances: the arrays minimise ``sense`` times it)."""
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


def _cell(method: str, instance: str, n: int, ranks: int, options: dict[str, Any],
          timeout: float) -> dict[str, Any]:
    from decomposition import _run

    launcher = [] if method == "ef" else [str(MPIEXEC), "-n", str(ranks)]
    cmd = [*launcher, sys.executable, *([] if method == "ef" else ["-m", "mpi4py"]), str(HERE),
           "child", method, instance, str(n), json.dumps(options)]
    out = _run(cmd, timeout)
    out["ranks"] = ranks
    out.setdefault("method", method)
    if method != "ef":
        for gap in GAPS:
            out[f"t_{gap}"] = time_to_gap(out, gap)
        out.pop("history", None)
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


def rows_of(sizes: tuple[Any, ...], instances: tuple[str, ...]) -> list[tuple[str, int]]:
    """The (instance, S) rows: a size ``(name, S)`` belongs to its instance, a bare ``S``
    (``run.py --sizes``) to every instance; instances in the order given."""
    out = []
    for name in instances:
        for size in sizes:
            if isinstance(size, (tuple, list)):
                if size[0] == name:
                    out.append((name, int(size[1])))
            else:
                out.append((name, int(size)))
    return out


#: The cells of a row: (method, ranks), in the order they run; then :data:`PAIR`.
CELLS = (("ef", 1), ("lshaped", 1), ("lshaped", 2), ("ph", 3))
#: The last cell, PH then L-shaped: the key of its cell in a row (rows measured before it was
#: added lack it and are complete without it).
PAIR = "ph_then_lshaped"


def run(sizes: tuple[Any, ...], workdir: Path, smoke: bool,
        instances: tuple[str, ...] = tuple(INSTANCES), checkpoint: Any = None,
        earlier: Sequence[dict[str, Any]] = ()) -> Any:
    """Every cell of every (instance, S) row; ``checkpoint(outcome, done, total, "cells")``
    after each cell (see ``registry.Checkpoint``). Complete rows of ``earlier`` (the last
    run's, each with its ``"run"``) that this run does not measure again are kept (not in a
    smoke run)."""
    from registry import Outcome

    limits = {"ef": EF_SMOKE_LIMIT if smoke else EF_TIME_LIMIT,
              "lshaped": LSHAPED_SMOKE_LIMIT if smoke else LSHAPED_TIME_LIMIT,
              "ph": PH_SMOKE_LIMIT if smoke else PH_TIME_LIMIT}
    plan = rows_of(sizes, instances)
    kept = [] if smoke else [r for r in earlier if _complete(r) and r.get("instance") in INSTANCES
                             and (r["instance"], r["S"]) not in plan]
    rows: list[dict[str, Any]] = []

    def outcome() -> Any:
        every = sorted(kept + rows, key=lambda r: (list(INSTANCES).index(r["instance"]), r["S"]))
        return Outcome(every, report(every, limits), goals(every))
    done, total = 0, len(plan) * (len(CELLS) + 1)
    for instance, n in plan:
        row: dict[str, Any] = {"instance": instance, "S": n, "lshaped": [], "ph": []}
        rows.append(row)
        ph_plan: Any = None
        for method, ranks in CELLS:
            limit = limits[method]
            if method != "ef" and not smoke:
                limit = max(limit, GOAL_SECONDS.get((instance, n), 0.0))
                if method == "lshaped":
                    limit = max(limit, LSHAPED_GOAL_SECONDS.get((instance, n), 0.0))
            elif not smoke:
                limit = max(limit, EF_GOAL_SECONDS.get((instance, n), 0.0))
            if method == "ef":
                options: dict[str, Any] = {"time_limit": limit, "rel_gap": 0.001}
            elif method == "lshaped":
                options = {"rel_gap": 0.001, "time_limit": limit}
            else:
                options = {"rel_gap": 0.001, "time_limit": limit, "max_iterations": 100_000,
                           "linearize_proximal": True,
                           "bundle_size": min(PH_BUNDLE, max(1, n // 3))}
            cell = _cell(method, instance, n, ranks, options, limit + GRACE)
            if method == "ph":
                ph_plan = cell.pop("plan", None)
            if method == "ef":
                row["ef"] = cell
            else:
                row[method].append(cell)
            done += 1
            if checkpoint is not None:
                checkpoint(outcome(), done, total, "cells")
        row[PAIR] = _pair(row, instance, n, ph_plan, limits, smoke)
        done += 1
        if checkpoint is not None:
            checkpoint(outcome(), done, total, "cells")
        _progress(row)
    return outcome()


def _pair(row: dict[str, Any], instance: str, n: int, plan_records: Any,
          limits: dict[str, float], smoke: bool) -> dict[str, Any]:
    """The PH-then-L-shaped cell: L-shaped on 1 rank from the PH cell's plan (in a temporary
    file); its times to a gap count the PH cell's wall time first."""
    ph = row["ph"][0]
    if not plan_records:
        return {"method": "lshaped", "ranks": 1,
                "error": f"PH gave no plan ({ph.get('error', ph.get('status'))})"}
    limit = limits["lshaped"]
    if not smoke:
        limit = max(limit, GOAL_SECONDS.get((instance, n), 0.0))
    with tempfile.TemporaryDirectory(prefix="ph-plan-") as folder:  # the child reads it
        path = Path(folder) / f"{instance}-{n}.json"
        path.write_text(json.dumps(plan_records))
        cell = _cell("lshaped", instance, n, 1,
                     {"rel_gap": 0.001, "time_limit": limit, "start_plan_file": str(path)},
                     limit + GRACE)
    cell.pop("plan", None)
    before = ph.get("wall")
    cell["after_ph"] = before
    for gap in GAPS:
        own = cell.get(f"t_{gap}")
        cell[f"t_{gap}"] = None if own is None or before is None else before + own
    if cell.get("wall") is not None and before is not None:
        cell["own_wall"], cell["wall"] = cell["wall"], before + cell["wall"]
    return cell


def _s(x: float | None) -> str:
    return "—" if x is None else f"{x:,.1f}"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.2%}"


def _money(x: float | None) -> str:
    return "—" if x is None else f"{x:,.2f}"


#: A cell not run yet (a partial section).
PENDING = "not run yet"


def _cells(row: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """The row's EF, L-shaped (1 rank), L-shaped (2 ranks) and PH cells, None where not run
    (the PH-then-L-shaped cell is ``row.get(PAIR)``)."""
    ls, ph = row.get("lshaped", []), row.get("ph", [])
    return (row.get("ef"), ls[0] if ls else None, ls[1] if len(ls) > 1 else None,
            ph[0] if ph else None)


def _complete(row: dict[str, Any]) -> bool:
    return all(c is not None for c in _cells(row))


def _progress(row: dict[str, Any]) -> None:
    ef, *decomposition = _cells(row)
    parts = [f"EF {ef.get('status', ef.get('error'))} {_s(ef.get('wall'))} s gap "
             f"{_pct(ef.get('gap'))}"]
    for cell in [*decomposition, *([row[PAIR]] if row.get(PAIR) else [])]:
        parts.append(f"{cell['method']}x{cell['ranks']} to 1 % {_s(cell.get('t_0.01'))} s, to "
                     f"0.1 % {_s(cell.get('t_0.001'))} s, gap {_pct(cell.get('gap'))}")
    print(f"  mip-decomposition {row['instance']} S={row['S']}: " + "; ".join(parts),
          flush=True)


def _ef_text(ef: dict[str, Any] | None) -> str:
    if ef is None:
        return PENDING
    if "error" in ef:
        return f"failed ({ef['error'][:70]})"
    if ef.get("status") == "Optimal":
        return f"{_s(ef['wall'])} (solver {_s(ef['solve'])})"
    return f"gap {_pct(ef.get('gap'))} at the limit ({ef.get('status')})"


def _decomposition_text(cell: dict[str, Any] | None) -> str:
    """Time (s) to 1 % / to 0.1 %, then the final gap (and when it stopped, if short of
    0.1 %)."""
    if cell is None:
        return PENDING
    if "error" in cell:
        return f"failed ({cell['error'][:70]})"
    text = f"{_s(cell.get('t_0.01'))} / {_s(cell.get('t_0.001'))}; gap {_pct(cell.get('gap'))}"
    if cell.get("t_0.001") is None:
        text += f" after {_s(cell.get('wall'))} s"
    return text


def _bounds(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return PENDING
    return f"{_money(cell.get('objective'))} / {_money(cell.get('bound'))}"


def report(rows: list[dict[str, Any]], limits: dict[str, float]) -> str:
    """The section's table (one line per instance and S), L-shaped details and goals."""
    shown = {(r["instance"], r["S"]) for r in rows}
    lines = [
        f"Profit (maximised). furniture: `poisson:S`; laser: `sample:S` (Bernoulli "
        f"acceptances), reassignments relaxed (`recourse_integer = false`); laser-integer: "
        f"the same with binary reassignments; seed {SEED}. "
        f"EF: raw HiGHS asked for 0.1 % within {limits['ef']:.0f} s (time in s from after "
        "the imports, or its gap at the limit). Decomposition cells: time (s) to a 1 % / a "
        "0.1 % gap; final gap (— : not reached). L-shaped asked for 0.1 % within "
        f"{limits['lshaped']:.0f} s; PH on 3 ranks, linearised proximal term, bundles of "
        f"{PH_BUNDLE}, stopped after {limits['ph']:.0f} s of PH; PH then L-shaped: L-shaped "
        f"on 1 rank from PH's best plan, asked for 0.1 % within {limits['lshaped']:.0f} s, "
        "its times counting PH's wall time first (— : a row measured before this cell)"
        + "".join(
            f"; both given {t:.0f} s for {i} S = {n} (its goal)"
            for (i, n), t in GOAL_SECONDS.items()
            if t > min(limits["lshaped"], limits["ph"]) and (i, n) in shown)
        + "".join(f"; the L-shaped cells given {t:.0f} s for {i} S = {n} (its goal)"
                  for (i, n), t in LSHAPED_GOAL_SECONDS.items()
                  if t > limits["lshaped"] and (i, n) in shown)
        + "".join(f"; the EF given {t:.0f} s for {i} S = {n} (its goal compares with the EF's "
                  "time)" for (i, n), t in EF_GOAL_SECONDS.items()
                  if t > limits["ef"] and (i, n) in shown) + ".",
        "",
        "| instance | S | EF (raw HiGHS) | EF incumbent / bound | L-shaped, 1 rank "
        "| L-shaped, 2 ranks | PH, 3 ranks | L-shaped incumbent / bound "
        "| PH incumbent / bound | PH then L-shaped | its incumbent / bound "
        "| EF / L-shaped to 0.1 % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ef, ls1, ls2, ph = _cells(row)
        lines.append(
            f"| {row['instance']} | {row['S']} | {_ef_text(ef)} | {_bounds(ef)} | "
            f"{_decomposition_text(ls1)} | {_decomposition_text(ls2)} | "
            f"{_decomposition_text(ph)} | {_bounds(ls1)} | {_bounds(ph)} | "
            f"{_pair_text(row)} | {_pair_bounds(row)} | {_ratio(row)} |")
    details = [
        f"{r['instance']} S={r['S']}: {ls.get('iterations', '—')} iterations "
        f"({(ls.get('relaxation') or {}).get('iterations', '—')} on the relaxation), "
        f"{(ls.get('master_mip') or {}).get('solves', '—')} master MIPs taking "
        f"{_s((ls.get('master_mip') or {}).get('seconds'))} s, recourse "
        f"{_s(ls.get('timings', {}).get('recourse'))} s"
        for r in rows if (ls := _cells(r)[1]) is not None and "error" not in ls]
    lines += ["", "L-shaped details (1 rank): " + ("; ".join(details) or "—") + "."]
    earlier: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        if r.get("run"):
            key = (str(r["run"].get("command")), str(r["run"].get("commit")))
            earlier.setdefault(key, []).append(f"{r['instance']} S = {r['S']}")
    for (command, commit), which in earlier.items():
        lines.append(f"Rows from an earlier run ({', '.join(which)}): `{command}` "
                     f"(commit {commit}).")
    for key, met in goals(rows).items():
        lines.append(f"Goal ({key}): {'met' if met else 'NOT met'}.")
    return "\n".join(lines)


def _pair_text(row: dict[str, Any]) -> str:
    return "—" if PAIR not in row else _decomposition_text(row[PAIR])


def _pair_bounds(row: dict[str, Any]) -> str:
    return "—" if PAIR not in row else _bounds(row[PAIR])


def _ratio(row: dict[str, Any]) -> str:
    """The EF's time to 0.1 % over the faster L-shaped run's ("> x" when the EF hit its limit)."""
    ef, ls1, ls2, _ph = _cells(row)
    ls = [c["t_0.001"] for c in (ls1, ls2) if c is not None and c.get("t_0.001")]
    if not ls or ef is None:
        return "—"
    if ef.get("status") == "Optimal":
        return f"{ef['wall'] / min(ls):.2f}"
    if ef.get("wall"):
        return f"> {ef['wall'] / min(ls):.2f}"
    return "—"


def _fastest(row: dict[str, Any], key: str) -> float | None:
    """The fastest decomposition cell's time to a gap (``key`` ``t_0.01`` or ``t_0.001``)."""
    cells = [*_cells(row)[1:], row.get(PAIR)]
    times = [c[key] for c in cells if c is not None and c.get(key) is not None]
    return min(times) if times else None


def goals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's goals, judged on complete rows only. "A decomposition" is any of the
    L-shaped, PH and PH-then-L-shaped cells. An EF that hit its limit took at least its wall
    time, so comparing with its wall time is conservative."""
    out: dict[str, Any] = {}
    for r in rows:
        if not _complete(r):
            continue
        ef, ls1, ls2, _ph = _cells(r)
        ls = [c["t_0.001"] for c in (ls1, ls2) if c.get("t_0.001")]
        where = (r["instance"], r["S"])
        if where == ("furniture", 1000):
            out["furniture, S = 1000: L-shaped to 0.1 % at least 5x faster than the EF"] = bool(
                ls and ef.get("wall") and ef["wall"] >= 5 * min(ls))
        elif where == ("furniture", 5000):
            out["furniture, S = 5000: L-shaped reaches 0.1 % where the EF does not finish"] = (
                bool(ls and ef.get("status") != "Optimal"))
        elif where == ("laser", 200):
            best = _fastest(r, "t_0.001")
            out["laser, S = 200: a decomposition to 0.1 % in at most a tenth of the EF's "
                "time"] = bool(best is not None and ef.get("wall")
                                           and ef["wall"] >= 10 * best)
        elif where == ("laser-integer", 200):
            best = _fastest(r, "t_0.01")
            out["laser-integer, S = 200: a decomposition to 1 % with a certified "
                "bound"] = best is not None
        elif where == ("laser", 1000):
            best = _fastest(r, "t_0.01")
            out["laser, S = 1000: a decomposition to 1 % within 600 s"] = bool(
                best is not None and best <= 600.0)
    return out


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "child":
    _child(sys.argv[2:])
else:
    from registry import Spec, register

    register(Spec(
        name="mip-decomposition",
        title="Integer first stages: decomposition against the extensive form",
        sizes=(("furniture", 100), ("furniture", 1000), ("furniture", 5000),
               ("laser", 200), ("laser", 1000), ("laser-integer", 200)),
        smoke=(("furniture", 3), ("laser", 3)),
        run=run,
        description=__doc__.strip().splitlines()[0],
        checkpoints=True,
        instances=tuple(INSTANCES),
        keeps_rows=True,
    ))
