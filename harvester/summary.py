"""Flat named counters for a run (Scrapy's stats collector): ``calls/ok``, ``errors/code/17``,
``wait/limit_seconds``; plus the units that ended without data, with the API's words for why.

A run resumed after a crash or a stop is one run over several attempts: the summary adds up the
counters each attempt left in the state (records, calls, time), so ``summary.json`` covers the
whole run, not the last attempt; the counts of the plan (:data:`PLAN_COUNTERS`: planned, resumed,
failed) are the last attempt's, as the printed summary shows them.

Expected skips (few viewers, posted before the conversion, a metric not for this product type)
are answered by the API with an error, which the scheduler counts under ``calls/error`` and
``errors/code/*`` like any error; :meth:`Stats.skipped_answer` counts them again under
``calls/skipped`` and ``skipped/code/*`` so that :func:`error_counts` can leave them out.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable
from functools import lru_cache
from typing import IO, Any, Protocol

import msgspec

_ENCODER = msgspec.json.Encoder()
MESSAGE_LIMIT = 300
"""The API's message is kept up to this many characters."""
_TOKEN = re.compile(r"(EAA|IGQ|IGAA)\w{16,}|access_token=[^&\s]+")


# The names of the run's flat counters (Stats.counters, summary.json), in one place. Scrapy-style
# paths: what was counted, then which kind; prefixes with a value after them (errors/code/17) are
# built where they are counted.

CALLS_OK = "calls/ok"
CALLS_ERROR = "calls/error"
CALLS_HEDGED = "calls/hedged"
"""Copies sent of calls that had been out long while the queue was empty (``[scheduler] hedge``)."""
CALLS_HEDGED_FIRST = "calls/hedged_first"
"""... of which the copy answered first."""
CALLS_SKIPPED = "calls/skipped"
"""Error answers that meant "nothing to harvest" (a SKIP decision): not errors."""
RETRIES = "retries"
THROTTLES = "throttles"
THROTTLES_LONE = "throttles/lone"
THROTTLES_WAITED_OUT = "throttles/waited_out"
WAITS_CAPPED = "waits/capped"
WAIT_LIMIT_SECONDS = "wait/limit_seconds"
WAIT_BACKOFF_SECONDS = "wait/backoff_seconds"
ERRORS_TRANSPORT = "errors/transport"

UNITS_PLANNED = "units/planned"
UNITS_DONE = "units/done"
UNITS_SKIPPED = "units/skipped"
UNITS_FAILED = "units/failed"
UNITS_FAILED_TOKEN = "units/failed_token"
UNITS_RESUMED = "units/resumed"
UNITS_REFUSED = "units/refused"
"""Answers that refused some of a unit's metrics, naming them: the unit was asked again without
them (or, with nothing left to ask, ended without data). Not an end state beside done."""
REFUSED = "refused/"
"""``refused/<kind>/<metric>``: refusals of that metric for that kind of object."""
DROPPED = "dropped/"
"""``dropped/<kind>/<metric>``: calls of that kind that left the metric out, learned refused."""
UNITS_SETTLED = "units/settled"
"""Account calls not asked: an earlier run on the state answered them after their days settled."""
UNITS_CARRIED_OVER = "units/carried_over"
"""Units an earlier run owed, asked again by this one."""
UNITS_CARRIED_TWICE = "units/carried_twice"
"""Units planned again that an earlier run owed and this one already asked on their own."""

PLAN_COUNTERS = (UNITS_PLANNED, UNITS_RESUMED, UNITS_FAILED, UNITS_FAILED_TOKEN, UNITS_CARRIED_OVER,
                 UNITS_CARRIED_TWICE)
"""The run's plan as its last attempt made it, never summed over attempts: each attempt plans the
whole run again (what earlier ones finished counts as resumed) and asks failed units again."""

RECORDS_WRITTEN = "records/written"
"""Insights records; the object streams have their own:"""
RECORDS_MEDIA = "records/media"
RECORDS_ACCOUNTS = "records/accounts"
SINK_COMMITS = "sink/commits"
SINK_UNCOMMITTED_REMOVED = "sink/uncommitted_removed"

MEDIA_NOT_DUE = "media/not_due"
MEDIA_DUPLICATE = "media/duplicate"
MEDIA_NOT_SHARED = "media/not_shared"
"""Media whose call of the metrics that need a share to Facebook was left out: they answered
"not shared" within the re-probe period (:mod:`harvester.plan.unshared`)."""
MEDIA_COLLAB = "media/collab"
"""Collaboration posts listed by an account that did not create them: asked where their creator lists them."""
PAGING_REPEATED = "paging/repeated"
PAGING_BOUNDED = "paging/bounded"
PAGES_WITHOUT_CHILDREN = "paging/without_children"
"""Pages asked again without ``children{...}`` after the page with it was refused."""
PAGES_NESTED = "paging/nested"
"""``/media`` pages that asked their media's insights nested (``[graph] expand_insights``)."""
PAGES_NESTED_FAILED = "paging/nested_failed"
"""... whose nested insights failed whole: asked again without them, their media one by one."""
PAGES_SMALLER = "paging/smaller"
"""Pages asked again at half the size after the API's "reduce the amount of data"."""
MEDIA_NESTED = "media/nested"
"""Media whose insights a page nested, each in the place of a call of its own."""

DISCOVERED_ACCOUNTS = "discovered/accounts"
"""Accounts found from [[discover]] tokens and harvested with them."""
DISCOVERED_EXCLUDED = "discovered/accounts_excluded"
"""Found, but left out by the table's include / exclude."""
DISCOVERED_ELSEWHERE = "discovered/accounts_elsewhere"
"""Found, but listed in [[accounts]] or found first by an earlier [[discover]] table: harvested once, there."""


# Counted nouns for people (``1 account``, ``2 accounts``): wherever a count is printed.

IRREGULAR = {"entry": "entries", "media": "media", "copy": "copies", "reply": "replies", "is": "are",
             "was": "were", "has": "have"}


def plural(n: float, word: str, words: str | None = None) -> str:
    """``n`` and ``word`` in the number it takes: ``plural(1, "account") == "1 account"``,
    ``plural(3, "unit") == "3 units"``; ``words``: the plural, when it is not ``word + "s"``
    or a known irregular one."""
    many = words or IRREGULAR.get(word) or word + "s"
    count = f"{int(n):,}" if float(n).is_integer() else f"{n:,.1f}"
    return f"{count} {word if n == 1 else many}"


def format_duration(seconds: float | None) -> str:
    """``12.3 s`` under a minute, ``6m10s`` under an hour, ``1h05m`` under a day, ``2d03h`` beyond;
    ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    days, whole = divmod(whole, 86400)
    hours, whole = divmod(whole, 3600)
    minutes, secs = divmod(whole, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"


@lru_cache(maxsize=1024)
def clean_message(message: str | None) -> str | None:
    """The API's message, on one line, cut to MESSAGE_LIMIT, anything like a token redacted
    (cached: a harvest's skips repeat a few messages thousands of times)."""
    if not message:
        return None
    text = _TOKEN.sub("<redacted>", " ".join(message.split()))
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


class Decided(Protocol):
    """What an outcome takes of the error policy's Decision (``graph.policy``), which lives above."""

    @property
    def reason(self) -> str: ...
    @property
    def code(self) -> int | None: ...
    @property
    def subcode(self) -> int | None: ...
    @property
    def type(self) -> str | None: ...
    @property
    def message(self) -> str | None: ...


class Outcome(msgspec.Struct, frozen=True):
    """A unit that was skipped (expected, no data) or failed (for good), why, and what the API said."""

    account_id: str
    label: str
    reason: str
    code: int | None = None
    subcode: int | None = None
    type: str | None = None
    """The API's error type, e.g. ``OAuthException``, ``GraphMethodException``."""
    message: str | None = None
    """The API's own message (cut, tokens redacted)."""
    metric: str | None = None
    """A refused outcome's metric (the unit was asked again without it)."""
    kind: str | None = None
    """A refused outcome's kind of object (``media FEED IMAGE (facebook, v25.0)``)."""

    @classmethod
    def of(cls, account_id: str, label: str, decision: Decided, reason: str | None = None) -> Outcome:
        """The outcome of a policy Decision (reason, code, subcode, type, message)."""
        return cls(account_id, label, reason or decision.reason, decision.code, decision.subcode, decision.type,
                   clean_message(decision.message))

    def api_words(self) -> str:
        """``code 100/33, GraphMethodException: <message>``, or "" if the API said nothing."""
        parts = []
        if self.code is not None:
            parts.append(f"code {self.code}" + (f"/{self.subcode}" if self.subcode is not None else ""))
        said = ": ".join(p for p in (self.type, self.message) if p)
        if said:
            parts.append(said)
        return ", ".join(parts)


SKIP_REASON = "skipped/reason/"
SKIPPED_EXAMPLES = 100
"""Skipped units are expected (and can be many): counted by reason, with this many examples."""
FAILED_EXAMPLES = 100
"""Failed units listed in summary.json at most; the full list is in its outcomes file."""


class Refused(msgspec.Struct, frozen=True):
    """A metric the API refused for a kind of object in this run, and what it cost."""

    kind: str
    metric: str
    refusals: int
    """Answers that refused it (each cost that metric of one call, never the unit)."""
    dropped: int = 0
    """Later calls of the kind that left it out, learned refused (no answer wasted on it)."""
    message: str | None = None
    """The API's words, from the first refusal (cut, tokens redacted)."""


class Stats:
    def __init__(self) -> None:
        self.counters: defaultdict[str, float] = defaultdict(float)
        self.refused_words: dict[tuple[str, str], str | None] = {}
        """(kind, metric) -> the API's words when it first refused it in this attempt."""
        self.api_warnings: list[str] = []
        """Said once per run: what the API said that the catalog does not know (new metrics)."""
        self._warned: set[str] = set()
        self.skipped: list[Outcome] = []
        self.skipped_by_reason: Counter[str] = Counter()
        self.failed: list[Outcome] = []
        self.carried: Counter[str] = Counter()
        """Run id -> units owed by that earlier run and asked again by this one."""
        self.failures = 0
        """Units failed in this attempt (``failed`` keeps the first FAILED_EXAMPLES)."""
        self._outcomes = tempfile.SpooledTemporaryFile(max_size=1 << 20)  # noqa: SIM115 (lives with the stats)
        """Every skipped and failed unit of this attempt as JSON lines, for the outcomes file: in
        memory up to 1 MiB, on disk beyond, so that a harvest's memory does not grow with them."""
        self.outcome_count = 0

    def inc(self, name: str, n: float = 1) -> None:
        self.counters[name] += n

    def get(self, name: str) -> float:
        return self.counters.get(name, 0)

    def skip(self, outcome: Outcome) -> None:
        if len(self.skipped) < SKIPPED_EXAMPLES:
            self.skipped.append(outcome)
        self.skipped_by_reason[outcome.reason] += 1
        self._note("skipped", outcome)
        self.inc(UNITS_SKIPPED)
        self.inc(SKIP_REASON + outcome.reason)      # kept with the attempt's counters: summed over attempts

    def refuse(self, outcome: Outcome) -> None:
        """The API refused ``outcome.metric`` for this object (its kind in ``outcome.kind``)."""
        kind, metric = outcome.kind or "?", outcome.metric or "?"
        self.refused_words.setdefault((kind, metric), outcome.message)
        self._note("refused", outcome)
        self.inc(f"{REFUSED}{kind}/{metric}")

    def warn_once(self, key: str, text: str) -> bool:
        """Keep ``text`` for the summary's warnings, once per ``key``; whether it is new."""
        if key in self._warned:
            return False
        self._warned.add(key)
        self.api_warnings.append(text)
        return True

    def carried_over(self, run_id: str, units: int) -> None:
        self.carried[run_id] += units
        self.inc(UNITS_CARRIED_OVER, units)

    def fail(self, outcome: Outcome) -> None:
        if len(self.failed) < FAILED_EXAMPLES:
            self.failed.append(outcome)
        self.failures += 1
        self._note("failed", outcome)
        self.inc(UNITS_FAILED)

    def _note(self, kind: str, outcome: Outcome) -> None:
        """One line ``{"outcome": kind, **outcome}``: the struct's own encoding (every field, in
        order), ``kind`` put in front."""
        self._outcomes.write(b'{"outcome":' + _ENCODER.encode(kind) + b"," + _ENCODER.encode(outcome)[1:] + b"\n")
        self.outcome_count += 1

    def outcome_lines(self) -> bytes:
        """The outcomes file's contents: every skipped and failed unit of this attempt, read
        whole (the outcomes file itself is written by :meth:`copy_outcomes`)."""
        self._outcomes.seek(0)
        data = self._outcomes.read()
        self._outcomes.seek(0, 2)
        return data

    def copy_outcomes(self, out: IO[bytes]) -> None:
        """Write the outcomes file's contents to ``out`` a chunk at a time: beyond 1 MiB they
        wait on disk, and are never read back into memory whole (a million records' harvest
        skips tens of thousands of units: 10 MB)."""
        self._outcomes.seek(0)
        shutil.copyfileobj(self._outcomes, out)
        self._outcomes.seek(0, 2)

    def skipped_answer(self, decision: Any) -> None:
        """An error answer that meant "nothing to harvest" (a SKIP decision): once per answer, not
        per unit it skips. It is then not counted as an error by :func:`error_counts`."""
        self.inc(CALLS_SKIPPED)
        code = getattr(decision, "code", None)
        if code is not None:
            self.inc(f"skipped/code/{code}")


def error_counts(counters: dict[str, float]) -> tuple[int, int, dict[str, int]]:
    """``(errors, skipped, {"code/17": n, "transport": n, ...})``: error answers without the
    expected skips (those are counted apart, as ``skipped``)."""
    skipped = int(counters.get(CALLS_SKIPPED, 0))
    errors = max(0, int(counters.get(CALLS_ERROR, 0)) - skipped)
    by_kind = {}
    for key, n in counters.items():
        if key.startswith("errors/"):
            left = int(n - counters.get("skipped/" + key[len("errors/"):], 0))
            if left > 0:
                by_kind[key[len("errors/"):]] = left
    return errors, skipped, dict(sorted(by_kind.items(), key=lambda kv: -kv[1]))


class Attempt(msgspec.Struct, frozen=True):
    """What one attempt of a run did, as the state keeps it (the run's counters up to its last commit)."""

    attempt: int
    seconds: float
    counters: dict[str, float]


class RunSummary(msgspec.Struct):
    """What a run did, for people (``render``) and programs (``summary.json``), over all its attempts."""

    run_id: str
    exit_code: int
    status: str
    seconds: float
    """Time spent harvesting, summed over the attempts."""
    records: int
    units: dict[str, int]
    counters: dict[str, float]
    skipped: list[Outcome]
    """The first SKIPPED_EXAMPLES skipped units (of this attempt); ``skipped_by_reason`` counts them all."""
    failed: list[Outcome]
    """The first FAILED_EXAMPLES failed units; ``failed_left_out`` says how many more there are."""
    skipped_by_reason: dict[str, int] = {}
    carried_over: dict[str, int] = {}
    """Run id -> units that earlier run owed and this one asked again."""
    attempts: int = 1
    skipped_left_out: int = 0
    failed_left_out: int = 0
    outcomes_file: str | None = None
    """Where every skipped and failed unit of the last attempt is listed (JSON lines), beside summary.json
    (units skipped by earlier attempts are counted in ``skipped_by_reason``, not listed)."""
    warnings: list[str] = []
    """Tokens that expire soon (harvester.tokens.health), said at the start; metrics the API
    listed that the catalog does not know, said once each."""
    refused: list[Refused] = []
    """Metrics the API refused, per kind of object: each cost that metric, never its unit."""
    api_version: str | None = None
    """The Graph API version the run asked (``[graph] api_version``): which API said it."""
    metrics_asked: dict[str, list[str]] = {}
    """Kind of object (``media FEED IMAGE (facebook, v25.0)``) -> the metrics asked of it (by
    the last attempt): a record's ``run_id`` leads here, so ``views`` under v25 is never added
    to ``impressions`` under v21."""

    def render(self) -> str:
        c = self.counters
        errors, skipped, kinds = error_counts(c)
        attempts = f", attempts: {self.attempts}" if self.attempts > 1 else ""
        lines = [
            f"run {self.run_id}: {self.status} in {format_duration(self.seconds)} (exit {self.exit_code}{attempts})",
            f"  records written : {self.records:,}",
            "  units           : " + ", ".join(f"{k} {v:,}" for k, v in self.units.items()),
            f"  calls           : ok {int(c.get(CALLS_OK, 0)):,}, errors {errors:,}, skipped {skipped:,}, "
            f"retries {int(c.get(RETRIES, 0)):,}, throttled {int(c.get(THROTTLES, 0)):,}"
            + (f", hedged {int(c[CALLS_HEDGED]):,}" if c.get(CALLS_HEDGED) else ""),
            f"  waited (summed over calls): {format_duration(c.get(WAIT_LIMIT_SECONDS, 0))} on rate limits, "
            f"{format_duration(c.get(WAIT_BACKOFF_SECONDS, 0))} on retry backoff",
        ]
        if kinds:
            lines.append("  errors          : " + ", ".join(f"{k} x{n}" for k, n in kinds.items()))
        if self.skipped_by_reason:
            lines.append(f"  skipped ({sum(self.skipped_by_reason.values()):,}, no data to harvest): " + "; ".join(
                f"{reason} x{n:,}" for reason, n in Counter(self.skipped_by_reason).most_common()))
        if self.refused:
            lines.append(f"  refused ({sum(r.refusals for r in self.refused):,} answers; the metric left out, "
                         "the rest of each unit asked again):")
            for r in self.refused:
                said = f" [{r.message}]" if r.message else ""
                asked = f"refused x{r.refusals:,}" if r.refusals else "learned refused by an earlier run"
                lines.append(f"    - {r.metric} for {r.kind}: {asked}, left out of {r.dropped:,} later calls{said}")
        lines += [f"  carried over from run {run}: {plural(n, 'unit')}" for run, n in self.carried_over.items()]
        lines += [f"  WARNING: {w}" for w in self.warnings]
        lines += _outcomes("FAILED", self.failed, self.failed_left_out, self.outcomes_file)
        return "\n".join(lines)


def _outcomes(title: str, outcomes: list[Outcome], left_out: int, where: str | None, limit: int = 20) -> list[str]:
    if not outcomes:
        return []
    total = len(outcomes) + left_out
    reasons = Counter(o.reason for o in outcomes)
    lines = [f"  {title} ({total}): " + "; ".join(f"{r} x{n}" for r, n in reasons.most_common(5))]
    for o in outcomes[:limit]:
        said = o.api_words()
        lines.append(f"    - {o.label}: {o.reason}" + (f" [{said}]" if said else ""))
    if total > limit:
        lines.append(f"    ... and {total - limit} more (all in {where or 'summary.json'})")
    return lines


def _add(counters: Iterable[dict[str, float]]) -> dict[str, float]:
    total: Counter[str] = Counter()
    for c in counters:
        total.update(c)
    return dict(total)


def _by_reason(counters: dict[str, float]) -> dict[str, int]:
    return {k[len(SKIP_REASON):]: int(v) for k, v in counters.items() if k.startswith(SKIP_REASON)}


def refused_of(counters: dict[str, float], words: dict[tuple[str, str], str | None]) -> list[Refused]:
    """The refused metrics per kind, from the run's ``refused/`` and ``dropped/`` counters."""
    found: dict[tuple[str, str], list[int]] = {}
    for key, n in counters.items():
        for prefix, at in ((REFUSED, 0), (DROPPED, 1)):
            if key.startswith(prefix):
                kind, _, metric = key[len(prefix):].rpartition("/")
                found.setdefault((kind, metric), [0, 0])[at] += int(n)
    return [Refused(kind, metric, r, d, words.get((kind, metric)))
            for (kind, metric), (r, d) in sorted(found.items())]


class Attempted(msgspec.Struct, frozen=True):
    """What :func:`build` reads of a run besides its counters: the Harvester hands it out
    (``Harvester.attempted()``)."""

    run_id: str
    started: float | None
    """When this attempt's harvest started (None: it never did)."""
    finished: float | None
    stopped: bool
    """Stopped before the end (``Harvester.stop()``): the next run resumes it."""
    stopped_exit_code: int | None = None
    """The exit code a stopped run reports (the CLI's: its signal's), else the usual one."""
    earlier: tuple[Attempt, ...] = ()
    """What earlier attempts of the run left in the state."""
    warnings: tuple[str, ...] = ()
    """Said at the start of the run (tokens that expire soon)."""
    api_version: str | None = None
    """The Graph API version the run asked (``[graph] api_version``)."""
    metrics_asked: dict[str, list[str]] = {}
    """Kind of object -> the metrics this attempt asked of it."""


def build(stats: Stats, run: Attempted) -> RunSummary:
    """The summary of the whole run: this attempt's ``stats`` plus what earlier attempts left in
    the state."""
    earlier = run.earlier
    failed = stats.failures > 0
    started, finished = run.started or 0.0, run.finished or run.started or 0.0
    before = _add(a.counters for a in earlier)
    counters = _add([before, dict(stats.counters)])
    for name in PLAN_COUNTERS:                  # summary.json's counters say what the printed units say
        counters.pop(name, None)
        if stats.get(name):
            counters[name] = stats.get(name)
    units = {"planned": int(counters.get(UNITS_PLANNED, 0)),
             "done": int(counters.get(UNITS_DONE, 0)),
             "skipped": int(counters.get(UNITS_SKIPPED, 0)),
             "failed": int(counters.get(UNITS_FAILED, 0) + counters.get(UNITS_FAILED_TOKEN, 0)),
             "resumed": int(counters.get(UNITS_RESUMED, 0)),
             "refused": int(counters.get(UNITS_REFUSED, 0))}
    exit_code = 3 if failed else 0
    if run.stopped and run.stopped_exit_code is not None:
        exit_code = run.stopped_exit_code
    return RunSummary(
        run_id=run.run_id, exit_code=exit_code,
        status=("stopped (the next run resumes)" if run.stopped
                else "finished with failures" if failed else "finished"),
        seconds=sum(a.seconds for a in earlier) + (finished - started),
        records=int(counters.get(RECORDS_WRITTEN, 0)), units=units,
        counters=counters, skipped=stats.skipped, failed=stats.failed,
        skipped_by_reason=_by_reason(counters) or dict(stats.skipped_by_reason), attempts=len(earlier) + 1,
        skipped_left_out=max(0, units["skipped"] - len(stats.skipped)),
        failed_left_out=max(0, stats.failures - len(stats.failed)), carried_over=dict(stats.carried),
        warnings=list(run.warnings) + stats.api_warnings,
        refused=refused_of(counters, stats.refused_words),
        api_version=run.api_version, metrics_asked=dict(run.metrics_asked))
