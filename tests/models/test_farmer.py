"""The textbook farmer (Birge & Louveaux, ch. 1) through the generic value report."""

from __future__ import annotations

import pytest

from stochplan.analysis.value import value_report
from stochplan.models import farmer

pytestmark = pytest.mark.solve


@pytest.mark.parametrize("sense, sign", [("min", -1.0), ("max", 1.0)])
def test_published_values_to_the_cent(sense, sign):
    """RP -108,390, EV -118,600, EEV -107,240, WS -115,405.56, VSS 1,150, EVPI 7,015.56
    (costs; the same with the sign flipped when maximising profit)."""
    r = value_report(farmer, farmer.scenario_names_creator(3), {"sense": sense})
    assert r.sense == sense
    assert round(r.rp, 2) == sign * 108_390.00
    assert round(r.ev, 2) == sign * 118_600.00
    assert round(r.eev, 2) == sign * 107_240.00
    assert round(r.ws, 2) == sign * 115_405.56
    assert round(r.vss, 2) == 1_150.00
    assert round(r.evpi, 2) == 7_015.56
    assert r.infeasible == ()


def test_plans_are_the_textbook_ones():
    """Stochastic plan: 170 wheat, 80 corn, 250 beets; mean-value plan: 120, 80, 300."""
    r = value_report(farmer, farmer.scenario_names_creator(3))
    rp = r.rp_plan.set_index("crop")["value"]
    ev = r.ev_plan.set_index("crop")["value"]
    assert rp.to_dict() == pytest.approx({"WHEAT": 170.0, "CORN": 80.0, "SUGAR_BEETS": 250.0})
    assert ev.to_dict() == pytest.approx({"WHEAT": 120.0, "CORN": 80.0, "SUGAR_BEETS": 300.0})
