"""The multi-site family's databases: input tables in, results back, through SQLAlchemy.

Any SQLAlchemy URL works (``sqlite:///plan.db``, ``postgresql+psycopg://user@host/db``); a
plain path is an SQLite file. Each write is one transaction: the generator's tables (and the
removal of results of earlier data) all land or none do, and so do a run's results.

Tables written by the generator: ``ProductData``, ``ProductMachineData``, ``MachineData``,
``InventoryData`` (see :mod:`.data`) and ``InstanceRecord`` (name, generator, seed, parameters
as JSON). Written by a solve: ``ResultData`` with the seed notebook's columns ``site, status,
site_profit, product, volume`` (expected profit of the site, $; units produced) and the
stochastic figures ``expected_sales``, ``expected_leftover`` (units) and ``fill_rate``
(expected sales / expected demand), plus ``run_id`` (the run in the results store).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from stochplan.errors import InputError
from stochplan.models.multisite.data import COLUMNS, MultisiteInstance, MultisiteOptions

__all__ = ["RESULT_TABLE", "database_url", "read_instance", "write_results", "write_tables"]

#: The table a solve writes back.
RESULT_TABLE = "ResultData"
#: The generator's record of an instance.
RECORD_TABLE = "InstanceRecord"


def database_url(text: str) -> str:
    """A SQLAlchemy URL: ``text`` itself when it has a scheme, else an SQLite file path."""
    text = str(text).strip()
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def _shown(url: str) -> str:
    """The URL with its password hidden, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is shown as given
        return url


@contextmanager
def connect(url: str, field: str, must_exist: bool = True,
            write: bool = False) -> Iterator[Any]:
    """A connection to ``url`` (in a transaction when ``write``), closed after.

    Raises
    ------
    InputError
        Naming ``field``, the URL (password hidden) and why it cannot be opened: a malformed
        URL, a missing driver, a missing SQLite file (when ``must_exist``), a server that
        does not answer or refuses the login.
    """
    import sqlalchemy as sa
    from sqlalchemy import exc

    url = database_url(url)
    shown = _shown(url)
    try:
        parsed = sa.engine.make_url(url)
    except exc.ArgumentError as err:
        raise InputError(field, shown, f"not a database URL ({err})") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(str(parsed.database))
        if must_exist and not path.is_file():
            raise InputError(field, shown, "no such database file")
        if not path.parent.is_dir():
            raise InputError(field, shown, f"folder {path.parent} does not exist")
    try:
        engine = sa.create_engine(url, connect_args=_timeout(parsed))
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as err:
        raise InputError(field, shown, f"cannot use this database ({err})") from None
    try:
        try:
            conn = engine.begin() if write else engine.connect()
            handle = conn.__enter__()
        except exc.SQLAlchemyError as err:
            reason = str(getattr(err, "orig", err)).strip().splitlines()[0]
            raise InputError(field, shown, f"cannot connect ({reason})") from None
        try:
            yield handle
        except BaseException as err:
            conn.__exit__(type(err), err, err.__traceback__)
            raise
        conn.__exit__(None, None, None)
    finally:
        engine.dispose()


def _timeout(parsed: Any) -> dict[str, Any]:
    """Connect arguments that make an unreachable server fail fast."""
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return {"connect_timeout": 5}
    if backend == "sqlite":
        return {"timeout": 30}
    return {}


def read_instance(url: str, options: MultisiteOptions | None = None,
                  field: str = "--input-db") -> MultisiteInstance:
    """The instance stored in a database (the four tables; ``InstanceRecord`` names it).

    Raises
    ------
    InputError
        The database cannot be opened, or a table, column or value is wrong (naming it).
    """
    import sqlalchemy as sa

    from stochplan.models.multisite.data import from_tables

    url = database_url(url)
    shown = _shown(url)
    tables: dict[str, pd.DataFrame] = {}
    name = Path(str(sa.engine.make_url(url).database or "multisite")).stem or "multisite"
    with connect(url, field) as conn:
        present = set(sa.inspect(conn).get_table_names())
        for table in COLUMNS:
            if table in present:
                tables[table] = pd.read_sql_table(table, conn)
        if RECORD_TABLE in present:
            record = pd.read_sql_table(RECORD_TABLE, conn)
            if len(record) and "name" in record.columns:
                name = str(record["name"].iloc[0])
    return from_tables(tables, shown, name=name, description=f"from {shown}",
                       options=options, database=url)


def write_tables(url: str, tables: dict[str, pd.DataFrame], field: str = "--db") -> None:
    """Replace the given tables in one transaction, and drop ``ResultData`` (results of the
    data being replaced)."""
    import sqlalchemy as sa

    with connect(url, field, must_exist=False, write=True) as conn:
        present = set(sa.inspect(conn).get_table_names())
        if RESULT_TABLE in present:
            conn.execute(sa.text(f'DROP TABLE "{RESULT_TABLE}"'))
        for name, df in tables.items():
            df.to_sql(name, conn, if_exists="replace", index=False)


def write_results(url: str, table: pd.DataFrame, field: str = "--input-db") -> None:
    """Replace ``ResultData`` with ``table`` in one transaction."""
    with connect(url, field, must_exist=True, write=True) as conn:
        table.to_sql(RESULT_TABLE, conn, if_exists="replace", index=False)
