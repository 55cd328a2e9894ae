"""SQL for posts: saving a feed's batch, reading posts back, changing one.

Uniqueness is the database's job: a post is unique per (feed_id, key). Every change the
search index must see (new, updated, hidden, deleted) takes a new number from the
CHANGE_COUNTER counter inside the same transaction. Moderators' changes (hide, feature...)
go through community.moderation, which calls change_post_in and logs them.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Callable, Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from .db import CHANGE_COUNTER, feed_events, feeds, next_counter, posts, reading, utcnow, writing
from .errors import NotFound
from .models import PUBLIC_STATUSES, Feed, Post, SaveReport
from .parse import norm_url

FUTURE_SKEW = timedelta(minutes=5)  # a clock a little ahead is not a future-dated post

CHUNK = 500  # keys per IN (...) query: well under every database's parameter limit


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
                report = save_posts_in(conn, feed, batch, now)
                if then is not None:
                    then(conn, report)
                return report
        except IntegrityError:
            # Another writer inserted one of these keys between our read and write
            # (possible on PostgreSQL); a second pass sees it and updates instead.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def save_posts_in(conn: Connection, feed: Feed, batch: Sequence[Post], now: datetime) -> SaveReport:
    """save_posts() in the caller's transaction (the pipeline stores several feeds in one)."""
    cols = (posts.c.id, posts.c.key, posts.c.guid, posts.c.url_norm, posts.c.content_hash,
            posts.c.hidden, posts.c.deleted)
    norms = {p.key: norm_url(p.url) if p.url else "" for p in batch}
    # This feed's posts with one of the batch's keys or URLs, in one query a chunk: a feed
    # costs a few statements, and on ordinary feeds statements are most of storing's cost.
    found: dict[int, dict] = {}
    for part in _chunks(batch):
        urls = [norms[p.key] for p in part if norms[p.key]]
        match = posts.c.key.in_([p.key for p in part])
        if urls:
            match = sa.or_(match, posts.c.url_norm.in_(urls))
        for row in conn.execute(sa.select(*cols).where(posts.c.feed_id == feed.id, match)):
            found[row.id] = dict(row._mapping)
    keys = {p.key for p in batch}
    by_key: dict[str, dict] = {row["key"]: row for row in found.values() if row["key"] in keys}
    unmatched = {norms[p.key] for p in batch if p.key not in by_key and norms[p.key]}
    by_url: dict[str, list[dict]] = {}
    for row in sorted(found.values(), key=lambda r: r["id"]):
        if row["url_norm"] in unmatched:
            by_url.setdefault(row["url_norm"], []).append(row)

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
    """One feed event per new post whose feed dated it in the future, in the transaction that
    stores it (community.notices makes it a public moderation-log line). Posts of blogs the
    site does not show are left out: the public log must not name them."""
    if not clamped:
        return
    status = conn.execute(sa.select(feeds.c.status).where(feeds.c.id == feed_id)).scalar()
    if status not in PUBLIC_STATUSES:
        return
    ids = {}
    for part in _chunks([r["key"] for r in clamped]):
        ids.update(conn.execute(sa.select(posts.c.key, posts.c.id)
                                .where(posts.c.feed_id == feed_id, posts.c.key.in_(part))).all())
    conn.execute(sa.insert(feed_events), [dict(
        at=now, kind="date_clamped", feed_id=feed_id, post_id=ids.get(r["key"]),
        label=(r["title"] or r["url"] or "untitled post")[:500],
        detail=f"the feed dated it {r['published_claimed']:%Y-%m-%d %H:%M} UTC, after we first saw it; "
               f"shown as published when first seen ({now:%Y-%m-%d %H:%M} UTC)") for r in clamped])


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


def change_post_in(conn: Connection, post_id: int, **values) -> None:
    """Change a post with a new change number, in the caller's transaction. Raises NotFound."""
    if conn.execute(sa.select(posts.c.id).where(posts.c.id == post_id)).first() is None:
        raise NotFound(f"no post with id {post_id}")
    values["change_seq"] = next_counter(conn, CHANGE_COUNTER)
    conn.execute(sa.update(posts).where(posts.c.id == post_id).values(**values))


def delete_post(engine: Engine, post_id: int, now: datetime | None = None) -> None:
    """Leave only a tombstone: content wiped, key kept so refetches skip the entry."""
    with writing(engine) as conn:
        change_post_in(conn, post_id, deleted=True, deleted_at=now or utcnow(), content_html="", summary="",
                       title="", author="", tags="[]")


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
