"""The figure builders on stored runs, without a browser.

Each builder is a pure function of a stored run (through RunView): these tests read runs back
from a results database and check traces, axis titles with units, hover values, the colour
conventions shared across figures, fan charts for sampled runs and per-scenario lines for
three-point runs, and that the numbers drawn are the stored ones. The products x weeks figures
are the aggregate family's (``stochplan.models.aggregate.panels``, through its AggregateView);
the generic ones are in ``stochplan.reports.figures``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from scipy import stats

from stochplan.models.aggregate import panels as A
from stochplan.reports import figures as F
from stochplan.reports.view import (
    FAN_THRESHOLD,
    MissingData,
    RunView,
    oos_summary,
    weighted_quantiles,
)

from .conftest import fake_oos

pytestmark = pytest.mark.solve  # the session's runs are solved with HiGHS once

REL = 1e-12


def names(fig: go.Figure) -> list[str]:
    return [t.name for t in fig.data if t.name]


def trace(fig: go.Figure, name: str) -> go.BaseTraceType:
    found = [t for t in fig.data if t.name == name]
    assert found, f"no trace {name!r} in {names(fig)}"
    return found[0]


def colour(t: go.BaseTraceType) -> str:
    """The colour a trace is drawn in: line, marker or fill."""
    if isinstance(t, (go.Bar, go.Histogram, go.Box)):
        return t.marker.color
    if getattr(t, "stackgroup", None):
        return t.line.color
    return t.line.color or t.marker.color


def y_titles(fig: go.Figure) -> set[str]:
    return {
        fig.layout[k].title.text
        for k in fig.layout
        if k.startswith("yaxis") and fig.layout[k].title.text
    }


def assert_hover(fig: go.Figure) -> None:
    """Every visible trace shows its value on hover (a template, or skipped on purpose)."""
    for t in fig.data:
        if t.hoverinfo == "skip" or getattr(t, "mode", None) == "text":
            continue
        assert t.hovertemplate, f"trace {t.name!r} has no hover template"


@pytest.fixture(scope="module")
def views(stored) -> dict[str, A.AggregateView]:
    return {name: A.aggregate_view(run) for name, run in stored.items()}


# ----------------------------------------------------------------------------------------------
# Palette and helpers (no solver needed, but cheap)


def test_okabe_ito_palette_is_used_for_categories_and_categories_are_distinct():
    colours = [c.colour for c in A.COST_CATEGORIES]
    assert len(set(colours)) == len(colours)
    palette = set(F.OKABE_ITO.values()) | {F.GREY}
    assert set(colours) <= palette


def test_scenario_colours_low_med_high_and_distinct():
    got = F.scenario_colours(["low", "med", "high"])
    assert len(set(got.values())) == 3
    many = F.scenario_colours([f"scen{k}" for k in range(FAN_THRESHOLD)])
    assert len(set(many.values())) == FAN_THRESHOLD


def test_plan_colours_stochastic_blue_mean_value_vermillion():
    assert F.plan_colour("stochastic (RP)") == F.OKABE_ITO["blue"]
    assert F.plan_colour("stochastic (run 5)") == F.OKABE_ITO["blue"]
    assert F.plan_colour("mean-value (EV)") == F.OKABE_ITO["vermillion"]


def test_weighted_quantiles_match_numpy_inverted_cdf_with_equal_weights():
    """Property: with equal weights, the weighted quantile is numpy's inverted-CDF quantile."""
    rng = np.random.default_rng(0)
    values = rng.normal(size=(37, 3, 5))
    qs = (0.05, 0.25, 0.5, 0.75, 0.95)
    got = weighted_quantiles(values, np.full(37, 1 / 37), qs)
    want = np.quantile(values, qs, axis=0, method="inverted_cdf")
    np.testing.assert_array_equal(got, want)


def test_weighted_quantiles_respect_weights():
    values = np.array([1.0, 2.0, 3.0])
    assert weighted_quantiles(values, np.array([0.1, 0.1, 0.8]), (0.5,))[0] == 3.0
    assert weighted_quantiles(values, np.array([0.6, 0.2, 0.2]), (0.5,))[0] == 1.0


def test_oos_summary_means_cis_and_paired_difference():
    oos = fake_oos()
    summary = oos_summary(oos).set_index("plan")
    rp = oos.loc[oos["plan"] == "stochastic (RP)", "cost"].to_numpy()
    ev = oos.loc[oos["plan"] == "mean-value (EV)", "cost"].to_numpy()
    row = summary.loc["stochastic (RP)"]
    assert row["mean"] == pytest.approx(rp.mean(), rel=REL)
    half = stats.t.ppf(0.975, len(rp) - 1) * rp.std(ddof=1) / math.sqrt(len(rp))  # Student t
    assert row["ci_high"] - row["mean"] == pytest.approx(half, rel=1e-9)
    row = summary.loc["mean-value (EV)"]
    assert row["infeasible"] == 7 and math.isinf(row["mean"])
    assert row["feasible_mean"] == pytest.approx(ev[np.isfinite(ev)].mean(), rel=REL)
    assert row["diff_mean"] == math.inf  # infeasible where the stochastic plan is not
    # where both plans have recourse: the paired difference over those scenarios alone
    both = np.isfinite(ev) & np.isfinite(rp)
    assert row["both_feasible"] == both.sum() == len(ev) - 7
    diff = ev[both] - rp[both]
    assert row["diff_feasible_mean"] == pytest.approx(diff.mean(), rel=REL)
    half = stats.t.ppf(0.975, both.sum() - 1) * diff.std(ddof=1) / math.sqrt(both.sum())
    assert row["diff_feasible_ci_high"] - row["diff_feasible_mean"] == pytest.approx(half,
                                                                                      rel=1e-9)


def test_paired_difference_where_both_are_feasible_by_hand():
    """Three scenarios, plan b infeasible in the second: the difference is +inf, and where
    both are feasible it is the mean of (5 - 1, 4 - 3) = 2.5, with 2 scenarios. A plan a
    that lacks recourse where b has it, and the reverse, leaves the difference undefined."""
    oos = pd.DataFrame({"plan": ["a"] * 3 + ["b"] * 3, "scenario": [0, 1, 2] * 2,
                        "cost": [1.0, 2.0, 3.0, 5.0, math.inf, 4.0]})
    b = oos_summary(oos).set_index("plan").loc["b"]
    assert b["diff_mean"] == math.inf and b["both_feasible"] == 2
    assert b["diff_feasible_mean"] == 2.5
    half = stats.t.ppf(0.975, 1) * math.sqrt(((4 - 2.5) ** 2 + (1 - 2.5) ** 2) / 1) / math.sqrt(2)
    assert b["diff_feasible_ci_low"] == pytest.approx(2.5 - half, rel=1e-12)
    oos.loc[0, "cost"] = math.inf  # a infeasible in scenario 0, b in scenario 1
    b = oos_summary(oos).set_index("plan").loc["b"]
    assert math.isnan(b["diff_mean"]) and b["both_feasible"] == 1
    assert b["diff_feasible_mean"] == 1.0


# ----------------------------------------------------------------------------------------------
# One run


def test_view_reads_the_stored_pieces(views, stored):
    v = views["three"]
    assert isinstance(v, RunView) and v.family is not None and v.family.name == "aggregate"
    assert v.products == ("A", "B", "C")
    assert v.weeks == tuple(range(1, 13))
    assert v.scenario_labels == ("low", "med", "high")
    assert not v.fan and views["sampled"].fan
    plan = stored["three"].record.plan
    x_a = plan[(plan["variable"] == "X") & (plan["product"] == "A")].sort_values("week")
    np.testing.assert_array_equal(v.plan_arrays["X"][0], x_a["value"].to_numpy())
    assert v.demand.shape == (3, 3, 12)
    assert v.value_metrics["eev"] == math.inf


def test_financials_totals_equal_the_stored_kpis(views, stored):
    v, kpis = views["three"], stored["three"].record.kpis
    fig = A.financials_figure(v)
    rows = 1 + len(v.products)
    assert len([k for k in fig.layout if k.startswith("yaxis")]) == rows
    revenue = [t for t in fig.data if t.name == "Expected revenue"]
    profit = [t for t in fig.data if t.name == "Expected profit"]
    assert len(revenue) == len(profit) == rows
    assert sum(revenue[0].y) == pytest.approx(kpis["revenue"], rel=REL)
    assert sum(profit[0].y) == pytest.approx(kpis["profit"], rel=REL)
    # per-product rows add up to the company row
    np.testing.assert_allclose(np.sum([t.y for t in profit[1:]], axis=0), profit[0].y, rtol=1e-12)
    # costs stacked by category: the categories of the row add up to the stored cost
    cats = [
        t for t in fig.data if isinstance(t, go.Bar) and t.offsetgroup == "cost" and t.xaxis == "x"
    ]
    assert sum(float(np.sum(t.y)) for t in cats) == pytest.approx(kpis["cost"], rel=1e-12)
    titles = [a.text for a in fig.layout.annotations]
    assert "$2,476,316.00" in titles[0]  # the seed's cumulative profit, in the row title
    assert "$ per week" in y_titles(fig)
    assert fig.layout.title.text
    assert_hover(fig)


def test_production_three_point_draws_one_line_per_scenario(views):
    v = views["three"]
    fig = A.production_figure(v)
    per_product = 2 * v.n_scenarios + 1
    assert len(fig.data) == len(v.products) * per_product
    for label in ("low", "med", "high"):
        assert trace(fig, f"Demand ({label})").line.dash == "dot"
        assert trace(fig, f"Inventory ({label})").line.dash == "dash"
    np.testing.assert_array_equal(trace(fig, "Production (first stage)").y, v.plan_arrays["X"][0])
    assert not any("median" in n for n in names(fig))
    assert y_titles(fig) == {"units"}
    assert fig.layout.xaxis3.title.text == "week"
    assert_hover(fig)


def test_production_sampled_run_is_a_fan_chart(views):
    v = views["sampled"]
    assert v.n_scenarios > FAN_THRESHOLD
    fig = A.production_figure(v)
    got = set(names(fig))
    assert {
        "Demand median",
        "Demand 5–95 %",
        "Demand 25–75 %",
        "Inventory median",
        "Inventory 5–95 %",
        "Inventory 25–75 %",
        "Production (first stage)",
    } <= got
    assert not any(n.startswith("Demand (") for n in got)
    assert len(fig.data) == len(v.products) * (2 * 5 + 1)  # 2 bands x 2 bounds + median, x2
    band = trace(fig, "Demand 5–95 %")
    assert band.fill == "tonexty"
    # the median band line is the weighted median of the stored demand
    want = weighted_quantiles(v.demand[:, 0, :], v.probabilities, (0.5,))[0]
    np.testing.assert_array_equal(trace(fig, "Demand median").y, want)
    assert_hover(fig)


def test_scenario_colours_are_the_same_in_every_figure(views):
    v = views["three"]
    production = A.production_figure(v)
    warehouse = A.warehouse_figure(v)
    expected = F.scenario_colours(v.scenario_labels)
    for label in v.scenario_labels:
        assert colour(trace(production, f"Demand ({label})")) == expected[label]
        assert colour(trace(production, f"Inventory ({label})")) == expected[label]
        assert colour(trace(warehouse, f"Footprint ({label})")) == expected[label]


def test_cost_category_colours_are_the_same_in_every_figure(views):
    v = views["three"]
    want = {c.label: c.colour for c in A.COST_CATEGORIES}
    fin = A.financials_figure(v)
    comp = A.cost_composition_figure(v)
    costs = A.compare_costs_figure([v, views["sampled"]])
    for fig in (fin, comp, costs):
        for t in fig.data:
            if t.name in want:
                assert colour(t) == want[t.name], (t.name, fig.layout.title.text)
    bars = next(t for t in comp.data if isinstance(t, go.Bar))
    assert list(bars.marker.color) == [want[label] for label in bars.y]
    # the workforce figure uses the labour and hiring colours for hours and hires
    work = A.workforce_figure(v)
    assert colour(trace(work, "Regular hours used")) == want["Regular labour"]
    assert colour(trace(work, "Overtime hours used")) == want["Overtime labour"]
    assert colour(trace(work, "Hired")) == want["Hiring/firing"]


def test_warehouse_footprint_against_both_capacities(views):
    v = views["three"]
    fig = A.warehouse_figure(v)
    data = v.instance_data
    assert set(trace(fig, "Regular capacity").y) == {data["regular_capacity"]}
    assert set(trace(fig, "Regular + overflow capacity").y) == {
        data["regular_capacity"] + data["overflow_capacity"]
    }
    reg = next(t for t in fig.data if t.name == "Regular warehouse (expected)")
    ovr = next(t for t in fig.data if t.name == "Overflow (expected)")
    assert reg.stackgroup == ovr.stackgroup
    space = v.product_param("space_per_unit")
    want = v.expect((v.recourse["I_reg"] * space[None, :, None]).sum(axis=1))
    np.testing.assert_allclose(reg.y, want, rtol=1e-12)
    # the capacities' row has one axis: no trace there is drawn on another scale
    capacity = trace(fig, "Regular capacity")
    assert {t.yaxis for t in fig.data if t.xaxis == capacity.xaxis} == {capacity.yaxis}
    # each product's units in stock sit on a right axis of the left one's scale
    # (range / space per unit), so the line runs along the top of its stacked footprint
    units = [t for t in fig.data if t.name == "Units in stock (expected, right axis)"]
    assert len(units) == len(v.products)
    for i, line in enumerate(units):
        right = fig.layout[line.yaxis.replace("y", "yaxis")]
        left = fig.layout[right.overlaying.replace("y", "yaxis")]
        assert right.title.text == f"units (x {space[i]:g} space units)"
        assert left.range[0] == right.range[0] == 0.0
        assert right.range[1] == pytest.approx(left.range[1] / space[i], rel=1e-12)
        held = v.expect(v.recourse["I_reg"][:, i, :] + v.recourse["I_ovr"][:, i, :])
        np.testing.assert_allclose(line.y, held, rtol=1e-12)
        stack_top = [t for t in fig.data if t.yaxis == right.overlaying and t.stackgroup]
        top = sum(np.asarray(t.y, dtype=float) for t in stack_top)
        # same height on the page: units / right top == footprint / left top
        np.testing.assert_allclose(np.asarray(line.y) / right.range[1], top / left.range[1],
                                   rtol=1e-9)
        assert max(top) < left.range[1]
    assert "space units" in y_titles(fig)
    assert_hover(fig)


def test_warehouse_sampled_run_draws_a_footprint_band(views):
    fig = A.warehouse_figure(views["sampled"])
    assert {"Footprint median", "Footprint 5–95 %"} <= set(names(fig))
    assert not any(n.startswith("Footprint (") for n in names(fig))


def test_workforce_capacities_hours_and_hires(views):
    v = views["three"]
    fig = A.workforce_figure(v)
    for name in (
        "Hours required",
        "Regular capacity",
        "Maximum with overtime",
        "Regular hours used",
        "Overtime hours used",
        "Units produced (right axis)",
        "Hired",
        "Fired (below zero)",
        "Workers",
    ):
        trace(fig, name)
    hpw = v.instance_data["hours_per_worker"]
    otf = v.instance_data["overtime_fraction"]
    np.testing.assert_allclose(trace(fig, "Regular capacity").y, v.plan_arrays["W"][0] * hpw)
    np.testing.assert_allclose(
        trace(fig, "Maximum with overtime").y, v.plan_arrays["W"][0] * hpw * (1 + otf)
    )
    np.testing.assert_allclose(
        trace(fig, "Hours required").y,
        v.product_param("hours_per_unit")[0] * v.plan_arrays["X"][0],
    )
    assert {"hours", "units", "workers"} <= y_titles(fig)
    units = trace(fig, "Units produced (right axis)")
    assert fig.layout[units.yaxis.replace("y", "yaxis")].overlaying
    assert_hover(fig)


def test_cost_composition_totals_equal_the_stored_composition(views, stored):
    v, rec = views["three"], stored["three"].record
    fig = A.cost_composition_figure(v)
    areas = [t for t in fig.data if getattr(t, "stackgroup", None) == "cost"]
    assert [t.name for t in areas] == [
        "Production (material)",
        "Regular labour",
        "Overtime labour",
        "Hiring/firing",
        "Regular holding",
        "Overflow holding",
        "Backorders",
    ]
    bars = next(t for t in fig.data if isinstance(t, go.Bar))
    assert sum(bars.x) == pytest.approx(rec.kpis["cost"], rel=1e-12)
    comp = rec.tables["composition"].set_index("category")["cost"]
    got = dict(zip(bars.y, bars.x, strict=True))
    assert got["Regular labour"] == pytest.approx(comp["Labor (Reg)"], rel=1e-12)
    assert got["Regular holding"] + got["Overflow holding"] == pytest.approx(
        comp["Inventory"], rel=1e-12
    )
    assert "$" in fig.layout.yaxis.title.text and "$" in fig.layout.xaxis2.title.text
    assert_hover(fig)


def test_value_figure_marks_infinite_eev_and_annotates_vss_and_evpi(views):
    fig = F.value_figure(views["three"])
    texts = [t.text[0] for t in fig.data]
    assert "infeasible (+inf)" in texts
    notes = " ".join(a.text for a in fig.layout.annotations)
    assert "VSS</b> = infeasible (+inf)" in notes
    assert "EVPI</b> = $120,118.50" in notes
    fig = F.value_figure(views["sampled"])
    assert "VSS</b> = $4,321.50" in " ".join(a.text for a in fig.layout.annotations)
    assert "$" in fig.layout.xaxis.title.text


def test_value_and_oos_figures_need_their_stored_results(views):
    with pytest.raises(MissingData):
        F.value_figure(views["tiny"])
    with pytest.raises(MissingData):
        F.oos_figure(views["sampled"])


def test_oos_figure_overlays_histograms_with_means(views):
    fig = F.oos_figure(views["three"])
    hists = [t for t in fig.data if isinstance(t, go.Histogram)]
    assert [h.name for h in hists] == [
        "stochastic (RP)",
        "mean-value (EV) — infeasible in 7 of 200",
    ]
    assert len(hists[1].x) == 193  # the infeasible scenarios are not drawn
    assert fig.layout.barmode == "overlay"
    assert colour(hists[0]).endswith(",0.55)") and "0,114,178" in colour(hists[0])
    means = [t for t in fig.data if isinstance(t, go.Scatter)]
    assert len(means) == 2 and means[0].error_x.array[0] > 0
    assert fig.layout.xaxis.title.text.endswith("$")


def test_compare_figures(views):
    runs = [views["three"], views["sampled"]]
    prod = A.compare_production_figure(runs)
    colours = F.run_colours(runs)
    for v in runs:
        assert colour(trace(prod, f"Production, {v.short_name}")) == colours[v.run_id]
    costs = A.compare_costs_figure(runs)
    stacked = [t for t in costs.data if isinstance(t, go.Bar)]
    totals = np.sum([t.y for t in stacked], axis=0)
    np.testing.assert_allclose(totals, [v.kpis["cost"] for v in runs], rtol=1e-12)
    A.compare_profit_figure(runs)
    fig = F.compare_oos_figure(runs)
    assert len(fig.data) == 2
    with pytest.raises(MissingData):
        F.compare_oos_figure([views["sampled"], views["tiny"]])
    panels = A.compare_panels(runs)
    assert [p.key for p in panels] == ["costs", "production", "profit"]
    assert all(p.figure is not None and p.figure.data for p in panels)


def test_family_panels_of_a_run(views):
    panels = A.panels(views["three"])
    assert [p.key for p in panels] == [
        "metrics",
        "financials",
        "composition",
        "production",
        "warehouse",
        "workforce",
    ]
    assert panels[0].figure is None and 'data-kpi="products.A.turnover"' in panels[0].html
    assert all(p.figure is not None for p in panels[1:])
    # a run without the family's tables: each chart says what it lacks
    bare = A.panels(views["bare"])
    assert all(p.figure is None for p in bare)
    assert all("Not drawn" in p.html for p in bare[1:])


def test_figures_on_the_tiny_instance_straight_from_the_stored_run(stored):
    run = stored["tiny"]  # a StoredRun: the builders wrap it in a RunView themselves
    for build in (
        A.financials_figure,
        A.production_figure,
        A.warehouse_figure,
        A.workforce_figure,
        A.cost_composition_figure,
    ):
        fig = build(run)
        assert fig.data and fig.layout.title.text
    assert A.compare_costs_figure([run, stored["three"]]).data


def test_figures_of_a_run_without_production_tables_raise_missing_data(views):
    v = views["bare"]
    for build in (
        A.financials_figure,
        A.production_figure,
        A.warehouse_figure,
        A.workforce_figure,
        A.cost_composition_figure,
    ):
        with pytest.raises(MissingData):
            build(v)
    assert F.value_figure(v).data  # its value metrics still draw
