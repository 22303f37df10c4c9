"""One measured process of the EF speed benchmark (run by ef_speed.py, one process per cell).

    python ef_child.py pipeline S ALGORITHM MPS_OUT [MODEL] [--instance I]  # scenarios -> plans
    python ef_child.py raw MPS_IN ALGORITHM             # highspy alone on the exported LP
    python ef_child.py pyomo S ALGORITHM [--instance I] # stochplan through Pyomo and mpi-sppy

MODEL is an optional JSON object of model options over the LP relaxation (for variants such as
lost sales). ``--instance`` is a built-in instance name or an instance folder of any registered
family (default electronics); the family comes from its ``instance.toml``, so a plug-in family
works when its module is importable (entry point ``stochplan.families``). Prints one JSON line:
wall seconds of the measured part, the solver's own seconds, the objective and the process's
peak resident memory (MiB).
"""

from __future__ import annotations

import argparse
import json
import resource
import time

#: Options of the LP relaxation, for families that have an ``integer`` option.
INSTANCE_OPTIONS = {"integer": False}
DEFAULT_INSTANCE = "electronics"


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def pipeline(n: int, algorithm: str, mps_out: str, backend: str,
             model: dict | None = None, instance: str = DEFAULT_INSTANCE) -> dict:
    start = time.perf_counter()
    from stochplan.data import instance_family
    from stochplan.family import get_family
    from stochplan.solve import matrix
    from stochplan.solve.ef import solve_ef
    from stochplan.solve.solvers import SolverOptions

    imported = time.perf_counter() - start
    solver = SolverOptions(algorithm=algorithm, backend=backend)
    start = time.perf_counter()
    family = get_family(instance_family(instance))
    relax = {k: v for k, v in INSTANCE_OPTIONS.items() if k in family.options_type.model_fields}
    inst = family.resolve(instance, {**relax, **(model or {})})
    spec = f"poisson:{n}"
    names = family.scenario_set(inst, spec, 0).names
    kwargs = family.creator_kwargs(inst, spec, 0)
    result = solve_ef(family.module, names, kwargs, solver)
    wall = time.perf_counter() - start
    out = {"wall": wall, "solver": result.timings.get("solve"), "objective": result.objective,
           "peak_mib": peak_mib(), "import": imported, "timings": result.timings,
           "rows_recourse": len(result.recourse)}
    if mps_out != "-":  # export the identical LP for the raw run (not timed)
        compiled = matrix.compile_scenarios(family.module, names, kwargs)
        matrix.write_extensive_form(compiled, mps_out)
    return out


def raw(mps_in: str, algorithm: str) -> dict:
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    if algorithm != "auto":
        h.setOptionValue("solver", algorithm)
    h.readModel(mps_in)
    start = time.perf_counter()
    h.run()
    wall = time.perf_counter() - start
    status = h.getModelStatus().name
    return {"wall": wall, "solver": wall, "objective": h.getInfo().objective_function_value,
            "status": status, "peak_mib": peak_mib()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    for mode in ("pipeline", "pyomo"):
        sub = modes.add_parser(mode)
        sub.add_argument("n", type=int)
        sub.add_argument("algorithm")
        if mode == "pipeline":
            sub.add_argument("mps_out")
            sub.add_argument("model", nargs="?", type=json.loads)
        sub.add_argument("--instance", default=DEFAULT_INSTANCE)
    sub = modes.add_parser("raw")
    sub.add_argument("mps_in")
    sub.add_argument("algorithm")
    args = parser.parse_args(argv)
    if args.mode == "pipeline":
        out = pipeline(args.n, args.algorithm, args.mps_out, "matrix", args.model, args.instance)
    elif args.mode == "pyomo":
        out = pipeline(args.n, args.algorithm, "-", "pyomo", None, args.instance)
    else:
        out = raw(args.mps_in, args.algorithm)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
