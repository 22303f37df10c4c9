"""The assignment family (seed 004): the laser data against a direct reading of its CSVs, the
public code's stored figure, a hand-checked two-order instance, the value report against an
independent extensive form (scipy ``milp``), the options, bad input through the command line,
and the simulation end to end."""

from __future__ import annotations

import contextlib
import io
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from stochplan.analysis.value import value_report
from stochplan.cli import main
from stochplan.data import load_instance
from stochplan.errors import InputError
from stochplan.family import get_family
from stochplan.models.assignment.simulate import greedy_reassignment, public_heuristic
from stochplan.solve.ef import solve_ef
from stochplan.solve.evaluate import evaluate_plan
from stochplan.solve.solvers import SolverOptions
from stochplan.store import ResultsStore

FAMILY = get_family("assignment")
MODULE = FAMILY.module
ROOT = Path(__file__).resolve().parents[2]
LASER = ROOT / "stochplan" / "models" / "assignment" / "instances" / "laser"
PUBLIC_RESULT = ROOT / "tests" / "data" / "laser_public_result_assigned_orders.csv"
EXACT = SolverOptions(mip_rel_gap=0.0)


# ----------------------------------------------------------------------------------------------
# A direct reading of the CSVs (row by row, as the public code reads them)


def direct_pairs(folder: Path = LASER) -> dict[tuple[int, int], float]:
    """(order id, producer id) -> distance for every compatible pair, computed row by row."""
    orders = pd.read_csv(folder / "orders.csv")
    producers = pd.read_csv(folder / "producers.csv")
    ops = [("requires_bending", "can_bend"), ("requires_deburring", "can_deburr"),
           ("requires_galvanizing", "can_galvanize")]
    out = {}
    for o in orders.itertuples():
        for p in producers.itertuples():
            if any(getattr(o, need) and not getattr(p, can) for need, can in ops):
                continue
            if not (p.min_dimensions_x <= o.dimensions_x <= p.max_dimensions_x
                    and p.min_dimensions_y <= o.dimensions_y <= p.max_dimensions_y):
                continue
            out[o.order_id, p.producer_id] = math.hypot(o.client_location_x - p.location_x,
                                                        o.client_location_y - p.location_y)
    return out


@pytest.fixture(scope="module")
def laser():
    return load_instance("laser")


def test_compatibility_and_distances_equal_a_direct_reading(laser):
    """226 compatible pairs, 45 assignable orders, orders 17, 21, 42, 44 and 49 kept out; the
    pairs and their Euclidean distances are those of a row-by-row reading of the CSVs."""
    pairs = direct_pairs()
    assert len(pairs) == 226
    assert len({o for o, _ in pairs}) == 45
    assert laser.excluded == (17, 21, 42, 44, 49)
    assert len(laser.orders) == 45 and len(laser.producers) == 20
    assert set(laser.pairs) == set(pairs)
    dist = laser.distance
    for (o, p), d in pairs.items():
        assert dist[laser.orders.index(o), laser.producers.index(p)] == pytest.approx(d,
                                                                                      abs=1e-12)
    # order 1 at (99, 43), producer 2 at (56, 17): sqrt(43^2 + 26^2)
    assert dist[0, 1] == pytest.approx(math.sqrt(43 ** 2 + 26 ** 2))


def test_orders_no_producer_can_make_are_named_in_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="stochplan.models.assignment.data"):
        inst = load_instance(LASER)
    assert inst.excluded == (17, 21, 42, 44, 49)
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "orders 17, 21, 42, 44, 49" in text and "orders.csv" in text


def test_capacities_are_the_volume_gaps(laser):
    """C_j = max(0, target - current): producers 12, 13 and 15 are past their targets."""
    producers = pd.read_csv(LASER / "producers.csv")
    gap = np.maximum(producers["target_volume"] - producers["current_volume"], 0)
    np.testing.assert_array_equal(laser.gap, gap)
    assert [p for p, g in zip(laser.producers, laser.gap) if g == 0] == [12, 13, 15]
    assert laser.gap.sum() == 425_594
    assert np.isinf(laser.with_options(capacity="none").capacity).all()


def test_public_stored_figure_is_recomputed_from_its_pairs(laser):
    """The public code's stored result: 42 accepted assignments whose "total net benefit"
    (value x producer rate - distance) is 182,726.83, recomputed from the pairs with the
    values, rates and distances of the CSVs; every stored pair is compatible."""
    stored = pd.read_csv(PUBLIC_RESULT)
    assert len(stored) == 42 and stored["accepted"].eq(1).all()
    orders = pd.read_csv(LASER / "orders.csv").set_index("order_id")
    producers = pd.read_csv(LASER / "producers.csv").set_index("producer_id")
    pairs = direct_pairs()
    total = 0.0
    for r in stored.itertuples():
        assert (r.order_id, r.producer_id) in pairs
        value = orders.loc[r.order_id, "order_value"]
        rate = producers.loc[r.producer_id, "acceptance_rate"]
        total += value * rate - pairs[r.order_id, r.producer_id]
        assert r.distance == pytest.approx(pairs[r.order_id, r.producer_id], abs=1e-9)
    assert round(total, 2) == 182_726.83
    # the family's KPI of the same figure on the same pairs (one scenario: all accepted)
    x = np.zeros((laser.n_orders, laser.n_producers))
    for r in stored.itertuples():
        x[laser.orders.index(r.order_id), laser.producers.index(r.producer_id)] = 1.0
    from stochplan.models.assignment.kpis import day_metrics

    per = day_metrics(laser, x, x[None], np.zeros((1, *x.shape)))
    assert per["public_benefit"][0] == pytest.approx(182_726.83, abs=0.005)


# ----------------------------------------------------------------------------------------------
# The hand-checkable instance: two orders, two producers (the ``hand`` fixture, conftest.py)


def hand_solve(folder: Path, options: dict | None = None):
    spec = f"file:{folder / 'outcomes.csv'}"
    inst = FAMILY.resolve(str(folder), options)
    names = FAMILY.scenario_set(inst, spec).names
    return inst, solve_ef(MODULE, names, FAMILY.creator_kwargs(inst, spec), EXACT)


def offers(plan: pd.DataFrame) -> set[tuple[int, int]]:
    x = plan[(plan["variable"] == "x") & (plan["value"] > 0.5)]
    return {(int(o), int(p)) for o, p in zip(x["order"], x["producer"])}


@pytest.mark.solve
def test_hand_instance_offers_each_order_to_the_producer_it_fits(hand):
    """Offer 1 to producer 1 and 2 to producer 2 (2 fits only there; 1 then fits only at
    producer 1). Order 1: accepted (1/2) ships 100 - 3; rejected, it moves to producer 2 only
    if order 2 was rejected there (else producer 2 is full): 100 - 7. Order 2: accepted (0.8)
    ships 200 - 4; rejected it is lost (producer 1 cannot take $200).
    E = 0.5 (0.8 (97 + 196) + 0.2 x 97) + 0.5 (0.8 x 196 + 0.2 x 93) = 214.6. Offering order
    2 alone gives 156.8, order 1 alone at most 95."""
    _, res = hand_solve(hand)
    assert res.objective == pytest.approx(214.6, abs=1e-6)
    assert offers(res.plan) == {(1, 1), (2, 2)}


@pytest.mark.solve
def test_hand_instance_kpis(hand):
    """Acceptance rate (0.5 + 0.8) / 2; one reassignment with probability 0.5 x 0.2; order 1
    ships with probability 0.6, order 2 with 0.8: value 220, transport 0.5 x 3 + 0.1 x 7 +
    0.8 x 4 = 5.4, net benefit 214.6; producer 2's expected open gap: 200 - 160 - 10."""
    from stochplan.config import load_config
    from stochplan.run import solve_instance

    config = load_config(None, instance=str(hand),
                         scenarios={"spec": f"file:{hand / 'outcomes.csv'}", "seed": 0},
                         solver={"mip_rel_gap": 0.0})
    out = solve_instance(config)
    h = out.kpis.headline
    assert h["expected_profit"] == pytest.approx(214.6, abs=1e-6)
    assert h["acceptance_rate"] == pytest.approx(0.65)
    assert h["reassignments"] == pytest.approx(0.1)
    assert h["shipped_orders"] == pytest.approx(1.4)
    assert h["shipped_value"] == pytest.approx(220.0)
    assert h["transport_cost"] == pytest.approx(5.4)
    assert h["net_benefit"] == pytest.approx(214.6)
    producers = out.kpis.tables["producers"].set_index("producer")
    assert producers.loc[2, "open_gap"] == pytest.approx(200 - 160 - 10)
    assert producers.loc[1, "open_gap"] == pytest.approx(100 - 50)
    text = FAMILY.report_text(out.kpis.headline, out.kpis.tables)
    assert "PRODUCERS AGAINST TARGETS" in text


@pytest.mark.solve
@pytest.mark.parametrize("options, want, plan", [
    # every order always ships: order 1 at 1: 100 - (0.5 x 3 + 0.5 x 7) = 95 (at 2: 93.8);
    # order 2 at 2: 200 - (0.8 x 4 + 0.2 x 6) = 195.6 (at 1: 195)
    ({"capacity": "none"}, 290.6, {(1, 1), (2, 2)}),
    # a reassignment costs 10: order 1 at 2: 93.8 - 0.2 x 10 = 91.8 > 95 - 0.5 x 10
    ({"capacity": "none", "reassignment_cost": 10.0}, 195.6 - 2.0 + 91.8, {(1, 2), (2, 2)}),
    # the reassignment is accepted with the new producer's rate: order 1 at 1:
    # 0.5 x 97 + 0.5 x 0.8 x 93 = 85.7; order 2 at 2: 0.8 x 196 + 0.2 x 0.5 x 194 = 176.2
    ({"capacity": "none", "reassignment": "rate"}, 85.7 + 176.2, {(1, 1), (2, 2)}),
    # $1 per $ of gap left open: 214.6 - (300 - 220)
    ({"gap_weight": 1.0}, 134.6, {(1, 1), (2, 2)}),
], ids=["no-capacity", "reassignment-cost", "reassignment-at-rate", "gap-weight"])
def test_hand_instance_options(hand, options, want, plan):
    _, res = hand_solve(hand, options)
    assert res.objective == pytest.approx(want, abs=1e-6)
    assert offers(res.plan) == plan


@pytest.mark.solve
def test_hand_instance_value_report(hand):
    """EV (mean acceptances rounded: all accept) = 97 + 196 = 293 with the RP's offers, so
    EEV = RP = 214.6 and VSS = 0. WS: with order 2 accepted, 293 or (order 1 refused by 1)
    196; with order 2 refused, order 1 always reaches producer 1 (97) unless 1 refuses and 2
    accepts it (93): 0.8 (0.5 x 293 + 0.5 x 196) + 0.2 (97 - 4 x 0.5 x 0.8) = 214.68,
    EVPI = 0.08."""
    spec = f"file:{hand / 'outcomes.csv'}"
    inst = FAMILY.resolve(str(hand))
    names = FAMILY.scenario_set(inst, spec).names
    report = value_report(MODULE, names, FAMILY.creator_kwargs(inst, spec), EXACT)
    assert report.sense == "max"
    assert report.rp == pytest.approx(214.6, abs=1e-6)
    assert report.ev == pytest.approx(293.0, abs=1e-6)
    assert report.eev == pytest.approx(214.6, abs=1e-6)
    assert report.ws == pytest.approx(214.68, abs=1e-6)
    assert report.vss == pytest.approx(0.0, abs=1e-6)
    assert report.evpi == pytest.approx(0.08, abs=1e-6)


# ----------------------------------------------------------------------------------------------
# The value report against an independent extensive form (relaxed recourse)


def write_outcomes(path: Path, n: int, seed: int) -> np.ndarray:
    """A scenario file of n days of acceptances drawn here (not by the package): pair (o, p)
    accepts when a uniform number is below the producer's rate; every (order, producer) cell
    of the 45 assignable orders is listed. Returns the draws (n, 45, 20)."""
    orders = pd.read_csv(LASER / "orders.csv")
    producers = pd.read_csv(LASER / "producers.csv")
    pairs = direct_pairs()
    kept = [o for o in orders["order_id"] if any((o, p) in pairs for p in producers.producer_id)]
    rng = np.random.default_rng(seed)
    u = rng.random((n, len(kept), len(producers)))
    xi = (u < producers["acceptance_rate"].to_numpy()[None, None, :]).astype(float)
    rows = [(f"day{s}", o, p, xi[s, i, j]) for s in range(n) for i, o in enumerate(kept)
            for j, p in enumerate(producers["producer_id"])]
    # the column names: scenario, order, producer, accepted
    pd.DataFrame(rows, columns=["scenario", "order", "producer", "accepted"]).to_csv(
        path, index=False)
    return xi


def independent_ef(xi: np.ndarray, probs: np.ndarray, fixed: np.ndarray | None = None
                   ) -> tuple[float, np.ndarray]:
    """max sum_s p_s sum_pairs (v - d)(xi_s x + z_s) over binary offers x and relaxed
    reassignments z_s, written from the CSVs with the accepted offers substituted (xi_s x)
    instead of the family's a-variables: each order offered once; offers within the gaps;
    sum_j z_sij <= sum_j (1 - xi_sij) x_ij; z_sij + x_ij <= 1; accepted offers plus
    reassignments within the gaps. ``fixed``: the offers fixed (EEV). Returns (optimum,
    offers as a 0/1 vector over the pairs in :func:`direct_pairs` order)."""
    orders = pd.read_csv(LASER / "orders.csv").set_index("order_id")
    producers = pd.read_csv(LASER / "producers.csv")
    pairs = list(direct_pairs().items())
    kept = sorted({o for (o, _), _ in pairs})
    o_pos = {o: i for i, o in enumerate(kept)}
    p_pos = {p: j for j, p in enumerate(producers["producer_id"])}
    gap = np.maximum(producers["target_volume"] - producers["current_volume"], 0).to_numpy()
    n_pairs, S = len(pairs), len(probs)
    value = np.array([orders.loc[o, "order_value"] for (o, _), _ in pairs])
    profit = value - np.array([d for _, d in pairs])
    pi = np.array([o_pos[o] for (o, _), _ in pairs])
    pj = np.array([p_pos[p] for (_, p), _ in pairs])
    w = xi[:, pi, pj]  # (S, n_pairs)
    n = n_pairs * (1 + S)

    def z(s: int) -> slice:
        return slice(n_pairs * (1 + s), n_pairs * (2 + s))

    c = np.zeros(n)
    c[:n_pairs] = -(probs[:, None] * w * profit[None, :]).sum(axis=0)
    for s in range(S):
        c[z(s)] = -probs[s] * profit
    r_idx: list[int] = []
    c_idx: list[int] = []
    coefs: list[float] = []
    hi: list[float] = []

    def add(entries: list[tuple[int, float]], upper: float) -> None:
        for col, coef in entries:
            r_idx.append(len(hi))
            c_idx.append(col)
            coefs.append(coef)
        hi.append(upper)

    by_order = [np.flatnonzero(pi == i) for i in range(len(kept))]
    by_producer = [np.flatnonzero(pj == j) for j in range(len(producers))]
    for k in by_order:
        add([(int(a), 1.0) for a in k], 1.0)
    for j, k in enumerate(by_producer):
        if len(k):
            add([(int(a), value[a]) for a in k], gap[j])
    for s in range(S):
        base = n_pairs * (1 + s)
        for k in by_order:
            add([(base + int(a), 1.0) for a in k] + [(int(a), -(1 - w[s, a])) for a in k], 0.0)
        for a in range(n_pairs):
            add([(base + a, 1.0), (a, 1.0)], 1.0)
        for j, k in enumerate(by_producer):
            if len(k):
                add([(int(a), value[a] * w[s, a]) for a in k]
                    + [(base + int(a), value[a]) for a in k], gap[j])
    lower, upper = np.zeros(n), np.ones(n)
    integrality = np.zeros(n)
    integrality[:n_pairs] = 1
    if fixed is not None:
        lower[:n_pairs] = upper[:n_pairs] = fixed
    matrix = sp.csr_array((coefs, (r_idx, c_idx)), shape=(len(hi), n))  # duplicates add up
    res = milp(c, integrality=integrality, bounds=Bounds(lower, upper),
               constraints=LinearConstraint(matrix, -np.inf, np.array(hi)),
               options={"mip_rel_gap": 0.0})
    assert res.success, res.message
    return -float(res.fun), np.round(res.x[:n_pairs])


def check_against_independent_ef(tmp_path: Path, n: int, seed: int):
    path = tmp_path / "outcomes.csv"
    xi = write_outcomes(path, n, seed)
    spec = f"file:{path}"
    inst = FAMILY.resolve("laser", {"recourse_integer": False})
    names = FAMILY.scenario_set(inst, spec).names
    report = value_report(MODULE, names, FAMILY.creator_kwargs(inst, spec), EXACT)
    probs = np.full(n, 1.0 / n)
    rp, _ = independent_ef(xi, probs)
    ev, ev_plan = independent_ef(xi.mean(axis=0)[None], np.ones(1))
    eev = sum(p * independent_ef(xi[s][None], np.ones(1), ev_plan)[0]
              for s, p in enumerate(probs))
    ws = sum(p * independent_ef(xi[s][None], np.ones(1))[0] for s, p in enumerate(probs))
    assert report.sense == "max"
    assert report.rp == pytest.approx(rp, abs=0.005)
    assert report.ev == pytest.approx(ev, abs=0.005)
    assert report.eev == pytest.approx(eev, abs=0.005)
    assert report.ws == pytest.approx(ws, abs=0.005)
    assert report.vss == pytest.approx(rp - eev, abs=0.01)
    assert report.evpi == pytest.approx(ws - rp, abs=0.01)
    assert report.eev <= report.rp + 1e-6 <= report.ws + 2e-6
    return report


@pytest.mark.solve
def test_value_report_agrees_with_an_independent_extensive_form(tmp_path):
    """RP, EV, EEV, WS, VSS and EVPI of a 10-day scenario file (relaxed reassignments, exact
    MIP solves) equal those of an extensive form written here with scipy's ``milp``, to the
    cent; EEV <= RP <= WS."""
    report = check_against_independent_ef(tmp_path, 10, 2024)
    assert report.n_scenarios == 10


@pytest.mark.slow
@pytest.mark.solve
def test_value_report_on_200_scenarios_agrees_with_an_independent_extensive_form(tmp_path):
    """The issue's 200 scenarios: both sides solve RP, EV, 200 EEV and 200 WS problems
    (measured: 417 s for the whole test on the shared 2-core machine, 600 MB)."""
    report = check_against_independent_ef(tmp_path, 200, 2024)
    assert report.n_scenarios == 200


# ----------------------------------------------------------------------------------------------
# Scenarios, options


def test_acceptances_are_bernoulli_at_the_rates(laser):
    """sample:N draws 0/1 on compatible pairs only, at frequencies near the rates; the
    perturbed draws differ from the plain ones; named is the expected scenario."""
    draws = FAMILY.scenario_set(laser, "sample:400", 7).data
    ok = laser.compatible
    assert set(np.unique(draws)) == {0.0, 1.0}
    assert not draws[:, ~ok].any()
    freq = draws.mean(axis=0)[ok]
    assert np.abs(freq - laser.rates[ok]).max() < 0.1
    assert abs(freq.mean() - laser.rates[ok].mean()) < 0.01
    perturbed = FAMILY.scenario_set(laser.with_options(acceptance="perturbed"), "sample:400", 7)
    assert not np.array_equal(perturbed.data, draws)
    assert abs(perturbed.data.mean(axis=0)[ok].mean() - laser.rates[ok].mean()) < 0.01
    named = FAMILY.scenario_set(laser, "named")
    assert named.labels == ("expected",)
    np.testing.assert_array_equal(named.data[0], laser.rates)


def test_pair_rates_replace_the_producer_rates(tmp_path):
    folder = tmp_path / "rated"
    shutil.copytree(LASER, folder)
    (folder / "pair_rates.csv").write_text("order_id,producer_id,acceptance_rate\n1,2,0.1\n")
    toml = (folder / "instance.toml").read_text().replace(
        '# pair_rates = "pair_rates.csv"', 'pair_rates = "pair_rates.csv"')
    (folder / "instance.toml").write_text(toml)
    inst = load_instance(folder)
    assert inst.rates[0, 1] == 0.1
    base = load_instance(LASER)
    np.testing.assert_array_equal(np.delete(inst.rates.ravel(), 1),
                                  np.delete(base.rates.ravel(), 1))


def test_options_are_validated(laser):
    with pytest.raises(InputError, match=r"options.perturbation = 1.5.*must be <= 1"):
        laser.with_options(perturbation=1.5)
    with pytest.raises(InputError, match="options.capacity"):
        laser.with_options(capacity="half")
    with pytest.raises(InputError, match="unknown option"):
        laser.with_options(penalty=1.0)


def test_mean_instance_rounds_or_relaxes_binary_reassignments(laser):
    mean = laser.rates
    inst, data = FAMILY.mean_instance(laser, mean, "round")
    np.testing.assert_array_equal(data, (mean >= 0.5).astype(float))
    inst, data = FAMILY.mean_instance(laser, mean, "relax")
    assert inst.options.recourse_integer is False and data is mean
    relaxed = laser.with_options(recourse_integer=False)
    inst, data = FAMILY.mean_instance(relaxed, mean, "round")
    assert inst is relaxed and data is mean


# ----------------------------------------------------------------------------------------------
# Bad input: one line each, naming the field, the value and the file; the CLI exits 2


def run_cli(*argv: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def csv_with(file: str, row: int, column: str, value: object) -> str:
    df = pd.read_csv(LASER / file)
    df[column] = df[column].astype(object)
    df.loc[row, column] = value
    return df.to_csv(index=False)


BAD_INPUT = [
    ("producers.csv", lambda: csv_with("producers.csv", 2, "acceptance_rate", 1.2),
     "acceptance_rate (row 4) = 1.2", "must be a probability in [0, 1]"),
    ("producers.csv", lambda: csv_with("producers.csv", 0, "acceptance_rate", -0.1),
     "acceptance_rate (row 2) = -0.1", "must be a probability in [0, 1]"),
    ("orders.csv", lambda: csv_with("orders.csv", 4, "dimensions_x", -5),
     "dimensions_x (row 6) = -5", "must be non-negative"),
    ("orders.csv", lambda: csv_with("orders.csv", 1, "order_value", -100.5),
     "order_value (row 3) = -100.5", "must be non-negative"),
    ("producers.csv", lambda: csv_with("producers.csv", 0, "min_dimensions_x", 50),
     "min_dimensions_x (row 2) = 50", "exceeds max_dimensions_x (26)"),
    ("producers.csv", lambda: csv_with("producers.csv", 3, "producer_id", 2),
     "producer_id (row 5) = 2", "appears more than once"),
    ("orders.csv", lambda: csv_with("orders.csv", 9, "order_id", 1),
     "order_id (row 11) = 1", "appears more than once"),
]


@pytest.mark.parametrize("file, text, field, problem", BAD_INPUT,
                         ids=["rate-above-1", "negative-rate", "negative-dimension",
                              "negative-value", "min-above-max", "duplicate-producer",
                              "duplicate-order"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, file, text, field, problem):
    folder = tmp_path / "broken"
    shutil.copytree(LASER, folder)
    (folder / file).write_text(text())
    code, out, err = run_cli("solve", folder, "--db", tmp_path / "runs.db")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert field in lines[0] and problem in lines[0] and str(folder / file) in lines[0]
    with pytest.raises(InputError) as info:
        load_instance(folder)
    assert info.value.source == str(folder / file)


def test_bad_pair_rate_names_its_file(tmp_path):
    folder = tmp_path / "rated"
    shutil.copytree(LASER, folder)
    (folder / "pair_rates.csv").write_text("order_id,producer_id,acceptance_rate\n1,2,1.5\n")
    (folder / "instance.toml").write_text((folder / "instance.toml").read_text().replace(
        '# pair_rates = "pair_rates.csv"', 'pair_rates = "pair_rates.csv"'))
    with pytest.raises(InputError, match=r"acceptance_rate \(row 2\) = 1.5") as info:
        load_instance(folder)
    assert info.value.source == str(folder / "pair_rates.csv")


# ----------------------------------------------------------------------------------------------
# The public heuristic and the simulation


def test_public_heuristic_is_seeded_and_offers_every_order_once(laser):
    """Same seed, same plan; each assignable order goes to one compatible producer; greedy
    reassignment moves a rejected order to its best other producer, once."""
    a, b = public_heuristic(laser, 5), public_heuristic(laser, 5)
    np.testing.assert_array_equal(a.x, b.x)
    assert (a.x.sum(axis=1) == 1).all()
    assert laser.compatible[a.x > 0].all()
    accepted = np.zeros((1, *a.x.shape))  # every offer refused
    z = greedy_reassignment(a.coefficient, a.x, accepted)[0]
    assert (z * a.x).sum() == 0 and (z.sum(axis=1) <= 1).all()
    can_move = (laser.compatible & (a.x == 0)).any(axis=1)
    np.testing.assert_array_equal(z.sum(axis=1), can_move.astype(float))
    best = np.where(laser.compatible & (a.x == 0), a.coefficient, -np.inf).argmax(axis=1)
    assert (z.argmax(axis=1)[can_move] == best[can_move]).all()


@pytest.mark.solve
def test_simulate_end_to_end(tmp_path):
    """solve laser (4 scenarios, relaxed reassignments), then simulate 6 days: three policies
    on the same days, stored with the run; the stochastic plan's daily profit equals the
    second-stage optimum of each day (binary reassignments) solved separately; the dashboard
    draws the panels."""
    db = tmp_path / "runs.db"
    code, out, err = run_cli("solve", "laser", "--scenarios", "sample:4", "--seed", "1",
                             "--set", "recourse_integer=false", "--db", db)
    assert code == 0, err
    assert "OFFERS PER ORDER" in out
    code, out, err = run_cli("simulate", "assignment", "--plan", "last", "--days", "6",
                             "--seed", "3", "--db", db)
    assert code == 0, err
    assert "stochastic (run 1)" in out and "public heuristic" in out
    with ResultsStore(db) as store:
        rec = store.get_run(1).record
    sim, days = rec.tables["simulation"], rec.tables["simulation_days"]
    assert list(sim["policy"]) == ["stochastic (run 1)", "mean-value (EV)", "public heuristic"]
    assert (sim["days"] == 6).all() and len(days) == 18
    assert rec.kpis["sim_seed"] == 3.0
    inst = FAMILY.resolve("laser")  # a day reassigns whole orders
    spec = "sample:6"
    solves = evaluate_plan(MODULE, rec.plan, FAMILY.scenario_set(inst, spec, 3).names,
                           FAMILY.creator_kwargs(inst, spec, 3), EXACT)
    mine = days[days["policy"] == "stochastic (run 1)"]["profit"].to_numpy(float)
    np.testing.assert_allclose(mine, solves.objective, atol=1e-6)
    heuristic = days[days["policy"] == "public heuristic"]
    assert (heuristic["offers"] == 45).all()
    volumes = rec.tables["simulation_producers"].groupby("policy", sort=False)["shipped_value"]
    np.testing.assert_allclose(volumes.sum().to_numpy(float), sim["shipped_value"], rtol=1e-12)
    assert sim.loc[2, "acceptance_rate"] == pytest.approx(
        heuristic["accepted"].sum() / heuristic["offers"].sum())
    code, _, err = run_cli("simulate", "lotsizing", "--plan", "1", "--days", "2", "--db", db)
    assert code == 2 and "is a run of the assignment family" in err
    page = tmp_path / "run.html"
    code, _, err = run_cli("dashboard", "last", "--db", db, "-o", page)
    assert code == 0, err
    html = page.read_text()
    for key in ("map", "benefit", "volumes", "simulation"):
        assert f'<section id="{key}">' in html, key
    assert "Not drawn" not in html
    assert 'data-kpi="simulation.public heuristic.net_benefit"' in html


@pytest.mark.solve
def test_runs_unchanged_under_generic_cylinders(tmp_path):
    """mpi-sppy's own driver solves the module's EF (3 sampled scenarios of seed 2, binary
    reassignments) to the optimum stochplan finds."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "mpisppy.generic_cylinders",
           "--module-name", "stochplan.models.assignment", "--num-scens", "3",
           "--scenario-kind", "sample", "--scenario-seed", "2", "--EF", "--EF-solver-name",
           "highs"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    line = next(x for x in out.stdout.splitlines() if "EF objective:" in x)
    inst = FAMILY.resolve("laser")
    names = FAMILY.scenario_set(inst, "sample:3", 2).names
    res = solve_ef(MODULE, names, FAMILY.creator_kwargs(inst, "sample:3", 2), EXACT)
    assert float(line.rsplit(":", 1)[1]) == pytest.approx(res.objective, rel=1e-6)


@pytest.mark.solve
@pytest.mark.parametrize("reassignment", ["certain", "rate"])
def test_simulation_on_the_hand_instance_day_by_day(hand, reassignment):
    """Without capacities every order is offered and, if refused, moved to the other producer.
    A plan offering 1 to producer 1 and 2 to producer 2 (the optimum of the model, see
    ``test_hand_instance_options``); the public heuristic, whose
    coefficients (r v - d) v / max v are 23.5 and 36.5 for order 1 and 94 and 156 for order
    2 (a +-5 % perturbation cannot flip them), offers both to producer 2. Each day's net
    benefit follows from that day's answers alone: order 1 ships 97 (at 1) or 93 (at 2),
    order 2 ships 196 (at 2) or 194 (at 1); a reassignment ships only when the second answer
    (``default_rng([S, k, 2])``) is yes, with ``reassignment = "rate"``."""
    inst = FAMILY.resolve(str(hand), {"capacity": "none", "reassignment": reassignment})
    days = FAMILY.scenario_set(inst, "sample:40", 9)
    kwargs = FAMILY.creator_kwargs(inst, "sample:40", 9)
    plan = pd.DataFrame({"variable": "x", "order": [1, 1, 2, 2], "producer": [1, 2, 1, 2],
                         "value": [1.0, 0.0, 0.0, 1.0]})

    def recourse(p, options=None):
        assert options == {"recourse_integer": True}  # already so here
        return evaluate_plan(MODULE, p, days.names, kwargs, EXACT, keep_recourse=True).recourse

    result = FAMILY.simulate(inst, {"model": plan}, days, recourse)
    table = result.tables["simulation_days"]
    xi = days.data  # (day, order, producer)
    second = np.stack([np.random.default_rng([9, k, 2]).random((2, 2)) < inst.rates
                       for k in days.indices]) if reassignment == "rate" else np.ones((40, 2, 2))

    def ship(i, first, other, good, bad):
        yes = xi[:, i, first] == 1
        moved = second[:, i, other]
        return np.where(yes, good, moved * bad), np.where(yes, 0.0, 1.0)

    one, r1 = ship(0, 0, 1, 97.0, 93.0)
    two, r2 = ship(1, 1, 0, 196.0, 194.0)
    model = table[table["policy"] == "model"]
    np.testing.assert_allclose(model["net_benefit"], one + two, atol=1e-6)
    np.testing.assert_allclose(model["reassignments"], r1 + r2, atol=1e-6)
    one, r1 = ship(0, 1, 0, 93.0, 97.0)
    two, r2 = ship(1, 1, 0, 196.0, 194.0)
    heuristic = table[table["policy"] == "public heuristic"]
    np.testing.assert_allclose(heuristic["net_benefit"], one + two, atol=1e-9)
    np.testing.assert_allclose(heuristic["reassignments"], r1 + r2, atol=1e-9)
    assert set(result.tables["simulation_plans"].query("policy == 'public heuristic'")
               ["producer"]) == {2}


def test_families_without_a_simulation_say_so():
    with pytest.raises(InputError, match="has no day-by-day simulation"):
        get_family("prebuild").simulate(None, {}, None, None)


def test_scenario_files_name_their_outcome_column_accepted(tmp_path):
    """Scenario files give each (scenario, order, producer) outcome in a column `accepted`
    (or the generic `value`); a bad outcome is named by that column, row and file."""
    from stochplan.errors import InputError

    inst = FAMILY.resolve("laser")
    order, producer = inst.orders[0], inst.producers[0]
    rows = [("d1", o, p, 1.0) for o in inst.orders for p in inst.producers]
    for column in ("accepted", "value"):
        path = tmp_path / f"{column}.csv"
        pd.DataFrame(rows, columns=["scenario", "order", "producer", column]).to_csv(
            path, index=False)
        scenarios = FAMILY.scenario_set(inst, f"file:{path}", None)
        assert scenarios.data.shape == (1, len(inst.orders), len(inst.producers))
        assert scenarios.data.min() == 1.0
    bad = [("d1", order, producer, 2.0), *rows[1:]]
    path = tmp_path / "bad.csv"
    pd.DataFrame(bad, columns=["scenario", "order", "producer", "accepted"]).to_csv(
        path, index=False)
    with pytest.raises(InputError) as info:
        FAMILY.scenario_set(inst, f"file:{path}", None)
    assert "accepted (row 2) = 2.0" in str(info.value) and "bad.csv" in str(info.value)

