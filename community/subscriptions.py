"""Readers who subscribe to the digest: double opt-in, their links, leaving, and forgetting them.

* **Double opt-in.** Subscribing writes a pending row and a confirmation message, in one
  transaction; nothing else is ever sent to the address until the link in that message is
  opened (the mailer checks again before every message). Confirmation links expire after
  CONFIRM_HOURS: the expiry is inside the link and signed with it.
* **No enumeration.** The web says the same thing for a new, pending, confirmed or departed
  address. A confirmed address that subscribes again is sent its own "manage" link instead
  of a confirmation; an address gets at most MAILS_PER_DAY such messages (then silence).
* **Links** carry the subscriber's id and an HMAC of it under the site's secret and the
  subscriber's nonce: they cannot be made up from the database alone, and leaving and
  coming back gives new ones.
* **Forgetting.** Unconfirmed addresses are deleted PENDING_KEEP_DAYS after their last
  confirmation mail, departed ones LEFT_KEEP_DAYS after leaving (the bounce window: late
  failures of mail already sent still find their row), with every message to them.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from aggregator.db import feeds, insert_for, outbox, reading, subscribers, utcnow, writing
from aggregator.errors import HustingsError
from aggregator.models import PUBLIC_STATUSES
from aggregator.settings import Settings

from . import identity, mail_text, ratelimits
from . import outbox as outbox_module
from .addresses import BadAddress, normal_address

FREQUENCIES = ("daily", "weekly")
CONFIRM_HOURS = 48  # a confirmation link works this long
MAILS_PER_DAY = "3/1d"  # confirmation (or "already subscribed") mails one address may be sent
PENDING_KEEP_DAYS = 7  # an address never confirmed is deleted this long after its last confirmation mail
LEFT_KEEP_DAYS = 7  # the bounce window: a departed subscriber's row is deleted after it
SUSPENDED_KEEP_DAYS = 90  # an address that kept failing is kept this long so we do not write to it again
SUSPEND_AFTER = 3  # permanent failures in a row before a subscriber is suspended
MAIL_KEEP_DAYS = 30  # a sent (failed, cancelled) message to a subscriber keeps its address this long
MAX_CATEGORIES = 50


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    frequency: str
    categories: tuple[str, ...]
    status: str
    nonce: str
    source: str
    created_at: datetime
    confirmed_at: datetime | None
    confirm_sent_at: datetime | None
    left_at: datetime | None
    failures: int
    last_failure: str

    @classmethod
    def of(cls, row) -> "Subscriber":
        m = row._mapping
        return cls(m["id"], m["email"], m["frequency"], tuple(json.loads(m["categories"] or "[]")), m["status"],
                   m["nonce"], m["source"], m["created_at"], m["confirmed_at"], m["confirm_sent_at"], m["left_at"],
                   m["failures"], m["last_failure"])


# --- links --------------------------------------------------------------------------------------------


def manage_token(settings: Settings, sub: Subscriber) -> str:
    return f"{sub.id}.{identity.keyed(settings, 'subscriber', str(sub.id), sub.nonce)[:32]}"


def confirm_token(settings: Settings, sub: Subscriber, now: datetime) -> str:
    expires = int((now + timedelta(hours=CONFIRM_HOURS)).timestamp())
    mac = identity.keyed(settings, "confirm", str(sub.id), sub.nonce, str(expires))[:32]
    return f"{sub.id}.{expires}.{mac}"


def link(settings: Settings, path: str, token: str) -> str:
    return f"{settings.site_url.rstrip('/')}{path}?token={token}"


def _parts(token: str, n: int) -> list[str] | None:
    parts = (token or "").strip().split(".")
    if len(parts) != n or not all(p.isdigit() for p in parts[:-1]) or len(token) > 100:
        return None
    return parts


def by_token(engine: Engine, settings: Settings, token: str) -> Subscriber | None:
    """The subscriber a manage or unsubscribe link belongs to, or None (a wrong or stale link)."""
    parts = _parts(token, 2)
    if parts is None:
        return None
    sub = get(engine, int(parts[0]))
    if sub is None or not secrets.compare_digest(manage_token(settings, sub), token.strip()):
        return None
    return sub


def get(engine: Engine, subscriber_id: int) -> Subscriber | None:
    if subscriber_id > 2**62:
        return None
    with reading(engine) as conn:
        row = conn.execute(sa.select(subscribers).where(subscribers.c.id == subscriber_id)).first()
    return Subscriber.of(row) if row is not None else None


def by_email(engine: Engine, email: str) -> Subscriber | None:
    with reading(engine) as conn:
        row = conn.execute(sa.select(subscribers).where(subscribers.c.email == normal_address(email))).first()
    return Subscriber.of(row) if row is not None else None


# --- subscribing --------------------------------------------------------------------------------------


def clean_choice(frequency: str, chosen: list[str] | tuple[str, ...], known: list[str]) -> tuple[str, list[str]]:
    """A valid frequency and the chosen categories that exist (HustingsError for a bad frequency)."""
    if frequency not in FREQUENCIES:
        raise HustingsError(f"choose how often: {' or '.join(FREQUENCIES)}")
    wanted = {c for c in chosen if c in known}
    return frequency, sorted(wanted)[:MAX_CATEGORIES]


def categories(engine: Engine) -> list[str]:
    """The categories of the blogs the site shows, for the subscribe form's choices."""
    query = (sa.select(feeds.c.category).where(feeds.c.status.in_(PUBLIC_STATUSES), feeds.c.category != "")
             .distinct().order_by(feeds.c.category))
    with reading(engine) as conn:
        return [r[0] for r in conn.execute(query)]


def subscribe(engine: Engine, settings: Settings, email: str, frequency: str = "daily",
              chosen: list[str] | tuple[str, ...] = (), *, source: str = "web", now: datetime | None = None) -> str:
    """Ask `email` to confirm; returns what was done (for logs and the command, never shown on the web):
    "confirm" (a confirmation was queued), "already" (a confirmed address was sent its manage link)
    or "limited" (this address has had its mails for today).

    Raises:
        BadAddress: the address cannot be used (the message says why).
        HustingsError: the frequency is not daily or weekly.
    """
    email = normal_address(email)
    frequency, chosen = clean_choice(frequency, chosen, categories(engine))
    now = now or utcnow()
    if settings.rate_limits and ratelimits.hit(engine, settings, "subscribe-mail", email, MAILS_PER_DAY, now.timestamp()):
        return "limited"
    with writing(engine) as conn:
        sub = _lock_or_create(conn, email, frequency, chosen, source, now)
        if sub.status == "confirmed":
            _queue(conn, settings, sub, "already", now)
            return "already"
        values = dict(frequency=frequency, categories=json.dumps(chosen), updated_at=now, confirm_sent_at=now)
        if sub.status in ("left", "suspended"):
            # Coming back: new links (the old ones stay dead), a clean record, a new confirmation.
            values.update(status="pending", nonce=secrets.token_hex(16), left_at=None, confirmed_at=None,
                          failures=0, last_failure="", source=source)
        conn.execute(sa.update(subscribers).where(subscribers.c.id == sub.id).values(**values))
        sub = _row(conn, sub.id)
        _queue(conn, settings, sub, "confirm", now)
    return "confirm"


def _lock_or_create(conn: Connection, email: str, frequency: str, chosen: list[str], source: str,
                    now: datetime) -> Subscriber:
    # The unique email decides a race between two forms for one new address: one row.
    stmt = insert_for(conn)(subscribers).values(
        email=email, frequency=frequency, categories=json.dumps(chosen), status="pending",
        nonce=secrets.token_hex(16), source=source, created_at=now, updated_at=now)
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["email"]))
    query = sa.select(subscribers).where(subscribers.c.email == email)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return Subscriber.of(conn.execute(query).one())


def _row(conn: Connection, subscriber_id: int) -> Subscriber:
    return Subscriber.of(conn.execute(sa.select(subscribers).where(subscribers.c.id == subscriber_id)).one())


def _queue(conn: Connection, settings: Settings, sub: Subscriber, what: str, now: datetime) -> None:
    manage = link(settings, "/subscribe/manage", manage_token(settings, sub))
    if what == "confirm":
        subject, body = mail_text.confirmation(settings, sub.email, sub.frequency,
                                               link(settings, "/subscribe/confirm", confirm_token(settings, sub, now)),
                                               CONFIRM_HOURS, manage)
    else:
        subject, body = mail_text.already_subscribed(settings, sub.email, sub.frequency, manage)
    outbox_module.queue(conn, sub.email, subject, body, what, now, subscriber_id=sub.id)


def confirm(engine: Engine, settings: Settings, token: str, now: datetime | None = None) -> tuple[str, Subscriber | None]:
    """Open a confirmation link: ("confirmed" | "already" | "expired" | "invalid", the subscriber)."""
    now = now or utcnow()
    parts = _parts(token, 3)
    if parts is None:
        return "invalid", None
    sub = get(engine, int(parts[0]))
    if sub is None:
        return "invalid", None
    expected = identity.keyed(settings, "confirm", str(sub.id), sub.nonce, parts[1])[:32]
    if not secrets.compare_digest(expected, parts[2]):
        return "invalid", None
    if sub.status == "confirmed":
        return "already", sub
    if int(parts[1]) < now.timestamp() or sub.status != "pending":
        return "expired", sub
    with writing(engine) as conn:
        done = conn.execute(sa.update(subscribers).where(subscribers.c.id == sub.id,
                                                         subscribers.c.status == "pending")
                            .values(status="confirmed", confirmed_at=now, updated_at=now)).rowcount
        sub = _row(conn, sub.id)
    return ("confirmed" if done else "already"), sub


def change(engine: Engine, sub: Subscriber, frequency: str, chosen: list[str], now: datetime | None = None) -> Subscriber:
    """A confirmed subscriber's new frequency and categories (from their manage link)."""
    frequency, chosen = clean_choice(frequency, chosen, categories(engine))
    with writing(engine) as conn:
        conn.execute(sa.update(subscribers).where(subscribers.c.id == sub.id)
                     .values(frequency=frequency, categories=json.dumps(chosen), updated_at=now or utcnow()))
        return _row(conn, sub.id)


def leave(engine: Engine, subscriber_id: int, now: datetime | None = None) -> bool:
    """Unsubscribe at once: nothing queued for them is sent. False when they had already left."""
    now = now or utcnow()
    with writing(engine) as conn:
        changed = conn.execute(sa.update(subscribers)
                               .where(subscribers.c.id == subscriber_id, subscribers.c.status != "left")
                               .values(status="left", left_at=now, updated_at=now)).rowcount
        conn.execute(sa.update(outbox).where(outbox.c.subscriber_id == subscriber_id, outbox.c.status == "queued")
                     .values(status="cancelled", last_error="the subscriber left"))
    return bool(changed)


# --- the command line ---------------------------------------------------------------------------------


def add(engine: Engine, settings: Settings, email: str, *, frequency: str = "daily", confirmed: bool = False,
        source: str = "command line", now: datetime | None = None) -> str:
    """Add one address: "added" (confirmed at once: consent was given elsewhere), "already", or what
    subscribe() says (a confirmation is sent). Raises BadAddress or HustingsError."""
    if not confirmed:
        return subscribe(engine, settings, email, frequency, source=source, now=now)
    email = normal_address(email)
    frequency, _ = clean_choice(frequency, [], [])
    now = now or utcnow()
    with writing(engine) as conn:
        sub = _lock_or_create(conn, email, frequency, [], source, now)
        if sub.status == "confirmed":
            return "already"
        conn.execute(sa.update(subscribers).where(subscribers.c.id == sub.id).values(
            status="confirmed", confirmed_at=now, updated_at=now, frequency=frequency, left_at=None, failures=0,
            last_failure="", source=source, nonce=sub.nonce if sub.status == "pending" else secrets.token_hex(16)))
    return "added"


def remove(engine: Engine, email: str) -> bool:
    """Delete an address now, with every message to it (a request to be forgotten)."""
    try:
        email = normal_address(email)
    except BadAddress:
        return False
    with writing(engine) as conn:
        ids = [r[0] for r in conn.execute(sa.select(subscribers.c.id).where(subscribers.c.email == email))]
        if not ids:
            return False
        conn.execute(sa.delete(outbox).where(outbox.c.subscriber_id.in_(ids)))
        conn.execute(sa.delete(subscribers).where(subscribers.c.id.in_(ids)))
    return True


def list_all(engine: Engine, status: str | None = None) -> list[Subscriber]:
    query = sa.select(subscribers).order_by(subscribers.c.id)
    if status:
        query = query.where(subscribers.c.status == status)
    with reading(engine) as conn:
        return [Subscriber.of(r) for r in conn.execute(query)]


def counts(engine: Engine) -> dict[str, int]:
    query = sa.select(subscribers.c.status, subscribers.c.frequency, sa.func.count()).group_by(
        subscribers.c.status, subscribers.c.frequency)
    out: dict[str, int] = {}
    with reading(engine) as conn:
        for status, frequency, n in conn.execute(query):
            out[status] = out.get(status, 0) + n
            if status == "confirmed":
                out[f"confirmed_{frequency}"] = n
    return out


# --- what the mailer tells us, and forgetting ----------------------------------------------------------


def delivered(conn: Connection, subscriber_id: int | None) -> None:
    if subscriber_id is not None:
        conn.execute(sa.update(subscribers).where(subscribers.c.id == subscriber_id, subscribers.c.failures > 0)
                     .values(failures=0, last_failure=""))


def failed(conn: Connection, subscriber_id: int | None, error: str, now: datetime) -> bool:
    """A permanent failure for this subscriber; True when it suspended them (SUSPEND_AFTER in a row)."""
    if subscriber_id is None:
        return False
    conn.execute(sa.update(subscribers).where(subscribers.c.id == subscriber_id)
                 .values(failures=subscribers.c.failures + 1, last_failure=error[:500], updated_at=now))
    suspended = conn.execute(sa.update(subscribers).where(
        subscribers.c.id == subscriber_id, subscribers.c.status == "confirmed",
        subscribers.c.failures >= SUSPEND_AFTER).values(status="suspended")).rowcount
    return bool(suspended)


def forget(engine: Engine, now: datetime | None = None) -> int:
    """Delete the addresses the privacy page says we delete (and their messages); returns how many."""
    now = now or utcnow()
    gone = sa.or_(
        sa.and_(subscribers.c.status == "pending",
                sa.func.coalesce(subscribers.c.confirm_sent_at, subscribers.c.created_at)
                < now - timedelta(days=PENDING_KEEP_DAYS)),
        sa.and_(subscribers.c.status == "left", subscribers.c.left_at < now - timedelta(days=LEFT_KEEP_DAYS)),
        sa.and_(subscribers.c.status == "suspended", subscribers.c.updated_at < now - timedelta(days=SUSPENDED_KEEP_DAYS)),
    )
    old_mail = sa.and_(outbox.c.subscriber_id.is_not(None), outbox.c.status != "queued",
                       outbox.c.created_at < now - timedelta(days=MAIL_KEEP_DAYS))
    with writing(engine) as conn:
        ids = [r[0] for r in conn.execute(sa.select(subscribers.c.id).where(gone))]
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            conn.execute(sa.delete(outbox).where(outbox.c.subscriber_id.in_(chunk)))
            conn.execute(sa.delete(subscribers).where(subscribers.c.id.in_(chunk)))
        # Old messages lose their address; a digest's row stays (it is what makes sending exactly once).
        conn.execute(sa.delete(outbox).where(old_mail, outbox.c.issue_id.is_(None)))
        conn.execute(sa.update(outbox).where(old_mail, outbox.c.to_address != "").values(to_address="", body=""))
    return len(ids)
