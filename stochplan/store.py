"""Results store: every solve run, its plan, KPIs and tables, in one SQLite file.

The database is plain SQLite (stdlib :mod:`sqlite3`), meant to be queried with SQL as well as
through :class:`ResultsStore`. Schema version 2 (``PRAGMA user_version``):

``runs``
    One row per run: ``id``, ``created`` (ISO-8601 UTC), ``instance``, ``family``, ``method``,
    ``scenarios``, ``seed``, ``n_scenarios``, ``status``, ``objective``, ``bound``, ``gap``,
    ``config`` / ``versions`` / ``timings`` (JSON text), ``parent_run`` (a run this one derives
    from), ``label`` and ``plan_index`` (JSON list of the plan's index names in order, e.g.
    ``["product", "week"]``, ``["crop"]``, ``[]`` for scalar variables).
``plans``
    The first-stage plan in long format, any model family: ``run_id``, ``variable``, ``idx``,
    ``value``. ``idx`` is a JSON object mapping index name to value in ``plan_index`` order,
    e.g. ``{"product":"A","week":3}`` (strings stay strings, integers integers; a missing value
    is an absent key; ``{}`` for a scalar variable), so SQL reads it with
    ``json_extract(idx, '$.week')``.
``kpis``
    Headline KPIs: ``run_id``, ``name``, ``value``.
``recourse``
    The per-scenario second-stage values of the table ``"recourse"``, in long format:
    ``run_id``, ``scenario``, ``variable``, ``idx`` (as in ``plans``), ``value``. E.g. the
    backorders of run 7 per scenario and week::

        SELECT scenario, json_extract(idx, '$.week') AS week, SUM(value) FROM recourse
        WHERE run_id = 7 AND variable = 'B' GROUP BY scenario, week
``tables``
    Further tables: ``run_id``, ``name``, ``payload`` (the DataFrame as JSON in pandas'
    ``orient="split"`` layout, readable with ``pd.read_json(StringIO(payload), orient="split")``)
    and ``meta`` (JSON: the dtypes and index layout the store needs to rebuild the frame
    exactly). The row of the table ``"recourse"`` keeps its place among the run's tables, its
    columns and dtypes, but no rows (``payload`` has ``"data": []``, ``meta`` has
    ``"rows": "recourse"``): those are in ``recourse``.

A run is written in ONE transaction: a save that fails or is interrupted (any exception,
including :class:`KeyboardInterrupt`) part-way leaves the database as it was. Deleting a run
deletes its plan, KPIs, recourse rows and tables (``ON DELETE CASCADE``).

Opening a version-1 file (plans with fixed ``product``/``week`` columns, recourse as a JSON
table) migrates it to version 2 in one transaction; a migration that fails leaves the file as
it was. Files of a newer version are refused.

Float conventions: ``objective``, ``bound``, ``gap``, plan, recourse and KPI values are SQLite
``REAL``, which holds +-inf and every finite double except the sign of -0.0 (read back as 0.0);
SQLite stores NaN as NULL, read back as ``None`` for objective/bound/gap and as NaN for plan,
recourse and KPI values. Float index values in ``idx`` and table payloads keep floats exactly
(shortest repr); payloads write NaN as ``null`` and +-inf as the strings ``"inf"`` / ``"-inf"``.
Non-finite floats in ``config``, ``versions`` and ``timings`` are stored as the strings ``"nan"``,
``"inf"``, ``"-inf"``, so these columns stay valid JSON for SQLite's ``json_extract``.

Examples
--------
>>> import pandas as pd, tempfile, pathlib
>>> plan = pd.DataFrame(
...     {"variable": ["X", "X"], "crop": ["wheat", "corn"], "value": [170.0, 80.0]}
... )
>>> record = RunRecord(
...     instance="farmer", family="farmer", method="ef", scenarios="three-point", seed=1,
...     n_scenarios=3, status="optimal", objective=-108390.0, bound=-108390.0, gap=0.0,
...     config={}, versions={}, timings={}, plan=plan, kpis={"profit": 108390.0},
... )
>>> with tempfile.TemporaryDirectory() as tmp:
...     with ResultsStore(pathlib.Path(tmp) / "results.db") as store:
...         run_id = store.save_run(record)
...         stored = store.get_run(run_id).record
>>> stored.plan
  variable   crop  value
0        X  wheat  170.0
1        X   corn   80.0
>>> stored.kpis
{'profit': 108390.0}
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import logging
import math
import numbers
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from stochplan.errors import InputError

__all__ = [
    "DEFAULT_DB",
    "LOCK_TIMEOUT",
    "SCHEMA_VERSION",
    "ResultsStore",
    "RunRecord",
    "StoredRun",
    "import_runs",
    "resolve_db",
    "save_or_recover",
]

log = logging.getLogger(__name__)

#: Database file used when none is given, relative to the current working directory.
DEFAULT_DB = "stochplan.db"

#: Seconds a write waits for another process's write lock before giving up (a warning says
#: what it waits for after :data:`_LOCK_NOTICE_AFTER` seconds).
LOCK_TIMEOUT = 30.0
_LOCK_NOTICE_AFTER = 1.0
_LOCK_SLICE = 0.1

#: Schema version written to ``PRAGMA user_version``; version 1 files are migrated on opening,
#: newer files are refused.
SCHEMA_VERSION = 2

#: Columns every plan has; the others are its index columns.
PLAN_VALUE_COLUMNS = ("variable", "value")
#: Name of the table stored row by row in the SQL table ``recourse``.
RECOURSE_TABLE = "recourse"
#: Columns every recourse table has; the others are its index columns.
RECOURSE_VALUE_COLUMNS = ("scenario", "variable", "value")
RUN_LIST_COLUMNS = (
    "id",
    "created",
    "instance",
    "method",
    "scenarios",
    "seed",
    "status",
    "objective",
    "gap",
    "label",
)

_PLANS_DDL = """
CREATE TABLE IF NOT EXISTS plans (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    variable TEXT NOT NULL,
    idx TEXT NOT NULL DEFAULT '{}',
    value REAL
);
CREATE INDEX IF NOT EXISTS plans_run_id ON plans(run_id);
"""

_RECOURSE_DDL = """
CREATE TABLE IF NOT EXISTS recourse (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    scenario TEXT NOT NULL,
    variable TEXT NOT NULL,
    idx TEXT NOT NULL DEFAULT '{}',
    value REAL
);
CREATE INDEX IF NOT EXISTS recourse_run_id ON recourse(run_id);
"""

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    instance TEXT NOT NULL,
    family TEXT NOT NULL,
    method TEXT NOT NULL,
    scenarios TEXT NOT NULL,
    seed INTEGER,
    n_scenarios INTEGER NOT NULL,
    status TEXT NOT NULL,
    objective REAL,
    bound REAL,
    gap REAL,
    config TEXT NOT NULL,
    versions TEXT NOT NULL,
    timings TEXT NOT NULL,
    parent_run INTEGER REFERENCES runs(id),
    label TEXT NOT NULL DEFAULT '',
    plan_index TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS runs_parent_run ON runs(parent_run);
"""
    + _PLANS_DDL
    + """
CREATE TABLE IF NOT EXISTS kpis (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS "tables" (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    payload TEXT NOT NULL,
    meta TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);
"""
    + _RECOURSE_DDL
)

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


# --------------------------------------------------------------------------------------------
# Locating the database
# --------------------------------------------------------------------------------------------


def resolve_db(path_or_url: str | Path | None) -> Path:
    """Turn a database path or SQLite URL into a file path.

    Parameters
    ----------
    path_or_url : str, Path or None
        ``None`` for :data:`DEFAULT_DB` in the current working directory; a plain path; or an
        SQLAlchemy-style URL ``sqlite:///relative/path.db`` (three slashes: relative) or
        ``sqlite:////abs/path.db`` (four slashes: absolute). ``sqlite:///:memory:`` gives an
        in-memory database. ``~`` in plain paths is expanded.

    Returns
    -------
    Path
        The database file (not resolved against the working directory).

    Raises
    ------
    InputError
        Any URL scheme other than ``sqlite``, a URL with a host or query, or an empty path.

    Examples
    --------
    >>> resolve_db(None)
    PosixPath('stochplan.db')
    >>> resolve_db("sqlite:///results/runs.db")
    PosixPath('results/runs.db')
    >>> resolve_db("sqlite:////data/runs.db")
    PosixPath('/data/runs.db')
    """
    if path_or_url is None:
        return Path(DEFAULT_DB)
    if isinstance(path_or_url, PurePath):
        return Path(path_or_url).expanduser()
    if not isinstance(path_or_url, str):
        raise InputError("db", path_or_url, "expected a path, a sqlite:/// URL or None")
    text = path_or_url.strip()
    if not text:
        raise InputError("db", path_or_url, "empty database path")
    if "://" not in text:
        return Path(text).expanduser()
    parts = urlsplit(text)
    if parts.scheme.lower() != "sqlite":
        raise InputError(
            "db",
            path_or_url,
            "only SQLite databases are supported: give a file path, sqlite:///relative.db or "
            f"sqlite:////absolute.db (got scheme {parts.scheme!r})",
        )
    if parts.netloc:
        raise InputError(
            "db",
            path_or_url,
            "a sqlite URL has no host: use sqlite:///relative.db or sqlite:////absolute.db",
        )
    if parts.query or parts.fragment:
        raise InputError("db", path_or_url, "sqlite URL query parameters are not supported")
    # urlsplit keeps the slash that separates the (empty) host from the path: drop exactly one.
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path:
        raise InputError("db", path_or_url, "the sqlite URL names no database file")
    return Path(path)


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RunRecord:
    """Everything stored about one solve run.

    Attributes
    ----------
    instance : str
        Instance name.
    family : str
        Model family, e.g. ``"aggregate"``.
    method : str
        Solution method, ``"ef"``, ``"ph"``, ...
    scenarios : str
        Scenario specification text, e.g. ``"three-point"``, ``"poisson:100"``.
    seed : int or None
        Base seed of the scenario draw (must fit in a signed 64-bit integer).
    n_scenarios : int
        Number of scenarios, >= 0.
    status : str
        The solve's status as it returned it (see
        :class:`~stochplan.solve.results.SolveResult`): ``"optimal"``, ``"gap_reached"``,
        ``"time_limit"``, ...
    objective, bound : float or None
        Objective value and best bound, in the model's money unit ($).
    gap : float or None
        Relative optimality gap (dimensionless).
    config : dict
        The full run configuration (JSON-serialisable; numpy scalars, paths and dataclasses are
        converted).
    versions : dict
        Package versions, ``{"stochplan": "0.1.0", "pyomo": ...}``.
    timings : dict
        Wall-clock seconds per phase, ``{"build": ..., "solve": ...}``.
    plan : pandas.DataFrame
        First-stage plan in long format, any model family: a column ``variable`` (names), the
        index columns of the family in order (e.g. ``product``, ``week``; ``crop``;
        ``site``, ``product``; none for scalar variables) and ``value`` (numbers). Column names
        are strings; index values are strings, integers, finite floats or missing (None/NaN:
        the variable has no such index). Read back as ``variable``, the index columns in the
        order given, ``value``, rows in order with a fresh RangeIndex (the index is not
        stored); an index column reads back as strings, int64 (Int64 when some are missing),
        float64 or, mixed, object, by its values, and as object when it has no values.
    kpis : dict of str to float
        Headline KPIs (e.g. ``"profit"``, ``"operating_margin"``); +-inf kept, NaN read back as
        NaN.
    tables : dict of str to pandas.DataFrame
        Further named tables (per-product KPIs, cost composition, ...). Dtypes, column labels,
        index and order round-trip. The table ``"recourse"`` (per-scenario second-stage
        values) must be in long format: columns ``scenario`` (strings), ``variable``
        (strings), index columns as in ``plan`` and ``value`` (numbers), in any order; it is
        stored row by row in the SQL table ``recourse`` and reads back with the same columns
        and dtypes and a fresh RangeIndex.
    parent_run : int or None
        Id of a stored run this one derives from (e.g. an evaluation of its plan).
    label : str
        Free text.

    Notes
    -----
    Fields are checked at construction and a bad one raises
    :class:`~stochplan.errors.InputError` naming it. Records compare by identity (they hold
    DataFrames, which have no single truth value for ``==``).
    """

    instance: str
    family: str
    method: str
    scenarios: str
    seed: int | None
    n_scenarios: int
    status: str
    objective: float | None
    bound: float | None
    gap: float | None
    config: dict[str, Any]
    versions: dict[str, Any]
    timings: dict[str, Any]
    plan: pd.DataFrame
    kpis: dict[str, float]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    parent_run: int | None = None
    label: str = ""

    def __post_init__(self) -> None:
        for name in ("instance", "family", "method", "scenarios", "status", "label"):
            if not isinstance(getattr(self, name), str):
                raise InputError(name, getattr(self, name), "must be a string")
        if self.seed is not None:
            if not _is_int(self.seed) or not _INT64_MIN <= int(self.seed) <= _INT64_MAX:
                raise InputError("seed", self.seed, "must be None or a signed 64-bit integer")
        if not _is_int(self.n_scenarios) or int(self.n_scenarios) < 0:
            raise InputError("n_scenarios", self.n_scenarios, "must be an integer >= 0")
        for name in ("objective", "bound", "gap"):
            value = getattr(self, name)
            if value is not None and not _is_real(value):
                raise InputError(name, value, "must be None or a real number")
        for name in ("config", "versions", "timings"):
            if not isinstance(getattr(self, name), Mapping):
                raise InputError(name, type(getattr(self, name)).__name__, "must be a dict")
        _check_plan(self.plan)
        _check_kpis(self.kpis)
        if not isinstance(self.tables, Mapping):
            raise InputError("tables", type(self.tables).__name__, "must be a dict of DataFrames")
        for name, table in self.tables.items():
            _check_table(name, table)
        if self.parent_run is not None and (not _is_int(self.parent_run) or self.parent_run < 1):
            raise InputError("parent_run", self.parent_run, "must be None or a run id >= 1")


@dataclass(frozen=True)
class StoredRun:
    """A run as read back from the store.

    Attributes
    ----------
    id : int
        Run id in the ``runs`` table.
    created : str
        When the run was saved, ISO-8601 UTC (e.g. ``2025-01-31T12:00:00.123456+00:00``).
    record : RunRecord
        The stored record.
    """

    id: int
    created: str
    record: RunRecord


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


class ResultsStore:
    """A results database in one SQLite file.

    Parameters
    ----------
    path_or_url : str, Path or None
        See :func:`resolve_db`. Missing parent directories and the file are created, and the
        schema is written on first use.

    Raises
    ------
    InputError
        The file is not a SQLite database, or was written by a newer stochplan (schema version
        above :data:`SCHEMA_VERSION`); the message names the file.

    Notes
    -----
    Usable as a context manager, which closes the connection on exit. Every write is one
    transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), rolled back on any exception.
    """

    def __init__(self, path_or_url: str | Path | None = None,
                 lock_timeout: float | None = None) -> None:
        self.path = resolve_db(path_or_url)
        self.lock_timeout = LOCK_TIMEOUT if lock_timeout is None else float(lock_timeout)
        in_memory = str(self.path) == ":memory:"
        if not in_memory:
            if self.path.is_dir():
                raise InputError("db", str(self.path), "is a folder, not a database file")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError("db", str(self.path), "cannot create the database's folder "
                                 f"({exc.strerror or exc})") from None
        try:
            self._conn = sqlite3.connect(str(self.path), isolation_level=None,
                                         timeout=self.lock_timeout)
        except sqlite3.Error as exc:
            raise InputError("db", str(self.path), f"cannot open the database ({exc})") from None
        try:
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._init_schema()
        except sqlite3.OperationalError as exc:
            self._conn.close()
            raise InputError("db", str(self.path), f"cannot open the database ({exc})") from exc
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise InputError("db", str(self.path), f"not a usable SQLite database ({exc})") from exc
        except BaseException:
            self._conn.close()
            raise
        log.debug("opened results store %s", self.path)

    def check_writable(self) -> None:
        """Fail now, not after a long solve, when a run could not be stored: take the write
        lock and write the schema version again, then roll back (nothing changes).

        Raises
        ------
        InputError
            The file or its folder is read-only or the disk refuses the write; names the file.
        StoreError
            Another process held the write lock longer than :attr:`lock_timeout`.
        """
        try:
            with self._transaction() as conn:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("CREATE TABLE _stochplan_write_probe (x)")
                raise _ProbeDone
        except _ProbeDone:
            return
        except sqlite3.Error as exc:
            raise InputError("db", str(self.path), f"cannot be written ({exc}); nothing was "
                             "solved") from None

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._conn.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.path)!r})"

    # -- writing -----------------------------------------------------------------------------

    def save_run(self, record: RunRecord) -> int:
        """Store a run with its plan, KPIs and tables in one transaction.

        Parameters
        ----------
        record : RunRecord
            The run to store.

        Returns
        -------
        int
            The new run id.

        Raises
        ------
        InputError
            ``parent_run`` names no stored run, or a value cannot be serialised. Nothing is
            written then, nor when any other exception (or KeyboardInterrupt) interrupts the
            save.
        """
        if not isinstance(record, RunRecord):
            raise InputError("record", type(record).__name__, "must be a RunRecord")
        with self._transaction() as conn:
            run_id = self._insert_run(conn, record)
        log.info(
            "saved run %d (%s/%s, %s, %d plan rows, %d KPIs, %d tables) to %s",
            run_id,
            record.instance,
            record.method,
            record.status,
            len(record.plan),
            len(record.kpis),
            len(record.tables),
            self.path,
        )
        return run_id

    def _insert_run(self, conn: sqlite3.Connection, record: RunRecord,
                    created: str | None = None) -> int:
        """Insert a run and its rows inside the caller's transaction; its id."""
        row = (
            created or _utc_now(),
            record.instance,
            record.family,
            record.method,
            record.scenarios,
            None if record.seed is None else int(record.seed),
            int(record.n_scenarios),
            record.status,
            _real_or_none(record.objective),
            _real_or_none(record.bound),
            _real_or_none(record.gap),
            _dumps_json("config", record.config),
            _dumps_json("versions", record.versions),
            _dumps_json("timings", record.timings),
            None if record.parent_run is None else int(record.parent_run),
            record.label,
            json.dumps(_index_names(record.plan, PLAN_VALUE_COLUMNS), ensure_ascii=False),
        )
        if record.parent_run is not None:
            self._require_run(int(record.parent_run), field_name="parent_run")
        cursor = conn.execute(
            "INSERT INTO runs (created, instance, family, method, scenarios, seed, "
            "n_scenarios, status, objective, bound, gap, config, versions, timings, "
            "parent_run, label, plan_index) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )
        run_id = cursor.lastrowid
        assert run_id is not None
        _insert_plan(conn, run_id, record.plan)
        _insert_kpis(conn, run_id, record.kpis)
        for name, table in record.tables.items():
            _insert_table(conn, run_id, name, table, replace=False)
        return int(run_id)

    def add_table(
        self, run_id: int, name: str, table: pd.DataFrame, *, replace: bool = False
    ) -> None:
        """Attach one more named table to a stored run, in one transaction.

        Parameters
        ----------
        run_id : int
            A stored run.
        name : str
            Table name, unique per run.
        table : pandas.DataFrame
            The table; dtypes, column labels and index round-trip. The table ``"recourse"``
            goes row by row into the SQL table ``recourse`` (see :class:`RunRecord`).
        replace : bool
            Overwrite a table of the same name (default: refuse).

        Raises
        ------
        InputError
            Unknown run, a name already used (and ``replace`` False) or unserialisable values.
        """
        _check_table(name, table)
        with self._transaction() as conn:
            self._require_run(run_id)
            _insert_table(conn, int(run_id), name, table, replace=replace)
        log.info("added table %r (%d rows) to run %d in %s", name, len(table), run_id, self.path)

    def attach(self, run_id: int, tables: Mapping[str, pd.DataFrame],
               kpis: Mapping[str, float]) -> None:
        """Attach tables (replacing those of the same name) and KPIs to a stored run, all in
        one transaction: an interrupted call leaves the run as it was."""
        self._require_run(run_id)
        _check_kpis(kpis)
        for name, table in tables.items():
            _check_table(name, table)
        with self._transaction() as conn:
            for name, table in tables.items():
                _insert_table(conn, int(run_id), name, table, replace=True)
            _insert_kpis(conn, int(run_id), kpis)

    def add_kpis(self, run_id: int, kpis: Mapping[str, float]) -> None:
        """Attach KPIs to a stored run, overwriting those of the same name, in one transaction.

        Raises
        ------
        InputError
            Unknown run, or a KPI that is not a named real number.
        """
        _check_kpis(kpis)
        with self._transaction() as conn:
            self._require_run(run_id)
            _insert_kpis(conn, int(run_id), kpis)
        log.info("added %d KPIs to run %d in %s", len(kpis), run_id, self.path)

    def delete_run(self, run_id: int) -> None:
        """Delete a run with its plan, KPIs, recourse rows and tables.

        Raises
        ------
        InputError
            Unknown run, or other runs derive from it (``parent_run``): delete those first.
        """
        with self._transaction() as conn:
            self._require_run(run_id)
            children = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM runs WHERE parent_run = ? ORDER BY id", (int(run_id),)
                )
            ]
            if children:
                raise InputError(
                    "run",
                    run_id,
                    f"runs {children} in {self.path} derive from it (parent_run); "
                    "delete them first",
                )
            conn.execute("DELETE FROM runs WHERE id = ?", (int(run_id),))
        log.info("deleted run %d from %s", run_id, self.path)

    # -- reading -----------------------------------------------------------------------------

    def list_runs(self, limit: int | None = None) -> pd.DataFrame:
        """One row per stored run, newest first.

        Parameters
        ----------
        limit : int or None
            At most this many runs (the newest); None for all.

        Returns
        -------
        pandas.DataFrame
            Columns ``id``, ``created``, ``instance``, ``method``, ``scenarios``, ``seed``
            (nullable Int64), ``status``, ``objective``, ``gap`` (float, NaN when absent) and
            ``label``.
        """
        sql = f"SELECT {', '.join(RUN_LIST_COLUMNS)} FROM runs ORDER BY id DESC"
        params: tuple[int, ...] = ()
        if limit is not None:
            if not _is_int(limit) or int(limit) < 0:
                raise InputError("limit", limit, "must be None or an integer >= 0")
            sql += " LIMIT ?"
            params = (int(limit),)
        rows = self._conn.execute(sql, params).fetchall()
        columns = list(zip(*rows)) if rows else [() for _ in RUN_LIST_COLUMNS]
        data = dict(zip(RUN_LIST_COLUMNS, columns, strict=True))
        return pd.DataFrame(
            {
                "id": np.array(data["id"], dtype=np.int64),
                "created": _str_column(data["created"]),
                "instance": _str_column(data["instance"]),
                "method": _str_column(data["method"]),
                "scenarios": _str_column(data["scenarios"]),
                "seed": pd.array(list(data["seed"]), dtype="Int64"),
                "status": _str_column(data["status"]),
                "objective": np.array(data["objective"], dtype=np.float64),
                "gap": np.array(data["gap"], dtype=np.float64),
                "label": _str_column(data["label"]),
            }
        )

    def get_run(self, run_id: int) -> StoredRun:
        """Read one stored run back.

        Parameters
        ----------
        run_id : int
            Id from :meth:`save_run` or :meth:`list_runs`.

        Returns
        -------
        StoredRun

        Raises
        ------
        InputError
            No such run; the message names the id and the database file.
        """
        # One read transaction, so a concurrent writer cannot show us half a run.
        with self._transaction(immediate=False) as conn:
            self._require_run(run_id)
            key = (int(run_id),)
            cursor = conn.execute("SELECT * FROM runs WHERE id = ?", key)
            values = dict(zip([d[0] for d in cursor.description], cursor.fetchone(), strict=True))
            plan_rows = conn.execute(
                "SELECT variable, idx, value FROM plans WHERE run_id = ? ORDER BY rowid", key
            ).fetchall()
            kpi_rows = conn.execute(
                "SELECT name, value FROM kpis WHERE run_id = ? ORDER BY rowid", key
            ).fetchall()
            tables = {
                name: _read_table(conn, int(run_id), payload, meta)
                for name, payload, meta in conn.execute(
                    'SELECT name, payload, meta FROM "tables" WHERE run_id = ? ORDER BY rowid',
                    key,
                ).fetchall()
            }
        record = RunRecord(
            instance=values["instance"],
            family=values["family"],
            method=values["method"],
            scenarios=values["scenarios"],
            seed=values["seed"],
            n_scenarios=values["n_scenarios"],
            status=values["status"],
            objective=values["objective"],
            bound=values["bound"],
            gap=values["gap"],
            config=json.loads(values["config"]),
            versions=json.loads(values["versions"]),
            timings=json.loads(values["timings"]),
            plan=_plan_frame(plan_rows, json.loads(values["plan_index"])),
            kpis={name: math.nan if value is None else float(value) for name, value in kpi_rows},
            tables=tables,
            parent_run=values["parent_run"],
            label=values["label"],
        )
        return StoredRun(id=int(values["id"]), created=values["created"], record=record)

    def frontier_runs(self, frontier: str | None = None) -> pd.DataFrame:
        """The runs that are points of a mean-CVaR frontier (``stochplan frontier``): those
        whose configuration has ``frontier = {"id": ..., "index": ...}``, of one frontier
        (``frontier``) or of all.

        Returns
        -------
        pandas.DataFrame
            Columns ``id`` (run id), ``frontier`` (its id) and ``index`` (the point's place
            along the frontier, 0 = lowest weight), ordered by run id; no rows when none.
        """
        # CASE, not AND: SQLite does not promise to test json_valid first
        test = "json_type(config, '$.frontier.id') = 'text'"
        if frontier:
            test += " AND json_extract(config, '$.frontier.id') = ?"
        where = f"CASE WHEN json_valid(config) THEN {test} ELSE 0 END"
        rows = self._conn.execute(
            "SELECT id, json_extract(config, '$.frontier.id'), "
            f"json_extract(config, '$.frontier.index') FROM runs WHERE {where} ORDER BY id",
            (str(frontier),) if frontier else (),
        ).fetchall()
        return pd.DataFrame({
            "id": np.array([r[0] for r in rows], dtype=np.int64),
            "frontier": _str_column([r[1] for r in rows]),
            "index": pd.array([r[2] for r in rows], dtype="Int64"),
        })

    # -- internals ---------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        """BEGIN ... COMMIT; ROLLBACK on any BaseException (KeyboardInterrupt too), re-raised."""
        conn = self._conn
        if immediate:
            self._begin_immediate()
        else:
            conn.execute("BEGIN")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
                log.debug("rolled back a transaction on %s", self.path)
            raise

    def _begin_immediate(self) -> None:
        """``BEGIN IMMEDIATE``: take the write lock, saying on the log (a warning) what it waits
        for when another process holds it, and giving up after :attr:`lock_timeout` seconds
        with an :class:`~stochplan.errors.StoreError` that says so.

        It waits in slices of :data:`_LOCK_SLICE` seconds, not in one call into SQLite, so that
        Ctrl-C and SIGTERM (handled between Python bytecodes) end a wait at once.
        """
        conn = self._conn
        deadline = time.monotonic() + self.lock_timeout
        notice = time.monotonic() + _LOCK_NOTICE_AFTER
        told = False
        try:
            while True:
                wait = max(0.0, min(deadline - time.monotonic(), _LOCK_SLICE))
                conn.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if not _is_locked(exc):
                        raise
                if time.monotonic() >= deadline:
                    raise _lock_error(self.path, self.lock_timeout) from None
                if not told and time.monotonic() >= notice:
                    log.warning("waiting up to %.0f s for the write lock on %s: another process "
                                "is writing to it", deadline - time.monotonic(), self.path)
                    told = True
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(self.lock_timeout * 1000)}")

    def _require_run(self, run_id: object, field_name: str = "run") -> None:
        """InputError naming the id and the file unless ``run_id`` is a stored run."""
        if not _is_int(run_id):
            raise InputError(field_name, run_id, "a run id must be an integer")
        key = (int(run_id),)  # type: ignore[call-overload]
        if self._conn.execute("SELECT 1 FROM runs WHERE id = ?", key).fetchone() is None:
            raise InputError(field_name, run_id, f"no such run in {self.path}")

    def _init_schema(self) -> None:
        """Create the schema in a new file, migrate a version-1 file, refuse newer ones."""
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        self._refuse_newer(version)
        if version == SCHEMA_VERSION:
            return
        with self._transaction() as conn:
            # Re-read inside the write lock: another process may have created it meanwhile.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            self._refuse_newer(version)
            if version == SCHEMA_VERSION:
                return
            if version == 1:
                _migrate_v1(conn, self.path)
            else:
                _execute_script(conn, _SCHEMA)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if version == 1:
            log.info("migrated results store %s from schema v1 to v%d", self.path, SCHEMA_VERSION)
        else:
            log.info("created results store schema v%d in %s", SCHEMA_VERSION, self.path)

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise InputError(
                "db",
                str(self.path),
                f"schema version {version} was written by a newer stochplan (this one reads "
                f"version {SCHEMA_VERSION}); upgrade stochplan",
            )


class _ProbeDone(Exception):
    """Raised inside :meth:`ResultsStore.check_writable`'s transaction to roll it back."""


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _lock_error(path: Path, seconds: float) -> Exception:
    from stochplan.errors import StoreError

    return StoreError(f"database is locked: another process held the write lock on {path} for "
                      f"more than {seconds:g} s")


# --------------------------------------------------------------------------------------------
# Recovery files: a run that could not be stored, kept in a database file of its own
# --------------------------------------------------------------------------------------------


def save_or_recover(record: RunRecord, path_or_url: str | Path | None,
                    lock_timeout: float | None = None) -> tuple[int, Path]:
    """Store ``record`` in the database; when that fails (read-only file, full disk, a write
    lock held too long), write it to a recovery file instead and raise.

    Returns
    -------
    (int, Path)
        The run id and the database file.

    Raises
    ------
    StoreError
        The run was not stored; its ``recovery`` names the file holding it
        (``stochplan import FILE`` brings it in), or is None when no file could be written.
    """
    from stochplan.errors import StoreError

    db = resolve_db(path_or_url)
    try:
        with ResultsStore(db, lock_timeout=lock_timeout) as store:
            return store.save_run(record), db
    except (sqlite3.Error, OSError, InputError, StoreError) as exc:
        if isinstance(exc, InputError) and exc.field not in ("db",):
            raise  # the record itself is bad: a recovery file would not store it either
        reason = str(exc)
    recovery, failures = None, []
    for folder in _recovery_folders(db):
        candidate = folder / f"{db.name or 'stochplan.db'}.recovered-{_stamp()}.db"
        try:
            with ResultsStore(candidate, lock_timeout=0.0) as spare:
                spare.save_run(record)
            recovery = candidate
            break
        except (sqlite3.Error, OSError, InputError, StoreError) as exc:
            failures.append(f"{candidate}: {exc}")
            candidate.unlink(missing_ok=True)
    if recovery is None:
        raise StoreError(f"the run could not be stored in {db} ({reason}) nor written to a "
                         f"recovery file ({'; '.join(failures)})")
    log.warning("run written to the recovery file %s", recovery)
    raise StoreError(f"the run could not be stored in {db} ({reason}); it was written to "
                     f"{recovery}: `stochplan import {recovery} --db {db}` brings it in",
                     recovery)


def import_runs(source: str | Path, path_or_url: str | Path | None) -> list[int]:
    """Copy every run of a recovery file (or any results database) into a database, in one
    transaction; the new run ids in the order of the source's. A run's ``parent_run`` is kept
    only when the target holds that run."""
    src_path = resolve_db(source)
    if not src_path.is_file():
        raise InputError("FILE", str(source), "no such file")
    with ResultsStore(src_path) as src:
        ids = [int(i) for i in src.list_runs()["id"]][::-1]
        stored = [src.get_run(i) for i in ids]
    with ResultsStore(path_or_url) as target:
        if str(target.path) != ":memory:" and src_path.resolve() == target.path.resolve():
            raise InputError("FILE", str(source), "is the target database itself")
        out = []
        with target._transaction() as conn:
            for run in stored:
                record, parent = run.record, run.record.parent_run
                if parent is not None and conn.execute(
                        "SELECT 1 FROM runs WHERE id = ?", (int(parent),)).fetchone() is None:
                    record = dataclasses.replace(record, parent_run=None)
                out.append(target._insert_run(conn, record, created=run.created))
    return out


def _recovery_folders(db: Path) -> list[Path]:
    import tempfile

    folders = [db.parent if str(db) != ":memory:" else Path.cwd(), Path.cwd(),
               Path(tempfile.gettempdir())]
    return list(dict.fromkeys(f.resolve() if f.exists() else f for f in folders))


def _stamp() -> str:
    import os

    return f"{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"


def _execute_script(conn: sqlite3.Connection, script: str) -> None:
    """Run ``;``-separated statements one by one (``executescript`` would COMMIT first)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


# --------------------------------------------------------------------------------------------
# Migration from schema version 1
# --------------------------------------------------------------------------------------------
#
# Version 1 had ``plans(run_id, variable, product, week, value)`` and kept the table
# "recourse" as a JSON payload in "tables". The caller runs the steps below in the one
# transaction that also sets ``user_version``, so a step that fails leaves the file as it was.


def _migrate_v1(conn: sqlite3.Connection, path: Path) -> None:
    """Migrate a version-1 database to version 2 (inside the caller's transaction)."""
    _migrate_plans_v1(conn)
    _migrate_recourse_v1(conn, path)


def _migrate_plans_v1(conn: sqlite3.Connection) -> None:
    """``(product, week)`` -> ``idx`` (NULL ones left out) and ``runs.plan_index``.

    A run's index names are ``["product", "week"]`` when any of its plan rows has a product
    or a week, else none (v1 wrote the fixed columns even for plans without an index).
    """
    conn.execute("ALTER TABLE runs ADD COLUMN plan_index TEXT NOT NULL DEFAULT '[]'")
    conn.execute(
        "UPDATE runs SET plan_index = ? WHERE id IN (SELECT run_id FROM plans "
        "WHERE product IS NOT NULL OR week IS NOT NULL)",
        (json.dumps(["product", "week"]),),
    )
    conn.execute("ALTER TABLE plans RENAME TO plans_v1")
    conn.execute("DROP INDEX IF EXISTS plans_run_id")
    _execute_script(conn, _PLANS_DDL)
    rows = conn.execute(
        "SELECT run_id, variable, product, week, value FROM plans_v1 ORDER BY rowid"
    ).fetchall()
    run_id, variable, product, week, value = (
        (list(c) for c in zip(*rows)) if rows else ([], [], [], [], [])
    )
    where = "plans (schema version 1)"
    idx = _encode_idx(
        ["product", "week"],
        [_index_values(f"{where}.product", product), _index_values(f"{where}.week", week)],
        len(rows),
    )
    conn.executemany(
        "INSERT INTO plans (run_id, variable, idx, value) VALUES (?, ?, ?, ?)",
        zip(run_id, variable, idx, value, strict=True),
    )
    conn.execute("DROP TABLE plans_v1")


def _migrate_recourse_v1(conn: sqlite3.Connection, path: Path) -> None:
    """Each run's JSON table "recourse" -> rows of ``recourse``; its place in "tables" kept."""
    _execute_script(conn, _RECOURSE_DDL)
    stored = conn.execute(
        'SELECT run_id, payload, meta FROM "tables" WHERE name = ? ORDER BY rowid',
        (RECOURSE_TABLE,),
    ).fetchall()
    for run_id, payload, meta in stored:
        table = _decode_table(payload, meta)
        try:
            _check_recourse(table)
        except InputError as exc:
            raise InputError(
                "db",
                str(path),
                f"cannot migrate to schema version {SCHEMA_VERSION}: the table "
                f"{RECOURSE_TABLE!r} of run {run_id} is not a long-format recourse table "
                f"({exc}); the file is unchanged",
            ) from exc
        _insert_table(conn, run_id, RECOURSE_TABLE, table, replace=True)


# --------------------------------------------------------------------------------------------
# Writing rows
# --------------------------------------------------------------------------------------------


def _insert_plan(conn: sqlite3.Connection, run_id: int, plan: pd.DataFrame) -> None:
    names = _index_names(plan, PLAN_VALUE_COLUMNS)
    variable = [str(v) for v in plan["variable"].tolist()]
    idx = _encode_idx(names, [_index_values(f"plan.{n}", plan[n]) for n in names], len(plan))
    value = [None if _is_missing(v) else float(v) for v in plan["value"].tolist()]
    conn.executemany(
        "INSERT INTO plans (run_id, variable, idx, value) VALUES (?, ?, ?, ?)",
        zip([run_id] * len(variable), variable, idx, value, strict=True),
    )


def _insert_kpis(conn: sqlite3.Connection, run_id: int, kpis: Mapping[str, float]) -> None:
    conn.executemany(
        "INSERT INTO kpis (run_id, name, value) VALUES (?, ?, ?) "
        "ON CONFLICT (run_id, name) DO UPDATE SET value = excluded.value",
        [(run_id, name, _real_or_none(value)) for name, value in kpis.items()],
    )


def _insert_table(
    conn: sqlite3.Connection, run_id: int, name: str, table: pd.DataFrame, replace: bool
) -> None:
    """One named table as a JSON payload in "tables"; "recourse" as rows of ``recourse``."""
    if name == RECOURSE_TABLE:
        # "tables" keeps the columns, dtypes and place among the run's tables; no rows.
        payload, meta = _encode_table(name, table.iloc[:0].reset_index(drop=True))
        meta = json.dumps({**json.loads(meta), "rows": RECOURSE_TABLE}, separators=(",", ":"))
    else:
        payload, meta = _encode_table(name, table)
    if replace:
        sql = (
            'INSERT INTO "tables" (run_id, name, payload, meta) VALUES (?, ?, ?, ?) '
            "ON CONFLICT (run_id, name) DO UPDATE SET payload = excluded.payload, "
            "meta = excluded.meta"
        )
    else:
        exists = conn.execute(
            'SELECT 1 FROM "tables" WHERE run_id = ? AND name = ?', (run_id, name)
        ).fetchone()
        if exists:
            raise InputError(
                "tables", name, f"run {run_id} already has a table of this name (replace=True)"
            )
        sql = 'INSERT INTO "tables" (run_id, name, payload, meta) VALUES (?, ?, ?, ?)'
    conn.execute(sql, (run_id, name, payload, meta))
    if name == RECOURSE_TABLE:
        conn.execute("DELETE FROM recourse WHERE run_id = ?", (run_id,))
        _insert_recourse(conn, run_id, table)


def _insert_recourse(conn: sqlite3.Connection, run_id: int, table: pd.DataFrame) -> None:
    where = f"tables[{RECOURSE_TABLE!r}]"
    names = _index_names(table, RECOURSE_VALUE_COLUMNS)
    scenario = [str(v) for v in table["scenario"].tolist()]
    variable = [str(v) for v in table["variable"].tolist()]
    idx = _encode_idx(names, [_index_values(f"{where}.{n}", table[n]) for n in names], len(table))
    value = [None if _is_missing(v) else float(v) for v in table["value"].tolist()]
    conn.executemany(
        "INSERT INTO recourse (run_id, scenario, variable, idx, value) VALUES (?, ?, ?, ?, ?)",
        zip([run_id] * len(table), scenario, variable, idx, value, strict=True),
    )


# --------------------------------------------------------------------------------------------
# Reading rows
# --------------------------------------------------------------------------------------------


def _plan_frame(rows: list[tuple[Any, ...]], names: list[str]) -> pd.DataFrame:
    """The plan as written: ``variable``, the index columns ``names``, ``value``."""
    variable, idx, value = (list(c) for c in zip(*rows)) if rows else ([], [], [])
    columns: dict[str, Any] = {"variable": _str_column(variable)}
    for name, values in zip(names, _decode_idx(names, idx), strict=True):
        columns[name] = _index_column(values)
    columns["value"] = np.array(value, dtype=np.float64)
    return pd.DataFrame(columns)


def _read_table(conn: sqlite3.Connection, run_id: int, payload: str, meta: str) -> pd.DataFrame:
    """One named table: decoded from its payload, or rebuilt from the rows of ``recourse``."""
    layout = json.loads(meta)
    if layout.get("rows") != RECOURSE_TABLE:
        return _decode_table(payload, meta)
    rows = conn.execute(
        "SELECT scenario, variable, idx, value FROM recourse WHERE run_id = ? ORDER BY rowid",
        (run_id,),
    ).fetchall()
    scenario, variable, idx, value = (list(c) for c in zip(*rows)) if rows else ([], [], [], [])
    empty = _decode_table(payload, meta)  # the columns, as labelled and typed when written
    labels = list(empty.columns)
    names = [c for c in labels if c not in RECOURSE_VALUE_COLUMNS]
    values = dict(zip(names, _decode_idx(names, idx), strict=True))
    values.update(scenario=scenario, variable=variable, value=value)
    data = {
        i: _decode_values(values[label], spec)
        for i, (label, spec) in enumerate(zip(labels, layout["dtypes"], strict=True))
    }
    frame = pd.DataFrame(data, index=pd.RangeIndex(len(rows)))
    frame.columns = empty.columns
    return frame


def _str_column(values: Any) -> pd.Series:
    """Strings as pandas infers them (``str`` dtype on pandas 3, object before; None kept)."""
    series = pd.Series(list(values), dtype=object)
    return series.infer_objects() if len(series) else series.astype(_STR_DTYPE)


#: The dtype pandas gives a column of strings: ``str`` on pandas 3, object on pandas 2.
_STR_DTYPE = pd.Series(["x"]).dtype


# --------------------------------------------------------------------------------------------
# Index columns <-> ``idx`` JSON objects
# --------------------------------------------------------------------------------------------
#
# Written with the stdlib encoder (floats as shortest repr, exact) in compact form, never with
# SQLite's json_object (which prints floats with 15 significant digits); read with json.loads.


def _index_names(frame: pd.DataFrame, value_columns: tuple[str, ...]) -> list[str]:
    """The index columns of a long-format frame: all but ``value_columns``, in order."""
    return [str(c) for c in frame.columns if c not in value_columns]


def _index_values(where: str, column: Any) -> list[str | int | float | None]:
    """One index column as JSON-ready values: str, int, finite float, None when missing.

    Raises
    ------
    InputError
        A value of another type (bool, date, ...) or +-inf; ``where`` names the column.
    """
    dtype = getattr(column, "dtype", None)
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        return column.tolist()  # type: ignore[no-any-return]
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        array = column.to_numpy()
        if np.isinf(array).any():
            raise InputError(where, array[np.isinf(array)][0], _INDEX_VALUE_RULE)
        return [None if math.isnan(v) else v for v in array.tolist()]
    objects = column.to_numpy(dtype=object) if hasattr(column, "to_numpy") else column
    return [_index_value(where, v) for v in objects]


_INDEX_VALUE_RULE = "index values must be strings, integers, finite floats or missing (None/NaN)"


def _index_value(where: str, value: Any) -> str | int | float | None:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, str):
        return str(value)
    if _is_int(value):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        if math.isfinite(value):
            return float(value)
    raise InputError(where, value, _INDEX_VALUE_RULE)


def _encode_idx(names: list[str], columns: list[list[Any]], n_rows: int) -> list[str]:
    """``idx`` texts, e.g. ``{"product":"A","week":3}``; missing values are left out."""
    if not names:
        return ["{}"] * n_rows
    keys = [json.dumps(name, ensure_ascii=False) + ":" for name in names]
    encoded = [[_json_atom(v) for v in column] for column in columns]
    return [
        "{" + ",".join(k + v for k, v in zip(keys, row, strict=True) if v is not None) + "}"
        for row in zip(*encoded, strict=True)
    ]


def _json_atom(value: str | float | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)  # int, or a finite float as its shortest repr (what json.dumps writes)


def _decode_idx(names: list[str], texts: list[str]) -> list[list[Any]]:
    """The index columns ``names`` of ``idx`` texts; None where a key is absent."""
    objects = [json.loads(text) for text in texts]
    return [[obj.get(name) for obj in objects] for name in names]


def _index_column(values: list[Any]) -> Any:
    """An index column with the dtype its values imply (see :class:`RunRecord`)."""
    kinds = {type(v) for v in values if v is not None}
    if kinds == {str}:
        return _str_column(values)
    if kinds == {int}:
        try:
            if None in values:
                return pd.array(values, dtype="Int64")
            return np.array(values, dtype=np.int64)
        except (OverflowError, TypeError, ValueError):  # beyond int64: object
            pass
    if kinds == {float}:
        return np.array(values, dtype=np.float64)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


# --------------------------------------------------------------------------------------------
# Tables: DataFrame <-> JSON (pandas' orient="split" layout) + meta with dtypes
# --------------------------------------------------------------------------------------------
#
# pandas' own ``to_json(double_precision=15)`` rounds to 15 decimal places (1e-20 -> 0) and
# writes +-inf as null, so the payload is written with the stdlib json encoder instead (floats
# as shortest repr, exact) in the same layout, and the dtypes go to ``meta``.


def _encode_table(name: str, table: pd.DataFrame) -> tuple[str, str]:
    """``(payload, meta)`` JSON texts for one table."""
    where = f"tables[{name!r}]"
    columns: list[list[Any]] = []
    specs: list[Any] = []
    for i in range(table.shape[1]):
        label = table.columns[i]
        try:
            values, spec = _encode_values(table.iloc[:, i])
        except TypeError as exc:
            raise InputError(where, label, f"column cannot be stored: {exc}") from exc
        columns.append(values)
        specs.append(spec)
    payload: dict[str, Any] = {"columns": [_encode_label(where, c) for c in table.columns]}
    index_meta: dict[str, Any] | None = None
    if not _is_default_index(table.index):
        levels = [table.index.get_level_values(k) for k in range(table.index.nlevels)]
        try:
            encoded = [_encode_values(level) for level in levels]
        except TypeError as exc:
            raise InputError(where, "index", f"index cannot be stored: {exc}") from exc
        if len(encoded) == 1:
            payload["index"] = encoded[0][0]
        else:
            payload["index"] = [list(row) for row in zip(*(e[0] for e in encoded))]
        index_meta = {
            "names": [_encode_label(where, n) for n in table.index.names],
            "dtypes": [e[1] for e in encoded],
        }
    payload["data"] = list(zip(*columns)) if columns else [[] for _ in range(len(table))]
    meta = {
        "dtypes": specs,
        "index": index_meta,
        "columns": {
            "names": [_encode_label(where, n) for n in table.columns.names],
            "dtype": str(table.columns.dtype),
        },
    }
    try:
        return (
            json.dumps(payload, allow_nan=False, separators=(",", ":")),
            json.dumps(meta, allow_nan=False, separators=(",", ":")),
        )
    except (TypeError, ValueError) as exc:  # pragma: no cover - _encode_values catches these
        raise InputError(where, name, f"cannot be serialised: {exc}") from exc


def _decode_table(payload_text: str, meta_text: str) -> pd.DataFrame:
    payload = json.loads(payload_text)
    meta = json.loads(meta_text)
    data = payload["data"]
    specs = meta["dtypes"]
    n_rows = len(data)
    raw_columns = list(zip(*data)) if data and specs else [() for _ in specs]
    arrays = {
        i: _decode_values(list(column), spec)
        for i, (column, spec) in enumerate(zip(raw_columns, specs, strict=True))
    }
    index: pd.Index
    if meta["index"] is None:
        index = pd.RangeIndex(n_rows)
    else:
        names = [_decode_label(n) for n in meta["index"]["names"]]
        level_specs = meta["index"]["dtypes"]
        if len(level_specs) == 1:
            index = pd.Index(_decode_values(payload["index"], level_specs[0]), name=names[0])
        else:
            raw_levels = list(zip(*payload["index"])) if n_rows else [() for _ in level_specs]
            index = pd.MultiIndex.from_arrays(
                [_decode_values(list(lv), s) for lv, s in zip(raw_levels, level_specs)],
                names=names,
            )
    frame = pd.DataFrame(arrays, index=index)
    labels = [_decode_label(c) for c in payload["columns"]]
    col_names = [_decode_label(n) for n in meta["columns"]["names"]]
    if len(col_names) > 1:
        frame.columns = pd.MultiIndex.from_tuples(labels, names=col_names)
    else:
        try:
            frame.columns = pd.Index(labels, dtype=meta["columns"]["dtype"], name=col_names[0])
        except (TypeError, ValueError):
            frame.columns = pd.Index(labels, name=col_names[0])
    return frame


def _encode_values(values: pd.Series | pd.Index) -> tuple[list[Any], Any]:
    """JSON-ready values of one column (or index level) and its dtype spec."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories, cat_spec = _encode_values(pd.Index(dtype.categories))
        objects = np.asarray(values, dtype=object).tolist()
        return [_json_scalar(v) for v in objects], {
            "category": categories,
            "categories_dtype": cat_spec,
            "ordered": bool(dtype.ordered),
        }
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        array = values.to_numpy()
        out = array.tolist()
        if not np.isfinite(array).all():
            out = [_json_float(v) for v in out]
        return out, str(dtype)
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return values.to_numpy().tolist(), str(dtype)
    if isinstance(dtype, pd.DatetimeTZDtype) or (isinstance(dtype, np.dtype) and dtype.kind == "M"):
        stamps = pd.DatetimeIndex(values)
        return [None if pd.isna(t) else t.isoformat() for t in stamps], str(dtype)
    if isinstance(dtype, np.dtype) and dtype.kind == "m":
        deltas = pd.TimedeltaIndex(values)
        return [None if pd.isna(t) else str(t) for t in deltas], str(dtype)
    objects = values.to_numpy(dtype=object).tolist()
    return [v if type(v) is str else _json_scalar(v) for v in objects], str(dtype)


def _decode_values(values: list[Any], spec: Any) -> Any:
    """Inverse of :func:`_encode_values`: an array of the recorded dtype."""
    if isinstance(spec, dict):
        categories = pd.Index(_decode_values(spec["category"], spec["categories_dtype"]))
        return pd.Categorical(values, categories=categories, ordered=spec["ordered"])
    if spec == "object":
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    if spec == "str":  # the default string dtype of pandas 3
        if _STR_DTYPE == object:  # noqa: E721 - numpy's test for the object dtype
            return np.array(values, dtype=object)
        return pd.array(values, dtype=_STR_DTYPE)
    dtype = pd.api.types.pandas_dtype(spec)
    if isinstance(dtype, np.dtype):
        if dtype.kind in "fiub":
            return np.array(values, dtype=dtype)  # None -> nan, "inf" -> inf for floats
        if dtype.kind == "M":
            return pd.to_datetime(values, format="ISO8601").astype(dtype).array
        if dtype.kind == "m":
            return pd.to_timedelta(values).astype(dtype).array
    if isinstance(dtype, pd.DatetimeTZDtype):
        stamps = pd.to_datetime(values, format="ISO8601", utc=True)
        return stamps.tz_convert(dtype.tz).astype(dtype).array
    if isinstance(dtype, (pd.Float32Dtype, pd.Float64Dtype)):
        values = [v if v is None else float(v) for v in values]
    return pd.array(values, dtype=dtype)


def _json_float(value: float) -> float | str | None:
    """NaN -> None, +-inf -> "inf"/"-inf", finite floats unchanged."""
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _json_scalar(value: Any) -> Any:
    """One cell of an object-like column as a JSON scalar; TypeError when it cannot be."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        return _json_float(float(value))
    if isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, np.generic):
        return _json_scalar(value.item())
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} value {value!r} is not a JSON scalar")


def _encode_label(where: str, label: Any) -> Any:
    if isinstance(label, tuple):
        return [_encode_label(where, part) for part in label]
    if isinstance(label, np.generic):
        label = label.item()
    if label is None or isinstance(label, (str, int, bool)):
        return label
    if isinstance(label, float) and math.isfinite(label):
        return label
    raise InputError(where, label, "column and index labels must be strings or numbers")


def _decode_label(label: Any) -> Any:
    return tuple(label) if isinstance(label, list) else label


def _is_default_index(index: pd.Index) -> bool:
    return (
        isinstance(index, pd.RangeIndex)
        and index.start == 0
        and index.step == 1
        and index.name is None
    )


# --------------------------------------------------------------------------------------------
# JSON columns of ``runs`` and small checks
# --------------------------------------------------------------------------------------------


def _dumps_json(field_name: str, value: Any) -> str:
    """JSON text of a config/versions/timings mapping (standard JSON, no NaN/Infinity)."""
    try:
        return json.dumps(_jsonable(value), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(field_name, type(value).__name__, f"not JSON-serialisable: {exc}") from exc


def _jsonable(obj: Any) -> Any:
    """Plain JSON data: numpy scalars/arrays, paths, dataclasses, enums and dates converted."""
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, float):  # includes np.float64
        value = float(obj)
        return value if math.isfinite(value) else str(value)  # "nan", "inf", "-inf"
    if isinstance(obj, int) and not isinstance(obj, np.generic):
        return int(obj)
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, Mapping):
        return {_json_key(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        items = [_jsonable(v) for v in obj]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, PurePath):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if isinstance(obj, enum.Enum):
        return _jsonable(obj.value)
    if isinstance(obj, (dt.datetime, dt.date, dt.time)):
        return obj.isoformat()
    raise TypeError(f"{type(obj).__name__} value {obj!r} is not JSON-serialisable")


def _json_key(key: Any) -> str | int | float | bool | None:
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, PurePath):
        return str(key)
    if key is None or isinstance(key, (str, int, float, bool)):
        return key
    raise TypeError(f"dict key {key!r} is not a string or number")


def _check_plan(plan: object) -> None:
    if not isinstance(plan, pd.DataFrame):
        raise InputError("plan", type(plan).__name__, "must be a pandas DataFrame")
    _check_long_format("plan", plan, PLAN_VALUE_COLUMNS)
    if plan["variable"].isna().any():
        raise InputError("plan.variable", None, "every plan row needs a variable name")


def _check_recourse(table: pd.DataFrame) -> None:
    where = f"tables[{RECOURSE_TABLE!r}]"
    _check_long_format(where, table, RECOURSE_VALUE_COLUMNS)
    for name in ("scenario", "variable"):
        for value in table[name].to_numpy(dtype=object):
            if not isinstance(value, str):
                raise InputError(f"{where}.{name}", value, f"every {name} must be a string")


def _check_long_format(where: str, frame: pd.DataFrame, value_columns: tuple[str, ...]) -> None:
    """String column names including ``value_columns``, valid index values, numeric values."""
    if isinstance(frame.columns, pd.MultiIndex) or frame.columns.has_duplicates:
        raise InputError(where, list(frame.columns), "column names must be unique strings")
    for label in frame.columns:
        if not isinstance(label, str):
            raise InputError(where, label, "column names must be strings")
    missing = [c for c in value_columns if c not in frame.columns]
    if missing:
        raise InputError(
            where,
            list(frame.columns),
            f"needs the columns {list(value_columns)} (missing {missing}), any others are "
            "index columns",
        )
    for name in _index_names(frame, value_columns):
        _index_values(f"{where}.{name}", frame[name])
    try:
        pd.to_numeric(frame["value"])
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}.value", None, f"values must be numbers ({exc})") from exc


def _check_kpis(kpis: object) -> None:
    if not isinstance(kpis, Mapping):
        raise InputError("kpis", type(kpis).__name__, "must be a dict of name -> number")
    for name, value in kpis.items():
        if not isinstance(name, str) or not name:
            raise InputError("kpis", name, "KPI names must be non-empty strings")
        if not _is_real(value):
            raise InputError(f"kpis[{name!r}]", value, "must be a real number")


def _check_table(name: object, table: object) -> None:
    if not isinstance(name, str) or not name:
        raise InputError("tables", name, "table names must be non-empty strings")
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"tables[{name!r}]", type(table).__name__, "must be a pandas DataFrame")
    if name == RECOURSE_TABLE:
        _check_recourse(table)


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _is_missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _real_or_none(value: float | None) -> float | None:
    """A float for SQLite REAL; None and NaN become NULL."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
