"""Self-contained HTML dashboards of stored runs (``stochplan dashboard`` / ``stochplan compare``).

A page is ONE HTML file: plotly.js is embedded once, inline (no CDN, opens offline), followed
by a header naming the run, headline KPI cards, the per-product KPI and cost-composition
tables and the charts of :mod:`stochplan.reports.figures`. Everything is drawn from a
:class:`~stochplan.store.StoredRun`, i.e. from what the results database holds.

Machine-checkable values: every KPI figure on the page carries ``data-kpi`` (its stored name,
e.g. ``profit``, ``products.A.turnover``, ``composition.Production.cost``) and ``data-value``
(the stored float as Python's ``repr``: ``2476316.0``, ``inf``, ``nan``); on a comparison page
also ``data-run``. ``<main data-charts="N">`` says how many charts the page draws, and each
chart's container has ``data-chart="KEY"``.

Examples
--------
>>> from stochplan.store import ResultsStore                      # doctest: +SKIP
>>> with ResultsStore("stochplan.db") as store:                    # doctest: +SKIP
...     write_dashboard(store.get_run(1), "run-1.html")
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from stochplan.errors import InputError
from stochplan.reports import figures as F
from stochplan.reports.text import money
from stochplan.reports.view import VALUE_METRICS, MissingData, RunView, oos_summary
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
# KPI names and formats

#: Headline KPIs: stored name -> (card label, kind). Kinds: money, percent, share, count.
HEADLINE = {
    "profit": ("Expected profit", "money"),
    "revenue": ("Expected revenue", "money"),
    "cost": ("Expected cost", "money"),
    "operating_margin": ("Operating margin", "percent"),
    "fill_rate": ("Fill rate", "percent"),
}
#: Out-of-sample KPIs of the run's own plan, as ``stochplan evaluate`` stores them.
OOS_KPIS = {
    "oos_mean": ("Out-of-sample mean cost", "money"),
    "oos_ci_low": ("95 % CI, low", "money"),
    "oos_ci_high": ("95 % CI, high", "money"),
    "oos_cvar": ("Out-of-sample CVaR", "money"),
    "oos_prob_infeasible": ("P(infeasible)", "percent"),
    "oos_fill_rate": ("Out-of-sample fill rate", "percent"),
    "oos_n": ("Out-of-sample scenarios", "count"),
}
_KINDS = {
    **{k: kind for k, (_, kind) in HEADLINE.items()},
    **{k: kind for k, (_, kind) in OOS_KPIS.items()},
}
#: Value-of-information KPIs: stored name -> (label, explanation).
VALUE_LABELS = {
    "rp": ("RP", "recourse problem: expected cost of the stochastic plan"),
    "ev": ("EV", "mean-value problem: cost of the plan for the average scenario"),
    "eev": ("EEV", "expected cost of the mean-value plan over the scenarios"),
    "ws": ("WS", "wait-and-see: expected cost with perfect information"),
    "vss": ("VSS", "value of the stochastic solution, EEV − RP"),
    "evpi": ("EVPI", "expected value of perfect information, RP − WS"),
}
_SHARE_PREFIX = "share_"


def format_kpi(name: str, value: float) -> str:
    """A KPI as the page shows it (money like the text report, fractions as percentages).

    >>> format_kpi("profit", 2476316.0)
    '$2,476,316.00'
    >>> format_kpi("operating_margin", 0.8143666)
    '81.4%'
    >>> format_kpi("share_labor_reg", 0.79251654)
    '79.25%'
    >>> format_kpi("eev", float("inf"))
    'infeasible (+inf)'
    """
    value = float(value)
    kind = _kind(name)
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        # an infinite money value is an infeasible plan (+inf cost / -inf profit)
        return f"infeasible ({value:+})" if kind == "money" else f"{value:+}"
    if kind == "money":
        return money(value)
    if kind == "percent":
        return f"{value:.1%}"
    if kind == "share":
        return f"{value:.2%}"
    if kind == "count":
        return f"{value:,.0f}"
    return f"{value:,.6g}"


def _kind(name: str) -> str:
    if name in VALUE_METRICS:
        return "money"
    if name.startswith(_SHARE_PREFIX):
        return "share"
    return _KINDS.get(name, "number")


def _share_label(name: str) -> tuple[str, str]:
    """``share_labor_reg`` -> (``Regular labour``, colour)."""
    column = name[len(_SHARE_PREFIX) :]
    aliases = {"inventory": ("Holding (regular + overflow)", F.COST_CATEGORIES[4].colour)}
    for cat in F.COST_CATEGORIES:
        if cat.column == column:
            return cat.label, cat.colour
    return aliases.get(column, (column.replace("_", " ").capitalize(), F.GREY))


def _attr_value(value: float) -> str:
    return repr(float(value))


def _kpi_attrs(name: str, value: float, run_id: int | None = None) -> str:
    run = f' data-run="{run_id}"' if run_id is not None else ""
    return f'data-kpi="{html.escape(name)}" data-value="{_attr_value(value)}"{run}'


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
        padding: 10px 14px; background: #fff; }
.card .label { font-size: 12px; color: var(--muted); text-transform: uppercase;
               letter-spacing: .04em; }
.card .value { font-size: 24px; font-weight: 650; font-variant-numeric: tabular-nums;
               margin-top: 2px; white-space: nowrap; }
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
table.kpi td .delta { display: block; color: var(--muted); font-size: 11px; }
table.kpi.runs th, table.kpi.runs td { text-align: left; }
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


@dataclass(frozen=True)
class _Chart:
    key: str
    title: str
    lead: str
    build: Callable[[], go.Figure]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


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
    return f'<div class="chart" data-chart="{_e(key)}">{div}</div>'


def _sections(charts: Iterable[_Chart], filename: str) -> tuple[list[str], list[tuple[str, str]]]:
    """HTML of each chart's section, and (anchor, title) of those drawn, for the navigation.

    Charts whose data the run does not store are listed in one closing note instead."""
    out, toc, missing = [], [], []
    for chart in charts:
        try:
            fig = chart.build()
        except MissingData as err:
            missing.append(f"<li>{_e(chart.title)}: {_e(err)}</li>")
            continue
        out.append(
            f'<section id="{chart.key}"><h2>{_e(chart.title)}</h2>'
            f'<p class="lead">{chart.lead}</p>{_chart_html(chart.key, fig, filename)}'
            "</section>"
        )
        toc.append((chart.key, chart.title))
    if missing:
        out.append(
            '<section id="not-drawn"><h2>Not drawn</h2><p class="lead">The run does not '
            f'store what these charts need:</p><ul class="note">{"".join(missing)}</ul>'
            "</section>"
        )
    return out, toc


def _page(
    title: str, header: str, nav: list[tuple[str, str]], body: list[str], n_charts: int, footer: str
) -> str:
    links = "".join(f'<a href="#{_e(a)}">{_e(t)}</a>' for a, t in nav)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f'<meta name="generator" content="stochplan {_e(_version())}">',
            f"<title>{_e(title)}</title>",
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


def _run_header(view: RunView) -> str:
    rec = view.record
    gap = rec.gap
    seed = "" if rec.seed is None else f", seed {rec.seed}"
    items = [
        ("run", str(view.run_id)),
        ("instance", rec.instance),
        ("scenarios", f"{rec.scenarios} ({rec.n_scenarios}{seed})"),
        ("model", "integer" if view.integer else "LP relaxation"),
        ("method", f"{rec.method.upper()} with HiGHS"),
        ("status", rec.status),
        ("objective", money(rec.objective) if rec.objective is not None else "n/a"),
        ("gap", f"{gap:.4%}" if gap is not None and math.isfinite(gap) else "n/a"),
        ("created", _created(view.created)),
    ]
    if rec.parent_run is not None:
        items.append(("derived from run", str(rec.parent_run)))
    if rec.label:
        items.append(("label", rec.label))
    fields = "".join(
        f'<div data-field="{_e(k)}"><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>' for k, v in items
    )
    return (
        f'<header class="page"><h1>stochplan run {view.run_id}: {_e(rec.instance)}, '
        f"{_e(rec.scenarios)}</h1><dl>{fields}</dl></header>"
    )


def _card(name: str, label: str, value: float, hint: str = "", css: str = "") -> str:
    text = format_kpi(name, value)
    inf = " inf" if math.isinf(float(value)) else ""
    hint_html = f'<div class="hint">{hint}</div>' if hint else ""
    return (
        f'<div class="card {css}{inf}"><div class="label">{_e(label)}</div>'
        f'<div class="value" {_kpi_attrs(name, value)}>{_e(text)}</div>{hint_html}</div>'
    )


def _headline_section(view: RunView) -> str:
    kpis = view.kpis
    cards = [_card(k, label, kpis[k], css=k) for k, (label, _) in HEADLINE.items() if k in kpis]
    shares = [(k, v) for k, v in kpis.items() if k.startswith(_SHARE_PREFIX)]
    bar, items = [], []
    for name, value in shares:
        label, colour = _share_label(name)
        width = 100 * value if math.isfinite(value) and value > 0 else 0.0
        if width > 0:
            bar.append(
                f'<span style="width:{width:.4f}%;background:{colour}" '
                f'title="{_e(label)}: {_e(format_kpi(name, value))}"></span>'
            )
        items.append(
            f'<li><span class="swatch" style="background:{colour}"></span>{_e(label)} '
            f"<b {_kpi_attrs(name, value)}>{_e(format_kpi(name, value))}</b></li>"
        )
    known = set(HEADLINE) | set(VALUE_METRICS) | set(OOS_KPIS)
    others = [(k, v) for k, v in kpis.items() if k not in known and not k.startswith(_SHARE_PREFIX)]
    other_html = ""
    if others:
        other_html = (
            '<h3>Other stored KPIs</h3><ul class="shares">'
            + "".join(
                f"<li>{_e(k)} <b {_kpi_attrs(k, v)}>{_e(format_kpi(k, v))}</b></li>"
                for k, v in others
            )
            + "</ul>"
        )
    share_html = ""
    if shares:
        share_html = (
            f'<div class="sharebar" role="img" aria-label="cost shares">{"".join(bar)}'
            f'</div><ul class="shares">{"".join(items)}</ul>'
        )
    if not (cards or shares or others):
        return (
            '<section id="headline"><h2>Headline figures</h2><p class="note">The run stores '
            "no headline KPIs.</p></section>"
        )
    return (
        '<section id="headline"><h2>Headline figures</h2><p class="lead">Expected over the '
        "scenarios, for the whole horizon. Revenue is price × expected demand met; cost is "
        "the objective (first stage plus expected recourse); operating margin = profit / "
        "revenue; fill rate = expected demand met / expected demand. The bar shows each "
        "cost category's share of the expected cost.</p>"
        f'<div class="cards">{"".join(cards)}</div>{share_html}{other_html}</section>'
    )


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
            "EVPI = RP − WS is the most perfect demand forecasts could save. "
            "infeasible (+inf): the mean-value plan has no feasible recourse in some "
            "scenario.</p>"
        )
    if values:
        cards = []
        for key, value in values.items():
            label, hint = VALUE_LABELS[key]
            if maximise and key in ("vss", "evpi"):
                hint = {
                    "vss": "value of the stochastic solution, RP − EEV",
                    "evpi": "expected value of perfect information, WS − RP",
                }[key]
            cards.append(_card(key, label, value, hint=_e(hint)))
        parts.append(f'<div class="cards">{"".join(cards)}</div>')
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
                    f"95 % CI <span {_kpi_attrs('oos_ci_low', lo)}>"
                    f"{_e(format_kpi('oos_ci_low', lo))}</span> – <span "
                    f"{_kpi_attrs('oos_ci_high', hi)}>{_e(format_kpi('oos_ci_high', hi))}"
                    "</span>"
                )
            cards.append(_card(k, OOS_KPIS[k][0], v, hint=hint))
        parts.append(
            "<h3>Out of sample: this run's plan on fresh scenarios</h3>"
            f'<div class="cards">{"".join(cards)}</div>'
        )
    parts.append(oos_chart)
    if view.oos is not None:
        parts.append(_oos_table(view))
    parts.append("</section>")
    return "".join(parts)


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
        feasible = (
            f"{money(r.feasible_mean)} ({interval(r.feasible_ci_low, r.feasible_ci_high)})"
            if math.isfinite(r.feasible_mean)
            else "n/a"
        )
        key = f"oos.{r.plan}"
        rows.append(
            f'<tr><td><span class="swatch" style="background:{colour}"></span>{_e(r.plan)}</td>'
            f"<td>{r.n:,}</td><td>{r.infeasible:,}</td>"
            f"<td {_kpi_attrs(key + '.mean', r.mean)}>{_e(format_kpi('oos_mean', r.mean))}</td>"
            f"<td>{_e(interval(r.ci_low, r.ci_high))}</td>"
            f"<td>{_e(money(r.std) if math.isfinite(r.std) else 'n/a')}</td>"
            f"<td>{_e(feasible)}</td><td>{_e(diff)}</td></tr>"
        )
    return (
        '<table class="kpi"><caption>Out-of-sample cost per plan (95 % CI: mean ± 1.96 s/√n; '
        f"difference: paired, scenario by scenario, to {_e(first)}, leaving out scenarios "
        "where both are infeasible)</caption><thead><tr><th>Plan</th>"
        "<th>Scenarios</th><th>Infeasible</th><th>Mean cost</th><th>95 % CI</th>"
        "<th>Std. dev.</th><th>Mean where feasible (95 % CI)</th>"
        f"<th>Difference to {_e(first)} (95 % CI)</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _products_table(view: RunView) -> str:
    if not view.has_table("products"):
        return '<p class="note">Not drawn: the run stores no per-product table.</p>'
    table = view.table("products")
    columns = [  # column, header, format
        ("total_demand", "Expected demand (units)", lambda v: f"{v:,.1f}"),
        ("demand_met", "Demand met (units)", lambda v: f"{v:,.1f}"),
        ("units_produced", "Produced (units)", lambda v: f"{v:,.0f}"),
        ("turnover", "Turnover", lambda v: f"{v:.2f}"),
        ("avg_unit_cost", "Avg unit cost", money),
        ("price", "Price", money),
        ("profit_margin", "Profit margin", lambda v: f"{v:.1%}"),
        ("revenue", "Revenue", money),
        ("cost", "Cost", money),
        ("profit", "Profit", money),
    ]
    columns = [c for c in columns if c[0] in table]
    head = "".join(f"<th>{_e(h)}</th>" for _, h, _ in columns)
    rows = []
    for rec in table.to_dict("records"):
        p = str(rec["product"])
        label = view.product_labels.get(p, p)
        cells = []
        for col, _, fmt in columns:
            value = float(rec[col])
            text = (
                fmt(value) if math.isfinite(value) else ("n/a" if math.isnan(value) else str(value))
            )
            cells.append(f"<td {_kpi_attrs(f'products.{p}.{col}', value)}>{_e(text)}</td>")
        rows.append(f"<tr><td>{_e(label)}</td>{''.join(cells)}</tr>")
    return (
        '<table class="kpi"><caption>Per product (expected over scenarios)</caption>'
        f"<thead><tr><th>Product</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table>"
    )


def _composition_table(view: RunView) -> str:
    if not view.has_table("composition"):
        return ""
    comp = view.table("composition")
    colours: dict[str, str] = {}
    for cat in F.COST_CATEGORIES:
        colours.setdefault(cat.composition, cat.colour)
    rows = []
    for rec in comp.to_dict("records"):
        category = str(rec["category"])
        cost, pct = float(rec["cost"]), float(rec["percent"])
        rows.append(
            f'<tr><td><span class="swatch" style="background:{colours.get(category, F.GREY)}">'
            f"</span>{_e(category)}</td>"
            f"<td {_kpi_attrs(f'composition.{category}.cost', cost)}>{_e(money(cost))}</td>"
            f"<td {_kpi_attrs(f'composition.{category}.percent', pct)}>{pct:.2f}%</td></tr>"
        )
    total = float(comp["cost"].sum())
    rows.append(f'<tr class="total"><td>Total</td><td>{_e(money(total))}</td><td>100.00%</td></tr>')
    return (
        '<table class="kpi"><caption>Cost composition (expected, whole horizon)</caption>'
        "<thead><tr><th>Category</th><th>Total cost</th><th>Share</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _footer(views: Sequence[RunView], db: str | None) -> str:
    where = f" in {_e(db)}" if db else ""
    runs = ", ".join(str(v.run_id) for v in views)
    return (
        f"Drawn by stochplan {_e(_version())} from the results database{where} (run "
        f"{_e(runs)}), not from live solver objects: redraw any time with "
        "<code>stochplan dashboard RUN</code>. Colours: Okabe–Ito palette."
    )


# ----------------------------------------------------------------------------------------------
# Pages


def dashboard_html(stored: StoredRun, db: str | None = None) -> str:
    """The dashboard of one stored run as one self-contained HTML page.

    Parameters
    ----------
    stored : StoredRun
        The run, as read from the results store.
    db : str, optional
        The database it came from, named in the footer.
    """
    view = RunView(stored)
    filename = f"stochplan-run-{view.run_id}"
    charts = [
        _Chart(
            "financials",
            "Revenue, cost and profit by week",
            "Expected over the scenarios, in $ per week: revenue bars (grey) next to cost "
            "bars stacked by category, and the profit line; first for all products, then per "
            "product, with the totals in each title.",
            lambda: F.financials_figure(view),
        ),
        _Chart(
            "composition",
            "Cost composition",
            "Expected cost by category: by week (stacked areas) and over the whole horizon "
            "with each category's share. Each category keeps its colour in every chart.",
            lambda: F.cost_composition_figure(view),
        ),
        _Chart(
            "production",
            "Production against demand",
            (
                "The first-stage production plan (black) against demand, with the inventory it "
                "leaves (units on hand at the end of each week, regular plus overflow). "
                + (
                    "Sampled scenario set: bands hold 90 % and 50 % of the probability, the line "
                    "is the median."
                    if view.fan
                    else "One colour per scenario; dotted: demand, dashed: inventory."
                )
            ),
            lambda: F.production_figure(view),
        ),
        _Chart(
            "warehouse",
            "Warehouse footprint",
            "Space used (space per unit × units held), expected over the scenarios: regular "
            "warehouse and overflow stacked, against both capacities (dashed: regular, dotted: "
            "regular + overflow), with each scenario's total footprint; units in stock on the "
            "right axis.",
            lambda: F.warehouse_figure(view),
        ),
        _Chart(
            "workforce",
            "Workforce and labour hours",
            "Per product: hours required by the plan (bars) against regular capacity and the "
            "maximum with overtime, the regular and overtime hours scheduled, units produced "
            "(right axis); below, the workforce with hires and fires.",
            lambda: F.workforce_figure(view),
        ),
    ]
    body_charts, toc = _sections(charts, filename)

    value_chart = oos_chart = ""
    if any(k in view.value_metrics for k in ("rp", "ev", "eev", "ws")):
        value_chart = _chart_html("value", F.value_figure(view), filename)
    if view.oos is not None:
        oos_chart = _chart_html("oos", F.oos_figure(view), filename)
    value = _value_section(view, value_chart, oos_chart)

    tables = (
        '<section id="kpis"><h2>Operational metrics</h2><p class="lead">Turnover = '
        "expected demand met / average expected inventory; average unit cost = the "
        "product's expected cost / units produced; profit margin = (price − average unit "
        f'cost) / price.</p><div class="tables"><div>{_products_table(view)}</div>'
        f'<div class="narrow">{_composition_table(view)}</div></div></section>'
    )
    body = [_headline_section(view), tables]
    nav = [("headline", "Headline"), ("kpis", "Metrics")]
    if value is not None:
        body.append(value)
        nav.append(("value", "Value of information"))
    body += body_charts
    nav += toc
    n_charts = len(toc) + bool(value_chart) + bool(oos_chart)
    rec = view.record
    title = f"stochplan run {view.run_id}: {rec.instance}, {rec.scenarios}"
    return _page(title, _run_header(view), nav, body, n_charts, _footer([view], db))


def compare_html(runs: Sequence[StoredRun], db: str | None = None) -> str:
    """Two or more stored runs side by side as one self-contained HTML page: their headline
    KPIs in one table, the cost composition of each, the production plans overlaid, expected
    profit by week and, where stored, the out-of-sample cost distributions."""
    if len(runs) < 2:
        raise InputError("runs", [r.id for r in runs], "compare needs two or more runs")
    views = [RunView(r) for r in runs]
    filename = "stochplan-compare-" + "-".join(str(v.run_id) for v in views)
    colours = F.run_colours(views)
    charts = [
        _Chart(
            "costs",
            "Cost composition",
            "Expected cost of each run over the horizon, stacked "
            "by category (same colours as on the single-run dashboards).",
            lambda: F.compare_costs_figure(views),
        ),
        _Chart(
            "production",
            "Production plans",
            "First-stage production of each run, one "
            "colour per run, with expected demand (dotted).",
            lambda: F.compare_production_figure(views),
        ),
        _Chart(
            "profit",
            "Profit by week",
            "Expected profit of each run by week, all products.",
            lambda: F.compare_profit_figure(views),
        ),
    ]
    if any(v.oos is not None for v in views):
        charts.append(
            _Chart(
                "oos",
                "Out-of-sample cost",
                "Cost of each evaluated plan over the out-of-sample scenarios.",
                lambda: F.compare_oos_figure(views),
            )
        )
    body_charts, toc = _sections(charts, filename)

    instances = sorted({v.record.instance for v in views})
    warn = ""
    if len(instances) > 1:
        warn = (
            f'<p class="note">These runs are of different instances ({_e(", ".join(instances))}'
            "): compare with care.</p>"
        )
    body = [_runs_table(views, colours, warn), _compare_kpis(views)] + body_charts
    nav = [("runs", "Runs"), ("kpis", "Headline KPIs")] + toc
    ids = ", ".join(str(v.run_id) for v in views)
    header = (
        f'<header class="page"><h1>stochplan: runs {_e(ids)} compared</h1><dl>'
        + "".join(
            f"<div><dt>run {v.run_id}</dt><dd>{_e(v.record.instance)}, "
            f"{_e(v.record.scenarios)}, {_e(v.record.status)}</dd></div>"
            for v in views
        )
        + "</dl></header>"
    )
    return _page(f"stochplan: runs {ids} compared", header, nav, body, len(toc), _footer(views, db))


def _runs_table(views: Sequence[RunView], colours: dict[int, str], warn: str) -> str:
    rows = []
    for v in views:
        rec = v.record
        gap = f"{rec.gap:.4%}" if rec.gap is not None and math.isfinite(rec.gap) else "n/a"
        objective = money(rec.objective) if rec.objective is not None else "n/a"
        rows.append(
            f'<tr data-run="{v.run_id}"><td><span class="swatch" style="background:'
            f'{colours[v.run_id]}"></span>run {v.run_id}</td><td>{_e(rec.instance)}</td>'
            f"<td>{_e(rec.scenarios)}</td><td>{rec.n_scenarios:,}</td>"
            f"<td>{'integer' if v.integer else 'LP relaxation'}</td><td>{_e(rec.method.upper())}"
            f"</td><td>{_e(rec.status)}</td><td>{_e(objective)}</td>"
            f"<td>{gap}</td><td>{_e(_created(v.created))}</td><td>{_e(rec.label)}</td></tr>"
        )
    return (
        '<section id="runs"><h2>Runs</h2>' + warn + '<table class="kpi runs"><thead><tr>'
        "<th>Run</th><th>Instance</th><th>Scenarios</th><th>n</th><th>Model</th>"
        "<th>Method</th><th>Status</th><th>Objective</th><th>Gap</th><th>Created</th>"
        f"<th>Label</th></tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _compare_kpis(views: Sequence[RunView]) -> str:
    names: list[str] = [k for k in HEADLINE if any(k in v.kpis for v in views)]
    for v in views:
        names += [k for k in v.kpis if k.startswith(_SHARE_PREFIX) and k not in names]
    names += [k for k in VALUE_METRICS if any(k in v.kpis for v in views) and k not in names]
    for v in views:
        names += [k for k in v.kpis if k not in names]

    def label(name: str) -> str:
        if name in HEADLINE:
            return HEADLINE[name][0]
        if name in VALUE_LABELS:
            return f"{VALUE_LABELS[name][0]} ({VALUE_LABELS[name][1]})"
        if name in OOS_KPIS:
            return f"Out of sample: {OOS_KPIS[name][0]}"
        if name.startswith(_SHARE_PREFIX):
            return f"Share of cost: {_share_label(name)[0]}"
        return name

    def difference(name: str, d: float) -> str:
        sign = "+" if d >= 0 else "−"
        kind = _kind(name)
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
                delta = f'<span class="delta">{_e(text)} vs run {first.run_id}</span>'
            cells.append(
                f"<td {_kpi_attrs(name, value, v.run_id)}>{_e(format_kpi(name, value))}{delta}</td>"
            )
        rows.append(f"<tr><td>{_e(label(name))}</td>{''.join(cells)}</tr>")
    head = "".join(f"<th>{_e(v.short_name)}</th>" for v in views)
    return (
        '<section id="kpis"><h2>Headline KPIs</h2><p class="lead">Expected over each run\'s '
        'scenarios; differences are against the first run.</p><table class="kpi"><thead><tr>'
        f"<th>KPI</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
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
