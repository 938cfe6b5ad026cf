"""Shared test setup: the simulator's pytest plugin (fixtures ``simulator_server`` and
``simulator_transport``), reusable in any project's tests the same way; and the guard that keeps
every test world off the clock."""

import pytest

from harvester.simulator import world as world_module

pytest_plugins = ["harvester.simulator.fixtures", "support"]     # support: the shared fixtures too

_current_hour = world_module.current_hour


def _clock_refused() -> float:
    pytest.fail("a test world follows the clock: give WorldSpec(now=NOW) (from support import NOW), so that the "
                "test holds at any hour and HARVESTER_TEST_SHIFT_HOURS can move it", pytrace=True)


def pytest_configure(config):
    """From collection on (module-level worlds too), a world built without ``now``, which would
    follow the hour the suite runs at, fails its test; the demo's and ``harvester simulate``'s
    worlds still follow the clock outside the suite."""
    world_module.current_hour = _clock_refused


def pytest_unconfigure(config):
    world_module.current_hour = _current_hour


@pytest.fixture
def present(monkeypatch) -> float:
    """The clock of this process at the test worlds' present (support.NOW), running on from there,
    for a test that calls the CLI in-process (it reads ``time.time()`` and ``datetime.now()``)."""
    from present import pin

    from support import NOW
    pin(NOW, monkeypatch.setattr)
    return NOW
