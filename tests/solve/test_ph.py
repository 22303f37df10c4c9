"""Progressive hedging (:mod:`stochplan.solve.ph`): options, layout, and solves under mpiexec.

The ``mpi`` tests run ``stochplan solve --method ph --json`` with ``[ph] backend = "pyomo"``
under ``mpiexec`` (the venv's own, beside ``sys.executable``) on 1, 2 and 3 ranks, on a
handful of Poisson scenarios of the electronics instance, and compare with the extensive form
solved in this process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stochplan.cli import main
from stochplan.config import load_config
from stochplan.errors import InputError
from stochplan.models import aggregate
from stochplan.solve.ef import solve_ef
from stochplan.solve.evaluate import evaluate_plan
from stochplan.solve.ph import PHOptions, _bundles, cylinders_for
from stochplan.solve.results import CLOSED_GAP, percent
from stochplan.solve.solvers import relative_gap
from stochplan.store import ResultsStore

MPIEXEC = Path(sys.executable).parent / "mpiexec"

# ----------------------------------------------------------------------------------------------
# Options and layout (no solver)


@pytest.mark.parametrize("field, value", [
    ("rel_gap", 0.0), ("rel_gap", 1.5), ("max_iterations", 0), ("max_iterations", 2.5),
    ("time_limit", -1.0), ("rho", "magic"), ("default_rho", 0.0), ("rho_multiplier", -1.0),
    ("bundle_size", 0), ("solver", "cplex"),
])
def test_bad_options_name_the_field(field, value):
    with pytest.raises(InputError, match=f"ph.{field}"):
        PHOptions(**{field: value})


def test_bundle_size_is_explicit_or_a_few_bundles_per_hub_rank():
    assert PHOptions(bundle_size=7).bundle_size_for(100, 3) == 7
    assert PHOptions(bundle_size=500).bundle_size_for(100, 3) == 100
    # 3 ranks: one hub rank, so two bundles of 4
    assert PHOptions().bundle_size_for(8, 3) == 4
    for n, ranks in [(100, 1), (100, 3), (1000, 3), (5000, 3), (5000, 6)]:
        size = PHOptions().bundle_size_for(n, ranks)
        assert 1 < size <= n // 2


def test_bundles_are_consecutive_blocks_covering_every_scenario():
    names = [f"scen{k}" for k in range(23)]
    bundles = _bundles(names, 5)
    assert list(bundles) == ["Bundle_0_4", "Bundle_5_9", "Bundle_10_14", "Bundle_15_22"]
    assert [n for members in bundles.values() for n in members] == names


def test_ranks_become_hub_then_incumbent_then_bound_spokes():
    assert cylinders_for(1) == ("hub",)
    assert cylinders_for(2) == ("hub", "xhat")
    assert cylinders_for(3) == cylinders_for(8) == ("hub", "lagrangian", "xhat")


def test_config_ph_section_and_overrides(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('method = "ph"\n[ph]\nrel_gap = 0.005\nbundle_size = 10\n')
    config = load_config(cfg, ph={"max_iterations": 7, "rel_gap": None})
    assert config.method == "ph"
    assert config.ph == PHOptions(rel_gap=0.005, bundle_size=10, max_iterations=7)
    cfg.write_text("[ph]\nrelgap = 0.1\n")
    with pytest.raises(InputError, match="ph.relgap"):
        load_config(cfg)
    with pytest.raises(InputError, match="method"):
        load_config(None, method="benders")


def test_ph_flags_need_method_ph(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["solve", "electronics", "--rel-gap", "0.01"])
    assert code == 2
    assert "--rel-gap" in capsys.readouterr().err


@pytest.mark.solve
def test_stopping_at_the_gap_target_is_said_with_the_gap(tmp_path, capsys):
    """PH on one rank, in this process, stops at its 1 % target with the gap open (0.24 % on
    the tiny LP): status "gap_reached", not "optimal", yet solved as asked (stored, and
    ``solve`` and ``show`` print the gap and its target)."""
    db = tmp_path / "runs.db"
    argv = ["solve", str(TINY), "--method", "ph", "--relax", "--scenarios", "poisson:6",
            "--seed", "1", "--db", str(db), "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    with ResultsStore(db) as store:
        record = store.get_run(1).record
    assert record.method == "ph" and record.status == "gap_reached"
    assert CLOSED_GAP < record.gap <= 0.01
    assert record.config["solve_info"]["stop_reason"] == "gap"
    said = f"PH with HiGHS: gap target reached (gap {percent(record.gap)}, target 1.00%)"
    assert said in printed and "HiGHS: optimal" not in printed
    assert "iterations, gap target reached.\n" in printed  # the PH summary
    assert main(["show", "1", "--db", str(db)]) == 0
    assert said in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------
# Solves under mpiexec


SPEC, SEED = "poisson:6", 11
TINY = Path(__file__).parents[1] / "data" / "tiny"
#: case -> (instance, model options). The integer case runs on the tiny instance: PH's MIP
#: subproblems on the electronics instance take minutes (see benchmarks/RESULTS.md).
CASES = {
    "lp": ("electronics", {"integer": False}),
    "integer": (str(TINY), {}),  # the instance's default: integer production and recourse
}


def _ef(case: str):
    instance, options = CASES[case]
    inst = aggregate.resolve(instance, options or None)
    names = aggregate.scenario_set(inst, SPEC, SEED).names
    kwargs = aggregate.creator_kwargs(inst, SPEC, SEED)
    return inst, names, kwargs, solve_ef(aggregate, names, kwargs)


def _run_ph(tmp_path: Path, ranks: int, case: str, rel_gap: float = 0.01,
            max_iterations: int = 60) -> tuple[dict, Path]:
    """``stochplan solve --method ph --json`` on ``ranks`` ranks; (its JSON, its database)."""
    if not MPIEXEC.exists():
        pytest.skip(f"no mpiexec beside {sys.executable}")
    instance, options = CASES[case]
    run_dir = tmp_path / f"{case}-{ranks}"
    run_dir.mkdir()
    cfg = run_dir / "run.toml"
    # the Pyomo subproblems, whose measured behaviour these tests state (the default highspy
    # guest has its own in tests/solve/test_ph_highs.py and test_ph_every_family.py)
    cfg.write_text("[model]\n" + "".join(f"{k} = {str(v).lower()}\n" for k, v in options.items())
                   + '[ph]\nbackend = "pyomo"\n')
    db = run_dir / "runs.db"
    cmd = [str(MPIEXEC), "-n", str(ranks), sys.executable, "-m", "mpi4py", "-m", "stochplan",
           "solve", instance, "--method", "ph", "--config", str(cfg), "--scenarios", SPEC,
           "--seed", str(SEED), "--rel-gap", str(rel_gap), "--max-iterations", str(max_iterations),
           "--db", str(db), "--json", "--partial"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=run_dir,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, run.stdout  # rank 0 alone prints, and only the JSON object
    assert sorted(p.name for p in run_dir.iterdir()) == ["run.toml", "runs.db"]  # no logs
    return json.loads(lines[0]), db


def _stored(db: Path):
    with ResultsStore(db) as store:
        runs = store.list_runs()
        assert len(runs) == 1  # rank 0 alone stores the run
        return store.get_run(int(runs["id"].iloc[0])).record


@pytest.mark.mpi
@pytest.mark.parametrize("ranks, case", [(2, "lp"), (3, "lp"), (2, "integer"), (3, "integer")])
def test_ph_brackets_the_extensive_form(tmp_path, ranks, case):
    """Bound <= EF optimum <= incumbent, the gap is the reported numbers' gap, and the
    stored plan costs, on the same scenarios, what PH reported.

    The LP reaches the 1 % target. PH is a heuristic for MIPs: on the integer case it may
    stop once the subproblems agree on a plan ("converged") with the gap still open, so
    there only the bracket and the consistency of the numbers are required.
    """
    inst, names, kwargs, ef = _ef(case)
    out, db = _run_ph(tmp_path, ranks, case)
    tol = 1e-6 * abs(ef.objective)
    assert out["method"] == "ph" and out["ranks"] == ranks
    assert out["bound"] <= ef.objective + tol
    assert ef.objective <= out["objective"] + tol
    assert out["gap"] == pytest.approx(relative_gap(out["objective"], out["bound"]), rel=1e-12)
    assert out["gap"] == pytest.approx((out["objective"] - out["bound"])
                                       / max(1.0, abs(out["objective"])), rel=1e-9, abs=1e-12)
    if case == "lp":  # stopped at the target, the gap still open
        assert out["status"] == "gap_reached" and CLOSED_GAP < out["gap"] <= 0.01
    else:
        assert out["status"] in ("gap_reached", "converged")
    record = _stored(db)
    assert record.method == "ph" and record.objective == pytest.approx(out["objective"])
    value = evaluate_plan(aggregate, record.plan, names, kwargs).expected()
    assert value == pytest.approx(out["objective"], rel=1e-9)


@pytest.mark.heavy
@pytest.mark.mpi
def test_same_seed_same_scenarios_and_plan_on_1_2_3_ranks(tmp_path):
    """Same seed => the same scenarios and the same plan, whatever the ranks.

    The hub's PH iterations do not depend on the spokes (one hub rank, the same bundles on
    1, 2 and 3 ranks), so when PH stops at its iteration limit (a gap target it cannot
    reach) the hub holds the same iterate on every layout. On this instance its subproblems
    agree on the first stage by then (measured), and that plan is the incumbent everywhere.
    The bound and the gap do depend on the layout: the Lagrangian spoke runs
    asynchronously. (Stopped by a gap, the iteration count, hence the plan, may differ
    within the gap: the README says so.)
    """
    inst, names, kwargs, ef = _ef("lp")
    expected = aggregate.scenario_set(inst, SPEC, SEED).demand
    demand = plan = objective = None
    for ranks in (1, 2, 3):
        out, db = _run_ph(tmp_path, ranks, "lp", rel_gap=1e-6, max_iterations=80)
        assert out["status"] == "iteration_limit" and out["iterations"] == 80
        record = _stored(db)
        table = record.tables["demand"].sort_values(["scenario", "product", "week"])
        table = table.reset_index(drop=True)
        if demand is None:
            demand, plan, objective = table, record.plan, out["objective"]
            assert np.array_equal(np.sort(demand["value"].to_numpy()), np.sort(expected.ravel()))
        else:
            assert demand.equals(table)
            assert record.plan.equals(plan), ranks
            assert out["objective"] == pytest.approx(objective, rel=1e-12)
        value = evaluate_plan(aggregate, record.plan, names, kwargs).expected()
        assert value == pytest.approx(out["objective"], rel=1e-9)
        assert out["bound"] <= ef.objective * (1 + 1e-9) <= out["objective"] * (1 + 2e-9)
        assert (out["objective"] - ef.objective) / ef.objective <= 1e-3


@pytest.mark.mpi
def test_a_failure_on_one_rank_is_said_and_ends_the_job(tmp_path):
    """A rank that raises inside mpi-sppy says so on stderr (type, message, log) and the
    job ends instead of leaving the other ranks waiting."""
    if not MPIEXEC.exists():
        pytest.skip(f"no mpiexec beside {sys.executable}")
    (tmp_path / "broken.py").write_text(
        "from stochplan.models.farmer import *\n"
        "from stochplan.models import farmer\n"
        "def scenario_creator(name, **kw):\n"
        "    if name == 'scen2':\n"
        "        raise ValueError('no data for scen2')\n"
        "    return farmer.scenario_creator(name, **kw)\n")
    script = ("import broken\n"
              "from stochplan.parallel import world\n"
              "from stochplan.solve.ph import PHOptions, solve_ph\n"
              "solve_ph(broken, ['scen0', 'scen1', 'scen2'], {},\n"
              "         PHOptions(bundle_size=1, log_dir='logs'), comm=world())\n")
    cmd = [str(MPIEXEC), "-n", "3", sys.executable, "-m", "mpi4py", "-c", script]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert run.returncode != 0
    said = [line for line in run.stderr.splitlines() if "progressive hedging failed" in line]
    assert said and "ValueError: no data for scen2" in said[0], run.stderr[-2000:]
    log = tmp_path / Path(said[0].rsplit("mpi-sppy's output: ", 1)[1].rstrip(")"))
    assert log.parent == tmp_path / "logs"
    assert "Traceback" in log.read_text() and "no data for scen2" in log.read_text()


@pytest.mark.mpi
def test_the_pyomo_path_meeting_a_later_infeasible_scenario_says_it_once(
        tmp_path, infeasible_in_scen4):
    """On the Pyomo subproblem path the hub says "no feasible solution in PH's first
    iteration" while the Lagrangian spoke fails with an AttributeError; the spoke waits, so
    the hub's line is the one said, with status 3 (both were said, and the spoke's status 1
    could win)."""
    if not MPIEXEC.exists():
        pytest.skip(f"no mpiexec beside {sys.executable}")
    script = ("from stochplan.models import aggregate\n"
              "from stochplan.parallel import world\n"
              "from stochplan.solve.ph import PHOptions, solve_ph\n"
              "inst = aggregate.resolve('electronics', {})\n"
              f"spec = 'file:{infeasible_in_scen4}'\n"
              "solve_ph(aggregate, aggregate.scenario_set(inst, spec, 0).names,\n"
              "         aggregate.creator_kwargs(inst, spec, 0),\n"
              "         PHOptions(backend='pyomo', log_dir='logs'), comm=world())\n")
    run = subprocess.run([str(MPIEXEC), "-n", "3", sys.executable, "-m", "mpi4py", "-c", script],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 3, run.stderr[-2000:]
    said = [line for line in run.stderr.splitlines() if line.startswith("stochplan:")]
    assert len(said) == 1 and said[0].startswith("stochplan: infeasible: "), run.stderr[-2000:]


class _OneRank:
    def Get_size(self) -> int:
        return 1

    def Get_rank(self) -> int:
        return 0


def test_mpisppy_infeasible_subproblem_is_an_infeasible_error(tmp_path):
    """mpi-sppy reports a subproblem without a solution in iteration 0 as a RuntimeError; on
    one rank it becomes the InfeasibleError the command line ends with status 3 (it was an
    internal error, status 1). Other errors pass unchanged."""
    from stochplan.errors import InfeasibleError
    from stochplan.solve.ph import _cylinder_output

    with pytest.raises(InfeasibleError, match="no feasible solution in PH's first iteration"):
        with _cylinder_output(_OneRank(), str(tmp_path / "rank0.log")):
            raise RuntimeError("Infeasibility detected; E_feas=0.0, E1=1.0")
    with pytest.raises(RuntimeError, match="something else"):
        with _cylinder_output(_OneRank(), str(tmp_path / "rank0.log")):
            raise RuntimeError("something else")


def test_a_scenario_infeasible_alone_is_found_before_ph_starts():
    """The first scenario's LP relaxation is checked first: no labour hours at all is named
    with the constraint families, as the extensive form names them."""
    from stochplan.errors import InfeasibleError
    from stochplan.solve.ph import _check_first_scenario

    inst = aggregate.resolve("electronics", {"integer": False})
    names = aggregate.scenario_set(inst, "poisson:2", 0).names
    kwargs = aggregate.creator_kwargs(inst, "poisson:2", 0)
    _check_first_scenario(aggregate, names[0], kwargs, _OneRank())  # feasible: quiet
    none = dataclasses.replace(inst, hours_per_worker=0.0)
    kwargs = aggregate.creator_kwargs(none, "poisson:2", 0)
    with pytest.raises(InfeasibleError, match="scenario scen0 alone is infeasible") as err:
        _check_first_scenario(aggregate, names[0], kwargs, _OneRank())
    assert "production_hours" in str(err.value) and err.value.families
