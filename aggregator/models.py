"""The records that flow through the pipeline: small frozen dataclasses shared by all.

A stage takes one and returns a new one (``dataclasses.replace``); nothing
mutates a record it was given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from hashlib import sha256

FEED_STATUSES = ("pending", "active", "erroring", "paused", "gone", "rejected")
FEED_KINDS = ("feed", "crawl")  # a feed we fetch, or a blog without a usable feed that spiders crawl
FULLTEXT_MODES = ("auto", "on", "off")
# Feeds in these states are polled by the scheduler.
POLLED_STATUSES = ("active", "erroring")
# Blogs whose posts readers see (pages, feeds out, search): not pending, not rejected.
PUBLIC_STATUSES = ("active", "erroring", "paused", "gone")


@dataclass(frozen=True)
class Feed:
    id: int
    url: str
    title: str = ""
    site_url: str = ""
    category: str = ""
    kind: str = "feed"  # 'feed', or 'crawl' for blogs crawled without a usable feed
    status: str = "active"
    etag: str = ""
    last_modified: str = ""
    body_hash: str = ""
    error_count: int = 0
    last_error: str = ""
    interval_s: int = 3600
    next_check_at: datetime | None = None
    last_success_at: datetime | None = None
    created_at: datetime | None = None
    content_selector: str = ""  # CSS selector for post content, overriding the spiders' guess
    fulltext: str = "auto"  # take each post's text from its page: 'auto' (summary-only entries), 'on', 'off'
    crawled_all_at: datetime | None = None  # when a crawl last walked the whole blog

    @property
    def label(self) -> str:
        """How errors name this feed: its id and URL."""
        return f"feed {self.id} ({self.url})"


@dataclass(frozen=True)
class Post:
    feed_id: int
    guid: str  # the feed's id for the entry, or "" when it has none
    url: str
    title: str
    content_html: str  # raw after parse, clean after sanitize
    published: datetime | None = None  # the feed's claim, UTC; None when missing
    updated: datetime | None = None  # the feed's "updated" claim, UTC
    author: str = ""
    summary: str = ""  # plain text for listing pages, set by sanitize
    tags: tuple[str, ...] = ()
    content_type: str = "html"  # 'html' or 'text' (plain text is escaped and linkified)
    base_url: str = ""  # what relative URLs in content resolve against
    identity: str = ""  # set by parse: the per-feed identity the key is made from
    summary_only: bool = False  # the feed carried only a summary for this entry
    id: int | None = None  # set by post_store.save_posts

    @cached_property  # asked for a dozen times a post while saving; the post is frozen
    def key(self) -> str:
        """Stable identity across refetches; store and index both use it."""
        ident = self.identity or (f"g:{self.guid}" if self.guid else f"u:{self.url}")
        return sha256(f"{self.feed_id}|{ident}".encode()).hexdigest()


@dataclass(frozen=True)
class FetchResult:
    """What one HTTP exchange brought back."""

    url: str  # the URL asked for
    final_url: str  # after redirects
    status: int  # HTTP status of the final response (200 or 304)
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    etag: str = ""
    last_modified: str = ""
    permanent_redirect: bool = False  # every hop was 301/308: the feed has moved
    redirects: tuple[str, ...] = ()  # each hop's Location, in order
    bytes_read: int = 0  # bytes on the wire (compressed)
    duration_s: float = 0.0
    max_age_s: int | None = None  # Cache-Control max-age / Expires, when given

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True)
class ParsedFeed:
    """The parse stage's output: feed-level facts plus the entries as Posts."""

    title: str
    site_url: str
    posts: tuple[Post, ...]
    ttl_s: int | None = None  # RSS <ttl>, in seconds
    problem: str = ""  # a malformed-feed warning worth recording on the feed
    version: str = ""  # feedparser's format name, e.g. 'rss20', 'atom10'


@dataclass(frozen=True)
class SaveReport:
    """What post_store.save_posts did with one batch."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # tombstoned keys, or entries that collapsed into another
    new_ids: tuple[int, ...] = ()
