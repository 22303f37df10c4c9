"""The multi-site family (seed 000): many production sites, each planned before demand is known.

A generator writes synthetic sites (products in groups A/B/C, three machines, a raw-material
inventory) into a database; each site decides how many units of each product to make within
its machine hours and raw material, then sells what demand allows, salvages the rest and loses
unmet demand. Sites share nothing, so ``stochplan solve`` solves them one by one, spread over
MPI ranks under ``mpiexec`` or over processes (:mod:`stochplan.solve.blocks`). One folder holds
the whole family:

- :mod:`.generator`: the seeded generator and its documented default parameters;
- :mod:`.data`: the instance record (:class:`MultisiteInstance`), its options
  (:class:`MultisiteOptions`), the loaders and the scenario sampler; :mod:`.db` the
  database side (any SQLAlchemy URL: input tables in, ``ResultData`` back);
- :mod:`.model`: the Pyomo builder, :func:`build_model`, with the formulation;
- :mod:`.kpis`, :mod:`.report`, :mod:`.panels`: KPIs, the text report, the dashboard panels;
- ``instances/``: the built-in instance ``multisite`` (5 sites generated with seed 0).

What is random
--------------
Demand of each product at each site, on the axes ``site`` x ``product``. ``named`` is the
single scenario at maximum demand (probability 1): the seed's deterministic model.
``sample:N`` draws Poisson demand around the generator's means, site n of scenario k from
``np.random.default_rng([seed, k, crc32(site)])`` (:class:`~.data.SiteSampler`), so a site's
scenarios do not depend on the other sites; ``poisson:N`` and ``qmc:N`` draw the whole grid
from the generic Poisson streams.

:data:`FAMILY` ties the parts to :class:`stochplan.family.Family`; the lines at the end make
this module follow mpi-sppy's module contract, so it runs unchanged under
``python -m mpisppy.generic_cylinders --module-name stochplan.models.multisite``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pydantic

from stochplan import scenarios as scen
from stochplan.family import Family, KPIs, Panel, SharedResource
from stochplan.models.multisite.data import (
    MultisiteInstance,
    MultisiteOptions,
    SiteSampler,
    load_multisite,
)
from stochplan.models.multisite.model import (
    FIRST_STAGE,
    SECOND_STAGE,
    build_model,
    first_stage_vars,
)
from stochplan.models.multisite.model import INDEX_NAMES as _INDEX_NAMES

__all__ = [
    "FAMILY",
    "FIRST_STAGE",
    "INDEX_NAMES",
    "SECOND_STAGE",
    "MultisiteFamily",
    "MultisiteInstance",
    "MultisiteOptions",
    "build_model",
]


class MultisiteFamily(Family):
    """Sites x products; first stage the production of each site, recourse the sales,
    leftovers and lost demand in each demand scenario (see :mod:`.model`)."""

    name = "multisite"
    description = ("multi-site production planning under Poisson demand, sites solved apart "
                   "(seed 000)")
    index_names = _INDEX_NAMES
    first_stage = FIRST_STAGE
    options_type = MultisiteOptions
    default_instance = "multisite"

    def load(self, folder: Path, meta: dict[str, Any], toml_path: Path) -> MultisiteInstance:
        return load_multisite(folder, meta, toml_path)

    def uncertainty(self, inst: MultisiteInstance) -> scen.Uncertainty:
        """Demand per site and product; named = maximum demand. A site that cannot meet its
        minimum demand makes the instance infeasible (:class:`InfeasibleError` naming it)."""
        inst.check_feasible()
        rates = np.where(inst.offered, inst.mean_demand, 0.0)
        return scen.Uncertainty(
            name="demand",
            axes={"site": inst.sites, "product": inst.products},
            rates=rates,
            named_data=np.where(inst.offered, inst.max_demand, 0.0)[None],
            named_probabilities=np.ones(1),
            named_labels=("max_demand",),
            sampler=SiteSampler(rates, inst.site_keys),
        )

    def build(self, inst: MultisiteInstance, data: np.ndarray, name: str) -> Any:
        return build_model(inst, data, name=name)

    def first_stage_vars(self, model: Any) -> list[Any]:
        """x, and the pool allocation A when there is a pool."""
        return first_stage_vars(model)

    # -- sites solved apart, databases ----------------------------------------------------

    def blocks(self, inst: MultisiteInstance) -> list[tuple[str, Any]] | None:
        """One block per site (the sites share nothing); None for a single site or when a
        shared raw-material pool couples the sites."""
        if inst.n_sites < 2 or inst.options.raw_material_pool > 0:
            return None
        return [(site, inst.subset([n])) for n, site in enumerate(inst.sites)]

    def shared_resource(self, inst: MultisiteInstance) -> SharedResource | None:
        """With a shared raw-material pool (and two sites or more): the sites as blocks that
        draw on it through their allocation ``A`` (more raw material never makes a site
        infeasible), solved site by site by :mod:`stochplan.solve.linked`."""
        pool = inst.options.raw_material_pool
        if inst.n_sites < 2 or pool <= 0:
            return None
        return SharedResource([(site, inst.subset([n])) for n, site in enumerate(inst.sites)],
                              link="A", capacity=float(pool), name="the raw-material pool")

    def scenario_arrays(self, inst: MultisiteInstance,
                        scenarios: scen.ScenarioSet) -> dict[str, Any] | None:
        """The scenario models as arrays without Pyomo (:func:`.model.scenario_arrays`), which
        :mod:`stochplan.solve.blocks` solves a site from (with a shared pool too)."""
        from stochplan.models.multisite.model import scenario_arrays

        return scenario_arrays(inst, scenarios)

    def load_database(self, url: str, options: Mapping[str, Any] | None = None) -> Any:
        from stochplan.models.multisite.db import read_instance

        base = self.options(options, "--set") if options else None
        return read_instance(url, base)

    def write_back(self, outcome: Any, run_id: int | None) -> None:
        """``ResultData`` in the database the instance was read from (one transaction)."""
        inst = outcome.instance
        if getattr(inst, "database", None) is None:
            return
        from stochplan.models.multisite.db import write_results
        from stochplan.models.multisite.kpis import result_table

        info = outcome.result.info
        status: Any = outcome.result.status
        if "block_labels" in info:  # one status per site when the sites were solved apart
            status = dict(zip(info["block_labels"], info["block_status"]))
        table = result_table(outcome.kpis.tables, status, run_id)
        write_results(inst.database, table)

    def generator_type(self) -> type[pydantic.BaseModel] | None:
        from stochplan.models.multisite.generator import GeneratorParams

        return GeneratorParams

    def generate(self, params: pydantic.BaseModel, seed: int, url: str) -> str:
        from stochplan.models.multisite.db import database_url, write_tables
        from stochplan.models.multisite.generator import (
            GeneratorParams,
            generate_tables,
            instance_record,
        )

        assert isinstance(params, GeneratorParams)
        tables = generate_tables(params, seed)
        name = f"multisite-{params.sites}-seed{seed}"
        write_tables(database_url(url), {**tables,
                                         "InstanceRecord": instance_record(name, params, seed)})
        return (f"wrote {params.sites} site(s), {len(tables['ProductData'])} products, "
                f"{len(tables['MachineData'])} machines (seed {seed}) as instance {name!r}")

    # -- KPIs and reports --------------------------------------------------------------------

    def kpis(self, inst: MultisiteInstance, scenarios: scen.ScenarioSet, result: Any) -> KPIs:
        from stochplan.models.multisite.kpis import kpi_report

        report = kpi_report(inst, result.plan, result.recourse, result.scenario_names,
                            scenarios.data, scenarios.probabilities)
        return KPIs(dict(report.headline), dict(report.tables))

    def instance_tables(self, inst: MultisiteInstance) -> dict[str, pd.DataFrame]:
        tables = inst.tables()
        return {"instance_products": tables["ProductData"],
                "instance_machines": tables["MachineData"]}

    def instance_summary(self, inst: MultisiteInstance) -> dict[str, Any]:
        return {"name": inst.name, "source": inst.source, "sites": inst.n_sites,
                "products": list(inst.products), "machines": list(inst.machines)}

    def report_text(self, headline: Mapping[str, float],
                    tables: Mapping[str, pd.DataFrame]) -> str:
        from stochplan.models.multisite.report import report_text

        return report_text(headline, tables)

    def panels(self, view: Any) -> list[Panel]:
        from stochplan.models.multisite.panels import panels

        return panels(view)

    def scenario_denouement(self, rank: int, scenario_name: str, scenario: Any) -> None:
        import pyomo.environ as pyo

        from stochplan.family import log

        log.debug("rank %d %s: profit %.2f", rank, scenario_name, pyo.value(scenario.Profit))


FAMILY = MultisiteFamily()

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
