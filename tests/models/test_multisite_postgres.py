"""The multi-site family against a real PostgreSQL server that these tests start themselves
(the ``pg_url`` fixture of ``tests/conftest.py``; skipped with the reason where PostgreSQL or
the psycopg driver cannot be had).
"""

from __future__ import annotations

import json
import socket

import pandas as pd
import pytest

from stochplan.cli import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tables(url: str) -> dict[str, pd.DataFrame]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            return {n: pd.read_sql_table(n, conn) for n in names}
    finally:
        engine.dispose()


def _reset(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for name in sa.inspect(conn).get_table_names():
                conn.execute(sa.text(f'DROP TABLE "{name}"'))
    finally:
        engine.dispose()


@pytest.mark.solve
def test_generate_and_solve_on_postgres_equal_sqlite(pg_url, tmp_path, capsys):
    """The same generated tables in PostgreSQL and SQLite; `solve --input-db` on both gives the
    same objective and writes ResultData back into PostgreSQL."""
    _reset(pg_url)
    lite = tmp_path / "in.db"
    for url in (pg_url, str(lite)):
        assert main(["generate", "multisite", "--sites", "2", "--seed", "4", "--db", url]) == 0
    pg, sq = _tables(pg_url), _tables(f"sqlite:///{lite}")
    assert set(pg) == set(sq)
    for name in pg:
        pd.testing.assert_frame_equal(pg[name], sq[name], check_exact=True)
    capsys.readouterr()
    objectives = []
    for url in (pg_url, str(lite)):
        assert main(["solve", "multisite", "--input-db", url, "--scenarios", "sample:3",
                     "--relax", "--json", "--db", str(tmp_path / "runs.db")]) == 0
        objectives.append(json.loads(capsys.readouterr().out)["objective"])
    assert objectives[0] == objectives[1]
    results = _tables(pg_url)["ResultData"]
    assert len(results) == 60 and set(results["status"]) == {"optimal"}
    assert results.groupby("site")["site_profit"].first().sum() == pytest.approx(objectives[0],
                                                                               rel=1e-9)


@pytest.mark.solve
def test_a_failed_run_leaves_postgres_unchanged(pg_url, tmp_path, capsys):
    """An infeasible site: exit 3 naming it, and every table in PostgreSQL as it was."""
    import sqlalchemy as sa

    _reset(pg_url)
    assert main(["generate", "multisite", "--sites", "2", "--seed", "1", "--db", pg_url]) == 0
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text('UPDATE "ProductData" SET min_demand = 1, raw_material = 1e6 '
                             "WHERE site = 'Site001' AND product = 'B3'"))
    engine.dispose()
    before = _tables(pg_url)
    capsys.readouterr()
    assert main(["solve", "multisite", "--input-db", pg_url, "--scenarios", "sample:2",
                 "--db", str(tmp_path / "runs.db")]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "site Site001" in err, err
    after = _tables(pg_url)
    assert set(after) == set(before)
    for name in before:
        pd.testing.assert_frame_equal(after[name], before[name])


def test_unreachable_postgres_is_one_line(pg_url, capsys):
    """A port where no server listens: one line naming --input-db, exit 2."""
    dead = pg_url.rsplit(":", 1)[0] + f":{_free_port()}/postgres"
    assert main(["solve", "multisite", "--input-db", dead]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--input-db" in err and "cannot connect" in err, err
