"""A :class:`harvester.sinks.base.Sink` that writes Singer messages: RECORD lines of the selected
streams, and after each commit's records a STATE that resumes the tap from there.

A Singer target persists what it has read up to a STATE before it passes that STATE on, and the
orchestrator (Meltano) hands the last one it got back to the tap as ``--state``: so the STATE,
not harvester's state file, says what is done. It names the run and every unit committed so far
(done, skipped, and the object records), compressed; a tap started with it calls none of them
again. A finished run's STATE says so, and the next tap starts a new run.
"""

from __future__ import annotations

import base64
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, BinaryIO

import msgspec
import orjson

from ..records import STREAM_OF, InsightRecord, Record, Stream, key_text
from ..sinks.base import Commit, CommitPolicy, SinkFailure
from .catalog import KEY_PROPERTIES, TIMES, schema

STATE_KEY = "harvester"
"""The tap's bookmark in Singer's ``{"bookmarks": {...}}``."""


def state_message(value: Mapping[str, Any]) -> bytes:
    return orjson.dumps({"type": "STATE", "value": value}) + b"\n"


def pack(units: Iterable[str]) -> str:
    return base64.b64encode(zlib.compress("\n".join(sorted(units)).encode(), 6)).decode()


def unpack(packed: str) -> set[str]:
    text = zlib.decompress(base64.b64decode(packed)).decode()
    return set(text.split("\n")) if text else set()


_encode = msgspec.json.Encoder().encode
_INSIGHT_TAG = b'{"stream":"insights",'
_INSIGHT_HEAD = b'{"type":"RECORD","stream":"insights","record":{"key":'
_API_OFFSET = b'+0000"'
"""The end of a time the harvest wrote (``...T07:00:00+0000"``), made ``+00:00`` for RFC 3339."""


def _rfc3339(value: str | None) -> str | None:
    """``2026-10-01T00:00:00+0000`` (the records' form) as RFC 3339, which JSON Schema's date-time is."""
    if value is None or len(value) < 5 or value[-5] not in "+-":
        return value
    return f"{value[:-2]}:{value[-2:]}"


class SingerSink:
    """Writes to ``out`` (stdout's bytes): the SCHEMA of each selected stream first, then RECORD
    lines, then a STATE at each commit and when the run is published."""

    def __init__(self, streams: Sequence[Stream], *, run_id: Callable[[], str], fingerprint: str,
                 done: Iterable[str] = (),
                 out: BinaryIO | None = None, commit_seconds: float = 1.0, commit_units: int = 100,
                 clock: Callable[[], float] = time.monotonic):
        self.streams = frozenset(streams)
        self.run_id, self.fingerprint = run_id, fingerprint
        """``run_id()``: the run's id, known once the harvest has opened (or resumed) it."""
        self.out = out if out is not None else sys.stdout.buffer
        self.policy = CommitPolicy(commit_seconds, units=commit_units, clock=clock)
        self.done = set(done)
        """Every unit committed, by this tap or the one whose STATE it was given."""
        self.records = 0
        self._lines: list[bytes] = []
        self._units: list[str] = []
        self._extracted = datetime.now(UTC).isoformat()
        self._tail = b'},"time_extracted":' + orjson.dumps(self._extracted) + b"}\n"
        self.out.write(b"".join(orjson.dumps({"type": "SCHEMA", "stream": s, "schema": schema(s),
                                              "key_properties": KEY_PROPERTIES[s]}) + b"\n"
                                for s in sorted(self.streams)))

    def write(self, unit_id: str, records: Sequence[Record]) -> None:
        for record in records:
            stream = STREAM_OF[type(record)]
            if stream in self.streams:
                self._lines.append(self._message(stream, record))
        self._units.append(unit_id)

    def _message(self, stream: Stream, record: Record) -> bytes:
        if isinstance(record, InsightRecord):
            return self._insight(record)
        return self._general(stream, record)

    def _general(self, stream: Stream, record: Record) -> bytes:
        row = record.to_dict()
        del row["stream"]
        for name in TIMES.intersection(row):
            row[name] = _rfc3339(row[name])
        if isinstance(record, InsightRecord):
            row = {"key": key_text(record), **row}
        return orjson.dumps({"type": "RECORD", "stream": stream, "record": row,
                             "time_extracted": self._extracted}) + b"\n"

    def _insight(self, record: InsightRecord) -> bytes:
        """The hot path (most records are insights): msgspec's encoding of the record, its tag
        field taken off, its key put first, and its times made RFC 3339 in the bytes, when the
        offsets found are exactly its times' (else the general path)."""
        body = _encode(record)
        times = (record.since, record.until, record.end_time, record.harvested_at)
        if not body.startswith(_INSIGHT_TAG) or body.count(_API_OFFSET) != sum(t is not None for t in times):
            return self._general("insights", record)
        body = body[len(_INSIGHT_TAG):-1].replace(_API_OFFSET, b'+00:00"')
        return b"".join((_INSIGHT_HEAD, _encode(key_text(record)), b",", body, self._tail))

    def should_commit(self) -> bool:
        return self.policy.due(len(self._units))

    async def commit(self) -> Commit | None:
        if not self._units:
            return None
        units, lines = tuple(self._units), self._lines
        self._units, self._lines = [], []
        self.policy.committed()
        self.done.update(units)
        self.records += len(lines)
        self._send(b"".join(lines) + state_message(self.state()))
        return Commit(units)

    def _send(self, data: bytes) -> None:
        try:
            self.out.write(data)
            self.out.flush()
        except OSError as exc:                 # a closed pipe: the target has stopped
            raise SinkFailure(f"the target stopped reading the tap's output ({exc.strerror or exc})") from None

    def state(self) -> dict[str, Any]:
        """The STATE that resumes this run where it stands."""
        return {"bookmarks": {STATE_KEY: {"run_id": self.run_id(), "fingerprint": self.fingerprint,
                                          "units_done": len(self.done), "done": pack(self.done)}}}

    def recover(self, committed_parts: Mapping[str, int | None]) -> list[str]:
        return []                               # nothing of a tap outlives it but what it wrote

    async def close(self) -> Commit | None:
        return await self.commit()

    def publish(self) -> None:
        """The run finished: the next tap starts a new one."""
        self._send(state_message({"bookmarks": {STATE_KEY: {"finished_run": self.run_id()}}}))
