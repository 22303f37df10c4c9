"""The documentation's generated pages come from the registry: a registered family (here the
test family ``newsvendor``) gets its page and its ``[model]`` reference without a doc edit."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from stochplan.family import family_names

DOCS_EXT = Path(__file__).resolve().parents[2] / "docs" / "_ext" / "stochplan_docs.py"


def load_generator():
    spec = importlib.util.spec_from_file_location("stochplan_docs", DOCS_EXT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_registered_family_gets_a_page(tmp_path, monkeypatch):
    docs = load_generator()
    monkeypatch.setattr(docs, "GENERATED", tmp_path / "_generated")
    monkeypatch.setattr(docs, "FAMILIES", tmp_path / "families")
    (tmp_path / "families").mkdir()
    (tmp_path / "families" / "retired.rst").write_text("a family no longer registered")
    docs.generate()
    names = family_names()
    assert "newsvendor" in names and "aggregate" in names
    pages = sorted(p.stem for p in (tmp_path / "families").glob("*.rst"))
    assert pages == sorted(names)  # the retired page is gone
    page = (tmp_path / "families" / "newsvendor.rst").read_text()
    assert page.startswith(".. _family-newsvendor:\n\nnewsvendor: ")
    assert ".. automodule:: newsvendor\n" in page
    config = (tmp_path / "_generated" / "configuration.rst").read_text()
    for name in names:
        assert f"[model] of the {name} family" in config
    cli = (tmp_path / "_generated" / "cli.rst").read_text()
    assert "stochplan write-model\n" in cli and "--format {mps,lp,smps}" in cli
    database = (tmp_path / "_generated" / "database.rst").read_text()
    for table in ("runs", "plans", "kpis", "tables", "recourse"):
        assert f"``{table}``\n" in database
