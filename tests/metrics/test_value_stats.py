"""VSS/EVPI sign conventions and cost statistics, on plain numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stochplan.errors import InputError
from stochplan.metrics.stats import cvar, mean_ci, summarize_costs
from stochplan.metrics.value import evpi, vss


def test_signs_for_minimisation_use_the_farmer_numbers():
    assert vss(rp=-108_390.0, eev=-107_240.0) == pytest.approx(1_150.0)
    assert evpi(rp=-108_390.0, ws=-115_405.56) == pytest.approx(7_015.56)


def test_signs_mirror_for_maximisation():
    assert vss(rp=108_390.0, eev=107_240.0, sense="max") == pytest.approx(1_150.0)
    assert evpi(rp=108_390.0, ws=115_405.56, sense="max") == pytest.approx(7_015.56)


def test_infeasible_mean_value_plan_gives_infinite_vss():
    assert vss(85.0, math.inf) == math.inf
    assert vss(85.0, -math.inf, sense="max") == math.inf


def test_unknown_sense_is_an_input_error():
    with pytest.raises(InputError, match="sense"):
        vss(1.0, 2.0, sense="maximise")


def test_mean_ci_by_hand():
    """Values 1..5: mean 3, s = sqrt(2.5), t(0.975, 4) = 2.7764451."""
    mean, low, high = mean_ci(np.arange(1.0, 6.0))
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)
    assert mean == 3.0
    assert low == pytest.approx(3.0 - half, rel=1e-12)
    assert high == pytest.approx(3.0 + half, rel=1e-12)


def test_cvar_by_hand():
    """Costs 1..10 equally likely: the worst 20 % are 9 and 10, CVaR(0.8) = 9.5; the worst
    25 % are 10, 9 and half of 8: (10 + 9 + 0.5 * 8) / 2.5 = 9.2."""
    x = np.arange(1.0, 11.0)
    assert cvar(x, 0.8) == pytest.approx(9.5)
    assert cvar(x, 0.75) == pytest.approx(9.2)
    assert cvar(x, 0.0) == pytest.approx(x.mean())


def test_summary_with_an_infeasible_scenario():
    s = summarize_costs(np.array([10.0, 20.0, math.inf, 30.0]))
    assert s.mean == math.inf
    assert s.prob_infeasible == 0.25
    assert s.feasible_mean == 20.0
    assert s.cvar == math.inf


def test_summary_quantiles():
    s = summarize_costs(np.arange(0.0, 101.0))
    assert s.quantiles["q50"] == 50.0
    assert s.quantiles["q05"] == 5.0
    assert s.n == 101 and s.prob_infeasible == 0.0
