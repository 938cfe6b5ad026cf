"""Retention by level: no account call older than the API keeps, nothing it keeps left out, the
estimate and backfill say what they leave out, and a unit expires when the API starts refusing it."""

from __future__ import annotations

import itertools
from datetime import timedelta

import orjson
import pytest

from harvester import catalog
from harvester.cli import main
from harvester.config import Selection, Window
from harvester.days import DAY, from_unix, iso, to_unix
from harvester.plan import units as plan
from harvester.plan.estimate import estimate, render
from harvester.simulator.api import GraphApi
from harvester.simulator.truth import expected_records
from harvester.simulator.world import World, WorldSpec

from support import world_config, write_config

NOW = 1_790_000_000.0                    # 2026-09-21 14:13 UTC: the bound falls inside a UTC day
TODAY = from_unix(int(NOW))
ACCOUNT_DAYS = catalog.RETENTION_DAYS["account"]
ACCOUNT = "17841400000000000"


def windowed(units):
    return [u for u in units if u.ctx.since is not None]


def covered(units, **params) -> list[tuple[int, int]]:
    """The (since, until) of the units whose parameters include ``params``, in order."""
    return sorted((u.ctx.since, u.ctx.until) for u in units if params.items() <= dict(u.params).items()
                  and "breakdown" not in dict(u.params))


@pytest.mark.parametrize("totals", ["day", "window"])
def test_no_account_call_is_older_than_the_api_keeps_and_no_day_it_keeps_is_left_out(totals):
    window = Window(TODAY - timedelta(days=ACCOUNT_DAYS), TODAY, totals)     # the oldest window a config allows
    units = plan.account_units(ACCOUNT, 1000, window, Selection(), NOW)
    assert min(u.ctx.since for u in windowed(units)) >= NOW - ACCOUNT_DAYS * DAY       # the API's bound
    first = to_unix(TODAY - timedelta(days=ACCOUNT_DAYS - 1))                          # the first midnight after it
    for kind in ("total_value", "time_series"):
        pieces = covered(units, metric_type=kind)
        assert pieces[0][0] == first and pieces[-1][1] == to_unix(TODAY)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))        # no gap, no overlap
    assert plan.left_out_days(window, NOW) == 1


def test_the_chunks_after_the_first_kept_day_keep_their_place():
    """A backfill resumed days later plans the same 30-day chunks: only the oldest one moves."""
    window = Window(TODAY - timedelta(days=ACCOUNT_DAYS), TODAY, "window")
    now_pieces = covered(plan.account_units(ACCOUNT, 1000, window, Selection(), NOW), metric_type="total_value")
    later = covered(plan.account_units(ACCOUNT, 1000, window, Selection(), NOW + 3 * DAY), metric_type="total_value")
    assert later[1:] == now_pieces[1:]
    assert later[0] == (to_unix(TODAY - timedelta(days=ACCOUNT_DAYS - 4)), now_pieces[0][1])


def test_a_window_resumed_days_later_calls_nothing_refused_and_the_truth_leaves_the_same_days_out():
    from support import call_by_call as harvest  # the planner's units called one by one, refusals asserted
    world = World(WorldSpec(seed=4, accounts=2, media_per_account=2, now=NOW + 3 * DAY, stories_per_account=0))
    since, until = TODAY - timedelta(days=ACCOUNT_DAYS), TODAY
    found, _ = harvest(world, since, until, "window")     # asserts every refusal is an expected skip
    truth = expected_records(world, since, until, totals="window")
    assert found == truth
    first = iso(to_unix(TODAY - timedelta(days=ACCOUNT_DAYS - 4)))
    days = {key[6] for key in truth if key[6]}     # the since of totals, the end_time of series
    assert min(days) >= first
    assert plan.left_out_days(Window(since, until), world.now) == 4


def test_the_estimate_says_what_it_leaves_out_and_why(tmp_path):
    """The oldest window a config allows leaves nothing out today; resumed days later, the days
    the API has let go since are left out, and said so."""
    world = World(WorldSpec(seed=4, accounts=2, media_per_account=2, now=NOW))
    config, _ = world_config(world, tmp_path / "out", days=ACCOUNT_DAYS - 1)
    now = estimate(config, now=NOW)
    assert now.left_out_days == 0 and "left out" not in render(now)
    later = estimate(config, now=NOW + 3 * DAY)
    assert (later.left_out_days, later.earliest) == (3, str(TODAY - timedelta(days=ACCOUNT_DAYS - 4)))
    assert render(later).splitlines()[-1] == (
        f"left out: 3 days of account insights before {TODAY - timedelta(days=ACCOUNT_DAYS - 4)} "
        f"(the API keeps account insights {ACCOUNT_DAYS} days: it refuses an older since)")
    per_account = sum(t.account_calls for t in now.tokens) - sum(t.account_calls for t in later.tokens)
    assert per_account == 3 * 5 * len(config.accounts)     # 3 more days of totals (plain + 4 breakdowns) each
    inside = estimate(config, now=NOW + 3 * DAY - 15 * 3600)   # before that midnight: one day less left out
    assert inside.left_out_days == 2 and "left out: 2 days" in render(inside)


def test_a_backfill_from_the_earliest_day_allowed_leaves_nothing_out(tmp_path, capsys, monkeypatch, present):
    world = World(WorldSpec(now=NOW, seed=1, accounts=2))
    monkeypatch.setenv("TOKEN_0", "x")
    monkeypatch.setenv("TOKEN_1", "y")
    config = write_config(tmp_path / "harvest.toml", world, "http://127.0.0.1:9")   # nothing listens there
    today = from_unix(int(present))
    code = main(["backfill", "--config", str(config), "--since", str(today - timedelta(days=ACCOUNT_DAYS - 1)),
                 "--until", str(today), "--estimate"])
    out = capsys.readouterr().out
    assert code == 0 and "left out" not in out


def ask(now: float, unit) -> dict:
    """The simulator's answer to ``unit`` at ``now``: ``{}`` for data, else the error."""
    world = World(WorldSpec(seed=4, accounts=2, media_per_account=0, now=now, stories_per_account=0))
    token = world.owner(0)
    reply = GraphApi(world).handle(f"/v25.0/{unit.path}", dict(unit.params), token, "http://sim")
    return {} if reply.status == 200 else orjson.loads(reply.body)["error"]


def test_a_unit_expires_when_the_api_starts_refusing_it():
    account = World(WorldSpec(seed=4, accounts=2, media_per_account=0, now=NOW)).owner(0).account_ids[0]
    window = Window(TODAY - timedelta(days=40), TODAY - timedelta(days=2))
    units = windowed(plan.account_units(account, 1000, window, Selection(), NOW))
    follower = [u for u in units if "follower_count" in dict(u.params)["metric"]]
    assert follower and len(follower) < len(units)
    for unit in {plan.account_expires_at(u, NOW): u for u in units}.values():      # one per expiry
        expires = plan.account_expires_at(unit, NOW)
        assert ask(expires - 1, unit) == {}, unit.label
        assert ask(expires + 1, unit)["code"] == 100, unit.label


def test_an_owed_window_lasts_as_long_as_its_last_day_is_kept():
    window = Window(TODAY - timedelta(days=40), TODAY - timedelta(days=2))
    expires = plan.window_expires_at(window)
    assert windowed(plan.account_units(ACCOUNT, 1000, window, Selection(), expires - 1))
    assert not windowed(plan.account_units(ACCOUNT, 1000, window, Selection(), expires + 1))
