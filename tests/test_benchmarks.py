"""The benchmark suite's smoke mode: every registered spec runs at its smallest size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.solve
@pytest.mark.slow  # about 2 minutes: `make bench-smoke` runs it, and CI after `make test`
def test_every_spec_runs_at_its_smallest_size(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads((tmp_path / "RESULTS.json").read_text())
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from registry import SPECS
        from run import SPEC_MODULES, load_specs

        load_specs()
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert set(results) == set(SPECS) and SPEC_MODULES
    md = (tmp_path / "RESULTS.md").read_text()
    for spec in SPECS.values():
        assert f"## {spec.title}" in md
        assert results[spec.name]["rows"], spec.name
    # the pipeline and raw HiGHS solved the same LP
    assert all(r["same_objective"] for r in results["ef-speed"]["rows"])
    # out of sample, a stochastic plan is never worse than the mean-value plan by more than noise
    rows = results["plan-quality"]["rows"]
    ev = next(r for r in rows if r["plan"].startswith("EV"))
    best = min(r["mean"] for r in rows if r["plan"].startswith("stochastic"))
    assert best <= ev["mean"] + 1e-6
    assert all(r["ws_mean"] <= r["mean"] + 1e-6 for r in rows)
    # the L-shaped method brackets the EF optimum within its gap, identically on 1 and 2 ranks
    for row in results["decomposition"]["rows"]:
        ef = row["ef"]["objective"]
        one, two = row["lshaped"]
        for cell in (one, two):
            assert cell["bound"] <= ef * (1 + 1e-7) and ef <= cell["objective"] * (1 + 1e-7)
            assert cell["gap"] <= 1e-4
        assert (one["ranks"], two["ranks"]) == (1, 2) and one["objective"] == two["objective"]
    # PH (smoke: complete recourse, 3 ranks) brackets it too
    ph = [(row["ef"]["objective"], cell) for row in results["decomposition"]["rows"]
          for cell in row["ph"]]
    assert ph and all("error" not in cell for _, cell in ph), ph
    for ef, cell in ph:
        assert cell["bound"] <= ef * (1 + 1e-7) and ef <= cell["objective"] * (1 + 1e-7)
    # integer first stages: both instances; a decomposition's bound and incumbent bracket the
    # optimum, which the EF brackets too (profit: bound >= optimum >= incumbent)
    mip = results["mip-decomposition"]
    assert [(r["instance"], r["S"]) for r in mip["rows"]] == [("furniture", 3), ("laser", 3)]
    assert mip["partial"] is None and "(partial" not in md
    for row in mip["rows"]:
        ef = row["ef"]
        assert ef["status"] == "Optimal", ef
        assert [(c["method"], c["ranks"]) for c in row["lshaped"] + row["ph"]] == [
            ("lshaped", 1), ("lshaped", 2), ("ph", 3)]
        assert all("error" not in c for c in row["lshaped"]), row["lshaped"]
        for cell in [c for c in row["lshaped"] + row["ph"] if "error" not in c]:
            assert cell["bound"] >= ef["objective"] * (1 - 1e-7)
            assert cell["objective"] <= ef["bound"] * (1 + 1e-7)
    levers = results["ph-levers"]["rows"]
    assert levers and all("error" not in row["out"] for row in levers), levers


def test_smoke_never_overwrites_the_real_results():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--smoke needs --out" in out.stderr
