"""harvester's exception tree. Callers catch :class:`HarvesterError`.

    HarvesterError
    ├── ConfigError         a bad configuration or usage; nothing was called (exit 2)
    ├── TransportError      the request never got a usable answer: reset, timeout, refused,
    │   │                   a truncated or non-JSON body, an HTML error page
    │   └── DecodeError     the body arrived but is not the JSON it should be
    ├── GraphError          the API answered with an error body (code, subcode, message)
    └── SinkError           the sink could not make records durable (a database lost for good):
        │                   what ``Harvester.run()`` raises
        └── SinkFailure     what a sink raises inside the run; never an API outcome, so the
                            scheduler stops everything instead of retrying it

``StateError`` (the state file cannot be used) is a ``ConfigError``: it is found before any call.

Library exceptions (aiohttp, msgspec) are translated once, at the boundary that sees them, with
``raise ... from exc``; nothing above that boundary sees them. No exception carries a token.
"""

from __future__ import annotations

from typing import Any


class HarvesterError(Exception):
    """Base of every error harvester raises."""


class ConfigError(HarvesterError):
    """A configuration or usage mistake, found before any call.

    ``problems`` lists every mistake found, each already naming the file, the key, what is
    wrong and what is allowed.
    """

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class StateError(ConfigError):
    """The state file cannot be used (not SQLite, or written by a newer harvester); found before
    any call, like a configuration mistake."""


class TransportError(HarvesterError):
    """No usable answer: the connection failed or the body could not be read."""

    def __init__(self, message: str, *, status: int | None = None):
        self.status = status
        super().__init__(message)


class DecodeError(TransportError):
    """The body is not the JSON the API sends (truncated, HTML page, wrong shape)."""

    def __init__(self, message: str, *, status: int | None = None, complete: bool = False):
        super().__init__(message, status=status)
        self.complete = complete
        """The body was whole JSON of the wrong shape (or over the size cap): asking again will
        not change it, so it deserves one retry, not the full budget."""


class GraphError(HarvesterError):
    """An error answer of the Graph API, as its ``error`` object states it."""

    def __init__(self, *, status: int, code: int | None, subcode: int | None, message: str,
                 type: str | None = None, is_transient: bool | None = None,
                 user_title: str | None = None, fbtrace_id: str | None = None,
                 usage: Any = None):
        self.status = status
        self.code = code
        self.subcode = subcode
        self.message = message
        self.type = type
        self.is_transient = is_transient
        self.user_title = user_title
        self.fbtrace_id = fbtrace_id
        self.usage = usage
        sub = f"/{subcode}" if subcode is not None else ""
        super().__init__(f"Graph API error {code}{sub} (HTTP {status}): {message}")


class SinkError(HarvesterError):
    """The sink could not make a commit durable: the run aborts, and the next run resumes from
    its last commit (the units after it are fetched again)."""


class SinkFailure(SinkError):
    """A sink cannot make records durable (its database stayed unreachable, say). Raised by a
    sink inside the run: the scheduler stops everything (it is not the API's answer to a call,
    whatever the policy would say of it) and :meth:`harvester.Harvester.run` raises it as a
    :class:`SinkError`."""
