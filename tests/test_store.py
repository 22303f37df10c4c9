"""Tests of the results store (fast, no solver): round trips, ordering, atomicity, errors."""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

import stochplan.store as store_mod
from stochplan.errors import InputError
from stochplan.store import DEFAULT_DB, ResultsStore, RunRecord, StoredRun, resolve_db

ALL_TABLES = ("runs", "plans", "kpis", "tables")


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
        index=pd.MultiIndex.from_arrays(
            [["s1"] * n, [3, 1, 4, 1, 5]], names=["scenario", None]
        ),
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
            written = conn.execute("SELECT COUNT(*) FROM plans WHERE run_id = ?", (run_id,))
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


def test_bad_url_scheme(db: Path) -> None:
    with pytest.raises(InputError, match="only SQLite"):
        ResultsStore("postgresql://user@host/results")
    with pytest.raises(InputError, match="only SQLite") as info:
        resolve_db("mysql://localhost/db")
    assert info.value.field == "db"


def test_newer_schema_version_is_refused(db: Path) -> None:
    ResultsStore(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 2")
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
        make_record(plan=make_plan().drop(columns="week"))
    with pytest.raises(InputError, match="plan.week"):
        make_record(plan=make_plan().assign(week=1.5))
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
