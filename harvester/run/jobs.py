"""The three kinds of job of a harvest, each one API call: the account node, a page of ``/media``
or ``/stories``, one insights call.

What a job finds becomes more jobs: the account node plans the account's insights units and the
first page of each edge; a page plans the insights units of its media and the next page. Jobs
get everything they use from a :class:`JobContext` (client, tokens, plan inputs, what to skip,
where outcomes go), never from the Harvester, and each kind says what it means when it is given
up (:meth:`gave_up`): the scheduler only tells it the policy's decision.

Each object is planned once per run: a media id seen again (twice on a page, on two pages, on
``/media`` and ``/stories``, or in two configured accounts, as collaboration posts are) is left
out the second time, so its records belong to the first account whose page listed it in that
run. Pages are followed through the API's own ``paging.next`` URL (the client strips its token
and refuses one that leads off the edge), and paging stops on a repeated cursor or URL, or past
the number of pages the account's ``media_count`` allows (with slack), which is reported.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from .. import catalog
from .. import summary as stat
from ..config import Selection, Window
from ..days import parse_iso
from ..errors import DecodeError, GraphError, HarvesterError
from ..graph.flatten import flatten
from ..graph.policy import Action, Decision, decide, too_large
from ..graph.refusal import refused_metrics
from ..graph.wire import (
    ACCOUNT_FIELDS,
    MEDIA_FIELDS,
    MEDIA_FIELDS_WITHOUT_CHILDREN,
    STORY_FIELDS,
    AccountNode,
    MediaItem,
    Usage,
    decode_account,
    decode_media_page,
    decode_nested_insights,
    is_graph_id,
)
from ..plan import units as plan
from ..plan.expand import insights_field, page_metrics, split
from ..plan.probes import Probes
from ..plan.refresh import RefreshCheck
from ..plan.refusals import Kind, Learned, Refusals, kind_of, leave_out
from ..plan.units import MEDIA_PAGE_LIMIT, Unit, metrics_of, without
from ..records import AccountRecord, InsightRecord, MediaRecord, Record
from ..schedule.cost import CallCosts
from ..schedule.slot import Job as ScheduledJob
from ..summary import Outcome
from .expansion import Expansion, PageAsk
from .idset import IdSet

if TYPE_CHECKING:
    from ..graph.client import GraphClient, QueryParams, Reply
    from ..graph.hedge import Flight
    from ..summary import Stats

log = logging.getLogger("harvester.run")
PAGE_LIMIT = str(MEDIA_PAGE_LIMIT)
_ACCOUNT_COPIED = tuple(f for f in AccountNode.__struct_fields__ if f in AccountRecord.__struct_fields__)
_MEDIA_COPIED = tuple(f for f in MediaItem.__struct_fields__
                      if f in MediaRecord.__struct_fields__ and f != "media_product_type")
"""The fields an ``accounts`` or ``media`` record takes as the API sent them; the rest it derives
(a story's product type is ``STORY`` whatever the page says; an album's children as two lists)."""

#: 0: a leaf, it makes no more work; above 0 it does, and the lower starts first (the scheduler
#: starts that work while few leaves are queued: the deepest first, so chains end early and the
#: queue holds about one page of work per account instead of the whole world).
PRIORITY_INSIGHTS, PRIORITY_CHAIN, PRIORITY_PAGE, PRIORITY_ACCOUNT = 0, 1, 2, 3

PAGE_SLACK = 1.5
"""Pages an edge may have, over what ``media_count`` implies: media posted while paging, and
pages the API cuts short, need some room; an endless chain does not get it."""
EXTRA_PAGES = 2
STORY_PAGES = 10
"""``/stories`` has no count: a day of stories fits in one page of 100, ten is far beyond it."""


class Ledger(Protocol):
    """Where the outcomes of jobs go: the Harvester's bookkeeping of checkpoints and failures."""

    async def written(self, job: InsightsJob, records: Sequence[InsightRecord]) -> None:
        """The unit's records are ready for the sink (checkpointed at its next commit)."""

    async def objects(self, account_id: str, records: Sequence[tuple[str, Record]]) -> None:
        """Object records (``(id, record)``: a media's, an account's) for the sink, each
        checkpointed under its id like a unit, so a resumed run writes none of them twice."""

    def skipped(self, account_id: str, label: str, decision: Decision, unit: Unit | None = None) -> None:
        """Nothing to harvest, legitimately: a unit is checkpointed like data, so not asked again."""

    def failed(self, job: Job, decision: Decision) -> None:
        """Given up: reported, and owed to the next run when the reason was transient."""

    def media_planned(self, row: tuple[str, str, str | None], unit_ids: Sequence[str]) -> None:
        """A media's units (``row``: media, account, product) were submitted: it is harvested once
        every one of them is written."""

    def settled(self, owed_id: str, account_id: str) -> None:
        """What an earlier run owed under this id is done (at the next commit)."""

    def refused(self, account_id: str, units: Sequence[Unit]) -> None:
        """Units whose every metric was refused (or learned refused): done without records."""

    def learned(self, row: Learned) -> None:
        """A metric is now left out of a kind's calls: kept for later runs."""


class JobContext:
    """What the jobs of one harvest share, handed in by the Harvester."""

    def __init__(self, *, client: GraphClient, tokens: Mapping[str, str], submit: Callable[[Job], None],
                 ledger: Ledger, stats: Stats, selection: Selection, now: float, run_id: str,
                 harvested_at: str, skip_units: set[str] | frozenset[str] = frozenset(),
                 owed_units: set[str] | frozenset[str] = frozenset(), refresh: RefreshCheck | None = None,
                 observed_on: str | None = None, clients: Mapping[str, GraphClient] | None = None,
                 delivered: Callable[[Sequence[str]], set[str]] | None = None,
                 refusals: Refusals | None = None, api_version: str = "v25.0",
                 settled_units: Callable[[Sequence[str]], set[str]] | None = None,
                 expansion: Expansion | None = None, costs: CallCosts | None = None,
                 not_shared: Callable[[Sequence[str]], set[str]] | None = None):
        self.client, self.tokens, self.submit, self.ledger, self.stats = client, tokens, submit, ledger, stats
        self.clients = clients or {}
        """Token key -> the client of its host, where it is not ``client`` (Instagram Login tokens)."""
        self.selection, self.now, self.run_id, self.harvested_at = selection, now, run_id, harvested_at
        self.skip_units = skip_units
        """Units an earlier attempt of this run finished: not called again."""
        self.owed_units = owed_units
        """Units an earlier run owed, already submitted on their own: not planned twice."""
        self.refresh = refresh
        """Which media are due by the refresh tiers (None: every media, every run)."""
        self.planned_media = IdSet()
        """Media planned in this run (ids as ints: the set grows with the world)."""
        self.day = harvested_at[:10]
        """The UTC day of the harvest: the day of its ``accounts`` records."""
        self.observed_on = observed_on
        """Stamped on media lifetime values (``[output] lifetime_history``), else None."""
        self.delivered = delivered
        """Which of some stories the webhook stored final values for: not asked again (None: none)."""
        self.refusals = refusals if refusals is not None else Refusals()
        """Metrics the API refused, per kind of object: learned ones are left out of calls."""
        self.probes: Probes[InsightsJob] = Probes(self.refusals, submit)
        """Insights calls of a kind go a few at a time until the API answered its metrics."""
        self.api_version = api_version
        self.settled_units = settled_units
        """Which of some account calls an earlier run answered once settled: not asked again (None:
        every call is asked, ``harvester run --refresh``)."""
        self.expansion = expansion
        """Whether ``/media`` pages nest their media's insights (None: never)."""
        self.costs = costs
        """Every call's cost, as the usage headers tell it (None: not measured)."""
        self.not_shared = not_shared
        """Which of some media answered "not shared to Facebook" lately: their call of the metrics
        that need the share is left out (None: asked of every media)."""
        self._asked: dict[Kind, set[str]] = {}
        """Kind of object -> the ``metric`` parameters asked."""
        self.collabs: dict[str, tuple[str, str, str]] = {}
        """Collaboration posts listed by an account that did not create them: media id ->
        (lister's account id, lister's username, creator's username). Only the creator's token
        reads their insights (others get 100/33): they are planned where the creator lists them."""

    def collab(self, media_id: str, account_id: str, lister: str, creator: str) -> None:
        self.collabs.setdefault(media_id, (account_id, lister, creator))
        self.stats.inc(stat.MEDIA_COLLAB)

    def collabs_not_harvested(self) -> list[tuple[str, str, str, str]]:
        """The collaboration posts no harvested account created: (media, account, lister, creator)."""
        return [(media_id, *listed) for media_id, listed in self.collabs.items()
                if int(media_id) not in self.planned_media]

    def login_of(self, key: str) -> str:
        """The login of a token: "instagram" (graph.instagram.com) or "facebook"."""
        return "instagram" if key in self.clients else "facebook"

    def kind(self, key: str, unit: Unit) -> Kind:
        """The kind of the object ``unit`` asks about, as the API refuses metrics by it."""
        return kind_of(unit.ctx, self.login_of(key), self.api_version)

    def asked(self, kind: Kind, unit: Unit) -> None:
        """Note the metrics a call of ``kind`` asks (cheap: the call's own parameter string)."""
        params = self._asked.get(kind)
        if params is None:
            params = self._asked[kind] = set()
        params.add(unit.params[0][1] if unit.params and unit.params[0][0] == "metric" else dict(unit.params)["metric"])

    def metrics_asked(self) -> dict[str, list[str]]:
        """Kind label -> every metric of that kind the API answered in this attempt (refused ones
        are not), sorted: which API said what (``views`` under v25 is not ``impressions`` under v21)."""
        out: dict[str, set[str]] = {}
        for kind, params in self._asked.items():
            out.setdefault(kind.label(), set()).update(m for p in params for m in p.split(","))
        return {label: sorted(metrics) for label, metrics in sorted(out.items())}

    def leave_out_learned(self, key: str, unit: Unit) -> tuple[Unit | None, tuple[str, ...]]:
        """``unit`` without the metrics learned refused for its kind (counted per call), and which
        (the hot path: nothing learned, nothing done)."""
        if not self.refusals.learned_any:
            return unit, ()
        kind = self.kind(key, unit)
        dropped = self.refusals.dropped(kind)
        if not dropped:
            return unit, ()
        left, gone = leave_out(unit, dropped)
        for metric in gone:
            self.stats.inc(f"{stat.DROPPED}{kind.label()}/{metric}")
        return left, gone

    def client_of(self, key: str) -> GraphClient:
        return self.clients.get(key) or self.client

    def get(self, key: str, path: str, params: QueryParams, flight: Flight | None = None,
            nested: Callable[[Reply], int] | None = None) -> Awaitable[Reply]:
        """GET with ``key``'s token (to await: the priced call itself, no coroutine around it, as
        every call goes through here); ``nested``: how many media insights a page's answer nests
        (what its cost is measured against)."""
        return self._priced(key, self.client_of(key).get(path, params, self.tokens[key], flight=flight), nested)

    def follow(self, key: str, url: str, path: str, flight: Flight | None = None,
               nested: Callable[[Reply], int] | None = None) -> Awaitable[Reply]:
        return self._priced(key, self.client_of(key).follow(url, self.tokens[key], path=path, flight=flight), nested)

    async def _priced(self, key: str, call: Awaitable[Reply], nested: Callable[[Reply], int] | None) -> Reply:
        """The call, logged with what the API says it cost (:mod:`harvester.schedule.cost`)."""
        costs = self.costs
        if costs is None:
            return await call
        sent = costs.sent(key)
        try:
            reply = await call
        except GraphError as error:
            costs.read(key, error.usage.call_count if error.usage is not None else None)
            raise
        if nested is not None:
            costs.nested(key, sent, nested(reply))
        costs.read(key, reply.usage.call_count if reply.usage is not None else None)
        return reply

    def submit_units(self, key: str, account_id: str, units: Sequence[Unit], *, planned: bool = False,
                     expires_at: float | None = None, replaces: tuple[Unit, ...] = ()) -> None:
        """Submit ``units[0]`` with the others following it; what is already finished (an
        earlier attempt) or queued (owed by an earlier run) is left out, its followers not.
        ``planned``: the units were counted when first submitted (follow-ups); ``replaces``:
        planned units ``units[0]`` is asked in the place of."""
        if not units:
            return
        if not planned:
            self.stats.inc(stat.UNITS_PLANNED, len(units))
        unit, follow_ups = units[0], tuple(units[1:])
        if unit.id in self.skip_units or unit.id in self.owed_units:
            self.stats.inc(stat.UNITS_RESUMED if unit.id in self.skip_units else stat.UNITS_CARRIED_TWICE)
            for follow_up in follow_ups:
                self.submit_units(key, account_id, (follow_up,), planned=True, expires_at=expires_at)
            return
        left, gone = self.leave_out_learned(key, unit)
        if left is None:                   # every metric learned refused: nothing to ask
            self.ledger.refused(account_id, (*replaces, unit))
            self.submit_units(key, account_id, follow_ups, planned=True, expires_at=expires_at)
            return
        self.probes.admit(InsightsJob(self, key, account_id, left, follow_ups, expires_at=expires_at,
                                      replaces=(*replaces, unit) if gone else replaces))

    def submit_media(self, key: str, account_id: str, units: Sequence[Unit], expires_at: float) -> None:
        """A media's units, asked one by one; in a resumed run, less what a page of an earlier
        attempt answered of its call (that part is checkpointed, the rest maybe not)."""
        if self.skip_units and units and units[0].id not in self.skip_units:
            parts = split(units[0], page_metrics(self.selection, self.refusals.learned(), self.login_of(key),
                                                 self.api_version))
            if parts is not None and parts.rest is not None and parts.rode.id in self.skip_units:
                self.stats.inc(stat.UNITS_PLANNED, len(units))
                self.submit_units(key, account_id, (parts.rest, *units[1:]), planned=True, expires_at=expires_at,
                                  replaces=(units[0],))
                return
        self.submit_units(key, account_id, units, expires_at=expires_at)

    async def ride(self, key: str, account_id: str, units: Sequence[Unit], body: bytes, metrics: tuple[str, ...],
                   expires_at: float) -> bool:
        """A media planned as ``units`` whose page nested ``body`` (its insights of ``metrics``):
        write the records of the metrics that rode, submit what is left of its call and its
        follow-ups. False: the nested answer cannot stand for its call (finished or owed
        already, or not that call's): the caller submits ``units`` as usual."""
        plain, follow_ups = units[0], tuple(units[1:])
        parts = split(plain, metrics)
        if parts is None or plain.id in self.skip_units or plain.id in self.owed_units:
            return False            # asked one by one (what an earlier attempt finished is left out)
        try:
            records = flatten(body, plain.ctx, run_id=self.run_id, harvested_at=self.harvested_at,
                              observed_on=self.observed_on)
        except (DecodeError, GraphError):
            return False
        self.stats.inc(stat.UNITS_PLANNED, len(units))
        self.stats.inc(stat.MEDIA_NESTED)
        rode = plain if parts.rest is None else parts.rode      # the page answered the whole call, or part of it
        self.asked(self.kind(key, rode), rode)
        if rode.id not in self.skip_units:
            await self.ledger.written(InsightsJob(self, key, account_id, rode), records)
        if parts.rest is None:
            self.stats.inc(stat.UNITS_DONE)
            self.submit_units(key, account_id, follow_ups, planned=True, expires_at=expires_at)
        else:
            self.submit_units(key, account_id, (parts.rest, *follow_ups), planned=True, expires_at=expires_at,
                              replaces=(plain,))
        return True

    def plan_once(self, media_id: str) -> bool:
        """Whether this media is planned now: False if this run planned it already."""
        number = int(media_id)
        if number in self.planned_media:
            return False
        self.planned_media.add(number)
        return True


class Listed(NamedTuple):
    """A media seen only on a page, failed without a call of its own (a collaboration post
    whose creator is not harvested): what its failure is reported by."""
    account_id: str
    label: str


class Job(ScheduledJob, Protocol):
    """A job of a harvest: what the scheduler runs, and what its being given up means."""

    def gave_up(self, decision: Decision) -> None: ...


class InsightsJob:
    """One insights call. ``follow_ups`` are the calls that only make sense if this one answers
    (a media's breakdown calls after its plain one): asked after it, never when it is skipped.
    ``expires_at``: until when the API keeps what it asks for (an owed unit expires then).
    ``replaces``: the planned units this one asks in the place of, less metrics the API refused
    (checkpointed with it, so a resumed run finds them finished)."""

    priority = PRIORITY_INSIGHTS
    probe: Kind | None = None
    """Out as a probe of its kind (:mod:`harvester.plan.probes`)."""
    _kind: Kind | None = None

    def __init__(self, ctx: JobContext, key: str, account_id: str, unit: Unit, follow_ups: tuple[Unit, ...] = (),
                 *, expires_at: float | None = None, replaces: tuple[Unit, ...] = ()):
        self.ctx, self.key, self.account_id, self.unit = ctx, key, account_id, unit
        self.follow_ups, self.expires_at, self.replaces = follow_ups, expires_at, replaces
        self.label = unit.label
        if follow_ups:
            self.priority = PRIORITY_CHAIN      # its follow-ups wait for it

    async def __call__(self, flight: Flight | None = None) -> Usage | None:
        ctx = self.ctx
        left, gone = ctx.leave_out_learned(self.key, self.unit)     # learned while it was queued
        if gone and left is not None:
            self.replaces, self.unit = (*self.replaces, self.unit), left
        try:
            reply = await ctx.get(self.key, self.unit.path, self.unit.params, flight)
        except HarvesterError as error:
            if self.probe is not None and decide(error).action in (Action.RETRY, Action.THROTTLE):
                ctx.probes.stalled(self)            # another token's call of the kind probes meanwhile
            raise
        ctx.asked(self.kind(), self.unit)                           # answered: its metrics are the API's
        ctx.refusals.answered(*self.wanted())
        ctx.probes.ended(self)
        records = flatten(reply.body, self.unit.ctx, run_id=ctx.run_id, harvested_at=ctx.harvested_at,
                          observed_on=ctx.observed_on)
        await ctx.ledger.written(self, records)
        ctx.stats.inc(stat.UNITS_DONE)
        ctx.submit_units(self.key, self.account_id, self.follow_ups, planned=True, expires_at=self.expires_at)
        return reply.usage

    def kind(self) -> Kind:
        """The kind of its object, worked out once (a unit asked less some metrics keeps its object)."""
        if self._kind is None:
            self._kind = self.ctx.kind(self.key, self.unit)
        return self._kind

    def wanted(self) -> tuple[Kind, tuple[str, ...]]:
        """Its kind, and the metrics it asks less those learned refused for the kind since."""
        kind = self.kind()
        dropped = self.ctx.refusals.dropped(kind)
        metrics = metrics_of(self.unit)
        return kind, tuple(m for m in metrics if m not in dropped) if dropped else metrics

    def gave_up(self, decision: Decision) -> None:
        self._gave_up(decision)
        self.ctx.probes.ended(self)

    def _gave_up(self, decision: Decision) -> None:
        ctx = self.ctx
        if decision.action is Action.FAIL_TOKEN:
            ctx.stats.inc(stat.UNITS_FAILED_TOKEN, 1 + len(self.follow_ups))
        elif decision.action is Action.SKIP:
            ctx.refusals.answered(*self.wanted(), data=False)    # about the object: no metric refused
            ctx.stats.skipped_answer(decision)
            ctx.ledger.refused(self.account_id, self.replaces)
            for unit in (self.unit, *self.follow_ups):
                ctx.ledger.skipped(self.account_id, unit.label, decision, unit)
        elif decision.action is Action.REFUSE and self._refused(decision):
            return
        else:
            ctx.ledger.failed(self, decision)
            # They may still answer: each has its own attempts.
            ctx.submit_units(self.key, self.account_id, self.follow_ups, planned=True, expires_at=self.expires_at)


    def _refused(self, decision: Decision) -> bool:
        """The API refused metrics of this unit, naming them: record each for this object with the
        API's words, count it towards learning its kind, and ask the rest again at once (the
        follow-ups of only those metrics are left out). False: it cannot be saved that way (the
        words name no metric asked, or ``[metrics] on_refused = "fail"``): the unit fails."""
        ctx = self.ctx
        metrics = refused_metrics(decision.message, metrics_of(self.unit))
        if not metrics or not ctx.refusals.drop:
            return False
        ctx.stats.skipped_answer(decision)      # an answer about the unit, not an error of the run
        ctx.stats.inc(stat.UNITS_REFUSED)
        kind = self.kind()
        for metric in metrics:
            ctx.stats.refuse(msgspec.structs.replace(
                Outcome.of(self.account_id, self.label, decision, f"metric {metric} refused"),
                metric=metric, kind=kind.label()))
            learned = ctx.refusals.refused(kind, metric, decision.message, ctx.now,
                                           conclusive=bool(decision.listed) and metric not in decision.listed)
            if learned is not None:
                ctx.ledger.learned(learned)
        self._new_metrics(decision.listed)
        follow_ups = tuple(f for f in self.follow_ups if without(f, metrics) is not None)
        ctx.ledger.refused(self.account_id, [f for f in self.follow_ups if f not in follow_ups])
        left = without(self.unit, metrics)
        if left is None:
            ctx.ledger.refused(self.account_id, (*self.replaces, self.unit))
            ctx.submit_units(self.key, self.account_id, follow_ups, planned=True, expires_at=self.expires_at)
        else:
            ctx.probes.admit(InsightsJob(ctx, self.key, self.account_id, left, follow_ups, expires_at=self.expires_at,
                                         replaces=(*self.replaces, self.unit)), now=True)
        return True


    def _new_metrics(self, listed: tuple[str, ...]) -> None:
        """Metrics the API lists as valid ("must be one of") that the catalog does not know: told
        once per run, so that a user learns of a new metric the day it appears."""
        level = self.unit.ctx.object_type
        known = catalog.metric
        new = [n for n in listed if known(level, n) is None and catalog.deprecated(level, n) is None]
        if new and self.ctx.stats.warn_once(f"new/{level}/{','.join(new)}", (
                f"the API lists {level} metrics the catalog does not know: {', '.join(new)} "
                f"(harvester does not ask them yet)")):
            log.warning(self.ctx.stats.api_warnings[-1])


class AccountJob:
    """The account node, then its insights units over each window (the run's own, and any an
    earlier run owes) and the first page of ``/media`` and ``/stories``."""

    priority = PRIORITY_ACCOUNT

    def __init__(self, ctx: JobContext, account_id: str, key: str, windows: Sequence[Window],
                 owed: Sequence[str] = ()):
        self.ctx, self.account_id, self.key, self.windows, self.owed = ctx, account_id, key, windows, owed
        self.label = f"account {account_id}"

    async def __call__(self, flight: Flight | None = None) -> Usage | None:
        ctx = self.ctx
        reply = await ctx.get(self.key, self.account_id, {"fields": ACCOUNT_FIELDS}, flight)
        node = decode_account(reply.body)
        await ctx.ledger.objects(self.account_id, [(f"accounts/{self.account_id}/{ctx.day}", AccountRecord(
            account_id=self.account_id, day=ctx.day, **{f: getattr(node, f) for f in _ACCOUNT_COPIED},
            run_id=ctx.run_id, harvested_at=ctx.harvested_at))])
        seen: set[str] = set()
        units = []
        for window in self.windows:
            for unit in plan.account_units(self.account_id, node.followers_count, window, ctx.selection, ctx.now):
                if unit.id not in seen:
                    seen.add(unit.id)
                    units.append(unit)
        settled = ctx.settled_units([u.id for u in units if u.ctx.until is not None]) \
            if ctx.settled_units is not None else ()
        for unit in units:
            if unit.id in settled:
                ctx.stats.inc(stat.UNITS_SETTLED)       # its days are final and an earlier run has them
            else:
                ctx.submit_units(self.key, self.account_id, (unit,))
        for owed_id in self.owed:
            ctx.ledger.settled(owed_id, self.account_id)
        if ctx.selection.media:
            bound = _page_bound(node.media_count)
            for edge in ("media", "stories"):
                ctx.submit(PageJob(ctx, self.account_id, self.key, edge, bound if edge == "media" else STORY_PAGES,
                                   username=node.username))
        return reply.usage

    def gave_up(self, decision: Decision) -> None:
        _discovery_gave_up(self, decision)


Riding = tuple[Sequence[Unit], bytes, float]
"""A media whose insights its page nested: its planned units, the nested body, its expiry."""


class PageJob:
    """One page of an edge; the next one follows it. ``bound``: the most pages followed (pages
    of :data:`PAGE_LIMIT` media: smaller pages count as parts of one, ``used`` so far).
    ``nest``: whether this page may ask its media's insights nested (``JobContext.expansion``
    decides, once per page); ``limit``: media asked (None: the most, or the token's nested size)."""

    priority = PRIORITY_PAGE

    def __init__(self, ctx: JobContext, account_id: str, key: str, edge: str, bound: int,
                 next_url: str | None = None, seen: frozenset[str] = frozenset(), number: int = 1,
                 children: bool = True, username: str | None = None, *, nest: bool = True,
                 limit: int | None = None, used: float = 0.0):
        self.ctx, self.account_id, self.key, self.edge, self.bound = ctx, account_id, key, edge, bound
        self.username = username
        """The account's own name: a media another name created is a collaboration post."""
        self.next_url, self.seen, self.number = next_url, seen, number
        self.children = children and edge == "media"
        """Whether this page asks the albums' children (dropped after a refusal)."""
        self.nest = nest and edge == "media" and ctx.expansion is not None
        self.limit, self.used = limit, used
        self.ask: PageAsk | None = None
        self._nested: dict[str, bytes] | None = None
        self.label = f"account {account_id} /{edge} page {number}"

    async def __call__(self, flight: Flight | None = None) -> Usage | None:
        ctx = self.ctx
        if self.nest and self.ask is None and ctx.expansion is not None:
            self.nest = False                   # decided once: a retry asks what the first attempt asked
            self.ask = ctx.expansion.ask(self.key, ctx.login_of(self.key))
        path = f"{self.account_id}/{self.edge}"
        nested = self._count_nested if self.ask is not None else None
        if self.next_url:
            url = self.next_url if self.edge != "media" and self.limit is None else \
                _asking(self.next_url, self._fields(), str(self._size()))
            reply = await ctx.follow(self.key, url, path, flight, nested=nested)
        else:
            reply = await ctx.get(self.key, path, {"fields": self._fields(), "limit": str(self._size())}, flight,
                                  nested=nested)
        if self.ask is not None and self._nested is None:
            self._count_nested(reply)           # not counted for the costs (none measured)
        usage, page = reply.usage, decode_media_page(reply.body)
        del reply
        if self.ask is not None and ctx.expansion is not None:
            ctx.expansion.answered(self.key)
            ctx.stats.inc(stat.PAGES_NESTED)
        for reason in page.rejected:
            ctx.ledger.failed(self, _refused(f"{self.label}: {reason}"))
        objects, riding = self._plan(page.data)
        ctx.stats.inc(f"discovered/{self.edge}", len(page.data))
        self._next(page)
        del page        # a page job waiting on a commit (the sink's backpressure) holds no page
        await ctx.ledger.objects(self.account_id, objects)
        await self._ride(riding)
        return usage

    def _size(self) -> int:
        return self.ask.limit if self.ask is not None else self.limit or MEDIA_PAGE_LIMIT

    def _fields(self) -> str:
        fields = STORY_FIELDS if self.edge == "stories" else \
            MEDIA_FIELDS if self.children else MEDIA_FIELDS_WITHOUT_CHILDREN
        return fields if self.ask is None else f"{fields},{insights_field(self.ask.metrics)}"

    def _count_nested(self, reply: Reply) -> int:
        """The media insights the page's answer nests (kept for :meth:`_ride`)."""
        self._nested = decode_nested_insights(reply.body)
        return len(self._nested)

    def _plan(self, items: Sequence[MediaItem]) -> tuple[list[tuple[str, Record]], list[Riding]]:
        """Plan the page's media (their units go to the scheduler); their records, to be written
        before any of those units runs (the units start once this job awaits), and the media whose
        insights the page nested (units, nested body, expiry), to be written after them."""
        ctx = self.ctx
        fresh = []
        for item in items:
            if item.username and self.username and item.username != self.username:
                ctx.collab(item.id, self.account_id, self.username, item.username)   # its creator's to ask
            elif ctx.plan_once(item.id):
                posted = parse_iso(item.timestamp) if item.timestamp else None
                fresh.append((item, posted, "STORY" if self.edge == "stories" else item.media_product_type))
            else:
                ctx.stats.inc(stat.MEDIA_DUPLICATE)
        objects: list[tuple[str, Record]] = [(f"media/{item.id}", self._record(item, product))
                                             for item, _, product in fresh]
        due = ctx.refresh.due([(item.id, posted, product) for item, posted, product in fresh]) \
            if ctx.refresh is not None else [True] * len(fresh)
        delivered = ctx.delivered([item.id for item, _, product in fresh if product == "STORY"]) \
            if ctx.delivered is not None else set()
        unshared = ctx.not_shared([item.id for item, _, _ in fresh]) if ctx.not_shared is not None and fresh \
            else set()
        if ctx.expansion is not None and self.edge == "media":
            ctx.expansion.listed(self.key, sum(due), len(items))
        riding: list[Riding] = []
        for (item, posted, product), is_due in zip(fresh, due, strict=True):
            if not is_due:
                ctx.stats.inc(stat.MEDIA_NOT_DUE)
                continue
            if item.id in delivered:
                ctx.stats.inc("media/webhook_delivered")     # its final values are stored already
                continue
            if item.id in unshared:
                ctx.stats.inc(stat.MEDIA_NOT_SHARED)
            units = plan.media_units(self.account_id, item.id, item.media_type, product, posted,
                                     ctx.selection, ctx.now, ctx.login_of(self.key), shared=item.id not in unshared)
            ctx.ledger.media_planned((item.id, self.account_id, product),
                                     [u.id for u in units if u.id not in ctx.skip_units])
            expires_at = plan.media_expires_at(product, posted, ctx.now)
            if units and self._nested and item.id in self._nested:
                riding.append((units, self._nested[item.id], expires_at))
            else:
                ctx.submit_media(self.key, self.account_id, units, expires_at)
        self._nested = None
        return objects, riding

    async def _ride(self, riding: list[Riding]) -> None:
        """The media whose insights the page nested: their records, then what is left of their calls."""
        ctx, ask = self.ctx, self.ask
        for units, body, expires_at in riding:
            if ask is None or not await ctx.ride(self.key, self.account_id, units, body, ask.metrics, expires_at):
                ctx.submit_media(self.key, self.account_id, units, expires_at)

    def _record(self, item: MediaItem, product: str | None) -> MediaRecord:
        ctx = self.ctx
        ids: tuple[str, ...] | None
        types: tuple[str, ...] | None
        if item.children is not None:
            children = [c for c in item.children.data if is_graph_id(c.id)]
            ids, types = tuple(c.id for c in children), tuple(c.media_type or "" for c in children)
        elif self.children or self.edge == "stories" or item.media_type != "CAROUSEL_ALBUM":
            ids = types = ()                                # asked, none: not an album
        else:
            ids = types = None                              # an album whose children were refused
        return MediaRecord(
            media_id=item.id, account_id=self.account_id, **{f: getattr(item, f) for f in _MEDIA_COPIED},
            media_product_type=product, children_ids=ids, children_types=types,
            run_id=ctx.run_id, harvested_at=ctx.harvested_at)

    def _next(self, page) -> None:
        nxt = page.paging.next if page.paging else None
        if not nxt or not page.data:
            return
        cursor = page.paging.cursors.after if page.paging.cursors and page.paging.cursors.after else None
        marks = {nxt} | ({f"cursor:{cursor}"} if cursor else set())
        if marks & self.seen:
            self.ctx.stats.inc(stat.PAGING_REPEATED)
            return
        used = self.used + self._size() / MEDIA_PAGE_LIMIT
        if used >= self.bound - 1e-9:
            self.ctx.stats.inc(stat.PAGING_BOUNDED)
            self.ctx.ledger.failed(self, _refused(
                f"{self.label}: paging stopped after {self.number} pages, more than the account's media "
                f"count allows"))
            return
        self.ctx.submit(PageJob(self.ctx, self.account_id, self.key, self.edge, self.bound, nxt,
                                self.seen | marks, self.number + 1, username=self.username, limit=self.limit,
                                used=used))

    def gave_up(self, decision: Decision) -> None:
        if decision.action is not Action.FAIL_TOKEN and (self.ask is not None or too_large(decision)):
            self._smaller_or_plain(decision)
            return
        if self.children and decision.action is not Action.FAIL_TOKEN:
            # One media that refuses ``children`` fails its whole page: the page is asked again
            # without it (its albums' children unknown), never lost.
            self.ctx.stats.inc(stat.PAGES_WITHOUT_CHILDREN)
            self._again(children=False)
            return
        _discovery_gave_up(self, decision)

    def _smaller_or_plain(self, decision: Decision) -> None:
        """A page too large is asked again at half its size; a page whose nested insights failed
        is asked again without them (its media one by one), never lost."""
        ctx, ask = self.ctx, self.ask
        if ask is not None and ctx.expansion is not None:
            if too_large(decision):
                size = ctx.expansion.smaller(self.key, ask)
                ctx.stats.inc(stat.PAGES_SMALLER)
                self._again(nest=size is not None)
            else:
                ctx.expansion.failed(self.key, ask, decision)
                ctx.stats.inc(stat.PAGES_NESTED_FAILED)
                self._again(nest=False)
            return
        if self._size() <= 1:
            _discovery_gave_up(self, decision)
            return
        ctx.stats.inc(stat.PAGES_SMALLER)
        self._again(limit=self._size() // 2)

    def _again(self, *, children: bool | None = None, nest: bool = False, limit: int | None = None) -> None:
        """This page asked again: without children, nested again (at the token's size) or not."""
        self.ctx.submit(PageJob(self.ctx, self.account_id, self.key, self.edge, self.bound, self.next_url,
                                self.seen, self.number, children=self.children if children is None else children,
                                username=self.username, nest=nest, limit=limit or self.limit, used=self.used))


def _discovery_gave_up(job: AccountJob | PageJob, decision: Decision) -> None:
    """A discovery call ended without data: nothing of it to checkpoint."""
    if decision.action is Action.FAIL_TOKEN:
        job.ctx.stats.inc(stat.UNITS_FAILED_TOKEN)     # the token's accounts are reported failed once
    elif decision.action is Action.SKIP:
        job.ctx.stats.skipped_answer(decision)
        job.ctx.ledger.skipped(job.account_id, job.label, decision)
    else:
        job.ctx.ledger.failed(job, decision)


def _asking(url: str, fields: str, limit: str) -> str:
    """``paging.next`` repeats the ``fields`` and ``limit`` of the page before: each page asks
    what it decides (children again, so a refusal costs only its own page's retry; its insights
    nested or not, at its size)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    if dict(query).get("fields") == fields and dict(query).get("limit") == limit:
        return url
    query = [(k, v) for k, v in query if k not in ("fields", "limit")] + [("fields", fields), ("limit", limit)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _page_bound(media_count: int | None) -> int:
    """Pages ``/media`` may take: what ``media_count`` implies, with slack (no count: 10,000 media)."""
    count = 10_000 if media_count is None or media_count < 0 else media_count
    return math.ceil(count / int(PAGE_LIMIT) * PAGE_SLACK) + EXTRA_PAGES


def _refused(reason: str) -> Decision:
    """What the API sent cannot be used, and asking again would not change it."""
    return Decision(Action.FAIL, reason)
