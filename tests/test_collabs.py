"""Collaboration posts (issue 24.6): a media listed on two accounts' pages, created by one. Only
the creator's token reads its insights (the lister's gets 100/33): it is asked with the creator's
token and recorded under the creator when the creator is harvested too, else it is one failure
that says why."""

from __future__ import annotations

import msgspec
import pytest

from harvester import Harvester
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.truth import expected_records
from harvester.simulator.world import World, WorldSpec

from support import assert_matches_truth, run_records, world_config

NOW = 1_793_000_000.0          # 2026-10-26T07:33:20Z
COLLABS = 2


async def harvest(tmp_path, world, *, leave_out: int | None = None):
    config, env = world_config(world, tmp_path / "out", days=2)
    if leave_out is not None:
        config = msgspec.structs.replace(config, accounts=tuple(
            a for a in config.accounts if a.id != world.account(leave_out).id))
    simulator = Simulator(world, SimulatorSettings(collabs=COLLABS))
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator),
                                now=world.now) as harvester:
        summary = await harvester.run()
    truth = expected_records(world, config.window.since, config.window.until,
                             accounts=[a.id for a in config.accounts])
    return summary, harvester, config, truth, simulator


def listed_by_another(world, simulator, account_ids) -> dict[str, tuple[str, str]]:
    """Collab media id -> (lister's account id, creator's account id), for the listers harvested."""
    out = {}
    for account in world.accounts_of_live_tokens():
        partner, shared = simulator.api.collaborator(account)
        if account.id in account_ids:
            out.update({world.media(partner, n).id: (account.id, partner.id) for n in range(shared)})
    return out


def unreadable_by_lister(world, simulator) -> int:
    """Collab media the lister's own token cannot read (the API answers it 100/33)."""
    return sum(shared for a in world.accounts_of_live_tokens()
               for partner, shared in [simulator.api.collaborator(a)]
               if world.owner(partner.index).index != world.owner(a.index).index)


@pytest.mark.looptime
async def test_a_collab_post_is_asked_with_its_creators_token_and_recorded_under_the_creator(tmp_path):
    world = World(WorldSpec(seed=246, accounts=4, media_per_account=12, now=NOW))
    summary, harvester, config, truth, simulator = await harvest(tmp_path, world)
    collabs = listed_by_another(world, simulator, {a.id for a in config.accounts})
    assert len(collabs) >= COLLABS * 3 and unreadable_by_lister(world, simulator) >= COLLABS
    assert summary.exit_code == 0 and not summary.failed, summary.render()
    records = run_records(tmp_path / "out", harvester.run_id)
    assert_matches_truth(records, truth)                          # each collab post once, under its creator
    media = {r["media_id"]: r["account_id"] for r in run_records(tmp_path / "out", harvester.run_id, "media")}
    assert {m: media[m] for m in collabs} == {m: creator for m, (_, creator) in collabs.items()}
    assert {r["account_id"] for r in records if r.get("media_id") in collabs} <= {c for _, c in collabs.values()}
    assert harvester.stats.get("media/collab") == len(collabs)


@pytest.mark.looptime
async def test_a_collab_post_whose_creator_is_not_harvested_is_one_failure_naming_why(tmp_path):
    world = World(WorldSpec(seed=246, accounts=4, media_per_account=12, now=NOW))
    summary, harvester, config, truth, simulator = await harvest(tmp_path, world, leave_out=3)
    harvested = {a.id for a in config.accounts}
    collabs = listed_by_another(world, simulator, harvested)
    orphans = {m for m, (_, creator) in collabs.items() if creator not in harvested}
    assert orphans
    records = run_records(tmp_path / "out", harvester.run_id)
    assert_matches_truth(records, truth)                          # everything else is there
    assert len(summary.failed) == len(orphans) and summary.exit_code != 0, summary.render()
    for failure in summary.failed:
        assert failure.label.removeprefix("media ") in orphans
        assert "collaboration post of @sim_account_3" in failure.reason and "100/33" in failure.reason
        assert "[[accounts]]" in failure.reason
    assert "collaboration post" in summary.render()
