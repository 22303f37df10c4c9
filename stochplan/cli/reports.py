"""Commands that draw or export stored runs: ``dashboard``, ``compare`` and ``export``.

::

    stochplan dashboard RUN [-o FILE.html] [--db PATH]
    stochplan compare RUN RUN... [-o FILE.html] [--db PATH]
    stochplan export RUN [TABLE] [-o FILE.csv] [--list] [--db PATH]
    stochplan export RUN --to DIR [--format csv|parquet|json] [--force] [--db PATH]

RUN is a run id from ``stochplan runs``, or ``last`` for the newest run in the database.
``dashboard`` and ``compare`` write one self-contained HTML file (plotly.js inline, opens
offline) and print its path; ``export`` writes CSV, or with ``--to`` a folder of files
(:mod:`stochplan.reports.export`). Unknown runs or a missing database are one-line errors
(exit status 2). Plotly and the figure code load in the handlers.
"""

from __future__ import annotations

import argparse
from typing import Any

from stochplan.cli.common import add_db_option, open_store, resolve_run, run_argument
from stochplan.errors import InputError

#: ``export --format`` choices: :data:`stochplan.reports.export.FORMATS` (not imported here, it
#: loads pandas).
EXPORT_FORMATS = ("csv", "parquet", "json")


def add_commands(sub: Any) -> None:
    """Add ``dashboard`` and ``compare`` to the ``stochplan`` command line."""
    dash = sub.add_parser(
        "dashboard",
        help="write the HTML dashboard of a stored run",
        description="Write one self-contained HTML dashboard (plotly.js inline, works offline) "
        "of a run stored in the results database, and print its path.",
    )
    dash.add_argument("run", type=run_argument, metavar="RUN",
                      help="run id (see `stochplan runs`) or 'last' for the newest run")
    dash.add_argument("-o", "--output", metavar="FILE.html",
                      help="output file (default ./stochplan-run-<id>.html)")
    add_db_option(dash)
    dash.set_defaults(handler=dashboard_command)

    comp = sub.add_parser(
        "compare",
        help="write an HTML page comparing stored runs side by side",
        description="Write one self-contained HTML page putting two or more stored runs side "
        "by side (headline KPIs, cost composition, production plans, out-of-sample "
        "costs where stored), and print its path.",
    )
    comp.add_argument("runs", type=run_argument, nargs="+", metavar="RUN",
                      help="two or more run ids ('last' for the newest run)")
    comp.add_argument("-o", "--output", metavar="FILE.html",
                      help="output file (default ./stochplan-compare-<id>-<id>.html)")
    add_db_option(comp)
    comp.set_defaults(handler=compare_command)

    export = sub.add_parser(
        "export",
        help="write a stored run's tables (CSV, Parquet or JSON) with a README of columns",
        description="With --to DIR: write every table of a stored run (plan, KPIs, the "
        "per-scenario second-stage values, scenarios, the family's KPI tables, out-of-sample "
        "tables when stored, ...), one file each, with provenance.json (what was solved, how, "
        "package versions, database) and README.md (every file and column, with meaning and "
        "unit where known); floats exact. Without --to: write the first-stage plan (default) "
        "or one table as CSV, to a file or to stdout; `--list` names the run's tables.",
    )
    export.add_argument("run", type=run_argument, metavar="RUN",
                        help="run id (see `stochplan runs`) or 'last' for the newest run")
    export.add_argument("table", nargs="?", default=None, metavar="TABLE",
                        help="'plan' (default), 'kpis' or a stored table's name")
    export.add_argument("-o", "--output", metavar="FILE.csv", help="output file (default stdout)")
    export.add_argument("--list", action="store_true", help="list the run's tables and exit")
    export.add_argument("--to", metavar="DIR",
                        help="write every table to DIR (created; must be new or empty)")
    export.add_argument("--format", choices=EXPORT_FORMATS, default=None,
                        help="file format of --to (default csv; parquet needs pyarrow: pip "
                        "install 'stochplan[parquet]'; json: records, one file per table)")
    export.add_argument("--force", action="store_true",
                        help="with --to: write into a DIR that is not empty, replacing files of "
                        "the same names")
    add_db_option(export)
    export.set_defaults(handler=export_command)


def dashboard_command(args: argparse.Namespace) -> int:
    from stochplan.reports.dashboard import write_dashboard

    with open_store(args.db) as store:
        stored = store.get_run(resolve_run(store, args.run))
        db = str(store.path)
    path = write_dashboard(stored, args.output, db=db)
    print(path.resolve())
    return 0


def compare_command(args: argparse.Namespace) -> int:
    from stochplan.reports.dashboard import write_comparison

    with open_store(args.db) as store:
        ids = [resolve_run(store, r) for r in args.runs]
        if len(ids) < 2 or len(set(ids)) != len(ids):
            raise InputError("RUN", args.runs, "compare needs two or more different runs")
        runs = [store.get_run(i) for i in ids]
        db = str(store.path)
    path = write_comparison(runs, args.output, db=db)
    print(path.resolve())
    return 0


def export_command(args: argparse.Namespace) -> int:
    import sys

    from stochplan.reports.export import check_format, export_run, run_tables

    if args.to is not None:
        for flag, given in (("TABLE", args.table), ("--output", args.output),
                            ("--list", args.list or None)):
            if given is not None:
                raise InputError(flag, given, f"--to writes every table; leave out {flag} "
                                 "(or --to)")
        fmt = args.format or "csv"
        try:
            check_format(fmt)
        except InputError as err:
            raise InputError("--format", fmt, err.problem) from None
    else:
        for flag, given in (("--format", args.format), ("--force", args.force or None)):
            if given is not None:
                raise InputError(flag, given, "applies to --to DIR only (TABLE and -o write "
                                 "CSV)")
    with open_store(args.db) as store:
        stored = store.get_run(resolve_run(store, args.run))
        db = store.path
    if args.to is not None:
        try:
            out = export_run(stored, args.to, fmt, force=args.force, db=db)
        except InputError as err:
            if err.field == "folder":
                raise InputError("--to", args.to, err.problem) from None
            raise
        print(out.folder.resolve())
        return 0
    tables = run_tables(stored)
    if args.list:
        for name, table in tables.items():
            print(f"{name:<24}{len(table):>8} rows  {', '.join(map(str, table.columns))}")
        return 0
    name = args.table or "plan"
    if name not in tables:
        raise InputError("TABLE", name, f"run {stored.id} has no such table (tables: "
                         f"{', '.join(tables)})")
    table = tables[name]
    if args.output is None:
        table.to_csv(sys.stdout, index=False)
        return 0
    from pathlib import Path

    path = Path(args.output)
    try:
        table.to_csv(path, index=False)
    except OSError as err:
        raise InputError("--output", args.output, f"cannot be written ({err.strerror})") from None
    print(path.resolve())
    return 0
