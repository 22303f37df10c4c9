"""The value report on the aggregate family: by hand, without complete recourse, and the
ordering WS <= RP <= EEV on random small instances."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stochplan.analysis.value import value_report
from stochplan.data import load_instance
from stochplan.models import aggregate
from stochplan.models.aggregate import AggregateInstance, ModelOptions

pytestmark = pytest.mark.solve


def _report(inst, spec="three-point", seed=0, **kw):
    names = aggregate.scenario_set(inst, spec, seed).names
    return value_report(aggregate, names, aggregate.creator_kwargs(inst, spec, seed), **kw)


def test_tiny_by_hand(tiny_path):
    """RP 85 (see test_aggregate); EV: mean demand 10 -> make 10 on regular hours = 60;
    EEV: that plan holds 5 (low) or backorders 5 (high): 60 + 0.5 * 5 + 0.5 * 50 = 87.5;
    WS: 0.5 * (30 + 15) + 0.5 * (30 + 50) = 62.5. VSS 2.5, EVPI 22.5."""
    r = _report(load_instance(tiny_path))
    assert (r.rp, r.ev, r.eev, r.ws) == pytest.approx((85.0, 60.0, 87.5, 62.5))
    assert r.vss == pytest.approx(2.5)
    assert r.evpi == pytest.approx(22.5)
    assert r.by_scenario["eev"].tolist() == pytest.approx([65.0, 110.0])  # 60 + 5, 60 + 50
    assert r.by_scenario["ws"].tolist() == pytest.approx([45.0, 80.0])


def test_no_complete_recourse_gives_infinite_eev(tiny_path):
    """Backorders forbidden: the mean-value plan (10 in week 2) cannot meet the high
    scenario's 15, so EEV and VSS are +inf and that scenario is named."""
    inst = load_instance(tiny_path).with_options(backorder_fraction=0.0)
    r = _report(inst)
    assert r.eev == math.inf and r.vss == math.inf
    assert r.infeasible == ("scen1",)
    assert r.rp == pytest.approx(85.0) and r.evpi == pytest.approx(22.5)
    # the finite values stay, and the infinite ones come with what they mean and what to do
    assert r.infeasible_probability == pytest.approx(0.5)
    assert "scen1" in r.note and "50.0%" in r.note and "lost_sales_penalty" in r.note
    out = r.to_dict()
    assert out["note"] == r.note and out["infeasible_probability"] == pytest.approx(0.5)


def test_feasible_report_has_no_note(tiny_path):
    r = _report(load_instance(tiny_path))
    assert r.infeasible == () and r.infeasible_probability == 0.0 and r.note == ""


def test_seed_instance_lacks_relatively_complete_recourse():
    """The electronics mean-value plan cannot serve the med and high demand levels within the
    40 % backorder cap; with lost sales (complete recourse on shortage) VSS is finite."""
    strict = _report(aggregate.resolve("electronics"))
    assert strict.rp == pytest.approx(564_471.5)
    assert strict.eev == math.inf and set(strict.infeasible) == {"scen1", "scen2"}
    # the med and high levels: probabilities 0.5 and 0.25 of the instance's 0.25/0.5/0.25
    assert strict.infeasible_probability == pytest.approx(0.75)
    assert "75.0%" in strict.note and "scen1, scen2" in strict.note
    lenient = _report(aggregate.resolve("electronics").with_options(lost_sales_penalty=1000.0))
    assert math.isfinite(lenient.vss) and lenient.vss > 0
    assert lenient.ws <= lenient.rp <= lenient.eev


def test_integer_policy_is_reported(tiny_path):
    r = _report(load_instance(tiny_path), integer_policy="relax")
    assert r.integer_policy == "relax"
    assert r.ev == pytest.approx(60.0)


def test_integer_policy_is_not_reported_without_integer_recourse(tiny_path):
    """With the recourse relaxed there is nothing to round or relax: no policy is reported
    (the value report printed one before), and both policies give the same EV."""
    relaxed = load_instance(tiny_path).with_options(integer=False)
    reports = [_report(relaxed, integer_policy=policy) for policy in ("round", "relax")]
    assert [r.integer_policy for r in reports] == [None, None]
    assert reports[0].ev == reports[1].ev


def random_instance(seed: int) -> AggregateInstance:
    """A random 2-product, 3-week instance with complete recourse on shortage (lost sales)."""
    rng = np.random.default_rng([2026, seed])
    P, T = 2, 3

    def pt(lo, hi):
        return rng.uniform(lo, hi, size=(P, T)).round(1)

    base = rng.integers(5, 40, size=(P, T)).astype(float)
    levels = np.stack([np.floor(base * 0.6), base, np.ceil(base * 1.5)])
    return AggregateInstance(
        name=f"random-{seed}", products=("A", "B"), labels=("A", "B"), weeks=(1, 2, 3),
        base_demand=base, production_cost=pt(1, 10), holding_cost=pt(0.5, 3),
        backorder_cost=pt(5, 20), regular_labour_cost=pt(10, 20), overtime_labour_cost=pt(20, 35),
        hiring_cost=pt(50, 200), firing_cost=pt(50, 200),
        hours_per_unit=rng.uniform(0.5, 2, P).round(2),
        space_per_unit=rng.uniform(0.2, 1, P).round(2),
        initial_workforce=rng.integers(0, 2, P).astype(float),
        initial_inventory=rng.integers(0, 10, P).astype(float),
        price=rng.uniform(50, 100, P).round(0), hours_per_worker=40.0, overtime_fraction=0.25,
        regular_capacity=500.0, levels=("low", "med", "high"), level_demand=levels,
        level_probabilities=np.array([0.3, 0.4, 0.3]),
        options=ModelOptions(integer=bool(seed % 2), backorder_fraction=0.3,
                             overflow_capacity=500.0, wage_per_worker=float(seed % 3) * 100.0,
                             lost_sales_penalty=60.0),
    )


@pytest.mark.parametrize("seed", range(6))
def test_ws_le_rp_le_eev_on_random_instances(seed):
    """WS <= RP <= EEV, and so VSS >= 0 and EVPI >= 0, whatever the data (derandomised:
    six fixed seeds, integer and LP, with and without wages)."""
    r = _report(random_instance(seed))
    tol = 1e-6 * max(1.0, abs(r.rp))
    assert r.ws <= r.rp + tol
    assert r.rp <= r.eev + tol
    assert r.vss >= -tol and r.evpi >= -tol
