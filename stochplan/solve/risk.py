r"""Risk-averse objectives: the mean-CVaR measure of the total cost, for any family.

The measure
-----------
With ``L_s(x)`` the total loss of plan ``x`` in scenario ``s`` (its cost; the negative profit
for a maximising family), level ``alpha`` in (0, 1) and weight ``lambda`` in [0, 1]::

    rho(x) = (1 - lambda) E[L(x)] + lambda CVaR_alpha(L(x))

``CVaR_alpha`` is the mean of the worst ``1 - alpha`` of the distribution. ``lambda = 0`` is
the risk-neutral problem; ``lambda = 1`` minimises CVaR alone. A maximising family reports
``(1 - lambda) E[profit] - lambda CVaR_alpha(-profit)``, to be maximised.

How it stays a two-stage program
--------------------------------
Rockafellar and Uryasev (2000): ``CVaR_alpha(L) = min_eta eta + E[(L - eta)+] / (1 - alpha)``.
:func:`risk_module` wraps a family's module so that every scenario model gets a first-stage
variable ``eta`` (the value at risk at the optimum, appended last to the nonanticipative
variables) and a second-stage excess ``u_s >= L_s - eta``, ``u_s >= 0``, and the objective
``(1 - lambda) L_s + lambda (eta + u_s / (1 - alpha))``, whose expectation is ``rho`` once eta
is optimal. The extensive form and progressive hedging solve the wrapped module as they solve
any module. The L-shaped method works on ``rho`` directly (see
:mod:`stochplan.solve.lshaped`).

Given the plan, each scenario's best recourse is the same as under the expectation (the
measure is non-decreasing in every scenario's loss), so :func:`risk_result` turns any
method's answer into the run's result by evaluating the plan on the scenarios with the
family's own module: the recourse tables are the family's, and the in-sample expected cost,
value at risk and CVaR come from one definition (:func:`stochplan.metrics.stats.risk_value`).
An extensive form that is an LP with ``lambda < 1`` already holds each scenario's best
recourse at its plan, so its scenario costs are read off its solution instead
(:func:`ef_scenario_values`; at S = 1,000 on electronics that saves the 0.9 s of solving
every scenario again).
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from stochplan import _mpisppy
from stochplan.errors import InputError, SolveError
from stochplan.solve.results import SolveResult
from stochplan.solve.solvers import SolverOptions

if TYPE_CHECKING:
    from stochplan.metrics.stats import RiskValue

#: Risk measures: the expected cost (risk-neutral) and the mean-CVaR combination.
MEASURES = ("expectation", "cvar")

#: Names of the components :func:`add_cvar` adds to a scenario model.
VAR_NAME = "risk_value_at_risk"
EXCESS_NAME = "risk_excess"


@dataclass(frozen=True)
class RiskConfig:
    """The risk measure of the objective.

    Attributes
    ----------
    measure : str
        "expectation" (risk-neutral, the default) or "cvar": (1 - weight) E[cost] + weight
        CVaR_alpha(cost) of the total cost (of the loss, the negative profit, for maximising
        families).
    alpha : float
        CVaR level in (0, 1): CVaR is the mean cost of the worst 1 - alpha of scenarios.
    weight : float
        Weight lambda of CVaR in [0, 1]; 0 is risk-neutral, 1 minimises CVaR alone.
    """

    measure: str = "expectation"
    alpha: float = 0.95
    weight: float = 0.5

    def __post_init__(self) -> None:
        if self.measure not in MEASURES:
            raise InputError("risk.measure", self.measure, f"expected one of {', '.join(MEASURES)}")
        for name in ("alpha", "weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise InputError(f"risk.{name}", value, "must be a number")
            object.__setattr__(self, name, float(value))
        if not 0.0 < self.alpha < 1.0:
            raise InputError("risk.alpha", self.alpha, "must be in (0, 1), e.g. 0.95")
        if not 0.0 <= self.weight <= 1.0:
            raise InputError("risk.weight", self.weight, "must be in [0, 1]")

    @property
    def active(self) -> bool:
        """Whether the objective differs from the expected cost (CVaR with a positive weight)."""
        return self.measure == "cvar" and self.weight > 0.0

    def label(self) -> str:
        """``"expectation"``, ``"expectation (CVaR 95% weight 0)"`` or e.g.
        ``"0.5 E + 0.5 CVaR 95%"``: the measure as reports name it."""
        if self.measure == "expectation":
            return "expectation"
        if self.weight == 0.0:
            return f"expectation (CVaR {self.alpha:.0%} weight 0)"
        if self.weight == 1.0:
            return f"CVaR {self.alpha:.0%}"
        return f"{1 - self.weight:g} E + {self.weight:g} CVaR {self.alpha:.0%}"

    def replace(self, **changes: Any) -> RiskConfig:
        return dataclasses.replace(self, **changes)


# ----------------------------------------------------------------------------------------------
# The Rockafellar-Uryasev form of a scenario model


def add_cvar(model: Any, alpha: float, weight: float,
             box: tuple[float, float] | None = None) -> Any:
    """Give one scenario model the mean-CVaR objective (see the module docstring) and return it.

    ``eta`` (:data:`VAR_NAME`) is appended to the root node's nonanticipative variables; the
    excess (:data:`EXCESS_NAME`) is second stage. ``box`` bounds eta (see
    :func:`value_at_risk_box`); None leaves it free.
    """
    import pyomo.environ as pyo

    objective = next(model.component_data_objects(pyo.Objective, active=True))
    sense = 1.0 if objective.sense == pyo.minimize else -1.0
    loss = sense * objective.expr
    first = _mpisppy.root_cost(model)
    eta = pyo.Var(domain=pyo.Reals, bounds=box)
    excess = pyo.Var(domain=pyo.NonNegativeReals)
    model.add_component(VAR_NAME, eta)
    model.add_component(EXCESS_NAME, excess)
    if box is None:
        # CVaR(c'x + Q) = c'x + CVaR(Q): the tail row holds the recourse cost only (the
        # first-stage terms cancel), S rows sparser by the first stage; eta is then the VaR
        # of the recourse cost
        recourse = loss - sense * first
        model.add_component("risk_tail", pyo.Constraint(expr=excess >= recourse - eta))
        measure = loss - weight * recourse + weight * (eta + excess / (1.0 - alpha))
    else:
        # eta is the VaR of the total loss, within the box computed for it
        model.add_component("risk_tail", pyo.Constraint(expr=excess >= loss - eta))
        measure = (1.0 - weight) * loss + weight * (eta + excess / (1.0 - alpha))
    objective.deactivate()
    model.add_component("risk_objective",
                        pyo.Objective(expr=sense * measure, sense=objective.sense))
    first_cost = (first if box is None else (1.0 - weight) * first) + sense * weight * eta
    return _mpisppy.attach_root(model, first_cost, _mpisppy.nonant_vars(model) + [eta],
                                _mpisppy.probability(model))


def risk_module(module: ModuleType, risk: RiskConfig,
                box: tuple[float, float] | None = None) -> ModuleType:
    """``module`` with every scenario model in Rockafellar-Uryasev form (the module itself when
    the measure is the expectation), eta within ``box`` if given. Everything else of the
    module is kept."""
    if not risk.active:
        return module
    proxy = types.ModuleType(module.__name__, module.__doc__)
    proxy.__dict__.update({k: v for k, v in vars(module).items() if k != "__name__"})
    alpha, weight = risk.alpha, risk.weight

    def scenario_creator(name: str, **kwargs: Any) -> Any:
        return add_cvar(module.scenario_creator(name, **kwargs), alpha, weight, box)

    proxy.scenario_creator = scenario_creator  # type: ignore[attr-defined]
    if hasattr(module, "data_scenario_creator"):
        def data_scenario_creator(name: str, theta: Any, **kwargs: Any) -> Any:
            return add_cvar(module.data_scenario_creator(name, theta, **kwargs), alpha, weight,
                            box)

        proxy.data_scenario_creator = data_scenario_creator  # type: ignore[attr-defined]
    proxy.RISK = risk  # type: ignore[attr-defined]
    proxy.RISK_BOX = box  # type: ignore[attr-defined]
    return proxy


@dataclass(frozen=True)
class TailForm:
    """Where the Rockafellar-Uryasev form sits in a compiled scenario model.

    Each scenario's tail row reads ``u_s + eta - R_s >= r_s``, or the other way round
    ``-u_s - eta + R_s <= -r_s`` as Pyomo may write it (``sign`` +1 or -1). ``coefficients``
    is the row without eta and the excess, so the scenario's loss (its recourse loss, or its
    total loss when eta has a box, see :func:`add_cvar`) is ``sign * (rhs_s - coefficients .
    (x, y_s))`` (:meth:`losses`).
    """

    row: int
    sign: float
    coefficients: np.ndarray
    eta: int
    excess: int

    def losses(self, compiled: Any, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Each scenario's loss in the row (minimisation form) at first-stage values ``first``
        and recourse values ``second`` (S x n2)."""
        n1 = compiled.n_first
        first = np.asarray(first, float)
        second = np.atleast_2d(np.asarray(second, float))
        a = self.coefficients
        return np.asarray(self.sign * (compiled.rhs[:, self.row]
                                       - (second @ a[n1:] + a[:n1] @ first)), float)


def tail_form(compiled: Any) -> TailForm:
    """The :class:`TailForm` of a module in Rockafellar-Uryasev form, compiled
    (:class:`~stochplan.solve.matrix.CompiledScenarios`); :class:`SolveError` if it is not."""
    rows = np.flatnonzero(np.asarray(compiled.row_family) == "risk_tail")
    names = compiled.columns.variables
    n1 = compiled.n_first
    if rows.size != 1 or names[n1 - 1] != VAR_NAME or names.count(EXCESS_NAME) != 1:
        raise SolveError("the extensive form is not in Rockafellar-Uryasev form")
    row = compiled.A.getrow(int(rows[0])).toarray().ravel()
    excess = names.index(EXCESS_NAME)
    e = float(row[excess])
    if abs(abs(e) - 1.0) > 1e-12 or row[n1 - 1] != e:
        raise SolveError("the extensive form's tail row is not in Rockafellar-Uryasev form")
    row[n1 - 1] = 0.0
    row[excess] = 0.0
    return TailForm(int(rows[0]), e, row, n1 - 1, excess)


def ef_scenario_values(compiled: Any, first: np.ndarray, second: np.ndarray,
                       box: tuple[float, float] | None = None) -> np.ndarray:
    """Each scenario's objective (the family's: cost, or profit for a maximising family) read
    off the extensive form of a module in Rockafellar-Uryasev form, at its solution.

    ``compiled`` is the wrapped module's :class:`~stochplan.solve.matrix.CompiledScenarios`;
    ``first`` its first-stage values (eta last) and ``second`` the recourse values (S x n2,
    the excess among them). Each scenario's tail row holds its recourse loss (its total loss
    when ``box`` is given, see :func:`add_cvar`): the loss is read off the row
    (:meth:`TailForm.losses`), plus the scenario's own first-stage cost ``c_s'x`` when the
    row holds the recourse only. This is what the extensive form chose in every scenario: no
    scenario is solved again.
    """
    form = tail_form(compiled)
    n1 = compiled.n_first
    first = np.asarray(first, float)
    loss = form.losses(compiled, first, second)
    if box is None:
        loss = loss + compiled.cost[:, : n1 - 1] @ first[: n1 - 1]
    return np.asarray(compiled.sense * loss, float)


# ----------------------------------------------------------------------------------------------
# From a method's answer to the run's result


def risk_result(
    result: SolveResult,
    module: ModuleType,
    scenario_names: Sequence[str],
    creator_kwargs: dict[str, Any],
    risk: RiskConfig,
    solver: SolverOptions | None = None,
) -> SolveResult:
    """The run's result of a solve under ``risk`` (CVaR, any weight, 0 included): the plan
    without ``eta``, each scenario's recourse from the family's own module, and
    ``info["risk"]`` (:class:`RiskValue` of the plan in sample, and the measure). A result
    that already carries its in-sample figures (the L-shaped method's) is taken as it is; one
    that carries each scenario's objective (``info["scenario_objectives"]``, an extensive
    form's, see :func:`ef_scenario_values`) is measured from them, with its own recourse,
    and its measure must equal its objective.

    Raises :class:`SolveError` if the plan's measure is worse than the solver's objective by
    more than the MIP gap of the re-solved recourse (a wrong reformulation must not pass
    silently).
    """
    from stochplan.metrics.stats import risk_value
    from stochplan.solve.ef import var_table
    from stochplan.solve.evaluate import evaluate_plan

    names = [str(n) for n in scenario_names]
    model = module.scenario_creator(names[0], **creator_kwargs)
    nonants = _mpisppy.nonant_vars(model)
    values = result.plan["value"].to_numpy(float)
    if len(values) == len(nonants) + 1:  # the wrapped module's plan: eta last
        values = values[:-1]
    if len(values) != len(nonants):
        raise SolveError(f"the plan has {len(values)} first-stage values, the model "
                         f"{len(nonants)}")
    own = result.info.get("risk")
    if (isinstance(own, dict) and {"expected", "value_at_risk", "cvar", "objective"} <= set(own)
            and len(result.plan) == len(nonants)):
        # the method measured its plan on every scenario itself (the L-shaped method)
        info = dict(result.info)
        info["risk"] = {**own, "measure": risk.measure, "label": risk.label()}
        return dataclasses.replace(result, info=info)
    for v, x in zip(nonants, values):
        v.set_value(float(x), skip_validation=True)
    index_names = tuple(getattr(module, "INDEX_NAMES", ()))
    plan = var_table(nonants, index_names)
    sense = "min" if _minimises(model) else "max"
    read = result.info.get("scenario_objectives")
    if read is not None and len(read) == len(names):
        # the extensive form's own recourse, read off its solution (ef_scenario_values)
        scenario_values = np.asarray(read, float)
        probabilities = np.asarray(result.probabilities, float)
        recourse = result.recourse
        if "variable" in recourse.columns:
            recourse = recourse[recourse["variable"] != EXCESS_NAME].reset_index(drop=True)
        scenario_names = tuple(result.scenario_names)
    else:
        solves = evaluate_plan(module, plan, names, creator_kwargs, solver, keep_recourse=True)
        scenario_values = np.asarray(solves.objective, float)
        probabilities = np.asarray(solves.probabilities, float)
        recourse = solves.recourse if solves.recourse is not None else result.recourse
        scenario_names = tuple(solves.names)
    measured = risk_value(scenario_values, probabilities, risk.alpha, risk.weight, sense)
    mip_gap = (solver or SolverOptions()).mip_rel_gap
    objective, gap = _objective(result, measured, 1e-4 if mip_gap is None else mip_gap)
    if read is not None and result.objective is not None and abs(
            measured.objective - result.objective) > 1e-6 * max(1.0, abs(result.objective)):
        # the extensive form's own recourse measures exactly its objective
        raise SolveError(f"the mean-CVaR value {measured.objective:,.6f} read off the "
                         f"extensive form differs from its objective {result.objective:,.6f}")
    info = dict(result.info)
    info.pop("scenario_objectives", None)
    info["risk"] = {"measure": risk.measure, "label": risk.label(), **measured.to_dict()}
    return dataclasses.replace(result, plan=plan, recourse=recourse, objective=objective,
                               gap=gap, probabilities=probabilities,
                               scenario_names=scenario_names, info=info)


def risk_info(result: SolveResult) -> RiskValue | None:
    """The in-sample :class:`RiskValue` of a risk-averse result (None when risk-neutral)."""
    from stochplan.metrics.stats import RiskValue

    data = result.info.get("risk")
    if not isinstance(data, dict):
        return None
    fields = {f.name for f in dataclasses.fields(RiskValue)}
    return RiskValue(**{k: v for k, v in data.items() if k in fields})


def _objective(result: SolveResult, measured: RiskValue,
               mip_rel_gap: float) -> tuple[float | None, float | None]:
    """The run's objective and gap: the plan's measure with the best eta where that is better
    than the solver's objective (a decomposition's incumbent may carry a suboptimal eta).

    The re-solved recourse can be worse than the solver's by the MIP gap of each scenario's
    solve (integer recourse); beyond twice that, :class:`SolveError`: the reformulation would
    then be wrong.
    """
    from stochplan.solve.solvers import relative_gap

    objective = result.objective
    if objective is None or not math.isfinite(measured.objective):
        return objective, result.gap
    sign = 1.0 if measured.sense == "min" else -1.0
    tolerance = max(1e-6, 2 * mip_rel_gap) * max(1.0, abs(objective))
    if sign * (measured.objective - objective) > tolerance:
        raise SolveError(f"the plan's mean-CVaR value {measured.objective:,.6f} is worse than "
                         f"the solver's objective {objective:,.6f}")
    best = measured.objective if sign * (measured.objective - objective) < 0 else objective
    gap = relative_gap(best, result.bound) if result.bound is not None else result.gap
    return best, gap


def _minimises(model: Any) -> bool:
    import pyomo.environ as pyo

    objective = next(model.component_data_objects(pyo.Objective, active=True))
    return bool(objective.sense == pyo.minimize)
