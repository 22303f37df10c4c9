r"""A multi-product newsvendor with a shared budget: a model family that lives in the tests.

It proves the plug-in protocol of :mod:`stochplan.family` from outside the package: every
generic layer (solve by EF, L-shaped and PH, ``value``, ``evaluate``, ``saa``, the results
store, the reports, the benchmarks) runs it without naming it. The tests register it with
``stochplan.family.register(newsvendor.FAMILY)``, or through the entry-point group
``stochplan.families`` (``newsvendor = newsvendor``) with ``tests/families`` on the path.

Formulation
-----------
Products :math:`i` with unit cost ``c_i``, price ``p_i`` and salvage value ``s_i < c_i`` ($ per
unit), a budget ``B`` ($); demand ``D[i]`` in a scenario of probability :math:`\pi`.

First stage: ``Q[i]`` units ordered (integer when ``options.integer``).
Second stage, per scenario: ``S[i]`` units sold, ``V[i]`` units left over and salvaged.

Constraints::

    budget     sum_i c_i Q[i] <= B                (only when options.budget is set)
    demand     S[i] <= D[i]
    stock      S[i] <= Q[i]
    leftover   V[i] = Q[i] - S[i]
    service    S[i] >= f D[i]                     (only when options.min_fill f > 0)
    waste      V[i] <= L                          (only when options.max_leftover L is set)

Objective (minimise, $)::

    FirstStageCost  = sum_i c_i Q[i]
    SecondStageCost = -sum_i (p_i S[i] + s_i V[i])
    total           = FirstStageCost + sum_s pi_s SecondStageCost_s     (= -expected profit)

``Q[i] <= 3 x (largest demand of i in the instance) + 100``: finite, as decomposition needs,
and never binding, since an order above every demand only adds units salvaged below cost
(a ``file:`` scenario set with larger demands than that would meet it).
An LP unless ``options.integer``, so the L-shaped method applies. ``service`` and ``waste``
take away relatively complete recourse: with ``min_fill = 1`` and ``max_leftover = 0`` each
scenario alone asks for an order equal to its demand, so scenarios with different demands have
no order in common (the tests of that error use it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pydantic

from stochplan import scenarios as scen
from stochplan.errors import InputError
from stochplan.family import Family, KPIs, Panel

#: Index columns of the plan (the solvers read them from the module, see the contract lines).
INDEX_NAMES = ("product",)
#: Per-product columns of the instance CSV ($ per unit, and units for the mean demand).
_COLUMNS = ("product", "cost", "price", "salvage", "mean_demand")


class NewsvendorOptions(pydantic.BaseModel):
    """What a researcher varies (``[options]`` of instance.toml, ``[model]`` of a run)."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", strict=True,
                                       allow_inf_nan=False)

    budget: float | None = pydantic.Field(None, ge=0.0, description="$ for orders (none: no limit)")
    integer: bool = pydantic.Field(False, description="order whole units")
    min_fill: float = pydantic.Field(0.0, ge=0.0, le=1.0,
                                     description="share of each demand that must be sold")
    max_leftover: float | None = pydantic.Field(
        None, ge=0.0, description="units of each product that may be left over (none: no limit)")


@dataclass(frozen=True)
class NewsvendorInstance:
    """P products; arrays have shape (P,), ``scenario_demand`` (K, P) for K named scenarios."""

    name: str
    products: tuple[str, ...]
    labels: tuple[str, ...]
    cost: np.ndarray  # $/unit ordered
    price: np.ndarray  # $/unit sold
    salvage: np.ndarray  # $/unit left over
    mean_demand: np.ndarray  # units: the Poisson mean of sampled scenarios
    scenario_labels: tuple[str, ...] = ()
    scenario_demand: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    scenario_probabilities: np.ndarray = field(default_factory=lambda: np.zeros(0))
    options: NewsvendorOptions = field(default_factory=NewsvendorOptions)
    description: str = ""
    source: str = ""

    family: ClassVar[str] = "newsvendor"

    def __post_init__(self) -> None:
        src, P = self.source or None, len(self.products)
        for name in ("cost", "price", "salvage", "mean_demand"):
            a = np.asarray(getattr(self, name), dtype=float)
            if a.shape != (P,) or not np.all(np.isfinite(a)) or np.any(a < 0):
                raise InputError(name, a.tolist(), f"expected {P} finite numbers >= 0", src)
        for i, p in enumerate(self.products):
            if not self.salvage[i] < self.cost[i] < self.price[i]:
                raise InputError(f"{p}.salvage/cost/price", [float(self.salvage[i]),
                                 float(self.cost[i]), float(self.price[i])],
                                 "need salvage < cost < price", src)
        K = len(self.scenario_labels)
        if np.shape(self.scenario_demand) != (K, P) or np.any(self.scenario_demand < 0):
            raise InputError("scenario demand", np.shape(self.scenario_demand),
                             f"expected shape ({K}, {P}), values >= 0", src)
        if K and not math.isclose(float(np.sum(self.scenario_probabilities)), 1.0, abs_tol=1e-9):
            raise InputError("scenarios", list(self.scenario_probabilities), "must sum to 1", src)

    @property
    def order_bound(self) -> np.ndarray:
        """Finite, non-binding upper bound of ``Q`` (units)."""
        largest = np.max(np.vstack([self.mean_demand, self.scenario_demand]), axis=0)
        return 3.0 * largest + 100.0


class Newsvendor(Family):
    """Order before demand is known, sell what is demanded, salvage the rest."""

    name = "newsvendor"
    description = "multi-product newsvendor with a shared budget (a test family)"
    index_names = INDEX_NAMES
    first_stage = ("Q",)
    options_type = NewsvendorOptions
    default_instance = "kiosk"

    def load(self, folder: Path, meta: dict[str, Any], toml_path: Path) -> NewsvendorInstance:
        """Read instance.toml's ``[scenarios]`` (label = probability) and the product CSV."""
        unknown = set(meta) - {"family", "name", "description", "data", "scenarios", "options"}
        if unknown:
            key = min(unknown)
            raise InputError(key, meta[key], "unknown key", toml_path)
        csv = folder / str(meta.get("data", "products.csv"))
        if not csv.is_file():
            raise InputError("data", str(meta.get("data", "products.csv")), "file not found",
                             toml_path)
        df = pd.read_csv(csv)
        named = {str(k): float(v) for k, v in meta.get("scenarios", {}).items()}
        for col in (*_COLUMNS, *named):
            if col not in df.columns:
                raise InputError("column", col, "missing", csv)
        numbers = [c for c in df.columns if c not in ("product", "label")]
        if df[numbers].isna().any().any():
            raise InputError("value", "empty or not a number", "every cell needs a number", csv)
        options = self.options(meta.get("options", {}), toml_path, section="options")
        products = tuple(df["product"].astype(str))
        labels = df["label"].astype(str) if "label" in df.columns else df["product"].astype(str)
        return NewsvendorInstance(
            name=str(meta.get("name", folder.name)), products=products, labels=tuple(labels),
            cost=df["cost"].to_numpy(float), price=df["price"].to_numpy(float),
            salvage=df["salvage"].to_numpy(float), mean_demand=df["mean_demand"].to_numpy(float),
            scenario_labels=tuple(named),
            scenario_demand=df[list(named)].to_numpy(float).T.reshape(len(named), len(df)),
            scenario_probabilities=np.array(list(named.values())), options=options,
            description=str(meta.get("description", "")), source=str(toml_path))

    def uncertainty(self, inst: NewsvendorInstance) -> scen.Uncertainty:
        """Demand per product: Poisson around the mean, or the instance's named scenarios."""
        named = bool(inst.scenario_labels)
        return scen.Uncertainty(
            name="demand", axes={"product": inst.products}, rates=inst.mean_demand,
            named_data=inst.scenario_demand if named else None,
            named_probabilities=inst.scenario_probabilities if named else None,
            named_labels=inst.scenario_labels)

    def build(self, inst: NewsvendorInstance, data: np.ndarray, name: str) -> Any:
        import pyomo.environ as pyo

        D = dict(zip(inst.products, np.asarray(data, dtype=float).tolist()))
        c, p, s, ub = (dict(zip(inst.products, a.tolist())) for a in
                       (inst.cost, inst.price, inst.salvage, inst.order_bound))
        m = pyo.ConcreteModel(name=name)
        m.I = pyo.Set(initialize=inst.products, ordered=True)
        domain = pyo.NonNegativeIntegers if inst.options.integer else pyo.NonNegativeReals
        m.Q = pyo.Var(m.I, domain=domain, bounds=lambda m, i: (0.0, ub[i]), doc="units ordered")
        m.S = pyo.Var(m.I, domain=pyo.NonNegativeReals, doc="units sold")
        m.V = pyo.Var(m.I, domain=pyo.NonNegativeReals, doc="units left over, salvaged")
        if inst.options.budget is not None:
            # sum_i c_i Q[i] <= B
            m.budget = pyo.Constraint(expr=sum(c[i] * m.Q[i] for i in m.I) <= inst.options.budget)
        # S[i] <= D[i]
        m.demand = pyo.Constraint(m.I, rule=lambda m, i: m.S[i] <= D[i])
        # S[i] <= Q[i]
        m.stock = pyo.Constraint(m.I, rule=lambda m, i: m.S[i] <= m.Q[i])
        # V[i] = Q[i] - S[i]
        m.leftover = pyo.Constraint(m.I, rule=lambda m, i: m.V[i] == m.Q[i] - m.S[i])
        f, cap = inst.options.min_fill, inst.options.max_leftover
        if f > 0:
            # S[i] >= f D[i]
            m.service = pyo.Constraint(m.I, rule=lambda m, i: m.S[i] >= f * D[i])
        if cap is not None:
            # V[i] <= L
            m.waste = pyo.Constraint(m.I, rule=lambda m, i: m.V[i] <= cap)
        m.FirstStageCost = pyo.Expression(expr=sum(c[i] * m.Q[i] for i in m.I))
        m.SecondStageCost = pyo.Expression(expr=-sum(p[i] * m.S[i] + s[i] * m.V[i] for i in m.I))
        m.total_cost = pyo.Objective(expr=m.FirstStageCost + m.SecondStageCost)
        return m

    def kpis(self, inst: NewsvendorInstance, scenarios: scen.ScenarioSet, result: Any) -> KPIs:
        """Expected profit, fill rate (expected sales / expected demand) and leftover."""
        Q = self.plan_arrays(result.plan, inst)["Q"]
        rec = self.recourse_arrays(result.recourse, inst, result.scenario_names)
        prob = np.asarray(result.probabilities, dtype=float)
        sales, left = prob @ rec["S"], prob @ rec["V"]
        demand = prob @ np.asarray(scenarios.data, dtype=float)
        profit = inst.price * sales + inst.salvage * left - inst.cost * Q
        table = pd.DataFrame({
            "product": list(inst.products), "label": list(inst.labels), "order": Q,
            "expected_demand": demand, "expected_sales": sales, "expected_leftover": left,
            "fill_rate": sales / np.maximum(demand, 1e-12), "expected_profit": profit})
        headline = {"expected_profit": float(profit.sum()),
                    "fill_rate": float(sales.sum() / max(demand.sum(), 1e-12)),
                    "expected_leftover": float(left.sum()),
                    "order_cost": float(inst.cost @ Q)}
        return KPIs(headline, {"products": table})

    def oos_kpis(self, inst: NewsvendorInstance, scenarios: scen.ScenarioSet,
                 solves: Any) -> dict[str, float]:
        if solves.recourse is None:
            return {"fill_rate": math.nan}
        sales = self.recourse_arrays(solves.recourse, inst, scenarios.names)["S"]
        p = scenarios.probabilities
        return {"fill_rate": float((p @ sales).sum() / max((p @ scenarios.data).sum(), 1e-12))}

    def instance_tables(self, inst: NewsvendorInstance) -> dict[str, pd.DataFrame]:
        return {"instance_products": pd.DataFrame({
            "product": list(inst.products), "label": list(inst.labels), "cost": inst.cost,
            "price": inst.price, "salvage": inst.salvage, "mean_demand": inst.mean_demand})}

    def instance_summary(self, inst: NewsvendorInstance) -> dict[str, Any]:
        return {"name": inst.name, "source": inst.source, "budget": inst.options.budget}

    def report_text(self, headline: Mapping[str, float],
                    tables: Mapping[str, pd.DataFrame]) -> str:
        lines = ["NEWSVENDOR SUMMARY",
                 f"  Expected profit      {headline['expected_profit']:>14,.2f}",
                 f"  Fill rate            {headline['fill_rate']:>13.1%} ",
                 f"  Expected leftover    {headline['expected_leftover']:>14,.2f} units", "",
                 (f"  {'Product':<14}{'Order':>10}{'E[demand]':>11}{'E[sales]':>10}"
                  f"{'E[left]':>9}{'Fill':>8}{'E[profit]':>12}")]
        for r in tables["products"].itertuples(index=False):
            lines.append(f"  {r.product:<14}{r.order:>10.2f}{r.expected_demand:>11.2f}"
                         f"{r.expected_sales:>10.2f}{r.expected_leftover:>9.2f}"
                         f"{r.fill_rate:>8.1%}{r.expected_profit:>12,.2f}")
        return "\n".join(lines)

    def panels(self, view: Any) -> list[Panel]:
        """One bar chart: the order of each product against its expected demand."""
        import plotly.graph_objects as go

        table = view.table("products")
        fig = go.Figure([go.Bar(name="order Q", x=table["product"], y=table["order"]),
                         go.Bar(name="expected demand", x=table["product"],
                                y=table["expected_demand"])])
        fig.update_layout(barmode="group", yaxis_title="units")
        return [Panel("newsvendor-orders", "Order against expected demand", fig,
                      "First-stage order per product next to its expected demand.")]


FAMILY = Newsvendor()

# mpi-sppy's module contract
scenario_creator = FAMILY.scenario_creator
scenario_names_creator = FAMILY.scenario_names_creator
kw_creator = FAMILY.kw_creator
inparser_adder = FAMILY.inparser_adder
scenario_denouement = FAMILY.scenario_denouement
average_scenario_creator = FAMILY.average_scenario_creator
scenario_data = FAMILY.scenario_data
data_scenario_creator = FAMILY.data_scenario_creator
