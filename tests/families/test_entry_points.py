"""A family installed by another package: found through the entry-point group
``stochplan.families``, without :func:`stochplan.family.register`."""

from __future__ import annotations

import contextlib
import io

import newsvendor
import pytest

from stochplan import family as registry
from stochplan.cli import main
from stochplan.errors import InputError

from .conftest import FAMILIES, write_plugin


def test_the_family_is_found_through_its_entry_point(tmp_path, monkeypatch):
    """Without the registration conftest.py makes, ``newsvendor`` is unknown; with a
    ``newsvendor_plugin-0.1.dist-info`` declaring ``newsvendor = newsvendor`` on the path it
    is found, listed, and its instance ``kiosk`` becomes a built-in instance."""
    registry.unregister("newsvendor")
    assert "newsvendor" not in registry.family_names()
    with pytest.raises(InputError, match="unknown model family"):
        registry.get_family("newsvendor")

    monkeypatch.syspath_prepend(str(FAMILIES))
    monkeypatch.syspath_prepend(str(write_plugin(tmp_path)))
    assert registry._entry_points()["newsvendor"] == "newsvendor"
    assert "newsvendor" in registry.family_names()
    assert registry.get_family("newsvendor") is newsvendor.FAMILY

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["instances"]) == 0
    lines = {line.split()[0]: line for line in out.getvalue().splitlines()}
    assert "[newsvendor]" in lines["kiosk"] and "[aggregate]" in lines["electronics"]


def test_an_entry_point_to_a_missing_module_names_it(tmp_path, monkeypatch):
    info = write_plugin(tmp_path) / "newsvendor_plugin-0.1.dist-info" / "entry_points.txt"
    info.write_text("[stochplan.families]\nghost = no_such_module_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(InputError, match="no_such_module_here cannot be imported"):
        registry.get_family("ghost")
