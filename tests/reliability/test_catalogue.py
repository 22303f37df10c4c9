"""The catalogue of bad inputs (``tests/reliability/cases/*.toml``), each run through the real
``stochplan`` command (``python -m stochplan``'s code in a process of its own, forked from a
:class:`harness.ForkServer` that has done the imports once).

Every case states its input (instance-file edits, a run configuration, a module, the command
line), the exit status and the words the one-line message must hold (field, value, file).
After each case the results database is checked: integrity, the row counts of every table
unchanged, no partial run. ``README.md`` beside this file describes the format.
"""

from __future__ import annotations

import functools
import os
import shutil
import sqlite3
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from harness import ForkServer, db_state

from stochplan.models import BUILTIN

CASES = Path(__file__).parent / "cases"
#: Case files that are not a family's: inputs that do not depend on the family.
GENERIC = "generic"
#: The databases a case can start from (``db = ...``), each holding one stored run, which
#: must be intact afterwards (one run more on exit 0).
SEEDED = ("seeded", "multisite")
KINDS = ("instance", "config", "cli", "db", "module", "numeric")
_KEYS = {"id", "kind", "instance", "edits", "config", "module", "args", "db", "exit", "expect",
         "stdout", "per_family", "note", "add_db"}


@functools.cache
def _builtin_folder(name: str) -> Path:
    from stochplan.data import resolve_instance

    return resolve_instance(name).parent


def _default_instance(family: str) -> str:
    from stochplan.family import get_family

    return get_family(family).default_instance


def load_cases() -> list[Any]:
    """Every case of every file, as pytest params with ids ``file:case[:family]``."""
    out = []
    for path in sorted(CASES.glob("*.toml")):
        data = tomllib.loads(path.read_text())
        defaults = data.get("defaults", {})
        for raw in data.get("case", []):
            case = {**defaults, **raw}
            unknown = set(case) - _KEYS
            assert not unknown, f"{path.name}: case {case.get('id')}: unknown keys {unknown}"
            assert case.get("kind") in KINDS, f"{path.name}: {case.get('id')}: kind"
            if case.get("per_family"):
                for family in BUILTIN:
                    one = {**case, "instance": _default_instance(family), "family": family}
                    out.append(pytest.param(one, id=f"{path.stem}:{case['id']}:{family}"))
            else:
                case["family"] = path.stem
                out.append(pytest.param(case, id=f"{path.stem}:{case['id']}"))
    return out


ALL_CASES = load_cases()


def test_every_builtin_family_has_a_case_file() -> None:
    """A built-in family without its own bad inputs fails here: add cases/<family>.toml."""
    missing = [name for name in BUILTIN if not (CASES / f"{name}.toml").is_file()]
    assert not missing, f"no reliability cases for famil(ies) {missing}: add " + ", ".join(
        f"tests/reliability/cases/{m}.toml" for m in missing)


def test_case_ids_are_unique_and_the_catalogue_is_large() -> None:
    ids = [p.id for p in ALL_CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 150


#: The README's row label of each kind.
README_ROWS = {"instance": "instance files", "config": "run configurations",
               "cli": "command line", "db": "results databases", "module": "users' modules",
               "numeric": "numeric extremes"}


def test_the_readme_table_counts_the_catalogue() -> None:
    """The README's table of cases by kind is the catalogue's count (it cannot drift)."""
    counts = {kind: 0 for kind in KINDS}
    for param in ALL_CASES:
        counts[param.values[0]["kind"]] += 1
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table = readme[readme.index("| Catalogue cases by kind"):].split("\n\n")[0]
    shown = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
        kind = next((k for k, label in README_ROWS.items() if cells[0].startswith(label)),
                    "total" if cells[0] == "total" else None)
        assert kind is not None, f"README row {cells[0]!r} is not a kind of case"
        shown[kind] = (int(cells[1]), int(cells[2]))
    expected = {kind: (n, n) for kind, n in counts.items()}
    expected["total"] = (sum(counts.values()), sum(counts.values()))
    assert shown == expected
    families = len(BUILTIN)
    assert f"({_WORDS.get(families, str(families)).capitalize()} built-in families;" in readme


_WORDS = {3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}


@dataclass
class Prepared:
    """A case set up in its folder, with the database's state before the command."""

    case: dict[str, Any]
    folder: Path
    args: list[str]
    mode: str
    before: Any = None
    done: Any = None


def prepare(case: dict[str, Any], folder: Path, seeded: dict[str, Path]) -> Prepared:
    """Write a case's files (instance copy and edits, configuration, module, database) into
    ``folder``; the command line to run there. ``seeded``: the databases a case can start
    from, by mode (:data:`SEEDED`)."""
    instance = case.get("instance")
    if instance:
        shutil.copytree(_builtin_folder(instance), folder / "inst", dirs_exist_ok=True)
    for edit in case.get("edits", []):
        _apply(folder / "inst" / edit["file"], edit)
    if "config" in case:
        (folder / "run.toml").write_text(case["config"])
    if "module" in case:
        (folder / "usermod.py").write_text(case["module"])
    db = folder / "results.db"
    mode = case.get("db", "seeded")
    before: Any = None
    if mode in seeded:
        shutil.copy(seeded[mode], db)
        before = db_state(db)
    elif mode == "folder":
        db.mkdir()
    elif mode == "garbage":
        db.write_bytes(b"this is not a database\n" * 50)
        before = db.read_bytes()
    elif mode == "newer":
        shutil.copy(seeded["seeded"], db)
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA user_version = 99")
        before = db.read_bytes()
    else:
        assert mode == "none", f"unknown db mode {mode!r}"
    subst = {"db": "results.db", "inst": "inst", "instance": str(instance),
             "family": case["family"], "config": "run.toml"}
    args = [str(a).format(**subst) for a in case.get("args", ["solve", "inst", "--quiet"])]
    if "--db" not in args and case.get("add_db", args[0] not in ("config-schema", "schema")):
        args += ["--db", "results.db"]
    return Prepared(case, folder, args, mode, before)


@pytest.fixture(scope="session")
def catalogue_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                   seeded_db: Path, multisite_db: Path) -> Iterator[dict[str, Prepared]]:
    """Every selected case, set up and run, a few at a time. Each runs in a process of its own
    forked from a fork server that did the imports once (``harness.ForkServer``): a fresh
    interpreter per case spent 1 to 1.5 s of CPU on imports before doing almost nothing
    (the catalogue took 142 s instead of 22 s on a 2-core machine)."""
    wanted = {item.callspec.id for item in request.session.items
              if getattr(item, "originalname", "") == "test_bad_input"}
    if not wanted:
        yield {}
        return
    server = ForkServer()  # its imports overlap the setting up of the cases
    try:
        root = tmp_path_factory.mktemp("catalogue")
        prepared = {}
        for n, param in enumerate(ALL_CASES):
            if param.id in wanted:
                folder = root / f"c{n:03d}"
                folder.mkdir()
                prepared[param.id] = prepare(param.values[0], folder, dict(
                    zip(SEEDED, (seeded_db, multisite_db), strict=True)))

        def run(p: Prepared) -> None:
            p.done = server.run(p.args, p.folder)

        workers = max(2, (os.cpu_count() or 1) + 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, prepared.values()))
    finally:
        server.close()
    yield prepared


@pytest.mark.parametrize("case", ALL_CASES)
def test_bad_input(case: dict[str, Any], request: pytest.FixtureRequest,
                   catalogue_runs: dict[str, Prepared]) -> None:
    """One bad input: the right exit status, one line naming what it must, no traceback, and
    the results database as it was."""
    p = catalogue_runs[request.node.callspec.id]
    done, db = p.done, p.folder / "results.db"
    err = done.stderr
    assert "Traceback" not in err, err
    assert done.returncode == case.get("exit", 2), (done.returncode, err, done.stdout[-500:])
    last = err.strip().splitlines()[-1] if err.strip() else ""
    if done.returncode == 2:
        assert last.startswith("stochplan: error: "), err
    elif done.returncode == 3:
        assert last.startswith(("stochplan: infeasible: ", "stochplan: solve failed: ")), err
    for word in case.get("expect", []):
        assert word in last, f"{word!r} not in: {err}"
    for word in case.get("stdout", []):
        assert word in done.stdout, f"{word!r} not in stdout"

    if p.mode in SEEDED:
        after = db_state(db)
        if done.returncode == 0:
            assert after["runs"] == p.before["runs"] + 1
        else:
            assert after == p.before, "the database changed"
    elif p.mode == "folder":
        assert db.is_dir() and not any(db.iterdir())
    elif p.mode in ("garbage", "newer"):
        assert db.read_bytes() == p.before, "the file changed"
    elif done.returncode != 0:
        assert not db.exists(), "a failed command created a database"


def _apply(path: Path, edit: dict[str, Any]) -> None:
    if edit.get("delete"):
        path.unlink()
        return
    if "write" in edit:
        path.write_text(edit["write"])
        return
    text = path.read_text() if path.exists() else ""
    if "replace" in edit:
        old, new = edit["replace"]
        assert old in text, f"{path.name} has no {old!r}: the case no longer edits anything"
        text = text.replace(old, new, 1)
    if "append" in edit:
        text = text.rstrip("\r\n") + "\n" + edit["append"]
    path.write_text(text)
