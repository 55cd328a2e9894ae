"""Readers' recommendations: one per reader per post, counted by the database.

The post's `recommendations` column is the count the ranking reads (aggregator/ranking.py);
each new recommendation takes a change number so cached pages showing the count render again.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from aggregator.db import (
    CHANGE_COUNTER,
    insert_for,
    next_counter,
    posts,
    reading,
    recommendations,
    serialise_on,
    utcnow,
    writing,
)

BY_ADDRESS = 2  # aggregator.db.serialise_on's namespace: one counted recommendation per post and address
BURST = 5  # recommendations of one post from one address in a day that moderators are shown


def recommend_post(engine: Engine, post_id: int, reader: str, ip_hash: str, now: datetime | None = None) -> bool:
    """Record one reader's recommendation; False when they had already recommended it.

    The unique (post, reader) constraint decides, not a check before the insert, so
    concurrent clicks from one reader count once. What the ranking reads
    (posts.recommendations) grows only for the first reader from an address each day:
    `ip_hash` is the address (an IPv6 one as its /64) hashed with a salt of the day, so
    clearing cookies to recommend again from one place records the reader but adds
    nothing to the post's standing (/about says so).
    """
    with writing(engine) as conn:
        stmt = insert_for(engine)(recommendations).values(post_id=post_id, reader=reader, ip_hash=ip_hash,
                                                        created_at=now or utcnow())
        inserted = conn.execute(stmt.on_conflict_do_nothing(index_elements=["post_id", "reader"])
                                .returning(recommendations.c.id)).first()
        if inserted is None:
            return False
        if ip_hash:
            serialise_on(conn, BY_ADDRESS, f"{post_id}:{ip_hash}")  # the check below holds on PostgreSQL too
            seen = conn.execute(sa.select(recommendations.c.id).where(
                recommendations.c.post_id == post_id, recommendations.c.ip_hash == ip_hash,
                recommendations.c.id != inserted.id).limit(1)).first()
            if seen is not None:
                return True  # recorded for this reader, not counted again for the address
        conn.execute(sa.update(posts).where(posts.c.id == post_id)
                     .values(recommendations=posts.c.recommendations + 1))
        next_counter(conn, CHANGE_COUNTER)  # pages showing the count are rendered again
    return True


def bursts(engine: Engine, since: datetime, at_least: int = BURST) -> list[dict]:
    """Posts recommended `at_least` times from one address since `since` (cookies cleared to
    buy standing): for the moderators' dashboard, as poll bursts are shown on poll charts."""
    query = (sa.select(recommendations.c.post_id, posts.c.title, sa.func.count().label("n"))
             .join(posts, posts.c.id == recommendations.c.post_id)
             .where(recommendations.c.created_at >= since, recommendations.c.ip_hash != "")
             .group_by(recommendations.c.post_id, posts.c.title, recommendations.c.ip_hash)
             .having(sa.func.count() >= at_least).order_by(sa.func.count().desc()).limit(20))
    with reading(engine) as conn:
        return [{"post_id": r.post_id, "title": r.title, "recommendations": r.n} for r in conn.execute(query)]


def counts_for_reader(engine: Engine, reader: str, post_ids: list[int]) -> dict[int, tuple[int, bool]]:
    """post id -> (its recommendations now, whether this reader recommended it), in one query.

    Pages are cached for everyone; this is what one returning reader's copy shows differently
    (web/reader_state.py), so their own recommendation and its count show at once."""
    if not post_ids:
        return {}
    mine = (sa.select(recommendations.c.post_id)
            .where(recommendations.c.reader == reader, recommendations.c.post_id.in_(post_ids)).subquery())
    query = (sa.select(posts.c.id, posts.c.recommendations, mine.c.post_id.is_not(None).label("done"))
             .outerjoin(mine, mine.c.post_id == posts.c.id).where(posts.c.id.in_(post_ids)))
    with reading(engine) as conn:
        return {r.id: (r.recommendations, bool(r.done)) for r in conn.execute(query)}
