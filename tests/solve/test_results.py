"""Solve statuses (:mod:`stochplan.solve.results`) and how reports word them, on plain numbers
(no solver)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stochplan.cli.solve import _lshaped_summary, _ph_summary
from stochplan.reports.text import header_text
from stochplan.solve.results import (
    CLOSED_GAP,
    GAP_REACHED,
    OPTIMAL,
    SolveResult,
    decomposition_status,
    status_text,
)


def _result(method: str, status: str, objective: float, bound: float, **info) -> SolveResult:
    gap = abs(objective - bound) / max(1.0, abs(objective))
    return SolveResult(method=method, status=status, objective=objective, bound=bound, gap=gap,
                       plan=pd.DataFrame(), recourse=pd.DataFrame(), scenario_names=("s0",),
                       probabilities=np.ones(1), info=info)


@pytest.mark.parametrize("gap, status", [
    (0.0, OPTIMAL),
    (CLOSED_GAP, OPTIMAL),
    (2 * CLOSED_GAP, GAP_REACHED),
    (0.0055, GAP_REACHED),
    (0.01, GAP_REACHED),  # the target itself counts as reached
    (0.0101, "iteration_limit"),
    (None, "iteration_limit"),  # no bound, no gap: not reached
    (float("nan"), "iteration_limit"),
])
def test_a_decomposition_is_optimal_only_when_its_gap_closes(gap, status):
    assert decomposition_status(gap, 0.01, "iteration_limit") == status


def test_optimal_means_solved_to_the_target():
    """``optimal`` (the property) accepts a gap-reached result; a stopped one is not."""
    assert _result("ph", GAP_REACHED, 100.0, 99.45).optimal
    assert _result("ph", OPTIMAL, 100.0, 100.0).optimal
    assert not _result("ph", "iteration_limit", 100.0, 90.0).optimal
    assert _result("ph", GAP_REACHED, 100.0, 99.45).to_dict()["status"] == "gap_reached"


def test_status_text_gives_the_gap_and_its_target():
    assert status_text(GAP_REACHED, 0.0055, 0.01) == "gap target reached (gap 0.55%, target 1.00%)"
    # L-shaped's default target is 1e-4: two significant digits below 0.1 %
    assert status_text(GAP_REACHED, 6.4e-6, 1e-5) == \
        "gap target reached (gap 0.00064%, target 0.001%)"
    assert status_text(GAP_REACHED, 0.0055) == "gap target reached (gap 0.55%)"  # old record
    assert status_text(GAP_REACHED) == "gap target reached"
    for status in (OPTIMAL, "time_limit", "iteration_limit"):
        assert status_text(status, 0.0055, 0.01) == status


def test_header_and_ph_summary_say_gap_target_reached_not_optimal():
    """What ``stochplan solve --method ph`` prints for a run that stopped at a 0.55 % gap."""
    result = _result("ph", GAP_REACHED, 1000.0, 994.5, ranks=3,
                     cylinders=["hub", "lagrangian", "xhat"], bundle_size=2, iterations=7,
                     stop_reason="gap", rel_gap_target=0.01)
    header = {"run_id": 4, "instance": "electronics", "scenarios": "poisson:6",
              "n_scenarios": 6, "method": "ph", "status": result.status,
              "objective": result.objective, "gap": result.gap, "rel_gap_target": 0.01}
    first = header_text(header).splitlines()[0]
    assert first.endswith("PH with HiGHS: gap target reached (gap 0.55%, target 1.00%)")
    assert "optimal" not in header_text(header)
    assert _ph_summary(result) == (
        "Progressive hedging on 3 rank(s) (hub, lagrangian, xhat), bundles of 2 scenario(s): "
        "7 iterations, gap target reached.\n"
        "Best bound $994.50, incumbent $1,000.00, gap 0.550% (target 1.00%).")
    closed = _result("ph", OPTIMAL, 1000.0, 1000.0, ranks=1, cylinders=["hub"],
                     bundle_size=6, iterations=2, stop_reason="gap", rel_gap_target=0.01)
    assert "2 iterations, optimal.\n" in _ph_summary(closed)
    stopped = _result("ph", "iteration_limit", 1000.0, 950.0, ranks=1, cylinders=["hub"],
                      bundle_size=6, iterations=200, stop_reason="iteration_limit",
                      rel_gap_target=0.01)
    assert "200 iterations, stopped on iteration limit.\n" in _ph_summary(stopped)
    assert "PH with HiGHS: iteration_limit" in header_text({**header, "status": "iteration_limit"})


def test_lshaped_summary_says_gap_target_reached():
    result = _result("lshaped", GAP_REACHED, 1000.0, 999.99, ranks=1, iterations=30, cuts=90,
                     clusters=3, feasibility_cuts=0, stop_reason="gap", rel_gap_target=1e-4)
    assert "30 iterations, 90 cuts (3 optimality cuts per iteration, 0 feasibility cuts), gap " \
           "target reached.\n" in _lshaped_summary(result)
