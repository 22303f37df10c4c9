"""Packaging: one version, the license, and MPI as an extra that serial work does not need."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import stochplan

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_version_is_written_once():
    """pyproject.toml reads the version from stochplan.__version__; the installed metadata
    says the same."""
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "stochplan.__version__"
    assert metadata.version("stochplan") == stochplan.__version__


def test_license_is_an_spdx_expression_with_its_file():
    project = PYPROJECT["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n") and "the stochplan developers" in text
    assert not any(c.startswith("License ::") for c in project["classifiers"])  # SPDX instead


def test_mpi_is_an_extra_that_make_installs():
    project = PYPROJECT["project"]
    assert not any(d.startswith(("mpi4py", "mpich")) for d in project["dependencies"])
    assert {d.split(">")[0] for d in project["optional-dependencies"]["mpi"]} == {"mpi4py",
                                                                                "mpich"}
    assert '-e ".[test,mpi]"' in (ROOT / "Makefile").read_text()


#: Runs the CLI with mpi4py impossible to import, as on a machine without it.
_WITHOUT_MPI4PY = textwrap.dedent("""
    import importlib.abc, sys

    class NoMpi4py(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "mpi4py" or name.startswith("mpi4py."):
                raise ImportError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, NoMpi4py())
    from stochplan.cli import main
    status = main(sys.argv[1:])
    assert "mpi4py" not in sys.modules
    sys.exit(status)
""")


@pytest.mark.solve
@pytest.mark.parametrize("command", [
    ["solve", str(ROOT / "tests" / "data" / "tiny")],
    ["solve", str(ROOT / "tests" / "data" / "tiny"), "--method", "lshaped", "--relax"],
    ["value", str(ROOT / "tests" / "data" / "tiny")],
])
def test_serial_work_runs_without_mpi4py(tmp_path, command):
    """Importing stochplan and the serial solves (EF, L-shaped, value of information) never
    import mpi4py, so a user without MPI can run them."""
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_MPI4PY, *command, "--db", str(tmp_path / "runs.db"),
         "--quiet"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "Stored" in done.stdout


def test_ph_without_mpi4py_is_one_line_naming_the_extra(tmp_path):
    """mpi-sppy's hub and spokes need mpi4py even on one rank: without it ``--method ph`` is
    refused in one line (exit 2) that says what to install, and nothing is stored."""
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_MPI4PY, "solve", str(ROOT / "tests" / "data" / "tiny"),
         "--method", "ph", "--relax", "--db", str(tmp_path / "runs.db"), "--quiet"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "stochplan[mpi]" in done.stderr
    assert "Traceback" not in done.stderr and "Stored" not in done.stdout
