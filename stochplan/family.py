"""Model families: one protocol, a registry, and mpi-sppy's module contract made from them.

A family is the one place that knows a production system: its instance records and their
loader, its options, what is random, the Pyomo builder, its KPIs and tables, its text report
and its dashboard panels. Everything above it (``solve`` with every method, ``value``,
``evaluate``, ``saa``, the results store, ``show``, ``runs``, ``dashboard``, ``compare``, the
benchmarks) takes a :class:`Family` and never names one.

Writing a family
----------------
Subclass :class:`Family` in a module (or the ``__init__`` of a small package) with the
instance data beside it, and end the module with the contract lines, so that the module also
runs under ``python -m mpisppy.generic_cylinders --module-name your.module``::

    FAMILY = Newsvendor()
    scenario_creator = FAMILY.scenario_creator
    scenario_names_creator = FAMILY.scenario_names_creator
    kw_creator = FAMILY.kw_creator
    inparser_adder = FAMILY.inparser_adder
    scenario_denouement = FAMILY.scenario_denouement
    average_scenario_creator = FAMILY.average_scenario_creator
    scenario_data = FAMILY.scenario_data
    data_scenario_creator = FAMILY.data_scenario_creator
    INDEX_NAMES = FAMILY.index_names

``stochplan.models.aggregate`` is the worked example; ``tests/families/newsvendor`` is a small
one. A built-in family is listed in :data:`stochplan.models.BUILTIN`; a separate package adds
one with an entry point in the group ``stochplan.families`` (``newsvendor =
"mypackage.newsvendor"``, naming the module that holds ``FAMILY``, or
``"mypackage.newsvendor:FAMILY"``).

What a family declares
----------------------
``name``, ``description``, ``index_names`` (the plan's index columns), ``first_stage`` (the
here-and-now variables, in the order handed to mpi-sppy), ``options_type`` (a frozen pydantic
model: the options a researcher varies, validated when a run configuration is loaded),
``default_instance`` and the folder of its built-in instances. Methods: :meth:`Family.load`
(an instance folder to a frozen, validated record; :mod:`stochplan.data` has the loaders'
helpers: :func:`~stochplan.data.instance_files` for the files an ``instance.toml`` names,
:class:`~stochplan.data.Table` for a CSV whose columns are checked as it is read, each refusal
one line naming the column, row, value and file), :meth:`Family.uncertainty` (what is random
and how it is drawn), :meth:`Family.build` (one scenario's Pyomo model; mpi-sppy annotations are
added here, not by the family), and optionally :meth:`Family.mean_instance`,
:meth:`Family.kpis`, :meth:`Family.instance_tables`, :meth:`Family.report_text` and
:meth:`Family.panels`.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import pydantic

from stochplan import scenarios as scen
from stochplan.errors import InputError
from stochplan.models import BUILTIN

if TYPE_CHECKING:
    import pyomo.environ as pyo

    from stochplan.solve.results import SolveResult

log = logging.getLogger(__name__)

#: Entry-point group through which other packages add families.
ENTRY_POINT_GROUP = "stochplan.families"

#: The names of mpi-sppy's module contract, the matrix backend's two extras, and the index
#: names of the plan that the generic solvers read from the module.
CONTRACT = (
    "scenario_creator",
    "scenario_names_creator",
    "kw_creator",
    "inparser_adder",
    "scenario_denouement",
    "average_scenario_creator",
    "scenario_data",
    "data_scenario_creator",
    "INDEX_NAMES",
)


@dataclass(frozen=True)
class KPIs:
    """A plan's KPIs: headline numbers and named tables (each a tidy DataFrame)."""

    headline: dict[str, float] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass(frozen=True)
class Panel:
    """One dashboard panel: a title, a Plotly figure and/or an HTML fragment, and a note.

    Attributes
    ----------
    key : str
        Anchor of the panel's section and ``data-chart`` of its chart (unique on a page).
    title : str
        Section heading.
    figure : plotly Figure or None
        The chart; None for a panel that is only ``html`` (a table).
    note : str
        Plain text under the title: what is drawn, in which units.
    html : str
        A fragment placed after the chart (a table); it is inserted as it is, so escape what
        it shows. Numbers a test or a script should read carry ``data-kpi``/``data-value``.
    """

    key: str
    title: str
    figure: Any = None
    note: str = ""
    html: str = ""


# ----------------------------------------------------------------------------------------------
# The protocol


@dataclass(frozen=True)
class SharedResource:
    """Blocks of an instance that share one resource: ``sum over blocks of link <= capacity``.

    Attributes
    ----------
    blocks : list of (label, record)
        Each block's label and instance record (as :meth:`Family.blocks`); each block's model
        has exactly one first-stage column of the variable ``link``, its draw on the resource,
        and a block feasible with some draw stays feasible with a larger one.
    link : str
        The first-stage variable holding a block's draw.
    capacity : float
        The resource shared.
    name : str
        The resource in messages ("the raw-material pool").
    """

    blocks: list[tuple[str, Any]]
    link: str
    capacity: float
    name: str


class Family:
    """Base class of a model family; see the module docstring for what a family declares."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: Index columns of the first-stage plan, e.g. ``("product", "week")``.
    index_names: ClassVar[tuple[str, ...]] = ()
    #: First-stage (nonanticipative) variables, in the order handed to mpi-sppy.
    first_stage: ClassVar[tuple[str, ...]] = ()
    #: Options a researcher varies: a frozen pydantic model with ``extra="forbid"``.
    options_type: ClassVar[type[pydantic.BaseModel]]
    #: Built-in instance used when none is named (mpi-sppy's ``--instance`` default).
    default_instance: ClassVar[str] = ""
    #: Folder of built-in instances, relative to the family's module file (None: none).
    instances_folder: ClassVar[str | None] = "instances"
    #: How to give this family's model relatively complete recourse, for the messages of
    #: ``value``, ``evaluate`` and ``saa`` when a plan is infeasible in some scenario (e.g.
    #: the option that prices unmet demand); empty: only the general advice.
    recourse_remedy: ClassVar[str] = ""
    #: Whether every matrix solve of the family's module (the extensive form, L-shaped, the
    #: PH guest, ``evaluate``: :func:`~stochplan.solve.matrix.compile_scenarios`) takes its
    #: scenario models from :meth:`scenario_arrays` instead of compiling the Pyomo models. Set
    #: it only when a test checks the arrays against the compiled models for every option.
    compile_from_arrays: ClassVar[bool] = False
    #: Constraint families that alone couple the recourse: with their rows dualised, the rest
    #: splits into blocks, each touched by a few binary first-stage variables (lot sizing: the
    #: machine-hour and material rows, shared by products whose chains are otherwise apart).
    #: The L-shaped method then gives its master Lagrangian cuts over each block's patterns
    #: (:mod:`stochplan.solve.patterns`). Empty (the default): none.
    coupling_rows: ClassVar[tuple[str, ...]] = ()

    # -- what the family must provide --------------------------------------------------------

    def load(self, folder: Path, meta: dict[str, Any], toml_path: Path) -> Any:
        """Read an instance from its parsed ``instance.toml`` and the files it names.

        The record is frozen and validated; the generic layers read its ``name``, ``source``
        (the file it came from) and ``options`` (an ``options_type`` instance), and replace the
        options with :func:`dataclasses.replace` (so a dataclass record is expected).
        """
        raise NotImplementedError

    def uncertainty(self, inst: Any) -> scen.Uncertainty:
        """What is random in a scenario of ``inst`` and how it is drawn."""
        raise NotImplementedError

    def build(self, inst: Any, data: np.ndarray, name: str) -> pyo.ConcreteModel:
        """One scenario's model for the random ``data`` (shape ``uncertainty(inst).shape``).

        It has the first-stage variables (:meth:`first_stage_vars`), an expression
        ``FirstStageCost`` (what the first stage pays, a cost whatever the objective's sense)
        and one active objective; mpi-sppy's annotations are added by the caller.
        """
        raise NotImplementedError

    # -- optional hooks ----------------------------------------------------------------------

    def mean_instance(self, inst: Any, mean: np.ndarray,
                      integer_policy: str) -> tuple[Any, np.ndarray]:
        """The instance and data of the mean-value (EV) problem; by default as they are.

        Integer families override it: a fractional mean has no integer recourse, so
        ``integer_policy`` says whether to round the mean (``"round"``) or relax (``"relax"``).
        """
        if integer_policy not in ("round", "relax"):
            raise InputError("integer_policy", integer_policy, "expected 'round' or 'relax'")
        return inst, mean

    def objective_sense(self, inst: Any) -> str:
        """``"min"`` (costs, the default) or ``"max"`` (profits): how reports word the
        objective."""
        return str(getattr(inst.options, "sense", "min"))

    def kpis(self, inst: Any, scenarios: scen.ScenarioSet, result: SolveResult) -> KPIs:
        """The plan's KPIs over the scenarios; by default none beyond the objective."""
        return KPIs()

    def oos_kpis(self, inst: Any, scenarios: scen.ScenarioSet, solves: Any) -> dict[str, float]:
        """Extra out-of-sample figures of a plan (``evaluate``), from its per-scenario solves
        (``solves.objective``, ``solves.recourse``); by default none."""
        return {}

    def instance_tables(self, inst: Any) -> dict[str, pd.DataFrame]:
        """Instance data a stored run needs to be redrawn (stored with the run)."""
        return {}

    def instance_summary(self, inst: Any) -> dict[str, Any]:
        """Scalars of the instance stored in the run's configuration (JSON-ready; ``name`` and
        ``source`` at least)."""
        return {"name": inst.name, "source": inst.source}

    def report_text(self, headline: Mapping[str, float], tables: Mapping[str, pd.DataFrame]) -> str:
        """The family's sections of the text report (``solve``, ``show``); empty by default,
        and the report then lists the headline KPIs."""
        return ""

    def panels(self, view: Any) -> list[Panel]:
        """The family's dashboard panels for a stored run (a ``RunView``); by default none."""
        return []

    def compare_panels(self, views: Any) -> list[Panel]:
        """Panels comparing stored runs that are all of this family (a sequence of
        ``RunView``), drawn on the ``compare`` page after the generic ones; by default none."""
        return []

    def kpi_label(self, name: str) -> str | None:
        """The family's own label of KPI ``name`` (a cost share named as the family's charts
        name that category, say); None (the default): the generic label."""
        return None

    def simulate(self, inst: Any, plans: Mapping[str, pd.DataFrame], days: scen.ScenarioSet,
                 recourse: Any) -> KPIs:
        """Day-by-day simulation of first-stage plans (``stochplan simulate``); by default the
        family has none.

        ``plans`` maps labels to plan tables (the stored plan, the mean-value plan); ``days``
        holds one scenario per simulated day, the same for every plan; ``recourse(plan,
        options=None)`` returns the model's second stage solved for every day with the first
        stage fixed to ``plan`` (a recourse table; ``options`` changes model options for
        those solves), so that the family never calls a solver itself. The
        family may add policies of its own. Returns headline numbers and tables (at least
        ``simulation``, one row per policy), which are stored with the run.
        """
        raise InputError("family", self.name, "has no day-by-day simulation")

    def blocks(self, inst: Any) -> list[tuple[str, Any]] | None:
        """Independent parts of ``inst``: (label, record of this family) pairs whose recourse
        problems share nothing, so that :mod:`stochplan.solve.blocks` solves each alone (over
        MPI ranks or processes). The whole plan is their plans together, its objective their
        sum; each part's scenario k of the ``named`` and ``sample:N`` specs must be its rows of
        the whole's scenario k (other specs solve the whole). None (the default): one
        problem."""
        return None

    def shared_resource(self, inst: Any) -> SharedResource | None:
        """Blocks of ``inst`` that share nothing but one resource (a pool of raw material the
        sites of a plan draw on, say), for :mod:`stochplan.solve.linked` to solve block by
        block; None (the default): none."""
        return None

    def scenario_arrays(self, inst: Any,
                        scenarios: scen.ScenarioSet) -> dict[str, Any] | None:
        """The scenario models of ``inst`` for ``scenarios`` as arrays, written by the family
        without Pyomo; None (the default): the Pyomo models are compiled instead.

        The arrays must be, entry by entry, what
        :func:`~stochplan.solve.matrix.compile_scenarios` makes of the family's Pyomo models
        (a family that has them tests that), in minimisation form: ``A`` (m x n sparse, the
        first-stage columns first, in mpi-sppy's order), ``row_sense`` (m; 0 equality, 1
        upper, -1 lower), ``row_family`` (m constraint names), ``rhs`` (S x m), ``col_lo``,
        ``col_hi``, ``cost`` (S x n), ``offset`` (S), ``variables`` and ``indices`` (n
        component names and index tuples), ``n_first``, ``integer`` (n booleans) and
        ``sense`` (+1 minimise, -1 maximise); optionally ``cuts``, a family's own optimality
        cuts for the L-shaped method's master MIP (:attr:`CompiledScenarios.cuts
        <stochplan.solve.matrix.CompiledScenarios.cuts>`). The solves of a block
        (:mod:`stochplan.solve.blocks`, and :func:`stochplan.analysis.value.value_by_blocks`)
        then skip Pyomo, and so does every matrix solve when :attr:`compile_from_arrays` is
        set (``scenarios`` then holds the ``names``, ``probabilities`` and ``data`` of the
        scenarios asked for, which need not be a whole scenario set).
        """
        return None

    def load_database(self, url: str, options: Mapping[str, Any] | None = None) -> Any:
        """The instance stored in a database (``solve --input-db URL``); by default the family
        reads none."""
        raise InputError("--input-db", url, f"the {self.name} family does not read instances "
                         "from a database")

    def write_back(self, outcome: Any, run_id: int | None) -> None:
        """Write a run's results back where the instance came from (the database it was read
        from), in one transaction of that database; by default nothing. ``solve`` calls it
        inside the results store's transaction, after the run's rows are written and before
        they are committed: if it raises, the run is not stored either (it goes to a recovery
        file)."""

    def generator_type(self) -> type[pydantic.BaseModel] | None:
        """The parameters of the family's instance generator (``stochplan generate``): a frozen
        pydantic model, each field a ``--flag``; None (the default): no generator."""
        return None

    def generate(self, params: pydantic.BaseModel, seed: int, url: str) -> str:
        """Write a generated instance (``params``, seed) into the database ``url``, in one
        transaction; returns a one-line summary."""
        raise InputError("family", self.name, "has no instance generator")

    # -- generic parts built on the above ----------------------------------------------------

    @property
    def module(self) -> ModuleType:
        """The module holding this family: mpi-sppy's module for the generic solvers."""
        module = importlib.import_module(type(self).__module__)
        missing = [n for n in CONTRACT if not hasattr(module, n)]
        if missing:
            raise InputError("family", self.name, f"its module {module.__name__} does not export "
                             f"{', '.join(missing)} (end it with the contract lines, see "
                             "stochplan.family)")
        return module

    def options(self, values: Mapping[str, Any] | None = None, source: str | Path | None = None,
                section: str = "model", base: pydantic.BaseModel | None = None) -> Any:
        """Validated options: ``values`` over ``base`` (default the option defaults).

        Raises :class:`InputError` naming ``section.key``, the value and the file.
        """
        return validate_options(self.options_type, values, section, source, base)

    def with_options(self, inst: Any, values: Mapping[str, Any] | None,
                     source: str | Path | None = None) -> Any:
        """``inst`` with some options changed (validated)."""
        if not values:
            return inst
        return dataclasses.replace(inst, options=self.options(values, source, base=inst.options))

    def resolve(self, instance: Any, options: Mapping[str, Any] | None = None) -> Any:
        """The instance record for a built-in name, a folder or a record, options applied."""
        inst = _cached_instance(str(instance)) if isinstance(instance, (str, Path)) else instance
        family = getattr(inst, "family", self.name)
        if family != self.name:
            raise InputError("family", family, f"this is the {self.name} family's module")
        return self.with_options(inst, options)

    def scenario_set(self, instance: Any, spec: str = "named", seed: int | None = 0,
                     multipliers: tuple[float, ...] = (1.0,),
                     weights: tuple[float, ...] | None = None) -> scen.ScenarioSet:
        """All scenarios of a run, drawn as the spec says (see :mod:`stochplan.scenarios`)."""
        return scen.draw_set(self.uncertainty(self.resolve(instance)), spec, seed,
                             multipliers, weights)

    def creator_kwargs(self, instance: Any, spec: str = "named", seed: int | None = 0,
                       multipliers: tuple[float, ...] = (1.0,),
                       weights: tuple[float, ...] | None = None) -> dict[str, Any]:
        """The keyword arguments of :meth:`scenario_creator` for a scenario set."""
        return {"instance": instance, "scenarios": spec, "seed": seed,
                "multipliers": tuple(multipliers), "weights": weights}

    def plan_arrays(self, plan: pd.DataFrame, inst: Any) -> dict[str, np.ndarray]:
        """First-stage plan table as arrays by variable, shaped by :attr:`index_names`."""
        axes = self._axes(inst)
        out = {}
        for var in self.first_stage:
            rows = plan[plan["variable"] == var]
            out[var] = _grid(rows, axes)
        return out

    def recourse_arrays(self, recourse: pd.DataFrame, inst: Any,
                        scenario_names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Recourse table (scenario, variable, index columns, value) as (S, ...) arrays."""
        axes = {"scenario": tuple(scenario_names), **self._axes(inst)}
        return {str(var): _grid(rows, axes)
                for var, rows in recourse.groupby("variable", sort=False)}

    def _axes(self, inst: Any) -> dict[str, tuple[Any, ...]]:
        """Labels of each plan index; by default the uncertainty's axes of the same names."""
        axes = self.uncertainty(inst).axes
        return {name: tuple(axes[name]) for name in self.index_names}

    # -- mpi-sppy's module contract ----------------------------------------------------------

    def source(self, **kwargs: Any) -> ScenarioSource:
        return ScenarioSource.of(self, **kwargs)

    def scenario_data(self, scenario_name: str, **kwargs: Any) -> tuple[np.ndarray, float]:
        """Scenario ``scen<k>``'s random data (flattened) and its probability."""
        src = self.source(**kwargs)
        k = scen.scenario_index(scenario_name)
        return src.data(k).ravel(), src.probability(k)

    def data_scenario_creator(self, scenario_name: str, data: np.ndarray,
                              **kwargs: Any) -> pyo.ConcreteModel:
        """The scenario model for given (flattened) data, mpi-sppy annotated.

        :meth:`scenario_creator` is this applied to :meth:`scenario_data`; the matrix backend
        calls it with probe data to map how the model depends on the data.
        """
        src = self.source(**kwargs)
        inst = src.record
        shape = self.uncertainty(inst).shape
        model = self.build(inst, np.asarray(data, dtype=float).reshape(shape), scenario_name)
        return self.annotate(model, src.probability(scen.scenario_index(scenario_name)))

    def scenario_creator(self, scenario_name: str, **kwargs: Any) -> pyo.ConcreteModel:
        """Build scenario ``scen<k>`` with its probability and root node attached (mpi-sppy).

        Keyword arguments are the fields of :class:`ScenarioSource`.
        """
        data, _ = self.scenario_data(scenario_name, **kwargs)
        return self.data_scenario_creator(scenario_name, data, **kwargs)

    def average_scenario_creator(self, scenario_name: str, integer_policy: str = "round",
                                 **kwargs: Any) -> pyo.ConcreteModel:
        """The mean-value (EV) scenario: the data replaced by its expectation, probability 1.

        The model's ``integer_policy_applies`` attribute says whether ``integer_policy``
        changed anything (the other policy gives another instance or data), so that a report
        names the policy only where it mattered."""
        src = self.source(**kwargs)
        data = src.mean_data()
        inst, mean = self.mean_instance(src.record, data, integer_policy)
        other = "relax" if integer_policy == "round" else "round"
        inst2, mean2 = self.mean_instance(src.record, data, other)
        model = self.annotate(self.build(inst, mean, scenario_name), 1.0)
        model.integer_policy_applies = not (
            _same(inst2, inst) and np.array_equal(np.asarray(mean2), np.asarray(mean)))
        return model

    def scenario_names_creator(self, num_scens: int, start: int | None = None) -> list[str]:
        """``scen<start>`` ... ``scen<start + num_scens - 1>``."""
        start = start or 0
        return [f"scen{k}" for k in range(start, start + num_scens)]

    def inparser_adder(self, cfg: Any) -> None:
        """Add this family's options to an mpi-sppy ``Config`` (one per option field)."""
        cfg.num_scens_required()
        cfg.add_to_config("instance", description="built-in instance name or instance folder",
                          domain=str, default=self.default_instance)
        # the same default as `stochplan solve`: the instance's own (named) scenarios
        cfg.add_to_config("scenario_kind", description="named (the default: the instance's "
                          "own scenarios), sample, poisson or qmc", domain=str,
                          default="named")
        cfg.add_to_config("scenario_seed", description="base seed of the scenario draws",
                          domain=int, default=0)
        if "integer" in self.options_type.model_fields:
            cfg.add_to_config("relax_integrality", description="solve the LP relaxation",
                              domain=bool, default=False)
        for key, info in self.options_type.model_fields.items():
            domain = _domain(info.annotation)
            if domain is None or key in cfg:
                continue
            cfg.add_to_config(key, description=info.description or key, domain=domain,
                              default=None)

    def kw_creator(self, cfg: Any) -> dict[str, Any]:
        """Keyword arguments of :meth:`scenario_creator` from an mpi-sppy ``Config``."""
        kind = cfg.get("scenario_kind", "named")
        num_scens = cfg.get("num_scens", None)
        named = kind in ("named", *scen.ALIASES)
        spec = "named" if named else f"{kind}:{num_scens}"
        options: dict[str, Any] = {}
        if cfg.get("relax_integrality", False):
            options["integer"] = False
        for key in self.options_type.model_fields:
            if key in cfg and cfg.get(key, None) is not None and key not in options:
                options[key] = cfg.get(key)
        instance = cfg.get("instance", self.default_instance)
        if named and num_scens is not None:
            count = len(self.scenario_set(self.resolve(instance, options or None), "named").names)
            if num_scens != count:
                raise InputError("--num-scens", num_scens,
                                 f"the instance has {count} named scenario(s): give "
                                 f"--num-scens {count}, or --scenario-kind sample, poisson or "
                                 "qmc for drawn scenarios")
        return {
            "instance": instance,
            "scenarios": spec,
            "seed": cfg.get("scenario_seed", 0),
            "options": options or None,
            "num_scens": None if named else num_scens,
        }

    def scenario_denouement(self, rank: int, scenario_name: str, scenario: Any) -> None:
        """Called by mpi-sppy after a decomposed solve; logs the scenario's second-stage cost
        (when the model has a ``SecondStageCost`` expression)."""
        import pyomo.environ as pyo

        cost = getattr(scenario, "SecondStageCost", None)
        if cost is None:
            log.debug("rank %d %s: scenario solved", rank, scenario_name)
        else:
            log.debug("rank %d %s: second-stage cost %.2f", rank, scenario_name, pyo.value(cost))

    def first_stage_vars(self, model: pyo.ConcreteModel) -> list[Any]:
        """The nonanticipative variables of a scenario model, in a fixed order: by default the
        components named in :attr:`first_stage`. A family whose first stage is part of a
        component (the first months of a horizon, say) returns those variables instead."""
        return [getattr(model, v) for v in self.first_stage]

    def annotate(self, model: pyo.ConcreteModel, probability: float) -> pyo.ConcreteModel:
        """Attach mpi-sppy's root node (:meth:`first_stage_vars`) and the probability.

        ``FirstStageCost`` is a cost (what the first stage pays); mpi-sppy wants it in the
        objective's sense, so it is negated when the model maximises a profit.
        """
        import pyomo.environ as pyo

        from stochplan import _mpisppy

        objective = next(model.component_data_objects(pyo.Objective, active=True))
        cost = model.FirstStageCost
        if objective.sense == pyo.maximize:
            cost = -cost
        return _mpisppy.attach_root(model, cost, self.first_stage_vars(model), probability)


@dataclass(frozen=True)
class ScenarioSource:
    """Where a run's scenarios come from: the keyword arguments of every creator of a family
    (mpi-sppy passes them as ``scenario_creator_kwargs``).

    Attributes
    ----------
    family : Family
    instance : str or record
        Built-in name, instance folder, or a record (for data edited in Python).
    scenarios : str
        A scenario spec (``named``, ``sample:N``, ``poisson:N``, ``qmc:N``, ``file:PATH``).
    seed : int or None
        Base seed of the draws: scenario k depends only on (scenarios, seed, k).
    options : dict, optional
        Model-option overrides (the family's ``options_type`` fields).
    multipliers, weights : tuple of float
        Scenario-level Poisson rate multipliers and their weights.
    num_scens : int, optional
        Overrides N of a sampled spec (mpi-sppy passes the number of scenarios that way).
    """

    family: Family
    instance: Any = None
    scenarios: str = "named"
    seed: int | None = 0
    options: dict[str, Any] | None = None
    multipliers: tuple[float, ...] = (1.0,)
    weights: tuple[float, ...] | None = None
    num_scens: int | None = None

    @classmethod
    def of(cls, family: Family, **kwargs: Any) -> ScenarioSource:
        known = {f.name for f in dataclasses.fields(cls)} - {"family"}
        for key in kwargs:
            if key not in known:
                raise InputError(key, kwargs[key],
                                 f"unknown keyword (known: {', '.join(sorted(known))})")
        kwargs.setdefault("instance", family.default_instance)
        return cls(family, **kwargs)

    @property
    def record(self) -> Any:
        return self.family.resolve(self.instance, self.options)

    @property
    def uncertainty(self) -> scen.Uncertainty:
        return self.family.uncertainty(self.record)

    @property
    def spec(self) -> scen.ScenarioSpec:
        return scen.parse_spec(self.scenarios)

    def probability(self, k: int) -> float:
        return scen.probability(self.uncertainty, self.spec, k, self.num_scens)

    def data(self, k: int) -> np.ndarray:
        """Scenario k's random data, shape ``uncertainty.shape``."""
        return scen.draw_one(self.uncertainty, self.spec, self.seed, k, self.multipliers,
                             self.weights)

    def mean_data(self) -> np.ndarray:
        """The probability-weighted data of the whole scenario set."""
        spec = self.spec
        if spec.sampled and self.num_scens:
            spec = scen.ScenarioSpec(spec.kind, int(self.num_scens))
        return scen.draw_set(self.uncertainty, spec, self.seed, self.multipliers,
                             self.weights).expected


# ----------------------------------------------------------------------------------------------
# The registry

_REGISTERED: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add a family object to the registry (by its ``name``); returns it."""
    if not isinstance(family, Family):
        raise InputError("family", family, "must be a stochplan.family.Family instance")
    _REGISTERED[family.name] = family
    return family


def unregister(name: str) -> None:
    """Forget a family added with :func:`register` (or loaded once by name); built-in and
    entry-point families are found again on the next :func:`get_family`."""
    _REGISTERED.pop(name, None)


def family_names() -> tuple[str, ...]:
    """Every family known: built-in, registered and from entry points."""
    names = dict.fromkeys([*BUILTIN, *_REGISTERED, *_entry_points()])
    return tuple(names)


def get_family(name: str) -> Family:
    """The family called ``name``; an unknown name is an :class:`InputError` listing the known."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    target = BUILTIN.get(name) or _entry_points().get(name)
    if target is None:
        raise InputError("family", name, f"unknown model family (known: "
                         f"{', '.join(family_names())})")
    family = _load_target(name, target)
    _REGISTERED[name] = family
    return family


def stored_family(name: str) -> Family | None:
    """The family of a stored run, or None when it is not a family (``value --module`` runs)
    or no longer installed, so a stored run can always be shown."""
    try:
        return get_family(name)
    except InputError:
        return None


def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _load_target(name: str, target: str) -> Family:
    module_name, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise InputError("family", name, f"its module {module_name} cannot be imported ({err})"
                         ) from None
    obj = getattr(obj, attr or "FAMILY", None)
    if not isinstance(obj, Family):
        raise InputError("family", name, f"{target} holds no Family object (FAMILY)")
    if obj.name != name:
        raise InputError("family", name, f"{target} is the family {obj.name!r}")
    return obj


@functools.lru_cache(maxsize=16)
def _cached_instance(name_or_path: str) -> Any:
    from stochplan.data import load_instance

    return load_instance(name_or_path)


# ----------------------------------------------------------------------------------------------
# Helpers


def validate_options(cls: type[pydantic.BaseModel], values: Mapping[str, Any] | None,
                     section: str = "model", source: str | Path | None = None,
                     base: pydantic.BaseModel | None = None) -> Any:
    """``cls`` built from ``values`` over ``base`` (default: the defaults), validated.

    Raises
    ------
    InputError
        One line naming ``section.key``, the value, the problem and the file.
    """
    merged = dict(base.model_dump()) if base is not None else {}
    merged.update(values or {})
    try:
        return cls.model_validate(merged)
    except pydantic.ValidationError as err:
        raise options_error(err, merged, section, source, tuple(cls.model_fields)) from None


def options_error(err: pydantic.ValidationError, values: Mapping[str, Any], section: str,
                  source: str | Path | None, known: tuple[str, ...] = ()) -> InputError:
    """The first error of a pydantic validation as one :class:`InputError` line, worded like
    the rest of stochplan's input errors."""
    first = err.errors()[0]
    loc = [str(x) for x in first.get("loc", ())]
    key = loc[0] if loc else ""
    value = values.get(key, first.get("input")) if key else first.get("input")
    kind, ctx = first.get("type", ""), first.get("ctx") or {}
    problems = {
        "extra_forbidden": "unknown option" + (f" (known: {', '.join(sorted(known))})"
                                               if known else ""),
        "greater_than_equal": f"must be >= {ctx.get('ge')}",
        "greater_than": f"must be > {ctx.get('gt')}",
        "less_than_equal": f"must be <= {ctx.get('le')}",
        "less_than": f"must be < {ctx.get('lt')}",
        "finite_number": "must be finite",
        "bool_type": "must be true or false",
        "float_type": "must be a number",
        "int_type": "must be an integer",
        "string_type": "must be a string",
    }
    problem = problems.get(kind, first.get("msg", "invalid"))
    name = ".".join([section, *loc]) if section else ".".join(loc)
    return InputError(name, value, problem, source)


def _domain(annotation: Any) -> type | None:
    """The plain type of a simple option annotation (``float | None`` -> float)."""
    import types
    import typing

    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = args[0] if len(args) == 1 else None
    return annotation if annotation in (bool, int, float, str) else None


def _grid(rows: pd.DataFrame, axes: Mapping[str, tuple[Any, ...]]) -> np.ndarray:
    """Rows (index columns named like ``axes``, ``value``) as a dense array; absent cells 0."""
    shape = tuple(len(v) for v in axes.values())
    arr = np.zeros(shape)
    if rows.empty:
        return arr
    pos = []
    for name, labels in axes.items():
        lookup = {label: i for i, label in enumerate(labels)}
        column = rows[name].map(lookup)
        if column.isna().any():
            lookup_str = {str(label): i for i, label in enumerate(labels)}
            column = rows[name].astype(str).map(lookup_str)
        pos.append(column.to_numpy(dtype=int))
    arr[tuple(pos)] = rows["value"].to_numpy(float)
    return arr


def _same(a: Any, b: Any) -> bool:
    """Whether two instance records are equal (records holding arrays that compare element
    by element count as different unless they are the same object)."""
    if a is b:
        return True
    try:
        return bool(a == b)
    except (ValueError, TypeError):
        return False
