"""What each fetch or crawl did: the feed row's state after it and a line of fetch history.

A failure that matters to people (a feed gone, or failing FAILING_NOTICE_AFTER times in a
row) is written as a feed event in the same transaction; community.notices turns events
into the public moderation log and the blogger's message. The aggregator never writes
the log or the outbox itself: it does not know who the blogger is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .db import feed_events, feeds, fetches, reading, utcnow, writing
from .models import POLLED_STATUSES, Feed

FAILING_NOTICE_AFTER = 5  # failures in a row before the blogger is told (once per run of failures)


@dataclass(frozen=True)
class FetchRecord:
    """One attempt, as the fetch history and the feed row will show it."""

    started_at: datetime
    duration_s: float
    http_status: int | None = None
    bytes: int = 0
    not_modified: bool = False
    new_posts: int = 0
    updated_posts: int = 0
    final_url: str = ""
    error: str = ""
    kind: str = "fetch"  # 'fetch', 'crawl' (a blog crawled by the spiders) or 'fulltext'


def success_values(
    feed: Feed,
    record: FetchRecord,
    *,
    next_check_at: datetime,
    interval_s: int,
    etag: str,
    last_modified: str,
    body_hash: str | None = None,
    title: str = "",
    site_url: str = "",
    new_url: str | None = None,
    warning: str = "",
) -> dict:
    """The feed row's new values after a fetch that worked (200 or 304)."""
    values = dict(
        status="active", error_count=0, last_error=warning, last_error_at=record.started_at if warning else None,
        etag=etag[:500], last_modified=last_modified[:100], next_check_at=next_check_at,
        interval_s=interval_s, last_checked_at=record.started_at, last_success_at=record.started_at,
        updated_at=utcnow(),
    )
    if body_hash is not None:
        values["body_hash"] = body_hash
    if title and not feed.title:
        values["title"] = title[:500]
    if site_url and not feed.site_url:
        values["site_url"] = site_url
    if new_url:
        values["url"] = new_url
        values["previous_url"] = feed.url
    return values


def record_success(engine: Engine, feed: Feed, record: FetchRecord, **schedule) -> None:
    """The fetch worked (200 or 304): reset errors, store validators and schedule."""
    with writing(engine) as conn:
        record_success_in(conn, feed, record, success_values(feed, record, **schedule))


def record_success_in(conn: Connection, feed: Feed, record: FetchRecord, values: dict) -> None:
    # The worker's claim ends with the fetch it was for (see feed_store.claim_due).
    conn.execute(sa.update(feeds).where(feeds.c.id == feed.id).values(**values, claimed_by="", claimed_until=None))
    _insert_fetch(conn, feed.id, record)


def record_failure(
    engine: Engine,
    feed: Feed,
    record: FetchRecord,
    *,
    next_check_at: datetime,
    status: str,
) -> None:
    """The fetch failed: count it, keep the last good posts, schedule the retry.

    A feed that becomes gone here gets a feed event (the public moderation log's line and
    its blogger's message, made by community.notices), in this same transaction: one line per time it
    goes, not per failed fetch. So does a feed reaching FAILING_NOTICE_AFTER failures in a row.
    """
    with writing(engine) as conn:
        before = conn.execute(sa.select(feeds.c.status, feeds.c.error_count, feeds.c.title, feeds.c.url)
                              .where(feeds.c.id == feed.id)).first()
        if before is not None:
            _failure_notices(conn, feed.id, before, status, record)
        conn.execute(
            sa.update(feeds)
            .where(feeds.c.id == feed.id)
            .values(
                status=status, error_count=feeds.c.error_count + 1, last_error=record.error,
                claimed_by="", claimed_until=None,
                last_error_at=record.started_at, last_checked_at=record.started_at,
                next_check_at=next_check_at, updated_at=utcnow(),
            )
        )
        _insert_fetch(conn, feed.id, record)


def _failure_notices(conn: Connection, feed_id: int, before, status: str, record: FetchRecord) -> None:
    label = (before.title or before.url)[:500]
    failures = before.error_count + 1
    if status == "gone" and before.status != "gone":
        kind = "gone"
    elif failures == FAILING_NOTICE_AFTER and before.status in POLLED_STATUSES:
        kind = "failing"
    else:
        return
    conn.execute(sa.insert(feed_events).values(at=record.started_at, kind=kind, feed_id=feed_id, label=label,
                                               detail=record.error or "", failures=failures))


def _insert_fetch(conn: Connection, feed_id: int, r: FetchRecord) -> None:
    conn.execute(
        sa.insert(fetches).values(
            feed_id=feed_id, kind=r.kind, started_at=r.started_at, duration_ms=int(r.duration_s * 1000),
            http_status=r.http_status, bytes=r.bytes, not_modified=r.not_modified, new_posts=r.new_posts,
            updated_posts=r.updated_posts, final_url=r.final_url[:2048], error=r.error,
        )
    )


def insert_fetch(engine: Engine, feed_id: int, record: FetchRecord) -> None:
    """A row in a feed's fetch history that leaves the feed's own state alone (full-text runs)."""
    with writing(engine) as conn:
        _insert_fetch(conn, feed_id, record)


def fetch_history(engine: Engine, feed_id: int, limit: int = 50) -> list[dict]:
    query = (
        sa.select(fetches).where(fetches.c.feed_id == feed_id)
        .order_by(fetches.c.started_at.desc(), fetches.c.id.desc()).limit(limit)
    )
    with reading(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def record_crawl_success(
    engine: Engine, feed: Feed, record: FetchRecord, *, next_check_at: datetime, interval_s: int,
    title: str = "", crawled_all: bool = False,
) -> None:
    """A crawl of a blog worked: like a fetch that worked, plus whether it walked the whole blog."""
    values = success_values(feed, record, next_check_at=next_check_at, interval_s=interval_s, etag="",
                            last_modified="", title=title, warning=record.error)
    if crawled_all:
        values["crawled_all_at"] = record.started_at
    with writing(engine) as conn:
        record_success_in(conn, feed, record, values)
