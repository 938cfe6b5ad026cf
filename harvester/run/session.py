"""A run's hold on its state file and its output, from the lock to the summary files.

One run at a time per state file (the lock); the run is opened in the state, or an unfinished run
of the same work (the same fingerprint) resumed; the sink is opened and cut back to what that run
committed; at the end ``outcomes.jsonl`` and ``summary.json`` are written in ``<output>/<run id>/``,
then the state says the run ended. Every OS or SQLite error before the first call is a
ConfigError naming the path, and leaves no run marked running. What each token spent of its
window is kept in the state too, for the next process on the same budget.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from array import array
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import msgspec

from .. import files
from .. import summary as stat
from ..config import Config
from ..config.shards import Shard
from ..errors import ConfigError, StateError
from ..plan.refusals import REPROBE_SECONDS, Refusals
from ..schedule.scheduler import Scheduler
from ..sinks import paths
from ..sinks.base import Sink
from ..sinks.factory import open_sink, output_directory
from ..sinks.manifest import RunInfo
from ..state.lock import RunLock
from ..state.spent import Spent
from ..state.store import StateStore
from ..state.webhook import delivered_stories
from ..summary import Attempt, RunSummary, Stats

OUTCOMES_FILE, SUMMARY_FILE = "outcomes.jsonl", "summary.json"


class Opened(msgspec.Struct, frozen=True):
    """The run as the state opened it."""

    run_id: str
    """The run's id: an unfinished run's when it is resumed."""
    resumed: bool
    finished_units: set[str]
    """What earlier attempts of the run committed (units and object records)."""
    earlier: tuple[Attempt, ...]
    """What earlier attempts left in the state."""


class Session:
    """The state file and the output of one Harvester: ``state`` and ``sink`` given, or the
    config's (opened here, closed by :meth:`close`)."""

    def __init__(self, config: Config, *, state: StateStore | None = None, sink: Sink | None = None,
                 kind: str = "run", shard: Shard | None = None):
        self.config, self.kind, self.shard = config, kind, shard
        self.state = state
        """The state store (None until :meth:`open` when it is the config's)."""
        self._own_state = state is None
        self._sink = sink
        self._own_sink = sink is None
        """The config's ``[output]``: the run's files go beside it (a sink given has no place for them)."""
        self._lock: RunLock | None = None

    def __repr__(self) -> str:
        return f"Session(state={self.state.path if self.state is not None else None!r}, kind={self.kind!r})"

    def sink(self, run_id: str) -> Sink:
        """The sink: the one given, or the config's ``[output]`` for ``run_id`` (made once)."""
        if self._sink is None:
            self._sink = open_sink(self.config.output, run_id, config_path=self.config.path)
        return self._sink

    def open(self, run_id: str, stats: Stats) -> Opened:
        """Lock the state file, then open the run in it (or resume the unfinished one); its
        attempt's counters (``stats``) are saved with every commit from now on."""
        state = self._locked()
        window = self.config.window
        try:
            info = state.open_run(run_id, kind=self.kind, fingerprint=fingerprint(self.config, self.shard),
                                  config_path=self.config.path, since=str(window.since), until=str(window.until))
            opened = Opened(info.run_id, info.resumed, state.finished_units(info.run_id),
                            tuple(Attempt(*a) for a in state.attempts(info.run_id)))
        except sqlite3.Error as exc:
            raise StateError(f"{state.path}: cannot open the run in the state file: {exc}") from None
        state.begin_attempt(opened.run_id, lambda: stats.counters)
        return opened

    def _locked(self) -> StateStore:
        """Lock the state file (one run at a time per state file), then open it: the config's
        [state] path unless a store was given."""
        state_path = self.state.path if self.state is not None else Path(self.config.state.path)
        paths.prepare(self.config, state_path, output=False)
        if self._lock is None:
            self._lock = RunLock(state_path)
        self._lock.acquire()
        if self.state is None:
            self.state = StateStore(state_path)
        paths.prepare(self.config, None, output=self._sink is None)
        return self.state

    async def open_sink(self, run: Opened, stats: Stats) -> Sink:
        """The sink, open and cut back to what the run committed: a database reachable and usable,
        or a ConfigError before any call (the run is then not left marked running)."""
        assert self.state is not None
        try:
            sink = self.sink(run.run_id)
            if (open_sink := getattr(sink, "open", None)) is not None:
                await open_sink()                 # a database: reachable and usable, or exit 2 before any call
            removed = sink.recover(self.state.committed_parts(run.run_id))
        except ConfigError:
            if not run.resumed:
                self.state.forget_run(run.run_id)     # a DuckDB file in use, say: nothing ran
            raise
        except OSError as exc:
            if not run.resumed:
                self.state.forget_run(run.run_id)     # nothing ran: leave no run marked running
            raise ConfigError(f"{self.config.path}: [output] path = {self.config.output.path!r}: cannot be used: "
                              f"{exc.strerror or exc} ({exc.filename})") from None
        stats.inc(stat.SINK_UNCOMMITTED_REMOVED, len(removed))
        return sink

    def finish(self, summary: RunSummary, stats: Stats, *, stopped: bool) -> RunSummary:
        """Write ``outcomes.jsonl`` (if any unit was skipped or failed) and ``summary.json``
        atomically in ``<output>/<run id>/`` (the config's output; not with a sink the caller
        gave), then say in the state that the run ended (a crash in between, and the next attempt
        writes them again); the summary as written."""
        assert self.state is not None
        if self._own_sink:
            directory = output_directory(self.config.output) / summary.run_id
            directory.mkdir(parents=True, exist_ok=True)
            if stats.outcome_count:
                with files.replacing(directory / OUTCOMES_FILE) as out:
                    stats.copy_outcomes(out)
                summary = msgspec.structs.replace(summary, outcomes_file=OUTCOMES_FILE)
            files.write_atomic(directory / SUMMARY_FILE, msgspec.json.format(msgspec.json.encode(summary)))
        self.state.finish_run(summary.run_id, status="stopped" if stopped else summary.status,
                              exit_code=summary.exit_code, summary=msgspec.json.encode(summary))
        return summary

    async def publish(self, sink: Sink, info: RunInfo) -> None:
        """Publish what the run wrote (a file sink keeps ``info``, what the run asked, in its
        manifest), before the run is marked finished: a crash in between publishes again."""
        if hasattr(sink, "run_info"):
            sink.run_info = info
        await asyncio.to_thread(sink.publish)

    # -- what the harvest reads of the state -------------------------------------------------

    def delivered(self, media_ids: Sequence[str]) -> set[str]:
        """The stories among these that the webhook receiver stored final values for."""
        assert self.state is not None
        return delivered_stories(self.state.db, media_ids)

    def last_harvested(self, media_ids: Sequence[str], *, run_id: str) -> Mapping[str, float]:
        """When each media was last harvested by another run (the refresh tiers)."""
        assert self.state is not None
        return self.state.last_harvested(media_ids, run_id=run_id)

    def refusals(self, now: float) -> Refusals:
        """What earlier runs on this state learned of refused metrics, under this API version and
        within the re-probe period (older ones are asked again: the metric may be back)."""
        rows = self.state.learned_refusals(api_version=self.config.graph.api_version,
                                           since=now - REPROBE_SECONDS) if self.state is not None else []
        return Refusals.of_rows(rows, drop=self.config.selection.on_refused == "drop")

    def restore_spent(self, scheduler: Scheduler, keys: Iterable[str], wall: float) -> None:
        """Start each token's window with the calls earlier processes made with it (kept in the
        state), so that a resumed or repeated run is not throttled at start. ``wall``: the offset
        from the scheduler's clock to the wall clock."""
        if self.state is not None:
            for key, spent in self.state.spent.load(keys, now=scheduler.now() + wall).items():
                scheduler.restore(key, [t - wall for t in spent.starts], spent.paused_until - wall)

    def save_spent(self, scheduler: Scheduler, wall: float) -> None:
        """Keep what this process spent of each token's window in the state, for the next one."""
        if self.state is None:
            return
        spent = {key: Spent(array("d", (t + wall for t in starts)), paused + wall)
                 for key, starts, paused in scheduler.spent()}
        self.state.spent.save(spent, window_seconds=self.config.rate_limit.window_seconds,
                              now=scheduler.now() + wall)

    def close(self) -> None:
        """Close the state store if it is the config's, and let the state file go."""
        if self._own_state and self.state is not None:
            self.state.close()
            self.state = None
        if self._lock is not None:
            self._lock.release()


def fingerprint(config: Config, shard: Shard | None = None) -> str:
    """What makes two runs the same work: resuming is allowed only between equal fingerprints."""
    work: tuple = ((config.graph.base_url, config.graph.api_version), config.window, config.selection,
                   config.accounts, config.output.format, config.output.path, config.output.lifetime_history)
    if config.discover:
        work += (config.graph.instagram_base_url, config.discover)
    if shard is not None:       # a shard is other work than the whole (and unsharded fingerprints stay as they were)
        work += (shard,)
    return hashlib.blake2b(msgspec.json.encode(work), digest_size=16).hexdigest()
