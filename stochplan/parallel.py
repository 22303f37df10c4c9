"""MPI, only when the program was started by an MPI launcher.

Importing stochplan never touches MPI. :func:`world` returns ``mpi4py``'s COMM_WORLD when the
process runs under ``mpiexec``/``mpirun`` (as the launcher's environment variables show) and
None otherwise, so the same command runs on a laptop or a cluster.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

_LAUNCHER_VARS = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")


def launched_by_mpi() -> bool:
    """True when an MPI launcher started this process."""
    return any(v in os.environ for v in _LAUNCHER_VARS)


def world() -> Any | None:
    """COMM_WORLD under an MPI launcher with more than one rank, else None."""
    if not launched_by_mpi():
        return None
    from mpi4py import MPI

    return MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None


def rank(comm: Any | None) -> int:
    return 0 if comm is None else int(comm.Get_rank())


def share(indices: Sequence[int], comm: Any | None) -> list[int]:
    """This rank's part of ``indices`` (round robin), all of them without MPI."""
    if comm is None:
        return list(indices)
    size, me = comm.Get_size(), comm.Get_rank()
    return [k for i, k in enumerate(indices) if i % size == me]


def gather_all(items: dict[int, Any], comm: Any | None) -> dict[int, Any]:
    """Merge every rank's ``{index: item}`` on every rank."""
    if comm is None:
        return dict(items)
    merged: dict[int, Any] = {}
    for part in comm.allgather(items):
        merged.update(part)
    return merged
