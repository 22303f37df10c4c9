"""Fixtures shared by the model families' tests."""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

HAND_PRODUCERS = """producer_id,location_x,location_y,target_volume,current_volume,\
min_dimensions_x,min_dimensions_y,max_dimensions_x,max_dimensions_y,can_bend,can_deburr,\
can_galvanize,acceptance_rate
1,0,0,100,0,1,1,50,50,1,1,1,0.5
2,0,10,250,50,1,1,50,50,1,1,1,0.8
"""
HAND_ORDERS = """order_id,client_location_x,client_location_y,order_value,dimensions_x,\
dimensions_y,requires_bending,requires_deburring,requires_galvanizing
1,0,3,100,10,10,0,0,0
2,0,6,200,10,10,1,0,0
"""
HAND_RATES = {(1, 1): 0.5, (1, 2): 0.8, (2, 1): 0.5, (2, 2): 0.8}


@pytest.fixture()
def hand(tmp_path: Path) -> Path:
    """Producer 1 at (0, 0) (rate 0.5, gap 100), producer 2 at (0, 10) (rate 0.8, gap 200);
    order 1 ($100) at (0, 3), order 2 ($200) at (0, 6): distances 3, 7 and 6, 4. Order 2 fits
    only producer 2's gap. The scenario file lists all 16 acceptance outcomes of the four
    pairs with their exact probabilities."""
    folder = tmp_path / "hand"
    folder.mkdir()
    (folder / "producers.csv").write_text(HAND_PRODUCERS)
    (folder / "orders.csv").write_text(HAND_ORDERS)
    (folder / "instance.toml").write_text('family = "assignment"\nname = "hand"\n')
    rows = []
    cells = list(HAND_RATES)
    for k, outcome in enumerate(product((0, 1), repeat=4)):
        prob = math.prod(HAND_RATES[c] if o else 1 - HAND_RATES[c]
                         for c, o in zip(cells, outcome))
        rows += [(f"s{k}", c[0], c[1], o, prob) for c, o in zip(cells, outcome)]
    pd.DataFrame(rows, columns=["scenario", "order", "producer", "value", "probability"]
                 ).to_csv(folder / "outcomes.csv", index=False)
    return folder


def _same_compiled(got: Any, want: Any) -> None:
    """Two :class:`~stochplan.solve.matrix.CompiledScenarios` equal entry by entry, exactly (no
    tolerance): a family's arrays against the compiled Pyomo models."""
    for name in ("probabilities", "row_sense", "rhs", "col_lo", "col_hi", "cost", "offset"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.shape == b.shape, name
        np.testing.assert_array_equal(a, b, name)
    assert got.A.shape == want.A.shape and (got.A != want.A).nnz == 0
    assert got.row_family == want.row_family and got.names == want.names
    assert got.sense == want.sense
    assert got.columns.variables == want.columns.variables
    assert got.columns.indices == want.columns.indices
    assert got.columns.n_first == want.columns.n_first
    np.testing.assert_array_equal(got.columns.integer, want.columns.integer)


@pytest.fixture()
def same_compiled() -> Callable[[Any, Any], None]:
    """The check that two compiled scenario sets are equal entry by entry."""
    return _same_compiled
