"""Tests of instance loading and validation (fast, no solver).

The built-in ``electronics`` instance is checked value by value against its ``instance.toml``
and ``product_data.csv``; every kind of bad input is made in a copy of that folder under
``tmp_path`` and must raise :class:`InputError` whose message names the field, the offending
value and the file.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from stochplan.data import builtin_instances, load_instance, resolve_instance
from stochplan.errors import InputError
from stochplan.models.aggregate import AggregateInstance, ModelOptions

TINY = Path(__file__).parent / "data" / "tiny"
CSV = "product_data.csv"
TOML = "instance.toml"


@pytest.fixture(scope="module")
def electronics() -> AggregateInstance:
    return load_instance("electronics")


# ----------------------------------------------------------------------------------------------
# Helpers: a copy of the electronics folder, edited to be wrong


def copy_electronics(tmp_path: Path) -> Path:
    folder = tmp_path / "electronics_copy"
    shutil.copytree(resolve_instance("electronics").parent, folder)
    return folder


def edit_toml(folder: Path, old: str, new: str) -> None:
    """Replace one exact occurrence of ``old`` in instance.toml (fails if it is not there once)."""
    path = folder / TOML
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new))


def edit_rows(folder: Path, edit: Callable[[list[dict[str, str]]], list[dict[str, str]]],
              drop_columns: tuple[str, ...] = ()) -> None:
    """Rewrite product_data.csv through ``edit`` on its rows (values stay the original text)."""
    path = folder / CSV
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        columns = [c for c in reader.fieldnames or [] if c not in drop_columns]
        rows = [{c: r[c] for c in columns} for r in reader]
    rows = edit(rows)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def set_value(product: str, week: int, column: str, value: str):
    def edit(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        hits = [r for r in rows if r["product"] == product and r["t"] == str(week)]
        assert len(hits) == 1
        hits[0][column] = value
        return rows

    return edit


def load_error(target: Path | str) -> str:
    """The message of the InputError that loading ``target`` raises."""
    with pytest.raises(InputError) as info:
        load_instance(target)
    return str(info.value)


def assert_names(message: str, *parts: str) -> None:
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


# ----------------------------------------------------------------------------------------------
# The built-in electronics instance


def test_builtin_instances_lists_electronics():
    names = builtin_instances()
    assert "electronics" in names
    assert names["electronics"].startswith("[aggregate] 3 electronics products")


def test_electronics_products_and_weeks(electronics):
    assert electronics.name == "electronics"
    assert electronics.family == "aggregate"
    assert electronics.products == ("A", "B", "C")
    assert electronics.labels == ("Monitor", "TV", "Refrigerator")
    assert electronics.weeks == tuple(range(1, 13))
    assert electronics.n_products == 3
    assert electronics.n_weeks == 12
    assert electronics.source == str(resolve_instance("electronics"))


def test_electronics_product_fields(electronics):
    np.testing.assert_array_equal(electronics.hours_per_unit, [2.0, 3.0, 5.0])
    np.testing.assert_array_equal(electronics.space_per_unit, [0.2, 0.5, 1.0])
    np.testing.assert_array_equal(electronics.initial_workforce, [60.0, 70.0, 80.0])
    np.testing.assert_array_equal(electronics.initial_inventory, [200.0, 200.0, 200.0])
    np.testing.assert_array_equal(electronics.price, [150.0, 500.0, 650.0])


def test_electronics_capacity(electronics):
    assert electronics.hours_per_worker == 40.0
    assert electronics.overtime_fraction == 0.25
    assert electronics.regular_capacity == 1000.0


def test_electronics_options(electronics):
    assert electronics.options == ModelOptions(
        integer=True,
        backorder_fraction=0.4,
        overflow_capacity=500.0,
        overflow_cost_multiplier=3.0,
        wage_per_worker=0.0,
        lost_sales_penalty=None,
    )
    assert electronics.options.lost_sales_penalty is None
    assert electronics.options.integer is True


def test_electronics_levels(electronics):
    assert electronics.levels == ("low", "med", "high")
    np.testing.assert_array_equal(electronics.level_probabilities, [0.25, 0.5, 0.25])
    assert electronics.level_demand.shape == (3, 3, 12)


def test_electronics_csv_values(electronics):
    a, c = 0, 2
    low, med, high = 0, 1, 2
    # A_1,1,281,5,5,16,22,35,969,707,A,224,291,326,...
    assert electronics.base_demand[a, 0] == 281.0
    assert electronics.production_cost[a, 0] == 5.0
    assert electronics.holding_cost[a, 0] == 5.0
    assert electronics.backorder_cost[a, 0] == 16.0
    assert electronics.regular_labour_cost[a, 0] == 22.0
    assert electronics.overtime_labour_cost[a, 0] == 35.0
    assert electronics.hiring_cost[a, 0] == 969.0
    assert electronics.firing_cost[a, 0] == 707.0
    assert electronics.level_demand[low, a, 0] == 224.0
    assert electronics.level_demand[med, a, 0] == 291.0
    assert electronics.level_demand[high, a, 0] == 326.0
    # C_12,12,292,14,5,23,19,38,534,735,C,223,301,393,...
    assert electronics.base_demand[c, 11] == 292.0
    assert electronics.production_cost[c, 11] == 14.0
    assert electronics.level_demand[high, c, 11] == 393.0
    # B_2,2,114,...,B,108,105,128: the seed's med below low, kept as given
    assert electronics.level_demand[low, 1, 1] == 108.0
    assert electronics.level_demand[med, 1, 1] == 105.0


def test_electronics_expected_level_demand(electronics):
    expected = electronics.expected_level_demand
    assert expected.shape == (3, 12)
    np.testing.assert_allclose(expected.sum(axis=1), [2829.5, 2552.75, 2295.75], rtol=0, atol=1e-9)
    # A week 1: 0.25 * 224 + 0.5 * 291 + 0.25 * 326
    assert expected[0, 0] == pytest.approx(283.0, abs=1e-12)


def test_arrays_are_read_only(electronics):
    for name in ("base_demand", "production_cost", "firing_cost", "hours_per_unit", "price",
                 "level_demand", "level_probabilities"):
        arr = getattr(electronics, name)
        assert not arr.flags.writeable, name
        with pytest.raises(ValueError):
            arr[(0,) * arr.ndim] = 1.0


def test_tiny_instance_loads():
    inst = load_instance(TINY)
    assert inst.name == "tiny"
    assert inst.products == ("A",)
    assert inst.labels == ("Widget",)
    assert inst.weeks == (1, 2)
    assert inst.levels == ("low", "high")
    np.testing.assert_array_equal(inst.level_probabilities, [0.5, 0.5])
    np.testing.assert_array_equal(inst.level_demand[:, 0, :], [[10.0, 5.0], [10.0, 15.0]])
    assert inst.options.backorder_fraction == 1.0
    assert inst.options.overflow_capacity == 100.0


# ----------------------------------------------------------------------------------------------
# Paths, options


def test_user_folder_and_its_toml_both_load(tmp_path):
    folder = copy_electronics(tmp_path)
    by_folder = load_instance(folder)
    by_toml = load_instance(folder / TOML)
    by_text = load_instance(str(folder))
    for inst in (by_folder, by_toml, by_text):
        assert inst.products == ("A", "B", "C")
        assert inst.source == str(folder / TOML)
        np.testing.assert_array_equal(inst.base_demand, load_instance("electronics").base_demand)


def test_relative_user_folder_loads(tmp_path, monkeypatch):
    shutil.copytree(TINY, tmp_path / "mine")
    monkeypatch.chdir(tmp_path)
    assert resolve_instance("mine") == Path("mine") / TOML
    assert load_instance("mine").name == "tiny"


def test_model_options_replace_validates():
    opts = ModelOptions()
    changed = opts.replace(backorder_fraction=0.1, lost_sales_penalty=1000.0)
    assert changed.backorder_fraction == 0.1
    assert changed.lost_sales_penalty == 1000.0
    assert opts.backorder_fraction == 0.4  # frozen original untouched
    cases = [
        ({"backorder_fraction": 1.5}, "options.backorder_fraction", "1.5"),
        ({"backorder_fraction": -0.1}, "options.backorder_fraction", "-0.1"),
        ({"overflow_capacity": -1.0}, "options.overflow_capacity", "-1.0"),
        ({"overflow_cost_multiplier": float("nan")}, "options.overflow_cost_multiplier", "nan"),
        ({"wage_per_worker": "10"}, "options.wage_per_worker", "'10'"),
        ({"lost_sales_penalty": -5.0}, "options.lost_sales_penalty", "-5.0"),
        ({"integer": "yes"}, "options.integer", "'yes'"),
    ]
    for changes, field, value in cases:
        with pytest.raises(InputError) as info:
            opts.replace(**changes)
        assert info.value.field == field
        assert_names(str(info.value), field, value)


def test_with_options(electronics):
    relaxed = electronics.with_options(integer=False, lost_sales_penalty=500.0)
    assert relaxed.options.integer is False
    assert relaxed.options.lost_sales_penalty == 500.0
    assert relaxed.options.backorder_fraction == 0.4
    assert electronics.options.integer is True
    assert relaxed.products == electronics.products
    np.testing.assert_array_equal(relaxed.level_demand, electronics.level_demand)
    with pytest.raises(InputError, match=r"options\.backorder_fraction = 2"):
        electronics.with_options(backorder_fraction=2)


# ----------------------------------------------------------------------------------------------
# Bad input: field, value and file named


def test_missing_csv_file(tmp_path):
    folder = copy_electronics(tmp_path)
    (folder / CSV).unlink()
    msg = load_error(folder)
    assert_names(msg, "data", "'product_data.csv'", str(folder / TOML), "file not found")


def test_missing_required_column(tmp_path):
    folder = copy_electronics(tmp_path)
    edit_rows(folder, lambda rows: rows, drop_columns=("unit_holding_cost",))
    msg = load_error(folder)
    assert_names(msg, "column", "'unit_holding_cost'", str(folder / CSV), "missing")


def test_negative_cost(tmp_path):
    folder = copy_electronics(tmp_path)
    edit_rows(folder, set_value("C", 4, "unit_holding_cost", "-4"))
    msg = load_error(folder)
    # C_4 is the 28th data row: line 29 of the file
    assert_names(msg, "unit_holding_cost (row 29)", "-4", str(folder / CSV), "non-negative")


def test_negative_cost_shows_a_plain_number(tmp_path):
    folder = copy_electronics(tmp_path)
    edit_rows(folder, set_value("C", 4, "unit_holding_cost", "-4"))
    msg = load_error(folder)
    assert "unit_holding_cost (row 29) = -4" in msg


def test_non_numeric_demand(tmp_path):
    folder = copy_electronics(tmp_path)
    edit_rows(folder, set_value("B", 2, "med_demand", "abc"))
    msg = load_error(folder)
    assert_names(msg, "med_demand (row 15)", "'abc'", str(folder / CSV), "not a finite number")


def test_probabilities_not_summing_to_one(tmp_path):
    folder = copy_electronics(tmp_path)

    def edit(rows):
        for r in rows:
            r["prob_high"] = "0.3"
        return rows

    edit_rows(folder, edit)
    msg = load_error(folder)
    assert_names(msg, "prob_high", "[0.25, 0.5, 0.3]", str(folder / CSV), "sum to 1.05")


def test_probabilities_differing_between_rows(tmp_path):
    folder = copy_electronics(tmp_path)
    # still summing to 1 in that row, but not equal to the other rows' probabilities
    edit_rows(folder, set_value("A", 5, "prob_low", "0.2"))
    edit_rows(folder, set_value("A", 5, "prob_med", "0.55"))
    msg = load_error(folder)
    assert_names(msg, "prob_low", "0.2", str(folder / CSV), "same in every row")


def test_missing_week(tmp_path):
    folder = copy_electronics(tmp_path)
    edit_rows(folder, lambda rows: [r for r in rows if (r["product"], r["t"]) != ("B", "7")])
    msg = load_error(folder)
    assert_names(msg, "t = 7", str(folder / CSV), "missing for product B")


def test_duplicated_week(tmp_path):
    folder = copy_electronics(tmp_path)

    def edit(rows):
        dup = next(r for r in rows if (r["product"], r["t"]) == ("C", "3"))
        return [*rows, dict(dup)]

    edit_rows(folder, edit)
    msg = load_error(folder)
    assert_names(msg, "t = 3", str(folder / CSV), "appears twice for product C")


def test_product_not_declared(tmp_path):
    folder = copy_electronics(tmp_path)

    def edit(rows):
        extra = [{**r, "product": "D", "pt_index": f"D_{r['t']}"}
                 for r in rows if r["product"] == "A"]
        return rows + extra

    edit_rows(folder, edit)
    msg = load_error(folder)
    assert_names(msg, "product", "'D'", str(folder / CSV), "not declared", "declared: A, B, C")


def test_declared_product_without_rows(tmp_path):
    folder = copy_electronics(tmp_path)
    edit_rows(folder, lambda rows: [r for r in rows if r["product"] != "C"])
    msg = load_error(folder)
    assert_names(msg, "product", "'C'", str(folder / CSV), "has no rows")


def test_unknown_option_key(tmp_path):
    folder = copy_electronics(tmp_path)
    edit_toml(folder, "wage_per_worker = 0.0 ", "max_backlog = 7\nwage_per_worker = 0.0 ")
    msg = load_error(folder)
    assert_names(msg, "options.max_backlog", "7", str(folder / TOML), "unknown option",
                 "backorder_fraction")


def test_unknown_product_field(tmp_path):
    folder = copy_electronics(tmp_path)
    edit_toml(folder, "price = 500\n", 'price = 500\ncolour = "black"\n')
    msg = load_error(folder)
    assert_names(msg, "products.B.colour", "'black'", str(folder / TOML), "unknown field")


def test_missing_product_field(tmp_path):
    folder = copy_electronics(tmp_path)
    edit_toml(folder, "space_per_unit = 0.5\n", "")
    msg = load_error(folder)
    assert_names(msg, "products.B.space_per_unit", str(folder / TOML), "missing")


def test_backorder_fraction_above_one(tmp_path):
    folder = copy_electronics(tmp_path)
    edit_toml(folder, "backorder_fraction = 0.4 ", "backorder_fraction = 1.5 ")
    msg = load_error(folder)
    assert_names(msg, "options.backorder_fraction", "1.5", str(folder / TOML), "<= 1")


def test_malformed_toml(tmp_path):
    folder = copy_electronics(tmp_path)
    edit_toml(folder, "price = 650", "price = = 650")
    msg = load_error(folder)
    line = next(i for i, s in enumerate((folder / TOML).read_text().splitlines(), 1)
                if "price = = 650" in s)
    assert_names(msg, "'instance.toml'", str(folder / TOML), "malformed TOML", f"line {line}")


def test_unknown_family(tmp_path):
    folder = copy_electronics(tmp_path)
    edit_toml(folder, 'family = "aggregate"', 'family = "nosuchfamily"')
    msg = load_error(folder)
    assert_names(msg, "family", "'nosuchfamily'", str(folder / TOML), "known: aggregate")


def test_unknown_builtin_instance_lists_the_builtins():
    msg = load_error("nosuch")
    assert_names(msg, "instance", "'nosuch'", "built-in: electronics")


def test_missing_toml_path(tmp_path):
    msg = load_error(tmp_path / "nowhere" / TOML)
    assert_names(msg, "instance", str(tmp_path / "nowhere" / TOML))


# ----------------------------------------------------------------------------------------------
# Table: the checked CSV reader every family's loader shares


def _table_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.csv"
    path.write_text(text)
    return path


def test_table_reads_every_kind(tmp_path):
    from stochplan.data import Table

    path = _table_file(tmp_path, "id, name ,x,n,flag,rate,extra\n"
                                 "3,a,-1.5,2,1,0.25,?\n7, b ,4,0,0,1,!\n")
    t = Table(path, {"id": "int", "name": "str", "x": "real", "n": "num", "flag": "flag",
                     "rate": "rate"})
    assert t.ids("id") == [3, 7] and all(type(i) is int for i in t.col("id"))
    assert t.col("name") == ["a", "b"]
    assert t.array("x", "n").tolist() == [[-1.5, 2.0], [4.0, 0.0]]
    assert t.col("flag") == [1.0, 0.0] and t.col("rate") == [0.25, 1.0]
    assert t.raw("extra", 1) == "!"  # kept, not checked
    assert t.rows("id", "name") == [(0, (3, "a")), (1, (7, "b"))]
    assert t.lookup("id", 0, 7, {3: 0, 7: 1}, "thing") == 1


@pytest.mark.parametrize(("kind", "cell", "shown", "problem"), [
    ("int", "2.5", "'2.5'", "must be a whole number"),
    ("num", "-4.0", "-4", "must be non-negative"),
    ("real", "x", "'x'", "not a number"),
    ("real", "inf", "'inf'", "not a finite number"),
    ("flag", "2", "2", "must be 0 or 1"),
    ("rate", "1.5", "1.5", "must be a probability in [0, 1]"),
    ("str", " ", "''", "empty"),
    ("real", "2e10", "20000000000.0", "is beyond the supported range"),
])
def test_table_refuses_a_bad_cell_naming_column_row_value_and_file(tmp_path, kind, cell, shown,
                                                                   problem):
    from stochplan.data import Table

    path = _table_file(tmp_path, f"id,v\n1,0\n2,{cell}\n")
    with pytest.raises(InputError) as err:
        Table(path, {"id": "int", "v": kind})
    message = str(err.value)
    assert message.startswith(f"v (row 3) = {shown} in {path}: {problem}")
    assert "\n" not in message


def test_table_refuses_missing_columns_duplicates_unknown_ids_and_repeats(tmp_path):
    from stochplan.data import KNOWN_IDS_SHOWN, Table

    path = _table_file(tmp_path, "id,other\n1,5\n2,6\n1,7\n")
    with pytest.raises(InputError, match=r"column.*'v'.*missing \(columns found: id, other\)"):
        Table(path, {"v": "int"})
    t = Table(path, {"id": "int", "other": "int"})
    with pytest.raises(InputError, match=r"id \(row 4\).*1.*appears more than once"):
        t.ids("id")
    many = {i: i for i in range(KNOWN_IDS_SHOWN + 3)}
    with pytest.raises(InputError) as err:
        t.lookup("other", 0, 99, many, "machine")
    message = str(err.value)
    assert "other (row 2)" in message and "unknown machine" in message
    assert f"{KNOWN_IDS_SHOWN - 1}, ... ({KNOWN_IDS_SHOWN + 3} in all)" in message
    assert f", {KNOWN_IDS_SHOWN}," not in message
    t.once(0, (1, 5), "id, other", (1, 5))
    with pytest.raises(InputError, match=r"id, other \(row 4\).*given twice"):
        t.once(2, (1, 5), "id, other", (1, 5))


@pytest.mark.parametrize(("value", "shown"), [
    (-4.0, -4), (2.5, 2.5), (np.int64(3), 3), (np.float64(7.0), 7), ("abc", "abc"),
    (None, None)])
def test_plain_shows_whole_numbers_as_ints(value, shown):
    from stochplan.data import plain

    out = plain(value)
    assert out == shown and type(out) is type(shown)
