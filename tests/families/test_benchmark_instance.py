"""The family-generic EF-speed benchmark on the test family's instance (``--instance``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import KIOSK, ROOT

RUN = ROOT / "benchmarks" / "run.py"


@pytest.mark.solve
def test_ef_speed_smoke_runs_on_the_kiosk(plugin_env, tmp_path):
    """``benchmarks/run.py --smoke --only ef-speed --instance KIOSK``: the pipeline and raw
    HiGHS solve the same LP (its child processes find the family by its entry point)."""
    out = subprocess.run([sys.executable, str(RUN), "--smoke", "--only", "ef-speed",
                          "--instance", str(KIOSK), "--out", str(tmp_path)],
                         check=False, capture_output=True, text=True, timeout=600,
                         env=plugin_env)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads((tmp_path / "RESULTS.json").read_text())["ef-speed"]["rows"]
    assert rows and all(r["same_objective"] and r["instance"] == str(KIOSK) for r in rows)
    assert all(r["objective"] < 0 for r in rows)  # the kiosk's cost is minus its profit
    assert f"Instance: `{KIOSK}`" in (tmp_path / "RESULTS.md").read_text()


def test_instance_is_refused_for_specs_with_their_own(tmp_path):
    out = subprocess.run([sys.executable, str(RUN), "--smoke", "--instance", str(KIOSK),
                          "--out", str(tmp_path)], check=False, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2
    assert "--instance applies to ef-speed only" in out.stderr
