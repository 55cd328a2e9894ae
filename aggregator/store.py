"""SQL for feeds, posts and fetch history (SQLAlchemy Core, dialect-neutral).

Uniqueness is the database's job: a post is unique per (feed_id, key). Every
change the search index must see (new, updated, hidden, deleted) takes a new
number from the ``post_change`` counter inside the same transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Callable, Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from .db import feeds, fetches, moderation_log, next_counter, posts, reading, recommendations, utcnow, writing
from .errors import NotFound
from .models import POLLED_STATUSES, PUBLIC_STATUSES, Feed, Post, SaveReport
from .parse import norm_url

CHANGE_COUNTER = "post_change"
FUTURE_SKEW = timedelta(minutes=5)  # a clock a little ahead is not a future-dated post
CHUNK = 500  # keys per IN (...) query: well under every database's parameter limit


def feed_from_row(row) -> Feed:
    m = row._mapping
    return Feed(**{k: m[k] for k in Feed.__dataclass_fields__ if k in m})


# --- feeds ---------------------------------------------------------------------


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


def pollable_feeds(engine: Engine) -> list[Feed]:
    query = sa.select(feeds).where(feeds.c.status.in_(POLLED_STATUSES), feeds.c.kind == "feed").order_by(feeds.c.id)
    with reading(engine) as conn:
        return [feed_from_row(r) for r in conn.execute(query)]


def url_taken(engine: Engine, url: str, other_than: int) -> bool:
    with reading(engine) as conn:
        return conn.execute(
            sa.select(feeds.c.id).where(feeds.c.url == url, feeds.c.id != other_than)
        ).first() is not None


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
    conn.execute(sa.update(feeds).where(feeds.c.id == feed.id).values(**values))
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

    A feed that becomes gone here gets a line in the public moderation log (actor
    "system"), and its blogger a message, in this same transaction: one line per time it
    goes, not per failed fetch. So does a feed reaching outbox.FAILING_AFTER failures in a row.
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
                last_error_at=record.started_at, last_checked_at=record.started_at,
                next_check_at=next_check_at, updated_at=utcnow(),
            )
        )
        _insert_fetch(conn, feed.id, record)


def _failure_notices(conn: Connection, feed_id: int, before, status: str, record: FetchRecord) -> None:
    from . import outbox

    label = before.title or before.url
    if status == "gone" and before.status != "gone":
        log_action(conn, "system", "feed_gone", target_type="blog", target_id=feed_id, target_label=label,
                   reason=record.error or "the feed stopped answering")
        outbox.feed_failing(conn, feed_id, gone=True, failures=before.error_count + 1, error=record.error)
    elif before.error_count + 1 == outbox.FAILING_AFTER and before.status in POLLED_STATUSES:
        outbox.feed_failing(conn, feed_id, gone=False, failures=before.error_count + 1, error=record.error)


def _insert_fetch(conn: Connection, feed_id: int, r: FetchRecord) -> None:
    conn.execute(
        sa.insert(fetches).values(
            feed_id=feed_id, kind=r.kind, started_at=r.started_at, duration_ms=int(r.duration_s * 1000),
            http_status=r.http_status, bytes=r.bytes, not_modified=r.not_modified, new_posts=r.new_posts,
            updated_posts=r.updated_posts, final_url=r.final_url[:2048], error=r.error,
        )
    )


def fetch_history(engine: Engine, feed_id: int, limit: int = 50) -> list[dict]:
    query = (
        sa.select(fetches).where(fetches.c.feed_id == feed_id)
        .order_by(fetches.c.started_at.desc(), fetches.c.id.desc()).limit(limit)
    )
    with reading(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


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


# --- posts ---------------------------------------------------------------------


def content_hash(p: Post) -> str:
    parts = (p.title, p.url, p.author, p.content_html, "\x1f".join(p.tags))
    return sha256("\x00".join(parts).encode()).hexdigest()


def _chunks(seq: Sequence, n: int = CHUNK) -> Iterable[Sequence]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def save_posts(
    engine: Engine,
    feed: Feed,
    batch: Sequence[Post],
    now: datetime | None = None,
    then: Callable[[Connection, SaveReport], None] | None = None,
) -> SaveReport:
    """Insert new posts and update changed ones, in one transaction.

    * A post is found by its key; failing that, by its URL within the feed when the
      GUIDs cannot tell otherwise (so a feed whose GUIDs break does not duplicate).
    * An updated entry is updated in place: first_seen and published stay.
    * A hidden or deleted post stays as it is: the tombstone wins over the feed.
    * A post whose URL another feed already has is stored, linked to the first
      (duplicate_of), and listed once.
    * ``published`` is the feed's claim, but never later than first_seen, so a
      missing or future date cannot lift a post above today's.

    ``then(conn, report)`` runs in the same transaction (the pipeline records the
    fetch there, so a feed costs one commit, and posts and their fetch row land together).
    """
    now = now or utcnow()
    for attempt in (1, 2):
        try:
            with writing(engine) as conn:
                report = _save(conn, feed, batch, now)
                if then is not None:
                    then(conn, report)
                return report
        except IntegrityError:
            # Another writer inserted one of these keys between our read and write
            # (possible on PostgreSQL); a second pass sees it and updates instead.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _save(conn: Connection, feed: Feed, batch: Sequence[Post], now: datetime) -> SaveReport:
    cols = (posts.c.id, posts.c.key, posts.c.guid, posts.c.url_norm, posts.c.content_hash,
            posts.c.hidden, posts.c.deleted)
    by_key: dict[str, dict] = {}
    keys = [p.key for p in batch]
    for part in _chunks(keys):
        for row in conn.execute(sa.select(*cols).where(posts.c.feed_id == feed.id, posts.c.key.in_(part))):
            by_key[row.key] = dict(row._mapping)

    norms = {p.key: norm_url(p.url) if p.url else "" for p in batch}
    unmatched = [norms[p.key] for p in batch if p.key not in by_key and norms[p.key]]
    by_url: dict[str, list[dict]] = {}
    for part in _chunks(unmatched):
        for row in conn.execute(sa.select(*cols).where(posts.c.feed_id == feed.id, posts.c.url_norm.in_(part))):
            by_url.setdefault(row.url_norm, []).append(dict(row._mapping))

    claimed: set[int] = {row["id"] for row in by_key.values()}
    inserts, updates = [], []
    unchanged = skipped = 0
    # Oldest first, so ids and first_seen order follow the feed's own order.
    for p in sorted(batch, key=lambda p: p.published or now):
        digest = content_hash(p)
        existing = by_key.get(p.key)
        if existing is None:
            for row in by_url.get(norms[p.key], []):
                if row["id"] not in claimed and (not p.guid or not row["guid"] or p.guid == row["guid"]):
                    existing = row
                    break
        if existing is not None:
            claimed.add(existing["id"])
            if existing["deleted"]:
                skipped += 1
            elif existing["content_hash"] == digest and existing["key"] == p.key:
                unchanged += 1
            else:
                updates.append((existing, p, digest))
            continue
        inserts.append((p, digest))

    total_changes = len(inserts) + len(updates)
    seq = next_counter(conn, CHANGE_COUNTER, total_changes) if total_changes else 0

    # Cross-posts: the same article already listed from another feed.
    originals: dict[str, int] = {}
    wanted = sorted({norms[p.key] for p, _ in inserts if norms[p.key]})
    for part in _chunks(wanted):
        query = (
            sa.select(posts.c.id, posts.c.url_norm)
            .where(posts.c.url_norm.in_(part), posts.c.feed_id != feed.id)
            .where(posts.c.duplicate_of.is_(None), posts.c.deleted == sa.false())
            .order_by(posts.c.id)
        )
        for row in conn.execute(query):
            originals.setdefault(row.url_norm, row.id)

    rows = []
    for p, digest in inserts:
        claimed_date = p.published
        published = now if claimed_date is None or claimed_date > now + FUTURE_SKEW else min(claimed_date, now)
        rows.append(dict(
            feed_id=feed.id, key=p.key, guid=p.guid[:2048], url=p.url[:2048], url_norm=norms[p.key][:2048],
            title=p.title[:1000], author=p.author[:500], published=published, published_claimed=claimed_date,
            first_seen=now, updated_at=now, content_html=p.content_html, summary=p.summary,
            tags=json.dumps(list(p.tags)), summary_only=p.summary_only, content_hash=digest,
            change_seq=seq, duplicate_of=originals.get(norms[p.key]),
        ))
        seq += 1
    if rows:
        conn.execute(sa.insert(posts), rows)
        _log_clamped_dates(conn, feed.id, [r for r in rows if r["published_claimed"] is not None
                                           and r["published_claimed"] > now + FUTURE_SKEW], now)

    for existing, p, digest in updates:
        conn.execute(
            sa.update(posts).where(posts.c.id == existing["id"]).values(
                key=p.key, guid=p.guid[:2048], url=p.url[:2048], url_norm=norms[p.key][:2048],
                title=p.title[:1000], author=p.author[:500], content_html=p.content_html, summary=p.summary,
                tags=json.dumps(list(p.tags)), summary_only=p.summary_only, content_hash=digest,
                updated_at=now, change_seq=seq,
            )
        )
        seq += 1
    return SaveReport(new=len(inserts), updated=len(updates), unchanged=unchanged, skipped=skipped)


def _log_clamped_dates(conn: Connection, feed_id: int, clamped: list[dict], now: datetime) -> None:
    """One public moderation-log line (actor "system") per new post whose feed dated it in the
    future, in the transaction that stores it. Posts of blogs the site does not show are left out
    of the public log."""
    if not clamped:
        return
    status = conn.execute(sa.select(feeds.c.status).where(feeds.c.id == feed_id)).scalar()
    if status not in PUBLIC_STATUSES:
        return
    ids = {}
    for part in _chunks([r["key"] for r in clamped]):
        ids.update(conn.execute(sa.select(posts.c.key, posts.c.id)
                                .where(posts.c.feed_id == feed_id, posts.c.key.in_(part))).all())
    for r in clamped:
        log_action(conn, "system", "date_clamped", target_type="post", target_id=ids.get(r["key"]),
                   target_label=r["title"] or r["url"] or "untitled post",
                   reason=f"the feed dated it {r['published_claimed']:%Y-%m-%d %H:%M} UTC, after we first saw it; "
                          f"shown as published when first seen ({now:%Y-%m-%d %H:%M} UTC)")


POST_FIELDS = (
    posts.c.id, posts.c.feed_id, posts.c.url, posts.c.title, posts.c.author, posts.c.published,
    posts.c.first_seen, posts.c.updated_at, posts.c.content_html, posts.c.summary, posts.c.tags,
    posts.c.guid, posts.c.hidden, posts.c.hidden_reason, posts.c.duplicate_of, posts.c.summary_only,
    posts.c.featured_at, posts.c.recommendations,
)


def post_dict(row) -> dict:
    """A post row as a dict, its tags decoded from JSON."""
    d = dict(row._mapping)
    d["tags"] = json.loads(d.get("tags") or "[]")
    return d


def list_posts(
    engine: Engine, *, feed_id: int | None = None, limit: int = 50, include_hidden: bool = False
) -> list[dict]:
    """Newest first by first_seen; hidden, deleted and cross-posted copies left out."""
    query = sa.select(*POST_FIELDS).where(posts.c.deleted == sa.false())
    if feed_id is not None:
        query = query.where(posts.c.feed_id == feed_id)
    else:
        query = query.where(posts.c.duplicate_of.is_(None))
    if not include_hidden:
        query = query.where(posts.c.hidden == sa.false())
    query = query.order_by(posts.c.first_seen.desc(), posts.c.id.desc()).limit(limit)
    with reading(engine) as conn:
        return [post_dict(r) for r in conn.execute(query)]


def get_post(engine: Engine, post_id: int) -> dict:
    with reading(engine) as conn:
        row = conn.execute(sa.select(*POST_FIELDS, posts.c.deleted).where(posts.c.id == post_id)).first()
    if row is None:
        raise NotFound(f"no post with id {post_id}")
    return post_dict(row)


def _change_post(engine: Engine, post_id: int, **values) -> None:
    with writing(engine) as conn:
        change_post_in(conn, post_id, **values)


def change_post_in(conn: Connection, post_id: int, **values) -> None:
    """Change a post with a new change number, in the caller's transaction. Raises NotFound."""
    if conn.execute(sa.select(posts.c.id).where(posts.c.id == post_id)).first() is None:
        raise NotFound(f"no post with id {post_id}")
    values["change_seq"] = next_counter(conn, CHANGE_COUNTER)
    conn.execute(sa.update(posts).where(posts.c.id == post_id).values(**values))


def hide_post(engine: Engine, post_id: int, reason: str, now: datetime | None = None) -> None:
    """Take a post off every listing; the row stays so the next fetch does not bring it back."""
    _change_post(engine, post_id, hidden=True, hidden_reason=reason, hidden_at=now or utcnow())


def unhide_post(engine: Engine, post_id: int) -> None:
    _change_post(engine, post_id, hidden=False, hidden_reason="", hidden_at=None)


def delete_post(engine: Engine, post_id: int, now: datetime | None = None) -> None:
    """Leave only a tombstone: content wiped, key kept so refetches skip the entry."""
    _change_post(engine, post_id, deleted=True, deleted_at=now or utcnow(), content_html="", summary="",
                 title="", author="", tags="[]")


# --- crawls and full text (the spiders) ------------------------------------------


def crawls_due(engine: Engine, now: datetime, limit: int | None = None) -> list[Feed]:
    """Blogs without a usable feed (kind 'crawl') whose next crawl is due."""
    return _due(engine, "crawl", now, limit)


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


def post_urls(engine: Engine, feed_id: int) -> set[str]:
    """The normalised URLs of every post this feed has, tombstones included."""
    with reading(engine) as conn:
        return {r.url_norm for r in conn.execute(
            sa.select(posts.c.url_norm).where(posts.c.feed_id == feed_id, posts.c.url_norm != ""))}


def post_urls_elsewhere(engine: Engine, feed_id: int, host: str) -> set[str]:
    """Normalised URLs on this host (as norm_url writes it) that other feeds already have."""
    prefix = host.lower().removeprefix("www.")
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"
    with reading(engine) as conn:
        return {r.url_norm for r in conn.execute(
            sa.select(posts.c.url_norm).where(posts.c.feed_id != feed_id,
                                             posts.c.url_norm.like(escaped, escape="\\")))}


FULLTEXT_RETRY = timedelta(days=1)  # a page that failed is tried again after a day...
FULLTEXT_RETRY_WINDOW = timedelta(days=7)  # ...while its post is less than a week old
FULLTEXT_FIELDS = (posts.c.id, posts.c.feed_id, posts.c.url, posts.c.guid, posts.c.title, posts.c.author,
                   posts.c.published, posts.c.summary, posts.c.fulltext_at, posts.c.fulltext_error)


def _fulltext_wanted(now: datetime):
    """Posts whose page should be read: summary-only entries ('auto') or every entry ('on')."""
    mode, kind = feeds.c.fulltext, feeds.c.kind  # the query joins feeds
    never_tried_or_changed = sa.or_(posts.c.fulltext_at.is_(None), posts.c.fulltext_at < posts.c.updated_at)
    retry = sa.and_(posts.c.fulltext_error != "", posts.c.fulltext_at < now - FULLTEXT_RETRY,
                    posts.c.first_seen > now - FULLTEXT_RETRY_WINDOW)
    return sa.and_(
        kind == "feed",
        sa.or_(mode == "on", sa.and_(mode == "auto", posts.c.summary_only == sa.true())),
        sa.or_(never_tried_or_changed, retry),
    )


def _readable():
    return sa.and_(posts.c.deleted == sa.false(), posts.c.hidden == sa.false(), posts.c.url != "",
                   posts.c.duplicate_of.is_(None))


def fulltext_pending_feeds(engine: Engine, now: datetime) -> list[int]:
    """Feeds (kind 'feed', status polled) with posts waiting for their full text."""
    query = (
        sa.select(posts.c.feed_id).distinct()
        .join(feeds, feeds.c.id == posts.c.feed_id)
        .where(feeds.c.status.in_(POLLED_STATUSES), _readable(), _fulltext_wanted(now))
        .order_by(posts.c.feed_id)
    )
    with reading(engine) as conn:
        return [r.feed_id for r in conn.execute(query)]


def fulltext_candidates(
    engine: Engine, feed_id: int, now: datetime, *, limit: int, again: bool = False,
    post_ids: Sequence[int] = (),
) -> list[dict]:
    """Posts of one feed to take the full text of, newest first.

    By default those waiting for it; ``again`` takes every readable post (re-extract on
    demand); ``post_ids`` takes exactly those posts of the feed.
    """
    query = (sa.select(*FULLTEXT_FIELDS).join_from(posts, feeds, feeds.c.id == posts.c.feed_id)
             .where(posts.c.feed_id == feed_id, _readable()))
    if post_ids:
        query = query.where(posts.c.id.in_(list(post_ids)))
    elif not again:
        query = query.where(_fulltext_wanted(now))
    query = query.order_by(posts.c.first_seen.desc(), posts.c.id.desc()).limit(limit)
    with reading(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def save_fulltext(engine: Engine, post: Post, now: datetime | None = None) -> bool:
    """Replace a stored post's content with the (sanitised) text taken from its page.

    content_hash is left as the feed's: a refetch that brings the same summary leaves the
    full text alone, and one that brings a changed entry replaces it (and asks for the
    full text again). Returns False when the post is gone or tombstoned.
    """
    now = now or utcnow()
    with writing(engine) as conn:
        row = conn.execute(sa.select(posts.c.content_html, posts.c.deleted).where(posts.c.id == post.id)).first()
        if row is None or row.deleted:
            return False
        values = dict(fulltext_at=now, fulltext_error="")
        if row.content_html != post.content_html:
            values.update(content_html=post.content_html, summary=post.summary, updated_at=now,
                          change_seq=next_counter(conn, CHANGE_COUNTER))
        conn.execute(sa.update(posts).where(posts.c.id == post.id).values(**values))
    return "content_html" in values


def fulltext_failed(engine: Engine, post_id: int, error: str, now: datetime | None = None) -> None:
    """Remember that a post's page gave no article, and why (retried later; see FULLTEXT_RETRY)."""
    with writing(engine) as conn:
        conn.execute(sa.update(posts).where(posts.c.id == post_id).values(
            fulltext_at=now or utcnow(), fulltext_error=error[:2000] or "failed"))


def insert_fetch(engine: Engine, feed_id: int, record: FetchRecord) -> None:
    """A row in a feed's fetch history that leaves the feed's own state alone (full-text runs)."""
    with writing(engine) as conn:
        _insert_fetch(conn, feed_id, record)


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


def feature_post(engine: Engine, post_id: int, by: str = "", now: datetime | None = None) -> None:
    """Make a post an editor's pick: shown in the labelled picks slot, not ranked higher."""
    _change_post(engine, post_id, featured_at=now or utcnow(), featured_by=by)


def unfeature_post(engine: Engine, post_id: int) -> None:
    _change_post(engine, post_id, featured_at=None, featured_by="")


# --- the public moderation log ------------------------------------------------------------


def log_action(conn: Connection, actor: str, action: str, *, target_type: str = "", target_id: int | None = None,
               target_label: str = "", reason: str = "", at: datetime | None = None) -> None:
    """One line of the public moderation log, in the caller's transaction (so an action and
    its record commit together). actor is a moderator's e-mail address, or "system"."""
    conn.execute(sa.insert(moderation_log).values(
        at=at or utcnow(), actor=actor[:320], action=action[:64], target_type=target_type[:32],
        target_id=target_id, target_label=(target_label or "")[:500], reason=reason or ""))


def moderation_entries(engine: Engine, *, limit: int = 50, offset: int = 0) -> list[dict]:
    query = (sa.select(moderation_log).order_by(moderation_log.c.at.desc(), moderation_log.c.id.desc())
             .limit(limit).offset(offset))
    with reading(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def recommend_post(engine: Engine, post_id: int, reader: str, ip_hash: str, now: datetime | None = None) -> bool:
    """Count one reader's recommendation; False when they had already recommended it.

    The unique (post, reader) constraint decides, not a check before the insert, so
    concurrent clicks from one reader count once.
    """
    with writing(engine) as conn:
        stmt = insert_for(engine)(recommendations).values(post_id=post_id, reader=reader, ip_hash=ip_hash,
                                                        created_at=now or utcnow())
        inserted = conn.execute(stmt.on_conflict_do_nothing(index_elements=["post_id", "reader"])
                                .returning(recommendations.c.id)).first()
        if inserted is None:
            return False
        conn.execute(sa.update(posts).where(posts.c.id == post_id)
                     .values(recommendations=posts.c.recommendations + 1))
        next_counter(conn, CHANGE_COUNTER)  # pages showing the count are rendered again
    return True


def insert_for(engine: Engine):
    """INSERT with ON CONFLICT for the dialect in use (both support RETURNING)."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def expire_poll_salts(engine: Engine, now: datetime | None = None) -> int:
    """Delete the per-poll address salt of every poll whose closing time has come, so the
    stored voter hashes can no longer be tied to an address (the methodology box's promise).
    The worker runs this every few minutes; pages also call it. Returns how many."""
    from .db import polls

    now = now or utcnow()
    with writing(engine) as conn:
        return conn.execute(sa.update(polls).where(polls.c.ip_salt != "", polls.c.closes_at.is_not(None),
                                                   polls.c.closes_at <= now).values(ip_salt="")).rowcount
