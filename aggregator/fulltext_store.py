"""SQL for full text: which posts want their page read, and storing what the spider took.

The fulltext spider (spiders/fulltext.py) reads a post's own page when its feed gives only
a summary ('auto') or always ('on'); a page that gave no article is retried later.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .db import CHANGE_COUNTER, feeds, next_counter, posts, reading, utcnow, writing
from .models import POLLED_STATUSES, Post

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
