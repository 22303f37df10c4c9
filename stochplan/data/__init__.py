"""Instance data: the built-in instances every family ships, and users' own folders.

An instance is a folder holding ``instance.toml`` (whose ``family`` key names the model family)
and the data files it names. ``load_instance("electronics")`` loads a built-in one;
``load_instance("path/to/folder")`` (or the path of its ``instance.toml``) loads a user's. The
family named in the file reads the rest (:meth:`stochplan.family.Family.load`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stochplan.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MAX_VALUE", "builtin_instances", "check_magnitude", "instance_family",
           "instance_files", "load_instance", "read_csv", "read_toml", "resolve_instance"]

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
