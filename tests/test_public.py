"""The public surface: what ``import harvester`` offers is what the API raises and returns, the
exception tree holds every error a run raises, and the package ships its type information."""

from __future__ import annotations

import importlib.resources
import inspect
import tomllib
from pathlib import Path

import harvester
from harvester import errors
from harvester.sinks.base import SinkFailure

ROOT = Path(__file__).resolve().parents[1]


def test_what_the_api_raises_and_returns_is_exported():
    for name in ("Harvester", "HarvesterError", "ConfigError", "StateError", "SinkError", "RunSummary", "Outcome"):
        assert name in harvester.__all__
        assert getattr(harvester, name).__name__ == name
    assert harvester.RunSummary.__module__ == "harvester.summary"


def test_a_sinks_failure_is_inside_the_exception_tree():
    assert SinkFailure is errors.SinkFailure
    assert issubclass(SinkFailure, errors.SinkError) and issubclass(errors.SinkError, errors.HarvesterError)
    assert issubclass(errors.StateError, errors.ConfigError)
    tree = errors.__doc__ or ""
    for name in ("HarvesterError", "ConfigError", "TransportError", "DecodeError", "GraphError", "SinkError",
                 "SinkFailure", "StateError"):
        assert name in tree, f"the tree in harvester.errors' docstring does not draw {name}"


def test_the_package_ships_its_type_information():
    assert importlib.resources.files("harvester").joinpath("py.typed").is_file()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["harvester"]


def test_the_documented_constructor_has_no_test_hooks():
    parameters = inspect.signature(harvester.Harvester).parameters
    assert {"now", "clock", "run_id"}.isdisjoint(parameters)
    assert all(p.kind is p.KEYWORD_ONLY for name, p in parameters.items() if name != "config")
