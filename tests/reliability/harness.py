"""Helpers of the reliability tests: running the real ``stochplan`` command in a subprocess
and checking a results database after it (integrity, row counts, no partial run)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The console script's code, run with this interpreter (a subprocess, as a user runs it).
COMMAND = [sys.executable, "-m", "stochplan"]
TABLES = ("runs", "plans", "kpis", "recourse", "tables")


def stochplan(args: Sequence[str], cwd: Path, timeout: float = 120.0,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``stochplan ARGS`` in ``cwd``; fails the test (instead of hanging) after
    ``timeout`` seconds."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100", **(env or {})}
    try:
        return subprocess.run([*COMMAND, *args], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, env=full_env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"stochplan {' '.join(args)} did not end within {timeout} s")


def db_state(path: Path) -> dict[str, int]:
    """Row counts of every table of a results database, after checking its integrity and that
    every stored run is whole (has its plan and its scenarios table)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}
        partial = conn.execute(
            "SELECT id FROM runs WHERE id NOT IN (SELECT run_id FROM plans) "
            "OR id NOT IN (SELECT run_id FROM tables)").fetchall()
        assert partial == [], f"partial runs {partial} in {path}"
        return counts
    finally:
        conn.close()
