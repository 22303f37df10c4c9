"""A stored run as files that leave the package: ``stochplan export RUN --to DIR``.

:func:`export_run` writes every table of a run (``plan``, ``kpis``, then the run's stored
tables in order: the family's KPI tables, ``recourse`` with the per-scenario second-stage
values, ``scenarios`` and their random data, and, when stored, the value-of-information and
out-of-sample tables), one tidy file each, plus ``provenance.json`` (what was solved, how, with
which packages, from which database) and ``README.md`` (every file, every column with its dtype,
meaning and unit where known). It works on a run of any family, or of a bare mpi-sppy module.

Formats and exactness
---------------------
``csv``
    pandas' ``to_csv`` with its default ``float_format=None`` writes each float64 as its
    shortest round-trip repr (``0.1``, ``488894.38999999996``), so ``pandas.read_csv`` reads
    back the very doubles stored. ``inf``/``-inf`` are infinite values; an empty field is
    missing (NaN, None).
``json``
    One file per table in records orientation (a list of ``{column: value}`` objects). Written
    with the stdlib encoder, floats as their shortest repr, exact; pandas' own ``to_json``
    rounds to 10 significant digits by default (15 at most). JSON has no NaN or infinity:
    missing values are ``null`` and +-inf the strings ``"inf"``/``"-inf"`` (as in the results
    database's JSON columns).
``parquet``
    float64 as is; needs pyarrow (``pip install 'stochplan[parquet]'``, in the ``parquet``
    extra, not the default install: 100 MB of wheel for one output format). Without it the
    format is refused before anything is written.

Tables are made tidy on the way out: a table stored with a non-default index gets it back as
columns, and column labels become strings (a MultiIndex's levels joined with ``/``).

Examples
--------
>>> import pandas as pd, tempfile, pathlib
>>> from stochplan.store import RunRecord, StoredRun
>>> plan = pd.DataFrame({"variable": ["X"], "crop": ["wheat"], "value": [170.0]})
>>> record = RunRecord(
...     instance="farmer", family="module", method="ef", scenarios="3", seed=None,
...     n_scenarios=3, status="optimal", objective=-108390.0, bound=-108390.0, gap=0.0,
...     config={}, versions={}, timings={}, plan=plan, kpis={"rp": -108390.0},
... )
>>> with tempfile.TemporaryDirectory() as tmp:
...     out = export_run(StoredRun(1, "2025-01-31T12:00:00+00:00", record),
...                      pathlib.Path(tmp) / "run-1")
...     sorted(p.name for p in out.folder.iterdir())
['README.md', 'kpis.csv', 'plan.csv', 'provenance.json']
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd

from stochplan.errors import InputError
from stochplan.store import StoredRun

__all__ = [
    "FORMATS",
    "ColumnDoc",
    "Export",
    "check_format",
    "describe_columns",
    "export_run",
    "provenance",
    "run_tables",
    "tidy",
]

#: Output formats, the first the default.
FORMATS = ("csv", "parquet", "json")
_SUFFIX = {"csv": ".csv", "parquet": ".parquet", "json": ".json"}
PROVENANCE = "provenance.json"
README = "README.md"

#: What the run-wide tables hold (any family); other tables are the family's.
TABLES = {
    "plan": "The first-stage (here-and-now) plan, fixed before the scenario is known: one row "
            "per variable and index.",
    "kpis": "The run's headline KPIs, one row each (meanings under KPIs below).",
    "recourse": "The second-stage (recourse) values in each scenario, given the plan: one row "
                "per scenario, variable and index.",
    "scenarios": "The run's scenarios: name, label and probability.",
    "value_by_scenario": "Per scenario: the wait-and-see objective (WS: the scenario's own best "
                         "plan) and the objective of the mean-value plan (EEV).",
    "ev_plan": "The first-stage plan of the mean-value (EV) problem, laid out as the plan.",
    "oos_costs": "Out-of-sample evaluation: each plan's objective in each freshly drawn "
                 "scenario.",
    "oos_summary": "Out-of-sample evaluation: one row per plan, statistics of its objective and "
                   "where the fresh scenarios came from.",
    "convergence": "A decomposition's progress per iteration: bound and incumbent.",
    "saa_steps": "Sample average approximation: one row per sample size N, with the estimate "
                 "of the plan's optimality gap.",
}

_OBJ = "$, in the objective's sense (see provenance.json: config.sense)"

#: Columns of any table: (meaning, unit).
COLUMNS: dict[str, tuple[str, str]] = {
    "scenario": ("scenario name", ""),
    "probability": ("probability of the scenario", "fraction of 1"),
    "variable": ("model variable, named by its symbol in the family's formulation", ""),
    "value": ("the number the row's other columns identify", "that quantity's own unit"),
    "label": ("readable name", ""),
    "name": ("name", ""),
    "plan": ("the first-stage plan the row is about", ""),
    "cost": ("cost", "$"),
    "objective": ("objective value", _OBJ),
    "mean": ("mean over the scenarios", ""),
    "seed": ("base seed of the scenario draws (scenario k uses default_rng([seed, k]))", ""),
    "scenarios": ("scenario specification (named, poisson:N, sample:N, qmc:N, file:PATH)", ""),
    "n": ("number of scenarios", "count"),
    "seconds": ("wall-clock time", "s"),
    "iteration": ("iteration number", "count"),
    "bound": ("best bound on the optimal objective", _OBJ),
    "incumbent": ("best objective of a feasible plan found so far", _OBJ),
}

_OOS_OBJ = "$, in the objective's sense; +-inf where the plan is infeasible"

#: Columns whose meaning depends on the table: {table: {column: (meaning, unit)}}.
TABLE_COLUMNS: dict[str, dict[str, tuple[str, str]]] = {
    "plan": {"value": ("value of the first-stage variable",
                       "the variable's unit (see the family's docs page)")},
    "ev_plan": {"value": ("value of the mean-value plan's first-stage variable",
                          "the variable's unit (see the family's docs page)")},
    "recourse": {"value": ("value of the second-stage variable in the scenario",
                           "the variable's unit (see the family's docs page)")},
    "kpis": {"name": ("KPI name (see KPIs below)", ""),
             "value": ("KPI value", "see KPIs below")},
    "value_by_scenario": {
        "ws": ("wait-and-see objective: the scenario solved with its own best plan", _OBJ),
        "eev": ("objective of the mean-value (EV) plan in the scenario", _OOS_OBJ),
    },
    "oos_costs": {"scenario": ("index k of the fresh scenario (drawn with default_rng([seed, "
                               "k]), seed in oos_summary)", ""),
                  "cost": ("objective of the plan in the scenario", _OOS_OBJ)},
    "oos_summary": {
        "scenarios": ("specification of the fresh scenarios drawn", ""),
        "seed": ("base seed of the fresh scenarios", ""),
        "n": ("number of fresh scenarios", "count"),
        "mean": ("mean objective over the fresh scenarios", _OOS_OBJ),
        "ci_low": ("lower end of the 95 % confidence interval of the mean (Student t)", _OBJ),
        "ci_high": ("upper end of the 95 % confidence interval of the mean (Student t)", _OBJ),
        "cvar": ("conditional value at risk: the mean objective over the worst 1 - cvar_level "
                 "fraction of scenarios", _OOS_OBJ),
        "cvar_level": ("level of cvar", "fraction of 1"),
        "prob_infeasible": ("fraction of fresh scenarios where the plan is infeasible",
                            "fraction of 1"),
        "feasible_mean": ("mean objective over the scenarios where the plan is feasible", _OBJ),
        "evaluated_under": ("the distribution the fresh scenarios were drawn from, in words",
                            ""),
        "evaluation_note": ("what a reader must know about those scenarios (empty: nothing)",
                            ""),
        "distribution": ("that distribution as JSON (generator, rates, levels, weights, seed)",
                         ""),
    },
    "convergence": {"seconds": ("wall-clock time since the start", "s")},
    "saa_steps": {
        "n": ("sample size N", "count"),
        "objective": ("objective of the sample-average problem of size N", _OBJ),
        "gap_mean": ("estimated optimality gap of its plan, mean over batches", "$"),
        "gap_half_width": ("half-width of the gap's confidence interval", "$"),
        "gap_upper": ("upper confidence bound of the gap", "$"),
        "relative_upper": ("gap_upper relative to the objective", "fraction of 1"),
        "batches": ("number of batches of the gap estimate", "count"),
        "seconds": ("wall-clock time of the step", "s"),
    },
}

#: Value-of-information, out-of-sample and SAA KPIs (any family); others are the family's.
KPIS = {
    "rp": "RP, the recourse problem's optimal objective (the stochastic plan)",
    "ev": "EV, the mean-value problem's objective",
    "eev": "EEV, the expected objective of the mean-value plan (+inf: infeasible somewhere)",
    "ws": "WS, the wait-and-see objective (perfect information)",
    "vss": "VSS, the value of the stochastic solution: EEV - RP when minimising, RP - EEV when "
           "maximising",
    "evpi": "EVPI, the expected value of perfect information: RP - WS when minimising, WS - RP "
            "when maximising",
    "oos_mean": "out of sample: the plan's mean objective (see oos_summary)",
    "oos_ci_low": "out of sample: lower end of the 95 % confidence interval of the mean",
    "oos_ci_high": "out of sample: upper end of the 95 % confidence interval of the mean",
    "oos_cvar": "out of sample: CVaR of the plan's objective",
    "oos_prob_infeasible": "out of sample: fraction of fresh scenarios where it is infeasible",
    "oos_n": "out of sample: number of fresh scenarios",
    "gap_mean": "SAA: estimated optimality gap, mean over batches ($)",
    "gap_half_width": "SAA: half-width of the gap's confidence interval ($)",
    "gap_upper": "SAA: upper confidence bound of the gap ($)",
    "gap_relative_upper": "SAA: gap_upper relative to the objective",
}

_QUANTILE = re.compile(r"^q(\d\d)$")
_RESERVED = {"provenance", "readme"}


@dataclass(frozen=True)
class ColumnDoc:
    """One column of an exported table: its name, dtype, meaning and unit ("" if unknown)."""

    name: str
    dtype: str
    meaning: str
    unit: str = ""


@dataclass(frozen=True)
class Export:
    """What :func:`export_run` wrote.

    Attributes
    ----------
    folder : Path
        The folder written.
    format : str
        ``"csv"``, ``"parquet"`` or ``"json"``.
    tables : dict of str to str
        Table name -> file name (in the folder), in the order written.
    files : tuple of str
        Every file written: the tables' files, ``provenance.json``, ``README.md``.
    """

    folder: Path
    format: str
    tables: dict[str, str]
    files: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "format": self.format, "tables": dict(self.tables),
                "files": list(self.files)}


# ----------------------------------------------------------------------------------------------
# What is exported


def run_tables(stored: StoredRun) -> dict[str, pd.DataFrame]:
    """Every table of a stored run, as stored: ``plan``, ``kpis`` (``name``, ``value``), then
    the run's tables in the order they were stored."""
    rec = stored.record
    kpis = pd.DataFrame({"name": list(rec.kpis), "value": list(rec.kpis.values())},
                        columns=["name", "value"]).astype({"value": "float64"})
    return {"plan": rec.plan, "kpis": kpis, **rec.tables}


def tidy(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with a default RangeIndex and unique string column names: a non-default
    index comes back as columns, MultiIndex column labels are joined with ``/``.

    Examples
    --------
    >>> t = pd.DataFrame({"cost": [1.5]}, index=pd.Index(["a"], name="plan"))
    >>> list(tidy(t).columns)
    ['plan', 'cost']
    """
    out = table
    index = out.index
    if not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
            and index.name is None):
        names = [n if n is not None else ("index" if index.nlevels == 1 else f"level_{i}")
                 for i, n in enumerate(index.names)]
        out = out.reset_index(allow_duplicates=True, names=names)
    labels = [_label(c) for c in out.columns]
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label}_{seen[label]}")
    if unique != list(out.columns):
        out = out.copy()
        out.columns = pd.Index(unique, dtype=object)
    return out


def _label(label: Any) -> str:
    if isinstance(label, tuple):
        return "/".join(str(p) for p in label if p is not None and str(p) != "")
    return str(label)


def provenance(stored: StoredRun, db: str | Path | None = None) -> dict[str, Any]:
    """Where a run comes from, as plain JSON data: run id, created, instance, family, method,
    status, objective, bound, gap, the scenario spec and seed, the risk measure and the
    distribution the scenarios were drawn from (also inside ``config``, kept whole), package
    versions, timings (s per phase) and the database (absolute path) it was read from.

    Non-finite numbers are the strings ``"inf"``, ``"-inf"``, ``"nan"``; absent ones ``None``.
    """
    rec = stored.record
    config = rec.config
    law = config.get("distribution")
    out: dict[str, Any] = {
        "run_id": stored.id,
        "created": stored.created,
        "instance": rec.instance,
        "family": rec.family,
        "method": rec.method,
        "status": rec.status,
        "objective": rec.objective,
        "bound": rec.bound,
        "gap": rec.gap,
        "sense": _sense(config),
        "scenarios": rec.scenarios,
        "n_scenarios": rec.n_scenarios,
        "seed": rec.seed,
        "risk": config.get("risk"),
        "scenario_distribution": law,
        "scenario_distribution_text": _describe(law),
        "label": rec.label,
        "parent_run": rec.parent_run,
        "config": config,
        "versions": rec.versions,
        "timings": rec.timings,
        "database": _where(db) if db is not None else None,
    }
    summary = rec.tables.get("oos_summary")
    if summary is not None and len(summary):
        from stochplan.reports.view import evaluated_under

        text, note = evaluated_under(summary)
        out["evaluated_under"] = text
        out["evaluation_note"] = note
    return _plain(out)


def _sense(config: Mapping[str, Any]) -> Any:
    """The objective's sense as the run stored it, ``"min"`` or ``"max"`` (``sense``, or
    ``value.sense`` of a module run); None when not stored."""
    value = config.get("value")
    return config.get("sense") or (value.get("sense") if isinstance(value, Mapping) else None)


def _describe(law: Any) -> str | None:
    """The distribution in words, or None when not stored or not readable."""
    if not isinstance(law, Mapping):
        return None
    from stochplan.scenarios import Distribution

    try:
        return Distribution.from_dict(dict(law)).describe()
    except Exception:  # a distribution stored by another version: the JSON stays, the words go
        return None


def _plain(obj: Any) -> Any:
    """JSON-ready data: numpy scalars unwrapped, non-finite floats as strings, paths as text."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return _cell(obj)


def _cell(value: Any) -> Any:
    """One value as a JSON scalar: NaN/NA/None -> None, +-inf -> "inf"/"-inf", times as ISO."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    return str(value)


# ----------------------------------------------------------------------------------------------
# The README of columns


def describe_columns(name: str, table: pd.DataFrame, family: str = "") -> list[ColumnDoc]:
    """Each column of a (tidy) table: dtype, meaning and unit where known.

    Run-wide tables (:data:`TABLES`) and generic columns (:data:`COLUMNS`, ``q05`` ... ``q95``)
    are described here; a column only a family knows gets its dtype and a pointer to the
    family's docs page.
    """
    index_cols = name in ("plan", "ev_plan", "recourse")
    data = _is_scenario_data(name, table)
    docs = []
    for column in table.columns:
        col = str(column)
        meaning, unit = _column_meaning(name, col, family, index_cols, data)
        docs.append(ColumnDoc(col, str(table[column].dtype), meaning, unit))
    return docs


def _column_meaning(table: str, col: str, family: str, index_cols: bool,
                    data: bool) -> tuple[str, str]:
    known = TABLE_COLUMNS.get(table, {})
    if col in known:
        return known[col]
    if index_cols and col not in ("variable", "value", "scenario"):
        return ("index of the variable, one of the family's index columns (empty: the variable "
                "has no such index)", "")
    if data:
        if col == "value":
            return f"the random {table} in the scenario", "see the family's docs page"
        if col != "scenario":
            return f"axis of the random {table}", ""
    match = _QUANTILE.match(col)
    if match and table == "oos_summary":
        return f"{int(match.group(1))} % quantile of the objective over the fresh scenarios", _OBJ
    if col in COLUMNS:
        return COLUMNS[col]
    return FAMILY_SPECIFIC, ""


#: Meaning given to a column only the family knows.
FAMILY_SPECIFIC = "family-specific: see the family's docs page"


def family_page(family: str) -> str:
    """Where a family's own columns are explained."""
    from stochplan.family import family_names

    if family in family_names():  # the docs build one page per registered family
        return f"see the {family} family's docs page, docs/families/{family}.rst"
    if family == "module":
        return "see the model module's own documentation"
    return f"see the {family} family's docs page"


def _is_scenario_data(name: str, table: pd.DataFrame) -> bool:
    """The scenarios' random data: a table with ``scenario`` and ``value`` that no run-wide
    table is (``demand``, ``acceptance``, ...)."""
    return name not in TABLES and {"scenario", "value"} <= {str(c) for c in table.columns}


def _table_text(name: str, table: pd.DataFrame, family: str) -> str:
    if name in TABLES:
        return TABLES[name]
    if _is_scenario_data(name, table):
        return (f"The scenarios' random data ({name}): one row per scenario and cell, one "
                "column per axis.")
    return f"A table of the {family} family: {family_page(family)}."


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _number(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def readme_text(stored: StoredRun, fmt: str, files: Mapping[str, str],
                frames: Mapping[str, pd.DataFrame], db: str | Path | None = None,
                foreign: bool = False) -> str:
    """``README.md`` of an export: the run in one paragraph, how to read the files, every file
    with its rows, then every table's columns (dtype, meaning, unit) and the KPIs' meanings."""
    rec = stored.record
    family = rec.family
    source = f" of {_where(db)}" if db is not None else ""
    lines = [
        f"# Run {stored.id}{source}",
        "",
        f"Instance `{rec.instance}` ({family} family), method `{rec.method}`, scenarios "
        f"`{rec.scenarios}` ({rec.n_scenarios} scenarios, seed {_number(rec.seed)}), status "
        f"`{rec.status}`, objective {_number(rec.objective)}, bound {_number(rec.bound)}, gap "
        f"{_number(rec.gap)}; stored {stored.created}. `{PROVENANCE}` holds the whole "
        "provenance: configuration (risk measure, scenario distribution), package versions, "
        "timings, database. Family-specific tables, columns and KPIs: "
        f"{family_page(family)}.",
        "",
        f"Written by `stochplan export {stored.id} --to DIR --format {fmt}`, one {fmt.upper()} "
        "file per table. " + _reading(fmt),
        "",
    ]
    if foreign:
        lines += ["This folder held other files before (`--force`): only the files listed here "
                  "are this export's.", ""]
    lines += ["## Files", "", "| file | rows | what |", "|---|---|---|"]
    for name, file in files.items():
        what = _md(_table_text(name, frames[name], family))
        lines.append(f"| `{file}` | {len(frames[name])} | {what} |")
    lines += [f"| `{PROVENANCE}` | | where the run comes from (see above) |",
              f"| `{README}` | | this file |", ""]
    for name, file in files.items():
        lines += [f"## {file}", "", _table_text(name, frames[name], family), "",
                  "| column | dtype | meaning | unit |", "|---|---|---|---|"]
        for doc in describe_columns(name, frames[name], family):
            lines.append(f"| `{_md(doc.name)}` | {doc.dtype} | {_md(doc.meaning)} | "
                         f"{_md(doc.unit)} |")
        lines.append("")
    if rec.kpis:
        lines += ["## KPIs", "", "| KPI | meaning |", "|---|---|"]
        for kpi in rec.kpis:
            meaning = KPIS.get(kpi, f"a KPI of the {family} family (see its docs page)")
            lines.append(f"| `{_md(kpi)}` | {_md(meaning)} |")
        lines.append("")
    return "\n".join(lines)


def _reading(fmt: str) -> str:
    if fmt == "csv":
        return ("Floats are written with their shortest exact digits, so `pandas.read_csv` "
                "reads back the stored values exactly; `inf`/`-inf` are infinite values, an "
                "empty field is missing.")
    if fmt == "json":
        return ("Records orientation (a list of `{column: value}` objects, "
                "`pandas.read_json(path, orient=\"records\")` or `json.load`); floats exact; "
                "missing values are `null`, infinite ones the strings `\"inf\"`/`\"-inf\"`.")
    return "Read with `pandas.read_parquet(path)`; dtypes and floats as stored."


# ----------------------------------------------------------------------------------------------
# Writing


def check_format(fmt: str) -> None:
    """Refuse an unknown format, and parquet without pyarrow (saying what to install).

    Raises
    ------
    InputError
        Field ``format``.
    """
    if fmt not in FORMATS:
        raise InputError("format", fmt, f"unknown format (known: {', '.join(FORMATS)})")
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise InputError("format", fmt, "needs pyarrow: pip install 'stochplan[parquet]' (or "
                         "pip install pyarrow), or use --format csv or json")


def export_run(stored: StoredRun, folder: str | Path, fmt: str = "csv", *, force: bool = False,
               db: str | Path | None = None) -> Export:
    """Write every table of ``stored`` to ``folder``, one file each, with ``provenance.json``
    and ``README.md``.

    Parameters
    ----------
    stored : StoredRun
        A run read from the results database.
    folder : str or Path
        Created (with its parents) when missing. An existing folder must be empty unless
        ``force``, which writes into it, replacing files of the same names.
    fmt : str
        ``"csv"`` (default), ``"parquet"`` (needs pyarrow) or ``"json"`` (records).
    db : str or Path, optional
        The database the run was read from, recorded in the provenance.

    Returns
    -------
    Export

    Raises
    ------
    InputError
        ``format``: unknown, or parquet without pyarrow; ``folder``: a file, not empty (without
        ``force``) or not writable. Nothing is written then. The files appear together: they
        are written to a temporary folder next to ``folder`` and moved in at the end.
    """
    check_format(fmt)
    target = Path(folder).expanduser()
    foreign = _check_folder(target, force)
    frames = {name: tidy(table) for name, table in run_tables(stored).items()}
    files = _file_names(list(frames), _SUFFIX[fmt])
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.export-", dir=parent))
    except OSError as err:
        raise InputError("folder", str(target), f"cannot be created ({err.strerror or err})"
                         ) from None
    try:
        for name, file in files.items():
            frames[name] = _write_table(frames[name], staging / file, fmt)
        info = provenance(stored, db)
        info["export"] = {"format": fmt, "exported": dt.datetime.now(dt.UTC).isoformat(
            timespec="seconds"), "stochplan": _version(), "tables": dict(files)}
        (staging / PROVENANCE).write_text(json.dumps(info, indent=2, allow_nan=False) + "\n",
                                          encoding="utf-8")
        (staging / README).write_text(readme_text(stored, fmt, files, frames, db, foreign),
                                      encoding="utf-8")
        written = (*files.values(), PROVENANCE, README)
        _move_in(staging, target, written)
    except OSError as err:
        raise InputError("folder", str(target), f"cannot be written ({err.strerror or err})"
                         ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Export(target, fmt, dict(files), written)


def _check_folder(target: Path, force: bool) -> bool:
    """True when ``target`` holds files already (allowed with ``force`` only)."""
    if target.exists() and not target.is_dir():
        raise InputError("folder", str(target), "is a file, not a folder")
    if not target.is_dir():
        return False
    if not any(target.iterdir()):
        return False
    if not force:
        raise InputError("folder", str(target), "exists and is not empty: give a new or empty "
                         "folder, or --force to write into it")
    return True


def _file_names(names: list[str], suffix: str) -> dict[str, str]:
    """A safe, unique file name per table (``plan.csv``; odd characters become ``_``)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "table"
        if stem.lower() in _RESERVED:
            stem += "_table"
        candidate, k = stem, 1
        while candidate.lower() in taken:
            k += 1
            candidate = f"{stem}_{k}"
        taken.add(candidate.lower())
        out[name] = candidate + suffix
    return out


def _write_table(table: pd.DataFrame, path: Path, fmt: str) -> pd.DataFrame:
    """Write one tidy table; returns it as written (parquet may turn mixed columns to text)."""
    if fmt == "csv":
        table.to_csv(path, index=False)  # float_format=None: shortest exact repr
    elif fmt == "json":
        columns = [str(c) for c in table.columns]
        rows = [dict(zip(columns, (_cell(v) for v in row)))
                for row in table.to_numpy(dtype=object).tolist()]
        path.write_text(json.dumps(rows, allow_nan=False) + "\n", encoding="utf-8")
    else:
        try:
            table.to_parquet(path, index=False, engine="pyarrow")
        except (TypeError, ValueError):  # pyarrow's ArrowTypeError/ArrowInvalid: mixed objects
            table = _mixed_as_text(table)
            table.to_parquet(path, index=False, engine="pyarrow")
    return table


def _mixed_as_text(table: pd.DataFrame) -> pd.DataFrame:
    """Object columns holding more than one kind of value, as text (None stays missing)."""
    out = table.copy()
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = [None if v is None or (isinstance(v, float) and math.isnan(v))
                           else str(v) for v in out[column]]
    return out


def _move_in(staging: Path, target: Path, names: tuple[str, ...]) -> None:
    """Move the files written to ``staging`` into ``target`` (the whole folder when new)."""
    if not target.exists():
        os.replace(staging, target)
        return
    for name in names:
        os.replace(staging / name, target / name)


def _version() -> str:
    from stochplan import __version__

    return __version__


def _where(db: Any) -> str:
    """The results database for the export's records: a file's full path, or a database URL
    with its password hidden."""
    from stochplan.store import DatabaseURL

    return str(db) if isinstance(db, DatabaseURL) else str(Path(db).resolve())
