"""Instance data: the built-in instances shipped with the package, and users' own folders.

An instance is a folder holding ``instance.toml`` (whose ``family`` key names the model family)
and the data files it names. ``load_instance("electronics")`` loads a built-in one;
``load_instance("path/to/folder")`` (or the path of its ``instance.toml``) loads a user's.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from stochplan.data.aggregate import AggregateInstance, ModelOptions, load_aggregate, read_toml
from stochplan.errors import InputError

__all__ = [
    "AggregateInstance",
    "ModelOptions",
    "builtin_instances",
    "load_instance",
    "resolve_instance",
]

_LOADERS = {"aggregate": load_aggregate}


def _builtin_root() -> Path:
    return Path(str(resources.files("stochplan.data") / "instances"))


def builtin_instances() -> dict[str, str]:
    """Names of the built-in instances with their one-line descriptions."""
    out = {}
    for folder in sorted(_builtin_root().iterdir()):
        toml_path = folder / "instance.toml"
        if toml_path.is_file():
            meta = read_toml(toml_path)
            out[folder.name] = f"[{meta.get('family', '?')}] {meta.get('description', '')}"
    return out


def resolve_instance(name_or_path: str | Path) -> Path:
    """The ``instance.toml`` of a built-in instance name, an instance folder or a TOML path."""
    text = str(name_or_path)
    builtin = _builtin_root() / text / "instance.toml"
    if "/" not in text and "\\" not in text and builtin.is_file():
        return builtin
    path = Path(text).expanduser()
    if path.is_dir():
        path = path / "instance.toml"
    if path.is_file():
        return path
    known = ", ".join(builtin_instances())
    raise InputError(
        "instance", text, f"no such built-in instance or instance folder (built-in: {known})"
    )


def load_instance(name_or_path: str | Path) -> AggregateInstance:
    """Load and validate an instance by built-in name or path."""
    toml_path = resolve_instance(name_or_path)
    meta = read_toml(toml_path)
    family = meta.get("family")
    if family not in _LOADERS:
        raise InputError("family", family, f"unknown model family (known: {', '.join(_LOADERS)})", toml_path)
    return _LOADERS[family](toml_path.parent, meta, toml_path)
