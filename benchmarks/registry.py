"""The benchmark registry: named specs, each swept over a size axis with fixed seeds.

A spec's ``run(sizes, workdir, smoke)`` returns a :class:`Outcome` (rows for RESULTS.json and
the markdown body of its RESULTS.md section). ``smoke`` is the smallest size, run by ``make
test``. A spec with ``takes_instance`` runs on any instance of any registered family: its
``run`` also takes ``instance=`` (a built-in name or an instance folder; ``run.py
--instance``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Outcome:
    rows: list[dict[str, Any]]
    markdown: str
    goals: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Spec:
    name: str
    title: str
    sizes: tuple[Any, ...]
    smoke: tuple[Any, ...]
    run: Callable[..., Outcome]
    description: str = ""
    #: ``run`` takes ``instance=`` (family-generic specs); the others use their own instance.
    takes_instance: bool = False


SPECS: dict[str, Spec] = {}


def register(spec: Spec) -> Spec:
    if spec.name in SPECS:
        raise ValueError(f"benchmark {spec.name!r} registered twice")
    SPECS[spec.name] = spec
    return spec
