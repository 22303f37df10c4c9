"""The mean-CVaR frontier: weights, ids, the stored table and its invariants, and
``stochplan frontier`` end to end.

The solve tests sweep one frontier once (module fixture): the electronics instance's LP
relaxation on 8 sampled scenarios, CVaR 80 %, weights 0, 0.25, 0.5, 0.75, 1 (about 4 s).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import html
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stochplan.analysis.frontier import (
    DEFAULT_WEIGHTS,
    frontier_table,
    frontier_violations,
    frontier_weights,
    new_frontier_id,
    parse_weights,
    plan_entries,
    plan_totals,
)
from stochplan.cli import EXIT_USAGE, main
from stochplan.errors import InputError
from stochplan.store import ResultsStore, RunRecord, StoredRun

#: The frontier the solve tests sweep.
SWEEP = ["electronics", "--relax", "--scenarios", "sample:8", "--seed", "3", "--cvar", "0.8",
         "--weights", "1,0.5,0,0.25,0.75,0.5"]
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: Relative tolerance of the invariants: HiGHS's LP optimum, re-evaluated per scenario.
RTOL = 1e-7


# ----------------------------------------------------------------------------------------------
# Weights and ids (no solver)


def test_weights_are_sorted_and_deduplicated():
    assert frontier_weights([1, "0.5", 0.0, 0.5, -0.0]) == (0.0, 0.5, 1.0)
    assert parse_weights(" 1, 0.5 ,0") == (0.0, 0.5, 1.0)
    assert parse_weights("0.3") == (0.3,)
    assert DEFAULT_WEIGHTS == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@pytest.mark.parametrize(("text", "problem"), [
    ("", "at least one weight"),
    ("0,,1", "empty item"),
    ("0,1.5", "not in [0, 1]"),
    ("-0.1", "not in [0, 1]"),
    ("a,b", "not a number"),
    ("0,nan", "not a number"),
    ("inf", "not a number"),
])
def test_bad_weights_name_the_flag(text, problem):
    with pytest.raises(InputError, match=re.escape(problem)) as err:
        parse_weights(text)
    assert err.value.field == "--weights"


@pytest.mark.parametrize("argv", [["--weights", "0,2"], ["--weights", "x"], ["--weights", ""],
                                  ["--weights", "0,,1"]])
def test_bad_weights_are_one_line_usage_errors(argv, capsys, tmp_path):
    """Refused by the parser, before anything is loaded or solved: exit 2, one line naming
    --weights, no database created."""
    db = tmp_path / "r.db"
    with pytest.raises(SystemExit) as stop:
        main(["frontier", "electronics", *argv, "--db", str(db)])
    assert stop.value.code == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--weights" in err and "Traceback" not in err
    assert not db.exists()


def test_frontier_ids_are_readable_and_unique():
    now = dt.datetime(2026, 12, 5, 5, 14, 3, tzinfo=dt.UTC)
    assert new_frontier_id((), now) == "F20261205-051403"
    taken = {"F20261205-051403", "F20261205-051403-2"}
    assert new_frontier_id(taken, now) == "F20261205-051403-3"


# ----------------------------------------------------------------------------------------------
# The table and its invariants, from hand-made stored runs (no solver)


def fake_point(run_id: int, index: int, weight: float, expected: float, var: float,
               cvar: float, frontier: str = "F1", sense: str = "min",
               plan: pd.DataFrame | None = None) -> StoredRun:
    """A stored frontier point as `stochplan frontier` stores it (only what the table reads)."""
    sign = 1.0 if sense == "min" else -1.0
    objective = (1 - weight) * expected + sign * weight * cvar
    if plan is None:
        plan = pd.DataFrame({"variable": ["X", "X"], "week": [1, 2], "value": [1.0, 2.0]})
    record = RunRecord(
        instance="fake", family="no-such-family", method="ef", scenarios="sample:4", seed=1,
        n_scenarios=4, status="optimal", objective=objective, bound=objective, gap=0.0,
        config={"sense": sense, "risk": {"measure": "cvar", "alpha": 0.9, "weight": weight},
                "frontier": {"id": frontier, "index": index, "weights": [0.0, 0.5, 1.0]}},
        versions={}, timings={}, plan=plan,
        kpis={"risk_objective": objective, "risk_expected": expected,
              "risk_value_at_risk": var, "risk_cvar": cvar})
    return StoredRun(run_id, "2026-12-05T05:00:00+00:00", record)


def test_table_is_in_weight_order_with_the_loss_signed():
    runs = [fake_point(7, 2, 1.0, 120.0, 125.0, 130.0), fake_point(5, 0, 0.0, 100.0, 140.0, 160.0),
            fake_point(6, 1, 0.5, 110.0, 130.0, 140.0)]
    table = frontier_table(runs)
    assert table["run_id"].tolist() == [5, 6, 7]
    assert table["weight"].tolist() == [0.0, 0.5, 1.0]
    assert table["expected_loss"].tolist() == [100.0, 110.0, 120.0]
    assert frontier_violations(table) == []
    profit = frontier_table([fake_point(1, 0, 0.0, 500.0, -400.0, -380.0, sense="max")])
    assert profit["expected"].iloc[0] == 500.0 and profit["expected_loss"].iloc[0] == -500.0


def test_violations_are_named_beyond_the_tolerance():
    """Along increasing weight the expected loss must not fall and CVaR must not rise;
    a move smaller than the relative tolerance is solver noise, not a violation."""
    table = pd.DataFrame({"weight": [0.0, 0.5, 1.0], "expected_loss": [100.0, 99.0, 101.0],
                          "cvar": [150.0, 140.0, 140.00001]})
    found = frontier_violations(table)
    assert found == ["expected loss falls from 100 to 99 between weights 0 and 0.5"]
    assert len(frontier_violations(table, rel_tol=1e-9)) == 2
    # a point known only to within $0.5 (a MIP's gap) may fall by (0.5 + 0) (1 + 1 / 0.5)
    assert frontier_violations(table.assign(error=[0.0, 0.5, 0.0])) == []
    assert len(frontier_violations(table.assign(error=[0.0, 0.3, 0.0]))) == 1


def test_table_refuses_what_is_not_one_frontier():
    a, b = fake_point(1, 0, 0.0, 1.0, 2.0, 3.0), fake_point(2, 1, 1.0, 1.0, 2.0, 3.0, "F2")
    with pytest.raises(InputError, match="different frontiers"):
        frontier_table([a, b])
    with pytest.raises(InputError, match="at least one"):
        frontier_table([])
    plain = StoredRun(3, a.created, dataclasses.replace(a.record, config={}))
    with pytest.raises(InputError, match="not a frontier point"):
        frontier_table([plain])


def test_plan_summaries_put_what_changes_first():
    a = pd.DataFrame({"variable": ["X", "X", "O"], "product": ["A", "B", "A"],
                      "value": [3.0, 4.0, 0.0]})
    b = a.assign(value=[3.0, 1.0, 2.0])
    totals = plan_totals({"a": a, "b": b})
    assert totals.index.tolist() == ["O", "X"]
    assert totals.loc["X"].tolist() == [7.0, 4.0]
    entries = plan_entries({"a": a, "b": b})
    assert entries.index.tolist() == ["X[B]", "O[A]", "X[A]"]
    assert entries.loc["X[B]"].tolist() == [4.0, 1.0]


# ----------------------------------------------------------------------------------------------
# `stochplan frontier` end to end


def run_json(argv: list[str], capsys) -> dict:
    code = main(argv)
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> dict:
    """One frontier, solved and stored by the command (JSON output), with its page."""
    folder = tmp_path_factory.mktemp("frontier")
    db, page = folder / "runs.db", folder / "frontier.html"
    out = io.StringIO()  # capsys is function-scoped: read the module fixture's stdout here
    with contextlib.redirect_stdout(out):
        code = main(["frontier", *SWEEP, "--db", str(db), "-o", str(page), "--json"])
    assert code == 0
    return {**json.loads(out.getvalue()), "db": db, "page": page, "folder": folder}


def stored_runs(db: Path, frontier: str) -> list[StoredRun]:
    with ResultsStore(db) as store:
        ids = store.frontier_runs(frontier)["id"].tolist()
        return [store.get_run(int(i)) for i in ids]


@pytest.mark.solve
def test_each_point_is_stored_and_linked(sweep):
    """One run per (sorted, deduplicated) weight, linked by config["frontier"], with the
    configuration of the sweep but its own risk.weight, on the same scenarios."""
    runs = stored_runs(sweep["db"], sweep["frontier"])
    assert len(runs) == len(WEIGHTS)
    first = runs[0].record
    for k, (run, weight) in enumerate(zip(runs, WEIGHTS)):
        rec = run.record
        assert rec.config["frontier"] == {"id": sweep["frontier"], "index": k,
                                          "weights": list(WEIGHTS)}
        assert rec.config["risk"] == {"measure": "cvar", "alpha": 0.8, "weight": weight}
        assert rec.config["model"]["integer"] is False
        assert (rec.scenarios, rec.seed, rec.n_scenarios) == ("sample:8", 3, 8)
        pd.testing.assert_frame_equal(rec.tables["scenarios"], first.tables["scenarios"])
        pd.testing.assert_frame_equal(rec.tables["demand"], first.tables["demand"])
        assert sweep["frontier"] in rec.label
    assert [p["run_id"] for p in sweep["points"]] == [r.id for r in runs]


@pytest.mark.solve
def test_expected_cost_rises_and_cvar_falls_along_the_frontier(sweep):
    table = frontier_table(stored_runs(sweep["db"], sweep["frontier"]))
    loss, cv, var = (table[c].to_numpy(float) for c in ("expected_loss", "cvar",
                                                        "value_at_risk"))
    scale = float(np.abs(loss).max())
    assert np.all(np.diff(loss) >= -RTOL * scale), loss
    assert np.all(np.diff(cv) <= RTOL * scale), cv
    assert frontier_violations(table) == [] and sweep["violations"] == []
    # the measure's own relations: CVaR >= VaR and CVaR >= E at every point
    assert np.all(cv >= var - RTOL * scale) and np.all(cv >= loss - RTOL * scale)
    # the two ends: objective = E at weight 0, = CVaR at weight 1
    assert math.isclose(table["objective"].iloc[0], loss[0], rel_tol=1e-12)
    assert math.isclose(table["objective"].iloc[-1], cv[-1], rel_tol=1e-12)
    # and the sweep is not flat: risk aversion buys a lower CVaR at a higher expected cost
    assert cv[-1] < cv[0] - 1.0 and loss[-1] > loss[0] + 1.0


@pytest.mark.solve
def test_weight_zero_is_the_risk_neutral_solve(sweep):
    """The weight-0 point's objective and expected cost equal a risk-neutral `solve` of the
    same configuration (same scenarios), within HiGHS's LP tolerance."""
    from stochplan.config import load_config
    from stochplan.run import solve_instance

    config = load_config(instance="electronics", model={"integer": False},
                         scenarios={"spec": "sample:8", "seed": 3})
    outcome = solve_instance(config)
    assert outcome is not None and "risk" not in outcome.result.info
    point = frontier_table(stored_runs(sweep["db"], sweep["frontier"])).iloc[0]
    assert point["weight"] == 0.0
    rp = float(outcome.result.objective)
    assert math.isclose(point["objective"], rp, rel_tol=1e-9)
    assert math.isclose(point["expected"], rp, rel_tol=1e-9)


@pytest.mark.solve
def test_show_redraws_the_same_numbers(sweep, capsys):
    """`--show` by frontier id, by any point's run id and `last` reads the stored runs back:
    the same table (exact floats) and a page with the same values."""
    db = str(sweep["db"])
    again = sweep["folder"] / "again.html"
    by_id = run_json(["frontier", "--show", sweep["frontier"], "--db", db, "-o", str(again),
                      "--json"], capsys)
    assert by_id["points"] == sweep["points"] and by_id["frontier"] == sweep["frontier"]
    middle = str(sweep["points"][2]["run_id"])
    assert run_json(["frontier", "--show", middle, "--db", db, "-o", str(again), "--json"],
                    capsys)["points"] == sweep["points"]
    assert run_json(["frontier", "--show", "last", "--db", db, "-o", str(again), "--json"],
                    capsys)["points"] == sweep["points"]
    assert page_values(again) == page_values(sweep["page"])
    # the text table names every point's run and weight
    assert main(["frontier", "--show", sweep["frontier"], "--db", db, "-o", str(again)]) == 0
    text = capsys.readouterr().out
    for point in sweep["points"]:
        assert re.search(rf"\b{point['weight']:g}\b.*\b{point['run_id']}\s*$", text, re.M)
    assert f"stochplan compare {sweep['points'][0]['run_id']} {sweep['points'][-1]['run_id']}" \
        in text


def page_values(path: Path) -> dict[tuple[str, int], float]:
    """(data-kpi, data-run) -> data-value of the frontier page's points table."""
    page = path.read_text(encoding="utf-8")
    cells = re.findall(r'data-kpi="(frontier\.[a-z_]+)" data-value="([^"]+)" data-run="(\d+)"',
                       page)
    return {(html.unescape(k), int(r)): float(v) for k, v, r in cells}


@pytest.mark.solve
def test_the_page_shows_every_point_with_its_stored_values(sweep):
    values = page_values(sweep["page"])
    for point in sweep["points"]:
        run = point["run_id"]
        for name in ("weight", "expected", "value_at_risk", "cvar", "objective"):
            assert values[(f"frontier.{name}", run)] == point[name], (run, name)
    page = sweep["page"].read_text(encoding="utf-8")
    assert page.count('data-chart="frontier"') == 1 and 'data-invariants="hold"' in page
    assert "risk-neutral (λ = 0)" in page and "most risk-averse (λ = 1)" in page


@pytest.mark.solve
def test_compare_of_two_points_shows_the_risk_weight_and_the_plans(sweep, tmp_path):
    from stochplan.reports.dashboard import compare_html

    runs = stored_runs(sweep["db"], sweep["frontier"])
    page = compare_html([runs[0], runs[-1]])
    assert 'data-setting="risk.weight"' in page
    assert 'id="plan-differences"' in page
    n = int(re.search(r'data-plan-differences="(\d+)"', page).group(1))
    assert n > 0  # the safer plan is another plan


@pytest.mark.solve
def test_solve_frontier_from_python_stores_nothing_and_reports_each_point():
    from stochplan.analysis.frontier import point_record, solve_frontier
    from stochplan.config import load_config

    config = load_config(instance="electronics", model={"integer": False},
                         scenarios={"spec": "sample:4", "seed": 5},
                         risk={"measure": "cvar", "alpha": 0.75})
    seen = []
    outcomes = solve_frontier(config, [1.0, 0.0], on_point=lambda k, o: seen.append(k))
    assert seen == [0, 1]
    assert [o.config.risk.weight for o in outcomes] == [0.0, 1.0]
    record = point_record(outcomes[1], "F-test", 1, [0.0, 1.0])
    assert record.config["frontier"] == {"id": "F-test", "index": 1, "weights": [0.0, 1.0]}
    assert record.kpis["risk_cvar"] == outcomes[1].result.info["risk"]["cvar"]
    with pytest.raises(InputError, match="cvar"):
        solve_frontier(config.replace(risk=config.risk.replace(measure="expectation")), [0.0])


@pytest.mark.solve
def test_warm_started_points_equal_cold_solves():
    """Points after the first positive weight start HiGHS from the previous basis (only the
    costs change), and each equals a cold solve of the same configuration to 1e-9."""
    from stochplan.analysis.frontier import solve_frontier
    from stochplan.config import load_config
    from stochplan.run import solve_instance

    config = load_config(instance="electronics",
                         model={"integer": False, "lost_sales_penalty": 500.0},
                         scenarios={"spec": "poisson:10", "seed": 2},
                         risk={"measure": "cvar", "alpha": 0.9})
    weights = [0.0, 0.3, 0.6, 1.0]
    outcomes = solve_frontier(config, weights)
    assert [o.result.info.get("warm_start") for o in outcomes] == [False, False, True, True]
    for weight, outcome in zip(weights, outcomes):
        cold = solve_instance(config.replace(risk=config.risk.replace(weight=weight)))
        assert cold is not None and "warm_start" not in cold.result.info
        assert outcome.result.objective == pytest.approx(cold.result.objective, rel=1e-9)


@pytest.mark.parametrize(("argv", "word"), [
    (["--show", "F1", "electronics"], "not both"),
    ([], "INSTANCE"),
    (["--show", "F-none"], "no frontiers"),
    (["--show", "F1", "--weights", "0,1"], "not to --show"),
])
def test_show_and_instance_mistakes_are_one_line(argv, word, capsys, tmp_path):
    db = tmp_path / "r.db"
    with ResultsStore(db):
        pass
    assert main(["frontier", *argv, "--db", str(db)]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and word in err


@pytest.mark.solve
def test_a_failed_point_keeps_the_points_before_it(monkeypatch, capsys, tmp_path):
    """The second point fails (exit 3): the message names it and the stored first point,
    which `--show` draws as a frontier of 1 of 2 points."""
    import stochplan.run
    from stochplan.errors import SolveError

    solve = stochplan.run.solve_instance

    def failing(config, *args, **kwargs):
        if config.risk.weight == 1.0:
            raise SolveError("no optimal plan (made up)", "error")
        return solve(config, *args, **kwargs)

    monkeypatch.setattr(stochplan.run, "solve_instance", failing)
    db = str(tmp_path / "r.db")
    argv = ["frontier", "electronics", "--relax", "--scenarios", "sample:4", "--weights", "0,1",
            "--db", db, "--quiet"]
    assert main(argv) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("stochplan: solve failed: frontier point 2/2 (weight 1): no optimal")
    frontier = re.search(r"--show (F[\d-]+)", err).group(1)
    out = run_json(["frontier", "--show", frontier, "--db", db, "-o", str(tmp_path / "f.html"),
                    "--json"], capsys)
    assert [p["weight"] for p in out["points"]] == [0.0]
    assert "1 of 2 points are stored" in (tmp_path / "f.html").read_text(encoding="utf-8")
    with ResultsStore(db) as store:  # no --cvar: the default level
        assert store.get_run(1).record.config["risk"]["alpha"] == 0.95
