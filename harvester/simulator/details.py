"""A media's descriptive fields (caption, permalink, counts, URLs), pure functions of its id:
what ``/media`` pages, field expansion and the node itself answer."""

from __future__ import annotations

from typing import Protocol

import msgspec

from .posts import MediaInsights
from .spec import Account, Media

CDN = "https://scontent.example"
NO_CAPTION, LIKES_HIDDEN, COPYRIGHTED = 0.15, 0.1, 0.1
"""Shares of media without a caption, with hidden like counts, and of videos without
``media_url`` (copyrighted material, e.g. the audio of a reel)."""
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class Objects(Protocol):
    """What the fields are drawn from (a :class:`harvester.simulator.world.World`)."""

    def unit(self, *key: object) -> float: ...

    def child(self, parent: Media, number: int) -> Media: ...

    def account(self, index: int) -> Account: ...

    def insights(self, media: Media) -> MediaInsights: ...


class MediaDetails(msgspec.Struct, frozen=True):
    """A media's descriptive fields; None where the API omits the field for this media."""

    shortcode: str
    permalink: str | None
    """None for album children ("cannot be used on photos within albums")."""
    caption: str | None
    like_count: int | None
    """None for stories and children (the field is not theirs)."""
    likes_hidden: bool
    """The owner hid the like count: omitted from edges and expansions, answered on the node."""
    comments_count: int | None
    is_comment_enabled: bool | None
    media_url: str | None
    thumbnail_url: str | None
    """Videos only."""


def media_details(world: Objects, media: Media) -> MediaDetails:
    """The descriptive fields of any media, story or album child: pure functions of its id."""
    u = lambda *k: world.unit("details", media.id, *k)  # noqa: E731
    code = shortcode(media.id)
    video = media.media_type == "VIDEO"
    ext = "mp4" if video else "jpg"
    url: str | None = f"{CDN}/{media.id}.{ext}"
    if media.media_type == "CAROUSEL_ALBUM":
        url = f"{CDN}/{world.child(media, 0).id}.{'mp4' if world.child(media, 0).media_type == 'VIDEO' else 'jpg'}"
    elif video and media.child is None and u("copyright") < COPYRIGHTED:
        url = None
    thumbnail = f"{CDN}/{media.id}_thumb.jpg" if video else None
    if media.child is not None:
        return MediaDetails(code, None, None, None, False, None, None, url, thumbnail)
    account = world.account(media.account)
    if media.viewers is not None:       # a story: no caption, likes or comments
        link = f"https://www.instagram.com/stories/{account.username}/{media.id}"
        return MediaDetails(code, link, None, None, False, None, None, url, thumbnail)
    kind = "reel" if media.media_product_type == "REELS" else "p"
    caption = None if u("caption") < NO_CAPTION else \
        f"{media.media_type.lower().replace('_', ' ')} {media.ordinal} by @{account.username} #simulated"
    insights = world.insights(media)          # like_count and comments_count: the insights' likes and comments
    return MediaDetails(code, f"https://www.instagram.com/{kind}/{code}/", caption, insights.values["likes"],
                        u("hidden") < LIKES_HIDDEN, insights.values["comments"], insights.comments_on, url,
                        thumbnail)


def shortcode(media_id: str) -> str:
    """The media's shortcode: its id in Instagram's URL-safe base 64 alphabet."""
    n, out = int(media_id), ""
    while n:
        n, digit = divmod(n, 64)
        out = _B64[digit] + out
    return out or "A"
