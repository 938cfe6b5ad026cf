"""The jobs of a harvest (harvester.run.jobs): each called on its own against the simulator through
the real client (what each call finds becomes the next jobs, each media is planned once per run,
and what a job's being given up means is the job's to say), then in whole harvests whose answers
are bent on the way (a media listed twice, endless paging, a page refusing children, media
without insights)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from harvester import Harvester
from harvester.config import Selection, Window
from harvester.days import from_unix, iso
from harvester.graph.client import GraphClient
from harvester.graph.policy import Action, Decision
from harvester.graph.transport import Response
from harvester.plan import units as plan
from harvester.records import AccountRecord, MediaRecord, Record
from harvester.run.jobs import AccountJob, InsightsJob, Job, JobContext, PageJob
from harvester.run.ledger import Ledger
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.truth import expected_media
from harvester.simulator.world import World, WorldSpec
from harvester.sinks import manifest
from harvester.summary import Stats

from support import (
    Recording,
    assert_matches_truth,
    assert_streams_match,
    harvest_with_state,
    run_records,
    truth_of,
    world_config,
)

NOW = 1_790_000_000.0
KEY = "token-key"


class Harvest:
    """One token of a simulated world, a JobContext over the real client, and what its jobs did:
    the jobs they submitted and the records they emitted (a ledger without a sink)."""

    def __init__(self, *, media: int = 5, skip_units: frozenset[str] = frozenset()):
        self.world = World(WorldSpec(seed=2, accounts=1, media_per_account=media, stories_per_account=0, now=NOW))
        token = self.world.tokens[0]
        self.account = token.account_ids[0]
        self.submitted: list[Job] = []
        self.records: list[Record] = []
        self.stats = Stats()
        self.ledger = Ledger(self.stats, run_id="r1", now=NOW, emit=self.emit)
        client = GraphClient(SimulatorTransport(Simulator(self.world, SimulatorSettings(calls_per_window=10**9))),
                             "http://simulator", "v25.0")
        self.ctx = JobContext(client=client, tokens={KEY: token.token}, submit=self.submitted.append,
                              ledger=self.ledger, stats=self.stats, selection=Selection(), now=NOW, run_id="r1",
                              harvested_at=iso(NOW), skip_units=skip_units)
        self.ctx.probes.probes = 10**9      # every insights call goes: what is planned, not the probes (test_probes)

    async def emit(self, records) -> None:
        self.records.extend(records)

    def taken(self, kind: type) -> list:
        """The submitted jobs of one kind, forgotten from the list."""
        jobs = [j for j in self.submitted if isinstance(j, kind)]
        self.submitted[:] = [j for j in self.submitted if not isinstance(j, kind)]
        return jobs


async def test_an_account_job_plans_its_units_and_the_first_page_of_each_edge():
    h = Harvest(media=250)
    today = from_unix(int(NOW))
    window = Window(today - timedelta(days=3), today)
    await AccountJob(h.ctx, h.account, KEY, [window])()
    (record,) = h.records
    assert isinstance(record, AccountRecord) and record.account_id == h.account and record.day == iso(NOW)[:10]
    insights = h.taken(InsightsJob)
    followers = h.world.account_by_id(h.account).followers
    assert [j.unit for j in insights] == plan.account_units(h.account, followers, window, Selection(), NOW)
    pages = h.taken(PageJob)
    assert sorted(p.edge for p in pages) == ["media", "stories"] and not h.submitted
    media = next(p for p in pages if p.edge == "media")
    listed = h.world.listed_media(h.world.account_by_id(h.account))
    assert media.bound >= listed / 100 and media.children            # what media_count allows, with slack


async def test_a_page_plans_each_media_once_with_its_breakdowns_following_it_and_the_next_page():
    h = Harvest(media=250)                  # 258 media: three pages
    await PageJob(h.ctx, h.account, KEY, "media", bound=10)()
    first = h.taken(InsightsJob)
    (nxt,) = h.taken(PageJob)
    media = [r for r in h.records if isinstance(r, MediaRecord)]
    assert len(media) == len(first) == 100 and nxt.number == 2 and nxt.next_url
    assert all(job.follow_ups and job.unit.ctx.object_id == job.follow_ups[0].ctx.object_id for job in first
               if job.unit.ctx.media_product_type == "FEED")
    await PageJob(h.ctx, h.account, KEY, "media", bound=10)()      # the same first page again
    assert h.taken(InsightsJob) == [] and h.stats.get("media/duplicate") == 100


async def test_paging_stops_at_the_bound_and_says_so():
    h = Harvest(media=250)                  # 258 media: three pages
    await PageJob(h.ctx, h.account, KEY, "media", bound=1)()
    assert h.taken(PageJob) == [] and h.stats.get("paging/bounded") == 1
    (outcome,) = h.stats.failed
    assert "paging stopped after 1 pages" in outcome.reason


async def test_units_an_earlier_attempt_finished_are_not_asked_and_their_follow_ups_are():
    units = plan.media_units("1", "2", "IMAGE", "FEED", NOW - 3600, Selection(), NOW)
    h = Harvest(skip_units=frozenset({units[0].id}))
    h.ctx.submit_units(KEY, "1", units)
    assert [j.unit for j in h.taken(InsightsJob)] == units[1:]
    assert h.stats.get("units/resumed") == 1 and h.stats.get("units/planned") == len(units)


@pytest.mark.parametrize(("action", "submitted", "skipped"), [(Action.SKIP, 0, 2), (Action.FAIL, 1, 0),
                                                              (Action.FAIL_TOKEN, 0, 0)])
def test_an_insights_job_given_up_says_what_becomes_of_its_follow_ups(action, submitted, skipped):
    units = plan.media_units("1", "2", "IMAGE", "FEED", NOW - 3600, Selection(), NOW)
    h = Harvest()
    InsightsJob(h.ctx, KEY, "1", units[0], tuple(units[1:])).gave_up(Decision(action, "why"))
    assert len(h.taken(InsightsJob)) == submitted                   # the first follow-up, the rest after it
    assert h.stats.get("units/skipped") == (len(units) if action is Action.SKIP else skipped)
    assert h.stats.failures == (action is Action.FAIL)


def test_a_page_refusing_children_is_asked_again_once_without_them():
    h = Harvest()
    page = PageJob(h.ctx, "1", KEY, "media", bound=5)
    page.gave_up(Decision(Action.FAIL, "unknown error (1)"))
    (again,) = h.taken(PageJob)
    assert not again.children and again.number == page.number and h.stats.get("paging/without_children") == 1
    again.gave_up(Decision(Action.FAIL, "unknown error (1)"))
    assert h.taken(PageJob) == [] and h.stats.failures == 1


# -- in whole harvests ---------------------------------------------------------------------------


class Bent(SimulatorTransport):
    """The simulator, with the bodies of ``/media`` pages rewritten by ``bend(path, query, body)``."""

    def __init__(self, simulator: Simulator, bend: Callable[[str, dict, dict], dict]):
        super().__init__(simulator)
        self.bend = bend
        self.media_pages = 0

    async def get(self, url: str, headers: Mapping[str, str]) -> Response:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        if query.get("after", "").startswith("0x"):         # a cursor of ours: the API gets page 1
            url = url.split("?")[0] + "?limit=100&fields=" + query.get("fields", "id")
        response = await super().get(url, headers)
        if not parts.path.endswith("/media") or response.status != 200:
            return response
        self.media_pages += 1
        body = self.bend(parts.path, query, orjson.loads(response.body))
        return Response(200, response.headers, orjson.dumps(body))


@pytest.mark.looptime
async def test_a_media_id_listed_twice_is_planned_once(tmp_path):
    world = World(WorldSpec(now=NOW, seed=8, accounts=4, media_per_account=20))
    config, env = world_config(world, tmp_path / "out")
    first_page: dict[str, list] = {}

    def bend(path: str, query: dict, body: dict) -> dict:
        data = body["data"]
        account = path.split("/")[-2]
        if data and "after" not in query:
            first_page.setdefault(account, [dict(data[0])])
            data.insert(1, dict(data[0]))                       # twice on one page
            for other, items in first_page.items():             # and on another account's page
                if other != account:
                    data.extend(items)
        return body

    transport = Bent(Simulator(world), bend)
    harvester, summary = await harvest_with_state(config, env, transport, world)
    assert summary.exit_code == 0, summary.render()
    assert harvester.stats.get("media/duplicate") > 0
    records = list(manifest.current_records(tmp_path / "out"))
    assert_matches_truth(records, truth_of(world, config))


@pytest.mark.looptime
async def test_an_endless_or_circular_paging_chain_ends_and_is_reported(tmp_path):
    world = World(WorldSpec(now=NOW, seed=9, accounts=2, media_per_account=30, tokens=2))
    config, env = world_config(world, tmp_path / "out")
    circular = world.tokens[0].account_ids[0]

    def bend(path: str, query: dict, body: dict) -> dict:
        account = path.split("/")[-2]
        after = int(query["after"][2:], 16) if "after" in query else 0
        cursor = "0x1" if account == circular else f"0x{after + 1:x}"
        nxt = f"http://simulator/v25.0/{account}/media?limit=100&fields={query['fields']}&after={cursor}"
        return {"data": body["data"], "paging": {"cursors": {"after": cursor}, "next": nxt}}

    transport = Bent(Simulator(world), bend)
    harvester, summary = await harvest_with_state(config, env, transport, world)
    assert harvester.stats.get("paging/repeated") == 1
    assert harvester.stats.get("paging/bounded") == 1
    bounded = [o for o in summary.failed if "paging stopped" in o.reason]
    assert len(bounded) == 1 and summary.exit_code == 3
    assert transport.media_pages < 20


@pytest.mark.looptime
async def test_a_page_refusing_children_is_asked_again_without_them_and_nothing_is_lost(tmp_path):
    """One album that refuses ``children`` fails its page: that page (only) is asked again without
    the field, its albums' children are unknown (None), every insight is still harvested."""
    world = World(WorldSpec(now=NOW, seed=22, accounts=3, media_per_account=400))
    config, env = world_config(world, tmp_path / "out")
    settings = SimulatorSettings(calls_per_window=10**9, hostile=("refuse_children",))
    transport = Recording(Simulator(world, settings))
    async with Harvester.pinned(config, tokens=env, transport=transport, now=world.now) as harvester:
        summary = await harvester.run()
    assert summary.exit_code == 0, summary.render()
    assert_streams_match(tmp_path / "out", world, config, hostile=("refuse_children",))
    refused = [path for path, query, status in transport.calls if status == 400 and "children" in query]
    retried = harvester.stats.get("paging/without_children") + harvester.stats.get("paging/nested_failed")
    assert retried == len(refused) > 0                  # nested insights are dropped first, then children
    media = list(manifest.current_records(tmp_path / "out", "media"))
    assert any(m["children_ids"] is None for m in media) and any(m["children_ids"] for m in media)
    truth = expected_media(world, hostile=("refuse_children",))
    assert sum(t["children_ids"] is None for t in truth.values()) == sum(m["children_ids"] is None for m in media)


@pytest.mark.slow
@pytest.mark.looptime
async def test_a_media_without_insights_is_never_asked_for_its_breakdowns(tmp_path):
    """Media posted before the business conversion and stories with fewer than 5 viewers answer
    their first call with an error that every other call of theirs would repeat: no second call."""
    world = World(WorldSpec(now=NOW, seed=3, accounts=10, media_per_account=30))
    config, env = world_config(world, tmp_path / "out")
    transport = Recording(Simulator(world, SimulatorSettings(calls_per_window=10**9)))
    async with Harvester.pinned(config, tokens=env, transport=transport, now=world.now) as harvester:
        summary = await harvester.run()
    refused = {path for path, query, status in transport.calls
               if status == 400 and path.endswith("/insights") and "facebook_views" not in query}
    assert len(refused) > 10
    asked = [(path, query) for path, query, _ in transport.calls if path in refused]
    assert len(asked) == len(refused)               # one call each, the plain one (not even the Facebook share's)
    assert all("breakdown" not in query for _, query in asked)
    skipped_reasons = {o.reason for o in summary.skipped}
    assert skipped_reasons <= {"posted before business conversion (100/2108006)", "not enough viewers (10)",
                               "not shared to Facebook (-1/2207086)"}
    assert_matches_truth(run_records(tmp_path / "out", harvester.run_id), truth_of(world, config))


def test_the_metrics_asked_are_told_per_kind_of_object_and_login():
    """``metrics_asked`` (summary.json, the manifest) names each kind as the refusals do, the
    login of the token that asked included, whatever the order the calls came in."""
    ctx = JobContext(client=None, tokens={"fb": "t", "ig": "t"}, submit=lambda job: None, ledger=None,  # type: ignore[arg-type]
                     stats=Stats(), selection=Selection(), now=NOW, run_id="r", harvested_at=iso(NOW),
                     clients={"ig": None})  # type: ignore[dict-item]
    window = Window(since=from_unix(int(NOW)) - timedelta(days=2), until=from_unix(int(NOW)))
    account = plan.account_units("1", 100, window, Selection(), NOW)[0]
    image, reel = (plan.media_units("1", media, kind, product, NOW - 3600, Selection(), NOW)[0]
                   for media, kind, product in (("2", "IMAGE", None), ("3", "VIDEO", "REELS")))
    for key, unit in (("ig", image), ("fb", reel), ("fb", account), ("fb", image), ("ig", image)):
        ctx.asked(ctx.kind(key, unit), unit)
    asked = ctx.metrics_asked()
    assert list(asked) == sorted(asked) == sorted(["account (facebook, v25.0)", "media FEED IMAGE (facebook, v25.0)",
                                                  "media FEED IMAGE (instagram, v25.0)",
                                                  "media REELS VIDEO (facebook, v25.0)"])
    assert asked["media FEED IMAGE (instagram, v25.0)"] == sorted(plan.metrics_of(image))
    assert asked["media REELS VIDEO (facebook, v25.0)"] == sorted(plan.metrics_of(reel))
