"""Log lines as people read them (the default) or as a cluster's log shipper parses them
(``--log-format json``: one JSON object a line on stderr).

A JSON line holds ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, the run's
``run_id`` and ``shard`` once known, and the event's own fields (what a call passes as
``extra=``). Either way, what looks like a token, an app secret or a DSN's password is masked
before the line is written.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import orjson

LogFormat = Literal["text", "json"]

_SECRET = re.compile(r"(EAA|IGQ|IGAA)[A-Za-z0-9_\-]{16,}|(access_token|client_secret|fb_exchange_token)=[^&\s\"']+"
                     r"|(?<=://)([^:/@\s]+):([^@/\s]+)@")
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def mask(text: str) -> str:
    """``text`` with tokens, secrets in query strings and a URL's password replaced by ``***``."""
    return _SECRET.sub(_masked, text)


def _masked(m: re.Match[str]) -> str:
    if m.group(1):
        return "***"
    if m.group(2):
        return f"{m.group(2)}=***"
    return f"{m.group(3)}:***@"


class Context(logging.Filter):
    """Stamps every record with the run it belongs to (``run_id``, ``shard``), once known."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, Any] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in self.fields.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "message": mask(record.getMessage())}
        line.update({k: _plain(v) for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            line["exception"] = mask(self.formatException(record.exc_info))
        events = _json_events(line["message"])
        if events is not None:              # the receiver logs its events as JSON lines already
            return "\n".join(orjson.dumps({**line, "message": e.get("event", ""), **e}, default=str).decode()
                             for e in events)
        return orjson.dumps(line, default=str).decode()


def _json_events(message: str) -> list[dict[str, Any]] | None:
    """The events of a message made of JSON object lines, or None for a plain message."""
    if not message.startswith("{"):
        return None
    try:
        events = [orjson.loads(line) for line in message.splitlines()]
    except orjson.JSONDecodeError:
        return None
    return events if all(isinstance(e, dict) for e in events) else None


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


def _plain(value: Any) -> Any:
    return mask(value) if isinstance(value, str) else value


CONTEXT = Context()
"""The run's fields, set by the command line as the run starts (``CONTEXT.fields["run_id"] = ...``)."""
_format: list[LogFormat] = ["text"]
"""What :func:`configure` set: the command line's, never the library's (which only logs)."""
log = logging.getLogger("harvester")


def json_lines() -> bool:
    """Whether the command line writes JSON lines (``--log-format json``)."""
    return _format[0] == "json"


def say(text: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """What the command line tells a person: the text on stderr as it is, or with ``--log-format
    json`` one log event of ``text`` and ``fields``."""
    if _format[0] == "json":
        log.log(level, text, extra=fields)
    else:
        print(mask(text), file=sys.stderr, flush=True)


def configure(log_format: LogFormat = "text", *, level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """The root logger writes to ``stream`` (stderr) in ``log_format``: for the command line, never
    the library (a service configures its own logging)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter("%(message)s"))
    handler.addFilter(CONTEXT)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    _format[0] = log_format
