"""``stochplan export RUN --to DIR``: every table of a stored run as files, with provenance and
a README of columns (:mod:`stochplan.reports.export`).

The solve tests store one run of the tiny instance (LP, its two named scenarios: X = 10 in week
1 and 15 in week 2 by hand) evaluated out of sample on 10 draws, and export it in each format.
The unit tests export a hand-made run (no solver) holding the awkward cases: non-finite and
extreme floats, a table with an index, names that are not file names.
"""

from __future__ import annotations

import doctest
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stochplan.cli import main
from stochplan.reports import export as ex
from stochplan.store import ResultsStore, RunRecord, StoredRun

TINY = (Path(__file__).resolve().parents[1] / "data" / "tiny").resolve()
HAVE_PYARROW = importlib.util.find_spec("pyarrow") is not None
FORMATS = ["csv", "json", pytest.param("parquet", marks=pytest.mark.skipif(
    not HAVE_PYARROW, reason="pyarrow not installed (the parquet extra)"))]

#: Floats a text format could lose: shortest-repr edge cases, subnormals, the largest double.
HARD = [0.1 + 0.2, 1 / 3, -2 / 3 * 1e-17, 1e-300, 5e-324, 1.7976931348623157e308, 123456789.0125]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``stochplan ARGV`` in-process: (exit status, stdout, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse errors exit from inside parse_args
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("stochplan: error:"), err
    return lines[0]


def read(path: Path, fmt: str) -> pd.DataFrame:
    """A table as a user reads it back (JSON: ``"inf"`` strings and null as documented)."""
    if fmt == "csv":
        return pd.read_csv(path)
    if fmt == "parquet":
        return pd.read_parquet(path)
    rows = json.loads(path.read_text())
    table = pd.DataFrame(rows)
    for col in table.columns:  # the README's convention: +-inf as strings, missing as null
        if table[col].map(lambda v: isinstance(v, float) or v in ("inf", "-inf")).all():
            table[col] = table[col].map(lambda v: float(v) if v is not None else math.nan)
    return table


def same_floats(a: pd.Series, b: pd.Series) -> bool:
    """Bit-for-bit equal doubles (NaN equal to NaN), not approximately equal."""
    x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
    return x.shape == y.shape and bool(np.all((x == y) | (np.isnan(x) & np.isnan(y))))


# ----------------------------------------------------------------------------------------------
# A stored run of the tiny instance (HiGHS)


@pytest.fixture(scope="module")
def tiny_db(tmp_path_factory) -> Path:
    """Run 1: tiny, LP, named scenarios, evaluated out of sample on 10 draws."""
    db = tmp_path_factory.mktemp("export") / "runs.db"
    assert main(["solve", str(TINY), "--relax", "--db", str(db), "--quiet"]) == 0
    assert main(["evaluate", "1", "--draws", "10", "--db", str(db), "--quiet"]) == 0
    return db


@pytest.fixture(scope="module")
def tiny_run(tiny_db) -> StoredRun:
    with ResultsStore(tiny_db) as store:
        return store.get_run(1)


@pytest.mark.solve
@pytest.mark.parametrize("fmt", FORMATS)
def test_export_to_writes_every_table_with_provenance_and_readme(capsys, tmp_path, tiny_db,
                                                                  tiny_run, fmt):
    """One file per table, provenance.json and README.md, nothing else; the README names each
    file and column; the provenance is the run's; plan values read back as the same doubles."""
    folder = tmp_path / "out" / f"run-1-{fmt}"  # parents created
    code, out, err = run(capsys, "export", "1", "--to", str(folder), "--format", fmt,
                         "--db", str(tiny_db))
    assert code == 0, err
    assert out.strip() == str(folder.resolve())
    rec = tiny_run.record
    names = ["plan", "kpis", *rec.tables]
    assert {"recourse", "scenarios", "products", "oos_costs", "oos_summary"} <= set(names)
    files = {name: f"{name}.{fmt}" for name in names}
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*files.values(), "provenance.json", "README.md"])

    readme = (folder / "README.md").read_text()
    for file in files.values():
        assert f"`{file}`" in readme and f"## {file}" in readme
        section = readme.split(f"## {file}\n", 1)[1].split("\n## ", 1)[0]
        table = read(folder / file, fmt)
        for column in table.columns:
            assert f"| `{column}` |" in section, (file, column)
    assert "`provenance.json`" in readme
    assert "| `scenario` | str | scenario name |" in readme
    assert "| `probability` | float64 | probability of the scenario | fraction of 1 |" in readme
    assert "docs/families/aggregate.rst" in readme  # the family's own columns

    prov = json.loads((folder / "provenance.json").read_text())
    expected = {"run_id": 1, "created": tiny_run.created, "instance": rec.instance,
                "family": "aggregate", "method": "ef", "status": "optimal",
                "objective": rec.objective, "bound": rec.bound, "gap": rec.gap,
                "scenarios": "named", "n_scenarios": 2, "seed": rec.seed,
                "database": str(tiny_db.resolve()), "sense": "min"}
    assert {k: prov[k] for k in expected} == expected
    assert prov["objective"] == pytest.approx(85.0, abs=1e-6)
    assert prov["config"] == rec.config  # stored as JSON already
    assert prov["config"]["model"]["integer"] is False
    assert prov["risk"] == rec.config["risk"] and prov["risk"]["measure"] == "expectation"
    assert prov["scenario_distribution"] == rec.config["distribution"]
    assert prov["versions"] == rec.versions and "pandas" in prov["versions"]
    assert prov["timings"] == rec.timings
    assert prov["evaluated_under"].startswith("Poisson around the demand rates, 10 draws")
    assert prov["export"]["format"] == fmt
    assert prov["export"]["tables"] == files

    plan = read(folder / files["plan"], fmt)
    assert list(plan.columns) == list(rec.plan.columns) == ["variable", "product", "week",
                                                           "value"]
    assert same_floats(plan["value"], rec.plan["value"])
    x = plan[plan["variable"] == "X"].set_index("week")["value"]
    assert x.to_dict() == {1: 10.0, 2: 15.0}
    recourse = read(folder / files["recourse"], fmt)
    assert list(recourse.columns) == list(rec.tables["recourse"].columns)
    assert same_floats(recourse["value"], rec.tables["recourse"]["value"])
    kpis = read(folder / files["kpis"], fmt)
    assert kpis["name"].tolist() == list(rec.kpis)
    assert same_floats(kpis["value"], pd.Series(list(rec.kpis.values())))
    oos = read(folder / files["oos_summary"], fmt)
    assert same_floats(oos["mean"], rec.tables["oos_summary"]["mean"])


@pytest.mark.solve
def test_export_errors_are_one_line_with_exit_2(capsys, tmp_path, tiny_db, monkeypatch):
    """A non-empty folder (untouched), an unknown format, a bad run, --to with a TABLE,
    --format without --to, and parquet without pyarrow (saying what to install)."""
    db = str(tiny_db)
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    code, _, err = run(capsys, "export", "1", "--to", str(full), "--db", db)
    assert code == 2 and "not empty" in one_line_error(err) and "--force" in err
    assert [p.name for p in full.iterdir()] == ["notes.txt"]

    code, _, err = run(capsys, "export", "1", "--to", str(tmp_path / "x"), "--format", "xlsx",
                       "--db", db)
    assert code == 2 and "xlsx" in one_line_error(err)
    code, _, err = run(capsys, "export", "9", "--to", str(tmp_path / "x"), "--db", db)
    assert code == 2 and "9" in one_line_error(err)
    code, _, err = run(capsys, "export", "1", "plan", "--to", str(tmp_path / "x"), "--db", db)
    assert code == 2 and "TABLE" in one_line_error(err)
    code, _, err = run(capsys, "export", "1", "--format", "json", "--db", db)
    assert code == 2 and "--to" in one_line_error(err)

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyarrow" else real_find_spec(name, *a))
    code, _, err = run(capsys, "export", "1", "--to", str(tmp_path / "x"), "--format",
                       "parquet", "--db", db)
    assert code == 2 and "pip install 'stochplan[parquet]'" in one_line_error(err)
    assert not (tmp_path / "x").exists()

    # --force writes into it, keeps the other file, and the README says so
    code, _, err = run(capsys, "export", "1", "--to", str(full), "--force", "--db", db)
    assert code == 0, err
    assert (full / "notes.txt").read_text() == "mine" and (full / "plan.csv").is_file()
    assert "only the files listed here" in (full / "README.md").read_text()
    assert not [p for p in tmp_path.iterdir() if ".export-" in p.name]  # no staging left


# ----------------------------------------------------------------------------------------------
# Without a solver


def hand_made() -> StoredRun:
    """A module run with the awkward cases: extreme floats, +-inf and NaN, a table with a named
    index, table names that are not file names or clash with the export's own files."""
    plan = pd.DataFrame({"variable": ["x"] * len(HARD), "crop": [f"c{i}" for i in
                                                                  range(len(HARD))],
                         "value": HARD})
    odd = pd.DataFrame({"value": [*HARD, math.inf, -math.inf, math.nan],
                        "when": pd.date_range("2025-01-01", periods=len(HARD) + 3, tz="UTC")})
    indexed = pd.DataFrame({"cost": [1.5, 2.5]}, index=pd.Index(["a", "b"], name="plan"))
    mixed = pd.DataFrame({"key": pd.Series([1, "two", None], dtype=object)})
    record = RunRecord(
        instance="farmer", family="module", method="ef", scenarios="3", seed=None,
        n_scenarios=3, status="optimal", objective=-108_390.0, bound=math.inf, gap=None,
        config={"module": "farmer", "value": {"sense": "min"}}, versions={}, timings={},
        plan=plan, kpis={"rp": -108_390.0, "vss": math.inf, "mine": 1.0},
        tables={"odd values": odd, "indexed": indexed, "provenance": mixed},
    )
    return StoredRun(7, "2025-01-31T12:00:00+00:00", record)


@pytest.mark.parametrize("fmt", FORMATS)
def test_hand_made_run_round_trips_exactly(tmp_path, fmt):
    stored = hand_made()
    out = ex.export_run(stored, tmp_path / "e", fmt, db=tmp_path / "r.db")
    assert out.tables == {"plan": f"plan.{fmt}", "kpis": f"kpis.{fmt}",
                          "odd values": f"odd_values.{fmt}", "indexed": f"indexed.{fmt}",
                          "provenance": f"provenance_table.{fmt}"}
    assert sorted(p.name for p in out.folder.iterdir()) == sorted(out.files)
    plan = read(out.folder / f"plan.{fmt}", fmt)
    assert plan["value"].tolist() == HARD  # exact, not approximately
    odd = read(out.folder / f"odd_values.{fmt}", fmt)
    assert same_floats(odd["value"], stored.record.tables["odd values"]["value"])
    indexed = read(out.folder / f"indexed.{fmt}", fmt)
    assert list(indexed.columns) == ["plan", "cost"]
    kpis = read(out.folder / f"kpis.{fmt}", fmt)
    assert same_floats(kpis["value"], pd.Series([-108_390.0, math.inf, 1.0]))
    prov = json.loads((out.folder / "provenance.json").read_text())
    assert prov["bound"] == "inf" and prov["gap"] is None and prov["sense"] == "min"
    assert prov["database"] == str((tmp_path / "r.db").resolve())
    readme = (out.folder / "README.md").read_text()
    assert "| `vss` | VSS, the value of the stochastic solution" in readme
    assert "| `mine` | a KPI of the module family" in readme
    assert "model module's own documentation" in readme


def test_tidy_file_names_and_column_docs():
    frame = pd.DataFrame([[1.0, 2.0]], columns=pd.MultiIndex.from_tuples([("a", "x"),
                                                                          ("a", "y")]))
    assert list(ex.tidy(frame).columns) == ["a/x", "a/y"]
    assert ex._file_names(["plan", "Plan", "a/b", "README", "..."], ".csv") == {
        "plan": "plan.csv", "Plan": "Plan_2.csv", "a/b": "a_b.csv",
        "README": "README_table.csv", "...": "table.csv"}
    docs = {d.name: d for d in ex.describe_columns(
        "oos_summary", pd.DataFrame({"q05": [1.0], "ci_low": [0.5], "fill_rate": [0.9]}),
        "aggregate")}
    assert docs["q05"].meaning.startswith("5 % quantile") and docs["q05"].unit.startswith("$")
    assert "Student t" in docs["ci_low"].meaning
    assert docs["fill_rate"].meaning == ex.FAMILY_SPECIFIC
    assert docs["fill_rate"].dtype == "float64"


def test_cli_format_choices_are_the_library_formats():
    from stochplan.cli.reports import EXPORT_FORMATS

    assert EXPORT_FORMATS == ex.FORMATS


def test_module_examples_run():
    assert doctest.testmod(ex).failed == 0
