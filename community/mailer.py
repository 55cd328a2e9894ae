"""The one delivery path: the outbox, sent over SMTP, several messages per connection.

    claim a batch of due rows (a lease: claimed_by, claimed_until)
      -> for each: compose (community/mail_compose.py) -> SMTP -> record the answer, committed
         before the next message is sent

* **Exactly once.** Digests are one outbox row per (issue, subscriber) under a unique
  constraint, and each row's outcome is committed right after the server's answer. A
  process killed at any moment leaves at most one message whose answer was not recorded
  (the one in flight); the next sender takes over its claims (at once when the dead
  claimant was a process on this host, else when the lease lapses) and sends that one
  again, and nothing else. The records are committed without waiting for the disk
  (SQLite synchronous=NORMAL, PostgreSQL synchronous_commit=off on the sender's own
  connection): a killed process loses nothing; a power cut may repeat the last few.
* **Answers.** 2xx: sent. 4xx, or a server that cannot be reached: tried again later,
  FIRST_RETRY_S doubling up to MAX_RETRY_S, until MAX_ATTEMPTS or GIVE_UP_AFTER, then
  failed. 5xx: failed at once (shown to moderators at /moderate/digest), and a subscriber
  with SUSPEND_AFTER such failures in a row is suspended (community/subscriptions.py).
* **Double opt-in** is checked again here: nothing but the confirmation goes to an address
  that has not confirmed, and nothing at all to one that left.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from aggregator.db import outbox, subscribers, utcnow, writing
from aggregator.errors import HustingsError
from aggregator.settings import Settings

from . import digest_render, mail_text, subscriptions
from .addresses import BadAddress
from .mail_compose import Composed, Parts, compose
from .smtp import Smtp, SmtpDown

log = logging.getLogger(__name__)

BATCH = 100  # rows claimed at a time, and messages sent over one connection
LEASE_S = 120  # a claim lapses after this unless renewed (the sender renews it as it goes)
FIRST_RETRY_S = 60  # after a 4xx: 1 minute, then 2, 4, ... (with 10% jitter)
MAX_RETRY_S = 6 * 3600
MAX_ATTEMPTS = 10  # about 14 hours of trying
GIVE_UP_AFTER = timedelta(days=3)
SUBSCRIBER_KINDS = ("confirm", "already")  # what may go to an address that is not (or no longer) confirmed


@dataclass
class Report:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    cancelled: int = 0
    error: str = ""
    failures: list[str] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.sent + self.deferred + self.failed + self.cancelled


def claimant() -> str:
    return f"{socket.gethostname()[:150]}:{os.getpid()}:{secrets.token_hex(3)}"


def _dead_here(claimed_by: str) -> bool:
    """Whether this claim belongs to a process on this host that no longer exists."""
    host, _, rest = claimed_by.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname()[:150] or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def claim(engine: Engine, me: str, now: datetime, *, limit: int = BATCH, ignore_backoff: bool = False) -> list:
    """Take up to `limit` due messages for `me`: confirmations and notices before digests."""
    with writing(engine) as conn:
        held = [r[0] for r in conn.execute(sa.select(outbox.c.claimed_by).distinct().where(
            outbox.c.status == "queued", outbox.c.claimed_by != "", outbox.c.claimed_until >= now))]
        dead = [c for c in held if c != me and _dead_here(c)]
        free = sa.or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now, outbox.c.claimed_by == me,
                      outbox.c.claimed_by.in_(dead))
        where = [outbox.c.status == "queued", free]
        if not ignore_backoff:
            where.append(sa.or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now))
        order = (sa.case((outbox.c.issue_id.is_(None), 0), else_=1), outbox.c.id)
        query = sa.select(outbox.c.id).where(*where).order_by(*order).limit(limit)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = [r[0] for r in conn.execute(query)]
        if not ids:
            return []
        conn.execute(sa.update(outbox).where(outbox.c.id.in_(ids))
                     .values(claimed_by=me, claimed_until=now + timedelta(seconds=LEASE_S)))
        return conn.execute(sa.select(outbox).where(outbox.c.id.in_(ids)).order_by(*order)).all()


def release(engine: Engine, me: str) -> None:
    with writing(engine) as conn:
        conn.execute(sa.update(outbox).where(outbox.c.claimed_by == me).values(claimed_by="", claimed_until=None))


def retry_delay(attempts: int) -> float:
    base = min(MAX_RETRY_S, FIRST_RETRY_S * 2 ** max(0, attempts - 1))
    return base * random.uniform(0.9, 1.1)


# --- recording answers ------------------------------------------------------------------------------------


class Recorder:
    """Writes each answer in its own transaction on a connection of the sender's own."""

    def __init__(self, engine: Engine, me: str):
        self.engine = engine
        self.me = me
        self.conn: Connection = engine.connect().execution_options(hustings_write=True)
        self.renewed = time.monotonic()
        self._durability("NORMAL", "off")
        dialect = self.conn.dialect
        self._when = outbox.c.sent_at.type.bind_processor(dialect) or (lambda value: value)
        mark = ("UPDATE outbox SET status = 'sent', sent_at = {p}, attempts = attempts + 1, claimed_by = '', "
                "claimed_until = NULL, last_error = '' WHERE id = {p}")
        self._sent_sql = mark.format(p="?" if dialect.paramstyle == "qmark" else "%s")

    def _mark_sent(self, row_id: int, now: datetime) -> None:
        """The common case, in one round trip on the driver's own connection: through SQLAlchemy's
        Core it cost four times as much, a quarter of the time a message took (docs/performance.md)."""
        raw = self.conn.connection.dbapi_connection
        cursor = raw.cursor()
        try:
            if self.conn.dialect.name == "sqlite":
                # One statement in autocommit (the connection's isolation_level is None): its own
                # transaction, as durable as BEGIN ... COMMIT, in a third of the calls.
                cursor.execute(self._sent_sql, (self._when(now), row_id))
            else:
                # Autocommit for this statement alone: one round trip instead of BEGIN, UPDATE, COMMIT.
                raw.autocommit = True
                try:
                    cursor.execute(self._sent_sql, (self._when(now), row_id))
                finally:
                    raw.autocommit = False
        except BaseException:
            raw.rollback()
            raise
        finally:
            cursor.close()

    def _durability(self, sqlite: str, postgresql: str) -> None:
        # Per connection, outside any transaction (SQLite refuses it inside one); the pooled
        # connection is given back with the defaults (FULL, on).
        raw = self.conn.connection.dbapi_connection
        cursor = raw.cursor()
        if self.conn.dialect.name == "sqlite":
            cursor.execute(f"PRAGMA synchronous={sqlite}")
        else:
            cursor.execute(f"SET synchronous_commit TO {postgresql}")
            raw.commit()
        cursor.close()

    def close(self) -> None:
        try:
            self._durability("FULL", "on")
        finally:
            self.conn.close()

    def record(self, row, outcome: str, error: str, now: datetime, subscriber_failures: int = 0) -> str:
        """Store one message's outcome; returns it ("deferred" may become "failed" when we give up)."""
        renew = time.monotonic() - self.renewed > LEASE_S / 3
        if outcome == "sent" and not subscriber_failures and not renew:
            self._mark_sent(row.id, now)
            return outcome
        values: dict = {"attempts": row.attempts + 1, "claimed_by": "", "claimed_until": None, "last_error": error}
        if outcome == "deferred" and (row.attempts + 1 >= MAX_ATTEMPTS or row.created_at < now - GIVE_UP_AFTER):
            outcome, values["last_error"] = "failed", f"gave up after {row.attempts + 1} attempts: {error}"[:500]
        if outcome == "sent":
            values.update(status="sent", sent_at=now)
        elif outcome == "deferred":
            values.update(next_attempt_at=now + timedelta(seconds=retry_delay(row.attempts + 1)))
        else:
            values.update(status=outcome)  # failed | cancelled
        with self.conn.begin():
            self.conn.execute(sa.update(outbox).where(outbox.c.id == row.id).values(**values))
            if outcome == "sent" and subscriber_failures:
                subscriptions.delivered(self.conn, row.subscriber_id)
            elif outcome == "failed" and row.subscriber_id is not None:
                if subscriptions.failed(self.conn, row.subscriber_id, values["last_error"], now):
                    log.warning("subscriber %s suspended after %d permanent failures", row.subscriber_id,
                                subscriptions.SUSPEND_AFTER)
            if renew:
                self.conn.execute(sa.update(outbox).where(outbox.c.claimed_by == self.me, outbox.c.status == "queued")
                                  .values(claimed_until=now + timedelta(seconds=LEASE_S)))
                self.renewed = time.monotonic()
        return outcome


# --- the loop ---------------------------------------------------------------------------------------------


class Pacer:
    """At most `rate` messages a second (0: no limit)."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next = time.monotonic()

    def wait(self) -> None:
        if self.interval:
            now = time.monotonic()
            if self.next > now:
                time.sleep(self.next - now)
            self.next = max(self.next, now) + self.interval


@dataclass(frozen=True)
class Recipient:
    """What sending needs of a subscriber (the fields of subscriptions.Subscriber it reads)."""

    id: int
    email: str
    status: str
    nonce: str
    categories: tuple[str, ...]
    failures: int


def _subscribers_of(engine: Engine, rows) -> dict[int, Recipient]:
    ids = {r.subscriber_id for r in rows if r.subscriber_id is not None}
    if not ids:
        return {}
    c = subscribers.c
    with engine.connect() as conn:
        return {r.id: Recipient(r.id, r.email, r.status, r.nonce, tuple(json.loads(r.categories or "[]")), r.failures)
                for r in conn.execute(sa.select(c.id, c.email, c.status, c.nonce, c.categories, c.failures)
                                      .where(c.id.in_(ids)))}


def _parts(settings: Settings, row, sub, issues: digest_render.Issues) -> Parts | str:
    """What to send for this row, or why it must not be sent (it is then cancelled)."""
    if row.subscriber_id is not None:
        if sub is None:
            return "the subscriber is gone"
        if row.kind == "confirm" and sub.status != "pending":
            return f"no confirmation needed: the subscriber is {sub.status}"
        if row.kind not in SUBSCRIBER_KINDS and sub.status != "confirmed":
            return f"the subscriber is {sub.status}, not confirmed"
    if row.issue_id is not None:
        return issues.parts(row.issue_id, sub)
    if row.list_unsubscribe:  # a campaign's update to a backer: one-click unsubscribe (RFC 8058)
        return Parts(row.subject, row.body, row.html_body, row.list_unsubscribe, row.list_unsubscribe.split("=")[-1])
    return Parts(row.subject, row.body, row.html_body)


def deliver(engine: Engine, settings: Settings, *, ignore_backoff: bool = False, limit: int | None = None,
            me: str | None = None) -> Report:
    """Send what is due (everything queued when `ignore_backoff`). Raises HustingsError when no
    SMTP server is set; a server that cannot be reached ends the run with `error` in the report."""
    if not settings.smtp_host:
        raise HustingsError("no SMTP server is set (smtp_host): messages wait in the outbox")
    me = me or claimant()
    report = Report()
    smtp, pacer, issues = Smtp(settings), Pacer(settings.mail_rate_per_s), digest_render.Issues(engine, settings)
    recorder = Recorder(engine, me)
    try:
        while limit is None or report.handled < limit:
            rows = claim(engine, me, utcnow(), ignore_backoff=ignore_backoff,
                         limit=BATCH if limit is None else min(BATCH, limit - report.handled))
            if not rows:
                break
            subs = _subscribers_of(engine, rows)
            # Made here, not ahead in a thread: a thread composing while this one waits on the socket
            # holds the GIL when the answer comes (the 5 ms switch interval), which halved the rate.
            for row in rows:
                sub = subs.get(row.subscriber_id)
                message = _prepare(settings, row, sub, issues)
                if isinstance(message, tuple):  # ("cancelled" | "failed", why)
                    _count(report, row, recorder.record(row, message[0], message[1], utcnow()), message[1])
                    continue
                pacer.wait()
                try:
                    outcome, _, words = smtp.send(message)
                except SmtpDown as exc:
                    report.error = str(exc)
                    _count(report, row, recorder.record(row, "deferred", str(exc), utcnow()), str(exc))
                    return report
                outcome = recorder.record(row, outcome, words, utcnow(), sub.failures if sub else 0)
                _count(report, row, outcome, words)
            smtp.close()  # a fresh connection per batch: servers limit messages per connection
    finally:
        smtp.close()
        recorder.close()
        release(engine, me)
    return report


def _prepare(settings: Settings, row, sub, issues: digest_render.Issues) -> Composed | tuple[str, str]:
    """The message for this row, or ("cancelled" | "failed", why) when it must not or cannot be sent."""
    parts = _parts(settings, row, sub, issues)
    if isinstance(parts, str):
        return "cancelled", parts
    try:
        return compose(settings, row.id, row.to_address, parts)
    except BadAddress as exc:
        return "failed", str(exc)


def _count(report: Report, row, outcome: str, words: str) -> None:
    setattr(report, outcome, getattr(report, outcome) + 1)
    if outcome == "failed":
        report.failures.append(f"{row.to_address}: {words}")
    log.log(logging.WARNING if outcome == "failed" else logging.DEBUG, "message %s to %s: %s %s", row.id,
            row.to_address, outcome, words)


def deliver_due(engine: Engine, settings: Settings) -> None:
    """The worker's job: deliver what is due, quietly when no SMTP server is set."""
    if not settings.smtp_host:
        return
    report = deliver(engine, settings)
    if report.handled or report.error:
        log.info("mail: %d sent, %d deferred, %d failed, %d cancelled%s", report.sent, report.deferred, report.failed,
                 report.cancelled, f"; stopped: {report.error}" if report.error else "")


def queue_test(engine: Engine, settings: Settings, to: str) -> int:
    """Queue `hustings mail test`'s message (to any address: it is the operator's)."""
    from . import outbox as outbox_module
    from .addresses import normal_address

    to = normal_address(to)
    subject, body = mail_text.test_message(settings, to)
    with writing(engine) as conn:
        return outbox_module.queue(conn, to, subject, body, "test")


def status_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)).all())


def recent_failures(engine: Engine, limit: int = 20) -> list[dict]:
    query = (sa.select(outbox.c.id, outbox.c.to_address, outbox.c.kind, outbox.c.subject, outbox.c.last_error,
                       outbox.c.attempts, outbox.c.created_at)
             .where(outbox.c.status == "failed").order_by(outbox.c.id.desc()).limit(limit))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


MAIL_EVERY_S = 30  # the worker looks for due mail this often (confirmations should not wait long)
DIGEST_EVERY_S = 60  # and for a digest whose send time has come
FORGET_EVERY_S = 3600  # and deletes the addresses the privacy page promises to


def jobs(engine: Engine, settings: Settings) -> list:
    """The worker's mail jobs (they run on the elected leader only: aggregator/scheduler.py)."""
    from aggregator.scheduler import Job

    from . import digest

    def digests() -> None:
        for issue, queued in digest.send_due(engine, settings):
            log.info("digest %s %s: %d messages queued", issue.period, issue.key, queued)

    return [
        Job("deliver_mail", deliver_due, MAIL_EVERY_S, (engine, settings)),
        Job("send_digest", digests, DIGEST_EVERY_S),
        Job("forget_subscribers", subscriptions.forget, FORGET_EVERY_S, (engine,)),
    ]


def outcome_of(engine: Engine, message_id: int) -> dict:
    """What became of one message: its status, attempts and last error."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(outbox.c.status, outbox.c.attempts, outbox.c.last_error)
                           .where(outbox.c.id == message_id)).one()
    return dict(row._mapping)
