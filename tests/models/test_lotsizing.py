"""The lot-sizing family (seed 001): the furniture instance, a hand-checked tiny instance, the
deterministic case against an independent scipy ``milp`` solve, the value report in
maximisation, the options, bad input through the command line, and the command line end to
end (solve, show, dashboard)."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from stochplan.analysis.value import value_report
from stochplan.cli import main
from stochplan.config import load_config
from stochplan.data import load_instance
from stochplan.errors import InputError
from stochplan.family import ScenarioSource, get_family
from stochplan.models.lotsizing.data import OrderSampler
from stochplan.run import solve_instance, to_record
from stochplan.solve.ef import solve_ef
from stochplan.solve.solvers import SolverOptions
from stochplan.store import ResultsStore

FAMILY = get_family("lotsizing")
MODULE = FAMILY.module
ROOT = Path(__file__).resolve().parents[2]
FURNITURE = ROOT / "stochplan" / "models" / "lotsizing" / "instances" / "furniture"
TINY = ROOT / "tests" / "data" / "lotsizing_tiny"
#: Exact MIP solves: the deterministic and hand-checked optima are compared to the cent.
EXACT = SolverOptions(mip_rel_gap=0.0)


def solve(instance, spec: str = "named", seed: int = 0, options: dict | None = None,
          solver: SolverOptions = EXACT):
    inst = FAMILY.resolve(instance, options)
    names = FAMILY.scenario_set(inst, spec, seed).names
    return inst, solve_ef(MODULE, names, FAMILY.creator_kwargs(inst, spec, seed), solver)


def grid(table: pd.DataFrame, variable: str, inst) -> np.ndarray:
    rows = table[table["variable"] == variable]
    out = rows.pivot_table(index="product", columns="week", values="value", aggfunc="sum")
    return out.reindex(index=list(inst.products), columns=list(inst.weeks)).to_numpy(float)


# ----------------------------------------------------------------------------------------------
# The furniture instance (the tutorial's step-4 tables)


@pytest.fixture(scope="module")
def furniture():
    return load_instance("furniture")


def test_furniture_has_the_tutorial_sizes(furniture):
    """9 products, 6 machines, 9 materials, 4 weeks, 8 customers, 15 orders (6 of them GOLD)."""
    inst = furniture
    assert (inst.n_products, len(inst.machines), len(inst.materials), inst.n_weeks) == (9, 6, 9, 4)
    assert (len(inst.customers), inst.n_orders) == (8, 15)
    assert inst.products[:3] == ("Chair", "Table", "Desk")
    assert inst.order_tier.count("GOLD") == 6 and inst.order_tier.count("BRONZE") == 4
    assert inst.order_week.tolist() == [1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert inst.order_target.sum() == 450.0
    # a setup pays $100 on cutting and $150 on assembly, and takes 2 + 3 hours there
    np.testing.assert_array_equal(inst.product_setup_cost, np.full(9, 250.0))
    assert inst.setup_hours[:, :2].tolist() == [[2.0, 3.0]] * 9


def test_production_bound_from_demand_hours_and_materials(furniture):
    """U = min(max demand, (H_m - setup hours) / hours, A_k / use): the max demand everywhere
    but the wardrobe, whose 80 board feet of wood leave 1600 / 80 = 20 < 25 a week."""
    np.testing.assert_allclose(furniture.production_bound,
                               [100, 50, 30, 20, 40, 35, 15, 20, 60])
    assert furniture.max_demand[7] == 25.0


def test_random_data_is_one_item_axis(furniture):
    """The 15 order quantities, then product@week market cells; Poisson around the targets and
    the midpoints of min and max demand; ``named`` is that nominal scenario."""
    unc = FAMILY.uncertainty(furniture)
    items = unc.axes["item"]
    assert len(items) == 15 + 9 * 4
    assert items[:2] == ("O01", "O02") and items[15] == "Chair@1" and items[-1] == "Nightstand@4"
    np.testing.assert_array_equal(unc.rates[:15], furniture.order_target)
    assert unc.rates[15] == 50.0 and unc.rates[-1] == 30.0
    named = FAMILY.scenario_set(furniture, "named")
    assert named.labels == ("nominal",)
    np.testing.assert_array_equal(named.data[0], unc.rates)
    assert unc.sampler is None  # no cancellations by default: sample:N = poisson:N


def test_cancellations_are_drawn_after_the_quantities(furniture):
    """With ``cancel_bronze = 1`` every BRONZE order is 0 and everything else is the Poisson
    draw of the same scenario; scenario k is the same alone and in sets of 6 and 40."""
    inst = furniture.with_options(cancel_bronze=1.0, cancel_silver=0.5)
    small = FAMILY.scenario_set(inst, "sample:6", 3)
    large = FAMILY.scenario_set(inst, "sample:40", 3)
    plain = FAMILY.scenario_set(furniture, "sample:6", 3)
    np.testing.assert_array_equal(small.data, large.data[:6])
    bronze = [i for i, t in enumerate(inst.order_tier) if t == "BRONZE"]
    gold = [i for i, t in enumerate(inst.order_tier) if t == "GOLD"]
    assert not large.data[:, bronze].any()
    np.testing.assert_array_equal(small.data[:, gold], plain.data[:, gold])
    np.testing.assert_array_equal(small.data[:, 15:], plain.data[:, 15:])
    silver = [i for i, t in enumerate(inst.order_tier) if t == "SILVER"]
    share = float((large.data[:, silver] == 0).mean())
    assert 0.3 < share < 0.7
    source = ScenarioSource.of(FAMILY, instance=inst, scenarios="sample:40", seed=3)
    np.testing.assert_array_equal(source.data(17), large.data[17])
    sampler = FAMILY.uncertainty(inst).sampler
    assert isinstance(sampler, OrderSampler)
    np.testing.assert_array_equal(sampler(3, 17), large.data[17])


def test_options_are_validated(furniture):
    with pytest.raises(InputError, match="options.production_stage"):
        furniture.with_options(production_stage="third")
    with pytest.raises(InputError, match=r"options.cancel_gold = 1.5.*must be <= 1"):
        furniture.with_options(cancel_gold=1.5)
    with pytest.raises(InputError, match="unknown option"):
        furniture.with_options(setup_cost=1.0)


# ----------------------------------------------------------------------------------------------
# The hand-checkable instance: one product, two weeks


@pytest.mark.solve
def test_tiny_sets_up_twice_and_the_batch_binds():
    """Nominal scenario (market 10 a week, a GOLD order of 5 in week 2): set up in both weeks,
    make 12 in week 1 (the minimum batch: only 10 sell), hold 2, make 13 in week 2;
    profit 10 x 25 - 2 - 2 x 50 = $148 (see tests/data/lotsizing_tiny/instance.toml)."""
    inst, res = solve(TINY)
    assert res.objective == pytest.approx(148.0, abs=1e-6)
    rec = res.recourse
    assert grid(res.plan, "y", inst).tolist() == [[1.0, 1.0]]
    np.testing.assert_allclose(grid(rec, "x", inst), [[12.0, 13.0]], atol=1e-7)
    np.testing.assert_allclose(grid(rec, "I", inst), [[2.0, 0.0]], atol=1e-7)
    np.testing.assert_allclose(grid(rec, "S", inst), [[10.0, 10.0]], atol=1e-7)
    V = rec[rec["variable"] == "V"].set_index("week")["value"]
    assert V.to_dict() == pytest.approx({2: 5.0})
    assert float(rec.loc[rec["variable"] == "n", "value"].sum()) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.solve
def test_tiny_with_dear_setups_makes_one_batch_ahead(tmp_path):
    """At $100 a setup: one setup in week 1 making 20 (10 sold, 10 held, then 5 delivered and 5
    sold): 10 x 20 - 1 x 10 - 100 = $90, against $48 for two setups and $50 for week 2 only."""
    folder = tmp_path / "tiny"
    shutil.copytree(TINY, folder)
    (folder / "setup_costs.csv").write_text("product_id,machine_id,cost,setup_hours\n"
                                            "1,1,100.0,2.0\n")
    inst, res = solve(folder)
    assert res.objective == pytest.approx(90.0, abs=1e-6)
    assert grid(res.plan, "y", inst).tolist() == [[1.0, 0.0]]
    np.testing.assert_allclose(grid(res.recourse, "x", inst), [[20.0, 0.0]], atol=1e-7)
    np.testing.assert_allclose(grid(res.recourse, "I", inst), [[10.0, 0.0]], atol=1e-7)


@pytest.mark.solve
def test_tiny_without_a_setup_pays_the_gold_penalty(tmp_path):
    """When the press needs 29 setup hours, a setup leaves 1 hour: U = 1 < the batch of 12, so
    nothing can be made; the GOLD order of 5 is unmet at 3 x $10: -$150."""
    folder = tmp_path / "tiny"
    shutil.copytree(TINY, folder)
    (folder / "setup_costs.csv").write_text("product_id,machine_id,cost,setup_hours\n"
                                            "1,1,50.0,29.0\n")
    inst, res = solve(folder)
    assert inst.production_bound.tolist() == [1.0]
    assert res.objective == pytest.approx(-150.0, abs=1e-6)
    assert grid(res.plan, "y", inst).tolist() == [[0.0, 0.0]]


@pytest.mark.solve
def test_tiny_kpis_and_the_min_sense():
    """The KPIs of the $148 plan, and ``sense = "min"``: the same plan at -$148."""
    config = load_config(None, instance=str(TINY), scenarios={"spec": "named", "seed": 0},
                         solver={"mip_rel_gap": 0.0})
    out = solve_instance(config)
    h = out.kpis.headline
    assert h["expected_profit"] == pytest.approx(148.0, abs=1e-6)
    assert h["revenue"] == pytest.approx(250.0) and h["order_revenue"] == pytest.approx(50.0)
    assert h["setup_cost"] == 100.0 and h["holding_cost"] == pytest.approx(2.0)
    assert h["unmet_penalty_cost"] == pytest.approx(0.0, abs=1e-9)
    assert (h["setups"], h["avg_batch_size"]) == (2.0, pytest.approx(12.5))
    assert h["fill_rate"] == pytest.approx(1.0) and h["on_time_rate"] == pytest.approx(1.0)
    assert h["gold_fill_rate"] == pytest.approx(1.0)
    machines = out.kpis.tables["machines"]
    assert machines["setup_hours"].tolist() == [2.0, 2.0]
    np.testing.assert_allclose(machines["utilisation"], [14 / 30, 15 / 30])
    _, res = solve(TINY, options={"sense": "min"})
    assert res.objective == pytest.approx(-148.0, abs=1e-6)


# ----------------------------------------------------------------------------------------------
# The deterministic case against an independent solve


def independent_milp(folder: Path) -> tuple[float, np.ndarray]:
    """The formulation of :mod:`stochplan.models.lotsizing.model` for the nominal scenario
    (orders at their targets, market demand at the midpoint of min and max demand), written
    again from the CSVs with scipy's ``milp`` (HiGHS): (maximum profit, setups (P, T))."""
    read = {name: pd.read_csv(folder / f"{name}.csv") for name in (
        "products", "machines", "materials", "machine_hours", "material_requirements",
        "min_batches", "setup_costs", "customers", "orders", "periods")}
    prod = read["products"].set_index("id")
    mach = read["machines"].set_index("id")
    mats = read["materials"].set_index("id")
    P, T, M, K = list(prod.index), sorted(read["periods"]["week_number"]), list(mach.index), \
        list(mats.index)
    week = dict(zip(read["periods"]["id"], read["periods"]["week_number"]))
    h = {(r.product_id, r.machine_id): r.hours_required for r in read["machine_hours"].itertuples()}
    r_ = {(r.product_id, r.material_id): r.quantity_required
          for r in read["material_requirements"].itertuples()}
    batch = dict(zip(read["min_batches"]["product_id"], read["min_batches"]["min_batch_size"]))
    sc = {(r.product_id, r.machine_id): (r.cost, r.setup_hours)
          for r in read["setup_costs"].itertuples()}
    tier = dict(zip(read["customers"]["id"], read["customers"]["tier"]))
    mult = {"GOLD": 3.0, "SILVER": 2.0, "BRONZE": 1.0}
    orders = [(o.product_id, week[o.period_id], o.target_quantity, mult[tier[o.customer_id]])
              for o in read["orders"].itertuples()]

    def U(p):
        bounds = [prod.loc[p, "max_demand"]]
        for m in M:
            if h.get((p, m), 0) > 0:
                bounds.append((mach.loc[m, "available_hours"] - sc.get((p, m), (0, 0))[1])
                              / h[p, m])
        for k in K:
            if r_.get((p, k), 0) > 0:
                bounds.append(mats.loc[k, "available_quantity_per_period"] / r_[p, k])
        return min(bounds)

    cols: dict[tuple, int] = {}

    def col(*key):
        return cols.setdefault(key, len(cols))

    for p in P:
        for t in T:
            col("y", p, t), col("x", p, t), col("I", p, t), col("S", p, t)
    for o, order in enumerate(orders):
        for t in T:
            if t >= order[1]:
                col("V", o, t)
        col("n", o)
    n = len(cols)
    c, lo, hi, integ = np.zeros(n), np.zeros(n), np.full(n, np.inf), np.zeros(n)
    rows, lb, ub = [], [], []

    def row(coefs, low, high):
        vec = np.zeros(n)
        for key, v in coefs:
            vec[cols[key]] += v
        rows.append(vec)
        lb.append(low)
        ub.append(high)

    for p in P:
        profit, hold = prod.loc[p, "profit_per_unit"], prod.loc[p, "holding_cost_per_unit"]
        mid = (prod.loc[p, "min_demand"] + prod.loc[p, "max_demand"]) / 2
        setup = sum(v[0] for (pp, _), v in sc.items() if pp == p)
        for t in T:
            c[cols["y", p, t]] = setup  # minimise -profit
            hi[cols["y", p, t]], integ[cols["y", p, t]] = 1.0, 1
            c[cols["I", p, t]] = hold
            c[cols["S", p, t]] = -profit
            hi[cols["S", p, t]] = min(prod.loc[p, "max_demand"], mid)
            row([(("x", p, t), 1.0), (("y", p, t), -U(p))], -np.inf, 0.0)
            row([(("x", p, t), 1.0), (("y", p, t), -batch.get(p, 0.0))], 0.0, np.inf)
            flow = [(("I", p, t), 1.0), (("x", p, t), -1.0), (("S", p, t), 1.0)]
            if t > 1:
                flow.append((("I", p, t - 1), -1.0))
            flow += [(("V", o, t), 1.0) for o, (pp, w, _, _) in enumerate(orders)
                     if pp == p and t >= w]
            row(flow, 0.0, 0.0)
    for t in T:
        for m in M:
            row([(("x", p, t), h.get((p, m), 0.0)) for p in P]
                + [(("y", p, t), sc.get((p, m), (0, 0))[1]) for p in P],
                -np.inf, mach.loc[m, "available_hours"])
        for k in K:
            row([(("x", p, t), r_.get((p, k), 0.0)) for p in P], -np.inf,
                mats.loc[k, "available_quantity_per_period"])
    for o, (p, w, q, g) in enumerate(orders):
        profit = prod.loc[p, "profit_per_unit"]
        for t in T:
            if t >= w:
                c[cols["V", o, t]] = -profit + 0.1 * profit * (t - w)
        c[cols["n", o]] = g * profit
        row([(("V", o, t), 1.0) for t in T if t >= w] + [(("n", o), 1.0)], q, q)
    res = milp(c, integrality=integ, bounds=Bounds(lo, hi),
               constraints=LinearConstraint(sp.csr_array(np.array(rows)), lb, ub),
               options={"mip_rel_gap": 0.0})
    assert res.success, res.message
    setups = np.array([[res.x[cols["y", p, t]] for t in T] for p in P])
    return -float(res.fun), np.round(setups)


@pytest.mark.solve
def test_deterministic_case_agrees_with_an_independent_milp():
    """One scenario at the order targets and the market midpoints, production first stage:
    the family's solve and scipy's ``milp`` of the same formulation agree to the cent and set
    up the same products in the same weeks."""
    want, setups = independent_milp(FURNITURE)
    inst, res = solve("furniture", "named", options={"production_stage": "first"})
    assert res.objective == pytest.approx(want, abs=0.005)
    np.testing.assert_array_equal(grid(res.plan, "y", inst), setups)
    assert set(res.plan["variable"]) == {"y", "x"}
    assert round(want, 2) == 15667.48
    # with one scenario, quantities decided first or per scenario are the same problem
    _, second = solve("furniture", "named")
    assert second.objective == pytest.approx(want, abs=0.005)


# ----------------------------------------------------------------------------------------------
# Stochastic solves


@pytest.fixture(scope="module")
def sampled_run():
    config = load_config(None, instance="furniture", scenarios={"spec": "sample:4", "seed": 1})
    return solve_instance(config)


@pytest.mark.solve
def test_kpis_add_up_to_the_objective(sampled_run):
    """Expected profit = revenue - setup - holding - lateness - unmet penalties = the
    objective; weekly parts sum to the totals; rates are fractions; on time <= filled."""
    h, t = sampled_run.kpis.headline, sampled_run.kpis.tables
    assert h["expected_profit"] == pytest.approx(sampled_run.result.objective, rel=1e-9)
    parts = h["setup_cost"] + h["holding_cost"] + h["lateness_cost"] + h["unmet_penalty_cost"]
    assert h["revenue"] - parts == pytest.approx(h["expected_profit"], rel=1e-12)
    assert t["weekly"]["profit"].sum() == pytest.approx(h["expected_profit"], rel=1e-9)
    assert h["setups"] == t["schedule"]["setup"].sum() == t["schedule"]["setup"].round().sum()
    for key in ("fill_rate", "on_time_rate", "gold_fill_rate", "silver_fill_rate",
                "bronze_fill_rate", "machine_utilisation_rate"):
        assert 0.0 <= h[key] <= 1.0 + 1e-9, key
    assert h["on_time_rate"] <= h["fill_rate"] + 1e-12
    orders = t["orders"]
    np.testing.assert_allclose(orders["delivered"] + orders["unmet"], orders["quantity"],
                               atol=1e-7)
    assert (t["machines"]["utilisation"] <= 1 + 1e-9).all()
    assert (t["materials"]["utilisation"] <= 1 + 1e-9).all()
    assert set(t["tiers"]["tier"]) == {"GOLD", "SILVER", "BRONZE"}


@pytest.mark.solve
def test_quantities_adapting_are_worth_at_least_fixed_ones():
    """Deciding production per scenario (default) is a relaxation of deciding it with the
    setups: RP(second) >= RP(first) on the same scenarios (maximisation)."""
    _, second = solve("furniture", "sample:3", 2, solver=SolverOptions(mip_rel_gap=1e-6))
    _, first = solve("furniture", "sample:3", 2, {"production_stage": "first"},
                     SolverOptions(mip_rel_gap=1e-6))
    assert second.objective >= first.objective - 1e-6 * abs(first.objective)
    assert set(first.plan["variable"]) == {"y", "x"} and set(second.plan["variable"]) == {"y"}


@pytest.mark.solve
def test_late_delivery_only_adds_options():
    """Forbidding late deliveries can only lower the deterministic profit."""
    _, late = solve("furniture")
    _, strict = solve("furniture", options={"late_delivery": False})
    assert strict.objective <= late.objective + 1e-6
    assert strict.recourse.query("variable == 'V'")["week"].isin([1, 2, 3, 4]).all()


def check_value(spec: str, seed: int, options: dict | None = None, gap: float = 0.0):
    """The value report's numbers in the maximisation convention; with a MIP gap, the
    inequalities hold within it (RP and each WS solve are incumbents within ``gap``)."""
    inst = FAMILY.resolve("furniture", options)
    names = FAMILY.scenario_set(inst, spec, seed).names
    report = value_report(MODULE, names, FAMILY.creator_kwargs(inst, spec, seed),
                          SolverOptions(mip_rel_gap=gap))
    tol = (gap + 1e-6) * abs(report.rp)
    assert report.sense == "max"
    assert report.ws >= report.rp - tol and report.rp >= report.eev - tol
    assert report.vss == pytest.approx(report.rp - report.eev)
    assert report.evpi == pytest.approx(report.ws - report.rp)
    assert report.vss >= -tol and report.evpi >= -tol
    assert not report.infeasible
    return report


@pytest.mark.solve
def test_value_report_in_maximisation():
    """RP, EV, EEV, WS on 6 scenarios (quantities per scenario, exact MIP solves):
    WS >= RP >= EEV, VSS = RP - EEV >= 0, EVPI = WS - RP >= 0 (the maximisation convention,
    as for the farmer)."""
    report = check_value("sample:6", 7)
    assert report.n_scenarios == 6
    assert report.vss > 0 and report.evpi > 0


@pytest.mark.slow
@pytest.mark.solve
def test_value_report_on_100_scenarios():
    """The issue's 100 scenarios, with production decided with the setups (about 90 s on 2
    cores: RP 44 s, WS 42 s). Measured: RP 12,277.58, EV 15,872.53, EEV 10,236.52,
    WS 15,619.83, VSS 2,041.05, EVPI 3,342.26 (seed 1, gap 1e-4). With quantities per
    scenario (the default) the extensive form of 100 scenarios is still 5.5 % from its bound
    after 300 s: that is for decomposition (the integer L-shaped method), not for a test."""
    report = check_value("sample:100", 1, {"production_stage": "first"}, gap=1e-4)
    assert report.rp == pytest.approx(12_277.58, rel=2e-4)
    assert report.eev == pytest.approx(10_236.52, abs=0.01)


# ----------------------------------------------------------------------------------------------
# Bad input: one line each, naming the field, the value and the file; the CLI exits 2


def run_cli(*argv: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def broken(tmp_path: Path, file: str, text: str) -> Path:
    folder = tmp_path / "broken"
    shutil.copytree(FURNITURE, folder)
    (folder / file).write_text(text)
    return folder


def csv_with(file: str, row: int, column: str, value: object) -> str:
    df = pd.read_csv(FURNITURE / file)
    df[column] = df[column].astype(object)
    df.loc[row, column] = value
    return df.to_csv(index=False)


BAD_INPUT = [
    ("orders.csv", lambda: csv_with("orders.csv", 2, "product_id", 12),
     "product_id (row 4) = 12", "unknown product"),
    ("orders.csv", lambda: csv_with("orders.csv", 0, "customer_id", 99),
     "customer_id (row 2) = 99", "unknown customer"),
    ("orders.csv", lambda: csv_with("orders.csv", 5, "period_id", 7),
     "period_id (row 7) = 7", "not a period of the horizon"),
    ("min_batches.csv", lambda: csv_with("min_batches.csv", 1, "min_batch_size", -5),
     "min_batch_size (row 3) = -5", "must be non-negative"),
    ("machine_hours.csv",
     lambda: pd.read_csv(FURNITURE / "machine_hours.csv").query("product_id != 5")
     .to_csv(index=False),
     "product_id = 5", "cannot be produced"),
    ("setup_costs.csv", lambda: csv_with("setup_costs.csv", 3, "machine_id", 8),
     "machine_id (row 5) = 8", "unknown machine"),
]


@pytest.mark.parametrize("file, text, field, problem", BAD_INPUT,
                         ids=["unknown-product", "unknown-customer", "week-outside-horizon",
                              "negative-batch", "no-machine-hours", "setup-unknown-machine"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, file, text, field, problem):
    folder = broken(tmp_path, file, text())
    code, out, err = run_cli("solve", folder, "--db", tmp_path / "runs.db")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert field in lines[0] and problem in lines[0] and str(folder / file) in lines[0]
    with pytest.raises(InputError) as info:
        load_instance(folder)
    assert info.value.source == str(folder / file)


# ----------------------------------------------------------------------------------------------
# The command line end to end


@pytest.mark.solve
def test_cli_solve_show_and_dashboard(tmp_path):
    """``solve furniture --scenarios sample:5 --seed 1``, then ``show`` and ``dashboard last``
    with the family's panels."""
    db = tmp_path / "runs.db"
    code, out, err = run_cli("solve", "furniture", "--scenarios", "sample:5", "--seed", "1",
                             "--db", db)
    assert code == 0, err
    assert "SETUP PLAN" in out and "ORDER FULFILMENT BY TIER" in out
    with ResultsStore(db) as store:
        stored = store.get_run(1)
    assert stored.record.family == "lotsizing"
    assert stored.record.kpis["expected_profit"] == pytest.approx(stored.record.objective)
    code, out, err = run_cli("show", "1", "--db", db)
    assert code == 0, err
    assert "MACHINE UTILISATION" in out
    page = tmp_path / "run.html"
    code, out, err = run_cli("dashboard", "last", "--db", db, "-o", page)
    assert code == 0, err
    html = page.read_text()
    for key in ("schedule", "utilisation", "fulfilment", "profit"):
        assert f'<section id="{key}">' in html, key
        assert f'data-chart="{key}"' in html, key
    assert "Not drawn" not in html
    assert 'data-kpi="setup.Chair.1"' in html and 'data-kpi="orders.O01.fill_rate"' in html


@pytest.mark.solve
def test_stored_run_redraws_its_report(tmp_path):
    """The text report is rebuilt from the stored tables alone."""
    config = load_config(None, instance=str(TINY), scenarios={"spec": "sample:3", "seed": 2})
    out = solve_instance(config)
    record = to_record(out)
    with ResultsStore(tmp_path / "runs.db") as store:
        stored = store.get_run(store.save_run(record)).record
    text = FAMILY.report_text(stored.kpis, stored.tables)
    assert text == FAMILY.report_text(out.kpis.headline, out.kpis.tables)
    assert "Widget" in text


@pytest.mark.solve
def test_runs_unchanged_under_generic_cylinders(tmp_path):
    """mpi-sppy's own driver solves the module's EF (3 sampled scenarios of seed 2) to the
    optimum stochplan finds."""
    cmd = [sys.executable, "-m", "mpisppy.generic_cylinders",
           "--module-name", "stochplan.models.lotsizing", "--num-scens", "3",
           "--scenario-kind", "sample", "--scenario-seed", "2", "--EF", "--EF-solver-name",
           "highs"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    line = next(x for x in out.stdout.splitlines() if "EF objective:" in x)
    _, res = solve("furniture", "sample:3", 2, solver=SolverOptions())
    assert float(line.rsplit(":", 1)[1]) == pytest.approx(res.objective, rel=1e-4)
