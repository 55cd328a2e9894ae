"""SQL for the feeds table: adding, reading, scheduling and changing the status of a feed.

A feed's fetch results are written by fetch_history, its posts by post_store. A status
change that shows or hides a blog renumbers its posts in the same transaction, so the
search index and the page cache follow (see set_feed_status_in).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .db import CHANGE_COUNTER, feeds, next_counter, posts, reading, utcnow, writing
from .errors import NotFound
from .models import POLLED_STATUSES, PUBLIC_STATUSES, Feed


def feed_from_row(row) -> Feed:
    m = row._mapping
    return Feed(**{k: m[k] for k in Feed.__dataclass_fields__ if k in m})


def add_feed(
    engine: Engine,
    url: str,
    *,
    title: str = "",
    site_url: str = "",
    category: str = "",
    status: str = "active",
    kind: str = "feed",
    now: datetime | None = None,
) -> tuple[Feed, bool]:
    """Insert a feed, due at once. Returns (feed, created); an existing URL is returned as is."""
    with writing(engine) as conn:
        return add_feed_in(conn, url, title=title, site_url=site_url, category=category, status=status,
                           kind=kind, now=now)


def add_feed_in(conn: Connection, url: str, *, title: str = "", site_url: str = "", category: str = "",
                status: str = "active", kind: str = "feed", now: datetime | None = None) -> tuple[Feed, bool]:
    """add_feed in the caller's transaction (a blogger's submission adds its feed and its record together)."""
    now = now or utcnow()
    row = conn.execute(sa.select(feeds).where(feeds.c.url == url)).first()
    if row is not None:
        return feed_from_row(row), False
    new_id = conn.execute(
        sa.insert(feeds).values(
            url=url, title=title[:500], site_url=site_url, category=category[:500], status=status,
            kind=kind, next_check_at=now, created_at=now, updated_at=now,
        )
    ).inserted_primary_key[0]
    row = conn.execute(sa.select(feeds).where(feeds.c.id == new_id)).one()
    return feed_from_row(row), True


def get_feed(engine: Engine, ref: str | int) -> Feed:
    """A feed by id or by URL. Raises NotFound."""
    with reading(engine) as conn:
        cond = feeds.c.url == str(ref)
        if isinstance(ref, int) or str(ref).isdigit():
            cond = sa.or_(feeds.c.id == int(ref), cond)
        row = conn.execute(sa.select(feeds).where(cond)).first()
    if row is None:
        raise NotFound(f"no feed with id or URL {ref!r}")
    return feed_from_row(row)


def list_feeds(engine: Engine) -> list[dict]:
    counts = (
        sa.select(posts.c.feed_id, sa.func.count().label("posts"))
        .where(posts.c.deleted == sa.false())
        .group_by(posts.c.feed_id)
        .subquery()
    )
    query = (
        sa.select(feeds, sa.func.coalesce(counts.c.posts, 0).label("posts"))
        .outerjoin(counts, counts.c.feed_id == feeds.c.id)
        .order_by(feeds.c.id)
    )
    with reading(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def feeds_due(engine: Engine, now: datetime, limit: int | None = None) -> list[Feed]:
    return _due(engine, "feed", now, limit)


def _due(engine: Engine, kind: str, now: datetime, limit: int | None) -> list[Feed]:
    """Polled feeds of this kind whose next check has come, the longest-waiting first."""
    query = (
        sa.select(feeds)
        .where(feeds.c.status.in_(POLLED_STATUSES), feeds.c.kind == kind)
        .where(sa.or_(feeds.c.next_check_at.is_(None), feeds.c.next_check_at <= now))
        .order_by(feeds.c.next_check_at, feeds.c.id)
    )
    if limit:
        query = query.limit(limit)
    with reading(engine) as conn:
        return [feed_from_row(r) for r in conn.execute(query)]


def claim_due(engine: Engine, kind: str, now: datetime, *, worker: str, lease_s: float, limit: int) -> list[Feed]:
    """Claim up to `limit` due feeds of this kind for `worker`, the longest-waiting first.

    A feed is claimable when due and not claimed, or when its claim has lapsed (the worker
    that took it died). On PostgreSQL the rows are locked with FOR UPDATE SKIP LOCKED, so
    workers claiming at the same instant take different feeds instead of waiting for each
    other; on SQLite the write transaction (BEGIN IMMEDIATE) already serialises claims. The
    claim is cleared by the fetch's own result (fetch_history)."""
    query = (
        sa.select(feeds.c.id)
        .where(feeds.c.status.in_(POLLED_STATUSES), feeds.c.kind == kind)
        .where(sa.or_(feeds.c.next_check_at.is_(None), feeds.c.next_check_at <= now))
        .where(sa.or_(feeds.c.claimed_until.is_(None), feeds.c.claimed_until < now))
        .order_by(feeds.c.next_check_at, feeds.c.id)
        .limit(limit)
    )
    if engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    with writing(engine) as conn:
        ids = list(conn.execute(query).scalars())
        if not ids:
            return []
        conn.execute(sa.update(feeds).where(feeds.c.id.in_(ids))
                     .values(claimed_by=worker[:200], claimed_until=now + timedelta(seconds=lease_s)))
        rows = conn.execute(sa.select(feeds).where(feeds.c.id.in_(ids))
                            .order_by(feeds.c.next_check_at, feeds.c.id)).all()
    return [feed_from_row(r) for r in rows]


def claims(engine: Engine, now: datetime) -> dict:
    """Feeds due now, and claims held (live) and lapsed, for `hustings status`."""
    due = sa.and_(feeds.c.status.in_(POLLED_STATUSES),
                  sa.or_(feeds.c.next_check_at.is_(None), feeds.c.next_check_at <= now))
    with reading(engine) as conn:
        n_due = conn.execute(sa.select(sa.func.count()).select_from(feeds).where(due)).scalar()
        held = conn.execute(sa.select(sa.func.count()).select_from(feeds)
                            .where(feeds.c.claimed_until >= now)).scalar()
        lapsed = conn.execute(sa.select(sa.func.count()).select_from(feeds)
                              .where(feeds.c.claimed_until < now)).scalar()
    return {"due": n_due, "claimed": held, "lapsed_claims": lapsed}


def crawls_due(engine: Engine, now: datetime, limit: int | None = None) -> list[Feed]:
    """Blogs without a usable feed (kind 'crawl') whose next crawl is due."""
    return _due(engine, "crawl", now, limit)


def pollable_feeds(engine: Engine) -> list[Feed]:
    query = sa.select(feeds).where(feeds.c.status.in_(POLLED_STATUSES), feeds.c.kind == "feed").order_by(feeds.c.id)
    with reading(engine) as conn:
        return [feed_from_row(r) for r in conn.execute(query)]


def url_taken(engine: Engine, url: str, other_than: int) -> bool:
    with reading(engine) as conn:
        return conn.execute(
            sa.select(feeds.c.id).where(feeds.c.url == url, feeds.c.id != other_than)
        ).first() is not None


def set_feed_status(engine: Engine, feed_id: int, status: str) -> None:
    with writing(engine) as conn:
        set_feed_status_in(conn, feed_id, status)


def set_feed_status_in(conn: Connection, feed_id: int, status: str, **values) -> str | None:
    """set_feed_status in the caller's transaction (a moderator's decision, its log line and its
    message commit together); `values` sets other columns too (next_check_at). Returns the
    status before, or None when there is no such feed."""
    before = conn.execute(sa.select(feeds.c.status).where(feeds.c.id == feed_id)).scalar()
    conn.execute(sa.update(feeds).where(feeds.c.id == feed_id).values(status=status, updated_at=utcnow(), **values))
    if before is not None and (before in PUBLIC_STATUSES) != (status in PUBLIC_STATUSES):
        # Its posts appear or disappear: give each a new change number so the
        # index sync (and the page cache) see them, in this same transaction.
        ids = list(conn.execute(sa.select(posts.c.id).where(posts.c.feed_id == feed_id).order_by(posts.c.id)).scalars())
        if ids:
            first = next_counter(conn, CHANGE_COUNTER, len(ids))
            conn.execute(sa.update(posts).where(posts.c.id == sa.bindparam("pid"))
                         .values(change_seq=sa.bindparam("seq")),
                         [{"pid": pid, "seq": first + i} for i, pid in enumerate(ids)])
        else:
            next_counter(conn, CHANGE_COUNTER)  # no posts yet, but the blog list changes: pages render again
    return before


def set_feed_options(engine: Engine, feed_id: int, **values) -> Feed:
    """Change a feed's content_selector, fulltext mode, title or category. Raises NotFound."""
    allowed = {"content_selector", "fulltext", "title", "category"}
    values = {k: v for k, v in values.items() if v is not None}
    if set(values) - allowed:
        raise ValueError(f"not a feed option: {sorted(set(values) - allowed)}")
    with writing(engine) as conn:
        if values:
            values["updated_at"] = utcnow()
            conn.execute(sa.update(feeds).where(feeds.c.id == feed_id).values(**values))
        row = conn.execute(sa.select(feeds).where(feeds.c.id == feed_id)).first()
    if row is None:
        raise NotFound(f"no feed with id {feed_id}")
    return feed_from_row(row)
