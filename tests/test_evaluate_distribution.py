"""``evaluate`` samples the distribution a run's scenarios came from (issue 16, item 1).

A three-point run of the electronics instance was planned on draws of a mixture (a level
0.8/1.0/1.2 x base demand with probabilities 0.25/0.5/0.25, then Poisson); its out-of-sample
scenarios must be draws of that mixture, not of plain Poisson around base demand. The run
stores the distribution, ``evaluate`` draws from it by default and stores what it drew from,
and every report of the evaluation says so ("evaluated under: ..."). That the named scenarios
are such draws is the instance's declaration (``named_levels`` in its instance.toml), not a
guess from their numbers. ``simulate`` draws its days from the same distribution.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from stochplan.cli import main
from stochplan.errors import InputError
from stochplan.family import get_family
from stochplan.scenarios import SEED_LEVELS, Distribution, Uncertainty, distribution_of
from stochplan.store import ResultsStore

ROOT = Path(__file__).resolve().parents[1]
ELECTRONICS = ROOT / "stochplan" / "models" / "aggregate" / "instances" / "electronics"
TINY = ROOT / "tests" / "data" / "tiny"
DECLARATION = "named_levels = [0.8, 1.0, 1.2]\n"
MIXTURE = ("mixture of Poisson around the demand rates, levels 0.8/1.0/1.2 weights "
           "0.25/0.5/0.25")


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _record(db, run_id):
    with ResultsStore(db) as store:
        return store.get_run(run_id).record


# ----------------------------------------------------------------------------------------------
# The distribution of a scenario set (no solver)


def test_three_point_electronics_is_the_mixture_it_declares():
    """The electronics instance declares its levels Poisson draws at 0.8/1.0/1.2 x base demand
    (``named_levels`` in its instance.toml): the named scenarios' distribution is that mixture,
    with the instance's probabilities as weights; the description round-trips through JSON."""
    family = get_family("aggregate")
    unc = family.uncertainty(family.resolve("electronics"))
    assert unc.named_levels == (0.8, 1.0, 1.2)
    law = distribution_of(unc, "three-point", 0)
    assert law is not None
    assert (law.generator, law.basis, law.seed) == ("poisson", "named", None)
    assert law.multipliers == SEED_LEVELS["multipliers"]
    assert law.weights == (0.25, 0.5, 0.25)
    assert np.array_equal(np.reshape(law.rates, law.data_shape), unc.rates)
    assert law.describe() == MIXTURE
    assert law.note == ("the instance declares its named scenarios (low, med, high) Poisson "
                        "draws at 0.8/1.0/1.2 x the demand rates (its named_levels)")
    back = Distribution.from_dict(json.loads(json.dumps(law.to_dict())))
    assert back == law and back.draw_args(7) == ("poisson:7", (0.8, 1.0, 1.2),
                                                 (0.25, 0.5, 0.25))
    assert law.differs_from(unc) == ""


def test_sampled_specs_describe_their_own_law():
    """poisson:N with levels is that mixture (drawn with the run's seed); qmc:N the same law,
    basis qmc; sample:N of a family with a sampler is the sampler."""
    agg = get_family("aggregate")
    unc = agg.uncertainty(agg.resolve("electronics"))
    law = distribution_of(unc, "poisson:50", 42, (0.9, 1.1), (0.5, 0.5))
    assert law is not None and (law.basis, law.seed) == ("drawn", 42)
    assert law.describe().endswith("levels 0.9/1.1 weights 0.5/0.5")
    qmc = distribution_of(unc, "qmc:64", 42, (0.9, 1.1), (0.5, 0.5))
    assert qmc is not None and qmc.basis == "qmc" and qmc.law() == law.law()
    plain = distribution_of(unc, "sample:10", 3)
    assert plain is not None and plain.describe() == "Poisson around the demand rates"
    pre = get_family("prebuild")
    sampled = distribution_of(pre.uncertainty(pre.resolve("sop-prebuild")), "poisson:10", 3)
    assert sampled is not None and (sampled.generator, sampled.sampler) == ("sampler",
                                                                            "ProfileMixture")


@pytest.mark.parametrize("family_name", ["prebuild", "lotsizing", "multisite", "assignment"])
def test_named_scenarios_that_are_not_draws_say_so(family_name):
    """A family whose named scenarios are profiles, a nominal, maximum or expected scenario:
    the run's distribution is the instance's sampling distribution, basis stand-in, and its
    note says the named scenarios are not draws of a distribution."""
    family = get_family(family_name)
    unc = family.uncertainty(family.resolve(family.default_instance))
    assert unc.named_levels is None
    law = distribution_of(unc, "named", 0)
    assert law is not None and law.basis == "stand-in"
    assert "are not draws from a distribution it declares" in law.note
    assert "sampling distribution" in law.note
    assert law.generator == ("sampler" if unc.sampler is not None else "poisson")
    assert Distribution.from_dict(json.loads(json.dumps(law.to_dict()))) == law


def _electronics_copy(tmp_path, old=None, new=None):
    """A copy of the electronics folder, its instance.toml with ``old`` replaced by ``new``."""
    folder = tmp_path / "electronics"
    shutil.copytree(ELECTRONICS, folder)
    if old is not None:
        toml = folder / "instance.toml"
        text = toml.read_text()
        assert text.count(old) == 1, old
        toml.write_text(text.replace(old, new))
    return folder


def test_undeclared_named_scenarios_get_the_stand_in_with_a_note(tmp_path):
    """The same instance without ``named_levels``: its named scenarios are not taken for draws
    of anything (however they look); the instance's sampling distribution stands in (plain
    Poisson around base demand), and the note says so."""
    family = get_family("aggregate")
    folder = _electronics_copy(tmp_path, DECLARATION, "")
    inst = family.resolve(str(folder))
    assert inst.named_levels is None
    unc = family.uncertainty(inst)
    assert unc.named_levels is None
    law = distribution_of(unc, "named", None)
    assert law is not None and (law.basis, law.multipliers) == ("stand-in", (1.0,))
    assert law.describe() == "Poisson around the demand rates"
    assert law.note == (
        "the instance's named scenarios (low, med, high) are not draws from a distribution it "
        "declares (it sets no named_levels); out-of-sample scenarios are drawn from the "
        "instance's sampling distribution (what sample:N draws) instead")
    # the tiny test instance (week-2 demand 5 or 15) declares nothing either
    tiny = distribution_of(family.uncertainty(family.resolve(str(TINY))), "named", None)
    assert tiny is not None and tiny.basis == "stand-in"


def test_a_declaration_is_taken_as_declared():
    """stochplan does not check the numbers against the declaration: levels exactly 0.7/1.0/1.3
    x base declared 0.7/1.0/1.3 give that mixture; the same numbers undeclared, the stand-in."""
    family = get_family("aggregate")
    unc = family.uncertainty(family.resolve("electronics"))
    data = np.stack([m * unc.rates for m in (0.7, 1, 1.3)])
    other = dataclasses.replace(unc, named_data=data, named_levels=(0.7, 1, 1.3))
    law = distribution_of(other, "named", 0)
    assert law is not None and law.basis == "named"
    assert (law.multipliers, law.weights) == ((0.7, 1.0, 1.3), (0.25, 0.5, 0.25))
    bare = distribution_of(dataclasses.replace(other, named_levels=None), "named", 0)
    assert bare is not None and bare.basis == "stand-in"


@pytest.mark.parametrize(("value", "problem"), [
    ("[0.8, 1.0]", "expected 3 numbers, one per named demand level of product_data.csv "
                   "(low_demand, med_demand, high_demand)"),
    ("[0.8, -1.0, 1.2]", "-1.0 is not a positive number"),
    ("[0.8, 0, 1.2]", "0 is not a positive number"),
    ('[0.8, "high", 1.2]', "'high' is not a positive number"),
    ("1.0", "expected a list of positive numbers"),
    ("[]", "expected a list of positive numbers"),
])
def test_a_bad_declaration_is_one_line_naming_the_key_and_the_file(tmp_path, value, problem):
    family = get_family("aggregate")
    folder = _electronics_copy(tmp_path, DECLARATION, f"named_levels = {value}\n")
    with pytest.raises(InputError) as err:
        family.resolve(str(folder))
    text = str(err.value)
    assert "\n" not in text
    assert err.value.field == "named_levels"
    assert text.startswith("named_levels = ")
    assert f"in {folder / 'instance.toml'}: " in text and problem in text


def test_a_misspelt_declaration_is_an_unknown_key(tmp_path):
    """``named_level`` (a typo) is not silently ignored: an unknown key, naming the file."""
    family = get_family("aggregate")
    folder = _electronics_copy(tmp_path, "named_levels = ", "named_level = ")
    with pytest.raises(InputError, match=r"^named_level = \[0\.8, 1\.0, 1\.2\] in .*"
                       r"instance\.toml: unknown key \(known: .*named_levels"):
        family.resolve(str(folder))


def test_a_declaration_needs_rates_and_named_scenarios():
    """Any family may declare named_levels on its Uncertainty, checked there: one positive
    level per named scenario, and Poisson rates to draw around."""
    axes = {"product": ("A",), "week": (1, 2)}
    rates = np.array([[10.0, 20.0]])
    named = np.stack([0.5 * rates, 1.5 * rates])
    ok = Uncertainty("demand", axes, rates=rates, named_data=named,
                     named_probabilities=np.array([0.5, 0.5]), named_levels=[0.5, 1.5])
    assert ok.named_levels == (0.5, 1.5)
    for kwargs, problem in [
        ({"rates": rates, "named_levels": (1.0,)}, "expected 2 levels"),
        ({"rates": rates, "named_levels": (1.0, -1.0)}, "positive numbers"),
        ({"rates": None, "named_levels": (1.0, 2.0)}, "no Poisson rates"),
    ]:
        with pytest.raises(InputError, match=problem) as err:
            Uncertainty("demand", axes, named_data=named,
                        named_probabilities=np.array([0.5, 0.5]), **kwargs)
        assert err.value.field == "named_levels"
    with pytest.raises(InputError, match="no named scenarios"):
        Uncertainty("demand", axes, rates=rates, named_levels=(1.0,))


# ----------------------------------------------------------------------------------------------
# A three-point run, stored and evaluated


@pytest.fixture(scope="module")
def three_point(tmp_path_factory):
    """Run 1: value of electronics, three-point, LP relaxation, lost sales at $500/unit."""
    db = str(tmp_path_factory.mktemp("evaluate") / "ev.db")
    assert main(["value", "electronics", "--relax", "--set", "lost_sales_penalty=500",
                 "--db", db, "--quiet", "--json"]) == 0
    return db


def _fresh(db, run_id, **flags):
    """The fresh scenarios ``evaluate RUN [flags]`` draws (its own code path, no solves)."""
    from stochplan.cli.analysis import _fresh_scenarios

    rec = _record(db, run_id)
    family = get_family(rec.family)
    inst = family.resolve(rec.config["instance"], dict(rec.config["model"]))
    args = argparse.Namespace(run=run_id, seed=None, scenarios=None, config=None, draws=None)
    for key, value in flags.items():
        setattr(args, key, value)
    return _fresh_scenarios(args, rec, family, inst), inst


@pytest.mark.solve
def test_the_run_stores_its_distribution(three_point):
    rec = _record(three_point, 1)
    law = Distribution.from_dict(rec.config["distribution"])
    family = get_family("aggregate")
    unc = family.uncertainty(family.resolve("electronics"))
    assert law == distribution_of(unc, "named", None)
    assert law.describe() == MIXTURE


@pytest.mark.solve
def test_out_of_sample_demand_has_the_mixtures_mean_and_variance(three_point):
    """Per product and week, the demand ``evaluate`` draws by default (4,000 draws) has the
    mixture's mean base * E[L] and variance E[L] base + Var(L) base^2 (L the level: E[L] = 1,
    Var(L) = 0.02) within 4.5 standard errors; plain Poisson around base demand (what
    ``evaluate`` drew before) fails the variance check in most cells."""
    fresh, inst = _fresh(three_point, 1, draws=4000)
    assert fresh.spec == "poisson:4000" and fresh.seed == 1  # the run's draws have no seed
    demand = fresh.scenarios.data
    base = inst.base_demand
    assert demand.shape == (4000, *base.shape)
    levels, weights = np.array(SEED_LEVELS["multipliers"]), np.array(SEED_LEVELS["weights"])
    e_l = float(weights @ levels)
    var_l = float(weights @ levels**2) - e_l**2
    mean, var = base * e_l, e_l * base + var_l * base**2
    n = demand.shape[0]
    assert np.all(np.abs(demand.mean(axis=0) - mean) <= 4.5 * np.sqrt(var / n))
    # the sample variance's standard error, from the sample's fourth central moment
    m4 = ((demand - demand.mean(axis=0)) ** 4).mean(axis=0)
    se_var = np.sqrt((m4 - var**2) / n)
    assert np.all(np.abs(demand.var(axis=0, ddof=1) - var) <= 4.5 * se_var)
    plain = np.random.default_rng(0).poisson(base, size=(n, *base.shape))
    assert np.mean(np.abs(plain.var(axis=0, ddof=1) - var) > 4.5 * se_var) > 0.9


@pytest.mark.solve
def test_evaluate_draws_from_the_runs_distribution_and_stores_it(three_point, capsys):
    out = _json(capsys, ["evaluate", "1", "--draws", "8", "--db", three_point, "--json"])
    assert out["evaluated_under"] == f"{MIXTURE}, 8 draws, seed 1"
    assert out["distribution"] == _record(three_point, 1).config["distribution"]
    assert "Poisson draws at 0.8/1.0/1.2" in out["note"]
    assert {p["plan"] for p in out["plans"]} == {"stochastic (run 1)", "mean-value (EV)"}
    summary = _record(three_point, 1).tables["oos_summary"]
    assert set(summary["evaluated_under"]) == {out["evaluated_under"]}
    assert json.loads(summary["distribution"].iloc[0]) == out["distribution"]
    assert set(summary["scenarios"]) == {"poisson:8"}
    # the printed report says it too
    assert main(["evaluate", "1", "--draws", "4", "--db", three_point, "--quiet"]) == 0
    assert f"evaluated under: {MIXTURE}, 4 draws, seed 1" in capsys.readouterr().out


@pytest.mark.solve
def test_another_distribution_is_an_explicit_choice_stored_and_shown(three_point, capsys,
                                                                      tmp_path):
    from stochplan.reports.dashboard import compare_html, dashboard_html

    out = _json(capsys, ["evaluate", "1", "--scenarios", "poisson:6", "--seed", "5",
                         "--db", three_point, "--json"])
    assert out["evaluated_under"] == "Poisson around the demand rates, 6 draws, seed 5"
    assert out["note"].startswith("This is not the distribution run 1's scenarios came from")
    assert out["distribution"]["basis"] == "chosen"
    with ResultsStore(three_point) as store:
        stored = store.get_run(1)
        html = dashboard_html(stored)
        assert main(["show", "1", "--db", three_point]) == 0
        text = capsys.readouterr().out
        # a second run with its own evaluation, for the compare page
        assert main(["solve", "electronics", "--relax", "--set", "lost_sales_penalty=500",
                     "--db", three_point, "--quiet"]) == 0
        capsys.readouterr()
    assert 'data-evaluated-under="Poisson around the demand rates, 6 draws, seed 5"' in html
    assert "Evaluated under: Poisson around the demand rates, 6 draws, seed 5." in html
    assert "evaluated under: Poisson around the demand rates, 6 draws, seed 5" in text
    # --config: the levels of its [scenarios] section
    cfg = tmp_path / "levels.toml"
    cfg.write_text('[scenarios]\nspec = "poisson:4"\nmultipliers = [0.5, 1.5]\n'
                   "weights = [0.5, 0.5]\n")
    out = _json(capsys, ["evaluate", "2", "--config", str(cfg), "--db", three_point, "--json"])
    assert out["evaluated_under"] == ("mixture of Poisson around the demand rates, levels "
                                      "0.5/1.5 weights 0.5/0.5, 4 draws, seed 1")
    with ResultsStore(three_point) as store:
        page = compare_html([store.get_run(1), store.get_run(2)])
    assert "run 1 evaluated under: Poisson around the demand rates, 6 draws, seed 5" in page
    assert "run 2 evaluated under: mixture of Poisson around the demand rates, levels " \
           "0.5/1.5" in page
    # --draws counts the run's own distribution only
    assert main(["evaluate", "1", "--scenarios", "poisson:6", "--draws", "6",
                 "--db", three_point]) == 2
    assert "--draws" in capsys.readouterr().err


@pytest.mark.solve
def test_a_run_stored_without_its_distribution_evaluates_as_before(three_point, capsys):
    """An older record (no ``config["distribution"]``): plain Poisson draws with the run's
    [scenarios] levels, as ``evaluate`` did, and a note saying so."""
    rec = _record(three_point, 1)
    config = {k: v for k, v in rec.config.items() if k != "distribution"}
    old = dataclasses.replace(rec, config=config, tables={k: v for k, v in rec.tables.items()
                                                          if not k.startswith("oos_")})
    with ResultsStore(three_point) as store:
        run_id = store.save_run(old)
    out = _json(capsys, ["evaluate", str(run_id), "--draws", "4", "--db", three_point,
                         "--json"])
    assert out["evaluated_under"] == "Poisson around the demand rates, 4 draws, seed 1"
    assert "stored without the distribution of its scenarios" in out["note"]
    assert out["plans"][0]["n"] == 4


# ----------------------------------------------------------------------------------------------
# simulate: the days are draws of the run's distribution too


def _copy_of_run(db, run_id, keep_distribution=True):
    """A copy of a stored run (without its evaluation), saved as a new run; its id."""
    rec = _record(db, run_id)
    config = dict(rec.config)
    if not keep_distribution:
        config.pop("distribution")
    copy = dataclasses.replace(rec, config=config, tables={
        k: v for k, v in rec.tables.items() if not k.startswith(("oos_", "simulation"))})
    with ResultsStore(db) as store:
        return store.save_run(copy)


@pytest.fixture
def simulated(monkeypatch):
    """The aggregate family given a day-by-day simulation for the test: it keeps the days it
    is given and each plan's recourse, solved with the options as they are and through the
    ``options`` path (same values), and returns one row per policy."""
    import pandas as pd

    from stochplan.family import KPIs

    family = get_family("aggregate")
    seen = {}

    def simulate(self, inst, plans, days, recourse):
        seen["days"] = days
        first = next(iter(plans.values()))
        seen["recourse"] = recourse(first)
        seen["recourse_options"] = recourse(first, {"lost_sales_penalty": 500.0})
        table = pd.DataFrame({"policy": list(plans), "days": float(len(days))})
        return KPIs({"sim_days": float(len(days))}, {"simulation": table})

    monkeypatch.setattr(type(family), "simulate", simulate)
    return seen


@pytest.mark.solve
def test_simulate_draws_its_days_from_the_runs_distribution(three_point, simulated, capsys):
    """A three-point run is simulated on draws of its mixture (not plain Poisson, what
    ``simulate`` drew before): the days are the draws ``evaluate`` makes for the same count and
    seed; also when the family re-solves a day with options (the mixture goes along); printed
    and stored as "simulated under"."""
    run_id = _copy_of_run(three_point, 1)
    out = _json(capsys, ["simulate", "aggregate", "--plan", str(run_id), "--days", "5",
                         "--db", three_point, "--json"])
    assert out["scenarios"] == "poisson:5" and out["seed"] == 1
    assert out["simulated_under"] == f"{MIXTURE}, 5 draws, seed 1"
    assert out["distribution"] == _record(three_point, 1).config["distribution"]
    assert "Poisson draws at 0.8/1.0/1.2" in out["note"]
    assert [row["policy"] for row in out["simulation"]] == [f"stochastic (run {run_id})",
                                                            "mean-value (EV)"]
    days = simulated["days"]
    expected, _ = _fresh(three_point, 1, draws=5)
    assert days.spec == "poisson:5" and days.seed == 1
    assert np.array_equal(days.data, expected.scenarios.data)
    # plain Poisson around base demand draws other days with the same seed
    plain = get_family("aggregate").scenario_set("electronics", "sample:5", 1)
    assert not np.array_equal(days.data, plain.data)
    key = ["scenario", "variable", "product", "week"]
    a, b = (simulated[k].sort_values(key).reset_index(drop=True)
            for k in ("recourse", "recourse_options"))
    assert a.equals(b)
    stored = _record(three_point, run_id).tables["simulation"]
    assert set(stored["simulated_under"]) == {out["simulated_under"]}
    assert json.loads(stored["distribution"].iloc[0]) == out["distribution"]
    assert set(stored["simulation_note"]) == {out["note"]}
    # the printed report says it too
    assert main(["simulate", "aggregate", "--plan", str(run_id), "--days", "3",
                 "--db", three_point, "--quiet"]) == 0
    text = capsys.readouterr().out
    assert f"  simulated under: {MIXTURE}, 3 draws, seed 1\n" in text
    assert "simulated under" not in text.split("\n", 3)[3]  # not among the measures


@pytest.mark.solve
def test_simulate_a_run_stored_without_its_distribution_says_so(three_point, simulated,
                                                                capsys):
    """An older record: the days are Poisson draws with the run's [scenarios] levels (plain
    Poisson for a three-point run), and the note says the run stored no distribution."""
    run_id = _copy_of_run(three_point, 1, keep_distribution=False)
    out = _json(capsys, ["simulate", "aggregate", "--plan", str(run_id), "--days", "4",
                         "--db", three_point, "--json"])
    assert out["simulated_under"] == "Poisson around the demand rates, 4 draws, seed 1"
    assert out["note"] == (
        f"Run {run_id} was stored without the distribution of its scenarios (by an older "
        "stochplan): simulated under Poisson around the demand rates (its [scenarios] levels), "
        "which need not be the distribution its plan was made for. Solve the run again to "
        "store it.")
    assert out["distribution"]["basis"] == "chosen"
    plain = get_family("aggregate").scenario_set("electronics", "sample:4", 1)
    assert np.array_equal(simulated["days"].data, plain.data)
