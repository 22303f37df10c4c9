"""A fork server for the catalogue: runs ``python -m stochplan ARGS`` without paying for a
fresh interpreter and the imports each time (``harness.ForkServer`` starts and talks to it).

Started once per test session, with the environment a command would get, as
``python forkserver.py SOCKET``. It imports ``stochplan.cli`` and the heavy libraries the
commands import anyway (numpy, pandas, scipy, Pyomo, highspy, the built-in families), then
serves requests on the Unix socket ``SOCKET``, one connection per command, several at once.

The server stops (killing any child still running) when its stdin, a pipe from the test
session, ends. A request is one JSON line ``{"args", "cwd", "env", "timeout"}`` sent with two file
descriptors, the write ends of the caller's stdout and stderr pipes. The server forks a child
per request and answers ``{"returncode": N}`` (``-SIG`` when a signal ended it, as
:mod:`subprocess` does) or ``{"timeout": true}`` after killing a child that ran too long.

The child is the command: it puts the pipes on fds 1 and 2, goes to ``cwd``, takes ``env`` as
its whole environment, sets ``sys.argv`` and ``sys.path[0]`` as ``python -m`` does, and leaves
the server's code to run ``stochplan.__main__`` with :func:`runpy.run_module`. Its exit status,
uncaught exceptions, atexit handlers and stream flushing are then the interpreter's own, as in
a fresh ``python -m stochplan``. Nothing a child does reaches the server or another child.

Fork safety: the server runs no Python thread (checked before every fork) and never solves;
OpenBLAS stops its worker threads around ``fork`` itself. Variables read when the interpreter
or a library starts (``PYTHON*``, locale, thread counts) cannot be changed in a child:
``harness`` sends a command whose environment differs in them to a fresh process instead.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import runpy
import selectors
import signal
import socket
import sys
import threading
import time
from typing import Any

#: What the commands import anyway (``stochplan.config`` brings pandas and Pyomo).
PRELOAD = ("stochplan.cli", "stochplan.cli.common", "stochplan.config", "stochplan.data",
           "stochplan.family", "stochplan.store", "stochplan.run", "stochplan.solve.solvers",
           "numpy", "pandas", "scipy.sparse", "pyomo.environ", "highspy")


def preload() -> None:
    """Import :data:`PRELOAD` and the built-in families, then freeze what is alive: a child's
    collections skip (and so do not copy) the server's objects; this took a child's time for
    ``--help`` from 0.42 s to 0.10 s."""
    for name in PRELOAD:
        importlib.import_module(name)
    from stochplan.models import BUILTIN

    for module in BUILTIN.values():
        importlib.import_module(module)
    assert "stochplan.__main__" not in sys.modules
    gc.collect()
    gc.freeze()


class _Job:
    def __init__(self, pid: int, pidfd: int, conn: socket.socket, deadline: float) -> None:
        self.pid, self.pidfd, self.conn, self.deadline = pid, pidfd, conn, deadline


def _recv_request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 2)
    while not data.endswith(b"\n"):
        more = conn.recv(1 << 16)
        if not more:
            raise ConnectionError("request cut short")
        data += more
    return json.loads(data), fds


def serve(path: str) -> dict[str, Any] | None:
    """Serve until stdin ends (then returns None); in a forked child, it
    returns its request, with the child's fds, folder and environment already set up."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    sel.register(0, selectors.EVENT_READ)  # the session's pipe: its end is ours
    jobs: dict[int, _Job] = {}  # by pidfd
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        waits = [job.deadline - time.monotonic() for job in jobs.values()]
        for key, _ in sel.select(max(0.0, min(waits)) if waits else None):
            if key.fileobj == 0:
                if not os.read(0, 1 << 10):
                    for job in jobs.values():
                        os.kill(job.pid, signal.SIGKILL)
                        os.waitpid(job.pid, 0)
                    return None
            elif key.fileobj is listener:
                conn, _ = listener.accept()
                request, fds = _recv_request(conn)
                assert threading.active_count() == 1, "the fork server must not run threads"
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    sel.close()
                    listener.close()
                    for job in jobs.values():
                        job.conn.close()
                        os.close(job.pidfd)
                    conn.close()
                    _become(request, fds)
                    return request
                for fd in fds:
                    os.close(fd)
                pidfd = os.pidfd_open(pid)
                jobs[pidfd] = _Job(pid, pidfd, conn, time.monotonic() + request["timeout"])
                sel.register(pidfd, selectors.EVENT_READ)
            else:
                _finish(jobs.pop(key.fd), sel, timed_out=False)
        now = time.monotonic()
        for fd in [fd for fd, job in jobs.items() if job.deadline <= now]:
            os.kill(jobs[fd].pid, signal.SIGKILL)
            _finish(jobs.pop(fd), sel, timed_out=True)


def _finish(job: _Job, sel: selectors.BaseSelector, timed_out: bool) -> None:
    _, status = os.waitpid(job.pid, 0)
    sel.unregister(job.pidfd)
    os.close(job.pidfd)
    answer = {"timeout": True} if timed_out else {"returncode": os.waitstatus_to_exitcode(status)}
    try:
        job.conn.sendall(json.dumps(answer).encode() + b"\n")
    except OSError:  # the caller gave up
        pass
    job.conn.close()


def _become(request: dict[str, Any], fds: list[int]) -> None:
    """Turn this forked child into ``python -m stochplan ARGS`` run in ``cwd`` with ``env``."""
    out, err = fds
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.close(out)
    os.close(err)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[0] = os.getcwd()  # `python -m` puts the current folder first
    sys.argv = ["-m", *request["args"]]  # run_module puts __main__.py's path in argv[0]


if __name__ == "__main__":
    preload()
    child = serve(sys.argv[1])
    if child is not None:
        # The command; SystemExit and any exception end the process as in `python -m`.
        runpy.run_module("stochplan", run_name="__main__", alter_sys=True)
