"""Exceptions raised by stochplan.

Every user mistake raises a subclass of :class:`StochplanError` whose message names the field,
the offending value and the file it came from; the CLI prints that one line and exits with
status 2, without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class StochplanError(Exception):
    """Base class of every error stochplan raises on purpose."""


class InputError(StochplanError, ValueError):
    """Bad input data or options: names the field, the value and the source file."""

    def __init__(self, field: str, value: object, problem: str, source: str | Path | None = None):
        self.field = field
        self.value = value
        self.problem = problem
        self.source = str(source) if source is not None else None
        where = f" in {self.source}" if self.source else ""
        super().__init__(f"{field} = {value!r}{where}: {problem}")


class SolveError(StochplanError, RuntimeError):
    """A solve that did not end optimal (and partial results were not asked for)."""

    def __init__(self, message: str, status: str = "error"):
        self.status = status
        super().__init__(message)


class InfeasibleError(SolveError):
    """The model has no feasible solution; names the constraint families involved, and the
    scenario that has none even alone when one was found (``scenario``)."""

    def __init__(self, message: str, families: tuple[str, ...] = (),
                 scenario: str | None = None):
        self.families = families
        self.scenario = scenario
        super().__init__(message, status="infeasible")


class Terminated(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM). A subclass of :class:`KeyboardInterrupt`, so
    everything that rolls back or cleans up on Ctrl-C does so on SIGTERM too; the CLI says
    "terminated" and exits with status 143."""


class StoreError(StochplanError):
    """A run could not be written to the results database, or a lock another process or
    session held stopped a read or write there.

    ``recovery`` is the file the run was written to instead (the same SQLite schema; bring it
    in with ``stochplan import FILE``), or None when that failed too.
    """

    def __init__(self, message: str, recovery: str | Path | None = None):
        self.recovery = str(recovery) if recovery is not None else None
        super().__init__(message)
