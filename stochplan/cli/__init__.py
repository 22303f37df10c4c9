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
traceback); 3 no optimal plan (``stochplan: infeasible: ...`` or ``stochplan: solve failed:
...``); 130 interrupted.

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
from collections.abc import Sequence
from typing import NoReturn

from stochplan.cli import analysis, reports, solve
from stochplan.cli.common import EXIT_INTERRUPTED, EXIT_SOLVE, EXIT_USAGE
from stochplan.errors import InfeasibleError, SolveError, StochplanError

__all__ = ["EXIT_INTERRUPTED", "EXIT_SOLVE", "EXIT_USAGE", "main", "parser"]

#: The command groups, in the order ``stochplan --help`` lists them.
COMMAND_MODULES = (solve, analysis, reports)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"stochplan: error: {message} (see {self.prog} --help)\n")


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
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.handler(args))
    except InfeasibleError as err:
        print(f"stochplan: infeasible: {err}", file=sys.stderr)
        return EXIT_SOLVE
    except SolveError as err:
        print(f"stochplan: solve failed: {err}", file=sys.stderr)
        return EXIT_SOLVE
    except StochplanError as err:
        print(f"stochplan: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("stochplan: interrupted; the results database is unchanged", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout closed early (`stochplan ... | head`): not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep Python's exit flush quiet
        return 0


def _version() -> str:
    from stochplan import __version__

    return f"stochplan {__version__}"
