"""Demand scenarios: the instance's own three-point levels, Poisson Monte Carlo and Sobol QMC.

Step two of the pipeline (data -> **scenarios** -> models -> solve -> metrics -> reports). This
module draws numbers and knows nothing about models: it imports neither Pyomo nor any other part
of stochplan except :mod:`stochplan.errors`.

A scenario set is named by a spec string (:func:`parse_spec`):

``"three-point"``
    The instance's own discrete scenarios (the seed's low/med/high levels and probabilities),
    reproduced as they are; no randomness.
``"poisson:N"``
    N equally likely Poisson scenarios. Scenario ``k`` of base seed ``s`` draws from
    ``np.random.default_rng([s, k])`` and from nothing else, so scenario 17 is the same whether it
    is drawn alone (on MPI rank 3, by :func:`scenario_demand`) or in a batch of 10,000, and
    whatever N is.
``"qmc:N"``
    N equally likely quasi-Monte Carlo scenarios: point ``k`` of one scrambled Sobol sequence of
    base seed ``s``, mapped through the Poisson quantile function. Scenario ``k`` is again the
    same whatever N is. N a power of 2 keeps the balance properties of the Sobol points (and
    gives the smallest error); other N work but lose some of that balance.

Demand levels (a mixture of Poisson laws)
-----------------------------------------
``multipliers`` and ``weights`` turn the Poisson law into a mixture: each scenario first draws a
level ``l`` with probability ``weights[l]`` (uniform by default), then every cell's demand is
Poisson with mean ``rates * multipliers[l]``. The level is shared by all cells of a scenario,
which correlates them. :data:`SEED_LEVELS` is the seed's construction (low/med/high demand are
Poisson draws at 0.8/1.0/1.2 of base demand with probabilities 0.25/0.5/0.25); passing
``multipliers=SEED_LEVELS["multipliers"], weights=SEED_LEVELS["weights"]`` to :func:`poisson`
(or :func:`qmc`) samples from that mixture, whose mean is the base demand.

Units: demand in units per (product, week) cell, like the ``rates`` it is drawn around.

Examples
--------
>>> import numpy as np
>>> rates = np.array([[100.0, 120.0], [80.0, 90.0]])
>>> s = poisson(rates, n=8, seed=42)
>>> len(s), s.demand.shape, str(s.spec)
(8, (8, 2, 2), 'poisson:8')
>>> bool(np.array_equal(s.demand[3], poisson_demand(rates, seed=42, k=3)))
True
>>> scenario_index(s.names[3])
3
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
from scipy import stats
from scipy.stats import qmc as _qmc

from stochplan.errors import InputError

__all__ = [
    "SEED_LEVELS",
    "ScenarioSet",
    "ScenarioSpec",
    "generate",
    "parse_spec",
    "poisson",
    "poisson_demand",
    "qmc",
    "qmc_demand",
    "scenario_demand",
    "scenario_index",
    "three_point",
]

#: The seed's demand levels: low/med/high demand are Poisson draws at 0.8/1.0/1.2 of base demand,
#: with probabilities 0.25/0.5/0.25 (mixture mean = base demand). Read-only.
SEED_LEVELS: Mapping[str, tuple[Any, ...]] = MappingProxyType(
    {
        "multipliers": (0.8, 1.0, 1.2),
        "weights": (0.25, 0.5, 0.25),
        "labels": ("low", "med", "high"),
    }
)

_KINDS = ("three-point", "poisson", "qmc")
_SPEC_HELP = "expected three-point, poisson:N or qmc:N with N a positive integer"
_NAME_RE = re.compile(r"scen(0|[1-9][0-9]*)")
_SPEC_RE = re.compile(r"(poisson|qmc):([0-9]+)")
_U_EPS = 1e-12  # QMC coordinates are clipped to [_U_EPS, 1 - _U_EPS] before the quantile map
_PROB_TOL = 1e-9  # probabilities and weights must sum to 1 within this


# ----------------------------------------------------------------------------------------------
# Specs and names


@dataclass(frozen=True)
class ScenarioSpec:
    """Which scenarios to use, as parsed from ``"three-point"``, ``"poisson:N"`` or ``"qmc:N"``.

    Attributes
    ----------
    kind : str
        ``"three-point"``, ``"poisson"`` or ``"qmc"``.
    n : int or None
        Number of scenarios for ``poisson`` and ``qmc`` (a positive integer); None for
        ``three-point``, whose count is the instance's number of levels.
    """

    kind: str
    n: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise InputError("scenarios", self.kind, _SPEC_HELP)
        if self.kind == "three-point":
            if self.n is not None:
                raise InputError("scenarios", f"three-point:{self.n}",
                                 "three-point takes no scenario count")
        elif isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n < 1:
            raise InputError("scenarios", f"{self.kind}:{self.n}", _SPEC_HELP)
        else:
            object.__setattr__(self, "n", int(self.n))

    def __str__(self) -> str:
        return self.kind if self.n is None else f"{self.kind}:{self.n}"


def parse_spec(text: str | ScenarioSpec) -> ScenarioSpec:
    """Parse a scenario spec string.

    Parameters
    ----------
    text : str or ScenarioSpec
        ``"three-point"``, ``"poisson:N"`` or ``"qmc:N"`` with N a positive integer (surrounding
        spaces are ignored). A :class:`ScenarioSpec` is returned unchanged.

    Returns
    -------
    ScenarioSpec
        Its ``str()`` gives the canonical text back.

    Raises
    ------
    InputError
        On anything else, naming the field ``scenarios`` and the text.

    Examples
    --------
    >>> parse_spec("poisson:100")
    ScenarioSpec(kind='poisson', n=100)
    >>> str(parse_spec("qmc:64"))
    'qmc:64'
    """
    if isinstance(text, ScenarioSpec):
        return text
    if not isinstance(text, str):
        raise InputError("scenarios", text, _SPEC_HELP)
    stripped = text.strip()
    if stripped == "three-point":
        return ScenarioSpec("three-point", None)
    match = _SPEC_RE.fullmatch(stripped)
    if match is None or int(match.group(2)) < 1:
        raise InputError("scenarios", text, _SPEC_HELP)
    return ScenarioSpec(match.group(1), int(match.group(2)))


def scenario_name(k: int) -> str:
    """The name of scenario ``k``: ``"scen{k}"`` (the inverse of :func:`scenario_index`)."""
    return f"scen{_check_index('k', k)}"


def scenario_index(name: str) -> int:
    """The scenario index in a scenario name: ``"scen17"`` -> 17.

    Raises
    ------
    InputError
        If ``name`` is not ``"scen"`` followed by a non-negative integer without leading zeros.
    """
    match = _NAME_RE.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise InputError("scenario name", name, "expected scen<k> with k = 0, 1, 2, ...")
    return int(match.group(1))


# ----------------------------------------------------------------------------------------------
# The scenario set


@dataclass(frozen=True, eq=False)
class ScenarioSet:
    """S demand scenarios with their probabilities; validated and read-only.

    Attributes
    ----------
    names : tuple of str
        ``"scen{k}"``, where k is the scenario's index in its generator (so a subset keeps the
        names of the scenarios it holds, and :func:`scenario_demand` redraws scenario k alone).
    probabilities : numpy.ndarray
        Shape (S,), non-negative, sums to 1.
    demand : numpy.ndarray
        Shape (S, *rate_shape), float, units per cell; non-negative (whole numbers for Poisson
        and QMC scenarios).
    spec : str
        The spec the set was drawn from, e.g. ``"poisson:100"``.
    seed : int or None
        Base seed (None for three-point sets).
    labels : tuple of str
        Human labels (``("low", "med", "high")`` for the seed's levels); same as ``names`` for
        sampled sets.

    Two sets compare equal when every field is equal (arrays element-wise); sets are not
    hashable.
    """

    names: tuple[str, ...]
    probabilities: np.ndarray
    demand: np.ndarray
    spec: str
    seed: int | None
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        names = tuple(self.names)
        for name in names:
            scenario_index(name)
        if not names:
            raise InputError("names", names, "a scenario set needs at least one scenario")
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise InputError("names", dup, "appears more than once")
        S = len(names)
        labels = tuple(str(x) for x in self.labels)
        if len(labels) != S:
            raise InputError("labels", labels, f"expected {S} labels, one per scenario")

        probs = _float_array("probabilities", self.probabilities)
        if probs.shape != (S,):
            raise InputError("probabilities", f"shape {probs.shape}", f"expected shape ({S},)")
        if np.any(probs < 0):
            raise InputError("probabilities", float(probs[probs < 0][0]), "must be non-negative")
        if not math.isclose(float(probs.sum()), 1.0, abs_tol=_PROB_TOL):
            raise InputError("probabilities", [float(p) for p in probs[:5]],
                             f"must sum to 1 (they sum to {float(probs.sum()):.12g})")

        demand = _float_array("demand", self.demand)
        if demand.ndim < 1 or demand.shape[0] != S:
            raise InputError("demand", f"shape {demand.shape}",
                             f"expected shape ({S}, ...), one row per scenario")
        if np.any(demand < 0):
            raise InputError("demand", float(demand[demand < 0][0]), "must be non-negative")
        if self.seed is not None:
            _check_seed(self.seed)

        probs.setflags(write=False)
        demand.setflags(write=False)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "probabilities", probs)
        object.__setattr__(self, "demand", demand)
        object.__setattr__(self, "spec", str(self.spec))
        object.__setattr__(self, "seed", None if self.seed is None else int(self.seed))

    def __len__(self) -> int:
        return len(self.names)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScenarioSet):
            return NotImplemented
        return (
            self.names == other.names
            and self.labels == other.labels
            and self.spec == other.spec
            and self.seed == other.seed
            and np.array_equal(self.probabilities, other.probabilities)
            and np.array_equal(self.demand, other.demand)
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def rate_shape(self) -> tuple[int, ...]:
        """Shape of one scenario's demand (``demand.shape[1:]``)."""
        return tuple(self.demand.shape[1:])

    @property
    def indices(self) -> tuple[int, ...]:
        """Generator index of each scenario (the k in ``"scen{k}"``)."""
        return tuple(scenario_index(n) for n in self.names)

    @property
    def expected_demand(self) -> np.ndarray:
        """Probability-weighted mean demand over the scenarios, shape ``rate_shape``."""
        return np.tensordot(self.probabilities, self.demand, axes=1)

    def subset(self, indices: Iterable[int]) -> ScenarioSet:
        """The scenarios at the given positions, probabilities renormalised to sum to 1.

        Parameters
        ----------
        indices : iterable of int
            Positions in this set (0 .. len-1, not the k in the names), each at most once.
            Names and labels go along, so the subset's names still give the generator index.

        Raises
        ------
        InputError
            If no position is given, one is out of range or repeated, or the chosen scenarios
            have total probability 0.
        """
        idx = [_check_index("indices", i) for i in indices]
        if not idx:
            raise InputError("indices", idx, "a subset needs at least one scenario")
        for i in idx:
            if i >= len(self):
                raise InputError("indices", i, f"out of range for {len(self)} scenarios")
        if len(set(idx)) != len(idx):
            raise InputError("indices", idx, "each scenario may be chosen once")
        probs = self.probabilities[idx]
        total = float(probs.sum())
        if total <= 0:
            raise InputError("indices", idx, "the chosen scenarios have total probability 0")
        return ScenarioSet(
            names=tuple(self.names[i] for i in idx),
            probabilities=probs / total,
            demand=self.demand[idx],
            spec=self.spec,
            seed=self.seed,
            labels=tuple(self.labels[i] for i in idx),
        )


# ----------------------------------------------------------------------------------------------
# Three-point: the instance's own levels


def three_point(
    level_demand: np.ndarray,
    probabilities: Sequence[float] | np.ndarray,
    labels: Sequence[str] | None = None,
) -> ScenarioSet:
    """The instance's own discrete scenarios, as they are.

    Parameters
    ----------
    level_demand : array_like
        Shape (K, ...): demand of each of the K levels, units per cell, non-negative.
    probabilities : array_like
        Shape (K,), non-negative, sums to 1.
    labels : sequence of str, optional
        Human labels of the levels (e.g. ``("low", "med", "high")``); default the names.

    Returns
    -------
    ScenarioSet
        Names ``scen0 .. scen{K-1}`` in the order given, spec ``"three-point"``, seed None.
    """
    demand = _float_array("level demand", level_demand)
    if demand.ndim < 1 or demand.shape[0] < 1:
        raise InputError("level demand", f"shape {demand.shape}",
                         "expected shape (K, ...) with at least one level")
    K = demand.shape[0]
    names = tuple(f"scen{k}" for k in range(K))
    return ScenarioSet(
        names=names,
        probabilities=_float_array("probabilities", probabilities),
        demand=demand,
        spec="three-point",
        seed=None,
        labels=names if labels is None else tuple(labels),
    )


# ----------------------------------------------------------------------------------------------
# Poisson Monte Carlo


def poisson_demand(
    rates: np.ndarray,
    seed: int,
    k: int,
    multipliers: Sequence[float] = (1.0,),
    weights: Sequence[float] | None = None,
) -> np.ndarray:
    """Demand of Poisson scenario ``k`` alone.

    The only randomness is ``rng = np.random.default_rng([seed, k])``. With more than one
    multiplier, a level ``l`` is drawn first with ``rng.choice(len(multipliers), p=weights)``;
    then ``demand = rng.poisson(rates * multipliers[l])``. With a single multiplier no draw is
    spent on the level.

    Parameters
    ----------
    rates : array_like
        Mean demand per cell (any shape, e.g. (P, T)), units, finite and non-negative.
    seed : int
        Base seed, a non-negative integer.
    k : int
        Scenario index, a non-negative integer.
    multipliers : sequence of float, default (1.0,)
        Demand levels as multiples of ``rates``, non-negative.
    weights : sequence of float, optional
        Probability of each level (same length as ``multipliers``, sums to 1); default uniform.

    Returns
    -------
    numpy.ndarray
        Float array shaped like ``rates`` holding whole numbers >= 0.
    """
    r = _check_rates(rates)
    mult, w = _check_levels(multipliers, weights)
    return _poisson_row(r, _check_seed(seed), _check_index("k", k), mult, w)


def poisson(
    rates: np.ndarray,
    n: int,
    seed: int,
    multipliers: Sequence[float] = (1.0,),
    weights: Sequence[float] | None = None,
    start: int = 0,
) -> ScenarioSet:
    """N equally likely Poisson scenarios ``start .. start+n-1`` of base seed ``seed``.

    Row ``i`` is exactly :func:`poisson_demand` of scenario ``k = start + i``, so scenario k does
    not depend on ``n`` or ``start`` (nor on which process draws it).

    Parameters
    ----------
    rates, seed, multipliers, weights
        As in :func:`poisson_demand`.
    n : int
        Number of scenarios, >= 1.
    start : int, default 0
        Index of the first scenario (for out-of-sample sets or one rank's share of a batch).

    Returns
    -------
    ScenarioSet
        Names ``scen{start} .. scen{start+n-1}``, probabilities 1/n, spec ``"poisson:{n}"``.
    """
    r = _check_rates(rates)
    mult, w = _check_levels(multipliers, weights)
    s = _check_seed(seed)
    n = _check_count(n)
    start = _check_index("start", start)
    demand = np.empty((n, *r.shape))
    for i in range(n):
        demand[i] = _poisson_row(r, s, start + i, mult, w)
    return _sampled_set(ScenarioSpec("poisson", n), demand, s, start)


def _poisson_row(
    rates: np.ndarray, seed: int, k: int, mult: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    rng = np.random.default_rng([seed, k])
    level = int(rng.choice(len(mult), p=weights)) if len(mult) > 1 else 0
    return rng.poisson(rates * mult[level]).astype(float)


# ----------------------------------------------------------------------------------------------
# Quasi-Monte Carlo


def qmc_demand(
    rates: np.ndarray,
    seed: int,
    k: int,
    multipliers: Sequence[float] = (1.0,),
    weights: Sequence[float] | None = None,
) -> np.ndarray:
    """Demand of QMC scenario ``k`` alone: point ``k`` of a scrambled Sobol sequence.

    The sequence is ``scipy.stats.qmc.Sobol(d, scramble=True, seed=seed)`` with
    ``d = rates.size``, plus one coordinate when there is more than one multiplier. Point ``k``
    is ``u = fast_forward(k).random(1)``, clipped to ``[1e-12, 1 - 1e-12]``. The last coordinate
    (if any) picks the level ``l`` as the first with ``u_last < cumsum(weights)[l]``; the first
    ``rates.size`` coordinates, in C order, give ``demand = poisson.ppf(u, rates * mult[l])``.

    Parameters and return value are as in :func:`poisson_demand`. Scenario k is the same point
    whatever set it belongs to; a set of N = a power of 2 points starting at 0 is best balanced.
    """
    r = _check_rates(rates)
    mult, w = _check_levels(multipliers, weights)
    u = _sobol_points(r.size, len(mult) > 1, _check_seed(seed), _check_index("k", k), 1)
    return _qmc_rows(r, u, mult, w)[0]


def qmc(
    rates: np.ndarray,
    n: int,
    seed: int,
    multipliers: Sequence[float] = (1.0,),
    weights: Sequence[float] | None = None,
    start: int = 0,
) -> ScenarioSet:
    """N equally likely QMC scenarios ``start .. start+n-1`` of base seed ``seed``.

    All N points come from one ``fast_forward(start)`` and ``random(n)`` call; row ``i`` equals
    :func:`qmc_demand` of scenario ``start + i``. Use ``start = 0`` and N a power of 2 for the
    balance properties of Sobol points (other N work; scipy's warning about them is silenced).

    Parameters and return value are as in :func:`poisson`, with spec ``"qmc:{n}"``.
    """
    r = _check_rates(rates)
    mult, w = _check_levels(multipliers, weights)
    s = _check_seed(seed)
    n = _check_count(n)
    start = _check_index("start", start)
    u = _sobol_points(r.size, len(mult) > 1, s, start, n)
    return _sampled_set(ScenarioSpec("qmc", n), _qmc_rows(r, u, mult, w), s, start)


def _sobol_points(size: int, with_level: bool, seed: int, start: int, n: int) -> np.ndarray:
    """Points start .. start+n-1 of the scrambled Sobol sequence of ``seed``, clipped, (n, d)."""
    d = size + (1 if with_level else 0)
    if d > _qmc.Sobol.MAXDIM:
        raise InputError("rates", f"{size} cells",
                         f"qmc supports at most {_qmc.Sobol.MAXDIM} dimensions")
    # scipy is moving from `seed=` to `rng=`; an int under `rng=` gives a different sequence, so
    # keep `seed=` here (the one place) to keep QMC scenarios reproducible across releases.
    sampler = _qmc.Sobol(d, scramble=True, seed=seed)
    if start + n > sampler.maxn:
        raise InputError("start + n", start + n, f"qmc supports at most {sampler.maxn} points")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*balance properties", category=UserWarning)
        if start > 0:  # scipy's fast_forward(0) on a fresh engine fails; nothing to skip anyway
            sampler.fast_forward(start)
        u = sampler.random(n)
    return np.clip(u, _U_EPS, 1.0 - _U_EPS)


def _qmc_rows(
    rates: np.ndarray, u: np.ndarray, mult: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Map Sobol points (n, d) to demand (n, *rates.shape)."""
    n = u.shape[0]
    if len(mult) > 1:
        cum = np.cumsum(weights)
        levels = np.minimum(np.searchsorted(cum, u[:, -1], side="right"), len(mult) - 1)
        u = u[:, :-1]
    else:
        levels = np.zeros(n, dtype=int)
    mu = mult[levels][:, None] * rates.reshape(1, -1)
    demand = np.where(mu > 0, stats.poisson.ppf(u, np.where(mu > 0, mu, 1.0)), 0.0)
    return demand.reshape((n, *rates.shape)).astype(float)


# ----------------------------------------------------------------------------------------------
# Dispatch


def generate(
    spec: ScenarioSpec | str,
    *,
    rates: np.ndarray | None,
    seed: int | None,
    level_demand: np.ndarray | None = None,
    level_probabilities: Sequence[float] | np.ndarray | None = None,
    level_labels: Sequence[str] | None = None,
    multipliers: Sequence[float] = (1.0,),
    weights: Sequence[float] | None = None,
) -> ScenarioSet:
    """The scenario set a spec names.

    Parameters
    ----------
    spec : ScenarioSpec or str
        ``"three-point"``, ``"poisson:N"`` or ``"qmc:N"``.
    rates : array_like or None
        Mean demand per cell for ``poisson``/``qmc`` (ignored for ``three-point``).
    seed : int or None
        Base seed; required for ``poisson``/``qmc``, ignored for ``three-point``.
    level_demand, level_probabilities, level_labels
        The instance's own levels, (K, ...), (K,) and K labels; required (demand and
        probabilities) for ``three-point``.
    multipliers, weights
        Demand levels of the Poisson/QMC mixture (see the module docstring).

    Raises
    ------
    InputError
        On a bad spec, a three-point spec for an instance without levels, a missing seed or
        rates, or any invalid argument.
    """
    sp = parse_spec(spec)
    if sp.kind == "three-point":
        if level_demand is None or np.asarray(level_demand).size == 0:
            raise InputError("scenarios", "three-point", "this instance has no three-point levels")
        if level_probabilities is None:
            raise InputError("level probabilities", None, "needed for three-point scenarios")
        return three_point(level_demand, level_probabilities, level_labels)
    if seed is None:
        raise InputError("seed", None, f"{sp} scenarios need a seed (a non-negative integer)")
    if rates is None:
        raise InputError("rates", None, f"{sp} scenarios need demand rates")
    assert sp.n is not None
    draw = poisson if sp.kind == "poisson" else qmc
    return draw(rates, sp.n, seed, multipliers=multipliers, weights=weights)


def scenario_demand(
    spec: ScenarioSpec | str,
    k: int,
    *,
    rates: np.ndarray | None,
    seed: int | None,
    level_demand: np.ndarray | None = None,
    multipliers: Sequence[float] = (1.0,),
    weights: Sequence[float] | None = None,
) -> np.ndarray:
    """Demand of scenario ``k`` alone, equal to row k of :func:`generate` for the same arguments.

    For per-scenario model builders (e.g. on MPI ranks): ``three-point`` gives
    ``level_demand[k]``, ``poisson`` :func:`poisson_demand` and ``qmc`` :func:`qmc_demand`.
    For sampled specs k is not bounded by N (scenario k is the same whatever N), so
    out-of-sample scenarios k >= N can be drawn the same way.

    Raises
    ------
    InputError
        For a negative k, k beyond the instance's levels (three-point), or missing inputs.
    """
    sp = parse_spec(spec)
    k = _check_index("k", k)
    if sp.kind == "three-point":
        if level_demand is None or np.asarray(level_demand).size == 0:
            raise InputError("scenarios", "three-point", "this instance has no three-point levels")
        levels = _float_array("level demand", level_demand)
        if k >= levels.shape[0]:
            raise InputError("k", k, f"out of range for {levels.shape[0]} three-point levels")
        return levels[k].copy()
    if seed is None:
        raise InputError("seed", None, f"{sp} scenarios need a seed (a non-negative integer)")
    if rates is None:
        raise InputError("rates", None, f"{sp} scenarios need demand rates")
    draw = poisson_demand if sp.kind == "poisson" else qmc_demand
    return draw(rates, seed, k, multipliers=multipliers, weights=weights)


# ----------------------------------------------------------------------------------------------
# Checks


def _sampled_set(spec: ScenarioSpec, demand: np.ndarray, seed: int, start: int) -> ScenarioSet:
    n = demand.shape[0]
    names = tuple(f"scen{start + i}" for i in range(n))
    return ScenarioSet(names=names, probabilities=np.full(n, 1.0 / n), demand=demand,
                       spec=str(spec), seed=seed, labels=names)


def _float_array(name: str, values: Any) -> np.ndarray:
    """A fresh float array of ``values``; non-numeric or non-finite entries raise."""
    try:
        arr = np.array(values, dtype=float)
    except (TypeError, ValueError):
        raise InputError(name, values, "must be an array of numbers") from None
    if not np.all(np.isfinite(arr)):
        raise InputError(name, "non-finite entries", "must be finite")
    return arr


def _check_rates(rates: Any) -> np.ndarray:
    r = _float_array("rates", rates)
    if r.size == 0:
        raise InputError("rates", f"shape {r.shape}", "needs at least one cell")
    if np.any(r < 0):
        raise InputError("rates", float(r[r < 0][0]), "must be non-negative")
    return r


def _check_levels(
    multipliers: Sequence[float], weights: Sequence[float] | None
) -> tuple[np.ndarray, np.ndarray]:
    mult = _float_array("multipliers", multipliers)
    if mult.ndim != 1 or mult.size == 0:
        raise InputError("multipliers", multipliers, "expected a non-empty sequence of numbers")
    if np.any(mult < 0):
        raise InputError("multipliers", float(mult[mult < 0][0]), "must be non-negative")
    if weights is None:
        return mult, np.full(mult.size, 1.0 / mult.size)
    w = _float_array("weights", weights)
    if w.shape != mult.shape:
        raise InputError("weights", weights,
                         f"expected {mult.size} weights, one per multiplier")
    if np.any(w < 0):
        raise InputError("weights", float(w[w < 0][0]), "must be non-negative")
    if not math.isclose(float(w.sum()), 1.0, abs_tol=_PROB_TOL):
        raise InputError("weights", [float(x) for x in w],
                         f"must sum to 1 (they sum to {float(w.sum()):.12g})")
    return mult, w / w.sum()


def _check_int(name: str, value: Any, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(name, value, "must be an integer")
    if value < lo:
        raise InputError(name, value, f"must be >= {lo}")
    return int(value)


def _check_seed(seed: Any) -> int:
    return _check_int("seed", seed, 0)


def _check_index(name: str, k: Any) -> int:
    return _check_int(name, k, 0)


def _check_count(n: Any) -> int:
    return _check_int("n", n, 1)
