"""Tests of the run configuration (fast, no solver): defaults, the TOML file, overrides, errors.

Every bad key or value raises :class:`InputError` naming the key, the value and, when it came
from a file, the file's path.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stochplan.config import RunConfig, ScenarioConfig, load_config
from stochplan.errors import InputError
from stochplan.solve.solvers import SolverOptions

FULL = """\
instance = "electronics"
method = "ef"

[model]
integer = false
lost_sales_penalty = 500.0

[scenarios]
spec = "poisson:100"
seed = 42
multipliers = [0.8, 1.0, 1.2]
weights = [0.25, 0.5, 0.25]

[solver]
name = "appsi_highs"
time_limit = 600.0
mip_rel_gap = 1e-4
threads = 2

[output]
db = "results/runs.db"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def error_of(path: Path | None = None, **overrides) -> InputError:
    with pytest.raises(InputError) as info:
        load_config(path, **overrides)
    return info.value


def assert_names(message: str, *parts: str) -> None:
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


# ----------------------------------------------------------------------------------------------
# Defaults, file, overrides


def test_defaults_without_a_file():
    cfg = load_config()
    assert cfg.instance == "electronics"
    assert cfg.method == "ef"
    assert cfg.model == {}
    assert cfg.scenarios.spec == "named"
    assert cfg.scenarios.seed == 0
    assert cfg.scenarios.multipliers == (1.0,)
    assert cfg.scenarios.weights is None
    assert cfg.solver.name == "highs"
    assert cfg.solver.time_limit is None
    assert cfg.db is None
    assert cfg.source is None
    assert cfg == RunConfig()


def test_file_with_every_section_is_read(tmp_path):
    path = write(tmp_path, FULL)
    cfg = load_config(path)
    assert cfg.instance == "electronics"
    assert cfg.method == "ef"
    assert cfg.model == {"integer": False, "lost_sales_penalty": 500.0}
    assert cfg.scenarios == ScenarioConfig(
        spec="poisson:100", seed=42, multipliers=(0.8, 1.0, 1.2), weights=(0.25, 0.5, 0.25)
    )
    assert cfg.solver == SolverOptions(
        name="appsi_highs", time_limit=600.0, mip_rel_gap=1e-4, threads=2
    )
    assert cfg.db == "results/runs.db"
    assert cfg.source == str(path)


def test_overrides_win_over_the_file(tmp_path):
    path = write(tmp_path, FULL)
    cfg = load_config(
        path,
        instance="electronics",
        db="other.db",
        model={"integer": True},
        scenarios={"spec": "qmc:8", "seed": 7},
        solver={"time_limit": 30.0},
    )
    assert cfg.instance == "electronics"
    assert cfg.db == "other.db"
    # dicts merge key by key: what the override does not name stays as the file says
    assert cfg.model == {"integer": True, "lost_sales_penalty": 500.0}
    assert cfg.scenarios.spec == "qmc:8"
    assert cfg.scenarios.seed == 7
    assert cfg.scenarios.multipliers == (0.8, 1.0, 1.2)
    assert cfg.solver.time_limit == 30.0
    assert cfg.solver.name == "appsi_highs"
    assert cfg.solver.mip_rel_gap == 1e-4


def test_overrides_without_a_file():
    cfg = load_config(instance="electronics", scenarios={"spec": "poisson:5", "seed": 3},
                      model={"backorder_fraction": 0.0})
    assert cfg.instance == "electronics"
    assert cfg.scenarios.spec == "poisson:5"
    assert cfg.scenarios.seed == 3
    assert cfg.model == {"backorder_fraction": 0.0}


def test_none_overrides_change_nothing(tmp_path):
    """What the CLI passes for flags that were not given leaves the file's config as it is."""
    path = write(tmp_path, FULL)
    unset = {
        "instance": None,
        "method": None,
        "db": None,
        "model": None,
        "scenarios": {"spec": None, "seed": None},
        "solver": {"time_limit": None},
    }
    assert load_config(path, **unset) == load_config(path)
    assert load_config(None, **unset) == load_config()


# ----------------------------------------------------------------------------------------------
# Errors in the file


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("[bogus]\na = 1\n", "bogus", "{'a': 1}"),
        ("frobnicate = 3\n", "frobnicate", "3"),
        ("[model]\nfoo = 1\n", "model.foo", "1"),
        ("[model]\nmax_backlog = 2.5\n", "model.max_backlog", "2.5"),
        ("[scenarios]\nfoo = 1\n", "scenarios.foo", "1"),
        ('[solver]\nfoo = "x"\n', "solver.foo", "'x'"),
        ('[output]\ndatabase = "x.db"\n', "output.database", "'x.db'"),
        ("model = 3\n", "model", "3"),
        ('method = "benders"\n', "method", "'benders'"),
    ],
)
def test_unknown_or_misplaced_keys(tmp_path, text, field, value):
    path = write(tmp_path, text)
    err = error_of(path)
    assert err.field == field
    assert_names(str(err), f"{field} = {value}", str(path))


@pytest.mark.parametrize(
    ("text", "field", "value", "problem"),
    [
        ('[scenarios]\nspec = "normal:5"\n', "scenarios", "'normal:5'", "poisson:N"),
        ('[scenarios]\nspec = "poisson:0"\n', "scenarios", "'poisson:0'", "positive integer"),
        ("[scenarios]\nseed = -1\n", "scenarios.seed", "-1", "non-negative integer"),
        ('[scenarios]\nseed = "abc"\n', "scenarios.seed", "'abc'", "non-negative integer"),
        ("[scenarios]\nmultipliers = [0.8, 1.2]\nweights = [1.0]\n", "scenarios.weights",
         "[1.0]", "one weight per multiplier (2)"),
        ('[solver]\nname = "gurobi"\n', "solver.name", "'gurobi'", "known: highs, appsi_highs"),
        ("[solver]\ntime_limit = 0\n", "solver.time_limit", "0", "positive"),
        ("[solver]\ntime_limit = -5.0\n", "solver.time_limit", "-5.0", "positive"),
        ("[solver]\nmip_rel_gap = 1.0\n", "solver.mip_rel_gap", "1.0", "[0, 1)"),
    ],
)
def test_bad_values(tmp_path, text, field, value, problem):
    path = write(tmp_path, text)
    err = error_of(path)
    assert_names(str(err), field, value, str(path), problem)


def test_bad_spec_names_the_spec_key(tmp_path):
    path = write(tmp_path, '[scenarios]\nspec = "normal:5"\n')
    err = error_of(path)
    assert err.field == "scenarios.spec"


def test_malformed_config_file(tmp_path):
    path = write(tmp_path, "[solver\nname = 'highs'\n")
    err = error_of(path)
    assert_names(str(err), "'run.toml'", str(path), "malformed TOML", "line 1")


def test_missing_config_file(tmp_path):
    missing = tmp_path / "missing.toml"
    err = error_of(missing)
    assert err.field == "--config"
    assert_names(str(err), "--config", str(missing), "file not found")


# ----------------------------------------------------------------------------------------------
# Errors in overrides (the CLI's flags): no file to name


@pytest.mark.parametrize(
    ("overrides", "field", "value"),
    [
        ({"scenarios": {"spec": "normal:5"}}, "scenarios", "'normal:5'"),
        ({"scenarios": {"spec": "poisson:0"}}, "scenarios", "'poisson:0'"),
        ({"scenarios": {"seed": -2}}, "scenarios.seed", "-2"),
        ({"solver": {"name": "cplex"}}, "solver.name", "'cplex'"),
        ({"solver": {"time_limit": -1.0}}, "solver.time_limit", "-1.0"),
        ({"model": {"frob": 1}}, "model.frob", "1"),
        ({"method": "benders"}, "method", "'benders'"),
    ],
)
def test_bad_overrides(overrides, field, value):
    err = error_of(None, **overrides)
    assert_names(str(err), field, value)
    assert err.source is None


def test_override_error_names_the_file_it_was_merged_into(tmp_path):
    path = write(tmp_path, FULL)
    err = error_of(path, scenarios={"seed": -3})
    assert_names(str(err), "scenarios.seed = -3", str(path))


def test_run_config_is_frozen():
    cfg = load_config()
    with pytest.raises(AttributeError):
        cfg.instance = "electronics"  # type: ignore[misc]
    assert cfg.replace(instance="electronics").instance == "electronics"
    assert cfg.instance == "electronics"


def test_readme_configuration_example_loads(tmp_path):
    """The run configuration the README shows is valid as printed."""
    import re

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = [b for b in re.findall(r"```toml\n(.*?)```", readme, re.DOTALL) if "[scenarios]" in b]
    assert blocks, "the README shows a run configuration"
    path = tmp_path / "run.toml"
    path.write_text(blocks[0])
    config = load_config(path)
    assert config.lshaped.clusters == 200 and config.ph.max_iterations == 200


# ----------------------------------------------------------------------------------------------
# Every section typed at load time: one error naming section.key, the value, the problem and
# the file, in Python and on the command line (exit 2, one line, no traceback)

BAD_VALUES = [
    ("[model]\nlost_sales_penalty = -5\n", "model.lost_sales_penalty", "-5", ">= 0"),
    ('[model]\ninteger = "yes"\n', "model.integer", "'yes'", "true or false"),
    ("[model]\nnope = 1\n", "model.nope", "1", "unknown option"),
    ('[solver]\ntime_limit = "abc"\n', "solver.time_limit", "'abc'", "must be a number"),
    ("[ph]\nrel_gap = -1\n", "ph.rel_gap", "-1", "(0, 1)"),
    ('[scenarios]\nspec = "poisson:0"\n', "scenarios.spec", "'poisson:0'", "positive integer"),
    ("[scenarios]\nseed = -3\n", "scenarios.seed", "-3", "non-negative integer"),
    ("[solver]\nthreads = true\n", "solver.threads", "True", "must be an integer"),
    ("[lshaped]\nclusters = 2.5\n", "lshaped.clusters", "2.5", "must be an integer"),
    ('[scenarios]\nmultipliers = [1.0, "x"]\n', "scenarios.multipliers", "[1.0, 'x']",
     "item 2 must be a number"),
    ("[output]\ndb = 3\n", "output.db", "3", "must be a string"),
    ("instance = 7\n", "instance", "7", "must be a string"),
]


@pytest.mark.parametrize(("text", "field", "value", "problem"), BAD_VALUES)
def test_bad_value_is_one_error_naming_key_value_and_file(tmp_path, text, field, value, problem):
    path = write(tmp_path, text)
    err = error_of(path)
    assert err.field == field
    assert err.source == str(path)
    assert_names(str(err), f"{field} = {value}", str(path), problem)


# (INSTANCE on the command line replaces the file's instance)
@pytest.mark.parametrize(("text", "field", "value", "problem"),
                         [case for case in BAD_VALUES if case[1] != "instance"])
def test_bad_value_on_the_command_line_exits_2_with_one_line(tmp_path, capsys, monkeypatch,
                                                               text, field, value, problem):
    from stochplan.cli import main

    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, text)
    code = main(["solve", "electronics", "--config", str(path)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("stochplan: error: "), err
    assert_names(lines[0], f"{field} = {value}", str(path), problem)
    assert not (tmp_path / "stochplan.db").exists()


def test_the_leaking_time_limit_as_a_real_process(tmp_path):
    """``time_limit = "abc"`` used to end in a Python comparison error and its traceback."""
    import subprocess
    import sys

    path = write(tmp_path, '[solver]\ntime_limit = "abc"\n')
    proc = subprocess.run([sys.executable, "-m", "stochplan", "solve", "electronics",
                           "--config", str(path)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        f"stochplan: error: solver.time_limit = 'abc' in {path}: must be a number"]


def test_toml_integers_are_read_as_floats_where_a_number_is_expected(tmp_path):
    path = write(tmp_path, "[solver]\ntime_limit = 600\n[ph]\ndefault_rho = 2\n")
    cfg = load_config(path)
    assert cfg.solver.time_limit == 600.0 and isinstance(cfg.solver.time_limit, float)
    assert cfg.ph.default_rho == 2.0 and isinstance(cfg.ph.default_rho, float)


def test_schema_describes_every_section_and_the_familys_options():
    from stochplan.config import SECTIONS, config_schema
    from stochplan.family import get_family

    schema = config_schema(get_family("aggregate"))
    assert set(schema["properties"]) == {"instance", "method", "model", *SECTIONS}
    assert schema["additionalProperties"] is False
    defs = schema["$defs"]
    assert "lost_sales_penalty" in defs["ModelOptions"]["properties"]
    assert defs["SolverOptions"]["properties"]["time_limit"]["description"].startswith("Seconds")
    assert all(d.get("additionalProperties") is False for d in defs.values())


def test_seed_must_fit_the_results_database(tmp_path: Path) -> None:
    """A seed at or above 2**63 is refused when the configuration is loaded, not after the
    solve (the store keeps seeds as signed 64-bit integers); 2**63 - 1 is accepted."""
    with pytest.raises(InputError, match=r"scenarios\.seed = 9223372036854775808.*2\*\*63"):
        load_config(scenarios={"seed": 2**63})
    assert load_config(scenarios={"seed": 2**63 - 1}).scenarios.seed == 2**63 - 1


def test_empty_db_path_is_refused_where_it_was_written(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('[output]\ndb = ""\n')
    with pytest.raises(InputError) as info:
        load_config(path)
    assert info.value.field == "output.db" and info.value.source == str(path)
    with pytest.raises(InputError) as info:
        load_config(db="")
    assert info.value.field == "--db"
