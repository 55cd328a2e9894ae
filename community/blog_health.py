"""What the moderators' pages read: counts for the dashboard, every blog with its health,
a blog's fetch history for its chart, picks and hidden posts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from aggregator.db import feeds, fetches, moderation_log, posts, reading, submissions, utcnow
from aggregator.db import outbox as outbox_table
from aggregator.errors import NotFound
from aggregator.models import PUBLIC_STATUSES


def _feed(conn: Connection, feed_id: int):
    row = conn.execute(sa.select(feeds).where(feeds.c.id == feed_id)).first()
    if row is None:
        raise NotFound(f"there is no blog number {feed_id}")
    return row


def counts(engine: Engine) -> dict:
    with reading(engine) as conn:
        by_status = dict(conn.execute(sa.select(feeds.c.status, sa.func.count()).group_by(feeds.c.status)).all())
        pending = conn.execute(sa.select(sa.func.count()).select_from(submissions)
                               .where(submissions.c.status == "pending")).scalar()
        hidden = conn.execute(sa.select(sa.func.count()).select_from(posts).where(
            posts.c.hidden == sa.true(), posts.c.deleted == sa.false())).scalar()
        featured = conn.execute(sa.select(sa.func.count()).select_from(posts).where(
            posts.c.featured_at.is_not(None), posts.c.hidden == sa.false())).scalar()
        unsent = conn.execute(sa.select(sa.func.count()).select_from(outbox_table)
                              .where(outbox_table.c.status == "queued")).scalar()
        since = utcnow() - timedelta(days=7)
        logged = conn.execute(sa.select(sa.func.count()).select_from(moderation_log)
                              .where(moderation_log.c.at >= since)).scalar()
    return {"pending": pending, "by_status": by_status, "hidden": hidden, "featured": featured,
            "unsent": unsent, "logged_week": logged}


def blogs(engine: Engine) -> list[dict]:
    """Every blog, whatever its status, for the moderators' list: troubled ones first."""
    order = sa.case({"erroring": 0, "gone": 1, "pending": 2, "paused": 3, "active": 4}, value=feeds.c.status, else_=5)
    query = sa.select(feeds.c.id, feeds.c.title, feeds.c.url, feeds.c.site_url, feeds.c.status, feeds.c.kind,
                      feeds.c.error_count, feeds.c.last_error, feeds.c.last_success_at, feeds.c.next_check_at,
                      feeds.c.category).order_by(order, sa.func.lower(feeds.c.title), feeds.c.id)
    with reading(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def blog(engine: Engine, feed_id: int) -> dict:
    with reading(engine) as conn:
        row = _feed(conn, feed_id)
        n = conn.execute(sa.select(sa.func.count()).select_from(posts).where(
            posts.c.feed_id == feed_id, posts.c.deleted == sa.false())).scalar()
    return dict(row._mapping, posts=n, public=row.status in PUBLIC_STATUSES)


def history(engine: Engine, feed_id: int, since: datetime) -> list[dict]:
    """The blog's fetches and crawls since `since`, oldest first, for the health chart."""
    query = (sa.select(fetches.c.started_at, fetches.c.http_status, fetches.c.error, fetches.c.kind,
                       fetches.c.not_modified, fetches.c.new_posts)
             .where(fetches.c.feed_id == feed_id, fetches.c.kind.in_(("fetch", "crawl")), fetches.c.started_at >= since)
             .order_by(fetches.c.started_at, fetches.c.id))
    with reading(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def fetch_ok(row: dict) -> bool:
    """Whether a fetches row records a success. Failures have no HTTP status, an error status, or
    (a body that was no feed) a 200 with an error; a success may carry a warning in `error`
    too ("malformed feed ... (kept N entries)"), which is how the two are told apart."""
    status = row.get("http_status")
    if status is None or not (200 <= status < 300 or status == 304):
        return False
    error = row.get("error") or ""
    return not error or row.get("kind") == "crawl" or "(kept " in error


POST_COLUMNS = (posts.c.id, posts.c.feed_id, posts.c.title, posts.c.url, posts.c.first_seen, posts.c.hidden,
                posts.c.hidden_reason, posts.c.hidden_at, posts.c.featured_at, posts.c.featured_by,
                feeds.c.title.label("blog"), feeds.c.status.label("blog_status"))


def posts_for_moderators(engine: Engine, limit: int = 50) -> dict[str, list[dict]]:
    """Editor's picks, hidden posts and the newest posts of public blogs."""
    base = sa.select(*POST_COLUMNS).join(feeds, feeds.c.id == posts.c.feed_id).where(posts.c.deleted == sa.false())
    with reading(engine) as conn:
        featured = conn.execute(base.where(posts.c.featured_at.is_not(None), posts.c.hidden == sa.false())
                                .order_by(posts.c.featured_at.desc()).limit(limit)).all()
        hidden = conn.execute(base.where(posts.c.hidden == sa.true())
                              .order_by(posts.c.hidden_at.desc(), posts.c.id.desc()).limit(limit)).all()
        recent = conn.execute(base.where(posts.c.hidden == sa.false(), posts.c.duplicate_of.is_(None),
                                         feeds.c.status.in_(PUBLIC_STATUSES))
                              .order_by(posts.c.first_seen.desc(), posts.c.id.desc()).limit(limit)).all()
    return {name: [dict(r._mapping) for r in rows]
            for name, rows in (("featured", featured), ("hidden", hidden), ("recent", recent))}


def post_state(engine: Engine, post_id: int) -> dict | None:
    """A post's moderation state (for the forms on its page)."""
    with reading(engine) as conn:
        row = conn.execute(sa.select(*POST_COLUMNS).join(feeds, feeds.c.id == posts.c.feed_id)
                           .where(posts.c.id == post_id)).first()
    return dict(row._mapping) if row is not None else None
