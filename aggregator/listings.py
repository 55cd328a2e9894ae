"""What the pages read from the database: one function per question a page asks.

Every query is SQLAlchemy Core with bound parameters. "Visible" means what a
logged-out reader may see: not hidden, not a tombstone, not a cross-posted copy
(the first copy is listed), from a blog the site publishes (approved, not rejected
or still waiting for a moderator).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from . import images, ranking
from .db import CHANGE_COUNTER, counters, feeds, fetches, posts, reading
from .models import PUBLIC_STATUSES  # the blogs the site shows
from .post_store import post_dict

CANDIDATES = 600  # newest posts considered for the ranked pages (20 pages of 30)

_post_columns = (
    posts.c.id, posts.c.feed_id, posts.c.url, posts.c.title, posts.c.author, posts.c.published,
    posts.c.published_claimed, posts.c.first_seen, posts.c.updated_at, posts.c.summary, posts.c.tags,
    posts.c.featured_at, posts.c.recommendations,
    feeds.c.title.label("blog"), feeds.c.site_url.label("blog_url"),
)


def _visible():
    return sa.and_(
        posts.c.deleted == sa.false(),
        posts.c.hidden == sa.false(),
        posts.c.duplicate_of.is_(None),
        feeds.c.status.in_(PUBLIC_STATUSES),
    )


def site_version(engine: Engine) -> int:
    """Bumped by every change a page may show (posts new, changed, hidden, picked, recommended)."""
    with reading(engine) as conn:
        value = conn.execute(sa.select(counters.c.value).where(counters.c.name == CHANGE_COUNTER)).scalar()
    return int(value or 0)


def posts_by_id(engine: Engine, ids: list[int]) -> dict[int, dict]:
    if not ids:
        return {}
    query = sa.select(*_post_columns).join(feeds, feeds.c.id == posts.c.feed_id).where(_visible(), posts.c.id.in_(ids))
    with reading(engine) as conn:
        return {r.id: post_dict(r) for r in conn.execute(query)}


def ranked_candidates(engine: Engine, window_h: float, blog_ids: tuple[int, ...] | None = None
                      ) -> list[ranking.Candidate]:
    """Every post that could reach the ranked pages, and no more.

    Posts age from their own date (`published`, which the store never lets be later than
    first_seen), so the candidates are the CANDIDATES most recently published, plus older
    ones whose recommendations could lift them past the last of those: a post needs
    log10(1 + r) windows of head start, so nothing published more than log10(1 + most
    recommendations) windows before the oldest candidate can rank above it.

    The editor's picks in the front page's box are left out: they are shown above the
    ranked list. An older pick, beyond the box, is ranked like any post, so featuring a
    post never takes it off the front page. With `blog_ids` (a section's blogs), only their
    posts, picks included: a section has no picks box.
    """
    boxed = {p["id"] for p in editors_picks(engine)} if blog_ids is None else set()
    where = [_visible()] if blog_ids is None else [_visible(), posts.c.feed_id.in_(blog_ids)]
    with reading(engine) as conn:
        base = sa.select(posts.c.published).join(feeds, feeds.c.id == posts.c.feed_id).where(*where)
        cutoff = conn.execute(base.order_by(posts.c.published.desc()).limit(1).offset(CANDIDATES - 1)).scalar()
        if cutoff is not None:
            # The most any post has, hidden ones included: an upper bound is all the window
            # needs, and a bare max() is one step down ix_posts_recommendations (with the
            # visibility join it was a full scan, 13-20 ms at 10,000 posts).
            most = conn.execute(sa.select(sa.func.max(posts.c.recommendations))).scalar() or 0
            where.append(posts.c.published >= cutoff - timedelta(hours=window_h * math.log10(1 + most)))
        # Editor's picks are left out here, in Python, not with `featured_at IS NULL` in SQL:
        # SQLite (no ANALYZE statistics) then walked ix_posts_featured_at, which nearly every
        # post matches, and read every post instead of the date range (10,000 posts for
        # 1,566 candidates: about 10 ms more per uncached front page; docs/performance.md, Web).
        query = (
            sa.select(posts.c.id, posts.c.feed_id, posts.c.first_seen, posts.c.recommendations, posts.c.published)
            .join(feeds, feeds.c.id == posts.c.feed_id).where(*where)
        )
        return [ranking.Candidate(r.id, r.feed_id, r.first_seen, r.recommendations, r.published)
                for r in conn.execute(query) if r.id not in boxed]


def editors_picks(engine: Engine, limit: int = 3) -> list[dict]:
    query = (
        sa.select(*_post_columns).join(feeds, feeds.c.id == posts.c.feed_id)
        .where(_visible(), posts.c.featured_at.is_not(None))
        .order_by(posts.c.featured_at.desc(), posts.c.id.desc()).limit(limit)
    )
    with reading(engine) as conn:
        return [post_dict(r) for r in conn.execute(query)]


def newest(engine: Engine, *, page: int, per_page: int, blog_id: int | None = None) -> tuple[list[dict], bool]:
    """Latest first by the posts' own dates (never later than when we first saw them: an
    old back catalogue sorts by its age, not by the day its blog joined); and whether there
    is a next page."""
    query = sa.select(*_post_columns).join(feeds, feeds.c.id == posts.c.feed_id).where(_visible())
    if blog_id is not None:
        query = query.where(posts.c.feed_id == blog_id)
    query = query.order_by(posts.c.published.desc(), posts.c.id.desc()).limit(per_page + 1).offset((page - 1) * per_page)
    with reading(engine) as conn:
        rows = [post_dict(r) for r in conn.execute(query)]
    return rows[:per_page], len(rows) > per_page


def count_newest(engine: Engine, *, blog_id: int | None = None) -> int:
    """How many posts `newest` lists in all (asked only when a page past the last is asked for)."""
    query = sa.select(sa.func.count()).select_from(posts.join(feeds, feeds.c.id == posts.c.feed_id)).where(_visible())
    if blog_id is not None:
        query = query.where(posts.c.feed_id == blog_id)
    with reading(engine) as conn:
        return conn.execute(query).scalar_one()


def most_recommended(engine: Engine, since: datetime, limit: int = 5) -> list[dict]:
    """The posts published since `since` with the most recommendations (at least one), most first."""
    query = (
        sa.select(*_post_columns).join(feeds, feeds.c.id == posts.c.feed_id)
        .where(_visible(), posts.c.published >= since, posts.c.recommendations > 0)
        .order_by(posts.c.recommendations.desc(), posts.c.published.desc(), posts.c.id.desc()).limit(limit)
    )
    with reading(engine) as conn:
        return [post_dict(r) for r in conn.execute(query)]


def first_images(engine: Engine, ids: list[int], *, allow_http: bool = True) -> dict[int, images.Image]:
    """Each of these posts' first picture worth showing (aggregator/images.py), where it has one."""
    found = {}
    for post_id, html in contents(engine, ids).items():
        image = images.first_image(html, allow_http=allow_http)
        if image is not None:
            found[post_id] = image
    return found


def contents(engine: Engine, ids: list[int]) -> dict[int, str]:
    """The sanitised HTML of these posts, in one query (feeds out carry it in full)."""
    if not ids:
        return {}
    with reading(engine) as conn:
        return dict(conn.execute(sa.select(posts.c.id, posts.c.content_html).where(posts.c.id.in_(ids))).all())


def post(engine: Engine, post_id: int) -> dict | None:
    """One visible post with its sanitised content, or None."""
    query = (
        sa.select(*_post_columns, posts.c.content_html, posts.c.summary_only, posts.c.fulltext_at,
                  posts.c.fulltext_error)
        .join(feeds, feeds.c.id == posts.c.feed_id).where(_visible(), posts.c.id == post_id)
    )
    with reading(engine) as conn:
        row = conn.execute(query).first()
    return post_dict(row) if row is not None else None


def post_removed(engine: Engine, post_id: int) -> bool:
    """True when the post existed but was hidden or removed (a 410 rather than a 404)."""
    with reading(engine) as conn:
        row = conn.execute(
            sa.select(posts.c.hidden, posts.c.deleted).where(posts.c.id == post_id)
        ).first()
    return row is not None and (row.hidden or row.deleted)


@dataclass(frozen=True)
class Blog:
    id: int
    title: str
    site_url: str
    feed_url: str
    category: str
    kind: str
    status: str
    posts: int
    last_post_at: datetime | None
    last_success_at: datetime | None
    last_checked_at: datetime | None
    next_check_at: datetime | None
    error_count: int
    last_error: str
    created_at: datetime | None

    @property
    def name(self) -> str:
        return self.title or self.site_url or self.feed_url


def _blog_query():
    counts = (
        sa.select(posts.c.feed_id, sa.func.count().label("n"), sa.func.max(posts.c.first_seen).label("last"))
        .where(posts.c.deleted == sa.false(), posts.c.hidden == sa.false(), posts.c.duplicate_of.is_(None))
        .group_by(posts.c.feed_id).subquery()
    )
    return (
        sa.select(
            feeds.c.id, feeds.c.title, feeds.c.site_url, feeds.c.url.label("feed_url"), feeds.c.category,
            feeds.c.kind, feeds.c.status, sa.func.coalesce(counts.c.n, 0).label("posts"),
            counts.c.last.label("last_post_at"), feeds.c.last_success_at, feeds.c.last_checked_at,
            feeds.c.next_check_at, feeds.c.error_count, feeds.c.last_error, feeds.c.created_at,
        )
        .outerjoin(counts, counts.c.feed_id == feeds.c.id)
        .where(feeds.c.status.in_(PUBLIC_STATUSES))
    )


def blogs(engine: Engine) -> list[Blog]:
    query = _blog_query().order_by(feeds.c.category, sa.func.lower(feeds.c.title), feeds.c.id)
    with reading(engine) as conn:
        return [Blog(**r._mapping) for r in conn.execute(query)]


def blog(engine: Engine, blog_id: int) -> Blog | None:
    with reading(engine) as conn:
        row = conn.execute(_blog_query().where(feeds.c.id == blog_id)).first()
    return Blog(**row._mapping) if row is not None else None


def fetch_summary(engine: Engine, blog_id: int, limit: int = 20) -> list[dict]:
    """The blog's latest checks, newest first, for its health panel."""
    query = (
        sa.select(fetches.c.kind, fetches.c.started_at, fetches.c.duration_ms, fetches.c.http_status,
                  fetches.c.not_modified, fetches.c.new_posts, fetches.c.updated_posts, fetches.c.error)
        .where(fetches.c.feed_id == blog_id)
        .order_by(fetches.c.started_at.desc(), fetches.c.id.desc()).limit(limit)
    )
    with reading(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def latest_change(engine: Engine, blog_id: int | None = None, blog_ids: tuple[int, ...] | None = None
                  ) -> datetime | None:
    """When the newest visible post was first seen: the Last-Modified of lists and feeds."""
    query = sa.select(sa.func.max(posts.c.first_seen)).join(feeds, feeds.c.id == posts.c.feed_id).where(_visible())
    if blog_id is not None:
        query = query.where(posts.c.feed_id == blog_id)
    if blog_ids is not None:
        query = query.where(posts.c.feed_id.in_(blog_ids))
    with reading(engine) as conn:
        return conn.execute(query).scalar()
