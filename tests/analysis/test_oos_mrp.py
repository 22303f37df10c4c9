"""Out-of-sample evaluation and the multiple-replication gap interval."""

from __future__ import annotations

import numpy as np
import pytest

from stochplan.analysis.mrp import gap_confidence_interval
from stochplan.analysis.oos import out_of_sample
from stochplan.data import load_instance
from stochplan.models import aggregate
from stochplan.solve.ef import solve_ef

pytestmark = pytest.mark.solve


@pytest.fixture(scope="module")
def tiny_lp(tiny_path):
    """The tiny instance as an LP with lost sales at $12/unit, Poisson demand around 10/week."""
    return load_instance(tiny_path).with_options(integer=False, lost_sales_penalty=12.0)


def _sample(inst, n, seed):
    spec = f"poisson:{n}"
    return aggregate.scenario_names_creator(n), aggregate.creator_kwargs(inst, spec, seed)


def test_out_of_sample_mean_converges_to_the_in_sample_value(tiny_lp):
    """A plan optimised on 400 scenarios, evaluated on independent samples: the confidence
    interval narrows like 1/sqrt(M) (M = 50 -> 800: about 4x) and the M = 800 mean lies within
    3 % of the in-sample optimum (the SAA bias and sampling error are both small here)."""
    names, kw = _sample(tiny_lp, 400, seed=0)
    rp = solve_ef(aggregate, names, kw)
    small = out_of_sample(aggregate, rp.plan, *_sample(tiny_lp, 50, seed=1))
    large = out_of_sample(aggregate, rp.plan, *_sample(tiny_lp, 800, seed=1))
    ratio = small.summary.half_width / large.summary.half_width
    assert 2.5 < ratio < 6.0
    assert abs(large.summary.mean - rp.objective) / rp.objective < 0.03
    assert large.summary.ci_low < large.summary.mean < large.summary.ci_high
    assert large.summary.prob_infeasible == 0.0 and large.note == ""
    costs = large.costs()
    assert list(costs.columns) == ["plan", "scenario", "cost"] and len(costs) == 800


def test_out_of_sample_names_infeasible_scenarios(tiny_path):
    """With backorders and lost sales forbidden, a plan making 10 a week is infeasible in every
    sample whose week-2 demand exceeds what it can still serve."""
    inst = load_instance(tiny_path).with_options(backorder_fraction=0.0)
    ev = solve_ef(aggregate, ["scen0"], aggregate.creator_kwargs(inst, "poisson:1", 5))
    oos = out_of_sample(aggregate, ev.plan, *_sample(inst, 40, seed=2))
    demand = aggregate.scenario_set(inst, "poisson:40", 2).demand[:, 0, :]
    made = ev.first_stage("X").to_numpy()
    short = np.cumsum(demand, axis=1) > np.cumsum(made)[None, :]
    assert oos.summary.prob_infeasible == pytest.approx(short.any(axis=1).mean())
    assert oos.summary.mean == np.inf


def test_mrp_gaps_are_nonnegative_and_rank_plans(tiny_lp):
    """Each batch gap f_b(x) - v_b is >= 0 (v_b is that batch's optimum); an SAA plan has a
    smaller estimated gap than a plan that produces nothing."""
    names, kw = _sample(tiny_lp, 200, seed=0)
    good = solve_ef(aggregate, names, kw).plan
    bad = good.assign(value=0.0)
    bad.loc[bad["variable"] == "W", "value"] = 1.0  # keep the workforce balance feasible

    def batches(b):
        return _sample(tiny_lp, 30, seed=100 + b)

    g_good = gap_confidence_interval(aggregate, good, batches, n_batches=5)
    g_bad = gap_confidence_interval(aggregate, bad, batches, n_batches=5)
    assert min(g_good.gaps) >= -1e-6 and min(g_bad.gaps) >= -1e-6
    assert g_good.upper >= g_good.mean >= 0
    assert g_bad.mean > g_good.upper


def test_mrp_stops_at_the_first_batch_where_the_plan_is_infeasible(tiny_path):
    """Backorders and lost sales forbidden: a plan making 10 a week has no recourse in any
    sample whose week-2 demand exceeds what it can still serve. The MRP raises at the first
    such batch (batch 0 here: seed 100), naming its infeasible scenarios, instead of
    returning an infinite gap, and says what to do."""
    from stochplan.analysis.recourse import NoRecourseError
    from stochplan.errors import InfeasibleError

    inst = load_instance(tiny_path).with_options(backorder_fraction=0.0)
    plan = solve_ef(aggregate, ["scen0"], aggregate.creator_kwargs(inst, "poisson:1", 5)).plan
    demand = aggregate.scenario_set(inst, "poisson:30", 100).demand[:, 0, :]
    made = plan[plan["variable"] == "X"].sort_values("week")["value"].to_numpy()
    short = (np.cumsum(demand, axis=1) > np.cumsum(made)[None, :]).any(axis=1)
    assert short.any()  # the premise: batch 0 holds scenarios the plan cannot serve
    calls = []

    def batches(b):
        calls.append(b)
        return _sample(inst, 30, seed=100 + b)

    with pytest.raises(NoRecourseError) as err:
        gap_confidence_interval(aggregate, plan, batches, n_batches=5, label="the test plan")
    assert calls == [0]
    assert isinstance(err.value, InfeasibleError)
    assert err.value.scenarios == tuple(f"scen{k}" for k in np.flatnonzero(short))
    text = str(err.value)
    assert text.startswith("the test plan has no feasible recourse in "
                           f"{short.sum()} of 30 scenarios of MRP batch 0 (seed 100)")
    assert "relatively complete recourse" in text and "lost_sales_penalty" in text


def test_saa_without_complete_recourse_stops_at_the_first_n(tiny_path):
    """grow_sample raises at N = start (not after doubling to max_n) and names that N."""
    from stochplan.analysis.mrp import grow_sample
    from stochplan.analysis.recourse import NoRecourseError

    inst = load_instance(tiny_path).with_options(backorder_fraction=0.0, integer=False)
    sizes = []

    def sample(n):
        sizes.append(n)
        return _sample(inst, n, seed=0)

    def batches_for(n):
        return lambda b: _sample(inst, n, seed=1 + b)

    with pytest.raises(NoRecourseError, match=r"^the N = 5 SAA plan has no feasible"):
        grow_sample(aggregate, sample, batches_for, target=0.005, start=5, max_n=80,
                    n_batches=3)
    assert sizes == [5]


def test_out_of_sample_raise_names_the_first_block(tiny_path):
    """on_infeasible='raise' stops at the first block of scenarios with an infeasible one;
    'measure' (default) solves them all and its note names them."""
    from stochplan.analysis.recourse import NoRecourseError

    inst = load_instance(tiny_path).with_options(backorder_fraction=0.0)
    ev = solve_ef(aggregate, ["scen0"], aggregate.creator_kwargs(inst, "poisson:1", 5))
    names, kw = _sample(inst, 40, seed=2)
    measured = out_of_sample(aggregate, ev.plan, names, kw, label="EV")
    bad = measured.solves.infeasible
    assert bad and measured.summary.mean == np.inf
    assert measured.note.startswith(f"EV: no feasible recourse in {len(bad)} of 40 scenarios")
    first_block = [n for n in bad if int(n.removeprefix("scen")) < 10]
    assert first_block  # the premise: the first block of 10 holds one
    with pytest.raises(NoRecourseError) as err:
        out_of_sample(aggregate, ev.plan, names, kw, label="EV", on_infeasible="raise",
                      block=10)
    assert err.value.scenarios == tuple(first_block)
    assert "out-of-sample set (seed 2)" in str(err.value)
