"""The results store on a real PostgreSQL server (the ``pg_url`` fixture of
``tests/conftest.py`` starts a throw-away one; skipped with the reason where PostgreSQL or the
psycopg driver cannot be had).

Each test gets a database of its own in that server. The records and checks are those of
``tests/test_store.py``, so both back ends are held to the same cases; where SQLite and
PostgreSQL differ (NaN, -0.0) the difference is asserted as documented in
:mod:`stochplan.store`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pandas.testing as pdt
import pytest

import stochplan.store as store_mod
from stochplan.cli import main
from stochplan.errors import InputError, StoreError
from stochplan.store import (
    SCHEMA_VERSION,
    DatabaseURL,
    ResultsStore,
    import_runs,
    resolve_db,
    save_or_recover,
)

TESTS = Path(__file__).parent


def _load_store_cases() -> Any:
    """tests/test_store.py as a module (its record factories and checks), not collected."""
    spec = importlib.util.spec_from_file_location("_store_cases", TESTS / "test_store.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


cases = _load_store_cases()
make_record, make_plan, make_recourse = cases.make_record, cases.make_plan, cases.make_recourse
assert_same_record, PLAN_SHAPES = cases.assert_same_record, cases.PLAN_SHAPES
ALL_TABLES = (*cases.ALL_TABLES, "schema_version")
ORDER = {"runs": "id", "plans": "rowid", "kpis": "rowid", "tables": "rowid",
         "recourse": "rowid", "schema_version": "version"}


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[str]:
    """The URL of a new, empty database in the test server, dropped after the test."""
    import sqlalchemy as sa

    name = f"store_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"{pg_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


def sql(url: str, statement: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Run one statement in its own transaction on ``url``; its rows (none for DML)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement), params or {})
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def dump(url: str) -> dict[str, list[str]]:
    """Every row of every store table in write order, as text (NaN-safe to compare)."""
    return {t: [repr(r) for r in sql(url, f'SELECT * FROM "{t}" ORDER BY {ORDER[t]}')]
            for t in ALL_TABLES}


def row_counts(url: str) -> dict[str, int]:
    return {t: int(sql(url, f'SELECT COUNT(*) FROM "{t}"')[0][0]) for t in cases.ALL_TABLES}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- round trips ------------------------------------------------------------------------------


def test_url_resolves_to_a_database_url_that_hides_the_password() -> None:
    db = resolve_db("postgresql+psycopg://me:s3cret@db.example.com:5432/plans")
    assert isinstance(db, DatabaseURL)
    assert str(db) == "postgresql+psycopg://me:***@db.example.com:5432/plans"
    assert "s3cret" not in repr(db) and db.name == "plans"
    assert db.url.password == "s3cret"


def test_new_database_gets_the_schema_and_version_2(pg_db: str) -> None:
    ResultsStore(pg_db).close()
    assert sql(pg_db, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)] == [(2,)]
    assert row_counts(pg_db) == {t: 0 for t in cases.ALL_TABLES}
    ResultsStore(pg_db).close()  # opening again changes nothing
    assert sql(pg_db, "SELECT version FROM schema_version") == [(2,)]


def test_processes_creating_the_schema_at_once_all_open_it(pg_db: str) -> None:
    """Four connections open a new database at the same moment: one creates the tables, the
    others find them (none fails, one version row)."""
    import threading

    barrier, errors, ids = threading.Barrier(4), [], []

    def open_and_save() -> None:
        try:
            barrier.wait(timeout=30)
            with ResultsStore(pg_db) as store:
                ids.append(store.save_run(make_record()))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_and_save) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and sorted(ids) == [1, 2, 3, 4]
    assert sql(pg_db, "SELECT version FROM schema_version") == [(2,)]


def test_save_then_get_round_trips_every_field(pg_db: str) -> None:
    tables = {**make_record().tables, "recourse": make_recourse()}
    record = make_record(tables=tables, parent_run=None)
    with ResultsStore(pg_db) as store:
        run_id = store.save_run(record)
        stored = store.get_run(run_id)
    assert stored.id == run_id == 1
    assert stored.created.endswith("+00:00")
    assert_same_record(stored.record, record)
    assert stored.record.kpis["eev_gap"] == math.inf
    assert stored.record.tables["per_product"].loc[1, "margin"] == 1e-20
    assert stored.record.tables["recourse"].loc[1, "value"] == 1e-20
    with ResultsStore(pg_db) as store:  # a new connection reads the same
        assert_same_record(store.get_run(run_id).record, record)


@pytest.mark.parametrize("shape", list(PLAN_SHAPES))
def test_plan_of_any_index_shape_round_trips(pg_db: str, shape: str) -> None:
    plan = PLAN_SHAPES[shape]
    with ResultsStore(pg_db) as store:
        got = store.get_run(store.save_run(make_record(plan=plan))).record.plan
    pdt.assert_frame_equal(got, plan, check_exact=True)


def test_floats_extremes_and_non_finite(pg_db: str, tmp_path: Path) -> None:
    """+-inf, subnormals, the largest doubles and 0.1+0.2 come back bit for bit; NaN is
    written as NULL and reads back as on SQLite (None for objective/bound/gap, NaN else)."""
    extremes = [5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -1.7976931348623157e308,
                math.inf, -math.inf, 0.1 + 0.2, 1e-20, math.nan]
    plan = pd.DataFrame({"variable": ["X"] * len(extremes), "k": range(len(extremes)),
                         "value": extremes})
    recourse = pd.DataFrame({"scenario": ["s"] * len(extremes), "variable": ["B"] * len(extremes),
                             "k": range(len(extremes)), "value": extremes})
    kpis = {f"k{i}": v for i, v in enumerate(extremes)}
    record = make_record(objective=math.inf, bound=math.nan, gap=5e-324, plan=plan, kpis=kpis,
                         tables={"recourse": recourse})
    got = {}
    for name, db in (("postgres", pg_db), ("sqlite", tmp_path / "f.db")):
        with ResultsStore(db) as store:
            got[name] = store.get_run(store.save_run(record)).record
    for rec in got.values():
        assert rec.objective == math.inf and rec.bound is None and rec.gap == 5e-324
        assert_same_record(rec, dataclasses.replace(record, bound=None))
    assert_same_record(got["postgres"], got["sqlite"])
    # NULL, not NaN, in PostgreSQL, as in SQLite
    assert sql(pg_db, "SELECT bound FROM runs") == [(None,)]
    assert sql(pg_db, "SELECT COUNT(*) FROM plans WHERE value IS NULL") == [(1,)]


def test_nan_written_by_another_program_reads_like_null(pg_db: str) -> None:
    """PostgreSQL holds NaN (SQLite cannot): the store reads it exactly as NULL."""
    with ResultsStore(pg_db) as store:
        run_id = store.save_run(make_record())
    sql(pg_db, "UPDATE runs SET objective = 'NaN', gap = 'NaN'")
    sql(pg_db, "UPDATE kpis SET value = 'NaN' WHERE name = 'profit'")
    sql(pg_db, "UPDATE plans SET value = 'NaN' WHERE variable = 'W'")
    with ResultsStore(pg_db) as store:
        rec = store.get_run(run_id).record
        runs = store.list_runs()
    assert rec.objective is None and rec.gap is None and rec.bound == -108390.5
    assert math.isnan(rec.kpis["profit"])
    assert rec.plan.loc[rec.plan["variable"] == "W", "value"].isna().all()
    assert runs["objective"].isna().all()


def test_negative_zero_keeps_its_sign_on_postgres_only(pg_db: str, tmp_path: Path) -> None:
    record = make_record(objective=-0.0, kpis={"z": -0.0})
    signs = {}
    for name, db in (("postgres", pg_db), ("sqlite", tmp_path / "z.db")):
        with ResultsStore(db) as store:
            rec = store.get_run(store.save_run(record)).record
        assert rec.objective == 0.0 and rec.kpis["z"] == 0.0
        signs[name] = (math.copysign(1, rec.objective), math.copysign(1, rec.kpis["z"]))
    assert signs == {"postgres": (-1.0, -1.0), "sqlite": (1.0, 1.0)}


def test_list_runs_add_and_delete(pg_db: str) -> None:
    with ResultsStore(pg_db) as store:
        parent = store.save_run(make_record(label="a"))
        child = store.save_run(make_record(parent_run=parent, method="eev", seed=None,
                                           tables={"recourse": make_recourse(2)}))
        runs = store.list_runs()
        assert runs["id"].tolist() == [child, parent] == [2, 1]
        assert runs["seed"].tolist()[0] is pd.NA and runs["seed"].tolist()[1] == 12345
        assert runs["label"].tolist() == ["baseline", "a"]
        assert store.list_runs(limit=1)["id"].tolist() == [2]
        extra = pd.DataFrame({"scenario": [0, 1], "profit": [1.0, 2.0]})
        store.add_table(parent, "oos", extra)
        store.add_kpis(parent, {"profit": 1.0, "vss": 1150.0})
        got = store.get_run(parent).record
        assert list(got.tables) == ["per_product", "second_stage", "oos"]
        assert list(got.kpis) == ["profit", "operating_margin", "eev_gap", "vss"]
        assert got.kpis["profit"] == 1.0
        store.add_table(parent, "oos", extra.head(1), replace=True)
        got = store.get_run(parent).record
        assert list(got.tables) == ["per_product", "second_stage", "oos"]
        pdt.assert_frame_equal(got.tables["oos"], extra.head(1))
        with pytest.raises(InputError, match="already has a table"):
            store.add_table(parent, "oos", extra)
        with pytest.raises(InputError, match="derive from it"):
            store.delete_run(parent)
        with pytest.raises(InputError, match="no such run") as info:
            store.get_run(42)
        assert "postgresql+psycopg://" in str(info.value)
        store.delete_run(child)
        store.delete_run(parent)
        assert store.list_runs().empty
    assert row_counts(pg_db) == {t: 0 for t in cases.ALL_TABLES}  # ON DELETE CASCADE


def test_frontier_runs(pg_db: str, tmp_path: Path) -> None:
    """The same frontier points found on PostgreSQL and SQLite; a config that is not JSON
    (edited by hand) or whose frontier id is not text is not a point."""
    configs = [
        {"frontier": {"id": "f1", "index": 0}},
        {"other": 1},
        {"frontier": {"id": "f1", "index": 1}},
        {"frontier": {"id": "f2", "index": 0}},
        {"frontier": {"id": 7, "index": 0}},
    ]
    found = {}
    for name, db in (("postgres", pg_db), ("sqlite", tmp_path / "f.db")):
        with ResultsStore(db) as store:
            for config in configs:
                store.save_run(make_record(config=config))
        target = db if name == "postgres" else f"sqlite:///{db}"
        sql(str(target), "UPDATE runs SET config = '{\"frontier\": not json' WHERE id = 2")
        with ResultsStore(db) as store:
            found[name] = (store.frontier_runs(), store.frontier_runs("f1"))
    every, f1 = found["postgres"]
    assert every["id"].tolist() == [1, 3, 4]
    assert every["frontier"].tolist() == ["f1", "f1", "f2"]
    assert every["index"].tolist() == [0, 1, 0]
    assert f1["id"].tolist() == [1, 3]
    for got, want in zip(found["postgres"], found["sqlite"], strict=True):
        pdt.assert_frame_equal(got, want)


def test_json_columns_query_with_postgres_json_operators(pg_db: str) -> None:
    """The module docstring's PostgreSQL spelling of the idx and config queries."""
    with ResultsStore(pg_db) as store:
        run_id = store.save_run(make_record(tables={"recourse": make_recourse()}))
    plan = make_plan()
    total = sql(pg_db, "SELECT SUM(value) FROM plans WHERE run_id = :r AND variable = 'X' "
                "AND (idx::json->>'week')::int = 2", {"r": run_id})[0][0]
    assert total == plan.loc[(plan["variable"] == "X") & (plan["week"] == 2), "value"].sum()
    rows = sql(pg_db, "SELECT scenario, (idx::json->>'week')::int AS week, SUM(value) "
               "FROM recourse WHERE run_id = :r AND variable = 'B' AND scenario = 'scen1' "
               "GROUP BY scenario, week ORDER BY week", {"r": run_id})
    rec = make_recourse()
    want = rec[(rec["variable"] == "B") & (rec["scenario"] == "scen1")].groupby("week")["value"]
    assert rows == [("scen1", w, pytest.approx(v, rel=1e-15)) for w, v in want.sum().items()]
    assert sql(pg_db, "SELECT config::json->'solver'->'options'->>'threads' FROM runs") == [("4",)]


# --- one transaction per run ------------------------------------------------------------------


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_failed_save_leaves_the_database_as_it_was(
    pg_db: str, monkeypatch: pytest.MonkeyPatch, exc_type: type[BaseException]
) -> None:
    """A save that dies after the runs row, plan rows, KPIs and a first table are written."""
    with ResultsStore(pg_db) as store:
        first = store.save_run(make_record())
    before = dump(pg_db)
    calls: list[str] = []
    real_insert_table = store_mod._insert_table

    def failing_insert_table(conn, run_id, name, table, replace):  # type: ignore[no-untyped-def]
        calls.append(name)
        if len(calls) == 2:
            written = conn.exec_driver_sql("SELECT COUNT(*) FROM plans WHERE run_id = %(r)s",
                                           {"r": run_id})
            assert written.scalar_one() == len(make_plan())
            raise exc_type("interrupted mid-write")
        real_insert_table(conn, run_id, name, table, replace)

    monkeypatch.setattr(store_mod, "_insert_table", failing_insert_table)
    with ResultsStore(pg_db) as store:
        with pytest.raises(exc_type, match="interrupted mid-write"):
            store.save_run(make_record(label="doomed", tables={
                "per_product": make_record().tables["per_product"], "recourse": make_recourse()}))
        assert calls == ["per_product", "recourse"]
        assert dump(pg_db) == before
        monkeypatch.undo()
        # no transaction left open: the same connection stores the next run
        assert store.save_run(make_record(label="after")) > first
        assert_same_record(store.get_run(first).record, make_record())
    assert row_counts(pg_db)["runs"] == 2


def test_attach_is_one_transaction(pg_db: str) -> None:
    with ResultsStore(pg_db) as store:
        run_id = store.save_run(make_record())
        before = dump(pg_db)
        bad = pd.DataFrame({"x": pd.Series([1, object()], dtype=object)})
        with pytest.raises(InputError):
            store.attach(run_id, {"ok": pd.DataFrame({"a": [1]}), "bad": bad}, {"k": 1.0})
        assert dump(pg_db) == before
        store.add_kpis(run_id, {"k2": 2.0})  # commits: nothing of the failed call comes along
        got = store.get_run(run_id).record
        assert "ok" not in got.tables and "k" not in got.kpis and got.kpis["k2"] == 2.0


# --- errors, probes, recovery and import ------------------------------------------------------


def test_unreachable_server_is_one_input_error_without_the_password() -> None:
    pytest.importorskip("psycopg")
    url = f"postgresql+psycopg://me:s3cret@127.0.0.1:{_free_port()}/x"
    start = time.monotonic()
    with pytest.raises(InputError, match="cannot connect to the database server") as info:
        ResultsStore(url)
    assert time.monotonic() - start < store_mod.CONNECT_TIMEOUT
    assert info.value.field == "db" and "me:***@127.0.0.1" in str(info.value)
    assert "s3cret" not in str(info.value) and len(str(info.value).splitlines()) == 1


def test_server_connections_get_the_connect_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that does not answer (no refusal) is given up after CONNECT_TIMEOUT s; a lock
    another session holds is waited for LOCK_TIMEOUT s at most (in milliseconds)."""
    seen: dict[str, Any] = {}
    real = store_mod.sa.create_engine

    def spy(url: Any, **kwargs: Any) -> Any:
        seen.update(kwargs.get("connect_args", {}))
        return real(url, **kwargs)

    monkeypatch.setattr(store_mod.sa, "create_engine", spy)
    with pytest.raises(InputError):
        ResultsStore(f"postgresql+psycopg://127.0.0.1:{_free_port()}/x")
    assert seen == {"connect_timeout": store_mod.CONNECT_TIMEOUT,
                    "options": f"-c lock_timeout={round(store_mod.LOCK_TIMEOUT * 1000)}"} \
        == {"connect_timeout": 5, "options": "-c lock_timeout=30000"}


def test_newer_schema_version_is_refused(pg_db: str) -> None:
    ResultsStore(pg_db).close()
    sql(pg_db, "UPDATE schema_version SET version = :v", {"v": SCHEMA_VERSION + 1})
    with pytest.raises(InputError, match="newer") as info:
        ResultsStore(pg_db)
    assert info.value.field == "db"


def test_foreign_runs_table_is_refused(pg_db: str) -> None:
    sql(pg_db, "CREATE TABLE runs (x INTEGER)")
    with pytest.raises(InputError, match="not a stochplan results store"):
        ResultsStore(pg_db)


def test_check_writable_changes_nothing_and_refuses_a_read_only_user(pg_db: str) -> None:
    with ResultsStore(pg_db) as store:
        store.save_run(make_record())
        before = dump(pg_db)
        store.check_writable()
    assert dump(pg_db) == before
    assert sql(pg_db, "SELECT to_regclass('_stochplan_write_probe')") == [(None,)]
    reader = _read_only_user(pg_db)
    with ResultsStore(reader) as store:
        assert store.list_runs()["id"].tolist() == [1]
        with pytest.raises(InputError, match="cannot be written") as info:
            store.check_writable()
    assert "permission denied" in str(info.value) and "nothing was solved" in str(info.value)
    assert "reader:***@" in str(info.value) and "pw-reader" not in str(info.value)


def _read_only_user(url: str) -> str:
    """A login that may read the store's tables but not write: its URL (with a password)."""
    name = url.rsplit("/", 1)[1]
    sql(url, "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'reader') "
        "THEN CREATE ROLE reader LOGIN PASSWORD 'pw-reader'; END IF; END $$")
    sql(url, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    sql(url, f'GRANT CONNECT ON DATABASE "{name}" TO reader')
    sql(url, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader")
    return url.replace("postgres@", "reader:pw-reader@", 1)


def test_save_or_recover_writes_a_recovery_file_in_the_working_directory(
    pg_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database on a server that refuses the write: the run goes to an SQLite recovery file
    in the current working directory (said so), and `import` brings it into the server."""
    with ResultsStore(pg_db) as store:
        store.save_run(make_record(label="first"))
    reader = _read_only_user(pg_db)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError) as info:
        save_or_recover(make_record(label="kept"), reader)
    err = info.value
    assert err.recovery is not None and Path(err.recovery).parent == tmp_path.resolve()
    assert "current working directory" in str(err) and "stochplan import" in str(err)
    assert "pw-reader" not in str(err) and "permission denied" in str(err)
    assert row_counts(pg_db)["runs"] == 1
    assert import_runs(err.recovery, pg_db) == [2]
    with ResultsStore(pg_db) as store:
        assert_same_record(store.get_run(2).record, make_record(label="kept"))
    assert save_or_recover(make_record(), pg_db) == (3, resolve_db(pg_db))


def test_a_lock_held_by_another_session_ends_in_a_recovery_file(
    pg_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another session holds the runs table locked: the save waits at most its lock timeout
    (PostgreSQL's ``lock_timeout``), then the run goes to a recovery file that says why, and
    `import` brings it in once the lock is gone. Before, the save waited for ever."""
    import sqlalchemy as sa

    with ResultsStore(pg_db) as store:
        store.save_run(make_record(label="first"))
    monkeypatch.chdir(tmp_path)
    holder = sa.create_engine(pg_db, poolclass=sa.pool.NullPool)
    with holder.connect() as conn:
        conn.exec_driver_sql("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")  # an open transaction
        began = time.monotonic()
        with pytest.raises(StoreError) as info:
            save_or_recover(make_record(label="kept"), pg_db, lock_timeout=1.0)
        waited = time.monotonic() - began
        conn.rollback()
    holder.dispose()
    err = info.value
    assert 1.0 <= waited < 10.0
    assert "lock" in str(err) and "1 s" in str(err) and err.recovery is not None
    assert row_counts(pg_db)["runs"] == 1
    assert import_runs(err.recovery, pg_db) == [2]
    with ResultsStore(pg_db) as store:
        assert_same_record(store.get_run(2).record, make_record(label="kept"))


@pytest.mark.parametrize("command", [["runs"], ["show", "1"], ["import", "RECOVERY"]])
def test_commands_facing_a_held_lock_end_in_one_line(
    command: list[str], pg_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    """A command that reads or writes while another session holds the runs table locked
    ends after the lock timeout with one line saying so and exit status 2, not an internal
    error; the database keeps its one run."""
    import sqlalchemy as sa

    with ResultsStore(pg_db) as store:
        store.save_run(make_record(label="first"))
    recovery = tmp_path / "r.db"
    with ResultsStore(recovery) as store:
        store.save_run(make_record(label="kept"))
    monkeypatch.setattr(store_mod, "LOCK_TIMEOUT", 1.0)
    argv = [str(recovery) if a == "RECOVERY" else a for a in command] + ["--db", pg_db]
    holder = sa.create_engine(pg_db, poolclass=sa.pool.NullPool)
    with holder.connect() as conn:
        conn.exec_driver_sql("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
        status = main(argv)
        conn.rollback()
    holder.dispose()
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2, err
    assert len(err) == 1 and "lock" in err[0] and "internal error" not in err[0]
    assert row_counts(pg_db)["runs"] == 1


def test_the_results_database_password_is_not_stored(pg_db: str) -> None:
    """A run's configuration names its database (``db``): stored with the password hidden."""
    config = {"db": pg_db.replace("postgres@", "postgres:pw-owner@", 1), "model": {"x": 1}}
    with ResultsStore(pg_db) as store:
        got = store.get_run(store.save_run(make_record(config=config))).record.config
    assert got == {**config, "db": pg_db.replace("postgres@", "postgres:***@", 1)}
    assert sql(pg_db, "SELECT COUNT(*) FROM runs WHERE config LIKE '%pw-owner%'") == [(0,)]


def test_import_between_sqlite_and_postgres(pg_db: str, tmp_path: Path) -> None:
    """SQLite -> PostgreSQL -> SQLite gives the runs back exactly, parent links kept where the
    target holds the parent."""
    lite, back = tmp_path / "a.db", tmp_path / "b.db"
    records = [make_record(label="p", tables={"recourse": make_recourse()}),
               make_record(parent_run=1, label="c", plan=PLAN_SHAPES["float_index_and_missing"])]
    with ResultsStore(lite) as store:
        for record in records:
            store.save_run(record)
    assert import_runs(lite, pg_db) == [1, 2]
    assert import_runs(pg_db, back) == [1, 2]
    with ResultsStore(lite) as a, ResultsStore(pg_db) as b, ResultsStore(back) as c:
        for run_id, record in enumerate(records, start=1):
            want = a.get_run(run_id)
            for other in (b.get_run(run_id), c.get_run(run_id)):
                assert other.created == want.created
                assert_same_record(other.record, record)
    with pytest.raises(InputError, match="target database itself"):
        import_runs(pg_db, pg_db)


# --- through the command line -----------------------------------------------------------------


@pytest.mark.solve
def test_solve_then_show_through_the_cli(pg_db: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`stochplan solve --db URL` stores the hand-checkable tiny run (expected cost $85) in
    PostgreSQL; `show last`, `runs` read it back; the stored run equals one stored in SQLite."""
    tiny = str(TESTS / "data" / "tiny")
    assert main(["solve", tiny, "--json", "--db", pg_db]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["run_id"] == 1 and out["objective"] == pytest.approx(85.0, abs=1e-9)
    assert main(["show", "last", "--db", pg_db]) == 0
    shown = capsys.readouterr().out
    assert "run 1: tiny" in shown and "$85.00" in shown
    assert main(["runs", "--db", pg_db]) == 0
    assert "tiny" in capsys.readouterr().out
    lite = tmp_path / "runs.db"
    assert main(["solve", tiny, "--json", "--db", str(lite)]) == 0
    capsys.readouterr()
    with ResultsStore(pg_db) as pg, ResultsStore(lite) as sq:
        a, b = pg.get_run(1).record, sq.get_run(1).record
    assert a.objective == b.objective == pytest.approx(85.0, abs=1e-9)
    pdt.assert_frame_equal(a.plan, b.plan, check_exact=True)
    assert a.kpis == b.kpis
    assert list(a.tables) == list(b.tables)
    for name in a.tables:
        pdt.assert_frame_equal(a.tables[name], b.tables[name], check_exact=True)


def test_cli_on_an_empty_server_database(pg_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`runs` says there is no store yet and creates nothing; `show` is one line, exit 2."""
    assert main(["runs", "--db", pg_db]) == 0
    assert "no results database" in capsys.readouterr().err
    assert main(["show", "1", "--db", pg_db]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--db" in err and "no results database" in err
    assert sql(pg_db, "SELECT to_regclass('runs')") == [(None,)]


def test_cli_unreachable_server_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    dead = f"postgresql+psycopg://me:s3cret@127.0.0.1:{_free_port()}/x"
    assert main(["show", "last", "--db", dead]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--db" in err and "cannot connect" in err, err
    assert "me:***@" in err and "s3cret" not in err


def test_cli_refuses_a_database_it_could_not_write_before_solving(
    pg_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A login that may not create the tables (empty database) or not write them: one line
    naming --db and the reason, exit 2, nothing solved; the password is not shown."""

    def no_solve(*args: object, **kwargs: object) -> None:
        raise AssertionError("solve_instance called before --db was checked")

    monkeypatch.setattr("stochplan.run.solve_instance", no_solve)
    tiny = str(TESTS / "data" / "tiny")
    reader = _read_only_user(pg_db)
    for problem in ("cannot create the results tables", "cannot be written"):
        assert main(["solve", tiny, "--db", reader]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("stochplan: error: --db"), err
        assert problem in err and "reader:***@" in err and "pw-reader" not in err
        ResultsStore(pg_db).close()  # the tables, made by their owner, readable by reader
        _read_only_user(pg_db)
    assert row_counts(pg_db) == {t: 0 for t in cases.ALL_TABLES}
