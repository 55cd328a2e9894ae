"""Rate limits counted in the database, so every web process and node shares them.

Fixed windows per (action, client); the web answers 429 with Retry-After.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from aggregator.db import insert_for, rate_hits, writing
from aggregator.settings import parse_limit


def hit(engine: Engine, key: str, limit: str, now: float | None = None) -> int:
    """Count one request against `key`; returns 0 when allowed, else the seconds to wait."""
    count, period = parse_limit(limit)
    now_s = int(now if now is not None else datetime.now(timezone.utc).timestamp())
    window = now_s - now_s % period
    key = key[:200]
    with writing(engine) as conn:
        stmt = insert_for(engine)(rate_hits).values(key=key, window_start=window, hits=1)
        stmt = stmt.on_conflict_do_update(index_elements=["key", "window_start"],
                                          set_={"hits": rate_hits.c.hits + 1}).returning(rate_hits.c.hits)
        hits = conn.execute(stmt).scalar_one()
        if hits == 1 and secrets.randbelow(50) == 0:  # now and then, forget windows over a day old
            conn.execute(sa.delete(rate_hits).where(rate_hits.c.window_start < now_s - 86400))
    return 0 if hits <= count else window + period - now_s
