"""Several workers on one database: who is alive, and which one leads.

* **Every worker fetches.** Due feeds are claimed row by row (feed_store.claim_due: `FOR
  UPDATE SKIP LOCKED` and a lease), so workers share the load and never fetch one feed at
  the same time; a dead worker's claims lapse after `claim_lease_s`.
* **One leader** runs the jobs that must run once in the whole site (housekeeping, poll
  salt deletion, notices, later the digest). On PostgreSQL the leader holds a *session*
  advisory lock on a connection of its own, kept out of the pool: when its process dies
  or its connection is lost, the server releases the lock and the next worker to ask gets
  it (every worker asks each LEADER_CHECK interval, so a new leader leads within two
  dispatch intervals). Session locks, not transaction locks: they outlive a transaction,
  and they are why a pooler in transaction mode (PgBouncer) must not sit between workers
  and the database (docs/deploy.md). On SQLite there is one worker per database (the
  scheduler's lock file), and it leads.
* **Heartbeats** in the `workers` table say who is alive, for `hustings status`.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .db import insert_for, reading, utcnow, workers, writing

log = logging.getLogger(__name__)

LEADER_LOCK = 7_240_853_001  # the advisory lock key every Hustings worker competes for
FORGET_AFTER = timedelta(days=1)  # heartbeats older than this are deleted


@dataclass(frozen=True)
class Me:
    """This worker process, as the cluster knows it."""

    id: str
    host: str
    pid: int

    @classmethod
    def here(cls) -> "Me":
        host = socket.gethostname()[:200]
        pid = os.getpid()
        return cls(f"{host}:{pid}:{secrets.token_hex(3)}", host, pid)


def heartbeat(engine: Engine, me: Me, now: datetime | None = None) -> None:
    """Say this worker is alive (and forget workers silent for a day)."""
    now = now or utcnow()
    with writing(engine) as conn:
        stmt = insert_for(engine)(workers).values(id=me.id, host=me.host, pid=me.pid, started_at=now, seen_at=now)
        conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_={"seen_at": now}))
        conn.execute(sa.delete(workers).where(workers.c.seen_at < now - FORGET_AFTER))


def leave(engine: Engine, me: Me) -> None:
    """A worker stopping cleanly removes its row (a killed one simply stops beating)."""
    with writing(engine) as conn:
        conn.execute(sa.delete(workers).where(workers.c.id == me.id))


class Leadership:
    """Whether this worker leads; `check()` before each leader-only job (and on a timer)."""

    def __init__(self, engine: Engine, me: Me):
        self.engine = engine
        self.me = me
        self._conn: Connection | None = None
        self._leading = False

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def check(self) -> bool:
        """True when this worker leads now; tries to take the lead when nobody holds it."""
        if not self.postgres:
            if not self._leading:
                self._took_lead(None)
            return True
        if self._conn is not None:
            try:
                self._conn.exec_driver_sql("SELECT 1")
                return True
            except sa.exc.DBAPIError:
                log.warning("worker %s lost its leader connection; another worker will lead", self.me.id)
                self._drop()
        try:
            conn = self.engine.connect()
        except sa.exc.DBAPIError as exc:
            log.warning("worker %s cannot reach the database to ask for the lead: %s", self.me.id, exc)
            return False
        try:
            got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK}).scalar()
            conn.commit()  # the lock is the session's; end the implicit transaction
            if not got:
                conn.close()
                return False
            backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            conn.commit()
        except sa.exc.DBAPIError:
            conn.invalidate()
            conn.close()
            return False
        self._conn = conn
        self._took_lead(backend)
        return True

    def _took_lead(self, backend_pid: int | None) -> None:
        self._leading = True
        now = utcnow()
        heartbeat(self.engine, self.me, now)
        with writing(self.engine) as conn:
            conn.execute(sa.update(workers).where(workers.c.leader_since.is_not(None)).values(leader_since=None))
            conn.execute(sa.update(workers).where(workers.c.id == self.me.id)
                         .values(leader_since=now, backend_pid=backend_pid))
        log.info("worker %s leads (jobs that run once in the site run here)", self.me.id)

    def _drop(self) -> None:
        self._leading = False
        if self._conn is not None:
            try:
                self._conn.invalidate()  # never back to the pool: the session (and the lock) must end
                self._conn.close()
            except Exception:  # the connection is already gone
                pass
            self._conn = None

    def release(self) -> None:
        """Stop leading (clean shutdown): the lock goes with the session."""
        self._drop()

    def only(self, func):
        """`func` wrapped to run only while this worker leads."""
        def leader_only(*args, **kwargs):
            if self.check():
                return func(*args, **kwargs)
            return None

        leader_only.__name__ = getattr(func, "__name__", "job")
        return leader_only


def leader(engine: Engine, alive_within: timedelta) -> dict | None:
    """The current leader (`id`, `host`, `pid`, `since`) or None.

    On PostgreSQL the truth is who holds the advisory lock now (pg_locks), matched to the
    worker row by its session's pid; on SQLite it is the worker that took the lead and is
    still beating."""
    with reading(engine) as conn:
        rows = conn.execute(sa.select(workers).where(workers.c.leader_since.is_not(None))).all()
        if engine.dialect.name == "postgresql":
            holders = set(conn.execute(sa.text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND ((classid::bigint << 32) | objid::bigint) = :k"), {"k": LEADER_LOCK}).scalars())
            rows = [r for r in rows if r.backend_pid in holders]
        else:
            rows = [r for r in rows if r.seen_at >= utcnow() - alive_within]
    if not rows:
        return None
    r = rows[0]
    return {"id": r.id, "host": r.host, "pid": r.pid, "since": r.leader_since.isoformat()}


def alive(engine: Engine, within: timedelta) -> list[dict]:
    """Workers whose heartbeat came within `within`, newest first."""
    with reading(engine) as conn:
        rows = conn.execute(sa.select(workers).where(workers.c.seen_at >= utcnow() - within)
                            .order_by(workers.c.seen_at.desc())).all()
    return [{"id": r.id, "host": r.host, "pid": r.pid, "started_at": r.started_at.isoformat(),
             "seen_at": r.seen_at.isoformat(), "leader": r.leader_since is not None} for r in rows]
