"""The multi-site family against a real PostgreSQL server that these tests start themselves.

``scripts/ensure-postgres`` finds (or, as root with apt-get, installs) Debian's ``postgresql``;
the fixture makes a throw-away cluster in a temporary folder (as the ``postgres`` user when
running as root: the server refuses root), starts it on a free local port and removes it after.
Where PostgreSQL or the psycopg driver cannot be had, the tests are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from stochplan.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A running throw-away PostgreSQL server's SQLAlchemy URL (database ``postgres``)."""
    pytest.importorskip("psycopg", reason="the psycopg driver is not installed "
                        "(pip install -c constraints.txt 'psycopg[binary]')")
    found = subprocess.run([str(ROOT / "scripts" / "ensure-postgres")], capture_output=True,
                           text=True, check=False, timeout=900)
    if found.returncode != 0:
        pytest.skip(f"no PostgreSQL server programs: {found.stderr.strip()[-300:]}")
    bindir = Path(found.stdout.strip())
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="stochplan-pg-"))
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            runuser = None
        if runuser is None:
            shutil.rmtree(folder, ignore_errors=True)
            pytest.skip("running as root with no 'postgres' user or runuser to start the server")
        as_user = [runuser, "-u", "postgres", "--"]
        shutil.chown(folder, "postgres")
    data, port = folder / "data", _free_port()

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*as_user, *cmd], capture_output=True, text=True, check=False,
                              timeout=120)

    init = run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
               "-E", "UTF8", "--no-sync")
    if init.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"initdb failed: {init.stderr.strip()[-300:]}")
    start = run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w",
                "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off",
                "start")
    if start.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"the PostgreSQL server did not start: {start.stderr.strip()[-300:]}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


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
