"""Decode: the flattener against what a user would write, and against msgspec's bare decode.

The corpus is what a harvest fetches: the simulator's own API answers the calls the planner
makes (account totals by day with every breakdown, daily series, online followers, demographics,
media and story lifetime values and their breakdowns), each body kept with the Context of its
call, until there are at least ``CORPUS_MB`` of bodies. Four contenders read the same bytes:

- ``flatten``: harvester's flattener (typed msgspec decode straight to InsightRecord structs);
- ``orjson``: ``orjson.loads`` and a walk over the dicts, building one dict per record;
- ``json``: the same walk over the stdlib ``json.loads``;
- ``bare``: ``wire.decode_insights`` alone (typed Structs, no records);
- ``floor``: the bare decode, then the least any flattener must add: visit every value and make
  one object (a tuple, the cheapest there is) for it, with no rule applied. Its ratio to ``bare``
  is the best any flattener that hands out one Python object per record can reach here.

The three flatteners must agree record for record (checked on a sample before timing).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec
import orjson

from harvester.commands.demo import world_config
from harvester.days import iso, parse_iso
from harvester.graph.flatten import Context, flatten
from harvester.graph.wire import decode_account, decode_insights, decode_media_page
from harvester.plan import units as plan
from harvester.run.jobs import ACCOUNT_FIELDS, MEDIA_FIELDS, PAGE_LIMIT
from harvester.simulator.api import GraphApi
from harvester.simulator.world import World, WorldSpec

from .measure import Outcome, Row, human, rate, rounds

CORPUS_MB = 50
ROUNDS = 5
RUN_ID, HARVESTED_AT = "bench-run", "2026-11-25T03:00:00+0000"
VERSION = "v25.0"
BASE = "http://simulator"
GOALS = {"orjson": 2.0, "json": 3.5, "bare": 1 / 1.5}

Corpus = list[tuple[bytes, Context]]


# --- the corpus ------------------------------------------------------------------------------


def build_corpus(megabytes: float = CORPUS_MB, *, seed: int = 11, days: int = 7) -> Corpus:
    """Bodies of the calls a harvest of ``days`` days makes, account after account."""
    world = World(WorldSpec(seed=seed, accounts=2000, media_per_account=60))
    api = GraphApi(world)
    config, _ = world_config(world, Path("bench-out"), base_url=BASE, days=days, path="<bench>")
    corpus: Corpus = []
    size, limit = 0, megabytes * 1e6
    for token in world.tokens:
        for account in token.account_ids:
            for body, ctx in _account_calls(api, world, token, account, config):
                corpus.append((body, ctx))
                size += len(body)
            if size >= limit:
                return corpus
    return corpus


def _account_calls(api: GraphApi, world: World, token, account: str, config) -> Iterator[tuple[bytes, Context]]:
    """(body, ctx) of every insights call of one account that the API answers with data."""
    call = lambda path, query: api.handle(f"/{VERSION}/{path}", query, token, BASE)  # noqa: E731
    node = decode_account(call(account, {"fields": ACCOUNT_FIELDS}).body)
    units = plan.account_units(account, node.followers_count, config.window, config.selection, world.now)
    for edge in ("media", "stories"):
        for item in _listed(call, f"{account}/{edge}"):
            product = "STORY" if edge == "stories" else item.media_product_type
            posted = parse_iso(item.timestamp) if item.timestamp else None
            units += plan.media_units(account, item.id, item.media_type, product, posted, config.selection, world.now)
    for unit in units:
        reply = call(unit.path, dict(unit.params))
        if reply.status == 200:
            yield reply.body, unit.ctx


def _listed(call: Callable, path: str) -> Iterator[Any]:
    """Every item of a /media or /stories listing, page after page."""
    query: dict[str, str] = {"fields": MEDIA_FIELDS, "limit": PAGE_LIMIT}
    while True:
        page = decode_media_page(call(path, query).body)
        yield from page.data
        nxt = page.paging.next if page.paging else None
        if not nxt or not page.data:
            return
        parts = urlsplit(nxt)
        path = parts.path.split("/", 2)[2]
        query = {k: v for k, v in parse_qsl(parts.query) if k != "access_token"}


# --- the baselines, as a user would write them ----------------------------------------------


def walk(doc: dict, ctx: Context, run_id: str | None, harvested_at: str | None) -> list[dict]:
    """docs/harvest-rules.md over parsed JSON: one dict per record, in InsightRecord's field order."""
    since = iso(ctx.since) if ctx.since is not None else None
    until = iso(ctx.until) if ctx.until is not None else None

    def record(metric, period, value, end_time=None, keys=None, values=None):
        return {"account_id": ctx.account_id, "object_id": ctx.object_id, "object_type": ctx.object_type,
                "media_type": ctx.media_type, "media_product_type": ctx.media_product_type,
                "metric": metric, "period": period, "metric_type": ctx.metric_type,
                "timeframe": ctx.timeframe, "since": since, "until": until, "end_time": end_time,
                "dimension_keys": keys or [], "dimension_values": values or [], "value": value,
                "run_id": run_id, "harvested_at": harvested_at}

    records = []
    for item in doc.get("data", []):
        name, period = item["name"], item.get("period")
        total = item.get("total_value")
        if ctx.breakdown_only:
            for breakdown in (total or {}).get("breakdowns", []):
                keys, lead = breakdown.get("dimension_keys", []), []
                if ctx.timeframe is not None and keys[:1] != ["timeframe"]:
                    keys, lead = ["timeframe", *keys], [ctx.timeframe.upper()]
                for result in breakdown.get("results", []):
                    if result.get("value") is not None:
                        records.append(record(name, period, result["value"], None, list(keys),
                                              lead + result.get("dimension_values", [])))
        elif total is not None and total.get("value") is not None:
            records.append(record(name, period, total["value"]))
        else:
            for point in item.get("values", []):
                value, end_time = point.get("value"), point.get("end_time")
                if isinstance(value, dict):
                    for hour, v in value.items():
                        if v is not None:
                            records.append(record(name, period, v, end_time, ["hour"], [hour]))
                elif value is not None:
                    records.append(record(name, period, value, end_time))
                    if end_time is None:
                        break
    return records


def flatten_orjson(body: bytes, ctx: Context, run_id: str | None, harvested_at: str | None) -> list[dict]:
    return walk(orjson.loads(body), ctx, run_id, harvested_at)


def flatten_json(body: bytes, ctx: Context, run_id: str | None, harvested_at: str | None) -> list[dict]:
    return walk(json.loads(body), ctx, run_id, harvested_at)


def same_output(corpus: Corpus, every: int = 50) -> int:
    """Check that the three flatteners agree on every ``every``-th body; return bodies checked."""
    checked = 0
    for body, ctx in corpus[::every]:
        records = flatten(body, ctx, run_id=RUN_ID, harvested_at=HARVESTED_AT)
        ours = [msgspec.json.decode(msgspec.json.encode(r)) for r in records]
        for other in (flatten_orjson, flatten_json):
            theirs = other(body, ctx, RUN_ID, HARVESTED_AT)
            if ours != theirs:
                raise AssertionError(f"{other.__name__} disagrees with flatten on {body[:200]!r} ({ctx})")
        checked += 1
    return checked


# --- the benchmark ---------------------------------------------------------------------------


def contenders(corpus: Corpus) -> dict[str, Callable[[], object]]:
    """Each reads the whole corpus; records are dropped per body, as a streaming harvest does."""

    def ours():
        for body, ctx in corpus:
            flatten(body, ctx, run_id=RUN_ID, harvested_at=HARVESTED_AT)

    def baseline(fn):
        def run():
            for body, ctx in corpus:
                fn(body, ctx, RUN_ID, HARVESTED_AT)
        return run

    def bare():
        for body, _ in corpus:
            decode_insights(body)

    def floor():
        for body, ctx in corpus:
            out: list[tuple] = []
            append = out.append
            for item in decode_insights(body).data:
                name, period, total = item.name, item.period, item.total_value
                if total is not None:
                    append((ctx, name, period, total.value))
                    for breakdown in total.breakdowns:
                        keys = breakdown.dimension_keys
                        for result in breakdown.results:
                            append((ctx, name, period, keys, result.dimension_values, result.value))
                for point in item.values:
                    append((ctx, name, period, point.end_time, point.value))

    return {"flatten": ours, "orjson": baseline(flatten_orjson), "json": baseline(flatten_json), "bare": bare,
            "floor": floor}


def run(*, quick: bool = False) -> Outcome:
    rounds_, megabytes = (1, 2) if quick else (ROUNDS, CORPUS_MB)
    corpus = build_corpus(megabytes)
    size = sum(len(b) for b, _ in corpus)
    records = sum(len(flatten(b, c)) for b, c in corpus)
    checked = same_output(corpus)
    print(f"decode: corpus {len(corpus):,} bodies, {size / 1e6:.1f} MB, {records:,} records; "
          f"{checked:,} bodies checked equal across flatteners", file=sys.stderr)
    t = rounds(contenders(corpus), rounds_)
    return outcome(t, size, records, len(corpus))


def outcome(t: dict[str, float], size: int, records: int, bodies: int) -> Outcome:
    ours = t["flatten"]
    ratios = {"orjson": t["orjson"] / ours, "json": t["json"] / ours, "bare": t["bare"] / ours,
              "floor": t["bare"] / t["floor"]}
    results = {
        "corpus_mb": size / 1e6, "bodies": bodies, "records": records,
        "flatten_seconds": ours, "orjson_seconds": t["orjson"], "json_seconds": t["json"],
        "bare_decode_seconds": t["bare"], "floor_seconds": t["floor"],
        "records_per_second": rate(records, ours), "mb_per_second": rate(size / 1e6, ours),
        "orjson_records_per_second": rate(records, t["orjson"]),
        "json_records_per_second": rate(records, t["json"]),
        "bare_decode_mb_per_second": rate(size / 1e6, t["bare"]),
        "ratio_vs_orjson": ratios["orjson"], "ratio_vs_json": ratios["json"],
        "ratio_vs_bare_decode": ratios["bare"], "floor_ratio_vs_bare_decode": ratios["floor"],
    }
    speed = f"{human(rate(records, ours), 'rec/s')}, {rate(size / 1e6, ours):.0f} MB/s"
    rows = [
        Row("decode: flatten vs orjson+dicts", speed,
            f"{human(rate(records, t['orjson']), 'rec/s')}, {rate(size / 1e6, t['orjson']):.0f} MB/s",
            ratios["orjson"], ">= 2x", ratios["orjson"] >= GOALS["orjson"]),
        Row("decode: flatten vs json+dicts", speed,
            f"{human(rate(records, t['json']), 'rec/s')}, {rate(size / 1e6, t['json']):.0f} MB/s",
            ratios["json"], ">= 3.5x", ratios["json"] >= GOALS["json"]),
        Row("decode: bare typed decode / flatten", f"{ours:.2f} s", f"{t['bare']:.2f} s",
            ratios["bare"], ">= 0.67 (<= 1.5x slower)", ratios["bare"] >= GOALS["bare"]),
        Row("decode: bare typed decode / floor (one tuple per value)", f"{t['floor']:.2f} s", f"{t['bare']:.2f} s",
            ratios["floor"], "(what one object per record allows)", None),
    ]
    return Outcome(results, rows)
