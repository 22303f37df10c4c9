"""The ``stochplan`` command line.

::

    stochplan instances
    stochplan config-schema [INSTANCE | --family NAME]
    stochplan solve INSTANCE [--scenarios SPEC] [--seed S] [--set KEY=VALUE ...] [--relax]
                             [--config FILE.toml] [--method ef|ph|lshaped] [--time-limit SEC]
                             [--rel-gap G] [--max-iterations N] [--partial]
                             [--db PATH] [--json] [--quiet]
    mpiexec -n 3 python -m mpi4py -m stochplan solve INSTANCE --method ph ...   (decomposed)
    stochplan runs [--db PATH] [--limit N] [--json]
    stochplan show RUN [--db PATH] [--json]
    stochplan import FILE [--db PATH]
    stochplan value INSTANCE [--scenarios SPEC] [--seed S] [--set KEY=VALUE ...] [--relax]
                             [--config FILE.toml] [--integer-policy round|relax]
    stochplan value --module MODULE --num-scens N [--set KEY=VALUE ...]
    stochplan evaluate RUN [--scenarios SPEC] [--seed S] [--cvar-level A]
    stochplan saa INSTANCE --target-gap G [--scenarios sample:N|poisson:N|qmc:N] [--seed S]
                           [--set KEY=VALUE ...] [--relax] [--config FILE.toml]
                           [--start N] [--max-n N] [--batches B]
    stochplan dashboard RUN [-o FILE.html] [--db PATH]
    stochplan compare RUN RUN... [-o FILE.html] [--db PATH]

SPEC is ``named`` (alias ``three-point``), ``sample:N``, ``poisson:N``, ``qmc:N`` or
``file:PATH``. ``--set KEY=VALUE`` sets a model option of the instance's family, as ``[model]``
of ``--config`` does (VALUE is read as a TOML value, else as a string); ``--relax`` is
``--set integer=false``.

Exit statuses: 0 success; 2 a user mistake (one line ``stochplan: error: ...``, no
traceback; ``-v`` adds the traceback of a user's module), or a run that could not be stored
(the message names the recovery file that holds it; ``stochplan import FILE`` brings it in);
3 no optimal plan (``stochplan: infeasible: ...`` or ``stochplan: solve failed: ...``); 130
interrupted (Ctrl-C, which also stops a running HiGHS solve); 143 terminated (SIGTERM); 1 an
internal error (a bug: one line, ``-v`` shows the traceback). A run is stored in one
transaction, so an interrupted or failed command leaves the results database as it was.

The commands live in one module per group (:mod:`.solve`, :mod:`.analysis`, :mod:`.reports`),
each with ``add_commands(subparsers)`` adding its parsers with ``set_defaults(handler=...)``;
a handler takes the parsed arguments and returns the exit status. These modules are light to
import: heavy modules are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from stochplan.cli import analysis, frontier, generate, model, reports, simulate, solve
from stochplan.cli.common import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_SOLVE,
    EXIT_TERMINATED,
    EXIT_USAGE,
    STORED,
)
from stochplan.errors import InfeasibleError, SolveError, StochplanError, Terminated
from stochplan.parallel import RootFailed, follower, say

__all__ = ["EXIT_INTERRUPTED", "EXIT_SOLVE", "EXIT_TERMINATED", "EXIT_USAGE", "main", "parser",
           "run"]

#: The command groups, in the order ``stochplan --help`` lists them.
COMMAND_MODULES = (solve, analysis, reports, frontier, simulate, generate, model)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors, said once under ``mpiexec``."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"stochplan: error: {message} (see {self.prog} --help)\n")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:  # under mpiexec rank 0 alone says it (stochplan.parallel.say)
            say(message.rstrip("\n"))
        sys.exit(status)


def parser() -> argparse.ArgumentParser:
    """The ``stochplan`` argument parser with every command."""
    top = _Parser(prog="stochplan", description="Two-stage stochastic production planning.")
    top.add_argument("--version", action="version", version=_version())
    top.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in COMMAND_MODULES:
        module.add_commands(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    from stochplan.solve.solvers import interruptible

    args = parser().parse_args(argv)
    STORED.clear()
    # MPICH's transport warns at exit, on stdout, about MPI windows a failed PH run left open
    # ("UCX WARN object ... was not returned to mpool"); its errors still show. Read when MPI
    # starts: only runs that start it here (under ``mpiexec ... -m mpi4py`` an abort ends a
    # failed run anyway).
    os.environ.setdefault("UCX_LOG_LEVEL", "error")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        with interruptible():
            return int(args.handler(args))
    except RootFailed as err:  # rank 0 failed and says why; this rank ends with its status
        return (EXIT_SOLVE if issubclass(err.error, SolveError) else EXIT_USAGE
                if issubclass(err.error, StochplanError) else EXIT_INTERNAL)
    except InfeasibleError as err:
        say(f"stochplan: infeasible: {err}")
        return EXIT_SOLVE
    except SolveError as err:
        say(f"stochplan: solve failed: {err}")
        return EXIT_SOLVE
    except StochplanError as err:
        if args.verbose and err.__cause__ is not None and not follower():  # a user's module
            traceback.print_exception(err.__cause__, file=sys.stderr)
        say(f"stochplan: error: {err}")
        return EXIT_USAGE
    except KeyboardInterrupt as stop:
        word = "terminated" if isinstance(stop, Terminated) else "interrupted"
        if STORED:  # after the run was stored: say so, not "unchanged"
            run_id, db = STORED[-1]
            say(f"stochplan: {word} after storing run {run_id} in {db}")
        else:
            say(f"stochplan: {word}; the results database is unchanged")
        return EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout closed early (`stochplan ... | head`): not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep Python's exit flush quiet
        return 0
    except Exception as err:  # a bug: one line, the traceback with -v
        if args.verbose and not follower():
            traceback.print_exc()
        say(f"stochplan: internal error: {type(err).__name__}: {err} (-v shows the "
            "traceback; please report it)")
        return EXIT_INTERNAL


def run() -> NoReturn:
    """The ``stochplan`` console script and ``python -m stochplan``: :func:`main`, then
    :func:`stochplan.parallel.leave` with its status, so that the ranks of an MPI job that
    failed together also end together (each waits for the others, then MPI is finalised)."""
    from stochplan.parallel import leave

    try:
        status = main()
    except SystemExit as stop:  # argparse: --help, --version and usage errors
        status = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
    leave(status)


def _version() -> str:
    from stochplan import __version__

    return f"stochplan {__version__}"
