"""The lot-sizing family (seed 001): setups planned before customer orders are known.

Products are made on shared machines from limited materials over a few weeks; a product made
in a week needs a setup (a cost, and hours on its machines) and at least a minimum batch. The
setup plan is fixed first; then order quantities (and the open market) are revealed, and
production (by default), stock, deliveries and open-market sales adapt. Profit is maximised.
One folder holds the whole family:

- :mod:`.data`: the instance record (:class:`LotSizingInstance`), its options
  (:class:`LotSizingOptions`), the loader of the tutorial's ten tables and the scenario
  sampler;
- :mod:`.model`: the Pyomo builder, :func:`build_model`, with the formulation in its docstring
  (and how it differs from the tutorial's code);
- :mod:`.kpis`: profit and its parts, fill and on-time rates by tier, customer and order,
  machine and material utilisation, setups and batch sizes;
- :mod:`.report` and :mod:`.panels`: the text report and the dashboard panels of a stored run;
- ``instances/``: the built-in instance ``furniture`` (the tutorial's step-4 data).

What is random
--------------
One scenario's data is one vector over the axis ``item``: the order ids (their quantities,
Poisson around the targets) followed by ``product@week`` cells (the open-market demand,
Poisson around the midpoint of the product's min and max demand). One axis holds both, so the
data stays one flat array per scenario (mpi-sppy's contract) and ``file:PATH`` scenario tables
have the columns ``scenario, item, value``. Specs: ``named`` is the single nominal scenario
(targets and midpoints, probability 1: the deterministic problem); ``sample:N`` draws Poisson
quantities and, when a tier's ``cancel_*`` option is set, cancels each order of that tier with
that probability (scenario k of seed s from ``np.random.default_rng([s, k])`` alone);
``poisson:N`` and ``qmc:N`` draw the Poisson quantities only.

:data:`FAMILY` ties the parts to :class:`stochplan.family.Family`; the lines at the end make
this module follow mpi-sppy's module contract, so it runs unchanged under
``python -m mpisppy.generic_cylinders --module-name stochplan.models.lotsizing``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stochplan import scenarios as scen
from stochplan.family import Family, KPIs, Panel
from stochplan.models.lotsizing.data import (
    LotSizingInstance,
    LotSizingOptions,
    OrderSampler,
    load_lotsizing,
)
from stochplan.models.lotsizing.model import (
    FIRST_STAGE,
    SECOND_STAGE,
    build_model,
    first_stage_vars,
)
from stochplan.models.lotsizing.model import INDEX_NAMES as _INDEX_NAMES

__all__ = [
    "FAMILY",
    "FIRST_STAGE",
    "INDEX_NAMES",
    "SECOND_STAGE",
    "LotSizingFamily",
    "LotSizingInstance",
    "LotSizingOptions",
    "build_model",
]


class LotSizingFamily(Family):
    """Products x weeks; first stage the setup plan (and, with ``production_stage = "first"``,
    the quantities), recourse production, stock, deliveries and sales in each scenario of
    order quantities and market demand (see :mod:`.model` for the formulation)."""

    name = "lotsizing"
    description = "lot sizing with setups, minimum batches and tiered customer orders (seed 001)"
    index_names = _INDEX_NAMES
    first_stage = FIRST_STAGE
    options_type = LotSizingOptions
    default_instance = "furniture"
    #: dualised, these leave one block per product (its chain of stock, orders and sales),
    #: touched by its T setups (see :mod:`stochplan.solve.patterns`)
    coupling_rows = ("machine_hours", "materials")

    def load(self, folder: Path, meta: dict[str, Any], toml_path: Path) -> LotSizingInstance:
        return load_lotsizing(folder, meta, toml_path)

    def uncertainty(self, inst: LotSizingInstance) -> scen.Uncertainty:
        """Order quantities and open-market demand on one axis ``item`` (see the module
        docstring); the named scenario is the nominal one."""
        rates = inst.item_rates
        cancel = inst.order_cancel
        return scen.Uncertainty(
            name="demand",
            axes={"item": inst.items},
            rates=rates,
            named_data=rates[None, :],
            named_probabilities=np.ones(1),
            named_labels=("nominal",),
            sampler=OrderSampler(rates, cancel) if np.any(cancel > 0) else None,
        )

    def build(self, inst: LotSizingInstance, data: np.ndarray, name: str) -> Any:
        return build_model(inst, data, name=name)

    def first_stage_vars(self, model: Any) -> list[Any]:
        """y, and x when production is first stage."""
        return first_stage_vars(model)

    def average_scenario_creator(self, scenario_name: str,  # type: ignore[override]
                                 **kwargs: Any) -> Any:
        """The mean-value (EV) scenario: the scenarios' mean order quantities and market
        demand, probability 1. The recourse is continuous, so a fractional mean needs no
        integer policy (the setups stay binary)."""
        src = self.source(**kwargs)
        return self.annotate(build_model(src.record, src.mean_data(), scenario_name), 1.0)

    # -- KPIs and reports --------------------------------------------------------------------

    def kpis(self, inst: LotSizingInstance, scenarios: scen.ScenarioSet, result: Any) -> KPIs:
        from stochplan.models.lotsizing.kpis import kpi_report, solution_arrays

        arrays = solution_arrays(inst, result.plan, result.recourse, result.scenario_names)
        report = kpi_report(inst, arrays, scenarios.data, scenarios.probabilities)
        return KPIs(dict(report.headline), dict(report.tables))

    def oos_kpis(self, inst: LotSizingInstance, scenarios: scen.ScenarioSet,
                 solves: Any) -> dict[str, float]:
        """Fill and on-time rates of the orders over the scenarios where the plan was solved."""
        import math

        from stochplan.models.lotsizing.kpis import fill_rates, recourse_arrays

        feasible = [i for i, c in enumerate(solves.objective) if math.isfinite(c)]
        if not feasible or solves.recourse is None:
            return {"fill_rate": math.nan, "on_time_rate": math.nan}
        sub = scenarios.subset(feasible)
        arrays = recourse_arrays(inst, solves.recourse, sub.names)
        q = sub.data[:, : inst.n_orders]
        return fill_rates(inst, arrays["V"], q, sub.probabilities)

    def instance_tables(self, inst: LotSizingInstance) -> dict[str, pd.DataFrame]:
        return {
            "instance_products": pd.DataFrame({
                "product": list(inst.products),
                "profit": inst.profit,
                "holding_cost": inst.holding_cost,
                "min_demand": inst.min_demand,
                "max_demand": inst.max_demand,
                "min_batch": inst.min_batch,
                "setup_cost": inst.product_setup_cost,
                "production_bound": inst.production_bound,
            }),
            "instance_orders": pd.DataFrame({
                "order": list(inst.orders),
                "customer": [inst.customers[c] for c in inst.order_customer],
                "tier": list(inst.order_tier),
                "product": [inst.products[p] for p in inst.order_product],
                "week": inst.order_week.astype("int64"),
                "target": inst.order_target,
            }),
        }

    def instance_summary(self, inst: LotSizingInstance) -> dict[str, Any]:
        return {
            "name": inst.name,
            "source": inst.source,
            "weeks": list(inst.weeks),
            "products": list(inst.products),
            "machines": list(inst.machines),
            "materials": list(inst.materials),
            "production_stage": inst.options.production_stage,
        }

    def report_text(self, headline: Mapping[str, float],
                    tables: Mapping[str, pd.DataFrame]) -> str:
        from stochplan.models.lotsizing.report import report_text

        return report_text(headline, tables)

    def panels(self, view: Any) -> list[Panel]:
        from stochplan.models.lotsizing.panels import panels

        return panels(view)

    def scenario_denouement(self, rank: int, scenario_name: str, scenario: Any) -> None:
        import pyomo.environ as pyo

        from stochplan.family import log

        log.debug("rank %d %s: profit %.2f", rank, scenario_name, pyo.value(scenario.Profit))


FAMILY = LotSizingFamily()

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
