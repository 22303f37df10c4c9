"""The S&OP pre-build family (:mod:`stochplan.models.prebuild`, seed 002).

- The seed notebook's LP (``deterministic``) reproduced on its data: $134,638.00 on Q4_PUSH
  (the notebook's plan and inventory), $100,959.50 on BASELINE.
- The two-stage problem and its value report checked against an independent solve of the
  formulation, written here with numpy and scipy's ``linprog`` (HiGHS), to the cent.
- A two-month instance (``tests/data/prebuild_tiny``) worked out by hand.
- Scenarios: the profile mixture, reproducible per (seed, k); ``sample:N`` = ``poisson:N``.
- EF (both backends), L-shaped and PH (under mpiexec) agree within their gaps on poisson:500.
- Bad input: one line naming the field, the value and the file; exit status 2.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

from stochplan.cli import main
from stochplan.config import load_config
from stochplan.data import load_instance
from stochplan.errors import InfeasibleError, InputError
from stochplan.models import prebuild
from stochplan.reports.view import RunView
from stochplan.run import solve_instance, to_record
from stochplan.solve.ef import solve_ef
from stochplan.solve.results import CLOSED_GAP
from stochplan.solve.solvers import SolverOptions
from stochplan.store import ResultsStore

SOP = Path(prebuild.__file__).parent / "instances" / "sop-prebuild"
TINY = Path(__file__).parents[1] / "data" / "prebuild_tiny"
MPIEXEC = Path(sys.executable).parent / "mpiexec"


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _solve(instance: str, scenarios: str = "named", seed: int = 0, method: str = "ef",
           **model: object):
    config = load_config(None, instance=instance, method=method, model=model or None,
                         scenarios={"spec": scenarios, "seed": seed})
    outcome = solve_instance(config)
    assert outcome is not None
    return outcome


# ----------------------------------------------------------------------------------------------
# The seed's data, written out here (the independent solve does not read the package's files)

Q3 = [15000.0, 15500.0, 16000.0]
Q4 = {"BASELINE": [18000.0, 22000.0, 20000.0], "Q4_PUSH": [24000.0, 30000.0, 26880.0]}
SEED = {"C": 20000.0, "W": 24000.0, "W_safe": 20880.0, "I0": 9000.0, "c_P": 1.0, "h": 0.22,
        "c_O": 0.5, "c_X": 3.0, "X_max": 2000.0, "c_L": 5.0, "r": 0.15}


def independent(scenarios: list[tuple[float, list[float]]], first: np.ndarray | None = None,
                hard_cap: bool = False, q3: list[float] = Q3, d=SEED) -> tuple[float, np.ndarray]:
    """The formulation of the issue as one LP, with scipy's linprog: (objective, x).

    x = [P1..P3, I1..I3, O1..O3]; per scenario y = [P, I, O, X, L] at months 4..6. First-stage
    safety stock int(r D[t+1]) with D[4] the largest over the instance's two profiles (the
    issue's "max over scenarios of D_{t+1,s}"), second-stage int(r D[t+1,s]). ``first`` fixes
    x (EEV). ``hard_cap``: the notebook's LP (O, X and L fixed to 0).
    """
    n1, n2 = 9, 15
    S = len(scenarios)
    n = n1 + S * n2
    cost = np.zeros(n)
    lo, hi = np.zeros(n), np.full(n, np.inf)
    rows, rhs, eq_rows, eq_rhs = [], [], [], []

    def row() -> np.ndarray:
        return np.zeros(n)

    nxt = [q3[1], q3[2], max(q[0] for q in Q4.values())]
    for t in range(3):
        p_, i_, o_ = t, 3 + t, 6 + t  # columns of P[t], I[t], O[t]
        cost[[p_, i_, o_]] = d["c_P"], d["h"], d["c_O"]
        lo[i_], hi[p_], hi[i_] = math.floor(nxt[t] * d["r"]), d["C"], d["W"]
        if hard_cap:
            hi[o_] = 0.0
        r = row()  # I[t] - I[t-1] - P[t] = -D[t]   (I[0] = I0)
        r[i_], r[p_] = 1.0, -1.0
        if t:
            r[i_ - 1] = -1.0
        eq_rows.append(r)
        eq_rhs.append(-q3[t] + (d["I0"] if t == 0 else 0.0))
        r = row()  # I[t] - O[t] <= W_safe
        r[i_], r[o_] = 1.0, -1.0
        rows.append(r)
        rhs.append(d["W_safe"])
    for s, (p, D) in enumerate(scenarios):
        base = n1 + s * n2
        for t in range(3):
            p_, i_, o_, x_, l_ = (base + 3 * k + t for k in range(5))
            cost[[p_, i_, o_, x_, l_]] = p * np.array([d["c_P"], d["h"], d["c_O"], d["c_X"],
                                                      d["c_L"]])
            hi[[p_, i_, x_, l_]] = d["C"], d["W"], d["X_max"], D[t]
            if t < 2:
                lo[i_] = math.floor(D[t + 1] * d["r"])
            if hard_cap:
                hi[[o_, x_, l_]] = 0.0
            r = row()  # I[t] - I[t-1] - P[t] - X[t] - L[t] = -D[t,s]   (I[3] first stage)
            r[i_], r[p_], r[x_], r[l_] = 1.0, -1.0, -1.0, -1.0
            r[i_ - 1 if t else 5] = -1.0
            eq_rows.append(r)
            eq_rhs.append(-D[t])
            r = row()  # I[t] - O[t] <= W_safe
            r[i_], r[o_] = 1.0, -1.0
            rows.append(r)
            rhs.append(d["W_safe"])
    if first is not None:
        lo[:n1] = hi[:n1] = first
    res = linprog(cost, A_ub=np.array(rows), b_ub=rhs, A_eq=np.array(eq_rows), b_eq=eq_rhs,
                  bounds=list(zip(lo, hi)), method="highs")
    if res.status == 2:
        return math.inf, np.full(n, np.nan)
    assert res.status == 0, res.message
    return float(res.fun), res.x


def _plan_vector(plan: pd.DataFrame) -> np.ndarray:
    """A stored first-stage plan as x = [P1..P3, I1..I3, O1..O3]."""
    table = plan.set_index(["variable", "month"])["value"]
    return np.array([float(table.get((v, t), 0.0)) for v in "PIO" for t in (1, 2, 3)])


# ----------------------------------------------------------------------------------------------
# Loading and options (no solver)


def test_the_instance_is_the_seed_data():
    inst = load_instance("sop-prebuild")
    assert inst.family == "prebuild" and inst.profiles == ("BASELINE", "Q4_PUSH")
    assert inst.months == ("July", "August", "September", "October", "November", "December")
    assert inst.quarters == ("Q3",) * 3 + ("Q4",) * 3 and inst.first_stage_months == 3
    assert inst.profile_demand.tolist() == [Q3 + Q4["BASELINE"], Q3 + Q4["Q4_PUSH"]]
    assert inst.profile_probabilities.tolist() == [0.5, 0.5]
    assert inst.capacity == 20000.0
    assert (inst.physical_capacity, inst.safe_capacity, inst.initial_inventory) == (
        24000.0, 20880.0, 9000.0)
    p = inst.params
    assert (p.production_cost, p.storage_cost, p.safety_stock_ratio, p.threshold) == (
        1.0, 0.22, 0.15, 0.87)
    assert (p.expedite_cost, p.expedite_cap, p.lost_sales_penalty, p.overflow_penalty) == (
        3.0, 2000.0, 5.0, 0.5)
    # int(0.15 x 15500), int(0.15 x 16000), int(0.15 x max(18000, 24000))
    assert inst.first_stage_floors.tolist() == [2325.0, 2400.0, 3600.0]
    assert inst.second_stage_floors(np.array(Q4["Q4_PUSH"])).tolist() == [4500.0, 4032.0]


def test_options_override_the_data_and_deterministic_keeps_one_scenario():
    inst = prebuild.resolve("sop-prebuild", {"threshold": 0.9, "lost_sales_penalty": 7.5})
    assert inst.safe_capacity == 21600.0 and inst.params.lost_sales_penalty == 7.5
    assert inst.parameters.threshold == 0.87  # the data stay as read
    det = prebuild.resolve("sop-prebuild", {"deterministic": "Q4_PUSH"})
    s = prebuild.scenario_set(det, "named")
    assert s.labels == ("Q4_PUSH",) and s.probabilities.tolist() == [1.0]
    assert s.data.tolist() == [Q4["Q4_PUSH"]]
    assert det.first_stage_floors.tolist() == [2325.0, 2400.0, 3600.0]
    base = prebuild.resolve("sop-prebuild", {"deterministic": "BASELINE"})
    assert base.first_stage_floors.tolist() == [2325.0, 2400.0, 2700.0]


@pytest.mark.parametrize("options, field, problem", [
    ({"threshold": 0.0}, "model.threshold", "must be > 0"),
    ({"threshold": 1.2}, "model.threshold", "must be <= 1"),
    ({"expedite_cap": -1.0}, "model.expedite_cap", "must be >= 0"),
    ({"deterministic": "Q5_PUSH"}, "model.deterministic", "not a scenario of sop-prebuild"),
    ({"integer": False}, "model.integer", "unknown option"),
])
def test_bad_options_name_the_option(options, field, problem):
    with pytest.raises(InputError) as err:
        prebuild.resolve("sop-prebuild", options)
    assert err.value.field == field and problem in err.value.problem


def test_deterministic_mode_builds_the_notebook_lp():
    """No overflow, expedite or lost-sales variables; the threshold is a hard cap."""
    import pyomo.environ as pyo

    inst = prebuild.resolve("sop-prebuild", {"deterministic": "Q4_PUSH"})
    m = prebuild.build_model(inst, np.array(Q4["Q4_PUSH"]))
    assert not any(hasattr(m, v) for v in ("O", "X", "L"))
    assert {v.name for v in m.component_objects(pyo.Var)} == {"P", "I"}
    assert m.warehouse[3].upper == 20880.0 and m.warehouse[3].body is m.I[3]
    two = prebuild.build_model(prebuild.resolve("sop-prebuild"), np.array(Q4["Q4_PUSH"]))
    assert {v.name for v in two.component_objects(pyo.Var)} == {"P", "I", "O", "X", "L"}
    assert [m.safety_stock[t].lower for t in range(1, 6)] == [2325, 2400, 3600, 4500, 4032]


def test_the_matrix_data_map_carries_the_safety_stocks():
    """scenario_data = second-stage demand + int(r x D[t+1,s]); the model built from it is
    the model built from the demand alone."""
    kwargs = prebuild.creator_kwargs(prebuild.resolve("sop-prebuild"), "named")
    data, prob = prebuild.scenario_data("scen1", **kwargs)
    assert data.tolist() == [*Q4["Q4_PUSH"], 4500.0, 4032.0] and prob == 0.5
    full = prebuild.data_scenario_creator("scen1", data, **kwargs)
    plain = prebuild.data_scenario_creator("scen1", data[:3], **kwargs)
    assert [full.safety_stock[t].lower for t in (4, 5)] == [4500.0, 4032.0]
    assert [plain.safety_stock[t].lower for t in (4, 5)] == [4500.0, 4032.0]


# ----------------------------------------------------------------------------------------------
# Scenarios


def test_sampled_scenarios_are_the_profile_mixture_per_seed_and_k():
    """Scenario k of seed s: a profile drawn with its probability from default_rng([s, k]),
    then Poisson demand per second-stage month around it; the same in any N, drawn alone,
    and for sample:N and poisson:N."""
    inst = prebuild.resolve("sop-prebuild")
    small = prebuild.scenario_set(inst, "sample:8", 42)
    large = prebuild.scenario_set(inst, "poisson:50", 42)
    assert large.spec == "poisson:50" and small.spec == "sample:8"
    assert np.array_equal(small.data, large.data[:8])
    profiles = np.array([Q4["BASELINE"], Q4["Q4_PUSH"]])
    for k in (0, 7, 49):
        rng = np.random.default_rng([42, k])
        level = rng.choice(2, p=[0.5, 0.5])
        assert np.array_equal(large.data[k], rng.poisson(profiles[level]).astype(float))
        source = prebuild.FAMILY.source(instance=inst, scenarios="poisson:50", seed=42)
        assert np.array_equal(source.data(k), large.data[k])
        assert source.probability(k) == pytest.approx(1 / 50)
    # both profiles appear, each within a few standard deviations of its mean
    nearest = np.abs(large.data[:, None, :] - profiles[None]).sum(axis=2).argmin(axis=1)
    assert 10 < int(nearest.sum()) < 40
    assert np.all(np.abs(large.data - profiles[nearest]) < 6 * np.sqrt(profiles[nearest]))
    assert not np.array_equal(prebuild.scenario_set(inst, "sample:8", 43).data, small.data)


@pytest.mark.parametrize("options, spec, field", [
    ({}, "qmc:8", "scenarios"),
    ({"deterministic": "Q4_PUSH"}, "poisson:8", "model.deterministic"),
    ({"deterministic": "Q4_PUSH"}, "sample:8", "model.deterministic"),
])
def test_specs_that_do_not_apply_are_refused(options, spec, field):
    inst = prebuild.resolve("sop-prebuild", options or None)
    with pytest.raises(InputError) as err:
        prebuild.scenario_set(inst, spec, 0)
    assert err.value.field == field


# ----------------------------------------------------------------------------------------------
# Bad input: one line, naming the field, the value and the file; exit status 2


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


BAD_INPUT = {
    "missing month": ("demand.csv", "Q4_PUSH,November,Q4,30000,360000.00,0.5\n", "",
                      "FISCAL_MONTH", "November", "missing for scenario Q4_PUSH"),
    "no probability": ("demand.csv", "BASELINE,July,Q3,15000,180000.00,0.5",
                       "BASELINE,July,Q3,15000,180000.00,", "PROBABILITY (row 2)", "",
                       "missing: scenario BASELINE needs a probability"),
    "probabilities not summing to 1": (
        "demand.csv", ",0.5\nQ4_PUSH", ",0.5\nQ4_PUSH", "PROBABILITY",
        {"BASELINE": 0.5, "Q4_PUSH": 0.6}, "must sum to 1 (they sum to 1.1)"),
    "threshold above 1": ("warehouse.csv", ",0.87", ",1.2", "OVERFLOW_THRESHOLD_PCT", 1.2,
                          "must be in (0, 1]"),
    "threshold 0": ("warehouse.csv", ",0.87", ",0", "OVERFLOW_THRESHOLD_PCT", 0.0,
                    "must be in (0, 1]"),
    "negative capacity": ("capacity.csv", "800,20000", "800,-20000", "MONTHLY_CAPACITY",
                          -20000.0, "must be >= 0"),
    "Q3 demand differs": ("demand.csv", "Q4_PUSH,August,Q3,15500", "Q4_PUSH,August,Q3,15600",
                          "TOTAL_DEMAND (Q4_PUSH, August)", 15600.0,
                          "first stage is not well defined"),
}


@pytest.fixture
def bad_instance(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, tuple]:
    case = BAD_INPUT[request.param]
    folder = tmp_path / "bad"
    shutil.copytree(SOP, folder)
    name, old, new = case[:3]
    if request.param == "probabilities not summing to 1":
        text = (folder / name).read_text().splitlines()
        text = [line[:-3] + "0.6" if line.startswith("Q4_PUSH") else line for line in text]
        (folder / name).write_text("\n".join(text) + "\n")
    else:
        _edit(folder / name, old, new)
    return folder, case


@pytest.mark.parametrize("bad_instance", list(BAD_INPUT), indirect=True)
def test_bad_input_is_one_line_naming_field_value_and_file(bad_instance, tmp_path, capsys):
    folder, (name, _, _, field, value, problem) = bad_instance
    with pytest.raises(InputError) as err:
        load_instance(folder)
    assert err.value.field == field and err.value.value == value
    assert problem in err.value.problem
    assert err.value.source == str(folder / name)
    assert "\n" not in str(err.value)
    assert main(["solve", str(folder), "--db", str(tmp_path / "r.db"), "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stochplan: error: ")
    assert field in lines[0] and name in lines[0]
    assert not (tmp_path / "r.db").exists()


def test_bad_option_on_the_command_line_exits_2(tmp_path, capsys):
    db = str(tmp_path / "r.db")
    for argv in (["--set", "deterministic=Q5"], ["--set", "threshold=1.5"],
                 ["--set", "deterministic=Q4_PUSH", "--scenarios", "poisson:10"]):
        assert main(["solve", "sop-prebuild", *argv, "--db", db, "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "stochplan: error:" in err[0]


# ----------------------------------------------------------------------------------------------
# The seed notebook's LP (deterministic mode)


@pytest.mark.solve
def test_the_notebook_lp_on_q4_push():
    """$134,638.00: production 118,380, storage 16,258; July 18,380 then 20,000 every month;
    inventory 12,380 / 16,880 / 20,880 / 16,880 / 6,880 / 0."""
    outcome = _solve("sop-prebuild", deterministic="Q4_PUSH")
    assert outcome.result.objective == pytest.approx(134638.00, abs=1e-6)
    k = outcome.kpis.headline
    assert k["production_cost"] == pytest.approx(118380.0, abs=1e-6)
    assert k["storage_cost"] == pytest.approx(16258.0, abs=1e-6)
    assert k["overflow_cost"] == k["expedite_cost"] == k["lost_sales_cost"] == 0.0
    plan = outcome.kpis.tables["build_plan"]
    assert len(plan) == 6 and set(plan["label"]) == {"Q4_PUSH"}
    np.testing.assert_allclose(plan["recommended_quantity"], [18380] + [20000] * 5, atol=1e-6)
    np.testing.assert_allclose(plan["projected_inventory"],
                               [12380, 16880, 20880, 16880, 6880, 0], atol=1e-6)
    # KPIs: the September peak sits at the threshold (87 % of the warehouse)
    assert k["expected_peak_inventory"] == pytest.approx(20880.0)
    assert k["worst_peak_warehouse_pct"] == pytest.approx(87.0)
    assert k["expected_months_at_threshold"] == 1.0 and k["fill_rate"] == 1.0
    assert k["q3_production"] == pytest.approx(58380.0)
    assert k["q3_build"] == pytest.approx(11880.0)
    # independently: the notebook's LP written with linprog
    value, _ = independent([(1.0, Q4["Q4_PUSH"])], hard_cap=True)
    assert value == pytest.approx(134638.00, abs=1e-6)


@pytest.mark.solve
def test_the_notebook_lp_on_baseline():
    outcome = _solve("sop-prebuild", deterministic="BASELINE")
    assert outcome.result.objective == pytest.approx(100959.50, abs=1e-6)
    assert set(outcome.result.plan["variable"]) == {"P", "I"}


@pytest.mark.solve
@pytest.mark.parametrize("value", ["Q4_PUSH", '"Q4_PUSH"'])
def test_cli_solve_deterministic_then_show_prints_the_build_plan(tmp_path, capsys, value):
    db = str(tmp_path / "r.db")
    out = _json(capsys, ["solve", "sop-prebuild", "--set", f"deterministic={value}",
                         "--db", db, "--json", "--quiet"])
    assert out["objective"] == pytest.approx(134638.00, abs=1e-6)
    assert out["n_scenarios"] == 1 and out["kpis"]["storage_cost"] == pytest.approx(16258.0)
    assert main(["show", str(out["run_id"]), "--db", db]) == 0
    text = capsys.readouterr().out
    assert "$134,638.00" in text and "RECOMMENDED BUILD PLAN" in text
    assert "18,380" in text and "deterministic Q4_PUSH" in text
    with ResultsStore(db) as store:
        record = store.get_run(out["run_id"]).record
    table = record.tables["build_plan"]
    assert list(table.columns[:7]) == ["scenario", "label", "probability", "period",
                                       "fiscal_month", "fiscal_quarter", "stage"]
    for col in ("demand", "recommended_quantity", "capacity_available",
                "capacity_utilisation_pct", "projected_inventory", "warehouse_utilisation_pct",
                "production_cost", "storage_cost", "total_cost", "model_version"):
        assert col in table.columns
    assert table["capacity_utilisation_pct"].round(1).tolist() == [91.9] + [100.0] * 5
    assert table["threshold_utilisation_pct"].round(1).tolist()[:3] == [59.3, 80.8, 100.0]


# ----------------------------------------------------------------------------------------------
# The two-stage problem against an independent solve


@pytest.mark.solve
def test_two_scenarios_agree_with_an_independent_solve_to_the_cent():
    outcome = _solve("sop-prebuild")
    res = outcome.result
    value, x = independent([(0.5, Q4["BASELINE"]), (0.5, Q4["Q4_PUSH"])])
    assert res.objective == pytest.approx(value, abs=0.005)
    assert value == pytest.approx(122464.40, abs=0.005)
    # the stochastic plan costs the same in the independent model
    fixed, _ = independent([(0.5, Q4["BASELINE"]), (0.5, Q4["Q4_PUSH"])],
                           first=_plan_vector(res.plan))
    assert fixed == pytest.approx(value, abs=0.005)
    k = outcome.kpis.headline
    parts = ("production_cost", "storage_cost", "overflow_cost", "expedite_cost",
             "lost_sales_cost")
    assert sum(k[p] for p in parts) == pytest.approx(k["expected_cost"], abs=1e-6)
    assert k["expected_cost"] == pytest.approx(res.objective, abs=1e-6)
    plan = outcome.kpis.tables["build_plan"]
    assert len(plan) == 12
    first = plan[plan["stage"] == "first"]
    for col in ("recommended_quantity", "projected_inventory", "total_cost"):
        a, b = (first[first["label"] == lab][col].to_numpy() for lab in ("BASELINE", "Q4_PUSH"))
        assert np.array_equal(a, b)
    per = outcome.kpis.tables["scenario_kpis"]
    assert per["label"].tolist() == ["BASELINE", "Q4_PUSH"]
    assert per["fill_rate"].between(0, 1).all()


@pytest.mark.solve
def test_a_scenario_file_with_the_two_profiles_is_the_named_problem(tmp_path):
    """``file:PATH`` scenarios (columns scenario, month = 4..6, value, probability) give the
    same recourse problem as the named profiles."""
    path = tmp_path / "q4.csv"
    rows = [f"{name},{4 + t},{d:g},0.5" for name, D in Q4.items() for t, d in enumerate(D)]
    path.write_text("scenario,month,value,probability\n" + "\n".join(rows) + "\n")
    from_file = _solve("sop-prebuild", f"file:{path}")
    assert from_file.scenarios.labels == ("BASELINE", "Q4_PUSH")
    assert from_file.result.objective == pytest.approx(122464.40, abs=0.005)


@pytest.mark.solve
def test_value_report_agrees_with_independent_solves(tmp_path, capsys):
    """RP, EV and WS are re-solved independently; EEV is stochplan's EV plan costed in the
    independent model; VSS = EEV - RP, EVPI = RP - WS."""
    db = str(tmp_path / "v.db")
    out = _json(capsys, ["value", "sop-prebuild", "--db", db, "--json", "--quiet"])
    scenarios = [(0.5, Q4["BASELINE"]), (0.5, Q4["Q4_PUSH"])]
    rp, _ = independent(scenarios)
    mean = list(np.mean([Q4["BASELINE"], Q4["Q4_PUSH"]], axis=0))
    ev, _ = independent([(1.0, mean)])
    ws = sum(p * independent([(1.0, D)])[0] for p, D in scenarios)
    with ResultsStore(db) as store:
        record = store.get_run(out["run_id"]).record
    eev, _ = independent(scenarios, first=_plan_vector(record.tables["ev_plan"]))
    for key, want in (("rp", rp), ("ev", ev), ("eev", eev), ("ws", ws),
                      ("vss", eev - rp), ("evpi", rp - ws)):
        assert out[key] == pytest.approx(want, abs=0.005), key
    assert out["integer_policy"] is None
    assert out["vss"] > 0 and out["evpi"] > 0


@pytest.mark.solve
def test_dashboard_panels_read_the_stored_run(tmp_path, capsys):
    db = str(tmp_path / "v.db")
    solved = _json(capsys, ["solve", "sop-prebuild", "--db", db, "--json", "--quiet"])
    valued = _json(capsys, ["value", "sop-prebuild", "--db", db, "--json", "--quiet"])
    with ResultsStore(db) as store:
        before = RunView(store.get_run(solved["run_id"]))
        after = RunView(store.get_run(valued["run_id"]))
    keys = ["prebuild-plan", "prebuild-demand", "prebuild-inventory", "prebuild-utilisation",
            "prebuild-cost", "prebuild-ev-plan"]
    panels = prebuild.FAMILY.panels(before)
    assert [p.key for p in panels] == keys
    assert all(p.figure is not None for p in panels[1:5]) and panels[5].figure is None
    assert "stochplan value" in panels[5].html
    ev = prebuild.FAMILY.panels(after)[5]
    assert ev.figure is not None
    names = {t.name for t in ev.figure.data}
    assert names == {"stochastic (RP) plan", "mean-value (EV) plan"}
    inventory = prebuild.FAMILY.panels(after)[2].figure
    hump = [t for t in inventory.data if t.name == "Inventory (Q4_PUSH)"][0]
    np.testing.assert_allclose(hump.y, [9000, 12380, 16880, 20880, 16880, 6880, 0], atol=1e-6)
    out = tmp_path / "d.html"
    assert main(["dashboard", str(valued["run_id"]), "--db", db, "-o", str(out)]) == 0
    assert 'id="prebuild-inventory"' in out.read_text()


# ----------------------------------------------------------------------------------------------
# The hand-checkable instance


@pytest.mark.solve
def test_tiny_instance_by_hand(tmp_path, capsys):
    """Month 1 decided now (demand 1), month 2 demand 2 or 12 (p = 1/2); capacity 5, W_phys 8,
    W_safe = int(0.375 x 8) = 3, I_0 = 0; c_P 1, h 0.5, c_O 1, c_X 3 (at most 2), c_L 10;
    safety stock in month 1: int(0.25 x max(2, 12)) = 3, so I_1 in [3, 4] (P_1 <= 5).

    RP: raising I_1 from 3 to 4 costs 1 + 0.5 + 1 (over W_safe) = 2.5 and saves a lost sale
    (10) in the high scenario and adds 0.5 of storage in the low one, each with p = 1/2:
    I_1 = 4, P_1 = 5, O_1 = 1, first stage 5 + 2 + 1 = 8. Low: I_2 = 2 (storage 1). High:
    P_2 = 5, X = 2, L = 1: 5 + 6 + 10 = 21. RP = 8 + (1 + 21) / 2 = 19.
    EV (demand 7): I_1 = 3, P_1 = 4 (5.5), P_2 = 4: 9.5. EEV: 5.5 + (0.5 + 31) / 2 = 21.25
    (high: 5 + 6 + 2 x 10). WS: low alone 5.5 + 0.5 = 6, high alone 8 + 21 = 29: 17.5.
    """
    outcome = _solve(str(TINY))
    assert outcome.result.objective == pytest.approx(19.0, abs=1e-9)
    x = outcome.result.plan.set_index(["variable", "month"])["value"]
    assert (x[("P", 1)], x[("I", 1)], x[("O", 1)]) == pytest.approx((5.0, 4.0, 1.0))
    plan = outcome.kpis.tables["build_plan"].set_index(["label", "period"])
    assert plan.loc[("low", 2), "projected_inventory"] == pytest.approx(2.0)
    high = plan.loc[("high", 2)]
    assert (high["recommended_quantity"], high["expedited_quantity"], high["lost_sales"]) == (
        pytest.approx(5.0), pytest.approx(2.0), pytest.approx(1.0))
    # expected demand 1 + (2 + 12) / 2 = 8 units, expected loss 1 / 2
    assert outcome.kpis.headline["fill_rate"] == pytest.approx(1 - 0.5 / 8)
    assert outcome.kpis.headline["overflow_cost"] == pytest.approx(1.0)
    out = _json(capsys, ["value", str(TINY), "--db", str(tmp_path / "v.db"), "--json"])
    assert (out["rp"], out["ev"], out["eev"], out["ws"]) == pytest.approx(
        (19.0, 9.5, 21.25, 17.5), abs=1e-9)
    assert (out["vss"], out["evpi"]) == pytest.approx((2.25, 1.5), abs=1e-9)


@pytest.mark.solve
def test_tiny_instance_options_by_hand():
    """Lost sales at 2 (< expedite 3): a unit more in month 1 costs 2.5 (production 1,
    storage 0.5, overflow 1) and saves only 2 x 1/2, so I_1 stays at its safety stock 3;
    high: P_2 = 5, L = 4 (13), low:
    storage 0.5; RP = 5.5 + (0.5 + 13) / 2 = 12.25. The notebook's LP on "low": P_1 = 1,
    P_2 = 2 (safety stock int(0.25 x 2) = 0): 3. On "high" the hard cap (3) and capacity (5)
    cannot meet 12 units: infeasible, naming the balance."""
    cheap = _solve(str(TINY), lost_sales_penalty=2.0)
    assert cheap.result.objective == pytest.approx(12.25, abs=1e-9)
    x = cheap.result.plan.set_index(["variable", "month"])["value"]
    assert x[("I", 1)] == pytest.approx(3.0)
    assert _solve(str(TINY), deterministic="low").result.objective == pytest.approx(3.0)
    with pytest.raises(InfeasibleError) as err:
        _solve(str(TINY), deterministic="high")
    assert "inventory_balance" in err.value.families


# ----------------------------------------------------------------------------------------------
# Methods agree


@pytest.mark.solve
def test_pyomo_and_matrix_backends_agree_on_the_affine_data_map():
    """40 sampled scenarios take the matrix backend's affine path (the safety stocks travel
    with the demand, so the map is exact); the Pyomo EF gives the same optimum."""
    inst = prebuild.resolve("sop-prebuild")
    names = prebuild.scenario_set(inst, "poisson:40", 7).names
    kwargs = prebuild.creator_kwargs(inst, "poisson:40", 7)
    pyomo = solve_ef(prebuild, names, kwargs, SolverOptions(backend="pyomo"))
    matrix = solve_ef(prebuild, names, kwargs, SolverOptions(backend="matrix"))
    assert matrix.info["backend"] == "matrix (affine)"
    assert matrix.objective == pytest.approx(pyomo.objective, rel=1e-9)


SPEC500, SEED500 = "poisson:500", 3


@pytest.mark.solve
def test_ef_and_lshaped_agree_on_poisson_500():
    ef = _solve("sop-prebuild", SPEC500, SEED500)
    ls = _solve("sop-prebuild", SPEC500, SEED500, method="lshaped")
    tol = 1e-9 * abs(ef.result.objective)
    assert ls.result.bound <= ef.result.objective + tol <= ls.result.objective + 2 * tol
    assert ls.result.gap <= 1e-4
    assert (ls.result.objective - ef.result.objective) / ef.result.objective <= 1e-4
    record = to_record(ef)
    assert len(record.tables["build_plan"]) == 500 * 6
    assert record.tables["demand"]["month"].tolist()[:3] == [4, 5, 6]


@pytest.mark.mpi
def test_ph_agrees_with_the_extensive_form_on_poisson_500(tmp_path):
    """``solve --method ph`` on 3 ranks (hub, Lagrangian bound, incumbent; bundles of 250
    scenarios) closes to 0.1 % in a few iterations, about 10 s: bound <= EF <= incumbent."""
    if not MPIEXEC.exists():
        pytest.skip(f"no mpiexec beside {sys.executable}")
    ef = _solve("sop-prebuild", SPEC500, SEED500).result
    db = tmp_path / "ph.db"
    cmd = [str(MPIEXEC), "-n", "3", sys.executable, "-m", "mpi4py", "-m", "stochplan", "solve",
           "sop-prebuild", "--method", "ph", "--scenarios", SPEC500, "--seed", str(SEED500),
           "--rel-gap", "0.001", "--max-iterations", "50", "--db", str(db), "--json"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    tol = 1e-9 * abs(ef.objective)
    assert out["status"] == "gap_reached" and CLOSED_GAP < out["gap"] <= 0.001  # gap open
    assert out["bound"] <= ef.objective + tol and ef.objective <= out["objective"] + tol
    assert (out["objective"] - ef.objective) / ef.objective <= 0.001
