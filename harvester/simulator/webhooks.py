"""The simulator as Meta's webhook sender: signed ``story_insights`` deliveries when stories expire.

Meta posts a story's insights about an hour after it expires (the Instagram webhooks reference:
"Sent 1 hour after the story expires"), signed with the app secret (``X-Hub-Signature-256``),
and tries again a delivery that got no 200, at first soon, then less and less often. This sender
does the same for the stories of a simulated world: :func:`deliveries` says what is due (every
live story that will expire, with at least :data:`~harvester.catalog.STORY_MIN_VIEWERS`
viewers, the same values a poll reads), :class:`Sender` posts them with retries and backoff, and
can add hostile requests: forged signatures (a copy with other values, signed with another
secret), replays of acknowledged deliveries, oversized and malformed bodies, all of which a
receiver must refuse or store no second time. :func:`expected` is the ground truth: what a
receiver must have stored, each key once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Literal

import aiohttp
import msgspec

from .. import catalog
from ..records import NaturalKey, make_key
from ..webhook.signature import HEADER, sign
from .world import Media, World

SEND_DELAY_SECONDS = 3600
"""After a story expires, when Meta sends its insights."""
HostileKind = Literal["bad_signature", "replay", "oversized", "malformed"]
HOSTILE_KINDS: tuple[HostileKind, ...] = ("bad_signature", "replay", "oversized", "malformed")


class Delivery(msgspec.Struct, frozen=True):
    """One POST: its body as Meta would send it, and when it is due."""

    body: bytes
    due: float
    """Unix time: an hour after the last of its stories expired."""
    media_ids: tuple[str, ...]


class Attempted(msgspec.Struct):
    """What became of one delivery: the statuses of its attempts (0: no answer)."""

    delivery: Delivery
    statuses: list[int] = []

    @property
    def delivered(self) -> bool:
        return bool(self.statuses) and self.statuses[-1] == 200


def story_metrics(world: World, story: Media) -> dict[str, int]:
    """The final values a delivery carries: the story's lifetime metrics, as a poll reads them."""
    return {m.name: world.media_value(story, m.name) for m in catalog.metrics_for_product("STORY")}


def expiring_stories(world: World, accounts: Iterable[int] | None = None) -> list[tuple[str, Media]]:
    """``(account id, story)`` of every live story with insights (enough viewers), by expiry."""
    out = []
    for index in range(world.spec.accounts) if accounts is None else accounts:
        account = world.account(index)
        out += [(account.id, s) for s in world.live_stories(account)
                if s.viewers is not None and s.viewers >= catalog.STORY_MIN_VIEWERS]
    return sorted(out, key=lambda pair: (pair[1].timestamp, pair[1].id))


def deliveries(world: World, *, batch: int = 1, accounts: Iterable[int] | None = None) -> list[Delivery]:
    """The deliveries of the world's next day: every expiring story's, ``batch`` changes a body
    (consecutive stories, any account: Meta batches up to 1,000), in the order they fall due."""
    stories = expiring_stories(world, accounts)
    out = []
    for start in range(0, len(stories), batch):
        group = stories[start:start + batch]
        sent = int(max(s.timestamp for _, s in group) + catalog.STORY_LIFETIME_SECONDS + SEND_DELAY_SECONDS)
        entries = [{"id": account_id, "time": sent,
                    "changes": [{"field": "story_insights", "value": {"media_id": s.id, **story_metrics(world, s)}}]}
                   for account_id, s in group]
        body = msgspec.json.encode({"object": "instagram", "entry": entries})
        out.append(Delivery(body, float(sent), tuple(s.id for _, s in group)))
    return out


def expected(world: World, accounts: Iterable[int] | None = None) -> dict[NaturalKey, int]:
    """What a receiver must have stored from :func:`deliveries`: each key once, with its value
    (the key of a polled story's lifetime value)."""
    return {make_key(s.id, name, "lifetime"): value
            for _, s in expiring_stories(world, accounts) for name, value in story_metrics(world, s).items()}


# --- hostile requests -----------------------------------------------------------------------


def forged(delivery: Delivery) -> tuple[bytes, dict[str, str]]:
    """Another body (every value + 1000) with a signature from another secret: to be refused 403."""
    body = _bump(delivery.body)
    return body, {HEADER: sign(b"not-the-app-secret", body), "Content-Type": "application/json"}


def _bump(body: bytes) -> bytes:
    data = msgspec.json.decode(body)
    for entry in data["entry"]:
        for change in entry["changes"]:
            value = change["value"]
            for key in value:
                if key != "media_id":
                    value[key] += 1000
    return msgspec.json.encode(data)


def malformed_bodies() -> list[bytes]:
    """Bodies a receiver must refuse (400) even when correctly signed."""
    value = b'{"media_id": "17900000000000001", "reach": 3}'
    change = b'{"field": "story_insights", "value": ' + value + b"}"
    return [
        b"not json at all",
        b'["an", "array"]',
        b'{"object": "instagram", "entry": {"not": "a list"}}',
        b'{"object": "instagram", "entry": [{"id": "17841400000000001", "changes": '
        b'[{"field": "story_insights", "value": {"media_id": "story-1", "reach": 3}}]}]}',
        b'{"object": "instagram", "entry": [{"id": "17841400000000001", "changes": '
        b'[{"field": "story_insights", "value": {"media_id": "17910000000000001", "reach": "3"}}]}]}',
        b'{"object": "instagram", "entry": [{"id": "17841400000000001", "changes": '
        b'[{"field": "story_insights", "value": [1, 2]}]}]}',
        b'{"object": "instagram", "entry": [{"id": 12, "changes": [' + change + b"]}]}",
    ]


# --- sending ------------------------------------------------------------------------------


class Backoff(msgspec.Struct, frozen=True):
    """Meta tries again at once, then less and less often; here: ``first`` seconds, times
    ``factor`` each time, at most ``most`` seconds apart, ``attempts`` tries in all."""

    first: float = 1.0
    factor: float = 2.0
    most: float = 3600.0
    attempts: int = 20

    def delay(self, attempt: int) -> float:
        return min(self.most, self.first * self.factor ** (attempt - 1))


class Sender:
    """Posts deliveries to ``url``, ``concurrency`` at a time, each until it gets a 200 (or its
    attempts run out). ``realtime``: wait until each is due (by ``clock``), else send at once."""

    def __init__(self, url: str, secret: bytes, *, concurrency: int = 64, backoff: Backoff | None = None,
                 timeout: float = 30.0, realtime: bool = False, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self.url, self.secret, self.concurrency, self.backoff = url, secret, concurrency, backoff or Backoff()
        self.timeout, self.realtime, self.clock, self.sleep = timeout, realtime, clock, sleep
        self.latencies: list[float] = []
        """Seconds from each successful attempt's start to its 200."""
        self.hostile: list[tuple[str, int]] = []
        """``(kind, status)`` of each hostile request sent."""

    async def send(self, items: Sequence[Delivery], *, hostile: Iterable[HostileKind] = (),
                   oversized_bytes: int = 2 << 20, seed: int = 1) -> list[Attempted]:
        kinds: set[str] = set(hostile)
        rng = random.Random(seed)
        results = [Attempted(d) for d in items]
        queue: asyncio.Queue[Attempted] = asyncio.Queue()
        for r in results:
            queue.put_nowait(r)
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        async with aiohttp.ClientSession(connector=connector,
                                         timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
            if "malformed" in kinds:
                for body in malformed_bodies():
                    await self._hostile(session, "malformed", body, self._headers(body))
            if "oversized" in kinds:
                await self._hostile(session, "oversized", b" " * oversized_bytes, {HEADER: "sha256=0"})
            workers = [asyncio.create_task(self._worker(session, queue, kinds, rng)) for _ in range(self.concurrency)]
            await asyncio.gather(*workers)
        return results

    async def _worker(self, session: aiohttp.ClientSession, queue: asyncio.Queue[Attempted], kinds: set[str],
                      rng: random.Random) -> None:
        while not queue.empty():
            item = queue.get_nowait()
            d = item.delivery
            if self.realtime and d.due > self.clock():
                await self.sleep(d.due - self.clock())
            if "bad_signature" in kinds and rng.random() < 0.1:
                body, headers = forged(d)
                await self._hostile(session, "bad_signature", body, headers)
            await self._deliver(session, item)
            if "replay" in kinds and item.delivered and rng.random() < 0.1:
                await self._hostile(session, "replay", d.body, self._headers(d.body))

    async def _deliver(self, session: aiohttp.ClientSession, item: Attempted) -> None:
        headers = self._headers(item.delivery.body)
        for attempt in range(1, self.backoff.attempts + 1):
            started = time.perf_counter()
            status = await self._post(session, item.delivery.body, headers)
            item.statuses.append(status)
            if status == 200:
                self.latencies.append(time.perf_counter() - started)
                return
            if attempt < self.backoff.attempts:
                await self.sleep(self.backoff.delay(attempt))

    async def _hostile(self, session: aiohttp.ClientSession, kind: str, body: bytes, headers: dict[str, str]) -> None:
        self.hostile.append((kind, await self._post(session, body, headers)))

    async def _post(self, session: aiohttp.ClientSession, body: bytes, headers: dict[str, str]) -> int:
        try:
            async with session.post(self.url, data=body, headers=headers) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError, OSError):
            return 0

    def _headers(self, body: bytes) -> dict[str, str]:
        return {HEADER: sign(self.secret, body), "Content-Type": "application/json"}


# --- ``harvester simulate webhooks`` ----------------------------------------------------------


def main(argv: list[str]) -> int:
    """Send the world's deliveries to a receiver; exit 0 once every one got its 200, 1 otherwise."""
    import argparse
    import os
    import sys

    p = argparse.ArgumentParser(prog="harvester simulate webhooks",
                                description="Post a simulated world's signed story_insights deliveries.")
    p.add_argument("--url", required=True, help="the receiver, e.g. http://127.0.0.1:8787/webhook")
    p.add_argument("--secret-env", required=True, help="environment variable holding the app secret to sign with")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--accounts", type=int, default=20)
    p.add_argument("--now", type=float, default=None, help="the world's present (unix seconds; default: this hour)")
    p.add_argument("--batch", type=int, default=1, help="story changes per delivery (Meta batches up to 1,000)")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--hostile", default="", metavar="KIND,...",
                   help=f"add hostile requests: {', '.join(HOSTILE_KINDS)}")
    p.add_argument("--realtime", action="store_true", help="send each when it is due (an hour after its story expires)")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    kinds = tuple(k for k in args.hostile.split(",") if k)
    unknown = sorted(set(kinds) - set(HOSTILE_KINDS))
    secret = os.environ.get(args.secret_env, "")
    if unknown or not secret or args.batch < 1 or args.concurrency < 1:
        problem = (f"--hostile {','.join(unknown)}: unknown; choose from {', '.join(HOSTILE_KINDS)}" if unknown else
                   f"--secret-env {args.secret_env}: the variable is not set" if not secret else
                   "--batch and --concurrency must be >= 1")
        print(f"harvester simulate webhooks: error: {problem}", file=sys.stderr)
        return 2
    from .world import WorldSpec
    world = World(WorldSpec(seed=args.seed, accounts=args.accounts, now=args.now))
    items = deliveries(world, batch=args.batch)
    sender = Sender(args.url, secret.encode(), concurrency=args.concurrency, realtime=args.realtime)
    results = asyncio.run(sender.send(items, hostile=kinds))
    done = sum(r.delivered for r in results)
    print(f"{done:,} of {len(items):,} deliveries acknowledged ({sum(len(r.statuses) for r in results):,} attempts; "
          f"{len(expected(world)):,} records a receiver must hold); hostile: {len(sender.hostile)} sent",
          file=sys.stderr)
    return 0 if done == len(items) else 1
