"""Faults: signals during build, solve and store; a database that cannot be written at store
time; several writers at once. Each runs the real command in a subprocess with a timeout, and
checks the database after it (integrity, no partial run, nothing lost)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from harness import COMMAND, ROOT, db_state, stochplan

pytestmark = pytest.mark.solve

#: A MIP whose build takes about 2 s and whose HiGHS solve about 6 s (on one idle core):
#: long enough to be interrupted in each phase.
LONG = ["solve", "electronics", "--scenarios", "poisson:1000"]
#: A run that reaches its store phase in seconds (the store tests wait there on a held lock).
SHORT = ["solve", "electronics", "--relax", "--scenarios", "poisson:50"]


class Running:
    """``stochplan -v ARGS`` started in ``cwd``, its stderr read line by line."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None,
                 command: list[str] | None = None):
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            command or [*COMMAND, "-v", *args], cwd=cwd, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        """Wait until a stderr line holds ``text`` (fails the test on timeout or exit)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(text in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                self._reader.join(5)
                if any(text in line for line in self.lines):
                    return
                pytest.fail(f"exited {self.proc.returncode} before {text!r}: {self.stderr}")
            time.sleep(0.02)
        self.proc.kill()
        pytest.fail(f"no {text!r} within {timeout} s: {self.stderr}")

    def finish(self, timeout: float = 60.0) -> int:
        """The exit status; fails the test (after killing it) if it does not end in time."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"did not end within {timeout} s of the signal: {self.stderr}")
        self._reader.join(5)
        return code

    @property
    def stderr(self) -> str:
        return "".join(self.lines)


@pytest.fixture
def work(tmp_path: Path, seeded_db: Path) -> Path:
    shutil.copy(seeded_db, tmp_path / "results.db")
    return tmp_path


def _hold_lock(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    return conn


# ----------------------------------------------------------------------------------------------
# Signals, serial: build, solve and store


@pytest.mark.parametrize("sig, status, word", [
    (signal.SIGINT, 130, "interrupted"),
    (signal.SIGTERM, 143, "terminated"),
    (signal.SIGKILL, -9, None),
])
@pytest.mark.parametrize("phase", ["build", "solve", "store"])
def test_signal_during_a_phase(phase: str, sig: int, status: int, word: str | None,
                               work: Path) -> None:
    """A signal in any phase: the right status and message, promptly (a HiGHS solve stops at
    once), the database intact and unchanged (the store waits on a held write lock)."""
    db = work / "results.db"
    before = db_state(db)
    holder = None
    try:
        run = Running([*(SHORT if phase == "store" else LONG), "--db", "results.db",
                       "--quiet"], work,
                      env={"STOCHPLAN_LOCK_TIMEOUT": "60"})
        if phase == "store":
            run.wait_for("phase: load")  # the database was checked: now hold its lock
            holder = _hold_lock(db)
        run.wait_for(f"phase: {phase}", timeout=120)
        if phase == "store":
            run.wait_for("waiting up to")
        else:
            time.sleep(0.5)
        sent = time.monotonic()
        run.proc.send_signal(sig)
        if word is not None:
            # within the solve, HiGHS's interrupt callback stops it: it does not run to the end
            # (the process's exit afterwards, freeing a large model, is not timed)
            run.wait_for(f"stochplan: {word}", timeout=30)
            assert time.monotonic() - sent < 2.5, "the signal was not honoured promptly"
        code = run.finish(timeout=30)
    finally:
        if holder is not None:
            holder.rollback()
            holder.close()
    assert code == status, run.stderr
    if word is not None:
        assert run.stderr.strip().splitlines()[-1] == (
            f"stochplan: {word}; the results database is unchanged")
        assert "Traceback" not in run.stderr
    assert db_state(db) == before


# ----------------------------------------------------------------------------------------------
# Recovery: the database cannot be written when the run is stored


def test_store_failure_keeps_the_run_in_a_recovery_file(work: Path) -> None:
    """The write lock is taken by another process after the check and held: the store gives
    up (saying what it waited for), the run goes to a recovery file whose path is printed,
    and ``stochplan import`` brings it in."""
    db = work / "results.db"
    before = db_state(db)
    run = Running(["solve", "electronics", "--relax", "--scenarios", "poisson:50", "--db",
                   "results.db", "--quiet"], work, env={"STOCHPLAN_LOCK_TIMEOUT": "2"})
    run.wait_for("phase: load")
    holder = _hold_lock(db)
    try:
        code = run.finish()
    finally:
        holder.rollback()
        holder.close()
    assert code == 2, run.stderr
    assert "waiting up to" in run.stderr and "for the write lock on results.db" in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert "database is locked" in last and "could not be stored" in last
    found = re.search(r"it was written to (\S+): `stochplan import", last)
    assert found, last
    recovery = Path(found.group(1))
    recovery = recovery if recovery.is_absolute() else work / recovery
    assert recovery.is_file()
    assert db_state(db) == before
    assert db_state(recovery)["runs"] == 1

    done = stochplan(["import", str(recovery), "--db", "results.db"], work)
    assert done.returncode == 0, done.stderr
    after = db_state(db)
    assert after["runs"] == before["runs"] + 1
    assert after["plans"] > before["plans"]
    shown = stochplan(["show", str(before["runs"] + 1), "--db", "results.db"], work)
    assert shown.returncode == 0 and "electronics" in shown.stdout


def test_unwritable_database_fails_before_solving(work: Path) -> None:
    """A database that cannot be written fails fast (exit 2), before any solving."""
    db = work / "results.db"
    holder = _hold_lock(db)  # the same for every user: root ignores file modes
    try:
        done = stochplan(["-v", *LONG, "--db", "results.db", "--quiet"], work,
                         env={"STOCHPLAN_LOCK_TIMEOUT": "1"})
    finally:
        holder.rollback()
        holder.close()
    assert done.returncode == 2, done.stderr
    assert "database is locked" in done.stderr and "results.db" in done.stderr
    assert "phase: build" not in done.stderr, "it built the model before refusing"


# ----------------------------------------------------------------------------------------------
# Concurrency


def test_concurrent_writers_and_a_long_lock(work: Path) -> None:
    """Four processes store at once while another holds the write lock for 3 s: all four
    runs are stored, whole; a fifth, whose lock wait (1 s) is shorter than the hold, is
    clearly refused and stores nothing."""
    db = work / "results.db"
    before = db_state(db)
    holder = _hold_lock(db)
    args = [*COMMAND, "solve", "electronics", "--relax", "--db", "results.db", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen(args, cwd=work, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    impatient = subprocess.Popen(args, cwd=work, env={**env, "STOCHPLAN_LOCK_TIMEOUT": "1"},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        refused = impatient.communicate(timeout=60)[1]
        time.sleep(max(0.0, 3.0))
    finally:
        holder.rollback()
        holder.close()
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [r[1] for r in results]
    assert impatient.returncode == 2 and "database is locked" in refused, refused
    after = db_state(db)
    assert after["runs"] == before["runs"] + 4


# ----------------------------------------------------------------------------------------------
# MPI: a signal to one rank of a 3-rank job


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True)
    children: dict[int, list[int]] = {}
    for line in out.stdout.splitlines():
        child, parent = (int(x) for x in line.split())
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            found.append(c)
            todo.append(c)
    return found


def _ranks(pid: int) -> list[int]:
    ranks = []
    for p in _descendants(pid):
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"stochplan" in cmd and b"mpi4py" in cmd:
            ranks.append(p)
    return sorted(ranks)


@pytest.mark.mpi
@pytest.mark.slow
@pytest.mark.parametrize("method", ["ph", "lshaped"])
@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143),
                                         (signal.SIGKILL, None)])
def test_signal_to_a_rank(method: str, sig: int, status: int | None, work: Path) -> None:
    """A signal to rank 1 of a 3-rank job: the job ends (bounded) with the right status and
    message, no stochplan-ph-* folder is left in the temporary folder, and the database is
    intact and unchanged. SIGKILL cannot be caught: the job must still end, unsuccessfully,
    with the database unchanged."""
    mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which(
        "mpiexec")
    if mpiexec is None:
        pytest.skip("no mpiexec")
    tmp = work / "tmp"
    tmp.mkdir()
    db = work / "results.db"
    before = db_state(db)
    args = [mpiexec, "-n", "3", sys.executable, "-m", "mpi4py", "-m", "stochplan", "-v",
            "solve", "electronics", "--relax", "--scenarios", "poisson:300", "--method", method,
            "--max-iterations", "100000", "--rel-gap", "1e-9", "--db", "results.db", "--quiet"]
    run = Running([], work, env={"TMPDIR": str(tmp)}, command=args)
    proc = run.proc
    try:
        run.wait_for("phase: solve", timeout=120)
        time.sleep(1.0)  # into the solve
        ranks = _ranks(proc.pid)
        assert len(ranks) == 3, f"the job does not have 3 ranks: {run.stderr}"
        os.kill(ranks[1], sig)
        proc.wait(60)
    except subprocess.TimeoutExpired:
        for p in _descendants(proc.pid):
            os.kill(p, signal.SIGKILL)
        proc.kill()
        pytest.fail("the job did not end within 60 s of the signal")
    err = run.stderr
    if status is None:  # SIGKILL: mpiexec ends the job; nothing can be said by the rank
        assert proc.returncode != 0, err
        assert db_state(db) == before
        return
    assert proc.returncode == status, err
    word = "interrupted" if sig == signal.SIGINT else "terminated"
    assert f"stochplan: {word}" in err and "the results database is unchanged" in err, err
    assert "Traceback" not in err
    assert not list(tmp.glob("stochplan-ph-*")), "a PH log folder was left behind"
    assert db_state(db) == before


def _chattr(flag: str, path: Path) -> bool:
    """``chattr FLAG PATH``; False where the file system or the user cannot."""
    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


@pytest.mark.parametrize("target", ["file", "folder"])
def test_immutable_database_or_folder_fails_before_solving(target: str, work: Path) -> None:
    """An existing database that cannot be written, or a new one in a folder that takes no
    file (``chattr +i``: refused even to root), fails with exit 2 before any solving, and
    leaves nothing behind."""
    if target == "file":
        locked, db = work / "results.db", "results.db"
    else:
        locked = work / "sealed"
        locked.mkdir()
        db = "sealed/new.db"
    if not _chattr("+i", locked):
        pytest.skip("chattr +i is not available here")
    try:
        done = stochplan(["-v", "solve", "electronics", "--relax", "--db", db, "--quiet"], work)
    finally:
        _chattr("-i", locked)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"stochplan: error: --db = '{db}'"), last
    assert "nothing was solved" in last
    assert "phase: build" not in done.stderr
    if target == "folder":
        assert list(locked.iterdir()) == []
