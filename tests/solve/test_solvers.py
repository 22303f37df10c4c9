"""Every solver name the registry lists works (:mod:`stochplan.solve.solvers`).

The tests are parametrised over :data:`~stochplan.solve.solvers.SOLVERS`, so a name added to
the registry is tested with real solves without touching this file. The regression values are
the textbook farmer's (Birge & Louveaux, ch. 1) and a newsvendor small enough to solve by hand.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import pyomo.environ as pyo
import pytest

from stochplan._mpisppy import attach_root
from stochplan.analysis.value import value_report
from stochplan.config import load_config
from stochplan.errors import InfeasibleError, InputError
from stochplan.models import farmer
from stochplan.solve.ef import solve_ef
from stochplan.solve.solvers import MATRIX_SOLVER, SOLVERS, SolverOptions, make_solver

NAMES = sorted(SOLVERS)


# ----------------------------------------------------------------------------------------------
# A newsvendor with fixed recourse (so the matrix backend applies) in the module contract


def _newsvendor() -> types.ModuleType:
    """Order x at 1 $/unit before demand (10, 20 or 30, p = 1/3 each) is known, sell
    s <= min(x, demand) at 4 $/unit. Each unit between 20 and 30 costs 1 and earns 4 with
    probability 1/3, so x = 30 and the expected cost is 30 - 4 * (10 + 20 + 30) / 3 = -50.
    ``min_sales`` > 10 makes the low-demand scenario infeasible."""
    demand = {"scen0": 10.0, "scen1": 20.0, "scen2": 30.0}
    module = types.ModuleType("newsvendor")

    def scenario_data(name: str, min_sales: float = 0.0) -> tuple[np.ndarray, float]:
        return np.array([demand[name]]), 1.0 / 3.0

    def data_scenario_creator(name: str, data: np.ndarray, min_sales: float = 0.0) -> Any:
        m = pyo.ConcreteModel(name=name)
        m.x = pyo.Var(bounds=(0.0, 100.0))
        m.s = pyo.Var(bounds=(0.0, None))
        # sales: at most what was ordered, at most the demand, at least min_sales
        m.sold_ordered = pyo.Constraint(expr=m.s <= m.x)
        m.sold_demanded = pyo.Constraint(expr=m.s <= float(data[0]))
        m.min_sales = pyo.Constraint(expr=m.s >= min_sales)
        m.FirstStageCost = pyo.Expression(expr=1.0 * m.x)
        m.cost = pyo.Objective(expr=m.FirstStageCost - 4.0 * m.s)
        return attach_root(m, m.FirstStageCost, [m.x], 1.0 / 3.0)

    def scenario_creator(name: str, min_sales: float = 0.0) -> Any:
        return data_scenario_creator(name, scenario_data(name)[0], min_sales)

    module.scenario_data = scenario_data  # type: ignore[attr-defined]
    module.data_scenario_creator = data_scenario_creator  # type: ignore[attr-defined]
    module.scenario_creator = scenario_creator  # type: ignore[attr-defined]
    return module


NEWSVENDOR = _newsvendor()
NEWSVENDOR_SCENARIOS = ["scen0", "scen1", "scen2"]


# ----------------------------------------------------------------------------------------------
# Solver choice


@pytest.mark.parametrize("name", NAMES)
def test_every_name_is_available_here(name):
    assert make_solver(name) is not None


@pytest.mark.parametrize("name", NAMES)
def test_every_name_is_accepted_in_a_run_config(tmp_path, name):
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[solver]\nname = "{name}"\n')
    assert load_config(cfg).solver == SolverOptions(name=name)


def test_an_unknown_name_is_an_input_error_listing_the_known_ones():
    for make in (lambda: SolverOptions(name="cplex"), lambda: make_solver("cplex")):
        with pytest.raises(InputError, match="solver.name") as err:
            make()
        assert all(name in str(err.value) for name in SOLVERS)


# ----------------------------------------------------------------------------------------------
# Real solves with every name


@pytest.mark.solve
@pytest.mark.parametrize("name", NAMES)
def test_every_name_solves_the_farmer_extensive_form_to_the_cent(name):
    """RP -108,390 with the plan 170 wheat, 80 corn, 250 beets; the Pyomo interface named
    is the one that ran."""
    result = solve_ef(farmer, farmer.scenario_names_creator(3), {},
                      SolverOptions(name=name))
    assert result.status == "optimal"
    assert round(result.objective, 2) == -108_390.00
    assert result.solver == name and result.info["backend"] == "pyomo"
    plan = result.plan.set_index("crop")["value"].to_dict()
    assert plan == pytest.approx({"WHEAT": 170.0, "CORN": 80.0, "SUGAR_BEETS": 250.0})


@pytest.mark.solve
@pytest.mark.parametrize("name", NAMES)
def test_every_name_takes_every_solver_option(name):
    """Time limit, gap, threads and the HiGHS algorithm reach each interface (no TypeError),
    and maximising gives the same numbers negated."""
    options = SolverOptions(name=name, time_limit=60.0, mip_rel_gap=1e-6, threads=1,
                            algorithm="ipm", ipm_gap=1e-9)
    result = solve_ef(farmer, farmer.scenario_names_creator(3), {"sense": "max"}, options)
    assert round(result.objective, 2) == 108_390.00


@pytest.mark.solve
@pytest.mark.parametrize("name", NAMES)
def test_every_name_gives_the_farmers_published_values(name):
    """RP -108,390, EV -118,600, EEV -107,240, WS -115,405.56 (EV, EEV and WS are solved
    scenario by scenario with the named interface)."""
    r = value_report(farmer, farmer.scenario_names_creator(3), {}, SolverOptions(name=name))
    assert [round(v, 2) for v in (r.rp, r.ev, r.eev, r.ws)] == [
        -108_390.00, -118_600.00, -107_240.00, -115_405.56]


@pytest.mark.solve
@pytest.mark.parametrize("name", NAMES)
def test_matrix_backend_says_highspy_ran(name):
    """The same newsvendor optimum (-50, order 30) through Pyomo and through the matrix
    backend; the matrix result names highspy and keeps the name asked for."""
    pyomo_result = solve_ef(NEWSVENDOR, NEWSVENDOR_SCENARIOS, {},
                            SolverOptions(name=name, backend="pyomo"))
    matrix_result = solve_ef(NEWSVENDOR, NEWSVENDOR_SCENARIOS, {},
                             SolverOptions(name=name, backend="matrix"))
    for result in (pyomo_result, matrix_result):
        assert result.objective == pytest.approx(-50.0, abs=1e-9)
        assert result.plan["value"].tolist() == pytest.approx([30.0])
    assert pyomo_result.solver == name and pyomo_result.info["backend"] == "pyomo"
    assert matrix_result.solver == MATRIX_SOLVER
    assert matrix_result.info["backend"].startswith("matrix")
    assert matrix_result.info["requested_solver"] == name


@pytest.mark.solve
@pytest.mark.parametrize("name", NAMES)
def test_every_name_reports_infeasibility_with_its_cause(name):
    """Selling at least 15 is impossible when demand is 10: the error names that family."""
    with pytest.raises(InfeasibleError) as err:
        solve_ef(NEWSVENDOR, NEWSVENDOR_SCENARIOS, {"min_sales": 15.0},
                 SolverOptions(name=name, backend="pyomo"))
    assert "min_sales" in err.value.families


@pytest.mark.parametrize(("pricing", "strategy"), [("devex", 1), ("steepest-edge", 2),
                                                   ("auto", -1)])
def test_pricing_reaches_highs(pricing: str, strategy: int) -> None:
    """``[solver] pricing`` sets HiGHS's dual edge weights on the matrix backend's HiGHS
    (devex unless asked; "auto" leaves HiGHS's own default, -1)."""
    from stochplan.solve.matrix import _highs

    h = _highs(SolverOptions(pricing=pricing))
    assert h.getOptionValue("simplex_dual_edge_weight_strategy")[1] == strategy
    assert load_config(None, solver={"pricing": pricing}).solver.pricing == pricing


@pytest.mark.solve
@pytest.mark.parametrize("pricing", ["devex", "steepest-edge", "auto"])
def test_every_pricing_gives_the_same_extensive_form(pricing: str) -> None:
    """The relaxed electronics extensive form (20 Poisson scenarios, matrix backend) has one
    optimum, whichever rows the dual simplex prices."""
    from stochplan.family import get_family

    fam = get_family("aggregate")
    inst = fam.resolve("electronics", {"integer": False})
    names = fam.scenario_set(inst, "poisson:20", 0).names
    kwargs = fam.creator_kwargs(inst, "poisson:20", 0)
    base = solve_ef(fam.module, names, kwargs, SolverOptions(pricing="auto", backend="matrix"))
    result = solve_ef(fam.module, names, kwargs, SolverOptions(pricing=pricing,
                                                                backend="matrix"))
    assert result.status == base.status == "optimal"
    assert result.objective == pytest.approx(base.objective, rel=1e-9)
    assert result.info["backend"].startswith("matrix")


def test_an_unknown_pricing_is_named() -> None:
    with pytest.raises(InputError, match="solver.pricing = 'dantzig': expected devex, "
                                         "steepest-edge, auto"):
        SolverOptions(pricing="dantzig")


# ----------------------------------------------------------------------------------------------
# Interrupts: a large model's HiGHS solve runs in a worker thread inside interruptible()


def _small_lp():
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    inf = highspy.kHighsInf
    h.addVars(2, np.zeros(2), np.full(2, inf))
    h.changeColsCost(2, np.array([0, 1], dtype=np.int32), np.array([1.0, 2.0]))
    h.addRow(3.0, inf, 2, np.array([0, 1], dtype=np.int32), np.array([1.0, 1.0]))
    return h


def test_a_large_models_solve_in_a_worker_thread_gives_the_same_result(monkeypatch):
    """Every model counts as large here: solved through the worker thread, the LP min x + 2y,
    x + y >= 3 still ends optimal at 3, and the solver is no longer listed as running."""
    from stochplan.solve import solvers

    monkeypatch.setattr(solvers, "THREAD_NONZEROS", 0)
    solvers.patch_highs()
    h = _small_lp()
    with solvers.interruptible():
        h.run()
    assert h.getModelStatus().name == "kOptimal"
    assert h.getInfo().objective_function_value == pytest.approx(3.0)
    assert h not in solvers._RUNNING


def test_a_signal_during_a_solve_that_does_not_stop_is_raised_after_the_grace():
    """A signal while the worker thread's solve ignores the request to stop (a stand-in that
    sleeps, as HiGHS's MIP does between its checks): the interrupt is raised STOP_GRACE after
    the signal, not when the solve ends, and the solver is no longer listed as running."""
    import signal
    import threading
    import time

    from stochplan.solve import solvers

    h = _small_lp()
    ended = []

    def stubborn(_h):
        time.sleep(3.0)
        ended.append(True)
        return None

    with solvers.interruptible():
        solvers._RUNNING.append(h)
        threading.Timer(0.2, signal.raise_signal, (signal.SIGINT,)).start()
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            solvers._run_in_thread(stubborn, h)
        waited = time.monotonic() - start
    assert 0.2 + solvers.STOP_GRACE - 0.05 <= waited < 0.2 + solvers.STOP_GRACE + 0.5
    assert not ended and h not in solvers._RUNNING
