"""One measured process of the EF speed benchmark (run by ef_speed.py, one process per cell).

    python ef_child.py pipeline S ALGORITHM MPS_OUT [MODEL]   # stochplan: scenarios -> plans
    python ef_child.py raw MPS_IN ALGORITHM             # highspy alone on the exported LP
    python ef_child.py pyomo S ALGORITHM                # stochplan through Pyomo and mpi-sppy

MODEL is an optional JSON object of model options over the LP relaxation (for variants such as
lost sales). Prints one JSON line: wall seconds of the measured part, the solver's own seconds, the
objective and the process's peak resident memory (MiB).
"""

from __future__ import annotations

import json
import resource
import sys
import time

INSTANCE_OPTIONS = {"integer": False}


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def pipeline(n: int, algorithm: str, mps_out: str, backend: str,
             model: dict | None = None) -> dict:
    start = time.perf_counter()
    from stochplan.models import aggregate
    from stochplan.solve import matrix
    from stochplan.solve.ef import solve_ef
    from stochplan.solve.solvers import SolverOptions

    imported = time.perf_counter() - start
    solver = SolverOptions(algorithm=algorithm, backend=backend)
    start = time.perf_counter()
    inst = aggregate.resolve("electronics", {**INSTANCE_OPTIONS, **(model or {})})
    spec = f"poisson:{n}"
    names = aggregate.scenario_set(inst, spec, 0).names
    result = solve_ef(aggregate, names, aggregate.creator_kwargs(inst, spec, 0), solver)
    wall = time.perf_counter() - start
    out = {"wall": wall, "solver": result.timings.get("solve"), "objective": result.objective,
           "peak_mib": peak_mib(), "import": imported, "timings": result.timings,
           "rows_recourse": len(result.recourse)}
    if mps_out != "-":  # export the identical LP for the raw run (not timed)
        compiled = matrix.compile_scenarios(aggregate, names, aggregate.creator_kwargs(inst, spec, 0))
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


def main() -> None:
    mode = sys.argv[1]
    if mode == "pipeline":
        model = json.loads(sys.argv[5]) if len(sys.argv) > 5 else None
        out = pipeline(int(sys.argv[2]), sys.argv[3], sys.argv[4], "matrix", model)
    elif mode == "pyomo":
        out = pipeline(int(sys.argv[2]), sys.argv[3], "-", "pyomo")
    else:
        out = raw(sys.argv[2], sys.argv[3])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
