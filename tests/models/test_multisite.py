"""The multi-site family (seed 000): the generator, the database round trip, the deterministic
case against an independent scipy ``milp`` solve of the seed's per-site model, a hand-checked
two-product site (critical fractile, and enumeration when the machine binds), the sites solved
apart in parallel and serially, and bad input through the command line."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from stochplan.cli import main
from stochplan.config import load_config
from stochplan.errors import InputError
from stochplan.family import ScenarioSource, get_family
from stochplan.models.multisite.data import from_tables
from stochplan.models.multisite.db import read_instance
from stochplan.models.multisite.generator import GeneratorParams, generate_tables
from stochplan.solve.blocks import solve_blocks, solve_run
from stochplan.solve.solvers import SolverOptions

FAMILY = get_family("multisite")
ROOT = Path(__file__).resolve().parents[2]
BUILTIN = ROOT / "stochplan" / "models" / "multisite" / "instances" / "multisite"
EXACT = SolverOptions(mip_rel_gap=0.0)


def tables_of(db: Path) -> dict[str, pd.DataFrame]:
    with sqlite3.connect(db) as conn:
        names = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        return {n: pd.read_sql_query(f'select * from "{n}"', conn) for n in names}


def generated_db(path: Path, sites: int, seed: int) -> Path:
    assert main(["generate", "multisite", "--sites", str(sites), "--seed", str(seed),
                 "--db", str(path)]) == 0
    return path


# ----------------------------------------------------------------------------------------------
# The generator


def test_same_seed_same_tables_and_sites_do_not_depend_on_the_count():
    """Same (parameters, seed) -> identical tables, value for value; another seed differs; the
    first 2 sites of a 4-site instance are the 2-site instance."""
    a = generate_tables(GeneratorParams(sites=4), 7)
    b = generate_tables(GeneratorParams(sites=4), 7)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True)
    c = generate_tables(GeneratorParams(sites=4), 8)
    assert not a["ProductData"]["price"].equals(c["ProductData"]["price"])
    two = generate_tables(GeneratorParams(sites=2), 7)
    first = a["ProductData"][a["ProductData"]["site"].isin(["Site001", "Site002"])]
    pd.testing.assert_frame_equal(first.reset_index(drop=True), two["ProductData"],
                                  check_exact=True)


def test_generator_follows_the_documented_formulas():
    """Raw material, minutes, prices and inventory as the issue states them, checked on the
    generated numbers (whole numbers where rounded, in the stated ranges, price formula)."""
    t = generate_tables(GeneratorParams(sites=3), 0)
    prod, link, mach = t["ProductData"], t["ProductMachineData"], t["MachineData"]
    offset = prod["product_group"].map({"A": 1.0, "B": 1.5, "C": 2.0})
    assert len(prod) == 90 and set(mach["machine"]) == {"Machine1", "Machine2", "Machine3"}
    assert (prod["raw_material"] % 1 == 0).all()
    assert ((prod["raw_material"] >= np.floor(offset * 10)) &
            (prod["raw_material"] <= np.ceil(offset * 15))).all()
    assert set(prod["min_demand"]) <= {0.0, 1.0, 2.0} and (prod["max_demand"] == 20).all()
    base = mach["machine"].map({"Machine1": 20, "Machine2": 30, "Machine3": 40})
    assert ((mach["cost_per_hour"] >= base) & (mach["cost_per_hour"] <= base + 5)).all()
    cost = link.merge(mach, on=["site", "machine"])
    cost["mc"] = cost["minutes"] / 60 * cost["cost_per_hour"]
    mc = cost.groupby(["site", "product"], sort=False)["mc"].sum()
    merged = prod.set_index(["site", "product"]).join(mc)
    want = (merged["product_group"].map({"A": 1, "B": 2, "C": 3}) * 100
            + 1.1 * (merged["mc"] + merged["raw_material"] * 10)).round()
    np.testing.assert_array_equal(merged["price"].to_numpy(), want.to_numpy())
    need = (prod["raw_material"] * prod["max_demand"]).groupby(prod["site"]).sum()
    ratio = t["InventoryData"].set_index("site")["raw_material_inventory"] / need
    assert ((ratio >= 1.0) & (ratio <= 1.1)).all()


def test_generate_twice_writes_identical_databases_and_the_builtin_is_seed_0(tmp_path):
    """`stochplan generate` twice with one seed -> the same tables; the built-in CSV instance is
    the generator's 5 sites with seed 0; a database reads back as the same instance."""
    one = tables_of(generated_db(tmp_path / "one.db", 5, 0))
    two = tables_of(generated_db(tmp_path / "two.db", 5, 0))
    assert set(one) == {"ProductData", "ProductMachineData", "MachineData", "InventoryData",
                        "InstanceRecord"}
    for name in one:
        pd.testing.assert_frame_equal(one[name], two[name], check_exact=True)
    record = one["InstanceRecord"].iloc[0]
    assert record["seed"] == 0 and json.loads(record["parameters"])["sites"] == 5
    csv = pd.read_csv(BUILTIN / "product_data.csv")
    pd.testing.assert_frame_equal(csv, one["ProductData"], check_exact=True)
    from_db = read_instance(str(tmp_path / "one.db"))
    builtin = FAMILY.resolve("multisite")
    assert from_db.sites == builtin.sites and from_db.name == "multisite-5-seed0"
    for field in ("price", "minutes", "weekly_hours", "inventory", "mean_demand"):
        np.testing.assert_array_equal(getattr(from_db, field), getattr(builtin, field))


def test_a_sites_scenarios_are_the_same_alone_and_in_the_network():
    """Scenario k of site n: the same drawn from the whole instance, from the site alone and in
    sets of 4 and 30 (the blocks rely on it); Poisson around the generator's means."""
    inst = FAMILY.resolve("multisite")
    whole = FAMILY.scenario_set(inst, "sample:30", 9)
    small = FAMILY.scenario_set(inst, "sample:4", 9)
    np.testing.assert_array_equal(small.data, whole.data[:4])
    alone = FAMILY.scenario_set(inst.subset([3]), "sample:30", 9)
    np.testing.assert_array_equal(alone.data[:, 0], whole.data[:, 3])
    src = ScenarioSource.of(FAMILY, instance=inst, scenarios="sample:30", seed=9)
    np.testing.assert_array_equal(src.data(17), whole.data[17])
    named = FAMILY.scenario_set(inst, "named")
    np.testing.assert_array_equal(named.data[0], inst.max_demand)
    mean = whole.data.mean(axis=0)
    assert abs(mean.mean() - inst.mean_demand.mean()) < 0.5


# ----------------------------------------------------------------------------------------------
# The deterministic special case against the seed's model


def seed_site_optimum(tables: dict[str, pd.DataFrame], site: str) -> float:
    """The seed notebook's per-site model, built here from the raw tables and solved with
    scipy's milp (HiGHS): max sum (price - raw x 10 - sum minutes / 60 x cost) x, min <= x <=
    max integer, machine hours, raw material <= inventory."""
    prod = tables["ProductData"][tables["ProductData"]["site"] == site].reset_index(drop=True)
    link = tables["ProductMachineData"][tables["ProductMachineData"]["site"] == site]
    mach = tables["MachineData"][tables["MachineData"]["site"] == site].reset_index(drop=True)
    inv = float(tables["InventoryData"].set_index("site").loc[site, "raw_material_inventory"])
    products = list(prod["product"])
    minutes = np.zeros((len(mach), len(products)))
    for r in link.itertuples(index=False):
        minutes[list(mach["machine"]).index(r.machine), products.index(r.product)] = r.minutes
    cost_h = mach["cost_per_hour"].to_numpy(float)
    unit = (prod["raw_material"] * prod["raw_material_cost"]).to_numpy(float) + (
        minutes / 60.0 * cost_h[:, None]).sum(axis=0)
    margin = prod["price"].to_numpy(float) - unit
    A = sp.csr_matrix(np.vstack([minutes / 60.0, prod["raw_material"].to_numpy(float)[None]]))
    ub = np.concatenate([mach["weekly_hours"].to_numpy(float), [inv]])
    res = milp(-margin, constraints=LinearConstraint(A, -np.inf, ub),
               bounds=Bounds(prod["min_demand"].to_numpy(float),
                             prod["max_demand"].to_numpy(float)),
               integrality=np.ones(len(products)), options={"mip_rel_gap": 0.0})
    assert res.status == 0
    return float(-res.fun)


@pytest.mark.solve
def test_deterministic_case_equals_the_seed_model_site_by_site(tmp_path):
    """One scenario at maximum demand, integer: each site's profit equals an independent solve
    of the seed's per-site model on the same generated data, to the cent."""
    db = generated_db(tmp_path / "det.db", 4, 11)
    tables = tables_of(db)
    inst = FAMILY.load_database(str(db))
    result = solve_blocks(FAMILY, inst, "named", 0, solver=EXACT, workers=1)
    assert result is not None and result.status == "optimal"
    kpis = FAMILY.kpis(inst, FAMILY.scenario_set(inst, "named"), result)
    by_site = kpis.tables["sites"].set_index("site")["expected_profit"]
    total = 0.0
    for site in inst.sites:
        want = seed_site_optimum(tables, site)
        assert abs(by_site[site] - want) < 0.005, site
        total += want
    assert abs(result.objective - total) < 0.005 * len(inst.sites)


# ----------------------------------------------------------------------------------------------
# A hand-checked site


def hand_tables(hours: float) -> dict[str, pd.DataFrame]:
    """One site, one machine (60 $/h), two products: P1 price 100, 30 min, P2 price 60,
    20 min, 1 unit of raw material each at 10 $: unit costs 40 and 30; demand 0..20, means 8
    and 12; raw material plentiful."""
    return {
        "ProductData": pd.DataFrame({
            "site": ["H", "H"], "product": ["P1", "P2"], "price": [100.0, 60.0],
            "raw_material": [1.0, 1.0], "raw_material_cost": [10.0, 10.0],
            "min_demand": [0.0, 0.0], "max_demand": [20.0, 20.0], "mean_demand": [8.0, 12.0]}),
        "ProductMachineData": pd.DataFrame({"site": ["H", "H"], "product": ["P1", "P2"],
                                            "machine": ["M", "M"], "minutes": [30.0, 20.0]}),
        "MachineData": pd.DataFrame({"site": ["H"], "machine": ["M"], "cost_per_hour": [60.0],
                                     "weekly_hours": [hours]}),
        "InventoryData": pd.DataFrame({"site": ["H"], "raw_material_inventory": [1000.0]}),
    }


def expected_profit(x: float, demand: np.ndarray, price: float, cost: float,
                    salvage: float) -> float:
    """E[price min(x, D) + salvage (x - D)+] - cost x over equally likely demands."""
    sold = np.minimum(x, demand)
    return float(np.mean(price * sold + salvage * (x - sold)) - cost * x)


@pytest.mark.solve
def test_hand_checked_site_critical_fractile_and_binding_machine():
    """With hours plentiful each product is a newsvendor: x* = the smallest x whose empirical
    demand CDF reaches (p - c) / (p - s) (0.75 for P1: 100, 40, 20; 2/3 for P2: 60, 30, 15;
    10 scenarios, so no ties). With 5 hours the machine binds (0.5 x1 + x2 / 3 <= 5); the
    optimum is then found by enumerating every integer plan."""
    inst = from_tables(hand_tables(100.0), "hand")
    spec, seed = "sample:10", 4
    demand = FAMILY.scenario_set(inst, spec, seed).data[:, 0, :]  # (10, 2)
    p, c, s = np.array([100.0, 60.0]), np.array([40.0, 30.0]), np.array([20.0, 15.0])
    fractile = (p - c) / (p - s)
    x_star = []
    for i in range(2):
        d = np.sort(demand[:, i])
        cdf = np.arange(1, 11) / 10.0
        x_star.append(float(d[np.argmax(cdf >= fractile[i])]))
    want = sum(expected_profit(x_star[i], demand[:, i], p[i], c[i], s[i]) for i in range(2))
    names = FAMILY.scenario_set(inst, spec, seed).names
    from stochplan.solve.ef import solve_ef

    res = solve_ef(FAMILY.module, names, FAMILY.creator_kwargs(inst, spec, seed), EXACT)
    plan = res.plan.set_index("product")["value"]
    assert [plan["P1"], plan["P2"]] == x_star
    assert abs(res.objective - want) < 0.005

    tight = from_tables(hand_tables(5.0), "hand")
    best = max((sum(expected_profit(x, demand[:, i], p[i], c[i], s[i])
                    for i, x in enumerate((x1, x2))), x1, x2)
               for x1 in range(21) for x2 in range(21) if 0.5 * x1 + x2 / 3.0 <= 5.0 + 1e-9)
    res = solve_ef(FAMILY.module, names, FAMILY.creator_kwargs(tight, spec, seed), EXACT)
    assert abs(res.objective - best[0]) < 0.005
    plan = res.plan.set_index("product")["value"]
    assert 0.5 * plan["P1"] + plan["P2"] / 3.0 <= 5.0 + 1e-9


# ----------------------------------------------------------------------------------------------
# Sites solved apart


@pytest.mark.solve
def test_poisson_specs_solve_the_whole_extensive_form():
    """Blocks draw their own scenarios, so only the family's named and sample:N sets go by
    blocks; poisson:N (drawn for the whole grid) solves all sites in one extensive form."""
    config = load_config(None, instance="multisite", model={"integer": False},
                         scenarios={"spec": "poisson:2", "seed": 1})
    whole = solve_run(config, workers=1)
    assert "blocks" not in whole.result.info
    sampled = solve_run(load_config(None, instance="multisite", model={"integer": False},
                                    scenarios={"spec": "sample:2", "seed": 1}), workers=1)
    assert sampled.result.info["blocks"] == 5


@pytest.mark.solve
def test_a_start_plan_goes_to_the_whole_extensive_form_not_to_blocks():
    """A stored plan as a start plan: the whole extensive form (poisson:N) takes it (an LP has
    no use for it, and says so; the objective is the same); a run solved block by block
    (sample:N) refuses it, naming the flag and the run."""
    whole_config = load_config(None, instance="multisite", model={"integer": False},
                               scenarios={"spec": "poisson:2", "seed": 1})
    whole = solve_run(whole_config, workers=1)
    plan = whole.result.plan.copy()
    plan.attrs.update(field="--start-plan", value=3)
    again = solve_run(whole_config, workers=1, start_plan=plan)
    assert again.result.info["start_plan"] == "run 3: not used (the extensive form is an LP)"
    assert again.result.objective == pytest.approx(whole.result.objective, rel=1e-9)
    blocks = load_config(None, instance="multisite", model={"integer": False},
                         scenarios={"spec": "sample:2", "seed": 1})
    with pytest.raises(InputError) as err:
        solve_run(blocks, workers=1, start_plan=plan)
    assert (err.value.field, err.value.value) == ("--start-plan", 3)
    assert "solved block by block, which takes no start plan" in err.value.problem


@pytest.mark.solve
def test_blocks_on_two_processes_equal_the_serial_solve_and_the_whole_lp():
    """2 worker processes give the serial blocks' plan and objective exactly; relaxed, the
    blocks' objective equals the LP extensive form of all sites together."""
    inst = FAMILY.resolve("multisite", {"integer": False})
    serial = solve_blocks(FAMILY, inst, "sample:3", 2, workers=1)
    pool = solve_blocks(FAMILY, inst, "sample:3", 2, workers=2)
    assert serial is not None and pool is not None
    assert pool.info["layout"] == "processes" and serial.info["layout"] == "serial"
    assert pool.objective == serial.objective
    pd.testing.assert_frame_equal(pool.plan, serial.plan, check_exact=True)
    from stochplan.solve.ef import solve_ef

    names = FAMILY.scenario_set(inst, "sample:3", 2).names
    whole = solve_ef(FAMILY.module, names, FAMILY.creator_kwargs(inst, "sample:3", 2))
    assert serial.objective == pytest.approx(whole.objective, rel=1e-9)


def test_site_arrays_equal_the_compiled_pyomo_models(tmp_path, same_compiled):
    """The family's arrays (built without Pyomo) are the compiled Pyomo scenario models entry
    by entry: matrix, row kinds and families, right-hand sides, bounds, costs, columns; for
    one and two sites, integer and relaxed, maximising and minimising, with goodwill, and
    with a shared pool (the allocations A and the row ``pool``)."""
    from stochplan.solve import matrix
    from stochplan.solve.blocks import family_arrays

    db = generated_db(tmp_path / "arr.db", 3, 2)
    for options in ({"integer": True},
                    {"integer": False, "sense": "min", "goodwill_fraction": 0.3,
                     "salvage_fraction": 0.2},
                    {"integer": False, "raw_material_pool": 40.0}):
        inst = FAMILY.load_database(str(db), options)
        for part in (inst.subset([0]), inst.subset([1, 2])):
            scen_set = FAMILY.scenario_set(part, "sample:3", 1)
            want = matrix.compile_scenarios(FAMILY.module, scen_set.names,
                                            FAMILY.creator_kwargs(part, "sample:3", 1))
            got = family_arrays(FAMILY, part, scen_set)
            assert want.method == "each"  # every scenario compiled from its Pyomo model
            same_compiled(got, want)


@pytest.mark.solve
@pytest.mark.parametrize("integer", [False, True], ids=["relaxed", "integer"])
def test_merged_blocks_equal_each_site_solved_alone_through_pyomo(tmp_path, integer):
    """Each site's extensive form with identical per-product recourse merged (what the blocks
    solve) has the optimum of the site's full Pyomo extensive form, to the cent; its recourse
    holds in every scenario (S + L = x, S + U = d, all >= 0) and prices back to the
    objective; the merged form has one copy of a product's recourse per distinct demand."""
    from stochplan.solve.blocks import family_arrays, merged_form
    from stochplan.solve.ef import solve_ef

    db = generated_db(tmp_path / "m.db", 3, 4)
    inst = FAMILY.load_database(str(db), {"integer": integer})
    spec, seed = "sample:20", 6
    result = solve_blocks(FAMILY, inst, spec, seed, solver=EXACT, workers=1)
    assert result is not None and result.info["backend"].startswith("blocks (family arrays")
    scen_set = FAMILY.scenario_set(inst, spec, seed)
    kpis = FAMILY.kpis(inst, scen_set, result).tables["sites"].set_index("site")
    pyomo = SolverOptions(mip_rel_gap=0.0, backend="pyomo")
    for n, site in enumerate(inst.sites):
        alone = inst.subset([n])
        names = FAMILY.scenario_set(alone, spec, seed).names
        full = solve_ef(FAMILY.module, names, FAMILY.creator_kwargs(alone, spec, seed), pyomo)
        assert full.info["backend"] == "pyomo"
        assert abs(kpis.loc[site, "expected_profit"] - full.objective) < 0.005, site
        form = merged_form(family_arrays(FAMILY, alone, FAMILY.scenario_set(alone, spec, seed)))
        d = FAMILY.scenario_set(alone, spec, seed).data[:, 0, :]
        distinct = sum(len(np.unique(d[:, p])) for p in range(d.shape[1]))
        assert form.A.shape[1] == 30 + 3 * distinct and len(form.pieces) == 30
    rec = result.recourse.pivot_table(index=["scenario", "site", "product"],
                                      columns="variable", values="value")
    x = result.plan.set_index(["site", "product"])["value"]
    xs = x.reindex(rec.index.droplevel("scenario")).to_numpy()
    grid = {s: i for i, s in enumerate(scen_set.names)}
    sp_, pp_ = ({s: i for i, s in enumerate(inst.sites)},
                {p: i for i, p in enumerate(inst.products)})
    d = np.array([scen_set.data[grid[s], sp_[n], pp_[p]] for s, n, p in rec.index])
    np.testing.assert_allclose(rec["S"] + rec["L"], xs, atol=1e-6)
    np.testing.assert_allclose(rec["S"] + rec["U"], d, atol=1e-6)
    assert (rec[["S", "L", "U"]].to_numpy() >= -1e-7).all()
    assert abs(kpis["expected_profit"].sum() - result.objective) < 0.005


@pytest.mark.mpi
def test_blocks_under_mpiexec_equal_the_serial_run(tmp_path):
    """`stochplan solve` on 2 MPI ranks: the serial plan's objective, rank 0 alone prints,
    stores and writes the results back."""
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        pytest.skip(f"no mpiexec beside {sys.executable}")
    db = generated_db(tmp_path / "in.db", 3, 5)
    args = ["solve", "multisite", "--input-db", str(db), "--scenarios", "sample:4", "--seed",
            "1", "--relax", "--json"]
    run = subprocess.run([str(mpiexec), "-n", "2", sys.executable, "-m", "stochplan", *args,
                          "--db", str(tmp_path / "mpi.db")], capture_output=True, text=True,
                         timeout=300, check=False, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [line for line in run.stdout.splitlines() if line.strip().startswith("{")]
    assert len(lines) == 1
    parallel = json.loads(lines[0])
    assert parallel["layout"] == "mpi" and parallel["workers"] == 2
    config = load_config(None, instance="multisite", model={"integer": False},
                         scenarios={"spec": "sample:4", "seed": 1})
    serial = solve_run(config, str(db), workers=1)
    assert parallel["objective"] == pytest.approx(serial.result.objective, rel=1e-12)
    results = tables_of(db)["ResultData"]
    assert len(results) == 90 and set(results["status"]) == {"optimal"}


@pytest.mark.solve
def test_solve_from_a_database_writes_results_back(tmp_path, capsys):
    """`solve --input-db` reads the tables, stores the run and writes ResultData (the seed's
    columns and the stochastic ones) whose site profits sum to the objective."""
    db = generated_db(tmp_path / "in.db", 2, 3)
    capsys.readouterr()
    assert main(["solve", "multisite", "--input-db", str(db), "--scenarios", "sample:3",
                 "--seed", "1", "--relax", "--json", "--db", str(tmp_path / "runs.db")]) == 0
    out = json.loads(capsys.readouterr().out)
    results = tables_of(db)["ResultData"]
    assert list(results.columns) == ["site", "status", "site_profit", "product", "volume",
                                     "expected_sales", "expected_leftover", "fill_rate",
                                     "run_id"]
    per_site = results.groupby("site")["site_profit"].first()
    assert math.isclose(per_site.sum(), out["objective"], rel_tol=1e-9)
    assert (results["run_id"] == out["run_id"]).all()
    assert ((results["fill_rate"] >= 0) & (results["fill_rate"] <= 1)).all()


# ----------------------------------------------------------------------------------------------
# Bad input: one line, exit 2 (3 when a site is infeasible), databases unchanged


def _mutate(db: Path, sql: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.executescript(sql)


BAD = [
    ("missing_table", 'DROP TABLE "InventoryData";', 2, "table = 'InventoryData'"),
    ("missing_column", 'ALTER TABLE "MachineData" DROP COLUMN "weekly_hours";', 2,
     "MachineData.weekly_hours"),
    ("no_machines", """DELETE FROM "MachineData" WHERE site = 'Site002';
                       DELETE FROM "ProductMachineData" WHERE site = 'Site002';""", 2,
     "site Site002 has no machines"),
    ("negative_hours", """UPDATE "MachineData" SET weekly_hours = -5
                          WHERE site = 'Site001' AND machine = 'Machine2';""", 2,
     "MachineData.weekly_hours (site Site001, machine Machine2) = -5"),
    ("raw_material", """UPDATE "ProductData" SET min_demand = 1, raw_material = 100000
                        WHERE site = 'Site002' AND product = 'A1';""", 3,
     "site Site002: raw material at minimum demand"),
]


@pytest.mark.parametrize(("case", "sql", "code", "text"), BAD, ids=[b[0] for b in BAD])
def test_bad_database_one_line_and_nothing_written(tmp_path, capsys, case, sql, code, text):
    db = generated_db(tmp_path / "in.db", 2, 0)
    _mutate(db, sql)
    before = tables_of(db)
    capsys.readouterr()
    runs = tmp_path / "runs.db"
    status = main(["solve", "multisite", "--input-db", str(db), "--scenarios", "sample:2",
                   "--db", str(runs)])
    err = capsys.readouterr().err.strip()
    assert status == code, err
    assert len(err.splitlines()) == 1 and text in err, err
    if case == "raw_material":  # 1 unit of A1 needs 100,000 units, above the inventory
        assert "exceeds the inventory" in err and "Site001" not in err
    after = tables_of(db)
    assert set(after) == set(before)
    for name in before:
        pd.testing.assert_frame_equal(after[name], before[name])
    assert not runs.exists() or runs.stat().st_size == 0 or _no_runs(runs)


def _no_runs(path: Path) -> bool:
    from stochplan.store import ResultsStore

    with ResultsStore(path) as store:
        return store.list_runs().empty


@pytest.mark.parametrize("url", ["sqlite:////no/such/folder/in.db", str(Path("missing.db")),
                                 "postgresql+psycopg://nobody@127.0.0.1:9/none", "nonsense://"])
def test_unreachable_database_is_one_line(tmp_path, capsys, url, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status = main(["solve", "multisite", "--input-db", url, "--db", str(tmp_path / "r.db")])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and "--input-db" in err, err
    assert not (tmp_path / "missing.db").exists()


def test_generate_rejects_bad_parameters_in_one_line(tmp_path, capsys):
    bad = tmp_path / "p.toml"
    bad.write_text("sites = 2\nmachine_cost = [20.0]\n")
    assert main(["generate", "multisite", "--db", str(tmp_path / "x.db"), "--params",
                 str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "machine_cost" in err, err
    assert main(["generate", "multisite", "--db", str(tmp_path / "x.db"), "--sites", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "generator.sites" in err and "must be >= 1" in err, err
    assert not (tmp_path / "x.db").exists()


# ----------------------------------------------------------------------------------------------
# The shared raw-material pool


def pool_tables() -> dict[str, pd.DataFrame]:
    """Two hand sites H1 and H2 (as :func:`hand_tables`, hours plentiful) with 5 and 15 units
    of raw material of their own; P1 sells at 100 in H1 and 110 in H2 (margins 60 and 70 per
    raw-material unit), P2 at 60 (margin 30)."""
    one, two = hand_tables(100.0), hand_tables(100.0)
    two["ProductData"]["price"] = [110.0, 60.0]
    one["InventoryData"]["raw_material_inventory"] = [5.0]
    two["InventoryData"]["raw_material_inventory"] = [15.0]
    for t in two.values():
        t["site"] = "H2"
    for t in one.values():
        t["site"] = "H1"
    return {name: pd.concat([one[name], two[name]], ignore_index=True) for name in one}


@pytest.mark.solve
def test_a_shared_pool_couples_the_sites_and_goes_to_the_best_margin():
    """At maximum demand (20 units) raw material is all that binds. Without a pool: H1 makes 5
    P1 (5 x 60), H2 15 P1 (15 x 70), profit 1,350. With a pool of 10: H2 first gets 5 (its P1
    reaches 20 units), H1 the other 5: 10 x 60 + 20 x 70 = 2,000. The pool couples the sites,
    so there are no blocks."""
    from stochplan.solve.ef import solve_ef

    base = from_tables(pool_tables(), "pool")
    pooled = base.with_options(raw_material_pool=10.0)
    assert FAMILY.blocks(base) is not None and FAMILY.blocks(pooled) is None
    values = []
    for inst in (base, pooled):
        res = solve_ef(FAMILY.module, ["scen0"], FAMILY.creator_kwargs(inst, "named", 0), EXACT)
        values.append(res)
    assert abs(values[0].objective - 1350.0) < 0.005
    assert abs(values[1].objective - 2000.0) < 0.005
    plan = values[1].plan
    alloc = plan[plan["variable"] == "A"].set_index("site")["value"]
    assert alloc["H1"] == pytest.approx(5.0) and alloc["H2"] == pytest.approx(5.0)
    kpis = FAMILY.kpis(pooled, FAMILY.scenario_set(pooled, "named"), values[1])
    assert kpis.headline["pool_allocated"] == pytest.approx(10.0)
    assert kpis.headline["expected_profit"] == pytest.approx(2000.0)
    # H1 short of raw material at minimum demand (10 units of P1, 5 in stock): infeasible
    # alone, feasible when the pool covers the 5 missing units
    tables = pool_tables()
    tables["ProductData"].loc[0, "min_demand"] = 10.0
    short = from_tables(tables, "pool")
    assert list(short.infeasible_sites()) == ["H1"]
    assert not short.with_options(raw_material_pool=5.0).infeasible_sites()
    assert list(short.with_options(raw_material_pool=4.0).infeasible_sites()) == ["H1"]


@pytest.mark.solve
def test_the_workers_flag_sets_the_processes_and_is_checked(tmp_path, capsys):
    """``solve --workers 1`` solves the sites in this process, ``--workers 2`` in two worker
    processes, to the same objective; ``--workers 0`` is one line naming the flag."""

    base = ["solve", "multisite", "--relax", "--scenarios", "sample:2", "--seed", "3",
            "--json", "--db", str(tmp_path / "runs.db")]
    out = {}
    for n in (1, 2):
        assert main([*base, "--workers", str(n)]) == 0
        out[n] = json.loads(capsys.readouterr().out)
    assert (out[1]["layout"], out[1]["workers"]) == ("serial", 1)
    assert (out[2]["layout"], out[2]["workers"]) == ("processes", 2)
    assert out[1]["objective"] == out[2]["objective"]
    assert main([*base, "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "--workers" in err and err.count("\n") == 1


# ----------------------------------------------------------------------------------------------
# The shared pool decomposed by site (stochplan.solve.linked)


def short_db(path: Path, sites: int, seed: int, scale: float = 0.15) -> Path:
    """A generated instance whose sites hold ``scale`` of their raw-material inventory, so
    that a shared pool binds."""
    db = generated_db(path, sites, seed)
    _mutate(db, f'UPDATE InventoryData SET raw_material_inventory = '
                f'raw_material_inventory * {scale}')
    return db


@pytest.mark.solve
def test_the_hand_pool_decomposed_by_site_gives_the_hand_answer():
    """The two hand sites with a pool of 10 (see above): 2,000, 5 units to each site, found
    site by site."""
    from stochplan.solve.linked import solve_shared

    pooled = from_tables(pool_tables(), "pool").with_options(raw_material_pool=10.0)
    assert FAMILY.shared_resource(pooled) is not None
    res = solve_shared(FAMILY, pooled, "named", 0, solver=EXACT)
    assert res.objective == pytest.approx(2000.0, abs=0.005)
    alloc = res.plan[res.plan["variable"] == "A"].set_index("site")["value"]
    assert alloc["H1"] == pytest.approx(5.0) and alloc["H2"] == pytest.approx(5.0)
    assert res.status == "optimal" and res.gap is not None and res.gap <= 1e-6


@pytest.mark.solve
@pytest.mark.parametrize("integer", [False, True], ids=["relaxed", "integer"])
def test_a_pool_decomposed_by_site_equals_the_network_extensive_form(tmp_path, integer):
    """Four generated sites short of raw material sharing a pool: the decomposition equals the
    network's extensive form solved whole (relaxed: objective to 1e-6). Integer: the bound is
    the whole relaxation's optimum, the plan integer and within the pool, its profit at most
    the bound (the network MIP itself takes minutes to solve whole)."""
    from stochplan.solve.ef import solve_ef
    from stochplan.solve.linked import solve_shared

    db = short_db(tmp_path / "in.db", 4, 2)
    inst = FAMILY.load_database(str(db), {"integer": integer, "raw_material_pool": 150.0})
    res = solve_shared(FAMILY, inst, "sample:5", 1, solver=EXACT)
    relaxed = inst.with_options(integer=False)
    whole = solve_ef(FAMILY.module, FAMILY.scenario_set(relaxed, "sample:5", 1).names,
                     FAMILY.creator_kwargs(relaxed, "sample:5", 1), SolverOptions())
    alloc = res.plan[res.plan["variable"] == "A"]["value"]
    assert len(alloc) == 4 and alloc.sum() <= 150.0 + 1e-6
    assert alloc.sum() == pytest.approx(150.0, rel=1e-6)  # the pool binds
    assert (alloc > 1e-6).sum() >= 2  # and is split between sites
    assert res.bound == pytest.approx(whole.objective, rel=1e-6)
    if not integer:
        assert res.objective == pytest.approx(whole.objective, rel=1e-6)
        assert res.status == "optimal"
    else:  # maximisation: the integer plan's profit is at most the relaxation's
        assert res.objective <= res.bound + 1e-6
        assert res.gap is not None and 0 < res.gap < 0.01
        assert res.status == "gap_reached" and res.info["rel_gap_target"] == 0.01
        x = res.plan[res.plan["variable"] == "x"]["value"]
        assert np.allclose(x, np.round(x), atol=1e-6)
        # a gap above the accepted one stops the solve, unless partial results are asked for
        import stochplan.solve.linked as linked
        from stochplan.errors import SolveError

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(linked, "INTEGER_REL_GAP", res.gap / 2)
            with pytest.raises(SolveError, match="from the relaxation's bound"):
                solve_shared(FAMILY, inst, "sample:5", 1, solver=EXACT)
            kept = solve_shared(FAMILY, inst, "sample:5", 1, solver=EXACT, allow_partial=True)
        assert kept.status == "stalled" and kept.objective == res.objective
    # the stored recourse holds: sales + leftover = production in every scenario
    rec = res.recourse.pivot_table(index=["scenario", "site", "product"], columns="variable",
                                   values="value").reset_index()
    prod = res.plan[res.plan["variable"] == "x"].set_index(["site", "product"])["value"]
    made = prod.reindex(list(zip(rec["site"], rec["product"]))).to_numpy()
    assert np.allclose(rec["S"] + rec["L"], made, atol=1e-6)


@pytest.mark.mpi
def test_a_pool_decomposed_by_site_under_mpiexec_equals_the_serial_run(tmp_path):
    """`stochplan solve` of a pooled instance on 1, 2 and 3 ranks: the same objective and
    allocation (the blocks' ranks exchange only allocations, values and subgradients)."""
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        pytest.skip(f"no mpiexec beside {sys.executable}")
    db = short_db(tmp_path / "in.db", 4, 2)
    args = ["solve", "multisite", "--input-db", str(db), "--scenarios", "sample:4", "--seed",
            "1", "--relax", "--set", "raw_material_pool=150", "--json"]
    out = {}
    for n in (1, 2, 3):
        run = subprocess.run([str(mpiexec), "-n", str(n), sys.executable, "-m", "stochplan",
                              *args, "--db", str(tmp_path / f"mpi{n}.db")], capture_output=True,
                             text=True, timeout=300, check=False,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert run.returncode == 0, run.stderr[-2000:]
        lines = [line for line in run.stdout.splitlines() if line.strip().startswith("{")]
        assert len(lines) == 1
        out[n] = json.loads(lines[0])
    assert "decomposed by block" in out[1]["backend"]
    for n in (2, 3):
        assert out[n]["objective"] == out[1]["objective"]
        assert out[n]["allocation"] == out[1]["allocation"]
        assert out[n]["iterations"] == out[1]["iterations"]
