"""The frontier page and text table, and the comparison page's plan differences, drawn from
hand-made stored runs (no solver): what the page shows is what the runs store."""

from __future__ import annotations

import html
import re

import pandas as pd
import pytest

from stochplan.reports.dashboard import compare_html
from stochplan.reports.frontier import (
    default_frontier_path,
    frontier_figure,
    frontier_html,
    frontier_text,
    write_frontier,
)
from stochplan.store import RunRecord, StoredRun

#: (weight, expected, VaR, CVaR, value of X[2]) of a three-point frontier of a cost.
POINTS = [(0.0, 100.0, 140.0, 160.0, 2.0), (0.5, 110.0, 130.0, 140.0, 5.0),
          (1.0, 120.0, 125.0, 130.0, 9.0)]


def point(run_id: int, index: int, weight: float, expected: float, var: float, cvar: float,
          x2: float, sense: str = "min", weights: tuple[float, ...] = (0.0, 0.5, 1.0),
          family: str = "no-such-family") -> StoredRun:
    """A stored frontier point as ``stochplan frontier`` stores it."""
    sign = 1.0 if sense == "min" else -1.0
    objective = (1 - weight) * expected + sign * weight * cvar
    plan = pd.DataFrame({"variable": ["X", "X", "W"], "week": [1, 2, 1],
                         "value": [1.0, x2, 4.0]})
    record = RunRecord(
        instance="fake", family=family, method="ef", scenarios="sample:4", seed=1,
        n_scenarios=4, status="optimal", objective=objective, bound=objective, gap=0.0,
        config={"sense": sense, "model": {"integer": False},
                "risk": {"measure": "cvar", "alpha": 0.9, "weight": weight},
                "frontier": {"id": "F20261205-051403", "index": index,
                             "weights": list(weights)}},
        versions={}, timings={}, plan=plan,
        kpis={"cost": expected, "risk_objective": objective, "risk_expected": expected,
              "risk_value_at_risk": var, "risk_cvar": cvar},
        label=f"frontier F20261205-051403 point {index + 1}/{len(weights)}")
    return StoredRun(10 + index, "2026-12-05T05:14:03+00:00", record)


@pytest.fixture
def runs() -> list[StoredRun]:
    return [point(10 + k, k, *p) for k, p in enumerate(POINTS)][::-1]  # any order


def cells(page: str) -> dict[tuple[str, int], float]:
    """(data-kpi, data-run) -> data-value of every number that carries a run."""
    found = re.findall(r'data-kpi="([^"]+)" data-value="([^"]+)" data-run="(\d+)"', page)
    return {(html.unescape(k), int(r)): float(v) for k, v, r in found}


def test_the_page_shows_each_point_with_its_stored_values(runs):
    page = frontier_html(runs, db="runs.db")
    values = cells(page)
    for k, (weight, expected, var, cvar, x2) in enumerate(POINTS):
        run = 10 + k
        stored = next(r for r in runs if r.id == run).record.kpis
        assert values[("frontier.weight", run)] == weight
        assert values[("frontier.expected", run)] == expected
        assert values[("frontier.value_at_risk", run)] == var
        assert values[("frontier.cvar", run)] == cvar
        assert values[("frontier.objective", run)] == stored["risk_objective"]
        assert values[("plan.X[2]", run)] == x2
        assert values[("plan_total.X", run)] == 1.0 + x2
    assert page.count('data-chart="frontier"') == 1 and 'data-charts="1"' in page
    assert 'data-invariants="hold"' in page and 'id="incomplete"' not in page
    assert "stochplan compare 10 12 --db runs.db" in page
    assert "stochplan frontier --show F20261205-051403" in page
    assert 'href="stochplan-run-11.html"' in page
    # rows in increasing weight
    assert [int(r) for r in re.findall(r'<tr data-run="(\d+)"', page)] == [10, 11, 12]


def test_the_chart_marks_both_ends_and_hovers_the_plan(runs):
    fig = frontier_figure(runs)
    line, neutral, averse = fig.data
    assert list(line.x) == [100.0, 110.0, 120.0] and list(line.y) == [160.0, 140.0, 130.0]
    assert neutral.name == "risk-neutral (λ = 0)" and list(neutral.x) == [100.0]
    assert averse.name == "most risk-averse (λ = 1)" and list(averse.y) == [130.0]
    hover = line.hovertext[1]
    assert "weight λ = 0.5" in hover and "run 11" in hover
    assert "X[2]: 5 (+3)" in hover  # the entry that changes, against the first point
    assert "W[1]" not in hover  # the same at every point
    assert "expected cost" in fig.layout.xaxis.title.text
    assert "CVaR 90\u00a0% of the cost" in fig.layout.yaxis.title.text


def test_a_maximising_family_is_labelled_as_profit_and_loss():
    runs = [point(10, 0, 0.0, 500.0, -420.0, -400.0, 1.0, sense="max"),
            point(11, 1, 1.0, 480.0, -450.0, -440.0, 2.0, sense="max")]
    fig = frontier_figure(runs)
    assert "expected profit" in fig.layout.xaxis.title.text
    assert "loss (−profit)" in fig.layout.yaxis.title.text
    text = frontier_text(runs)
    assert "expected profit" in text and "E[profit]" in text
    assert "does not fall" in text  # the loss: -500 then -480, rising; CVaR -400 then -440


def test_a_broken_frontier_says_where(runs):
    broken = [point(10, 0, 0.0, 100.0, 140.0, 160.0, 2.0),
              point(11, 1, 0.5, 90.0, 130.0, 170.0, 5.0)]
    page = frontier_html(broken)
    assert 'data-invariants="violated"' in page
    assert "falls from 100 to 90" in page and "rises from 160 to 170" in page
    assert "Invariants broken" in frontier_text(broken)


def test_an_interrupted_sweep_is_drawn_with_a_note():
    stored = [point(10, 0, *POINTS[0]), point(11, 1, *POINTS[1])]
    page = frontier_html(stored)
    assert "2 of 3 points are stored" in page


def test_one_point_has_one_mark_and_no_compare_hint():
    only = [point(10, 0, *POINTS[0], weights=(0.0,))]
    assert len(frontier_figure(only).data) == 2
    assert "stochplan compare" not in frontier_text(only)


def test_text_table_lists_weight_values_and_run(runs):
    text = frontier_text(runs, db="runs.db")
    assert text.startswith("Frontier F20261205-051403: fake, sample:4 (4 scenarios, seed 1, "
                           "LP relaxation)")
    rows = [line.split() for line in text.splitlines() if line.startswith("  ") and "$" in line]
    assert rows == [["0", "$100.00", "$140.00", "$160.00", "$100.00", "10"],
                    ["0.5", "$110.00", "$130.00", "$140.00", "$125.00", "11"],
                    ["1", "$120.00", "$125.00", "$130.00", "$130.00", "12"]]
    assert "`stochplan compare 10 12 --db runs.db`" in text


def test_write_frontier_default_path(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_frontier(runs)
    assert path == default_frontier_path("F20261205-051403")
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_compare_shows_how_two_plans_differ(runs):
    """The comparison page's generic plan panel: the entries that differ with each run's
    value (not as data-run cells, which are the runs' KPIs); one line when none differ. The
    risk weight is among the settings that differ."""
    a, c = sorted(runs, key=lambda r: r.id)[0], sorted(runs, key=lambda r: r.id)[-1]
    page = compare_html([a, c])
    assert 'data-plan-differences="1"' in page
    assert re.search(r'data-kpi="plan.X\[2\]" data-value="9.0" data-plan-run="12"', page)
    assert {k for k, r in cells(page) if r == 12} == set(c.record.kpis)
    assert 'data-setting="risk.weight"' in page and 'data-setting="frontier.index"' in page
    same = compare_html([a, a.__class__(99, a.created, a.record)])
    assert 'data-plan-differences="0"' in same
