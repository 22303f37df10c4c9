"""The multi-site instance generator (seed 000): synthetic sites, products and machines.

The seed's notebook draws its data without a seed; this generator draws the same kinds of
numbers from explicit seeds, so the same (parameters, seed) give the same tables, value for
value. Site ``j`` (0-based) draws from ``np.random.default_rng([seed, j])`` and from nothing
else, so the first 10 sites of a 100-site instance are the 10 sites of a 10-site instance.

Documented defaults (:class:`GeneratorParams`, each overridable from a TOML file or
``stochplan generate multisite --KEY VALUE``):

- 100 sites; product groups A, B, C with 10 products each per site (``A1`` ... ``C10``);
  group offsets 1, 1.5, 2 (``group_offsets``) and price offsets 1, 2, 3 (``price_offsets``);
- raw material per unit of a product = group offset x (10 + U(0, 5)), rounded;
  raw-material cost 10 $ per unit;
- machines Machine1, Machine2, Machine3: cost per hour 20/30/40 + U(0, 5), rounded; weekly
  hours 120/100/80 + U(0, 5), rounded;
- labour minutes of a product on a machine = group offset x (average 24/20/16 - 5 + U(0, 5)),
  rounded; every product uses every machine;
- minimum demand round(2 U(0, 1)), maximum demand 20 (units per week);
- price = price offset x 100 + 1.1 x (machine cost of the product + raw-material cost),
  rounded, where the machine cost of a product is sum over machines of minutes / 60 x cost
  per hour ($ per unit);
- raw-material inventory of a site = sum over products of (raw material x maximum demand)
  x (1 + 0.1 U(0, 1)) (units).
- Our addition (the seed's model is deterministic): the mean demand of each product, around
  which the scenarios draw Poisson demand, = round(min + (max - min) x U(0.3, 0.9), 1).

Draw order within a site (part of the contract: changing it changes every instance): the
machines' cost and hours (cost then hours, machine by machine), then per product in group
order: raw material, one labour draw per machine, minimum demand, mean demand; then the
inventory factor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pydantic

from stochplan.errors import InputError

__all__ = ["GENERATOR", "GeneratorParams", "generate_tables", "load_params"]

#: Name and version of this generator, written to the instance record.
GENERATOR = "stochplan.multisite/1"


class GeneratorParams(pydantic.BaseModel):
    """Parameters of the generator (defaults: the seed notebook's values).

    Attributes
    ----------
    sites : int
        Number of production sites (``Site001``, ``Site002``, ...).
    groups : list of str
        Product groups; each has ``products_per_group`` products named group + number.
    products_per_group : int
    group_offsets, price_offsets : list of float
        One per group: the multiplier of raw material and labour minutes, and of the 100 $
        price base.
    raw_material_base, raw_material_spread : float
        Raw material per unit = offset x (base + U(0, spread)), rounded (units).
    raw_material_cost : float
        $ per unit of raw material.
    machines : list of str
    machine_cost, machine_hours, machine_minutes : list of float
        Per machine: base cost per hour ($), weekly hours (h), average labour minutes per unit.
    cost_spread, hours_spread : float
        U(0, spread) added to cost per hour and weekly hours before rounding.
    minutes_shift, minutes_spread : float
        Labour minutes = offset x (average - shift + U(0, spread)), rounded.
    min_demand_scale : float
        Minimum demand = round(scale x U(0, 1)) units.
    max_demand : float
        Maximum demand (units).
    price_base, price_markup : float
        Price = price offset x base + markup x (machine cost + raw-material cost), rounded.
    inventory_slack : float
        Inventory = sum of raw material x max demand, times (1 + slack x U(0, 1)).
    mean_low, mean_high : float
        Mean demand = round(min + (max - min) x U(mean_low, mean_high), 1).
    """

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    sites: int = pydantic.Field(100, ge=1, description="number of production sites")
    groups: tuple[str, ...] = ("A", "B", "C")
    products_per_group: int = pydantic.Field(10, ge=1, description="products per group")
    group_offsets: tuple[float, ...] = (1.0, 1.5, 2.0)
    price_offsets: tuple[float, ...] = (1.0, 2.0, 3.0)
    raw_material_base: float = pydantic.Field(10.0, ge=0.0)
    raw_material_spread: float = pydantic.Field(5.0, ge=0.0)
    raw_material_cost: float = pydantic.Field(10.0, ge=0.0, description="$ per unit")
    machines: tuple[str, ...] = ("Machine1", "Machine2", "Machine3")
    machine_cost: tuple[float, ...] = (20.0, 30.0, 40.0)
    machine_hours: tuple[float, ...] = (120.0, 100.0, 80.0)
    machine_minutes: tuple[float, ...] = (24.0, 20.0, 16.0)
    cost_spread: float = pydantic.Field(5.0, ge=0.0)
    hours_spread: float = pydantic.Field(5.0, ge=0.0)
    minutes_shift: float = 5.0
    minutes_spread: float = pydantic.Field(5.0, ge=0.0)
    min_demand_scale: float = pydantic.Field(2.0, ge=0.0)
    max_demand: float = pydantic.Field(20.0, ge=0.0)
    price_base: float = pydantic.Field(100.0, ge=0.0)
    price_markup: float = pydantic.Field(1.1, ge=0.0)
    inventory_slack: float = pydantic.Field(0.1, ge=0.0)
    mean_low: float = pydantic.Field(0.3, ge=0.0, le=1.0)
    mean_high: float = pydantic.Field(0.9, ge=0.0, le=1.0)

    @pydantic.model_validator(mode="after")
    def _lengths(self) -> GeneratorParams:
        for name, n in (("group_offsets", len(self.groups)), ("price_offsets", len(self.groups)),
                        ("machine_cost", len(self.machines)),
                        ("machine_hours", len(self.machines)),
                        ("machine_minutes", len(self.machines))):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} needs one value per "
                                 f"{'group' if 'offsets' in name else 'machine'} ({n})")
        if self.mean_low > self.mean_high:
            raise ValueError("mean_low exceeds mean_high")
        return self


def load_params(path: str | Path | None = None,
                overrides: dict[str, Any] | None = None) -> GeneratorParams:
    """Parameters from a TOML file (top-level keys, or a ``[generator]`` table) and overrides.

    Raises
    ------
    InputError
        An unknown key or a bad value, naming the key, the value and the file.
    """
    from stochplan.data import read_toml
    from stochplan.family import validate_options

    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise InputError("--params", str(path), "file not found")
        raw = read_toml(p)
        values = dict(raw.get("generator", raw))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return validate_options(GeneratorParams, values, "generator", path)
    except InputError:
        raise
    except ValueError as err:  # cross-field checks
        raise InputError("generator", values, str(err), path) from None


def generate_tables(params: GeneratorParams, seed: int) -> dict[str, pd.DataFrame]:
    """The four input tables and the demand means of ``params.sites`` sites.

    Returns
    -------
    dict of DataFrame
        ``ProductData`` (site, product, product_group, raw_material, raw_material_cost, price,
        min_demand, max_demand, mean_demand), ``ProductMachineData`` (site, product, machine,
        minutes), ``MachineData`` (site, machine, cost_per_hour, weekly_hours) and
        ``InventoryData`` (site, raw_material_inventory). Units: raw material in units per
        unit of product, money in $, demand in units per week, minutes per unit, hours per week.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError("--seed", seed, "must be a non-negative integer")
    width = max(3, len(str(params.sites)))
    products, links, machines, inventory = [], [], [], []
    n_mach = len(params.machines)
    for j in range(params.sites):
        site = f"Site{j + 1:0{width}d}"
        rng = np.random.default_rng([int(seed), j])
        cost = np.empty(n_mach)
        hours = np.empty(n_mach)
        for m in range(n_mach):
            cost[m] = round(params.machine_cost[m] + rng.uniform(0.0, params.cost_spread))
            hours[m] = round(params.machine_hours[m] + rng.uniform(0.0, params.hours_spread))
            machines.append((site, params.machines[m], float(cost[m]), float(hours[m])))
        need = 0.0
        for g, group in enumerate(params.groups):
            offset = params.group_offsets[g]
            for i in range(params.products_per_group):
                product = f"{group}{i + 1}"
                raw = float(round(offset * (params.raw_material_base
                                            + rng.uniform(0.0, params.raw_material_spread))))
                minutes = np.array([
                    float(round(offset * (params.machine_minutes[m] - params.minutes_shift
                                          + rng.uniform(0.0, params.minutes_spread))))
                    for m in range(n_mach)])
                lo = float(round(params.min_demand_scale * rng.uniform(0.0, 1.0)))
                hi = float(params.max_demand)
                mean = round(lo + (hi - lo) * rng.uniform(params.mean_low, params.mean_high), 1)
                machine_cost = float(np.sum(minutes / 60.0 * cost))
                price = float(round(params.price_offsets[g] * params.price_base
                                    + params.price_markup
                                    * (machine_cost + raw * params.raw_material_cost)))
                products.append((site, product, group, raw, params.raw_material_cost, price,
                                 lo, hi, mean))
                for m in range(n_mach):
                    links.append((site, product, params.machines[m], float(minutes[m])))
                need += raw * hi
        inventory.append((site, float(need * (1.0 + params.inventory_slack
                                              * rng.uniform(0.0, 1.0)))))
    return {
        "ProductData": pd.DataFrame(products, columns=[
            "site", "product", "product_group", "raw_material", "raw_material_cost", "price",
            "min_demand", "max_demand", "mean_demand"]),
        "ProductMachineData": pd.DataFrame(links, columns=["site", "product", "machine",
                                                           "minutes"]),
        "MachineData": pd.DataFrame(machines, columns=["site", "machine", "cost_per_hour",
                                                       "weekly_hours"]),
        "InventoryData": pd.DataFrame(inventory, columns=["site", "raw_material_inventory"]),
    }


def instance_record(name: str, params: GeneratorParams, seed: int) -> pd.DataFrame:
    """The one-row ``InstanceRecord`` table: name, generator, seed and parameters (JSON)."""
    return pd.DataFrame([{
        "name": name,
        "generator": GENERATOR,
        "seed": int(seed),
        "parameters": json.dumps(params.model_dump(mode="json"), sort_keys=True),
    }])
