"""The value report block by block (the sites of the multi-site family): per-block RP, EV,
EEV, WS, VSS and EVPI sum to the totals, each block's figures are those of the block valued
alone through the generic Pyomo path, the totals are those of the whole instance valued as
one problem, and ``stochplan value`` reports and stores them."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from stochplan.analysis.value import value_by_blocks, value_report
from stochplan.cli import main
from stochplan.family import get_family
from stochplan.models.multisite.data import from_tables
from stochplan.solve.solvers import SolverOptions

pytestmark = pytest.mark.solve

FAMILY = get_family("multisite")
KEYS = ("rp", "ev", "eev", "ws", "vss", "evpi")


def _alone(site, spec, seed, solver):
    """The generic value report of one site on its own, every model built with Pyomo."""
    names = FAMILY.scenario_set(site, spec, seed).names
    return value_report(FAMILY.module, names, FAMILY.creator_kwargs(site, spec, seed), solver)


def two_small_sites():
    """Two sites of one machine (60 $/h, 5 h a week) and two products each (price 100 and 60
    in H1, 110 and 60 in H2; 30 and 20 minutes; one unit of raw material at 10 $): the machine
    binds, so the integer plan is not the rounded relaxed one. Their MIPs solve at once (a
    generated 30-product site's wait-and-see MIP can take minutes to a zero gap)."""
    def site(name, p1):
        return {
            "ProductData": pd.DataFrame({
                "site": [name] * 2, "product": ["P1", "P2"], "price": [p1, 60.0],
                "raw_material": [1.0, 1.0], "raw_material_cost": [10.0, 10.0],
                "min_demand": [0.0, 0.0], "max_demand": [20.0, 20.0],
                "mean_demand": [8.0, 12.0]}),
            "ProductMachineData": pd.DataFrame({"site": [name] * 2, "product": ["P1", "P2"],
                                                "machine": ["M", "M"],
                                                "minutes": [30.0, 20.0]}),
            "MachineData": pd.DataFrame({"site": [name], "machine": ["M"],
                                         "cost_per_hour": [60.0], "weekly_hours": [5.0]}),
            "InventoryData": pd.DataFrame({"site": [name], "raw_material_inventory": [1000.0]}),
        }
    one, two = site("H1", 100.0), site("H2", 110.0)
    return from_tables({k: pd.concat([one[k], two[k]], ignore_index=True) for k in one},
                       "two small sites")


@pytest.mark.parametrize("integer", [False, True], ids=["relaxed", "integer"])
def test_blocks_sum_to_the_totals_and_equal_each_site_valued_alone(integer):
    """Sampled scenarios (relaxed: 3 generated sites, 8 scenarios; integer: the two small
    sites, 12 scenarios): each column of ``by_block`` sums to its total; each site's RP, EV,
    EEV, WS, VSS and EVPI equal the generic report of that site alone (Pyomo models, HiGHS
    through Pyomo; MIPs solved to a zero gap) to the cent."""
    if integer:
        inst, spec = two_small_sites(), "sample:12"
    else:
        inst, spec = FAMILY.resolve("multisite", {"integer": False}).subset([0, 2, 4]), \
            "sample:8"
    seed = 3
    exact = SolverOptions(mip_rel_gap=0.0)
    report = value_by_blocks(FAMILY, inst, spec, seed, solver=exact)
    table = report.by_block
    assert table is not None and list(table["block"]) == list(inst.sites)
    for key in KEYS:
        assert math.isclose(float(table[key].sum()), getattr(report, key), rel_tol=1e-12,
                            abs_tol=1e-6), key
    pyomo = SolverOptions(mip_rel_gap=0.0, backend="pyomo")
    for n, site in enumerate(inst.sites):
        alone = _alone(inst.subset([n]), spec, seed, pyomo)
        row = table.iloc[n]
        for key in KEYS:
            assert abs(float(row[key]) - getattr(alone, key)) < 0.005, (site, key)
    # the orderings of a maximisation: WS >= RP >= EEV, per site and in total
    assert (table["evpi"] >= -1e-6).all() and (table["vss"] >= -1e-6).all()
    # the recourse problem's result is the sites' together (plan of every site)
    assert report.rp_result is not None
    assert set(report.rp_result.plan["site"]) == set(inst.sites)
    assert math.isclose(report.rp_result.objective, report.rp, rel_tol=1e-12)


def test_totals_equal_the_whole_instance_valued_as_one_problem():
    """Relaxed, 5 sites, 4 scenarios: the blocks' totals are the generic report of all sites
    in one model (its RP, EV, EEV and WS separate by site)."""
    inst = FAMILY.resolve("multisite", {"integer": False})
    spec, seed = "sample:4", 2
    report = value_by_blocks(FAMILY, inst, spec, seed)
    whole = _alone(inst, spec, seed, SolverOptions())
    for key in KEYS:
        assert abs(getattr(report, key) - getattr(whole, key)) < 0.005, key
    np.testing.assert_allclose(report.by_scenario["ws"], whole.by_scenario["ws"], atol=0.005)
    np.testing.assert_allclose(report.by_scenario["eev"], whole.by_scenario["eev"], atol=0.005)


def test_one_scenario_has_no_value_of_information_or_of_the_stochastic_solution():
    """``named`` is one scenario (maximum demand): RP = EV = EEV = WS for every site, so VSS
    and EVPI are 0 per site and in total."""
    inst = FAMILY.resolve("multisite", {"integer": False})
    report = value_by_blocks(FAMILY, inst, "named", 0)
    assert report.by_block is not None
    for key in ("vss", "evpi"):
        np.testing.assert_allclose(report.by_block[key], 0.0, atol=1e-6)
    np.testing.assert_allclose(report.by_block["rp"], report.by_block["ws"], rtol=1e-9)


def test_value_command_reports_and_stores_the_sites(tmp_path, capsys):
    """``stochplan value multisite``: the JSON has one row per site whose VSS and EVPI sum to
    the totals, the text lists the sites, and the run stores ``value_by_block``."""
    db = tmp_path / "runs.db"
    args = ["value", "multisite", "--relax", "--scenarios", "sample:4", "--seed", "1",
            "--db", str(db)]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    run_id = int(out["run_id"])
    rows = out["by_block"]
    assert [r["block"] for r in rows] == ["Site001", "Site002", "Site003", "Site004",
                                          "Site005"]
    for key in ("vss", "evpi", "rp", "ws", "eev"):
        assert math.isclose(sum(r[key] for r in rows), out[key], rel_tol=1e-12), key
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "5 independent blocks" in text and "Site003" in text
    from stochplan.store import ResultsStore

    with ResultsStore(db) as store:
        stored = store.get_run(run_id).record.tables["value_by_block"]
    assert list(stored["block"]) == [r["block"] for r in rows]
    np.testing.assert_allclose(stored["evpi"], [r["evpi"] for r in rows], rtol=1e-12)
