"""Instance data of the multi-site family (seed 000): the record, its options and the loaders.

An instance is four tables, the seed's (column names as the generator writes them):

``ProductData``
    ``site, product, price, raw_material, raw_material_cost, min_demand, max_demand`` and
    optionally ``product_group`` and ``mean_demand``: $ per unit sold, raw-material units per
    unit made, $ per raw-material unit, units per week. Without ``mean_demand`` the Poisson
    mean is the midpoint of min and max demand.
``ProductMachineData``
    ``site, product, machine, minutes``: labour minutes per unit of the product on the machine
    (a pair not listed uses none of that machine).
``MachineData``
    ``site, machine, cost_per_hour, weekly_hours``: $ per hour, hours per week.
``InventoryData``
    ``site, raw_material_inventory``: raw-material units available to the site per week.

They come from an instance folder (``instance.toml`` naming the family and one CSV per table,
``[files]`` may rename them) or from a database (any SQLAlchemy URL; :mod:`.db`). Everything
is checked when it is read: a bad value raises :class:`~stochplan.errors.InputError` naming the
table and column (with the site, product or machine), the value and the file or URL.

Products may differ between sites: the record holds the union of product (and machine) labels
and a mask of the pairs a site has.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pydantic

from stochplan.data import instance_files, plain, read_csv
from stochplan.errors import InfeasibleError, InputError
from stochplan.family import validate_options

__all__ = [
    "COLUMNS",
    "FILES",
    "MultisiteInstance",
    "MultisiteOptions",
    "SiteSampler",
    "from_tables",
    "load_multisite",
]

#: Required columns of each input table (optional ones: ``product_group``, ``mean_demand``).
COLUMNS: dict[str, tuple[str, ...]] = {
    "ProductData": ("site", "product", "price", "raw_material", "raw_material_cost",
                    "min_demand", "max_demand"),
    "ProductMachineData": ("site", "product", "machine", "minutes"),
    "MachineData": ("site", "machine", "cost_per_hour", "weekly_hours"),
    "InventoryData": ("site", "raw_material_inventory"),
}
_TEXT = ("site", "product", "machine", "product_group")

#: Default file names of the tables in an instance folder (``[files]`` in instance.toml).
FILES = {"ProductData": "product_data.csv", "ProductMachineData": "product_machine_data.csv",
         "MachineData": "machine_data.csv", "InventoryData": "inventory_data.csv"}

_TOP_KEYS = ("family", "name", "description", "files", "options", "generator")


class MultisiteOptions(pydantic.BaseModel):
    """What a researcher varies without touching the data (``[options]`` of instance.toml,
    ``[model]`` of a run, ``--set key=value``).

    Attributes
    ----------
    integer : bool
        Whole units produced (False: the LP relaxation; ``--relax``).
    salvage_fraction : float
        An unsold unit is salvaged at this fraction of its unit cost (raw material + machine
        time), $ back per unit.
    goodwill_fraction : float
        A unit of demand lost costs this fraction of its price on top of the sale lost.
    sense : {"max", "min"}
        Maximise expected profit, or minimise its negative (same model, negated).
    raw_material_pool : float
        Raw-material units in a pool shared by all sites, allocated to them in the first
        stage on top of their own inventory. With a pool the sites couple: the instance is
        one stochastic program (no blocks).
    """

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", strict=True,
                                       allow_inf_nan=False)

    integer: bool = pydantic.Field(True, description="whole units (false: LP relaxation)")
    salvage_fraction: float = pydantic.Field(
        0.5, ge=0.0, le=1.0, description="unsold units salvaged at this fraction of unit cost")
    goodwill_fraction: float = pydantic.Field(
        0.0, ge=0.0, description="lost demand costs this fraction of the price per unit")
    sense: Literal["max", "min"] = pydantic.Field(
        "max", description="maximise profit (max) or minimise its negative (min)")
    raw_material_pool: float = pydantic.Field(
        0.0, ge=0.0, description="raw-material units in a pool shared by the sites, "
        "allocated in the first stage (0: none; the sites are then solved apart)")


@dataclass(frozen=True, eq=False)
class MultisiteInstance:
    """Sites, products and machines as arrays (N sites, P products, M machines).

    Attributes
    ----------
    sites, products, machines : tuple of str
        Labels (products and machines: the union over the sites, in order of appearance).
    offered : ndarray of bool, shape (N, P)
        Site n makes product p.
    price, raw_material, raw_material_cost, min_demand, max_demand, mean_demand : (N, P)
        $ per unit, raw-material units per unit, $ per raw-material unit, units per week
        (zero where not offered).
    group : ndarray of str, shape (N, P)
        Product group ("" when not given).
    minutes : ndarray, shape (N, P, M)
        Labour minutes per unit.
    has_machine : ndarray of bool, shape (N, M)
    cost_per_hour, weekly_hours : ndarray, shape (N, M)
    inventory : ndarray, shape (N,)
        Raw-material units available per week.
    options : MultisiteOptions
    source : str
        The file or database URL the data came from.
    database : str or None
        The database URL of an instance read from a database (results are written back there).
    """

    name: str
    description: str
    sites: tuple[str, ...]
    products: tuple[str, ...]
    machines: tuple[str, ...]
    offered: np.ndarray
    price: np.ndarray
    raw_material: np.ndarray
    raw_material_cost: np.ndarray
    min_demand: np.ndarray
    max_demand: np.ndarray
    mean_demand: np.ndarray
    group: np.ndarray
    minutes: np.ndarray
    has_machine: np.ndarray
    cost_per_hour: np.ndarray
    weekly_hours: np.ndarray
    inventory: np.ndarray
    options: MultisiteOptions = dataclasses.field(default_factory=MultisiteOptions)
    source: str = ""
    database: str | None = None
    family: str = "multisite"

    @property
    def n_sites(self) -> int:
        return len(self.sites)

    @property
    def machine_cost(self) -> np.ndarray:
        """Machine cost of a unit on each machine, $ (N, P, M): minutes / 60 x cost per hour."""
        return self.minutes / 60.0 * self.cost_per_hour[:, None, :]

    @property
    def unit_cost(self) -> np.ndarray:
        """Cost of making one unit, $ (N, P): raw material + machine time."""
        return self.raw_material * self.raw_material_cost + self.machine_cost.sum(axis=2)

    @property
    def site_keys(self) -> tuple[int, ...]:
        """A stable integer per site (CRC-32 of its label): the scenario sampler's stream."""
        return tuple(zlib.crc32(s.encode()) for s in self.sites)

    def subset(self, indices: list[int] | tuple[int, ...]) -> MultisiteInstance:
        """The instance of some sites only (same products, machines and options)."""
        idx = np.asarray(indices, dtype=int)
        arrays = {f.name: getattr(self, f.name)[idx] for f in dataclasses.fields(self)
                  if isinstance(getattr(self, f.name), np.ndarray)}
        return dataclasses.replace(self, sites=tuple(self.sites[i] for i in idx), **arrays)

    def with_options(self, **changes: Any) -> MultisiteInstance:
        """A copy with some options changed (validated again)."""
        options = validate_options(MultisiteOptions, changes, "options", self.source or None,
                                   base=self.options)
        return dataclasses.replace(self, options=options)

    def infeasible_sites(self) -> dict[str, str]:
        """Sites that cannot make their minimum demand, with the reason: raw material or
        machine hours at minimum demand above what the site has."""
        out: dict[str, str] = {}
        raw = (self.raw_material * self.min_demand).sum(axis=1)
        hours = np.einsum("npm,np->nm", self.minutes / 60.0, self.min_demand)
        pool = self.options.raw_material_pool
        short = np.maximum(raw - self.inventory, 0.0)
        pool_short = short.sum() > pool * (1 + 1e-12) + 1e-9
        for n, site in enumerate(self.sites):
            if short[n] > 1e-9 + 1e-12 * self.inventory[n] and (pool_short or pool == 0):
                extra = f" plus the shared pool {pool:,.6g}" if pool else ""
                out[site] = (f"raw material at minimum demand {raw[n]:,.6g} exceeds the "
                             f"inventory {self.inventory[n]:,.6g}{extra}")
                continue
            over = [m for m in range(len(self.machines))
                    if hours[n, m] > self.weekly_hours[n, m] * (1 + 1e-12) + 1e-9]
            if over:
                m = over[0]
                out[site] = (f"{self.machines[m]} needs {hours[n, m]:,.6g} h at minimum "
                             f"demand, more than its {self.weekly_hours[n, m]:,.6g} h")
        return out

    def check_feasible(self) -> None:
        """Raise :class:`InfeasibleError` naming every site that cannot meet its minimum
        demand (see :meth:`infeasible_sites`)."""
        bad = self.infeasible_sites()
        if bad:
            detail = "; ".join(f"site {s}: {why}" for s, why in list(bad.items())[:5])
            more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
            raise InfeasibleError(f"{len(bad)} site(s) infeasible in {self.source}: "
                                  f"{detail}{more}", ("min_demand",))

    def tables(self) -> dict[str, pd.DataFrame]:
        """The four input tables of this instance (offered pairs and machines only)."""
        n, p = np.nonzero(self.offered)
        site = np.array(self.sites, dtype=object)
        prod = np.array(self.products, dtype=object)
        mach = np.array(self.machines, dtype=object)
        products = pd.DataFrame({
            "site": site[n], "product": prod[p], "product_group": self.group[n, p],
            "raw_material": self.raw_material[n, p],
            "raw_material_cost": self.raw_material_cost[n, p], "price": self.price[n, p],
            "min_demand": self.min_demand[n, p], "max_demand": self.max_demand[n, p],
            "mean_demand": self.mean_demand[n, p]})
        nn, pp, mm = np.nonzero(self.offered[:, :, None] & self.has_machine[:, None, :]
                                & (self.minutes > 0))
        links = pd.DataFrame({"site": site[nn], "product": prod[pp], "machine": mach[mm],
                              "minutes": self.minutes[nn, pp, mm]})
        a, b = np.nonzero(self.has_machine)
        machines = pd.DataFrame({"site": site[a], "machine": mach[b],
                                 "cost_per_hour": self.cost_per_hour[a, b],
                                 "weekly_hours": self.weekly_hours[a, b]})
        inventory = pd.DataFrame({"site": list(self.sites),
                                  "raw_material_inventory": self.inventory})
        return {"ProductData": products, "ProductMachineData": links, "MachineData": machines,
                "InventoryData": inventory}


# ----------------------------------------------------------------------------------------------
# Scenarios


@dataclass(frozen=True, eq=False)
class SiteSampler:
    """Scenario k of base seed s (``sample:N``): site n's demand is Poisson around its means,
    drawn from ``np.random.default_rng([s, k, key_n])`` alone, where ``key_n`` is the CRC-32 of
    the site's label. A site's demand is thus the same whether it is solved alone (a block on
    an MPI rank), with the other sites, or in a larger instance, and whatever N is.

    Attributes
    ----------
    rates : ndarray, shape (N, P)
        Mean demand (0 where a product is not offered).
    keys : tuple of int
        One stream key per site.
    """

    rates: np.ndarray
    keys: tuple[int, ...]

    def __call__(self, seed: int, k: int) -> np.ndarray:
        out = np.empty(self.rates.shape)
        for n, key in enumerate(self.keys):
            out[n] = np.random.default_rng([seed, k, key]).poisson(self.rates[n])
        return out


# ----------------------------------------------------------------------------------------------
# Loaders


def load_multisite(folder: Path, meta: dict[str, Any], toml_path: Path) -> MultisiteInstance:
    """Read an instance folder (its parsed ``instance.toml`` is ``meta``): one CSV per table.

    Raises
    ------
    InputError
        One line naming the field (table, column and row), the value and the file.
    """
    paths = instance_files(folder, meta, toml_path, _TOP_KEYS, FILES)
    tables = {key: read_csv(path, text=False) for key, path in paths.items()}
    options = validate_options(MultisiteOptions, dict(meta.get("options", {})), "options",
                               toml_path)
    sources = {"": str(toml_path)}
    sources.update({key: str(path) for key, path in paths.items()})
    return from_tables(tables, sources, name=str(meta.get("name", folder.name)),
                       description=str(meta.get("description", "")), options=options)


def _numbers(df: pd.DataFrame, table: str, col: str, keys: list[str],
             source: str) -> np.ndarray:
    """A numeric column, finite, >= 0 and at most :data:`~stochplan.data.MAX_VALUE`; a bad
    cell names the table, column, row's keys."""
    from stochplan.data import MAX_VALUE

    values = pd.to_numeric(df[col], errors="coerce").to_numpy(float)
    bad = ~np.isfinite(values) | (values < 0) | (values > MAX_VALUE)
    if bad.any():
        i = int(np.argmax(bad))
        where = ", ".join(f"{k} {df[k].iloc[i]}" for k in keys)
        raw = df[col].iloc[i]
        problem = ("not a finite number" if not math.isfinite(values[i]) else
                   "must be non-negative" if values[i] < 0 else
                   f"is beyond the supported range: at most {MAX_VALUE:g} (HiGHS cannot solve "
                   "reliably with larger coefficients)")
        raise InputError(f"{table}.{col} ({where})", plain(raw), problem, source)
    return values


def from_tables(tables: dict[str, pd.DataFrame], source: str | Mapping[str, str],
                name: str = "multisite",
                description: str = "", options: MultisiteOptions | None = None,
                database: str | None = None) -> MultisiteInstance:
    """Validate the four tables and build the record.

    Raises
    ------
    InputError
        A missing table or column, a bad number (negative hours, say), an unknown site,
        product or machine in a link table, a duplicated key, a site with no machines or no
        inventory, min demand above max demand: one line naming the table, column, keys,
        value and the file it came from: ``source`` names it, or maps each table to its
        file (``""`` to the instance's own file).
    """
    def src(table: str) -> str:
        if isinstance(source, str):
            return source
        return source.get(table) or source.get("", "")

    tables = {k: v.copy() for k, v in tables.items()}
    for table, cols in COLUMNS.items():
        if table not in tables:
            raise InputError("table", table, f"missing (tables found: "
                             f"{', '.join(sorted(tables)) or 'none'})", src(table))
        df = tables[table]
        df.columns = [str(c).strip() for c in df.columns]
        for col in cols:
            if col not in df.columns:
                raise InputError(f"{table}.{col}", None, f"column missing (columns found: "
                                 f"{', '.join(df.columns)})", src(table))
        for col in _TEXT:
            if col in df.columns:
                df[col] = df[col].astype(str).str.strip()
    prod_df = tables["ProductData"]
    link_df = tables["ProductMachineData"]
    mach_df = tables["MachineData"]
    inv_df = tables["InventoryData"]
    for table, df, keys in (("ProductData", prod_df, ["site", "product"]),
                            ("ProductMachineData", link_df, ["site", "product", "machine"]),
                            ("MachineData", mach_df, ["site", "machine"]),
                            ("InventoryData", inv_df, ["site"])):
        dup = df.duplicated(keys)
        if dup.any():
            i = int(np.argmax(dup.to_numpy()))
            raise InputError(f"{table} ({', '.join(keys)})",
                             ", ".join(str(df[k].iloc[i]) for k in keys),
                             "appears more than once", src(table))
    if prod_df.empty:
        raise InputError("ProductData", "no rows", "an instance needs at least one product",
                         src("ProductData"))

    sites = tuple(pd.unique(prod_df["site"]))
    products = tuple(pd.unique(prod_df["product"]))
    machines = tuple(pd.unique(mach_df["machine"]))
    s_pos = {s: i for i, s in enumerate(sites)}
    p_pos = {p: i for i, p in enumerate(products)}
    m_pos = {m: i for i, m in enumerate(machines)}
    N, P, M = len(sites), len(products), len(machines)

    keys_p = ["site", "product"]
    n = prod_df["site"].map(s_pos).to_numpy(int)
    p = prod_df["product"].map(p_pos).to_numpy(int)
    arrays: dict[str, np.ndarray] = {}
    for col in ("price", "raw_material", "raw_material_cost", "min_demand", "max_demand"):
        grid = np.zeros((N, P))
        grid[n, p] = _numbers(prod_df, "ProductData", col, keys_p, src("ProductData"))
        arrays[col] = grid
    lo, hi = arrays["min_demand"], arrays["max_demand"]
    if np.any(lo[n, p] > hi[n, p]):
        i = int(np.argmax(lo[n, p] > hi[n, p]))
        raise InputError(f"ProductData.min_demand (site {prod_df['site'].iloc[i]}, product "
                         f"{prod_df['product'].iloc[i]})", plain(lo[n[i], p[i]]),
                         f"exceeds max_demand ({hi[n[i], p[i]]:g})", src("ProductData"))
    mean = np.zeros((N, P))
    if "mean_demand" in prod_df.columns:
        mean[n, p] = _numbers(prod_df, "ProductData", "mean_demand", keys_p,
                              src("ProductData"))
    else:
        mean[n, p] = (lo[n, p] + hi[n, p]) / 2.0
    offered = np.zeros((N, P), dtype=bool)
    offered[n, p] = True
    group = np.full((N, P), "", dtype=object)
    if "product_group" in prod_df.columns:
        group[n, p] = prod_df["product_group"].to_numpy(object)

    # machines
    unknown = ~mach_df["site"].isin(s_pos)
    if unknown.any():
        i = int(np.argmax(unknown.to_numpy()))
        raise InputError("MachineData.site", mach_df["site"].iloc[i],
                         "a site with no products in ProductData", src("MachineData"))
    a = mach_df["site"].map(s_pos).to_numpy(int)
    b = mach_df["machine"].map(m_pos).to_numpy(int)
    has_machine = np.zeros((N, M), dtype=bool)
    has_machine[a, b] = True
    cph, hours = np.zeros((N, M)), np.zeros((N, M))
    keys_m, src_m = ["site", "machine"], src("MachineData")
    cph[a, b] = _numbers(mach_df, "MachineData", "cost_per_hour", keys_m, src_m)
    hours[a, b] = _numbers(mach_df, "MachineData", "weekly_hours", keys_m, src_m)
    no_machine = [s for i, s in enumerate(sites) if not has_machine[i].any()]
    if no_machine:
        raise InputError("MachineData.site", no_machine[0],
                         f"site {no_machine[0]} has no machines"
                         + (f" (nor {len(no_machine) - 1} other site(s))"
                            if len(no_machine) > 1 else ""), src("MachineData"))

    # labour minutes
    minutes = np.zeros((N, P, M))
    if not link_df.empty:
        ln = link_df["site"].map(s_pos)
        lp = link_df["product"].map(p_pos)
        lm = link_df["machine"].map(m_pos)
        for col, pos, what in (("site", ln, "site"), ("product", lp, "product"),
                               ("machine", lm, "machine")):
            if pos.isna().any():
                i = int(np.argmax(pos.isna().to_numpy()))
                raise InputError(f"ProductMachineData.{col}", link_df[col].iloc[i],
                                 f"unknown {what}", src("ProductMachineData"))
        ln_, lp_, lm_ = (x.to_numpy(int) for x in (ln, lp, lm))
        bad = ~offered[ln_, lp_] | ~has_machine[ln_, lm_]
        if bad.any():
            i = int(np.argmax(bad))
            what = ("product" if not offered[ln_[i], lp_[i]] else "machine")
            raise InputError(f"ProductMachineData.{what} (site {link_df['site'].iloc[i]})",
                             link_df[what].iloc[i], f"not a {what} of that site",
                             src("ProductMachineData"))
        minutes[ln_, lp_, lm_] = _numbers(link_df, "ProductMachineData", "minutes",
                                          ["site", "product", "machine"], src("ProductMachineData"))

    # inventory
    unknown = ~inv_df["site"].isin(s_pos)
    if unknown.any():
        i = int(np.argmax(unknown.to_numpy()))
        raise InputError("InventoryData.site", inv_df["site"].iloc[i],
                         "a site with no products in ProductData", src("InventoryData"))
    inventory = np.full(N, np.nan)
    inventory[inv_df["site"].map(s_pos).to_numpy(int)] = _numbers(
        inv_df, "InventoryData", "raw_material_inventory", ["site"], src("InventoryData"))
    if np.isnan(inventory).any():
        site = sites[int(np.argmax(np.isnan(inventory)))]
        raise InputError("InventoryData.site", site, f"site {site} has no inventory row",
                         src("InventoryData"))

    return MultisiteInstance(
        name=name, description=description, sites=sites, products=products,
        machines=machines, offered=offered, price=arrays["price"],
        raw_material=arrays["raw_material"], raw_material_cost=arrays["raw_material_cost"],
        min_demand=lo, max_demand=hi, mean_demand=mean, group=group, minutes=minutes,
        has_machine=has_machine, cost_per_hour=cph, weekly_hours=hours, inventory=inventory,
        options=options or MultisiteOptions(), source=src(""), database=database)
