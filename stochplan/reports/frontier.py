"""The page and the text table of a mean-CVaR frontier (``stochplan frontier``).

Drawn from the stored runs of the frontier's points (:class:`~stochplan.store.StoredRun`,
never live solver objects), so ``stochplan frontier --show ID`` redraws any past frontier.
The page is one self-contained HTML file, built from the parts of
:mod:`stochplan.reports.dashboard` (its page frame, chart embedding and file writing):

1. the frontier chart: expected cost (x) against the CVaR of the cost (y), one marker per
   point with its weight, figures and plan totals on hover; the risk-neutral point (weight 0)
   and the most risk-averse point (the highest weight) marked. For a maximising family, x is
   the expected profit and y the CVaR of the loss (minus the profit): lower y is safer
   either way;
2. the points' table: weight, expected value, VaR, CVaR, objective and run id, every number
   with ``data-kpi`` (``frontier.weight``, ``frontier.expected``, ``frontier.value_at_risk``,
   ``frontier.cvar``, ``frontier.objective``), ``data-value`` and ``data-run``;
3. the first-stage plan totals of each point (``data-kpi="plan_total.<variable>"``), the
   variables that change most first;
4. the commands that open a point's dashboard and compare two points.

The invariants (expected loss non-decreasing, CVaR non-increasing along the weights,
:func:`~stochplan.analysis.frontier.frontier_violations`) are checked on the stored numbers and
the page says whether they hold.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from stochplan.analysis.frontier import (
    TOLERANCE,
    frontier_info,
    frontier_table,
    frontier_violations,
    plan_entries,
    plan_totals,
)
from stochplan.reports import figures as F
from stochplan.reports.dashboard import _chart_html, _created, _page, _write
from stochplan.reports.panels import _plan_number, esc, kpi_attrs
from stochplan.reports.text import money
from stochplan.reports.view import RunView
from stochplan.store import StoredRun

__all__ = [
    "default_frontier_path",
    "frontier_figure",
    "frontier_html",
    "frontier_text",
    "write_frontier",
]

#: Plan entries shown on a point's hover (those that change most along the frontier).
HOVER_ENTRIES = 6
#: Plan entries listed in the page's table of changes.
TABLE_ENTRIES = 15
#: Colours of the marked points.
NEUTRAL_COLOUR = F.OKABE_ITO["bluish_green"]
AVERSE_COLOUR = F.OKABE_ITO["vermillion"]


def _labels(table: pd.DataFrame) -> dict[str, str]:
    """Axis and column labels in the frontier's sense."""
    alpha = float(table["alpha"].iloc[0])
    level = _percent(alpha)
    if str(table["sense"].iloc[0]) == "max":
        return {"expected": "Expected profit", "loss": "loss (−profit)",
                "x": "expected profit, $ (in sample; higher is better)",
                "y": f"CVaR {level} of the loss (−profit), $ (lower is safer)",
                "var": f"VaR {level} of the loss", "cvar": f"CVaR {level} of the loss",
                "level": level, "objective": "(1 − λ) E[profit] − λ CVaR(−profit)",
                "verb": "maximising"}
    return {"expected": "Expected cost", "loss": "cost",
            "x": "expected cost, $ (in sample; lower is better)",
            "y": f"CVaR {level} of the cost, $ (lower is safer)",
            "var": f"VaR {level} of the cost", "cvar": f"CVaR {level} of the cost",
            "level": level, "objective": "(1 − λ) E[cost] + λ CVaR(cost)",
            "verb": "minimising"}


def _percent(x: float) -> str:
    """``0.9`` -> ``90 %`` (``97.5 %`` where a whole percentage would round)."""
    text = f"{100 * x:.4g}"
    return f"{text}\u00a0%"  # a no-break space: "90 %" never breaks across lines


def _ordered(runs: Sequence[StoredRun], table: pd.DataFrame) -> list[StoredRun]:
    by_id = {r.id: r for r in runs}
    return [by_id[int(i)] for i in table["run_id"]]


def _totals(runs: Sequence[StoredRun]) -> pd.DataFrame:
    """Plan totals per variable (rows, most changing first), one column per run id."""
    return plan_totals({str(r.id): r.record.plan for r in runs})


def _changed(runs: Sequence[StoredRun], n: int | None = None) -> pd.DataFrame:
    """The ``n`` (None: all) plan entries that change most along the frontier (only those
    that change), one column per run id."""
    entries = plan_entries({str(r.id): r.record.plan for r in runs})
    entries = entries if n is None else entries.head(n)
    values = entries.to_numpy(float)
    if not values.size:
        return entries
    spread = pd.Series(values.max(axis=1) - values.min(axis=1), index=entries.index)
    return entries[spread.to_numpy() > 0]


def _marks(table: pd.DataFrame) -> tuple[int, int]:
    """Rows of the risk-neutral (lowest weight) and the most risk-averse (highest) point."""
    return 0, len(table) - 1


def _mark_name(table: pd.DataFrame, row: int, averse: bool) -> str:
    weight = float(table["weight"].iloc[row])
    if not averse:
        return (f"risk-neutral (λ = {weight:g})" if weight == 0
                else f"least risk-averse (λ = {weight:g})")
    return f"most risk-averse (λ = {weight:g})"


# ----------------------------------------------------------------------------------------------
# The chart


def _point_labels(table: pd.DataFrame) -> list[str]:
    """``λ=0.3`` beside each point; points that coincide on the chart (within 1 % of both
    axes' spans) share one label, ``λ=0.8–1``, on the first of them."""
    x, y = table["expected"].to_numpy(float), table["cvar"].to_numpy(float)
    w = table["weight"].to_numpy(float)
    span_x = max(float(np.ptp(x)), 1e-9) if len(x) else 1.0
    span_y = max(float(np.ptp(y)), 1e-9) if len(y) else 1.0
    labels = [""] * len(x)
    start = 0
    for k in range(1, len(x) + 1):
        if k < len(x) and abs(x[k] - x[start]) <= 0.01 * span_x \
                and abs(y[k] - y[start]) <= 0.01 * span_y:
            continue
        last = k - 1
        labels[start] = (f"λ={w[start]:g}" if last == start
                         else f"λ={w[start]:g}–{w[last]:g}")
        start = k
    return labels


def frontier_figure(runs: Sequence[StoredRun]) -> go.Figure:
    """Expected cost (x) against CVaR of the cost (y) of a frontier's stored points (for a
    maximising family: expected profit against CVaR of the loss), in increasing weight."""
    table = frontier_table(runs)
    ordered = _ordered(runs, table)
    labels = _labels(table)
    changed = _changed(ordered, HOVER_ENTRIES)
    base = str(ordered[0].id)
    hover = []
    for row, stored in zip(table.itertuples(index=False), ordered):
        lines = [
            f"<b>weight λ = {row.weight:g}</b> (run {row.run_id})",
            f"{labels['expected']}: {money(row.expected)}",
            f"{labels['var']}: {money(row.value_at_risk)}",
            f"{labels['cvar']}: {money(row.cvar)}",
            f"objective: {money(row.objective)}",
        ]
        if len(changed):
            lines.append(f"plan entries that change most (vs λ = {table['weight'].iloc[0]:g}):")
        else:
            lines.append("plan: the same at every point")
        for entry, values in changed.iterrows():
            value = float(values[str(stored.id)])
            delta = value - float(values[base])
            change = f" ({'+' if delta >= 0 else '−'}{_plan_number(abs(delta))})" if delta else ""
            lines.append(f"  {esc(entry)}: {_plan_number(value)}{change}")
        hover.append("<br>".join(lines))
    x, y = table["expected"].to_numpy(float), table["cvar"].to_numpy(float)
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=x, y=y, mode="lines+markers+text", name="frontier points",
        text=_point_labels(table), textposition="top right",
        textfont={"size": 11, "color": F.DARK_GREY},
        line={"color": F.OKABE_ITO["blue"], "width": 2},
        marker={"size": 10, "color": F.OKABE_ITO["blue"]},
        hovertext=hover, hoverinfo="text",
    ))
    neutral, averse = _marks(table)
    marks = [(neutral, False, "diamond", NEUTRAL_COLOUR)]
    if averse != neutral:
        marks.append((averse, True, "square", AVERSE_COLOUR))
    for row, is_averse, symbol, colour in marks:
        fig.add_trace(go.Scatter(
            x=[x[row]], y=[y[row]], mode="markers", name=_mark_name(table, row, is_averse),
            marker={"size": 17, "symbol": symbol, "color": "rgba(0,0,0,0)",
                    "line": {"width": 3, "color": colour}},
            hovertext=[hover[row]], hoverinfo="text",
        ))
    fig.update_xaxes(title_text=labels["x"], tickformat="$,.4~s", showline=True,
                     linecolor="#BBBBBB")
    fig.update_yaxes(title_text=labels["y"], tickformat="$,.4~s", showline=True,
                     linecolor="#BBBBBB")
    F.style(fig, f"Mean-CVaR frontier: {labels['expected'].lower()} against "
            f"CVaR {labels['level']}", 560, hovermode="closest")
    return fig


# ----------------------------------------------------------------------------------------------
# The page


def _db_flag(db: str | None) -> str:
    return "" if db is None else f" --db {shlex.quote(str(db))}"


def _points_table(table: pd.DataFrame, labels: dict[str, str], db: str | None) -> str:
    neutral, averse = _marks(table)
    rows = []
    for k, row in enumerate(table.itertuples(index=False)):
        run = int(row.run_id)
        mark = ""
        if k == neutral:
            mark = f' <span class="mark">{esc(_mark_name(table, k, False))}</span>'
        elif k == averse:
            mark = f' <span class="mark">{esc(_mark_name(table, k, True))}</span>'

        def cell(name: str, value: float, text: str, run: int = run) -> str:
            return f"<td {kpi_attrs(f'frontier.{name}', value, run)}>{esc(text)}</td>"

        command = f"stochplan dashboard {run}{_db_flag(db)}"
        rows.append(
            f'<tr data-run="{run}" data-weight="{float(row.weight)!r}">'
            f"<td>{k + 1}{mark}</td>"
            + cell("weight", row.weight, f"{row.weight:g}")
            + cell("expected", row.expected, money(row.expected))
            + cell("value_at_risk", row.value_at_risk, money(row.value_at_risk))
            + cell("cvar", row.cvar, money(row.cvar))
            + cell("objective", row.objective, money(row.objective))
            + f"<td>{esc(row.status)}</td>"
            f'<td><a href="stochplan-run-{run}.html">run {run}</a></td>'
            f"<td class=\"key\"><code>{esc(command)}</code></td></tr>"
        )
    return (
        '<div class="scroll"><table class="kpi frontier"><thead><tr><th>Point</th>'
        f"<th>Weight λ</th><th>{esc(labels['expected'])}</th><th>{esc(labels['var'])}</th>"
        f"<th>{esc(labels['cvar'])}</th><th>Objective {esc(labels['objective'])}</th>"
        "<th>Status</th><th>Run</th><th class=\"key\">Its dashboard</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table></div>"
    )


def _plans_table(table: pd.DataFrame, ordered: Sequence[StoredRun]) -> str:
    head = "".join(f"<th>λ = {w:g}<br>run {r.id}</th>" for w, r in zip(table["weight"], ordered))

    def rows(frame: pd.DataFrame, prefix: str) -> str:
        out = []
        for name, values in frame.iterrows():
            cells = "".join(
                f"<td {kpi_attrs(f'{prefix}.{name}', float(values[str(r.id)]), r.id)}>"
                f"{esc(_plan_number(float(values[str(r.id)])))}</td>" for r in ordered)
            out.append(f'<tr><td class="key">{esc(name)}</td>{cells}</tr>')
        return "".join(out)

    totals = _totals(ordered)
    if totals.empty:
        return '<p class="note">The points store no first-stage plan.</p>'
    every = _changed(ordered)
    changed, n_changed = every.head(TABLE_ENTRIES), len(every)
    if len(changed):
        more = (f" ({n_changed} entries change in all; the {len(changed)} that change most)"
                if n_changed > len(changed) else f" ({n_changed} entries change)")
        entries = (
            f"<h3>Plan entries that change along the frontier{esc(more)}</h3>"
            '<div class="scroll"><table class="kpi plans" data-table="plan-changes"><thead><tr>'
            f'<th class="key">Entry</th>{head}</tr></thead><tbody>{rows(changed, "plan")}'
            "</tbody></table></div>")
    else:
        entries = ('<p class="note" data-table="plan-changes">The first-stage plan is the '
                   "same at every point.</p>")
    return (
        entries + "<h3>Totals per first-stage variable (over its index)</h3>"
        '<div class="scroll"><table class="kpi plans" data-table="plan-totals"><thead><tr>'
        f'<th class="key">Variable</th>{head}</tr></thead><tbody>{rows(totals, "plan_total")}'
        "</tbody></table></div>"
    )


def _commands(table: pd.DataFrame, db: str | None, frontier_id: str) -> str:
    neutral, averse = _marks(table)
    first, last = int(table["run_id"].iloc[neutral]), int(table["run_id"].iloc[averse])
    flag = _db_flag(db)
    lines = [f"stochplan dashboard {first}{flag}    # one point's dashboard (any run id above)"]
    if first != last:
        lines.append(f"stochplan compare {first} {last}{flag}    # how the plans differ: "
                     "risk-neutral against most risk-averse")
    lines.append(f"stochplan frontier --show {frontier_id}{flag}    # redraw this page")
    body = "\n".join(esc(line) for line in lines)
    return (
        '<section id="commands"><h2>Open a point, compare two</h2><p class="lead">Each point '
        "is a stored run: its dashboard shows its plan and costs; <code>stochplan compare A "
        "B</code> puts two points side by side (their plans, KPIs and the settings that "
        "differ, the CVaR weight among them). The run links above open the dashboards once "
        "written next to this page.</p>"
        f"<pre data-commands=\"frontier\">{body}</pre></section>"
    )


def frontier_html(runs: Sequence[StoredRun], db: str | None = None) -> str:
    """The page of a frontier, from the stored runs of its points (any order).

    Parameters
    ----------
    runs : sequence of StoredRun
        The points of one frontier.
    db : str, optional
        The database they came from, named in the footer and in the commands.

    Raises
    ------
    InputError
        The runs are not the points of one frontier (see
        :func:`~stochplan.analysis.frontier.frontier_table`).
    """
    table = frontier_table(runs)
    ordered = _ordered(runs, table)
    info = frontier_info(ordered[0]) or {}
    frontier_id = str(info.get("id", "?"))
    labels = _labels(table)
    view = RunView(ordered[0])
    rec = view.record
    n_planned = len(info.get("weights") or []) or len(table)
    filename = f"stochplan-frontier-{frontier_id}"

    violations = frontier_violations(table)
    within = (f"within rounding ({TOLERANCE:g} relative) and what each solve's stored gap "
              "allows")
    if violations:
        check = (f'<p class="note" id="invariants" data-invariants="violated">Along increasing '
                 f"weight the expected {esc(labels['loss'])} should not fall and its CVaR "
                 f"should not rise, {esc(within)}; here: {esc('; '.join(violations))}. "
                 "Points that are not optimal for their weight do this: check their status "
                 "and gap.</p>")
    else:
        check = ('<p class="note" id="invariants" data-invariants="hold">Along increasing '
                 f"weight the expected {esc(labels['loss'])} does not fall and its CVaR does "
                 f"not rise (checked on the stored values, {esc(within)}).</p>")
    missing = ""
    if len(table) < n_planned:
        missing = (f'<p class="note" id="incomplete">{len(table)} of {n_planned} points are '
                   "stored: the sweep stopped before the rest.</p>")

    chart = _chart_html("frontier", frontier_figure(runs), filename)
    body = [
        '<section id="frontier"><h2>Frontier</h2><p class="lead">Each point is the plan '
        f"{labels['verb']} {esc(labels['objective'])} for one weight λ, all on the same "
        f"{rec.n_scenarios:,} scenarios; CVaR {esc(labels['level'])} is the mean "
        f"{esc(labels['loss'])} of the worst {_percent(1 - float(table['alpha'].iloc[0]))} of "
        "them. "
        "In-sample values. Hover a point for its figures and plan totals.</p>"
        f"{chart}{check}{missing}</section>",
        '<section id="points"><h2>Points</h2><p class="lead">One stored run per weight, in '
        "increasing weight ($, in sample).</p>"
        f"{_points_table(table, labels, db)}</section>",
        '<section id="plans"><h2>Plans along the frontier</h2><p class="lead">The '
        "first-stage plan of each point: the entries that change most along the frontier, "
        "then the total of each variable over its index.</p>"
        f"{_plans_table(table, ordered)}</section>",
        _commands(table, db, frontier_id),
    ]
    nav = [("frontier", "Frontier"), ("points", "Points"), ("plans", "Plans"),
           ("commands", "Commands")]
    seed = "" if rec.seed is None else f", seed {rec.seed}"
    items = [
        ("frontier", frontier_id), ("family", rec.family), ("instance", rec.instance),
        ("scenarios", f"{rec.scenarios} ({rec.n_scenarios}{seed})"),
        *([("model", view.model_kind)] if view.model_kind else []),
        ("method", f"{rec.method.upper()} with HiGHS"),
        ("CVaR level α", f"{float(table['alpha'].iloc[0]):g}"),
        ("points", f"{len(table)} (runs {int(table['run_id'].min())}–"
                   f"{int(table['run_id'].max())})"),
        ("created", _created(ordered[0].created)),
    ]
    fields = "".join(f'<div data-field="{esc(k)}"><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>'
                     for k, v in items)
    header = (f'<header class="page"><h1>stochplan frontier {esc(frontier_id)}: '
              f"{esc(rec.instance)}, {esc(rec.scenarios)}</h1><dl>{fields}</dl></header>")
    where = f" in {esc(db)}" if db else ""
    footer = (f"Drawn by stochplan from the results database{where} (runs "
              f"{esc(', '.join(str(r.id) for r in ordered))}), not from live solver objects: "
              f"redraw any time with <code>stochplan frontier --show {esc(frontier_id)}</code>. "
              "Colours: Okabe–Ito palette.")
    return _page(f"stochplan frontier {frontier_id}: {rec.instance}, {rec.scenarios}",
                 header, nav, body, 1, footer)


def default_frontier_path(frontier_id: str) -> Path:
    """``stochplan-frontier-<id>.html`` in the working directory."""
    return Path(f"stochplan-frontier-{frontier_id}.html")


def write_frontier(runs: Sequence[StoredRun], path: str | Path | None = None,
                   db: str | None = None) -> Path:
    """Write :func:`frontier_html` to ``path`` (default :func:`default_frontier_path`)."""
    table = frontier_table(runs)
    info = frontier_info(_ordered(runs, table)[0]) or {}
    target = path or default_frontier_path(str(info.get("id", "frontier")))
    return _write(target, frontier_html(runs, db))


# ----------------------------------------------------------------------------------------------
# The text table


def frontier_text(runs: Sequence[StoredRun], db: str | None = None) -> str:
    """The frontier as printed by ``stochplan frontier``: a header line, one row per point
    (weight, expected cost or profit, VaR and CVaR of the loss, objective, run id), whether
    the invariants hold, and the commands to open and compare points."""
    table = frontier_table(runs)
    ordered = _ordered(runs, table)
    labels = _labels(table)
    info = frontier_info(ordered[0]) or {}
    view = RunView(ordered[0])
    rec = view.record
    kind = f", {view.model_kind}" if view.model_kind else ""
    seed = "" if rec.seed is None else f", seed {rec.seed}"
    level = labels["level"].replace("\u00a0%", "%")
    lines = [
        f"Frontier {info.get('id')}: {rec.instance}, {rec.scenarios} ({rec.n_scenarios} "
        f"scenarios{seed}{kind}), {rec.method.upper()} with HiGHS",
        f"Objective {labels['objective']} at CVaR {level}; {len(table)} point(s), in-sample "
        "values ($).",
        "",
    ]
    loss = "" if str(table["sense"].iloc[0]) == "min" else " (loss)"
    head = (f"  {'weight':>6}  {labels['expected'].lower():>16}  {'VaR ' + level + loss:>16}  "
            f"{'CVaR ' + level + loss:>17}  {'objective':>16}  {'run':>5}")
    lines.append(head)
    for row in table.itertuples(index=False):
        lines.append(f"  {row.weight:>6g}  {money(row.expected):>16}  "
                     f"{money(row.value_at_risk):>16}  {money(row.cvar):>17}  "
                     f"{money(row.objective):>16}  {row.run_id:>5}")
    violations = frontier_violations(table)
    lines.append("")
    if violations:
        lines.append("Invariants broken beyond rounding and the solves' gaps: "
                     + "; ".join(violations))
    else:
        lines.append(f"Along increasing weight the expected {labels['loss']} does not fall and "
                     "its CVaR does not rise (within rounding and the solves' gaps).")
    first, last = int(table["run_id"].iloc[0]), int(table["run_id"].iloc[-1])
    flag = _db_flag(db)
    if first != last:
        lines.append(f"`stochplan compare {first} {last}{flag}` shows how the risk-neutral and "
                     "the most risk-averse plans differ; "
                     f"`stochplan dashboard RUN{flag}` opens one point.")
    return "\n".join(lines)
