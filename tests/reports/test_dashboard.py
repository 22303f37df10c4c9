"""The HTML pages and the ``dashboard`` / ``compare`` commands, without a browser.

The pages must be self-contained (plotly.js inline once, nothing fetched), carry every stored
KPI in a ``data-kpi``/``data-value`` attribute equal to the stored float, and show it formatted
like the text report.
"""

from __future__ import annotations

import html
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stochplan.cli import main
from stochplan.reports.dashboard import (
    compare_html,
    dashboard_html,
    format_kpi,
    write_dashboard,
)
from stochplan.reports.text import money
from stochplan.reports.view import RunView
from stochplan.store import ResultsStore

pytestmark = pytest.mark.solve  # the session's runs are solved with HiGHS once

KPI = re.compile(
    r'<(\w+)[^>]*?data-kpi="([^"]+)" data-value="([^"]+)"(?: data-run="(\d+)")?'
    r"[^>]*>(.*?)</\1>",
    re.DOTALL,
)


def kpi_cells(page: str) -> list[tuple[str, float, int | None, str]]:
    """(name, value, run, text) of every element with a data-kpi."""
    out = []
    for _, name, value, run, inner in KPI.findall(page):
        text = html.unescape(re.sub(r"<[^>]+>", "", inner.split("<span")[0])).strip()
        out.append((html.unescape(name), float(value), int(run) if run else None, text))
    return out


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.fixture(scope="module")
def page(stored) -> str:
    return dashboard_html(stored["three"], db="runs.db")


def test_page_is_self_contained(page):
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("* plotly.js v") == 1  # the bundle, inline, once
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=", page)
    body = page[page.index("</head>") :]  # everything after the inline plotly.js
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", body)  # no URL at all
    # plan + scenarios (generic), value of information + out-of-sample, and the family's 5
    assert 'data-charts="9"' in page


def test_every_stored_kpi_is_on_the_page_with_its_exact_value(page, stored):
    rec = stored["three"].record
    cells = kpi_cells(page)
    headline = {name: (value, text) for name, value, _, text in cells if "." not in name}
    assert set(headline) == set(rec.kpis)
    for name, stored_value in rec.kpis.items():
        value, text = headline[name]
        assert same(value, stored_value), name
        assert text == format_kpi(name, stored_value), name
    assert headline["profit"] == (2476316.0, "$2,476,316.00")
    assert headline["eev"] == (math.inf, "infeasible (+inf)")
    assert headline["evpi"][1] == "$120,118.50"


def test_product_table_values_equal_the_stored_table(page, stored):
    table = stored["three"].record.tables["products"]
    cells = {name: (value, text) for name, value, _, text in kpi_cells(page)}
    for row in table.to_dict("records"):
        p = row["product"]
        for col in (
            "total_demand",
            "units_produced",
            "turnover",
            "avg_unit_cost",
            "profit_margin",
            "revenue",
            "cost",
            "profit",
        ):
            value, _ = cells[f"products.{p}.{col}"]
            assert value == row[col], (p, col)
    # formatted like the text report
    assert cells["products.A.total_demand"][1] == "2,829.5"
    assert cells["products.A.units_produced"][1] == "3,045"
    assert cells["products.A.turnover"][1] == "8.56"
    assert cells["products.A.avg_unit_cost"][1] == "$51.09"
    assert cells["products.A.profit_margin"][1] == "65.9%"
    comp = stored["three"].record.tables["composition"]
    for row in comp.to_dict("records"):
        value, text = cells[f"composition.{row['category']}.cost"]
        assert value == row["cost"] and text == money(row["cost"])


def test_header_names_the_run(page, stored):
    run = stored["three"]
    for field in (
        "run",
        "instance",
        "scenarios",
        "method",
        "status",
        "objective",
        "gap",
        "created",
    ):
        assert f'data-field="{field}"' in page
    rec = run.record
    assert rec.n_scenarios == 3
    seed = "" if rec.seed is None else f", seed {rec.seed}"
    assert "$564,471.50" in page and f"{rec.scenarios} (3{seed})" in page
    assert "EF with HiGHS" in page and "0.0000%" in page
    assert run.created[:10] in page


def test_value_section_only_when_stored(stored):
    tiny = dashboard_html(stored["tiny"])
    assert 'id="value"' not in tiny and 'data-kpi="rp"' not in tiny
    assert 'data-charts="7"' in tiny  # plan, scenarios and the family's 5
    sampled = dashboard_html(stored["sampled"])
    assert 'id="value"' in sampled and 'data-chart="value"' in sampled
    assert 'data-chart="oos"' not in sampled


def test_run_without_production_tables_still_renders(stored):
    """A run of no known family with no plan and no scenario tables: what applies is drawn,
    the rest is left out (no "not drawn" notes)."""
    page = dashboard_html(stored["bare"])
    assert "not-drawn" not in page and "Not drawn" not in page
    assert 'data-charts="1"' in page  # the value-of-information chart
    assert 'data-kpi="vss" data-value="1150.0"' in page
    assert 'id="plan"' not in page and 'id="scenarios"' not in page


def test_compare_page_puts_runs_side_by_side(stored):
    runs = [stored["three"], stored["sampled"]]
    page = compare_html(runs)
    cells = kpi_cells(page)
    for run in runs:
        mine = {name: value for name, value, r, _ in cells if r == run.id}
        assert set(mine) == set(run.record.kpis)
        for name, value in run.record.kpis.items():
            assert same(mine[name], value), (run.id, name)
    for key in ("objective", "oos"):  # generic: for any runs
        assert f'data-chart="{key}"' in page
    # the family's comparison charts, all the runs being of one family
    family = RunView(runs[0]).family
    assert family is not None
    panels = family.compare_panels([RunView(r) for r in runs])
    assert [p.key for p in panels] == ["costs", "production", "profit"]
    for panel in panels:
        assert f'data-chart="{panel.key}"' in page
    assert page.count("* plotly.js v") == 1
    with pytest.raises(Exception, match="two or more"):
        compare_html(runs[:1])


def test_write_dashboard_default_path(tmp_path, monkeypatch, stored):
    monkeypatch.chdir(tmp_path)
    path = write_dashboard(stored["tiny"])
    assert path == Path(f"stochplan-run-{stored['tiny'].id}.html")
    assert (tmp_path / path).read_text().startswith("<!DOCTYPE html>")
    assert not list(tmp_path.glob(".*.tmp"))


# ----------------------------------------------------------------------------------------------
# Commands


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_dashboard_command_writes_and_prints_the_path(tmp_path, monkeypatch, capsys, report_db):
    monkeypatch.chdir(tmp_path)
    run = report_db.ids["tiny"]
    code, out, err = run_cli(capsys, "dashboard", str(run), "--db", str(report_db.path))
    assert code == 0, err
    path = tmp_path / f"stochplan-run-{run}.html"
    assert out.strip() == str(path.resolve()) and path.exists()
    code, out, err = run_cli(
        capsys, "dashboard", "last", "--db", str(report_db.path), "-o", "sub/last.html"
    )
    assert code == 0, err
    assert out.strip() == str((tmp_path / "sub" / "last.html").resolve())
    newest = max(report_db.ids.values())
    assert f"stochplan run {newest}:" in (tmp_path / "sub" / "last.html").read_text()


def test_compare_command(tmp_path, monkeypatch, capsys, report_db):
    monkeypatch.chdir(tmp_path)
    a, b = report_db.ids["three"], report_db.ids["sampled"]
    code, out, err = run_cli(capsys, "compare", str(a), str(b), "--db", str(report_db.path))
    assert code == 0, err
    assert Path(out.strip()) == (tmp_path / f"stochplan-compare-{a}-{b}.html").resolve()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["dashboard", "999"], "run = 999: no such run in"),
        (["compare", "1", "999"], "run = 999: no such run in"),
        (["compare", "1", "1"], "compare needs two or more different runs"),
        (["compare", "1"], "compare needs two or more different runs"),
        (["dashboard", "x"], "invalid run 'x'"),
        (["dashboard", "0"], "run ids start at 1"),
    ],
)
def test_bad_runs_are_one_line_errors(capsys, report_db, argv, message):
    code, out, err = run_cli(capsys, *argv, "--db", str(report_db.path))
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stochplan: error:") and message in lines[0]


def test_missing_database_is_a_one_line_error(tmp_path, capsys):
    code, _, err = run_cli(capsys, "dashboard", "1", "--db", str(tmp_path / "none.db"))
    assert code == 2 and "no results database there" in err
    assert not (tmp_path / "none.db").exists()


def test_last_on_an_empty_database(tmp_path, capsys):
    ResultsStore(tmp_path / "empty.db").close()
    code, _, err = run_cli(capsys, "dashboard", "last", "--db", str(tmp_path / "empty.db"))
    assert code == 2 and "no runs in" in err


def test_console_script_help_lists_the_commands():
    proc = subprocess.run(
        [sys.executable, "-m", "stochplan", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0
    assert "dashboard" in proc.stdout and "compare" in proc.stdout


def visible_text(page: str) -> str:
    """The page's text as a reader sees it: no scripts (plotly.js, figure JSON), no tags."""
    body = re.sub(r"<script.*?</script>", " ", page, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def test_each_cost_category_has_one_name_on_every_chart_and_table(page, stored):
    """The composition table, the cost shares, the charts' legends and the text report name a
    category as the family's CATEGORY_LABELS do; the stored identifiers ("Labor (Reg)",
    "Inventory") are not shown to the reader."""
    from stochplan.models.aggregate import panels as A
    from stochplan.models.aggregate.kpis import CATEGORY_LABELS, category_label
    from stochplan.models.aggregate.report import report_text

    labels = set(CATEGORY_LABELS.values())
    assert {c.label for c in A.COST_CATEGORIES} <= labels
    assert category_label("Labor (Reg)") == category_label("labor_reg") == "Regular labour"
    text = visible_text(page)
    comp = stored["three"].record.tables["composition"]
    for category in comp["category"]:
        assert category_label(category) in text
    for stored_name in ("Labor (Reg)", "Labor (OT)", "Hiring/Firing"):
        assert stored_name in set(comp["category"]) and stored_name not in text
    v = RunView(stored["three"])
    cost_traces = {t.name for fig in (A.financials_figure(v), A.cost_composition_figure(v))
                   for t in fig.data if t.name in labels | set(CATEGORY_LABELS)}
    assert cost_traces and cost_traces <= labels
    report = report_text(v.kpis, dict(stored["three"].record.tables))
    assert "Regular labour" in report and "Labor (Reg)" not in report


def test_compare_page_says_what_differs_between_the_runs(stored):
    """three (named, integer) against sampled (poisson:24, LP): the differences table lists
    the scenario spec, seed and count and the model's integrality with each run's value, and
    nothing that is the same in both; a run against itself has no differences."""
    from stochplan.reports.view import config_differences

    three, sampled = stored["three"], stored["sampled"]
    page = compare_html([three, sampled])
    assert '<h3 id="differences">What differs between the runs</h3>' in page
    diff = config_differences([three, sampled]).set_index("setting")
    a, b = f"run {three.id}", f"run {sampled.id}"
    assert diff.loc["scenarios.spec", a] == three.record.scenarios
    assert diff.loc["scenarios.spec", b] == sampled.record.scenarios == "poisson:24"
    assert diff.loc["scenarios.n", a] == "3" and diff.loc["scenarios.n", b] == "24"
    assert (diff.loc["model.integer", a], diff.loc["model.integer", b]) == ("true", "false")
    assert "instance" not in diff.index and "method" not in diff.index  # the same in both
    assert not any(k.startswith("value.") or k == "db" for k in diff.index)
    for setting in diff.index:
        assert f'data-setting="{html.escape(setting)}"' in page
    assert config_differences([three, three]).empty


def test_compare_page_names_shares_as_the_family_does(stored, monkeypatch):
    """A family's ``kpi_label`` names its KPIs on the pages (the aggregate family's is
    :func:`stochplan.models.aggregate.panels.kpi_label`)."""
    from stochplan.models.aggregate import panels as A

    family = type(RunView(stored["three"]).family)
    monkeypatch.setattr(family, "kpi_label", staticmethod(A.kpi_label), raising=False)
    page = visible_text(compare_html([stored["three"], stored["sampled"]]))
    assert "Share: Regular labour" in page and "Share: labor reg" not in page


def test_infinite_eev_is_explained_on_the_dashboard(tmp_path, capsys, tiny_path):
    """A `value` run whose mean-value plan is infeasible in scen1 (p = 1/2): the value section
    says which scenarios, with what probability, and what to do, next to the +inf cards."""
    import json

    db = str(tmp_path / "v.db")
    assert main(["value", str(tiny_path), "--set", "backorder_fraction=0.0", "--db", db,
                 "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    with ResultsStore(db) as store:
        run = store.get_run(run_id)
    assert RunView(run).eev_infeasible == (("scen1",), 0.5)
    page = dashboard_html(run)
    note = re.search(r'<p class="note" id="eev-infeasible">(.*?)</p>', page, re.DOTALL)
    assert note is not None
    text = html.unescape(note.group(1))
    assert text.startswith("EEV = VSS = +inf: the mean-value plan has no feasible recourse in "
                           "1 scenario(s) (scen1), with probability 50.0%.")
    assert "lost_sales_penalty" in text


def test_finite_eev_has_no_infeasibility_note(stored):
    assert math.isfinite(stored["sampled"].record.kpis["eev"])
    assert 'id="eev-infeasible"' not in dashboard_html(stored["sampled"])


def test_out_of_sample_difference_where_both_plans_are_feasible(page, stored):
    """The mean-value plan lacks recourse in 7 of the out-of-sample scenarios: its difference
    to the stochastic plan reads +inf, then the difference where both plans have recourse,
    with the count, as oos_summary computes them from the stored costs."""
    from stochplan.reports.view import oos_summary

    ev = oos_summary(stored["three"].record.tables["oos_costs"]).iloc[1]
    assert ev["diff_mean"] == math.inf and ev["both_feasible"] == ev["n"] - 7
    cell = (f"+inf; where both are feasible ({ev['both_feasible']:,} scenarios): "
            f"{money(ev['diff_feasible_mean'])} ({money(ev['diff_feasible_ci_low'])} – "
            f"{money(ev['diff_feasible_ci_high'])})")
    assert f"<td>{html.escape(cell)}</td>" in page
