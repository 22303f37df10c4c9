"""The value, evaluate and saa commands: JSON output, storage with the run, errors, MPI."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stochplan.cli import main
from stochplan.cli.common import money
from stochplan.store import ResultsStore

pytestmark = pytest.mark.solve


def _json(capsys, argv):
    assert main(argv) == 0
    out = capsys.readouterr().out
    return json.loads(out)


def test_value_of_an_instance_is_stored_with_its_run(tmp_path, capsys, tiny_path):
    db = str(tmp_path / "v.db")
    out = _json(capsys, ["value", str(tiny_path), "--db", db, "--json"])
    assert (out["rp"], out["ev"], out["eev"], out["ws"]) == (85.0, 60.0, 87.5, 62.5)
    assert out["vss"] == 2.5 and out["evpi"] == 22.5
    with ResultsStore(db) as store:
        run = store.get_run(out["run_id"]).record
    assert run.kpis["vss"] == 2.5 and run.kpis["evpi"] == 22.5
    assert run.kpis["profit"] == pytest.approx(315.0)
    assert {"value_by_scenario", "ev_plan"} <= set(run.tables)


def test_value_of_a_module(tmp_path, capsys):
    out = _json(capsys, ["value", "--module", "stochplan.models.farmer", "--num-scens", "3",
                         "--db", str(tmp_path / "v.db"), "--json"])
    assert round(out["vss"], 2) == 1150.0 and round(out["evpi"], 2) == 7015.56
    out = _json(capsys, ["value", "--module", "stochplan.models.farmer", "--num-scens", "3",
                         "--set", "farmer_maximize=true", "--db", str(tmp_path / "v.db"), "--json"])
    assert out["sense"] == "max" and round(out["rp"], 2) == 108390.0


def test_infinite_eev_is_written_as_inf_in_json(tmp_path, capsys, tiny_path):
    cfg = tmp_path / "strict.toml"
    cfg.write_text("[model]\nbackorder_fraction = 0.0\n")
    out = _json(capsys, ["value", str(tiny_path), "--config", str(cfg),
                         "--db", str(tmp_path / "v.db"), "--json"])
    assert out["eev"] == "inf" and out["vss"] == "inf"
    assert out["infeasible_scenarios"] == ["scen1"]
    assert out["infeasible_probability"] == 0.5
    assert out["note"].startswith("EEV = VSS = +inf: the mean-value plan has no feasible "
                                  "recourse in 1 scenario(s) (scen1), with probability 50.0%")


def test_saa_without_complete_recourse_stops_at_once_and_says_why(tmp_path, capsys, tiny_path):
    """No backorders, no lost sales: SAA stops at the first N with exit status 3 and a message
    naming the batch, its scenarios and the lost-sales option, and stores nothing."""
    cfg = tmp_path / "strict.toml"
    cfg.write_text("[model]\nbackorder_fraction = 0.0\ninteger = false\n")
    db = tmp_path / "s.db"
    status = main(["saa", str(tiny_path), "--config", str(cfg), "--target-gap", "0.5%",
                   "--scenarios", "poisson:10", "--max-n", "80", "--batches", "3",
                   "--db", str(db), "--quiet"])
    err = capsys.readouterr().err
    assert status == 3
    assert err.startswith("stochplan: infeasible: the N = 10 SAA plan has no feasible recourse")
    assert "MRP batch" in err and "--set lost_sales_penalty=" in err
    assert "N = 20" not in err


def test_evaluate_a_stored_run_and_its_mean_value_plan(tmp_path, capsys, tiny_path):
    db = str(tmp_path / "v.db")
    cfg = tmp_path / "lp.toml"
    cfg.write_text("[model]\ninteger = false\nlost_sales_penalty = 12.0\n")
    run = _json(capsys, ["value", str(tiny_path), "--config", str(cfg), "--scenarios",
                         "poisson:30", "--seed", "4", "--db", db, "--json"])["run_id"]
    out = _json(capsys, ["evaluate", str(run), "--scenarios", "poisson:60", "--seed", "9",
                         "--db", db, "--json"])
    plans = {p["plan"]: p for p in out["plans"]}
    assert set(plans) == {f"stochastic (run {run})", "mean-value (EV)"}
    for p in plans.values():
        assert p["n"] == 60 and p["ci_low"] <= p["mean"] <= p["ci_high"]
        assert 0.0 <= p["fill_rate"] <= 1.0
    with ResultsStore(db) as store:
        rec = store.get_run(run).record
    assert len(rec.tables["oos_costs"]) == 120
    assert rec.kpis["oos_mean"] == pytest.approx(plans[f"stochastic (run {run})"]["mean"])


def test_evaluate_refuses_the_runs_own_seed(tmp_path, capsys, tiny_path):
    db = str(tmp_path / "v.db")
    run = _json(capsys, ["solve", str(tiny_path), "--scenarios", "poisson:5", "--seed", "3",
                         "--db", db, "--json"])["run_id"]
    assert main(["evaluate", str(run), "--seed", "3", "--db", db]) == 2
    err = capsys.readouterr().err
    assert "--seed = 3" in err and "independent" in err
    # sample:N draws poisson:N's scenarios for this family: the same seed is the same draw
    assert main(["evaluate", str(run), "--scenarios", "sample:5", "--seed", "3", "--db", db]) == 2
    assert "independent" in capsys.readouterr().err
    for spec in ("named", "three-point"):
        assert main(["evaluate", str(run), "--scenarios", spec, "--db", db]) == 2
        err = capsys.readouterr().err
        assert f"--scenarios = {spec!r}" in err and "fresh scenarios" in err


def test_value_set_is_the_model_section_of_a_config(tmp_path, capsys, tiny_path):
    """``--set backorder_fraction=0.0`` gives what ``[model] backorder_fraction = 0.0`` gives."""
    db = str(tmp_path / "v.db")
    out = _json(capsys, ["value", str(tiny_path), "--set", "backorder_fraction=0.0",
                         "--db", db, "--json"])
    assert out["eev"] == "inf" and out["vss"] == "inf"
    assert out["infeasible_scenarios"] == ["scen1"]
    with ResultsStore(db) as store:
        assert store.get_run(out["run_id"]).record.config["model"]["backorder_fraction"] == 0.0


def test_saa_reaches_a_loose_target(tmp_path, capsys, tiny_path):
    # lost sales give complete recourse (without them the N = 8 plan is infeasible out of
    # sample: see test_saa_without_complete_recourse_stops_at_once_and_says_why)
    out = _json(capsys, ["saa", str(tiny_path), "--target-gap", "20%", "--start", "4",
                         "--batches", "3", "--relax", "--set", "lost_sales_penalty=12",
                         "--db", str(tmp_path / "v.db"), "--json"])
    assert out["reached"] is True
    last = out["steps"][-1]
    assert last["relative_upper"] <= 0.20
    assert last["gap_upper"] >= last["gap_mean"]


def test_saa_draws_the_kind_and_first_n_of_scenarios(tmp_path, capsys, tiny_path):
    """``--scenarios poisson:4`` with ``--set integer=false`` is ``--start 4 --relax``: the
    aggregate family's sample:N is poisson:N, so the steps are the same."""
    db = str(tmp_path / "v.db")
    common = ["--target-gap", "20%", "--batches", "3", "--set", "lost_sales_penalty=12",
              "--db", db, "--json"]
    a = _json(capsys, ["saa", str(tiny_path), "--start", "4", "--relax", *common])
    b = _json(capsys, ["saa", str(tiny_path), "--scenarios", "poisson:4", "--set",
                       "integer=false", *common])
    assert [s["n"] for s in a["steps"]] == [s["n"] for s in b["steps"]]
    assert b["steps"][0]["n"] == 4
    for sa, sb in zip(a["steps"], b["steps"]):
        assert sb["objective"] == pytest.approx(sa["objective"], rel=1e-12)
    with ResultsStore(db) as store:
        assert store.get_run(b["run_id"]).record.scenarios.startswith("poisson:")


@pytest.mark.mpi
def test_value_under_mpiexec_matches_the_serial_one(tmp_path, tiny_path):
    """The EEV and WS solves spread over 2 ranks give the serial numbers; rank 0 alone writes."""
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        pytest.skip(f"no mpiexec beside {sys.executable}")
    cfg = tmp_path / "lp.toml"
    cfg.write_text("[model]\ninteger = false\nlost_sales_penalty = 12.0\n")
    db = tmp_path / "mpi.db"
    cmd = [str(mpiexec), "-n", "2", sys.executable, "-m", "stochplan", "value", str(tiny_path),
           "--config", str(cfg), "--scenarios", "poisson:12", "--seed", "2", "--db", str(db),
           "--json"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    assert len(lines) == 1  # only rank 0 prints
    parallel = json.loads(lines[0])
    serial = subprocess.run([sys.executable, "-m", "stochplan", "value", str(tiny_path),
                             "--config", str(cfg), "--scenarios", "poisson:12", "--seed", "2",
                             "--db", str(tmp_path / "serial.db"), "--json"],
                            capture_output=True, text=True, timeout=300, check=False)
    expected = json.loads(serial.stdout)
    for key in ("rp", "ev", "eev", "ws", "vss", "evpi"):
        assert math.isclose(parallel[key], expected[key], rel_tol=1e-9, abs_tol=1e-6)
    with ResultsStore(db) as store:
        assert len(store.list_runs()) == 1


def test_evaluate_prints_the_paired_difference_where_both_plans_are_feasible(tmp_path, capsys,
                                                                             tiny_path):
    """Without backorders or lost sales the mean-value plan lacks recourse in some fresh
    scenarios (38 of 60) where the stochastic plan has one: its paired difference is +inf,
    and the line goes on with the difference where both plans have recourse, the same
    figures as the stored table gives (oos_summary)."""
    from stochplan.reports.view import oos_summary

    db = str(tmp_path / "v.db")
    cfg = tmp_path / "lp.toml"
    cfg.write_text("[model]\ninteger = false\nbackorder_fraction = 0.0\n")
    run = _json(capsys, ["value", str(tiny_path), "--config", str(cfg), "--scenarios",
                         "poisson:30", "--seed", "4", "--db", db, "--json"])["run_id"]
    assert main(["evaluate", str(run), "--scenarios", "poisson:60", "--seed", "9",
                 "--db", db]) == 0
    out = capsys.readouterr().out
    with ResultsStore(db) as store:
        costs = store.get_run(run).record.tables["oos_costs"]
    ev = oos_summary(costs).iloc[1]
    assert ev["diff_mean"] == math.inf and 0 < ev["both_feasible"] < 60
    line = next(x for x in out.splitlines() if "minus" in x).strip()
    assert line == (
        f"mean-value (EV) minus stochastic (run {run}), paired: +inf; where both are feasible "
        f"({ev['both_feasible']} scenarios): mean {money(ev['diff_feasible_mean'])}  95% CI "
        f"[{money(ev['diff_feasible_ci_low'])}, {money(ev['diff_feasible_ci_high'])}]")


@pytest.mark.parametrize(("x", "text"), [
    (1234.5, "$1,234.50"), (-1234.5, "-$1,234.50"), (0.0, "$0.00"),
    (math.inf, "inf"), (-math.inf, "-inf"), (math.nan, "nan")])
def test_the_command_line_writes_dollars_as_the_reports_do(x, text):
    """One way to write an amount: a paired difference below zero read "$-12.00" on the
    command line and "-$12.00" in the reports, and -inf read "nan"."""
    from stochplan.reports.text import money as report_money

    assert money(x) == report_money(x) == text
