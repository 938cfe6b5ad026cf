"""The job of a ``[[discover]]`` table inside a harvest: its calls (:mod:`harvester.tokens.discovery`
says what they are and how their answers read) made through the scheduler, page after page, and
what it found, or why it stopped, handed to the accounts (:class:`harvester.run.accounts.Accounts`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from ..config.model import Discover
from ..graph.policy import Decision
from ..graph.wire import Usage
from ..tokens.discovery import MAX_PAGES, Found, first_call, paged_path, read, unique
from .jobs import PRIORITY_ACCOUNT, JobContext

if TYPE_CHECKING:
    from ..graph.client import Reply
    from ..graph.hedge import Flight

PRIORITY_DISCOVER = PRIORITY_ACCOUNT + 1

Done = Callable[[int, list[Found], Decision | None], None]
"""What the Harvester is told when a table's discovery ends: its index, what it found, and the
decision that ended it early (None: every page was read)."""


class DiscoverJob:
    """One discovery call of a ``[[discover]]`` table; the next page follows it."""

    priority = PRIORITY_DISCOVER

    def __init__(self, ctx: JobContext, key: str, index: int, table: Discover, done: Done, *,
                 url: str | None = None, found: tuple[Found, ...] = (), number: int = 1):
        self.ctx, self.key, self.index, self.table, self.done = ctx, key, index, table, done
        self.url, self.found, self.number = url, found, number
        self.account_id = f"discover[{index}]"
        """No account yet: the table stands in for it in outcomes."""
        self.label = f"discover[{index}] ({table.token_name})" + (f" page {number}" if number > 1 else "")

    async def __call__(self, flight: Flight | None = None) -> Usage | None:
        ctx, login = self.ctx, self.table.login
        reply: Reply
        if self.url is None:
            path, params = first_call(login)
            reply = await ctx.get(self.key, path, params, flight)
        else:
            reply = await ctx.follow(self.key, self.url, paged_path(ctx.client_of(self.key), self.url), flight)
        more, url = read(login, reply.body)
        found = (*self.found, *more)
        ctx.stats.inc("discovered/accounts_seen", len(more))
        if url is not None and self.number < MAX_PAGES:
            ctx.submit(DiscoverJob(ctx, self.key, self.index, self.table, self.done, url=url, found=found,
                                   number=self.number + 1))
        else:
            self.done(self.index, unique(found), None)
        return reply.usage

    def gave_up(self, decision: Decision) -> None:
        if self.table.login == "facebook" and decision.code == 2500:
            decision = msgspec.structs.replace(decision, reason=f"{decision.reason}; an Instagram Login token has no "
                                                                f'/me/accounts: set login = "instagram"')
        self.done(self.index, unique(self.found), decision)
