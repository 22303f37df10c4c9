"""A stored run as arrays and tables ready to draw: what the dashboards read, and nothing else.

:class:`RunView` wraps a :class:`~stochplan.store.StoredRun` (never live solver objects) and
turns its stored tables into the shapes the figure builders need: first-stage plan arrays
(P, T), recourse and demand arrays (S, P, T), scenario probabilities, the instance parameters
stored with the run, and, when another step stored them, the value-of-information KPIs and the
out-of-sample costs. Everything here is numpy/pandas; no Pyomo, no solver.

Units: money in $, quantities in units, labour in hours, workforce in workers, warehouse
footprint in space units (``space_per_unit`` x units).

Storage contract read here (see :func:`stochplan.run.to_record`): tables ``products``,
``composition``, ``weekly``, ``recourse``, ``scenarios``, ``demand``, ``instance_products``; the
run's ``config["instance_data"]`` (hours per worker, overtime fraction, warehouse capacities,
weeks); optional KPIs ``rp``, ``ev``, ``eev``, ``ws``, ``vss``, ``evpi`` and an optional table
``oos_costs`` (``plan``, ``scenario``, ``cost``). A table a figure needs but the run lacks raises
:class:`MissingData`, which the page assembly turns into a note instead of a chart.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from stochplan.errors import InputError
from stochplan.store import StoredRun

__all__ = [
    "FAN_THRESHOLD",
    "FIRST_STAGE",
    "VALUE_METRICS",
    "MissingData",
    "RunView",
    "as_view",
    "oos_summary",
    "weighted_quantiles",
]

#: Runs with more scenarios than this are drawn as quantile bands (fan charts), not one line
#: per scenario.
FAN_THRESHOLD = 10

#: First-stage variables of the aggregate family, (P, T) each.
FIRST_STAGE = ("X", "W", "H", "F", "R", "O")

#: Value-of-information KPIs, in display order: stored under these names by the VSS/EVPI step.
VALUE_METRICS = ("rp", "ev", "eev", "ws", "vss", "evpi")


class MissingData(InputError):
    """The stored run lacks a table or value a figure needs."""


class RunView:
    """Read-only view of one stored run for drawing.

    Parameters
    ----------
    stored : StoredRun
        A run read back with :meth:`stochplan.store.ResultsStore.get_run`.

    Notes
    -----
    Arrays are computed on first use and cached. Product order is the instance's
    (``instance_products``), week order ascending, scenario order that of the ``scenarios``
    table.
    """

    def __init__(self, stored: StoredRun) -> None:
        if not isinstance(stored, StoredRun):
            raise InputError("run", type(stored).__name__, "expected a StoredRun")
        self.stored = stored
        self.record = stored.record
        self.run_id = stored.id
        self.created = stored.created

    def __repr__(self) -> str:
        return f"RunView(run {self.run_id}: {self.record.instance}, {self.record.scenarios})"

    # -- raw pieces ----------------------------------------------------------------------------

    def table(self, name: str) -> pd.DataFrame:
        """A stored table; :class:`MissingData` if the run has none of that name."""
        try:
            return self.record.tables[name]
        except KeyError:
            raise MissingData("tables", name, f"run {self.run_id} stores no such table") from None

    def has_table(self, name: str) -> bool:
        return name in self.record.tables

    @property
    def kpis(self) -> dict[str, float]:
        return self.record.kpis

    @cached_property
    def instance_data(self) -> dict[str, Any]:
        data = self.record.config.get("instance_data")
        return dict(data) if isinstance(data, dict) else {}

    def instance_value(self, key: str) -> float:
        """A number from the run's ``config["instance_data"]`` (capacities, hours per worker)."""
        value = self.instance_data.get(key)
        if value is None:
            raise MissingData(
                "config.instance_data", key, f"run {self.run_id} does not store this value"
            )
        return float(value)

    # -- index sets ----------------------------------------------------------------------------

    @cached_property
    def products(self) -> tuple[str, ...]:
        if self.has_table("instance_products"):
            return tuple(str(p) for p in self.table("instance_products")["product"])
        return tuple(str(p) for p in pd.unique(self.record.plan["product"].dropna()))

    @cached_property
    def product_labels(self) -> dict[str, str]:
        """Product -> display name, e.g. ``"A (Monitor)"``."""
        if not self.has_table("instance_products"):
            return {p: p for p in self.products}
        inst = self.table("instance_products")
        out = {}
        for p, label in zip(inst["product"], inst["label"], strict=True):
            missing = label is None or (isinstance(label, float) and math.isnan(label))
            label = "" if missing else str(label)
            out[str(p)] = f"{p} ({label})" if label and label != str(p) else str(p)
        return out

    @cached_property
    def weeks(self) -> tuple[int, ...]:
        weeks = self.instance_data.get("weeks")
        if weeks:
            return tuple(int(t) for t in weeks)
        return tuple(sorted(int(t) for t in pd.unique(self.record.plan["week"].dropna())))

    @cached_property
    def scenario_names(self) -> tuple[str, ...]:
        return tuple(str(s) for s in self.table("scenarios")["scenario"])

    @cached_property
    def scenario_labels(self) -> tuple[str, ...]:
        """Display names: the stored labels (low/med/high) where they are distinct, else names."""
        table = self.table("scenarios")
        labels = [str(x) for x in table["label"]] if "label" in table else list(self.scenario_names)
        if len(set(labels)) != len(labels):
            return self.scenario_names
        return tuple(labels)

    @cached_property
    def probabilities(self) -> np.ndarray:
        return self.table("scenarios")["probability"].to_numpy(float)

    @property
    def n_scenarios(self) -> int:
        return int(self.record.n_scenarios)

    @property
    def fan(self) -> bool:
        """Whether scenario quantities are drawn as quantile bands (more than FAN_THRESHOLD)."""
        return self.n_scenarios > FAN_THRESHOLD

    # -- arrays --------------------------------------------------------------------------------

    @cached_property
    def plan(self) -> dict[str, np.ndarray]:
        """First-stage plan, variable -> (P, T) array (zeros for a variable not stored)."""
        plan = self.record.plan
        out = {}
        for var in FIRST_STAGE:
            rows = plan[plan["variable"] == var]
            grid = np.zeros((len(self.products), len(self.weeks)))
            if len(rows):
                pivot = rows.pivot_table(
                    index="product", columns="week", values="value", aggfunc="sum"
                )
                grid = pivot.reindex(index=list(self.products), columns=list(self.weeks))
                grid = grid.fillna(0.0).to_numpy(float)
            out[var] = grid
        return out

    @cached_property
    def recourse(self) -> dict[str, np.ndarray]:
        """Second stage, variable (``I_reg``, ``I_ovr``, ``B``, ``L``) -> (S, P, T) array."""
        table = self.table("recourse")
        out = {var: self._spt(rows) for var, rows in table.groupby("variable", sort=False)}
        zeros = np.zeros((len(self.scenario_names), len(self.products), len(self.weeks)))
        for var in ("I_reg", "I_ovr", "B", "L"):
            out.setdefault(var, zeros.copy())
        return {str(k): v for k, v in out.items()}

    @cached_property
    def demand(self) -> np.ndarray:
        """Demand per scenario, (S, P, T) units."""
        return self._spt(self.table("demand"))

    def _spt(self, rows: pd.DataFrame) -> np.ndarray:
        s_pos = {name: i for i, name in enumerate(self.scenario_names)}
        p_pos = {p: i for i, p in enumerate(self.products)}
        t_pos = {t: i for i, t in enumerate(self.weeks)}
        arr = np.zeros((len(s_pos), len(p_pos), len(t_pos)))
        s = rows["scenario"].map(s_pos)
        p = rows["product"].map(p_pos)
        t = rows["week"].astype(int).map(t_pos)
        keep = s.notna() & p.notna() & t.notna()
        arr[
            s[keep].astype(int).to_numpy(),
            p[keep].astype(int).to_numpy(),
            t[keep].astype(int).to_numpy(),
        ] = rows.loc[keep, "value"].to_numpy(float)
        return arr

    def expect(self, arr: np.ndarray) -> np.ndarray:
        """Probability-weighted mean over the scenario axis (axis 0)."""
        return np.tensordot(self.probabilities, arr, axes=1)

    def product_param(self, column: str) -> np.ndarray:
        """A per-product instance parameter (``hours_per_unit``, ``space_per_unit``...), (P,)."""
        table = self.table("instance_products").set_index("product")
        if column not in table:
            raise MissingData(
                "instance_products", column, f"run {self.run_id} stores no such column"
            )
        return table[column].reindex(list(self.products)).to_numpy(float)

    @cached_property
    def weekly(self) -> pd.DataFrame:
        return self.table("weekly")

    # -- optional results ----------------------------------------------------------------------

    @cached_property
    def value_metrics(self) -> dict[str, float]:
        """The value-of-information KPIs stored for the run (possibly none)."""
        return {k: float(self.kpis[k]) for k in VALUE_METRICS if k in self.kpis}

    @cached_property
    def oos(self) -> pd.DataFrame | None:
        """Out-of-sample costs (``plan``, ``scenario``, ``cost``) or None when not stored."""
        if not self.has_table("oos_costs"):
            return None
        table = self.table("oos_costs")
        missing = {"plan", "scenario", "cost"} - set(table.columns)
        if missing:
            raise MissingData("oos_costs", sorted(missing), "columns missing from the stored table")
        return table

    # -- text ----------------------------------------------------------------------------------

    @property
    def integer(self) -> bool:
        return bool(self.record.config.get("model", {}).get("integer", True))

    @property
    def sense(self) -> str:
        """``"min"`` (costs, the aggregate family) or ``"max"``, as the value step stored it."""
        value = self.record.config.get("value")
        sense = value.get("sense") if isinstance(value, dict) else None
        return "max" if sense == "max" else "min"

    @property
    def short_name(self) -> str:
        """``run 3``."""
        return f"run {self.run_id}"

    @property
    def description(self) -> str:
        """``run 3: electronics, poisson:200 (200 scenarios, LP relaxation)``."""
        kind = "integer" if self.integer else "LP relaxation"
        return (
            f"run {self.run_id}: {self.record.instance}, {self.record.scenarios} "
            f"({self.n_scenarios} scenarios, {kind})"
        )


def as_view(run: RunView | StoredRun) -> RunView:
    """A RunView of a stored run (a RunView is returned as it is)."""
    return run if isinstance(run, RunView) else RunView(run)


def weighted_quantiles(
    values: np.ndarray, weights: np.ndarray, qs: tuple[float, ...]
) -> np.ndarray:
    """Quantiles over axis 0 of ``values`` under scenario probabilities ``weights``.

    The inverse of the weighted empirical CDF: for each q the smallest value whose cumulative
    weight reaches q (so with equal weights and q = 0.5 over 4 values, the 2nd smallest).

    Parameters
    ----------
    values : ndarray, shape (S, ...)
    weights : ndarray, shape (S,), non-negative, not all zero
    qs : tuple of float in [0, 1]

    Returns
    -------
    ndarray, shape (len(qs), ...)

    Examples
    --------
    >>> weighted_quantiles(np.array([3.0, 1.0, 2.0]), np.array([0.25, 0.5, 0.25]), (0.5, 1.0))
    array([1., 3.])
    """
    values = np.asarray(values, dtype=float)
    weights = np.asarray(weights, dtype=float)
    order = np.argsort(values, axis=0, kind="stable")
    sorted_values = np.take_along_axis(values, order, axis=0)
    w = weights[order]
    cum = np.cumsum(w, axis=0) / w.sum(axis=0)
    out = []
    for q in qs:
        idx = np.clip((cum < q - 1e-12).sum(axis=0), 0, values.shape[0] - 1)
        out.append(np.take_along_axis(sorted_values, idx[None, ...], axis=0)[0])
    return np.stack(out)


def oos_summary(oos: pd.DataFrame) -> pd.DataFrame:
    """Per plan: out-of-sample scenarios, infeasible ones, mean cost and its 95 % CI, $.

    The CI is the normal approximation mean +- 1.96 s / sqrt(n) over equally likely sampled
    scenarios. A plan infeasible in some scenario has mean +inf (and an infinite CI); the
    ``feasible_*`` columns then give the mean and CI over the scenarios where it is feasible.
    When two or more plans were evaluated on the same scenarios, ``diff_*`` columns give the
    paired difference to the first plan (this plan's cost minus the first plan's; for the
    mean-value plan against the stochastic one, an out-of-sample VSS estimate).

    Returns
    -------
    DataFrame
        ``plan``, ``n``, ``infeasible``, ``mean``, ``std``, ``ci_low``, ``ci_high``,
        ``feasible_mean``, ``feasible_ci_low``, ``feasible_ci_high``, ``diff_mean``,
        ``diff_ci_low``, ``diff_ci_high`` (NaN where undefined).

    Examples
    --------
    >>> oos = pd.DataFrame({"plan": ["a", "a", "b", "b"], "scenario": [0, 1, 0, 1],
    ...                     "cost": [1.0, 3.0, 2.0, float("inf")]})
    >>> oos_summary(oos)[["plan", "infeasible", "mean", "feasible_mean"]]
      plan  infeasible  mean  feasible_mean
    0    a           0   2.0            2.0
    1    b           1   inf            2.0
    """
    rows = []
    plans = list(pd.unique(oos["plan"]))
    by_plan = {p: oos[oos["plan"] == p].set_index("scenario")["cost"].astype(float) for p in plans}
    first = by_plan[plans[0]] if plans else None
    for plan in plans:
        cost = by_plan[plan]
        values = cost.to_numpy()
        n = len(cost)
        infeasible = int(np.isposinf(values).sum())
        mean, std, lo, hi = _mean_ci(values)
        f_mean, _, f_lo, f_hi = _mean_ci(values[np.isfinite(values)])
        d_mean = d_lo = d_hi = math.nan
        if first is not None and plan != plans[0]:
            common = cost.index.intersection(first.index)
            if len(common):
                with np.errstate(invalid="ignore"):  # inf - inf: both infeasible, NaN, dropped
                    diff = cost.loc[common].to_numpy() - first.loc[common].to_numpy()
                d_mean, _, d_lo, d_hi = _mean_ci(diff)
        rows.append(
            {
                "plan": str(plan),
                "n": n,
                "infeasible": infeasible,
                "mean": mean,
                "std": std,
                "ci_low": lo,
                "ci_high": hi,
                "feasible_mean": f_mean,
                "feasible_ci_low": f_lo,
                "feasible_ci_high": f_hi,
                "diff_mean": d_mean,
                "diff_ci_low": d_lo,
                "diff_ci_high": d_hi,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "plan",
            "n",
            "infeasible",
            "mean",
            "std",
            "ci_low",
            "ci_high",
            "feasible_mean",
            "feasible_ci_low",
            "feasible_ci_high",
            "diff_mean",
            "diff_ci_low",
            "diff_ci_high",
        ],
    )


def _mean_ci(x: np.ndarray) -> tuple[float, float, float, float]:
    """(mean, std, low, high) of a 95 % normal CI; +inf mean if any value is +inf."""
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return (math.nan,) * 4
    if np.isinf(x).any():
        if np.isposinf(x).any() and np.isneginf(x).any():
            return (math.nan,) * 4
        mean = math.inf if np.isposinf(x).any() else -math.inf
        return mean, math.inf, mean, mean
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if len(x) > 1 else 0.0
    half = 1.96 * std / math.sqrt(len(x))
    return mean, std, mean - half, mean + half
