"""Discovery jobs: the account node, then every page of ``/media`` and ``/stories``.

Each job is one API call; what it finds becomes more jobs (the insights units of the planner, the
next page). Pages are followed through the API's own ``paging.next`` URL with its access token
removed (the client does that), and paging stops when a cursor repeats.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import plan
from .days import parse_iso
from .graph.wire import decode_account, decode_media_page

if TYPE_CHECKING:
    from .harvest import Run

ACCOUNT_FIELDS = "id,username,followers_count,media_count"
MEDIA_FIELDS = "id,media_type,media_product_type,timestamp"
PAGE_LIMIT = "100"

#: Lower runs first within a token: finish what was found before fetching the next page, so the
#: queue holds about one page of work per account instead of the whole world.
PRIORITY_INSIGHTS, PRIORITY_PAGE, PRIORITY_ACCOUNT = 0, 1, 2


class AccountJob:
    priority = PRIORITY_ACCOUNT

    def __init__(self, run: Run, account_id: str, key: str):
        self.run, self.account_id, self.key = run, account_id, key
        self.label = f"account {account_id}"

    async def __call__(self):
        reply = await self.run.get(self.key, self.account_id, {"fields": ACCOUNT_FIELDS})
        node = decode_account(reply.body)
        for unit in plan.account_units(self.account_id, node.followers_count, self.run.window,
                                       self.run.selection, self.run.now):
            self.run.submit_units(self.key, self.account_id, (unit,))
        if self.run.selection.media:
            for edge in ("media", "stories"):
                self.run.submit(PageJob(self.run, self.account_id, self.key, edge))
        return reply.usage


class PageJob:
    priority = PRIORITY_PAGE

    def __init__(self, run: Run, account_id: str, key: str, edge: str, next_url: str | None = None,
                 seen: frozenset[str] = frozenset()):
        self.run, self.account_id, self.key, self.edge = run, account_id, key, edge
        self.next_url, self.seen = next_url, seen
        self.label = f"account {account_id} /{edge} page {len(seen) + 1}"

    async def __call__(self):
        if self.next_url:
            reply = await self.run.follow(self.key, self.next_url)
        else:
            reply = await self.run.get(self.key, f"{self.account_id}/{self.edge}",
                                       {"fields": MEDIA_FIELDS, "limit": PAGE_LIMIT})
        page = decode_media_page(reply.body)
        last_harvested = self.run.last_harvested([item.id for item in page.data])
        for item in page.data:
            posted = parse_iso(item.timestamp) if item.timestamp else None
            product = "STORY" if self.edge == "stories" else item.media_product_type
            if not self.run.media_due(last_harvested.get(item.id), posted, product):
                self.run.stats.inc("media/not_due")
                continue
            self.run.submit_units(self.key, self.account_id, plan.media_units(
                self.account_id, item.id, item.media_type, product, posted, self.run.selection, self.run.now))
        self.run.stats.inc(f"discovered/{self.edge}", len(page.data))
        nxt = page.paging.next if page.paging else None
        cursor = page.paging.cursors.after if page.paging and page.paging.cursors else nxt
        if nxt and page.data and cursor not in self.seen:
            self.run.submit(PageJob(self.run, self.account_id, self.key, self.edge, nxt,
                                    self.seen | {cursor}))
        return reply.usage
