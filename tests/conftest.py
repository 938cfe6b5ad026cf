"""Shared test setup: the simulator's pytest plugin (fixtures ``simulator_server`` and
``simulator_transport``), reusable in any project's tests the same way."""

pytest_plugins = ["harvester.simulator.fixtures", "support"]     # support: the shared fixtures too
