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
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from ..config.model import Output
from ..errors import ConfigError
from ..sinks import factory
from ..sinks.base import Sink, SinkFailure
from ..state.lock import RunLock
from ..state.webhook import WebhookTables
from .group import Pending, Stored, delivery_records, sort_group, tally
from .payload import StoryChange

SinkOpener = Callable[[Output, str], Sink]
DATABASES = ("duckdb", "postgres")
"""Formats whose commit makes records current at once: no segments to publish, nothing to cut back."""
ONE_WRITER = ("DuckDB allows one process to open the file: a receiver running as its own process and a harvest, "
              "report or second receiver in another cannot share it. Mount Harvester.webhook_app() in the "
              "process that harvests (docs/webhook.md), stop the other process, or give the receiver an "
              "[output] of its own")


class Counts:
    """The receiver's counters: this process's (``healthz`` shows them), and what the state file
    has not saved of them yet (added to its counters with the next commit)."""

    def __init__(self) -> None:
        self.total: Counter[str] = Counter()
        self._unsaved: Counter[str] = Counter()

    def add(self, name: str, n: int = 1) -> None:
        self.total[name] += n
        self._unsaved[name] += n

    def take_unsaved(self) -> Counter[str]:
        """What is not saved yet; from now on it is the caller's to save."""
        counts, self._unsaved = self._unsaved, Counter()
        return counts

    def __bool__(self) -> bool:
        """Whether anything is unsaved."""
        return bool(self._unsaved)


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
        self._counts = Counts()
        self._queue: asyncio.Queue[Pending | None] = asyncio.Queue()
        self._lock = RunLock(self.state_path.with_name(self.state_path.name + ".webhook"))
        self._tables: WebhookTables | None = None
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
    def counts(self) -> Counter[str]:
        """This process's counters (the state file holds every process's)."""
        return self._counts.total

    @property
    def tables(self) -> WebhookTables:
        """The receiver's tables in the state file, on its own connection."""
        assert self._tables is not None, "WebhookStore.start() first"
        return self._tables

    @property
    def sink(self) -> Sink:
        """The sink of the current segment."""
        assert self._sink is not None, "WebhookStore.start() first"
        return self._sink

    async def start(self) -> None:
        """Lock the receiver's place (one receiver per state file), publish what a killed one
        left, open a fresh segment and start committing."""
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            self._tables = WebhookTables(self.state_path)
            if not self.database:
                self.directory.mkdir(parents=True, exist_ok=True)
            for run_id in self.tables.unpublished():
                await self._recover(run_id)
            self._new_segment()
            if (open_sink := getattr(self._sink, "open", None)) is not None:
                await open_sink()                       # PostgreSQL: reachable and usable, or ConfigError
        except BaseException as exc:
            if self._tables is not None:
                self._tables.close()
                self._tables = None
            self._lock.release()
            if isinstance(exc, ConfigError) and "in use by another process" in str(exc):
                raise ConfigError(f"{exc}. {ONE_WRITER}") from None
            raise
        self._task = asyncio.create_task(self._commit_loop())

    async def _recover(self, run_id: str) -> None:
        """A segment a killed receiver left: cut back to what it committed, then published (a
        database rolled back what it did not commit, and its commits are current: only marked)."""
        committed = self.tables.committed_parts(run_id)
        if self.database:
            self.tables.mark_published(run_id, self._clock())
            return
        sink = self._open_sink(self.output, run_id)
        sink.recover(committed)
        await sink.close()
        await self._publish(run_id, sink, empty=not committed)

    def _new_segment(self) -> None:
        now = self._clock()
        self.run_id = "webhook-" + datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)
        self.tables.start_segment(self.run_id, now)
        self._sink = self._open_sink(self.output, self.run_id)
        self._segment_started, self._segment_media = now, set()

    async def _publish(self, run_id: str, sink: Sink, *, empty: bool) -> None:
        if self.database:
            self.tables.mark_published(run_id, self._clock())
            return
        if empty:
            shutil.rmtree(self.directory / run_id, ignore_errors=True)
        else:
            await asyncio.to_thread(sink.publish)
        self.tables.mark_published(run_id, self._clock())
        self.count("segments/published" if not empty else "segments/empty")

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
        self._counts.add(name, n)

    async def deliver(self, changes: Sequence[StoryChange]) -> Stored:
        """Store a delivery's story changes; returns once they are durable (or were stored before)."""
        if not self.running:
            raise RuntimeError(f"the webhook store is not running{f' ({self.failure})' if self.failure else ''}")
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(Pending(changes, future, self._clock()))
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

    async def _commit(self, batch: list[Pending]) -> None:
        """One group: what is new is written and made durable, then every delivery is answered."""
        # On the loop: a read of the WAL-mode state file (tens of us, never waits for the writer),
        # cheaper than a thread's round trip; the transactions (fsync) go to the thread.
        group = sort_group(batch, self.tables.known({c.media_id for item in batch for c in item.changes}),
                           lambda media_id: media_id in self._segment_media and not self.database)
        results: list[tuple[Pending, Stored]] = []
        for item, new, dupes in group.accepted:
            out = delivery_records(item, new, run_id=self.run_id, lifetime_history=self.lifetime_history)
            self.sink.write(f"story/{item.received}", out)
            results.append((item, Stored(len(new), dupes, len(out))))
        if group.rows:
            self.count("groups/committed")
            commit = await self.sink.commit()
            self._segment_media.update(group.rows)
            parts = commit.parts if commit is not None else ()
            await asyncio.to_thread(self.tables.record, self.run_id, group.rows, parts,
                                    self._counts.take_unsaved())
        for item, stored in results:
            if not item.future.done():
                item.future.set_result(stored)
        for name, n in tally([stored for _, stored in results]).items():
            self.count(name, n)
        if group.later:
            self.count("stories/updated", sum(len(i.changes) for i in group.later))
            if not self.database:                     # a database replaces the key in the next commit
                await self.rotate()
            await self._commit(group.later)

    def _save_counters(self) -> None:
        if self._counts and self._tables is not None:
            self._tables.add_counters(self._counts.take_unsaved())

    def abandon(self) -> None:
        """Let go as a killed process would (what the recovery tests start from): no commit, no
        publish; the committer cancelled, the state file and the lock released, a database sink's
        file or connection dropped. The next :meth:`start` recovers the segment."""
        if self._task is not None:
            self._task.cancel()
        if self._tables is not None:
            self._tables.close()
            self._tables = None
        self._lock.release()
        if (terminate := getattr(self._sink, "terminate", None)) is not None:
            terminate()

    async def close(self) -> None:
        """Commit what is queued, publish the segment, release the state file."""
        if self._tables is None:
            return
        self._closing = True
        if self._task is not None:
            self._queue.put_nowait(None)
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._sink is not None and self.failure is None:
            await self._finish_segment()          # (after a failure, the next start() recovers it)
        self._save_counters()
        self._tables.close()
        self._tables = None
        self._lock.release()
