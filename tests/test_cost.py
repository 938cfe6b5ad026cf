"""What a media nested in a page costs a token, read from ``call_count`` against the calls sent:
on a fake clock, with whole percentages as the API sends them."""

import pytest

from harvester.schedule.cost import CallCosts


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def send(costs: CallCosts, clock: FakeClock, calls: int, nested: int = 0, key: str = "t") -> None:
    for _ in range(calls):
        entry = costs.sent(key)
        if nested:
            costs.nested(key, entry, nested)
        clock.now += 1


@pytest.mark.parametrize("counted_per_media, expected", [(0, 0.0), (1, 1.0), (0.5, 0.5)])
def test_the_cost_of_a_media_nested_is_what_the_window_counts_beyond_the_calls(counted_per_media, expected):
    clock = FakeClock()
    costs = CallCosts(200, 3600, clock)
    send(costs, clock, 10)                      # calls one by one
    send(costs, clock, 1, nested=50)            # a page nesting 50 media
    counted = 11 + counted_per_media * 50
    costs.read("t", int(100 * counted / 200))   # a whole percentage, floored
    assert costs.per_media("t") == pytest.approx(expected, abs=0.03)


def test_no_header_no_estimate_and_too_few_media_nested_price_nothing():
    clock = FakeClock()
    costs = CallCosts(200, 3600, clock)
    send(costs, clock, 5, nested=5)
    costs.read("t", None)
    assert not costs.reported("t") and costs.per_media("t") is None
    costs.read("t", 15)
    assert costs.reported("t") and costs.per_media("t") is None          # 25 media: a percent is 0.08 each


def test_a_budget_too_large_for_whole_percents_prices_no_page():
    costs = CallCosts(10_000, 3600, FakeClock())
    assert not costs.can_price(100) and costs.can_price(1000)
    assert CallCosts(200, 3600, FakeClock()).can_price(40)


def test_calls_leave_the_estimate_with_the_window():
    """A page an hour old has left the window: it prices nothing any more, and the estimate made
    while it was in is kept (with its time) until a page prices again."""
    clock = FakeClock()
    costs = CallCosts(200, 3600, clock)
    send(costs, clock, 1, nested=50)
    costs.read("t", 25)                          # 51 counted: a media is one call
    assert costs.per_media("t") == pytest.approx(1.0, abs=0.03) and costs.measured_at("t") == 1
    clock.now = 4000
    send(costs, clock, 3)
    costs.read("t", 1)
    assert costs.per_media("t") == pytest.approx(1.0, abs=0.03) and costs.measured_at("t") == 1
