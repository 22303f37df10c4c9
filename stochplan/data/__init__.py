"""Instance data: the built-in instances every family ships, and users' own folders.

An instance is a folder holding ``instance.toml`` (whose ``family`` key names the model family)
and the data files it names. ``load_instance("electronics")`` loads a built-in one;
``load_instance("path/to/folder")`` (or the path of its ``instance.toml``) loads a user's. The
family named in the file reads the rest (:meth:`stochplan.family.Family.load`).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stochplan.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["KNOWN_IDS_SHOWN", "MAX_VALUE", "Table", "builtin_instances", "check_magnitude",
           "instance_family", "instance_files", "load_instance", "plain", "read_csv",
           "read_toml", "resolve_instance"]

#: The largest magnitude any number of instance data may have: costs ($), demands, capacities,
#: quantities and times. HiGHS treats 1e20 as infinite and loses accuracy well before it (its
#: tolerances are absolute, near 1e-7); 1e9 leaves room for sums over products, weeks and
#: thousands of scenarios, and for Poisson draws (numpy refuses means above about 9e18).
#: Every family's loader checks its numbers against it, naming the field, value and file.
MAX_VALUE = 1e9


def check_magnitude(name: str, value: float, source: str | Path | None) -> float:
    """``value`` if its magnitude is at most :data:`MAX_VALUE`, else an :class:`InputError`
    naming the field, the value and the file."""
    if abs(value) > MAX_VALUE:
        raise InputError(name, float(value), "is beyond the supported range: numbers of "
                         f"instance data must be at most {MAX_VALUE:g} in magnitude (HiGHS "
                         "cannot solve reliably with larger coefficients)", source)
    return value


def instance_files(folder: Path, meta: dict[str, Any], toml_path: Path,
                   top_keys: Sequence[str], files: Mapping[str, str | None]) -> dict[str, Path]:
    """The data files an ``instance.toml`` names, checked: its top-level keys are among
    ``top_keys``, its ``[files]`` table renames only tables of ``files`` (table -> default
    file name; None: an optional table), and every file exists. Returns table -> path.

    Raises
    ------
    InputError
        An unknown key or table, a ``files`` that is not a table, a missing file: one line
        naming the key, the value and ``toml_path``.
    """
    for key in meta:
        if key not in top_keys:
            raise InputError(key, meta[key], f"unknown key (known: {', '.join(top_keys)})",
                             toml_path)
    files_meta = meta.get("files", {})
    if not isinstance(files_meta, dict):
        raise InputError("files", files_meta, "must be a table of file names", toml_path)
    for key in files_meta:
        if key not in files:
            raise InputError(f"files.{key}", files_meta[key],
                             f"unknown table (known: {', '.join(files)})", toml_path)
    paths: dict[str, Path] = {}
    for key, default in files.items():
        name = files_meta.get(key, default)
        if name is None:
            continue
        path = folder / str(name)
        if not path.is_file():
            raise InputError(f"files.{key}", path.name, "file not found", toml_path)
        paths[key] = path
    return paths


def read_csv(path: Path, text: bool = True) -> pd.DataFrame:
    """A CSV of instance data (every cell as text when ``text``), its column names stripped.

    Raises
    ------
    InputError
        The file is not a readable CSV: one line naming it.
    """
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype=str if text else None, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError("file", path.name, f"not a readable CSV ({err})", path) from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


#: Ids listed at most by an "unknown id" message (:meth:`Table.lookup`), so that it stays one
#: readable line.
KNOWN_IDS_SHOWN = 12


class Table:
    """One CSV of an instance, its columns checked as it is read.

    ``columns`` maps the required columns to their kind: ``"int"`` (whole numbers, ids),
    ``"num"`` (finite numbers >= 0), ``"real"`` (finite numbers, coordinates), ``"flag"`` (0
    or 1), ``"rate"`` (a probability in [0, 1]) or ``"str"`` (non-empty text). Other columns
    are kept but not checked. Every refusal is an :class:`~stochplan.errors.InputError` naming
    the column, the row as a spreadsheet shows it (the header is row 1), the value and the
    file.

    Examples
    --------
    >>> machines = Table(path, {"id": "int", "name": "str", "available_hours": "num"})
    >>> ids = machines.ids("id")                  # unique, or the row given twice is named
    >>> hours = machines.col("available_hours")   # floats, each checked
    """

    def __init__(self, path: Path, columns: Mapping[str, str]) -> None:
        self.path = path
        df = read_csv(path)
        for col in columns:
            if col not in df.columns:
                raise InputError("column", col, f"missing (columns found: "
                                 f"{', '.join(df.columns)})", path)
        self.df = df
        self._seen: set[tuple[Any, ...]] = set()
        self.values: dict[str, list[Any]] = {}
        for col, kind in columns.items():
            self.values[col] = [self._parse(col, kind, row, text)
                                for row, text in enumerate(df[col].astype(str))]

    def _parse(self, col: str, kind: str, row: int, text: str) -> Any:
        text = text.strip()
        where = f"{col} (row {row + 2})"
        if kind == "str":
            if not text:
                raise InputError(where, text, "empty", self.path)
            return text
        try:
            value = float(text)
        except ValueError:
            raise InputError(where, text, "not a number", self.path) from None
        if not math.isfinite(value):
            raise InputError(where, text, "not a finite number", self.path)
        if kind == "int":
            if value != int(value):
                raise InputError(where, text, "must be a whole number", self.path)
            return int(value)
        if kind == "flag" and value not in (0.0, 1.0):
            raise InputError(where, plain(value), "must be 0 or 1", self.path)
        if kind == "rate" and not 0.0 <= value <= 1.0:
            raise InputError(where, plain(value), "must be a probability in [0, 1]", self.path)
        if kind == "num" and value < 0:
            raise InputError(where, plain(value), "must be non-negative", self.path)
        check_magnitude(where, plain(value), self.path)
        return value

    def raw(self, col: str, row: int) -> str:
        """The cell as written in the file."""
        return str(self.df[col].iloc[row])

    def col(self, name: str) -> list[Any]:
        """The checked values of a column, in row order."""
        return self.values[name]

    def array(self, *names: str) -> np.ndarray:
        """The named columns as an (n, len(names)) float array."""
        import numpy as np

        return np.array([self.values[n] for n in names], dtype=float).T.reshape(
            len(self.df), len(names))

    def ids(self, name: str) -> list[Any]:
        """The column of ids, checked to be unique."""
        ids = self.values[name]
        seen: set[Any] = set()
        for row, x in enumerate(ids):
            if x in seen:
                raise InputError(f"{name} (row {row + 2})", x, "appears more than once",
                                 self.path)
            seen.add(x)
        return list(ids)

    def rows(self, *names: str) -> list[tuple[int, tuple[Any, ...]]]:
        """(row, values of the named columns) for every row."""
        return [(row, values) for row, values in
                enumerate(zip(*(self.values[n] for n in names)))]

    def lookup(self, col: str, row: int, value: Any, positions: Mapping[Any, int],
               what: str) -> int:
        """The position of a referenced id; an unknown one names the column, row and file,
        and the known ids (the first :data:`KNOWN_IDS_SHOWN` of them)."""
        if value not in positions:
            known = [str(x) for x in positions]
            shown = ", ".join(known[:KNOWN_IDS_SHOWN])
            if len(known) > KNOWN_IDS_SHOWN:
                shown += f", ... ({len(known)} in all)"
            raise InputError(f"{col} (row {row + 2})", value, f"unknown {what} "
                             f"(known ids: {shown})", self.path)
        return positions[value]

    def once(self, row: int, key: tuple[Any, ...], cols: str, value: Any) -> None:
        """Refuse a second row for the same key."""
        if key in self._seen:
            raise InputError(f"{cols} (row {row + 2})", value, "given twice", self.path)
        self._seen.add(key)


def plain(value: Any) -> Any:
    """A value as a message shows it: a number as a Python int when whole (-4.0 and
    ``np.int64(-4)`` as -4), else as a float (2.5); anything else unchanged."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return value
    return int(f) if f.is_integer() else f


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a syntax error names the file and the line."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise InputError("file", path.name, f"malformed TOML ({err})", path) from None


def _builtin_folders() -> dict[str, Path]:
    """Built-in instance name -> folder, over every family's instances folder."""
    import importlib

    from stochplan.family import family_names, get_family

    out: dict[str, Path] = {}
    for name in family_names():
        try:
            family = get_family(name)
        except InputError:
            continue  # a broken plug-in does not hide the other families' instances
        if family.instances_folder is None:
            continue
        module_file = importlib.import_module(type(family).__module__).__file__
        root = Path(str(module_file)).parent / family.instances_folder
        if root.is_dir():
            for folder in sorted(root.iterdir()):
                if (folder / "instance.toml").is_file():
                    out.setdefault(folder.name, folder)
    return out


def builtin_instances() -> dict[str, str]:
    """Names of the built-in instances with their one-line descriptions."""
    out = {}
    for name, folder in _builtin_folders().items():
        meta = read_toml(folder / "instance.toml")
        out[name] = f"[{meta.get('family', '?')}] {meta.get('description', '')}"
    return out


def resolve_instance(name_or_path: str | Path) -> Path:
    """The ``instance.toml`` of a built-in instance name, an instance folder or a TOML path."""
    text = str(name_or_path)
    if "/" not in text and "\\" not in text:
        builtin = _builtin_folders().get(text)
        if builtin is not None:
            return builtin / "instance.toml"
    path = Path(text).expanduser()
    if path.is_dir():
        path = path / "instance.toml"
    if path.is_file():
        return path
    known = ", ".join(builtin_instances())
    raise InputError(
        "instance", text, f"no such built-in instance or instance folder (built-in: {known})"
    )


def instance_family(name_or_path: str | Path) -> str:
    """The family an instance's ``instance.toml`` names (checked against the registry)."""
    from stochplan.family import get_family

    toml_path = resolve_instance(name_or_path)
    family = read_toml(toml_path).get("family")
    if not isinstance(family, str):
        raise InputError("family", family, "instance.toml must name its model family", toml_path)
    try:
        get_family(family)
    except InputError as err:
        raise InputError(err.field, err.value, err.problem, toml_path) from None
    return family


def load_instance(name_or_path: str | Path) -> Any:
    """Load and validate an instance by built-in name or path, with its family's loader."""
    from stochplan.family import get_family

    toml_path = resolve_instance(name_or_path)
    meta = read_toml(toml_path)
    family = get_family(instance_family(toml_path))
    return family.load(toml_path.parent, meta, toml_path)
