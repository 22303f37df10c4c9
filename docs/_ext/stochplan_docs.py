"""Pages of the documentation that are generated from the package, so they cannot drift.

At the start of every build (``builder-inited``) this writes reStructuredText into
``docs/_generated/`` (included by the hand-written pages) and ``docs/families/`` (one page per
registered model family):

- the command reference, from the ``stochplan`` argument parser;
- the configuration reference, from :func:`stochplan.config.config_schema`;
- the results-database columns, from a database that :class:`stochplan.store.ResultsStore`
  creates (``PRAGMA table_info``);
- the family pages, from the registry (:func:`stochplan.family.family_names`): each family's
  module docstrings (formulation, data format, KPIs), its options and built-in instances.

Files are rewritten only when their text changes, so an unchanged build stays incremental.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[1]
GENERATED = DOCS / "_generated"
FAMILIES = DOCS / "families"

#: Submodules of a family package shown on its page, in this order, with their headings.
FAMILY_PARTS = (("model", "Formulation"), ("data", "Data format"), ("kpis", "KPIs"))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _heading(text: str, char: str) -> str:
    return f"{text}\n{char * len(text)}\n\n"


def _literal(text: str) -> str:
    body = "\n".join(f"   {line}" if line.strip() else "" for line in text.rstrip().splitlines())
    return f"::\n\n{body}\n\n"


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {_cell(row[0]) or ' '}")
        lines.extend(f"     - {_cell(c) or ' '}" for c in row[1:])
    return "\n".join(lines) + "\n\n"


# ----------------------------------------------------------------------------------------------
# Commands


def cli_reference() -> str:
    """Every ``stochplan`` command: its one-line help and its full ``--help`` text."""
    import os

    from stochplan.cli import parser

    os.environ["COLUMNS"] = "96"  # argparse wraps its help at the terminal's width: fix it
    top = parser()
    out = [_literal(top.format_help())]
    sub = next(a for a in top._actions if a.__class__.__name__ == "_SubParsersAction")
    helps = {a.dest: a.help for a in sub._choices_actions}
    seen: set[int] = set()
    for name, command in sub.choices.items():
        if id(command) in seen:
            continue  # an alias
        seen.add(id(command))
        out.append(_heading(f"stochplan {name}", "~"))
        if helps.get(name):
            out.append(f"{_cell(helps[name])[0].upper()}{_cell(helps[name])[1:]}.\n\n")
        out.append(_literal(command.format_help()))
    return "".join(out)


# ----------------------------------------------------------------------------------------------
# Configuration


def _type(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in prop:
        return "table"
    if "enum" in prop:
        return " | ".join(json.dumps(v) for v in prop["enum"])
    if "const" in prop:
        return json.dumps(prop["const"])
    if "anyOf" in prop:
        return " or ".join(_type(p, defs) for p in prop["anyOf"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"array of {_type(prop.get('items', {}), defs)}"
    return {"null": "none", "number": "float", "boolean": "bool", "string": "str",
            "integer": "int"}.get(kind, kind)


def _range(prop: dict[str, Any]) -> str:
    parts = []
    for p in [prop, *prop.get("anyOf", []), prop.get("items", {})]:
        if "minimum" in p:
            parts.append(f">= {p['minimum']:g}")
        if "exclusiveMinimum" in p:
            parts.append(f"> {p['exclusiveMinimum']:g}")
        if "maximum" in p:
            parts.append(f"<= {p['maximum']:g}")
        if "exclusiveMaximum" in p:
            parts.append(f"< {p['exclusiveMaximum']:g}")
    return ", ".join(parts)


def _default(prop: dict[str, Any]) -> str:
    if "default" not in prop:
        return "(required)"
    return "``" + json.dumps(prop["default"]) + "``"


def _rows(properties: dict[str, Any], defs: dict[str, Any], prefix: str = "") -> list[list[str]]:
    rows = []
    for key, prop in properties.items():
        rows.append([f"``{prefix}{key}``", _type(prop, defs), _default(prop), _range(prop),
                     prop.get("description", "")])
    return rows


def _section_properties(schema: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    prop = schema["properties"][name]
    ref = prop.get("$ref") or next((p["$ref"] for p in prop.get("anyOf", []) if "$ref" in p), None)
    if ref is None:
        return prop.get("description", ""), {}
    target = schema["$defs"][ref.rsplit("/", 1)[-1]]
    doc = (target.get("description") or "").split("\n\n")[0]
    return doc, target.get("properties", {})


def config_reference() -> str:
    """Every key of a run configuration file: type, default, range, meaning; ``[model]`` per
    family."""
    from stochplan.config import config_schema
    from stochplan.family import family_names, get_family

    names = family_names()
    schema = config_schema(get_family(names[0]))
    defs = schema.get("$defs", {})
    out = [_heading("Top-level keys", "~")]
    top = {k: v for k, v in schema["properties"].items() if "$ref" not in v and k != "model"}
    out.append(_table(["key", "type", "default", "range", "meaning"], _rows(top, defs)))
    for name in schema["properties"]:
        if name in top or name == "model":
            continue
        doc, props = _section_properties(schema, name)
        out.append(_heading(f"[{name}]", "~"))
        if doc:
            out.append(_cell(doc) + "\n\n")
        out.append(_table(["key", "type", "default", "range", "meaning"], _rows(props, defs)))
    out.append(_heading("[model]", "~"))
    out.append("The options of the instance's family; each family's are below (and on its "
               "page). An unknown key is an error.\n\n")
    for fam in names:
        fschema = config_schema(get_family(fam))
        _, props = _section_properties(fschema, "model")
        out.append(_heading(f"[model] of the {fam} family", "^"))
        out.append(_table(["key", "type", "default", "range", "meaning"],
                          _rows(props, fschema.get("$defs", {}))) if props
                   else "No options.\n\n")
    return "".join(out)


# ----------------------------------------------------------------------------------------------
# Results database


def database_reference() -> str:
    """The tables and columns of a results database, read from one the store creates."""
    from stochplan.store import SCHEMA_VERSION, ResultsStore

    out = [f"Schema version {SCHEMA_VERSION} (``PRAGMA user_version``).\n\n"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "schema.db"
        with ResultsStore(path):
            pass
        conn = sqlite3.connect(path)
        try:
            tables = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                "'sqlite_%' ORDER BY rowid")]
            for table in tables:
                out.append(_heading(f"``{table}``", "~"))
                rows = []
                for _cid, col, kind, notnull, default, pk in conn.execute(
                        f'PRAGMA table_info("{table}")'):
                    rows.append([f"``{col}``", kind, "yes" if pk else "",
                                 "no" if notnull or pk else "yes",
                                 "" if default is None else f"``{default}``"])
                out.append(_table(["column", "SQL type", "primary key", "may be NULL",
                                   "default"], rows))
                refs = list(conn.execute(f'PRAGMA foreign_key_list("{table}")'))
                if refs:
                    out.append("References: " + "; ".join(
                        f"``{r[3]}`` -> ``{r[2]}.{r[4]}``"
                        + (f" (on delete {r[6].lower()})" if r[6] != "NO ACTION" else "")
                        for r in refs) + ".\n\n")
        finally:
            conn.close()
    return "".join(out)


# ----------------------------------------------------------------------------------------------
# Families


def _family_module_names(module_name: str) -> list[tuple[str, str]]:
    """(heading, module) of the parts of a family module shown on its page."""
    module = importlib.import_module(module_name)
    parts: list[tuple[str, str]] = []
    if hasattr(module, "__path__"):
        present = {m.name for m in pkgutil.iter_modules(module.__path__)}
        parts = [(title, f"{module_name}.{sub}") for sub, title in FAMILY_PARTS
                 if sub in present]
    return parts


def family_page(name: str) -> str:
    """One family's page: what it models, formulation, data format, KPIs, options, instances."""
    from stochplan.config import config_schema
    from stochplan.data import builtin_instances, instance_family
    from stochplan.family import get_family

    family = get_family(name)
    module_name = type(family).__module__
    out = [f".. _family-{name}:\n\n", _heading(f"{name}: {family.description}".rstrip(": "), "=")]
    out.append(f".. automodule:: {module_name}\n   :no-members:\n   :no-index:\n\n")
    for title, sub in _family_module_names(module_name):
        out.append(_heading(title, "-"))
        out.append(f".. automodule:: {sub}\n   :no-members:\n   :no-index:\n\n")
    out.append(_heading("Options", "-"))
    out.append("Set in ``[model]`` of a run configuration, ``[options]`` of ``instance.toml`` "
               "or with ``--set KEY=VALUE``.\n\n")
    fschema = config_schema(family)
    _, props = _section_properties(fschema, "model")
    out.append(_table(["key", "type", "default", "range", "meaning"],
                      _rows(props, fschema.get("$defs", {}))) if props else "No options.\n\n")
    out.append(_heading("Built-in instances", "-"))
    mine = [(inst, text) for inst, text in builtin_instances().items()
            if instance_family(inst) == name]
    out.append("".join(f"- ``{inst}``: {_cell(text)}\n" for inst, text in mine) + "\n"
               if mine else "None: give an instance folder.\n\n")
    out.append(f"First-stage variables: {', '.join(f'``{v}``' for v in family.first_stage)}; "
               f"plan index: {', '.join(f'``{i}``' for i in family.index_names) or 'none'}.\n")
    return "".join(out)


def generate(app: Any = None) -> None:
    """Write every generated file (the ``builder-inited`` handler)."""
    from stochplan.family import family_names

    _write(GENERATED / "cli.rst", cli_reference())
    _write(GENERATED / "configuration.rst", config_reference())
    _write(GENERATED / "database.rst", database_reference())
    names = family_names()
    keep = {f"{n}.rst" for n in names}
    if FAMILIES.exists():
        for old in FAMILIES.glob("*.rst"):
            if old.name not in keep:
                old.unlink()  # a family no longer registered
    for name in names:
        _write(FAMILIES / f"{name}.rst", family_page(name))


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", generate)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
