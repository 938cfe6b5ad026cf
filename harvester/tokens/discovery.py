"""Accounts found from a token (``[[discover]]``): the calls, how their answers are read, and the
retries outside a harvest.

A Facebook Login user token lists its Pages with ``GET /me/accounts`` (every page of the cursor
paging); each Page's ``instagram_business_account{id,username}`` is an account (a Page without
one is left out). An Instagram Login token is the account itself: ``GET /me?fields=user_id,
username`` on graph.instagram.com (``user_id`` is the professional account's id; ``id`` if the
answer has no ``user_id``). In a harvest, :class:`harvester.run.discover.DiscoverJob` makes these
calls through the scheduler like any other (they count against the token's budget); outside one
(``harvester tokens``, ``validate --discover``), :func:`discover` makes them with the same retries.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from ..config.model import Login
from ..errors import DecodeError
from ..graph.wire import ErrorObject, _data, is_graph_id
from ..schedule.retry import Retry

if TYPE_CHECKING:
    from ..graph.client import GraphClient

PAGES_FIELDS = "instagram_business_account{id,username}"
ME_FIELDS = "user_id,username"
PAGE_LIMIT = "100"
MAX_PAGES = 100
"""Pages of /me/accounts followed at most (10,000 Pages): an endless chain is cut there."""
_PAGED = re.compile(r"(me|[0-9]{1,32})/accounts")


class Found(msgspec.Struct, frozen=True):
    """An account a token reaches."""

    account_id: str
    username: str | None = None


class _Link(msgspec.Struct):
    id: str
    username: str | None = None


class _Page(msgspec.Struct):
    id: str | None = None
    instagram_business_account: _Link | None = None


class _Paging(msgspec.Struct):
    next: str | None = None


class _Pages(msgspec.Struct):
    data: list[_Page] = []
    paging: _Paging | None = None
    error: ErrorObject | None = None


class _Me(msgspec.Struct):
    id: str | None = None
    user_id: str | None = None
    username: str | None = None
    error: ErrorObject | None = None


_PAGES = msgspec.json.Decoder(_Pages)
_ME = msgspec.json.Decoder(_Me)


def first_call(login: Login) -> tuple[str, dict[str, str]]:
    """(path, params) of a token's first discovery call."""
    if login == "instagram":
        return "me", {"fields": ME_FIELDS}
    return "me/accounts", {"fields": PAGES_FIELDS, "limit": PAGE_LIMIT}


def read(login: Login, body: bytes) -> tuple[list[Found], str | None]:
    """The accounts an answer names, and the next page's URL (None: the last page)."""
    if login == "instagram":
        me = _data(_ME, body, "/me")
        account_id = me.user_id or me.id
        if not is_graph_id(account_id):
            raise DecodeError("/me answered no user_id (the Instagram account id); expected an Instagram "
                              "Login token", complete=True)
        assert account_id is not None
        return [Found(account_id, me.username)], None
    pages = _data(_PAGES, body, "/me/accounts")
    found = [Found(p.instagram_business_account.id, p.instagram_business_account.username)
             for p in pages.data if p.instagram_business_account is not None
             and is_graph_id(p.instagram_business_account.id)]
    return found, pages.paging.next if pages.paging and pages.data else None


def paged_path(client: GraphClient, url: str) -> str:
    """The edge a ``paging.next`` of /me/accounts pages (the API writes the user's id for ``me``);
    anything else is refused."""
    leads = client.paged_path(url)
    if leads is None or not _PAGED.fullmatch(leads):
        raise DecodeError("paging.next of /me/accounts leads off the edge", complete=True)
    return leads


async def discover(client: GraphClient, token: str, login: Login, retry: Retry | None = None) -> list[Found]:
    """Every account a token reaches (outside a harvest: ``validate --discover``, ``tokens``), each
    page asked again as a run asks again (``retry``): a transient fault costs a wait, not the answer."""
    retry = retry or Retry()
    path, params = first_call(login)

    async def first() -> tuple[list[Found], str | None]:
        return read(login, (await client.get(path, params, token)).body)

    async def page(url: str) -> tuple[list[Found], str | None]:
        return read(login, (await client.follow(url, token, path=paged_path(client, url))).body)

    found, url = await retry(first)
    pages = 1
    while url is not None and pages < MAX_PAGES:
        more, url = await retry(functools.partial(page, url))
        found += more
        pages += 1
    return unique(found)


def unique(found: Sequence[Found]) -> list[Found]:
    """Each account once, in the order first found."""
    return list({f.account_id: f for f in reversed(found)}.values())[::-1]
