"""The benchmark harness keeps what a spec measured before it stopped (no solver needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def harness(monkeypatch):
    """``benchmarks/run.py`` and its registry, imported as the runner imports them; specs
    registered by a test are removed after it."""
    monkeypatch.syspath_prepend(str(BENCH / "specs"))
    monkeypatch.syspath_prepend(str(BENCH))
    import registry
    import run

    run.load_specs()
    monkeypatch.setattr(registry, "SPECS", dict(registry.SPECS))
    monkeypatch.setattr(run, "SPECS", registry.SPECS)
    return run, registry


def _table(rows: list[dict[str, Any]]) -> str:
    return "| S | twice |\n|---|---|\n" + "\n".join(f"| {r['S']} | {r['twice']} |" for r in rows)


def _fake_spec(registry: Any, stop_before: int | None) -> None:
    """A spec that measures 2 S per size, checkpointing each row, and raises before row
    ``stop_before`` (1-based) as an interrupted run would."""

    def fake_run(sizes, workdir, smoke, checkpoint):
        rows: list[dict[str, Any]] = []
        for n in sizes:
            if stop_before is not None and len(rows) + 1 == stop_before:
                raise RuntimeError("interrupted")
            rows.append({"S": n, "twice": 2 * n})
            checkpoint(registry.Outcome(rows, _table(rows)), len(rows), len(sizes), "rows")
        return registry.Outcome(rows, _table(rows), {"done": True})

    registry.SPECS["fake"] = registry.Spec(name="fake", title="Fake measurements",
                                           sizes=(10, 20, 30), smoke=(1,), run=fake_run,
                                           checkpoints=True)


def test_an_interrupted_spec_keeps_its_finished_rows_until_it_completes(harness, tmp_path):
    """After a failure in row 2 of 3, RESULTS.md and RESULTS.json hold row 1, marked partial,
    next to another spec's untouched entries; a complete rerun replaces the partial section
    (one section, unmarked) and entry."""
    run, registry = harness
    (tmp_path / "RESULTS.md").write_text("# Benchmark results\n\n## Other spec\n\nkept\n")
    (tmp_path / "RESULTS.json").write_text(json.dumps({"other": {"rows": [{"x": 1}]}}))
    _fake_spec(registry, stop_before=2)
    with pytest.raises(RuntimeError, match="interrupted"):
        run.main(["--only", "fake", "--out", str(tmp_path)])

    md = (tmp_path / "RESULTS.md").read_text()
    stored = json.loads((tmp_path / "RESULTS.json").read_text())
    assert "## Fake measurements (partial: 1 of 3 rows)\n" in md
    assert "| 10 | 20 |" in md and "| 20 | 40 |" not in md
    assert "## Other spec\n\nkept\n" in md
    assert stored["fake"]["rows"] == [{"S": 10, "twice": 20}]
    assert stored["fake"]["partial"] == "1 of 3 rows"
    assert stored["fake"]["sizes"] == [10, 20, 30]
    assert stored["other"] == {"rows": [{"x": 1}]}

    _fake_spec(registry, stop_before=None)
    assert run.main(["--only", "fake", "--out", str(tmp_path)]) == 0
    md = (tmp_path / "RESULTS.md").read_text()
    stored = json.loads((tmp_path / "RESULTS.json").read_text())
    assert md.count("## Fake measurements") == 1 and "partial" not in md
    assert "| 10 | 20 |\n| 20 | 40 |\n| 30 | 60 |" in md
    assert "## Other spec\n\nkept\n" in md
    assert [r["twice"] for r in stored["fake"]["rows"]] == [20, 40, 60]
    assert stored["fake"]["partial"] is None and stored["fake"]["goals"] == {"done": True}


def test_instance_picks_one_of_a_specs_own_instances(harness, tmp_path, capsys):
    """``--instance`` hands a spec with its own instances that one alone; without it, all of
    them; an instance not among them is refused (exit 2) naming the spec."""
    run, registry = harness
    seen: list[tuple[str, ...]] = []

    def own_run(sizes, workdir, smoke, instances):
        seen.append(instances)
        return registry.Outcome([{"instance": i} for i in instances], "table")

    registry.SPECS["own"] = registry.Spec(name="own", title="Own instances", sizes=(1,),
                                          smoke=(1,), run=own_run, instances=("a", "b"))
    assert run.main(["--only", "own", "--out", str(tmp_path)]) == 0
    assert run.main(["--only", "own", "--instance", "b", "--out", str(tmp_path)]) == 0
    assert seen == [("a", "b"), ("b",)]
    with pytest.raises(SystemExit) as exc:
        run.main(["--only", "own", "--instance", "c", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "own (a, b) use their own instance" in capsys.readouterr().err


def test_mip_decomposition_rows_per_instance(harness):
    """A size ``(instance, S)`` belongs to its instance; a bare S (``--sizes``) to each."""
    from mip_decomposition import rows_of

    sizes = (("furniture", 100), ("furniture", 1000), ("laser", 200), ("laser", 1000))
    assert rows_of(sizes, ("furniture", "laser")) == list(sizes)
    assert rows_of(sizes, ("laser",)) == [("laser", 200), ("laser", 1000)]
    assert rows_of((3, 50), ("furniture", "laser")) == [
        ("furniture", 3), ("furniture", 50), ("laser", 3), ("laser", 50)]


def _cell(method: str, ranks: int, t_1: float | None, t_01: float | None) -> dict[str, Any]:
    return {"method": method, "ranks": ranks, "t_0.01": t_1, "t_0.001": t_01, "gap": 0.0}


def test_mip_decomposition_goals_of_the_assignment_rows(harness):
    """laser S = 200: the fastest decomposition to 0.1 % in at most a tenth of the EF's time;
    S = 1000: to 1 % within 600 s; a row with cells still to run is not judged."""
    from mip_decomposition import goals

    def row(n, ef_wall, times, ph_done=True):
        return {"instance": "laser", "S": n, "ef": {"status": "Optimal", "wall": ef_wall},
                "lshaped": [_cell("lshaped", k, *times[k - 1]) for k in (1, 2)],
                "ph": [_cell("ph", 3, *times[2])] if ph_done else []}

    at_200 = "laser, S = 200: a decomposition to 0.1 % in at most a tenth of the EF's time"
    at_1000 = "laser, S = 1000: a decomposition to 1 % within 600 s"
    # the PH cell (9.0 s) is the fastest to 0.1 %: 90 s of EF is exactly ten times that
    assert goals([row(200, 90.0, [(5, 12.0), (4, None), (2, 9.0)])]) == {at_200: True}
    assert goals([row(200, 89.9, [(5, 12.0), (4, None), (2, 9.0)])]) == {at_200: False}
    assert goals([row(200, 90.0, [(5, None), (4, None), (2, None)])]) == {at_200: False}
    assert goals([row(1000, 900.0, [(601, None), (600, None), (None, None)])]) == {at_1000: True}
    assert goals([row(1000, 900.0, [(601, None), (700, None), (None, None)])]) == {
        at_1000: False}
    assert goals([row(1000, 900.0, [(5, 6), (5, 6), (5, 6)], ph_done=False)]) == {}


def test_a_run_of_one_instance_keeps_the_other_rows_with_their_command(harness, tmp_path,
                                                                       monkeypatch):
    """mip-decomposition run for one instance and size: the last run's other complete rows
    stay in RESULTS.md and RESULTS.json, labelled with the command and commit that measured
    them (an entry written before the commit was stored gives the section header's); an
    incomplete row is dropped; the goals are judged on every row; a second run replaces the
    complete row it measures again and keeps the first run's label on the rows it did not
    measure."""
    run, registry = harness
    import mip_decomposition

    def fake_cell(method, instance, n, ranks, options, timeout):
        wall = {"laser": 50.0, "laser-integer": 70.0}.get(instance, 1.0)
        if method == "ef":
            return {"method": "ef", "ranks": 1, "status": "Optimal", "wall": 10 * wall,
                    "solve": 9 * wall}
        return _cell(method, ranks, wall, wall)

    monkeypatch.setattr(mip_decomposition, "_cell", fake_cell)
    title = registry.SPECS["mip-decomposition"].title
    first = "python benchmarks/run.py --only mip-decomposition --sizes 1000"
    old = {"instance": "laser", "S": 1000,
           "ef": {"status": "Optimal", "wall": 900.0, "solve": 890.0},
           "lshaped": [_cell("lshaped", 1, 40.0, 600.0), _cell("lshaped", 2, 41.0, None)],
           "ph": [_cell("ph", 3, None, None)]}
    older = dict(old, S=200, ef=dict(old["ef"], wall=900.0))  # complete: kept, then redone
    stale = dict(old, instance="laser-integer", S=1000, lshaped=[])  # incomplete: not kept
    (tmp_path / "RESULTS.md").write_text(f"# Benchmark results\n\n## {title}\n\nCommand: "
                                         f"`{first}` (commit abc1234, 9 s)  \nold table\n")
    (tmp_path / "RESULTS.json").write_text(json.dumps({"mip-decomposition": {
        "rows": [old, older, stale], "command": first}}))

    assert run.main(["--only", "mip-decomposition", "--instance", "laser-integer", "--sizes",
                     "200", "--out", str(tmp_path)]) == 0
    stored = json.loads((tmp_path / "RESULTS.json").read_text())["mip-decomposition"]
    assert [(r["instance"], r["S"]) for r in stored["rows"]] == [
        ("laser", 200), ("laser", 1000), ("laser-integer", 200)]
    assert stored["rows"][0]["run"] == stored["rows"][1]["run"] == {
        "command": first, "commit": "abc1234"}
    assert "run" not in stored["rows"][2]
    md = (tmp_path / "RESULTS.md").read_text()
    assert "old table" not in md and md.count(f"## {title}") == 1
    assert "| laser | 1000 |" in md and "| laser-integer | 200 |" in md
    assert "| laser-integer | 1000 |" not in md
    assert (f"Rows from an earlier run (laser S = 200, laser S = 1000): `{first}` "
            "(commit abc1234).") in md
    assert stored["goals"] == {  # the kept laser S = 200: 900 s of EF against 600 s to 0.1 %
        "laser, S = 200: a decomposition to 0.1 % in at most a tenth of the EF's time": False,
        "laser, S = 1000: a decomposition to 1 % within 600 s": True,
        "laser-integer, S = 200: a decomposition to 1 % with a certified bound": True}

    second = stored["command"]
    assert run.main(["--only", "mip-decomposition", "--instance", "laser", "--sizes", "200",
                     "--out", str(tmp_path)]) == 0
    stored = json.loads((tmp_path / "RESULTS.json").read_text())["mip-decomposition"]
    assert [(r["instance"], r["S"]) for r in stored["rows"]] == [
        ("laser", 200), ("laser", 1000), ("laser-integer", 200)]
    assert [r.get("run", {}).get("command") for r in stored["rows"]] == [None, first, second]
    assert stored["rows"][0]["ef"]["wall"] == 500.0  # measured again: the older row replaced


def test_ph_then_lshaped_starts_from_phs_plan_and_counts_its_time(harness, tmp_path,
                                                                  monkeypatch):
    """The last cell of a row runs L-shaped from the PH cell's plan (written to a file the
    child reads) and its times to a gap add the PH cell's wall time; with it alone reaching
    1 %, the integer-recourse goal is met. Without a PH plan the cell says so."""
    import mip_decomposition

    calls = []

    def fake_cell(method, instance, n, ranks, options, timeout):
        start = options.get("start_plan_file")
        calls.append((method, ranks, json.loads(Path(start).read_text()) if start else None))
        if method == "ef":
            return {"method": "ef", "ranks": 1, "status": "Time limit", "wall": 600.0}
        if method == "ph":
            return dict(_cell("ph", 3, None, None), wall=300.0,
                        plan=[{"variable": "x", "index": "1", "value": 1.0}])
        if "start_plan_file" in options:
            return dict(_cell("lshaped", 1, 20.0, None), wall=301.0)
        return _cell(method, ranks, None, None)

    monkeypatch.setattr(mip_decomposition, "_cell", fake_cell)
    outcome = mip_decomposition.run((("laser-integer", 200),), tmp_path, False,
                                    instances=("laser-integer",))
    assert calls[-1] == ("lshaped", 1, [{"variable": "x", "index": "1", "value": 1.0}])
    assert all(start is None for *_, start in calls[:-1])
    assert list(tmp_path.iterdir()) == []  # the plan's file is gone with its folder
    (row,) = outcome.rows
    pair = row[mip_decomposition.PAIR]
    assert pair["t_0.01"] == 320.0 and pair["t_0.001"] is None
    assert pair["wall"] == 601.0 and pair["own_wall"] == 301.0
    assert "plan" not in row["ph"][0]
    assert outcome.goals == {
        "laser-integer, S = 200: a decomposition to 1 % with a certified bound": True}
    assert "| 320.0 / —; gap 0.00% after 601.0 s |" in outcome.markdown

    monkeypatch.setattr(mip_decomposition, "_cell", lambda method, instance, n, ranks, options,
                        timeout: _cell(method, ranks, None, None))
    outcome = mip_decomposition.run((("laser-integer", 200),), tmp_path, False,
                                    instances=("laser-integer",))
    assert "PH gave no plan" in outcome.rows[0][mip_decomposition.PAIR]["error"]


def test_a_smoke_run_keeps_no_earlier_rows(harness, tmp_path, monkeypatch):
    """Smoke numbers are not mixed with real rows."""
    from mip_decomposition import run as mip_run

    earlier = [{"instance": "laser", "S": 1000, "ef": {"status": "Optimal", "wall": 1.0},
                "lshaped": [_cell("lshaped", 1, 1, 1), _cell("lshaped", 2, 1, 1)],
                "ph": [_cell("ph", 3, 1, 1)], "run": {"command": "x", "commit": "y"}}]
    import mip_decomposition

    monkeypatch.setattr(mip_decomposition, "_cell",
                        lambda method, *a, **k: {"method": method, "ranks": 1, "status": "x"})
    outcome = mip_run((3,), tmp_path, True, instances=("laser",), earlier=earlier)
    assert [(r["instance"], r["S"]) for r in outcome.rows] == [("laser", 3)]
