"""The test family ``newsvendor``: its loader, a hand-checked instance, and an independent LP.

The hand instance (``hand_instance`` in conftest.py): two products, budget B = $200, two
equally likely named scenarios.

=======  ====  =====  =======  ===============  ================
product  cost  price  salvage  demand low (.5)  demand high (.5)
=======  ====  =====  =======  ===============  ================
A        4     10     1        20               40
B        6     12     2        10               30
=======  ====  =====  =======  ===============  ================

Recourse problem (RP). A unit of A below 20 earns p - c = 6 for $4 (1.5 per $); between 20 and
40 it sells with probability 1/2: 0.5 (10 - 1) + 1 - 4 = 1.5 for $4 (0.375 per $). A unit of B
below 10 earns 6 for $6 (1 per $); between 10 and 30, 0.5 (12 - 2) + 2 - 6 = 1 for $6 (0.167
per $). The LP spends the budget in that order: A to 20 ($80), B to 10 ($60), then the last
$60 on 15 more units of A. Plan Q = (35, 10); expected profit 20 x 6 + 15 x 1.5 + 10 x 6 =
202.5, so RP = -202.5 (the model minimises cost = -profit). Expected sales 27.5 + 10 of an
expected demand 30 + 20: fill rate 0.75; expected leftover 0.5 x 15 = 7.5 units of A.

Mean-value problem (EV): demand (30, 20); A to 30 ($120), the last $80 on 13.333 units of B;
EV = -(30 x 6 + 13.333 x 6) = -260. That plan in the scenarios (EEV): A sells 20 or 30 and
salvages 10 or 0, B sells 10 or 13.333 and salvages 3.333 or 0; expected revenue
255 + 143.333 = 398.333 on an order of $200: EEV = -198.333.
Wait-and-see (WS): low demand (20, 10) costs $140 < B: profit 180; high demand (40, 30): A to
40 ($160), B 6.667 units with the last $40: profit 240 + 40 = 280; WS = -230.
VSS = EEV - RP = 4.1667, EVPI = RP - WS = 27.5.
"""

from __future__ import annotations

import newsvendor
import numpy as np
import pytest
from scipy.optimize import linprog

from stochplan.analysis.value import value_report
from stochplan.errors import InputError
from stochplan.family import get_family
from stochplan.solve.ef import solve_ef

from .conftest import KIOSK

FAMILY = newsvendor.FAMILY


def test_the_kiosk_loads_validated():
    inst = FAMILY.resolve(str(KIOSK))
    assert inst.products == ("papers", "sandwiches", "flowers")
    assert inst.options.budget == 220.0 and inst.options.integer is False
    assert inst.scenario_labels == ("low", "mid", "high")
    # the named scenarios' expected demand is the Poisson mean
    assert np.allclose(inst.scenario_probabilities @ inst.scenario_demand, inst.mean_demand)
    assert get_family("newsvendor") is FAMILY


def test_bad_data_names_the_field_and_the_file(hand_instance):
    csv = hand_instance / "products.csv"
    csv.write_text(csv.read_text().replace("A,4,10,1", "A,4,10,5"))
    with pytest.raises(InputError, match=r"A\.salvage/cost/price.*need salvage < cost < price"):
        FAMILY.load(hand_instance, {"data": "products.csv"}, hand_instance / "instance.toml")
    with pytest.raises(InputError, match=r"options\.budget.*must be >= 0"):
        FAMILY.load(hand_instance, {"options": {"budget": -1.0}}, hand_instance / "instance.toml")
    with pytest.raises(InputError, match=r"options\.colour.*unknown option"):
        FAMILY.options({"colour": "red"}, section="options")


@pytest.mark.solve
def test_hand_instance_plan_objective_and_kpis(hand_instance):
    """RP = -202.5 with Q = (35, 10); fill rate 0.75, leftover 7.5 (module docstring)."""
    inst = FAMILY.resolve(str(hand_instance))
    scen = FAMILY.scenario_set(inst, "named")
    result = solve_ef(newsvendor, scen.names, FAMILY.creator_kwargs(inst, "named"))
    assert result.objective == pytest.approx(-202.5, abs=1e-7)
    plan = result.plan.set_index("product")["value"]
    assert plan["A"] == pytest.approx(35.0, abs=1e-7) and plan["B"] == pytest.approx(10.0, abs=1e-7)
    kpis = FAMILY.kpis(inst, scen, result)
    assert kpis.headline["expected_profit"] == pytest.approx(202.5, abs=1e-7)
    assert kpis.headline["fill_rate"] == pytest.approx(0.75, abs=1e-9)
    assert kpis.headline["expected_leftover"] == pytest.approx(7.5, abs=1e-7)
    table = kpis.tables["products"].set_index("product")
    assert table.loc["A", "expected_sales"] == pytest.approx(27.5, abs=1e-7)
    assert table.loc["B", "expected_profit"] == pytest.approx(60.0, abs=1e-7)
    text = FAMILY.report_text(kpis.headline, kpis.tables)
    assert "NEWSVENDOR SUMMARY" in text and "202.50" in text and "75.0%" in text


@pytest.mark.solve
def test_hand_instance_value_of_information(hand_instance):
    """RP -202.5, EV -260, EEV -198.333, WS -230, VSS 4.1667, EVPI 27.5 (module docstring)."""
    inst = FAMILY.resolve(str(hand_instance))
    names = FAMILY.scenario_set(inst, "named").names
    report = value_report(newsvendor, names, FAMILY.creator_kwargs(inst, "named"))
    assert report.rp == pytest.approx(-202.5, abs=1e-7)
    assert report.ev == pytest.approx(-260.0, abs=1e-7)
    assert report.eev == pytest.approx(-595.0 / 3.0, abs=1e-7)
    assert report.ws == pytest.approx(-230.0, abs=1e-7)
    assert report.vss == pytest.approx(25.0 / 6.0, abs=1e-7)
    assert report.evpi == pytest.approx(27.5, abs=1e-7)
    ev_plan = report.ev_plan.set_index("product")["value"]
    assert ev_plan["A"] == pytest.approx(30.0, abs=1e-7)
    assert ev_plan["B"] == pytest.approx(40.0 / 3.0, abs=1e-7)


def _linprog_ef(cost, price, salvage, budget, demand, prob, bound):
    """The EF written directly: x = (Q[P], S[N, P]); V = Q - S eliminated.

    min (c - s).Q - sum_n pi_n (p - s).S_n  s.t.  c.Q <= B,  S_n - Q <= 0,
    0 <= S_n <= D_n,  0 <= Q <= bound.
    """
    N, P = demand.shape
    obj = np.concatenate([cost - salvage, -(prob[:, None] * (price - salvage)).ravel()])
    rows = [np.concatenate([cost, np.zeros(N * P)])]
    for n in range(N):
        for i in range(P):
            row = np.zeros(P + N * P)
            row[i], row[P + n * P + i] = -1.0, 1.0
            rows.append(row)
    rhs = np.concatenate([[budget], np.zeros(N * P)])
    bounds = [(0.0, b) for b in bound] + [(0.0, d) for d in demand.ravel()]
    out = linprog(obj, A_ub=np.array(rows), b_ub=rhs, bounds=bounds, method="highs")
    assert out.status == 0, out.message
    return out.fun, out.x[:P]


@pytest.mark.solve
def test_independent_lp_on_sample_20():
    """stochplan's EF objective on sample:20 (seed 3) equals the same LP written with
    scipy's linprog, on demand drawn here from ``default_rng([3, k]).poisson(mean)``."""
    inst = FAMILY.resolve(str(KIOSK))
    scen = FAMILY.scenario_set(inst, "sample:20", 3)
    demand = np.array([np.random.default_rng([3, k]).poisson(inst.mean_demand)
                       for k in range(20)], dtype=float)
    assert np.array_equal(scen.data, demand)
    result = solve_ef(newsvendor, scen.names, FAMILY.creator_kwargs(inst, "sample:20", 3))
    fun, q = _linprog_ef(inst.cost, inst.price, inst.salvage, inst.options.budget, demand,
                         np.full(20, 1 / 20), inst.order_bound)
    assert result.objective == pytest.approx(fun, rel=1e-9, abs=1e-9)
    plan = result.plan.set_index("product")["value"]
    # the plan may differ where the LP has ties; its cost may not
    stochplan_q = np.array([plan[p] for p in inst.products])
    assert inst.cost @ stochplan_q <= inst.options.budget + 1e-9
    assert np.all(q >= -1e-9)


@pytest.mark.solve
def test_a_ph_bundle_without_an_order_in_common_is_said_infeasible():
    """With all demand sold, nothing left over and no budget, every kiosk scenario alone is
    feasible (order exactly its demand) but no order serves two of them: the highspy guest's
    bundle says so, naming its first and last scenario, and each member alone still solves.
    Within the kiosk's $220 budget the mid scenario alone is infeasible, and named."""
    from stochplan.errors import InfeasibleError
    from stochplan.solve import matrix
    from stochplan.solve.ph_highs import Subproblem

    family = newsvendor.FAMILY
    inst = family.resolve("kiosk", {"min_fill": 1.0, "max_leftover": 0.0, "budget": None})
    spec = "named"
    names = family.scenario_set(inst, spec, 0).names
    compiled = matrix.compile_scenarios(newsvendor, names,
                                        family.creator_kwargs(inst, spec, 0))
    with pytest.raises(InfeasibleError, match=r"^scenarios scen0 to scen2 \(a PH bundle\) have "
                       r"no first-stage plan in common: the problem is infeasible$") as err:
        Subproblem(compiled, range(len(names))).solve()
    assert err.value.scenario is None
    # the compiled first stage's order of the products
    order = [inst.products.index(index[0]) for index in
             compiled.columns.indices[:compiled.n_first]]
    demand = inst.scenario_demand[:, order]
    for k in range(len(names)):
        alone = Subproblem(compiled, [k]).solve()
        assert alone.ok and np.allclose(alone.first, demand[k])
    budgeted = family.resolve("kiosk", {"min_fill": 1.0, "max_leftover": 0.0})
    compiled = matrix.compile_scenarios(newsvendor, names,
                                        family.creator_kwargs(budgeted, spec, 0))
    with pytest.raises(InfeasibleError, match="^scenario scen1 alone is infeasible$"):
        Subproblem(compiled, range(len(names))).solve()
