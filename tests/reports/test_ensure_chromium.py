"""scripts/ensure-chromium: finds a browser, or says why it cannot have one (no install here)."""

from __future__ import annotations

import os
import subprocess

from .conftest import ENSURE_CHROMIUM


def ensure(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(ENSURE_CHROMIUM)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **env},
    )


def test_a_given_browser_is_used_as_is(tmp_path):
    fake = tmp_path / "my-chrome"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    proc = ensure({"CHROMIUM": str(fake)})
    assert proc.returncode == 0 and proc.stdout.strip() == str(fake)


def test_a_missing_given_browser_is_an_error():
    proc = ensure({"CHROMIUM": "/nonexistent/chrome"})
    assert proc.returncode == 1 and proc.stdout == ""
    assert "CHROMIUM=/nonexistent/chrome is not an executable" in proc.stderr


def test_found_on_path_or_not_installed_when_told_not_to(tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    proc = ensure({"PATH": f"{tmp_path}:/usr/bin:/bin", "STOCHPLAN_INSTALL_BROWSER": "0"})
    assert proc.returncode == 0 and proc.stdout.strip() == str(fake)
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = ensure({"PATH": str(empty), "STOCHPLAN_INSTALL_BROWSER": "0"})
    assert proc.returncode == 1 and proc.stdout == ""
    assert "chromium not found and STOCHPLAN_INSTALL_BROWSER=0" in proc.stderr
