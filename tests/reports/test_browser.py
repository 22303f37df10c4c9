"""The dashboards in a real browser: headless Chromium opens the written files.

Checks: no JavaScript error (uncaught exceptions, failed loads, rejected promises,
console.error), every chart drawn (each plot area holds drawn marks), the KPI figures in the
rendered page equal to the stored ones. A PNG screenshot of each page is kept in
``artifacts/`` (git-ignored) for a person to look at.

Chromium comes from ``scripts/ensure-chromium`` (installs Debian's package as root; the tests
are skipped, with the reason, only where it cannot). Each page is opened twice (DOM, then
screenshot), a few seconds each.
"""

from __future__ import annotations

import html
import math
import re

import pytest

from stochplan.reports.dashboard import format_kpi, write_comparison, write_dashboard
from stochplan.reports.view import RunView

from .conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.solve]

KPI = re.compile(r'data-kpi="([^"]+)" data-value="([^"]+)"(?: data-run="(\d+)")?[^>]*>([^<]*)<')


def check_page(page, expected_charts: int) -> None:
    assert page.errors == [], page.errors
    assert page.spills == [], page.spills  # KPI values and tables stay inside their boxes
    assert "Uncaught" not in page.stderr, page.stderr[-3000:]
    assert len(page.charts) == expected_charts
    for chart in page.charts:
        assert chart["svgs"] >= 1, chart["id"]
        assert chart["width"] > 300 and chart["height"] > 200, chart
        assert chart["traces"] > 0, chart["id"]
        assert chart["areas"], f"{chart['id']} has no plot area"
        for area in chart["areas"]:
            assert area["marks"] > 0, f"{chart['id']}: plot area {area['id']} is empty"
            if not area["overlay"]:
                assert area["width"] > 50 and area["height"] > 50, (chart["id"], area)


def rendered_kpis(dom: str) -> dict[tuple[str, int | None], tuple[float, str]]:
    return {
        (html.unescape(name), int(run) if run else None): (
            float(value),
            html.unescape(text).strip(),
        )
        for name, value, run, text in KPI.findall(dom)
    }


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


# generic: plan, scenarios (+ value, + out-of-sample where stored); the family's: 5
@pytest.mark.parametrize("name, charts", [("three", 9), ("sampled", 8)])
def test_dashboard_in_chromium(chromium, stored, tmp_path, name, charts):
    run = stored[name]
    path = write_dashboard(run, tmp_path / f"run-{name}.html")
    page = chromium.render(path, tmp_path)
    check_page(page, charts)
    shown = rendered_kpis(page.dom)
    for kpi, value in run.record.kpis.items():
        got_value, got_text = shown[(kpi, None)]
        assert same(got_value, value), kpi
        assert got_text == format_kpi(kpi, value), kpi
    assert shown[("products.A.units_produced", None)][0] == float(
        run.record.tables["products"].set_index("product").loc["A", "units_produced"]
    )
    png = chromium.screenshot(
        path, ARTIFACTS / f"dashboard-{name}.png", height=min(max(page.height, 900), 9_000)
    )
    assert png.stat().st_size > 50_000


@pytest.mark.parametrize("name, charts", [("farmer", 3), ("ph_run", 3)])
def test_pages_of_other_runs_in_chromium(chromium, request, tmp_path, name, charts):
    """A bare module's run (plan, value, objective by scenario) and a decomposed run (plan,
    scenarios, convergence; its family's charts besides): every chart drawn, every KPI shown."""
    run = request.getfixturevalue(name)
    path = write_dashboard(run, tmp_path / f"run-{name}.html")
    page = chromium.render(path, tmp_path)
    family = RunView(run).family
    own = len([p for p in family.panels(RunView(run)) if p.figure is not None]) if family else 0
    check_page(page, charts + own)
    shown = rendered_kpis(page.dom)
    for kpi, value in run.record.kpis.items():
        assert same(shown[(kpi, None)][0], value), kpi
    chromium.screenshot(
        path, ARTIFACTS / f"dashboard-{name}.png", height=min(max(page.height, 900), 9_000)
    )


def test_comparison_in_chromium(chromium, stored, tmp_path):
    runs = [stored["three"], stored["sampled"], stored["tiny"]]
    path = write_comparison(runs, tmp_path / "compare.html")
    page = chromium.render(path, tmp_path)
    family = RunView(runs[0]).family
    assert family is not None
    own = family.compare_panels([RunView(r) for r in runs])  # costs, production, profit
    check_page(page, 2 + len(own))  # objective, out-of-sample, the family's
    shown = rendered_kpis(page.dom)
    for run in runs:
        for kpi, value in run.record.kpis.items():
            assert same(shown[(kpi, run.id)][0], value), (run.id, kpi)
    chromium.screenshot(path, ARTIFACTS / "compare.png", height=min(max(page.height, 900), 8000))


@pytest.mark.parametrize("width", [1400, 1000, 760])
def test_cards_and_tables_stay_inside_at_any_width(chromium, stored, tmp_path, width):
    """The KPI cards (six to a row at 1400 px: about 200 px each) and the out-of-sample table
    (eight columns) fit their boxes at a wide, a middling and a narrow window."""
    path = write_dashboard(stored["three"], tmp_path / "three.html")
    page = chromium.render(path, tmp_path, width=width)
    assert page.spills == [], page.spills
    assert 'data-fit="oos"' in page.dom


def test_the_probe_sees_spills(chromium, tmp_path):
    """The layout probe is not blind: a card value wider than its card is reported."""
    page_html = (tmp_path / "spill.html")
    page_html.write_text(
        "<html><head></head><body><section><div class='card' style='width:80px'>"
        "<div class='value' style='white-space:nowrap;overflow:hidden'>$2,995,500,000.00"
        "</div></div></section></body></html>", encoding="utf-8")
    page = chromium.render(page_html, tmp_path)
    assert len(page.spills) == 1 and page.spills[0].startswith("card $2,995,500,000.00")


def test_the_probe_sees_errors_and_empty_charts(chromium, tmp_path):
    """The harness is not vacuous: a thrown error, a failed load and an empty plot area show."""
    import plotly.graph_objects as go
    from plotly.offline import get_plotlyjs

    empty = go.Figure(go.Scatter(x=[], y=[])).to_html(full_html=False, include_plotlyjs=False)
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><script>"
        + get_plotlyjs()
        + "</script></head><body>"
        + empty
        + '<script src="missing.js"></script><script>throw new Error("boom")</script>'
        "</body></html>",
        encoding="utf-8",
    )
    seen = chromium.render(page, tmp_path)
    assert any("boom" in e for e in seen.errors), seen.errors
    assert any("missing.js" in e for e in seen.errors), seen.errors
    assert len(seen.charts) == 1 and seen.charts[0]["areas"][0]["marks"] == 0
