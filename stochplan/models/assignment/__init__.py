"""The assignment family (seed 004): orders offered to producers who may refuse them.

Each day's orders are offered to compatible producers before their answers are known; a
producer accepts an offer with some probability; a rejected order may be offered once more,
to another producer. Expected profit (value less transport of what is shipped) is maximised,
optionally pulling producers toward their volume targets. One folder holds the whole family:

- :mod:`.data`: the instance record (:class:`AssignmentInstance`), its options
  (:class:`AssignmentOptions`), the loader of the producer and order tables and the
  acceptance sampler;
- :mod:`.model`: the Pyomo builder, :func:`build_model`, with the formulation in its
  docstring (and how it differs from the public code), and the same scenario models written
  as arrays (:func:`.model.scenario_arrays`), which every matrix solve takes instead of
  compiling the Pyomo models (200 laser scenarios: 0.02 s instead of 6.9 s);
- :mod:`.cuts`: the Lagrangian cuts of the offers that the arrays carry for the L-shaped
  method's master MIP (capacity rows dualised, every other offer priced exactly);
- :mod:`.kpis`: profit and its parts, acceptance and fulfilment, producers' volumes against
  their targets, the net benefit per scenario;
- :mod:`.simulate`: the day-by-day simulation of plans and the public code's heuristic;
- :mod:`.report` and :mod:`.panels`: the text report and the dashboard panels of a stored run;
- ``instances/``: the built-in instance ``laser`` (the public data: 20 producers, 50 orders).

What is random
--------------
One scenario's data is an (order, producer) array: 1 when the producer would accept the
order if offered it, 0 otherwise (0 on incompatible pairs). ``file:PATH`` scenario tables have
the columns ``scenario, order, producer, value`` (value = accepted, 0 or 1; every (order,
producer) cell of every scenario, incompatible ones too). Specs: ``named`` is the single
expected scenario (each pair at its rate, probability 1: the deterministic problem; with
binary reassignments nothing is reassigned in it, a rejection being fractional);
``sample:N`` draws Bernoulli acceptances (``acceptance = "perturbed"``: at rates perturbed per
producer and scenario, as the public code perturbs them); scenario k of seed s comes from
``np.random.default_rng([s, k])`` alone. There are no Poisson rates (``poisson:N`` and
``qmc:N`` do not apply).

:data:`FAMILY` ties the parts to :class:`stochplan.family.Family`; the lines at the end make
this module follow mpi-sppy's module contract, so it runs unchanged under
``python -m mpisppy.generic_cylinders --module-name stochplan.models.assignment``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stochplan import scenarios as scen
from stochplan.errors import InputError
from stochplan.family import Family, KPIs, Panel
from stochplan.models.assignment.data import (
    AcceptanceSampler,
    AssignmentInstance,
    AssignmentOptions,
    load_assignment,
)
from stochplan.models.assignment.model import FIRST_STAGE, SECOND_STAGE, build_model
from stochplan.models.assignment.model import INDEX_NAMES as _INDEX_NAMES

__all__ = [
    "FAMILY",
    "FIRST_STAGE",
    "INDEX_NAMES",
    "SECOND_STAGE",
    "AssignmentFamily",
    "AssignmentInstance",
    "AssignmentOptions",
    "build_model",
]


class AssignmentFamily(Family):
    """Orders x producers; first stage the offers, recourse the accepted offers and the
    reassignment of rejected orders in each scenario of acceptances (see :mod:`.model`)."""

    name = "assignment"
    description = "order assignment under stochastic acceptance, with reassignment (seed 004)"
    index_names = _INDEX_NAMES
    first_stage = FIRST_STAGE
    options_type = AssignmentOptions
    default_instance = "laser"
    compile_from_arrays = True  # tests/models/test_assignment_arrays.py checks every option

    def load(self, folder: Path, meta: dict[str, Any], toml_path: Path) -> AssignmentInstance:
        return load_assignment(folder, meta, toml_path)

    def uncertainty(self, inst: AssignmentInstance) -> scen.Uncertainty:
        """Acceptances on the axes ``order`` x ``producer`` (see the module docstring); the
        named scenario is the expected one (every pair at its rate)."""
        rates = inst.rates
        perturbation = (inst.options.perturbation if inst.options.acceptance == "perturbed"
                        else None)
        return scen.Uncertainty(
            name="acceptance",
            axes={"order": inst.orders, "producer": inst.producers},
            named_data=rates[None, :, :],
            named_probabilities=np.ones(1),
            named_labels=("expected",),
            sampler=AcceptanceSampler(rates, perturbation),
            upper=1.0,
            value_column="accepted",
        )

    def build(self, inst: AssignmentInstance, data: np.ndarray, name: str) -> Any:
        return build_model(inst, data, name=name)

    def mean_instance(self, inst: AssignmentInstance, mean: np.ndarray,
                      integer_policy: str) -> tuple[AssignmentInstance, np.ndarray]:
        """The mean-value problem: the mean acceptances (fractional) as they are. With binary
        offers they stay exact (a = xi x); binary reassignments of a fractional rejection are
        rounded away (``"round"``: each mean acceptance rounded to 0 or 1, at 0.5 up) or
        relaxed (``"relax"``: reassignments in [0, 1]). With relaxed recourse the policy does
        not matter."""
        if integer_policy not in ("round", "relax"):
            raise InputError("integer_policy", integer_policy, "expected 'round' or 'relax'")
        opts = inst.options
        if not (opts.integer and opts.recourse_integer):
            return inst, mean
        if integer_policy == "relax":
            return inst.with_options(recourse_integer=False), mean
        return inst, (np.asarray(mean) >= 0.5).astype(float)

    def scenario_arrays(self, inst: AssignmentInstance,
                        scenarios: scen.ScenarioSet) -> dict[str, Any] | None:
        """The scenario models as arrays without Pyomo (:func:`.model.scenario_arrays`), which
        every matrix solve uses (:attr:`compile_from_arrays`)."""
        from stochplan.models.assignment.model import scenario_arrays

        return scenario_arrays(inst, scenarios)

    # -- KPIs and reports --------------------------------------------------------------------

    def kpis(self, inst: AssignmentInstance, scenarios: scen.ScenarioSet, result: Any) -> KPIs:
        from stochplan.models.assignment.kpis import kpi_report, solution_arrays

        arrays = solution_arrays(inst, result.plan, result.recourse, result.scenario_names)
        report = kpi_report(inst, arrays, scenarios.data, scenarios.probabilities,
                            scenarios.names)
        return KPIs(dict(report.headline), dict(report.tables))

    def oos_kpis(self, inst: AssignmentInstance, scenarios: scen.ScenarioSet,
                 solves: Any) -> dict[str, float]:
        """Expected accepted offers and reassignments (orders) and the share of the orders
        shipped, over the scenarios where the plan was solved."""
        import math

        from stochplan.models.assignment.kpis import recourse_arrays

        feasible = [i for i, c in enumerate(solves.objective) if math.isfinite(c)]
        if not feasible or solves.recourse is None:
            return {"accepted_offers": math.nan, "reassignments": math.nan,
                    "shipped_share": math.nan}
        sub = scenarios.subset(feasible)
        arrays = recourse_arrays(inst, solves.recourse, sub.names)
        pi = sub.probabilities
        q = 1.0 if inst.options.reassignment == "certain" else inst.rates
        accepted = float(pi @ arrays["a"].sum(axis=(1, 2)))
        reassigned = float(pi @ arrays["z"].sum(axis=(1, 2)))
        shipped = accepted + float(pi @ (arrays["z"] * q).sum(axis=(1, 2)))
        return {"accepted_offers": accepted, "reassignments": reassigned,
                "shipped_share": shipped / inst.n_orders}

    def instance_tables(self, inst: AssignmentInstance) -> dict[str, pd.DataFrame]:
        i, j = inst.pair_positions
        return {
            "instance_orders": pd.DataFrame({
                "order": np.array(inst.orders, dtype="int64"),
                "x": inst.order_xy[:, 0], "y": inst.order_xy[:, 1],
                "value": inst.value,
                "dimension_x": inst.dims[:, 0], "dimension_y": inst.dims[:, 1],
                "bending": inst.requires[:, 0].astype("int64"),
                "deburring": inst.requires[:, 1].astype("int64"),
                "galvanising": inst.requires[:, 2].astype("int64"),
                "producers": inst.compatible.sum(axis=1).astype("int64"),
            }),
            "instance_producers": pd.DataFrame({
                "producer": np.array(inst.producers, dtype="int64"),
                "x": inst.producer_xy[:, 0], "y": inst.producer_xy[:, 1],
                "target": inst.target, "current": inst.current, "gap": inst.gap,
                "capacity": inst.capacity, "rate": inst.rate,
            }),
            "instance_pairs": pd.DataFrame({
                "order": np.array([inst.orders[k] for k in i], dtype="int64"),
                "producer": np.array([inst.producers[k] for k in j], dtype="int64"),
                "distance": inst.distance[i, j],
                "rate": inst.rates[i, j],
            }),
        }

    def instance_summary(self, inst: AssignmentInstance) -> dict[str, Any]:
        return {
            "name": inst.name,
            "source": inst.source,
            "orders": len(inst.orders),
            "producers": len(inst.producers),
            "pairs": len(inst.pairs),
            "excluded_orders": list(inst.excluded),
            "total_value": float(inst.value.sum()),
            "total_gap": float(inst.gap.sum()),
        }

    def report_text(self, headline: Mapping[str, float],
                    tables: Mapping[str, pd.DataFrame]) -> str:
        from stochplan.models.assignment.report import report_text

        return report_text(headline, tables)

    def panels(self, view: Any) -> list[Panel]:
        from stochplan.models.assignment.panels import panels

        return panels(view)

    def simulate(self, inst: AssignmentInstance, plans: Mapping[str, pd.DataFrame],
                 days: scen.ScenarioSet,
                 recourse: Callable[..., pd.DataFrame]) -> KPIs:
        """Day-by-day simulation of the plans and of the public code's heuristic on the same
        days (see :mod:`.simulate`)."""
        from stochplan.models.assignment.simulate import simulate

        return simulate(inst, plans, days, recourse)

    def scenario_denouement(self, rank: int, scenario_name: str, scenario: Any) -> None:
        import pyomo.environ as pyo

        from stochplan.family import log

        log.debug("rank %d %s: profit %.2f", rank, scenario_name, pyo.value(scenario.Profit))


FAMILY = AssignmentFamily()

# mpi-sppy's module contract
scenario_creator = FAMILY.scenario_creator
scenario_names_creator = FAMILY.scenario_names_creator
kw_creator = FAMILY.kw_creator
inparser_adder = FAMILY.inparser_adder
scenario_denouement = FAMILY.scenario_denouement
average_scenario_creator = FAMILY.average_scenario_creator
scenario_data = FAMILY.scenario_data
data_scenario_creator = FAMILY.data_scenario_creator
INDEX_NAMES = FAMILY.index_names
