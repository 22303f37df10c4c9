"""Acceptance of the test family through the command line: every command on the kiosk.

``solve`` (EF and L-shaped), ``value``, ``evaluate``, ``saa``, ``show``, ``runs``,
``dashboard`` and ``compare`` run in this process (the family is registered by conftest.py);
progressive hedging under ``mpiexec``, ``stochplan`` in a child process and mpi-sppy's own
driver run in child processes that find the family through its entry point (``plugin_env``).
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import newsvendor
import pytest

from stochplan.cli import main
from stochplan.solve.ef import solve_ef
from stochplan.solve.results import CLOSED_GAP
from stochplan.solve.solvers import relative_gap
from stochplan.store import ResultsStore

from .conftest import KIOSK

FAMILY = newsvendor.FAMILY
MPIEXEC = Path(sys.executable).parent / "mpiexec"
SPEC, SEED = "sample:30", 1


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``stochplan ARGV`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def run_json(*argv: str) -> dict:
    code, out, err = run_cli(*argv, "--json")
    assert code == 0, err
    return json.loads(out.strip().splitlines()[-1])


def ef_objective(spec: str, seed: int | None = 0) -> float:
    inst = FAMILY.resolve(str(KIOSK))
    names = FAMILY.scenario_set(inst, spec, seed).names
    return solve_ef(newsvendor, names, FAMILY.creator_kwargs(inst, spec, seed)).objective


@pytest.fixture(scope="module")
def solved(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A database with the kiosk on sample:30 solved by the EF (run 1) and L-shaped (run 2)."""
    db = tmp_path_factory.mktemp("cli") / "runs.db"
    common = ("--scenarios", SPEC, "--seed", str(SEED), "--db", db)
    ef = run_json("solve", KIOSK, "--method", "ef", *common)
    lshaped = run_json("solve", KIOSK, "--method", "lshaped", *common)
    return {"db": db, "ef": ef, "lshaped": lshaped}


@pytest.mark.solve
def test_solve_ef_and_lshaped_agree_within_the_gap(solved):
    ef, ls = solved["ef"], solved["lshaped"]
    assert (ef["run_id"], ls["run_id"]) == (1, 2)
    assert ef["method"] == "ef" and ls["method"] == "lshaped"
    assert ef["objective"] == pytest.approx(ef_objective(SPEC, SEED), rel=1e-12)
    assert ls["bound"] <= ef["objective"] + 1e-9 <= ls["objective"] + 2e-9
    assert relative_gap(ls["objective"], ef["objective"]) <= ls["gap"] + 1e-12
    assert ls["gap"] <= 1e-4
    assert ef["kpis"]["expected_profit"] == pytest.approx(-ef["objective"], rel=1e-12)
    assert set(ef["kpis"]) >= {"expected_profit", "fill_rate", "expected_leftover"}


@pytest.mark.solve
def test_value_orders_ws_rp_eev(solved):
    out = run_json("value", KIOSK, "--scenarios", SPEC, "--seed", SEED, "--db", solved["db"])
    assert out["sense"] == "min" and out["n_scenarios"] == 30
    assert out["ws"] <= out["rp"] <= out["eev"]
    assert out["vss"] >= 0 and out["evpi"] >= 0
    assert out["rp"] == pytest.approx(solved["ef"]["objective"], rel=1e-9)
    assert out["vss"] == pytest.approx(out["eev"] - out["rp"], rel=1e-12)
    assert out["evpi"] == pytest.approx(out["rp"] - out["ws"], rel=1e-12)


@pytest.mark.solve
def test_evaluate_out_of_sample(solved):
    out = run_json("evaluate", 1, "--scenarios", "sample:200", "--seed", 9, "--db", solved["db"])
    (plan,) = out["plans"]
    assert plan["n"] == 200 and plan["prob_infeasible"] == 0.0
    assert plan["ci_low"] <= plan["mean"] <= plan["ci_high"]
    assert 0.0 < plan["fill_rate"] <= 1.0  # the family's own out-of-sample KPI
    with ResultsStore(solved["db"]) as store:
        rec = store.get_run(1).record
    assert rec.kpis["oos_mean"] == pytest.approx(plan["mean"], rel=1e-12)
    assert len(rec.tables["oos_costs"]) == 200


@pytest.mark.solve
def test_saa_reaches_a_5_percent_gap(solved):
    out = run_json("saa", KIOSK, "--target-gap", "5%", "--start", 10, "--max-n", 40,
                   "--batches", 5, "--db", solved["db"])
    assert out["reached"] and out["target"] == pytest.approx(0.05)
    assert out["steps"][-1]["relative_upper"] <= 0.05


@pytest.mark.solve
def test_show_and_runs(solved):
    code, out, err = run_cli("show", 1, "--db", solved["db"])
    assert code == 0, err
    assert "kiosk, sample:30" in out and "NEWSVENDOR SUMMARY" in out
    for product in ("papers", "sandwiches", "flowers"):
        assert product in out
    code, out, err = run_cli("runs", "--db", solved["db"])
    assert code == 0, err
    assert "lshaped" in out and "kiosk" in out


@pytest.mark.solve
def test_dashboard_shows_the_family_panel(solved, tmp_path):
    page = tmp_path / "run1.html"
    code, _, err = run_cli("dashboard", 1, "--db", solved["db"], "-o", page)
    assert code == 0, err
    html = page.read_text()
    assert "Order against expected demand" in html
    for product in ("papers", "sandwiches", "flowers"):
        assert product in html


@pytest.mark.solve
def test_compare_two_runs(solved, tmp_path):
    page = tmp_path / "compare.html"
    code, _, err = run_cli("compare", 1, 2, "--db", solved["db"], "-o", page)
    assert code == 0, err
    html = page.read_text()
    assert "runs 1, 2 compared" in html and "kiosk" in html


@pytest.mark.solve
def test_file_scenarios_equal_the_same_named_scenarios(tmp_path):
    """The kiosk's named scenarios written as a tidy file (scenario, product, value,
    probability) give the objective and plan of ``--scenarios named``."""
    inst = FAMILY.resolve(str(KIOSK))
    rows = ["scenario,product,value,probability"]
    for label, demand, p in zip(inst.scenario_labels, inst.scenario_demand,
                                inst.scenario_probabilities):
        rows += [f"{label},{product},{d:g},{p:g}" for product, d in zip(inst.products, demand)]
    path = tmp_path / "scenarios.csv"
    path.write_text("\n".join(rows) + "\n")
    db = tmp_path / "runs.db"
    named = run_json("solve", KIOSK, "--scenarios", "named", "--db", db)
    from_file = run_json("solve", KIOSK, "--scenarios", f"file:{path}", "--db", db)
    assert from_file["n_scenarios"] == named["n_scenarios"] == 3
    assert from_file["objective"] == pytest.approx(named["objective"], rel=1e-12)
    with ResultsStore(db) as store:
        plans = [store.get_run(i).record.plan.sort_values("product") for i in (1, 2)]
    assert plans[0]["value"].to_numpy() == pytest.approx(plans[1]["value"].to_numpy(), abs=1e-9)


@pytest.mark.solve
def test_stochplan_in_a_child_process_finds_the_family_by_entry_point(plugin_env, tmp_path):
    listing = subprocess.run([sys.executable, "-m", "stochplan", "instances"], check=False,
                             env=plugin_env,
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr[-2000:]
    assert any(line.startswith("kiosk") and "[newsvendor]" in line
               for line in listing.stdout.splitlines())
    solve = subprocess.run([sys.executable, "-m", "stochplan", "solve", "kiosk", "--scenarios",
                            "sample:5", "--db", str(tmp_path / "runs.db"), "--json"],
                           check=False, env=plugin_env, capture_output=True, text=True,
                           timeout=120, cwd=tmp_path)
    assert solve.returncode == 0, solve.stderr[-2000:]
    out = json.loads(solve.stdout.strip().splitlines()[-1])
    assert out["objective"] == pytest.approx(ef_objective("sample:5"), rel=1e-12)


@pytest.mark.solve
def test_runs_unchanged_under_generic_cylinders(plugin_env, tmp_path):
    """mpi-sppy's own driver, given ``--module-name newsvendor``, solves the EF of the
    kiosk's ``sample:3`` (the module's default instance, seed 0) to the objective stochplan
    gives."""
    cmd = [sys.executable, "-m", "mpisppy.generic_cylinders", "--module-name", "newsvendor",
           "--num-scens", "3", "--scenario-kind", "sample", "--EF", "--EF-solver-name",
           "appsi_highs"]
    out = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=tmp_path,
                         timeout=300, env=plugin_env)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line for line in out.stdout.splitlines() if "EF objective:" in line]
    assert lines, out.stdout[-2000:]
    value = float(lines[-1].rsplit("EF objective:", 1)[1])
    assert value == pytest.approx(ef_objective("sample:3"), rel=1e-9)


@pytest.mark.mpi
def test_ph_on_two_ranks_brackets_the_extensive_form(plugin_env, tmp_path):
    """``mpiexec -n 2 python -m mpi4py -m stochplan solve KIOSK --method ph``: bound <= EF
    optimum <= incumbent, within the 1 % target; rank 0 alone prints and stores."""
    if not MPIEXEC.exists():
        pytest.skip(f"no mpiexec beside {sys.executable}")
    spec, seed, db = "sample:6", 11, tmp_path / "runs.db"
    cmd = [str(MPIEXEC), "-n", "2", sys.executable, "-m", "mpi4py", "-m", "stochplan", "solve",
           str(KIOSK), "--method", "ph", "--scenarios", spec, "--seed", str(seed),
           "--rel-gap", "0.01", "--max-iterations", "100", "--db", str(db), "--json",
           "--partial"]
    run = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=180,
                         cwd=tmp_path, env=plugin_env)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, run.stdout
    out = json.loads(lines[0])
    ef = ef_objective(spec, seed)
    tol = 1e-6 * abs(ef)
    assert out["method"] == "ph" and out["ranks"] == 2
    assert out["bound"] <= ef + tol and ef <= out["objective"] + tol
    assert out["status"] == "gap_reached" and CLOSED_GAP < out["gap"] <= 0.01  # gap open
    with ResultsStore(db) as store:
        runs = store.list_runs()
        assert len(runs) == 1
        rec = store.get_run(int(runs["id"].iloc[0])).record
    assert rec.family == "newsvendor" and list(rec.plan.columns) == ["variable", "product", "value"]
