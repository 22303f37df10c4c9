"""One typed configuration per run, loaded at the edge.

A run is configured by an optional TOML file and the command line; the CLI flags override the
file. Unknown sections or keys are errors that name the key and the file::

    [model]                 # overrides the instance's [options]
    integer = false
    lost_sales_penalty = 500.0

    [scenarios]
    spec = "poisson:100"    # three-point | poisson:N | qmc:N
    seed = 42
    multipliers = [0.8, 1.0, 1.2]   # scenario-level demand multipliers (seed 003's low/med/high)
    weights = [0.25, 0.5, 0.25]

    [solver]
    name = "highs"
    time_limit = 600.0
    mip_rel_gap = 1e-4

    [ph]                    # progressive hedging (method = "ph", under mpiexec)
    rel_gap = 0.01
    max_iterations = 200

    [lshaped]               # L-shaped method (method = "lshaped"; LPs; serial or mpiexec)
    rel_gap = 1e-4
    clusters = 50

    [output]
    db = "stochplan.db"
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stochplan.data.aggregate import ModelOptions, read_toml
from stochplan.errors import InputError
from stochplan.solve.lshaped import LShapedOptions
from stochplan.solve.ph import PHOptions
from stochplan.solve.solvers import SolverOptions


@dataclass(frozen=True)
class ScenarioConfig:
    """Which scenarios: a spec (``three-point``, ``poisson:N``, ``qmc:N``), a seed, and the
    optional scenario-level multipliers of the Poisson rates with their weights."""

    spec: str = "three-point"
    seed: int = 0
    multipliers: tuple[float, ...] = (1.0,)
    weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        from stochplan.scenarios import parse_spec

        try:
            parse_spec(self.spec)
        except InputError as err:
            raise InputError("spec", self.spec, err.problem) from None
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InputError("scenarios.seed", self.seed, "must be a non-negative integer")
        object.__setattr__(self, "multipliers", tuple(float(m) for m in self.multipliers))
        if self.weights is not None:
            object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
            if len(self.weights) != len(self.multipliers):
                raise InputError("scenarios.weights", list(self.weights),
                                 f"needs one weight per multiplier ({len(self.multipliers)})")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run (besides the instance data)."""

    instance: str = "electronics"
    method: str = "ef"
    model: dict[str, Any] = field(default_factory=dict)
    scenarios: ScenarioConfig = field(default_factory=ScenarioConfig)
    solver: SolverOptions = field(default_factory=SolverOptions)
    ph: PHOptions = field(default_factory=PHOptions)
    lshaped: LShapedOptions = field(default_factory=LShapedOptions)
    db: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError("method", self.method, f"expected one of {', '.join(METHODS)}",
                             self.source)
        known = {f.name for f in dataclasses.fields(ModelOptions)}
        for key, value in self.model.items():
            if key not in known:
                raise InputError(f"model.{key}", value,
                                 f"unknown option (known: {', '.join(sorted(known))})", self.source)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)


#: Solution methods: the extensive form, progressive hedging (mpi-sppy, under mpiexec) and
#: the L-shaped method (LPs; serial or under mpiexec).
METHODS = ("ef", "ph", "lshaped")

#: Methods that run on every MPI rank when started under mpiexec.
DECOMPOSED = ("ph", "lshaped")


def load_config(path: str | Path | None = None, **overrides: Any) -> RunConfig:
    """Read a TOML run configuration (optional) and apply overrides given as keyword arguments.

    Overrides are ``instance``, ``method``, ``db``, ``model`` (a dict merged over the file's),
    ``scenarios``, ``solver``, ``ph`` and ``lshaped`` (dicts merged over the file's sections).
    ``None`` values are ignored, so CLI flags that were not given change nothing.
    """
    raw: dict[str, Any] = {}
    source = None
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise InputError("--config", str(path), "file not found")
        raw = read_toml(p)
        source = str(p)
    for key in raw:
        if key not in ("instance", "method", "model", "scenarios", "solver", "ph", "lshaped",
                       "output"):
            raise InputError(key, raw[key], "unknown section or key (known: instance, method, "
                             "model, scenarios, solver, ph, lshaped, output)", source)

    def section(name: str) -> dict[str, Any]:
        value = raw.get(name, {})
        if not isinstance(value, dict):
            raise InputError(name, value, "must be a [table]", source)
        merged = dict(value)
        merged.update({k: v for k, v in (overrides.get(name) or {}).items() if v is not None})
        return merged

    def build(name: str, cls: type) -> Any:
        values = section(name)
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise InputError(f"{name}.{key}", values[key],
                                 f"unknown key (known: {', '.join(sorted(known))})", source)
        try:
            return cls(**values)
        except InputError as err:
            field_name = err.field if "." in err.field else f"{name}.{err.field}"
            raise InputError(field_name, err.value, err.problem, source) from None
        except TypeError as err:
            raise InputError(name, values, str(err), source) from None

    output = section("output")
    for key in output:
        if key != "db":
            raise InputError(f"output.{key}", output[key], "unknown key (known: db)", source)
    scalars = {k: raw[k] for k in ("instance", "method") if k in raw}
    scalars.update({k: overrides[k] for k in ("instance", "method") if overrides.get(k) is not None})
    db = overrides.get("db") or output.get("db")
    return RunConfig(
        model=section("model"),
        scenarios=build("scenarios", ScenarioConfig),
        solver=build("solver", SolverOptions),
        ph=build("ph", PHOptions),
        lshaped=build("lshaped", LShapedOptions),
        db=str(db) if db is not None else None,
        source=source,
        **scalars,
    )
