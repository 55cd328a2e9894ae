"""The public moderation log: one line per moderator action and per automatic action.

Every action writes its line with log_action in the action's own transaction, so an
action is never without its record, nor a record without its action. The actor is a
moderator's e-mail address (shown as their name on /moderation), "command line" or a
name given with --by for actions taken from the command, or "system".
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from aggregator.db import CHANGE_COUNTER, moderation_log, next_counter, reading, utcnow


def log_action(conn: Connection, actor: str, action: str, *, target_type: str = "", target_id: int | None = None,
               target_label: str = "", reason: str = "", at: datetime | None = None) -> None:
    """One line of the public moderation log, in the caller's transaction (so an action and
    its record commit together). actor is a moderator's e-mail address, or "system"."""
    conn.execute(sa.insert(moderation_log).values(
        at=at or utcnow(), actor=actor[:320], action=action[:64], target_type=target_type[:32],
        target_id=target_id, target_label=(target_label or "")[:500], reason=reason or ""))
    next_counter(conn, CHANGE_COUNTER)  # pages showing the log (and what the action changed) render again


def moderation_entries(engine: Engine, *, limit: int = 50, offset: int = 0) -> list[dict]:
    query = (sa.select(moderation_log).order_by(moderation_log.c.at.desc(), moderation_log.c.id.desc())
             .limit(limit).offset(offset))
    with reading(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
