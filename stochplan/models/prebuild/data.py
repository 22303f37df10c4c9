"""Instance data of the S&OP pre-build family (seed 002): the record, its options and the loader.

An instance is a folder holding ``instance.toml`` (the months in order, how many of them are
the first stage, the names of the data files) and the seed notebook's four tables:

``demand.csv``
    ``SCENARIO_CODE, FISCAL_MONTH, FISCAL_QUARTER, TOTAL_DEMAND, PROBABILITY`` (other columns,
    such as ``TOTAL_REVENUE``, are not used): every scenario (demand profile) gives every month
    once, with its probability on each of its rows.
``capacity.csv``
    ``MONTHLY_CAPACITY``, one row (``DAILY_CAPACITY`` is not used).
``warehouse.csv``
    ``TOTAL_CAPACITY_PALLETS, CURRENT_OCCUPANCY_PALLETS, UNITS_PER_PALLET,
    OVERFLOW_THRESHOLD_PCT``, one row.
``parameters.csv``
    ``name, value[, unit, source]``: ``PRODUCTION_COST``, ``STORAGE_COST``,
    ``SAFETY_STOCK_RATIO``, ``EXPEDITE_COST``, ``EXPEDITE_CAP``, ``LOST_SALES_PENALTY``,
    ``OVERFLOW_PENALTY``; ``OVERFLOW_THRESHOLD_PCT`` and ``UNITS_PER_PALLET`` may repeat
    warehouse.csv's values (they must then agree) and ``UNIT_PRICE`` is allowed but not used.

Everything is checked when it is read: a bad value raises :class:`~stochplan.errors.InputError`
naming the field (the column, with the row where there is one), the value and the file.

Units: quantities in units (pallets x units per pallet), money in $, time in months.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pydantic

from stochplan.data import MAX_VALUE, check_magnitude
from stochplan.errors import InputError
from stochplan.family import validate_options

__all__ = [
    "Parameters",
    "ProfileMixture",
    "PrebuildInstance",
    "PrebuildOptions",
    "load_prebuild",
    "safety_floor",
]

_PROB_TOL = 1e-9


# ----------------------------------------------------------------------------------------------
# Options and parameters


class PrebuildOptions(pydantic.BaseModel):
    """What a researcher varies without touching the data (``[model]`` of a run, ``[options]``
    of ``instance.toml``, ``--set key=value``). Unset (None), each takes the instance's value.

    Attributes
    ----------
    threshold : float or None
        Overflow threshold, fraction of the physical warehouse in (0, 1] (0.87 in the seed).
    safety_stock_ratio : float or None
        Safety stock at the end of month t = this fraction of month t+1's demand (0.15).
    expedite_cost, expedite_cap : float or None
        $ per unit expedited, and units per month at most (second-stage months only).
    lost_sales_penalty : float or None
        $ per unit of demand lost (second-stage months only).
    overflow_penalty : float or None
        $ per unit per month held above the threshold.
    deterministic : str or None
        A scenario name (``"Q4_PUSH"``): solve the seed notebook's LP as written, for that
        scenario alone with probability 1 (hard threshold cap, no overflow, expedite or lost
        sales). None: the two-stage model.
    """

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", strict=True,
                                       allow_inf_nan=False)

    threshold: float | None = pydantic.Field(
        None, gt=0.0, le=1.0, description="overflow threshold, fraction of the warehouse")
    safety_stock_ratio: float | None = pydantic.Field(
        None, ge=0.0, le=MAX_VALUE, description="safety stock, fraction of next month's demand")
    expedite_cost: float | None = pydantic.Field(None, ge=0.0, le=MAX_VALUE,
                                                 description="$ per unit expedited")
    expedite_cap: float | None = pydantic.Field(
        None, ge=0.0, le=MAX_VALUE, description="units expedited per month at most")
    lost_sales_penalty: float | None = pydantic.Field(
        None, ge=0.0, le=MAX_VALUE, description="$ per unit of demand lost")
    overflow_penalty: float | None = pydantic.Field(
        None, ge=0.0, le=MAX_VALUE, description="$ per unit-month above the threshold")
    deterministic: str | None = pydantic.Field(
        None, min_length=1, description="solve the seed's LP for this scenario alone")


@dataclass(frozen=True)
class Parameters:
    """The cost and policy coefficients (as the files give them, or with options applied).

    Attributes
    ----------
    production_cost : float
        $ per unit produced (regular production).
    storage_cost : float
        $ per unit held at the end of a month.
    safety_stock_ratio : float
        Safety stock = int(ratio x next month's demand), units.
    threshold : float
        Overflow threshold, fraction of the physical warehouse, in (0, 1].
    overflow_penalty : float
        $ per unit per month held above the threshold.
    expedite_cost : float
        $ per unit expedited (second-stage months).
    expedite_cap : float
        Units expedited per month at most.
    lost_sales_penalty : float
        $ per unit of demand lost (second-stage months).
    """

    production_cost: float
    storage_cost: float
    safety_stock_ratio: float
    threshold: float
    overflow_penalty: float
    expedite_cost: float
    expedite_cap: float
    lost_sales_penalty: float

    def check(self, source: str | Path | None, prefix: str = "parameters.") -> None:
        """Raise :class:`InputError` on a bad coefficient (naming ``prefix + field``)."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            name = prefix + f.name
            _number(name, value, source)
            if value < 0:
                raise InputError(name, value, "must be >= 0", source)
        if not 0.0 < self.threshold <= 1.0:
            raise InputError(prefix + "threshold", self.threshold,
                             "must be in (0, 1] (a fraction of the warehouse)", source)

    def with_options(self, options: PrebuildOptions) -> Parameters:
        """These parameters with the options that are set replacing them."""
        changes = {f.name: getattr(options, f.name) for f in dataclasses.fields(self)
                   if f.name in PrebuildOptions.model_fields
                   and getattr(options, f.name) is not None}
        return dataclasses.replace(self, **changes) if changes else self


def safety_floor(demand: Any, ratio: float) -> Any:
    """Safety stock for a next-month demand: ``int(demand x ratio)`` units, as the seed's
    notebook computes it (the product in floating point, then truncated); arrays element-wise.

    >>> safety_floor(15500, 0.15), safety_floor(26880.0, 0.15)
    (2325.0, 4032.0)
    """
    if np.ndim(demand) == 0:
        return float(math.floor(float(demand) * ratio))
    return np.floor(np.asarray(demand, dtype=float) * ratio)


# ----------------------------------------------------------------------------------------------
# The instance record


@dataclass(frozen=True, eq=False)
class PrebuildInstance:
    """One pre-build instance: T months, the first ``first_stage_months`` decided now.

    Demand profiles (the instance's named scenarios, the seed's BASELINE and Q4_PUSH) have
    ``profile_demand`` of shape (K, T), units per month, and ``profile_probabilities`` (K,)
    summing to 1; their first-stage months are equal. Months are numbered t = 1..T (the
    plan's ``month`` index); ``months`` holds their names.
    """

    name: str
    months: tuple[str, ...]
    quarters: tuple[str, ...]
    first_stage_months: int
    profiles: tuple[str, ...]
    profile_demand: np.ndarray  # (K, T) units/month
    profile_probabilities: np.ndarray  # (K,)
    capacity: float  # units/month of regular production
    warehouse_pallets: float  # pallets
    occupied_pallets: float  # pallets occupied before month 1
    units_per_pallet: float  # units/pallet
    parameters: Parameters  # as the data files give them; see :attr:`params`
    options: PrebuildOptions = field(default_factory=PrebuildOptions)
    description: str = ""
    source: str = ""

    family: ClassVar[str] = "prebuild"

    def __post_init__(self) -> None:
        src = self.source or None
        T = len(self.months)
        if T < 2 or len(set(self.months)) != T:
            raise InputError("months", list(self.months), "needs two or more distinct months",
                             src)
        if len(self.quarters) != T:
            raise InputError("quarters", list(self.quarters), f"expected {T}, one per month",
                             src)
        n1 = self.first_stage_months
        if isinstance(n1, bool) or not isinstance(n1, int) or not 1 <= n1 < T:
            raise InputError("first_stage_months", n1,
                             f"must be an integer in 1..{T - 1} (some months in each stage)", src)
        K = len(self.profiles)
        if K == 0 or len(set(self.profiles)) != K:
            raise InputError("scenarios", list(self.profiles),
                             "needs one or more distinct scenario names", src)
        demand = np.array(self.profile_demand, dtype=float)
        if demand.shape != (K, T) or not np.all(np.isfinite(demand)) or np.any(demand < 0):
            raise InputError("demand", f"shape {demand.shape}",
                             f"expected shape ({K}, {T}) of finite numbers >= 0", src)
        probs = np.array(self.profile_probabilities, dtype=float)
        if probs.shape != (K,) or not np.all(np.isfinite(probs)) or np.any(probs < 0):
            raise InputError("probabilities", probs.tolist(),
                             f"expected {K} probabilities >= 0, one per scenario", src)
        if not math.isclose(float(probs.sum()), 1.0, abs_tol=_PROB_TOL):
            raise InputError("probabilities", probs.tolist(),
                             f"must sum to 1 (they sum to {float(probs.sum()):.12g})", src)
        for k in range(1, K):
            differs = np.flatnonzero(demand[k, :n1] != demand[0, :n1])
            if differs.size:
                t = int(differs[0])
                raise InputError(f"demand ({self.profiles[k]}, {self.months[t]})",
                                 float(demand[k, t]), _FIRST_STAGE_DEMAND.format(
                                     other=self.profiles[0], value=float(demand[0, t]),
                                     month=self.months[t]), src)
        _number("capacity", self.capacity, src, lo=0.0)
        _number("warehouse_pallets", self.warehouse_pallets, src, lo=0.0, positive=True)
        _number("units_per_pallet", self.units_per_pallet, src, lo=0.0, positive=True)
        _number("occupied_pallets", self.occupied_pallets, src, lo=0.0,
                hi=float(self.warehouse_pallets))
        self.parameters.check(src)
        det = self.options.deterministic
        if det is not None and det not in self.profiles:
            raise InputError("model.deterministic", det, f"not a scenario of {self.name} "
                             f"(its scenarios: {', '.join(self.profiles)})", src)
        demand.setflags(write=False)
        probs.setflags(write=False)
        object.__setattr__(self, "profile_demand", demand)
        object.__setattr__(self, "profile_probabilities", probs)

    # -- sizes and labels ----------------------------------------------------------------------

    @property
    def periods(self) -> tuple[int, ...]:
        """Month numbers 1..T (the plan's ``month`` index)."""
        return tuple(range(1, len(self.months) + 1))

    @property
    def first_periods(self) -> tuple[int, ...]:
        """The first-stage months (Q3 in the seed): 1..T1."""
        return self.periods[: self.first_stage_months]

    @property
    def second_periods(self) -> tuple[int, ...]:
        """The second-stage months (Q4 in the seed): T1+1..T."""
        return self.periods[self.first_stage_months:]

    # -- options applied -----------------------------------------------------------------------

    @property
    def params(self) -> Parameters:
        """The coefficients in force: the data's, with the options that are set."""
        return self.parameters.with_options(self.options)

    @property
    def deterministic(self) -> bool:
        """Whether this is the seed notebook's LP for one scenario (``options.deterministic``)."""
        return self.options.deterministic is not None

    @property
    def active(self) -> tuple[int, ...]:
        """Positions of the profiles in play: all, or the deterministic scenario alone."""
        det = self.options.deterministic
        return (self.profiles.index(det),) if det is not None else tuple(range(len(self.profiles)))

    @property
    def active_probabilities(self) -> np.ndarray:
        """Probabilities of :attr:`active` (1 for a deterministic scenario)."""
        if self.deterministic:
            return np.ones(1)
        return np.asarray(self.profile_probabilities)

    def with_options(self, **changes: Any) -> PrebuildInstance:
        """The same instance with some options changed (validated)."""
        options = validate_options(PrebuildOptions, changes, "model", self.source,
                                   base=self.options)
        return dataclasses.replace(self, options=options)

    # -- derived data (units) ------------------------------------------------------------------

    @property
    def physical_capacity(self) -> float:
        """W_phys: warehouse pallets x units per pallet."""
        return float(self.warehouse_pallets * self.units_per_pallet)

    @property
    def safe_capacity(self) -> float:
        """W_safe = int(W_phys x threshold), units (the notebook's MAX_SAFE_INVENTORY)."""
        return float(math.floor(self.physical_capacity * self.params.threshold))

    @property
    def initial_inventory(self) -> float:
        """I_0: occupied pallets x units per pallet."""
        return float(self.occupied_pallets * self.units_per_pallet)

    @property
    def first_stage_demand(self) -> np.ndarray:
        """Demand of the first-stage months, (T1,) units (the same in every scenario)."""
        return np.asarray(self.profile_demand[0, : self.first_stage_months])

    @property
    def second_stage_profiles(self) -> np.ndarray:
        """Second-stage demand of the active profiles, (K', T - T1) units."""
        return np.asarray(self.profile_demand[list(self.active), self.first_stage_months:])

    @property
    def first_stage_floors(self) -> np.ndarray:
        """Safety stock of each first-stage month t, (T1,) units:
        int(ratio x max over the active profiles of D[t+1])."""
        nxt = self.profile_demand[list(self.active), 1: self.first_stage_months + 1].max(axis=0)
        return np.asarray(safety_floor(nxt, self.params.safety_stock_ratio))

    def second_stage_floors(self, demand: np.ndarray) -> np.ndarray:
        """Safety stock of each second-stage month but the last, (T - T1 - 1,) units, for one
        scenario's second-stage ``demand``: int(ratio x D[t+1])."""
        return np.asarray(safety_floor(np.asarray(demand, dtype=float)[1:],
                                       self.params.safety_stock_ratio))

    def demand_path(self, second: np.ndarray) -> np.ndarray:
        """Full demand (..., T) from second-stage demand (..., T - T1)."""
        second = np.asarray(second, dtype=float)
        first = np.broadcast_to(self.first_stage_demand, (*second.shape[:-1],
                                                          self.first_stage_months))
        return np.concatenate([first, second], axis=-1)


_FIRST_STAGE_DEMAND = (
    "differs from {other}'s {value:g}: {month} is a first-stage month, decided before the "
    "scenario is known, so its demand must be the same in every scenario (else the first "
    "stage is not well defined)"
)


# ----------------------------------------------------------------------------------------------
# Loading

_TOML_KEYS = ("family", "name", "description", "months", "first_stage_months", "data",
              "options")
_FILES = {"demand": "demand.csv", "capacity": "capacity.csv", "warehouse": "warehouse.csv",
          "parameters": "parameters.csv"}
#: parameters.csv names -> Parameters fields (None: allowed, checked or not used).
_PARAMETER_NAMES: dict[str, str | None] = {
    "PRODUCTION_COST": "production_cost",
    "STORAGE_COST": "storage_cost",
    "SAFETY_STOCK_RATIO": "safety_stock_ratio",
    "OVERFLOW_PENALTY": "overflow_penalty",
    "EXPEDITE_COST": "expedite_cost",
    "EXPEDITE_CAP": "expedite_cap",
    "LOST_SALES_PENALTY": "lost_sales_penalty",
    "OVERFLOW_THRESHOLD_PCT": None,  # repeats warehouse.csv's
    "UNITS_PER_PALLET": None,  # repeats warehouse.csv's
    "UNIT_PRICE": None,  # revenue only: not part of the cost model
}


def load_prebuild(folder: Path, meta: dict[str, Any], toml_path: Path) -> PrebuildInstance:
    """Read a pre-build instance from its parsed ``instance.toml`` and the files it names."""
    for key in meta:
        if key not in _TOML_KEYS:
            raise InputError(key, meta[key], f"unknown key (known: {', '.join(_TOML_KEYS)})",
                             toml_path)
    months = meta.get("months")
    if (not isinstance(months, list) or len(months) < 2
            or not all(isinstance(m, str) and m.strip() for m in months)
            or len({m.strip() for m in months}) != len(months)):
        raise InputError("months", months, "needs a list of two or more distinct month names",
                         toml_path)
    months = [m.strip() for m in months]
    n1 = meta.get("first_stage_months")
    if isinstance(n1, bool) or not isinstance(n1, int) or not 1 <= n1 < len(months):
        raise InputError("first_stage_months", n1, f"must be an integer in 1..{len(months) - 1} "
                         "(some months in each stage)", toml_path)
    files = meta.get("data", {})
    if not isinstance(files, dict):
        raise InputError("data", files, "must be a [data] table of file names", toml_path)
    paths = {}
    for key, value in files.items():
        if key not in _FILES:
            raise InputError(f"data.{key}", value, f"unknown file (known: {', '.join(_FILES)})",
                             toml_path)
    for key, default in _FILES.items():
        name = files.get(key, default)
        path = folder / str(name)
        if not path.is_file():
            raise InputError(f"data.{key}", str(name), "file not found", toml_path)
        paths[key] = path
    options_meta = meta.get("options", {})
    if not isinstance(options_meta, dict):
        raise InputError("options", options_meta, "must be an [options] table", toml_path)
    options = validate_options(PrebuildOptions, dict(options_meta), "options", toml_path)

    demand = _read_demand(paths["demand"], months, n1)
    capacity = _read_row(paths["capacity"], ("MONTHLY_CAPACITY",))
    _number("MONTHLY_CAPACITY", capacity["MONTHLY_CAPACITY"], paths["capacity"], lo=0.0)
    warehouse = _read_warehouse(paths["warehouse"])
    parameters = _read_parameters(paths["parameters"], warehouse, paths["warehouse"])

    return PrebuildInstance(
        name=str(meta.get("name", folder.name)),
        description=str(meta.get("description", "")),
        months=tuple(months),
        quarters=demand["quarters"],
        first_stage_months=n1,
        profiles=demand["profiles"],
        profile_demand=demand["demand"],
        profile_probabilities=demand["probabilities"],
        capacity=capacity["MONTHLY_CAPACITY"],
        warehouse_pallets=warehouse["TOTAL_CAPACITY_PALLETS"],
        occupied_pallets=warehouse["CURRENT_OCCUPANCY_PALLETS"],
        units_per_pallet=warehouse["UNITS_PER_PALLET"],
        parameters=parameters,
        options=options,
        source=str(toml_path),
    )


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError("file", path.name, f"not a readable CSV ({err})", path) from None
    df.columns = [str(c).strip() for c in df.columns]
    for col in required:
        if col not in df.columns:
            raise InputError("column", col, f"missing (columns found: {', '.join(df.columns)})",
                             path)
    for col in df.columns:
        df[col] = df[col].str.strip()
    if df.empty:
        raise InputError("file", path.name, "has no data rows", path)
    return df


def _numbers(df: pd.DataFrame, col: str, path: Path, what: str = "a number",
             label: str | None = None) -> np.ndarray:
    """Column ``col`` as floats; an empty or non-numeric cell names its row (and the row's
    ``label`` column, when given: the parameter's name)."""
    values = pd.to_numeric(df[col], errors="coerce").astype(float).to_numpy()

    def where(row: int) -> str:
        return f"{col} (row {row + 2}{', ' + str(df[label].iloc[row]) if label else ''})"

    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        cell = df[col].iloc[row]
        problem = "missing" if cell == "" else f"not {what}"
        raise InputError(where(row), cell, problem, path)
    if (np.abs(values) > MAX_VALUE).any():
        row = int(np.flatnonzero(np.abs(values) > MAX_VALUE)[0])
        check_magnitude(where(row), float(values[row]), path)
    return values


def _read_demand(path: Path, months: list[str], n1: int) -> dict[str, Any]:
    """Profiles, their (K, T) demand, probabilities and the quarter of each month."""
    df = _read_csv(path, ("SCENARIO_CODE", "FISCAL_MONTH", "FISCAL_QUARTER", "TOTAL_DEMAND",
                          "PROBABILITY"))
    for row, code in enumerate(df["SCENARIO_CODE"]):
        if not code:
            raise InputError(f"SCENARIO_CODE (row {row + 2})", code, "missing", path)
    month_pos = {m: i for i, m in enumerate(months)}
    for row, month in enumerate(df["FISCAL_MONTH"]):
        if month not in month_pos:
            raise InputError(f"FISCAL_MONTH (row {row + 2})", month,
                             f"not one of instance.toml's months ({', '.join(months)})", path)
    demand = _numbers(df, "TOTAL_DEMAND", path)
    if (demand < 0).any():
        row = int(np.flatnonzero(demand < 0)[0])
        raise InputError(f"TOTAL_DEMAND (row {row + 2})", float(demand[row]), "must be >= 0",
                         path)
    for row, cell in enumerate(df["PROBABILITY"]):
        if cell == "":
            raise InputError(f"PROBABILITY (row {row + 2})", cell,
                             f"missing: scenario {df['SCENARIO_CODE'].iloc[row]} needs a "
                             "probability (the same on each of its rows)", path)
    prob = _numbers(df, "PROBABILITY", path)
    if ((prob < 0) | (prob > 1)).any():
        row = int(np.flatnonzero((prob < 0) | (prob > 1))[0])
        raise InputError(f"PROBABILITY (row {row + 2})", float(prob[row]), "must be in [0, 1]",
                         path)

    profiles = tuple(dict.fromkeys(df["SCENARIO_CODE"]))
    K, T = len(profiles), len(months)
    table = np.full((K, T), np.nan)
    probabilities = np.full(K, np.nan)
    quarters: list[str | None] = [None] * T
    for row, (code, month, quarter) in enumerate(zip(df["SCENARIO_CODE"], df["FISCAL_MONTH"],
                                                     df["FISCAL_QUARTER"], strict=True)):
        k, t = profiles.index(code), month_pos[month]
        if not np.isnan(table[k, t]):
            raise InputError(f"FISCAL_MONTH (row {row + 2})", month,
                             f"appears twice for scenario {code}", path)
        table[k, t] = demand[row]
        if np.isnan(probabilities[k]):
            probabilities[k] = prob[row]
        elif prob[row] != probabilities[k]:
            raise InputError(f"PROBABILITY (row {row + 2})", float(prob[row]),
                             f"differs from scenario {code}'s other rows "
                             f"({probabilities[k]:g})", path)
        if quarters[t] is None:
            quarters[t] = quarter
        elif quarter != quarters[t]:
            raise InputError(f"FISCAL_QUARTER (row {row + 2})", quarter,
                             f"differs from {month}'s quarter in other rows ({quarters[t]})",
                             path)
    for k, code in enumerate(profiles):
        missing = [months[t] for t in range(T) if np.isnan(table[k, t])]
        if missing:
            raise InputError("FISCAL_MONTH", missing[0], f"missing for scenario {code} (every "
                             "scenario gives each of instance.toml's months once)", path)
    total = float(probabilities.sum())
    if not math.isclose(total, 1.0, abs_tol=_PROB_TOL):
        raise InputError("PROBABILITY", {p: float(x) for p, x in zip(profiles, probabilities)},
                         f"the scenarios' probabilities must sum to 1 (they sum to {total:.12g})",
                         path)
    for k in range(1, K):
        differs = np.flatnonzero(table[k, :n1] != table[0, :n1])
        if differs.size:
            t = int(differs[0])
            raise InputError(f"TOTAL_DEMAND ({profiles[k]}, {months[t]})", float(table[k, t]),
                             _FIRST_STAGE_DEMAND.format(other=profiles[0],
                                                        value=float(table[0, t]),
                                                        month=months[t]), path)
    return {"profiles": profiles, "demand": table, "probabilities": probabilities,
            "quarters": tuple(str(q) for q in quarters)}


def _read_row(path: Path, columns: tuple[str, ...]) -> dict[str, float]:
    """The numbers of a one-row table."""
    df = _read_csv(path, columns)
    if len(df) != 1:
        raise InputError("rows", len(df), "expected exactly one data row", path)
    return {col: float(_numbers(df, col, path)[0]) for col in columns}


def _read_warehouse(path: Path) -> dict[str, float]:
    row = _read_row(path, ("TOTAL_CAPACITY_PALLETS", "CURRENT_OCCUPANCY_PALLETS",
                           "UNITS_PER_PALLET", "OVERFLOW_THRESHOLD_PCT"))
    _number("TOTAL_CAPACITY_PALLETS", row["TOTAL_CAPACITY_PALLETS"], path, lo=0.0,
            positive=True)
    _number("UNITS_PER_PALLET", row["UNITS_PER_PALLET"], path, lo=0.0, positive=True)
    _number("CURRENT_OCCUPANCY_PALLETS", row["CURRENT_OCCUPANCY_PALLETS"], path, lo=0.0,
            hi=row["TOTAL_CAPACITY_PALLETS"])
    threshold = row["OVERFLOW_THRESHOLD_PCT"]
    if not 0.0 < threshold <= 1.0:
        raise InputError("OVERFLOW_THRESHOLD_PCT", threshold,
                         "must be in (0, 1] (a fraction of the warehouse)", path)
    return row


def _read_parameters(path: Path, warehouse: Mapping[str, float],
                     warehouse_path: Path) -> Parameters:
    df = _read_csv(path, ("name", "value"))
    names = [n.upper() for n in df["name"]]
    values = _numbers(df, "value", path, label="name")
    found: dict[str, float] = {}
    for row, (name, value) in enumerate(zip(names, values, strict=True)):
        if name not in _PARAMETER_NAMES:
            raise InputError(f"name (row {row + 2})", df["name"].iloc[row],
                             f"unknown parameter (known: {', '.join(_PARAMETER_NAMES)})", path)
        if name in found:
            raise InputError(f"name (row {row + 2})", name, "appears twice", path)
        found[name] = float(value)
    for name in ("OVERFLOW_THRESHOLD_PCT", "UNITS_PER_PALLET"):
        if name in found and found[name] != warehouse[name]:
            raise InputError(name, found[name], f"differs from {warehouse_path.name}'s "
                             f"{warehouse[name]:g}", path)
    kwargs: dict[str, float] = {"threshold": warehouse["OVERFLOW_THRESHOLD_PCT"]}
    for name, attr in _PARAMETER_NAMES.items():
        if attr is None:
            continue
        if name not in found:
            raise InputError("name", name, "missing (a row of this parameter is needed)", path)
        value = found[name]
        if value < 0:
            raise InputError(name, value, "must be >= 0", path)
        kwargs[attr] = value
    return Parameters(**kwargs)


# ----------------------------------------------------------------------------------------------
# Checks


def _number(name: str, value: Any, source: str | Path | None, lo: float | None = None,
            hi: float | None = None, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(name, value, "must be a number", source)
    value = float(value)
    if not math.isfinite(value):
        raise InputError(name, value, "must be finite", source)
    if positive and value <= 0:
        raise InputError(name, value, "must be > 0", source)
    if lo is not None and value < lo:
        raise InputError(name, value, f"must be >= {lo:g}", source)
    if hi is not None and value > hi:
        raise InputError(name, value, f"must be <= {hi:g}", source)
    check_magnitude(name, value, source)
    return value


# ----------------------------------------------------------------------------------------------
# Sampled scenarios


@dataclass(frozen=True, eq=False)
class ProfileMixture:
    """Sampler of second-stage demand around a mixture of the instance's demand profiles.

    Scenario ``k`` of base seed ``seed`` draws from ``np.random.default_rng([seed, k])`` and
    nothing else: first a profile, with its probability, then each month's demand, Poisson
    with that profile's demand as its mean. So scenario k is the same whether it is drawn
    alone (on an MPI rank) or in a batch, whatever the batch size.

    Attributes
    ----------
    profiles : ndarray, shape (K, T2)
        Second-stage demand of each profile, units per month.
    probabilities : ndarray, shape (K,)
        Probability of each profile (summing to 1).
    """

    profiles: np.ndarray
    probabilities: np.ndarray

    def __call__(self, seed: int, k: int) -> np.ndarray:
        rng = np.random.default_rng([seed, k])
        level = int(rng.choice(len(self.probabilities), p=self.probabilities))
        return rng.poisson(self.profiles[level]).astype(float)
