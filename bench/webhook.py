"""Webhook: deliveries per second made durable on loopback, the p99 latency to the 200, and a
SIGKILL of the receiver during a burst followed by the sender's redelivery (issue #15 point 4).

``harvester webhook`` runs as a child process with the JSONL sink (the default); the simulator's
sender (``harvester.simulator.webhooks.Sender``) posts signed ``story_insights`` deliveries of a
simulated world from this process, ``CONCURRENCY`` at a time, each until it gets its 200. The
figure is deliveries acknowledged per second over the whole burst (every 200 means durable:
fsynced part and state transaction); p99 is of each delivery's successful attempt. Then a second
burst into a fresh receiver, killed with SIGKILL once a third of it is acknowledged and started
again half a second later; the sender retries with backoff as Meta does. A third burst sends the
same stories ``BATCH`` to a delivery, as Meta batches them: stories per second durable. The baseline is the
same sender against a bare aiohttp server (reads the body, answers 200: no signature, no
parsing, no fsync) in a child process, in the same run: what this machine's loopback allows. Every key of the
simulator's truth must be current exactly once with its value after the receiver is stopped
(SIGTERM publishes), or the kill check fails.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from harvester.ports import free_port
from harvester.records import natural_key
from harvester.simulator import webhooks as sim
from harvester.simulator.world import World, WorldSpec
from harvester.sinks.manifest import current_records

from .measure import Outcome, Row

GOAL_PER_S = 2000
BATCH = 50
"""Story changes per delivery in the batched burst (Meta batches up to 1,000)."""
CONCURRENCY = 128
SECRET = "bench-app-secret"


class Receiver:
    """``harvester webhook --config`` in a child process, its log to a file."""

    def __init__(self, directory: Path):
        self.directory, self.port = directory, free_port()
        directory.mkdir(parents=True, exist_ok=True)
        self.config = directory / "webhook.toml"
        self.config.write_text(f"""
[window]
days = 1

[output]
path = "{directory / 'out'}"

[state]
path = "{directory / 'state.sqlite'}"

[[accounts]]
id = "17841400000000000"
token_env = "UNUSED_TOKEN"

[webhook]
host = "127.0.0.1"
port = {self.port}
verify_token_env = "BENCH_VERIFY"
publish_seconds = 3600

[app]
secret_env = "BENCH_SECRET"
""")
        self.url = f"http://127.0.0.1:{self.port}/webhook"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "BENCH_SECRET": SECRET, "BENCH_VERIFY": "v"}
        log = open(self.directory / "receiver.log", "ab")  # noqa: SIM115 (the child holds it)
        self.proc = subprocess.Popen([sys.executable, "-m", "harvester", "webhook", "--config", str(self.config)],
                                     env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"the receiver did not start: see {self.directory / 'receiver.log'}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def burst(self, items: list, **kwargs):
        """Start, send ``items`` (see :func:`burst`), stop: what the burst returned."""
        self.start()
        try:
            return asyncio.run(burst(self, items, **kwargs))
        finally:
            self.stop()

    def current(self) -> list[dict]:
        return list(current_records(self.directory / "out", "insights"))


BARE = """
import sys
from aiohttp import web
async def ok(request):
    await request.read()
    return web.json_response({"stored": 1, "duplicates": 0, "records": 0})
app = web.Application()
app.router.add_post("/webhook", ok)
app.router.add_get("/healthz", lambda r: web.Response(text="ok"))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None, backlog=1024)
"""


class Bare(Receiver):
    """The baseline: a bare aiohttp server in a child process that reads each body and answers
    200 (no signature, no parsing, no fsync): what this machine's loopback HTTP allows."""

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", BARE, str(self.port)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the bare server did not start")


def world(accounts: int) -> World:
    return World(WorldSpec(seed=15, accounts=accounts, media_per_account=0, stories_per_account=10,
                           few_viewers=0.0))


async def burst(receiver: Receiver, items: list[sim.Delivery], *, kill_after: int | None = None
                ) -> tuple[float, sim.Sender, list[sim.Attempted]]:
    """Send ``items``; with ``kill_after``, SIGKILL the receiver once that many are acknowledged,
    start it again half a second later. Returns the seconds the burst took."""
    sender = sim.Sender(receiver.url, SECRET.encode(), concurrency=CONCURRENCY,
                        backoff=sim.Backoff(first=0.05, factor=2.0, most=2.0, attempts=40))
    started = time.perf_counter()
    task = asyncio.ensure_future(sender.send(items))
    if kill_after is not None:
        while len(sender.latencies) < kill_after and not task.done():
            await asyncio.sleep(0.005)
        receiver.kill()
        await asyncio.sleep(0.5)
        await asyncio.to_thread(receiver.start)
    results = await task
    return time.perf_counter() - started, sender, results


def exactly_once(receiver: Receiver, truth: dict) -> dict[str, int]:
    records = receiver.current()
    got: dict = {}
    duplicates = 0
    for r in records:
        key = natural_key(r)
        duplicates += key in got
        got[key] = r["value"]
    return {"expected": len(truth), "found": len(got.keys() & truth.keys()), "missing": len(truth.keys() - got.keys()),
            "extra": len(got.keys() - truth.keys()), "wrong": sum(got[k] != v for k, v in truth.items() if k in got),
            "duplicates": duplicates}


def run(*, quick: bool = False) -> Outcome:
    accounts = 100 if quick else 1000
    w = world(accounts)
    items, truth = sim.deliveries(w), sim.expected(w)
    with tempfile.TemporaryDirectory(prefix="bench-webhook-") as tmp:
        receiver = Receiver(Path(tmp) / "load")
        seconds, sender, results = receiver.burst(items)
        load_check = exactly_once(receiver, truth)
        batched = Receiver(Path(tmp) / "batched")
        batched_seconds, _, _ = batched.burst(sim.deliveries(w, batch=BATCH))
        batched_check = exactly_once(batched, truth)
        bare_seconds, _, _ = Bare(Path(tmp) / "bare").burst(items)
        killed = Receiver(Path(tmp) / "kill")
        kill_seconds, _, kill_results = killed.burst(items, kill_after=len(items) // 3)
        kill_check = exactly_once(killed, truth)
    per_s = len(items) / seconds
    bare_per_s = len(items) / bare_seconds
    stories_per_s = len(items) / batched_seconds              # one story a delivery in ``items``
    latencies = sorted(sender.latencies)
    p99 = latencies[int(0.99 * (len(latencies) - 1))] * 1000
    p50 = statistics.median(latencies) * 1000
    retried = sum(len(a.statuses) > 1 for a in kill_results)
    clean = lambda c: c["missing"] == c["extra"] == c["wrong"] == c["duplicates"] == 0  # noqa: E731
    print(f"webhook: bare aiohttp {bare_per_s:,.0f}/s; {len(items):,} deliveries in {seconds:.2f} s "
          f"({per_s:,.0f}/s), p50 {p50:.1f} ms, p99 "
          f"{p99:.1f} ms; kill: {retried:,} redelivered, check {kill_check}", file=sys.stderr)
    results_ = {"deliveries_per_s": round(per_s, 1), "p99_ms": round(p99, 2), "p50_ms": round(p50, 2),
                "bare_aiohttp_per_s": round(bare_per_s, 1), "batched_stories_per_s": round(stories_per_s, 1),
                "batched_exactly_once": int(clean(batched_check)),
                "deliveries": len(items), "records": len(truth), "concurrency": CONCURRENCY,
                "all_delivered": int(all(a.delivered for a in results)), "load_exactly_once": int(clean(load_check)),
                "kill_redelivered": retried, "kill_seconds": round(kill_seconds, 2),
                "kill_exactly_once": int(clean(kill_check) and all(a.delivered for a in kill_results)),
                "kill_missing": kill_check["missing"], "kill_duplicates": kill_check["duplicates"]}
    rows = [Row("webhook: deliveries/s durable (JSONL)", f"{per_s:,.0f}/s",
                f"{bare_per_s:,.0f}/s (bare aiohttp, no fsync)", per_s / bare_per_s, f">= {GOAL_PER_S:,}/s",
                per_s >= GOAL_PER_S),
            Row(f"webhook: stories/s durable, {BATCH} a delivery", f"{stories_per_s:,.0f}/s",
                f"{per_s:,.0f}/s (one a delivery)", stories_per_s / per_s, "", bool(clean(batched_check))),
            Row("webhook: p99 to the 200", f"{p99:.1f} ms", f"p50 {p50:.1f} ms", None, "", None),
            Row("webhook: kill -9 mid-burst, redelivered", f"{retried:,} redelivered",
                f"{kill_check['found']:,}/{len(truth):,} keys", None, "each stored once",
                bool(results_["kill_exactly_once"]))]
    return Outcome(results_, rows)
