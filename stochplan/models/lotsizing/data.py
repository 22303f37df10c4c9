"""Instance data of the lot-sizing family (seed 001): the record, its options and the loader.

An instance is a folder holding ``instance.toml`` and the tutorial's ten tables (step 4 of the
seed's production-planning tutorial, one CSV per ORM table). ``instance.toml`` may name them
in a ``[files]`` table; the defaults are the names below.

``products.csv``
    ``id, name, profit_per_unit, min_demand, max_demand, holding_cost_per_unit``: $ per unit
    sold, units per week, $ per unit held at the end of a week. Names must be unique (they
    label the products everywhere).
``machines.csv``
    ``id, name, available_hours``: hours per week (``hourly_cost`` may be there; it is not
    used, as in the seed).
``materials.csv``
    ``id, name, available_quantity_per_period``: units per week (``cost_per_unit`` is not used).
``machine_hours.csv``
    ``product_id, machine_id, hours_required``: hours per unit. A product without hours on any
    machine cannot be produced and is refused.
``material_requirements.csv``
    ``product_id, material_id, quantity_required``: material units per unit produced.
``min_batches.csv``
    ``product_id, min_batch_size``: units; a product not listed has no minimum batch.
``setup_costs.csv``
    ``product_id, machine_id, cost, setup_hours``: a setup of the product in a week pays
    ``cost`` and takes ``setup_hours`` on each machine listed for it.
``customers.csv``
    ``id, name, tier``: tier GOLD, SILVER or BRONZE (``priority_level`` is not used: the tier
    decides the penalty).
``orders.csv``
    ``customer_id, product_id, period_id, target_quantity`` (an optional ``id`` column names
    the orders, else ``O01``, ``O02``, ... in row order; ``priority`` is not used).
``periods.csv``
    ``id, week_number``: the horizon, week numbers 1, 2, ..., T (``name`` is not used).

Everything is checked when it is read: a bad value raises :class:`~stochplan.errors.InputError`
naming the field (file column and row), the value and the file.

Units: quantities in units of product, material units as the tables give them, time in hours
and weeks, money in $.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pydantic

from stochplan.data import MAX_VALUE, Table, instance_files
from stochplan.errors import InputError
from stochplan.family import validate_options

__all__ = [
    "FILES",
    "TIERS",
    "LotSizingInstance",
    "LotSizingOptions",
    "OrderSampler",
    "load_lotsizing",
]

#: Customer tiers, from the most to the least important.
TIERS = ("GOLD", "SILVER", "BRONZE")

#: The tables of an instance and their default file names (``[files]`` in instance.toml).
FILES = {
    "products": "products.csv",
    "machines": "machines.csv",
    "materials": "materials.csv",
    "machine_hours": "machine_hours.csv",
    "material_requirements": "material_requirements.csv",
    "min_batches": "min_batches.csv",
    "setup_costs": "setup_costs.csv",
    "customers": "customers.csv",
    "orders": "orders.csv",
    "periods": "periods.csv",
}

_TOP_KEYS = ("family", "name", "description", "files", "options")


# ----------------------------------------------------------------------------------------------
# Options


class LotSizingOptions(pydantic.BaseModel):
    """What a researcher varies without touching the data (``[options]`` of instance.toml,
    ``[model]`` of a run, ``--set key=value``).

    Attributes
    ----------
    integer : bool
        Setups binary (False: the LP relaxation, 0 <= y <= 1; ``--relax``).
    production_stage : {"second", "first"}
        ``"second"``: quantities x adapt to each scenario within the setup plan. ``"first"``:
        x is fixed with the setups, before orders are known; the recourse only allocates stock.
    sense : {"max", "min"}
        ``"max"`` maximises expected profit; ``"min"`` minimises its negative (the same model and
        numbers, negated: the convention of the farmer module).
    late_delivery : bool
        Orders may be delivered after their week (to the end of the horizon).
    late_cost_fraction : float
        Lateness cost per unit and week late, as a fraction of the product's unit profit.
    penalty_gold, penalty_silver, penalty_bronze : float
        Penalty per unit of an order left unmet, as a multiple of the product's unit profit
        (charged on top of the profit not earned).
    cancel_gold, cancel_silver, cancel_bronze : float
        Probability that an order of a customer of that tier is cancelled in a scenario
        (``sample:N`` draws cancellations; ``poisson:N`` and ``qmc:N`` draw quantities only).
    """

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", strict=True,
                                       allow_inf_nan=False)

    integer: bool = pydantic.Field(True, description="setups binary (false: LP relaxation)")
    production_stage: Literal["second", "first"] = pydantic.Field(
        "second", description="quantities decided with the setups (first) or per scenario")
    sense: Literal["max", "min"] = pydantic.Field(
        "max", description="maximise profit (max) or minimise its negative (min)")
    late_delivery: bool = pydantic.Field(True, description="orders may be delivered late")
    late_cost_fraction: float = pydantic.Field(
        0.1, ge=0.0, le=MAX_VALUE, description="$ per unit and week late, fraction of unit profit")
    penalty_gold: float = pydantic.Field(
        3.0, ge=0.0, le=MAX_VALUE, description="unmet GOLD units, multiple of unit profit")
    penalty_silver: float = pydantic.Field(
        2.0, ge=0.0, le=MAX_VALUE, description="unmet SILVER units, multiple of unit profit")
    penalty_bronze: float = pydantic.Field(
        1.0, ge=0.0, le=MAX_VALUE, description="unmet BRONZE units, multiple of unit profit")
    cancel_gold: float = pydantic.Field(
        0.0, ge=0.0, le=1.0, description="probability a GOLD order is cancelled")
    cancel_silver: float = pydantic.Field(
        0.0, ge=0.0, le=1.0, description="probability a SILVER order is cancelled")
    cancel_bronze: float = pydantic.Field(
        0.0, ge=0.0, le=1.0, description="probability a BRONZE order is cancelled")

    def penalty(self, tier: str) -> float:
        """Unmet penalty of a tier, multiple of unit profit."""
        return float(getattr(self, f"penalty_{tier.lower()}"))

    def cancel(self, tier: str) -> float:
        """Cancellation probability of a tier."""
        return float(getattr(self, f"cancel_{tier.lower()}"))


# ----------------------------------------------------------------------------------------------
# The record


@dataclass(frozen=True)
class LotSizingInstance:
    """One lot-sizing instance: P products, M machines, K materials, T weeks, C customers and
    O orders.

    Arrays follow the tuples of labels: ``[p]`` products, ``[m]`` machines, ``[k]`` materials,
    ``[o]`` orders, ``[c]`` customers. Orders refer to products and customers by position.
    """

    name: str
    products: tuple[str, ...]
    weeks: tuple[int, ...]
    machines: tuple[str, ...]
    materials: tuple[str, ...]
    customers: tuple[str, ...]
    orders: tuple[str, ...]
    profit: np.ndarray  # (P,) $ per unit sold
    holding_cost: np.ndarray  # (P,) $ per unit held at the end of a week
    min_demand: np.ndarray  # (P,) units per week (open market)
    max_demand: np.ndarray  # (P,) units per week (open market; production cap per week)
    min_batch: np.ndarray  # (P,) units
    hours: np.ndarray  # (P, M) hours per unit
    setup_cost: np.ndarray  # (P, M) $ per setup
    setup_hours: np.ndarray  # (P, M) hours per setup
    machine_capacity: np.ndarray  # (M,) hours per week
    material_use: np.ndarray  # (P, K) material units per unit
    material_available: np.ndarray  # (K,) material units per week
    customer_tier: tuple[str, ...]  # (C,) GOLD / SILVER / BRONZE
    order_customer: np.ndarray  # (O,) int, position in customers
    order_product: np.ndarray  # (O,) int, position in products
    order_week: np.ndarray  # (O,) int, week number due
    order_target: np.ndarray  # (O,) units
    product_ids: tuple[int, ...] = ()
    machine_ids: tuple[int, ...] = ()
    material_ids: tuple[int, ...] = ()
    customer_ids: tuple[int, ...] = ()
    options: LotSizingOptions = field(default_factory=LotSizingOptions)
    description: str = ""
    source: str = ""

    family: ClassVar[str] = "lotsizing"

    def __post_init__(self) -> None:
        src = self.source or None
        P, M, K = len(self.products), len(self.machines), len(self.materials)
        C, NO, T = len(self.customers), len(self.orders), len(self.weeks)
        if P == 0 or M == 0 or T == 0:
            raise InputError("instance", f"{P} products, {M} machines, {T} weeks",
                             "needs at least one product, machine and week", src)
        if self.weeks != tuple(range(1, T + 1)):
            raise InputError("weeks", list(self.weeks), "must be 1, 2, ..., T", src)
        for what, labels in (("products", self.products), ("machines", self.machines),
                             ("materials", self.materials), ("customers", self.customers),
                             ("orders", self.orders)):
            if len(set(labels)) != len(labels):
                dup = next(x for x in labels if labels.count(x) > 1)
                raise InputError(what, dup, "appears more than once", src)
        shapes = {
            "profit": (P,), "holding_cost": (P,), "min_demand": (P,), "max_demand": (P,),
            "min_batch": (P,), "hours": (P, M), "setup_cost": (P, M), "setup_hours": (P, M),
            "machine_capacity": (M,), "material_use": (P, K), "material_available": (K,),
            "order_target": (NO,),
        }
        for name, shape in shapes.items():
            arr = np.asarray(getattr(self, name), dtype=float)
            if arr.shape != shape:
                raise InputError(name, f"shape {arr.shape}", f"expected shape {shape}", src)
            if not np.all(np.isfinite(arr)):
                raise InputError(name, "non-finite entries", "must be finite", src)
            if np.any(arr < 0):
                raise InputError(name, float(arr[arr < 0][0]), "must be non-negative", src)
            object.__setattr__(self, name, arr)
        if np.any(self.min_demand > self.max_demand):
            p = int(np.argmax(self.min_demand > self.max_demand))
            raise InputError(f"products.{self.products[p]}.min_demand",
                             float(self.min_demand[p]), "exceeds max_demand", src)
        for p, name in enumerate(self.products):
            if not np.any(self.hours[p] > 0):
                raise InputError(f"products.{name}.hours", 0.0, "no machine hours: the product "
                                 "cannot be produced", src)
        if len(self.customer_tier) != C or any(t not in TIERS for t in self.customer_tier):
            raise InputError("customer_tier", list(self.customer_tier),
                             f"one of {', '.join(TIERS)} per customer", src)
        for name, hi in (("order_customer", C), ("order_product", P)):
            arr = np.asarray(getattr(self, name))
            if arr.shape != (NO,) or np.any(arr < 0) or np.any(arr >= hi):
                raise InputError(name, arr.tolist(), f"positions in 0..{hi - 1}, one per order",
                                 src)
            object.__setattr__(self, name, arr.astype(int))
        weeks = np.asarray(self.order_week)
        if weeks.shape != (NO,) or np.any(weeks < 1) or np.any(weeks > T):
            raise InputError("order_week", weeks.tolist(), f"weeks in 1..{T}, one per order", src)
        object.__setattr__(self, "order_week", weeks.astype(int))
        for value in self.__dict__.values():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)

    # -- derived data --------------------------------------------------------------------------

    @property
    def n_products(self) -> int:
        return len(self.products)

    @property
    def n_weeks(self) -> int:
        return len(self.weeks)

    @property
    def n_orders(self) -> int:
        return len(self.orders)

    @property
    def product_setup_cost(self) -> np.ndarray:
        """$ per setup of each product: its setup costs summed over the machines, (P,)."""
        return self.setup_cost.sum(axis=1)

    @property
    def production_bound(self) -> np.ndarray:
        """U[p], units per week: the most a week's production of p can be, (P,).

        The smallest of the max demand (the seed's bound on x), each machine's hours left after
        the product's own setup ((H_m - setup_hours[p,m]) / hours[p,m]) and each material's
        availability (A_k / use[p,k]). ``x <= U y`` is then implied by the other constraints
        whenever y = 1, so it only cuts off x > 0 without a setup.
        """
        bound = self.max_demand.copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            hours = np.where(self.hours > 0,
                             np.maximum(self.machine_capacity[None, :] - self.setup_hours, 0.0)
                             / self.hours, np.inf)
            material = np.where(self.material_use > 0,
                                self.material_available[None, :] / self.material_use, np.inf)
        bound = np.minimum(bound, hours.min(axis=1))
        if material.size:
            bound = np.minimum(bound, material.min(axis=1))
        return bound

    @property
    def market_rate(self) -> np.ndarray:
        """Mean open-market demand per product and week: the midpoint of min and max demand,
        (P, T) units."""
        mid = (self.min_demand + self.max_demand) / 2.0
        return np.repeat(mid[:, None], self.n_weeks, axis=1)

    @property
    def order_tier(self) -> tuple[str, ...]:
        """The tier of each order's customer."""
        return tuple(self.customer_tier[c] for c in self.order_customer)

    @property
    def order_penalty(self) -> np.ndarray:
        """$ per unit of each order left unmet (tier multiple x unit profit), (O,)."""
        mult = np.array([self.options.penalty(t) for t in self.order_tier])
        return mult * self.profit[self.order_product] if len(mult) else np.zeros(0)

    @property
    def order_cancel(self) -> np.ndarray:
        """Probability that each order is cancelled in a scenario, (O,)."""
        return np.array([self.options.cancel(t) for t in self.order_tier], dtype=float)

    @property
    def market_labels(self) -> tuple[str, ...]:
        """``product@week`` labels of the open-market cells, product-major."""
        return tuple(f"{p}@{t}" for p in self.products for t in self.weeks)

    @property
    def items(self) -> tuple[str, ...]:
        """Labels of the random data: the order ids, then ``product@week`` market cells."""
        return (*self.orders, *self.market_labels)

    @property
    def item_rates(self) -> np.ndarray:
        """Poisson means of the random data, in :attr:`items` order: each order's target, then
        the market midpoints, (O + P*T,)."""
        return np.concatenate([self.order_target, self.market_rate.ravel()])

    def split(self, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One scenario's random data (O + P*T,) as (order quantities (O,), market demand
        (P, T))."""
        data = np.asarray(data, dtype=float)
        n_orders = self.n_orders
        expected = n_orders + self.n_products * self.n_weeks
        if data.shape != (expected,):
            raise InputError("scenario data", f"shape {data.shape}", f"expected ({expected},)",
                             self.source or None)
        return data[:n_orders], data[n_orders:].reshape(self.n_products, self.n_weeks)

    def with_options(self, **changes: Any) -> LotSizingInstance:
        """A copy with some options changed (validated again)."""
        import dataclasses

        options = validate_options(LotSizingOptions, changes, "options", self.source or None,
                                   base=self.options)
        return dataclasses.replace(self, options=options)


# ----------------------------------------------------------------------------------------------
# Scenarios


@dataclass(frozen=True, eq=False)
class OrderSampler:
    """Scenario k of base seed s: Poisson quantities, then cancellations (``sample:N``).

    ``rng = np.random.default_rng([seed, k])`` is the only randomness: first
    ``rng.poisson(rates)`` for every item (orders, then market cells), then one
    ``rng.random()`` per order; order o is cancelled (quantity 0) when that number is below
    ``cancel[o]``. So scenario k is the same whatever N, and its quantities are the Poisson
    scenario k's.

    Attributes
    ----------
    rates : ndarray, shape (O + P*T,)
        Poisson means of the items (:attr:`LotSizingInstance.item_rates`).
    cancel : ndarray, shape (O,)
        Cancellation probability of each order.
    """

    rates: np.ndarray
    cancel: np.ndarray

    def __call__(self, seed: int, k: int) -> np.ndarray:
        rng = np.random.default_rng([seed, k])
        data = rng.poisson(self.rates).astype(float)
        cancelled = rng.random(self.cancel.size) < self.cancel
        data[: self.cancel.size][cancelled] = 0.0
        return data


# ----------------------------------------------------------------------------------------------
# The loader


def load_lotsizing(folder: Path, meta: dict[str, Any], toml_path: Path) -> LotSizingInstance:
    """Read an instance folder (its parsed ``instance.toml`` is ``meta``).

    Raises
    ------
    InputError
        One line naming the field (key, or CSV column and row), the value and the file.
    """
    paths = instance_files(folder, meta, toml_path, _TOP_KEYS, FILES)
    options_meta = meta.get("options", {})
    if not isinstance(options_meta, dict):
        raise InputError("options", options_meta, "must be an [options] table", toml_path)
    options = validate_options(LotSizingOptions, dict(options_meta), "options", toml_path)

    periods = Table(paths["periods"], {"id": "int", "week_number": "int"})
    weeks = sorted(periods.col("week_number"))
    if weeks != list(range(1, len(weeks) + 1)):
        raise InputError("week_number", weeks, "weeks must be 1, 2, ..., T", periods.path)
    week_of = dict(zip(periods.ids("id"), periods.col("week_number")))

    products = Table(paths["products"], {
        "id": "int", "name": "str", "profit_per_unit": "num", "min_demand": "num",
        "max_demand": "num", "holding_cost_per_unit": "num"})
    product_ids = products.ids("id")
    names = products.col("name")
    if len(set(names)) != len(names):
        row = next(i for i, n in enumerate(names) if names.count(n) > 1)
        raise InputError(f"name (row {row + 2})", names[row], "product names must be unique",
                         products.path)
    for col in ("min_demand",):
        for i, (lo, hi) in enumerate(zip(products.col(col), products.col("max_demand"))):
            if lo > hi:
                raise InputError(f"min_demand (row {i + 2})", lo,
                                 f"exceeds max_demand ({hi:g})", products.path)
    P = len(product_ids)
    prod_pos = {pid: i for i, pid in enumerate(product_ids)}

    machines = Table(paths["machines"], {"id": "int", "name": "str", "available_hours": "num"})
    machine_ids = machines.ids("id")
    mach_pos = {mid: i for i, mid in enumerate(machine_ids)}
    materials = Table(paths["materials"], {"id": "int", "name": "str",
                                            "available_quantity_per_period": "num"})
    material_ids = materials.ids("id")
    mat_pos = {kid: i for i, kid in enumerate(material_ids)}
    M, K = len(machine_ids), len(material_ids)

    hours = np.zeros((P, M))
    table = Table(paths["machine_hours"], {"product_id": "int", "machine_id": "int",
                                            "hours_required": "num"})
    for row, (p, m, h) in table.rows("product_id", "machine_id", "hours_required"):
        i = table.lookup("product_id", row, p, prod_pos, "product")
        j = table.lookup("machine_id", row, m, mach_pos, "machine")
        table.once(row, (i, j), "product_id, machine_id", (p, m))
        hours[i, j] = h
    for i, pid in enumerate(product_ids):
        if not np.any(hours[i] > 0):
            raise InputError("product_id", pid, f"product {pid} ({names[i]}) has no machine "
                             "hours, so it cannot be produced: give it hours_required on at "
                             "least one machine", table.path)

    use = np.zeros((P, K))
    table = Table(paths["material_requirements"], {"product_id": "int", "material_id": "int",
                                                    "quantity_required": "num"})
    for row, (p, k, q) in table.rows("product_id", "material_id", "quantity_required"):
        i = table.lookup("product_id", row, p, prod_pos, "product")
        j = table.lookup("material_id", row, k, mat_pos, "material")
        table.once(row, (i, j), "product_id, material_id", (p, k))
        use[i, j] = q

    batch = np.zeros(P)
    table = Table(paths["min_batches"], {"product_id": "int", "min_batch_size": "num"})
    for row, (p, b) in table.rows("product_id", "min_batch_size"):
        i = table.lookup("product_id", row, p, prod_pos, "product")
        table.once(row, (i,), "product_id", p)
        batch[i] = b

    setup_cost, setup_hours = np.zeros((P, M)), np.zeros((P, M))
    table = Table(paths["setup_costs"], {"product_id": "int", "machine_id": "int",
                                          "cost": "num", "setup_hours": "num"})
    for row, (p, m, c, h) in table.rows("product_id", "machine_id", "cost", "setup_hours"):
        i = table.lookup("product_id", row, p, prod_pos, "product")
        j = table.lookup("machine_id", row, m, mach_pos, "machine")
        table.once(row, (i, j), "product_id, machine_id", (p, m))
        setup_cost[i, j], setup_hours[i, j] = c, h

    customers = Table(paths["customers"], {"id": "int", "name": "str", "tier": "str"})
    customer_ids = customers.ids("id")
    cust_pos = {cid: i for i, cid in enumerate(customer_ids)}
    tiers = []
    for row, (tier,) in customers.rows("tier"):
        tier = str(tier).strip().upper()
        if tier not in TIERS:
            raise InputError(f"tier (row {row + 2})", customers.raw("tier", row),
                             f"expected one of {', '.join(TIERS)}", customers.path)
        tiers.append(tier)

    orders = Table(paths["orders"], {"customer_id": "int", "product_id": "int",
                                      "period_id": "int", "target_quantity": "num"})
    if "id" in orders.df.columns:
        order_ids = [str(x).strip() for x in orders.df["id"]]
        if len(set(order_ids)) != len(order_ids):
            row = next(i for i, n in enumerate(order_ids) if order_ids.count(n) > 1)
            raise InputError(f"id (row {row + 2})", order_ids[row], "appears more than once",
                             orders.path)
    else:
        width = max(2, len(str(len(orders.df))))
        order_ids = [f"O{i + 1:0{width}d}" for i in range(len(orders.df))]
    o_cust, o_prod, o_week, o_target = [], [], [], []
    for row, (c, p, t, q) in orders.rows("customer_id", "product_id", "period_id",
                                         "target_quantity"):
        o_cust.append(orders.lookup("customer_id", row, c, cust_pos, "customer"))
        o_prod.append(orders.lookup("product_id", row, p, prod_pos, "product"))
        if t not in week_of:
            raise InputError(f"period_id (row {row + 2})", t, "not a period of the horizon "
                             f"(periods: {', '.join(str(x) for x in week_of)})", orders.path)
        o_week.append(week_of[t])
        o_target.append(q)

    return LotSizingInstance(
        name=str(meta.get("name", folder.name)),
        description=str(meta.get("description", "")),
        products=tuple(str(n) for n in names),
        weeks=tuple(range(1, len(weeks) + 1)),
        machines=tuple(str(n) for n in machines.col("name")),
        materials=tuple(str(n) for n in materials.col("name")),
        customers=tuple(str(n) for n in customers.col("name")),
        orders=tuple(order_ids),
        profit=np.array(products.col("profit_per_unit"), dtype=float),
        holding_cost=np.array(products.col("holding_cost_per_unit"), dtype=float),
        min_demand=np.array(products.col("min_demand"), dtype=float),
        max_demand=np.array(products.col("max_demand"), dtype=float),
        min_batch=batch,
        hours=hours,
        setup_cost=setup_cost,
        setup_hours=setup_hours,
        machine_capacity=np.array(machines.col("available_hours"), dtype=float),
        material_use=use,
        material_available=np.array(materials.col("available_quantity_per_period"),
                                    dtype=float),
        customer_tier=tuple(tiers),
        order_customer=np.array(o_cust, dtype=int),
        order_product=np.array(o_prod, dtype=int),
        order_week=np.array(o_week, dtype=int),
        order_target=np.array(o_target, dtype=float),
        product_ids=tuple(product_ids),
        machine_ids=tuple(machine_ids),
        material_ids=tuple(material_ids),
        customer_ids=tuple(customer_ids),
        options=options,
        source=str(toml_path),
    )
