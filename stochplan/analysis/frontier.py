r"""The mean-CVaR efficient frontier: one plan per CVaR weight, solved on the same scenarios.

For weights ``0 <= lambda_0 < lambda_1 < ... <= 1`` and one CVaR level ``alpha``,
:func:`solve_frontier` solves the run's recourse problem under
``rho_lambda(x) = (1 - lambda) E[L(x)] + lambda CVaR_alpha(L(x))`` once per weight (see
:mod:`stochplan.solve.risk`; ``L`` is the cost, or minus the profit for a maximising family).
The configuration of every point is the run's, only ``risk.weight`` changes, so every point
is solved on the same scenarios (scenario k of seed s is a pure function of the spec, s and k;
:func:`solve_frontier` checks that each point's set equals the first one's, so a ``file:``
spec edited during the sweep cannot mix two sets). Each point is a full run
(:class:`~stochplan.run.RunOutcome`); :func:`point_record` makes it the stored run, linked to
its frontier by ``config["frontier"] = {"id", "index", "weights"}`` (no schema of its own:
:meth:`stochplan.store.ResultsStore.frontier_runs` finds the points again).

Warm starts: the points share one scenario set and, for weights above 0, one extensive form
up to its costs (the weight only scales objective coefficients), so each LP point after the
first such point starts HiGHS from the previous point's basis (``solve_instance(...,
warm=...)``; ``result.info["warm_start"]``). Measured (electronics LP, lost sales $500,
``poisson:500``, 11 weights): 8.8 s of HiGHS for the sweep against 29.0 s solving each point
cold, the same objectives to 2e-13. Weight 0 is the plain risk-neutral model (another shape),
MIP points and the L-shaped method start cold.

What the frontier shows (the sign conventions)
----------------------------------------------
Along increasing weight, for exact optima, the expected loss is non-decreasing and the CVaR
of the loss non-increasing (with ``D = CVaR - E`` the optimality of both points for both
weights gives ``D`` non-increasing, then ``E`` non-decreasing and ``CVaR`` non-increasing).
:func:`frontier_violations` checks it on stored numbers, within a relative tolerance, since
solvers stop at a tolerance (a MIP at its gap). ``expected`` is in the family's units
(expected cost, or expected profit for a maximising family); ``expected_loss`` is the
expected cost or minus the expected profit; ``value_at_risk`` and ``cvar`` are of the loss.

Examples
--------
>>> frontier_weights(["1", 0.5, 0, 0.5])
(0.0, 0.5, 1.0)
>>> parse_weights("0, 0.25,1")
(0.0, 0.25, 1.0)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stochplan.errors import InputError, SolveError

if TYPE_CHECKING:
    from stochplan.config import RunConfig
    from stochplan.run import RunOutcome
    from stochplan.store import RunRecord, StoredRun

__all__ = [
    "DEFAULT_WEIGHTS",
    "FRONTIER_KEY",
    "TOLERANCE",
    "frontier_info",
    "frontier_table",
    "frontier_violations",
    "frontier_weights",
    "new_frontier_id",
    "parse_weights",
    "plan_entries",
    "plan_totals",
    "point_record",
    "solve_frontier",
]

#: The key of a point's stored configuration that links it to its frontier.
FRONTIER_KEY = "frontier"
#: Weights of CVaR swept by default: 0, 0.1, ..., 1.
DEFAULT_WEIGHTS = tuple(k / 10 for k in range(11))
#: Relative tolerance of :func:`frontier_violations` (of ``max(1, |value|)``).
TOLERANCE = 1e-6

#: Columns of :func:`frontier_table`.
TABLE_COLUMNS = ("index", "weight", "alpha", "run_id", "sense", "expected", "expected_loss",
                 "value_at_risk", "cvar", "objective", "status", "error")


# ----------------------------------------------------------------------------------------------
# Weights and ids


def frontier_weights(values: Iterable[object]) -> tuple[float, ...]:
    """The weights of a frontier: numbers in [0, 1], sorted and deduplicated.

    Raises
    ------
    InputError
        Naming ``weights``: no weights, or one that is not a number or not in [0, 1].
    """
    given = list(values)
    if not given:
        raise InputError("weights", given, "needs at least one weight in [0, 1], e.g. 0,0.5,1")
    out = set()
    for value in given:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InputError("weights", given, f"{value!r} is not a number") from None
        if isinstance(value, bool) or not math.isfinite(number):
            raise InputError("weights", given, f"{value!r} is not a number")
        if not 0.0 <= number <= 1.0:
            raise InputError("weights", given, f"{value!r} is not in [0, 1]")
        out.add(number + 0.0)  # -0.0 -> 0.0
    return tuple(sorted(out))


def parse_weights(text: str) -> tuple[float, ...]:
    """``--weights`` text (a comma list such as ``0,0.1,0.5,1``) as :func:`frontier_weights`.

    Raises
    ------
    InputError
        Naming ``--weights``, the text and the problem.
    """
    items = [item.strip() for item in str(text).split(",")]
    if any(not item for item in items):
        problem = ("needs at least one weight in [0, 1], e.g. 0,0.5,1" if not text.strip()
                   else "has an empty item: give numbers separated by commas, e.g. 0,0.5,1")
        raise InputError("--weights", text, problem)
    try:
        return frontier_weights(items)
    except InputError as err:
        raise InputError("--weights", text, err.problem) from None


def new_frontier_id(taken: Collection[str] = (), now: dt.datetime | None = None) -> str:
    """A new frontier id: ``F`` and the UTC time to the second, e.g. ``F20261205-051403``,
    with ``-2``, ``-3``, ... when that id is ``taken`` already.

    >>> new_frontier_id({"F20260101-000000"}, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    'F20260101-000000-2'
    """
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    base = when.strftime("F%Y%m%d-%H%M%S")
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}-{k}"
    return name


# ----------------------------------------------------------------------------------------------
# Solving


def solve_frontier(
    config: RunConfig,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    progress: Callable[[str], None] | None = None,
    on_point: Callable[[int, RunOutcome], None] | None = None,
    instance: Any = None,
) -> list[RunOutcome]:
    """Solve ``config``'s run once per CVaR weight, on one scenario set.

    Parameters
    ----------
    config : RunConfig
        The run; its ``risk`` must be the CVaR measure (``risk.alpha`` is the level of every
        point; ``risk.weight`` is replaced by each weight in turn). Serial methods only
        (``ef`` or ``lshaped``).
    weights : sequence of float
        CVaR weights lambda in [0, 1] (sorted and deduplicated here, see
        :func:`frontier_weights`).
    progress : callable, optional
        Called with ``"point k/n (weight w): <phase>"`` as each point's phases start.
    on_point : callable, optional
        Called as ``on_point(index, outcome)`` as each point is solved (e.g. to store it at
        once, so that an interrupted sweep keeps the points it finished).
    instance : record, optional
        Replaces the instance ``config.instance`` names, as in
        :func:`stochplan.run.solve_instance`.

    Returns
    -------
    list of RunOutcome
        One per weight, in increasing weight; ``outcome.result.info["risk"]`` holds each
        point's in-sample expected value, VaR and CVaR.

    Raises
    ------
    InputError
        The measure is not CVaR, the method is decomposed over MPI (``ph``), or the weights
        are bad.
    SolveError
        A point has no optimal plan (the points before it were passed to ``on_point``), or
        two points were solved on different scenarios.
    """
    from stochplan.run import solve_instance

    points = frontier_weights(weights)
    if config.risk.measure != "cvar":
        raise InputError("risk.measure", config.risk.measure,
                         "a frontier sweeps the weight of CVaR: set measure = \"cvar\" (--cvar)")
    if config.method == "ph":
        raise InputError("method", config.method, "a frontier solves its points serially: use "
                         "ef or lshaped")
    note = progress or (lambda phase: None)
    outcomes: list[RunOutcome] = []
    warm: dict[str, Any] = {}  # the extensive forms of weights > 0 differ only in costs
    for k, weight in enumerate(points):
        label = f"point {k + 1}/{len(points)} (weight {weight:g})"
        point = config.replace(risk=config.risk.replace(weight=weight))
        start = time.perf_counter()
        try:
            outcome = solve_instance(point, instance=instance, progress=_prefixed(note, label),
                                     warm=warm)
        except SolveError as err:  # name the point (InfeasibleError keeps its class)
            err.args = (f"frontier {label}: {err}",)
            raise
        if outcome is None:  # pragma: no cover - only PH under MPI returns None
            raise SolveError(f"{label}: no outcome on this rank")
        if outcomes and not _same_scenarios(outcomes[0], outcome):
            raise SolveError(f"{label} was solved on other scenarios than point 1 (did the "
                             f"scenario file of {config.scenarios.spec!r} change?)")
        outcome.timings["frontier_point"] = time.perf_counter() - start
        outcomes.append(outcome)
        if on_point is not None:
            on_point(k, outcome)
    return outcomes


def _prefixed(note: Callable[[str], None], label: str) -> Callable[[str], None]:
    return lambda phase: note(f"{label}: {phase}")


def _same_scenarios(a: RunOutcome, b: RunOutcome) -> bool:
    sa, sb = a.scenarios, b.scenarios
    return (sa.names == sb.names and np.array_equal(sa.probabilities, sb.probabilities)
            and np.array_equal(sa.data, sb.data))


def point_record(outcome: RunOutcome, frontier_id: str, index: int,
                 weights: Sequence[float]) -> RunRecord:
    """The stored run of frontier point ``index``: :func:`stochplan.run.to_record` with
    ``config["frontier"] = {"id": frontier_id, "index": index, "weights": [...]}`` and the
    label ``frontier <id> point <index + 1>/<n>``."""
    from stochplan.run import to_record

    record = to_record(outcome)
    config = dict(record.config)
    config[FRONTIER_KEY] = {"id": str(frontier_id), "index": int(index),
                            "weights": [float(w) for w in weights]}
    label = f"frontier {frontier_id} point {index + 1}/{len(weights)}"
    return dataclasses.replace(record, config=config, label=label)


# ----------------------------------------------------------------------------------------------
# From stored runs


def frontier_info(stored: StoredRun) -> dict[str, Any] | None:
    """A stored run's ``config["frontier"]`` (``id``, ``index``, ``weights``), or None when the
    run is not a frontier point."""
    info = stored.record.config.get(FRONTIER_KEY)
    return dict(info) if isinstance(info, Mapping) and "id" in info else None


def frontier_table(runs: Sequence[StoredRun]) -> pd.DataFrame:
    """The points of one frontier from its stored runs, in increasing weight.

    Parameters
    ----------
    runs : sequence of StoredRun
        The runs of one frontier (any order), e.g. those
        :meth:`~stochplan.store.ResultsStore.frontier_runs` lists.

    Returns
    -------
    pandas.DataFrame
        One row per point, columns :data:`TABLE_COLUMNS`: ``index`` (0 = lowest weight),
        ``weight`` (lambda), ``alpha`` (the CVaR level), ``run_id``, ``sense`` (``min`` or
        ``max``), ``expected`` (expected cost, or expected profit when ``sense`` is ``max``,
        $), ``expected_loss`` (expected cost, or minus the expected profit, $),
        ``value_at_risk`` and ``cvar`` (of the loss, at ``alpha``, $), ``objective`` (the
        point's mean-CVaR value in the family's sense, $), ``status`` and ``error`` (how far
        the point may be from the optimum of its weight, $: the solve's stored relative gap
        times the objective, plus the difference between the solver's objective and the
        plan's re-evaluated measure, which a MIP recourse re-solved at its gap can make
        non-zero; 0 for an LP solved to optimality).

    Raises
    ------
    InputError
        No runs; a run that is not a frontier point or lacks the in-sample risk KPIs; runs of
        different frontiers or CVaR levels.
    """
    if not runs:
        raise InputError("runs", [], "a frontier needs at least one stored point")
    rows = []
    ids = set()
    for stored in runs:
        info = frontier_info(stored)
        if info is None:
            raise InputError("run", stored.id, "is not a frontier point (its configuration has "
                             "no [frontier] entry)")
        ids.add(str(info["id"]))
        rec = stored.record
        risk = rec.config.get("risk") or {}
        missing = [k for k in ("risk_expected", "risk_value_at_risk", "risk_cvar",
                               "risk_objective") if k not in rec.kpis]
        if risk.get("measure") != "cvar" or missing:
            raise InputError("run", stored.id, "stores no in-sample CVaR (a run under the cvar "
                             "measure stores risk_expected, risk_value_at_risk and risk_cvar)")
        sense = str(rec.config.get("sense") or "min")
        expected = float(rec.kpis["risk_expected"])
        objective = float(rec.kpis["risk_objective"])
        gap = rec.gap if rec.gap is not None and math.isfinite(rec.gap) else 0.0
        solver = rec.objective if rec.objective is not None else objective
        error = abs(gap) * max(1.0, abs(objective)) + abs(solver - objective)
        rows.append({
            "index": int(info["index"]), "weight": float(risk["weight"]),
            "alpha": float(risk["alpha"]), "run_id": int(stored.id), "sense": sense,
            "expected": expected, "expected_loss": expected if sense == "min" else -expected,
            "value_at_risk": float(rec.kpis["risk_value_at_risk"]),
            "cvar": float(rec.kpis["risk_cvar"]),
            "objective": objective, "status": rec.status,
            "error": error if math.isfinite(error) else math.inf,
        })
    if len(ids) > 1:
        raise InputError("runs", sorted(ids), "are points of different frontiers")
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    if table["alpha"].nunique() > 1 or table["sense"].nunique() > 1:
        raise InputError("runs", table["run_id"].tolist(), "mix CVaR levels or objective senses")
    return table.sort_values(["weight", "index"], kind="stable").reset_index(drop=True)


def frontier_violations(table: pd.DataFrame, rel_tol: float = TOLERANCE) -> list[str]:
    """Where a frontier table breaks its invariants: along increasing weight, the expected
    loss must not decrease and the CVaR of the loss must not increase. An empty list when it
    holds.

    Each step may move the wrong way by ``rel_tol * max(1, |value|)`` (rounding) plus what
    the points' ``error`` column allows (absent: 0): with points ``a``, ``b`` optimal to within
    ``e_a``, ``e_b`` for weights ``l_a < l_b``, the argument of the module docstring gives
    ``E_a - E_b <= (e_a + e_b) (1 + 1 / (l_b - l_a))`` and the same bound for
    ``CVaR_b - CVaR_a``. So an LP (error 0) is held to the rounding tolerance and a MIP to
    its gap.

    >>> t = pd.DataFrame({"weight": [0.0, 1.0], "expected_loss": [10.0, 9.0],
    ...                   "cvar": [20.0, 19.0]})
    >>> frontier_violations(t)
    ['expected loss falls from 10 to 9 between weights 0 and 1']
    >>> frontier_violations(t.assign(error=[0.25, 0.25]))
    []
    """
    out = []
    t = table.sort_values("weight", kind="stable")
    weights = t["weight"].to_numpy(float)
    error = (t["error"].to_numpy(float) if "error" in t else np.zeros(len(t)))
    for column, word, sign in (("expected_loss", "expected loss", -1.0), ("cvar", "CVaR", 1.0)):
        x = t[column].to_numpy(float)
        for k in range(1, len(x)):
            step = sign * (x[k] - x[k - 1])  # > 0: a move in the forbidden direction
            scale = max(1.0, abs(x[k]), abs(x[k - 1]))
            slack = (error[k] + error[k - 1]) * (1.0 + 1.0 / max(weights[k] - weights[k - 1],
                                                                  1e-12))
            if step > rel_tol * scale + slack:
                verb = "rises" if sign > 0 else "falls"
                out.append(f"{word} {verb} from {x[k - 1]:,.6g} to {x[k]:,.6g} between "
                           f"weights {weights[k - 1]:g} and {weights[k]:g}")
    return out


def plan_totals(plans: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Totals per first-stage variable of some plans (long format: ``variable``, index
    columns, ``value``), one column per plan, variables ordered by how much they change
    across the plans (range of the totals over their largest magnitude; unchanged last).

    >>> a = pd.DataFrame({"variable": ["X", "X", "O"], "value": [1.0, 2.0, 0.0]})
    >>> b = pd.DataFrame({"variable": ["X", "X", "O"], "value": [1.0, 2.0, 5.0]})
    >>> plan_totals({"a": a, "b": b}).to_dict("index")
    {'O': {'a': 0.0, 'b': 5.0}, 'X': {'a': 3.0, 'b': 3.0}}
    """
    columns = {}
    order: list[str] = []
    for name, plan in plans.items():
        sums = plan.groupby("variable", sort=False)["value"].sum()
        order += [str(v) for v in sums.index if str(v) not in order]
        columns[name] = {str(k): float(v) for k, v in sums.items()}
    table = pd.DataFrame(columns, index=pd.Index(order, name="variable"), dtype=float)
    values = table.to_numpy(float)
    if values.size:
        spread = np.nanmax(values, axis=1) - np.nanmin(values, axis=1)
        scale = np.maximum(np.nanmax(np.abs(values), axis=1), 1e-12)
        change = np.where(spread > 1e-9 * np.maximum(scale, 1.0), spread / scale, 0.0)
        table = table.iloc[np.argsort(-change, kind="stable")]
    return table


def plan_entries(plans: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Every first-stage value of some plans, one row per entry (labelled
    ``variable[index, ...]``, e.g. ``X[A, 3]``), one column per plan, the entries that change
    most across the plans first (by the range of their values; unchanged entries last, in
    plan order). Entries missing from a plan are NaN.

    >>> a = pd.DataFrame({"variable": ["X", "X"], "week": [1, 2], "value": [5.0, 0.0]})
    >>> b = pd.DataFrame({"variable": ["X", "X"], "week": [1, 2], "value": [5.0, 3.0]})
    >>> plan_entries({"a": a, "b": b}).to_dict("index")
    {'X[2]': {'a': 0.0, 'b': 3.0}, 'X[1]': {'a': 5.0, 'b': 5.0}}
    """
    columns: dict[str, dict[str, float]] = {}
    order: dict[str, None] = {}
    for name, plan in plans.items():
        index = [c for c in plan.columns if c not in ("variable", "value")]
        values: dict[str, float] = {}
        for fields in plan.to_dict("records"):
            keys = [str(fields[c]) for c in index if not _missing(fields[c])]
            label = f"{fields['variable']}[{', '.join(keys)}]" if keys else str(
                fields["variable"])
            values[label] = float(fields["value"])
            order.setdefault(label)
        columns[name] = values
    table = pd.DataFrame(columns, index=pd.Index(list(order), name="entry"), dtype=float)
    values_array = table.to_numpy(float)
    if values_array.size:
        with np.errstate(invalid="ignore"):
            spread = np.nan_to_num(np.nanmax(values_array, axis=1)
                                   - np.nanmin(values_array, axis=1))
        spread = np.where(spread > 1e-9 * np.maximum(1.0, np.nanmax(np.abs(values_array),
                                                                        axis=1)), spread, 0.0)
        table = table.iloc[np.argsort(-spread, kind="stable")]
    return table


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
