"""Readers' recommendations: one per reader per post, counted by the database.

The post's `recommendations` column is the count the ranking reads (aggregator/ranking.py);
each new recommendation takes a change number so cached pages showing the count render again.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from aggregator.db import CHANGE_COUNTER, insert_for, next_counter, posts, reading, recommendations, utcnow, writing


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
