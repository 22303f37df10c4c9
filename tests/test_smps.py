"""The model leaves the package: MPS and LP files of the extensive form, SMPS files of the
two-stage problem, and the ``write-model`` command.

The written files are read back by other programs and must give stochplan's own optimal
objective: the MPS and LP files by HiGHS (highspy), the SMPS files by mpi-sppy's SMPS reader
(``mpisppy.problem_io.smps_module``, which reads the core file through python-mip), whose
extensive form is then solved with HiGHS through Pyomo.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from stochplan.cli import main
from stochplan.config import RunConfig, ScenarioConfig
from stochplan.errors import InputError
from stochplan.solve.smps import column_names, row_names, write_mps, write_smps

#: HiGHS solves both sides; LPs agree to rounding, MIPs solved to a zero gap likewise.
REL = 1e-9


def highs_objective(path: Path) -> float:
    """Optimal objective of an MPS or LP file, read and solved by HiGHS."""
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", 0.0)
    assert h.readModel(str(path)) == highspy.HighsStatus.kOk
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return float(h.getInfo().objective_function_value)


def mpisppy_objective(folder: Path) -> tuple[list[str], float]:
    """Scenario names and optimal extensive-form objective of the SMPS files in ``folder``,
    read by mpi-sppy's SMPS reader."""
    pytest.importorskip("mip", reason="mpi-sppy's SMPS reader needs python-mip (test extra)")
    import pyomo.environ as pyo
    from mpisppy.problem_io import smps_module
    from mpisppy.utils import sputils
    from pyomo.common.config import ConfigDict, ConfigValue

    cfg = ConfigDict()
    cfg.declare("smps_dir", ConfigValue(default=str(folder)))
    kwargs = smps_module.kw_creator(cfg)
    names = smps_module.scenario_names_creator(None)
    ef = sputils.create_EF(names, smps_module.scenario_creator, scenario_creator_kwargs=kwargs)
    solver = pyo.SolverFactory("appsi_highs")
    solver.options["mip_rel_gap"] = 0.0
    result = solver.solve(ef)
    assert str(result.solver.termination_condition) == "optimal"
    objective = next(ef.component_data_objects(pyo.Objective, active=True))
    return names, float(pyo.value(objective))


def stochplan_objective(instance: str, spec: str, seed: int | None, model: dict) -> float:
    """stochplan's optimal objective (extensive form, zero MIP gap), in its own sense."""
    from stochplan.run import solve_instance
    from stochplan.solve.solvers import SolverOptions

    scenarios = ScenarioConfig(spec=spec) if seed is None else ScenarioConfig(spec=spec, seed=seed)
    config = RunConfig(instance=instance, scenarios=scenarios,
                       model=model, solver=SolverOptions(mip_rel_gap=0.0))
    outcome = solve_instance(config)
    assert outcome is not None
    return float(outcome.result.objective)


# ----------------------------------------------------------------------------------------------
# Without a solve


def test_names_follow_the_model_and_are_unique():
    from stochplan.solve.matrix import Columns

    cols = Columns(variables=("X", "X", "X", "OBJ"), indices=(("TV A", 1), ("TV-A", 1), (2,), ()),
                   n_first=1, integer=np.zeros(4, bool))
    assert column_names(cols) == ("X_TV_A_1", "X_TV_A_1_c1", "X_2", "OBJ_c3")
    assert row_names(("cap", "cap[3]", "bal", "cap")) == ("cap_0", "cap_1", "bal_0", "cap_2")


def test_mps_of_a_small_problem_reads_back_by_hand(tmp_path):
    """min x + 2y + 3z + 7.5 s.t. x + y + z >= 1, x + z <= 5, 0 <= y - z <= 2 (a range),
    x integer >= 0, 0 <= y <= 1, z free. By hand: z costs 3 and is as low as the band allows,
    z = y - 2; then x >= 3 - 2y (integer) and x + 2y + 3z = x + 5y - 6 is least at y = 0,
    x = 3, z = -2: 3 - 6 + 7.5 = 4.5."""
    A = sp.csr_matrix(np.array([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [0.0, 1.0, -1.0]]))
    path = tmp_path / "small.mps"
    write_mps(path, name="small", A=A, cost=np.array([1.0, 2.0, 3.0]),
              col_lo=np.array([0.0, 0.0, -np.inf]), col_hi=np.array([np.inf, 1.0, np.inf]),
              row_lo=np.array([1.0, -np.inf, 0.0]), row_hi=np.array([np.inf, 5.0, 2.0]),
              integer=np.array([True, False, False]), col_names=["x", "y", "z"],
              row_names=["cover", "cap", "band"], offset=7.5, comments=["a comment"])
    text = path.read_text()
    assert text.startswith("* a comment\nNAME          small\n")
    assert " G  cover\n L  cap\n G  band\n" in text
    assert "RANGES\n    RNG  band  2.0\n" in text
    assert " PL BND1  x\n UP BND1  y  1.0\n FR BND1  z\n" in text
    assert "    RHS1  OBJ  -7.5\n" in text
    assert highs_objective(path) == pytest.approx(4.5, rel=1e-12)


def test_smps_files_have_the_three_sections(tmp_path):
    """Two scenarios of ``min x + y_s`` s.t. ``x + y_s >= d_s`` (d = 3, 5), ``x <= 4``
    (first stage), ``y_s <= u_s`` (u = 10, 20: a random bound, written as a row)."""
    from stochplan.solve.matrix import Columns, CompiledScenarios

    compiled = CompiledScenarios(
        names=("low", "high"), probabilities=np.array([0.5, 0.5]),
        A=sp.csr_matrix(np.array([[1.0, 0.0], [1.0, 1.0]])),
        row_sense=np.array([1, -1], np.int8), row_family=("cap", "demand"),
        rhs=np.array([[4.0, 3.0], [4.0, 5.0]]),
        col_lo=np.zeros((2, 2)), col_hi=np.array([[np.inf, 10.0], [np.inf, 20.0]]),
        cost=np.array([[1.0, 2.0], [1.0, 2.0]]), offset=np.zeros(2),
        columns=Columns(variables=("x", "y"), indices=((), ()), n_first=1,
                        integer=np.zeros(2, bool)),
        sense=1, method="each")
    cor, tim, sto = write_smps(compiled, tmp_path / "tiny")
    assert [p.name for p in (cor, tim, sto)] == ["tiny.cor", "tiny.tim", "tiny.sto"]
    assert tim.read_text() == ("TIME          tiny\nPERIODS       IMPLICIT\n"
                               "    x  cap_0  STAGE-1\n    y  demand_0  STAGE-2\nENDATA\n")
    assert sto.read_text() == (
        "STOCH         tiny\nSCENARIOS     DISCRETE\n"
        " SC low  ROOT  0.5  STAGE-2\n    RHS1  demand_0  3.0\n    RHS1  UB_y  10.0\n"
        " SC high  ROOT  0.5  STAGE-2\n    RHS1  demand_0  5.0\n    RHS1  UB_y  20.0\n"
        "ENDATA\n")
    core = cor.read_text()
    assert " L  cap_0\n G  demand_0\n L  UB_y\n" in core  # first stage, second stage, bound
    assert " UP BND1  y  20.0\n" in core  # the loosest bound; the row holds each scenario's


def test_a_bound_finite_in_one_scenario_only_is_refused(tmp_path):
    from stochplan.solve.matrix import Columns, CompiledScenarios

    compiled = CompiledScenarios(
        names=("a", "b"), probabilities=np.array([0.5, 0.5]),
        A=sp.csr_matrix(np.array([[1.0, 1.0]])), row_sense=np.array([-1], np.int8),
        row_family=("demand",), rhs=np.array([[3.0], [5.0]]), col_lo=np.zeros((2, 2)),
        col_hi=np.array([[np.inf, 10.0], [np.inf, np.inf]]), cost=np.ones((2, 2)),
        offset=np.zeros(2), columns=Columns(("x", "y"), ((), ()), 1, np.zeros(2, bool)),
        sense=1, method="each")
    with pytest.raises(InputError, match="bound of column y"):
        write_smps(compiled, tmp_path / "bad")


@pytest.mark.parametrize(("out", "fmt", "message"), [
    ("model", None, "give --format"),
    ("model.lp", "mps", "names a lp file, but --format is mps"),
])
def test_write_model_needs_a_format(tmp_path, capsys, out, fmt, message):
    argv = ["write-model", "electronics", "--out", str(tmp_path / out)]
    assert main(argv + (["--format", fmt] if fmt else [])) == 2
    assert message in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# Read back by HiGHS and by mpi-sppy


@pytest.mark.solve
def test_electronics_relaxed_every_format_gives_stochplans_objective(tmp_path, capsys):
    """The three-point electronics instance, LP relaxation: MPS and LP read by HiGHS, SMPS
    read by mpi-sppy, each gives the objective ``stochplan solve`` finds."""
    want = stochplan_objective("electronics", "named", None, {"integer": False})
    assert want == pytest.approx(564_341.51, rel=1e-9)  # known: the relaxed three-point RP
    for out in ("ef.mps", "ef.lp", "smps/"):
        assert main(["write-model", "electronics", "--relax", "--out", f"{tmp_path}/{out}"]) == 0
    printed = capsys.readouterr().out
    assert "Wrote the two-stage problem (SMPS) of electronics: 3 scenarios" in printed
    assert highs_objective(tmp_path / "ef.mps") == pytest.approx(want, rel=REL)
    assert highs_objective(tmp_path / "ef.lp") == pytest.approx(want, rel=REL)
    names, got = mpisppy_objective(tmp_path / "smps")
    assert names == ["scen0", "scen1", "scen2"]
    assert got == pytest.approx(want, rel=REL)
    sto = (tmp_path / "smps" / "electronics.sto").read_text()
    assert " SC scen0  ROOT  0.25  STAGE-2\n" in sto and " SC scen1  ROOT  0.5  STAGE-2\n" in sto


@pytest.mark.solve
def test_furniture_lot_sizing_integer_smps_and_mps(tmp_path, capsys):
    """Lot sizing (integer batches, maximises profit), three sampled scenarios: the files hold
    min -profit, so what they give back is minus stochplan's objective."""
    want = stochplan_objective("furniture", "sample:3", 1, {})
    assert want > 0 and math.isfinite(want)
    assert main(["write-model", "furniture", "--scenarios", "sample:3", "--seed", "1",
                 "--format", "smps", "--out", str(tmp_path / "lot") + "/", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["family"], info["scenarios"], info["sense"]) == ("lotsizing", 3, -1)
    assert info["integers"] == 36
    names, got = mpisppy_objective(tmp_path / "lot")
    assert len(names) == 3
    assert got == pytest.approx(-want, rel=REL)
    assert main(["write-model", "furniture", "--scenarios", "sample:3", "--seed", "1",
                 "--out", str(tmp_path / "lot.mps")]) == 0
    assert highs_objective(tmp_path / "lot.mps") == pytest.approx(-want, rel=REL)


@pytest.mark.solve
def test_random_bounds_become_rows_that_mpisppy_reads(tmp_path):
    """The pre-build family's expedite columns have scenario-dependent upper bounds: the SMPS
    files write them as rows with a random right-hand side, and mpi-sppy gets the objective."""
    want = stochplan_objective("sop-prebuild", "sample:3", 2, {})
    assert main(["write-model", "sop-prebuild", "--scenarios", "sample:3", "--seed", "2",
                 "--out", str(tmp_path / "pre") + "/"]) == 0
    sto = (tmp_path / "pre" / "sop-prebuild.sto").read_text()
    assert "RHS1  UB_" in sto
    _, got = mpisppy_objective(tmp_path / "pre")
    assert got == pytest.approx(want, rel=REL)
