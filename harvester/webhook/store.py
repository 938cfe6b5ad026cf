"""Deliveries made durable in groups, stored once, in the sink ``[output] format`` names.

**Group commit.** Each delivery's records go into one queue; a single committer takes everything
queued, writes it to the sink, makes it durable (``Sink.commit``: parts fsynced, or the database's
transaction committed) and records it in the state file in one transaction (``PRAGMA
synchronous=FULL``: the row survives a power loss too); only then are the deliveries of that group
answered 200. Deliveries that arrive while a group is being committed form the next group, so one
commit serves many deliveries.

**Exactly once.** The state file's ``webhook_stories`` table holds each story delivered, with a
digest of its values, written in the same transaction as the committed length of the part its
records went to (``webhook_parts``). A delivery that comes again (Meta retries one it saw no 200
for) with the same values is answered 200 and not stored again. A receiver killed between the
sink's commit and the transaction never sent those 200s, and the redelivery is stored once: a
file sink's part is cut back to the last committed length on start (``Sink.recover``); a
database already holds the records and upserts them over themselves (same natural key). A story
delivered again with *other* values (a story added to a highlight, say) replaces the earlier
ones: in a later commit (one commit never holds a key twice) and, for a file sink, in the next
segment, so no segment holds a natural key twice.

**Segments, published (file sinks).** With ``jsonl`` or ``parquet`` a long-running receiver writes
into a segment, a run directory of the output like a harvest's
(``<output>/webhook-<time>-<hex>/insights/part-*``), and every ``publish_seconds`` (and on close,
and on start for a segment a killed receiver left) publishes it as a harvest publishes a run: its
records become current and replace older records with the same natural key, a polled story's
lifetime values included; a harvest published later replaces them in turn (which is why a harvest
leaves out the stories the webhook delivered, see :func:`delivered_stories`). Publishing takes
the manifest's lock, as a harvest's does. With ``duckdb`` or ``postgres`` there is nothing to
publish: one sink serves the store's life and a record is current when its commit returns (the
segment only names the ``run_id`` of its records). A DuckDB file may be opened by one process
only: :data:`ONE_WRITER` says what that means for a receiver of its own.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from ..config.model import Output
from ..days import iso
from ..errors import ConfigError
from ..records import Record
from ..sinks import factory
from ..sinks.base import Sink, SinkFailure
from ..state.lock import RunLock
from ..state.store import StateStore
from .payload import StoryChange, digest, records

SinkOpener = Callable[[Output, str], Sink]
DATABASES = ("duckdb", "postgres")
"""Formats whose commit makes records current at once: no segments to publish, nothing to cut back."""
ONE_WRITER = ("DuckDB allows one process to open the file: a receiver running as its own process and a harvest, "
              "report or second receiver in another cannot share it. Mount Harvester.webhook_app() in the "
              "process that harvests (docs/webhook.md), stop the other process, or give the receiver an "
              "[output] of its own")


_last_iso: tuple[int, str] = (0, iso(0))


def _iso(ts: float) -> str:
    """``days.iso`` of a receipt time, formatted once per second (every delivery asks it)."""
    global _last_iso
    second = int(ts)
    if _last_iso[0] != second:
        _last_iso = (second, iso(second))
    return _last_iso[1]


class Stored(msgspec.Struct, frozen=True):
    """What a delivery came to."""

    stories: int
    """Stories whose records it stored."""
    duplicates: int
    """Stories it repeated with the same values (stored by an earlier delivery)."""
    records: int


class _Pending:
    __slots__ = ("changes", "future", "received")

    def __init__(self, changes: Sequence[StoryChange], future: asyncio.Future[Stored], received: float):
        self.changes, self.future, self.received = changes, future, received


class WebhookStore:
    """Open with ``await store.start()`` (or ``async with``); :meth:`deliver` returns once durable."""

    def __init__(self, output: Output | str | Path, state_path: str | Path, *, publish_seconds: float = 300.0,
                 sink: SinkOpener | None = None, clock: Callable[[], float] = time.time,
                 config_path: str = "<config>"):
        self.output = output if isinstance(output, Output) else Output(path=str(output))
        """``[output]``; a bare path is a JSONL directory."""
        self.state_path = Path(state_path)
        self.directory = Path(self.output.path)
        """Where the segments of a file format go."""
        self.database = self.output.format in DATABASES
        """A database sink: one sink for the store's life, each commit current at once (no segments)."""
        self.publish_seconds, self.lifetime_history = publish_seconds, self.output.lifetime_history
        self.config_path = config_path
        self._open_sink = sink or self._factory_sink
        self._clock = clock
        self.counts: Counter[str] = Counter()
        """This process's counters, added to the state's at each commit."""
        self._unsaved: Counter[str] = Counter()
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._lock = RunLock(self.state_path.with_name(self.state_path.name + ".webhook"))
        self._db: sqlite3.Connection | None = None
        self._sink: Sink | None = None
        self.run_id = ""
        self._segment_started = 0.0
        self._segment_media: set[str] = set()
        self._task: asyncio.Task | None = None
        self._closing = False
        self.failure: Exception | None = None
        """What made a group fail (a file sink, the state, or a database sink broken for good:
        ``SinkFailure``): the store then refuses everything (healthz 503) until restarted, when
        start() cuts the parts back to what was committed. A database's failed transaction
        refuses only its group."""

    def _factory_sink(self, output: Output, run_id: str) -> Sink:
        """The sink ``[output] format`` names, for one segment (the factory picks it, as for a harvest)."""
        return factory.open_sink(output, run_id, config_path=self.config_path)

    async def __aenter__(self) -> WebhookStore:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def running(self) -> bool:
        """Whether deliveries can be stored now."""
        return self._task is not None and not self._task.done() and not self._closing and self.failure is None

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "WebhookStore.start() first"
        return self._db

    async def start(self) -> None:
        """Lock the receiver's place (one receiver per state file), publish what a killed one
        left, open a fresh segment and start committing."""
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            StateStore(self.state_path).close()         # creates or upgrades every table, the receiver's too
            # Its own connection, used from the committer's thread (transactions never block the loop).
            self._db = sqlite3.connect(self.state_path, isolation_level=None, check_same_thread=False, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            if not self.database:
                self.directory.mkdir(parents=True, exist_ok=True)
            for (run_id,) in self.db.execute("SELECT run_id FROM webhook_segments WHERE published_at IS NULL "
                                             "ORDER BY started_at").fetchall():
                await self._recover(run_id)
            self._new_segment()
            if (open_sink := getattr(self._sink, "open", None)) is not None:
                await open_sink()                       # PostgreSQL: reachable and usable, or ConfigError
        except BaseException as exc:
            if self._db is not None:
                self._db.close()
                self._db = None
            self._lock.release()
            if isinstance(exc, ConfigError) and "in use by another process" in str(exc):
                raise ConfigError(f"{exc}. {ONE_WRITER}") from None
            raise
        self._task = asyncio.create_task(self._commit_loop())

    async def _recover(self, run_id: str) -> None:
        """A segment a killed receiver left: cut back to what it committed, then published (a
        database rolled back what it did not commit, and its commits are current: only marked)."""
        committed = dict(self.db.execute("SELECT part, bytes FROM webhook_parts WHERE run_id = ?", (run_id,)))
        if self.database:
            self._mark_published(run_id)
            return
        sink = self._open_sink(self.output, run_id)
        sink.recover(committed)
        await sink.close()
        await self._publish(run_id, sink, empty=not committed)

    def _new_segment(self) -> None:
        now = self._clock()
        self.run_id = "webhook-" + datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)
        self.db.execute("INSERT INTO webhook_segments (run_id, started_at) VALUES (?, ?)", (self.run_id, now))
        self._sink = self._open_sink(self.output, self.run_id)
        self._segment_started, self._segment_media = now, set()

    async def _publish(self, run_id: str, sink: Sink, *, empty: bool) -> None:
        if self.database:
            self._mark_published(run_id)
            return
        if empty:
            shutil.rmtree(self.directory / run_id, ignore_errors=True)
        else:
            await asyncio.to_thread(sink.publish)
        self._mark_published(run_id)
        self.count("segments/published" if not empty else "segments/empty")

    def _mark_published(self, run_id: str) -> None:
        self.db.execute("UPDATE webhook_segments SET published_at = ? WHERE run_id = ?", (self._clock(), run_id))

    async def rotate(self) -> None:
        """Publish the current segment (if it holds anything) and start the next."""
        await self._finish_segment()
        self._new_segment()

    async def _finish_segment(self) -> None:
        assert self._sink is not None
        sink, self._sink = self._sink, None
        await sink.close()
        await self._publish(self.run_id, sink, empty=not self._segment_media)

    def count(self, name: str, n: int = 1) -> None:
        """A counter of the receiver (refusals, ignored fields...), saved with the next commit."""
        self.counts[name] += n
        self._unsaved[name] += n

    async def deliver(self, changes: Sequence[StoryChange]) -> Stored:
        """Store a delivery's story changes; returns once they are durable (or were stored before)."""
        if not self.running:
            raise RuntimeError(f"the webhook store is not running{f' ({self.failure})' if self.failure else ''}")
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(changes, future, self._clock()))
        return await future          # (a cancelled wait cancels only the answer: the group is stored anyway)

    async def _commit_loop(self) -> None:
        """Group after group until :meth:`close` queues ``None``; publishes on the way."""
        while True:
            timeout = max(0.0, self._segment_started + self.publish_seconds - self._clock())
            try:
                async with asyncio.timeout(timeout):          # (no task per wait, as wait_for makes)
                    first = await self._queue.get()
            except TimeoutError:
                if self._segment_media and not self.database:
                    await self.rotate()
                else:
                    self._segment_started = self._clock()
                self._save_counters()
                continue
            batch = [first]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            pending = [item for item in batch if item is not None]
            try:
                if pending:
                    await self._commit(pending)
            except Exception as exc:                  # the sink or the state failed: no 200 for these
                for item in pending:
                    if not item.future.done():
                        item.future.set_exception(exc)
                if self.database and not isinstance(exc, SinkFailure):
                    # A database rolled the group back, or committed it whole (the redelivery then
                    # upserts it over itself): nothing uncertain is left, so only this group is
                    # refused (503, Meta sends it again). DuckDB in a harvesting process: a harvest's
                    # transaction on the same key conflicts with this one now and then.
                    self.count("groups/failed")
                    if len(pending) < len(batch):
                        return
                    continue
                self.failure = exc                    # what the sink holds is uncertain now: stop storing
                while not self._queue.empty():
                    if (left := self._queue.get_nowait()) is not None and not left.future.done():
                        left.future.set_exception(exc)
                return
            if len(pending) < len(batch):
                return
            if (self._clock() - self._segment_started >= self.publish_seconds and self._segment_media
                    and not self.database):
                await self.rotate()

    async def _commit(self, batch: list[_Pending]) -> None:
        """One group: what is new is written and made durable, then every delivery is answered."""
        assert self._sink is not None
        # On the loop: a read of the WAL-mode state file (tens of us, never waits for the writer),
        # cheaper than a thread's round trip; the transactions (fsync) go to the thread.
        known = self._known({c.media_id for item in batch for c in item.changes})
        rows: dict[str, tuple[str, str, int, float]] = {}
        results: list[tuple[_Pending, int, int, int]] = []
        later: list[_Pending] = []
        for item in batch:
            new, stored, dupes, written = [], 0, 0, 0
            for change in item.changes:
                d = digest(change)
                if rows.get(change.media_id, (None, known.get(change.media_id)))[1] == d:
                    dupes += 1
                elif change.media_id in rows or (change.media_id in self._segment_media and not self.database):
                    break                              # new values of a story the group (segment) holds: next one
                else:
                    new.append(change)
                    rows[change.media_id] = (change.account_id, d, len(change.metrics), item.received)
            else:
                received = _iso(item.received)
                observed = received[:10] if self.lifetime_history else None
                out: list[Record] = []
                for change in new:
                    out += records(change, run_id=self.run_id, received_at=received, observed_on=observed)
                    stored += 1
                written = len(out)
                self._sink.write(f"story/{item.received}", out)
                results.append((item, stored, dupes, written))
                continue
            for change in new:                          # the delivery goes whole to the next segment
                del rows[change.media_id]
            later.append(item)
        if rows:
            self.count("groups/committed")
            commit = await self._sink.commit()
            self._segment_media.update(rows)
            parts = commit.parts if commit is not None else ()
            await asyncio.to_thread(self._record, rows, parts, self._take_unsaved())
        totals = [0, 0, 0]
        for item, stored, dupes, written in results:
            totals[0] += stored
            totals[1] += dupes
            totals[2] += written
            if not item.future.done():
                item.future.set_result(Stored(stored, dupes, written))
        for name, n in zip(("deliveries/accepted", "stories/stored", "stories/duplicate", "records/stored"),
                           (len(results), *totals), strict=True):
            self.count(name, n)
        if later:
            self.count("stories/updated", sum(len(i.changes) for i in later))
            if not self.database:                     # a database replaces the key in the next commit
                await self.rotate()
            await self._commit(later)

    def _known(self, media_ids: Iterable[str]) -> dict[str, str]:
        ids = list(media_ids)
        known: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            known.update(self.db.execute(
                f"SELECT media_id, digest FROM webhook_stories WHERE media_id IN ({','.join('?' * len(chunk))})",
                chunk))
        return known

    def _record(self, rows: Mapping[str, tuple[str, str, int, float]], parts, counts: Counter[str]) -> None:
        """The committed parts and the stories they hold, and the counters, in one transaction."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR REPLACE INTO webhook_parts VALUES (?, ?, ?, ?)",
                                [(self.run_id, p.part, p.records, p.length) for p in parts])
            self.db.executemany("INSERT OR REPLACE INTO webhook_stories VALUES (?, ?, ?, ?, ?, ?)",
                                [(m, acc, d, self.run_id, n, at) for m, (acc, d, n, at) in rows.items()])
            self._add_counters(counts)

    def _take_unsaved(self) -> Counter[str]:
        counts, self._unsaved = self._unsaved, Counter()
        return counts

    def _save_counters(self) -> None:
        if self._unsaved and self._db is not None:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self._add_counters(self._take_unsaved())

    def _add_counters(self, counts: Counter[str]) -> None:
        self.db.executemany("INSERT INTO webhook_counters VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET "
                            "value = value + excluded.value", list(counts.items()))

    async def close(self) -> None:
        """Commit what is queued, publish the segment, release the state file."""
        if self._db is None:
            return
        self._closing = True
        if self._task is not None:
            self._queue.put_nowait(None)
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._sink is not None and self.failure is None:
            await self._finish_segment()          # (after a failure, the next start() recovers it)
        self._save_counters()
        self._db.close()
        self._db = None
        self._lock.release()
