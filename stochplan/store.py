"""Results store: every solve run, its plan, KPIs and tables, in one SQL database.

The database is an SQLite file by default, or any database SQLAlchemy reaches by URL
(``postgresql+psycopg://user@host/db``; tested against PostgreSQL). It is meant to be queried
with SQL as well as through :class:`ResultsStore`. All SQL goes through SQLAlchemy Core, one
code path for every back end; only the schema version and the creation of the tables differ
(below). Schema version 2:

``runs``
    One row per run: ``id``, ``created`` (ISO-8601 UTC), ``instance``, ``family``, ``method``,
    ``scenarios``, ``seed``, ``n_scenarios``, ``status``, ``objective``, ``bound``, ``gap``,
    ``config`` / ``versions`` / ``timings`` (JSON text), ``parent_run`` (a run this one derives
    from), ``label`` and ``plan_index`` (JSON list of the plan's index names in order, e.g.
    ``["product", "week"]``, ``["crop"]``, ``[]`` for scalar variables).
``plans``
    The first-stage plan in long format, any model family: ``run_id``, ``variable``, ``idx``,
    ``value``. ``idx`` is a JSON object (as text) mapping index name to value in
    ``plan_index`` order, e.g. ``{"product":"A","week":3}`` (strings stay strings, integers
    integers; a missing value is an absent key; ``{}`` for a scalar variable), so SQL reads it
    with ``json_extract(idx, '$.week')`` on SQLite and ``idx::json->>'week'`` on PostgreSQL.
``kpis``
    Headline KPIs: ``run_id``, ``name``, ``value``.
``recourse``
    The per-scenario second-stage values of the table ``"recourse"``, in long format:
    ``run_id``, ``scenario``, ``variable``, ``idx`` (as in ``plans``), ``value``. E.g. the
    backorders of run 7 per scenario and week, on SQLite::

        SELECT scenario, json_extract(idx, '$.week') AS week, SUM(value) FROM recourse
        WHERE run_id = 7 AND variable = 'B' GROUP BY scenario, week

    and on PostgreSQL::

        SELECT scenario, (idx::json->>'week')::int AS week, SUM(value) FROM recourse
        WHERE run_id = 7 AND variable = 'B' GROUP BY scenario, week
``tables``
    Further tables: ``run_id``, ``name``, ``payload`` (the DataFrame as JSON in pandas'
    ``orient="split"`` layout, readable with ``pd.read_json(StringIO(payload), orient="split")``)
    and ``meta`` (JSON: the dtypes and index layout the store needs to rebuild the frame
    exactly). The row of the table ``"recourse"`` keeps its place among the run's tables, its
    columns and dtypes, but no rows (``payload`` has ``"data": []``, ``meta`` has
    ``"rows": "recourse"``): those are in ``recourse``.

Rows of ``plans``, ``kpis``, ``tables`` and ``recourse`` read back in the order they were
written: by SQLite's implicit ``rowid``; on other databases these tables have a column
``rowid`` of their own (an identity column) for that.

Schema version: SQLite files keep it in ``PRAGMA user_version``; other databases in a
one-row table ``schema_version(version)``, created with the tables. A database of a newer
version is refused. Opening a version-1 SQLite file (plans with fixed ``product``/``week``
columns, recourse as a JSON table) migrates it to version 2 in one transaction; a migration
that fails leaves the file as it was (version 1 only ever existed in SQLite). On a server, the
first store creates the tables in one transaction; the tables are never altered afterwards.

A run is written in ONE transaction: a save that fails or is interrupted (any exception,
including :class:`KeyboardInterrupt`) part-way leaves the database as it was. Deleting a run
deletes its plan, KPIs, recourse rows and tables (``ON DELETE CASCADE``). A write to an SQLite
file waits for another process's write lock (saying so on the log) at most
:data:`LOCK_TIMEOUT` seconds. A server handles concurrent writers itself; on PostgreSQL a
read or write waits at most as long for a lock another session holds (a table locked by hand,
say; PostgreSQL's ``lock_timeout``), then fails with a
:class:`~stochplan.errors.StoreError` that says so, and a run goes to a recovery file
(:func:`save_or_recover`).

Float conventions: ``objective``, ``bound``, ``gap``, plan, recourse and KPI values are
SQLite ``REAL`` or PostgreSQL ``DOUBLE PRECISION``; both hold +-inf and every finite double,
including subnormals. The store writes NaN as NULL on every back end, read back as ``None``
for objective/bound/gap and as NaN for plan, recourse and KPI values. PostgreSQL (unlike
SQLite) can hold NaN itself, e.g. in rows written by other programs: the store reads such a
NaN exactly like NULL, so reads agree on both. SQLite reads -0.0 back as 0.0; PostgreSQL keeps
the sign. Float index values in ``idx`` and table payloads keep floats exactly (shortest repr);
payloads write NaN as ``null`` and +-inf as the strings ``"inf"`` / ``"-inf"``. Non-finite
floats in ``config``, ``versions`` and ``timings`` are stored as the strings ``"nan"``,
``"inf"``, ``"-inf"``, so these columns stay valid JSON for ``json_extract`` and ``::json``.

A URL's password never appears in messages or logs (it is shown as ``***``), nor in the
stored configuration of a run (its key ``db``); a server that does not answer within
:data:`CONNECT_TIMEOUT` seconds is an :class:`~stochplan.errors.InputError` naming the URL. A
run that cannot be stored is written to an SQLite recovery file (:func:`save_or_recover`):
next to the database file, or, for a database on a server, in the current working directory.

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
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from stochplan.errors import InputError, StochplanError, StoreError

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_DB",
    "LOCK_TIMEOUT",
    "SCHEMA_VERSION",
    "DatabaseURL",
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

#: Seconds to wait for a database server to answer before saying it cannot be reached.
CONNECT_TIMEOUT = 5

#: Schema version (SQLite: ``PRAGMA user_version``; other databases: the table
#: ``schema_version``); version 1 files are migrated on opening, newer ones are refused.
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

# The SQLite schema, as written since version 2 (files keep exactly this DDL).

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

# The same tables for SQLAlchemy: every statement is built from these, and on databases other
# than SQLite they create the schema. ``rowid`` is SQLite's implicit row id there (never
# written) and an identity column elsewhere: the order rows were written in.

_META = sa.MetaData()


def _run_fk() -> sa.Column[int]:
    return sa.Column("run_id", sa.BigInteger, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                     nullable=False, index=True)


def _row_order() -> sa.Column[int]:
    return sa.Column("rowid", sa.BigInteger, sa.Identity(), nullable=False)


RUNS = sa.Table(
    "runs", _META,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
    sa.Column("created", sa.Text, nullable=False),
    sa.Column("instance", sa.Text, nullable=False),
    sa.Column("family", sa.Text, nullable=False),
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("scenarios", sa.Text, nullable=False),
    sa.Column("seed", sa.BigInteger),
    sa.Column("n_scenarios", sa.BigInteger, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("objective", sa.Double),
    sa.Column("bound", sa.Double),
    sa.Column("gap", sa.Double),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("versions", sa.Text, nullable=False),
    sa.Column("timings", sa.Text, nullable=False),
    sa.Column("parent_run", sa.BigInteger, sa.ForeignKey("runs.id"), index=True),
    sa.Column("label", sa.Text, nullable=False, server_default=""),
    sa.Column("plan_index", sa.Text, nullable=False, server_default="[]"),
)
PLANS = sa.Table(
    "plans", _META,
    _run_fk(),
    sa.Column("variable", sa.Text, nullable=False),
    sa.Column("idx", sa.Text, nullable=False, server_default="{}"),
    sa.Column("value", sa.Double),
    _row_order(),
)
KPIS = sa.Table(
    "kpis", _META,
    sa.Column("run_id", sa.BigInteger, sa.ForeignKey("runs.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("value", sa.Double),
    _row_order(),
)
TABLES = sa.Table(
    "tables", _META,
    sa.Column("run_id", sa.BigInteger, sa.ForeignKey("runs.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("meta", sa.Text, nullable=False),
    _row_order(),
)
RECOURSE = sa.Table(
    "recourse", _META,
    _run_fk(),
    sa.Column("scenario", sa.Text, nullable=False),
    sa.Column("variable", sa.Text, nullable=False),
    sa.Column("idx", sa.Text, nullable=False, server_default="{}"),
    sa.Column("value", sa.Double),
    _row_order(),
)
#: The schema version of a database other than SQLite (one row).
VERSION_TABLE = sa.Table(
    "schema_version", _META, sa.Column("version", sa.Integer, nullable=False)
)

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


# --------------------------------------------------------------------------------------------
# Locating the database
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseURL:
    """A results database on a server, by SQLAlchemy URL (any back end but SQLite, which is a
    :class:`~pathlib.Path`).

    ``str()`` shows the URL with its password hidden (``***``), for messages; :attr:`url`
    keeps it whole.
    """

    url: URL

    def __str__(self) -> str:
        return self.url.render_as_string(hide_password=True)

    @property
    def name(self) -> str:
        """The database's name (for recovery file names)."""
        return str(self.url.database or self.url.get_backend_name())

    def exists(self) -> bool:
        """Whether the server answers and holds a results store (its ``runs`` table).

        Raises
        ------
        InputError
            The server cannot be reached or refuses the login; names the URL.
        """
        with _connect(self, LOCK_TIMEOUT) as conn:
            return bool(sa.inspect(conn).has_table(RUNS.name))

    def check_creatable(self) -> None:
        """Fail now when the store's tables could not be created here: create them in a
        transaction and roll it back (nothing changes).

        Raises
        ------
        InputError
            The server cannot be reached, or refuses to create the tables; names the URL.
        """
        with _connect(self, LOCK_TIMEOUT) as conn:
            conn.exec_driver_sql("BEGIN")
            try:
                _META.create_all(conn)
            except sa_exc.DBAPIError as exc:
                raise InputError("db", str(self), f"cannot create the results tables "
                                 f"({_reason(exc)}); nothing was solved") from None
            finally:
                _rollback(conn)


def resolve_db(path_or_url: str | Path | DatabaseURL | None) -> Path | DatabaseURL:
    """Turn a database path or URL into an SQLite file path or a :class:`DatabaseURL`.

    Parameters
    ----------
    path_or_url : str, Path, DatabaseURL or None
        ``None`` for :data:`DEFAULT_DB` in the current working directory; a plain path; an
        SQLAlchemy URL ``sqlite:///relative/path.db`` (three slashes: relative) or
        ``sqlite:////abs/path.db`` (four slashes: absolute); ``sqlite:///:memory:`` for an
        in-memory database; or any other SQLAlchemy URL, e.g.
        ``postgresql+psycopg://user@host/db`` (its driver must be installed). ``~`` in plain
        paths is expanded. Nothing is opened here.

    Returns
    -------
    Path or DatabaseURL
        The SQLite file (not resolved against the working directory), or the server URL.

    Raises
    ------
    InputError
        A malformed URL, an ``sqlite`` URL with a host or query, or an empty path.

    Examples
    --------
    >>> resolve_db(None)
    PosixPath('stochplan.db')
    >>> resolve_db("sqlite:///results/runs.db")
    PosixPath('results/runs.db')
    >>> resolve_db("sqlite:////data/runs.db")
    PosixPath('/data/runs.db')
    >>> print(resolve_db("postgresql+psycopg://me:secret@db.example.com/plans"))
    postgresql+psycopg://me:***@db.example.com/plans
    """
    if path_or_url is None:
        return Path(DEFAULT_DB)
    if isinstance(path_or_url, DatabaseURL):
        return path_or_url
    if isinstance(path_or_url, PurePath):
        return Path(path_or_url).expanduser()
    if not isinstance(path_or_url, str):
        raise InputError("db", path_or_url, "expected a path, a database URL or None")
    text = path_or_url.strip()
    if not text:
        raise InputError("db", path_or_url, "empty database path")
    if "://" not in text:
        return Path(text).expanduser()
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise InputError("db", _shown(text), f"not a database URL ({exc})") from None
    if parts.scheme.lower() not in ("sqlite", "sqlite+pysqlite"):
        try:
            url = make_url(text)
        except (sa_exc.ArgumentError, ValueError) as exc:
            raise InputError("db", _shown(text), f"not a database URL ({exc})") from None
        if url.get_backend_name() == "sqlite":
            raise InputError("db", _shown(text), "give an SQLite database as a file path, "
                             "sqlite:///relative.db or sqlite:////absolute.db")
        return DatabaseURL(url)
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


def _shown(text: str) -> str:
    """A URL as given, with its password hidden when it parses."""
    try:
        return make_url(text).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL: hide what looks like a password
        head, at, tail = text.rpartition("@")
        if not at or ":" not in head.partition("://")[2]:
            return text
        scheme, _, user = head.partition("://")
        return f"{scheme}://{user.split(':', 1)[0]}:***@{tail}"


def _reason(exc: BaseException) -> str:
    """The first line of a database error's own message (no SQL, no parameters)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _connect(db: Path | DatabaseURL, lock_timeout: float) -> Connection:
    """One connection to ``db``, in driver-level autocommit: the store issues
    ``BEGIN``/``COMMIT``/``ROLLBACK`` itself (:meth:`ResultsStore._transaction`). Closing it
    closes the driver's connection (no pool).

    Raises
    ------
    InputError
        Naming the database (a URL with its password hidden): a driver that is not installed,
        a server that does not answer within :data:`CONNECT_TIMEOUT` seconds or refuses the
        login, an SQLite file that cannot be opened.
    """
    shown = str(db)
    if isinstance(db, DatabaseURL):
        connect_args: dict[str, Any] = {}
        if db.url.get_backend_name() in ("postgresql", "mysql", "mariadb"):
            connect_args["connect_timeout"] = CONNECT_TIMEOUT
        waits: float | None = None
        if db.url.get_backend_name() == "postgresql":
            # a lock another session holds is waited for at most lock_timeout (0 would be
            # for ever there)
            milliseconds = max(1, round(lock_timeout * 1000))
            connect_args["options"] = f"-c lock_timeout={milliseconds}"
            waits = milliseconds / 1000
        try:
            engine = _engine(db.url, connect_args, waits)
        except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError) as exc:
            raise InputError("db", shown, f"cannot use this database ({exc}); install its "
                             "SQLAlchemy driver") from None
    else:
        engine = _engine(URL.create("sqlite", database=str(db)), {"timeout": lock_timeout})
    try:
        return engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except sa_exc.DBAPIError as exc:
        what = "cannot connect to the database server" if isinstance(db, DatabaseURL) else \
            "cannot open the database"
        raise InputError("db", shown, f"{what} ({_reason(exc)})") from None


#: Engines by URL and connect arguments, kept for the life of the process (at most
#: :data:`_ENGINE_CACHE_SIZE`). An engine that becomes garbage is freed by the cyclic garbage
#: collector, which then runs SQLAlchemy's weakref callbacks: a Ctrl-C or SIGTERM arriving
#: during that collection (e.g. in the middle of a model build) raises inside a callback,
#: where Python ignores it, and the signal would be lost.
_ENGINES: OrderedDict[tuple[str, tuple[tuple[str, Any], ...]], Engine] = OrderedDict()
_ENGINE_CACHE_SIZE = 16


def _engine(url: URL, connect_args: dict[str, Any], lock_timeout: float | None = None) -> Engine:
    """The engine of ``url`` with ``connect_args`` (no connection pool), made once.

    ``lock_timeout``, the server's lock timeout in ``connect_args`` in seconds: a statement
    it cancels raises :class:`~stochplan.errors.StoreError` saying so, whatever command ran
    it, instead of the driver's error."""
    key = (url.render_as_string(hide_password=False), tuple(sorted(connect_args.items())))
    engine = _ENGINES.get(key)
    if engine is None:
        engine = sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)
        if lock_timeout is not None:
            message = (f"database is locked: another session held a lock on "
                       f"{url.render_as_string(hide_password=True)} for more than "
                       f"{lock_timeout:g} s")

            def locked(context: Any) -> None:
                if _lock_timed_out(context.original_exception):
                    raise StoreError(message)

            sa.event.listen(engine, "handle_error", locked)
        _ENGINES[key] = engine
        while len(_ENGINES) > _ENGINE_CACHE_SIZE:
            _ENGINES.popitem(last=False)[1].dispose()
    _ENGINES.move_to_end(key)
    return engine


def _in_transaction(conn: Connection) -> bool:
    """Whether the driver connection is inside a transaction (unknown drivers: True)."""
    raw = conn.connection.dbapi_connection
    if isinstance(raw, sqlite3.Connection):
        return raw.in_transaction
    status = getattr(getattr(raw, "info", None), "transaction_status", None)  # psycopg
    if status is not None:
        return int(status) != 0  # 0: idle
    return True


def _rollback(conn: Connection) -> None:
    """``ROLLBACK`` when a transaction is open; a connection already gone is left alone."""
    if conn.closed or conn.invalidated or not _in_transaction(conn):
        return
    try:
        conn.exec_driver_sql("ROLLBACK")
    except sa_exc.DBAPIError as exc:  # the server ends an aborted transaction by itself
        log.debug("ROLLBACK failed (%s)", _reason(exc))


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
    """A results database: an SQLite file, or a database server reached by URL.

    Parameters
    ----------
    path_or_url : str, Path, DatabaseURL or None
        See :func:`resolve_db`. For a file, missing parent directories and the file are
        created; on any database the schema is written on first use.
    lock_timeout : float or None
        Seconds a write to an SQLite file waits for another process's write lock, or on
        PostgreSQL for a lock another session holds (default :data:`LOCK_TIMEOUT`).

    Raises
    ------
    InputError
        The file is not a SQLite database, the server cannot be reached, or the database was
        written by a newer stochplan (schema version above :data:`SCHEMA_VERSION`); the
        message names the file or the URL (password hidden).

    Notes
    -----
    Usable as a context manager, which closes the connection on exit. Every write is one
    transaction (``BEGIN`` ... ``COMMIT``; ``BEGIN IMMEDIATE`` on SQLite), rolled back on any
    exception.
    """

    def __init__(self, path_or_url: str | Path | DatabaseURL | None = None,
                 lock_timeout: float | None = None) -> None:
        self.path: Path | DatabaseURL = resolve_db(path_or_url)
        self.lock_timeout = LOCK_TIMEOUT if lock_timeout is None else float(lock_timeout)
        db = self.path
        if isinstance(db, Path) and str(db) != ":memory:":
            if db.is_dir():
                raise InputError("db", str(db), "is a folder, not a database file")
            try:
                db.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError("db", str(db), "cannot create the database's folder "
                                 f"({exc.strerror or exc})") from None
        self._conn = _connect(db, self.lock_timeout)
        self._sqlite = self._conn.dialect.name == "sqlite"
        try:
            if self._sqlite:
                self._conn.exec_driver_sql("PRAGMA foreign_keys = ON")
            self._init_schema()
        except sa_exc.OperationalError as exc:
            self.close()
            raise InputError("db", str(db), f"cannot open the database ({_reason(exc)})") from exc
        except sa_exc.DatabaseError as exc:
            self.close()
            what = "not a usable SQLite database" if self._sqlite else "not a usable database"
            raise InputError("db", str(db), f"{what} ({_reason(exc)})") from exc
        except BaseException:
            self.close()
            raise
        log.debug("opened results store %s", db)

    def check_writable(self) -> None:
        """Fail now, not after a long solve, when a run could not be stored: take the write
        lock, write the schema version again and create a table, then roll back (nothing
        changes).

        Raises
        ------
        InputError
            The file or its folder is read-only, the disk refuses the write, or the database
            user may not write; names the file or URL.
        StoreError
            Another process held an SQLite file's write lock longer than :attr:`lock_timeout`.
        """
        try:
            with self._transaction() as conn:
                self._write_version(conn)
                conn.exec_driver_sql("CREATE TABLE _stochplan_write_probe (x INTEGER)")
                raise _ProbeDone
        except _ProbeDone:
            return
        except sa_exc.DBAPIError as exc:
            raise InputError("db", str(self.path), f"cannot be written ({_reason(exc)}); "
                             "nothing was solved") from None

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

    def save_run(self, record: RunRecord,
                 before_commit: Callable[[int], None] | None = None) -> int:
        """Store a run with its plan, KPIs and tables in one transaction.

        Parameters
        ----------
        record : RunRecord
            The run to store.
        before_commit : callable, optional
            Called with the new run id inside the transaction, after the run's rows are
            written and before they are committed (e.g. to write results back to another
            database in a transaction of its own that commits there): if it raises, nothing
            is stored.

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
            if before_commit is not None:
                before_commit(run_id)
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

    def _insert_run(self, conn: Connection, record: RunRecord,
                    created: str | None = None) -> int:
        """Insert a run and its rows inside the caller's transaction; its id."""
        row = {
            "created": created or _utc_now(),
            "instance": record.instance,
            "family": record.family,
            "method": record.method,
            "scenarios": record.scenarios,
            "seed": None if record.seed is None else int(record.seed),
            "n_scenarios": int(record.n_scenarios),
            "status": record.status,
            "objective": _real_or_none(record.objective),
            "bound": _real_or_none(record.bound),
            "gap": _real_or_none(record.gap),
            "config": _dumps_json("config", _hide_db_password(record.config)),
            "versions": _dumps_json("versions", record.versions),
            "timings": _dumps_json("timings", record.timings),
            "parent_run": None if record.parent_run is None else int(record.parent_run),
            "label": record.label,
            "plan_index": json.dumps(_index_names(record.plan, PLAN_VALUE_COLUMNS),
                                     ensure_ascii=False),
        }
        if record.parent_run is not None:
            self._require_run(int(record.parent_run), field_name="parent_run")
        key = conn.execute(RUNS.insert().values(**row)).inserted_primary_key
        assert key is not None and key[0] is not None
        run_id = int(key[0])
        _insert_plan(conn, run_id, record.plan)
        _insert_kpis(conn, run_id, record.kpis)
        for name, table in record.tables.items():
            _insert_table(conn, run_id, name, table, replace=False)
        return run_id

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
                int(r[0])
                for r in conn.execute(
                    sa.select(RUNS.c.id).where(RUNS.c.parent_run == int(run_id))
                    .order_by(RUNS.c.id)
                )
            ]
            if children:
                raise InputError(
                    "run",
                    run_id,
                    f"runs {children} in {self.path} derive from it (parent_run); "
                    "delete them first",
                )
            conn.execute(RUNS.delete().where(RUNS.c.id == int(run_id)))
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
        query = sa.select(*(RUNS.c[c] for c in RUN_LIST_COLUMNS)).order_by(RUNS.c.id.desc())
        if limit is not None:
            if not _is_int(limit) or int(limit) < 0:
                raise InputError("limit", limit, "must be None or an integer >= 0")
            query = query.limit(int(limit))
        rows = [tuple(r) for r in self._conn.execute(query)]
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
            No such run; the message names the id and the database.
        """
        # One read transaction, so a concurrent writer cannot show us half a run.
        with self._transaction(immediate=False) as conn:
            self._require_run(run_id)
            key = int(run_id)
            values = dict(conn.execute(sa.select(RUNS).where(RUNS.c.id == key)).one()._mapping)
            plan_rows = [
                tuple(r) for r in conn.execute(
                    sa.select(PLANS.c.variable, PLANS.c.idx, PLANS.c.value)
                    .where(PLANS.c.run_id == key).order_by(PLANS.c.rowid)
                )
            ]
            kpi_rows = conn.execute(
                sa.select(KPIS.c.name, KPIS.c.value).where(KPIS.c.run_id == key)
                .order_by(KPIS.c.rowid)
            ).all()
            tables = {
                name: _read_table(conn, key, payload, meta)
                for name, payload, meta in conn.execute(
                    sa.select(TABLES.c.name, TABLES.c.payload, TABLES.c.meta)
                    .where(TABLES.c.run_id == key).order_by(TABLES.c.rowid)
                ).all()
            }
        record = RunRecord(
            instance=values["instance"],
            family=values["family"],
            method=values["method"],
            scenarios=values["scenarios"],
            seed=values["seed"],
            n_scenarios=values["n_scenarios"],
            status=values["status"],
            objective=_none_if_nan(values["objective"]),
            bound=_none_if_nan(values["bound"]),
            gap=_none_if_nan(values["gap"]),
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
        whose configuration has ``frontier = {"id": ..., "index": ...}`` with a text id, of
        one frontier (``frontier``) or of all.

        Returns
        -------
        pandas.DataFrame
            Columns ``id`` (run id), ``frontier`` (its id) and ``index`` (the point's place
            along the frontier, 0 = lowest weight), ordered by run id; no rows when none.
        """
        # The JSON is read here, not by SQL: SQLite and PostgreSQL spell JSON paths
        # differently, and a hand-edited config that is not JSON must not fail the query.
        query = (
            sa.select(RUNS.c.id, RUNS.c.config)
            .where(RUNS.c.config.like("%frontier%"))
            .order_by(RUNS.c.id)
        )
        points: list[tuple[int, str, Any]] = []
        for run_id, text in self._conn.execute(query):
            try:
                point = json.loads(text).get("frontier")
            except (ValueError, AttributeError):
                continue
            if not isinstance(point, dict) or not isinstance(point.get("id"), str):
                continue
            if frontier and point["id"] != str(frontier):
                continue
            points.append((int(run_id), point["id"], point.get("index")))
        return pd.DataFrame({
            "id": np.array([p[0] for p in points], dtype=np.int64),
            "frontier": _str_column([p[1] for p in points]),
            "index": pd.array([p[2] for p in points], dtype="Int64"),
        })

    # -- internals ---------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, immediate: bool = True) -> Iterator[Connection]:
        """BEGIN ... COMMIT; ROLLBACK on any BaseException (KeyboardInterrupt too), re-raised.

        ``immediate`` takes an SQLite file's write lock at once (``BEGIN IMMEDIATE``); a read
        (``immediate=False``) sees one snapshot of the database (PostgreSQL: ``REPEATABLE
        READ``).
        """
        conn = self._conn
        if not self._sqlite:
            conn.exec_driver_sql("BEGIN" if immediate else
                                 "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        elif immediate:
            self._begin_immediate()
        else:
            conn.exec_driver_sql("BEGIN")
        try:
            yield conn
            conn.exec_driver_sql("COMMIT")
        except BaseException:
            _rollback(conn)
            log.debug("rolled back a transaction on %s", self.path)
            raise

    def _begin_immediate(self) -> None:
        """``BEGIN IMMEDIATE`` on an SQLite file: take the write lock, saying on the log (a
        warning) what it waits for when another process holds it, and giving up after
        :attr:`lock_timeout` seconds with an :class:`~stochplan.errors.StoreError` that says so.

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
                conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(wait * 1000)}")
                try:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                    return
                except sa_exc.OperationalError as exc:
                    if not _is_locked(exc):
                        raise
                if time.monotonic() >= deadline:
                    raise _lock_error(self.path, self.lock_timeout) from None
                if not told and time.monotonic() >= notice:
                    log.warning("waiting up to %.0f s for the write lock on %s: another process "
                                "is writing to it", deadline - time.monotonic(), self.path)
                    told = True
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(self.lock_timeout * 1000)}")

    def _require_run(self, run_id: object, field_name: str = "run") -> None:
        """InputError naming the id and the database unless ``run_id`` is a stored run."""
        if not _is_int(run_id):
            raise InputError(field_name, run_id, "a run id must be an integer")
        key = int(run_id)  # type: ignore[call-overload]
        if not _has_run(self._conn, key):
            raise InputError(field_name, run_id, f"no such run in {self.path}")

    def _read_version(self, conn: Connection) -> int:
        """The schema version; 0 for a database without the store's tables."""
        if self._sqlite:
            return int(conn.exec_driver_sql("PRAGMA user_version").scalar_one())
        inspector = sa.inspect(conn)
        if not inspector.has_table(VERSION_TABLE.name):
            if inspector.has_table(RUNS.name):
                raise InputError("db", str(self.path), "has a table 'runs' but no "
                                 "'schema_version': not a stochplan results store")
            return 0
        version = conn.execute(sa.select(sa.func.max(VERSION_TABLE.c.version))).scalar()
        return 0 if version is None else int(version)

    def _write_version(self, conn: Connection) -> None:
        if self._sqlite:
            conn.exec_driver_sql(f"PRAGMA user_version = {SCHEMA_VERSION}")
        else:
            conn.execute(VERSION_TABLE.delete())
            conn.execute(VERSION_TABLE.insert().values(version=SCHEMA_VERSION))

    def _init_schema(self) -> None:
        """Create the schema in a new database, migrate a version-1 file, refuse newer ones."""
        version = self._read_version(self._conn)
        self._refuse_newer(version)
        if version == SCHEMA_VERSION:
            return
        try:
            with self._transaction() as conn:
                # Re-read inside the transaction: another process may have created it meanwhile.
                version = self._read_version(conn)
                self._refuse_newer(version)
                if version == SCHEMA_VERSION:
                    return
                if version == 1 and self._sqlite:
                    _migrate_v1(conn, self.path)
                elif self._sqlite:
                    _execute_script(conn, _SCHEMA)
                else:
                    _META.create_all(conn)
                self._write_version(conn)
        except sa_exc.DBAPIError:
            # Two processes creating the tables of a new server database at once: one wins.
            if self._sqlite or self._read_version(self._conn) != SCHEMA_VERSION:
                raise
            return
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


def _has_run(conn: Connection, run_id: int) -> bool:
    return conn.execute(sa.select(RUNS.c.id).where(RUNS.c.id == run_id)).first() is not None


def _is_locked(exc: sa_exc.DBAPIError) -> bool:
    text = str(exc.orig)
    return "locked" in text or "busy" in text


def _lock_timed_out(exc: BaseException | None) -> bool:
    """A driver's error for a statement cancelled after waiting its lock timeout
    (PostgreSQL's SQLSTATE 55P03)."""
    return getattr(exc, "sqlstate", None) == "55P03"


def _lock_error(path: Path | DatabaseURL, seconds: float) -> Exception:
    return StoreError(f"database is locked: another process held the write lock on {path} for "
                      f"more than {seconds:g} s")


# --------------------------------------------------------------------------------------------
# Recovery files: a run that could not be stored, kept in a database file of its own
# --------------------------------------------------------------------------------------------


def save_or_recover(record: RunRecord, path_or_url: str | Path | DatabaseURL | None,
                    lock_timeout: float | None = None,
                    before_commit: Callable[[int], None] | None = None
                    ) -> tuple[int, Path | DatabaseURL]:
    """Store ``record`` in the database; when that fails (read-only file, full disk, a write
    lock held too long, a server gone), write it to a recovery file instead and raise.

    ``before_commit`` (see :meth:`ResultsStore.save_run`) runs inside the store's
    transaction; when it fails, the run is not stored either and goes to the recovery file
    (without what ``before_commit`` would have written), the reason saying so.

    The recovery file is an SQLite file next to the database file, else in the current
    working directory, else in the temporary folder; for a database on a server, in the
    current working directory (else the temporary folder).

    Returns
    -------
    (int, Path or DatabaseURL)
        The run id and the database.

    Raises
    ------
    StoreError
        The run was not stored; its ``recovery`` names the file holding it
        (``stochplan import FILE`` brings it in), or is None when no file could be written.
    """

    db = resolve_db(path_or_url)

    def then(run_id: int) -> None:
        assert before_commit is not None
        try:
            before_commit(run_id)
        except (sa_exc.SQLAlchemyError, OSError, StochplanError) as exc:
            raise StoreError(f"writing the results back failed: {_reason(exc)}") from exc

    try:
        with ResultsStore(db, lock_timeout=lock_timeout) as store:
            return store.save_run(record, None if before_commit is None else then), db
    except (sa_exc.SQLAlchemyError, OSError, InputError, StoreError) as exc:
        if isinstance(exc, InputError) and exc.field not in ("db",):
            raise  # the record itself is bad: a recovery file would not store it either
        reason = _reason(exc)
    recovery, failures = None, []
    name = db.name if isinstance(db, DatabaseURL) else (db.name or DEFAULT_DB)
    for folder in _recovery_folders(db):
        candidate = folder / f"{_safe_name(name)}.recovered-{_stamp()}.db"
        try:
            with ResultsStore(candidate, lock_timeout=0.0) as spare:
                spare.save_run(record)
            recovery = candidate
            break
        except (sa_exc.SQLAlchemyError, OSError, InputError, StoreError) as exc:
            failures.append(f"{candidate}: {_reason(exc)}")
            candidate.unlink(missing_ok=True)
    if recovery is None:
        raise StoreError(f"the run could not be stored in {db} ({reason}) nor written to a "
                         f"recovery file ({'; '.join(failures)})")
    where = (" (the current working directory: the database is on a server)"
             if isinstance(db, DatabaseURL) and recovery.parent == Path.cwd().resolve() else "")
    log.warning("run written to the recovery file %s", recovery)
    raise StoreError(f"the run could not be stored in {db} ({reason}); it was written to "
                     f"{recovery}{where}: `stochplan import {recovery} --db {db}` brings it in",
                     recovery)


def import_runs(source: str | Path | DatabaseURL,
                path_or_url: str | Path | DatabaseURL | None) -> list[int]:
    """Copy every run of a recovery file (or any results database) into a database, in one
    transaction; the new run ids in the order of the source's. A run's ``parent_run`` is kept
    only when the target holds that run."""
    src_db = resolve_db(source)
    if isinstance(src_db, Path) and not src_db.is_file():
        raise InputError("FILE", str(source), "no such file")
    with ResultsStore(src_db) as src:
        ids = [int(i) for i in src.list_runs()["id"]][::-1]
        stored = [src.get_run(i) for i in ids]
    with ResultsStore(path_or_url) as target:
        if _same_database(src_db, target.path):
            raise InputError("FILE", str(src_db), "is the target database itself")
        out = []
        with target._transaction() as conn:
            for run in stored:
                record, parent = run.record, run.record.parent_run
                if parent is not None and not _has_run(conn, int(parent)):
                    record = dataclasses.replace(record, parent_run=None)
                out.append(target._insert_run(conn, record, created=run.created))
    return out


def _same_database(a: Path | DatabaseURL, b: Path | DatabaseURL) -> bool:
    if isinstance(a, Path) and isinstance(b, Path):
        return ":memory:" not in (str(a), str(b)) and a.resolve() == b.resolve()
    if isinstance(a, DatabaseURL) and isinstance(b, DatabaseURL):
        return a.url.render_as_string(hide_password=False) == b.url.render_as_string(
            hide_password=False)
    return False


def _recovery_folders(db: Path | DatabaseURL) -> list[Path]:
    import tempfile

    near = db.parent if isinstance(db, Path) and str(db) != ":memory:" else Path.cwd()
    folders = [near, Path.cwd(), Path(tempfile.gettempdir())]
    return list(dict.fromkeys(f.resolve() if f.exists() else f for f in folders))


def _safe_name(name: str) -> str:
    """A database name usable in a file name."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or DEFAULT_DB


def _stamp() -> str:
    import os

    return f"{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"


def _execute_script(conn: Connection, script: str) -> None:
    """Run ``;``-separated statements one by one (``executescript`` would COMMIT first)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.exec_driver_sql(statement)


# --------------------------------------------------------------------------------------------
# Migration from schema version 1 (SQLite files only)
# --------------------------------------------------------------------------------------------
#
# Version 1 had ``plans(run_id, variable, product, week, value)`` and kept the table
# "recourse" as a JSON payload in "tables". The caller runs the steps below in the one
# transaction that also sets ``user_version``, so a step that fails leaves the file as it was.


def _migrate_v1(conn: Connection, path: Path | DatabaseURL) -> None:
    """Migrate a version-1 database to version 2 (inside the caller's transaction)."""
    _migrate_plans_v1(conn)
    _migrate_recourse_v1(conn, path)


def _migrate_plans_v1(conn: Connection) -> None:
    """``(product, week)`` -> ``idx`` (NULL ones left out) and ``runs.plan_index``.

    A run's index names are ``["product", "week"]`` when any of its plan rows has a product
    or a week, else none (v1 wrote the fixed columns even for plans without an index).
    """
    conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN plan_index TEXT NOT NULL DEFAULT '[]'")
    conn.exec_driver_sql(
        "UPDATE runs SET plan_index = ? WHERE id IN (SELECT run_id FROM plans "
        "WHERE product IS NOT NULL OR week IS NOT NULL)",
        (json.dumps(["product", "week"]),),
    )
    conn.exec_driver_sql("ALTER TABLE plans RENAME TO plans_v1")
    conn.exec_driver_sql("DROP INDEX IF EXISTS plans_run_id")
    _execute_script(conn, _PLANS_DDL)
    rows = conn.exec_driver_sql(
        "SELECT run_id, variable, product, week, value FROM plans_v1 ORDER BY rowid"
    ).all()
    run_id, variable, product, week, value = (
        (list(c) for c in zip(*rows)) if rows else ([], [], [], [], [])
    )
    where = "plans (schema version 1)"
    idx = _encode_idx(
        ["product", "week"],
        [_index_values(f"{where}.product", product), _index_values(f"{where}.week", week)],
        len(rows),
    )
    _insert_rows(conn, PLANS, {"run_id": run_id, "variable": variable, "idx": idx,
                               "value": value})
    conn.exec_driver_sql("DROP TABLE plans_v1")


def _migrate_recourse_v1(conn: Connection, path: Path | DatabaseURL) -> None:
    """Each run's JSON table "recourse" -> rows of ``recourse``; its place in "tables" kept."""
    _execute_script(conn, _RECOURSE_DDL)
    stored = conn.exec_driver_sql(
        'SELECT run_id, payload, meta FROM "tables" WHERE name = ? ORDER BY rowid',
        (RECOURSE_TABLE,),
    ).all()
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


def _insert_rows(conn: Connection, table: sa.Table, columns: Mapping[str, list[Any]]) -> None:
    """Insert rows given column-wise (equal lengths), in bulk; none: nothing.

    The INSERT is compiled by SQLAlchemy for the connection's dialect and handed to the
    driver's own executemany with plain tuples (or dicts, for named parameter styles): the
    columns are text, integers and floats, which need no conversion. With psycopg
    (PostgreSQL) the rows go by ``COPY ... FROM STDIN`` instead, in the same transaction.
    200,000 rows of ``recourse``'s shape, measured in one run each: SQLite 0.40 s so, 1.57 s
    through ``conn.execute(table.insert(), dicts)``; PostgreSQL 0.37 s by COPY, 3.9 s by
    psycopg's executemany, 5.5 s through ``conn.execute``.
    """
    names = list(columns)
    n_rows = len(columns[names[0]]) if names else 0
    if n_rows == 0:  # (an empty executemany would insert one row of defaults)
        return
    if conn.dialect.driver == "psycopg":
        quote = conn.dialect.identifier_preparer
        target = f"{quote.format_table(table)} ({', '.join(quote.quote(n) for n in names)})"
        raw: Any = conn.connection.dbapi_connection  # a psycopg.Connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {target} FROM STDIN") as copy:
            for row in zip(*columns.values(), strict=True):
                copy.write_row(row)
        return
    compiled = table.insert().compile(dialect=conn.dialect, column_keys=names)
    if conn.dialect.positional:
        order = [names.index(name) for name in compiled.positiontup or names]
        values = [columns[names[i]] for i in order]
        rows: list[Any] = list(zip(*values, strict=True))
    else:
        rows = [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    conn.exec_driver_sql(str(compiled), rows)


def _insert_plan(conn: Connection, run_id: int, plan: pd.DataFrame) -> None:
    names = _index_names(plan, PLAN_VALUE_COLUMNS)
    variable = [str(v) for v in plan["variable"].tolist()]
    idx = _encode_idx(names, [_index_values(f"plan.{n}", plan[n]) for n in names], len(plan))
    value = [None if _is_missing(v) else float(v) for v in plan["value"].tolist()]
    _insert_rows(conn, PLANS, {"run_id": [run_id] * len(variable), "variable": variable,
                               "idx": idx, "value": value})


def _insert_kpis(conn: Connection, run_id: int, kpis: Mapping[str, float]) -> None:
    """Insert KPIs; those of a name the run already has are updated in place (their order
    among the run's KPIs kept)."""
    if not kpis:
        return
    have = {
        r[0] for r in conn.execute(sa.select(KPIS.c.name).where(KPIS.c.run_id == run_id))
    }
    update = [{"b_run": run_id, "b_name": name, "b_value": _real_or_none(value)}
              for name, value in kpis.items() if name in have]
    if update:
        conn.execute(
            KPIS.update()
            .where(KPIS.c.run_id == sa.bindparam("b_run"), KPIS.c.name == sa.bindparam("b_name"))
            .values(value=sa.bindparam("b_value")),
            update,
        )
    new = [(name, _real_or_none(value)) for name, value in kpis.items() if name not in have]
    _insert_rows(conn, KPIS, {"run_id": [run_id] * len(new), "name": [n for n, _ in new],
                              "value": [v for _, v in new]})


def _insert_table(
    conn: Connection, run_id: int, name: str, table: pd.DataFrame, replace: bool
) -> None:
    """One named table as a JSON payload in "tables"; "recourse" as rows of ``recourse``."""
    if name == RECOURSE_TABLE:
        # "tables" keeps the columns, dtypes and place among the run's tables; no rows.
        payload, meta = _encode_table(name, table.iloc[:0].reset_index(drop=True))
        meta = json.dumps({**json.loads(meta), "rows": RECOURSE_TABLE}, separators=(",", ":"))
    else:
        payload, meta = _encode_table(name, table)
    this = (TABLES.c.run_id == run_id) & (TABLES.c.name == name)
    exists = conn.execute(sa.select(TABLES.c.name).where(this)).first() is not None
    if exists and not replace:
        raise InputError(
            "tables", name, f"run {run_id} already has a table of this name (replace=True)"
        )
    if exists:  # updated in place: its order among the run's tables kept
        conn.execute(TABLES.update().where(this).values(payload=payload, meta=meta))
    else:
        conn.execute(TABLES.insert().values(run_id=run_id, name=name, payload=payload,
                                            meta=meta))
    if name == RECOURSE_TABLE:
        conn.execute(RECOURSE.delete().where(RECOURSE.c.run_id == run_id))
        _insert_recourse(conn, run_id, table)


def _insert_recourse(conn: Connection, run_id: int, table: pd.DataFrame) -> None:
    where = f"tables[{RECOURSE_TABLE!r}]"
    names = _index_names(table, RECOURSE_VALUE_COLUMNS)
    scenario = [str(v) for v in table["scenario"].tolist()]
    variable = [str(v) for v in table["variable"].tolist()]
    idx = _encode_idx(names, [_index_values(f"{where}.{n}", table[n]) for n in names], len(table))
    value = [None if _is_missing(v) else float(v) for v in table["value"].tolist()]
    _insert_rows(conn, RECOURSE, {"run_id": [run_id] * len(table), "scenario": scenario,
                                  "variable": variable, "idx": idx, "value": value})


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


def _read_table(conn: Connection, run_id: int, payload: str, meta: str) -> pd.DataFrame:
    """One named table: decoded from its payload, or rebuilt from the rows of ``recourse``."""
    layout = json.loads(meta)
    if layout.get("rows") != RECOURSE_TABLE:
        return _decode_table(payload, meta)
    rows = conn.execute(
        sa.select(RECOURSE.c.scenario, RECOURSE.c.variable, RECOURSE.c.idx, RECOURSE.c.value)
        .where(RECOURSE.c.run_id == run_id).order_by(RECOURSE.c.rowid)
    ).all()
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


def _hide_db_password(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The run configuration with the password of its results database URL (key ``db``)
    shown as ``***``: the store never writes that password into a database."""
    db = config.get("db")
    if not isinstance(db, str) or "://" not in db:
        return config
    try:
        url = make_url(db)
    except (sa_exc.ArgumentError, ValueError):
        return config
    if url.password is None:
        return config
    return {**config, "db": url.render_as_string(hide_password=True)}


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
    """A float for a REAL / DOUBLE PRECISION column; None and NaN become NULL (on every back
    end, though PostgreSQL could hold NaN)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def _none_if_nan(value: float | None) -> float | None:
    """An objective/bound/gap as read: NULL and a stored NaN (PostgreSQL holds them) are
    both None, so every back end reads the same."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value
