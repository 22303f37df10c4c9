"""Tests of the ``stochplan`` command line.

Most run ``stochplan.cli.main`` in-process (working directory ``tmp_path``, so no
``stochplan.db`` lands in the repository); a few run the real console script in a subprocess to
check exit statuses, that stdout holds only what we print, and that no traceback escapes.

Exit statuses: 0 success, 2 user mistake (one line ``stochplan: error: ...``), 3 no optimal
plan (one line ``stochplan: infeasible: ...`` or ``stochplan: solve failed: ...``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stochplan.cli import main
from stochplan.data import resolve_instance
from stochplan.store import ResultsStore

TINY = (Path(__file__).parent / "data" / "tiny").resolve()
WAREHOUSES = {"regular_warehouse", "overflow_warehouse"}


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``stochplan ARGV`` in-process: (exit status, stdout, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse errors exit from inside parse_args
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def run_script(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``stochplan ARGV`` as a separate process (the console script's module entry point)."""
    return subprocess.run(
        [sys.executable, "-m", "stochplan", *argv],
        cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )


def assert_one_line_error(err: str, prefix: str = "stochplan: error:") -> str:
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix), err
    return lines[0]


def runs_in(capsys, db: Path) -> list[dict]:
    code, out, err = run(capsys, "runs", "--db", str(db), "--json")
    assert code == 0, err
    return json.loads(out)


def infeasible_copy(tmp_path: Path) -> Path:
    """Tiny, made infeasible: 50 units on hand, demand 10 a week, no warehouse space at all.

    Week 1 leaves at least 40 units that neither warehouse may hold (and backorders cannot
    absorb stock), so no plan exists. With 0.1 space units per unit, the cheapest elastic
    repair is warehouse space (4 + 3 per scenario), far below relaxing the inventory balance
    (40 units), so the diagnosis names a warehouse family.
    """
    folder = tmp_path / "infeasible"
    shutil.copytree(TINY, folder)
    toml = folder / "instance.toml"
    text = toml.read_text()
    for old, new in [
        ("initial_inventory = 0\n", "initial_inventory = 50\n"),
        ("space_per_unit = 1\n", "space_per_unit = 0.1\n"),
        ("regular_warehouse = 100\n", "regular_warehouse = 0\n"),
        ("overflow_capacity = 100.0\n", "overflow_capacity = 0.0\n"),
        ("backorder_fraction = 1.0\n", "backorder_fraction = 0.0\n"),
    ]:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    toml.write_text(text)
    csv = folder / "demand.csv"
    rows = csv.read_text().splitlines()
    assert rows[2] == "A,2,10,1,1,10,2,3,100,100,5,15,0.5,0.5"
    rows[2] = "A,2,10,1,1,10,2,3,100,100,10,10,0.5,0.5"
    csv.write_text("\n".join(rows) + "\n")
    return folder


# ----------------------------------------------------------------------------------------------
# Fast paths


def test_instances_lists_electronics(capsys):
    code, out, err = run(capsys, "instances")
    assert code == 0
    assert err == ""
    lines = out.splitlines()
    assert any(line.startswith("electronics ") and "[aggregate]" in line for line in lines), out


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == "stochplan 0.1.0"


#: A database URL where no server listens (port 1 of this machine), with a password that no
#: message may show.
DEAD_PG = "postgresql+psycopg://u:secret@127.0.0.1:1/y"
DEAD_PG_SHOWN = "postgresql+psycopg://u:***@127.0.0.1:1/y"


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (("solve", "nosuch"), ("'nosuch'", "built-in: electronics")),
        (("solve", "electronics", "--scenarios", "normal:5"), ("scenarios", "'normal:5'")),
        (("solve", "electronics", "--scenarios", "poisson:0"), ("scenarios", "'poisson:0'")),
        (("solve", "electronics", "--seed", "-1"), ("--seed", "-1")),
        (("solve", "electronics", "--time-limit", "0"), ("--time-limit", "0")),
        (("solve", "electronics", "--config", "missing.toml"), ("--config", "'missing.toml'")),
        (("solve", "electronics", "--frobnicate"), ("unrecognized arguments: --frobnicate",)),
        (("runs", "--db", DEAD_PG), (f"'{DEAD_PG_SHOWN}'", "cannot")),
        (("show", "1", "--db", DEAD_PG), ("--db", f"'{DEAD_PG_SHOWN}'", "cannot")),
        (("runs", "--db", "postgresql+psycopg://u@[x/y"), ("--db", "not a database URL")),
        (("show", "1", "--db", "none.db"), ("--db", "'none.db'", "no results database")),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, argv, names):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    line = assert_one_line_error(err)
    for name in names:
        assert name in line, line
    assert not Path("stochplan.db").exists()


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (("show", "one"), "invalid run 'one'"),
        (("solve", "electronics", "--seed", "x"), "invalid int value: 'x'"),
        (("solve",), "INSTANCE"),
    ],
)
def test_subcommand_argument_errors_are_one_line_exit_2(capsys, argv, name):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert name in assert_one_line_error(err)


def test_config_with_unknown_key(capsys, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text("[solver]\nthreads = 2\nverbosity = 3\n")
    code, out, err = run(capsys, "solve", "electronics", "--config", str(cfg))
    assert code == 2
    assert out == ""
    line = assert_one_line_error(err)
    assert "solver.verbosity = 3" in line
    assert str(cfg) in line


def test_bad_instance_folder_names_the_csv(capsys, tmp_path):
    folder = tmp_path / "mine"
    shutil.copytree(resolve_instance("electronics").parent, folder)
    csv = folder / "product_data.csv"
    text = csv.read_text()
    old = "B_3,3,289,14,"
    assert text.count(old) == 1
    csv.write_text(text.replace(old, "B_3,3,289,-14,"))
    code, out, err = run(capsys, "solve", str(folder))
    assert code == 2
    assert out == ""
    line = assert_one_line_error(err)
    # B_3 is the 15th data row: line 16 of the file
    for name in ("unit_production_cost (row 16)", "-14", str(csv), "non-negative"):
        assert name in line, line


def test_show_missing_run_on_existing_db(capsys, tmp_path):
    db = tmp_path / "r.db"
    with ResultsStore(db):
        pass
    code, out, err = run(capsys, "show", "999", "--db", str(db))
    assert code == 2
    assert out == ""
    line = assert_one_line_error(err)
    assert "run = 999" in line
    assert str(db) in line


def test_runs_without_a_database(capsys, tmp_path):
    code, out, err = run(capsys, "runs", "--db", str(tmp_path / "none.db"))
    assert code == 0
    assert out == ""
    assert "no results database at" in err
    assert not (tmp_path / "none.db").exists()


def test_bad_db_is_rejected_before_solving(capsys, monkeypatch):
    def no_solve(*args, **kwargs):
        raise AssertionError("solve_instance called before --db was checked")

    monkeypatch.setattr("stochplan.run.solve_instance", no_solve)
    code, _, err = run(capsys, "solve", str(TINY), "--db", DEAD_PG)
    assert code == 2
    line = assert_one_line_error(err)
    assert DEAD_PG_SHOWN in line and "secret" not in line


def test_script_bad_input_exit_status(tmp_path):
    proc = run_script(tmp_path, "solve", "nosuch")
    assert proc.returncode == 2
    assert proc.stdout == ""
    line = assert_one_line_error(proc.stderr)
    assert "'nosuch'" in line


def test_script_unknown_flag_exit_status(tmp_path):
    proc = run_script(tmp_path, "solve", str(TINY), "--frobnicate")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "--frobnicate" in assert_one_line_error(proc.stderr)


# ----------------------------------------------------------------------------------------------
# Solves (HiGHS; the tiny instance solves in well under a second)


@pytest.mark.solve
def test_solve_tiny_json_then_runs_and_show(capsys, tmp_path):
    db = tmp_path / "r.db"
    code, out, err = run(capsys, "solve", str(TINY), "--json", "--db", str(db))
    assert code == 0, err
    assert "Traceback" not in err
    payload = json.loads(out)  # the whole of stdout is one JSON object
    assert payload["status"] == "optimal"
    assert payload["objective"] == pytest.approx(85.0, abs=1e-6)  # by hand, see tiny's TOML
    assert payload["kpis"]["revenue"] == pytest.approx(400.0, abs=1e-6)
    assert payload["kpis"]["profit"] == pytest.approx(315.0, abs=1e-6)
    assert payload["kpis"]["cost"] == pytest.approx(85.0, abs=1e-6)
    assert payload["instance"] == "tiny"
    assert payload["n_scenarios"] == 2
    assert payload["db"] == str(db)
    run_id = payload["run_id"]

    listed = runs_in(capsys, db)
    assert [r["id"] for r in listed] == [run_id]
    assert listed[0]["instance"] == "tiny"
    assert listed[0]["objective"] == pytest.approx(85.0, abs=1e-6)

    code, out, err = run(capsys, "runs", "--db", str(db))
    assert code == 0
    assert "tiny" in out and "optimal" in out

    code, out, err = run(capsys, "show", str(run_id), "--db", str(db), "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["run_id"] == run_id
    assert shown["objective"] == payload["objective"]
    assert shown["status"] == "optimal"
    assert shown["kpis"] == payload["kpis"]

    code, out, err = run(capsys, "show", str(run_id), "--db", str(db))
    assert code == 0, err
    assert "$85.00" in out

    # the plan leaves the package with --json: one record per first-stage value
    from stochplan.store import ResultsStore

    with ResultsStore(db) as store:
        stored_plan = store.get_run(run_id).record.plan
    assert shown["plan"] == stored_plan.to_dict(orient="records") and len(shown["plan"]) > 0

    # `last` names the newest run, for show as for dashboard and evaluate
    code, out_last, err = run(capsys, "show", "last", "--db", str(db), "--json")
    assert code == 0, err
    assert json.loads(out_last)["run_id"] == run_id


@pytest.mark.solve
def test_the_hint_after_solve_names_the_database_it_used(capsys, tmp_path):
    """`stochplan show N` alone would read ./stochplan.db: the hint says --db when the run
    went elsewhere, and the command it prints finds the run."""
    db = tmp_path / "my results.db"
    code, out, err = run(capsys, "solve", str(TINY), "--db", str(db))
    assert code == 0, err
    hint = out.strip().splitlines()[-1]
    assert f"`stochplan show 1 --db '{db}'` prints it again" in hint
    code, out, err = run(capsys, "show", "1", "--db", str(db))
    assert code == 0 and "$85.00" in out


@pytest.mark.solve
def test_solve_tiny_human_output(capsys, tmp_path):
    code, out, err = run(capsys, "solve", str(TINY), "--db", str(tmp_path / "r.db"))
    assert code == 0, err
    assert "Expected total cost (objective): $85.00" in out
    assert "Cumulative revenue            $400.00" in out
    assert "Cumulative profit             $315.00" in out
    assert f"Stored as run 1 in {tmp_path / 'r.db'}" in out


@pytest.mark.solve
def test_solve_without_db_writes_to_the_working_directory(capsys, tmp_path):
    code, out, err = run(capsys, "solve", str(TINY), "--json", "--quiet")
    assert code == 0, err
    assert json.loads(out)["db"] == "stochplan.db"
    assert (tmp_path / "stochplan.db").is_file()


@pytest.mark.solve
def test_script_solve_json_stdout_is_only_json(tmp_path):
    proc = run_script(tmp_path, "solve", str(TINY), "--json", "--db", str(tmp_path / "r.db"))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Initializing mpi-sppy" not in proc.stdout
    payload = json.loads(proc.stdout)
    assert payload["status"] == "optimal"
    assert payload["objective"] == pytest.approx(85.0, abs=1e-6)
    assert not (tmp_path / "stochplan.db").exists()


@pytest.mark.solve
def test_infeasible_instance_exit_3_names_the_warehouse(capsys, tmp_path):
    folder = infeasible_copy(tmp_path)
    code, out, err = run(capsys, "solve", str(folder), "--db", str(tmp_path / "r.db"))
    assert code == 3
    assert out == ""
    line = assert_one_line_error(err, "stochplan: infeasible:")
    violated, _, alone = line.partition("; relaxing any one of these alone makes it feasible: ")
    named = {f for f in WAREHOUSES | {"inventory_balance", "backorder_cap"} if f in violated}
    assert named and named <= WAREHOUSES, line
    assert "regular_warehouse" in alone.split(", "), line
    # 40 units stored in week 1 and 30 in week 2, at 0.1 space units each, in both scenarios
    if len(named) == 1:
        assert "short by 14 in total" in line, line
    assert not (tmp_path / "r.db").exists()


@pytest.mark.solve
def test_failed_solve_leaves_the_database_unchanged(capsys, tmp_path):
    db = tmp_path / "r.db"
    code, _, err = run(capsys, "solve", str(TINY), "--json", "--db", str(db))
    assert code == 0, err
    before = runs_in(capsys, db)
    assert len(before) == 1

    proc = run_script(tmp_path, "solve", str(infeasible_copy(tmp_path)), "--db", str(db))
    assert proc.returncode == 3
    assert proc.stdout == ""
    assert_one_line_error(proc.stderr, "stochplan: infeasible:")

    assert runs_in(capsys, db) == before


# ----------------------------------------------------------------------------------------------
# --set, --relax, --scenarios: the same options on every command that builds a model


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (("solve", "electronics", "--set", "lost_sales_penalty=-5"),
         ("--set lost_sales_penalty = -5", "must be >= 0")),
        (("solve", "electronics", "--set", "nope=1"),
         ("--set nope = 1", "unknown option", "lost_sales_penalty")),
        (("solve", "electronics", "--set", "integer=yes"),
         ("--set integer = 'yes'", "true or false")),
        (("solve", "electronics", "--set", "integer"), ("--set = 'integer'", "KEY=VALUE")),
        (("value", "electronics", "--set", "nope=1"), ("--set nope = 1", "unknown option")),
        (("saa", "electronics", "--target-gap", "1%", "--set", "nope=1"),
         ("--set nope = 1", "unknown option")),
        (("solve", "electronics", "--relax", "--set", "integer=true"),
         ("--relax", "contradicts --set integer=true")),
        (("solve", "nosuch", "--set", "integer=false"), ("'nosuch'", "built-in: electronics")),
        (("saa", "electronics", "--target-gap", "1%", "--scenarios", "named"),
         ("--scenarios = 'named'", "sample:N")),
        (("value", "--module", "stochplan.models.farmer", "--num-scens", "3", "--relax"),
         ("--relax", "--set KEY=VALUE")),
        (("value", "--module", "stochplan.models.farmer", "--num-scens", "3", "--set", "nope=1"),
         ("--set nope = 1", "has no option 'nope'")),
    ],
)
def test_bad_model_options_are_one_line_naming_the_flag(capsys, argv, names):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    line = assert_one_line_error(err)
    for name in names:
        assert name in line, line
    assert not Path("stochplan.db").exists()


def test_relax_needs_an_integer_option(capsys, monkeypatch):
    """``--relax`` is ``--set integer=false``; a family without that option refuses it."""
    import pydantic

    from stochplan import data, family
    from stochplan.models.aggregate import AggregateFamily

    class Options(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid", frozen=True)
        budget: float = 1.0

    class Continuous(AggregateFamily):
        name = "continuous"
        options_type = Options

    monkeypatch.setitem(family._REGISTERED, "continuous", Continuous())
    monkeypatch.setattr(data, "instance_family", lambda instance: "continuous")
    code, _, err = run(capsys, "solve", "electronics", "--relax")
    assert code == 2
    line = assert_one_line_error(err)
    assert "--relax = True" in line and "continuous family has no integer option" in line


def test_config_schema_prints_the_json_schema(capsys):
    code, out, err = run(capsys, "config-schema", "electronics")
    assert code == 0, err
    schema = json.loads(out)
    assert schema["title"] == "stochplan run configuration (aggregate family)"
    assert {"model", "scenarios", "solver", "ph", "lshaped", "output"} <= set(schema["properties"])
    assert "lost_sales_penalty" in schema["$defs"]["ModelOptions"]["properties"]
    code, out2, _ = run(capsys, "schema", "--family", "aggregate")
    assert code == 0 and json.loads(out2) == schema
    code, _, err = run(capsys, "schema", "--family", "nosuch")
    assert code == 2 and "unknown model family" in assert_one_line_error(err)


@pytest.mark.solve
def test_set_integer_false_is_relax(capsys, tmp_path):
    """Both solve the LP relaxation of the seed's model on its named scenarios: the same
    objective, below the integer optimum $564,471.50 (HiGHS gives $564,341.51)."""
    db = str(tmp_path / "r.db")
    code, out, err = run(capsys, "solve", "electronics", "--relax", "--json", "--db", db)
    assert code == 0, err
    relax = json.loads(out)
    code, out, err = run(capsys, "solve", "electronics", "--set", "integer=false", "--json",
                         "--db", db)
    assert code == 0, err
    setting = json.loads(out)
    assert relax["n_scenarios"] == setting["n_scenarios"] == 3
    assert setting["objective"] == pytest.approx(relax["objective"], rel=1e-12)
    assert relax["objective"] < 564_471.50 - 100
    assert relax["objective"] == pytest.approx(564_341.51, abs=0.01)
    with ResultsStore(db) as store:
        for run_id in (relax["run_id"], setting["run_id"]):
            assert store.get_run(run_id).record.config["model"]["integer"] is False


@pytest.mark.solve
def test_set_is_stored_with_the_run(capsys, tmp_path):
    db = str(tmp_path / "r.db")
    code, out, err = run(capsys, "solve", str(TINY), "--set", "lost_sales_penalty=12",
                         "--set", "backorder_fraction=0.5", "--json", "--db", db)
    assert code == 0, err
    with ResultsStore(db) as store:
        model = store.get_run(json.loads(out)["run_id"]).record.config["model"]
    assert model["lost_sales_penalty"] == 12.0 and model["backorder_fraction"] == 0.5


@pytest.mark.solve
def test_sample_is_poisson_for_the_aggregate_family(capsys, tmp_path):
    """The aggregate family has no sampler of its own: sample:N draws the Poisson demand of
    poisson:N, so the same seed gives the same scenarios and the same objective."""
    db = str(tmp_path / "r.db")
    objectives = {}
    for spec in ("sample:5", "poisson:5"):
        code, out, err = run(capsys, "solve", str(TINY), "--scenarios", spec, "--seed", "3",
                             "--json", "--db", db)
        assert code == 0, err
        payload = json.loads(out)
        assert payload["scenarios"] == spec and payload["n_scenarios"] == 5
        objectives[spec] = payload["objective"]
    assert objectives["sample:5"] == pytest.approx(objectives["poisson:5"], rel=1e-12)


@pytest.mark.solve
def test_scenarios_from_a_file(capsys, tmp_path):
    """The tiny instance's two named scenarios written to a file give its objective, 85."""
    path = tmp_path / "scenarios.csv"
    path.write_text("scenario,product,week,value,probability\n"
                    "low,A,1,10,0.5\nlow,A,2,5,0.5\nhigh,A,1,10,0.5\nhigh,A,2,15,0.5\n")
    code, out, err = run(capsys, "solve", str(TINY), "--scenarios", f"file:{path}", "--json",
                         "--db", str(tmp_path / "r.db"))
    assert code == 0, err
    payload = json.loads(out)
    assert payload["n_scenarios"] == 2
    assert payload["objective"] == pytest.approx(85.0, abs=1e-6)


@pytest.mark.solve
def test_export_writes_the_plan_and_any_table_as_csv(capsys, tmp_path):
    """tiny by hand: X = 10 in week 1 and 15 in week 2 (see its instance.toml)."""
    import pandas as pd

    db = tmp_path / "r.db"
    code, _, err = run(capsys, "solve", str(TINY), "--json", "--db", str(db))
    assert code == 0, err
    code, out, err = run(capsys, "export", "last", "-o", str(tmp_path / "plan.csv"),
                         "--db", str(db))
    assert code == 0, err
    plan = pd.read_csv(tmp_path / "plan.csv")
    assert list(plan.columns) == ["variable", "product", "week", "value"]
    x = plan[plan["variable"] == "X"].set_index("week")["value"]
    assert x.to_dict() == {1: 10.0, 2: 15.0}
    code, out, err = run(capsys, "export", "1", "kpis", "--db", str(db))
    assert code == 0, err
    kpis = dict(line.split(",") for line in out.splitlines()[1:])
    assert float(kpis["cost"]) == pytest.approx(85.0, abs=1e-9)
    code, out, _ = run(capsys, "export", "1", "--list", "--db", str(db))
    assert code == 0 and "recourse" in out and "scenarios" in out
    code, _, err = run(capsys, "export", "1", "nope", "--db", str(db))
    assert code == 2
    assert "nope" in assert_one_line_error(err)


def test_an_internal_error_is_one_line_exit_1_and_v_shows_the_trace(capsys, monkeypatch):
    """A bug is not a traceback for the user: one line naming it, exit 1; ``-v`` adds the
    traceback."""
    from stochplan.cli import solve as solve_cli

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(solve_cli, "instances_command", broken)
    code, out, err = run(capsys, "instances")
    assert code == 1 and out == ""
    assert err.strip() == ("stochplan: internal error: ZeroDivisionError: a bug (-v shows the "
                           "traceback; please report it)")
    code, _, err = run(capsys, "-v", "instances")
    assert code == 1 and "Traceback" in err and err.strip().endswith("please report it)")


def test_sigterm_is_terminated_exit_143(capsys, monkeypatch):
    """SIGTERM (here raised in the handler as the signal handler does) says "terminated"."""
    from stochplan.cli import solve as solve_cli
    from stochplan.errors import Terminated

    def stopped(args):
        raise Terminated()

    monkeypatch.setattr(solve_cli, "instances_command", stopped)
    code, out, err = run(capsys, "instances")
    assert code == 143 and out == ""
    assert err.strip() == "stochplan: terminated; the results database is unchanged"


def test_a_users_module_error_names_module_function_and_scenario(capsys, tmp_path,
                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mymodel.py").write_text(
        "from stochplan.models.farmer import *  # noqa\n\n"
        "def scenario_creator(scenario_name, **kwargs):\n"
        "    if scenario_name == 'scen1':\n"
        "        raise ValueError('no yields for ' + scenario_name)\n"
        "    from stochplan.models import farmer\n"
        "    return farmer.scenario_creator(scenario_name, **kwargs)\n")
    code, _, err = run(capsys, "value", "--module", "mymodel", "--num-scens", "3", "--quiet",
                       "--db", str(tmp_path / "r.db"))
    assert code == 2
    line = assert_one_line_error(err)
    assert ("--module = 'mymodel': its scenario_creator for scenario 'scen1' raised "
            "ValueError: no yields for scen1") in line
    assert not (tmp_path / "r.db").exists()
    code, _, err = run(capsys, "-v", "value", "--module", "mymodel", "--num-scens", "3",
                       "--quiet", "--db", str(tmp_path / "r.db"))
    assert code == 2 and "Traceback" in err and 'mymodel.py", line 5' in err
