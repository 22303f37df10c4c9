"""The ``generate`` command: a family's instance generator writing into a database.

::

    stochplan generate FAMILY --seed S --db URL [--params FILE.toml] [--PARAM VALUE ...]

FAMILY names a model family with a generator (:meth:`stochplan.family.Family.generator_type`);
each of its parameters is a ``--flag`` (``sites`` -> ``--sites N``), over the values of
``--params`` (a TOML file), over the generator's documented defaults. The same family,
parameters and seed write the same tables. URL is any SQLAlchemy URL, or a path (an SQLite
file); the tables are written in one transaction.
"""

from __future__ import annotations

import argparse
import typing
from typing import Any

from stochplan.errors import InputError


def add_commands(sub: Any) -> None:
    gen = sub.add_parser(
        "generate", help="write a generated instance of a family into a database",
        usage="stochplan generate FAMILY --db URL [--seed S] [--params FILE.toml] "
        "[--PARAM VALUE ...] [--help-params]",
        description="Run FAMILY's instance generator with a seed and write its tables into "
        "a database (one transaction). Options after FAMILY: --db URL (a SQLAlchemy URL or an "
        "SQLite file path, required), --seed S (default 0), --params FILE.toml, and one "
        "--PARAM VALUE per generator parameter (`stochplan generate FAMILY --help-params` "
        "lists them with their defaults).")
    gen.add_argument("family", metavar="FAMILY", help="a model family with a generator")
    gen.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    gen.set_defaults(handler=generate_command)


class _Raise(argparse.ArgumentParser):
    """Errors as :class:`InputError` (one line, exit 2)."""

    argv: list[str] = []

    def error(self, message: str) -> typing.NoReturn:
        raise InputError("generate", " ".join(self.argv), message)


def _param_parser(family: str, fields: dict[str, Any]) -> _Raise:
    """The options after FAMILY: ``--db``, ``--seed``, ``--params``, ``--help-params`` and
    ``--name VALUE`` for each generator parameter (a tuple written comma-separated)."""
    p = _Raise(prog=f"stochplan generate {family}", add_help=False)
    p.add_argument("--db", metavar="URL", help="database to write (SQLAlchemy URL or path)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generator (default 0)")
    p.add_argument("--params", metavar="FILE.toml", help="generator parameters (TOML)")
    p.add_argument("--help-params", action="store_true", help="this list")
    for name, info in fields.items():
        flag = "--" + name.replace("_", "-")
        p.add_argument(flag, dest="param_" + name, metavar=name.upper(),
                       help=f"{info.description or name} (default {info.default!r})")
    return p


def _convert(value: str, annotation: Any) -> Any:
    """A flag's text as the parameter's type (pydantic checks the result)."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        inner = (typing.get_args(annotation) or (str,))[0]
        return tuple(_convert(v.strip(), inner) for v in value.split(","))
    if annotation is bool:
        return value.strip().lower() in ("1", "true", "yes", "on")
    if annotation in (int, float):
        try:
            return annotation(value)
        except ValueError:
            return value  # pydantic names it
    return value


def generate_command(args: argparse.Namespace) -> int:
    from stochplan.family import get_family, validate_options

    family = get_family(args.family)
    params_type = family.generator_type()
    if params_type is None:
        raise InputError("FAMILY", args.family, "this family has no instance generator")
    fields = dict(params_type.model_fields)
    sub = _param_parser(args.family, fields)
    sub.argv = list(args.rest)
    opts = sub.parse_args([r for r in args.rest if r != "--"])
    if opts.help_params:
        sub.print_help()
        return 0
    if opts.db is None:
        raise InputError("--db", None, "required: the database to write (URL or path)")
    overrides = {k.removeprefix("param_"): _convert(v, fields[k.removeprefix("param_")].annotation)
                 for k, v in vars(opts).items() if k.startswith("param_") and v is not None}
    values: dict[str, Any] = {}
    if opts.params is not None:
        from pathlib import Path

        from stochplan.data import read_toml

        path = Path(opts.params)
        if not path.is_file():
            raise InputError("--params", opts.params, "file not found")
        raw = read_toml(path)
        values = dict(raw.get("generator", raw))
        base = validate_options(params_type, values, "generator", path)
        params = validate_options(params_type, overrides, "generator", "the command line",
                                  base=base)
    else:
        params = validate_options(params_type, overrides, "generator", "the command line")
    if opts.seed < 0:
        raise InputError("--seed", opts.seed, "must be a non-negative integer")
    print(family.generate(params, opts.seed, opts.db))
    return 0
