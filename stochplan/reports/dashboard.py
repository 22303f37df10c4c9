"""Self-contained HTML dashboards of stored runs (``stochplan dashboard`` / ``stochplan compare``).

A page is ONE HTML file: plotly.js is embedded once, inline (no CDN, opens offline). A run's
page is assembled from parts that know no model family:

1. a header naming the run, and cards of its headline KPIs (those the family's panels do not
   show themselves);
2. the generic panels of :mod:`stochplan.reports.panels`, each only where it applies: the
   first-stage plan (table, and chart for one or two index columns), value of information and
   out-of-sample cost, the objective by scenario or the scenarios' random data, and a
   decomposition's convergence;
3. the family's own panels, ``family.panels(view)``, when the run is of a known family
   (:func:`stochplan.family.stored_family`; a ``value --module`` run has none).

A comparison page puts runs side by side: the runs, their KPIs, their objectives and
out-of-sample costs, then ``family.compare_panels(views)`` when all the runs are of one family.
Everything is drawn from :class:`~stochplan.store.StoredRun` records, i.e. from what the results
database holds.

Machine-checkable values: every KPI figure on the page carries ``data-kpi`` (its stored name,
e.g. ``profit``, ``vss``, ``plan.x.WHEAT``, or a family's table cell such as
``products.A.turnover``) and ``data-value`` (the stored float as Python's ``repr``:
``2476316.0``, ``inf``, ``nan``); on a comparison page also ``data-run``.
``<main data-charts="N">`` says how many charts the page draws, and each chart's container has
``data-chart="KEY"``.

Examples
--------
>>> from stochplan.store import ResultsStore                      # doctest: +SKIP
>>> with ResultsStore("stochplan.db") as store:                    # doctest: +SKIP
...     write_dashboard(store.get_run(1), "run-1.html")
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from stochplan.analysis.recourse import infinite_eev_note
from stochplan.errors import InputError
from stochplan.family import Panel
from stochplan.reports import figures as F
from stochplan.reports.panels import (
    OOS_KPIS,
    VALUE_LABELS,
    comparison_panels,
    esc,
    format_kpi,
    kpi_attrs,
    kpi_kind,
    kpi_label,
    run_panels,
)
from stochplan.reports.text import money, risk_header
from stochplan.reports.view import (
    VALUE_METRICS,
    MissingData,
    RunView,
    config_differences,
    oos_summary,
    run_settings,
)
from stochplan.solve.results import status_text
from stochplan.store import StoredRun

__all__ = [
    "compare_html",
    "dashboard_html",
    "default_compare_path",
    "default_dashboard_path",
    "format_kpi",
    "write_comparison",
    "write_dashboard",
]

# ----------------------------------------------------------------------------------------------
# Page pieces

_CSS = """
:root { --ink: #1d2327; --muted: #5f6b76; --line: #dfe3e8; --bg: #f4f6f8; --card: #fff; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans",
             "DejaVu Sans", sans-serif; }
header.page { background: #1d2b36; color: #fff; padding: 18px 28px 14px; }
header.page h1 { margin: 0 0 8px; font-size: 22px; font-weight: 600; }
header.page dl { display: flex; flex-wrap: wrap; gap: 4px 26px; margin: 0; font-size: 13px; }
header.page dt { color: #a9bccb; display: inline; margin-right: 6px; }
header.page dd { display: inline; margin: 0; font-variant-numeric: tabular-nums; }
nav.toc { position: sticky; top: 0; z-index: 10; background: #fff;
          border-bottom: 1px solid var(--line); padding: 8px 28px; font-size: 13px; }
nav.toc a { color: #0072b2; text-decoration: none; margin-right: 18px; white-space: nowrap; }
nav.toc a:hover { text-decoration: underline; }
main { max-width: 1360px; margin: 0 auto; padding: 18px 24px 40px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
          padding: 16px 20px; margin: 0 0 18px; scroll-margin-top: 48px; }
section h2 { margin: 0 0 4px; font-size: 18px; }
section p.lead { margin: 0 0 12px; color: var(--muted); max-width: 100ch; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 12px; }
.card { border: 1px solid var(--line); border-top: 4px solid #0072b2; border-radius: 8px;
        padding: 10px 14px; background: #fff; min-width: 0; container-type: inline-size; }
.card .label { font-size: 12px; color: var(--muted); text-transform: uppercase;
               letter-spacing: .04em; }
/* the value shrinks with its card (10.5 % of the card's width, 15-24 px) so that
   "$2,995,500.00" stays inside a 200 px card */
.card .value { font-size: clamp(15px, 10.5cqi, 24px); font-weight: 650;
               font-variant-numeric: tabular-nums; margin-top: 2px; white-space: nowrap; }
.card .hint { font-size: 12px; color: var(--muted); margin-top: 2px; }
.card.profit { border-top-color: #000; }
.card.revenue { border-top-color: #a9bccb; }
.card.cost { border-top-color: #d55e00; }
.card.inf .value { color: #d55e00; font-size: 18px; white-space: normal; line-height: 1.9; }
.sharebar { display: flex; height: 22px; border-radius: 4px; overflow: hidden; margin: 14px 0 8px;
            border: 1px solid var(--line); }
.sharebar span { display: block; height: 100%; }
ul.shares { list-style: none; padding: 0; margin: 0; display: flex; flex-wrap: wrap;
            gap: 4px 22px; font-size: 13px; }
ul.shares .swatch, table .swatch { display: inline-block; width: 11px; height: 11px;
            border-radius: 2px; margin-right: 6px; vertical-align: -1px;
            border: 1px solid rgba(0,0,0,.25); }
ul.shares b { font-variant-numeric: tabular-nums; }
.tables { display: grid; grid-template-columns: minmax(0, 1fr); gap: 22px; }
.tables > div.narrow { max-width: 720px; }
.cards + table.kpi, .chart + table.kpi { margin-top: 14px; }
h3 { font-size: 14px; margin: 16px 0 8px; }
table.kpi { border-collapse: collapse; width: 100%; font-size: 13px; }
table.kpi caption { text-align: left; font-weight: 600; margin-bottom: 6px; font-size: 14px; }
table.kpi th, table.kpi td { padding: 6px 10px; border-bottom: 1px solid var(--line); }
table.kpi th { text-align: right; color: var(--muted); font-weight: 600; font-size: 12px;
               background: #f8f9fa; }
table.kpi th:first-child, table.kpi td:first-child { text-align: left; }
table.kpi td { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kpi tr.total td { font-weight: 650; border-top: 2px solid var(--line); }
/* the out-of-sample table's intervals (95 % CI, where feasible, difference) may wrap */
table.kpi.oos td:nth-child(5), table.kpi.oos td:nth-child(n+7) { white-space: normal;
                                                                  min-width: 9em; }
table.kpi td .delta { display: block; color: var(--muted); font-size: 11px; }
table.kpi.runs th, table.kpi.runs td { text-align: left; }
table.kpi th.key, table.kpi td.key { text-align: left; }
.scroll { overflow-x: auto; }
.chart + .scroll, .scroll + p.note { margin-top: 14px; }
.chart { margin-top: 6px; }
p.note { color: var(--muted); font-style: italic; }
footer { max-width: 1360px; margin: 0 auto; padding: 0 24px 30px; color: var(--muted);
         font-size: 12px; }
"""

#: plotly.js options of every chart: no logo, resizes with the window, PNG export at 2x.
_CONFIG = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": ["select2d", "lasso2d"],
}


def _created(stamp: str) -> str:
    try:
        when = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _chart_html(key: str, fig: go.Figure, filename: str) -> str:
    config = dict(
        _CONFIG, toImageButtonOptions={"format": "png", "scale": 2, "filename": f"{filename}-{key}"}
    )
    height = int(fig.layout.height or 500)
    div = pio.to_html(
        fig,
        full_html=False,
        include_plotlyjs=False,
        div_id=f"chart-{key}",
        config=config,
        default_width="100%",
        default_height=f"{height}px",
        validate=True,
    )
    return f'<div class="chart" data-chart="{esc(key)}">{div}</div>'


def _panel_section(panel: Panel, filename: str) -> str:
    chart = _chart_html(panel.key, panel.figure, filename) if panel.figure is not None else ""
    lead = f'<p class="lead">{esc(panel.note)}</p>' if panel.note else ""
    # a family's tables scroll inside their card rather than run past it on a narrow window
    html = f'<div class="scroll">{panel.html}</div>' if "<table" in panel.html else panel.html
    return (
        f'<section id="{esc(panel.key)}"><h2>{esc(panel.title)}</h2>{lead}{chart}{html}'
        "</section>"
    )


def _unique(panels: Sequence[Panel], taken: set[str], prefix: str) -> list[Panel]:
    """The panels with keys not in ``taken`` (a clash gets ``prefix-`` in front)."""
    out = []
    for panel in panels:
        key = panel.key if panel.key not in taken else f"{prefix}-{panel.key}"
        taken.add(key)
        out.append(dataclasses.replace(panel, key=key))
    return out


def _family_panels(view: RunView) -> list[Panel]:
    """The family's panels of the run (none when the run is not of a known family); a family
    that cannot draw from what the run stores gets one note saying why."""
    family = view.family
    if family is None:
        return []
    try:
        return list(family.panels(view))
    except MissingData as err:
        return [
            Panel(
                "family",
                f"{family.name} panels",
                None,
                html=f'<p class="note">Not drawn: {esc(err)}</p>',
            )
        ]


def _shown_kpis(fragments: Sequence[str]) -> set[str]:
    """KPI names some HTML fragment already shows (its ``data-kpi`` attributes)."""
    return {m for f in fragments for m in re.findall(r'data-kpi="([^"]+)"', f)}


def _run_header(view: RunView) -> str:
    rec = view.record
    gap = rec.gap
    seed = "" if rec.seed is None else f", seed {rec.seed}"
    items = [
        ("run", str(view.run_id)),
        ("family", rec.family),
        ("instance", rec.instance),
        ("scenarios", f"{rec.scenarios} ({rec.n_scenarios}{seed})"),
    ]
    if view.model_kind:
        items.append(("model", view.model_kind))
    risk = risk_header(rec.config, rec.kpis)
    if risk is not None:
        items.append(("risk measure", risk["label"]))
    items += [
        ("method", f"{rec.method.upper()} with HiGHS"),
        ("status", status_text(rec.status, gap, rec.config.get("solve_info", {}).get(
            "rel_gap_target"))),
        ("objective", money(rec.objective) if rec.objective is not None else "n/a"),
        ("gap", f"{gap:.4%}" if gap is not None and math.isfinite(gap) else "n/a"),
        ("created", _created(view.created)),
    ]
    if rec.parent_run is not None:
        items.append(("derived from run", str(rec.parent_run)))
    if rec.label:
        items.append(("label", rec.label))
    fields = "".join(
        f'<div data-field="{esc(k)}"><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>' for k, v in items
    )
    return (
        f'<header class="page"><h1>stochplan run {view.run_id}: {esc(rec.instance)}, '
        f"{esc(rec.scenarios)}</h1><dl>{fields}</dl></header>"
    )


def _card(name: str, label: str, value: float, hint: str = "", css: str = "") -> str:
    text = format_kpi(name, value)
    inf = " inf" if math.isinf(float(value)) else ""
    hint_html = f'<div class="hint">{hint}</div>' if hint else ""
    return (
        f'<div class="card {esc(css)}{inf}"><div class="label">{esc(label)}</div>'
        f'<div class="value" {kpi_attrs(name, value)}>{esc(text)}</div>{hint_html}</div>'
    )


def family_kpi_label(view: RunView, name: str) -> str:
    """A KPI's label in the run's family's own naming when the family offers one
    (``family.kpi_label(name)``, e.g. a cost share named as the family's charts name that
    category), else the generic :func:`kpi_label`."""
    own = view.family.kpi_label(name) if view.family is not None else None
    return own or kpi_label(name)


def _headline_section(view: RunView, shown: set[str]) -> str | None:
    """Cards of the run's headline KPIs: every stored KPI but the value-of-information and
    out-of-sample ones (their own section) and those a family panel shows; None if none."""
    later = set(VALUE_METRICS) | set(OOS_KPIS) | shown
    kpis = {k: v for k, v in view.kpis.items() if k not in later and not k.startswith("oos_")}
    if not kpis:
        return None
    cards = [_card(k, family_kpi_label(view, k), v, css=k) for k, v in kpis.items()]
    return (
        '<section id="headline"><h2>Headline figures</h2><p class="lead">The KPIs stored with '
        "the run, expected over its scenarios.</p>"
        f'<div class="cards">{"".join(cards)}</div></section>'
    )


def _page(
    title: str, header: str, nav: list[tuple[str, str]], body: list[str], n_charts: int, footer: str
) -> str:
    links = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t in nav)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f'<meta name="generator" content="stochplan {esc(_version())}">',
            f"<title>{esc(title)}</title>",
            f"<style>{_CSS}</style>",
            # plotly.js, inline and only once: the page works offline.
            f'<script type="text/javascript">{get_plotlyjs()}</script>',
            "</head>",
            "<body>",
            header,
            f'<nav class="toc">{links}</nav>',
            f'<main data-charts="{n_charts}">',
            *body,
            "</main>",
            f"<footer>{footer}</footer>",
            "</body>",
            "</html>",
        ]
    )


def _version() -> str:
    from stochplan import __version__

    return __version__


def _value_section(view: RunView, value_chart: str, oos_chart: str) -> str | None:
    values = view.value_metrics
    oos_kpis = {k: view.kpis[k] for k in OOS_KPIS if k in view.kpis}
    if not values and view.oos is None and not oos_kpis:
        return None
    maximise = view.sense == "max"
    parts = ['<section id="value"><h2>Value of information and out-of-sample cost</h2>']
    if maximise:
        parts.append(
            '<p class="lead">Objective in $, higher is better (maximised). VSS = RP − '
            "EEV is what planning for the scenarios gains over planning for their "
            "average; EVPI = WS − RP is the most perfect forecasts could add.</p>"
        )
    else:
        parts.append(
            '<p class="lead">Costs in $, lower is better. VSS = EEV − RP is what '
            "planning for the scenarios saves over planning for their average; "
            "EVPI = RP − WS is the most perfect forecasts could save. "
            "infeasible (+inf): the mean-value plan has no feasible recourse in some "
            "scenario.</p>"
        )
    measure = view.record.config.get("value", {}).get("measure", "expectation")
    if values and measure != "expectation":
        parts.append(f'<p class="note" id="value-measure">Under the risk measure '
                     f"{esc(measure)}: RP, EEV and WS are values of that measure (the mean-value "
                     "plan and the wait-and-see values evaluated under it), not expected "
                     "costs; EV is the mean-value problem's own optimum.</p>")
    if values:
        cards = []
        for key, value in values.items():
            label, hint = VALUE_LABELS[key]
            if maximise and key in ("vss", "evpi"):
                hint = {
                    "vss": "value of the stochastic solution, RP − EEV",
                    "evpi": "expected value of perfect information, WS − RP",
                }[key]
            cards.append(_card(key, label, value, hint=esc(hint)))
        parts.append(f'<div class="cards">{"".join(cards)}</div>')
        names, probability = view.eev_infeasible
        remedy = view.family.recourse_remedy if view.family is not None else ""
        if names and math.isinf(values.get("eev", 0.0)):
            # say what the infinite EEV and VSS mean, and what to do, not just "+inf"
            parts.append(f'<p class="note" id="eev-infeasible">'
                         f"{esc(infinite_eev_note(names, probability, view.sense, remedy))}"
                         "</p>")
    parts.append(value_chart)
    if oos_kpis:
        cards = []
        for k, v in oos_kpis.items():
            if k in ("oos_ci_low", "oos_ci_high"):
                continue
            hint = ""
            if k == "oos_mean" and "oos_ci_low" in oos_kpis and "oos_ci_high" in oos_kpis:
                lo, hi = oos_kpis["oos_ci_low"], oos_kpis["oos_ci_high"]
                hint = (
                    f"95 % CI <span {kpi_attrs('oos_ci_low', lo)}>"
                    f"{esc(format_kpi('oos_ci_low', lo))}</span> – <span "
                    f"{kpi_attrs('oos_ci_high', hi)}>{esc(format_kpi('oos_ci_high', hi))}"
                    "</span>"
                )
            cards.append(_card(k, OOS_KPIS[k][0], v, hint=hint))
        parts.append(
            "<h3>Out of sample: this run's plan on fresh scenarios</h3>"
            f'<div class="cards">{"".join(cards)}</div>'
        )
    parts.append(_evaluated_under(view))
    parts.append(oos_chart)
    if view.oos is not None:
        parts.append(_oos_table(view))
    parts.append("</section>")
    return "".join(parts)


def _evaluated_under(view: RunView) -> str:
    """The line saying which distribution the out-of-sample scenarios came from (empty when
    the run stores no evaluation)."""
    if view.evaluated_under is None:
        return ""
    note = f" {esc(view.evaluation_note)}" if view.evaluation_note else ""
    return (f'<p class="note" id="evaluated-under" data-evaluated-under="'
            f'{esc(view.evaluated_under)}">Evaluated under: {esc(view.evaluated_under)}.'
            f"{note}</p>")


def _oos_table(view: RunView) -> str:
    assert view.oos is not None
    summary = oos_summary(view.oos)
    first = summary["plan"].iloc[0] if len(summary) else ""

    def interval(lo: float, hi: float) -> str:
        return f"{money(lo)} – {money(hi)}" if math.isfinite(lo) and math.isfinite(hi) else "n/a"

    rows = []
    for j, r in enumerate(summary.itertuples(index=False)):
        colour = F.plan_colour(r.plan, j)
        diff = ""
        if j and math.isfinite(r.diff_mean):
            diff = f"{money(r.diff_mean)} ({interval(r.diff_ci_low, r.diff_ci_high)})"
        elif j and not math.isnan(r.diff_mean):
            diff = f"{r.diff_mean:+}"
            if r.both_feasible:  # one plan lacks recourse somewhere: compare where both have it
                diff += (f"; where both are feasible ({r.both_feasible:,} scenarios): "
                         f"{money(r.diff_feasible_mean)} "
                         f"({interval(r.diff_feasible_ci_low, r.diff_feasible_ci_high)})")
        feasible = (
            f"{money(r.feasible_mean)} ({interval(r.feasible_ci_low, r.feasible_ci_high)})"
            if math.isfinite(r.feasible_mean)
            else "n/a"
        )
        key = f"oos.{r.plan}"
        rows.append(
            f'<tr><td><span class="swatch" style="background:{colour}"></span>{esc(r.plan)}</td>'
            f"<td>{r.n:,}</td><td>{r.infeasible:,}</td>"
            f"<td {kpi_attrs(key + '.mean', r.mean)}>{esc(format_kpi('oos_mean', r.mean))}</td>"
            f"<td>{esc(interval(r.ci_low, r.ci_high))}</td>"
            f"<td>{esc(money(r.std) if math.isfinite(r.std) else 'n/a')}</td>"
            f"<td>{esc(feasible)}</td><td>{esc(diff)}</td></tr>"
        )
    return (
        '<div class="scroll" data-fit="oos"><table class="kpi oos">'
        "<caption>Out-of-sample cost per plan (95 % CI: Student t, mean ± "
        "t<sub>0.975, n−1</sub> s/√n; "
        f"difference: paired, scenario by scenario, to {esc(first)}, leaving out scenarios "
        "where both are infeasible)</caption><thead><tr><th>Plan</th>"
        "<th>Scenarios</th><th>Infeasible</th><th>Mean cost</th><th>95 % CI</th>"
        "<th>Std. dev.</th><th>Mean where feasible (95 % CI)</th>"
        f"<th>Difference to {esc(first)} (95 % CI)</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )


def _footer(views: Sequence[RunView], db: str | None) -> str:
    where = f" in {esc(db)}" if db else ""
    runs = ", ".join(str(v.run_id) for v in views)
    return (
        f"Drawn by stochplan {esc(_version())} from the results database{where} (run "
        f"{esc(runs)}), not from live solver objects: redraw any time with "
        "<code>stochplan dashboard RUN</code>. Colours: Okabe–Ito palette."
    )


# ----------------------------------------------------------------------------------------------
# Pages


def dashboard_html(stored: StoredRun, db: str | None = None) -> str:
    """The dashboard of one stored run, of any family, as one self-contained HTML page.

    Parameters
    ----------
    stored : StoredRun
        The run, as read from the results store.
    db : str, optional
        The database it came from, named in the footer.
    """
    view = RunView(stored)
    filename = f"stochplan-run-{view.run_id}"
    generic = run_panels(view)
    taken = {"headline", "value", *(p.key for p in generic)}
    family = _unique(_family_panels(view), taken, view.record.family)

    value_chart = oos_chart = ""
    if any(k in view.value_metrics for k in ("rp", "ev", "eev", "ws")):
        value_chart = _chart_html("value", F.value_figure(view), filename)
    if view.oos is not None:
        oos_chart = _chart_html("oos", F.oos_figure(view), filename)
    value = _value_section(view, value_chart, oos_chart)

    headline = _headline_section(view, _shown_kpis([p.html for p in family]))
    body = [headline] if headline is not None else []
    nav = [("headline", "Headline")] if headline is not None else []
    first, rest = [p for p in generic if p.key == "plan"], [p for p in generic if p.key != "plan"]
    for panel in first:
        body.append(_panel_section(panel, filename))
        nav.append((panel.key, panel.title))
    if value is not None:
        body.append(value)
        nav.append(("value", "Value of information"))
    for panel in [*rest, *family]:
        body.append(_panel_section(panel, filename))
        nav.append((panel.key, panel.title))
    n_charts = sum(p.figure is not None for p in [*generic, *family])
    n_charts += bool(value_chart) + bool(oos_chart)
    rec = view.record
    title = f"stochplan run {view.run_id}: {rec.instance}, {rec.scenarios}"
    return _page(title, _run_header(view), nav, body, n_charts, _footer([view], db))


def compare_html(runs: Sequence[StoredRun], db: str | None = None) -> str:
    """Two or more stored runs side by side as one self-contained HTML page: the runs, their
    KPIs in one table, their objectives and, where stored, out-of-sample cost distributions;
    then the family's comparison panels when all the runs are of one family that offers them
    (``family.compare_panels(views)``)."""
    if len(runs) < 2:
        raise InputError("runs", [r.id for r in runs], "compare needs two or more runs")
    views = [RunView(r) for r in runs]
    filename = "stochplan-compare-" + "-".join(str(v.run_id) for v in views)
    colours = F.run_colours(views)
    panels = comparison_panels(views)
    under = "; ".join(f"run {v.run_id} evaluated under: {v.evaluated_under}"
                      for v in views if v.evaluated_under is not None)
    panels = [dataclasses.replace(p, note=f"{p.note} {under}.") if p.key == "oos" and under
              else p for p in panels]
    families = {v.record.family for v in views}
    family = views[0].family if len(families) == 1 else None
    compare = getattr(family, "compare_panels", None)
    if compare is not None:
        taken = {"runs", "kpis", *(p.key for p in panels)}
        panels += _unique(compare(views), taken, views[0].record.family)
    plans = plan_differences_panel(views)
    if plans is not None:
        panels += _unique([plans], {"runs", "kpis", *(p.key for p in panels)}, "generic")

    instances = sorted({v.record.instance for v in views})
    warn = ""
    if len(instances) > 1:
        warn = (
            f'<p class="note">These runs are of different instances ({esc(", ".join(instances))}'
            "): compare with care.</p>"
        )
    body = [_runs_table(views, colours, warn, _differences_html(views, colours)),
            _compare_kpis(views)]
    body += [_panel_section(p, filename) for p in panels]
    nav = [("runs", "Runs"), ("kpis", "KPIs")] + [(p.key, p.title) for p in panels]
    n_charts = sum(p.figure is not None for p in panels)
    ids = ", ".join(str(v.run_id) for v in views)
    header = (
        f'<header class="page"><h1>stochplan: runs {esc(ids)} compared</h1><dl>'
        + "".join(
            f"<div><dt>run {v.run_id}</dt><dd>{esc(v.record.instance)}, "
            f"{esc(v.record.scenarios)}, {esc(status_text(v.record.status))}</dd></div>"
            for v in views
        )
        + "</dl></header>"
    )
    return _page(f"stochplan: runs {ids} compared", header, nav, body, n_charts, _footer(views, db))


#: Plan entries listed by :func:`plan_differences_panel`.
PLAN_DIFFERENCES = 20


def plan_differences_panel(views: Sequence[RunView]) -> Panel | None:
    """How the runs' first-stage plans differ, for any family: the entries that differ most
    (``variable[index]``, largest range first, with each run's value and the difference to
    the first run) and how many differ in all; one line when the plans are identical. None
    when a run stores no plan. (Two points of a ``stochplan frontier``, say, show here what
    the safer plan does differently.)"""
    from stochplan.analysis.frontier import plan_entries
    from stochplan.reports.panels import _plan_number

    if any(v.record.plan.empty for v in views):
        return None
    entries = plan_entries({str(v.run_id): v.record.plan for v in views})
    values = entries.to_numpy(float)
    with np.errstate(invalid="ignore"):
        differs = ~np.isclose(np.nanmax(values, axis=1), np.nanmin(values, axis=1),
                              rtol=1e-9, atol=1e-9) | np.isnan(values).any(axis=1)
    changed = entries[differs]
    first = views[0]
    if changed.empty:
        html = ('<p class="note" data-plan-differences="0">The first-stage plans are the same '
                f"in all runs ({len(entries):,} entries).</p>")
    else:
        head = "".join(f"<th>{esc(v.short_name)}</th>" for v in views)
        rows = []
        for entry, row in changed.head(PLAN_DIFFERENCES).iterrows():
            cells = []
            for v in views:
                value = float(row[str(v.run_id)])
                delta = ""
                base = float(row[str(first.run_id)])
                if v is not first and math.isfinite(value) and math.isfinite(base) \
                        and value != base:
                    sign = "+" if value > base else "−"
                    delta = (f'<span class="delta">{sign}{esc(_plan_number(abs(value - base)))}'
                             f" vs {esc(first.short_name)}</span>")
                # data-plan-run, not data-run: a comparison's data-run cells are its KPIs
                cells.append(f"<td {kpi_attrs(f'plan.{entry}', value)} "
                             f'data-plan-run="{v.run_id}">'
                             f"{esc(_plan_number(value))}{delta}</td>")
            rows.append(f'<tr><td class="key">{esc(entry)}</td>{"".join(cells)}</tr>')
        shown = min(len(changed), PLAN_DIFFERENCES)
        html = (f'<p class="note" data-plan-differences="{len(changed)}">{len(changed):,} of '
                f"{len(entries):,} entries differ; the {shown} that differ most:</p>"
                '<div class="scroll"><table class="kpi"><thead><tr><th class="key">Entry</th>'
                f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")
    return Panel("plan-differences", "First-stage plans: what differs", None, html=html,
                 note="The here-and-now decisions of the runs, entry by entry (variable and "
                 "index), the largest differences first.")


def _differences_html(views: Sequence[RunView], colours: dict[int, str]) -> str:
    """What differs between the runs' stored configurations (:func:`config_differences`), as
    a table, or one line saying they were computed alike."""
    diff = config_differences(list(views))
    n_settings = len(run_settings(views[0]))
    if diff.empty:
        return (f'<p class="note" id="differences">The runs were computed from the same '
                f"configuration ({n_settings} settings): instance, scenarios and seed, model, "
                "method and solver options.</p>")
    head = "".join(
        f'<th><span class="swatch" style="background:{colours[v.run_id]}"></span>'
        f"run {v.run_id}</th>" for v in views
    )
    rows = []
    for rec in diff.to_dict("records"):
        cells = "".join(f"<td>{esc(str(rec[f'run {v.run_id}']))}</td>" for v in views)
        rows.append(f'<tr data-setting="{esc(rec["setting"])}"><td class="key">'
                    f"{esc(rec['setting'])}</td>{cells}</tr>")
    same = n_settings - len(diff)
    return (
        '<h3 id="differences">What differs between the runs</h3>'
        '<div class="scroll"><table class="kpi runs diff"><thead><tr><th>Setting</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        f'<p class="note">Every other stored setting ({max(same, 0)}) is the same in all runs.'
        "</p>"
    )


def _runs_table(views: Sequence[RunView], colours: dict[int, str], warn: str,
                differences: str = "") -> str:
    rows = []
    for v in views:
        rec = v.record
        gap = f"{rec.gap:.4%}" if rec.gap is not None and math.isfinite(rec.gap) else "n/a"
        objective = money(rec.objective) if rec.objective is not None else "n/a"
        rows.append(
            f'<tr data-run="{v.run_id}"><td><span class="swatch" style="background:'
            f'{colours[v.run_id]}"></span>run {v.run_id}</td><td>{esc(rec.family)}</td>'
            f"<td>{esc(rec.instance)}</td><td>{esc(rec.scenarios)}</td>"
            f"<td>{rec.n_scenarios:,}</td><td>{esc(v.model_kind or '—')}</td>"
            f"<td>{esc(rec.method.upper())}</td><td>{esc(status_text(rec.status))}</td>"
            f"<td>{esc(objective)}"
            f"</td><td>{gap}</td><td>{esc(_created(v.created))}</td><td>{esc(rec.label)}</td>"
            "</tr>"
        )
    return (
        '<section id="runs"><h2>Runs</h2>' + warn
        + '<div class="scroll"><table class="kpi runs"><thead><tr>'
        "<th>Run</th><th>Family</th><th>Instance</th><th>Scenarios</th><th>n</th><th>Model</th>"
        "<th>Method</th><th>Status</th><th>Objective</th><th>Gap</th><th>Created</th>"
        f"<th>Label</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        f"{differences}</section>"
    )


def _compare_kpis(views: Sequence[RunView]) -> str:
    """Every KPI of every run, one row each: headline ones first (in the first run's order),
    then value of information, then out of sample; differences against the first run."""
    later = set(VALUE_METRICS) | set(OOS_KPIS)
    names: list[str] = []
    for v in views:
        names += [
            k for k in v.kpis if k not in later and not k.startswith("oos_") and k not in names
        ]
    names += [k for k in VALUE_METRICS if any(k in v.kpis for v in views)]
    for v in views:
        names += [k for k in v.kpis if k not in names]

    def difference(name: str, d: float) -> str:
        sign = "+" if d >= 0 else "−"
        kind = kpi_kind(name)
        if kind == "money":
            return f"{sign}{money(abs(d))}"
        if kind in ("percent", "share"):
            return f"{sign}{100 * abs(d):.2f} pts"
        return f"{sign}{abs(d):,.6g}"

    first = views[0]
    rows = []
    for name in names:
        cells = []
        for v in views:
            if name not in v.kpis:
                cells.append("<td>—</td>")
                continue
            value = float(v.kpis[name])
            delta = ""
            base = first.kpis.get(name)
            if v is not first and base is not None and math.isfinite(value) and math.isfinite(base):
                text = difference(name, value - float(base))
                delta = f'<span class="delta">{esc(text)} vs run {first.run_id}</span>'
            cells.append(
                f"<td {kpi_attrs(name, value, v.run_id)}>{esc(format_kpi(name, value))}{delta}</td>"
            )
        rows.append(f"<tr><td>{esc(family_kpi_label(views[0], name))}</td>{''.join(cells)}</tr>")
    head = "".join(f"<th>{esc(v.short_name)}</th>" for v in views)
    under = "; ".join(f"run {v.run_id} evaluated under: {v.evaluated_under}"
                      for v in views if v.evaluated_under is not None)
    under_html = (f'<p class="note" id="evaluated-under">Out-of-sample KPIs: {esc(under)}.</p>'
                  if under else "")
    return (
        '<section id="kpis"><h2>KPIs</h2><p class="lead">Expected over each run\'s '
        'scenarios; differences are against the first run.</p><div class="scroll">'
        '<table class="kpi"><thead><tr>'
        f"<th>KPI</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        f"{under_html}</section>"
    )


# ----------------------------------------------------------------------------------------------
# Files


def default_dashboard_path(run_id: int) -> Path:
    """``stochplan-run-<id>.html`` in the working directory."""
    return Path(f"stochplan-run-{run_id}.html")


def default_compare_path(run_ids: Sequence[int]) -> Path:
    """``stochplan-compare-<id>-<id>....html`` in the working directory."""
    return Path("stochplan-compare-" + "-".join(str(i) for i in run_ids) + ".html")


def _write(path: str | Path, text: str) -> Path:
    path = Path(path).expanduser()
    if path.is_dir():
        raise InputError("-o", str(path), "is a directory: give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # no half-written page if interrupted
    return path


def write_dashboard(
    stored: StoredRun, path: str | Path | None = None, db: str | None = None
) -> Path:
    """Write :func:`dashboard_html` to ``path`` (default :func:`default_dashboard_path`)."""
    return _write(path or default_dashboard_path(stored.id), dashboard_html(stored, db))


def write_comparison(
    runs: Sequence[StoredRun], path: str | Path | None = None, db: str | None = None
) -> Path:
    """Write :func:`compare_html` to ``path`` (default :func:`default_compare_path`)."""
    target = path or default_compare_path([r.id for r in runs])
    return _write(target, compare_html(runs, db))
