"""Helpers of the reliability tests: running the real ``stochplan`` command (in a subprocess,
or forked from a :class:`ForkServer` that has done the imports once) and checking a results
database after it (integrity, row counts, no partial run)."""

from __future__ import annotations

import json
import locale
import os
import selectors
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The console script's code, run with this interpreter (a subprocess, as a user runs it).
COMMAND = [sys.executable, "-m", "stochplan"]
TABLES = ("runs", "plans", "kpis", "recourse", "tables")
FORKSERVER = Path(__file__).with_name("forkserver.py")
#: Environment variables read once, when the interpreter or a library starts, so a forked
#: child cannot take a new value of them: a command that needs one runs in a fresh process.
STARTUP_VARS = ("PYTHON", "LANG", "LC_", "TZ", "TMPDIR", "TEMP", "TMP", "OMP_", "OPENBLAS_",
                "MKL_", "ARROW_", "MALLOC_", "LD_")


def _env(env: dict[str, str] | None) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100", **(env or {})}


def stochplan(args: Sequence[str], cwd: Path, timeout: float = 120.0,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``stochplan ARGS`` in ``cwd``; fails the test (instead of hanging) after
    ``timeout`` seconds."""
    try:
        return subprocess.run([*COMMAND, *args], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, env=_env(env))
    except subprocess.TimeoutExpired:
        pytest.fail(f"stochplan {' '.join(args)} did not end within {timeout} s")


class ForkServer:
    """``forkserver.py`` (see its docstring), started now and ready once its imports are done;
    :meth:`run` is :func:`stochplan` without a fresh interpreter, callable from several
    threads at once. :meth:`close` stops it; so does the end of this process (the server
    stops when its stdin, a pipe from here, ends)."""

    def __init__(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="stochplan-fork-")  # short: a socket path
        self._path = os.path.join(self._dir, "s")
        self._env = _env(None)
        self._log = open(os.path.join(self._dir, "log"), "w+b")  # noqa: SIM115
        self._proc = subprocess.Popen([sys.executable, str(FORKSERVER), self._path],
                                      cwd=self._dir, env=self._env, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._log)
        self._ready = False
        self._lock = threading.Lock()

    def _wait_ready(self) -> None:
        with self._lock:
            if not self._ready:
                assert self._proc.stdout is not None
                line = self._proc.stdout.readline()
                if line != b"ready\n":
                    self._log.seek(0)
                    raise RuntimeError("the fork server did not start:\n"
                                       + self._log.read().decode(errors="replace"))
                self._ready = True

    def run(self, args: Sequence[str], cwd: Path, timeout: float = 120.0,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """As :func:`stochplan`; a command whose environment changes a variable read at start
        (:data:`STARTUP_VARS`) runs in a fresh process."""
        full_env = _env(env)
        if _startup(full_env) != _startup(self._env):
            return stochplan(args, cwd, timeout, env)
        self._wait_ready()
        request = json.dumps({"args": list(args), "cwd": str(Path(cwd).resolve()),
                              "env": full_env, "timeout": timeout}).encode() + b"\n"
        r_out, w_out = os.pipe()
        r_err, w_err = os.pipe()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(self._path)
                sent = socket.send_fds(sock, [request], [w_out, w_err])
                sock.sendall(request[sent:])
            finally:
                os.close(w_out)
                os.close(w_err)
            # the server's own timeout kills the child; this one guards against the server
            out, err, reply = _collect(r_out, r_err, sock, time.monotonic() + timeout + 30)
        answer = json.loads(reply) if reply else {}
        if "returncode" not in answer:
            pytest.fail(f"stochplan {' '.join(args)} did not end within {timeout} s")
        return subprocess.CompletedProcess([*COMMAND, *args], answer["returncode"],
                                           _text(out), _text(err))

    def close(self) -> None:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.close()  # the server's signal to stop
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        finally:
            assert self._proc.stdout is not None
            self._proc.stdout.close()
            self._log.close()
            shutil.rmtree(self._dir, ignore_errors=True)


def _startup(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(STARTUP_VARS)}


def _collect(r_out: int, r_err: int, sock: socket.socket,
             deadline: float) -> tuple[bytes, bytes, bytes]:
    """Everything until end of file on the child's stdout and stderr and the server's answer
    (as :meth:`subprocess.Popen.communicate` reads)."""
    chunks: dict[int, list[bytes]] = {r_out: [], r_err: [], sock.fileno(): []}
    with selectors.DefaultSelector() as sel:
        for fd in chunks:
            sel.register(fd, selectors.EVENT_READ)
        try:
            while sel.get_map():
                ready = sel.select(deadline - time.monotonic())
                if not ready:
                    pytest.fail("the fork server did not answer in time")
                for key, _ in ready:
                    data = os.read(key.fd, 1 << 16)
                    if data:
                        chunks[key.fd].append(data)
                    else:
                        sel.unregister(key.fd)
        finally:
            os.close(r_out)
            os.close(r_err)
    out, err, reply = (b"".join(c) for c in chunks.values())
    return out, err, reply


def _text(data: bytes) -> str:
    """Bytes as ``subprocess.run(text=True)`` decodes them."""
    text = data.decode("utf-8" if sys.flags.utf8_mode else locale.getencoding())
    return text.replace("\r\n", "\n").replace("\r", "\n")


def db_state(path: Path) -> dict[str, int]:
    """Row counts of every table of a results database, after checking its integrity and that
    every stored run is whole (has its plan and its scenarios table)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}
        partial = conn.execute(
            "SELECT id FROM runs WHERE id NOT IN (SELECT run_id FROM plans) "
            "OR id NOT IN (SELECT run_id FROM tables)").fetchall()
        assert partial == [], f"partial runs {partial} in {path}"
        return counts
    finally:
        conn.close()
