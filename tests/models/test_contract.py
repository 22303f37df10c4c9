"""The aggregate module follows mpi-sppy's module contract and runs under its drivers."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from stochplan.models import aggregate
from stochplan.scenarios import poisson_demand


def test_scenario_creator_attaches_tree_and_probability():
    m = aggregate.scenario_creator("scen1", instance="electronics")
    assert m._mpisppy_probability == 0.5
    nonants = m._mpisppy_node_list[0].nonant_vardata_list
    assert len(nonants) == len(aggregate.FIRST_STAGE) * 3 * 12
    # the med level's demand of A in week 1 is 291; the backorder cap row carries 0.4 * D
    assert m.backorder_cap["A", 1].upper == pytest.approx(0.4 * 291)


def test_sampled_scenario_is_the_same_whatever_n():
    """Scenario k's model data depend on (seed, k) only, not on the number of scenarios."""
    small = aggregate.scenario_creator("scen3", scenarios="poisson:5", seed=11)
    large = aggregate.scenario_creator("scen3", scenarios="poisson:500", seed=11)
    assert small.backorder_cap["B", 7].upper == large.backorder_cap["B", 7].upper
    assert small._mpisppy_probability == pytest.approx(1 / 5)
    assert large._mpisppy_probability == pytest.approx(1 / 500)
    inst = aggregate.resolve("electronics")
    d = poisson_demand(inst.base_demand, seed=11, k=3)
    assert small.backorder_cap["B", 7].upper == pytest.approx(0.4 * d[1, 6])


def test_names_and_kwargs_from_an_mpisppy_config():
    from mpisppy.utils import config

    assert aggregate.scenario_names_creator(3) == ["scen0", "scen1", "scen2"]
    assert aggregate.scenario_names_creator(2, start=5) == ["scen5", "scen6"]
    cfg = config.Config()
    aggregate.inparser_adder(cfg)
    cfg.num_scens = 8
    cfg.scenario_seed = 4
    cfg.scenario_kind = "sample"
    kw = aggregate.kw_creator(cfg)
    assert kw["scenarios"] == "sample:8" and kw["seed"] == 4 and kw["num_scens"] == 8
    assert kw["options"] is None  # the instance as shipped
    model = aggregate.scenario_creator("scen2", **kw)
    assert model._mpisppy_probability == pytest.approx(1 / 8)
    assert not hasattr(model, "L")
    cfg.relax_integrality = True
    cfg.lost_sales_penalty = 1000
    kw = aggregate.kw_creator(cfg)
    assert kw["options"] == {"integer": False, "lost_sales_penalty": 1000.0}
    model = aggregate.scenario_creator("scen2", **kw)
    assert hasattr(model, "L") and not model.X["A", 1].is_integer()


def test_average_scenario_uses_expected_demand():
    """The EV scenario's demand is the probability-weighted mean (rounded for integer models)."""
    inst = aggregate.resolve("electronics")
    ev = aggregate.average_scenario_creator("scen0", instance="electronics")
    mean = inst.expected_level_demand
    assert ev._mpisppy_probability == 1.0
    assert ev.backorder_cap["A", 2].upper == pytest.approx(0.4 * np.round(mean[0, 1]))
    relaxed = aggregate.average_scenario_creator("scen0", instance="electronics",
                                                 integer_policy="relax")
    assert relaxed.backorder_cap["A", 2].upper == pytest.approx(0.4 * mean[0, 1])
    assert not relaxed.X["A", 1].is_integer()


@pytest.mark.solve
def test_runs_unchanged_under_generic_cylinders(tmp_path):
    """mpi-sppy's own driver solves our module's EF to the seed's optimum; its default
    scenarios are `stochplan solve`'s (the instance's named ones), so "3 scenarios" is one
    problem whichever driver runs it."""
    cmd = [sys.executable, "-m", "mpisppy.generic_cylinders",
           "--module-name", "stochplan.models.aggregate", "--num-scens", "3",
           "--EF", "--EF-solver-name", "highs"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "EF objective: 564471.5" in out.stdout


def test_named_scenarios_need_their_own_count():
    """With the named scenarios (mpi-sppy's default here, as the CLI's), --num-scens must be
    their number: 10 of a three-point instance would be another problem, said in one line."""
    from mpisppy.utils import config

    from stochplan.errors import InputError

    cfg = config.Config()
    aggregate.inparser_adder(cfg)
    assert cfg.get("scenario_kind") == "named"
    cfg.num_scens = 3
    assert aggregate.kw_creator(cfg)["scenarios"] == "named"
    cfg.num_scens = 10
    with pytest.raises(InputError, match="--num-scens = 10: the instance has 3 named"):
        aggregate.kw_creator(cfg)

