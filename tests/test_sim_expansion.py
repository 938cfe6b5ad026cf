"""The simulator's field expansion of media insights: each media's nested insights are its own
call's answer, one refusal sinks the page, a page too large answers code 1, and the page counts
as one call or one per media nested, in the window and in the usage headers alike."""

import asyncio
import base64

import orjson
import pytest

from harvester.graph.wire import parse_usage
from harvester.simulator.cli import main, settings_of
from harvester.simulator.drift import Drift
from harvester.simulator.expansion import NESTED_VALUES_MAX, REDUCE_DATA
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.world import World, WorldSpec

from support import NOW

COMMON = "reach,views,likes,comments,saved,shares,total_interactions,reposts"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def world(**spec) -> World:
    return World(WorldSpec(**{"seed": 3, "accounts": 1, "media_per_account": 300, "now": NOW,
                              "converted_share": 0.0, "stories_per_account": 0, **spec}))


def get(simulator: Simulator, path: str, **query: str):
    token = simulator.world.tokens[0]
    return asyncio.run(simulator.serve("GET", f"/v25.0/{path}", query, {"Authorization": f"Bearer {token.token}"}))


def page(simulator: Simulator, metrics: str = COMMON, limit: int = 50, fields: str = "id,media_type"):
    account = simulator.world.tokens[0].account_ids[0]
    return get(simulator, f"{account}/media", fields=f"{fields},insights.metric({metrics})", limit=str(limit))


def test_each_nested_insights_is_the_answer_of_the_media_own_call():
    simulator = Simulator(world(), clock=FakeClock())
    reply = page(simulator, limit=20)
    assert reply.status == 200
    items = orjson.loads(reply.body)["data"]
    assert len(items) == 20 and {i["media_type"] for i in items} >= {"IMAGE", "VIDEO"}
    for item in items:
        alone = get(simulator, f"{item['id']}/insights", metric=COMMON)
        assert item["insights"] == orjson.loads(alone.body)


def test_one_media_refusing_a_metric_sinks_the_whole_page_with_its_error():
    """The drift refuses shares on IMAGE posts: a page holding one fails whole, with the error the
    IMAGE's own call gets; the same page without shares answers every media."""
    simulator = Simulator(world(), SimulatorSettings(drift=Drift(refuse=(("shares", "IMAGE"),))), clock=FakeClock())
    sunk = page(simulator)
    error = orjson.loads(sunk.body)["error"]
    assert (sunk.status, error["code"]) == (400, 100)
    assert "does not support the shares metric for this media product type" in error["message"]
    without = page(simulator, metrics=COMMON.replace("shares,", ""))
    assert without.status == 200 and all("insights" in i for i in orjson.loads(without.body)["data"])


def test_a_page_of_media_posted_before_the_conversion_fails_whole():
    simulator = Simulator(world(converted_share=1.0, seed=5), clock=FakeClock())
    account = simulator.world.account(0)
    oldest = simulator.world.listed_media(account) - 10
    first = orjson.loads(page(simulator, limit=10).body)
    assert all("insights" in i for i in first["data"])          # recent media: answered
    old = get(simulator, f"{account.id}/media", fields=f"id,insights.metric({COMMON})", limit="10",
              after=_cursor(oldest))
    assert simulator.world.before_conversion(simulator.world.media(account, simulator.world.listed_media(account) - 1))
    assert orjson.loads(old.body)["error"]["error_subcode"] == 2108006


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(b"sim:%d" % offset).decode()


@pytest.mark.parametrize("limit, metrics, status", [
    (100, 5, 200), (100, 6, 500), (62, 8, 200), (63, 8, 500), (50, 8, 200)])
def test_a_page_asking_more_than_the_threshold_answers_code_1(limit, metrics, status):
    """At most NESTED_VALUES_MAX values: the page's limit times the metrics nested."""
    assert NESTED_VALUES_MAX == 500
    simulator = Simulator(world(), clock=FakeClock())
    reply = page(simulator, metrics=",".join(COMMON.split(",")[:metrics]), limit=limit)
    assert reply.status == status
    if status == 500:
        error = orjson.loads(reply.body)["error"]
        assert (error["code"], error["message"]) == (1, REDUCE_DATA)
        assert reply.nested == 0


@pytest.mark.parametrize("cost, counted", [("one", 1), ("per-object", 51)])
def test_a_page_counts_as_one_call_or_one_per_media_nested(cost, counted):
    """In the token's rolling window, in the usage header of the page's own answer and in the
    counters; a page without insights counts one either way."""
    clock = FakeClock()
    simulator = Simulator(world(), SimulatorSettings(calls_per_window=200, expansion_cost=cost), clock=clock)
    reply = page(simulator, limit=50)
    assert reply.status == 200
    usage = parse_usage(reply.headers)
    assert usage is not None and usage.call_count == int(100 * counted / 200)
    assert simulator.limits.tokens[0].count(clock()) == counted
    served = simulator.counters.snapshot()
    assert (served["calls"], served["charged"]) == (1, counted)
    account = simulator.world.tokens[0].account_ids[0]
    plain = get(simulator, f"{account}/media", fields="id", limit="50")
    assert simulator.limits.tokens[0].count(clock()) == counted + 1 and plain.nested == 0


def test_per_object_charges_fill_the_window_and_a_later_call_is_throttled():
    """A call is judged when it comes; the media its page nested count once it is answered."""
    clock = FakeClock()
    simulator = Simulator(world(), SimulatorSettings(calls_per_window=60, expansion_cost="per-object"), clock=clock)
    assert page(simulator, limit=50).status == 200            # 51 counted: within 60
    second = page(simulator, limit=50)                         # judged as the 52nd call: answered, then
    assert second.status == 200 and parse_usage(second.headers).call_count == 170    # its 50 media counted
    assert page(simulator, limit=10).status == 400            # the 103rd call of the window: throttled
    assert simulator.counters.snapshot()["throttled"] == 1
    clock.now += 3600
    assert page(simulator, limit=10).status == 200


def test_the_command_line_chooses_the_accounting(capsys):
    from harvester.simulator.cli import _parser
    assert settings_of(_parser().parse_args([])).expansion_cost == "one"
    assert settings_of(_parser().parse_args(["--expansion-cost", "per-object"])).expansion_cost == "per-object"
    assert main(["--expansion-cost", "two"]) == 2
    said = capsys.readouterr().err
    assert "argument --expansion-cost: invalid choice: 'two' (choose from 'one', 'per-object')" in said
