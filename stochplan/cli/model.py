"""The command that writes an instance's model out of the package: ``write-model``.

::

    stochplan write-model INSTANCE --out PATH [--format mps|lp|smps] [--scenarios SPEC]
                                   [--seed S] [--set KEY=VALUE ...] [--relax]
                                   [--config FILE.toml] [--json]

``mps`` and ``lp`` write the extensive form in one file; ``smps`` writes the two-stage problem
as ``NAME.cor``, ``NAME.tim`` and ``NAME.sto`` (``SCENARIOS DISCRETE``), in the folder PATH
(created when it ends with ``/``) or with PATH as their common stem. Without ``--format`` the
suffix of PATH says which. The scenarios and model options are those ``stochplan solve`` would
use with the same arguments; the files hold the minimisation form of the problem (see
:mod:`stochplan.solve.smps`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from stochplan.cli.common import (
    add_model_options,
    add_scenario_options,
    captured_stdout,
    model_overrides,
    print_json,
)
from stochplan.errors import InputError

#: File suffix -> format, for ``--out`` without ``--format``.
_SUFFIX_FORMAT = {".mps": "mps", ".lp": "lp", ".cor": "smps", ".tim": "smps", ".sto": "smps"}


def add_commands(sub: Any) -> None:
    write = sub.add_parser(
        "write-model", help="write an instance's extensive form (MPS, LP) or two-stage problem "
        "(SMPS) to files",
        description="Write the problem `stochplan solve` would solve with the same arguments: "
        "its extensive form as an MPS or LP file, or the two-stage problem as SMPS core, time "
        "and stoch files (SCENARIOS DISCRETE), as mpi-sppy's SMPS reader reads them. "
        "A maximising family is written as the minimisation of minus its objective.")
    write.add_argument("instance", metavar="INSTANCE",
                       help="built-in instance name (see `stochplan instances`) or instance folder")
    write.add_argument("--out", required=True, metavar="PATH",
                       help="the file (mps, lp), or for smps a folder (ending in /) or the "
                       "files' common stem")
    write.add_argument("--format", choices=("mps", "lp", "smps"),
                       help="default: from the suffix of --out (.mps, .lp; .cor, .tim, .sto or "
                       "a folder: smps)")
    add_scenario_options(write)
    add_model_options(write)
    write.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    write.set_defaults(handler=write_model_command)


def output_format(fmt: str | None, out: str) -> str:
    """The format to write: ``--format``, else the one the suffix of ``--out`` names.

    Raises
    ------
    InputError
        When neither says, or they disagree.
    """
    path = Path(out)
    implied = _SUFFIX_FORMAT.get(path.suffix.lower())
    if implied is None and (out.endswith(("/", os.sep)) or path.is_dir()):
        implied = "smps"
    if fmt is None:
        if implied is None:
            raise InputError("--out", out, "give --format mps|lp|smps, or a path ending in "
                             ".mps, .lp, .cor or /")
        return implied
    if implied is not None and implied != fmt:
        raise InputError("--out", out, f"names a {implied} file, but --format is {fmt}")
    return fmt


def write_model_command(args: argparse.Namespace) -> int:
    from stochplan import __version__
    from stochplan.config import load_config

    fmt = output_format(args.format, args.out)
    config = load_config(args.config, instance=args.instance,
                         model=model_overrides(args, args.instance),
                         scenarios={"spec": args.scenarios, "seed": args.seed})
    if fmt == "smps" and args.out.endswith(("/", os.sep)):
        Path(args.out).mkdir(parents=True, exist_ok=True)
    with captured_stdout():  # mpi-sppy prints on import
        from stochplan.solve import matrix
        from stochplan.solve.smps import write_model

        family = config.family_object()
        inst = family.resolve(config.instance, config.model or None)
        sc = config.scenarios
        scen_set = family.scenario_set(inst, sc.spec, sc.seed, sc.multipliers, sc.weights)
        kwargs = family.creator_kwargs(inst, sc.spec, sc.seed, sc.multipliers, sc.weights)
        try:
            compiled = matrix.compile_scenarios(family.module, scen_set.names, kwargs)
        except matrix.NotFixedRecourse as why:
            raise InputError("INSTANCE", args.instance, f"its scenario models differ in more "
                             f"than right-hand sides, bounds and costs ({why}); MPS, LP and "
                             "SMPS are written from one constraint matrix") from None
        name = str(getattr(inst, "name", args.instance))
        comments = [
            f"stochplan {__version__} write-model: instance {name} (family {family.name}), "
            f"{len(scen_set.names)} scenarios ({scen_set.spec}, seed {sc.seed})",
            f"model options: {dict(config.model) if config.model else 'the instance defaults'}",
        ]
        written = write_model(compiled, args.out, fmt, name=name, comments=comments)
    if args.json:
        print_json({"instance": name, "family": family.name, "scenario_spec": scen_set.spec,
                    "seed": sc.seed, **written.to_dict()})
        return 0
    what = "two-stage problem (SMPS)" if fmt == "smps" else f"extensive form ({fmt.upper()})"
    print(f"Wrote the {what} of {name}: {written.scenarios} scenarios, {written.rows:,} rows, "
          f"{written.columns:,} columns ({written.integers:,} integer).")
    for path in written.paths:
        print(f"  {path}")
    if written.sense == -1:
        print("  The family maximises: the files minimise minus its objective.")
    return 0
