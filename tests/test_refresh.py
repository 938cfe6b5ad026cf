from harvester.days import DAY
from harvester.plan.refresh import DEFAULT_TIERS, due, interval

from support import NOW


def test_default_tiers_daily_weekly_monthly():
    assert interval(2 * DAY, DEFAULT_TIERS) == DAY
    assert interval(30 * DAY, DEFAULT_TIERS) == 7 * DAY
    assert interval(400 * DAY, DEFAULT_TIERS) == 30 * DAY


def test_due_by_age_and_last_harvest():
    young, middle, old = NOW - 3 * DAY, NOW - 40 * DAY, NOW - 300 * DAY
    assert due(young, NOW - DAY, NOW)
    assert not due(middle, NOW - DAY, NOW) and due(middle, NOW - 7 * DAY, NOW)
    assert not due(old, NOW - 20 * DAY, NOW) and due(old, NOW - 30 * DAY, NOW)
    assert due(old, None, NOW)


def test_a_run_a_few_minutes_late_is_still_due():
    assert due(NOW - 2 * DAY, NOW - DAY + 600, NOW)
