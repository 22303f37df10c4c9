"""Pages and panels for runs of any family, without a browser.

A ``value --module`` run of the textbook farmer (no family: plan indexed by crop, no scenario
tables) gets a full page: its plan, the value of information and the objective by scenario,
with no "not drawn" notes. A decomposed run (PH) gets its convergence panel from the stored
``convergence`` table. A family's own panels and comparison panels are drawn after the generic
ones, through the Family hooks only; and nothing in ``stochplan/reports`` names a family.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

import stochplan.family as family_module
from stochplan.family import Family, Panel
from stochplan.reports import figures as F
from stochplan.reports.dashboard import compare_html, dashboard_html, format_kpi
from stochplan.reports.panels import kpi_kind, plan_table, run_panels
from stochplan.reports.view import MissingData, RunView
from stochplan.store import ResultsStore, StoredRun

from .test_dashboard import kpi_cells, same

REPORTS = Path(__file__).resolve().parents[2] / "stochplan" / "reports"

#: The textbook farmer (Birge & Louveaux): the stochastic plan's acres, and RP, EEV, VSS, EVPI.
FARMER_ACRES = {"WHEAT": 170.0, "CORN": 80.0, "SUGAR_BEETS": 250.0}
FARMER_VALUES = {"rp": -108_390.0, "eev": -107_240.0, "vss": 1_150.0, "evpi": 7_015.56}


def section(page: str, key: str) -> str:
    """The HTML of the page's section ``key``."""
    start = page.index(f'<section id="{key}">')
    return page[start : page.index("</section>", start)]


# ----------------------------------------------------------------------------------------------
# Without a solver


def test_reports_layer_names_no_family():
    """No module under stochplan/reports mentions the aggregate family (or imports a model)."""
    modules = sorted(REPORTS.rglob("*.py"))
    assert len(modules) >= 5
    for path in modules:
        text = path.read_text(encoding="utf-8")
        lines = [i for i, line in enumerate(text.splitlines(), 1) if "aggregate" in line.lower()]
        assert not lines, f"{path.name} mentions 'aggregate' on lines {lines}"
        assert "stochplan.models" not in text, f"{path.name} imports a model family"


def test_kpi_kinds_follow_the_names():
    assert [kpi_kind(k) for k in ("profit", "cost", "rp", "oos_mean", "oos_fill_rate")] == [
        "money",
        "money",
        "money",
        "money",
        "percent",
    ]
    assert kpi_kind("share_wages") == "share" and kpi_kind("oos_n") == "count"
    assert kpi_kind("iterations") == "number"
    assert format_kpi("fill_rate", 0.97) == "97.0%"
    assert format_kpi("oos_n", 2000.0) == "2,000"
    assert format_kpi("gap_upper", 12.5) == "12.5"
    assert format_kpi("cost", math.nan) == "n/a"


def test_family_defaults_draw_nothing():
    class Bare(Family):
        name = "bare-defaults"

    assert Bare().panels(None) == [] and Bare().compare_panels([]) == []
    table = Panel("t", "A table", html="<table></table>")
    assert table.figure is None and table.note == "" and table.html == "<table></table>"


# ----------------------------------------------------------------------------------------------
# A `value --module` run: the textbook farmer


@pytest.mark.solve
def test_farmer_page_shows_the_plan_and_the_value_of_information(farmer):
    rec = farmer.record
    assert rec.family == "module" and RunView(farmer).family is None
    page = dashboard_html(farmer)
    cells = {name: (value, text) for name, value, _, text in kpi_cells(page)}
    for crop, acres in FARMER_ACRES.items():
        value, text = cells[f"plan.x.{crop}"]
        assert value == pytest.approx(acres, abs=1e-6), crop
        assert text == f"{acres:,.0f}", crop
    plan = section(page, "plan")
    assert 'data-chart="plan"' in plan and "<th>WHEAT</th>" in plan
    for name, want in FARMER_VALUES.items():
        value, text = cells[name]
        assert value == pytest.approx(want, abs=0.005), name
        assert text == format_kpi(name, rec.kpis[name]), name
    assert cells["vss"][1] == "$1,150.00" and cells["evpi"][1] == "$7,015.56"
    assert {name for name in cells if "." not in name} == set(rec.kpis)
    for key in ("plan", "value", "scenarios"):
        assert f'data-chart="{key}"' in page, key
    assert 'data-charts="3"' in page
    # nothing that does not apply is announced as missing
    assert "not-drawn" not in page and "Not drawn" not in page
    assert 'id="convergence"' not in page and 'id="headline"' not in page
    assert "<dt>family</dt><dd>module</dd>" in page


@pytest.mark.solve
def test_farmer_figures_draw_the_stored_numbers(farmer):
    view = RunView(farmer)
    assert view.index_names == ("crop",) and view.variables == ("x",)
    fig = F.plan_figure(view)
    bars = [t for t in fig.data if isinstance(t, go.Bar)]
    assert len(bars) == 1 and bars[0].marker.color == F.FIRST_STAGE_COLOUR
    drawn = dict(zip(bars[0].x, bars[0].y, strict=True))
    assert drawn == pytest.approx(FARMER_ACRES, abs=1e-6)
    # objective by scenario: the stored per-scenario WS and EEV, and the expectations
    by = farmer.record.tables["value_by_scenario"]
    fig = F.scenario_objective_figure(view)
    ws = next(t for t in fig.data if t.name.startswith("WS:"))
    eev = next(t for t in fig.data if t.name.startswith("EEV:"))
    np.testing.assert_array_equal(ws.y, by["ws"].to_numpy())
    np.testing.assert_array_equal(eev.y, by["eev"].to_numpy())
    assert list(ws.x) == [str(s) for s in by["scenario"]]
    assert "RP expected: -$108,390.00" in [t.name for t in fig.data]
    with pytest.raises(MissingData):
        view.scenario_series()  # a bare module stores no scenario data table


@pytest.mark.solve
def test_compare_runs_of_different_families_shows_the_generic_parts(farmer_db):
    with ResultsStore(farmer_db) as store:
        runs = [store.get_run(1), store.get_run(2)]
    page = compare_html(runs)
    assert 'data-chart="objective"' in page and 'data-chart="oos"' in page
    # no family charts: the runs are of different families
    assert 'data-charts="2"' in page and 'data-chart="costs"' not in page
    cells = kpi_cells(page)
    for run in runs:
        mine = {name: value for name, value, r, _ in cells if r == run.id}
        assert set(mine) == set(run.record.kpis)
        assert all(same(mine[k], v) for k, v in run.record.kpis.items())


# ----------------------------------------------------------------------------------------------
# Runs of the aggregate family (from the session's database) and a decomposed run


@pytest.mark.solve
def test_plan_table_has_every_stored_entry(stored):
    run = stored["three"]
    plan = run.record.plan
    html = plan_table(RunView(run))
    cells = dict(re.findall(r'data-kpi="(plan\.[^"]+)" data-value="([^"]+)"', html))
    assert len(cells) == len(plan)
    for rec in plan.to_dict("records"):
        key = f"plan.{rec['variable']}.{rec['product']}.{rec['week']}"
        assert float(cells[key]) == rec["value"], key


@pytest.mark.solve
def test_scenario_panel_sums_the_random_data_over_all_axes_but_the_last(stored):
    view = RunView(stored["three"])
    assert view.scenario_data_name == "demand"
    axis, weeks, values = view.scenario_series()
    demand = stored["three"].record.tables["demand"]
    want = demand.pivot_table(index="scenario", columns="week", values="value", aggfunc="sum")
    assert axis == "week" and list(weeks) == list(range(1, 13))
    np.testing.assert_array_equal(values, want.loc[list(view.scenario_names)].to_numpy())
    fig = F.scenario_data_figure(view)
    for s, label in enumerate(view.scenario_labels):
        line = next(t for t in fig.data if t.name.startswith(f"{label} (p = "))
        np.testing.assert_array_equal(line.y, values[s])
    mean = next(t for t in fig.data if t.name.startswith("Expected"))
    np.testing.assert_allclose(mean.y, view.probabilities @ values, rtol=1e-12)
    sampled = F.scenario_data_figure(stored["sampled"])  # 24 scenarios: quantile bands
    assert {"Demand median", "Demand 5–95 %"} <= {t.name for t in sampled.data}
    assert [p.key for p in run_panels(view)] == ["plan", "scenarios"]  # no convergence: EF


@pytest.mark.solve
def test_convergence_panel_draws_the_stored_history(ph_run):
    table = ph_run.record.tables["convergence"]
    assert len(table) >= 2
    view = RunView(ph_run)
    fig = F.convergence_figure(view)
    bound = next(t for t in fig.data if t.name == "Bound")
    incumbent = next(t for t in fig.data if t.name == "Incumbent")
    np.testing.assert_array_equal(bound.x, table["iteration"].to_numpy())
    for drawn, stored_values in ((bound, table["bound"]), (incumbent, table["incumbent"])):
        want = [v if math.isfinite(v) else None for v in stored_values]
        assert list(drawn.y) == want
    gap = next(t for t in fig.data if t.name == "Relative gap")
    for g, b, i in zip(gap.y, table["bound"], table["incumbent"], strict=True):
        if math.isfinite(b) and math.isfinite(i) and i != b:
            assert g == pytest.approx(abs(i - b) / abs(i), rel=1e-12)
        else:
            assert g is None
    assert fig.layout.yaxis2.type == "log" and "$" in fig.layout.yaxis.title.text
    assert fig.layout.xaxis2.title.text == "iteration"
    page = dashboard_html(ph_run)
    assert 'data-chart="convergence"' in section(page, "convergence")
    # stopped at its 1 % target with the gap open: the header says so, with the gap
    assert ph_run.record.status == "gap_reached"
    assert f"gap target reached (gap {ph_run.record.gap:.2%}, target 1.00%)" in page
    assert '<a href="#convergence">' in page


# ----------------------------------------------------------------------------------------------
# A family's own panels, through the Family hooks


class Shelf(Family):
    """A made-up family whose panels are a table, a chart and one whose key clashes."""

    name = "reports-shelf"

    def panels(self, view):
        return [
            Panel(
                "own-table",
                "Own table",
                None,
                note="A table only.",
                html=f'<table><tr><td data-kpi="own.n" data-value="{view.n_scenarios!r}">'
                f"{view.n_scenarios}</td></tr></table>",
            ),
            Panel("own-chart", "Own chart", go.Figure(go.Bar(x=[1, 2], y=[3, 4]))),
            Panel("plan", "Clashing key", go.Figure(go.Bar(x=[1], y=[1]))),
        ]

    def compare_panels(self, views):
        return [Panel("own-compare", "Own comparison", go.Figure(go.Bar(x=[1], y=[len(views)])))]


@pytest.fixture
def shelf_runs(tmp_path, monkeypatch, stored) -> list[StoredRun]:
    monkeypatch.setitem(family_module._REGISTERED, Shelf.name, Shelf())
    base = stored["tiny"].record
    import dataclasses

    record = dataclasses.replace(base, family=Shelf.name, kpis={"profit": 12.5})
    with ResultsStore(tmp_path / "shelf.db") as store:
        ids = [store.save_run(record), store.save_run(record)]
        return [store.get_run(i) for i in ids]


@pytest.mark.solve
def test_family_panels_come_after_the_generic_ones(shelf_runs):
    page = dashboard_html(shelf_runs[0])
    order = [
        page.index(f'<section id="{key}">')
        for key in ("headline", "plan", "scenarios", "own-table", "own-chart", f"{Shelf.name}-plan")
    ]
    assert order == sorted(order)
    n = shelf_runs[0].record.n_scenarios
    assert f'data-kpi="own.n" data-value="{n}"' in section(page, "own-table")
    assert "A table only." in section(page, "own-table")
    assert 'data-charts="4"' in page  # plan, scenarios, own chart, the renamed clash
    assert page.count('data-chart="plan"') == 1
    compare = compare_html(shelf_runs)
    assert 'data-chart="own-compare"' in compare and 'data-charts="2"' in compare
