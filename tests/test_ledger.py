"""The ledger (harvester.run.ledger) between jobs, a real JSONL sink and a real state file: the
state never runs ahead of the data, a media counts as harvested only when all its units are
written, what is given up for a transient reason is owed, and without a sink records go to the
consumer and nothing is checkpointed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from harvester.config import Selection, Window
from harvester.days import DAY, from_unix, iso
from harvester.graph.client import GraphClient
from harvester.graph.policy import Action, Decision
from harvester.plan import units as plan
from harvester.records import InsightRecord, MediaRecord, Record
from harvester.run.jobs import AccountJob, InsightsJob, JobContext
from harvester.run.ledger import Ledger, owed_window_id
from harvester.simulator.pipeline import Simulator
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.world import World, WorldSpec
from harvester.sinks.jsonl import JsonlSink
from harvester.state.store import StateStore
from harvester.summary import Stats

NOW = 1_790_000_000.0
RUN = "r1"
ACCOUNT, MEDIA = "17841400000000000", "17900000000000001"


def context(ledger: Ledger) -> JobContext:
    world = World(WorldSpec(seed=1, accounts=1, media_per_account=0, now=NOW))
    client = GraphClient(SimulatorTransport(Simulator(world)), "http://simulator", "v25.0")
    return JobContext(client=client, tokens={}, submit=lambda job: None, ledger=ledger, stats=ledger.stats,
                      selection=Selection(), now=NOW, run_id=RUN, harvested_at=iso(NOW))


def opened(tmp_path: Path) -> tuple[Ledger, StateStore, JobContext]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    state = StateStore(tmp_path / "state.sqlite")
    state.open_run(RUN, kind="run", fingerprint="f", config_path=None, since=None, until=None)
    ledger = Ledger(Stats(), run_id=RUN, now=NOW, sink=JsonlSink(tmp_path / "out" / RUN, commit_units=10**6),
                    state=state)
    return ledger, state, context(ledger)


def media_units() -> list[plan.Unit]:
    return plan.media_units(ACCOUNT, MEDIA, "IMAGE", "FEED", NOW - DAY, Selection(), NOW)


def record(unit: plan.Unit, value: int = 1) -> InsightRecord:
    return InsightRecord(account_id=ACCOUNT, object_id=MEDIA, object_type="media", metric=unit.label,
                         period="lifetime", value=value, run_id=RUN)


async def test_a_unit_is_done_in_the_state_only_once_the_sink_made_its_records_durable(tmp_path):
    ledger, state, ctx = opened(tmp_path)
    unit = media_units()[0]
    await ledger.written(InsightsJob(ctx, "t", ACCOUNT, unit), [record(unit)])
    assert state.finished_units(RUN) == set() and ledger.stats.get("records/written") == 1
    await ledger.commit(final=True)
    assert state.finished_units(RUN) == {unit.id}
    (part,) = (tmp_path / "out" / RUN / "insights").glob("part-*.jsonl")
    assert len(part.read_bytes().splitlines()) == 1
    assert state.committed_parts(RUN) == {f"insights/{part.name}": part.stat().st_size}


async def test_a_media_is_harvested_when_its_last_unit_commits_and_not_if_one_failed(tmp_path):
    ledger, state, ctx = opened(tmp_path)
    units = media_units()
    assert len(units) >= 2
    ledger.media_planned((MEDIA, ACCOUNT, "FEED"), [u.id for u in units])
    for unit in units[:-1]:
        await ledger.written(InsightsJob(ctx, "t", ACCOUNT, unit), [record(unit)])
    await ledger.commit()
    assert state.last_harvested([MEDIA], run_id="another") == {}             # one unit still out
    ledger.skipped(ACCOUNT, units[-1].label, Decision(Action.SKIP, "not enough viewers (10)"), units[-1])
    await ledger.commit(final=True)
    assert state.last_harvested([MEDIA], run_id="another") == {MEDIA: NOW}

    second = MEDIA[:-1] + "2"
    ledger, state, ctx = opened(tmp_path / "again")
    ledger.media_planned((second, ACCOUNT, "FEED"), [u.id for u in units])
    ledger.failed(InsightsJob(ctx, "t", ACCOUNT, units[0]), Decision(Action.FAIL, "unknown error (1)"))
    for unit in units[1:]:
        await ledger.written(InsightsJob(ctx, "t", ACCOUNT, unit), [record(unit)])
    await ledger.commit(final=True)
    assert state.last_harvested([second], run_id="another") == {}            # due again next run


async def test_what_is_given_up_for_a_transient_reason_is_owed_and_the_rest_is_not(tmp_path):
    ledger, state, ctx = opened(tmp_path)
    first, second = media_units()[:2]
    window = Window(from_unix(int(NOW)) - timedelta(days=3), from_unix(int(NOW)))
    transient = Decision(Action.FAIL, "HTTP 503 after 5 attempts", transient=True)
    ledger.failed(InsightsJob(ctx, "t", ACCOUNT, first, expires_at=NOW + 60), transient)
    ledger.failed(InsightsJob(ctx, "t", ACCOUNT, second), Decision(Action.FAIL, "object missing (100/33)"))
    ledger.failed(AccountJob(ctx, ACCOUNT, "t", [window]), transient)
    owed = {o.owed_id: o for o in state.owed([ACCOUNT])}
    assert set(owed) == {first.id, owed_window_id(ACCOUNT, window)}
    assert owed[first.id].kind == "unit" and owed[first.id].expires_at == NOW + 60
    assert owed[owed_window_id(ACCOUNT, window)].kind == "window"
    assert ledger.stats.failures == 3 and state.unit_counts(RUN) == {"failed": 3}


async def test_object_records_an_earlier_attempt_committed_are_not_written_again(tmp_path):
    ledger, state, _ = opened(tmp_path)
    media = MediaRecord(media_id=MEDIA, account_id=ACCOUNT, run_id=RUN)
    ledger.finished = {f"media/{MEDIA}"}
    other = MediaRecord(media_id=MEDIA[:-1] + "2", account_id=ACCOUNT, run_id=RUN)
    await ledger.objects(ACCOUNT, [(f"media/{MEDIA}", media), (f"media/{other.media_id}", other)])
    await ledger.commit(final=True)
    assert state.finished_units(RUN) == {f"media/{other.media_id}"}
    assert ledger.stats.get("records/media") == 1


async def test_without_a_sink_records_go_to_the_consumer_and_nothing_is_checkpointed(tmp_path):
    emitted: list[Record] = []

    async def emit(records):
        emitted.extend(records)

    ledger = Ledger(Stats(), run_id=RUN, now=NOW, emit=emit)
    ctx = context(ledger)
    unit = media_units()[0]
    media = MediaRecord(media_id=MEDIA, account_id=ACCOUNT, run_id=RUN)
    await ledger.written(InsightsJob(ctx, "t", ACCOUNT, unit), [record(unit)])
    await ledger.objects(ACCOUNT, [(f"media/{MEDIA}", media)])
    ledger.failed(InsightsJob(ctx, "t", ACCOUNT, unit), Decision(Action.FAIL, "x", transient=True))
    await ledger.commit(final=True)
    assert emitted == [record(unit), media]
    assert ledger.stats.get("records/written") == 1 and ledger.stats.failures == 1
