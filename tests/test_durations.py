"""Durations are shown one way everywhere."""

import pytest

from harvester.summary import format_duration


@pytest.mark.parametrize("seconds, shown", [
    (None, "?"), (float("inf"), "?"), (-3, "0.0 s"), (0, "0.0 s"), (12.34, "12.3 s"), (59.94, "59.9 s"),
    (60, "1m00s"), (370, "6m10s"), (3599, "59m59s"), (3600, "1h00m"), (3900, "1h05m"),
    (86399, "23h59m"), (86400, "1d00h"), (2 * 86400 + 3 * 3600 + 59, "2d03h"),
])
def test_format_duration(seconds, shown):
    assert format_duration(seconds) == shown
