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
from typing import TYPE_CHECKING, Any, Self

from stochplan.errors import InputError

if TYPE_CHECKING:
    from stochplan.store import DatabaseURL

log = logging.getLogger("stochplan")

#: Exit statuses: an internal error (a bug), a user mistake (or a run that could not be
#: stored), no optimal plan, interrupted (SIGINT), terminated (SIGTERM).
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_SOLVE = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

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


def add_risk_options(parser: argparse.ArgumentParser) -> None:
    """``--cvar ALPHA`` and ``--risk-weight LAMBDA``: the objective's risk measure."""
    parser.add_argument("--cvar", type=float, metavar="ALPHA",
                        help="minimise (1 - LAMBDA) E[cost] + LAMBDA CVaR_ALPHA(cost) of the "
                        "total cost (of the loss, minus the profit, for maximising families); "
                        "ALPHA in (0, 1), e.g. 0.95 (as [risk] measure = \"cvar\", alpha)")
    parser.add_argument("--risk-weight", type=float, metavar="LAMBDA",
                        help="weight of CVaR in [0, 1] (default 0.5; with --cvar or [risk] in "
                        "--config)")


def risk_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The ``[risk]`` overrides of ``--cvar`` and ``--risk-weight`` (for :func:`load_config`)."""
    cvar = getattr(args, "cvar", None)
    weight = getattr(args, "risk_weight", None)
    out: dict[str, Any] = {"alpha": cvar, "weight": weight}
    if cvar is not None:
        out["measure"] = "cvar"
    return out


def check_risk_flags(args: argparse.Namespace, config: Any,
                     error: InputError | None = None) -> None:
    """Name ``--cvar``/``--risk-weight`` in an error about ``risk.*`` they set, and refuse
    ``--risk-weight`` without a CVaR measure."""
    flags = {"risk.alpha": ("--cvar", getattr(args, "cvar", None)),
             "risk.weight": ("--risk-weight", getattr(args, "risk_weight", None))}
    if error is not None:
        flag, value = flags.get(error.field, (None, None))
        if flag is not None and value is not None:
            raise InputError(flag, value, error.problem) from None
        raise error
    weight = getattr(args, "risk_weight", None)
    if weight is not None and config.risk.measure != "cvar":
        raise InputError("--risk-weight", weight, "needs a risk measure: add --cvar ALPHA "
                         "(or [risk] measure = \"cvar\" in --config)")


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--db``, ``--json`` and ``--quiet``."""
    add_db_option(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress display")


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH|URL",
                        help="results database: an SQLite file (default ./stochplan.db) or a "
                             "SQLAlchemy URL such as postgresql+psycopg://user@host/db")


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


def load_instance_first(instance: str | None) -> None:
    """Load (and so check) the instance's files before anything else is read or imported, so
    a mistake in them is reported at once.

    The order also matters for speed: once Pyomo is imported, importing scipy (the run
    configuration does, for the L-shaped method's records) also imports scipy.stats, half a
    second; an instance that fails to load never gets there. The instance is cached, so the
    run does not read it again."""
    if instance is None:
        return
    from stochplan.data import instance_family
    from stochplan.family import get_family

    try:
        get_family(instance_family(instance)).resolve(instance)
    except InputError as err:
        if err.field != "family":  # a family mismatch is the configuration's to report
            raise


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
    """Dollars as every report writes them (:func:`stochplan.reports.text.money`), imported
    when first needed so that the command line starts without pandas."""
    from stochplan.reports.text import money as dollars

    return dollars(float(x))


@contextlib.contextmanager
def captured_stdout() -> Iterator[None]:
    """Keep what libraries print (mpi-sppy prints on import) out of our stdout."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield
    if buffer.getvalue().strip():
        log.debug("library output: %s", buffer.getvalue().strip())


@contextlib.contextmanager
def solving() -> Iterator[None]:
    """Around a command's solves: HiGHS made interruptible (Ctrl-C stops a running solve at
    once, :func:`stochplan.solve.solvers.interruptible`) and library output captured."""
    from stochplan.solve.solvers import patch_highs

    patch_highs()
    with captured_stdout():
        yield


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
# A user's own module (``--module``)


class UserCodeError(InputError):
    """A user's module failed: names the module, the function and the scenario; the
    exception it raised is the ``__cause__`` (``-v`` prints its traceback)."""


def import_user_module(name: str) -> Any:
    """Import ``--module NAME`` (a dotted name importable from the current folder, or the path
    of a ``.py`` file); a module that is missing, has a syntax error or raises on import is
    one :class:`UserCodeError` line."""
    import importlib
    import importlib.util
    import os

    path = Path(name)
    try:
        if name.endswith(".py"):
            if not path.is_file():
                raise InputError("--module", name, "no such file")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
            return module
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())  # as `python -m` does: modules of this folder
        return importlib.import_module(name)
    except InputError:
        raise
    except ModuleNotFoundError as err:
        if err.name and (name == err.name or name.startswith(f"{err.name}.")):
            raise InputError("--module", name, f"cannot be imported (no module {err.name!r} "
                             "here or on the Python path)") from None
        raise _user_error(name, "import", err) from err
    except SyntaxError as err:
        where = f"{err.filename}, line {err.lineno}" if err.filename else "?"
        raise UserCodeError("--module", name, f"has a syntax error ({where}: {err.msg})"
                            ) from err
    except Exception as err:
        raise _user_error(name, "import", err) from err


@contextlib.contextmanager
def user_code(module: str, function: str, scenario: str | None = None) -> Iterator[None]:
    """Turn an exception raised by a user's function into one :class:`UserCodeError` line
    naming the module, the function and the scenario."""
    try:
        yield
    except (InputError, KeyboardInterrupt):
        raise
    except Exception as err:
        raise _user_error(module, function, err, scenario) from err


def guarded_module(module: Any, name: str) -> Any:
    """A stand-in for a user's module whose scenario creators name the scenario they failed
    on (see :func:`user_code`); everything else is the module's own."""
    import types

    proxy = types.ModuleType(module.__name__)
    proxy.__dict__.update(module.__dict__)
    for fn in ("scenario_creator", "average_scenario_creator"):
        original = getattr(module, fn, None)
        if original is not None:
            setattr(proxy, fn, _guarded(original, name, fn))
    return proxy


def _guarded(function: Callable[..., Any], module: str, fn: str) -> Callable[..., Any]:
    def call(scenario_name: str, *args: Any, **kwargs: Any) -> Any:
        with user_code(module, fn, scenario_name):
            return function(scenario_name, *args, **kwargs)

    return call


def _user_error(module: str, function: str, err: BaseException,
                scenario: str | None = None) -> UserCodeError:
    what = "importing it" if function == "import" else f"its {function}"
    if scenario is not None:
        what += f" for scenario {scenario!r}"
    return UserCodeError("--module", module, f"{what} raised {type(err).__name__}: {err} "
                         "(-v shows the traceback)")


# ----------------------------------------------------------------------------------------------
# The results database


def check_db(value: str | Path | DatabaseURL | None, must_exist: bool = False,
             writable: bool = False) -> Path | DatabaseURL:
    """The results database ``--db`` names (an SQLite file or a database server's URL),
    checked before any work: a bad URL, a folder, a path that cannot be opened, a server that
    cannot be reached, or an existing database that is not a stochplan one fails here; with
    ``must_exist`` so does a missing one (a server database without the store's tables); with
    ``writable`` so does one that could not be written (read-only file or folder, write lock
    held by another process, a database user without write rights), so a long solve is not
    lost at the end. Nothing is created or changed.

    Raises
    ------
    InputError
        Naming ``--db``, the path or URL (password hidden) and the problem.
    """
    from stochplan.store import DatabaseURL, ResultsStore, resolve_db

    try:
        db = resolve_db(value)
        if isinstance(db, Path):
            if str(db) == ":memory:":
                return db
            if db.is_dir():
                raise InputError("--db", str(db), "is a folder, not a database file")
        if db.exists():  # a file, or a server database holding the store's tables
            with ResultsStore(db, lock_timeout=lock_timeout()) as store:
                if writable:
                    store.check_writable()
        elif must_exist:
            raise InputError("--db", str(db), "no results database there (`stochplan solve` "
                             "creates it)")
        elif writable:
            if isinstance(db, DatabaseURL):
                db.check_creatable()
            else:
                _check_creatable(db)
    except InputError as err:
        if err.field == "db":
            raise InputError("--db", err.value, err.problem) from None
        raise
    return db


def check_config_db(config: Any) -> Path | DatabaseURL:
    """:func:`check_db` of a run configuration's database, before solving (``writable``); a
    problem with a database named by the file's ``[output] db`` names that key and file."""
    try:
        return check_db(config.db, writable=True)
    except InputError as err:
        if err.field == "--db" and getattr(config, "db_from_file", False):
            raise InputError("output.db", err.value, err.problem, config.source) from None
        raise


def _check_creatable(db: Path) -> None:
    """A new database file could be created at ``db``: its nearest existing folder takes a
    file (made and removed again)."""
    import os
    import tempfile

    folder = db.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise InputError("--db", str(db), f"{folder} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".stochplan-probe-", dir=folder)
    except OSError as exc:
        raise InputError("--db", str(db), f"cannot create a database in {folder} "
                         f"({exc.strerror or exc}); nothing was solved") from None
    os.close(fd)
    os.unlink(probe)


def lock_timeout() -> float | None:
    """Seconds to wait for another process's write lock: ``STOCHPLAN_LOCK_TIMEOUT`` when set
    (a number), else the store's default (30)."""
    import os

    text = os.environ.get("STOCHPLAN_LOCK_TIMEOUT")
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise InputError("STOCHPLAN_LOCK_TIMEOUT", text, "must be a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise InputError("STOCHPLAN_LOCK_TIMEOUT", text, "must be a number of seconds >= 0")
    return seconds


def open_store(value: str | Path | DatabaseURL | None) -> Any:
    """The existing results database ``--db`` names, open (a ``ResultsStore``). Pass on the
    value :func:`check_db` returned, not its ``str()``, which hides a URL's password."""
    from stochplan.store import ResultsStore

    return ResultsStore(check_db(value, must_exist=True), lock_timeout=lock_timeout())


def save_run(record: Any, db: Path | DatabaseURL,
             before_commit: Callable[[int], None] | None = None) -> tuple[int, str]:
    """Store a run record in ``db`` (from :func:`check_db`); its id and the database's path
    or URL (password hidden). A run that cannot be stored is written to a recovery file, and
    the :class:`~stochplan.errors.StoreError` raised names it. ``before_commit(run_id)`` runs
    inside the store's transaction (a write-back elsewhere): if it fails, nothing is stored.
    """
    from stochplan.store import save_or_recover

    run_id, path = save_or_recover(record, db, lock_timeout=lock_timeout(),
                                   before_commit=before_commit)
    STORED.append((run_id, str(path)))
    return run_id, str(path)


#: The runs this process stored (id, database), so that an interrupt after the store does not
#: claim the database is unchanged.
STORED: list[tuple[int, str]] = []


#: Words a RUN argument takes for the newest run of the database.
LAST = ("last", "latest")


def run_argument(text: str) -> int | str:
    """A RUN argument: a positive integer, or ``last`` (the newest run)."""
    if text.strip().lower() in LAST:
        return "last"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid run {text!r}: give a run id (see `stochplan runs`) or 'last'"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid run {text!r}: run ids start at 1")
    return value


def resolve_run(store: Any, run: int | str) -> int:
    """The run id a RUN argument names in ``store`` (``last``: its newest run)."""
    if run != "last":
        return int(run)
    runs = store.list_runs(limit=1)
    if runs.empty:
        raise InputError("RUN", "last", f"no runs in {store.path} yet")
    return int(runs["id"].iloc[0])
