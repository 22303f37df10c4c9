"""Statistics of cost samples: mean with a confidence interval, quantiles, CVaR.

Pure functions on numbers. Costs are $ (smaller is better); +inf marks a scenario in which a
plan has no feasible recourse. Confidence intervals use Student's t.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from stochplan.errors import InputError


@dataclass(frozen=True)
class CostSummary:
    """Summary of a plan's cost over M scenarios (equally likely unless weights are given).

    ``mean`` is +inf when the plan is infeasible in any scenario; the ``feasible_*`` fields then
    describe the feasible scenarios only. ``ci_low``/``ci_high`` bound the mean at ``level``.
    ``cvar`` is the conditional value at risk at ``cvar_level``: the expected cost in the worst
    ``1 - cvar_level`` fraction of scenarios.
    """

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    level: float
    quantiles: dict[str, float]
    cvar: float
    cvar_level: float
    prob_infeasible: float
    feasible_mean: float
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def t_half_width(std: float, n: int, level: float = 0.95, two_sided: bool = True) -> float:
    """Half-width of Student's t confidence interval for a mean: t * std / sqrt(n).

    Parameters
    ----------
    std
        Sample standard deviation (``ddof=1``) of the ``n`` i.i.d. values, in their units.
    n
        Number of values (at least 2); the t quantile has ``n - 1`` degrees of freedom.
    level
        Confidence level in (0, 1), e.g. 0.95.
    two_sided
        True for ``mean +- half`` (quantile ``(1 + level) / 2``), False for a one-sided bound
        ``mean + half`` (quantile ``level``).

    Examples
    --------
    >>> round(t_half_width(1.0, 5), 6)  # t(0.975, 4) / sqrt(5)
    1.241664
    """
    if n < 2:
        raise InputError("n", n, "a confidence interval needs at least 2 values")
    if not 0.0 < level < 1.0:
        raise InputError("level", level, "must be in (0, 1)")
    q = 0.5 + level / 2.0 if two_sided else level
    return float(stats.t.ppf(q, n - 1) * std / math.sqrt(n))


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided ``level`` confidence interval (Student's t) of i.i.d. values.

    The one confidence interval of the package: the KPIs, the ``evaluate`` command, the
    dashboards' tables and charts all use it (through :func:`mean_std_ci`). With one value the
    interval is that value; with a non-finite value the bounds are NaN.

    Examples
    --------
    >>> mean, low, high = mean_ci(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    >>> mean, round(low, 4), round(high, 4)
    (3.0, 1.0368, 4.9632)
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise InputError("values", "[]", "need at least one value")
    mean = float(x.mean())
    if x.size < 2 or not np.all(np.isfinite(x)):
        return mean, (mean if x.size < 2 else math.nan), (mean if x.size < 2 else math.nan)
    half = t_half_width(float(x.std(ddof=1)), int(x.size), level)
    return mean, mean - half, mean + half


def mean_std_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, sample standard deviation and :func:`mean_ci` bounds of values that may be +-inf.

    For the tables of plans that may be infeasible in some scenario (cost +inf): NaN values
    are dropped; no values gives NaN throughout; a +inf (or -inf) value gives the mean +inf
    (-inf), std +inf and both bounds equal to the mean; +inf and -inf together give NaN. One
    value has std 0 and the interval is that value. Finite values get the Student-t interval
    of :func:`mean_ci`.

    Returns
    -------
    tuple
        ``(mean, std, ci_low, ci_high)``, in the values' units.

    Examples
    --------
    >>> mean_std_ci(np.array([1.0, np.inf]))
    (inf, inf, inf, inf)
    """
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return (math.nan,) * 4
    if np.isinf(x).any():
        if np.isposinf(x).any() and np.isneginf(x).any():
            return (math.nan,) * 4
        mean = math.inf if np.isposinf(x).any() else -math.inf
        return mean, math.inf, mean, mean
    mean, low, high = mean_ci(x, level)
    std = float(x.std(ddof=1)) if x.size > 1 else 0.0
    return mean, std, low, high


def cvar(values: np.ndarray, level: float = 0.95, weights: np.ndarray | None = None) -> float:
    """Conditional value at risk of costs at ``level`` (Rockafellar-Uryasev, exact for discrete
    distributions): VaR + E[(X - VaR)+] / (1 - level), VaR the ``level`` quantile."""
    if not 0.0 <= level < 1.0:
        raise InputError("cvar_level", level, "must be in [0, 1)")
    x = np.asarray(values, dtype=float)
    w = (np.full(x.size, 1.0 / x.size) if weights is None
         else np.asarray(weights, float) / np.sum(weights))
    order = np.argsort(x)
    x, w = x[order], w[order]
    cum = np.cumsum(w)
    var = float(x[min(int(np.searchsorted(cum, level, side="right")), x.size - 1)])
    if math.isinf(var):
        return math.inf
    tail = np.where(x > var, w * (x - var), 0.0)
    if np.any(np.isinf(x[x > var])):
        return math.inf
    return var + float(tail.sum()) / (1.0 - level)


def summarize_costs(
    costs: np.ndarray,
    level: float = 0.95,
    cvar_level: float = 0.95,
    quantiles: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95),
) -> CostSummary:
    """Summarise i.i.d., equally likely scenario costs (+inf = infeasible)."""
    x = np.asarray(costs, dtype=float)
    if x.size == 0:
        raise InputError("costs", "[]", "need at least one scenario")
    infeasible = np.isinf(x)
    feasible = x[~infeasible]
    mean, low, high = mean_ci(x, level)
    with np.errstate(invalid="ignore"):  # quantiles through +inf (infeasible) costs
        qs = {f"q{round(100 * q):02d}": float(np.quantile(x, q)) for q in quantiles}
    return CostSummary(
        n=int(x.size),
        mean=mean,
        std=float(x.std(ddof=1)) if x.size > 1 and not infeasible.any() else math.nan,
        ci_low=low,
        ci_high=high,
        level=level,
        quantiles=qs,
        cvar=cvar(x, cvar_level),
        cvar_level=cvar_level,
        prob_infeasible=float(infeasible.mean()),
        feasible_mean=float(feasible.mean()) if feasible.size else math.nan,
    )


@dataclass(frozen=True)
class RiskValue:
    """A plan's cost distribution under the mean-CVaR measure.

    Losses are costs for a minimising family and negative profits for a maximising one.
    ``expected`` is in the family's own units (expected cost, or expected profit);
    ``value_at_risk`` and ``cvar`` are of the loss, at level ``alpha``; ``objective`` is the
    measure in the family's sense: ``(1 - weight) E[cost] + weight CVaR(cost)`` for
    minimisation, ``(1 - weight) E[profit] - weight CVaR(-profit)`` for maximisation.
    """

    alpha: float
    weight: float
    sense: str
    expected: float
    value_at_risk: float
    cvar: float
    objective: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def value_at_risk(values: np.ndarray, level: float = 0.95,
                  weights: np.ndarray | None = None) -> float:
    """The ``level`` quantile of costs: the smallest x with P(cost <= x) >= level (up to a
    rounding tolerance of 1e-12 on the cumulative probabilities)."""
    if not 0.0 <= level < 1.0:
        raise InputError("cvar_level", level, "must be in [0, 1)")
    x = np.asarray(values, dtype=float)
    w = (np.full(x.size, 1.0 / x.size) if weights is None
         else np.asarray(weights, float) / np.sum(weights))
    order = np.argsort(x, kind="stable")
    cum = np.cumsum(w[order])
    k = int(np.searchsorted(cum, level - 1e-12, side="left"))
    return float(x[order][min(k, x.size - 1)])


def risk_value(values: np.ndarray, probabilities: np.ndarray | None, alpha: float,
               weight: float, sense: str = "min") -> RiskValue:
    """The mean-CVaR measure of a plan's per-scenario objective values.

    ``values`` are the family's objective per scenario (costs for ``sense="min"``, profits for
    ``"max"``; +inf cost or -inf profit where the plan is infeasible). CVaR is Rockafellar and
    Uryasev's, exact for a discrete distribution (:func:`cvar`), so it equals the optimum of
    their extensive form ``min_eta eta + E[(loss - eta)+] / (1 - alpha)``.
    """
    if sense not in ("min", "max"):
        raise InputError("sense", sense, "expected 'min' or 'max'")
    if not 0.0 < alpha < 1.0:
        raise InputError("risk.alpha", alpha, "must be in (0, 1)")
    if not 0.0 <= weight <= 1.0:
        raise InputError("risk.weight", weight, "must be in [0, 1]")
    x = np.asarray(values, dtype=float)
    p = (np.full(x.size, 1.0 / x.size) if probabilities is None
         else np.asarray(probabilities, float) / np.sum(probabilities))
    loss = x if sense == "min" else -x
    bad = np.isinf(loss) & (p > 0)
    if bad.any():
        expected_loss = var = cv = math.inf
    else:
        expected_loss = float(p @ loss)
        var = value_at_risk(loss, alpha, p)
        cv = cvar(loss, alpha, p)
    measure = (1.0 - weight) * expected_loss + weight * cv if weight > 0 else expected_loss
    sign = 1.0 if sense == "min" else -1.0
    return RiskValue(alpha=float(alpha), weight=float(weight), sense=sense,
                     expected=sign * expected_loss, value_at_risk=var, cvar=cv,
                     objective=sign * measure)
