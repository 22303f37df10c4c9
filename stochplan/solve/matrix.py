"""The matrix backend: scenario models compiled once to arrays, solved with highspy directly.

Pyomo writes each scenario model; this module turns them into one structure shared by all
scenarios (the constraint matrix, with first-stage columns first) plus per-scenario arrays
(right-hand sides, variable bounds, costs). The extensive form is then assembled with
scipy.sparse and passed to HiGHS as a matrix, and scenario-by-scenario solves (EEV, WS,
out-of-sample) change only bounds in one HiGHS object, warm-started from the previous solve.

Three ways to get the per-scenario arrays:

- *compile each scenario* (any mpi-sppy-style module): every scenario model is built and
  compiled; its matrix must equal the first one's (fixed recourse).
- *affine data map* (modules that also define ``scenario_data(name, **kw) -> (theta, p)`` and
  ``data_scenario_creator(name, theta, **kw)``): right-hand sides, bounds and costs are affine
  in the scenario data theta, so d + 2 compiles (the base, one per data coordinate, and a
  check) give them for any number of scenarios with one matrix product. The check compiles
  one more scenario and compares; any mismatch falls back to compiling every scenario.
- *the family's arrays* (a module whose ``FAMILY`` sets
  :attr:`~stochplan.family.Family.compile_from_arrays` and whose creators are the family's
  own): :meth:`~stochplan.family.Family.scenario_arrays`, written by the family without Pyomo
  and tested by the family entry by entry against the compiled models; no model is built.

The model is the model: the first two paths compile the family's own builder, the third is
checked against it; nothing here writes a constraint.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import scipy.sparse as sp

from stochplan import _mpisppy
from stochplan.errors import SolveError
from stochplan.parallel import gather_all, share
from stochplan.solve.solvers import SolverOptions, highs_options, relative_gap

log = logging.getLogger(__name__)


class NotFixedRecourse(Exception):
    """Scenario models differ in more than bounds, right-hand sides and costs."""


@dataclass(frozen=True)
class Columns:
    """Metadata of the columns: first-stage (nonanticipative) columns first, in mpi-sppy's order."""

    variables: tuple[str, ...]
    indices: tuple[tuple[Any, ...], ...]
    n_first: int
    integer: np.ndarray

    def table(self, index_names: tuple[str, ...], which: slice) -> pd.DataFrame:
        """``variable`` and index columns of the selected columns (no values)."""
        names = self.variables[which]
        idx = self.indices[which]
        if index_names and all(len(i) == len(index_names) for i in idx):
            data = {"variable": list(names)}
            for k, col in enumerate(index_names):
                data[col] = [i[k] for i in idx]
            return pd.DataFrame(data)
        return pd.DataFrame({"variable": list(names),
                             "index": [",".join(map(str, i)) for i in idx]})


@dataclass(frozen=True)
class CompiledScenarios:
    """All scenarios in matrix form: ``min sense * (cost_s . x + offset_s)`` subject to
    ``row_lo_s <= A x <= row_hi_s`` and ``col_lo_s <= x <= col_hi_s``.

    ``A`` (m x n, CSR) and ``row_sense`` (0 equality, 1 upper, -1 lower) are shared; the other
    arrays have one row per scenario. ``sense`` is +1 for minimisation and -1 for maximisation
    (costs are stored for minimisation).

    ``cuts`` (only from a family's :meth:`~stochplan.family.Family.scenario_arrays`, None
    otherwise): the family's own optimality cuts for an integer first stage, a callable
    ``cuts(s, duals) -> (constant, coefficients)`` such that scenario ``s``'s recourse cost
    (``offset_s`` included) is at least ``constant + coefficients @ x`` at every integer
    plan ``x`` (the first-stage columns) that meets the first-stage rows, given the row duals
    (HiGHS's, over all ``m`` rows; first-stage rows read as 0) of that scenario's recourse LP
    at some plan, and equal to it at that plan when it is integer. The L-shaped method's
    master MIP takes them instead of the Benders cuts from the same duals.
    """

    names: tuple[str, ...]
    probabilities: np.ndarray
    A: sp.csr_matrix
    row_sense: np.ndarray
    row_family: tuple[str, ...]
    rhs: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    cost: np.ndarray
    offset: np.ndarray
    columns: Columns
    sense: int
    method: str
    cuts: Any = None

    @property
    def n_first(self) -> int:
        return self.columns.n_first

    def row_bounds(self, s: int | slice) -> tuple[np.ndarray, np.ndarray]:
        """Row bounds of scenario(s) ``s``: equality rows lo = hi = rhs, upper rows (-inf, rhs],
        lower rows [rhs, inf)."""
        rhs = self.rhs[s]
        lo = np.where(self.row_sense == 1, -np.inf, rhs)
        hi = np.where(self.row_sense == -1, np.inf, rhs)
        return lo, hi


# ----------------------------------------------------------------------------------------------
# Compiling


def _column_vars(model: pyo.ConcreteModel) -> list[Any]:
    nonants = _mpisppy.nonant_vars(model)
    ids = {id(v) for v in nonants}
    rest = [v for v in model.component_data_objects(pyo.Var, descend_into=True) if id(v) not in ids]
    return nonants + rest


@dataclass(frozen=True)
class _Compiled:
    A: sp.csr_matrix
    rows: tuple[tuple[str, int], ...]
    rhs: np.ndarray
    cost: np.ndarray
    offset: float
    col_lo: np.ndarray
    col_hi: np.ndarray
    integer: np.ndarray
    sense: int
    columns: Columns


def compile_model(model: pyo.ConcreteModel) -> _Compiled:
    """One scenario model as arrays, columns ordered nonants first."""
    from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

    variables = _column_vars(model)
    info = LinearStandardFormCompiler().write(model, mixed_form=True, column_order=variables)
    position = {id(v): i for i, v in enumerate(variables)}
    n = len(variables)
    where = np.array([position[id(v)] for v in info.columns], dtype=np.int64)
    coo = sp.coo_matrix(info.A)
    A = sp.csr_matrix((coo.data, (coo.row, where[coo.col])), shape=(coo.shape[0], n))
    A.sort_indices()
    cost = np.zeros(n)
    c = sp.coo_matrix(info.c)
    cost[where[c.col]] = c.data
    objective = next(model.component_data_objects(pyo.Objective, active=True))
    sense = 1 if objective.sense == pyo.minimize else -1
    lo = np.array([-np.inf if v.lb is None else float(v.lb) for v in variables])
    hi = np.array([np.inf if v.ub is None else float(v.ub) for v in variables])
    integer = np.array([v.is_integer() or v.is_binary() for v in variables])
    n_first = len(_mpisppy.nonant_vars(model))
    columns = Columns(
        variables=tuple(v.parent_component().local_name for v in variables),
        indices=tuple(v.index() if isinstance(v.index(), tuple) else (v.index(),)
                      for v in variables),
        n_first=n_first,
        integer=integer,
    )
    rows = tuple((r.constraint.name, int(r.bound_type)) for r in info.rows)
    return _Compiled(A, rows, np.asarray(info.rhs, dtype=float), cost,
                     float(np.asarray(info.c_offset).ravel()[0]) if np.size(info.c_offset) else 0.0,
                     lo, hi, integer, sense, columns)


def _same_structure(a: _Compiled, b: _Compiled) -> bool:
    if a.rows != b.rows or a.A.shape != b.A.shape or a.columns.variables != b.columns.variables:
        return False
    diff = a.A - b.A
    return diff.nnz == 0 or float(np.abs(diff.data).max()) <= 1e-12 * max(1.0, abs(a.A).max())


def compile_scenarios(
    module: ModuleType,
    scenario_names: Sequence[str],
    creator_kwargs: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CompiledScenarios:
    """Compile every scenario of ``scenario_names`` (see the module docstring).

    A module whose family writes its scenario models as arrays and says every solve may use
    them (:attr:`~stochplan.family.Family.compile_from_arrays`) is not compiled: the arrays
    are taken as they are (``method == "family"``).
    """
    kwargs = creator_kwargs or {}
    names = [str(n) for n in scenario_names]
    from_family = _family_compiled(module, names, kwargs)
    if from_family is not None:
        if progress is not None:
            progress(len(names), len(names))
        return from_family
    has_data = hasattr(module, "scenario_data") and hasattr(module, "data_scenario_creator")
    if has_data:
        data = [module.scenario_data(n, **kwargs) for n in names]
        theta = np.array([np.asarray(d[0], dtype=float).ravel() for d in data])
        if len(names) > 2 * (theta.shape[1] + 2):
            try:
                return _affine(module, names, theta, np.array([d[1] for d in data]), kwargs)
            except NotFixedRecourse as why:
                log.info("affine data map not usable (%s); compiling every scenario", why)
    return _each(module, names, kwargs, progress)


def _family_compiled(module: ModuleType, names: Sequence[str],
                    kwargs: dict[str, Any]) -> CompiledScenarios | None:
    """The scenarios ``names`` from the family's :meth:`~stochplan.family.Family.scenario_arrays`
    when the module holds a family (``FAMILY``) with ``compile_from_arrays`` set and builds
    its scenarios with the family's own creators (a module that wraps them, as
    :func:`stochplan.solve.risk.risk_module` does, keeps ``FAMILY`` but changes the models);
    None otherwise, or when the family has no arrays for these options (then the Pyomo models
    are compiled). Each scenario's data and probability are those its Pyomo model is built
    from."""
    from stochplan.family import Family
    from stochplan.scenarios import scenario_index
    from stochplan.solve.blocks import family_arrays

    family = getattr(module, "FAMILY", None)
    if not isinstance(family, Family) or not family.compile_from_arrays or not names:
        return None
    if any(getattr(module, fn, None) != getattr(family, fn)
           for fn in ("scenario_creator", "data_scenario_creator", "scenario_data")):
        return None
    src = family.source(**kwargs)
    index = [scenario_index(n) for n in names]
    scenarios = _Scenarios(tuple(names), np.array([src.probability(k) for k in index]),
                           np.array([src.data(k) for k in index]))
    compiled: CompiledScenarios | None = family_arrays(family, src.record, scenarios)
    return compiled


@dataclass(frozen=True)
class _Scenarios:
    """The scenarios asked for (any subset of a set, so their probabilities need not sum to 1)."""

    names: tuple[str, ...]
    probabilities: np.ndarray
    data: np.ndarray


def _each(module: ModuleType, names: list[str], kwargs: dict[str, Any],
          progress: Callable[[int, int], None] | None) -> CompiledScenarios:
    first: _Compiled | None = None
    rhs, lo, hi, cost, offset, probs = [], [], [], [], [], []
    for k, name in enumerate(names):
        model = module.scenario_creator(name, **kwargs)
        comp = compile_model(model)
        if first is None:
            first = comp
        elif not _same_structure(first, comp):
            raise NotFixedRecourse(f"scenario {name}'s constraint matrix differs from {names[0]}'s")
        rhs.append(comp.rhs)
        lo.append(comp.col_lo)
        hi.append(comp.col_hi)
        cost.append(comp.cost)
        offset.append(comp.offset)
        probs.append(_mpisppy.probability(model))
        if progress is not None:
            progress(k + 1, len(names))
    assert first is not None
    return _assemble(names, np.array(probs), first, np.array(rhs), np.array(lo), np.array(hi),
                     np.array(cost), np.array(offset), "each")


def _affine(module: ModuleType, names: list[str], theta: np.ndarray, probs: np.ndarray,
            kwargs: dict[str, Any]) -> CompiledScenarios:
    def compile_at(values: np.ndarray) -> _Compiled:
        return compile_model(module.data_scenario_creator(names[0], values, **kwargs))

    theta0 = theta[0]
    base = compile_at(theta0)
    d = theta.shape[1]
    parts = ("rhs", "col_lo", "col_hi", "cost")
    jac = {p: np.zeros((getattr(base, p).size, d)) for p in parts}
    jac_offset = np.zeros(d)
    for j in range(d):
        probe = theta0.copy()
        probe[j] += 1.0
        comp = compile_at(probe)
        if not _same_structure(base, comp):
            raise NotFixedRecourse(f"data coordinate {j} changes the constraint matrix")
        for p in parts:
            jac[p][:, j] = _delta(getattr(comp, p), getattr(base, p))
        jac_offset[j] = comp.offset - base.offset
    arrays = {p: getattr(base, p)[None, :] + (theta - theta0) @ jac[p].T for p in parts}
    offsets = base.offset + (theta - theta0) @ jac_offset
    # check the map on the scenario farthest from the base
    far = int(np.argmax(np.abs(theta - theta0).sum(axis=1)))
    check = compile_at(theta[far])
    if not _same_structure(base, check):
        raise NotFixedRecourse("the check scenario changes the constraint matrix")
    for p in parts:
        want, got = getattr(check, p), arrays[p][far]
        finite = np.isfinite(want)
        if not np.array_equal(finite, np.isfinite(got)) or not np.allclose(
            got[finite], want[finite], rtol=1e-9, atol=1e-9
        ):
            raise NotFixedRecourse(f"{p} is not affine in the scenario data")
    return _assemble(names, probs, base, arrays["rhs"], arrays["col_lo"], arrays["col_hi"],
                     arrays["cost"], offsets, "affine")


def _delta(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """new - old with inf - inf = 0 (an infinite bound that stays infinite)."""
    out = np.zeros_like(old)
    finite = np.isfinite(new) & np.isfinite(old)
    out[finite] = new[finite] - old[finite]
    if np.any(np.isfinite(new) != np.isfinite(old)):
        raise NotFixedRecourse("a bound switches between finite and infinite")
    return out


def _assemble(names: list[str], probs: np.ndarray, base: _Compiled, rhs: np.ndarray,
              lo: np.ndarray, hi: np.ndarray, cost: np.ndarray, offset: np.ndarray,
              method: str) -> CompiledScenarios:
    return CompiledScenarios(
        names=tuple(names), probabilities=probs, A=base.A,
        row_sense=np.array([r[1] for r in base.rows], dtype=np.int8),
        row_family=tuple(r[0].split("[", 1)[0] for r in base.rows),
        rhs=rhs, col_lo=lo, col_hi=hi, cost=cost, offset=offset, columns=base.columns,
        sense=base.sense, method=method,
    )


# ----------------------------------------------------------------------------------------------
# The extensive form


@dataclass(frozen=True)
class MatrixSolution:
    """An extensive form's solution: first-stage values and each scenario's recourse (S x n2),
    None without a solution; ``info``, what the solve reports besides."""

    status: str
    objective: float | None
    bound: float | None
    gap: float | None
    first: np.ndarray | None
    second: np.ndarray | None
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)


def _highs(options: SolverOptions) -> Any:
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", bool(options.tee))
    if options.time_limit is not None:
        h.setOptionValue("time_limit", float(options.time_limit))
    if options.mip_rel_gap is not None:
        h.setOptionValue("mip_rel_gap", float(options.mip_rel_gap))
    if options.threads is not None:
        h.setOptionValue("threads", int(options.threads))
    for key, value in highs_options(options).items():
        h.setOptionValue(key, value)
    return h


def _pass(h: Any, A: sp.spmatrix, cost: np.ndarray, col_lo: np.ndarray, col_hi: np.ndarray,
          row_lo: np.ndarray, row_hi: np.ndarray, integer: np.ndarray, offset: float = 0.0) -> None:
    import highspy

    A = sp.csc_matrix(A)
    lp = highspy.HighsLp()
    lp.num_col_ = A.shape[1]
    lp.num_row_ = A.shape[0]
    lp.col_cost_ = np.asarray(cost, dtype=np.float64)
    lp.col_lower_ = np.asarray(col_lo, dtype=np.float64)
    lp.col_upper_ = np.asarray(col_hi, dtype=np.float64)
    lp.row_lower_ = np.asarray(row_lo, dtype=np.float64)
    lp.row_upper_ = np.asarray(row_hi, dtype=np.float64)
    lp.offset_ = float(offset)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr.astype(np.int32)
    lp.a_matrix_.index_ = A.indices.astype(np.int32)
    lp.a_matrix_.value_ = A.data.astype(np.float64)
    # an empty integrality array makes passModel fail quietly: always give one
    lp.integrality_ = [highspy.HighsVarType.kInteger if flag else highspy.HighsVarType.kContinuous
                       for flag in np.asarray(integer, bool)]
    status = h.passModel(lp)
    if status != highspy.HighsStatus.kOk:
        raise SolveError(f"HiGHS refused the model ({status})", "error")


_STATUS = {
    "kOptimal": "optimal", "kInfeasible": "infeasible", "kUnboundedOrInfeasible":
    "infeasible_or_unbounded", "kUnbounded": "unbounded", "kTimeLimit": "time_limit",
    "kIterationLimit": "iteration_limit", "kSolutionLimit": "solution_limit",
    "kObjectiveBound": "objective_limit", "kObjectiveTarget": "objective_limit",
    "kInterrupt": "interrupted",
}


def _status(h: Any) -> str:
    name = h.getModelStatus().name
    return _STATUS.get(name, name.removeprefix("k").lower())


def extensive_form_arrays(compiled: CompiledScenarios) -> dict[str, Any]:
    """The extensive form as arrays: first-stage columns once, then each scenario's recourse
    columns; rows that involve only first-stage columns and never change appear once, first.
    ``each`` lists the rows of the scenario model that every scenario has a copy of: copy
    ``s`` of row ``each[i]`` is row ``n_once + s * len(each) + i``."""
    S, n1 = len(compiled.names), compiled.n_first
    A = compiled.A
    n2 = A.shape[1] - n1
    p = compiled.probabilities / compiled.probabilities.sum()
    A_first, A_second = A[:, :n1], A[:, n1:]
    only_first = (np.diff(A_second.tocsr().indptr) == 0)
    constant = np.ptp(compiled.rhs, axis=0) == 0 if S > 1 else np.ones(A.shape[0], bool)
    once = only_first & constant
    each = ~once
    lo, hi = compiled.row_bounds(slice(None))
    blocks_T = A_first[each]
    blocks_W = A_second[each]
    top = sp.hstack([A_first[once], sp.csr_matrix((int(once.sum()), S * n2))])
    bottom = sp.hstack([sp.vstack([blocks_T] * S), sp.kron(sp.identity(S, format="csr"), blocks_W)])
    A_ef = sp.vstack([top, bottom], format="csc")
    row_lo = np.concatenate([lo[0, once], lo[:, each].ravel()])
    row_hi = np.concatenate([hi[0, once], hi[:, each].ravel()])
    col_lo = np.concatenate([compiled.col_lo[:, :n1].max(axis=0), compiled.col_lo[:, n1:].ravel()])
    col_hi = np.concatenate([compiled.col_hi[:, :n1].min(axis=0), compiled.col_hi[:, n1:].ravel()])
    cost = np.concatenate([p @ compiled.cost[:, :n1], (p[:, None] * compiled.cost[:, n1:]).ravel()])
    integer = np.concatenate([compiled.columns.integer[:n1],
                              np.tile(compiled.columns.integer[n1:], S)])
    offset = float(p @ compiled.offset)
    return {"A": A_ef, "cost": cost, "col_lo": col_lo, "col_hi": col_hi, "row_lo": row_lo,
            "row_hi": row_hi, "integer": integer, "offset": offset,
            "each": np.flatnonzero(each), "n_once": int(once.sum())}


def write_extensive_form(compiled: CompiledScenarios, path: str) -> None:
    """Write the extensive form (minimisation form) to an MPS or LP file with HiGHS."""
    import highspy

    ef = extensive_form_arrays(compiled)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    _pass(h, ef["A"], ef["cost"], ef["col_lo"], ef["col_hi"], ef["row_lo"], ef["row_hi"],
          ef["integer"], ef["offset"])
    h.writeModel(path)


def solve_extensive_form(compiled: CompiledScenarios, options: SolverOptions,
                         warm: dict[str, Any] | None = None,
                         start: np.ndarray | None = None) -> MatrixSolution:
    """Assemble the extensive form (first-stage columns once) and solve it with HiGHS.

    ``warm``, a dict kept by the caller between solves of extensive forms of one shape (the
    points of a frontier, which differ only in costs), carries the last LP solve's basis:
    HiGHS starts from it when the new LP has the same columns and rows (``warm["started"]``
    says whether it did), and the new basis is put back. Ignored for MIPs.

    ``start`` (first-stage values, NaN where none; :func:`start_vector`) is a MIP start: HiGHS
    completes it with the recourse of every scenario and starts from it when that is feasible.
    An LP has no use for it.
    """
    S, n1 = len(compiled.names), compiled.n_first
    n2 = compiled.A.shape[1] - n1
    ef = extensive_form_arrays(compiled)
    integer = ef["integer"]

    h = _highs(options)
    _pass(h, ef["A"], ef["cost"], ef["col_lo"], ef["col_hi"], ef["row_lo"], ef["row_hi"],
          integer, ef["offset"])
    shape = ef["A"].shape
    use_warm = warm is not None and not integer.any()
    if warm is not None:
        warm["started"] = False
    if use_warm and warm is not None and warm.get("shape") == shape:
        h.setBasis(warm["basis"])
        warm["started"] = True
    if start is not None and integer.any():
        given = np.flatnonzero(np.isfinite(start)).astype(np.int32)
        h.setSolution(int(given.size), given, np.asarray(start, dtype=float)[given])
    began = time.perf_counter()
    h.run()
    seconds = time.perf_counter() - began
    if use_warm and warm is not None and h.getBasis().valid:
        warm.update(shape=shape, basis=h.getBasis())
    status = _status(h)
    info = h.getInfo()
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    if not has_solution:
        return MatrixSolution(status, None, None, None, None, None, seconds)
    x = np.asarray(h.getSolution().col_value)
    objective = compiled.sense * float(info.objective_function_value)
    bound: float | None
    if integer.any():
        bound = compiled.sense * float(info.mip_dual_bound)
    else:
        bound = objective if status == "optimal" else None
    if bound is not None and not math.isfinite(bound):
        bound = None
    return MatrixSolution(status, objective, bound, relative_gap(objective, bound),
                          x[:n1], x[n1:].reshape(S, n2), seconds)


# ----------------------------------------------------------------------------------------------
# Scenario by scenario


def solve_each(
    compiled: CompiledScenarios,
    options: SolverOptions,
    first_stage: np.ndarray | None = None,
    keep_solutions: bool = False,
    comm: Any | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray | None]:
    """Solve every scenario alone in one warm-started HiGHS object.

    With ``first_stage`` the first-stage columns are fixed to it (evaluation of a plan);
    without, each scenario chooses its own (wait-and-see). Returns each scenario's objective
    (infinite, in the sense's worst direction, where infeasible), statuses and, if asked, the
    solutions (S x n). Under MPI the scenarios are shared among ranks.
    """
    S, n1 = len(compiled.names), compiled.n_first
    h = _highs(options)
    lo0, hi0 = compiled.row_bounds(0)
    col_lo = compiled.col_lo[0].copy()
    col_hi = compiled.col_hi[0].copy()
    fixed = first_stage is not None
    if fixed:
        x1 = np.asarray(first_stage, dtype=float)
        x1 = np.where(compiled.columns.integer[:n1], np.round(x1), x1)
    _pass(h, compiled.A, compiled.cost[0], col_lo, col_hi, lo0, hi0, compiled.columns.integer)
    n = compiled.A.shape[1]
    all_cols = np.arange(n, dtype=np.int32)
    all_rows = np.arange(compiled.A.shape[0], dtype=np.int32)
    cost_varies = S > 1 and bool(np.any(np.ptp(compiled.cost, axis=0) != 0))
    worst = math.inf
    results: dict[int, tuple[float, str, np.ndarray | None]] = {}
    mine = share(range(S), comm)
    for done, s in enumerate(mine, start=1):
        lo, hi = compiled.row_bounds(s)
        h.changeRowsBounds(len(all_rows), all_rows, lo, hi)
        clo, chi = compiled.col_lo[s].copy(), compiled.col_hi[s].copy()
        if fixed:
            clo[:n1] = chi[:n1] = x1
        h.changeColsBounds(n, all_cols, clo, chi)
        if cost_varies:
            h.changeColsCost(n, all_cols, compiled.cost[s])
        h.run()
        status = _status(h)
        if status in ("infeasible", "infeasible_or_unbounded"):
            results[s] = (worst * compiled.sense, status, None)
        elif status != "optimal":
            raise SolveError(f"scenario {compiled.names[s]}: HiGHS ended {status!r}", status)
        else:
            x = np.asarray(h.getSolution().col_value)
            value = compiled.sense * (float(compiled.cost[s] @ x) + float(compiled.offset[s]))
            results[s] = (value, status, x if keep_solutions else None)
        if progress is not None:
            progress(done, len(mine))
    merged = gather_all(results, comm)
    objective = np.array([merged[s][0] for s in range(S)])
    statuses = tuple(merged[s][1] for s in range(S))
    solutions = None
    if keep_solutions:
        solutions = np.full((S, n), np.nan)
        for s in range(S):
            if merged[s][2] is not None:
                solutions[s] = merged[s][2]
    return objective, statuses, solutions


def plan_vector(plan: pd.DataFrame, columns: Columns, index_names: tuple[str, ...],
                missing_ok: Sequence[str] = ()) -> np.ndarray:
    """A first-stage plan table as a vector in column order (raises if a value is missing,
    except for the variables ``missing_ok`` names, which are NaN then)."""
    from stochplan.errors import InputError

    keys = columns.table(index_names, slice(0, columns.n_first))
    key_cols = list(keys.columns)
    plan_keys = [c for c in plan.columns if c not in ("value", "scenario")]
    if plan_keys != key_cols:
        raise InputError("plan columns", plan_keys, f"the model's first stage has {key_cols}")
    merged = keys.merge(plan[key_cols + ["value"]], on=key_cols, how="left", validate="one_to_one")
    lacking = merged["value"].isna() & ~merged["variable"].isin(list(missing_ok))
    if lacking.any():
        missing = merged[lacking].iloc[0].drop("value").tolist()
        raise InputError("plan", missing, "no value for this first-stage variable")
    return merged["value"].to_numpy(float)


#: How far a start plan's value may lie from an integer or outside a bound and still be taken
#: (rounded or clipped): stored plans carry the solver's feasibility tolerance.
START_TOLERANCE = 1e-6


def start_vector(plan: pd.DataFrame, compiled: CompiledScenarios,
                 index_names: tuple[str, ...], missing_ok: Sequence[str] = ()) -> np.ndarray:
    """A start plan (a first-stage plan table, as a run stores it) as values in column order.

    The plan must give every first-stage variable of these scenarios a value (but those
    ``missing_ok`` names, NaN when it has none: the value at risk a risk measure adds), within
    its bounds, integral where the variable is integer (to :data:`START_TOLERANCE`; such
    values are rounded and clipped), and keep the rows of the first stage alone. Where the
    plan came from is read from ``plan.attrs``: ``field`` and ``value`` (``--start-plan`` and
    the run id) name it in errors.

    Raises
    ------
    InputError
        A missing or unknown variable, a fractional value of an integer variable, a value
        outside a bound (naming the variable and the value), or a first-stage row broken
        (naming its constraint family).
    """
    from stochplan.errors import InputError

    field = str(plan.attrs.get("field", "start_plan"))
    given = plan.attrs.get("value", "plan")
    try:
        x = plan_vector(plan, compiled.columns, index_names, missing_ok)
    except InputError as err:
        raise InputError(field, given, f"{err.problem} ({err.field}: {err.value})") from None
    n1 = compiled.n_first
    cols = compiled.columns
    integer = cols.integer[:n1]
    lo = compiled.col_lo[:, :n1].max(axis=0)
    hi = compiled.col_hi[:, :n1].min(axis=0)
    tol = START_TOLERANCE * np.maximum(1.0, np.abs(x))

    def name(i: int) -> str:
        return f"{cols.variables[i]}[{','.join(map(str, cols.indices[i]))}] = {x[i]:g}"

    fractional = np.flatnonzero(integer & (np.abs(x - np.round(x)) > tol))
    if fractional.size:
        i = int(fractional[0])
        raise InputError(field, given, f"{name(i)} is not integer, as this model's "
                         f"{cols.variables[i]} must be (a plan of the relaxation cannot start "
                         "the integer model)")
    outside = np.flatnonzero((x < lo - tol) | (x > hi + tol))
    if outside.size:
        i = int(outside[0])
        raise InputError(field, given, f"{name(i)} lies outside its bounds "
                         f"[{lo[i]:g}, {hi[i]:g}] in this model")
    x = np.clip(np.where(integer, np.round(x), x), lo, hi)
    rows, A1, row_lo, row_hi = first_stage_rows(compiled)
    given_x = ~np.isnan(x)  # a row touching a value not given is not checked
    ax = A1 @ np.where(given_x, x, 0.0)
    checked = (A1 @ (~given_x).astype(float)) == 0
    gap = START_TOLERANCE * np.maximum(1.0, np.abs(ax))
    broken = np.flatnonzero(((ax < row_lo - gap) | (ax > row_hi + gap)) & checked)
    if broken.size:
        r = int(rows[broken[0]])
        raise InputError(field, given, f"breaks the first-stage constraint "
                         f"{compiled.row_family[r]} of this model")
    return x


def start_label(plan: pd.DataFrame) -> str:
    """How a start plan is named in a run's information: ``run 12``, from ``plan.attrs``."""
    value = plan.attrs.get("value")
    return f"run {value}" if isinstance(value, int) else "a given plan"


def first_stage_rows(compiled: CompiledScenarios) -> tuple[np.ndarray, sp.csr_matrix,
                                                            np.ndarray, np.ndarray]:
    """The rows that hold only first-stage columns: their indices, their first-stage matrix
    and the bounds every scenario allows (the largest lower, the smallest upper)."""
    A = compiled.A.tocsr()
    n1 = compiled.n_first
    rows = np.flatnonzero(np.diff(A[:, n1:].tocsr().indptr) == 0)
    lo, hi = compiled.row_bounds(slice(None))
    lo, hi = np.atleast_2d(lo)[:, rows], np.atleast_2d(hi)[:, rows]
    return rows, A[rows][:, :n1].tocsr(), lo.max(axis=0), hi.min(axis=0)


def plan_table(columns: Columns, first: np.ndarray, index_names: tuple[str, ...]) -> pd.DataFrame:
    """First-stage values as a plan table (integer columns rounded)."""
    n1 = columns.n_first
    table = columns.table(index_names, slice(0, n1))
    table["value"] = np.where(columns.integer[:n1], np.round(first), first)
    return table


def recourse_table(names: Sequence[str], columns: Columns, second: np.ndarray,
                   index_names: tuple[str, ...]) -> pd.DataFrame:
    """Second-stage values (S x n2) as a long table with a ``scenario`` column."""
    n1 = columns.n_first
    meta = columns.table(index_names, slice(n1, None))
    S, n2 = second.shape
    values = np.where(columns.integer[n1:][None, :], np.round(second), second)
    table = pd.DataFrame({"scenario": np.repeat(np.array(names, dtype=object), n2)})
    for c in meta.columns:
        table[c] = np.tile(meta[c].to_numpy(), S)
    table["value"] = values.ravel()
    return table


def solution_tables(
    compiled: CompiledScenarios,
    first: np.ndarray,
    second: np.ndarray,
    index_names: tuple[str, ...],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Plan and recourse tables (as :class:`~stochplan.solve.results.SolveResult` holds them)."""
    return (plan_table(compiled.columns, first, index_names),
            recourse_table(compiled.names, compiled.columns, second, index_names))
