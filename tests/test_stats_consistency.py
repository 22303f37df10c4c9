"""One confidence interval everywhere: the KPIs, the evaluate summary and the dashboards.

The out-of-sample mean's 95 % CI is Student's t (``stochplan.metrics.stats.mean_ci``). The
dashboard's table and chart read ``oos_summary`` and the KPI cards read what ``evaluate`` stored
from ``summarize_costs``; on a small sample (where t and the normal 1.96 differ by 40 %) they
must all give the same interval. No solver: the run is stored by hand.
"""

from __future__ import annotations

import html
import math
import re

import numpy as np
import pandas as pd
import pytest

from stochplan.metrics.stats import mean_ci, mean_std_ci, summarize_costs, t_half_width
from stochplan.reports.dashboard import dashboard_html
from stochplan.reports.figures import oos_figure
from stochplan.reports.text import money
from stochplan.reports.view import oos_summary
from stochplan.store import ResultsStore, RunRecord

#: Five scenario costs of the stochastic plan and of the mean-value plan, $.
RP = np.array([100.0, 104.0, 98.0, 110.0, 103.0])
EV = np.array([101.0, 109.0, 97.0, 118.0, 110.0])
#: t(0.975, 4) (printed tables: 2.776445; scipy agrees to 15 digits).
T_975_4 = 2.7764451051977987


def small_oos() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "plan": ["stochastic (RP)"] * 5 + ["mean-value (EV)"] * 5,
            "scenario": list(range(5)) * 2,
            "cost": np.concatenate([RP, EV]),
        }
    )


def test_half_width_is_student_t_by_hand():
    """s of RP = sqrt(84 / 4) = sqrt(21); the half-width is t(0.975, 4) s / sqrt(5), not
    1.96 s / sqrt(5)."""
    std = math.sqrt(((RP - RP.mean()) ** 2).sum() / 4)
    assert std == pytest.approx(math.sqrt(21.0), rel=1e-12)
    half = T_975_4 * std / math.sqrt(5)
    assert t_half_width(std, 5) == pytest.approx(half, rel=1e-12)
    assert half > 1.4 * 1.96 * std / math.sqrt(5)  # the normal CI would be 30 % too narrow
    mean, low, high = mean_ci(RP)
    assert mean == pytest.approx(103.0, rel=1e-15)
    assert (low, high) == pytest.approx((103.0 - half, 103.0 + half), rel=1e-12)


def test_one_sided_half_width_uses_the_level_quantile():
    """t(0.95, 9) = 1.833113 (printed tables give 6 digits)."""
    assert t_half_width(3.0, 10, two_sided=False) == pytest.approx(
        1.833113 * 3.0 / math.sqrt(10), rel=1e-6
    )


def test_oos_summary_ci_equals_the_metrics_ci():
    summary = oos_summary(small_oos()).set_index("plan")
    for plan, costs in (("stochastic (RP)", RP), ("mean-value (EV)", EV)):
        kpi = summarize_costs(costs)
        row = summary.loc[plan]
        assert row["mean"] == kpi.mean
        assert (row["ci_low"], row["ci_high"]) == (kpi.ci_low, kpi.ci_high)
        assert (row["feasible_ci_low"], row["feasible_ci_high"]) == (kpi.ci_low, kpi.ci_high)
        assert row["std"] == pytest.approx(costs.std(ddof=1), rel=1e-15)
    # the paired difference EV - RP = (1, 5, -1, 8, 7): the same Student-t interval
    _, d_lo, d_hi = mean_ci(EV - RP)
    row = summary.loc["mean-value (EV)"]
    assert row["diff_mean"] == pytest.approx(4.0, rel=1e-15)
    assert (row["diff_ci_low"], row["diff_ci_high"]) == (d_lo, d_hi)


def test_mean_std_ci_edge_cases():
    assert mean_std_ci(np.array([5.0])) == (5.0, 0.0, 5.0, 5.0)
    assert mean_std_ci(np.array([1.0, math.inf])) == (math.inf,) * 4
    assert all(math.isnan(v) for v in mean_std_ci(np.array([math.nan])))
    assert all(math.isnan(v) for v in mean_std_ci(np.array([math.inf, -math.inf])))
    mean, std, lo, hi = mean_std_ci(np.array([1.0, math.nan, 3.0]))  # NaN dropped
    assert (mean, std) == (2.0, pytest.approx(math.sqrt(2.0)))
    assert (lo, hi) == mean_ci(np.array([1.0, 3.0]))[1:]


def test_dashboard_table_and_kpi_cards_show_the_metrics_ci(tmp_path):
    """A run with stored out-of-sample costs and KPIs, stored the way ``evaluate`` stores them:
    the page's KPI card, the table's CI cell and the chart's hover text agree."""
    kpi = summarize_costs(RP)
    record = RunRecord(
        instance="small",
        family="module",
        method="ef",
        scenarios="3",
        seed=None,
        n_scenarios=3,
        status="optimal",
        objective=103.0,
        bound=103.0,
        gap=0.0,
        config={"module": "small", "value": {"sense": "min"}},
        versions={},
        timings={},
        plan=pd.DataFrame({"variable": ["x"], "value": [1.0]}),
        kpis={"rp": 103.0},
    )
    with ResultsStore(tmp_path / "runs.db") as store:
        run = store.save_run(record)
        store.add_table(run, "oos_costs", small_oos())
        store.add_kpis(run, {"oos_mean": kpi.mean, "oos_ci_low": kpi.ci_low,
                             "oos_ci_high": kpi.ci_high})
        stored = store.get_run(run)
    page = dashboard_html(stored)
    # KPI cards: the stored floats, exactly
    for name, value in (("oos_ci_low", kpi.ci_low), ("oos_ci_high", kpi.ci_high)):
        assert f'data-kpi="{name}" data-value="{value!r}"' in page
    # the table's 95 % CI cell of the stochastic plan
    table = page[page.index("Out-of-sample cost per plan") :]
    table = table[: table.index("</table>")]
    assert "Student t" in table and "1.96" not in table
    cells = [html.unescape(c) for c in re.findall(r"<td>([^<]*)</td>", table)]
    assert f"{money(kpi.ci_low)} – {money(kpi.ci_high)}" in cells
    ev = summarize_costs(EV)
    assert f"{money(ev.ci_low)} – {money(ev.ci_high)}" in cells
    # the chart's mean-with-CI markers (hover text)
    hovers = [t.hovertemplate or "" for t in oos_figure(stored).data]
    assert any(f"95 % CI {money(kpi.ci_low)} – {money(kpi.ci_high)}" in h for h in hovers)
