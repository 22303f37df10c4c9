"""One measured decomposed solve (run by decomposition.py under ``mpiexec``, one per cell).

    mpiexec -n K python -m mpi4py decomp_child.py lshaped S MODEL OPTIONS
    mpiexec -n K python -m mpi4py decomp_child.py ph S MODEL OPTIONS

MODEL and OPTIONS are JSON objects: model options of the electronics instance (over the LP
relaxation) and fields of ``LShapedOptions`` / ``PHOptions``. Scenarios: ``poisson:S`` with
seed 0, as in the EF benchmark. Rank 0 prints one JSON line: the result's scalars, ``wall``
(seconds from just after the imports, as the EF benchmark counts), ``offset`` (seconds before
the solve started: scenario generation), ``peak_rss_gib`` (each rank's peak resident memory)
and ``history`` ([seconds since the solve started,
iteration, bound, incumbent] per iteration).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

#: Address-space cap per rank, GiB (so a run too big for the machine fails alone, with a
#: MemoryError, instead of waking the kernel's out-of-memory killer).
MEMORY_CAP_GIB = float(os.environ.get("STOCHPLAN_BENCH_MEMORY_GIB", "7"))


def main() -> None:
    cap = int(MEMORY_CAP_GIB * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    method, n = sys.argv[1], int(sys.argv[2])
    model, options = json.loads(sys.argv[3]), json.loads(sys.argv[4])
    from stochplan.errors import SolveError
    from stochplan.models import aggregate
    from stochplan.parallel import rank, world
    from stochplan.solve.lshaped import LShapedOptions, solve_lshaped
    from stochplan.solve.ph import PHOptions, solve_ph

    t0 = time.perf_counter()
    comm = world()
    inst = aggregate.resolve("electronics", {"integer": False, **model})
    spec = f"poisson:{n}"
    names = aggregate.scenario_set(inst, spec, 0).names
    kwargs = aggregate.creator_kwargs(inst, spec, 0)
    offset = time.perf_counter() - t0
    try:
        if method == "lshaped":
            result = solve_lshaped(aggregate, names, kwargs, LShapedOptions(**options),
                                   comm=comm, allow_partial=True)
        else:
            result = solve_ph(aggregate, names, kwargs, PHOptions(**options), comm=comm,
                              allow_partial=True)
    except SolveError as exc:  # e.g. PH found no incumbent: a result of the benchmark
        if rank(comm) == 0:
            print(json.dumps({"error": str(exc), "wall": time.perf_counter() - t0}))
        return
    # peak resident memory of every rank, GiB (ru_maxrss is in KiB on Linux)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    peaks = comm.gather(peak, root=0) if comm is not None else [peak]
    if result is not None:
        out = result.to_dict()
        out["wall"] = time.perf_counter() - t0
        out["offset"] = offset
        out["peak_rss_gib"] = peaks
        print(json.dumps(out, default=float))


if __name__ == "__main__":
    main()
