"""The benchmark registry: named specs, each swept over a size axis with fixed seeds.

A spec's ``run(sizes, workdir, smoke)`` returns a :class:`Outcome` (rows for RESULTS.json and
the markdown body of its RESULTS.md section). ``smoke`` is the smallest size, run by ``make
test``. A spec with ``takes_instance`` runs on any instance of any registered family: its
``run`` also takes ``instance=`` (a built-in name or an instance folder; ``run.py
--instance``).

A spec with ``checkpoints`` also takes ``checkpoint=``, a :data:`Checkpoint` it calls with its
partial :class:`Outcome` as rows (or cells) finish: ``run.py`` then rewrites the spec's
entries in RESULTS.md and RESULTS.json each time, marked partial until the last call, so an
interrupted run keeps what it measured. The others are written when ``run`` returns. A spec
with its own ``instances`` (a block of rows per instance) takes ``instances=``, the ones to run
(``run.py --instance`` picks one of them).
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


#: ``checkpoint(outcome, done, total, unit)``: ``done`` of ``total`` units (``"rows"`` or
#: ``"cells"``) are measured in ``outcome``; ``done == total`` is the final call.
Checkpoint = Callable[[Outcome, int, int, str], None]


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
    #: ``run`` takes ``checkpoint=`` (a :data:`Checkpoint`) and calls it as rows finish.
    checkpoints: bool = False
    #: The spec's own instances (built-in names), each a block of rows; ``run`` takes
    #: ``instances=`` (a subset, in this order). Empty: one instance, not chosen.
    instances: tuple[str, ...] = ()
    #: ``run`` takes ``earlier=``: the rows of the spec's previous run (from OUT/RESULTS.json,
    #: each with ``"run"``: the command and commit that measured it); the rows this run does
    #: not measure again stay in its table, so a run of one instance or size adds to it.
    keeps_rows: bool = False


SPECS: dict[str, Spec] = {}


def register(spec: Spec) -> Spec:
    if spec.name in SPECS:
        raise ValueError(f"benchmark {spec.name!r} registered twice")
    SPECS[spec.name] = spec
    return spec
