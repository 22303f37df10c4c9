"""The model leaves the package: the extensive form as MPS or LP, the two-stage problem as SMPS.

Everything here reads :class:`~stochplan.solve.matrix.CompiledScenarios`, the matrix backend's
compiled scenarios (``compile_scenarios``), so it works for any family and any mpi-sppy-style
module with fixed recourse; nothing here builds a model or writes a constraint.

- **MPS / LP** (:func:`write_extensive_form_mps`, :func:`write_extensive_form_lp`): the
  extensive form as the matrix backend solves it (:func:`~stochplan.solve.matrix.
  extensive_form_arrays`): first-stage columns once, then each scenario's recourse columns,
  named ``NAME__SCENARIO``; the objective is the probability-weighted sum of the scenario
  objectives. The LP file is the MPS file translated by HiGHS.
- **SMPS** (:func:`write_smps`): ``NAME.cor`` (the core problem, free MPS: the first-stage
  rows and columns first, then the second stage, with scenario 0's data), ``NAME.tim``
  (``PERIODS IMPLICIT``: the first column and row of each of the two periods ``STAGE-1``,
  ``STAGE-2``) and ``NAME.sto`` (``SCENARIOS DISCRETE``: one ``SC`` record per scenario,
  branching from ``ROOT`` in ``STAGE-2``, with every random entry's value in that scenario).
  The tests read these files back with mpi-sppy's SMPS reader
  (``mpisppy.problem_io.smps_module``) and get stochplan's optimal objective.

Conventions, the same in every file:

- **Minimisation form.** Costs are written as the matrix backend stores them, for
  minimisation: a maximising family (lot sizing maximises profit) is written as
  ``min -profit``, and the optimal objective read back is minus stochplan's objective. A
  comment line at the top of each file says so.
- **Names** are the model's own: column ``X_TV_3`` is ``X[TV, 3]`` (every character other than
  ASCII letters, digits and ``_`` becomes ``_``; a clash gets the column number appended), row
  ``inventory_balance_7`` is the 8th row of the constraint family ``inventory_balance``. The
  objective row is ``OBJ``, the right-hand side vector ``RHS1``, the bounds ``BND1`` (a vector
  named ``RHS`` would read as a section header to some readers).
- **Stages.** A row belongs to the first stage when it has first-stage columns only and the
  same right-hand side in every scenario (the rows the extensive form writes once). When no
  row does (the lot-sizing family), the time file names the objective row ``OBJ`` as the
  first row of ``STAGE-1``: in the core's row order it is the only row before ``STAGE-2``.
- **What may be random.** Right-hand sides and second-stage costs are written as SMPS random
  entries (``RHS1 ROW value``, ``COLUMN OBJ value``). A bound of a second-stage column that
  differs between scenarios is written as an extra second-stage row ``UB_COLUMN``
  (``COLUMN <= u``) or ``LB_COLUMN`` (``COLUMN >= l``) with a random right-hand side, the
  column's own bound in the core being the loosest over the scenarios: readers differ in how
  they read a random bound (mpi-sppy 0.14 expects ``COLUMN BND1 value``, with the bound's
  type taken from the core), while a random right-hand side reads the same everywhere. A
  first-stage cost or objective constant that differs between scenarios is written as its
  probability-weighted mean, which leaves the expected objective unchanged.
- **Numbers** are written with ``repr`` (the shortest text that reads back to the same
  float), so a file read back gives the same problem to the last bit.

mpi-sppy 0.14's SMPS reader reads random right-hand sides, which is all the built-in families
need (their bounds, when random, become rows as above); it does not read random costs.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import scipy.sparse as sp

from stochplan.errors import InputError
from stochplan.solve.matrix import Columns, CompiledScenarios, extensive_form_arrays

__all__ = [
    "FORMATS",
    "SMPS_SUFFIXES",
    "TwoStage",
    "Written",
    "column_names",
    "row_names",
    "split_stages",
    "write_extensive_form_lp",
    "write_extensive_form_mps",
    "write_model",
    "write_mps",
    "write_smps",
]

#: The formats :func:`write_model` writes.
FORMATS = ("mps", "lp", "smps")
#: The three files of an SMPS problem: core, time, stoch.
SMPS_SUFFIXES = (".cor", ".tim", ".sto")
#: Names of the objective row, right-hand side vector and bound vector in every file.
OBJ, RHS, BND = "OBJ", "RHS1", "BND1"
#: The two periods of the time file.
STAGES = ("STAGE-1", "STAGE-2")


@dataclass(frozen=True)
class Written:
    """What :func:`write_model` wrote: the files, and the size of the problem in them.

    ``rows`` and ``columns`` count the extensive form's (MPS, LP) or the core problem's
    (SMPS); ``sense`` is +1 when stochplan minimises, -1 when it maximises (then the files'
    objective is minus stochplan's).
    """

    format: str
    paths: tuple[Path, ...]
    rows: int
    columns: int
    integers: int
    scenarios: int
    sense: int

    def to_dict(self) -> dict[str, Any]:
        """The record as plain values (paths as strings)."""
        return {"format": self.format, "paths": [str(p) for p in self.paths], "rows": self.rows,
                "columns": self.columns, "integers": self.integers,
                "scenarios": self.scenarios, "sense": self.sense}


# ----------------------------------------------------------------------------------------------
# Names


def _clean(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def column_names(columns: Columns) -> tuple[str, ...]:
    """One unique MPS name per column: the variable's name and its index, ``X_TV_3``.

    Examples
    --------
    >>> cols = Columns(variables=("X", "X", "B"), indices=(("TV", 1), ("TV", 2), ("TV A", 1)),
    ...                n_first=2, integer=np.zeros(3, bool))
    >>> column_names(cols)
    ('X_TV_1', 'X_TV_2', 'B_TV_A_1')
    """
    out: list[str] = []
    seen: set[str] = set()
    for j, (var, index) in enumerate(zip(columns.variables, columns.indices)):
        parts = [var, *(str(i) for i in index if i is not None)]
        name = _clean("_".join(parts))
        if name in seen or name in (OBJ, RHS, BND):
            name = f"{name}_c{j}"
        seen.add(name)
        out.append(name)
    return tuple(out)


def row_names(row_family: Sequence[str]) -> tuple[str, ...]:
    """One unique MPS name per row: its constraint family and its number in that family.

    Examples
    --------
    >>> row_names(("workforce", "workforce", "hours[1]"))
    ('workforce_0', 'workforce_1', 'hours_0')
    """
    count: dict[str, int] = {}
    out = []
    for family in row_family:
        base = _clean(family.split("[", 1)[0])
        k = count.get(base, 0)
        count[base] = k + 1
        out.append(f"{base}_{k}")
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# MPS


def _num(x: float) -> str:
    return repr(float(x))


def _comments(lines: Sequence[str], mark: str = "*") -> str:
    """Comment lines, ASCII only (every file here is ASCII)."""
    return "".join(f"{mark} {line.encode('ascii', 'replace').decode()}\n" for line in lines)


def write_mps(
    path: str | Path,
    *,
    name: str,
    A: sp.spmatrix,
    cost: np.ndarray,
    col_lo: np.ndarray,
    col_hi: np.ndarray,
    row_lo: np.ndarray,
    row_hi: np.ndarray,
    integer: np.ndarray,
    col_names: Sequence[str],
    row_names: Sequence[str],
    offset: float = 0.0,
    comments: Sequence[str] = (),
) -> None:
    """Write ``min cost . x + offset`` s.t. ``row_lo <= A x <= row_hi``, ``col_lo <= x <=
    col_hi`` (``integer`` columns integral) as a free-format MPS file.

    Rows with two finite, different sides are ``G`` rows with a ``RANGES`` entry; rows with
    no finite side are left out. Integer columns sit between ``'MARKER'`` lines and always
    carry an upper bound (``PL`` when infinite), since some readers give an integer column
    without one the upper bound 1. ``comments`` become ``*`` lines at the top.
    """
    A = sp.csc_matrix(A)
    m, n = A.shape
    if len(col_names) != n or len(row_names) != m:
        raise ValueError(f"{len(col_names)} column and {len(row_names)} row names for a "
                         f"{m} x {n} matrix")
    kinds: list[str | None] = []
    rhs: list[float] = []
    ranges: dict[int, float] = {}
    for i in range(m):
        lo, hi = float(row_lo[i]), float(row_hi[i])
        if lo == hi:
            kinds.append("E")
            rhs.append(lo)
        elif np.isfinite(lo) and np.isfinite(hi):
            kinds.append("G")
            rhs.append(lo)
            ranges[i] = hi - lo
        elif np.isfinite(hi):
            kinds.append("L")
            rhs.append(hi)
        elif np.isfinite(lo):
            kinds.append("G")
            rhs.append(lo)
        else:
            kinds.append(None)  # a free row constrains nothing
            rhs.append(0.0)
    with open(path, "w", encoding="ascii") as out:
        out.write(_comments(comments))
        out.write(f"NAME          {_clean(name)}\nROWS\n N  {OBJ}\n")
        for i, kind in enumerate(kinds):
            if kind is not None:
                out.write(f" {kind}  {row_names[i]}\n")
        out.write("COLUMNS\n")
        _write_columns(out, A, np.asarray(cost, float), np.asarray(integer, bool), col_names,
                       row_names, kinds)
        out.write("RHS\n")
        if offset != 0.0:  # MPS: the objective's right-hand side is minus its constant
            out.write(f"    {RHS}  {OBJ}  {_num(-offset)}\n")
        for i, kind in enumerate(kinds):
            if kind is not None and rhs[i] != 0.0:
                out.write(f"    {RHS}  {row_names[i]}  {_num(rhs[i])}\n")
        if ranges:
            out.write("RANGES\n")
            for i, r in ranges.items():
                out.write(f"    RNG  {row_names[i]}  {_num(r)}\n")
        out.write("BOUNDS\n")
        for j in range(n):
            for kind, value in _bounds(float(col_lo[j]), float(col_hi[j]), bool(integer[j])):
                tail = "" if value is None else f"  {_num(value)}"
                out.write(f" {kind} {BND}  {col_names[j]}{tail}\n")
        out.write("ENDATA\n")


def _write_columns(out: TextIO, A: sp.csc_matrix, cost: np.ndarray, integer: np.ndarray,
                   col_names: Sequence[str], row_names: Sequence[str],
                   kinds: Sequence[str | None]) -> None:
    marker = 0
    in_integers = False
    for j in range(A.shape[1]):
        if integer[j] != in_integers:
            which = "INTORG" if integer[j] else "INTEND"
            out.write(f"    MARK{marker:04d}  'MARKER'  '{which}'\n")
            marker += 1
            in_integers = bool(integer[j])
        name = col_names[j]
        entries = []
        if cost[j] != 0.0:
            entries.append(f"    {name}  {OBJ}  {_num(cost[j])}\n")
        start, end = A.indptr[j], A.indptr[j + 1]
        for i, value in zip(A.indices[start:end], A.data[start:end]):
            if value != 0.0 and kinds[i] is not None:
                entries.append(f"    {name}  {row_names[i]}  {_num(value)}\n")
        if not entries:  # a column in no row still has to be declared
            entries.append(f"    {name}  {OBJ}  0.0\n")
        out.writelines(entries)
    if in_integers:
        out.write(f"    MARK{marker:04d}  'MARKER'  'INTEND'\n")


def _bounds(lo: float, hi: float, integer: bool) -> list[tuple[str, float | None]]:
    """MPS bound records of one column (the default is 0 <= x < inf)."""
    if lo == hi:
        return [("FX", lo)]
    if lo == -np.inf and hi == np.inf:
        return [("FR", None)]
    out: list[tuple[str, float | None]] = []
    if lo == -np.inf:
        out.append(("MI", None))
    elif lo != 0.0 or hi < 0.0:
        out.append(("LO", lo))
    if hi != np.inf:
        out.append(("UP", hi))
    elif integer:
        out.append(("PL", None))
    return out


# ----------------------------------------------------------------------------------------------
# The extensive form


def _ef_names(compiled: CompiledScenarios, n_rows: int) -> tuple[list[str], list[str]]:
    cols = column_names(compiled.columns)
    rows = row_names(compiled.row_family)
    n1 = compiled.n_first
    scen = _unique_scenarios(compiled.names)
    col_names = list(cols[:n1]) + [f"{c}__{s}" for s in scen for c in cols[n1:]]
    once = _first_stage_rows(compiled)
    each = [r for r, first in zip(rows, once) if not first]
    names = [r for r, first in zip(rows, once) if first] + [f"{r}__{s}" for s in scen for r in each]
    if len(names) != n_rows:  # the extensive form's row layout changed: plain names
        names = [f"r{i}" for i in range(n_rows)]
    return col_names, names


def _first_stage_rows(compiled: CompiledScenarios) -> np.ndarray:
    """Rows with first-stage columns only and one right-hand side in every scenario."""
    n1 = compiled.n_first
    only_first = np.diff(sp.csr_matrix(compiled.A[:, n1:]).indptr) == 0
    constant = np.ptp(compiled.rhs, axis=0) == 0 if len(compiled.names) > 1 else True
    return np.asarray(only_first & constant, dtype=bool)


def write_extensive_form_mps(compiled: CompiledScenarios, path: str | Path, name: str = "EF",
                             comments: Sequence[str] = ()) -> tuple[int, int]:
    """Write the extensive form (minimisation form) as a free-format MPS file; returns its
    (rows, columns)."""
    ef = extensive_form_arrays(compiled)
    A = ef["A"]
    cols, rows = _ef_names(compiled, A.shape[0])
    write_mps(path, name=name, A=A, cost=ef["cost"], col_lo=ef["col_lo"], col_hi=ef["col_hi"],
              row_lo=ef["row_lo"], row_hi=ef["row_hi"], integer=ef["integer"], col_names=cols,
              row_names=rows, offset=ef["offset"], comments=comments)
    return int(A.shape[0]), int(A.shape[1])


def write_extensive_form_lp(compiled: CompiledScenarios, path: str | Path, name: str = "EF",
                            comments: Sequence[str] = ()) -> tuple[int, int]:
    """Write the extensive form (minimisation form) as a CPLEX LP file: the MPS file of
    :func:`write_extensive_form_mps`, translated by HiGHS. Returns its (rows, columns)."""
    import highspy

    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        mps = Path(tmp) / "ef.mps"
        size = write_extensive_form_mps(compiled, mps, name, comments)
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        if h.readModel(str(mps)) != highspy.HighsStatus.kOk:
            raise RuntimeError(f"HiGHS could not read the MPS file it was to translate ({mps})")
        lp = Path(tmp) / "ef.lp"  # HiGHS picks the format by the suffix
        h.writeModel(str(lp))
        text = lp.read_text()
    header = _comments(comments, "\\")
    path.write_text(header + text)
    return size


# ----------------------------------------------------------------------------------------------
# SMPS


@dataclass(frozen=True)
class TwoStage:
    """The core problem of an SMPS file set and its random entries.

    The core's rows are the original rows in the order first-stage rows, second-stage rows,
    then one row per random bound; ``rhs`` is (scenarios x core rows), the core's own being
    row 0; ``random_rows`` and ``random_costs`` index the core rows and second-stage columns
    whose values differ between scenarios.
    """

    A: sp.csr_matrix
    row_names: tuple[str, ...]
    row_sense: np.ndarray
    rhs: np.ndarray
    n_first_rows: int
    col_names: tuple[str, ...]
    n_first: int
    cost: np.ndarray
    offset: float
    col_lo: np.ndarray
    col_hi: np.ndarray
    integer: np.ndarray
    probabilities: np.ndarray
    scenario_names: tuple[str, ...]
    random_rows: np.ndarray
    random_costs: np.ndarray


def split_stages(compiled: CompiledScenarios) -> TwoStage:
    """The core problem, stages and random entries of compiled scenarios (see the module
    docstring for the conventions).

    Raises
    ------
    InputError
        When there is no second-stage column, or a second-stage bound is finite in some
        scenarios and infinite in others (SMPS has no random infinite value).
    """
    S, n1 = len(compiled.names), compiled.n_first
    A = sp.csr_matrix(compiled.A)
    n = A.shape[1]
    if n1 == 0 or n1 == n:
        raise InputError("model", f"{n1} first-stage of {n} columns",
                         "SMPS needs first-stage and second-stage columns")
    p = compiled.probabilities / compiled.probabilities.sum()
    first = _first_stage_rows(compiled)
    order = np.concatenate([np.flatnonzero(first), np.flatnonzero(~first)])
    names = row_names(compiled.row_family)
    cols = column_names(compiled.columns)

    col_lo = compiled.col_lo.copy()
    col_hi = compiled.col_hi.copy()
    lo = np.concatenate([col_lo[:, :n1].max(axis=0), col_lo[0, n1:]])
    hi = np.concatenate([col_hi[:, :n1].min(axis=0), col_hi[0, n1:]])
    # random bounds of second-stage columns: rows with a random right-hand side
    extra_cols: list[int] = []
    extra_sense: list[int] = []
    extra_rhs: list[np.ndarray] = []
    extra_names: list[str] = []
    for j in range(n1, n):
        for side, values, sense in (("LB", col_lo[:, j], -1), ("UB", col_hi[:, j], 1)):
            if S < 2 or np.all(values == values[0]):
                continue
            if not np.all(np.isfinite(values)):
                raise InputError(f"bound of column {cols[j]}", values.tolist(),
                                 "finite in some scenarios and infinite in others; SMPS "
                                 "cannot write it")
            extra_cols.append(j)
            extra_sense.append(sense)
            extra_rhs.append(values)
            extra_names.append(f"{side}_{cols[j]}")
            if sense == 1:
                hi[j] = float(values.max())
            else:
                lo[j] = float(values.min())
    E = sp.csr_matrix((np.ones(len(extra_cols)), (np.arange(len(extra_cols)), extra_cols)),
                      shape=(len(extra_cols), n))
    core_A = sp.vstack([A[order], E], format="csr")
    rhs = np.hstack([compiled.rhs[:, order],
                     np.array(extra_rhs).T if extra_rhs else np.zeros((S, 0))])
    row_sense = np.concatenate([compiled.row_sense[order], np.array(extra_sense, np.int8)])
    all_names = tuple([names[i] for i in order] + extra_names)
    if len(set(all_names)) != len(all_names) or {OBJ, RHS, BND} & set(all_names):
        all_names = tuple(f"R{i}" for i in range(len(all_names)))

    cost = np.concatenate([p @ compiled.cost[:, :n1], compiled.cost[0, n1:]])
    random_rows = np.flatnonzero(np.ptp(rhs, axis=0) != 0) if S > 1 else np.zeros(0, int)
    random_costs = (np.flatnonzero(np.ptp(compiled.cost[:, n1:], axis=0) != 0) + n1
                    if S > 1 else np.zeros(0, int))
    n_first_rows = int(first.sum())
    if n_first_rows == core_A.shape[0]:
        raise InputError("model", "no second-stage row", "SMPS needs second-stage rows")
    return TwoStage(
        A=core_A, row_names=all_names, row_sense=row_sense, rhs=rhs,
        n_first_rows=n_first_rows, col_names=cols, n_first=n1, cost=cost,
        offset=float(p @ compiled.offset), col_lo=lo, col_hi=hi,
        integer=np.asarray(compiled.columns.integer, bool), probabilities=p,
        scenario_names=tuple(_unique_scenarios(compiled.names)), random_rows=random_rows,
        random_costs=random_costs,
    )


def _unique_scenarios(names: Sequence[str]) -> list[str]:
    out: list[str] = []
    for k, name in enumerate(names):
        clean = _clean(str(name)) or f"S{k}"
        out.append(clean if clean not in out and clean != "ROOT" else f"{clean}_{k}")
    return out


def _row_bounds(sense: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo = np.where(sense == 1, -np.inf, rhs)
    hi = np.where(sense == -1, np.inf, rhs)
    return lo, hi


def write_smps(compiled: CompiledScenarios, stem: str | Path,
               comments: Sequence[str] = ()) -> tuple[Path, Path, Path]:
    """Write the two-stage problem as ``STEM.cor``, ``STEM.tim`` and ``STEM.sto`` (SMPS,
    ``SCENARIOS DISCRETE``, minimisation form); returns their paths.

    The name of the problem in the files is the stem's file name.
    """
    return _write_smps(split_stages(compiled), compiled, Path(stem), comments)


def _write_smps(two: TwoStage, compiled: CompiledScenarios, stem: Path,
                comments: Sequence[str]) -> tuple[Path, Path, Path]:
    name = _clean(stem.name) or "stochplan"
    cor, tim, sto = (stem.with_name(stem.name + suffix) for suffix in SMPS_SUFFIXES)
    lo, hi = _row_bounds(two.row_sense, two.rhs[0])
    write_mps(cor, name=name, A=two.A, cost=two.cost, col_lo=two.col_lo, col_hi=two.col_hi,
              row_lo=lo, row_hi=hi, integer=two.integer, col_names=two.col_names,
              row_names=two.row_names, offset=two.offset, comments=comments)
    first_row = two.row_names[0] if two.n_first_rows else OBJ
    with open(tim, "w", encoding="ascii") as out:
        out.write(_comments(comments))
        out.write(f"TIME          {name}\nPERIODS       IMPLICIT\n")
        out.write(f"    {two.col_names[0]}  {first_row}  {STAGES[0]}\n")
        out.write(f"    {two.col_names[two.n_first]}  {two.row_names[two.n_first_rows]}  "
                  f"{STAGES[1]}\n")
        out.write("ENDATA\n")
    with open(sto, "w", encoding="ascii") as out:
        out.write(_comments(comments))
        out.write(f"STOCH         {name}\nSCENARIOS     DISCRETE\n")
        for s, scen in enumerate(two.scenario_names):
            out.write(f" SC {scen}  ROOT  {_num(two.probabilities[s])}  {STAGES[1]}\n")
            for i in two.random_rows:
                out.write(f"    {RHS}  {two.row_names[i]}  {_num(two.rhs[s, i])}\n")
            for j in two.random_costs:
                out.write(f"    {two.col_names[j]}  {OBJ}  {_num(compiled.cost[s, j])}\n")
        out.write("ENDATA\n")
    return cor, tim, sto


# ----------------------------------------------------------------------------------------------
# One entry point


def smps_stem(path: str | Path, name: str) -> Path:
    """Where :func:`write_model` puts the SMPS files for ``--out PATH``: in PATH when it is
    a folder (as ``PATH/NAME.cor`` ...), else next to PATH without its SMPS suffix."""
    path = Path(path)
    if path.is_dir():
        return path / (re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "stochplan")
    return path.with_suffix("") if path.suffix in SMPS_SUFFIXES else path


def write_model(compiled: CompiledScenarios, path: str | Path, format: str, name: str = "model",
                comments: Sequence[str] = ()) -> Written:
    """Write ``compiled`` as ``format`` (``mps`` or ``lp``: the extensive form in one file;
    ``smps``: core, time and stoch files, see :func:`smps_stem` for where) and say what was
    written."""
    if format not in FORMATS:
        raise InputError("format", format, f"must be one of {', '.join(FORMATS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    S = len(compiled.names)
    notes = [*comments, _sense_note(compiled.sense)]
    if format == "smps":
        two = split_stages(compiled)
        paths = _write_smps(two, compiled, smps_stem(path, name), notes)
        return Written("smps", paths, int(two.A.shape[0]), int(two.A.shape[1]),
                       int(two.integer.sum()), S, compiled.sense)
    writer = write_extensive_form_mps if format == "mps" else write_extensive_form_lp
    rows, cols = writer(compiled, path, _clean(name) or "EF", notes)
    integers = int(compiled.columns.integer[:compiled.n_first].sum()
                   + S * compiled.columns.integer[compiled.n_first:].sum())
    return Written(format, (path,), rows, cols, integers, S, compiled.sense)


def _sense_note(sense: int) -> str:
    if sense == 1:
        return "minimisation, as stochplan solves it: the optimal objective is stochplan's"
    return ("stochplan maximises this model: written as minimisation of minus its objective, "
            "so the optimal objective here is minus stochplan's")
