"""One typed configuration per run, loaded at the edge.

A run is configured by an optional TOML file and the command line; the CLI flags override the
file. Every section is checked when the file is loaded: an unknown section or key, a value of
the wrong type or out of range is one :class:`~stochplan.errors.InputError` naming
``section.key``, the value, the problem and the file::

    [model]                 # the family's options; override the instance's [options]
    integer = false
    lost_sales_penalty = 500.0

    [scenarios]
    spec = "poisson:100"    # named (alias three-point) | sample:N | poisson:N | qmc:N | file:PATH
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

    [lshaped]               # L-shaped method (method = "lshaped")
    rel_gap = 1e-4
    clusters = 50

    [risk]                  # the objective's risk measure (default: the expected cost)
    measure = "cvar"        # (1 - weight) E[cost] + weight CVaR_alpha(cost)
    alpha = 0.95
    weight = 0.5

    [output]
    db = "stochplan.db"

How a section is checked: first the types, strictly (no string is read as a number, no
number as a flag), by a pydantic model made from the section's record (:func:`section_model`);
then the ranges, by the record itself (its ``__post_init__``). ``[model]`` is checked against
the options of the instance's family (:meth:`stochplan.family.Family.options`).
:func:`config_schema` gives the JSON schema of the whole file for a family.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pydantic

from stochplan.data import read_toml
from stochplan.errors import InputError
from stochplan.family import Family, get_family, options_error
from stochplan.models import DEFAULT_INSTANCE
from stochplan.solve.ph import PHOptions
from stochplan.solve.risk import RiskConfig
from stochplan.solve.solvers import SolverOptions

if TYPE_CHECKING:
    from stochplan.solve.lshaped import LShapedOptions


@dataclass(frozen=True)
class ScenarioConfig:
    """Which scenarios.

    Attributes
    ----------
    spec : str
        named (alias three-point), sample:N, poisson:N, qmc:N or file:PATH.
    seed : int
        Base seed of the draws (an integer in 0 .. 2**63 - 1): scenario k of seed s draws from
        numpy.random.default_rng([s, k]).
    multipliers : list of float
        Scenario-level multipliers of the Poisson rates (non-negative); one level is drawn per
        scenario.
    weights : list of float or None
        Probability of each multiplier (one per multiplier, summing to 1); None: uniform.
    """

    spec: str = "named"
    seed: int = 0
    multipliers: tuple[float, ...] = (1.0,)
    weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        from stochplan.scenarios import parse_spec

        try:
            object.__setattr__(self, "spec", str(parse_spec(self.spec)))
        except InputError as err:
            raise InputError("scenarios.spec", self.spec, err.problem) from None
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InputError("scenarios.seed", self.seed, "must be a non-negative integer")
        if self.seed >= 2**63:  # the results database stores it as a signed 64-bit integer
            raise InputError("scenarios.seed", self.seed, "must be below 2**63")
        multipliers = _numbers("scenarios.multipliers", self.multipliers)
        if not multipliers:
            raise InputError("scenarios.multipliers", list(self.multipliers),
                             "needs at least one multiplier")
        object.__setattr__(self, "multipliers", multipliers)
        if self.weights is not None:
            weights = _numbers("scenarios.weights", self.weights)
            object.__setattr__(self, "weights", weights)
            if len(weights) != len(multipliers):
                raise InputError("scenarios.weights", list(weights),
                                 f"needs one weight per multiplier ({len(multipliers)})")
            if not math.isclose(sum(weights), 1.0, abs_tol=1e-9):
                raise InputError("scenarios.weights", list(weights),
                                 f"must sum to 1 (they sum to {sum(weights):.12g})")


@dataclass(frozen=True)
class OutputConfig:
    """Where results go.

    Attributes
    ----------
    db : str or None
        Results database: an SQLite file (a path or sqlite:///PATH; default ./stochplan.db)
        or any SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db.
    """

    db: str | None = None


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run (besides the instance data)."""

    instance: str = DEFAULT_INSTANCE
    method: str = "ef"
    model: dict[str, Any] = field(default_factory=dict)
    family: str | None = None
    scenarios: ScenarioConfig = field(default_factory=ScenarioConfig)
    solver: SolverOptions = field(default_factory=SolverOptions)
    ph: PHOptions = field(default_factory=PHOptions)
    lshaped: LShapedOptions = field(default_factory=lambda: _section_class("lshaped")())
    risk: RiskConfig = field(default_factory=RiskConfig)
    db: str | None = None
    source: str | None = None
    #: True when ``db`` comes from the file's ``[output] db`` (messages then name that key).
    db_from_file: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.instance, str):
            raise InputError("instance", self.instance, "must be a string (a built-in instance "
                             "name or an instance folder)", self.source)
        if self.method not in METHODS:
            raise InputError("method", self.method, f"expected one of {', '.join(METHODS)}",
                             self.source)
        if self.family is None:
            from stochplan.data import instance_family

            object.__setattr__(self, "family", instance_family(self.instance))
        # every [model] key and value is checked here, against the family's options
        self.family_object().options(self.model, self.source, section="model")

    def family_object(self) -> Family:
        """The model family of the run (from the instance's ``instance.toml``)."""
        assert self.family is not None
        return get_family(self.family)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)


#: Solution methods: the extensive form, progressive hedging (mpi-sppy, under mpiexec) and
#: the L-shaped method (serial or under mpiexec).
METHODS = ("ef", "ph", "lshaped")

#: Methods that run on every MPI rank when started under mpiexec.
DECOMPOSED = ("ph", "lshaped")

#: Methods that take a start plan (``--start-plan RUN``): the extensive form's MIP start, the
#: L-shaped method's first plan.
START_PLAN_METHODS = ("ef", "lshaped")


def check_start_plan(method: str, field: str, value: object) -> None:
    """Refuse a start plan (named by ``field`` and ``value``) for a method that takes none."""
    if method not in START_PLAN_METHODS:
        raise InputError(field, value, "a start plan is taken by --method ef (a MIP start) and "
                         f"lshaped, not by {method}")


#: The tables of a run configuration file (besides ``[model]``, the family's) and the record
#: each is read into.
SECTIONS: dict[str, type | str] = {
    "scenarios": ScenarioConfig,
    "solver": SolverOptions,
    "ph": PHOptions,
    # imported when first read: the L-shaped module loads scipy and highspy, which a run that
    # fails on its input should not wait for
    "lshaped": "stochplan.solve.lshaped:LShapedOptions",
    "risk": RiskConfig,
    "output": OutputConfig,
}


def _section_class(name: str) -> type:
    """The record class of section ``name`` (importing it when given by name)."""
    cls = SECTIONS[name]
    if isinstance(cls, str):
        import importlib

        module, _, attr = cls.partition(":")
        cls = getattr(importlib.import_module(module), attr)
        SECTIONS[name] = cls
    assert isinstance(cls, type)
    return cls
_TOP_LEVEL = ("instance", "method", "model", *SECTIONS)

#: Problems worded better than the generic ones of :func:`stochplan.family.options_error`.
_WORDING = {"scenarios.seed": "must be a non-negative integer"}


def load_config(path: str | Path | None = None, **overrides: Any) -> RunConfig:
    """Read a TOML run configuration (optional) and apply overrides given as keyword arguments.

    Overrides are ``instance``, ``method``, ``db``, ``model`` (a dict merged over the file's),
    ``scenarios``, ``solver``, ``ph``, ``lshaped`` and ``risk`` (dicts merged over the file's
    sections).
    ``None`` values are ignored, so CLI flags that were not given change nothing.

    Raises
    ------
    InputError
        The first bad key or value, naming ``section.key``, the value, the problem and the
        file (also for a bad override: it is merged into the file's section).
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
        if key not in _TOP_LEVEL:
            raise InputError(key, raw[key], "unknown section or key (known: "
                             f"{', '.join(_TOP_LEVEL)})", source)

    def section(name: str) -> dict[str, Any]:
        value = raw.get(name, {})
        if not isinstance(value, dict):
            raise InputError(name, value, "must be a [table]", source)
        merged = dict(value)
        merged.update({k: v for k, v in (overrides.get(name) or {}).items() if v is not None})
        return merged

    # the [lshaped] section is read last: its record's module loads scipy (slow to import), and
    # a mistake anywhere else in the file is reported without waiting for it
    records = {name: read_section(name, section(name), source) for name in SECTIONS
               if name != "lshaped"}
    scalars = {k: raw[k] for k in ("instance", "method") if k in raw}
    scalars.update({k: overrides[k] for k in ("instance", "method")
                    if overrides.get(k) is not None})
    db = overrides["db"] if overrides.get("db") is not None else records["output"].db
    if db is not None:
        from stochplan.store import resolve_db

        try:
            resolve_db(db)  # an empty path or a bad URL fails here, not after the solve
        except InputError as err:
            flag = "--db" if overrides.get("db") is not None else "output.db"
            raise InputError(flag, db, err.problem,
                             None if flag == "--db" else source) from None
    instance = scalars.get("instance", DEFAULT_INSTANCE)
    if isinstance(instance, str):  # [model], checked again (the same way) by RunConfig
        from stochplan.data import instance_family

        get_family(instance_family(instance)).options(section("model"), source, section="model")
    records["lshaped"] = read_section("lshaped", section("lshaped"), source)
    return RunConfig(
        model=section("model"),
        scenarios=records["scenarios"],
        solver=records["solver"],
        ph=records["ph"],
        lshaped=records["lshaped"],
        risk=records["risk"],
        db=str(db) if db is not None else None,
        source=source,
        db_from_file=db is not None and overrides.get("db") is None,
        **scalars,
    )


def read_section(name: str, values: Mapping[str, Any], source: str | Path | None = None) -> Any:
    """The record of section ``name`` (a key of :data:`SECTIONS`) from its TOML table.

    Types are checked first, strictly, by :func:`section_model`; then the record's own
    checks run. Either way a bad value is one :class:`InputError` naming ``name.key``.
    """
    cls = _section_class(name)
    shape = section_model(cls)
    # TOML arrays arrive as lists; the records hold tuples
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        checked = shape.model_validate(given)
    except pydantic.ValidationError as err:
        bad = options_error(err, values, name, source, tuple(shape.model_fields))
        field_name, _, item = bad.field.partition(".")[2].partition(".")
        problem = _WORDING.get(f"{name}.{field_name}", bad.problem)
        if item.isdigit():  # an element of a list: scenarios.multipliers.1
            problem = f"item {int(item) + 1} {problem}"
        raise InputError(f"{name}.{field_name}", bad.value, problem, source) from None
    try:
        return cls(**{k: getattr(checked, k) for k in given})
    except InputError as err:
        key = err.field.removeprefix(f"{name}.")
        # name the value as written in the file (-1, not the -1.0 the record holds)
        raise InputError(f"{name}.{key}", values.get(key, err.value), err.problem,
                         source) from None


@functools.cache
def section_model(cls: type) -> type[pydantic.BaseModel]:
    """A strict pydantic model of a record's fields (stdlib dataclass): the same names, types
    and defaults, unknown keys forbidden, no inf or nan, descriptions from the record's
    numpy-style ``Attributes`` docstring section. It checks types only; ranges are the
    record's business."""
    hints = typing.get_type_hints(cls)
    docs = _attribute_docs(cls.__doc__ or "")
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING:
            factory: Any = f.default_factory
            info = pydantic.Field(default_factory=factory, description=docs.get(f.name))
        else:
            info = pydantic.Field(f.default, description=docs.get(f.name))
        fields[f.name] = (hints[f.name], info)
    config = pydantic.ConfigDict(strict=True, extra="forbid", allow_inf_nan=False,
                                 title=cls.__name__)
    model: type[pydantic.BaseModel] = pydantic.create_model(  # type: ignore[call-overload]
        cls.__name__, __config__=config, __doc__=(cls.__doc__ or "").split("\n")[0], **fields)
    return model


def config_schema(family: Family) -> dict[str, Any]:
    """The JSON schema of a run configuration file for ``family`` (its ``[model]`` options
    included), for editors that check and complete TOML with a schema."""
    options = family.options_type
    fields: dict[str, Any] = {
        "instance": (str, pydantic.Field(family.default_instance or DEFAULT_INSTANCE,
                                         description="built-in instance name or instance "
                                         "folder (its instance.toml names the family)")),
        "method": (Literal[METHODS], pydantic.Field("ef", description="ef: extensive form; ph: "
                                                    "progressive hedging; lshaped: L-shaped "
                                                    "method")),
        "model": (options, pydantic.Field(default_factory=options,
                                          description=f"options of the {family.name} family")),
    }
    for name in SECTIONS:
        shape = section_model(_section_class(name))
        fields[name] = (shape, pydantic.Field(default_factory=shape,
                                              description=shape.__doc__))
    model = pydantic.create_model(  # type: ignore[call-overload]
        "RunConfiguration", __config__=pydantic.ConfigDict(extra="forbid"), **fields)
    schema: dict[str, Any] = model.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            **schema, "title": f"stochplan run configuration ({family.name} family)"}


def _attribute_docs(doc: str) -> dict[str, str]:
    """``name -> description`` from a numpy-style ``Attributes`` section."""
    lines = doc.expandtabs().splitlines()
    out: dict[str, str] = {}
    inside, name, indent = False, None, 0
    for line in lines:
        text = line.strip()
        if text == "Attributes":
            inside = True
            continue
        if not inside or set(text) <= {"-"} and text:
            continue
        if not text:
            continue
        depth = len(line) - len(line.lstrip())
        if " : " in text and (name is None or depth <= indent):
            name, indent = text.split(" : ")[0].strip(), depth
            out[name] = ""
        elif name is not None and depth > indent:
            out[name] = f"{out[name]} {text}".strip()
        else:
            break
    return out


def _numbers(name: str, values: Any) -> tuple[float, ...]:
    """A sequence of finite non-negative numbers as floats."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise InputError(name, values, "must be a list of numbers")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise InputError(name, list(values), "must be finite non-negative numbers")
        out.append(float(v))
    return tuple(out)
