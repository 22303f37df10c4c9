"""The advice for models without relatively complete recourse names the family's own remedy
and nothing of another family's (``Family.recourse_remedy``)."""

from __future__ import annotations

from stochplan.analysis.recourse import ADVICE, advice, infinite_eev_note, remedy_of
from stochplan.family import get_family
from stochplan.models import BUILTIN, farmer


def test_the_aggregate_family_names_its_lost_sales_option_and_others_do_not():
    aggregate = get_family("aggregate")
    assert "lost_sales_penalty" in remedy_of(aggregate.module)
    assert "lost_sales_penalty" in advice(remedy_of(aggregate.module))
    for name in BUILTIN:
        if name != "aggregate":
            assert "lost_sales_penalty" not in advice(remedy_of(get_family(name).module))
    assert remedy_of(farmer) == "" and advice("") == ADVICE
    assert "lost_sales_penalty" not in ADVICE


def test_the_eev_note_carries_the_remedy():
    note = infinite_eev_note(["scen1"], 0.25, "min", "price the shortage")
    assert "scen1" in note and "25.0%" in note and "price the shortage" in note
