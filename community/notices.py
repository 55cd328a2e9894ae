"""Turning the aggregator's feed events into what people see: the public moderation log's
automatic lines and the blogger's messages.

The aggregator writes a feed event in the transaction of the change (a feed gone, a feed
failing FAILING_NOTICE_AFTER times in a row, a post dated in the future and clamped); it
does not know who the blogger is. deliver() handles every event not yet handled, each in
one transaction with its log line and message, so a crash repeats nothing and loses
nothing. The worker runs it after every dispatch; `hustings fetch` and `crawl` at their end.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from aggregator.db import feed_events, utcnow, writing
from aggregator.settings import Settings

from . import outbox
from .moderation_log import log_action

BATCH = 200  # events per transaction: a burst of clamped dates is handled in a few commits


def deliver(engine: Engine, settings: Settings | None = None, now: datetime | None = None) -> int:
    """Handle every pending feed event; returns how many."""
    done = 0
    while True:
        with writing(engine) as conn:
            query = (sa.select(feed_events).where(feed_events.c.handled_at.is_(None))
                     .order_by(feed_events.c.id).limit(BATCH))
            if engine.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)  # two workers never tell a blogger twice
            rows = conn.execute(query).all()
            for row in rows:
                _handle(conn, row)
            if rows:
                conn.execute(sa.update(feed_events).where(feed_events.c.id.in_([r.id for r in rows]))
                             .values(handled_at=now or utcnow()))
        done += len(rows)
        if len(rows) < BATCH:
            return done


def _handle(conn: Connection, event) -> None:
    if event.kind == "gone":
        log_action(conn, "system", "feed_gone", target_type="blog", target_id=event.feed_id,
                   target_label=event.label, reason=event.detail or "the feed stopped answering", at=event.at)
        outbox.feed_failing(conn, event.feed_id, gone=True, failures=event.failures, error=event.detail)
    elif event.kind == "failing":
        outbox.feed_failing(conn, event.feed_id, gone=False, failures=event.failures, error=event.detail)
    elif event.kind == "date_clamped":
        log_action(conn, "system", "date_clamped", target_type="post", target_id=event.post_id,
                   target_label=event.label, reason=event.detail, at=event.at)
    else:
        raise ValueError(f"feed event {event.id} has an unknown kind {event.kind!r}")
