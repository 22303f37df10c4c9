"""The worked examples in ``experiments/`` run at tiny sizes, write their figure, and give
numbers that make sense (each test says which)."""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

pytestmark = pytest.mark.solve

ROOT = Path(__file__).resolve().parents[1]


def experiment(name: str) -> ModuleType:
    """Import ``experiments/<name>.py`` (a script folder, not a package)."""
    spec = importlib.util.spec_from_file_location(f"experiment_{name}",
                                                  ROOT / "experiments" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_figure(path: Path, names: list[str]) -> None:
    """A self-contained plotly page: plotly.js inline (nothing fetched: it opens offline),
    holding the traces ``names``."""
    page = path.read_text(encoding="utf-8")
    assert "plotly.js v" in page and len(page) > 1_000_000
    assert not re.search(r"<script[^>]+src=", page)
    for name in names:
        assert f'"name":"{name}"' in page, name


def test_vss_grows_with_demand_variability(tmp_path, capsys):
    """Spreads 0, 0.1, 0.2 of the demand levels on 6 scenarios: WS <= RP <= EEV and
    VSS >= 0, EVPI >= 0 at each (minimisation); VSS and EVPI grow with the spread (the
    scenarios differ only in their level, so a wider spread is more uncertainty)."""
    mod = experiment("vss_vs_variability")
    assert mod.main(["--spreads", "0,0.1,0.2", "--scenarios", "6", "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "vss_vs_variability.csv")
    assert table["spread"].tolist() == [0.0, 0.1, 0.2]
    assert (table["infeasible"] == 0).all()
    tol = 1e-6 * table["rp"].abs()
    assert (table["ws"] <= table["rp"] + tol).all() and (table["rp"] <= table["eev"] + tol).all()
    assert (table["vss"] >= -tol).all() and (table["evpi"] >= -tol).all()
    assert table["vss"].tolist() == pytest.approx((table["eev"] - table["rp"]).tolist())
    assert table["vss"].is_monotonic_increasing and table["evpi"].is_monotonic_increasing
    assert table["vss"].iloc[-1] > 2 * table["vss"].iloc[0]
    check_figure(tmp_path / "vss_vs_variability.html",
                 ["VSS = EEV \\u2212 RP", "EVPI = RP \\u2212 WS", "WS", "RP", "EEV"])
    assert "wrote" in capsys.readouterr().out


def test_vss_experiment_marks_an_infinite_eev(tmp_path):
    """At a spread of 0.3 on 6 scenarios the mean-value plan overfills the warehouse in a
    low-demand scenario even with lost sales: the row says so and VSS is +inf, not a number."""
    mod = experiment("vss_vs_variability")
    assert mod.main(["--spreads", "0.3", "--scenarios", "6", "--out", str(tmp_path)]) == 0
    row = pd.read_csv(tmp_path / "vss_vs_variability.csv").iloc[0]
    assert row["infeasible"] >= 1 and row["vss"] == math.inf and math.isfinite(row["evpi"])
    assert "EEV = VSS = +inf" in (tmp_path / "vss_vs_variability.html").read_text()


def test_how_many_scenarios_doubles_n_until_the_gap_bound_meets_the_target(tmp_path):
    """A 0.3 % target from N = 4 to 16 with 3 batches: N doubles, every batch gap is >= 0
    (a batch's SAA optimum is below the plan's cost on that batch), the bound is above the
    mean, and the run stops exactly when the bound meets the target or N reaches the cap."""
    mod = experiment("how_many_scenarios")
    status = mod.main(["--target-gap", "0.003", "--start", "4", "--max-n", "16", "--batches",
                       "3", "--out", str(tmp_path)])
    table = pd.read_csv(tmp_path / "how_many_scenarios.csv")
    ns = table["n"].tolist()
    assert ns[0] == 4 and all(b == 2 * a for a, b in zip(ns, ns[1:])) and ns[-1] <= 16
    cost = table["objective"]
    assert (table["min_batch_gap"] >= -1e-7 * cost).all()
    assert (table["gap_upper"] >= table["gap_mean"]).all() and (table["gap_mean"] >= 0).all()
    assert (table["relative_upper"] < 0.05).all()  # a few % at most on this instance
    reached = table["relative_upper"] <= 0.003
    assert not reached.iloc[:-1].any()  # it would have stopped there
    assert status == (0 if reached.iloc[-1] else 1)
    assert reached.iloc[-1] or ns[-1] * 2 > 16
    check_figure(tmp_path / "how_many_scenarios.html",
                 ["gap estimate (mean of batches)", "95 % upper bound", "SAA objective"])


def test_which_method_ef_and_lshaped_agree_within_the_gap(tmp_path):
    """S = 5 and 20: both methods solve the same LP; the L-shaped objective (its incumbent)
    is at least the EF optimum and within its reported gap of it; times are positive."""
    mod = experiment("which_method")
    assert mod.main(["--sizes", "5,20", "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "which_method.csv")
    assert list(zip(table["scenarios"], table["method"])) == [
        (5, "ef"), (5, "lshaped"), (20, "ef"), (20, "lshaped")]
    assert (table["seconds"] > 0).all()
    for _, rows in table.groupby("scenarios"):
        ef, ls = rows.set_index("method").loc["ef"], rows.set_index("method").loc["lshaped"]
        assert ls["objective"] >= ef["objective"] * (1 - 1e-9)
        # the gap is relative to the incumbent: (incumbent - bound) / incumbent, bound <= EF
        assert ls["objective"] - ef["objective"] <= ls["gap"] * ls["objective"] + 1e-6
        assert ls["gap"] <= 1e-4 and ls["rel_diff"] <= 1e-4
    check_figure(tmp_path / "which_method.html",
                 ["extensive form (HiGHS)", "L-shaped (level-stabilised)"])


def test_which_plan_wins_under_the_runs_distribution(tmp_path, capsys):
    """4 draws, LP relaxation: one row per distribution (the run's mixture first, then plain
    Poisson), both plans evaluated on the same draws, a finite mean wherever a plan is feasible
    in every draw, and the winner is the one its rule names from the measured numbers."""
    mod = experiment("which_plan_wins_out_of_sample")
    assert mod.main(["--draws", "4", "--relax", "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "which_plan_wins.csv")
    mixture = ("mixture of Poisson around the demand rates, levels 0.8/1.0/1.2 weights "
               "0.25/0.5/0.25")
    assert table["distribution"].tolist() == ["run's distribution", "plain Poisson"]
    assert table["evaluated_under"].tolist() == [
        f"{mixture}, 4 draws, seed 1", "Poisson around the demand rates, 4 draws, seed 1"]
    for row in table.to_dict("records"):
        assert row["n"] == 4
        assert row["winner"] == mod.winner(row, row["diff_ci_low"], row["diff_ci_high"])
        for key in ("stochastic", "mean_value"):
            if row[f"{key}_p_infeasible"] == 0:
                assert math.isfinite(row[f"{key}_mean"])
    check_figure(tmp_path / "which_plan_wins.html", ["stochastic plan", "mean-value plan"])
    out = capsys.readouterr().out
    assert f"run's distribution: evaluated under: {mixture}, 4 draws, seed 1" in out
    assert "wins:" in out
