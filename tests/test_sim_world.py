"""The simulated world: deterministic from the seed, derived on demand, every kind of object."""

from collections import Counter

import pytest

from harvester import catalog
from harvester.simulator.world import MEDIA_EDGE_MAX, World, WorldSpec

from support import NOW

SPEC = WorldSpec(seed=3, accounts=200, media_per_account=50, now=NOW, revoked_tokens=2, expiring_tokens=((1, 5),))


def test_same_seed_same_world_other_seed_other_world():
    one, two, other = World(SPEC), World(SPEC), World(WorldSpec(seed=4, accounts=200, media_per_account=50, now=NOW))
    assert one.to_json("u") == two.to_json("u")
    assert [one.account(i) for i in range(50)] == [two.account(i) for i in range(50)]
    assert one.to_json("u") != other.to_json("u")
    assert [one.account(i).followers for i in range(50)] != [other.account(i).followers for i in range(50)]


def test_tokens_partition_the_accounts_by_kind():
    world = World(SPEC)
    owned = [a for t in world.tokens for a in t.account_ids]
    assert sorted(owned) == sorted(world.account(i).id for i in range(200)) and len(set(owned)) == 200
    kinds = Counter(t.kind for t in world.tokens)
    assert kinds["facebook"] > 0 and kinds["instagram"] > 0
    assert all(len(t.account_ids) == 1 and t.user_id == t.account_ids[0] for t in world.tokens if t.kind == "instagram")
    assert max(len(t.account_ids) for t in world.tokens if t.kind == "facebook") > 1
    assert [t.revoked for t in world.tokens][-3:] == [False, True, True]
    assert world.tokens[1].expires_after_calls == 5
    assert all(world.token(t.token) is t for t in world.tokens) and world.token("EAAnothing") is None
    assert world.to_json("http://x") == {"base_url": "http://x", "now": world.now, "app_id": world.app_id,
                                         "app_secret": world.app_secret, "tokens": [
        {"token": t.token, "accounts": list(t.account_ids), "kind": t.kind} for t in world.tokens]}


def test_a_given_number_of_tokens_spreads_the_accounts():
    world = World(WorldSpec(seed=1, accounts=1000, tokens=300, now=NOW))
    assert len(world.tokens) == 300
    assert sum(len(t.account_ids) for t in world.tokens) == 1000
    assert {len(t.account_ids) for t in world.tokens if t.kind == "instagram"} == {1}
    single = World(WorldSpec(accounts=5, tokens=1, now=NOW)).tokens
    assert len(single) == 1 and single[0].kind == "facebook" and len(single[0].account_ids) == 5


def test_accounts_have_small_and_big_follower_counts_and_a_long_tail_of_media():
    world = World(SPEC)
    accounts = [world.account(i) for i in range(200)]
    small = sum(a.followers < 100 for a in accounts)
    assert 10 < small < 60
    counts = sorted(a.media_count for a in accounts)
    assert 35 < sum(counts) / len(counts) < 65 and counts[-1] > 2 * 50
    assert any(a.converted_at > NOW - 730 * 86400 for a in accounts)


def test_media_of_every_kind_over_two_years_newest_first():
    world = World(SPEC)
    media = [world.media(world.account(i), n) for i in range(40) for n in range(world.account(i).media_count)]
    kinds = Counter((m.media_type, m.media_product_type) for m in media)
    assert set(kinds) == {("IMAGE", "FEED"), ("CAROUSEL_ALBUM", "FEED"), ("VIDEO", "FEED"), ("VIDEO", "REELS")}
    assert all(NOW - 731 * 86400 < m.timestamp < NOW for m in media)
    assert min(m.timestamp for m in media) < NOW - 600 * 86400
    assert any(world.before_conversion(m) for m in media) and not all(world.before_conversion(m) for m in media)
    account = world.account(0)
    stamps = [world.media(account, n).timestamp for n in range(account.media_count)]
    assert stamps == sorted(stamps, reverse=True)
    album = next(m for m in media if m.media_type == "CAROUSEL_ALBUM")
    children = [world.child(album, c) for c in range(album.children)]
    assert 2 <= len(children) <= 10 and all(world.media_by_id(c.id) == c for c in children)


def test_ids_encode_their_objects():
    world = World(SPEC)
    account = next(world.account(i) for i in range(200) if world.account(i).media_count > 3)
    assert world.account_by_id(account.id) == account
    assert world.page_account(account.page_id) == account
    media = world.media(account, 3)
    assert world.media_by_id(media.id) == media and len(media.id) == 17
    story = world.story(account, 0)
    assert world.media_by_id(story.id) == story
    for nothing in ("17841400000000000" + "9", "1790999999" + "0000000", "abc", "1790" + "0" * 13 + "1",
                    f"1790{account.index:06d}{account.media_count:07d}"):
        assert world.media_by_id(nothing) is None and world.account_by_id(nothing) is None


def test_stories_live_and_expired_with_few_viewers_sometimes():
    world = World(SPEC)
    stories = [s for i in range(200) for s in world.live_stories(world.account(i))]
    assert stories and all(NOW - s.timestamp < catalog.STORY_LIFETIME_SECONDS and not s.expired for s in stories)
    assert any(s.viewers < catalog.STORY_MIN_VIEWERS for s in stories)
    assert any(s.viewers >= catalog.STORY_MIN_VIEWERS for s in stories)
    account = world.account(0)
    expired = world.story(account, account.stories)
    assert expired.expired and NOW - expired.timestamp >= 86400
    assert world.media_by_id(expired.id) == expired


def test_values_are_pure_functions_of_their_keys():
    one, two = World(SPEC), World(SPEC)
    account = one.account(7)
    since, until = int(NOW) - 86400 * 3, int(NOW) - 86400 * 2
    reach = one.values.interaction
    assert reach(account, "reach", since, until) == two.values.interaction(two.account(7), "reach", since, until)
    assert reach(account, "reach", since, until) != reach(account, "reach", since, until + 3600) \
        or reach(account, "reach", since - 1, until) != reach(account, "reach", since, until)
    week = reach(account, "views", since - 6 * 86400, until)
    assert week > reach(account, "views", since, until)
    top = one.values.demographics(account, "follower_demographics", "this_month", ("country",))
    assert top == two.values.demographics(two.account(7), "follower_demographics", "this_month", ("country",))
    assert len(top) <= catalog.DEMOGRAPHIC_TOP and [v for _, v in top] == sorted((v for _, v in top), reverse=True)


@pytest.mark.slow
def test_huge_worlds_cost_nothing_up_front():
    world = World(WorldSpec(seed=9, accounts=50_000, media_per_account=200, now=NOW))
    account = world.account(49_999)
    assert world.listed_media(account) <= MEDIA_EDGE_MAX
    last = world.media(account, max(0, account.media_count - 1))
    assert world.media_by_id(last.id) == last or account.media_count == 0
    assert sum(len(t.account_ids) for t in world.tokens) == 50_000


def test_the_limits_come_from_the_catalog(monkeypatch):
    """The planner and the simulator read the follower minimum, the look-back and the story lifetime
    from the catalog: change them there and both follow."""
    from harvester.config import Selection, Window
    from harvester.days import days_back, from_unix
    from harvester.plan import units as plan

    monkeypatch.setattr(catalog, "RECENT_DAYS", 10)
    monkeypatch.setattr(catalog, "STORY_LIFETIME_SECONDS", 6 * 3600)
    world = World(WorldSpec(seed=3, accounts=30, media_per_account=0, now=NOW, small_accounts=0.0))
    assert world.last30 == plan.last30_start(NOW) == days_back(NOW, 10)
    account = max((world.account(i) for i in range(30)), key=lambda a: a.followers)
    assert world.values.has_demographic(account, "follower_demographics")
    monkeypatch.setattr(catalog, "MIN_FOLLOWERS", account.followers + 1)
    assert not world.values.has_demographic(account, "follower_demographics")
    today = from_unix(int(NOW))
    units = plan.account_units(account.id, account.followers, Window(today.replace(day=1), today), Selection(), NOW)
    assert not [u for u in units if "timeframe" in dict(u.params) or "follower_count" in dict(u.params)["metric"]]
    storied = next(a for a in (world.account(i) for i in range(30)) if a.stories)
    assert all(NOW - world.story(storied, n).timestamp < 5 * 3600 for n in range(storied.stories))
