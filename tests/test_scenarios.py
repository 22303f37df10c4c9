"""Fast unit tests of stochplan.scenarios (no solver). Every random test uses fixed seeds."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from stochplan import scenarios as sc
from stochplan.errors import InputError

RATES = np.array(
    [
        [281.0, 192.0, 253.0, 198.0, 220.0, 0.0, 150.0, 310.0, 275.0, 240.0, 205.0, 260.0],
        [120.0, 95.0, 130.0, 110.0, 105.0, 140.0, 125.0, 90.0, 100.0, 115.0, 135.0, 128.0],
        [60.0, 75.0, 55.0, 80.0, 70.0, 65.0, 85.0, 58.0, 62.0, 77.0, 68.0, 72.0],
    ]
)  # (P, T) = (3, 12); one zero rate on purpose
SEED = 20240611
LEVELS = {"multipliers": sc.SEED_LEVELS["multipliers"], "weights": sc.SEED_LEVELS["weights"]}
DRAWS = {"poisson": (sc.poisson, sc.poisson_demand), "qmc": (sc.qmc, sc.qmc_demand)}


# ----------------------------------------------------------------------------------------------
# Specs and names


@pytest.mark.parametrize("text", ["named", "poisson:100", "qmc:64", "poisson:1", "sample:7",
                                  "file:history/demand.csv"])
def test_parse_spec_round_trips(text: str) -> None:
    """str(parse_spec(text)) == text for every canonical spec, and parsing is idempotent."""
    spec = sc.parse_spec(text)
    assert str(spec) == text
    assert sc.parse_spec(str(spec)) == spec
    assert sc.parse_spec(spec) is spec


def test_parse_spec_fields() -> None:
    assert sc.parse_spec("three-point") == sc.ScenarioSpec("three-point", None)
    assert sc.parse_spec("poisson:100") == sc.ScenarioSpec("poisson", 100)
    assert sc.parse_spec(" qmc:64 ") == sc.ScenarioSpec("qmc", 64)


@pytest.mark.parametrize(
    "text",
    ["poisson", "poisson:0", "poisson:x", "normal:5", "qmc:-4", "qmc:2.5", "", "three-point:3"],
)
def test_parse_spec_rejects_bad_text(text: str) -> None:
    with pytest.raises(InputError) as err:
        sc.parse_spec(text)
    assert err.value.field == "scenarios"
    assert repr(text) in str(err.value)
    assert "poisson:N" in str(err.value)


def test_scenario_spec_rejects_bad_fields() -> None:
    with pytest.raises(InputError):
        sc.ScenarioSpec("poisson", 0)
    with pytest.raises(InputError):
        sc.ScenarioSpec("poisson", None)
    with pytest.raises(InputError):
        sc.ScenarioSpec("normal", 5)
    with pytest.raises(InputError):
        sc.ScenarioSpec("three-point", 3)


def test_scenario_index() -> None:
    assert sc.scenario_index("scen17") == 17
    assert sc.scenario_index("scen0") == 0
    assert sc.scenario_index(sc.scenario_name(12345)) == 12345


@pytest.mark.parametrize(
    "name", ["scen", "scen-1", "Scen3", "scen 3", "s3", "scen03", "scen3x", ""]
)
def test_scenario_index_rejects_bad_names(name: str) -> None:
    with pytest.raises(InputError) as err:
        sc.scenario_index(name)
    assert err.value.field == "scenario name"
    assert repr(name) in str(err.value)


# ----------------------------------------------------------------------------------------------
# Reproducibility


@pytest.mark.parametrize("kind", ["poisson", "qmc"])
def test_same_seed_same_set(kind: str) -> None:
    """Same seed => identical ScenarioSet (names, probabilities, demand, spec, seed)."""
    draw, _ = DRAWS[kind]
    a = draw(RATES, 20, SEED, **LEVELS)
    b = draw(RATES, 20, SEED, **LEVELS)
    assert a == b
    assert np.array_equal(a.demand, b.demand)


@pytest.mark.parametrize("kind", ["poisson", "qmc"])
def test_different_seed_different_demand(kind: str) -> None:
    """Different seeds => different demand."""
    draw, _ = DRAWS[kind]
    a = draw(RATES, 20, SEED)
    b = draw(RATES, 20, SEED + 1)
    assert a != b
    assert not np.array_equal(a.demand, b.demand)


def test_poisson_scenario_k_independent_of_n() -> None:
    """Scenario k is the same whatever n: row 3 of a 10-set equals row 3 of a 1000-set."""
    small = sc.poisson(RATES, 10, SEED)
    large = sc.poisson(RATES, 1000, SEED)
    assert np.array_equal(small.demand[3], large.demand[3])
    assert np.array_equal(small.demand, large.demand[:10])


def test_qmc_scenario_k_independent_of_n() -> None:
    """Scenario k is the same whatever n: row 3 of a 10-set equals row 3 of a 1024-set."""
    small = sc.qmc(RATES, 10, SEED, **LEVELS)
    large = sc.qmc(RATES, 1024, SEED, **LEVELS)
    assert np.array_equal(small.demand[3], large.demand[3])
    assert np.array_equal(small.demand, large.demand[:10])


@pytest.mark.parametrize("kind", ["poisson", "qmc"])
@pytest.mark.parametrize("levels", [{}, LEVELS], ids=["one-level", "seed-levels"])
def test_start_offset_matches_full_set(kind: str, levels: dict) -> None:
    """Scenarios start..start+n-1 drawn as a batch equal rows start.. of the full set."""
    draw, _ = DRAWS[kind]
    full = draw(RATES, 16, SEED, **levels)
    part = draw(RATES, 3, SEED, start=5, **levels)
    assert np.array_equal(part.demand, full.demand[5:8])
    assert part.names == ("scen5", "scen6", "scen7")
    assert part.names == full.names[5:8]


@pytest.mark.parametrize("kind", ["poisson", "qmc"])
@pytest.mark.parametrize("levels", [{}, LEVELS], ids=["one-level", "seed-levels"])
def test_single_scenario_equals_batch_row(kind: str, levels: dict) -> None:
    """poisson_demand(k) / qmc_demand(k) drawn alone equals row k of the batch (as on MPI)."""
    draw, draw_one = DRAWS[kind]
    batch = draw(RATES, 12, SEED, **levels)
    for k in range(12):
        alone = draw_one(RATES, SEED, k, **levels)
        assert alone.shape == RATES.shape
        assert alone.dtype == np.float64
        assert np.array_equal(alone, batch.demand[k]), k


def test_poisson_demand_follows_documented_recipe() -> None:
    """Scenario k draws from default_rng([seed, k]): level first (with levels), then Poisson."""
    k = 7
    rng = np.random.default_rng([SEED, k])
    assert np.array_equal(sc.poisson_demand(RATES, SEED, k), rng.poisson(RATES))
    rng = np.random.default_rng([SEED, k])
    level = rng.choice(3, p=LEVELS["weights"])
    expected = rng.poisson(RATES * LEVELS["multipliers"][level])
    assert np.array_equal(sc.poisson_demand(RATES, SEED, k, **LEVELS), expected)


# ----------------------------------------------------------------------------------------------
# Values


@pytest.mark.parametrize("kind", ["poisson", "qmc"])
def test_sampled_set_shape_probabilities_and_integrality(kind: str) -> None:
    """Probabilities are 1/n and sum to 1; demand is non-negative whole numbers, 0 at rate 0."""
    draw, _ = DRAWS[kind]
    s = draw(RATES, 50, SEED, **LEVELS)
    assert len(s) == 50
    assert s.demand.shape == (50, *RATES.shape)
    assert s.names == tuple(f"scen{k}" for k in range(50))
    assert s.labels == s.names
    assert s.spec == f"{kind}:50"
    assert s.seed == SEED
    np.testing.assert_allclose(s.probabilities, np.full(50, 1 / 50), rtol=0, atol=1e-15)
    assert abs(s.probabilities.sum() - 1.0) < 1e-12
    assert np.all(s.demand >= 0)
    assert np.array_equal(s.demand, np.round(s.demand))
    assert np.all(s.demand[:, 0, 5] == 0)  # the zero rate
    assert not s.demand.flags.writeable
    assert not s.probabilities.flags.writeable


def test_three_point_reproduces_inputs() -> None:
    """three_point returns the instance's own levels, probabilities and labels unchanged."""
    level_demand = np.stack([0.8 * RATES, RATES, 1.2 * RATES]).round()
    probs = [0.25, 0.5, 0.25]
    s = sc.three_point(level_demand, probs, ("low", "med", "high"))
    assert len(s) == 3
    assert s.names == ("scen0", "scen1", "scen2")
    assert s.labels == ("low", "med", "high")
    assert s.spec == "named"
    assert s.seed is None
    assert np.array_equal(s.demand, level_demand)
    assert np.array_equal(s.probabilities, probs)
    np.testing.assert_allclose(
        s.expected_demand, 0.25 * level_demand[0] + 0.5 * level_demand[1] + 0.25 * level_demand[2],
        rtol=1e-12,
    )
    # the caller's array is copied, not frozen
    assert level_demand.flags.writeable


def test_expected_demand_is_probability_weighted_mean() -> None:
    s = sc.ScenarioSet(
        names=("scen0", "scen1"),
        probabilities=np.array([0.25, 0.75]),
        data=np.array([[4.0, 8.0], [0.0, 4.0]]),
        spec="three-point",
        seed=None,
        labels=("a", "b"),
    )
    assert np.array_equal(s.expected_demand, [1.0, 5.0])


def test_subset_renormalises() -> None:
    """A subset keeps its scenarios' names and demand and renormalises probabilities to 1."""
    s = sc.three_point(np.arange(12.0).reshape(3, 2, 2), [0.25, 0.5, 0.25], ("low", "med", "high"))
    sub = s.subset([2, 0])
    assert sub.names == ("scen2", "scen0")
    assert sub.labels == ("high", "low")
    np.testing.assert_allclose(sub.probabilities, [0.5, 0.5], rtol=0, atol=1e-15)
    assert np.array_equal(sub.demand, s.demand[[2, 0]])
    big = sc.poisson(RATES, 10, SEED)
    part = big.subset(range(4, 7))
    assert [sc.scenario_index(n) for n in part.names] == [4, 5, 6]
    np.testing.assert_allclose(part.probabilities, np.full(3, 1 / 3), rtol=1e-15)
    for bad in ([], [3], [0, 0], [-1]):
        with pytest.raises(InputError):
            s.subset(bad)


def test_scenario_set_rejects_probabilities_not_summing_to_one() -> None:
    with pytest.raises(InputError) as err:
        sc.ScenarioSet(
            names=("scen0", "scen1"),
            probabilities=np.array([0.5, 0.6]),
            data=np.zeros((2, 3)),
            spec="three-point",
            seed=None,
            labels=("a", "b"),
        )
    assert err.value.field == "probabilities"
    assert "sum to 1" in str(err.value)


@pytest.mark.parametrize(
    "changes",
    [
        {"probabilities": np.array([1.0])},
        {"probabilities": np.array([1.5, -0.5])},
        {"data": np.zeros((3, 2))},
        {"data": -np.ones((2, 2))},
        {"data": np.array([[np.nan, 1.0], [1.0, 1.0]])},
        {"labels": ("a",)},
        {"names": ("scen0", "scen0")},
        {"names": ("a", "b")},
    ],
)
def test_scenario_set_rejects_bad_fields(changes: dict) -> None:
    fields = {
        "names": ("scen0", "scen1"),
        "probabilities": np.array([0.5, 0.5]),
        "data": np.ones((2, 2)),
        "spec": "named",
        "seed": None,
        "labels": ("a", "b"),
    }
    with pytest.raises(InputError):
        sc.ScenarioSet(**(fields | changes))


# ----------------------------------------------------------------------------------------------
# Statistics


def test_poisson_mean_and_variance() -> None:
    """With rates 200 everywhere and n=4000: mean within 1% of 200, variance within 5% of 200."""
    rates = np.full((3, 12), 200.0)
    d = sc.poisson(rates, 4000, SEED).demand
    assert abs(d.mean() - 200.0) <= 0.01 * 200.0
    per_cell_var = d.var(axis=0, ddof=1)
    assert abs(per_cell_var.mean() - 200.0) <= 0.05 * 200.0


def test_seed_levels_mixture_mean() -> None:
    """With SEED_LEVELS the mean is within 1% of 200*(0.25*0.8 + 0.5*1 + 0.25*1.2) = 200."""
    rates = np.full((3, 12), 200.0)
    m, w = LEVELS["multipliers"], LEVELS["weights"]
    expected = 200.0 * sum(mi * wi for mi, wi in zip(m, w))
    assert expected == pytest.approx(200.0, abs=1e-12)
    d = sc.poisson(rates, 4000, SEED, **LEVELS).demand
    assert abs(d.mean() - expected) <= 0.01 * expected
    # the level is shared by all cells of a scenario: cells are positively correlated
    scen_means = d.reshape(4000, -1).mean(axis=1)
    assert scen_means.var() > 10 * 200.0 / 36


def test_qmc_mean_error_smaller_than_poisson() -> None:
    """At n=1024, QMC's per-cell mean error is smaller than plain MC's, for each of 5 seeds.

    Measure: average over the 3x12 cells of |sample mean - true mean|. Sobol points balance
    every coordinate, so the QMC error is tens of times smaller; we only ask for 5 times.
    """
    for seed in range(5):
        for levels in ({}, LEVELS):
            q = sc.qmc(RATES, 1024, seed, **levels).demand.mean(axis=0)
            p = sc.poisson(RATES, 1024, seed, **levels).demand.mean(axis=0)
            err_q = np.abs(q - RATES).mean()
            err_p = np.abs(p - RATES).mean()
            assert err_q < err_p / 5, (seed, levels, err_q, err_p)


def test_qmc_non_power_of_two_does_not_warn(recwarn: pytest.WarningsRecorder) -> None:
    """scipy's balance-properties warning for n not a power of 2 is silenced."""
    sc.qmc(RATES, 10, SEED)
    sc.qmc_demand(RATES, SEED, 0)
    assert not [w for w in recwarn if "balance" in str(w.message)]


# ----------------------------------------------------------------------------------------------
# Dispatch


def test_generate_dispatches() -> None:
    level_demand = np.stack([0.8 * RATES, RATES, 1.2 * RATES])
    tp = sc.generate("three-point", rates=RATES, seed=None, level_demand=level_demand,
                     level_probabilities=[0.25, 0.5, 0.25], level_labels=("low", "med", "high"))
    assert tp == sc.three_point(level_demand, [0.25, 0.5, 0.25], ("low", "med", "high"))
    assert sc.generate("poisson:7", rates=RATES, seed=SEED, **LEVELS) == sc.poisson(
        RATES, 7, SEED, **LEVELS
    )
    assert sc.generate(sc.ScenarioSpec("qmc", 8), rates=RATES, seed=SEED) == sc.qmc(RATES, 8, SEED)


def test_generate_errors() -> None:
    with pytest.raises(InputError) as err:
        sc.generate("three-point", rates=RATES, seed=SEED)
    assert err.value.field == "scenarios"
    assert "no named scenarios" in str(err.value)
    for spec in ("poisson:5", "qmc:4"):
        with pytest.raises(InputError) as err:
            sc.generate(spec, rates=RATES, seed=None)
        assert err.value.field == "seed"
    with pytest.raises(InputError):
        sc.generate("normal:5", rates=RATES, seed=SEED)


def test_scenario_demand_matches_generate() -> None:
    """scenario_demand(spec, k) equals row k of generate(spec) for every kind."""
    level_demand = np.stack([0.8 * RATES, RATES, 1.2 * RATES])
    common = {"rates": RATES, "seed": SEED, "level_demand": level_demand, **LEVELS}
    for spec in ("three-point", "poisson:6", "qmc:6"):
        full = sc.generate(spec, level_probabilities=[0.25, 0.5, 0.25], **common)
        for k in range(len(full)):
            assert np.array_equal(sc.scenario_demand(spec, k, **common), full.demand[k]), (spec, k)
    with pytest.raises(InputError) as err:
        sc.scenario_demand("three-point", 3, **common)
    assert err.value.field == "k"
    with pytest.raises(InputError):
        sc.scenario_demand("poisson:6", -1, **common)
    with pytest.raises(InputError):
        sc.scenario_demand("three-point", 0, rates=RATES, seed=SEED)


# ----------------------------------------------------------------------------------------------
# Input validation


@pytest.mark.parametrize("kind", ["poisson", "qmc"])
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rates": -RATES}, "rates"),
        ({"rates": np.array([1.0, np.inf])}, "rates"),
        ({"rates": np.zeros((0, 3))}, "rates"),
        ({"n": 0}, "n"),
        ({"n": 2.5}, "n"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"start": -2}, "start"),
        ({"multipliers": (1.0, -0.2)}, "multipliers"),
        ({"multipliers": ()}, "multipliers"),
        ({"multipliers": (0.8, 1.2), "weights": (0.5, 0.6)}, "weights"),
        ({"multipliers": (0.8, 1.2), "weights": (1.0,)}, "weights"),
        ({"multipliers": (0.8, 1.2), "weights": (1.5, -0.5)}, "weights"),
    ],
)
def test_bad_inputs_name_the_argument(kind: str, kwargs: dict, field: str) -> None:
    draw, _ = DRAWS[kind]
    args = {"rates": RATES, "n": 4, "seed": SEED} | kwargs
    with pytest.raises(InputError) as err:
        draw(**args)
    assert err.value.field == field


@pytest.mark.parametrize("kind", ["poisson", "qmc"])
def test_single_scenario_rejects_negative_k(kind: str) -> None:
    _, draw_one = DRAWS[kind]
    with pytest.raises(InputError) as err:
        draw_one(RATES, SEED, -1)
    assert err.value.field == "k"


def test_seed_levels_constant() -> None:
    assert sc.SEED_LEVELS["multipliers"] == (0.8, 1.0, 1.2)
    assert sc.SEED_LEVELS["weights"] == (0.25, 0.5, 0.25)
    assert sc.SEED_LEVELS["labels"] == ("low", "med", "high")
    with pytest.raises(TypeError):
        sc.SEED_LEVELS["weights"] = (1.0,)  # type: ignore[index]


# ----------------------------------------------------------------------------------------------
# Layering


def test_import_does_not_load_pyomo() -> None:
    """Importing stochplan.scenarios does not import Pyomo (the pipeline's arrows point one way)."""
    out = subprocess.run(
        [sys.executable, "-c", "import stochplan.scenarios, sys; print('pyomo' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "False"


def test_three_point_is_an_alias_of_named() -> None:
    """The old name of the instance's own scenarios still parses, to the new name."""
    assert sc.parse_spec("three-point") == sc.ScenarioSpec("named")
    assert str(sc.parse_spec(" three-point ")) == "named"
    assert sc.ScenarioSpec("three-point").kind == "named"


# ----------------------------------------------------------------------------------------------
# A researcher's scenario file (file:PATH)

FILE_UNC = sc.Uncertainty(name="demand", axes={"product": ("A", "B"), "week": (1, 2)})
GOOD_ROWS = [
    "scenario,product,week,value,probability",
    "dry,A,1,4,0.25", "dry,A,2,5,0.25", "dry,B,1,6,0.25", "dry,B,2,7,0.25",
    "wet,A,1,8,0.75", "wet,A,2,9,0.75", "wet,B,1,10,0.75", "wet,B,2,11,0.75",
]


def _write(tmp_path, lines: list[str], name: str = "scen.csv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_scenario_file_is_read_in_order_with_its_probabilities(tmp_path) -> None:
    """The tidy table becomes (S, product, week) data in the file's scenario order, the axes in
    the instance's label order whatever the row order; probabilities as given."""
    rows = [GOOD_ROWS[0], *reversed(GOOD_ROWS[1:5]), *GOOD_ROWS[5:]]  # dry's rows reversed
    s = sc.draw_set(FILE_UNC, f"file:{_write(tmp_path, rows)}", seed=None)
    assert s.labels == ("dry", "wet") and s.names == ("scen0", "scen1")
    np.testing.assert_array_equal(s.data, [[[4, 5], [6, 7]], [[8, 9], [10, 11]]])
    np.testing.assert_array_equal(s.probabilities, [0.25, 0.75])
    np.testing.assert_array_equal(sc.draw_one(FILE_UNC, f"file:{tmp_path / 'scen.csv'}", None, 1),
                                  [[8, 9], [10, 11]])


def test_scenario_file_without_probabilities_is_equally_likely(tmp_path) -> None:
    rows = [line.rsplit(",", 1)[0] for line in GOOD_ROWS]
    s = sc.draw_set(FILE_UNC, f"file:{_write(tmp_path, rows)}", seed=None)
    np.testing.assert_array_equal(s.probabilities, [0.5, 0.5])


def _edit(row: int, column: int, value: str) -> list[str]:
    lines = [line.split(",") for line in GOOD_ROWS]
    lines[row][column] = value
    return [",".join(line) for line in lines]


@pytest.mark.parametrize(
    ("lines", "field", "value"),
    [
        (["scenario,product,value", "dry,A,1"], "column", "week"),  # a missing axis column
        ([GOOD_ROWS[0] + ",colour", *(r + ",red" for r in GOOD_ROWS[1:])], "column", "colour"),
        (_edit(2, 1, "Z"), "product (row 3)", "Z"),  # a label the instance does not have
        (_edit(2, 2, "9"), "week (row 3)", 9),
        (_edit(3, 3, "abc"), "value (row 4)", "abc"),
        (_edit(3, 3, "-1"), "value (row 4)", -1.0),
        (_edit(3, 3, "inf"), "value (row 4)", "inf"),
        (_edit(2, 2, "1"), "scenario", "dry"),  # (A, 1) twice and (A, 2) never
        (GOOD_ROWS[:-1], "scenario", "wet"),  # a cell missing
        (_edit(5, 4, "0.5"), "probability (row 6)", 0.5),  # differs within a scenario
        ([GOOD_ROWS[0], *(r.replace("0.75", "0.5") for r in GOOD_ROWS[1:])], "probability",
         0.75),  # sums to 0.75
        (_edit(1, 4, "-0.25"), "probability (row 2)", -0.25),
        ([GOOD_ROWS[0]], "file", "scen.csv"),  # no rows
    ],
)
def test_bad_scenario_file_is_one_error_naming_field_value_and_file(
    tmp_path, lines: list[str], field: str, value: object
) -> None:
    path = _write(tmp_path, lines)
    with pytest.raises(InputError) as err:
        sc.draw_set(FILE_UNC, f"file:{path}", seed=None)
    assert err.value.field == field
    assert err.value.value == value or str(err.value.value) == str(value)
    assert err.value.source == str(path)
    assert "\n" not in str(err.value)


def test_scenario_file_checks_the_family_upper_bound_and_existence(tmp_path) -> None:
    """0/1 data (an upper bound of 1) refuses a 2; a missing file is named."""
    acceptance = sc.Uncertainty(name="acceptance", axes={"order": ("o1",)}, upper=1.0)
    path = _write(tmp_path, ["scenario,order,value", "s,o1,2"])
    with pytest.raises(InputError, match="must be <= 1") as err:
        sc.draw_set(acceptance, f"file:{path}", seed=None)
    assert err.value.field == "value (row 2)"
    with pytest.raises(InputError, match="file not found"):
        sc.draw_set(acceptance, f"file:{tmp_path / 'nope.csv'}", seed=None)


def test_a_parquet_scenario_file_reads_as_its_csv(tmp_path) -> None:
    """The same table as Parquet gives the same scenario set as the CSV."""
    import pandas as pd

    csv = _write(tmp_path, GOOD_ROWS)
    parquet = tmp_path / "scen.parquet"
    pd.read_csv(csv).to_parquet(parquet)
    a = sc.draw_set(FILE_UNC, f"file:{csv}", seed=None)
    b = sc.draw_set(FILE_UNC, f"file:{parquet}", seed=None)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.probabilities, b.probabilities)
    assert a.labels == b.labels and b.spec == f"file:{parquet}"
