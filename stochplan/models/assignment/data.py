"""Instance data of the assignment family (seed 004): the record, its options and the loader.

An instance is a folder holding ``instance.toml`` and two tables (three with predicted rates),
named in a ``[files]`` table (the defaults below):

``producers.csv``
    ``producer_id, location_x, location_y, target_volume, current_volume, min_dimensions_x,
    min_dimensions_y, max_dimensions_x, max_dimensions_y, can_bend, can_deburr,
    can_galvanize, acceptance_rate``: location in map units, volumes in order-value units
    ($), part dimensions in the seed's length unit, capabilities 0/1, the probability that
    the producer accepts an order offered to it.
``orders.csv``
    ``order_id, client_location_x, client_location_y, order_value, dimensions_x,
    dimensions_y, requires_bending, requires_deburring, requires_galvanizing``: the client's
    location, the order's value ($), its dimensions and the operations it needs (0/1).
``pair_rates.csv`` (optional, ``[files] pair_rates``)
    ``order_id, producer_id, acceptance_rate``: predicted acceptance probabilities of single
    pairs (from a model of past acceptances, say); they replace the producer's rate for the
    pairs listed.

Everything is checked when it is read: a rate outside [0, 1], a negative dimension, value or
volume, a producer whose minimum dimension exceeds its maximum, a duplicate id, an unknown id
in ``pair_rates.csv``: each raises :class:`~stochplan.errors.InputError` naming the field
(column and row), the value and the file. An order no producer can make is not an error: it
is kept out of the instance with a warning naming it (the public data has five: orders 17,
21, 42, 44 and 49).

Units: money and volumes in $ (order value), distances in map units, charged one $ per unit
(the public code's transportation cost), rates as probabilities.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pydantic

from stochplan.data import Table, instance_files, plain
from stochplan.errors import InputError
from stochplan.family import validate_options

__all__ = [
    "FILES",
    "OPERATIONS",
    "AcceptanceSampler",
    "AssignmentInstance",
    "AssignmentOptions",
    "compatibility",
    "distances",
    "load_assignment",
]

log = logging.getLogger(__name__)

#: The operations an order may require and a producer may offer (order column, producer column).
OPERATIONS = (
    ("requires_bending", "can_bend"),
    ("requires_deburring", "can_deburr"),
    ("requires_galvanizing", "can_galvanize"),
)

#: The tables of an instance and their default file names (``[files]`` in instance.toml);
#: ``pair_rates`` is optional.
FILES = {"producers": "producers.csv", "orders": "orders.csv", "pair_rates": None}

_TOP_KEYS = ("family", "name", "description", "files", "options")
_PRODUCER_COLUMNS = {
    "producer_id": "int", "location_x": "real", "location_y": "real", "target_volume": "num",
    "current_volume": "num", "min_dimensions_x": "num", "min_dimensions_y": "num",
    "max_dimensions_x": "num", "max_dimensions_y": "num", "can_bend": "flag",
    "can_deburr": "flag", "can_galvanize": "flag", "acceptance_rate": "rate",
}
_ORDER_COLUMNS = {
    "order_id": "int", "client_location_x": "real", "client_location_y": "real",
    "order_value": "num", "dimensions_x": "num", "dimensions_y": "num",
    "requires_bending": "flag", "requires_deburring": "flag", "requires_galvanizing": "flag",
}


# ----------------------------------------------------------------------------------------------
# Options


class AssignmentOptions(pydantic.BaseModel):
    """What a researcher varies without touching the data (``[options]`` of instance.toml,
    ``[model]`` of a run, ``--set key=value``).

    Attributes
    ----------
    integer : bool
        Offers binary (False: the LP relaxation of offers and reassignments; ``--relax``).
    recourse_integer : bool
        Reassignments binary (False: relaxed to [0, 1], with binary offers).
    capacity : {"gap", "none"}
        ``"gap"``: producer j takes at most its volume gap max(0, target - current) of order
        value, in offers and in accepted offers plus reassignments. ``"none"``: no capacity
        (the public code).
    acceptance : {"rate", "perturbed"}
        How ``sample:N`` draws acceptances: Bernoulli at each pair's rate, or (the public
        code's perturbation) at the rate times a factor uniform in [1 - p, 1 + p] drawn per
        producer and scenario, clipped to [0, 1].
    perturbation : float
        p of ``acceptance = "perturbed"`` (0.05: the public code's +-5 %).
    reassignment : {"certain", "rate"}
        A reassignment is accepted for certain, or with the new producer's rate (its expected
        profit in the model; drawn in the simulation).
    reassignment_cost : float
        $ per order reassigned.
    gap_weight : float
        $ per $ of volume gap left open after the day (the pull toward the targets).
    sense : {"max", "min"}
        ``"max"`` maximises expected profit; ``"min"`` minimises its negative.
    """

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", strict=True,
                                       allow_inf_nan=False)

    integer: bool = pydantic.Field(True, description="offers binary (false: LP relaxation)")
    recourse_integer: bool = pydantic.Field(
        True, description="reassignments binary (false: relaxed to [0, 1])")
    capacity: Literal["gap", "none"] = pydantic.Field(
        "gap", description="producer capacity: its volume gap (gap) or none")
    acceptance: Literal["rate", "perturbed"] = pydantic.Field(
        "rate", description="sample:N draws at the rates (rate) or at perturbed rates")
    perturbation: float = pydantic.Field(
        0.05, ge=0.0, le=1.0, description="relative rate perturbation of acceptance=perturbed")
    reassignment: Literal["certain", "rate"] = pydantic.Field(
        "certain", description="a reassignment is accepted for certain or with the rate")
    reassignment_cost: float = pydantic.Field(0.0, ge=0.0, description="$ per order reassigned")
    gap_weight: float = pydantic.Field(
        0.0, ge=0.0, description="$ per $ of producers' volume gap left open")
    sense: Literal["max", "min"] = pydantic.Field(
        "max", description="maximise profit (max) or minimise its negative (min)")


# ----------------------------------------------------------------------------------------------
# Compatibility and distances (plain functions, shared by the record and the tests' readers)


def compatibility(requires: np.ndarray, capable: np.ndarray, dims: np.ndarray,
                  min_dims: np.ndarray, max_dims: np.ndarray) -> np.ndarray:
    """(O, P) bool: producer j can make order i when it offers every operation i requires and
    i's x and y dimensions lie within j's minimum and maximum (bounds included)."""
    ops = np.all(requires[:, None, :] <= capable[None, :, :], axis=2)
    fits = np.all((min_dims[None, :, :] <= dims[:, None, :])
                  & (dims[:, None, :] <= max_dims[None, :, :]), axis=2)
    return ops & fits


def distances(order_xy: np.ndarray, producer_xy: np.ndarray) -> np.ndarray:
    """(O, P) Euclidean distances between clients and producers, map units."""
    diff = order_xy[:, None, :] - producer_xy[None, :, :]
    return np.sqrt((diff ** 2).sum(axis=2))


# ----------------------------------------------------------------------------------------------
# The record


@dataclass(frozen=True, eq=False)
class AssignmentInstance:
    """One day's orders and the producers that may take them.

    Arrays follow the tuples of ids: ``[i]`` orders (only those some producer can make),
    ``[j]`` producers. Operations are in :data:`OPERATIONS` order (bending, deburring,
    galvanising).
    """

    name: str
    orders: tuple[int, ...]
    producers: tuple[int, ...]
    value: np.ndarray  # (O,) $ per order
    order_xy: np.ndarray  # (O, 2) client location
    dims: np.ndarray  # (O, 2) x and y dimensions
    requires: np.ndarray  # (O, 3) 0/1 operations required
    producer_xy: np.ndarray  # (P, 2) producer location
    target: np.ndarray  # (P,) target volume, $
    current: np.ndarray  # (P,) current volume, $
    min_dims: np.ndarray  # (P, 2)
    max_dims: np.ndarray  # (P, 2)
    capable: np.ndarray  # (P, 3) 0/1 operations offered
    rate: np.ndarray  # (P,) acceptance probability
    pair_rate: np.ndarray | None = None  # (O, P) predicted rates (None: the producer's)
    excluded: tuple[int, ...] = ()  # orders no producer can make (kept out)
    options: AssignmentOptions = field(default_factory=AssignmentOptions)
    description: str = ""
    source: str = ""

    family: ClassVar[str] = "assignment"

    def __post_init__(self) -> None:
        src = self.source or None
        n_o, n_p = len(self.orders), len(self.producers)
        if n_o == 0 or n_p == 0:
            raise InputError("instance", f"{n_o} orders, {n_p} producers",
                             "needs at least one order some producer can make and one "
                             "producer", src)
        for what, ids in (("order_id", self.orders), ("producer_id", self.producers)):
            if len(set(ids)) != len(ids):
                dup = next(x for x in ids if ids.count(x) > 1)
                raise InputError(what, dup, "appears more than once", src)
        shapes = {"value": (n_o,), "order_xy": (n_o, 2), "dims": (n_o, 2),
                  "requires": (n_o, 3), "producer_xy": (n_p, 2), "target": (n_p,),
                  "current": (n_p,), "min_dims": (n_p, 2), "max_dims": (n_p, 2),
                  "capable": (n_p, 3), "rate": (n_p,)}
        if self.pair_rate is not None:
            shapes["pair_rate"] = (n_o, n_p)
        for name, shape in shapes.items():
            arr = np.array(getattr(self, name), dtype=float)
            if arr.shape != shape:
                raise InputError(name, f"shape {arr.shape}", f"expected shape {shape}", src)
            if not np.all(np.isfinite(arr)):
                raise InputError(name, "non-finite entries", "must be finite", src)
            if name not in ("order_xy", "producer_xy") and np.any(arr < 0):
                raise InputError(name, float(arr[arr < 0][0]), "must be non-negative", src)
            if name in ("rate", "pair_rate", "requires", "capable") and np.any(arr > 1):
                raise InputError(name, float(arr[arr > 1][0]), "must be at most 1", src)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        bad = np.argwhere(self.min_dims > self.max_dims)
        if bad.size:
            j, d = bad[0]
            axis = "xy"[d]
            raise InputError(f"producer {self.producers[j]} min_dimensions_{axis}",
                             float(self.min_dims[j, d]),
                             f"exceeds max_dimensions_{axis} ({self.max_dims[j, d]:g})", src)
        none = [self.orders[i] for i in np.flatnonzero(~self.compatible.any(axis=1))]
        if none:
            raise InputError("orders", none, "no producer can make them (the loader keeps "
                             "such orders out)", src)

    # -- derived data --------------------------------------------------------------------------

    @property
    def n_orders(self) -> int:
        return len(self.orders)

    @property
    def n_producers(self) -> int:
        return len(self.producers)

    @cached_property
    def compatible(self) -> np.ndarray:
        """(O, P) bool: :func:`compatibility` of the orders and producers."""
        return _frozen(compatibility(self.requires, self.capable, self.dims, self.min_dims,
                                     self.max_dims))

    @cached_property
    def distance(self) -> np.ndarray:
        """(O, P) Euclidean client-producer distances (:func:`distances`), map units = $."""
        return _frozen(distances(self.order_xy, self.producer_xy))

    @cached_property
    def pairs(self) -> tuple[tuple[int, int], ...]:
        """The compatible (order id, producer id) pairs, order-major."""
        ok = self.compatible
        return tuple((self.orders[i], self.producers[j]) for i, j in np.argwhere(ok).tolist())

    @property
    def pair_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions (i, j) of the compatible pairs, in :attr:`pairs` order."""
        i, j = np.nonzero(self.compatible)
        return i, j

    @property
    def gap(self) -> np.ndarray:
        """(P,) volume gap max(0, target - current), $."""
        return np.maximum(self.target - self.current, 0.0)

    @property
    def capacity(self) -> np.ndarray:
        """(P,) order value producer j may take: its gap, or +inf with ``capacity = "none"``."""
        if self.options.capacity == "none":
            return np.full(self.n_producers, np.inf)
        return self.gap

    @cached_property
    def rates(self) -> np.ndarray:
        """(O, P) acceptance probability of each pair: the predicted pair rate when given,
        else the producer's; 0 on incompatible pairs."""
        base = (self.pair_rate if self.pair_rate is not None
                else np.broadcast_to(self.rate, (self.n_orders, self.n_producers)))
        return _frozen(np.where(self.compatible, base, 0.0))

    def with_options(self, **changes: Any) -> AssignmentInstance:
        """A copy with some options changed (validated again)."""
        import dataclasses

        options = validate_options(AssignmentOptions, changes, "options", self.source or None,
                                   base=self.options)
        return dataclasses.replace(self, options=options)


# ----------------------------------------------------------------------------------------------
# Scenarios


@dataclass(frozen=True, eq=False)
class AcceptanceSampler:
    """Scenario k of base seed s: whether each compatible pair would accept (``sample:N``).

    ``rng = np.random.default_rng([seed, k])`` is the only randomness: with a perturbation p,
    first one factor per producer ``rng.uniform(1 - p, 1 + p, P)`` (the rates become
    ``clip(rate * factor, 0, 1)``), then ``rng.random((O, P))``; pair (i, j) accepts when its
    number is below its rate. Incompatible pairs are 0. So scenario k is the same whatever N.

    Attributes
    ----------
    rates : ndarray, shape (O, P)
        :attr:`AssignmentInstance.rates`.
    perturbation : float or None
        p, or None for plain Bernoulli draws at the rates.
    """

    rates: np.ndarray
    perturbation: float | None = None

    def __call__(self, seed: int, k: int) -> np.ndarray:
        rng = np.random.default_rng([seed, k])
        rates = self.rates
        if self.perturbation is not None:
            p = self.perturbation
            factor = np.asarray(rng.uniform(1.0 - p, 1.0 + p, size=rates.shape[1]))
            rates = np.clip(rates * factor[None, :], 0.0, 1.0)
        u = rng.random(rates.shape)
        return ((u < rates) & (self.rates > 0)).astype(float)


# ----------------------------------------------------------------------------------------------
# The loader


def load_assignment(folder: Path, meta: dict[str, Any], toml_path: Path) -> AssignmentInstance:
    """Read an instance folder (its parsed ``instance.toml`` is ``meta``).

    Orders no producer can make are kept out with a warning naming them.

    Raises
    ------
    InputError
        One line naming the field (key, or CSV column and row), the value and the file.
    """
    paths = instance_files(folder, meta, toml_path, _TOP_KEYS, FILES)
    options_meta = meta.get("options", {})
    if not isinstance(options_meta, dict):
        raise InputError("options", options_meta, "must be an [options] table", toml_path)
    options = validate_options(AssignmentOptions, dict(options_meta), "options", toml_path)

    prod = Table(paths["producers"], _PRODUCER_COLUMNS)
    producer_ids = prod.ids("producer_id")
    for axis in "xy":
        for row, (lo, hi) in prod.rows(f"min_dimensions_{axis}", f"max_dimensions_{axis}"):
            if lo > hi:
                raise InputError(f"min_dimensions_{axis} (row {row + 2})", plain(lo),
                                 f"exceeds max_dimensions_{axis} ({hi:g})", prod.path)
    orders = Table(paths["orders"], _ORDER_COLUMNS)
    order_ids = orders.ids("order_id")

    requires = orders.array("requires_bending", "requires_deburring", "requires_galvanizing")
    capable = prod.array("can_bend", "can_deburr", "can_galvanize")
    dims = orders.array("dimensions_x", "dimensions_y")
    min_dims = prod.array("min_dimensions_x", "min_dimensions_y")
    max_dims = prod.array("max_dimensions_x", "max_dimensions_y")
    ok = compatibility(requires, capable, dims, min_dims, max_dims)
    keep = np.asarray(ok.any(axis=1), dtype=bool)
    excluded = tuple(order_ids[i] for i in np.flatnonzero(~keep))

    pair_rate = None
    kept_ids = [o for o, k in zip(order_ids, keep.tolist()) if k]
    if "pair_rates" in paths:
        table = Table(paths["pair_rates"], {"order_id": "int", "producer_id": "int",
                                             "acceptance_rate": "rate"})
        o_pos = {o: i for i, o in enumerate(kept_ids)}
        all_orders = {o: i for i, o in enumerate(order_ids)}
        p_pos = {p: j for j, p in enumerate(producer_ids)}
        pair_rate = np.broadcast_to(prod.array("acceptance_rate")[:, 0],
                                    (len(kept_ids), len(producer_ids))).copy()
        for row, (o, p, r) in table.rows("order_id", "producer_id", "acceptance_rate"):
            table.lookup("order_id", row, o, all_orders, "order")
            j = table.lookup("producer_id", row, p, p_pos, "producer")
            table.once(row, (o, p), "order_id, producer_id", (o, p))
            if o in o_pos:
                pair_rate[o_pos[o], j] = r

    inst = AssignmentInstance(
        name=str(meta.get("name", folder.name)),
        description=str(meta.get("description", "")),
        orders=tuple(kept_ids),
        producers=tuple(producer_ids),
        value=orders.array("order_value")[keep, 0],
        order_xy=orders.array("client_location_x", "client_location_y")[keep],
        dims=dims[keep],
        requires=requires[keep],
        producer_xy=prod.array("location_x", "location_y"),
        target=prod.array("target_volume")[:, 0],
        current=prod.array("current_volume")[:, 0],
        min_dims=min_dims,
        max_dims=max_dims,
        capable=capable,
        rate=prod.array("acceptance_rate")[:, 0],
        pair_rate=pair_rate,
        excluded=excluded,
        options=options,
        source=str(toml_path),
    )
    if excluded:  # after every check, so that bad input stays one line
        log.warning("orders %s in %s: no producer can make them (operations or dimensions); "
                    "they are kept out of the instance",
                    ", ".join(str(o) for o in excluded), orders.path)
    return inst


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr
