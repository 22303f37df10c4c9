"""Runs of an instance read from a database (`--input-db`).

`solve`: the run and the results written back are stored together or not at all.

The results go back to the input database inside the results store's transaction: when the
write-back fails, the run is not in the results database either (it goes to a recovery
file) and the input database keeps its tables as they were. One window is left: the store's
own commit failing after the input database committed (one database cannot wait for
another's commit); the store commits right after, with nothing left to write."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy.exc

from stochplan.cli import main
from stochplan.store import ResultsStore

pytestmark = pytest.mark.solve


def tables_of(db: Path) -> dict[str, pd.DataFrame]:
    with sqlite3.connect(db) as conn:
        names = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        return {n: pd.read_sql_query(f'select * from "{n}"', conn) for n in names}


def run_count(db: Path) -> int:
    with ResultsStore(db) as store:
        return len(store.list_runs())


@pytest.fixture
def input_db(tmp_path: Path) -> Path:
    db = tmp_path / "in.db"
    assert main(["generate", "multisite", "--sites", "2", "--seed", "3", "--db", str(db)]) == 0
    return db


def solve(input_db: Path, runs: Path) -> int:
    return main(["solve", "multisite", "--input-db", str(input_db), "--scenarios", "sample:3",
                 "--seed", "1", "--relax", "--quiet", "--db", str(runs)])


def test_a_failed_write_back_stores_nothing_and_keeps_the_run_in_a_recovery_file(
        tmp_path: Path, input_db: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs.db"
    assert solve(input_db, runs) == 0  # one run stored, ResultData written
    before_input = tables_of(input_db)
    assert "ResultData" in before_input and run_count(runs) == 1

    def refuse(self: pd.DataFrame, *args: object, **kwargs: object) -> None:
        raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(pd.DataFrame, "to_sql", refuse)
    capsys.readouterr()
    status = solve(input_db, runs)
    err = capsys.readouterr().err.strip().splitlines()
    assert status != 0
    assert "writing the results back failed" in err[-1] and "disk I/O error" in err[-1]
    assert run_count(runs) == 1  # the store rolled back with the write-back
    after_input = tables_of(input_db)
    for name, frame in before_input.items():
        pd.testing.assert_frame_equal(after_input[name], frame)
    recovered = sorted(tmp_path.glob("runs.db.recovered-*.db"))
    assert len(recovered) == 1 and run_count(recovered[0]) == 1  # the solved run is not lost


def test_results_written_back_name_the_stored_run(tmp_path: Path, input_db: Path) -> None:
    runs = tmp_path / "runs.db"
    assert solve(input_db, runs) == 0
    assert solve(input_db, runs) == 0
    with ResultsStore(runs) as store:
        newest = int(store.list_runs()["id"].max())
    results = tables_of(input_db)["ResultData"]
    assert set(results["run_id"]) == {newest}  # replaced, not appended, in the same step


def test_evaluate_reads_the_instance_from_its_input_database(
        tmp_path: Path, input_db: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A run solved from a database is evaluated on that database's sites (it was evaluated
    on the built-in instance, and failed on a site the plan does not have), from any folder."""
    runs = tmp_path / "runs.db"
    assert solve(input_db, runs) == 0
    with ResultsStore(runs) as store:
        config = store.get_run(1).record.config
    assert config["input_db"] == str(input_db.resolve())
    monkeypatch.chdir(tmp_path.parent)
    capsys.readouterr()
    assert main(["evaluate", "last", "--db", str(runs), "--draws", "5", "--json"]) == 0
    out = capsys.readouterr().out
    assert "stochastic (run 1)" in out


def test_a_stored_input_database_url_has_no_password() -> None:
    from stochplan.run import without_password

    assert without_password("postgresql+psycopg://u:secret@h:5432/db") == (
        "postgresql+psycopg://u@h:5432/db")
    assert without_password("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert without_password("/some/file.db") == "/some/file.db"


def test_value_reads_an_input_database_site_by_site(
        tmp_path: Path, input_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`value --input-db`: the database's two sites valued one by one, their figures summing
    to the totals, and the run remembers the database."""
    runs = tmp_path / "runs.db"
    capsys.readouterr()
    assert main(["value", "multisite", "--input-db", str(input_db), "--scenarios", "sample:3",
                 "--seed", "1", "--relax", "--json", "--db", str(runs)]) == 0
    out = json.loads(capsys.readouterr().out)
    by_site = pd.DataFrame(out["by_block"])  # one record per site
    assert len(by_site) == 2
    for key in ("rp", "ws", "evpi"):
        assert by_site[key].sum() == pytest.approx(out[key], rel=1e-9, abs=1e-6)
    with ResultsStore(runs) as store:
        assert store.get_run(1).record.config["input_db"] == str(input_db.resolve())
    capsys.readouterr()
    assert main(["value", "multisite", "--input-db", str(tmp_path / "none.db"), "--db",
                 str(runs)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--input-db" in err[0] and "none.db" in err[0]
