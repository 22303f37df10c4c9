"""The assignment family's scenario models as arrays (no Pyomo): entry by entry the compiled
Pyomo models, for every option and scenario spec, and the same optimum when a solve takes
them through :func:`stochplan.solve.matrix.compile_scenarios`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stochplan.family import get_family
from stochplan.solve import matrix
from stochplan.solve.ef import solve_ef
from stochplan.solve.evaluate import evaluate_plan
from stochplan.solve.lshaped import LShapedOptions, solve_lshaped
from stochplan.solve.solvers import SolverOptions

FAMILY = get_family("assignment")
MODULE = FAMILY.module
EXACT = SolverOptions(mip_rel_gap=0.0)

# Producers listed out of id order; producer 3's gap is 0 (target below current) and its rate
# 0; producer 5's rate is 1; producer 9 fits no order (no capacity rows, a G column only).
ODD_PRODUCERS = """producer_id,location_x,location_y,target_volume,current_volume,\
min_dimensions_x,min_dimensions_y,max_dimensions_x,max_dimensions_y,can_bend,can_deburr,\
can_galvanize,acceptance_rate
7,0,0,300,0,1,1,50,50,1,1,1,0.5
3,5,5,100,200,1,1,50,50,1,0,1,0.0
5,10,0,500,100,1,1,50,50,1,1,1,1.0
9,3,3,100,0,60,60,80,80,1,1,1,0.7
"""
# Orders out of id order; order 20 is worth $0; order 10 needs deburring (not producer 3).
ODD_ORDERS = """order_id,client_location_x,client_location_y,order_value,dimensions_x,\
dimensions_y,requires_bending,requires_deburring,requires_galvanizing
30,1,1,120,10,10,0,0,0
10,4,2,80.25,10,10,0,1,0
20,2,8,0,10,10,0,0,1
15,9,1,60.5,20,20,1,0,0
"""
ODD_PAIR_RATES = """order_id,producer_id,acceptance_rate
30,7,0.9
15,5,0.0
20,3,0.25
"""

#: Option combinations: every value of every option at least once, the objective's parts
#: (reassignment cost, gap weight under both capacities, reassignment at the rate) together.
OPTIONS = [
    {},
    {"integer": False},
    {"recourse_integer": False, "acceptance": "perturbed", "perturbation": 0.3},
    {"capacity": "none"},
    {"capacity": "none", "gap_weight": 0.5, "reassignment": "rate", "reassignment_cost": 3.0,
     "sense": "min"},
    {"gap_weight": 0.2, "reassignment": "rate", "reassignment_cost": 1.5},
    {"gap_weight": 0.7, "reassignment": "certain", "integer": False, "sense": "min"},
]


def _folder(path: Path, producers: str, orders: str, pair_rates: str | None = None) -> Path:
    path.mkdir()
    (path / "producers.csv").write_text(producers)
    (path / "orders.csv").write_text(orders)
    toml = f'family = "assignment"\nname = "{path.name}"\n'
    if pair_rates is not None:
        (path / "pair_rates.csv").write_text(pair_rates)
        toml += '[files]\npair_rates = "pair_rates.csv"\n'
    (path / "instance.toml").write_text(toml)
    return path


@pytest.fixture(scope="module")
def odd(tmp_path_factory) -> Path:
    """The odd instance, with predicted pair rates, and a scenario file of 5 days (every
    (order, producer) cell, unequal probabilities)."""
    folder = _folder(tmp_path_factory.mktemp("odd") / "odd", ODD_PRODUCERS, ODD_ORDERS,
                     ODD_PAIR_RATES)
    rng = np.random.default_rng(11)
    probs = np.array([0.1, 0.2, 0.3, 0.15, 0.25])
    rows = [(f"d{s}", o, p, float(rng.random() < 0.6), probs[s]) for s in range(5)
            for o in (30, 10, 20, 15) for p in (7, 3, 5, 9)]
    pd.DataFrame(rows, columns=["scenario", "order", "producer", "accepted", "probability"]
                 ).to_csv(folder / "days.csv", index=False)
    return folder


def pyomo_compiled(names, kwargs, monkeypatch) -> matrix.CompiledScenarios:
    """The scenarios compiled from their Pyomo models (the family's arrays switched off)."""
    with monkeypatch.context() as patch:
        patch.setattr(type(FAMILY), "compile_from_arrays", False)
        return matrix.compile_scenarios(MODULE, names, kwargs)


@pytest.fixture()
def compare(monkeypatch, same_compiled):
    """``compare(instance, options, spec, seed, names=None, **extra)``: the arrays of those
    scenarios, checked entry by entry, exactly, against the Pyomo compile; returns them."""

    def check(instance, options, spec, seed, names=None, **extra):
        inst = FAMILY.resolve(str(instance), options)
        kwargs = {**FAMILY.creator_kwargs(inst, spec, seed), **extra}
        names = names or FAMILY.scenario_set(inst, spec, seed).names
        got = matrix.compile_scenarios(MODULE, names, kwargs)
        want = pyomo_compiled(names, kwargs, monkeypatch)
        assert got.method == "family" and want.method in ("each", "affine")
        same_compiled(got, want)
        return got

    return check


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in
                                                                     o.items()) or "defaults")
def test_odd_instance_arrays_equal_the_compiled_pyomo_models(odd, options, compare):
    """Unsorted ids, a $0 order, a zero gap, rates 0 and 1, a producer that fits no order:
    sampled, named (the expected scenario, fractional) and file scenarios."""
    got = compare(odd, options, "sample:4", 3)
    compare(odd, options, "named", 0)
    compare(odd, options, f"file:{odd / 'days.csv'}", None)
    inst = FAMILY.resolve(str(odd), options)
    n_pairs = len(inst.pairs)
    assert n_pairs == 11 and got.n_first == n_pairs
    # x first, sorted by (order, producer) as mpi-sppy orders the nonanticipative variables
    assert list(got.columns.indices[:n_pairs]) == sorted(inst.pairs)
    assert got.columns.indices[:n_pairs] != inst.pairs


@pytest.mark.parametrize("options", OPTIONS[:5], ids=lambda o: ",".join(o) or "defaults")
def test_laser_arrays_equal_the_compiled_pyomo_models(options, compare):
    """The built-in instance (226 pairs), sample:5, and a subset of a larger set's names
    with N given apart (as a PH rank asks for its scenarios)."""
    got = compare("laser", options, "sample:5", 1)
    assert got.A.shape[1] == 3 * 226 + (20 if options.get("gap_weight") and
                                        options.get("capacity") == "none" else 0)
    part = compare("laser", options, "sample:10", 2, names=["scen3", "scen7"],
                   num_scens=50)
    np.testing.assert_array_equal(part.probabilities, [1 / 50, 1 / 50])


def test_hand_instance_arrays_equal_the_compiled_pyomo_models(hand, compare):
    """The hand instance's 16 outcomes; its rows and right-hand sides as written out here."""
    for options in ({"reassignment": "rate", "gap_weight": 0.1}, {}):
        got = compare(hand, options, f"file:{hand / 'outcomes.csv'}", None)
    # 2 offer_once, 2 offer_capacity, 4 x 2 acceptance rows, 2 reassign, 4 not_to_rejecter,
    # 2 capacity; scenario s8 = outcome (1, 0, 0, 0): only order 1 at producer 1 accepts
    assert got.A.shape == (20, 12)
    s = got.names.index("scen8")
    willing = [i for i, f in enumerate(got.row_family) if f == "accepted_if_willing"]
    np.testing.assert_array_equal(got.rhs[s, willing], [0.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(got.col_hi[s, 4:8], [1.0, 0.0, 0.0, 0.0])
    caps = [i for i, f in enumerate(got.row_family) if f == "capacity"]
    np.testing.assert_array_equal(got.rhs[s, caps], [100.0, 200.0])
    # maximised profit as a minimisation: a's cost is -(v - d), order 1 at producer 1: -97
    assert got.sense == -1 and got.cost[s, 4] == -97.0
    assert got.probabilities[s] == pytest.approx(0.5 * 0.2 * 0.5 * 0.2, rel=1e-12)


def test_a_module_that_wraps_the_creators_is_compiled_from_its_models(hand):
    """The mean-CVaR module (each model given eta and the row ``risk_tail``) keeps ``FAMILY``
    but not the family's creators: its scenarios are the wrapped Pyomo models, not the
    family's arrays."""
    from stochplan.solve.risk import RiskConfig, risk_module

    spec = f"file:{hand / 'outcomes.csv'}"
    inst = FAMILY.resolve(str(hand))
    names = FAMILY.scenario_set(inst, spec).names
    kwargs = FAMILY.creator_kwargs(inst, spec)
    wrapped = risk_module(MODULE, RiskConfig(measure="cvar", alpha=0.75, weight=0.5))
    assert wrapped.FAMILY is FAMILY
    risky = matrix.compile_scenarios(wrapped, names, kwargs)
    plain = matrix.compile_scenarios(MODULE, names, kwargs)
    assert risky.method != "family" and plain.method == "family"
    assert "risk_tail" in risky.row_family and "risk_tail" not in plain.row_family
    assert risky.n_first == plain.n_first + 1


@pytest.mark.solve
def test_hand_extensive_form_is_the_same_with_and_without_the_arrays(hand, monkeypatch):
    """214.6, the hand-checked expected profit (tests/models/test_assignment.py), both ways,
    and the same plan; evaluating that plan gives the same per-scenario profits."""
    spec = f"file:{hand / 'outcomes.csv'}"
    inst = FAMILY.resolve(str(hand))
    names = FAMILY.scenario_set(inst, spec).names
    kwargs = FAMILY.creator_kwargs(inst, spec)
    fast = solve_ef(MODULE, names, kwargs, EXACT)
    with monkeypatch.context() as patch:
        patch.setattr(type(FAMILY), "compile_from_arrays", False)
        slow = solve_ef(MODULE, names, kwargs, EXACT)
        slow_eval = evaluate_plan(MODULE, slow.plan, names, kwargs, EXACT)
    assert fast.info["backend"] == "matrix (family)" and slow.info["backend"] != fast.info[
        "backend"]
    assert fast.objective == pytest.approx(214.6, abs=1e-6)
    assert slow.objective == pytest.approx(214.6, abs=1e-6)
    pd.testing.assert_frame_equal(fast.plan, slow.plan)
    fast_eval = evaluate_plan(MODULE, fast.plan, names, kwargs, EXACT)
    np.testing.assert_allclose(fast_eval.objective, slow_eval.objective, rtol=0, atol=1e-9)


@pytest.mark.solve
@pytest.mark.parametrize("case", ["laser-relaxed", "odd-integer"])
def test_lshaped_is_the_same_with_and_without_the_arrays(odd, case, monkeypatch):
    """L-shaped from the arrays and the extensive form from the Pyomo models agree within the
    L-shaped gap: laser relaxed (offers and reassignments in [0, 1]) with reassignments at
    the rate and a gap weight, 12 sampled scenarios; the odd instance with binary offers,
    relaxed reassignments and its scenario file."""
    if case == "laser-relaxed":
        options = {"integer": False, "reassignment": "rate", "gap_weight": 0.05}
        instance, spec, seed = "laser", "sample:12", 4
    else:
        options = {"recourse_integer": False, "reassignment_cost": 2.0}
        instance, spec, seed = str(odd), f"file:{odd / 'days.csv'}", None
    inst = FAMILY.resolve(instance, options)
    names = FAMILY.scenario_set(inst, spec, seed).names
    kwargs = FAMILY.creator_kwargs(inst, spec, seed)
    fast = solve_lshaped(MODULE, names, kwargs, LShapedOptions(rel_gap=1e-7))
    with monkeypatch.context() as patch:
        patch.setattr(type(FAMILY), "compile_from_arrays", False)
        slow = solve_ef(MODULE, names, kwargs, EXACT)
    assert fast is not None and fast.info["backend"] == "matrix (family)"
    assert slow.info["backend"] != "matrix (family)"
    assert slow.objective > 0
    assert fast.objective == pytest.approx(slow.objective, rel=1e-6)
