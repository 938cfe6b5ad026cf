"""The jobs of a harvest (harvester.run.jobs), each called on its own against the simulator through
the real client: what each call finds becomes the next jobs, each media is planned once per run,
and what a job's being given up means is the job's to say."""

from __future__ import annotations

from datetime import timedelta

import pytest

from harvester.config import Selection, Window
from harvester.days import from_unix, iso
from harvester.graph.client import GraphClient
from harvester.graph.policy import Action, Decision
from harvester.plan import units as plan
from harvester.records import AccountRecord, MediaRecord, Record
from harvester.run.jobs import AccountJob, InsightsJob, Job, JobContext, PageJob
from harvester.run.ledger import Ledger
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.world import World, WorldSpec
from harvester.summary import Stats

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
    assert len(h.taken(InsightsJob)) == submitted == (len(units) - 1 if action is Action.FAIL else 0)
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
