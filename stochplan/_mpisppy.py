"""The one place stochplan touches mpi-sppy: its imports and the state it keeps on models.

mpi-sppy marks a scenario model with private attributes (``_mpisppy_node_list`` holds the
first-stage, or nonanticipative, variables, ``_mpisppy_probability`` the scenario's
probability, and ``_mpisppy_data`` / ``_mpisppy_model`` what its algorithms add). Everything
else in stochplan reads and writes them through the small typed functions here, so a change
in mpi-sppy is absorbed in this module (``tests/test_layering.py`` checks that no other
module imports mpi-sppy or names those attributes).

``import mpisppy`` prints a line to stdout; the library must print nothing (machine-readable
output such as ``--json`` depends on it), so the package is first imported with stdout
captured and the line goes to the debug log. Importing this module imports nothing from
mpi-sppy; each function imports what it needs when first called.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyomo.core.base.block import BlockData
    from pyomo.core.base.var import VarData
    from pyomo.environ import ConcreteModel

log = logging.getLogger(__name__)

#: Name prefixes of the components mpi-sppy adds to models: the extensive form's
#: nonanticipativity rows (``_C_EF_*``) and its own blocks and attributes (``_mpisppy_*``).
_ADDED_PREFIXES = ("_C_EF_", "_mpisppy")


def _import(module_name: str) -> ModuleType:
    """Import ``module_name``, an mpi-sppy module, without printing.

    Only the package's own first import prints (``Initializing mpi-sppy``): that happens with
    stdout captured, and the line goes to the debug log. The module itself is imported with
    stdout as it is, because mpi-sppy's loggers keep the stream they see at import (under
    :func:`stochplan.solve.ph.solve_ph`, the rank's log file).
    """
    if "mpisppy" not in sys.modules:
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            importlib.import_module("mpisppy")
        if buffer.getvalue().strip():
            log.debug("mpi-sppy: %s", buffer.getvalue().strip())
    return importlib.import_module(module_name)


# ----------------------------------------------------------------------------------------------
# Scenario models: the root node and the probability


def _sputils() -> ModuleType:
    """``mpisppy.utils.sputils``, imported without printing."""
    return _import("mpisppy.utils.sputils")


def attach_root(
    model: ConcreteModel,
    first_stage_cost: Any,
    variables: Sequence[Any],
    probability: float,
) -> ConcreteModel:
    """Mark ``model`` as a two-stage scenario for mpi-sppy and return it.

    Parameters
    ----------
    model : ConcreteModel
        One scenario's model.
    first_stage_cost : Pyomo expression
        The first-stage part of the objective, in the objective's own sense (negate it for a
        maximisation written as profit).
    variables : sequence of Var
        The first-stage (nonanticipative) variables: components or component data.
    probability : float
        The scenario's probability, in [0, 1].
    """
    _sputils().attach_root_node(model, first_stage_cost, list(variables))
    model._mpisppy_probability = float(probability)
    return model


def nonant_vars(model: BlockData) -> list[VarData]:
    """The first-stage variables of a scenario model (its root node's), in mpi-sppy's order."""
    return list(model._mpisppy_node_list[0].nonant_vardata_list)


def root_cost(model: BlockData) -> Any:
    """The first-stage cost expression of a scenario model's root node (objective's sense)."""
    return model._mpisppy_node_list[0].cost_expression


def probability(model: BlockData) -> float:
    """The probability mpi-sppy reads from a scenario model (a sum over an EF's scenarios)."""
    return float(model._mpisppy_probability)


def is_added_component(name: str) -> bool:
    """Whether a component's local name is one mpi-sppy adds (EF nonanticipativity rows,
    its ``_mpisppy_*`` blocks), not one of the model's own."""
    return name.startswith(_ADDED_PREFIXES)


def added_vars(model: BlockData) -> list[VarData]:
    """The variables mpi-sppy's algorithms added to a scenario model (e.g. the squared
    first-stage variables of a linearised proximal term); empty if none."""
    import pyomo.environ as pyo

    block = getattr(model, "_mpisppy_model", None)
    if block is None:
        return []
    return list(block.component_data_objects(pyo.Var))


# ----------------------------------------------------------------------------------------------
# Extensive forms and bundles


def create_ef(
    scenario_names: Sequence[str],
    scenario_creator: Callable[..., Any],
    creator_kwargs: dict[str, Any] | None = None,
    name: str | None = None,
    nonant_for_fixed_vars: bool = True,
) -> ConcreteModel:
    """mpi-sppy's extensive form of ``scenario_names`` (the scenario's own model when there is
    only one), without its warnings on stdout."""
    return _sputils().create_EF(
        [str(n) for n in scenario_names], scenario_creator,
        scenario_creator_kwargs=creator_kwargs or {}, EF_name=name, suppress_warnings=True,
        nonant_for_fixed_vars=nonant_for_fixed_vars,
    )


def ef_scenarios(model: BlockData) -> list[tuple[str, BlockData]]:
    """(scenario name, block) of every scenario in an extensive form made by
    :func:`create_ef`; ``[(model.name, model)]`` for a plain scenario model."""
    names = getattr(model, "_ef_scenario_names", None)
    if names is None or not hasattr(model, str(names[0])):
        return [(model.name, model)]
    return [(str(n), model.component(n)) for n in names]


def create_bundle(
    bundle_name: str,
    scenario_names: Sequence[str],
    scenario_creator: Callable[..., Any],
    creator_kwargs: dict[str, Any] | None = None,
) -> ConcreteModel:
    """A bundle: the extensive form of ``scenario_names`` with its own first stage as the
    nonanticipative variables, as mpi-sppy's ``ProperBundler`` builds it (for any names)."""
    bundle = create_ef(scenario_names, scenario_creator, creator_kwargs, name=bundle_name,
                       nonant_for_fixed_vars=False)
    nonants = [v for idx, v in bundle.ref_vars.items()
               if idx[0] == "ROOT" and idx not in bundle.ref_surrogate_vars]
    suppl = [v for idx, v in bundle.ref_suppl_vars.items()
             if idx[0] == "ROOT" and idx not in bundle.ref_surrogate_vars]
    surrogates = [v for idx, v in bundle.ref_surrogate_vars.items() if idx[0] == "ROOT"]
    _sputils().attach_root_node(bundle, 0, nonants, suppl, surrogates)
    return bundle


# ----------------------------------------------------------------------------------------------
# What PH's subproblems carry while mpi-sppy runs


def nonant_values(subproblem: BlockData) -> list[float]:
    """Current values of a PH subproblem's nonanticipative variables, in mpi-sppy's order."""
    return [float(v.value) for v in subproblem._mpisppy_data.nonant_indices.values()]


def xbar_values(subproblem: BlockData) -> list[float]:
    """PH's current xbar (the probability-weighted first stage), as a subproblem holds it."""
    xbars = subproblem._mpisppy_model.xbars
    return [float(xbars[i]._value) for i in subproblem._mpisppy_data.nonant_indices]


def prox_approx_managers(subproblem: BlockData) -> list[Any]:
    """The managers of the linearised proximal term of a PH subproblem (one per
    nonanticipative variable: ``xvar``, ``xvarsqrd``, ``add_cuts``, ``check_tol_add_cut``)."""
    return list(subproblem._mpisppy_data.xsqvar_prox_approx.values())


# ----------------------------------------------------------------------------------------------
# Configuration and the PH machinery


def config_class() -> type:
    """mpi-sppy's ``Config`` class (``mpisppy.utils.config.Config``), which model modules'
    ``inparser_adder`` and ``kw_creator`` read and write."""
    return _import("mpisppy.utils.config").Config  # type: ignore[no-any-return]


@dataclass(frozen=True)
class PHMachinery:
    """The mpi-sppy modules and classes a progressive-hedging run is built from."""

    config: ModuleType
    cfg_vanilla: ModuleType
    parsing: ModuleType
    WheelSpinner: type
    PHHub: type
    LagrangianOuterBound: type
    XhatShuffleInnerBound: type
    PH: type
    PHBase: type
    Xhat_Eval: type
    Converger: type
    PrimalDualRho: type


_PH_MACHINERY: PHMachinery | None = None


def ph_machinery(log_dir: str) -> PHMachinery:
    """Import (once) what a PH run needs, with ``log_dir`` as the working directory.

    Some mpi-sppy modules open log files (``hub.log``, ``xhatclp.log``, ``xhateval.log``) in
    the working directory when they are first imported; this puts them in ``log_dir``.
    """
    global _PH_MACHINERY
    if _PH_MACHINERY is not None:
        return _PH_MACHINERY
    cwd = os.getcwd()
    os.chdir(log_dir)
    try:
        m = {name: _import(f"mpisppy.{name}") for name in (  # cylinders.hub opens hub.log
            "cylinders.hub", "cylinders.lagrangian_bounder", "cylinders.xhatshufflelooper_bounder",
            "generic.parsing", "opt.ph", "phbase", "spin_the_wheel", "utils.cfg_vanilla",
            "utils.config", "utils.xhat_eval", "convergers.converger",
            "extensions.primal_dual_rho")}
    finally:
        os.chdir(cwd)
    _PH_MACHINERY = PHMachinery(
        config=m["utils.config"],
        cfg_vanilla=m["utils.cfg_vanilla"],
        parsing=m["generic.parsing"],
        WheelSpinner=m["spin_the_wheel"].WheelSpinner,
        PHHub=m["cylinders.hub"].PHHub,
        LagrangianOuterBound=m["cylinders.lagrangian_bounder"].LagrangianOuterBound,
        XhatShuffleInnerBound=m["cylinders.xhatshufflelooper_bounder"].XhatShuffleInnerBound,
        PH=m["opt.ph"].PH,
        PHBase=m["phbase"].PHBase,
        Xhat_Eval=m["utils.xhat_eval"].Xhat_Eval,
        Converger=m["convergers.converger"].Converger,
        PrimalDualRho=m["extensions.primal_dual_rho"].PrimalDualRho,
    )
    return _PH_MACHINERY

