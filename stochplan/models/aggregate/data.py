"""Instance data of the aggregate workforce/production/inventory family (its records and loader).

An instance is a folder with ``instance.toml`` (products, capacities, option defaults) and a CSV
of per-(product, week) costs and demands (the seed's ``product_data.csv`` layout). Everything is
validated when the record is built: a bad value raises :class:`~stochplan.errors.InputError`
naming the field, the value and the file.

The CSV's ``<level>_demand`` and ``prob_<level>`` columns (``low``, ``med``, ``high`` in the
seed) are the instance's named scenarios. If they were made as one Poisson draw around a
multiple of ``base_demand`` each, ``instance.toml`` says so with the top-level key
``named_levels``, one positive multiple per level in column order (the electronics instance:
``named_levels = [0.8, 1.0, 1.2]``); then a three-point run's scenarios are draws of that
mixture, weighted by the levels' probabilities, and ``evaluate`` and ``simulate`` sample it.
Without the key the named scenarios are taken for what they are and no more: out of sample, the
instance's sampling distribution (Poisson around ``base_demand``) stands in, with a note. The
top-level keys are ``family``, ``name``, ``description``, ``data``, ``named_levels`` and the
tables ``[products.NAME]``, ``[capacity]`` and ``[options]``; any other is an error.

Units: money in $, time in weeks, labour in hours, space in warehouse space units.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pydantic

from stochplan.data import MAX_VALUE, check_magnitude
from stochplan.errors import InputError
from stochplan.family import validate_options

log = logging.getLogger(__name__)

#: Per-(product, week) cost columns of the CSV, all in $ (per unit, per hour or per worker).
COST_COLUMNS = (
    "unit_production_cost",
    "unit_holding_cost",
    "unit_backorder_cost",
    "unit_reg_labor_cost",
    "unit_ot_labor_cost",
    "hiring_cost",
    "firing_cost",
)
_REQUIRED_COLUMNS = ("product", "t", "base_demand", *COST_COLUMNS)
#: Top-level keys of an aggregate ``instance.toml`` (any other is an error).
_TOP_KEYS = ("family", "name", "description", "data", "named_levels", "products", "capacity",
             "options")
_PRODUCT_FIELDS = (
    "hours_per_unit",
    "space_per_unit",
    "initial_workforce",
    "initial_inventory",
    "price",
)


class ModelOptions(pydantic.BaseModel):
    """What a researcher varies without touching data or code (``[model]`` in a run
    configuration, ``[options]`` in ``instance.toml``, ``--set key=value`` on the command line).

    Attributes
    ----------
    integer : bool
        Production and second-stage quantities integer (False: the LP relaxation).
    backorder_fraction : float
        Backorders in a week are at most this fraction of that week's demand, in [0, 1].
    overflow_capacity : float
        Overflow warehouse capacity, space units.
    overflow_cost_multiplier : float
        Overflow holding cost per unit = multiplier x regular holding cost (3 in the seed).
    wage_per_worker : float
        $ per worker per week, charged on the workforce W (0 in the seed, where hiring and
        firing then never pay).
    lost_sales_penalty : float or None
        $ per unit of demand lost. None: no lost sales (the seed). A number adds a lost-sales
        variable L to the balance, which gives the model complete recourse.
    """

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", strict=True,
                                       allow_inf_nan=False)

    integer: bool = pydantic.Field(True, description="production and recourse integer")
    backorder_fraction: float = pydantic.Field(
        0.4, ge=0.0, le=1.0, description="backorders at most this fraction of demand")
    overflow_capacity: float = pydantic.Field(
        500.0, ge=0.0, le=MAX_VALUE, description="overflow warehouse capacity, space units")
    overflow_cost_multiplier: float = pydantic.Field(
        3.0, ge=0.0, le=MAX_VALUE, description="overflow holding cost / regular holding cost")
    wage_per_worker: float = pydantic.Field(
        0.0, ge=0.0, le=MAX_VALUE, description="$ per worker per week")
    lost_sales_penalty: float | None = pydantic.Field(
        None, ge=0.0, le=MAX_VALUE,
        description="$ per unit of demand lost (gives complete recourse; "
        "default none)")

    def replace(self, **changes: Any) -> ModelOptions:
        """A copy with some options changed (validated again)."""
        return validate_options(ModelOptions, changes, "options", base=self)

    @classmethod
    def from_mapping(cls, values: dict[str, Any], source: str | Path | None = None) -> ModelOptions:
        """Build from a TOML table; unknown keys and bad values name the key and the file."""
        return validate_options(cls, values, "options", source)


@dataclass(frozen=True)
class AggregateInstance:
    """One aggregate planning instance: P products over T weeks.

    Arrays indexed ``[p, t]`` have shape (P, T) and follow ``products`` and weeks 1..T.
    ``levels`` hold the instance's own discrete demand scenarios (the seed's low/med/high),
    ``level_demand`` has shape (K, P, T) and ``level_probabilities`` sums to 1.
    ``named_levels`` (K positive numbers, or None) declares how those scenarios were made:
    level k's demand is one Poisson draw around ``named_levels[k] x base_demand`` (the seed:
    0.8/1.0/1.2); see :attr:`stochplan.scenarios.Uncertainty.named_levels`.
    """

    name: str
    products: tuple[str, ...]
    labels: tuple[str, ...]
    weeks: tuple[int, ...]
    base_demand: np.ndarray
    production_cost: np.ndarray  # $/unit
    holding_cost: np.ndarray  # $/unit/week, regular warehouse
    backorder_cost: np.ndarray  # $/unit/week backordered
    regular_labour_cost: np.ndarray  # $/hour
    overtime_labour_cost: np.ndarray  # $/hour
    hiring_cost: np.ndarray  # $/worker hired
    firing_cost: np.ndarray  # $/worker fired
    hours_per_unit: np.ndarray  # (P,) hours/unit
    space_per_unit: np.ndarray  # (P,) space units/unit
    initial_workforce: np.ndarray  # (P,) workers
    initial_inventory: np.ndarray  # (P,) units
    price: np.ndarray  # (P,) $/unit
    hours_per_worker: float  # regular hours/worker/week
    overtime_fraction: float  # O <= fraction * R
    regular_capacity: float  # space units
    levels: tuple[str, ...] = ()
    level_demand: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))
    level_probabilities: np.ndarray = field(default_factory=lambda: np.zeros(0))
    named_levels: tuple[float, ...] | None = None
    options: ModelOptions = field(default_factory=ModelOptions)
    description: str = ""
    source: str = ""

    family = "aggregate"

    def __post_init__(self) -> None:
        P, T = len(self.products), len(self.weeks)
        src = self.source or None
        for name in (
            "base_demand",
            "production_cost",
            "holding_cost",
            "backorder_cost",
            "regular_labour_cost",
            "overtime_labour_cost",
            "hiring_cost",
            "firing_cost",
        ):
            _check_array(name, getattr(self, name), (P, T), src)
        for name in ("hours_per_unit", "space_per_unit", "initial_workforce",
                     "initial_inventory", "price"):
            _check_array(name, getattr(self, name), (P,), src)
        if np.any(self.hours_per_unit <= 0):
            p = int(np.argmax(self.hours_per_unit <= 0))
            raise InputError(f"products.{self.products[p]}.hours_per_unit",
                             float(self.hours_per_unit[p]), "must be positive", src)
        _check_number("capacity.hours_per_worker", self.hours_per_worker, src, lo=0.0)
        _check_number("capacity.overtime_fraction", self.overtime_fraction, src, lo=0.0)
        _check_number("capacity.regular_warehouse", self.regular_capacity, src, lo=0.0)
        if self.levels:
            _check_array("level demand", self.level_demand, (len(self.levels), P, T), src)
            probs = np.asarray(self.level_probabilities, dtype=float)
            if probs.shape != (len(self.levels),) or not math.isclose(
                float(probs.sum()), 1.0, abs_tol=1e-9
            ):
                raise InputError(
                    "scenario probabilities", [float(x) for x in probs], "must sum to 1", src
                )
        if self.named_levels is not None:
            _check_named_levels(self.named_levels, self.levels, src)
        for arr in (self.__dict__.values()):
            if isinstance(arr, np.ndarray):
                arr.setflags(write=False)

    @property
    def n_products(self) -> int:
        return len(self.products)

    @property
    def n_weeks(self) -> int:
        return len(self.weeks)

    @property
    def expected_level_demand(self) -> np.ndarray:
        """Probability-weighted demand of the instance's own levels, shape (P, T)."""
        return np.tensordot(self.level_probabilities, self.level_demand, axes=1)

    def with_options(self, **changes: Any) -> AggregateInstance:
        """The same instance with some model options changed."""
        return dataclasses.replace(self, options=self.options.replace(**changes))


# ----------------------------------------------------------------------------------------------
# Loading


def load_aggregate(folder: Path, meta: dict[str, Any], toml_path: Path) -> AggregateInstance:
    """Read an aggregate instance from its parsed ``instance.toml`` and the CSV it names."""
    csv_path = folder / str(meta.get("data", "product_data.csv"))
    if not csv_path.is_file():
        raise InputError("data", meta.get("data", "product_data.csv"), "file not found", toml_path)
    products_meta = meta.get("products")
    if not isinstance(products_meta, dict) or not products_meta:
        raise InputError("products", products_meta, "needs one [products.NAME] table each",
                         toml_path)
    products = tuple(str(p) for p in products_meta)
    per_product = {name: np.zeros(len(products)) for name in _PRODUCT_FIELDS}
    labels = []
    for i, p in enumerate(products):
        table = products_meta[p]
        if not isinstance(table, dict):
            raise InputError(f"products.{p}", table, "must be a [products.NAME] table",
                             toml_path)
        labels.append(str(table.get("label", p)))
        unknown = set(table) - {"label", *_PRODUCT_FIELDS}
        if unknown:
            key = sorted(unknown)[0]
            raise InputError(f"products.{p}.{key}", table[key], "unknown field", toml_path)
        for name in _PRODUCT_FIELDS:
            if name not in table:
                raise InputError(f"products.{p}.{name}", None, "missing", toml_path)
            per_product[name][i] = _check_number(f"products.{p}.{name}", table[name], toml_path,
                                                 lo=0.0)

    cap = meta.get("capacity", {})
    if not isinstance(cap, dict):
        raise InputError("capacity", cap, "must be a [capacity] table", toml_path)
    for key in cap:
        if key not in ("hours_per_worker", "overtime_fraction", "regular_warehouse"):
            raise InputError(f"capacity.{key}", cap[key], "unknown field", toml_path)
    for key in ("hours_per_worker", "overtime_fraction", "regular_warehouse"):
        if key not in cap:
            raise InputError(f"capacity.{key}", None, "missing", toml_path)
        _check_number(f"capacity.{key}", cap[key], toml_path, lo=0.0)
    options_meta = meta.get("options", {})
    if not isinstance(options_meta, dict):
        raise InputError("options", options_meta, "must be an [options] table", toml_path)

    for key in meta:
        if key not in _TOP_KEYS:
            raise InputError(key, meta[key], f"unknown key (known: {', '.join(_TOP_KEYS)})",
                             toml_path)

    options = ModelOptions.from_mapping(dict(options_meta), toml_path)
    table = _read_product_csv(csv_path, products)
    named_levels = None
    if "named_levels" in meta:
        named_levels = _check_named_levels(meta["named_levels"], table["levels"], toml_path,
                                           csv_path.name)

    return AggregateInstance(
        name=str(meta.get("name", folder.name)),
        description=str(meta.get("description", "")),
        products=products,
        labels=tuple(labels),
        weeks=table["weeks"],
        base_demand=table["base_demand"],
        production_cost=table["unit_production_cost"],
        holding_cost=table["unit_holding_cost"],
        backorder_cost=table["unit_backorder_cost"],
        regular_labour_cost=table["unit_reg_labor_cost"],
        overtime_labour_cost=table["unit_ot_labor_cost"],
        hiring_cost=table["hiring_cost"],
        firing_cost=table["firing_cost"],
        hours_per_unit=per_product["hours_per_unit"],
        space_per_unit=per_product["space_per_unit"],
        initial_workforce=per_product["initial_workforce"],
        initial_inventory=per_product["initial_inventory"],
        price=per_product["price"],
        hours_per_worker=float(cap["hours_per_worker"]),
        overtime_fraction=float(cap["overtime_fraction"]),
        regular_capacity=float(cap["regular_warehouse"]),
        levels=table["levels"],
        level_demand=table["level_demand"],
        level_probabilities=table["level_probabilities"],
        named_levels=named_levels,
        options=options,
        source=str(toml_path),
    )


def _read_product_csv(path: Path, products: tuple[str, ...]) -> dict[str, Any]:
    """Parse and check the per-(product, week) CSV; arrays come back shaped (P, T)."""
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError("file", path.name, f"not a readable CSV ({err})", path) from None
    df.columns = [str(c).strip() for c in df.columns]
    for col in _REQUIRED_COLUMNS:
        if col not in df.columns:
            raise InputError("column", col, f"missing (columns found: {', '.join(df.columns)})",
                             path)
    df["product"] = df["product"].astype(str).str.strip()
    known = [c for c in df.columns if c in _REQUIRED_COLUMNS or c == "pt_index"
             or c.endswith("_demand") or c.startswith("prob_")]
    extra = [c for c in df.columns if c not in known]
    if extra:
        log.warning("%s: ignoring column(s) %s (not part of an aggregate instance)", path,
                    ", ".join(extra))
        df = df[known]
    numeric = [c for c in df.columns if c not in ("product", "pt_index")]
    for col in numeric:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.astype(float))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"{col} (row {row + 2})", _plain(df[col].iloc[row]),
                             "not a finite number", path)
        if (values < 0).any():
            row = int(np.flatnonzero((values < 0).to_numpy())[0])
            raise InputError(f"{col} (row {row + 2})", _plain(values.iloc[row]),
                             "must be non-negative", path)
        if (values > MAX_VALUE).any():
            row = int(np.flatnonzero((values > MAX_VALUE).to_numpy())[0])
            check_magnitude(f"{col} (row {row + 2})", _plain(values.iloc[row]), path)
        if col == "t" and (values != values.round()).any():
            row = int(np.flatnonzero((values != values.round()).to_numpy())[0])
            raise InputError(f"t (row {row + 2})", _plain(values.iloc[row]),
                             "weeks must be whole numbers", path)
        df[col] = values.astype(float)

    found = tuple(dict.fromkeys(df["product"]))
    for p in found:
        if p not in products:
            raise InputError("product", p,
                             f"not declared in instance.toml (declared: {', '.join(products)})",
                             path)
    for p in products:
        if p not in found:
            raise InputError("product", p, "declared in instance.toml but has no rows", path)

    weeks = tuple(sorted(int(t) for t in df["t"].unique()))
    if weeks != tuple(range(1, len(weeks) + 1)):
        raise InputError("t", list(weeks), "weeks must be 1, 2, ..., T", path)
    counts = df.groupby(["product", "t"]).size()
    if (counts > 1).any():
        p, t = counts[counts > 1].index[0]
        raise InputError("t", int(t), f"appears twice for product {p}", path)
    if len(df) != len(products) * len(weeks):
        missing = [(p, t) for p in products for t in weeks if (p, t) not in counts.index]
        p, t = missing[0]
        raise InputError("t", t, f"missing for product {p}", path)

    df = df.set_index(["product", "t"]).loc[[(p, t) for p in products for t in weeks]]
    shape = (len(products), len(weeks))
    out: dict[str, Any] = {"weeks": weeks}
    for col in ("base_demand", *COST_COLUMNS):
        out[col] = df[col].to_numpy(dtype=float).reshape(shape)

    levels = tuple(
        c[: -len("_demand")] for c in df.columns if c.endswith("_demand") and c != "base_demand"
    )
    level_demand, level_probs = [], []
    for level in levels:
        pcol = f"prob_{level}"
        if pcol not in df.columns:
            raise InputError("column", pcol, f"missing (needed for {level}_demand)", path)
        probs = df[pcol].to_numpy(dtype=float)
        if np.ptp(probs) > 1e-12:
            raise InputError(pcol, sorted(set(probs.tolist()))[:3],
                             "must be the same in every row", path)
        level_demand.append(df[f"{level}_demand"].to_numpy(dtype=float).reshape(shape))
        level_probs.append(float(probs[0]))
    if levels and not math.isclose(sum(level_probs), 1.0, abs_tol=1e-9):
        raise InputError(
            "+".join(f"prob_{lv}" for lv in levels), level_probs,
            f"scenario probabilities must sum to 1 (they sum to {sum(level_probs):g})", path,
        )
    out["levels"] = levels
    out["level_demand"] = np.array(level_demand).reshape((len(levels), *shape))
    out["level_probabilities"] = np.array(level_probs)
    return out


# ----------------------------------------------------------------------------------------------
# Checks


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python number it holds (so messages show -4, not np.int64(-4))."""
    return value.item() if hasattr(value, "item") else value


def _check_number(
    name: str, value: Any, source: str | Path | None, lo: float | None = None,
    hi: float | None = None,
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(name, value, "must be a number", source)
    if not math.isfinite(value):
        raise InputError(name, value, "must be finite", source)
    if lo is not None and value < lo:
        raise InputError(name, value, f"must be >= {lo:g}", source)
    if hi is not None and value > hi:
        raise InputError(name, value, f"must be <= {hi:g}", source)
    check_magnitude(name, value, source)
    return float(value)


def _check_named_levels(value: Any, levels: tuple[str, ...], source: str | Path | None,
                        data: str = "the data file") -> tuple[float, ...]:
    """``named_levels`` as a tuple: positive numbers, one per named demand level of the CSV."""
    if not isinstance(value, (list, tuple)) or not value:
        raise InputError("named_levels", value, "expected a list of positive numbers, one per "
                         "named demand level (e.g. [0.8, 1.0, 1.2])", source)
    out = []
    for x in value:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) \
                or x <= 0:
            raise InputError("named_levels", list(value), f"{x!r} is not a positive number",
                             source)
        out.append(float(check_magnitude("named_levels", x, source)))
    if len(out) != len(levels):
        named = ", ".join(f"{lv}_demand" for lv in levels) or "none"
        raise InputError("named_levels", list(value), f"expected {len(levels)} numbers, one "
                         f"per named demand level of {data} ({named})", source)
    return tuple(out)


def _check_array(name: str, arr: Any, shape: tuple[int, ...], source: str | None) -> None:
    a = np.asarray(arr)
    if a.shape != shape:
        raise InputError(name, f"shape {a.shape}", f"expected shape {shape}", source)
    if not np.all(np.isfinite(a)):
        raise InputError(name, "non-finite entries", "must be finite", source)
    if np.any(a < 0):
        raise InputError(name, float(a[a < 0].flat[0]), "must be non-negative", source)
    if np.any(a > MAX_VALUE):
        check_magnitude(name, float(a[a > MAX_VALUE].flat[0]), source)
