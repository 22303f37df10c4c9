"""Stored runs for the dashboard tests, and headless Chromium for the browser tests.

``report_db`` solves a few small runs once per session and stores them, with made-up
value-of-information KPIs and out-of-sample costs written the way the VSS/EVPI step stores them
(``ResultsStore.add_kpis`` / ``add_table("oos_costs")``), so the dashboards are drawn from a
real results database, as users draw them.

``farmer`` is a ``stochplan value --module stochplan.models.farmer --num-scens 3`` run (no
family, in its own database ``farmer_db`` next to a copy of ``three``); ``ph_run`` the tiny
instance solved by progressive hedging (with its ``convergence`` table).

``chromium`` finds Chromium, or installs Debian's package through ``scripts/ensure-chromium``
(as root with apt-get: what CI is), and skips the browser tests with the reason otherwise.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stochplan.store import ResultsStore, RunRecord, StoredRun

ROOT = Path(__file__).resolve().parents[2]
ENSURE_CHROMIUM = ROOT / "scripts" / "ensure-chromium"
#: Screenshots kept as test artefacts (git-ignored).
ARTIFACTS = ROOT / "artifacts"
TINY = ROOT / "tests" / "data" / "tiny"


@dataclass
class ReportDB:
    """The session's results database and the ids of its runs."""

    path: Path
    ids: dict[str, int] = field(default_factory=dict)

    def get(self, name: str) -> StoredRun:
        with ResultsStore(self.path) as store:
            return store.get_run(self.ids[name])


def fake_oos(n: int = 200, seed: int = 11) -> pd.DataFrame:
    """Out-of-sample costs of two plans on the same n scenarios; the mean-value plan is
    infeasible (+inf) in 7 of them."""
    rng = np.random.default_rng(seed)
    rp = rng.normal(560_000.0, 9_000.0, n)
    ev = rp + rng.normal(25_000.0, 6_000.0, n)
    ev[rng.choice(n, 7, replace=False)] = math.inf
    return pd.DataFrame(
        {
            "plan": ["stochastic (RP)"] * n + ["mean-value (EV)"] * n,
            "scenario": np.tile(np.arange(n), 2),
            "cost": np.concatenate([rp, ev]),
        }
    )


@pytest.fixture(scope="session")
def report_db(tmp_path_factory: pytest.TempPathFactory) -> ReportDB:
    """Runs: ``three`` (electronics, three-point, integer; with value metrics, EEV = +inf, and
    out-of-sample costs), ``sampled`` (electronics, poisson:24, LP; finite value metrics),
    ``tiny`` (1 product, 2 weeks) and ``bare`` (a run of another family: KPIs only)."""
    from stochplan.config import RunConfig, ScenarioConfig
    from stochplan.run import solve_instance, to_record

    db = ReportDB(tmp_path_factory.mktemp("reports") / "runs.db")
    three = solve_instance(RunConfig(instance="electronics"))
    sampled = solve_instance(
        RunConfig(
            instance="electronics",
            scenarios=ScenarioConfig(spec="poisson:24", seed=3),
            model={"integer": False},
        )
    )
    tiny = solve_instance(RunConfig(instance=str(TINY)))
    with ResultsStore(db.path) as store:
        db.ids["three"] = store.save_run(to_record(three))
        db.ids["sampled"] = store.save_run(to_record(sampled))
        db.ids["tiny"] = store.save_run(to_record(tiny))
        rp = three.result.objective
        store.add_kpis(
            db.ids["three"],
            {
                "rp": rp,
                "ev": rp - 120_215.5,
                "eev": math.inf,
                "ws": rp - 120_118.5,
                "vss": math.inf,
                "evpi": 120_118.5,
            },
        )
        store.add_table(db.ids["three"], "oos_costs", fake_oos())
        rp = sampled.result.objective
        store.add_kpis(
            db.ids["sampled"],
            {
                "rp": rp,
                "ev": rp - 17_500.25,
                "eev": rp + 4_321.5,
                "ws": rp - 17_101.75,
                "vss": 4_321.5,
                "evpi": 17_101.75,
            },
        )
        db.ids["bare"] = store.save_run(
            RunRecord(
                instance="farmer",
                family="module",
                method="ef",
                scenarios="3",
                seed=None,
                n_scenarios=3,
                status="optimal",
                objective=-108_390.0,
                bound=-108_390.0,
                gap=0.0,
                config={"module": "farmer", "value": {"sense": "min"}},
                versions={},
                timings={},
                plan=pd.DataFrame({"variable": [], "product": [], "week": [], "value": []}),
                kpis={
                    "rp": -108_390.0,
                    "ev": -118_600.0,
                    "eev": -107_240.0,
                    "ws": -115_405.56,
                    "vss": 1_150.0,
                    "evpi": 7_015.56,
                },
            )
        )
    return db


@pytest.fixture(scope="session")
def stored(report_db: ReportDB) -> dict[str, StoredRun]:
    return {name: report_db.get(name) for name in report_db.ids}


@pytest.fixture(scope="session")
def farmer_db(tmp_path_factory, stored) -> Path:
    """Run 1: ``stochplan value --module stochplan.models.farmer --num-scens 3``; run 2: the
    session's three-point electronics run, copied (for a comparison across families)."""
    from stochplan.cli import main

    db = tmp_path_factory.mktemp("farmer") / "farmer.db"
    argv = ["value", "--module", "stochplan.models.farmer", "--num-scens", "3"]
    assert main([*argv, "--db", str(db), "--json"]) == 0
    with ResultsStore(db) as store:
        store.save_run(stored["three"].record)
    return db


@pytest.fixture(scope="session")
def farmer(farmer_db) -> StoredRun:
    with ResultsStore(farmer_db) as store:
        return store.get_run(1)


@pytest.fixture(scope="session")
def ph_run(tmp_path_factory) -> StoredRun:
    """The tiny instance solved by progressive hedging (its history stored as convergence)."""
    from stochplan.config import RunConfig, ScenarioConfig
    from stochplan.run import solve_instance, to_record

    outcome = solve_instance(
        RunConfig(
            instance=str(TINY),
            method="ph",
            scenarios=ScenarioConfig(spec="poisson:6", seed=1),
            model={"integer": False},
        )
    )
    with ResultsStore(tmp_path_factory.mktemp("ph") / "ph.db") as store:
        return store.get_run(store.save_run(to_record(outcome)))


# ----------------------------------------------------------------------------------------------
# Headless Chromium

#: Flags that keep Chromium off the (closed) network and out of the user's profile.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
)

#: Injected first into <head> of a copy of the page: records JavaScript errors (uncaught
#: exceptions, failed resource loads, rejected promises, console.error) and, once the page has
#: settled, what each chart drew, into attributes of <body> that --dump-dom prints.
PROBE = r"""<script>
(function () {
  var errors = [];
  window.addEventListener('error', function (e) {
    var what = e.message || (e.target && (e.target.src || e.target.href)) || 'resource';
    errors.push('error: ' + what);
  }, true);
  window.addEventListener('unhandledrejection', function (e) {
    var why = e.reason && (e.reason.stack || e.reason.message) || e.reason;
    errors.push('unhandledrejection: ' + why);
  });
  var consoleError = console.error;
  console.error = function () {
    errors.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
    return consoleError.apply(console, arguments);
  };
  function drawn(el) {
    var n = 0;
    el.querySelectorAll('path').forEach(function (p) {
      var d = p.getAttribute('d') || '';
      if (d.length > 4 && d !== 'M0,0Z') { n += 1; }
    });
    return n;
  }
  function report() {
    var charts = [];
    document.querySelectorAll('.js-plotly-plot').forEach(function (gd) {
      var box = gd.getBoundingClientRect();
      var areas = [];
      // a subplot's traces are drawn in a group of its name under an .overplot (a secondary
      // axis's under its main subplot's); its plot area is the drag rectangle laid over it
      gd.querySelectorAll('.cartesianlayer .subplot').forEach(function (sp) {
        var id = sp.classList[1] || '';
        var marks = 0;
        gd.querySelectorAll('.overplot > g.' + id).forEach(function (g) { marks += drawn(g); });
        var bg = gd.querySelector('.draglayer .nsewdrag[data-subplot="' + id + '"]');
        var r = bg ? bg.getBoundingClientRect() : null;  // none: a secondary axis overlay
        areas.push({id: id, marks: marks, overlay: !bg, width: r ? r.width : null,
                    height: r ? r.height : null});
      });
      charts.push({id: gd.id, width: box.width, height: box.height,
                   traces: (gd._fullData || []).length,
                   svgs: gd.querySelectorAll('.main-svg').length,
                   areas: areas});
    });
    document.body.setAttribute('data-test-errors', JSON.stringify(errors));
    document.body.setAttribute('data-test-charts', JSON.stringify(charts));
    document.body.setAttribute('data-test-height', String(document.documentElement.scrollHeight));
    // layout: every KPI card value and every table must stay inside its box
    var spills = [];
    document.querySelectorAll('.card .value').forEach(function (v) {
      var card = v.closest('.card').getBoundingClientRect(), r = v.getBoundingClientRect();
      if (v.scrollWidth > v.clientWidth + 1 || r.right > card.right + 0.5) {
        spills.push('card ' + v.textContent + ': ' + r.right + ' > ' + card.right);
      }
    });
    document.querySelectorAll('section table').forEach(function (t) {
      var sec = t.closest('section').getBoundingClientRect();
      var shown = (t.closest('.scroll') || t).getBoundingClientRect();
      if (shown.right > sec.right + 0.5) {
        spills.push('table ' + (t.className || '') + ': ' + shown.right + ' > ' + sec.right);
      }
    });
    document.body.setAttribute('data-test-spills', JSON.stringify(spills));
    document.body.setAttribute('data-test-done', '1');
  }
  window.addEventListener('load', function () { setTimeout(report, 2000); });
})();
</script>"""


@dataclass
class Page:
    """What the headless browser saw: errors, charts, the DOM after rendering."""

    dom: str
    errors: list[str]
    charts: list[dict]
    height: int
    stderr: str
    spills: list[str] = field(default_factory=list)


@dataclass
class Browser:
    binary: str

    def _run(self, url: str, *extra: str, timeout: float = 90.0) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory(prefix="stochplan-chromium-") as profile:
            return subprocess.run(
                [
                    self.binary,
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={profile}",
                    "--enable-logging=stderr",
                    "--v=0",
                    *extra,
                    url,
                ],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                env={**os.environ, "HOME": profile},
            )

    def render(self, html_file: Path, tmp: Path, width: int = 1400, height: int = 900) -> Page:
        """Open a copy of ``html_file`` with the probe injected; return what it recorded."""
        text = html_file.read_text(encoding="utf-8")
        probed = tmp / f"probed-{html_file.name}"
        probed.write_text(text.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
        proc = self._run(
            probed.as_uri(),
            "--virtual-time-budget=15000",
            f"--window-size={width},{height}",
            "--dump-dom",
        )
        body = re.search(r"<body([^>]*)>", proc.stdout)
        assert body, f"no DOM from chromium (exit {proc.returncode}): {proc.stderr[-2000:]}"
        attrs = dict(re.findall(r'(data-test-[a-z]+)="([^"]*)"', body.group(1)))
        assert attrs.get("data-test-done") == "1", (
            f"the page never finished loading: {proc.stderr[-2000:]}"
        )

        def unescape(s: str) -> str:
            import html

            return html.unescape(s)

        return Page(
            dom=proc.stdout,
            errors=json.loads(unescape(attrs["data-test-errors"])),
            charts=json.loads(unescape(attrs["data-test-charts"])),
            height=int(attrs["data-test-height"]),
            stderr=proc.stderr,
            spills=json.loads(unescape(attrs.get("data-test-spills", "[]"))),
        )

    def screenshot(self, html_file: Path, png: Path, width: int = 1400, height: int = 5000) -> Path:
        png.parent.mkdir(parents=True, exist_ok=True)
        proc = self._run(
            html_file.as_uri(),
            "--virtual-time-budget=15000",
            f"--window-size={width},{height}",
            f"--screenshot={png}",
        )
        assert png.exists() and png.stat().st_size > 10_000, (
            f"no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
        )
        return png


@pytest.fixture(scope="session")
def chromium() -> Browser:
    """Headless Chromium; installed by scripts/ensure-chromium where possible, else skipped."""
    if not ENSURE_CHROMIUM.exists():
        pytest.fail(f"{ENSURE_CHROMIUM} is missing")
    try:
        proc = subprocess.run(
            ["sh", str(ENSURE_CHROMIUM)], capture_output=True, text=True, timeout=900, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.skip("installing chromium took more than 15 minutes (scripts/ensure-chromium)")
    binary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if proc.returncode != 0 or not binary or not shutil.which(binary):
        reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "unknown reason"
        pytest.skip(f"no headless Chromium: {reason}")
    return Browser(binary)
