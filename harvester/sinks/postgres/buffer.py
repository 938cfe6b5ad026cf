"""What the sink holds between commits: each stream's rows by key, encoded as they are written.

A harvest writes while the previous commit runs on the server, so encoding at :meth:`add`
overlaps that commit instead of delaying the next one. A key written again replaces its row (the
last written wins); one-record units (a media, an account) are held and encoded together.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...records import STREAM_OF, STREAMS, Record, Stream
from ..base import SinkFailure
from .rows import RowEncoder, in_key_order

SINGLES = 64
"""One-record units a stream holds before encoding them together: a media or an account is
mostly values of its own, and one written alone cost 31 us against 12 us in a batch of them (the
account, the types, the run shared by the column), measured."""


class RowBuffer:
    """Each stream's rows by key (the UTF-8 of its key text) until :meth:`take`."""

    def __init__(self) -> None:
        self._encode = {stream: RowEncoder(stream) for stream in STREAMS}
        self._rows: dict[Stream, dict[bytes, bytes]] = {stream: {} for stream in STREAMS}
        self._singles: dict[Stream, list[Record]] = {stream: [] for stream in STREAMS}
        """Records of one-record units not encoded yet (see :data:`SINGLES`)."""
        self.broken = ""
        """Why held records could not be encoded: their units were accepted, so no commit may
        mark them done without their records (the sink fails for good)."""

    def add(self, records: Sequence[Record]) -> None:
        """Encode a unit's records now; one the database cannot hold refuses the whole unit
        (:class:`SinkFailure`, nothing of it added)."""
        kind = type(records[0]) if records else None
        encoded = []
        if kind is not None and all(type(r) is kind for r in records):
            stream = STREAM_OF[kind]
            if len(records) == 1:                   # an object record: encoded with the next ones
                self._singles[stream].append(records[0])
                if len(self._singles[stream]) >= SINGLES:
                    self._flush(stream)
            else:
                self._flush(stream)
                encoded.append((stream, self._encode[stream](records)))
        elif records:
            for stream in STREAMS:
                self._flush(stream)
            encoded = [(stream, self._encode[stream](chosen)) for stream in STREAMS
                       if (chosen := [r for r in records if STREAM_OF[type(r)] == stream])]
        for stream, (keys, rows) in encoded:   # all encoded first: a record refused adds nothing of its unit
            self._rows[stream].update(zip(keys, rows, strict=True))

    def _flush(self, stream: Stream) -> None:
        """Encode the one-record units of a stream held so far, before anything written after them
        (the last written of a key wins). Their units are accepted already: a record refused here
        breaks the buffer for good (:attr:`broken`)."""
        singles = self._singles[stream]
        if not singles:
            return
        self._singles[stream] = []
        try:
            keys, rows = self._encode[stream](singles)
        except SinkFailure as exc:
            self.broken = str(exc)
            raise
        self._rows[stream].update(zip(keys, rows, strict=True))

    def take(self) -> dict[Stream, list[bytes]]:
        """Every stream's rows held, each key once, sorted by key (:func:`.rows.in_key_order`), in
        the fixed order of the streams; the buffer is empty after."""
        for stream in STREAMS:
            self._flush(stream)
        rows, self._rows = self._rows, {stream: {} for stream in STREAMS}
        return {stream: in_key_order(found) for stream in STREAMS if (found := rows[stream])}
