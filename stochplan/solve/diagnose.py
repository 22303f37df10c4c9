"""Why a model is infeasible: the constraint families whose relaxation restores feasibility.

:func:`explain_infeasibility` solves an elastic copy of the problem (every constraint gets
non-negative slacks, integrality is dropped, the objective is the total slack) and reports the
families, named by their Pyomo component names, whose slack is positive. The cheapest slack
often sits in a balance row (``inventory_balance``) while the cause is elsewhere (no labour
hours), so it then also names every family that, relaxed alone, makes the problem feasible:
the cause is among them (``regular_hours`` when ``hours_per_worker = 0``).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pyomo.environ as pyo

from stochplan import _mpisppy
from stochplan.solve.solvers import SolverOptions, solve_model


def explain_infeasibility(model: pyo.ConcreteModel,
                          solver: SolverOptions) -> tuple[tuple[str, ...], str]:
    """Relax ``model`` in place and name the constraint families that cannot all hold.

    Returns the family names (most violated first) and a one-line description. The model is
    modified: use it for nothing else afterwards.
    """
    pyo.TransformationFactory("core.relax_integer_vars").apply_to(model)
    cons = [
        c for c in model.component_data_objects(pyo.Constraint, active=True, descend_into=True)
        if not _mpisppy.is_added_component(c.parent_component().local_name)
    ]
    for obj in model.component_data_objects(pyo.Objective, active=True, descend_into=True):
        obj.deactivate()
    model._elastic_index = pyo.RangeSet(0, len(cons) - 1)
    model._elastic_up = pyo.Var(model._elastic_index, domain=pyo.NonNegativeReals)
    model._elastic_down = pyo.Var(model._elastic_index, domain=pyo.NonNegativeReals)
    model._elastic_rows = pyo.ConstraintList()
    for i, c in enumerate(cons):
        body = c.body + model._elastic_up[i] - model._elastic_down[i]
        if c.equality:
            model._elastic_rows.add(body == c.upper)
        else:
            model._elastic_rows.add(pyo.inequality(c.lower, body, c.upper))
        c.deactivate()
    model._elastic_total = pyo.Objective(
        expr=sum(model._elastic_up[i] + model._elastic_down[i] for i in model._elastic_index)
    )
    outcome = solve_model(model, solver.replace(mip_rel_gap=None))
    if not outcome.has_solution:
        return (), f"even the elastic relaxation ended {outcome.status!r}"

    violation: dict[str, float] = defaultdict(float)
    rows: dict[str, int] = defaultdict(int)
    where: dict[str, set[str]] = defaultdict(set)
    for i, c in enumerate(cons):
        slack = pyo.value(model._elastic_up[i]) + pyo.value(model._elastic_down[i])
        if slack > 1e-6:
            family = c.parent_component().local_name
            violation[family] += slack
            rows[family] += 1
            block = c.parent_block()
            if block is not None and block is not model:
                where[family].add(block.local_name)
    if not violation:
        return (), "its LP relaxation is feasible: the integrality requirements make it infeasible"
    families = tuple(sorted(violation, key=lambda f: violation[f], reverse=True))
    alone = _families_alone(model, cons, solver)
    parts = []
    for f in families:
        scen = (f" in {', '.join(sorted(where[f])[:3])}{' ...' if len(where[f]) > 3 else ''}"
                if where[f] else "")
        parts.append(f"{f} ({rows[f]} rows{scen}, short by {violation[f]:,.4g} in total)")
    detail = "constraint families that cannot all hold: " + "; ".join(parts)
    if alone:
        detail += ("; relaxing any one of these alone makes it feasible: " + ", ".join(alone))
    return (*families, *(f for f in alone if f not in families)), detail


def _families_alone(model: pyo.ConcreteModel, cons: list[Any],
                    solver: SolverOptions) -> tuple[str, ...]:
    """The constraint families that, given slack alone (every other row held), make the
    elastic model feasible; in the order they appear in the model."""
    by_family: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(cons):
        by_family[c.parent_component().local_name].append(i)
    out = []
    for family, rows in by_family.items():
        own = set(rows)
        for i in model._elastic_index:
            for var in (model._elastic_up[i], model._elastic_down[i]):
                if i in own:
                    var.unfix()
                else:
                    var.fix(0.0)
        if solve_model(model, solver.replace(mip_rel_gap=None)).has_solution:
            out.append(family)
    for i in model._elastic_index:
        model._elastic_up[i].unfix()
        model._elastic_down[i].unfix()
    return tuple(out)


def scenario_alone(module: Any, name: str, creator_kwargs: dict[str, Any],
                   solver: SolverOptions | None = None) -> tuple[tuple[str, ...], str] | None:
    """Why scenario ``name`` alone (its LP relaxation, the first stage free) has no solution,
    as :func:`explain_infeasibility` says it; None when it has one. An instance infeasible
    in every scenario (no labour hours, say) is named so in well under a second, without the
    extensive form."""
    solver = solver or SolverOptions()
    model = module.scenario_creator(name, **creator_kwargs)
    pyo.TransformationFactory("core.relax_integer_vars").apply_to(model)
    if solve_model(model, solver).status not in ("infeasible", "infeasible_or_unbounded"):
        return None
    # explain_infeasibility relaxes the integers itself: it takes a fresh model
    return explain_infeasibility(module.scenario_creator(name, **creator_kwargs), solver)
