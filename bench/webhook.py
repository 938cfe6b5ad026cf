"""Webhook: deliveries per second made durable on loopback, the p99 latency to the 200, the CPU
each delivery costs the receiver, and a SIGKILL of the receiver during a burst followed by the
sender's redelivery (issue #15 point 4).

``harvester webhook`` runs as a child process, with the JSONL sink and then the DuckDB sink; this
process posts the simulator's signed ``story_insights`` deliveries of a simulated world
(``harvester.simulator.webhooks.deliveries``), ``CONCURRENCY`` at a time, each until it gets its
200. The figure is deliveries acknowledged per second over the whole burst (every 200 means
durable: the sink's commit and the state transaction); p99 is of each delivery's successful
attempt. The sender is :class:`Client`: keep-alive HTTP/1.1 over asyncio streams, every request
(headers and signed body) built before the timed part. The simulator's ``Sender`` (aiohttp's
client, signing each attempt) cost this process about as much CPU per delivery as the receiver
itself, and both share the machine's two cores; the client's and the receiver's CPU per delivery
(``time.process_time`` here, ``/proc/<pid>/stat`` of the child) are reported, so that a client
heavier than the server would show. Then a burst into a fresh receiver, killed with SIGKILL once
a third of it is acknowledged and started again half a second later; the client retries with
backoff as Meta does. A burst sends the same stories ``BATCH`` to a delivery, as Meta batches
them: stories per second durable. The baseline is the same client against a bare aiohttp server
(reads the body, answers 200: no signature, no parsing, no fsync) in a child process, in the same
run: what this machine's loopback allows. Every key of the simulator's truth must be current
exactly once with its value after the receiver is stopped (SIGTERM publishes), or the check fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from harvester.config import load_config
from harvester.ports import free_port
from harvester.records import natural_key
from harvester.simulator import webhooks as sim
from harvester.simulator.world import World, WorldSpec
from harvester.sinks import factory
from harvester.webhook.signature import HEADER, sign

from .measure import Outcome, Row

GOAL_PER_S = 2000
BATCH = 50
"""Story changes per delivery in the batched burst (Meta batches up to 1,000)."""
CONCURRENCY = 128
SECRET = "bench-app-secret"


class Receiver:
    """``harvester webhook --config`` in a child process, its log to a file; ``fmt`` its sink."""

    def __init__(self, directory: Path, fmt: str = "jsonl"):
        self.directory, self.port = directory, free_port()
        directory.mkdir(parents=True, exist_ok=True)
        self.config = directory / "webhook.toml"
        self.config.write_text(f"""
[window]
days = 1

[output]
format = "{fmt}"
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

    def cpu(self) -> float:
        """CPU seconds (user + system) the child has used so far."""
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def counters(self) -> dict[str, int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as r:
            return json.load(r).get("counters", {})

    def burst(self, items: list, **kwargs) -> Burst:
        """Start, send ``items`` (see :func:`burst`), stop: what the burst measured."""
        self.start()
        try:
            server_cpu = self.cpu()
            result = asyncio.run(burst(self, items, **kwargs))
            result.server_cpu = self.cpu() - server_cpu if kwargs.get("kill_after") is None else 0.0
            result.groups = self.counters().get("groups/committed", 0)
            return result
        finally:
            self.stop()

    def current(self) -> list[dict]:
        return list(factory.current_records(load_config(self.config, check_tokens=False).output, "insights"))


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

    def counters(self) -> dict[str, int]:
        return {}

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


class Client:
    """Meta's part, made cheap: ``concurrency`` keep-alive HTTP/1.1 connections over asyncio
    streams, each sending one delivery at a time and reading its answer; the requests (headers
    and the body signed with the app secret) are built by :meth:`prepare`, before the timed part.
    A delivery without a 200 (refused, or the connection lost) is sent again after ``backoff``,
    on a new connection, as the simulator's ``Sender`` does."""

    def __init__(self, port: int, secret: bytes, *, concurrency: int = CONCURRENCY,
                 backoff: sim.Backoff | None = None, path: str = "/webhook"):
        self.port, self.secret, self.concurrency, self.path = port, secret, concurrency, path
        self.backoff = backoff or sim.Backoff(first=0.05, factor=2.0, most=2.0, attempts=40)
        self.latencies: list[float] = []

    def prepare(self, items: list[sim.Delivery]) -> list[bytes]:
        return [(f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: application/json\r\n"
                 f"{HEADER}: {sign(self.secret, d.body)}\r\nContent-Length: {len(d.body)}\r\n\r\n").encode() + d.body
                for d in items]

    async def send(self, items: list[sim.Delivery], requests: list[bytes]) -> list[sim.Attempted]:
        results = [sim.Attempted(d) for d in items]
        queue = iter(range(len(items)))
        await asyncio.gather(*(self._worker(queue, requests, results) for _ in range(self.concurrency)))
        return results

    async def _worker(self, queue, requests: list[bytes], results: list[sim.Attempted]) -> None:
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        for i in queue:
            for attempt in range(1, self.backoff.attempts + 1):
                started = time.perf_counter()
                try:
                    if connection is None:
                        connection = await asyncio.open_connection("127.0.0.1", self.port)
                    status, keep = await self._exchange(*connection, requests[i])
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    status, keep = 0, False
                results[i].statuses.append(status)
                if not keep and connection is not None:
                    connection[1].close()
                    connection = None
                if status == 200:
                    self.latencies.append(time.perf_counter() - started)
                    break
                await asyncio.sleep(self.backoff.delay(attempt))
        if connection is not None:
            connection[1].close()

    @staticmethod
    async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
                        ) -> tuple[int, bool]:
        """Send one request, read its answer: ``(status, whether the connection stays open)``."""
        writer.write(request)
        head = (await reader.readuntil(b"\r\n\r\n")).lower()
        status = int(head[9:12])
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            raise ValueError("an answer without Content-Length")
        await reader.readexactly(int(head[at + 17:head.index(b"\r\n", at + 2)]))
        return status, b"\r\nconnection: close" not in head


class Burst:
    """What one burst measured."""

    def __init__(self, seconds: float, client: Client, results: list[sim.Attempted], client_cpu: float):
        self.seconds, self.client, self.results, self.client_cpu = seconds, client, results, client_cpu
        self.server_cpu = 0.0
        self.groups = 0


async def burst(receiver: Receiver, items: list[sim.Delivery], *, kill_after: int | None = None) -> Burst:
    """Send ``items``; with ``kill_after``, SIGKILL the receiver once that many are acknowledged,
    start it again half a second later."""
    client = Client(receiver.port, SECRET.encode())
    requests = client.prepare(items)
    cpu, started = time.process_time(), time.perf_counter()
    task = asyncio.ensure_future(client.send(items, requests))
    if kill_after is not None:
        while len(client.latencies) < kill_after and not task.done():
            await asyncio.sleep(0.005)
        receiver.kill()
        await asyncio.sleep(0.5)
        await asyncio.to_thread(receiver.start)
    results = await task
    return Burst(time.perf_counter() - started, client, results, time.process_time() - cpu)


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
        bare = Bare(Path(tmp) / "bare").burst(items)
        receiver = Receiver(Path(tmp) / "load")
        load = receiver.burst(items)
        load_check = exactly_once(receiver, truth)
        duck_receiver = Receiver(Path(tmp) / "duckdb", "duckdb")
        duck = duck_receiver.burst(items)
        duck_check = exactly_once(duck_receiver, truth)
        batched = Receiver(Path(tmp) / "batched")
        batched_seconds = batched.burst(sim.deliveries(w, batch=BATCH)).seconds
        batched_check = exactly_once(batched, truth)
        killed = Receiver(Path(tmp) / "kill")
        kill = killed.burst(items, kill_after=len(items) // 3)
        kill_check = exactly_once(killed, truth)
    n = len(items)
    per_s, duck_per_s, bare_per_s = n / load.seconds, n / duck.seconds, n / bare.seconds
    stories_per_s = n / batched_seconds                     # one story a delivery in ``items``
    us = lambda seconds: round(seconds / n * 1e6, 1)        # noqa: E731  (CPU us per delivery)
    latencies = sorted(load.client.latencies)
    p99 = latencies[int(0.99 * (len(latencies) - 1))] * 1000
    p50 = statistics.median(latencies) * 1000
    duck_latencies = sorted(duck.client.latencies)
    duck_p99 = duck_latencies[int(0.99 * (len(duck_latencies) - 1))] * 1000
    retried = sum(len(a.statuses) > 1 for a in kill.results)
    clean = lambda c: c["missing"] == c["extra"] == c["wrong"] == c["duplicates"] == 0  # noqa: E731
    print(f"webhook: bare aiohttp {bare_per_s:,.0f}/s; {n:,} deliveries: JSONL {per_s:,.0f}/s "
          f"(receiver {us(load.server_cpu)} us CPU a delivery, client {us(load.client_cpu)} us), DuckDB "
          f"{duck_per_s:,.0f}/s ({us(duck.server_cpu)} us); p50 {p50:.1f} ms, p99 {p99:.1f} ms; kill: {retried:,} "
          f"redelivered, check {kill_check}", file=sys.stderr)
    results_ = {"deliveries_per_s": round(per_s, 1), "p99_ms": round(p99, 2), "p50_ms": round(p50, 2),
                "duckdb_deliveries_per_s": round(duck_per_s, 1), "duckdb_p99_ms": round(duck_p99, 2),
                "duckdb_exactly_once": int(clean(duck_check) and all(a.delivered for a in duck.results)),
                "server_cpu_us_per_delivery": us(load.server_cpu),
                "duckdb_server_cpu_us_per_delivery": us(duck.server_cpu),
                "bare_server_cpu_us_per_delivery": us(bare.server_cpu),
                "client_cpu_us_per_delivery": us(load.client_cpu),
                "deliveries_per_group": round(n / load.groups, 1) if load.groups else 0.0,
                "duckdb_deliveries_per_group": round(n / duck.groups, 1) if duck.groups else 0.0,
                "bare_aiohttp_per_s": round(bare_per_s, 1), "batched_stories_per_s": round(stories_per_s, 1),
                "batched_exactly_once": int(clean(batched_check)),
                "deliveries": n, "records": len(truth), "concurrency": CONCURRENCY,
                "all_delivered": int(all(a.delivered for a in load.results)),
                "load_exactly_once": int(clean(load_check)),
                "kill_redelivered": retried, "kill_seconds": round(kill.seconds, 2),
                "kill_exactly_once": int(clean(kill_check) and all(a.delivered for a in kill.results)),
                "kill_missing": kill_check["missing"], "kill_duplicates": kill_check["duplicates"]}
    rows = [Row("webhook: deliveries/s durable (JSONL)", f"{per_s:,.0f}/s",
                f"{bare_per_s:,.0f}/s (bare aiohttp, no fsync)", per_s / bare_per_s, f">= {GOAL_PER_S:,}/s",
                per_s >= GOAL_PER_S and bool(clean(load_check))),
            Row("webhook: deliveries/s durable (DuckDB)", f"{duck_per_s:,.0f}/s", f"{per_s:,.0f}/s (JSONL)",
                duck_per_s / per_s, "(the goal: JSONL or DuckDB)", None),
            Row("webhook: receiver CPU a delivery (JSONL; DuckDB)",
                f"{us(load.server_cpu)} us; {us(duck.server_cpu)} us",
                f"{us(bare.server_cpu)} us (bare aiohttp)",
                load.server_cpu / bare.server_cpu if bare.server_cpu else None,
                "", None),
            Row("webhook: client CPU a delivery", f"{us(load.client_cpu)} us", f"{us(load.server_cpu)} us (receiver)",
                load.client_cpu / load.server_cpu if load.server_cpu else None, "< receiver",
                load.client_cpu < load.server_cpu),
            Row(f"webhook: stories/s durable, {BATCH} a delivery", f"{stories_per_s:,.0f}/s",
                f"{per_s:,.0f}/s (one a delivery)", stories_per_s / per_s, "", bool(clean(batched_check))),
            Row(f"webhook: p99 to the 200 ({CONCURRENCY} concurrent)", f"{p99:.1f} ms", f"p50 {p50:.1f} ms", None, "",
                None),
            Row("webhook: kill -9 mid-burst, redelivered", f"{retried:,} redelivered",
                f"{kill_check['found']:,}/{len(truth):,} keys", None, "each stored once",
                bool(results_["kill_exactly_once"]))]
    return Outcome(results_, rows)
