"""The suite's own clock: every test world pins its present, and a harvester run by a test reads
the date where the world has it."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from present import DATE_FUNCTIONS, DATE_READERS

import harvester
from harvester.config import parse_config
from harvester.days import from_unix
from harvester.simulator.world import World, WorldSpec

from support import NOW

PACKAGE = Path(harvester.__file__).parent
DATE_READINGS = re.compile(r"\b(?:datetime\.now|datetime\.utcnow|date\.today|datetime\.today)\(")
PINNED = {m.removeprefix("harvester.").replace(".", "/") + (".py" if m != "harvester.report" else "/__init__.py")
          for m in (*DATE_READERS, *DATE_FUNCTIONS)}
"""The files of the modules whose ``datetime`` tests/present.py replaces."""


def test_a_world_without_now_fails_its_test():
    with pytest.raises(pytest.fail.Exception, match=r"a test world follows the clock: give WorldSpec\(now=NOW\)"):
        World(WorldSpec(seed=1, accounts=1))
    assert World(WorldSpec(seed=1, accounts=1, now=NOW)).now == NOW


def test_every_reading_of_the_date_in_harvester_is_one_present_pins():
    """time.time() is pinned everywhere; datetime.now() only where present.py replaces datetime: a
    new reading elsewhere would let a CLI run by a test plan the real date's days."""
    readings = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                if "simulator" not in p.parts and DATE_READINGS.search(p.read_text())}
    assert readings == PINNED, f"pin in tests/present.py (DATE_READERS, DATE_FUNCTIONS): {sorted(readings ^ PINNED)}"


def test_the_present_fixture_sets_this_process_at_now(present):
    assert present == NOW and NOW <= time.time() < NOW + 60
    raw = {"window": {"days": 2}, "output": {"path": "out"}, "accounts": [{"id": "1", "token_env": "T"}]}
    config = parse_config(raw, path="<test>", env={"T": "x"})        # today: the date the harvester reads
    assert (config.window.since, config.window.until) == (from_unix(int(NOW)) - timedelta(days=2), from_unix(int(NOW)))
