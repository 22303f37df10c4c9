"""A stored run as tables and arrays ready to draw: what the dashboards read, and nothing else.

:class:`RunView` wraps a :class:`~stochplan.store.StoredRun` (never live solver objects) of any
model family, or of a bare mpi-sppy module (``stochplan value --module``), and gives the pieces
every run may have: its stored tables and headline KPIs, the first-stage plan as a tidy table,
the scenarios (names, labels, probabilities) and their random data, the value-of-information
KPIs, the out-of-sample costs and a decomposition's convergence history. It knows no family:
:attr:`RunView.family` is the run's :class:`~stochplan.family.Family` (None when the run is not
of a family), whose panels read the family's own tables. Everything here is numpy/pandas; no
Pyomo, no solver.

Storage contract read here (see :func:`stochplan.run.to_record`): the plan (``variable``, the
family's index columns, ``value``); tables ``scenarios`` (``scenario``, ``label``,
``probability``), the scenarios' random data (a table with ``scenario``, one column per axis
and ``value``, named after what is random, e.g. ``demand``), optional ``convergence``
(``seconds``, ``iteration``, ``bound``, ``incumbent``), ``value_by_scenario`` (``scenario``,
``probability``, per-scenario objectives such as ``ws`` and ``eev``) and ``oos_costs``
(``plan``, ``scenario``, ``cost``); optional KPIs ``rp``, ``ev``, ``eev``, ``ws``, ``vss``,
``evpi``; the run's ``config`` (``value.sense``, ``model``, ``instance_data``). A table a figure
needs but the run lacks raises :class:`MissingData`.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from stochplan.errors import InputError
from stochplan.family import Family, stored_family
from stochplan.metrics.stats import mean_std_ci
from stochplan.scenarios import Distribution
from stochplan.store import StoredRun

__all__ = [
    "FAN_THRESHOLD",
    "config_differences",
    "evaluated_under",
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

#: Value-of-information KPIs, in display order: stored under these names by the VSS/EVPI step.
VALUE_METRICS = ("rp", "ev", "eev", "ws", "vss", "evpi")

#: Tables that have ``scenario`` and ``value`` columns but are not the scenarios' random data.
_NOT_SCENARIO_DATA = frozenset({"recourse", "value_by_scenario", "oos_costs", "oos_summary"})


class MissingData(InputError):
    """The stored run lacks a table or value a figure needs."""


class RunView:
    """Read-only view of one stored run for drawing, whatever its family.

    Parameters
    ----------
    stored : StoredRun
        A run read back with :meth:`stochplan.store.ResultsStore.get_run`.

    Notes
    -----
    Derived tables and arrays are computed on first use and cached. Scenario order is that of
    the ``scenarios`` table (else of ``value_by_scenario``).
    """

    def __init__(self, stored: StoredRun) -> None:
        if not isinstance(stored, StoredRun):
            raise InputError("run", type(stored).__name__, "expected a StoredRun")
        self.stored = stored
        self.record = stored.record
        self.run_id = stored.id
        self.created = stored.created

    def __repr__(self) -> str:
        rec = self.record
        return f"{type(self).__name__}(run {self.run_id}: {rec.instance}, {rec.scenarios})"

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
        """Every stored KPI: the family's headline ones and those later steps added."""
        return self.record.kpis

    @cached_property
    def family(self) -> Family | None:
        """The run's model family, or None for a run that is not of one (``value --module``)
        or whose family is no longer installed."""
        return stored_family(self.record.family)

    @cached_property
    def instance_data(self) -> dict[str, Any]:
        """The instance scalars stored in ``config["instance_data"]`` (possibly none)."""
        data = self.record.config.get("instance_data")
        return dict(data) if isinstance(data, dict) else {}

    def instance_value(self, key: str) -> float:
        """A number from the run's ``config["instance_data"]``; :class:`MissingData` if absent."""
        value = self.instance_data.get(key)
        if value is None:
            raise MissingData(
                "config.instance_data", key, f"run {self.run_id} does not store this value"
            )
        return float(value)

    # -- the first-stage plan ------------------------------------------------------------------

    @property
    def plan(self) -> pd.DataFrame:
        """The first-stage plan as stored: ``variable``, the index columns, ``value``."""
        return self.record.plan

    @cached_property
    def index_names(self) -> tuple[str, ...]:
        """The plan's index columns, in order (``("product", "week")``, ``("crop",)``, ...)."""
        return tuple(str(c) for c in self.plan.columns if c not in ("variable", "value"))

    @cached_property
    def variables(self) -> tuple[str, ...]:
        """First-stage variable names, in the plan's order."""
        if "variable" not in self.plan or self.plan.empty:
            return ()
        return tuple(str(v) for v in pd.unique(self.plan["variable"]))

    # -- scenarios -----------------------------------------------------------------------------

    @cached_property
    def _scenario_table(self) -> pd.DataFrame:
        for name in ("scenarios", "value_by_scenario"):
            if self.has_table(name) and {"scenario", "probability"} <= set(self.table(name)):
                return self.table(name)
        raise MissingData("tables", "scenarios", f"run {self.run_id} stores no such table")

    @property
    def has_scenarios(self) -> bool:
        """Whether the run stores its scenarios' names and probabilities."""
        try:
            return len(self._scenario_table) > 0
        except MissingData:
            return False

    @cached_property
    def scenario_names(self) -> tuple[str, ...]:
        return tuple(str(s) for s in self._scenario_table["scenario"])

    @cached_property
    def scenario_labels(self) -> tuple[str, ...]:
        """Display names: the stored labels (low/med/high) where they are distinct, else names."""
        table = self._scenario_table
        labels = [str(x) for x in table["label"]] if "label" in table else list(self.scenario_names)
        if len(set(labels)) != len(labels):
            return self.scenario_names
        return tuple(labels)

    @cached_property
    def probabilities(self) -> np.ndarray:
        return self._scenario_table["probability"].to_numpy(float)

    @property
    def n_scenarios(self) -> int:
        return int(self.record.n_scenarios)

    @property
    def fan(self) -> bool:
        """Whether scenario quantities are drawn as quantile bands (more than FAN_THRESHOLD)."""
        return self.n_scenarios > FAN_THRESHOLD

    def expect(self, arr: np.ndarray) -> np.ndarray:
        """Probability-weighted mean over the scenario axis (axis 0)."""
        return np.tensordot(self.probabilities, arr, axes=1)

    @cached_property
    def scenario_data_name(self) -> str | None:
        """The name of the table of the scenarios' random data (``demand``, ``yields``...), or
        None: the first stored table with ``scenario`` and ``value`` columns, no ``variable``
        column, whose scenarios are the run's."""
        if not self.has_scenarios:
            return None
        names = set(self.scenario_names)
        for name, table in self.record.tables.items():
            if name in _NOT_SCENARIO_DATA or name.startswith("oos_"):
                continue
            columns = set(table.columns)
            if (
                {"scenario", "value"} <= columns
                and "variable" not in columns
                and len(table)
                and set(table["scenario"].astype(str)) <= names
            ):
                return str(name)
        return None

    def scenario_series(self) -> tuple[str | None, tuple[Any, ...], np.ndarray]:
        """The random data of each scenario summed over all its axes but the last.

        Returns
        -------
        axis : str or None
            The last axis (``week``), None for one number per scenario.
        labels : tuple
            That axis's labels, in stored order (ascending when numeric).
        values : ndarray, shape (S, len(labels)), (S, 1) without an axis
            In the data's own unit.
        """
        name = self.scenario_data_name
        if name is None:
            raise MissingData("tables", "scenario data", f"run {self.run_id} stores none")
        table = self.table(name)
        axes = [c for c in table.columns if c not in ("scenario", "value")]
        rows = table.assign(scenario=table["scenario"].astype(str))
        if not axes:
            sums = rows.groupby("scenario", sort=False)["value"].sum()
            values = sums.reindex(list(self.scenario_names)).fillna(0.0).to_numpy(float)
            return None, (), values[:, None]
        last = axes[-1]
        labels = list(pd.unique(rows[last]))
        if all(isinstance(x, (int, float, np.integer, np.floating)) for x in labels):
            labels = sorted(labels)
        grid = rows.pivot_table(index="scenario", columns=last, values="value", aggfunc="sum")
        grid = grid.reindex(index=list(self.scenario_names), columns=labels).fillna(0.0)
        return str(last), tuple(labels), grid.to_numpy(float)

    # -- optional results ----------------------------------------------------------------------

    @cached_property
    def value_metrics(self) -> dict[str, float]:
        """The value-of-information KPIs stored for the run (possibly none)."""
        return {k: float(self.kpis[k]) for k in VALUE_METRICS if k in self.kpis}

    @cached_property
    def value_by_scenario(self) -> pd.DataFrame | None:
        """Per-scenario objectives of the value step (``scenario``, ``probability``, ``ws``,
        ``eev``...) or None when not stored."""
        if not self.has_table("value_by_scenario"):
            return None
        table = self.table("value_by_scenario")
        return table if "scenario" in table else None

    @cached_property
    def eev_infeasible(self) -> tuple[tuple[str, ...], float]:
        """The scenarios in which the mean-value plan has no feasible recourse (as the value
        step stored them, else those with an infinite ``eev`` in ``value_by_scenario``) and
        their total probability (nan when the probabilities are not stored)."""
        value = self.record.config.get("value")
        names = tuple(str(n) for n in (value or {}).get("infeasible_scenarios") or ())
        table = self.value_by_scenario
        if not names and table is not None and "eev" in table:
            names = tuple(str(n) for n in table.loc[np.isinf(table["eev"]), "scenario"])
        if not names or table is None or "probability" not in table:
            return names, math.nan
        p = table["probability"].to_numpy(float)
        chosen = table["scenario"].astype(str).isin(names).to_numpy()
        return names, float(p[chosen].sum() / p.sum())

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

    @cached_property
    def evaluated_under(self) -> str | None:
        """Where the out-of-sample scenarios came from (``mixture of Poisson around the demand
        rates, levels 0.8/1.0/1.2 weights 0.25/0.5/0.25, 2,000 draws, seed 1``), or None when
        the run stores no evaluation; see :func:`evaluated_under`."""
        if not self.has_table("oos_summary"):
            return None
        return evaluated_under(self.table("oos_summary"))[0]

    @cached_property
    def evaluation_note(self) -> str:
        """What a reader must know about the out-of-sample scenarios (empty when nothing)."""
        if not self.has_table("oos_summary"):
            return ""
        return evaluated_under(self.table("oos_summary"))[1]

    @cached_property
    def distribution(self) -> Distribution | None:
        """The distribution the run's scenarios came from, as it stored it (None for a run
        stored without one)."""
        values = self.record.config.get("distribution")
        return Distribution.from_dict(values) if isinstance(values, dict) else None

    @cached_property
    def convergence(self) -> pd.DataFrame | None:
        """A decomposition's history (``seconds``, ``iteration``, ``bound``, ``incumbent``), or
        None when the run stores none (the extensive form)."""
        if not self.has_table("convergence"):
            return None
        table = self.table("convergence")
        missing = {"iteration", "bound", "incumbent"} - set(table.columns)
        if missing:
            raise MissingData("convergence", sorted(missing), "columns missing from the table")
        return table if len(table) else None

    # -- text ----------------------------------------------------------------------------------

    @property
    def integer(self) -> bool | None:
        """Whether the model was solved with integer variables; None when the run's options do
        not say (a bare module)."""
        model = self.record.config.get("model")
        if isinstance(model, dict) and "integer" in model:
            return bool(model["integer"])
        return None

    @property
    def model_kind(self) -> str:
        """``integer``, ``LP relaxation`` or, when the options do not say, ``""``."""
        return {True: "integer", False: "LP relaxation", None: ""}[self.integer]

    @property
    def sense(self) -> str:
        """``"min"`` or ``"max"``, as the value step stored it (``"min"`` when it did not)."""
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
        kind = f", {self.model_kind}" if self.model_kind else ""
        return (
            f"run {self.run_id}: {self.record.instance}, {self.record.scenarios} "
            f"({self.n_scenarios} scenarios{kind})"
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

    The CI is Student's t, mean +- t(0.975, n - 1) s / sqrt(n) over equally likely sampled
    scenarios, from :func:`stochplan.metrics.stats.mean_std_ci`: the same interval as the
    ``oos_ci_low``/``oos_ci_high`` KPIs that ``stochplan evaluate`` stores. A plan infeasible
    in some scenario has mean +inf (the CI collapses to +inf and reads "n/a"); the
    ``feasible_*`` columns then give the mean and CI over the scenarios where it is feasible.
    When two or more plans were evaluated on the same scenarios, ``diff_*`` columns give the
    paired difference to the first plan (this plan's cost minus the first plan's; for the
    mean-value plan against the stochastic one, an out-of-sample VSS estimate). It is +-inf
    when one plan lacks recourse in a scenario where the other has one; ``both_feasible``
    then counts the scenarios where both have recourse and ``diff_feasible_*`` gives the
    paired difference over those (equal to ``diff_*`` when no plan lacks recourse).

    Returns
    -------
    DataFrame
        ``plan``, ``n``, ``infeasible``, ``mean``, ``std``, ``ci_low``, ``ci_high``,
        ``feasible_mean``, ``feasible_ci_low``, ``feasible_ci_high``, ``diff_mean``,
        ``diff_ci_low``, ``diff_ci_high``, ``both_feasible``, ``diff_feasible_mean``,
        ``diff_feasible_ci_low``, ``diff_feasible_ci_high`` (NaN where undefined; 0
        ``both_feasible`` for the first plan).

    Examples
    --------
    >>> oos = pd.DataFrame({"plan": ["a", "a", "b", "b"], "scenario": [0, 1, 0, 1],
    ...                     "cost": [1.0, 3.0, 2.0, float("inf")]})
    >>> oos_summary(oos)[["plan", "infeasible", "mean", "feasible_mean"]]
      plan  infeasible  mean  feasible_mean
    0    a           0   2.0            2.0
    1    b           1   inf            2.0
    >>> b = oos_summary(oos).iloc[1]
    >>> float(b["diff_mean"]), int(b["both_feasible"]), float(b["diff_feasible_mean"])
    (inf, 1, 1.0)
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
        mean, std, lo, hi = mean_std_ci(values)
        f_mean, _, f_lo, f_hi = mean_std_ci(values[np.isfinite(values)])
        d_mean = d_lo = d_hi = f_d_mean = f_d_lo = f_d_hi = math.nan
        both = 0
        if first is not None and plan != plans[0]:
            common = cost.index.intersection(first.index)
            if len(common):
                with np.errstate(invalid="ignore"):  # inf - inf: both infeasible, NaN, dropped
                    diff = cost.loc[common].to_numpy() - first.loc[common].to_numpy()
                d_mean, _, d_lo, d_hi = mean_std_ci(diff)
                finite = diff[np.isfinite(diff)]
                both = int(finite.size)
                f_d_mean, _, f_d_lo, f_d_hi = mean_std_ci(finite)
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
                "both_feasible": both,
                "diff_feasible_mean": f_d_mean,
                "diff_feasible_ci_low": f_d_lo,
                "diff_feasible_ci_high": f_d_hi,
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
            "both_feasible",
            "diff_feasible_mean",
            "diff_feasible_ci_low",
            "diff_feasible_ci_high",
        ],
    )


def evaluated_under(summary: pd.DataFrame) -> tuple[str, str]:
    """(text, note) of an out-of-sample evaluation from its stored ``oos_summary`` table:
    the ``evaluated_under`` and ``evaluation_note`` columns that ``evaluate`` stores; for an
    evaluation stored before them, the spec and seed it drew with, and a note that its
    distribution was not stored.

    Examples
    --------
    >>> old = pd.DataFrame({"plan": ["a"], "scenarios": ["poisson:2000"], "seed": [1]})
    >>> evaluated_under(old)[0]
    'poisson:2000 scenarios, seed 1 (distribution not stored)'
    """
    if not len(summary):
        return "", ""
    row = summary.iloc[0]
    if "evaluated_under" in summary and isinstance(row["evaluated_under"], str):
        note = row.get("evaluation_note", "")
        return row["evaluated_under"], note if isinstance(note, str) else ""
    spec = row.get("scenarios", "fresh")
    seed = row.get("seed")
    seed_text = "" if seed is None or (isinstance(seed, float) and math.isnan(seed)) else (
        f", seed {int(seed)}")
    return (f"{spec} scenarios{seed_text} (distribution not stored)",
            "This evaluation was stored without the distribution it drew from (by an older "
            "stochplan); the levels of the run's [scenarios] section were used, which need "
            "not be the distribution its plan was made for.")


#: Stored configuration keys that say where a run was written or read, not what it computed.
_NOT_COMPARED = frozenset({"db", "instance_data.source"})
#: Sections of the stored configuration that hold what an analysis found, not its inputs.
_RESULTS = ("value.",)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"model": {"integer": True}}`` -> ``{"model.integer": True}`` (lists kept whole)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def run_settings(view: RunView | StoredRun) -> dict[str, Any]:
    """What a run was computed from, as flat ``section.key -> value``: the instance, family,
    scenario spec and seed, number of scenarios, method, model and solver options and the
    rest of the stored configuration (without where it was stored)."""
    rec = as_view(view).record
    settings: dict[str, Any] = {
        "instance": rec.instance, "family": rec.family, "scenarios.spec": rec.scenarios,
        "scenarios.seed": rec.seed, "scenarios.n": rec.n_scenarios, "method": rec.method,
    }
    config = dict(rec.config)
    law = config.pop("distribution", None)
    if isinstance(law, dict):  # one line, not its rates and parameters
        try:
            settings["scenarios.distribution"] = Distribution.from_dict(law).describe()
        except InputError:
            settings["scenarios.distribution"] = "unreadable"
    for key, value in _flatten(config).items():
        if key in _NOT_COMPARED or key.startswith(_RESULTS):
            continue
        if key in ("scenarios.spec", "scenarios.seed") and value is None:
            continue
        settings[key] = value
    return settings


def config_differences(views: list[RunView] | list[StoredRun]) -> pd.DataFrame:
    """The settings (:func:`run_settings`) in which the runs differ: one row per setting
    (``setting``, then one column ``run <id>`` per run, ``—`` where a run lacks it), instance,
    scenarios, method and model first. Empty (no rows) when the runs were computed alike."""
    runs = [as_view(v) for v in views]
    settings = [run_settings(v) for v in runs]
    order = ("instance", "family", "scenarios", "method", "model", "solver")
    keys: list[str] = []
    for s in settings:
        keys += [k for k in s if k not in keys]
    keys.sort(key=lambda k: (order.index(k.split(".")[0]) if k.split(".")[0] in order
                             else len(order)))
    missing = object()
    rows = []
    for key in keys:
        values = [s.get(key, missing) for s in settings]
        if all(_same(values[0], v) for v in values[1:]):
            continue
        rows.append({"setting": key, **{
            f"run {v.run_id}": ("—" if x is missing else _shown(x)) for v, x in zip(runs, values)
        }})
    return pd.DataFrame(rows, columns=["setting", *(f"run {v.run_id}" for v in runs)])


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b) if type(a) is type(b) or {type(a), type(b)} <= {int, float} else False


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ", ".join(_shown(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)
