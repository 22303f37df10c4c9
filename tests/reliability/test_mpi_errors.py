"""Mistakes under ``mpiexec``: said once, by rank 0, with the command's exit status.

Every rank parses the same command line and reads the same inputs, so every rank finds the
same mistake. Before, each rank printed it, and ``python -m mpi4py`` turned the exit status
into ``MPI_Abort``, which added a line of its own (``Abort(2) on node 1 ...``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import ROOT

from stochplan import parallel

pytestmark = pytest.mark.mpi


def _mpiexec() -> str:
    found = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which(
        "mpiexec")
    if found is None:
        pytest.skip("no mpiexec")
    return found


MPI4PY = ["-m", "mpi4py", "-m", "stochplan"]
PLAIN = ["-m", "stochplan"]
RUNNERS = pytest.mark.parametrize("runner", [MPI4PY, PLAIN], ids=["mpi4py", "plain"])


def _said_once(ranks: int, runner: list[str], args: list[str], cwd: Path, status: int) -> str:
    """Run ``stochplan ARGS`` on ``ranks`` ranks; check the exit ``status``, exactly one line
    on stderr (no abort line) and nothing on stdout; return that line."""
    done = subprocess.run([_mpiexec(), "-n", str(ranks), sys.executable, *runner, *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == status, done.stderr
    assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr
    assert done.stdout == ""
    return done.stderr.strip()


#: (arguments, the start of the one line expected): a usage error found by argparse, one
#: found in the configuration, one in the family's options, and one in `value`'s inputs.
CASES = [
    (["solve", "electronics", "--method", "lshaped", "--nosuch"],
     "stochplan: error: unrecognized arguments: --nosuch"),
    (["solve", "electronics", "--method", "lshaped", "--scenarios", "poisson:3",
      "--time-limit", "-1"], "stochplan: error: --time-limit = -1.0: must be positive seconds"),
    (["solve", "electronics", "--method", "ph", "--scenarios", "poisson:3", "--set",
      "nosuch=1"], "stochplan: error: --set nosuch = 1: unknown option"),
    (["value", "electronics", "--scenarios", "poisson:0"],
     "stochplan: error: scenarios.spec = 'poisson:0'"),
]


@RUNNERS
@pytest.mark.parametrize("args, line", CASES, ids=[c[0][0] + "-" + c[1].split(":")[2].strip()
                                                   .split()[0] for c in CASES])
def test_a_mistake_under_mpiexec_is_said_once(args: list[str], line: str, runner: list[str],
                                              tmp_path: Path) -> None:
    """Three ranks: exit 2, one line on stderr (rank 0's), nothing on stdout, no abort line,
    and no database written."""
    said = _said_once(3, runner, [*args, "--db", "results.db"], tmp_path, 2)
    assert said.startswith(line), said
    assert not (tmp_path / "results.db").exists()


@RUNNERS
def test_a_results_database_rank_0_refuses_is_said_once(runner: list[str],
                                                        tmp_path: Path) -> None:
    """A decomposed solve has taken its communicator when rank 0 checks ``--db`` (the other
    ranks must not open the file at once): the check's outcome, broadcast, puts the ranks
    back in step, so the mistake ends as one found by every rank, not with an abort line."""
    folder = tmp_path / "a folder"
    folder.mkdir()
    said = _said_once(3, runner, ["solve", "electronics", "--method", "lshaped", "--scenarios",
                                  "poisson:3", "--db", str(folder)], tmp_path, 2)
    assert said == f"stochplan: error: --db = {str(folder)!r}: is a folder, not a database file"
    assert list(folder.iterdir()) == []


#: (runner, command, a word of its one line): ``value`` solves the recourse problem on rank 0
#: while the other ranks wait for it; the L-shaped method finds on rank 0 (its master) that no
#: plan has feasible recourse; PH checks the first scenario on every rank before mpi-sppy
#: starts (whose hub and spokes would each fail in their own way); SAA solves the same
#: problem on every rank. Both runners where they failed differently; else mpi4py's, which
#: turns a rank's lone exit into an abort line.
#: The console script, run by this interpreter (as its first line says).
CONSOLE = [str(Path(sys.executable).parent / "stochplan")]
INFEASIBLE = [
    *[pytest.param(runner, ["value"], "inventory_balance", id=f"value-{name}")
      for runner, name in ((MPI4PY, "mpi4py"), (PLAIN, "plain"), (CONSOLE, "console"))],
    *[pytest.param(runner, ["solve", "--method", "ph", "--relax"],
                   "scenario scen0 alone is infeasible", id=f"ph-{name}")
      for runner, name in ((MPI4PY, "mpi4py"), (PLAIN, "plain"))],
    pytest.param(MPI4PY, ["solve", "--method", "lshaped", "--relax"], "feasibility cuts",
                 id="lshaped-mpi4py"),
    pytest.param(MPI4PY, ["saa", "--max-n", "6", "--batches", "2", "--target-gap", "0.01"],
                 "inventory_balance", id="saa-mpi4py"),
]


@pytest.mark.parametrize("runner, command, word", INFEASIBLE)
def test_an_infeasibility_rank_0_finds_is_said_once(runner: list[str], command: list[str],
                                                    word: str, tmp_path: Path) -> None:
    """An infeasible instance under ``mpiexec``: said once, status 3. ``value`` and the
    L-shaped method: rank 0 alone finds it, after the ranks have taken their communicator;
    every rank learns it from a broadcast, instead of rank 0 ending alone (the others waiting
    until the launcher kills them, or MPI_Abort adding its line). PH: every rank finds it
    alike, before mpi-sppy starts (its hub and spokes each failed in their own way, with
    status 1). SAA: every rank solves the same SAA problem and finds it alike (each rank said
    it, then MPI_Abort its line)."""
    from stochplan.data import resolve_instance

    folder = tmp_path / "inst"
    shutil.copytree(resolve_instance("electronics").parent, folder)
    toml = folder / "instance.toml"
    assert "hours_per_worker = 40" in toml.read_text()
    toml.write_text(toml.read_text().replace("hours_per_worker = 40", "hours_per_worker = 0"))
    said = _said_once(3, runner, [command[0], str(folder), *command[1:], "--scenarios",
                                  "poisson:3", "--db", "results.db"], tmp_path, 3)
    assert said.startswith("stochplan: infeasible:") and word in said, said
    assert not (tmp_path / "results.db").exists()


def test_ph_meeting_a_scenario_infeasible_alone_says_it_once(tmp_path: Path,
                                                              infeasible_in_scen4: Path) -> None:
    """The first scenario is feasible, so the check before mpi-sppy starts passes; PH meets
    scen4 in its first iteration. The hub says it once, naming the scenario and its
    constraint families, and the job ends with status 3 (a spoke failed first with an
    AttributeError, status 1, beside the hub's vaguer line). MPI_Abort adds its own line."""
    done = subprocess.run(
        [_mpiexec(), "-n", "3", sys.executable, *MPI4PY, "solve", "electronics", "--method",
         "ph", "--scenarios", f"file:{infeasible_in_scen4}", "--db", "results.db"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 3, done.stderr
    said = [line for line in done.stderr.splitlines() if line.startswith("stochplan:")]
    assert len(said) == 1, done.stderr
    assert said[0].startswith("stochplan: infeasible: scenario scen4 alone is infeasible: "
                              "constraint families that cannot all hold: inventory_balance")
    others = [line for line in done.stderr.splitlines() if not line.startswith("stochplan:")]
    assert all(line.startswith("Abort(3)") for line in others), done.stderr
    assert not (tmp_path / "results.db").exists()


def test_ph_on_one_process_meeting_it_says_one_line(tmp_path: Path,
                                                    infeasible_in_scen4: Path) -> None:
    """The same without mpiexec: one line, status 3, nothing on stdout (MPICH's transport
    printed two warnings there at exit, about the MPI windows the failed run left open)."""
    done = subprocess.run(
        [sys.executable, *PLAIN, "solve", "electronics", "--method", "ph", "--scenarios",
         f"file:{infeasible_in_scen4}", "--db", "results.db"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 3, done.stderr
    assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr
    assert "scenario scen4 alone is infeasible" in done.stderr
    assert done.stdout == ""


def test_a_ph_run_short_of_its_target_is_said_once(tmp_path: Path) -> None:
    """PH on 3 ranks stopped by its iteration limit without a plan: rank 0 alone finds it,
    after the hub and spokes are done; every rank ends with status 3 and it is said once
    (rank 0 ended alone, and mpi4py's runner added its abort line)."""
    said = _said_once(3, MPI4PY, ["solve", "electronics", "--method", "ph", "--relax",
                                  "--scenarios", "poisson:30", "--rel-gap", "1e-6",
                                  "--max-iterations", "2", "--db", "results.db"], tmp_path, 3)
    assert said.startswith("stochplan: solve failed: progressive hedging"), said


def test_an_saa_plan_without_recourse_in_a_batch_is_said_once(tmp_path: Path) -> None:
    """The MRP's batches are shared among the ranks; a batch in which the SAA plan has no
    feasible recourse is made known to every rank, which all raise the same error: said once,
    status 3 (electronics without lost sales lacks relatively complete recourse)."""
    said = _said_once(2, MPI4PY, ["saa", "electronics", "--relax", "--scenarios", "poisson:5",
                                  "--max-n", "10", "--batches", "4", "--target-gap", "0.0001",
                                  "--db", "results.db"], tmp_path, 3)
    assert "has no feasible recourse" in said and "MRP batch" in said, said
    assert not (tmp_path / "results.db").exists()


#: The L-shaped master (rank 0's alone) fails at its first step while the other rank waits
#: for its decision.
MASTER_FAILS = """
import sys
from stochplan import parallel
from stochplan.cli import main
from stochplan.errors import SolveError
from stochplan.solve.lshaped import method

def fails(*args, **kwargs):
    raise SolveError("HiGHS failed on the master (injected)")

method._master_step = fails
parallel.leave(main(sys.argv[1:]))
"""


def test_a_master_that_fails_on_rank_0_ends_every_rank(tmp_path: Path) -> None:
    """The L-shaped master lives on rank 0; when its step raises, the decision the other
    ranks wait for carries the failure, so every rank ends with status 3, said once (the
    other rank waited in its broadcast until the launcher killed it)."""
    said = _said_once(2, ["-m", "mpi4py", "-c", MASTER_FAILS],
                      ["solve", "electronics", "--method", "lshaped", "--relax", "--scenarios",
                       "poisson:4", "--db", "results.db"], tmp_path, 3)
    assert said == "stochplan: solve failed: HiGHS failed on the master (injected)"


#: Rank 1 alone finds a mistake (rank 0 goes on, as if it had found none): rank 1's kept-back
#: message must still be said, and the job must end, long before rank 0's 60 s.
ONE_RANK_ONLY = """
import time
from mpi4py import MPI
from stochplan import parallel
parallel.IN_STEP_WAIT = 1.0
if MPI.COMM_WORLD.Get_rank() == 1:
    assert parallel.follower()
    parallel.say("stochplan: error: only rank 1 found this")
    parallel.leave(2)
time.sleep(60)
"""


def test_a_mistake_one_rank_alone_finds_is_still_said(tmp_path: Path) -> None:
    """A follower keeps its message back for rank 0 to say; when rank 0 does not come to
    the meeting in time, the follower says it and the job is aborted with its status."""
    began = time.monotonic()
    done = subprocess.run([_mpiexec(), "-n", "2", sys.executable, "-m", "mpi4py", "-c",
                           ONE_RANK_ONLY], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert time.monotonic() - began < 40, done.stderr
    assert done.returncode == 2, done.stderr
    assert "stochplan: error: only rank 1 found this" in done.stderr.splitlines()


def test_without_mpi_from_root_is_the_work_itself() -> None:
    """Without a communicator the work is done here, and its error is raised as it is."""
    assert parallel.from_root(lambda: 42, None) == 42

    def fails() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        parallel.from_root(fails, None)


def test_without_mpi_leave_is_sys_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a launcher every process speaks (it is rank 0) and leaves with its status."""
    for var in parallel._LAUNCHER_VARS:
        monkeypatch.delenv(var, raising=False)
    assert parallel.root() and not parallel.follower()
    for status in (0, 2, 3):
        with pytest.raises(SystemExit) as stop:
            parallel.leave(status)
        assert stop.value.code == status
