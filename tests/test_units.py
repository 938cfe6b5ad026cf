"""What the planner's units cost to hold: a harvest at 512 calls in flight plans thousands of
units ahead of its calls, so the memory of each one is the memory benchmark's slope."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from harvester.plan import units as plan
from harvester.simulator.world import World, WorldSpec

from support import world_config

NOW = 1795575600.0          # 2026-11-25T03:00Z
UNIT_BYTES = 600
"""What a planned media unit may hold of its own: 731 bytes before the media of a product shared
their parameters (the same metric list, joined again for every media) and a media's breakdown
calls one context; 483 after (tracemalloc, 2,000 reels)."""


def test_the_units_of_many_media_share_what_they_have_in_common():
    world = World(WorldSpec(seed=1, accounts=1, media_per_account=5, now=NOW))
    config, _ = world_config(world, Path("out"))
    ids = [f"1790{n:013d}" for n in range(2000)]
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        kept = [plan.media_units("17841400000000000", media_id, "VIDEO", "REELS", NOW - 86400, config.selection, NOW)
                for media_id in ids]
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    units = [u for media in kept for u in media]
    assert len(units) >= len(ids)
    held = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert held / len(units) < UNIT_BYTES, held / len(units)
    first, second = kept[0][0], kept[1][0]
    assert first.params == second.params and first.id != second.id and first.ctx.object_id != second.ctx.object_id
