"""Scenarios: the instance's own named scenarios, Monte Carlo, Sobol QMC and a researcher's file.

Step two of the pipeline (data -> **scenarios** -> models -> solve -> metrics -> reports). This
module draws numbers and knows nothing about models: it imports neither Pyomo nor any other part
of stochplan except :mod:`stochplan.errors`. What is random in a family (demand, acceptances,
...) is described by an :class:`Uncertainty`: named axes, Poisson rates and/or a sampler of its
own, and the instance's named scenarios; :func:`draw_set` and :func:`draw_one` turn a spec into
numbers for any family.

A scenario set is named by a spec string (:func:`parse_spec`), the same vocabulary for every
family and command:

``"named"`` (alias ``"three-point"``)
    The instance's own discrete scenarios (the seed's low/med/high levels and probabilities),
    reproduced as they are; no randomness.
``"sample:N"``
    N equally likely Monte Carlo scenarios from the family's own distribution (its sampler, or
    Poisson around its rates for the demand families).
``"file:PATH"``
    The scenarios of a CSV or Parquet file (history, another generator): a tidy table with a
    ``scenario`` column, one column per axis of the random data, ``value``, and optionally
    ``probability`` (equal probabilities when absent); see :func:`read_scenario_file`.
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
(or :func:`qmc`) samples from that mixture, whose mean is the base demand. An instance whose
named scenarios were built that way says so (:attr:`Uncertainty.named_levels`); stochplan does
not guess it from the numbers.

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

import dataclasses
import functools
import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path as _Path
from types import MappingProxyType
from typing import Any

import numpy as np

from stochplan.errors import InputError

__all__ = [
    "SEED_LEVELS",
    "Distribution",
    "distribution_of",
    "ScenarioSet",
    "ScenarioSpec",
    "generate",
    "parse_spec",
    "poisson",
    "poisson_demand",
    "probability",
    "qmc",
    "qmc_demand",
    "scenario_demand",
    "scenario_index",
    "Uncertainty",
    "draw_one",
    "draw_set",
    "read_scenario_file",
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

_KINDS = ("named", "sample", "poisson", "qmc", "file")
#: Old names of spec kinds, still accepted.
ALIASES = {"three-point": "named"}
_SPEC_HELP = ("expected named (alias three-point), sample:N, poisson:N, qmc:N with N a positive "
              "integer, or file:PATH")
_NAME_RE = re.compile(r"scen(0|[1-9][0-9]*)")
_SPEC_RE = re.compile(r"(sample|poisson|qmc):([0-9]+)")
_U_EPS = 1e-12  # QMC coordinates are clipped to [_U_EPS, 1 - _U_EPS] before the quantile map
_PROB_TOL = 1e-9  # probabilities and weights must sum to 1 within this


# ----------------------------------------------------------------------------------------------
# Specs and names


@dataclass(frozen=True)
class ScenarioSpec:
    """Which scenarios to use, as parsed from ``"named"``, ``"sample:N"``, ``"poisson:N"``,
    ``"qmc:N"`` or ``"file:PATH"``.

    Attributes
    ----------
    kind : str
        ``"named"``, ``"sample"``, ``"poisson"``, ``"qmc"`` or ``"file"`` (``"three-point"`` is
        read as ``"named"``).
    n : int or None
        Number of scenarios for ``sample``, ``poisson`` and ``qmc`` (a positive integer); None
        for ``named`` and ``file``, whose count is the instance's or the file's.
    path : str or None
        The file of ``file:PATH``.
    """

    kind: str
    n: int | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ALIASES.get(self.kind, self.kind))
        if self.kind not in _KINDS:
            raise InputError("scenarios", self.kind, _SPEC_HELP)
        if self.kind == "file":
            if not self.path or self.n is not None:
                raise InputError("scenarios", f"file:{self.path or ''}", "file:PATH names a file")
        elif self.path is not None:
            raise InputError("scenarios", f"{self.kind}:{self.path}", _SPEC_HELP)
        if self.kind in ("named", "file"):
            if self.n is not None:
                raise InputError("scenarios", f"{self.kind}:{self.n}",
                                 f"{self.kind} takes no scenario count")
        elif isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n < 1:
            raise InputError("scenarios", f"{self.kind}:{self.n}", _SPEC_HELP)
        else:
            object.__setattr__(self, "n", int(self.n))

    def __str__(self) -> str:
        if self.kind == "file":
            return f"file:{self.path}"
        return self.kind if self.n is None else f"{self.kind}:{self.n}"

    @property
    def sampled(self) -> bool:
        """True for the kinds drawn from a seed (``sample``, ``poisson``, ``qmc``)."""
        return self.kind in ("sample", "poisson", "qmc")


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
    ScenarioSpec(kind='poisson', n=100, path=None)
    >>> str(parse_spec("qmc:64"))
    'qmc:64'
    """
    if isinstance(text, ScenarioSpec):
        return text
    if not isinstance(text, str):
        raise InputError("scenarios", text, _SPEC_HELP)
    stripped = text.strip()
    if stripped in ("named", *ALIASES):
        return ScenarioSpec("named", None)
    if stripped.startswith("file:"):
        return ScenarioSpec("file", None, stripped[len("file:"):].strip())
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
    """S scenarios of a family's random data with their probabilities; validated, read-only.

    Attributes
    ----------
    names : tuple of str
        ``"scen{k}"``, where k is the scenario's index in its generator (so a subset keeps the
        names of the scenarios it holds, and :func:`scenario_demand` redraws scenario k alone).
    probabilities : numpy.ndarray
        Shape (S,), non-negative, sums to 1.
    data : numpy.ndarray
        Shape (S, *rate_shape), float: the random data of each scenario (units demanded per
        cell for the demand families, 0/1 for acceptances, ...); non-negative (whole numbers for
        Poisson and QMC scenarios). ``demand`` is the same array under the demand families'
        name.
    spec : str
        The spec the set was drawn from, e.g. ``"poisson:100"``.
    seed : int or None
        Base seed (None for named and file sets).
    labels : tuple of str
        Human labels (``("low", "med", "high")`` for the seed's levels); same as ``names`` for
        sampled sets.

    Two sets compare equal when every field is equal (arrays element-wise); sets are not
    hashable.
    """

    names: tuple[str, ...]
    probabilities: np.ndarray
    data: np.ndarray
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

        demand = _float_array("data", self.data)
        if demand.ndim < 1 or demand.shape[0] != S:
            raise InputError("data", f"shape {demand.shape}",
                             f"expected shape ({S}, ...), one row per scenario")
        if np.any(demand < 0):
            raise InputError("data", float(demand[demand < 0][0]), "must be non-negative")
        if self.seed is not None:
            _check_seed(self.seed)

        probs.setflags(write=False)
        demand.setflags(write=False)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "probabilities", probs)
        object.__setattr__(self, "data", demand)
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
            and np.array_equal(self.data, other.data)
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def rate_shape(self) -> tuple[int, ...]:
        """Shape of one scenario's data (``data.shape[1:]``)."""
        return tuple(self.data.shape[1:])

    @property
    def demand(self) -> np.ndarray:
        """The random data under the demand families' name (the same array as ``data``)."""
        return self.data

    @property
    def indices(self) -> tuple[int, ...]:
        """Generator index of each scenario (the k in ``"scen{k}"``)."""
        return tuple(scenario_index(n) for n in self.names)

    @property
    def expected(self) -> np.ndarray:
        """Probability-weighted mean of the data over the scenarios, shape ``rate_shape``."""
        return np.tensordot(self.probabilities, self.data, axes=1)

    @property
    def expected_demand(self) -> np.ndarray:
        """:attr:`expected` under the demand families' name."""
        return self.expected

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
            data=self.data[idx],
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
        Names ``scen0 .. scen{K-1}`` in the order given, spec ``"named"``, seed None.
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
        data=demand,
        spec="named",
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
    from scipy.stats import qmc as _qmc  # scipy only when QMC is drawn (it is slow to import)

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
    from scipy import stats

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
    if sp.kind == "file":
        raise InputError("scenarios", str(sp), "file scenarios are read by draw_set")
    if sp.kind == "named":
        if level_demand is None or np.asarray(level_demand).size == 0:
            raise InputError("scenarios", "named", "this instance has no named scenarios")
        if level_probabilities is None:
            raise InputError("level probabilities", None, "needed for three-point scenarios")
        return three_point(level_demand, level_probabilities, level_labels)
    if seed is None:
        raise InputError("seed", None, f"{sp} scenarios need a seed (a non-negative integer)")
    if rates is None:
        raise InputError("rates", None, f"{sp} scenarios need demand rates")
    assert sp.n is not None
    draw = qmc if sp.kind == "qmc" else poisson
    out = draw(rates, sp.n, seed, multipliers=multipliers, weights=weights)
    return out if sp.kind != "sample" else dataclasses.replace(out, spec=str(sp))


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
    if sp.kind == "file":
        raise InputError("scenarios", str(sp), "file scenarios are read by draw_one")
    if sp.kind == "named":
        if level_demand is None or np.asarray(level_demand).size == 0:
            raise InputError("scenarios", "named", "this instance has no named scenarios")
        levels = _float_array("level demand", level_demand)
        if k >= levels.shape[0]:
            raise InputError("k", k, f"out of range for {levels.shape[0]} three-point levels")
        return levels[k].copy()
    if seed is None:
        raise InputError("seed", None, f"{sp} scenarios need a seed (a non-negative integer)")
    if rates is None:
        raise InputError("rates", None, f"{sp} scenarios need demand rates")
    draw = qmc_demand if sp.kind == "qmc" else poisson_demand
    return draw(rates, seed, k, multipliers=multipliers, weights=weights)


# ----------------------------------------------------------------------------------------------
# Any family's random data


@dataclass(frozen=True, eq=False)
class Uncertainty:
    """What is random in one scenario of a family, and how the spec kinds draw it.

    Attributes
    ----------
    name : str
        What the data is: ``"demand"``, ``"acceptance"``, ...; it names the stored table.
    axes : mapping of str to tuple
        The axes of one scenario's data, in order, with their labels, e.g.
        ``{"product": ("A", "B"), "week": (1, 2, 3)}``: the data has shape
        ``tuple(len(labels) for labels in axes.values())``.
    rates : ndarray or None
        Poisson means per cell: ``poisson:N`` and ``qmc:N`` draw around them, and so does
        ``sample:N`` when there is no ``sampler``.
    named_data, named_probabilities, named_labels
        The instance's own scenarios: shape (K, *shape), (K,) summing to 1, and K labels; the
        ``named`` spec reproduces them.
    sampler : callable or None
        ``sampler(seed, k)``: scenario k of base seed ``seed``, an array of the data's shape
        drawn from ``np.random.default_rng([seed, k])`` and nothing else (Bernoulli acceptances,
        say). ``sample:N`` uses it in place of Poisson draws.
    upper : float or None
        Largest admissible value (1 for probabilities and 0/1 data); file data is checked
        against it. Values are always >= 0.
    value_column : str
        The name of the data column in scenario files (``"accepted"`` for acceptance
        outcomes, say); ``value`` is accepted too.
    named_levels : tuple of float or None
        The instance's declaration of how its named scenarios were made: named scenario k is
        one Poisson draw around ``named_levels[k] x rates`` (one level per named scenario, in
        order), so the named scenarios stand for the mixture of those levels weighted by
        ``named_probabilities`` (:func:`distribution_of`; ``evaluate`` samples it). Positive
        numbers; needs ``rates`` and the named scenarios. None (the default): the named
        scenarios are not declared draws of a distribution (a mean, maximum or expected
        scenario, or an unknown construction). Any family may declare it.
    """

    name: str
    axes: Mapping[str, tuple[Any, ...]]
    rates: np.ndarray | None = None
    named_data: np.ndarray | None = None
    named_probabilities: np.ndarray | None = None
    named_labels: tuple[str, ...] = ()
    sampler: Any = None
    upper: float | None = None
    value_column: str = "value"
    named_levels: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.named_levels is None:
            return
        levels = _float_array("named_levels", self.named_levels)
        if levels.ndim != 1 or np.any(levels <= 0):
            raise InputError("named_levels", self.named_levels,
                             "expected positive numbers, one per named scenario")
        if self.rates is None or not self.has_named:
            raise InputError("named_levels", self.named_levels, "declares the named scenarios "
                             f"Poisson draws around the rates, but this {self.name} has "
                             + ("no Poisson rates" if self.rates is None
                                else "no named scenarios"))
        count = np.asarray(self.named_data).shape[0]
        if levels.size != count:
            raise InputError("named_levels", self.named_levels,
                             f"expected {count} levels, one per named scenario")
        object.__setattr__(self, "named_levels", tuple(float(x) for x in levels))

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one scenario's data."""
        return tuple(len(labels) for labels in self.axes.values())

    @property
    def has_named(self) -> bool:
        return self.named_data is not None and np.asarray(self.named_data).size > 0

    def _named(self) -> tuple[np.ndarray, np.ndarray, tuple[str, ...] | None]:
        if not self.has_named or self.named_probabilities is None:
            raise InputError("scenarios", "named", "this instance has no named scenarios")
        return (np.asarray(self.named_data), np.asarray(self.named_probabilities),
                self.named_labels or None)


def draw_set(
    unc: Uncertainty,
    spec: ScenarioSpec | str,
    seed: int | None,
    multipliers: Sequence[float] = (1.0,),
    weights: Sequence[float] | None = None,
) -> ScenarioSet:
    """The scenario set a spec names, for any family's :class:`Uncertainty`.

    ``named`` gives the instance's own scenarios, ``file:PATH`` the file's, ``poisson:N`` and
    ``qmc:N`` draw around the rates (with the ``multipliers``/``weights`` mixture), and
    ``sample:N`` uses the family's sampler when it has one, else Poisson draws.

    Raises
    ------
    InputError
        A kind the family cannot draw (no rates, no named scenarios), a missing seed, or a
        malformed scenario file (naming the column, row and file).
    """
    sp = parse_spec(spec)
    if sp.kind == "named":
        data, probs, labels = unc._named()
        return three_point(data, probs, labels)
    if sp.kind == "file":
        assert sp.path is not None
        labels, data, probs = read_scenario_file(sp.path, unc)
        names = tuple(f"scen{k}" for k in range(len(labels)))
        return ScenarioSet(names=names, probabilities=probs, data=data, spec=str(sp), seed=None,
                           labels=labels)
    if sp.kind == "sample" and unc.sampler is not None:
        if seed is None:
            raise InputError("seed", None, f"{sp} scenarios need a seed (a non-negative integer)")
        assert sp.n is not None
        s = _check_seed(seed)
        data = np.stack([np.asarray(unc.sampler(s, k), dtype=float) for k in range(sp.n)])
        return dataclasses.replace(_sampled_set(sp, data, s, 0), spec=str(sp))
    if unc.rates is None:
        raise InputError("scenarios", str(sp), f"this family's {unc.name} has no Poisson rates "
                         "(use sample:N, named or file:PATH)")
    return generate(sp, rates=unc.rates, seed=seed, multipliers=multipliers, weights=weights)


def draw_one(
    unc: Uncertainty,
    spec: ScenarioSpec | str,
    seed: int | None,
    k: int,
    multipliers: Sequence[float] = (1.0,),
    weights: Sequence[float] | None = None,
) -> np.ndarray:
    """Scenario ``k`` alone: equal to ``draw_set(...).data[k]`` for the same arguments."""
    sp = parse_spec(spec)
    k = _check_index("k", k)
    if sp.kind == "named":
        data, _, _ = unc._named()
        if k >= data.shape[0]:
            raise InputError("k", k, f"out of range for {data.shape[0]} named scenarios")
        return np.array(data[k], dtype=float)
    if sp.kind == "file":
        assert sp.path is not None
        _, data, _ = read_scenario_file(sp.path, unc)
        if k >= data.shape[0]:
            raise InputError("k", k, f"out of range for the {data.shape[0]} scenarios of "
                             f"{sp.path}")
        return np.array(data[k])
    if sp.kind == "sample" and unc.sampler is not None:
        if seed is None:
            raise InputError("seed", None, f"{sp} scenarios need a seed (a non-negative integer)")
        return np.asarray(unc.sampler(_check_seed(seed), k), dtype=float)
    if unc.rates is None:
        raise InputError("scenarios", str(sp), f"this family's {unc.name} has no Poisson rates "
                         "(use sample:N, named or file:PATH)")
    return scenario_demand(sp, k, rates=unc.rates, seed=seed, multipliers=multipliers,
                           weights=weights)


def probability(unc: Uncertainty, spec: ScenarioSpec | str, k: int, n: int | None = None) -> float:
    """Probability of scenario ``k``: the instance's or the file's, else 1/N (N = ``n`` or the
    spec's count)."""
    sp = parse_spec(spec)
    if sp.kind == "named":
        return float(unc._named()[1][k])
    if sp.kind == "file":
        assert sp.path is not None
        return float(read_scenario_file(sp.path, unc)[2][k])
    return 1.0 / float(n or sp.n or 1)


def read_scenario_file(
    path: str, unc: Uncertainty
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """A researcher's scenarios from a CSV or Parquet file: (labels, data, probabilities).

    The file is a tidy table: a ``scenario`` column (any labels; order of first appearance is
    the scenario order), one column per axis of ``unc.axes`` holding that axis's labels, a
    ``value`` column (or ``unc.value_column``) and optionally a ``probability`` column (the
    same on every row of a scenario; the probabilities must sum to 1 within 1e-6 and are then
    normalised). Without it the scenarios are equally likely. Every scenario must give every
    cell exactly once.

    Raises
    ------
    InputError
        One line naming the column (and row), the value and the file.
    """
    p = _Path(path).expanduser()
    if not p.is_file():
        raise InputError("scenarios", f"file:{path}", "file not found")
    stat = p.stat()
    key = (str(p.resolve()), stat.st_mtime_ns, stat.st_size,
           tuple((name, tuple(labels)) for name, labels in unc.axes.items()), unc.upper,
           unc.value_column)
    return _read_scenario_file(key)


@functools.lru_cache(maxsize=8)
def _read_scenario_file(key: tuple[Any, ...]) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    import pandas as pd

    path, _, _, axes_items, upper, value_column = key
    axes = dict(axes_items)
    src = _Path(path)
    try:
        if src.suffix.lower() in (".parquet", ".pq"):
            df = pd.read_parquet(src)
        else:
            df = pd.read_csv(src)
    except ImportError as err:
        raise InputError("file", src.name, f"cannot be read ({err}); install pyarrow for "
                         "Parquet files", src) from None
    except (ValueError, OSError, UnicodeDecodeError) as err:
        raise InputError("file", src.name, f"not a readable scenario table ({err})", src) from None
    df.columns = [str(c).strip() for c in df.columns]
    # the data column: `value`, or the uncertainty's own name for it (`accepted`, say)
    vcol = value_column if value_column in df.columns and "value" not in df.columns else "value"
    df = df.rename(columns={vcol: "value"})
    shown = {"value": vcol}
    expected = f"expected scenario, {', '.join(axes)}, {value_column}[, probability]"
    for col in ("scenario", *axes, "value"):
        if col not in df.columns:
            raise InputError("column", value_column if col == "value" else col,
                             f"missing (columns found: {', '.join(df.columns)}; {expected})",
                             src)
    extra = [c for c in df.columns if c not in ("scenario", *axes, "value", "probability")]
    if extra:
        raise InputError("column", extra[0], f"unknown ({expected})", src)
    if df.empty:
        raise InputError("file", src.name, "has no scenario rows", src)
    numbers = {}
    for col in ("value", "probability"):
        if col not in df.columns:
            continue
        values = pd.to_numeric(df[col], errors="coerce").astype(float)
        bad = values.isna().to_numpy() | ~np.isfinite(values.to_numpy())
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"{shown.get(col, col)} (row {row + 2})",
                             _plain(df[col].iloc[row]), "not a finite number", src)
        low = values.to_numpy() < 0
        if low.any():
            row = int(np.flatnonzero(low)[0])
            raise InputError(f"{shown.get(col, col)} (row {row + 2})", float(values.iloc[row]),
                             "must be non-negative", src)
        numbers[col] = values.to_numpy()
    if upper is not None:
        high = numbers["value"] > upper
        if high.any():
            row = int(np.flatnonzero(high)[0])
            raise InputError(f"{vcol} (row {row + 2})", float(numbers["value"][row]),
                             f"must be <= {upper:g}", src)
    positions = []
    for name, labels in axes.items():
        lookup = {str(label): i for i, label in enumerate(labels)}
        column = df[name].astype(str).str.strip()
        pos = column.map(lookup)
        if pos.isna().any():
            row = int(np.flatnonzero(pos.isna().to_numpy())[0])
            known = ", ".join(str(x) for x in list(labels)[:10])
            raise InputError(f"{name} (row {row + 2})", _plain(df[name].iloc[row]),
                             f"not one of the instance's {name} labels ({known})", src)
        positions.append(pos.to_numpy(dtype=int))
    scen_labels = df["scenario"].astype(str).str.strip()
    order = tuple(dict.fromkeys(scen_labels))
    s_pos = scen_labels.map({label: i for i, label in enumerate(order)}).to_numpy(dtype=int)
    shape = tuple(len(v) for v in axes.values())
    count = np.zeros((len(order), *shape), dtype=int)
    np.add.at(count, (s_pos, *positions), 1)
    data = np.zeros((len(order), *shape))
    data[(s_pos, *positions)] = numbers["value"]
    if (count > 1).any():
        cell = np.argwhere(count > 1)[0]
        raise InputError("scenario", order[cell[0]], "gives the cell "
                         f"{_cell(axes, cell[1:])} more than once", src)
    if (count == 0).any():
        cell = np.argwhere(count == 0)[0]
        raise InputError("scenario", order[cell[0]], f"has no row for {_cell(axes, cell[1:])}",
                         src)
    if "probability" in numbers:
        probs = np.zeros(len(order))
        probs[s_pos] = numbers["probability"]
        mismatch = np.abs(numbers["probability"] - probs[s_pos]) > 1e-12
        if mismatch.any():
            row = int(np.flatnonzero(mismatch)[0])
            raise InputError(f"probability (row {row + 2})", float(numbers["probability"][row]),
                             f"differs from the other rows of scenario {scen_labels.iloc[row]}",
                             src)
        if not math.isclose(float(probs.sum()), 1.0, abs_tol=1e-6):
            raise InputError("probability", float(probs.sum()),
                             "the scenarios' probabilities must sum to 1", src)
        probs = probs / probs.sum()
    else:
        probs = np.full(len(order), 1.0 / len(order))
    data.setflags(write=False)
    probs.setflags(write=False)
    return order, data, probs


def _cell(axes: Mapping[str, tuple[Any, ...]], index: Sequence[int]) -> str:
    return ", ".join(f"{name} {labels[i]}" for (name, labels), i in zip(axes.items(), index))


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


# ----------------------------------------------------------------------------------------------
# The distribution a run's scenarios come from


#: Kinds of :attr:`Distribution.generator`.
GENERATORS = ("poisson", "sampler", "file")
#: Kinds of :attr:`Distribution.basis`: how a run's scenarios relate to the distribution.
BASES = ("drawn", "qmc", "named", "stand-in", "chosen")
#: Rates and sampler parameters with more numbers than this are not stored (taken from the
#: instance again when the distribution is sampled).
_MAX_STORED = 100_000


@dataclass(frozen=True)
class Distribution:
    """The probability law a run's scenarios were drawn from: what ``evaluate`` samples again.

    A small, JSON-ready description (:meth:`to_dict`, :meth:`from_dict`) stored in a run's
    configuration (``config["distribution"]``) and with an out-of-sample evaluation; it holds
    no random numbers and no code, and turns back into fresh scenarios with :meth:`draw_args`
    (a spec and the level mixture) for the family that made it.

    Attributes
    ----------
    generator : str
        ``"poisson"``: Poisson around ``rates`` (per cell, units), in a mixture of levels
        (scenario-level ``multipliers`` of the rates drawn with ``weights``; one level 1.0 is
        plain Poisson). ``"sampler"``: the family's own sampler (``sample:N``), named by
        ``sampler``, its parameters those of the instance. ``"file"``: the scenarios of a file
        (``path``), equally likely or with the file's probabilities.
    basis : str
        How the run's scenarios relate to it: ``"drawn"`` (Monte Carlo draws of it, base seed
        ``seed``), ``"qmc"`` (quasi-Monte Carlo points of it), ``"named"`` (the instance declares
        its named scenarios draws of it, :attr:`Uncertainty.named_levels`; ``note`` says so),
        ``"stand-in"`` (the run's scenarios are not declared draws of a known law, e.g. an
        instance's mean or maximum scenario or a file; this is the instance's sampling
        distribution and ``note`` says so), ``"chosen"`` (chosen for an evaluation, not the
        run's).
    data : str
        What is random (``"demand"``, ``"acceptance"``), for the wording.
    rates : tuple of float or None
        Poisson means, flattened in C order (shape ``data_shape``); None when not stored.
    data_shape : tuple of int
        Shape of one scenario's data.
    multipliers, weights : tuple of float
        The level mixture: multipliers of the rates (>= 0) and their probabilities (sum 1).
    sampler : str or None
        The family sampler's class name (``generator = "sampler"``).
    about : str
        The sampler's own one-line description (its docstring's first line).
    parameters : dict or None
        The sampler's parameters as JSON (its dataclass fields), when stored.
    path : str or None
        The file of ``generator = "file"``.
    seed : int or None
        Base seed of the run's draws (None when stochplan did not draw them).
    note : str
        Why this law stands for the run's scenarios, when ``basis`` is ``"named"`` or
        ``"stand-in"``.

    Examples
    --------
    >>> rates = np.array([[100.0, 120.0]])
    >>> unc = Uncertainty("demand", {"product": ("A",), "week": (1, 2)}, rates=rates)
    >>> d = distribution_of(unc, "poisson:50", 7, (0.8, 1.0, 1.2), (0.25, 0.5, 0.25))
    >>> d.describe()
    'mixture of Poisson around the demand rates, levels 0.8/1.0/1.2 weights 0.25/0.5/0.25'
    >>> d.draw_args(1000)
    ('poisson:1000', (0.8, 1.0, 1.2), (0.25, 0.5, 0.25))
    >>> Distribution.from_dict(d.to_dict()) == d
    True
    """

    generator: str
    basis: str
    data: str = "demand"
    rates: tuple[float, ...] | None = None
    data_shape: tuple[int, ...] = ()
    multipliers: tuple[float, ...] = (1.0,)
    weights: tuple[float, ...] = (1.0,)
    sampler: str | None = None
    about: str = ""
    parameters: Mapping[str, Any] | None = None
    path: str | None = None
    seed: int | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.generator not in GENERATORS:
            raise InputError("distribution.generator", self.generator,
                             f"expected one of {', '.join(GENERATORS)}")
        if self.basis not in BASES:
            raise InputError("distribution.basis", self.basis,
                             f"expected one of {', '.join(BASES)}")
        mult, w = _check_levels(tuple(self.multipliers), tuple(self.weights))
        object.__setattr__(self, "multipliers", tuple(float(x) for x in mult))
        object.__setattr__(self, "weights", tuple(float(x) for x in w))
        object.__setattr__(self, "data_shape", tuple(int(x) for x in self.data_shape))
        if self.rates is not None:
            rates = _check_rates(self.rates).ravel()
            if self.data_shape and rates.size != math.prod(self.data_shape):
                raise InputError("distribution.rates", f"{rates.size} numbers",
                                 f"expected {math.prod(self.data_shape)} for shape "
                                 f"{self.data_shape}")
            object.__setattr__(self, "rates", tuple(float(x) for x in rates))
        if self.generator == "file" and not self.path:
            raise InputError("distribution.path", self.path, "a file distribution names a file")
        if self.generator == "sampler" and not self.sampler:
            raise InputError("distribution.sampler", self.sampler,
                             "a sampler distribution names its sampler")
        if self.seed is not None:
            object.__setattr__(self, "seed", _check_seed(self.seed))
        if self.parameters is not None:
            object.__setattr__(self, "parameters", MappingProxyType(dict(self.parameters)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Distribution):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    # -- what it is --------------------------------------------------------------------------

    def describe(self) -> str:
        """One line: ``mixture of Poisson around the demand rates, levels 0.8/1.0/1.2 weights
        0.25/0.5/0.25``, ``Poisson around the demand rates``, ``the family's sampler
        ProfileMixture (...)``, ``the scenarios of the file PATH``."""
        if self.generator == "file":
            return f"the scenarios of the file {self.path}"
        if self.generator == "sampler":
            about = self.about.rstrip(".")
            return f"the family's sampler {self.sampler}" + (f" ({about})" if about else "")
        if len(self.multipliers) == 1:
            m = self.multipliers[0]
            return f"Poisson around the {self.data} rates" + (f" x {_level(m)}" if m != 1
                                                              else "")
        return (f"mixture of Poisson around the {self.data} rates, levels "
                + "/".join(_level(m) for m in self.multipliers) + " weights "
                + "/".join(_level(w) for w in self.weights))

    def draws_text(self, n: int, seed: int | None) -> str:
        """What an evaluation drew: ``<describe()>, 2,000 draws, seed 1``."""
        if self.generator == "file":
            return f"{self.describe()} ({n:,} scenarios)"
        return f"{self.describe()}, {n:,} draws, seed {seed}"

    def draw_args(self, n: int | None = None) -> tuple[str, tuple[float, ...],
                                                       tuple[float, ...] | None]:
        """(spec, multipliers, weights) that draw ``n`` fresh Monte Carlo scenarios of this law
        with a family's :meth:`~stochplan.family.Family.scenario_set` (``file:PATH`` for a file,
        whatever ``n``)."""
        if self.generator == "file":
            return f"file:{self.path}", (1.0,), None
        n = _check_count(n)
        if self.generator == "sampler":
            return f"sample:{n}", (1.0,), None
        weights = None if len(self.multipliers) == 1 else self.weights
        return f"poisson:{n}", self.multipliers, weights

    def law(self) -> dict[str, Any]:
        """The fields that define the law (not how a run relates to it): two distributions
        with equal laws draw the same scenarios for the same seed."""
        d = self.to_dict()
        return {k: d[k] for k in ("generator", "rates", "data_shape", "multipliers", "weights",
                                  "sampler", "parameters", "path")}

    def differs_from(self, unc: Uncertainty) -> str:
        """Empty when ``unc`` (the instance as it is now) draws this law; else one sentence
        saying what changed (rates, sampler or its parameters)."""
        if self.generator == "poisson":
            if unc.rates is None:
                return f"the instance's {unc.name} has no Poisson rates now"
            now = np.asarray(unc.rates, dtype=float)
            if self.rates is not None and (now.size != len(self.rates)
                                           or not np.array_equal(now.ravel(), self.rates)):
                return f"the instance's {unc.name} rates differ from those stored with the run"
        elif self.generator == "sampler":
            name = type(unc.sampler).__name__ if unc.sampler is not None else None
            if name != self.sampler:
                return f"the family's sampler is {name} now, not {self.sampler}"
            if self.parameters is not None and _sampler_parameters(unc.sampler) != dict(
                    self.to_dict()["parameters"]):
                return f"the parameters of {name} differ from those stored with the run"
        return ""

    # -- JSON --------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (lists, numbers, strings, None); :meth:`from_dict` reads it back."""
        return {
            "generator": self.generator, "basis": self.basis, "data": self.data,
            "rates": None if self.rates is None else list(self.rates),
            "data_shape": list(self.data_shape), "multipliers": list(self.multipliers),
            "weights": list(self.weights), "sampler": self.sampler, "about": self.about,
            "parameters": None if self.parameters is None else _jsonable(dict(self.parameters)),
            "path": self.path, "seed": self.seed, "note": self.note,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Distribution:
        """A distribution from :meth:`to_dict`'s dict; an unknown key or a bad value is an
        :class:`InputError` naming ``distribution.<key>``."""
        if not isinstance(values, Mapping):
            raise InputError("distribution", values, "expected a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise InputError(f"distribution.{key}", values[key],
                                 f"unknown key (known: {', '.join(sorted(known))})")
        kwargs = dict(values)
        for key in ("rates", "data_shape", "multipliers", "weights"):
            if kwargs.get(key) is not None:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)


def distribution_of(
    unc: Uncertainty,
    spec: ScenarioSpec | str,
    seed: int | None,
    multipliers: Sequence[float] = (1.0,),
    weights: Sequence[float] | None = None,
) -> Distribution | None:
    """The distribution the scenarios of ``spec`` (as :func:`draw_set` draws them) come from.

    ``poisson:N``, ``qmc:N`` and ``sample:N`` without a family sampler: Poisson around the rates
    with the ``multipliers``/``weights`` mixture (basis ``drawn``, or ``qmc``). ``sample:N``
    with a sampler, and ``poisson:N``/``qmc:N`` of a family without rates (which draws them
    with its sampler): the sampler (basis ``drawn``).

    ``named``: when the instance declares its named scenarios Poisson draws at levels
    (:attr:`Uncertainty.named_levels`: named scenario k drawn around ``named_levels[k] x
    rates``), the mixture of those levels weighted by the named scenarios' probabilities
    (basis ``named``; the electronics instance declares 0.8/1.0/1.2). Otherwise (a mean,
    maximum or expected scenario, another construction, or one the instance does not
    declare) and for ``file:PATH``, the named or file scenarios are not draws of a law
    stochplan knows: the result is the instance's sampling distribution (what ``sample:N``
    draws), basis ``stand-in``, and its ``note`` says so. None when the family can draw
    nothing (no rates, no sampler).
    """
    sp = parse_spec(spec)
    mult, w = _check_levels(multipliers, weights)
    if sp.kind == "named":
        labels = ", ".join(unc.named_labels) or "named"
        if unc.named_levels is not None:
            probs = _float_array("named probabilities", unc.named_probabilities)
            return _poisson_law(
                unc, unc.named_levels, tuple(probs / probs.sum()), "named", None,
                f"the instance declares its named scenarios ({labels}) Poisson draws at "
                f"{'/'.join(_level(m) for m in unc.named_levels)} x the {unc.name} rates "
                "(its named_levels)")
        return _stand_in(unc, f"the instance's named scenarios ({labels}) are not draws from a "
                         "distribution it declares (it sets no named_levels)")
    if sp.kind == "file":
        return _stand_in(unc, f"the run's scenarios were read from {sp.path}, which names no "
                         "distribution")
    seed = None if seed is None else _check_seed(seed)
    basis = "qmc" if sp.kind == "qmc" else "drawn"
    if unc.sampler is not None and (sp.kind == "sample" or unc.rates is None):
        return _sampler_law(unc, "drawn", seed)
    if unc.rates is None:
        return None
    return _poisson_law(unc, tuple(mult), tuple(w), basis, seed)


def _poisson_law(unc: Uncertainty, multipliers: tuple[float, ...], weights: tuple[float, ...],
                 basis: str, seed: int | None, note: str = "") -> Distribution:
    assert unc.rates is not None
    rates = _check_rates(unc.rates)
    stored = None if rates.size > _MAX_STORED else tuple(float(x) for x in rates.ravel())
    return Distribution("poisson", basis, unc.name, stored, rates.shape, multipliers, weights,
                        seed=seed, note=note)


def _sampler_law(unc: Uncertainty, basis: str, seed: int | None,
                 note: str = "") -> Distribution:
    sampler = unc.sampler
    return Distribution("sampler", basis, unc.name, data_shape=unc.shape,
                        sampler=type(sampler).__name__, about=_about(sampler),
                        parameters=_sampler_parameters(sampler), seed=seed, note=note)


def _stand_in(unc: Uncertainty, why: str) -> Distribution | None:
    """The instance's sampling distribution (what ``sample:N`` draws), standing in for
    scenarios that are not draws of a known law."""
    note = (f"{why}; out-of-sample scenarios are drawn from the instance's sampling "
            "distribution (what sample:N draws) instead")
    if unc.sampler is not None:
        return _sampler_law(unc, "stand-in", None, note)
    if unc.rates is None:
        return None
    return _poisson_law(unc, (1.0,), (1.0,), "stand-in", None, note)


def _about(sampler: Any) -> str:
    """The first sentence of a sampler's docstring, without markup, if it is short."""
    doc = (type(sampler).__doc__ or "").strip().split("\n\n")[0]
    text = " ".join(doc.split()).replace("``", "")
    first = re.split(r"(?<=\.)\s", text, maxsplit=1)[0]
    return first if len(first) <= 100 else ""


def _sampler_parameters(sampler: Any) -> dict[str, Any] | None:
    """A dataclass sampler's fields as JSON (None for other samplers or too many numbers)."""
    if not dataclasses.is_dataclass(sampler) or isinstance(sampler, type):
        return None
    out = {f.name: _jsonable(getattr(sampler, f.name)) for f in dataclasses.fields(sampler)}
    size = sum(np.size(np.asarray(getattr(sampler, f.name), dtype=object))
               for f in dataclasses.fields(sampler))
    return None if size > _MAX_STORED else out


def _jsonable(value: Any) -> Any:
    """Arrays and tuples to lists, numpy scalars to Python numbers (recursively)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _level(x: float) -> str:
    """``0.8``, ``1.0``, ``0.25``: at most 4 significant digits, always with a decimal point."""
    text = f"{x:.4g}"
    return text if any(c in text for c in ".en") else text + ".0"


# ----------------------------------------------------------------------------------------------
# Checks


def _sampled_set(spec: ScenarioSpec, demand: np.ndarray, seed: int, start: int) -> ScenarioSet:
    n = demand.shape[0]
    names = tuple(f"scen{start + i}" for i in range(n))
    return ScenarioSet(names=names, probabilities=np.full(n, 1.0 / n), data=demand,
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
