"""Tests of the results store (fast, no solver): round trips, ordering, atomicity, errors,
plans and recourse of any index shape, and the migration of schema version 1 files.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from sqlalchemy.engine import Connection

import stochplan.store as store_mod
from stochplan.errors import InputError, StoreError
from stochplan.store import (
    DEFAULT_DB,
    SCHEMA_VERSION,
    DatabaseURL,
    ResultsStore,
    RunRecord,
    StoredRun,
    resolve_db,
)

ALL_TABLES = ("runs", "plans", "kpis", "tables", "recourse")

#: A schema version 1 database written by the stochplan before schema version 2, holding
#: run 1 (`stochplan solve electronics`, three-point scenarios) and run 2
#: (`stochplan value tests/data/tiny --relax`).
V1_DB = Path(__file__).parent / "data" / "store_v1.db"


@dataclasses.dataclass(frozen=True)
class _Options:
    integer: bool = True
    time_limit: float = 60.0


def make_plan(n_weeks: int = 3) -> pd.DataFrame:
    rows = [("W", "", w, 10.0 + w) for w in range(1, n_weeks + 1)]
    rows += [("X", p, w, 100.0 * w + i / 3) for i, p in enumerate("AB") for w in range(1, 4)]
    return pd.DataFrame(rows, columns=["variable", "product", "week", "value"])


def make_record(**changes: object) -> RunRecord:
    fields: dict[str, object] = dict(
        instance="seed",
        family="aggregate",
        method="ef",
        scenarios="three-point",
        seed=12345,
        n_scenarios=3,
        status="optimal",
        objective=-108390.0,
        bound=-108390.5,
        gap=1.0 / 3.0 * 1e-6,
        config={
            "model": {"integer": True, "backorder_fraction": 0.4, "lost_sales_penalty": None},
            "solver": {"name": "highs", "options": {"mip_rel_gap": 1e-9, "threads": 4}},
            "weeks": [1, 2, 3],
        },
        versions={"stochplan": "0.1.0", "pyomo": "6.8.0"},
        timings={"build": 0.25, "solve": 1.5},
        plan=make_plan(),
        kpis={"profit": 108390.0, "operating_margin": 0.1 + 0.2, "eev_gap": math.inf},
        tables={
            "per_product": pd.DataFrame(
                {
                    "product": ["A", "B"],
                    "units": np.array([3, 4], dtype=np.int64),
                    "margin": [0.1 + 0.2, 1e-20],
                    "feasible": [True, False],
                }
            ),
            "second_stage": pd.DataFrame(
                {"scenario": [0, 0, 1], "week": [1, 2, 1], "backorder": [0.0, np.nan, np.inf]}
            ),
        },
        label="baseline",
    )
    fields.update(changes)
    return RunRecord(**fields)  # type: ignore[arg-type]


def row_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in ALL_TABLES}


def dump(path: Path) -> list[str]:
    """Every row of every table, as SQL text."""
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def assert_same_record(got: RunRecord, want: RunRecord) -> None:
    for f in dataclasses.fields(RunRecord):
        if f.name in ("plan", "tables", "kpis"):
            continue
        assert getattr(got, f.name) == getattr(want, f.name), f.name
    pdt.assert_frame_equal(got.plan, want.plan, check_exact=True)
    assert got.kpis.keys() == want.kpis.keys()
    for name, value in want.kpis.items():
        assert got.kpis[name] == value or (math.isnan(value) and math.isnan(got.kpis[name]))
    assert list(got.tables) == list(want.tables)
    for name, table in want.tables.items():
        pdt.assert_frame_equal(got.tables[name], table, check_exact=True)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "results.db"


# --- round trips ------------------------------------------------------------------------------


def test_save_then_get_round_trips_every_field(db: Path) -> None:
    record = make_record()
    with ResultsStore(db) as store:
        run_id = store.save_run(record)
        stored = store.get_run(run_id)
    assert isinstance(stored, StoredRun)
    assert stored.id == run_id == 1
    assert stored.created.endswith("+00:00")
    assert_same_record(stored.record, record)
    assert stored.record.kpis["eev_gap"] == math.inf
    assert stored.record.config["solver"]["options"] == {"mip_rel_gap": 1e-9, "threads": 4}
    assert stored.record.tables["per_product"].loc[1, "margin"] == 1e-20


def test_round_trip_survives_reopening_the_file(db: Path) -> None:
    record = make_record()
    with ResultsStore(db) as store:
        run_id = store.save_run(record)
    with ResultsStore(f"sqlite:///{db}") as store:
        assert_same_record(store.get_run(run_id).record, record)


def test_nan_and_none_conventions(db: Path) -> None:
    record = make_record(
        seed=None, objective=None, bound=math.nan, gap=-math.inf, kpis={"profit": math.nan}
    )
    with ResultsStore(db) as store:
        got = store.get_run(store.save_run(record)).record
    assert got.seed is None and got.objective is None
    assert got.bound is None  # SQLite stores NaN as NULL
    assert got.gap == -math.inf
    assert math.isnan(got.kpis["profit"])


def test_config_json_handles_numpy_paths_dataclasses_and_non_finite(db: Path) -> None:
    config = {
        "n": np.int64(7),
        "x": np.float32(0.5),
        "arr": np.arange(3),
        "path": Path("data/instances/seed"),
        "options": _Options(),
        "limit": math.inf,
    }
    with ResultsStore(db) as store:
        got = store.get_run(store.save_run(make_record(config=config))).record
    assert got.config == {
        "n": 7,
        "x": 0.5,
        "arr": [0, 1, 2],
        "path": "data/instances/seed",
        "options": {"integer": True, "time_limit": 60.0},
        "limit": "inf",
    }
    with sqlite3.connect(db) as conn:  # valid JSON for SQL queries
        assert conn.execute("SELECT json_extract(config, '$.options.time_limit') FROM runs")
        assert conn.execute("SELECT json_extract(config, '$.n') FROM runs").fetchone() == (7,)


def test_unserialisable_config_is_an_input_error(db: Path) -> None:
    with ResultsStore(db) as store:
        with pytest.raises(InputError, match="config"):
            store.save_run(make_record(config={"solver": object()}))
        assert store.list_runs().empty


def test_table_dtypes_and_index_round_trip(db: Path) -> None:
    n = 5
    table = pd.DataFrame(
        {
            "i8": np.arange(n, dtype=np.int8),
            "u64": np.arange(n, dtype=np.uint64) + 2**63,
            "f32": np.linspace(0, 1, n, dtype=np.float32),
            "f64": [0.1, -0.0, 1e308, -np.inf, np.nan],
            "b": [True, False, True, True, False],
            "s": ["a", "b", None, "inf", "é"],
            "obj": pd.Series([1, "two", None, 3.5, True], dtype=object),
            "Int64": pd.array([1, None, 3, 4, 5], dtype="Int64"),
            "cat": pd.Categorical(
                ["lo", "hi", "lo", None, "hi"], categories=["lo", "hi"], ordered=True
            ),
            "when": pd.date_range("2025-01-06", periods=n, freq="W"),
            "when_tz": pd.date_range("2025-03-28", periods=n, freq="D", tz="Europe/Berlin"),
            "delta": pd.to_timedelta([1, 2, 3, 4, None], unit="h"),
        },
        index=pd.MultiIndex.from_arrays([["s1"] * n, [3, 1, 4, 1, 5]], names=["scenario", None]),
    )
    table.columns.name = "quantity"
    with ResultsStore(db) as store:
        run_id = store.save_run(make_record(tables={"mixed": table}))
        got = store.get_run(run_id).record.tables["mixed"]
    pdt.assert_frame_equal(got, table, check_exact=True)


def test_tables_with_named_index_int_labels_and_no_rows(db: Path) -> None:
    tables = {
        "named_index": pd.DataFrame({"v": [1.5, 2.5]}, index=pd.Index(["A", "B"], name="p")),
        "int_labels": pd.DataFrame(np.eye(2), columns=[10, 20]),
        "empty": pd.DataFrame(
            {"a": pd.Series([], dtype=np.int64), "b": pd.Series([], dtype=np.float64)}
        ),
        "shifted_index": pd.DataFrame({"v": [1, 2]}, index=pd.RangeIndex(5, 7)),
    }
    with ResultsStore(db) as store:
        got = store.get_run(store.save_run(make_record(tables=tables))).record.tables
    for name, table in tables.items():
        pdt.assert_frame_equal(got[name], table, check_exact=True)


def test_payload_is_pandas_split_json(db: Path) -> None:
    from io import StringIO

    with ResultsStore(db) as store:
        store.save_run(make_record())
    with sqlite3.connect(db) as conn:
        (payload,) = conn.execute(
            "SELECT payload FROM \"tables\" WHERE name = 'per_product'"
        ).fetchone()
    read = pd.read_json(StringIO(payload), orient="split")
    assert list(read.columns) == ["product", "units", "margin", "feasible"]
    assert read["units"].tolist() == [3, 4]


def test_large_table_saves_and_loads(db: Path) -> None:
    n = 100_000
    rng = np.random.default_rng([0, 1])
    table = pd.DataFrame(
        {
            "scenario": np.repeat(np.arange(n // 10), 10),
            "product": np.tile(list("ABCDEFGHIJ"), n // 10),
            "quantity": rng.random(n) * 1000,
        }
    )
    plan = pd.DataFrame(
        {
            "variable": ["X"] * n,
            "product": np.tile(list("AB"), n // 2),
            "week": np.arange(n, dtype=np.int64),
            "value": rng.random(n),
        }
    )
    with ResultsStore(db) as store:
        run_id = store.save_run(make_record(plan=plan, tables={"second_stage": table}))
        got = store.get_run(run_id).record
    pdt.assert_frame_equal(got.tables["second_stage"], table, check_exact=True)
    pdt.assert_frame_equal(got.plan, plan, check_exact=True)


# --- listing ----------------------------------------------------------------------------------


def test_list_runs_newest_first_with_columns(db: Path) -> None:
    with ResultsStore(db) as store:
        assert list(store.list_runs().columns) == list(store_mod.RUN_LIST_COLUMNS)
        assert store.list_runs().empty
        ids = [
            store.save_run(make_record(label="first", seed=None)),
            store.save_run(make_record(label="second", method="ph", objective=None)),
            store.save_run(make_record(label="third", scenarios="poisson:100", seed=7)),
        ]
        runs = store.list_runs()
        assert list(runs.columns) == [
            "id", "created", "instance", "method", "scenarios", "seed", "status", "objective",
            "gap", "label",
        ]  # fmt: skip
        assert runs["id"].tolist() == ids[::-1]
        assert runs["label"].tolist() == ["third", "second", "first"]
        assert runs["method"].tolist() == ["ef", "ph", "ef"]
        assert runs["seed"].tolist() == [7, 12345, pd.NA]
        assert math.isnan(runs.loc[1, "objective"])
        assert runs["created"].is_monotonic_decreasing
        assert store.list_runs(limit=2)["id"].tolist() == ids[:0:-1]


# --- atomicity --------------------------------------------------------------------------------


def _unstorable_table() -> pd.DataFrame:
    return pd.DataFrame({"x": pd.Series([1, object()], dtype=object)})


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_failed_save_leaves_db_unchanged(
    db: Path, monkeypatch: pytest.MonkeyPatch, exc_type: type[BaseException]
) -> None:
    """A save interrupted after the runs row and plan rows are written rolls back completely."""
    with ResultsStore(db) as store:
        first = store.save_run(make_record())
        before_runs = store.list_runs()
    before_counts, before_dump = row_counts(db), dump(db)

    calls: list[str] = []
    real_insert_table = store_mod._insert_table

    def failing_insert_table(conn, run_id, name, table, replace):  # type: ignore[no-untyped-def]
        calls.append(name)
        if len(calls) == 2:  # after runs, plans, kpis and the first table are written
            written = conn.exec_driver_sql("SELECT COUNT(*) FROM plans WHERE run_id = ?",
                                           (run_id,))
            assert written.fetchone()[0] == len(make_plan())
            raise exc_type("interrupted mid-write")
        real_insert_table(conn, run_id, name, table, replace)

    monkeypatch.setattr(store_mod, "_insert_table", failing_insert_table)
    with ResultsStore(db) as store:
        with pytest.raises(exc_type, match="interrupted mid-write"):
            store.save_run(make_record(label="doomed"))
        assert calls == ["per_product", "second_stage"]
        pdt.assert_frame_equal(store.list_runs(), before_runs)
        assert row_counts(db) == before_counts
        assert dump(db) == before_dump
        assert_same_record(store.get_run(first).record, make_record())
        # No transaction is left open: the same connection saves the next run.
        monkeypatch.undo()
        assert store.save_run(make_record(label="after")) == first + 1
    assert row_counts(db)["runs"] == before_counts["runs"] + 1


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_interrupted_save_content_identical(
    db: Path, monkeypatch: pytest.MonkeyPatch, exc_type: type[BaseException]
) -> None:
    """Same rows in every table, same SQL dump, after a save that dies in the tables step."""
    with ResultsStore(db) as store:
        store.save_run(make_record())
    before_counts, before_dump = row_counts(db), dump(db)

    def boom(name: str, table: pd.DataFrame) -> tuple[str, str]:
        raise exc_type("interrupted mid-write")

    monkeypatch.setattr(store_mod, "_encode_table", boom)
    with ResultsStore(db) as store:
        with pytest.raises(exc_type):
            store.save_run(make_record(plan=make_plan(50)))
    assert row_counts(db) == before_counts
    assert dump(db) == before_dump


def test_unserialisable_table_value_rolls_back(db: Path) -> None:
    with ResultsStore(db) as store:
        store.save_run(make_record())
        before_runs = store.list_runs()
    before_counts, before_dump = row_counts(db), dump(db)
    tables = {"ok": pd.DataFrame({"a": [1]}), "bad": _unstorable_table()}
    with ResultsStore(db) as store:
        with pytest.raises(InputError, match=r"tables\['bad'\]"):
            store.save_run(make_record(tables=tables))
        pdt.assert_frame_equal(store.list_runs(), before_runs)
    assert row_counts(db) == before_counts
    assert dump(db) == before_dump


def test_add_table_failure_rolls_back(db: Path) -> None:
    with ResultsStore(db) as store:
        run_id = store.save_run(make_record())
        before = row_counts(db)
        with pytest.raises(InputError):
            store.add_table(run_id, "bad", _unstorable_table())
        assert row_counts(db) == before


# --- errors -----------------------------------------------------------------------------------


def test_unknown_run_names_id_and_file(db: Path) -> None:
    with ResultsStore(db) as store:
        store.save_run(make_record())
        with pytest.raises(InputError, match="no such run") as info:
            store.get_run(42)
        assert info.value.field == "run" and info.value.value == 42
        assert "42" in str(info.value) and str(db) in str(info.value)
        for call in (
            lambda: store.add_table(42, "t", pd.DataFrame({"a": [1]})),
            lambda: store.add_kpis(42, {"profit": 1.0}),
            lambda: store.delete_run(42),
        ):
            with pytest.raises(InputError, match="no such run"):
                call()


def test_unknown_parent_run_is_refused(db: Path) -> None:
    with ResultsStore(db) as store:
        with pytest.raises(InputError, match="parent_run"):
            store.save_run(make_record(parent_run=9))
        assert store.list_runs().empty


def test_server_urls_resolve_without_connecting() -> None:
    """Any SQLAlchemy URL but sqlite:// is a DatabaseURL (nothing opened); str() hides the
    password, the URL keeps it."""
    db = resolve_db("postgresql+psycopg://me:s3cret@db.example.com/results")
    assert isinstance(db, DatabaseURL) and db.url.password == "s3cret"
    assert str(db) == "postgresql+psycopg://me:***@db.example.com/results"
    assert resolve_db(db) is db
    assert isinstance(resolve_db("mysql://localhost/db"), DatabaseURL)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+psycopg://me:s3cret@[db/x", "not a database URL"),
        ("sqlite+aiosqlite:///x.db", "give an SQLite database as a file path"),
        ("mysql+nosuchdriver://me:s3cret@localhost/db", "cannot use this database"),
        ("nosuchdb://me:s3cret@localhost/db", "cannot use this database"),
    ],
)
def test_bad_database_urls_are_input_errors(url: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        ResultsStore(url)
    assert info.value.field == "db" and "s3cret" not in str(info.value)


def test_newer_schema_version_is_refused(db: Path) -> None:
    ResultsStore(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(InputError, match="newer") as info:
        ResultsStore(db)
    assert str(db) in str(info.value)


def test_not_a_database_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("definitely not sqlite " * 100)
    with pytest.raises(InputError, match="SQLite") as info:
        ResultsStore(path)
    assert str(path) in str(info.value)


def test_record_checks_fields() -> None:
    with pytest.raises(InputError, match="plan"):
        make_record(plan=make_plan().drop(columns="value"))
    with pytest.raises(InputError, match="plan.week"):
        make_record(plan=make_plan().assign(week=pd.Timestamp("2025-01-06")))
    with pytest.raises(InputError, match="kpis"):
        make_record(kpis={"profit": "a lot"})
    with pytest.raises(InputError, match="tables"):
        make_record(tables={"t": [1, 2]})
    with pytest.raises(InputError, match="seed"):
        make_record(seed=2**64)


# --- resolve_db -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, Path(DEFAULT_DB)),
        ("results/runs.db", Path("results/runs.db")),
        (Path("/data/runs.db"), Path("/data/runs.db")),
        ("sqlite:///relative/path.db", Path("relative/path.db")),
        ("sqlite:////abs/path.db", Path("/abs/path.db")),
    ],
)
def test_resolve_db(given: str | Path | None, expected: Path) -> None:
    assert resolve_db(given) == expected


@pytest.mark.parametrize("bad", ["sqlite://host/x.db", "sqlite:///", "", "sqlite:///x.db?mode=ro"])
def test_resolve_db_rejects_malformed(bad: str) -> None:
    with pytest.raises(InputError):
        resolve_db(bad)


def test_default_db_in_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with ResultsStore() as store:
        store.save_run(make_record())
    assert (tmp_path / DEFAULT_DB).is_file()


def test_creates_parent_directories_from_relative_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with ResultsStore("sqlite:///out/nested/runs.db") as store:
        store.save_run(make_record())
    assert (tmp_path / "out" / "nested" / "runs.db").is_file()


# --- attaching and deleting -------------------------------------------------------------------


def test_add_table_and_add_kpis(db: Path) -> None:
    with ResultsStore(db) as store:
        run_id = store.save_run(make_record())
        extra = pd.DataFrame({"scenario": [0, 1], "profit": [1.0, 2.0]})
        store.add_table(run_id, "oos", extra)
        store.add_kpis(run_id, {"profit": 1.0, "vss": 1150.0})
        got = store.get_run(run_id).record
        pdt.assert_frame_equal(got.tables["oos"], extra, check_exact=True)
        assert list(got.tables) == ["per_product", "second_stage", "oos"]
        assert got.kpis == {
            "profit": 1.0,
            "operating_margin": 0.1 + 0.2,
            "eev_gap": math.inf,
            "vss": 1150.0,
        }
        with pytest.raises(InputError, match="already has a table"):
            store.add_table(run_id, "oos", extra)
        store.add_table(run_id, "oos", extra.head(1), replace=True)
        pdt.assert_frame_equal(store.get_run(run_id).record.tables["oos"], extra.head(1))


def test_delete_run_cascades_and_protects_children(db: Path) -> None:
    with ResultsStore(db) as store:
        parent = store.save_run(make_record())
        child = store.save_run(make_record(parent_run=parent, method="eev"))
        assert store.get_run(child).record.parent_run == parent
        with pytest.raises(InputError, match="derive from it"):
            store.delete_run(parent)
        store.delete_run(child)
        store.delete_run(parent)
        assert store.list_runs().empty
    assert row_counts(db) == {t: 0 for t in ALL_TABLES}


def test_store_module_does_not_import_pyomo() -> None:
    import subprocess
    import sys

    code = "import sys, stochplan.store; print('pyomo' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_new_file_gets_schema_version_2(db: Path) -> None:
    ResultsStore(db).close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (2,)
        columns = {t: [r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')] for t in ALL_TABLES}
    assert columns["plans"] == ["run_id", "variable", "idx", "value"]
    assert columns["recourse"] == ["run_id", "scenario", "variable", "idx", "value"]
    assert columns["runs"][-1] == "plan_index"


# --- plans of any model family ----------------------------------------------------------------


def _plan(index: dict[str, list[object]], variable: list[str], value: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"variable": variable, **index, "value": value})


PLAN_SHAPES = {
    "scalar": _plan({}, ["Z", "W0"], [1.5, 0.1 + 0.2]),
    "crop": _plan({"crop": ["wheat", "corn", "beets"]}, ["X"] * 3, [170.0, 80.0, 250.0]),
    "product_week": make_plan(),
    "index_text": _plan({"index": ["A,1", "B,2", 'é "quoted"']}, ["X"] * 3, [1.0, 2.0, 3.0]),
    "site_product": _plan(
        {"site": ["north", "north", "south"], "product": ["A", "B", "A"]},
        ["Y"] * 3,
        [1e-20, -1e308, math.inf],
    ),
    "order_producer_int": _plan(
        {"order": [10, 11, 12], "producer": np.array([0, 1, 0], dtype=np.int64)},
        ["A"] * 3,
        [1.0, 0.0, 1.0],
    ),
    "float_index_and_missing": _plan(
        {
            "product": ["A", None, "B"],
            "week": pd.array([1, None, 3], dtype="Int64"),
            "level": [0.1 + 0.2, np.nan, -2.5],
        },
        ["X", "W", "X"],
        [np.nan, 2.0, 3.0],
    ),
}


@pytest.mark.parametrize("shape", list(PLAN_SHAPES))
def test_plan_of_any_index_shape_round_trips(db: Path, shape: str) -> None:
    """Columns, their order, dtypes (str/int/float) and rows come back exactly."""
    plan = PLAN_SHAPES[shape]
    names = [c for c in plan.columns if c not in ("variable", "value")]
    with ResultsStore(db) as store:
        run_id = store.save_run(make_record(plan=plan))
        got = store.get_run(run_id).record.plan
    pdt.assert_frame_equal(got, plan, check_exact=True)
    with sqlite3.connect(db) as conn:
        (plan_index,) = conn.execute("SELECT plan_index FROM runs WHERE id = ?", (run_id,))
        assert json.loads(plan_index[0]) == names
        idx = [json.loads(r[0]) for r in conn.execute("SELECT idx FROM plans ORDER BY rowid")]
    assert len(idx) == len(plan)
    for obj, (_, row) in zip(idx, plan.iterrows(), strict=True):
        assert list(obj) == [n for n in names if not pd.isna(row[n])]  # key order, no missing
        assert all(obj[n] == row[n] for n in obj)


def test_plan_idx_is_json_for_sql(db: Path) -> None:
    with ResultsStore(db) as store:
        run_id = store.save_run(make_record())
        store.save_run(make_record(plan=PLAN_SHAPES["scalar"]))
        store.save_run(make_record(plan=PLAN_SHAPES["float_index_and_missing"]))
    plan = make_plan()
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT idx, json_type(idx, '$.product'), json_type(idx, '$.week') FROM plans "
            "WHERE run_id = ? ORDER BY rowid LIMIT 1",
            (run_id,),
        ).fetchall()
        assert rows == [('{"product":"","week":1}', "text", "integer")]
        (total,) = conn.execute(
            "SELECT SUM(value) FROM plans WHERE run_id = ? AND variable = 'X' "
            "AND json_extract(idx, '$.week') = 2",
            (run_id,),
        ).fetchone()
        assert total == plan.loc[(plan["variable"] == "X") & (plan["week"] == 2), "value"].sum()
        assert [r[0] for r in conn.execute("SELECT idx FROM plans WHERE run_id = 2")] == ["{}"] * 2
        assert [r[0] for r in conn.execute("SELECT idx FROM plans WHERE run_id = 3")] == [
            '{"product":"A","week":1,"level":0.30000000000000004}',
            "{}",
            '{"product":"B","week":3,"level":-2.5}',
        ]


def test_plan_columns_read_back_as_variable_index_value(db: Path) -> None:
    """Any column order is accepted; index columns keep their order between the two."""
    plan = make_plan()[["value", "week", "variable", "product"]]
    with ResultsStore(db) as store:
        got = store.get_run(store.save_run(make_record(plan=plan))).record.plan
    assert list(got.columns) == ["variable", "week", "product", "value"]
    pdt.assert_frame_equal(got, plan[list(got.columns)], check_exact=True)


def test_empty_plan_of_a_module_run(db: Path) -> None:
    """What `stochplan value --module` stores: no plan rows, product/week as index names."""
    plan = pd.DataFrame({"variable": [], "product": [], "week": [], "value": []})
    with ResultsStore(db) as store:
        got = store.get_run(store.save_run(make_record(plan=plan))).record.plan
    assert list(got.columns) == ["variable", "product", "week", "value"]
    assert got.empty and got["value"].dtype == np.float64


@pytest.mark.parametrize(
    ("plan", "field", "message"),
    [
        (make_plan().assign(week=True), "plan.week", "index values"),
        (make_plan().assign(week=math.inf), "plan.week", "index values"),
        (make_plan().assign(product=[(1, 2)] * 9), "plan.product", "index values"),
        (make_plan().rename(columns={"week": 7}), "plan", "strings"),
        (make_plan().drop(columns="variable"), "plan", "variable"),
        (make_plan().assign(value="lots"), "plan.value", "numbers"),
        (make_plan().assign(variable=None), "plan.variable", "variable name"),
    ],
)
def test_bad_plans_are_refused(plan: pd.DataFrame, field: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        make_record(plan=plan)
    assert info.value.field == field


# --- recourse: a SQL table --------------------------------------------------------------------


def make_recourse(n_scenarios: int = 3) -> pd.DataFrame:
    rows = [
        (f"scen{s}", var, p, w, 10.0 * s + w + i / 3)
        for s in range(n_scenarios)
        for var in ("I_reg", "B")
        for i, p in enumerate("AB")
        for w in (1, 2, 3)
    ]
    table = pd.DataFrame(rows, columns=["scenario", "variable", "product", "week", "value"])
    table.loc[0, "value"] = 0.1 + 0.2
    table.loc[1, "value"] = 1e-20
    table.loc[2, "value"] = math.inf
    table.loc[3, "value"] = np.nan
    return table


def recourse_count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM recourse").fetchone()[0])


def test_recourse_round_trips_as_sql_rows(db: Path) -> None:
    recourse = make_recourse()
    tables = {
        "per_product": make_record().tables["per_product"],
        "recourse": recourse,
        "second_stage": make_record().tables["second_stage"],
    }
    record = make_record(tables=tables)
    with ResultsStore(db) as store:
        run_id = store.save_run(record)
        store.save_run(make_record(tables={"recourse": make_recourse(1)}))
        got = store.get_run(run_id).record
    assert_same_record(got, record)  # table order kept too
    assert got.tables["recourse"].loc[1, "value"] == 1e-20
    with sqlite3.connect(db) as conn:
        (total,) = conn.execute(
            "SELECT SUM(value) FROM recourse WHERE run_id = ? AND variable = 'B'", (run_id,)
        ).fetchone()
        (week_2,) = conn.execute(
            "SELECT SUM(value) FROM recourse WHERE run_id = ? AND variable = 'B' "
            "AND json_extract(idx, '$.product') = 'A' AND json_extract(idx, '$.week') = 2",
            (run_id,),
        ).fetchone()
        (n_rows,) = conn.execute(
            "SELECT COUNT(*) FROM recourse WHERE run_id = ?", (run_id,)
        ).fetchone()
        (payload,) = conn.execute(
            "SELECT payload FROM \"tables\" WHERE run_id = ? AND name = 'recourse'", (run_id,)
        ).fetchone()
    b = recourse[recourse["variable"] == "B"]
    assert total == b["value"].sum()
    assert week_2 == b.loc[(b["product"] == "A") & (b["week"] == 2), "value"].sum()
    assert n_rows == len(recourse)
    assert json.loads(payload)["data"] == []  # the rows are in the SQL table only


@pytest.mark.parametrize(
    "recourse",
    [
        pd.DataFrame(
            {
                "variable": ["Y", "Y", "W"],
                "scenario": ["s1", "s2", "s1"],
                "value": [1.0, 2.0, -0.5],
                "crop": ["wheat", "corn", None],
            }
        ),
        pd.DataFrame({"scenario": ["s1", "s2"], "variable": ["L", "L"], "value": [0.0, 1.0]}),
        pd.DataFrame(
            {
                "scenario": pd.Categorical(["s1", "s2"]),
                "variable": ["Z", "Z"],
                "site": ["north", "south"],
                "order": pd.array([3, None], dtype="Int64"),
                "value": np.array([1, 2], dtype=np.int64),
            }
        ),
        make_recourse().iloc[0:0],
    ],
    ids=["crop_any_column_order", "scalar", "site_order_categorical", "no_rows"],
)
def test_recourse_of_any_index_shape_round_trips(db: Path, recourse: pd.DataFrame) -> None:
    with ResultsStore(db) as store:
        run_id = store.save_run(make_record(tables={"recourse": recourse}))
        got = store.get_run(run_id).record.tables["recourse"]
    pdt.assert_frame_equal(got, recourse, check_exact=True)
    assert recourse_count(db) == len(recourse)


def test_add_table_recourse_goes_to_sql(db: Path) -> None:
    recourse = make_recourse()
    with ResultsStore(db) as store:
        run_id = store.save_run(make_record())
        store.add_table(run_id, "recourse", recourse)
        assert recourse_count(db) == len(recourse)
        got = store.get_run(run_id).record.tables
        assert list(got) == ["per_product", "second_stage", "recourse"]
        pdt.assert_frame_equal(got["recourse"], recourse, check_exact=True)
        with pytest.raises(InputError, match="already has a table"):
            store.add_table(run_id, "recourse", recourse)
        smaller = make_recourse(1)
        store.add_table(run_id, "recourse", smaller, replace=True)
        assert recourse_count(db) == len(smaller)
        got = store.get_run(run_id).record.tables
        assert list(got) == ["per_product", "second_stage", "recourse"]
        pdt.assert_frame_equal(got["recourse"], smaller, check_exact=True)


def test_delete_run_deletes_its_recourse_rows(db: Path) -> None:
    with ResultsStore(db) as store:
        keep = store.save_run(make_record(tables={"recourse": make_recourse(1)}))
        drop = store.save_run(make_record(tables={"recourse": make_recourse(2)}))
        store.delete_run(drop)
        assert recourse_count(db) == len(make_recourse(1))
        pdt.assert_frame_equal(store.get_run(keep).record.tables["recourse"], make_recourse(1))
        store.delete_run(keep)
    assert row_counts(db) == {t: 0 for t in ALL_TABLES}


@pytest.mark.parametrize(
    ("table", "field"),
    [
        (make_recourse().drop(columns="scenario"), "tables['recourse']"),
        (make_recourse().assign(scenario=[None] + ["s"] * 35), "tables['recourse'].scenario"),
        (make_recourse().assign(variable=1), "tables['recourse'].variable"),
        (make_recourse().assign(week=False), "tables['recourse'].week"),
        (make_recourse().assign(value="x"), "tables['recourse'].value"),
    ],
)
def test_bad_recourse_is_refused(db: Path, table: pd.DataFrame, field: str) -> None:
    with pytest.raises(InputError) as info:
        make_record(tables={"recourse": table})
    assert info.value.field == field
    with ResultsStore(db) as store:
        run_id = store.save_run(make_record())
        before = dump(db)
        with pytest.raises(InputError):
            store.add_table(run_id, "recourse", table)
    assert dump(db) == before


def test_failed_save_with_recourse_rolls_back(db: Path) -> None:
    with ResultsStore(db) as store:
        store.save_run(make_record(tables={"recourse": make_recourse(1)}))
    before_counts, before_dump = row_counts(db), dump(db)
    tables = {"recourse": make_recourse(), "bad": _unstorable_table()}
    with ResultsStore(db) as store, pytest.raises(InputError, match=r"tables\['bad'\]"):
        store.save_run(make_record(tables=tables))
    assert row_counts(db) == before_counts
    assert dump(db) == before_dump


def test_large_recourse_saves_and_loads(db: Path) -> None:
    n_scenarios, n = 1_000, 100_000
    rng = np.random.default_rng([0, 2])
    recourse = pd.DataFrame(
        {
            "scenario": np.repeat([f"scen{s}" for s in range(n_scenarios)], n // n_scenarios),
            "variable": np.tile(["I_reg", "I_ovr", "B", "L"], n // 4),
            "product": np.tile(list("ABCDE"), n // 5),
            "week": np.tile(np.arange(1, 11, dtype=np.int64), n // 10),
            "value": rng.random(n) * 1000,
        }
    )
    with ResultsStore(db) as store:
        run_id = store.save_run(make_record(tables={"recourse": recourse}))
        got = store.get_run(run_id).record.tables["recourse"]
    pdt.assert_frame_equal(got, recourse, check_exact=True)


# --- migration from schema version 1 ----------------------------------------------------------


@pytest.fixture
def v1_db(tmp_path: Path) -> Path:
    """A copy of the version-1 test database (never open the original with the store)."""
    path = tmp_path / "store_v1.db"
    shutil.copyfile(V1_DB, path)
    return path


def _split_json_frame(payload: str) -> pd.DataFrame:
    data = json.loads(payload)
    return pd.DataFrame(data["data"], columns=data["columns"])


@dataclasses.dataclass(frozen=True)
class V1Run:
    instance: str
    config: dict[str, object]
    plan: pd.DataFrame
    kpis: dict[str, float]
    tables: dict[str, pd.DataFrame]


def read_v1(path: Path) -> dict[int, V1Run]:
    """Each run of a version-1 file, read with plain SQL (independent of the store)."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)
        runs: dict[int, V1Run] = {}
        for run_id, instance, config in conn.execute(
            "SELECT id, instance, config FROM runs ORDER BY id"
        ).fetchall():
            key = (run_id,)
            plan = conn.execute(
                "SELECT variable, product, week, value FROM plans WHERE run_id = ? ORDER BY rowid",
                key,
            ).fetchall()
            kpis = conn.execute(
                "SELECT name, value FROM kpis WHERE run_id = ? ORDER BY rowid", key
            ).fetchall()
            tables = conn.execute(
                'SELECT name, payload FROM "tables" WHERE run_id = ? ORDER BY rowid', key
            ).fetchall()
            runs[run_id] = V1Run(
                instance=instance,
                config=json.loads(config),
                plan=pd.DataFrame(plan, columns=["variable", "product", "week", "value"]),
                kpis=dict(kpis),
                tables={name: _split_json_frame(payload) for name, payload in tables},
            )
        return runs
    finally:
        conn.close()


def test_v1_test_data_is_a_version_1_file() -> None:
    with sqlite3.connect(f"{V1_DB.resolve().as_uri()}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)
        columns = [r[1] for r in conn.execute("PRAGMA table_info(plans)")]
    assert columns == ["run_id", "variable", "product", "week", "value"]
    runs = read_v1(V1_DB)
    assert [r.instance for r in runs.values()] == ["electronics", "tiny"]
    assert all(len(r.plan) and "recourse" in r.tables for r in runs.values())


def test_migrates_version_1_database(v1_db: Path) -> None:
    want = read_v1(v1_db)
    with ResultsStore(v1_db) as store:
        listed = store.list_runs()
        got = {run_id: store.get_run(run_id).record for run_id in want}
    assert listed["id"].tolist() == [2, 1]
    assert listed["instance"].tolist() == ["tiny", "electronics"]
    for run_id, v1 in want.items():
        record = got[run_id]
        assert record.instance == v1.instance
        assert record.config == v1.config
        pdt.assert_frame_equal(record.plan, v1.plan, check_exact=True)
        assert record.kpis == v1.kpis
        assert list(record.tables) == list(v1.tables)  # "recourse" keeps its place
        for name, table in v1.tables.items():
            pdt.assert_frame_equal(record.tables[name], table, check_exact=True)
    with sqlite3.connect(v1_db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (2,)
        assert [r[1] for r in conn.execute("PRAGMA table_info(plans)")] == [
            "run_id", "variable", "idx", "value",
        ]  # fmt: skip
        assert conn.execute("SELECT DISTINCT plan_index FROM runs").fetchall() == [
            ('["product", "week"]',)
        ]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        for run_id, v1 in want.items():
            recourse = v1.tables["recourse"]
            (total,) = conn.execute(
                "SELECT SUM(value) FROM recourse WHERE run_id = ? AND variable = 'B'", (run_id,)
            ).fetchone()
            assert total == recourse.loc[recourse["variable"] == "B", "value"].sum()
            (n,) = conn.execute(
                "SELECT COUNT(*) FROM recourse WHERE run_id = ?", (run_id,)
            ).fetchone()
            assert n == len(recourse) > 0


def test_migration_is_idempotent(v1_db: Path) -> None:
    with ResultsStore(v1_db) as store:
        first = {run_id: store.get_run(run_id).record for run_id in (1, 2)}
    once = dump(v1_db)
    with ResultsStore(v1_db) as store:
        assert store.list_runs()["id"].tolist() == [2, 1]
        for run_id, record in first.items():
            assert_same_record(store.get_run(run_id).record, record)
    assert dump(v1_db) == once
    with sqlite3.connect(v1_db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (2,)


def test_migrated_database_takes_new_runs(v1_db: Path) -> None:
    with ResultsStore(v1_db) as store:
        run_id = store.save_run(make_record(tables={"recourse": make_recourse()}))
        assert run_id == 3
        pdt.assert_frame_equal(store.get_run(3).record.tables["recourse"], make_recourse())
        store.delete_run(1)
        assert store.list_runs()["id"].tolist() == [3, 2]
    with sqlite3.connect(v1_db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM recourse WHERE run_id = 1").fetchone() == (0,)


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_failed_migration_leaves_the_file_as_it_was(
    v1_db: Path, monkeypatch: pytest.MonkeyPatch, exc_type: type[BaseException]
) -> None:
    """A migration that dies in its last step (after plans and recourse rows are written)."""
    before_bytes, before_dump = v1_db.read_bytes(), dump(v1_db)
    real_step = store_mod._migrate_recourse_v1

    def failing_step(conn: Connection, path: Path) -> None:
        real_step(conn, path)
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM recourse").scalar_one() > 0
        raise exc_type("interrupted mid-migration")

    monkeypatch.setattr(store_mod, "_migrate_recourse_v1", failing_step)
    with pytest.raises(exc_type, match="interrupted mid-migration"):
        ResultsStore(v1_db)
    assert dump(v1_db) == before_dump
    assert v1_db.read_bytes() == before_bytes
    read_v1(v1_db)  # user_version 1, old plans columns and JSON tables intact
    monkeypatch.undo()
    with ResultsStore(v1_db) as store:
        assert store.list_runs()["id"].tolist() == [2, 1]


def test_migration_refuses_a_recourse_table_it_cannot_move(v1_db: Path) -> None:
    with sqlite3.connect(v1_db) as conn:
        conn.execute(
            'UPDATE "tables" SET payload = replace(payload, \'"scenario"\', \'"scen"\') '
            "WHERE run_id = 2 AND name = 'recourse'"
        )
    before = dump(v1_db)
    with pytest.raises(InputError, match="run 2") as info:
        ResultsStore(v1_db)
    assert info.value.field == "db" and str(v1_db) in str(info.value)
    assert dump(v1_db) == before


def test_migration_of_plans_without_index_or_with_missing_keys(v1_db: Path) -> None:
    """v1 NULLs are left out of idx; a run without product and week has no index columns."""
    with sqlite3.connect(v1_db) as conn:
        for run_id, instance in ((3, "scalar"), (4, "ragged")):
            conn.execute(
                "INSERT INTO runs (id, created, instance, family, method, scenarios, seed, "
                "n_scenarios, status, objective, bound, gap, config, versions, timings, "
                "parent_run, label) SELECT ?, created, ?, family, method, scenarios, seed, "
                "n_scenarios, status, objective, bound, gap, config, versions, timings, "
                "parent_run, label FROM runs WHERE id = 2",
                (run_id, instance),
            )
        conn.executemany(
            "INSERT INTO plans (run_id, variable, product, week, value) VALUES (?, ?, ?, ?, ?)",
            [(3, "Z", None, None, 1.5), (3, "Z2", None, None, None), (4, "X", "A", None, 2.0),
             (4, "X", "A", 3, 4.0), (4, "W", None, 3, 5.0)],
        )  # fmt: skip
    with ResultsStore(v1_db) as store:
        scalar = store.get_run(3).record
        ragged = store.get_run(4).record.plan
    expected = pd.DataFrame({"variable": ["Z", "Z2"], "value": [1.5, np.nan]})
    pdt.assert_frame_equal(scalar.plan, expected, check_exact=True)
    assert scalar.tables == {}
    expected = pd.DataFrame(
        {
            "variable": ["X", "X", "W"],
            "product": ["A", "A", None],
            "week": pd.array([None, 3, 3], dtype="Int64"),
            "value": [2.0, 4.0, 5.0],
        }
    )
    pdt.assert_frame_equal(ragged, expected, check_exact=True)
    with sqlite3.connect(v1_db) as conn:
        idx = conn.execute("SELECT idx FROM plans WHERE run_id >= 3 ORDER BY rowid").fetchall()
        plan_index = conn.execute("SELECT plan_index FROM runs WHERE id >= 3 ORDER BY id")
        assert plan_index.fetchall() == [("[]",), ('["product", "week"]',)]
    assert [r[0] for r in idx] == [
        "{}", "{}", '{"product":"A"}', '{"product":"A","week":3}', '{"week":3}',
    ]  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Writability, lock waits, recovery files and import


def _hold(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def test_check_writable_changes_nothing(db: Path) -> None:
    with ResultsStore(db) as store:
        store.save_run(make_record())
    before = dump(db)
    with ResultsStore(db) as store:
        store.check_writable()
    assert dump(db) == before
    with sqlite3.connect(db) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "_stochplan_write_probe" not in names


def test_check_writable_refuses_a_held_write_lock(db: Path, caplog) -> None:
    ResultsStore(db).close()
    holder = _hold(db)
    try:
        with ResultsStore(db, lock_timeout=0.3) as store, pytest.raises(StoreError) as info:
            store.check_writable()
    finally:
        holder.rollback()
        holder.close()
    assert "database is locked" in str(info.value) and str(db) in str(info.value)


def test_lock_wait_says_what_it_waits_for(db: Path, caplog) -> None:
    ResultsStore(db).close()
    holder = _hold(db)
    try:
        with ResultsStore(db, lock_timeout=1.5) as store, pytest.raises(StoreError):
            store.save_run(make_record())
    finally:
        holder.rollback()
        holder.close()
    assert any("waiting up to" in r.message and "write lock" in r.message
               and str(db) in r.message for r in caplog.records)
    assert row_counts(db)["runs"] == 0


def test_a_folder_or_unopenable_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a folder"):
        ResultsStore(tmp_path)
    with pytest.raises(InputError, match="cannot create the database's folder"):
        ResultsStore("/proc/no/such/x.db")


def test_save_or_recover_writes_a_recovery_file_that_import_brings_in(db: Path) -> None:
    from stochplan.store import import_runs, save_or_recover

    with ResultsStore(db) as store:
        store.save_run(make_record(label="first"))
    before = row_counts(db)
    holder = _hold(db)
    try:
        with pytest.raises(StoreError) as info:
            save_or_recover(make_record(label="kept"), db, lock_timeout=0.2)
    finally:
        holder.rollback()
        holder.close()
    err = info.value
    assert err.recovery is not None and "stochplan import" in str(err)
    recovery = Path(err.recovery)
    assert recovery.parent == db.parent.resolve() and recovery.is_file()
    assert row_counts(db) == before
    ids = import_runs(recovery, db)
    assert ids == [2]
    with ResultsStore(db) as store:
        got = store.get_run(2).record
    assert_same_record(got, make_record(label="kept"))
    with pytest.raises(InputError, match="target database itself"):
        import_runs(db, db)


def test_save_or_recover_stores_normally(db: Path) -> None:
    from stochplan.store import save_or_recover

    run_id, path = save_or_recover(make_record(), db)
    assert run_id == 1 and path == db


def test_attach_is_one_transaction(db: Path) -> None:
    with ResultsStore(db) as store:
        run_id = store.save_run(make_record())
        before = dump(db)
        with pytest.raises(InputError):
            store.attach(run_id, {"ok": pd.DataFrame({"a": [1]}), "bad": _unstorable_table()},
                         {"k": 1.0})
        assert dump(db) == before
        store.attach(run_id, {"ok": pd.DataFrame({"a": [1]})}, {"k": 2.0})
        assert store.get_run(run_id).record.kpis["k"] == 2.0
