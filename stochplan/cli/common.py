"""What the command groups share: the common options, the progress display, JSON output,
captured library output and the results-database checks.

Light to import: nothing here loads pandas, Pyomo or mpi-sppy.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Self

from stochplan.errors import InputError

log = logging.getLogger("stochplan")

#: Exit statuses: a user mistake, no optimal plan, interrupted.
EXIT_USAGE = 2
EXIT_SOLVE = 3
EXIT_INTERRUPTED = 130

#: Help of ``--scenarios``: the whole spec vocabulary of :mod:`stochplan.scenarios`.
SPEC_HELP = "named (alias three-point), sample:N, poisson:N, qmc:N or file:PATH"


# ----------------------------------------------------------------------------------------------
# Options


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--set KEY=VALUE`` and ``--relax``: what builds a model."""
    parser.add_argument("--config", metavar="FILE.toml", help="run configuration file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a model option, as in [model] of --config (repeatable; VALUE is "
                        "read as a TOML value, else as a string), e.g. --set "
                        "lost_sales_penalty=500")
    parser.add_argument("--relax", action="store_true",
                        help="solve the LP relaxation (--set integer=false)")


def add_scenario_options(parser: argparse.ArgumentParser, default: str | None = None,
                         spec_help: str = "", seed_help: str = "base seed of the scenario "
                         "draws") -> None:
    """``--scenarios SPEC`` (the whole vocabulary) and ``--seed S``."""
    parser.add_argument("--scenarios", metavar="SPEC", default=default,
                        help=spec_help or f"{SPEC_HELP} (default: {default or 'named'})")
    parser.add_argument("--seed", type=int, metavar="S", help=seed_help)


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--db``, ``--json`` and ``--quiet``."""
    add_db_option(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress display")


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH", help="results database (default ./stochplan.db)")


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` arguments as a dict; VALUE is a TOML value (``500``, ``false``,
    ``1e-4``, ``"text"``) or else the text itself."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError("--set", item, "expected KEY=VALUE, e.g. --set integer=false")
        try:
            out[key] = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = text
    return out


def model_overrides(args: argparse.Namespace, instance: str) -> dict[str, Any] | None:
    """The model options of ``--set`` and ``--relax``, checked against the options of
    ``instance``'s family; None when neither was given.

    Raises
    ------
    InputError
        Naming ``--set KEY``, the value and the problem (or ``--relax``).
    """
    values = parse_sets(args.set)
    relax = getattr(args, "relax", False)
    if not values and not relax:
        return None
    from stochplan.data import instance_family
    from stochplan.family import get_family

    family = get_family(instance_family(instance))
    if relax:
        if "integer" not in family.options_type.model_fields:
            raise InputError("--relax", True, f"the {family.name} family has no integer option "
                             "to relax")
        if values.get("integer", False) is not False:
            given = str(values["integer"]).lower()  # as written: --set integer=true
            raise InputError("--relax", True, f"contradicts --set integer={given}")
        values["integer"] = False
    for key, value in values.items():
        try:
            family.options({key: value}, section="")
        except InputError as err:
            raise InputError(f"--set {key}", value, err.problem) from None
    return values


# ----------------------------------------------------------------------------------------------
# Output


def print_json(payload: Any) -> None:
    """Print one JSON object on stdout (inf and nan as strings)."""
    print(json.dumps(json_safe(payload)))


def json_safe(value: Any) -> Any:
    """JSON has no inf/nan: write them as the strings "inf", "-inf", "nan"."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def money(x: float) -> str:
    return f"${x:,.2f}" if math.isfinite(x) else ("+inf" if x > 0 else "nan")


@contextlib.contextmanager
def captured_stdout() -> Iterator[None]:
    """Keep what libraries print (mpi-sppy prints on import) out of our stdout."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield
    if buffer.getvalue().strip():
        log.debug("library output: %s", buffer.getvalue().strip())


class Progress:
    """A one-line elapsed-time display on stderr, shown only on a terminal."""

    def __init__(self, enabled: bool = True, stream: Any = None):
        self.stream = stream or sys.stderr
        self.enabled = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._phase = "start"
        self._start = time.perf_counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def phase(self, name: str) -> None:
        self._phase = name
        log.info("phase: %s", name)

    def counter(self) -> Callable[[str, int, int], None]:
        """A ``progress(phase, done, total)`` callback showing ``phase done/total``."""
        return lambda phase, done, total: self.phase(f"{phase} {done}/{total}")

    def __enter__(self) -> Self:
        if self.enabled:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self.stream.write("\r\033[K")
            self.stream.flush()

    def _run(self) -> None:
        frames = "|/-\\"
        i = 0
        while not self._stop.wait(0.2):
            elapsed = time.perf_counter() - self._start
            if elapsed >= 1.0:
                self.stream.write(f"\r\033[K{frames[i % 4]} {self._phase} ... {elapsed:5.1f} s")
                self.stream.flush()
            i += 1


# ----------------------------------------------------------------------------------------------
# The results database


def check_db(value: str | None, must_exist: bool = False) -> Path:
    """The results database ``--db`` names, checked before any work: a bad URL, or an
    existing file that is not a stochplan database, fails here; with ``must_exist`` so does
    a missing one."""
    from stochplan.store import ResultsStore, resolve_db

    db = resolve_db(value)
    if db.exists():
        ResultsStore(db).close()
    elif must_exist and str(db) != ":memory:":
        raise InputError("--db", str(db), "no results database there (`stochplan solve` "
                         "creates it)")
    return db


def open_store(value: str | None) -> Any:
    """The existing results database ``--db`` names, open (a ``ResultsStore``)."""
    from stochplan.store import ResultsStore

    return ResultsStore(check_db(value, must_exist=True))


def save_run(record: Any, db: Path) -> tuple[int, str]:
    """Store a run record; its id and the database's path."""
    from stochplan.store import ResultsStore

    with ResultsStore(db) as store:
        return store.save_run(record), str(store.path)
