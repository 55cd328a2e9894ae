"""Backing a campaign, once per reader; bursts from one address; backers who asked for updates by mail.

* **One back per reader** is the UNIQUE(campaign_id, reader) constraint: the back is an
  INSERT ... ON CONFLICT DO NOTHING RETURNING, and the campaign's ``backers`` count goes up in
  the same transaction only when a row came back. Never a check-then-insert, so a hundred
  copies of one reader's back, sent at once, count once, on SQLite and PostgreSQL alike.
  ``reader`` is the keyed hash of the reader cookie (community/identity.py).
* **Bursts.** Each back keeps a keyed hash of the address salted with the day, so backs can be
  grouped by address for a day and never after. More than BURST_FROM_ONE backs from one
  address within an hour (new readers, as someone clearing cookies would be) is a burst:
  moderators see every burst on /moderate/campaigns and on the campaign's moderation page,
  with the backs-over-time chart. Backs are counted, not refused: a hall of members shares one
  address, and a moderator can judge what a rule cannot.
* **Updates by mail.** A backer may leave an address: a pending follower row and a
  confirmation mail (at most MAILS_PER_DAY to one address, then silence), and nothing else
  until the link in it is opened. Every update mail carries a one-click unsubscribe link
  (RFC 8058, in the List-Unsubscribe header too); leaving cancels the mails still queued.
  Unconfirmed addresses are deleted PENDING_KEEP_DAYS after the last confirmation mail, and
  departed ones LEFT_KEEP_DAYS after leaving (the forget_campaign_followers job).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from aggregator.db import (
    CHANGE_COUNTER,
    campaign_backings,
    campaign_followers,
    campaigns,
    insert_for,
    next_counter,
    outbox,
    reading,
    utcnow,
    writing,
)
from aggregator.errors import HustingsError, NotFound
from aggregator.settings import Settings

from .. import identity, ratelimits
from .. import outbox as outbox_module
from ..addresses import normal_address
from . import letters
from .store import Campaign, url
from .text import one_line

BURST_FROM_ONE = 10  # more new backers than this from one address within an hour is flagged
BURST_WINDOW = timedelta(hours=1)
CONFIRM_HOURS = 48
MAILS_PER_DAY = "3/1d"
PENDING_KEEP_DAYS = 7
LEFT_KEEP_DAYS = 7
FORGET_EVERY_S = 3600
NAME_CHARS = 120


class Closed(HustingsError):
    """The campaign takes no backers (pending, refused or closed)."""


@dataclass(frozen=True)
class Backed:
    counted: bool  # False: this reader had already backed it
    backers: int  # the campaign's count after this back
    mail: str = ""  # what happened to the address given: "confirm" | "already" | "limited" | ""


def back(engine: Engine, settings: Settings, c: Campaign, reader: str, ip: str, *, listed_name: str = "",
         email: str = "", now: datetime | None = None) -> Backed:
    """Count one reader's back (listed by name only if they gave one to show). Raises Closed, or
    BadAddress for an address that cannot be used (checked before anything is written)."""
    now = now or utcnow()
    email = normal_address(email) if (email or "").strip() else ""
    name = one_line(listed_name)[:NAME_CHARS]
    with writing(engine) as conn:
        status = conn.execute(sa.select(campaigns.c.status).where(campaigns.c.id == c.id)).scalar()
        if status is None:
            raise NotFound(f"there is no campaign number {c.id}")
        if status != "open":
            raise Closed(f"this campaign is {status}: it takes no backers")
        stmt = insert_for(engine)(campaign_backings).values(
            campaign_id=c.id, reader=reader, ip_hash=identity.ip_hash(settings, ip, now), listed_name=name,
            created_at=now)
        inserted = conn.execute(stmt.on_conflict_do_nothing(index_elements=["campaign_id", "reader"])
                                .returning(campaign_backings.c.id)).first()
        if inserted is not None:
            conn.execute(sa.update(campaigns).where(campaigns.c.id == c.id)
                         .values(backers=campaigns.c.backers + 1))
            next_counter(conn, CHANGE_COUNTER)  # the directory and the front page's box show the count
        backers = conn.execute(sa.select(campaigns.c.backers).where(campaigns.c.id == c.id)).scalar()
    mail = follow(engine, settings, c, email, now) if email else ""
    return Backed(inserted is not None, int(backers), mail)


def has_backed(engine: Engine, campaign_id: int, reader: str) -> bool:
    with reading(engine) as conn:
        return conn.execute(sa.select(campaign_backings.c.id).where(
            campaign_backings.c.campaign_id == campaign_id, campaign_backings.c.reader == reader)).first() is not None


def counted(engine: Engine, campaign_id: int) -> int:
    """Backs stored (the tests compare it with the campaign's count)."""
    with reading(engine) as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(campaign_backings)
                            .where(campaign_backings.c.campaign_id == campaign_id)).scalar()


def back_times(engine: Engine, campaign_id: int) -> list[datetime]:
    """When each back arrived, oldest first (the chart over time)."""
    query = (sa.select(campaign_backings.c.created_at).where(campaign_backings.c.campaign_id == campaign_id)
             .order_by(campaign_backings.c.created_at))
    with reading(engine) as conn:
        return list(conn.execute(query).scalars())


def listed_names(engine: Engine, campaign_id: int, limit: int = 200) -> list[str]:
    """The names of backers who chose to be listed, newest first."""
    query = (sa.select(campaign_backings.c.listed_name)
             .where(campaign_backings.c.campaign_id == campaign_id, campaign_backings.c.listed_name != "")
             .order_by(campaign_backings.c.id.desc()).limit(limit))
    with reading(engine) as conn:
        return [r[0] for r in conn.execute(query)]


@dataclass(frozen=True)
class Burst:
    campaign_id: int
    address: str  # the first characters of the day's keyed hash: tells bursts apart, names no one
    first_at: datetime
    last_at: datetime
    backs: int


def bursts(engine: Engine, campaign_id: int | None = None, *, since: datetime | None = None) -> list[Burst]:
    """Addresses that brought more than BURST_FROM_ONE backs within BURST_WINDOW, per campaign."""
    query = (sa.select(campaign_backings.c.campaign_id, campaign_backings.c.ip_hash, campaign_backings.c.created_at)
             .where(campaign_backings.c.ip_hash != "")
             .order_by(campaign_backings.c.campaign_id, campaign_backings.c.ip_hash, campaign_backings.c.created_at))
    if campaign_id is not None:
        query = query.where(campaign_backings.c.campaign_id == campaign_id)
    if since is not None:
        query = query.where(campaign_backings.c.created_at >= since)
    found: list[Burst] = []
    with reading(engine) as conn:
        group: list = []
        for row in [*conn.execute(query), None]:
            if group and (row is None or (row.campaign_id, row.ip_hash) != (group[0].campaign_id, group[0].ip_hash)):
                found.extend(_bursts_in(group))
                group = []
            if row is not None:
                group.append(row)
    return sorted(found, key=lambda b: b.last_at, reverse=True)


def _bursts_in(rows: list) -> list[Burst]:
    """The windows of one address's backs (oldest first) holding more than BURST_FROM_ONE, merged."""
    out: list[Burst] = []
    start = 0
    for end, row in enumerate(rows):
        while row.created_at - rows[start].created_at > BURST_WINDOW:
            start += 1
        if end - start + 1 > BURST_FROM_ONE:
            first = rows[start]
            if out and out[-1].last_at >= first.created_at - BURST_WINDOW:
                prev = out[-1]
                n = sum(1 for r in rows if prev.first_at <= r.created_at <= row.created_at)
                out[-1] = Burst(prev.campaign_id, prev.address, prev.first_at, row.created_at, n)
            else:
                out.append(Burst(row.campaign_id, row.ip_hash[:8], first.created_at, row.created_at, end - start + 1))
    return out


# --- followers: updates by mail --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Follower:
    id: int
    campaign_id: int
    email: str
    status: str
    nonce: str


def _follower(row) -> Follower:
    return Follower(row.id, row.campaign_id, row.email, row.status, row.nonce)


def unsubscribe_token(settings: Settings, f: Follower) -> str:
    return f"{f.id}.{identity.keyed(settings, 'campaign-follower', str(f.id), f.nonce)[:32]}"


def unsubscribe_url(settings: Settings, f: Follower) -> str:
    return url(settings, "/campaigns/unsubscribe", unsubscribe_token(settings, f))


def _confirm_token(settings: Settings, f: Follower, now: datetime) -> str:
    expires = int((now + timedelta(hours=CONFIRM_HOURS)).timestamp())
    return f"{f.id}.{expires}.{identity.keyed(settings, 'campaign-follow', str(f.id), f.nonce, str(expires))[:32]}"


def _get_follower(conn: Connection, follower_id: int) -> Follower | None:
    row = conn.execute(sa.select(campaign_followers).where(campaign_followers.c.id == follower_id)).first()
    return _follower(row) if row is not None else None


def follow(engine: Engine, settings: Settings, c: Campaign, email: str, now: datetime | None = None) -> str:
    """Ask `email` to confirm it wants this campaign's updates: "confirm" (a confirmation was
    queued), "already" (it gets them), or "limited" (its mails for today were sent)."""
    now = now or utcnow()
    email = normal_address(email)
    if settings.rate_limits and ratelimits.hit(engine, settings, "campaign-follow-mail", email, MAILS_PER_DAY,
                                               now.timestamp()):
        return "limited"
    with writing(engine) as conn:
        stmt = insert_for(engine)(campaign_followers).values(campaign_id=c.id, email=email, status="pending",
                                                             nonce=secrets.token_hex(16), created_at=now)
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["campaign_id", "email"]))
        query = sa.select(campaign_followers).where(campaign_followers.c.campaign_id == c.id,
                                                    campaign_followers.c.email == email)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        f = _follower(conn.execute(query).one())
        if f.status == "confirmed":
            return "already"
        values: dict = {"confirm_sent_at": now}
        if f.status == "left":  # coming back: new links, a new confirmation
            values.update(status="pending", nonce=secrets.token_hex(16), left_at=None, confirmed_at=None)
        conn.execute(sa.update(campaign_followers).where(campaign_followers.c.id == f.id).values(**values))
        f = _get_follower(conn, f.id)
        subject, body = letters.follow_confirmation(
            settings, c.title, url(settings, "/campaigns/follow/confirm", _confirm_token(settings, f, now)),
            CONFIRM_HOURS)
        outbox_module.queue(conn, email, subject, body, "campaign-follow", now)
    return "confirm"


def confirm_follow(engine: Engine, settings: Settings, token: str,
                   now: datetime | None = None) -> tuple[str, Follower | None]:
    """Open a follower's confirmation link: ("confirmed" | "already" | "expired" | "invalid", follower)."""
    now = now or utcnow()
    bits = (token or "").strip().split(".")
    if len(bits) != 3 or len(token) > 120 or not all(b.isdigit() and len(b) < 19 for b in bits[:2]):
        return "invalid", None
    with writing(engine) as conn:
        f = _get_follower(conn, int(bits[0]))
        if f is None:
            return "invalid", None
        expected = identity.keyed(settings, "campaign-follow", str(f.id), f.nonce, bits[1])[:32]
        if not secrets.compare_digest(expected, bits[2]):
            return "invalid", None
        if f.status == "confirmed":
            return "already", f
        if int(bits[1]) < now.timestamp() or f.status != "pending":
            return "expired", f
        conn.execute(sa.update(campaign_followers).where(campaign_followers.c.id == f.id)
                     .values(status="confirmed", confirmed_at=now))
        return "confirmed", _get_follower(conn, f.id)


def follower_by_token(engine: Engine, settings: Settings, token: str) -> Follower | None:
    bits = (token or "").strip().split(".")
    if len(bits) != 2 or len(token) > 100 or not (bits[0].isdigit() and len(bits[0]) < 19):
        return None
    with reading(engine) as conn:
        f = _get_follower(conn, int(bits[0]))
    if f is None or not secrets.compare_digest(unsubscribe_token(settings, f), token.strip()):
        return None
    return f


def leave(engine: Engine, settings: Settings, f: Follower, now: datetime | None = None) -> bool:
    """Stop this campaign's mail to them at once (queued mail is cancelled). False if already left."""
    now = now or utcnow()
    with writing(engine) as conn:
        changed = conn.execute(sa.update(campaign_followers)
                               .where(campaign_followers.c.id == f.id, campaign_followers.c.status != "left")
                               .values(status="left", left_at=now)).rowcount
        conn.execute(sa.update(outbox).where(outbox.c.list_unsubscribe == unsubscribe_url(settings, f),
                                             outbox.c.status == "queued")
                     .values(status="cancelled", last_error="the backer unsubscribed"))
    return bool(changed)


def queue_news(conn: Connection, settings: Settings, c: Campaign, kind: str, text: str, now: datetime, *,
               responder: str = "", role: str = "") -> int:
    """One mail per confirmed follower of the campaign, in the caller's transaction; returns how many."""
    page = url(settings, f"/campaigns/{c.slug}")
    n = 0
    for row in conn.execute(sa.select(campaign_followers).where(campaign_followers.c.campaign_id == c.id,
                                                                 campaign_followers.c.status == "confirmed")):
        f = _follower(row)
        leave_url = unsubscribe_url(settings, f)
        subject, body = letters.follower_news(settings, c.title, kind, text, page, leave_url, responder, role)
        outbox_module.queue(conn, f.email, subject, body, f"campaign-{kind}", now, list_unsubscribe=leave_url)
        n += 1
    return n


def follower_counts(engine: Engine, campaign_id: int) -> dict[str, int]:
    with reading(engine) as conn:
        return dict(conn.execute(sa.select(campaign_followers.c.status, sa.func.count())
                                 .where(campaign_followers.c.campaign_id == campaign_id)
                                 .group_by(campaign_followers.c.status)).all())


def forget(engine: Engine, now: datetime | None = None) -> int:
    """Delete the addresses the privacy page promises to (unconfirmed, or departed a week ago)."""
    now = now or utcnow()
    gone = sa.or_(
        sa.and_(campaign_followers.c.status == "pending",
                sa.func.coalesce(campaign_followers.c.confirm_sent_at, campaign_followers.c.created_at)
                < now - timedelta(days=PENDING_KEEP_DAYS)),
        sa.and_(campaign_followers.c.status == "left",
                campaign_followers.c.left_at < now - timedelta(days=LEFT_KEEP_DAYS)))
    with writing(engine) as conn:
        return conn.execute(sa.delete(campaign_followers).where(gone)).rowcount
