"""MPI, only when the program was started by an MPI launcher.

Importing stochplan never touches MPI. :func:`world` returns ``mpi4py``'s COMM_WORLD when the
process runs under ``mpiexec``/``mpirun`` (as the launcher's environment variables show) and
None otherwise, so the same command runs on a laptop or a cluster.

Until :func:`world` first hands out that communicator, every rank of a job does the same
thing: they parse the same command line and read the same files, so a mistake found then is
found by every rank. The command line says it once (rank 0, :func:`follower`) and the ranks
then end together with its exit status (:func:`leave`), rather than each rank printing it and
mpi4py aborting the job with a line of its own. A check rank 0 alone makes after that (the
results database, say) and broadcasts puts the ranks back in step when it fails
(:func:`in_step_again`), so that mistake ends the same way. Three helpers do so for the
commands: :func:`from_root` for work rank 0 alone does while the others wait for its answer
(a solve, say), :func:`on_root` for rank 0's work after the last collective call (a
method's result), and :func:`alike` around work every rank does alike.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, TypeVar

from stochplan.errors import InfeasibleError, SolveError, StochplanError

T = TypeVar("T")

_LAUNCHER_VARS = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")


def launched_by_mpi() -> bool:
    """True when an MPI launcher started this process."""
    return any(v in os.environ for v in _LAUNCHER_VARS)


#: Seconds a rank that failed in step waits for the others in :func:`leave`.
IN_STEP_WAIT = 10.0
#: Seconds a rank waits between writing its last line and aborting the job (:func:`abort`).
ABORT_GRACE = 0.5
#: Whether :func:`world` has handed out a communicator: from then on ranks may differ.
_IN_STEP = [True]
#: What a follower kept back (:func:`say`).
_UNSAID: list[str] = []


def world() -> Any | None:
    """COMM_WORLD under an MPI launcher with more than one rank, else None."""
    if not launched_by_mpi():
        return None
    from mpi4py import MPI

    if MPI.COMM_WORLD.Get_size() == 1:
        return None
    _IN_STEP[0] = False
    return MPI.COMM_WORLD


def _launch_rank() -> int | None:
    """This process's rank in a job an MPI launcher started with several ranks (without
    asking for :func:`world`); None otherwise, or without mpi4py."""
    if not launched_by_mpi():
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    comm = MPI.COMM_WORLD
    return int(comm.Get_rank()) if comm.Get_size() > 1 else None


def _rank_in_step() -> int | None:
    """:func:`_launch_rank` while the job has not yet asked for :func:`world` (so every rank
    has done the same); None after."""
    return _launch_rank() if _IN_STEP[0] else None


def in_step_again() -> None:
    """Call on every rank right after a collective told each rank the same outcome, one that
    ends the command (rank 0 found a mistake and broadcast it): the ranks are in step again,
    so the mistake is said once and the job ends with its status (:func:`leave`)."""
    _IN_STEP[0] = True


@contextlib.contextmanager
def alike(comm: Any | None) -> Iterator[None]:
    """Around work every rank of ``comm`` does alike (the same solve of the same data): a
    failure there is every rank's, so the ranks are in step again (:func:`in_step_again`)
    and the error is said once."""
    try:
        yield
    except Exception:
        if comm is not None:
            in_step_again()
        raise


def root() -> bool:
    """False only on an MPI rank other than 0 (without asking for :func:`world`): whether
    this process reports to the user."""
    return _launch_rank() in (None, 0)


def follower() -> bool:
    """True on a rank other than 0 of an MPI job still in step (see the module docstring):
    what it has to say, rank 0 says too, so it keeps quiet."""
    return _rank_in_step() not in (None, 0)


def say(message: str) -> None:
    """Write ``message`` (one line) to stderr, except on a :func:`follower`, which keeps it:
    :func:`leave` writes it after all if rank 0 turns out not to have found the same."""
    if follower():
        _UNSAID.append(message)
    else:
        print(message, file=sys.stderr)


def leave(status: int) -> NoReturn:
    """End the process with ``status``.

    A failure while the ranks of an MPI job are still in step is every rank's. Each waits for
    the others (at most :data:`IN_STEP_WAIT` seconds), so that no rank ends before rank 0 has
    said what went wrong: MPICH's launcher kills the ranks still running when one exits with a
    failure. Then MPI is finalised and every rank exits with the status. Without this,
    ``python -m mpi4py`` turns a nonzero status into ``MPI_Abort``, whose own line ("Abort(2)
    on node 0 ...") follows the command's error. If the others do not come (they found no
    mistake and went on), a rank writes what it kept back (:func:`say`) and the job is
    aborted, whatever the other ranks are doing; once the ranks may differ, a failure ends
    so at once, as before.
    """
    if status and _rank_in_step() is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        from mpi4py import MPI

        request = MPI.COMM_WORLD.Ibarrier()
        deadline = time.monotonic() + IN_STEP_WAIT
        while not request.Test():
            if time.monotonic() > deadline:  # not every rank's mistake: say it here
                for message in _UNSAID:
                    print(message, file=sys.stderr)
                sys.stderr.flush()
                time.sleep(ABORT_GRACE)  # ``python -m mpi4py`` aborts: see :func:`abort`
                sys.exit(status)
            time.sleep(0.01)
        MPI.Finalize()  # every rank is here: no abort at exit, no rank killed by the launcher
    sys.exit(status)


def abort(comm: Any, status: int) -> NoReturn:
    """End the whole MPI job with ``status`` from this rank, after what it wrote has left.

    ``MPI_Abort`` has the launcher kill every process at once, and MPICH's launcher drops
    what a killed process wrote and it had not forwarded yet: on a loaded machine a failing
    rank's one line (and MPICH's own "Abort(1) ..." line) was sometimes lost entirely. A
    failure that ends a job is rare; half a second (:data:`ABORT_GRACE`) after the flush lets
    the line through.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    time.sleep(ABORT_GRACE)
    comm.Abort(status)
    raise SystemExit(status)  # not reached: Abort does not return


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


#: The kinds of error :class:`RootFailed` tells apart, the narrowest first.
KINDS: tuple[type[Exception], ...] = (InfeasibleError, SolveError, StochplanError, Exception)


class RootFailed(Exception):
    """Raised by :func:`from_root` on the ranks other than 0 when rank 0's work failed; rank
    0 raises (and says) its own error. ``error`` is the first of :data:`KINDS` that error is
    an instance of: the command line ends these ranks quietly with the status it gives that
    kind of error."""

    def __init__(self, error: type[BaseException]):
        self.error = error
        super().__init__(f"rank 0 failed with {error.__name__}")


def from_root(work: Callable[[], T], comm: Any | None) -> T:
    """``work()`` done on rank 0 and its answer handed to every rank (just ``work()`` without
    MPI).

    If it raises on rank 0, every rank learns so from the same broadcast: the ranks are in
    step again (:func:`in_step_again`), rank 0 raises its error and the others
    :class:`RootFailed`, so the command says the error once and the job ends with its status,
    rather than the others waiting for an answer that never comes until the launcher kills
    them.
    """
    if comm is None:
        return work()
    answer, failure = _on_rank_0(work, comm)
    return together(failure, answer, comm)  # type: ignore[no-any-return]


def on_root(work: Callable[[], T], comm: Any | None) -> T | None:
    """``work()`` done on rank 0 alone: its answer there, None on the other ranks (just
    ``work()`` without MPI). Call it on every rank once they are past their last collective
    call: if ``work`` raises, every rank ends with that error, as with :func:`from_root`,
    rather than rank 0 alone (under mpi4py's runner its exit would abort the job with a line
    of its own)."""
    if comm is None:
        return work()
    answer, failure = _on_rank_0(work, comm)
    together(failure, None, comm)
    return answer


def _on_rank_0(work: Callable[[], T], comm: Any) -> tuple[T | None, Exception | None]:
    """``work()``'s answer on rank 0, or what it raised there; (None, None) elsewhere."""
    if comm.Get_rank() != 0:
        return None, None
    try:
        return work(), None
    except Exception as err:  # every rank must hear of it: :func:`together` re-raises it
        return None, err


def together(failure: Exception | None, answer: Any, comm: Any | None) -> Any:
    """Rank 0's ``answer`` on every rank, or, if rank 0 passes a ``failure`` (what the
    others pass is not looked at), that failure raised on every rank as :func:`from_root`
    raises it. For rank-0 work too entangled to pass as a function: call it on every rank
    where they meet."""
    if comm is None:
        if failure is not None:
            raise failure
        return answer
    if comm.Get_rank() != 0:
        failure = None
    sent = None if failure is None else next(k for k, c in enumerate(KINDS)
                                             if isinstance(failure, c))
    kind, answer = comm.bcast((sent, answer), root=0)
    if kind is not None:
        in_step_again()
        if failure is not None:
            raise failure
        raise RootFailed(KINDS[kind])
    return answer
