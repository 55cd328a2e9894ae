"""Ballots in the database: who a voter is, casting a ballot or recording why it was
refused, and reading ballots back for counting. The polls themselves are in store.py.

The guarantees, and where they come from:

* **One ballot per voter per poll** is the UNIQUE(poll_id, voter) constraint: the
  ballot is an INSERT ... ON CONFLICT DO NOTHING RETURNING, and no row back means a
  duplicate. Never a check-then-insert, so a hundred copies sent at once count once.
* **A ballot and its choices are one transaction**, and so is the rejection row written
  for every ballot refused (duplicate, closed, not_open, invalid, rate_limited), so the
  methodology box's "rejected" always adds up.
* **Open or closed is decided in the ballot's own transaction**, from the row as it is
  then (a moderator closing the poll at the same moment is serialised with it).
* **Who a voter is**: with integrity "cookie", a keyed hash of the reader's cookie hash
  and the poll's id (so ballots in different polls cannot be joined by reader); with
  integrity "ip", a keyed hash of (the poll's random ip_salt, the client's address).
  The salt is deleted when the poll closes (store.close_poll, store.expire_salts), after
  which no stored hash can be matched to an address. Each ballot also keeps the
  per-poll reader hash, so "you have voted" still works after the salt is gone, and a
  reader who already voted from one address is refused from another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from aggregator.db import (
    ballot_choices,
    ballot_rejections,
    ballots,
    insert_for,
    polls,
    reading,
    serialise_on,
    utcnow,
    writing,
)
from aggregator.errors import NotFound
from aggregator.settings import Settings

from ..identity import keyed
from .model import REJECTION_REASONS, Ballot, Poll
from .store import aware_time

BALLOTS_BY_READER = 1  # aggregator.db.serialise_on's namespace for one ballot per reader in IP polls


@dataclass(frozen=True)
class Cast:
    """What happened to a ballot: counted, or refused for `reason` (a REJECTION_REASONS key)."""

    counted: bool
    reason: str = ""
    ballot_id: int | None = None


# --- voters and ballots --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """Who a ballot is from, as stored: `voter` decides duplicates (per the poll's
    integrity); `reader` is the reader's per-poll hash. voter is "" once an IP poll's
    salt is gone (it has closed)."""

    voter: str
    reader: str


def identity(engine: Engine, settings: Settings, poll: Poll, reader: str, ip: str) -> Identity:
    """`reader` is the keyed hash of the reader cookie (Visitor.reader); `ip` the client address."""
    reader_key = keyed(settings, "poll-reader", str(poll.id), reader)
    if poll.integrity == "cookie":
        return Identity(reader_key, reader_key)
    with reading(engine) as conn:
        salt = conn.execute(sa.select(polls.c.ip_salt).where(polls.c.id == poll.id)).scalar() or ""
    voter = keyed(settings, "poll-ip", str(poll.id), salt, ip) if salt else ""
    return Identity(voter, reader_key)


def _reject(conn: Connection, poll_id: int, reason: str, now: datetime) -> None:
    conn.execute(sa.insert(ballot_rejections).values(poll_id=poll_id, reason=reason, created_at=now))


def record_rejection(engine: Engine, poll_id: int, reason: str, now: datetime | None = None) -> None:
    """Count a refused ballot (the methodology box reports them by reason)."""
    if reason not in REJECTION_REASONS:
        raise ValueError(f"unknown rejection reason {reason!r}")
    with writing(engine) as conn:
        _reject(conn, poll_id, reason, now or utcnow())


def cast_ballot(engine: Engine, poll: Poll, ballot: Ballot, voter: str, reader: str,
                now: datetime | None = None) -> Cast:
    """Store a valid ballot (from community.polls.validate_ballot) with its choices, in one
    transaction; or refuse it, recording why: 'not_open', 'closed' (decided from the
    poll's row in this transaction) or 'duplicate' (decided by the unique constraint;
    for IP polls, also a reader who has voted from another address)."""
    now = aware_time(now, "now") or utcnow()
    if ballot.poll_id != poll.id:
        raise ValueError(f"a ballot for poll {ballot.poll_id} was cast in poll {poll.id}")
    with writing(engine) as conn:
        row = conn.execute(sa.select(polls.c.opens_at, polls.c.closes_at).where(polls.c.id == poll.id)).first()
        if row is None:
            raise NotFound(f"there is no poll number {poll.id}")
        if now < row.opens_at or (row.closes_at is not None and now >= row.closes_at):
            reason = "not_open" if now < row.opens_at else "closed"
            _reject(conn, poll.id, reason, now)
            return Cast(False, reason)
        if not voter:
            raise ValueError("an open poll's ballot needs a voter")
        if poll.integrity == "ip" and reader:
            serialise_on(conn, BALLOTS_BY_READER, f"{poll.id}:{reader}")  # the check below holds on PostgreSQL too
        if poll.integrity == "ip" and reader and conn.execute(
                sa.select(ballots.c.id).where(ballots.c.poll_id == poll.id, ballots.c.reader == reader)).first():
            _reject(conn, poll.id, "duplicate", now)
            return Cast(False, "duplicate")
        stmt = insert_for(engine)(ballots).values(poll_id=poll.id, voter=voter, reader=reader, created_at=now)
        ballot_id = conn.execute(stmt.on_conflict_do_nothing(index_elements=["poll_id", "voter"])
                                 .returning(ballots.c.id)).scalar()
        if ballot_id is None:
            _reject(conn, poll.id, "duplicate", now)
            return Cast(False, "duplicate")
        ranked = poll.kind == "ranked"
        conn.execute(sa.insert(ballot_choices), [
            {"ballot_id": ballot_id, "option_id": option_id, "rank": i + 1 if ranked else None}
            for i, option_id in enumerate(ballot.choices)])
    return Cast(True, "", ballot_id)


def voted_as(engine: Engine, settings: Settings, poll: Poll, reader: str, ip: str) -> str:
    """'' if this reader may still vote as far as we know; 'reader' if their cookie has a
    ballot in this poll; 'address' if their IP address has one (IP polls)."""
    ident = identity(engine, settings, poll, reader, ip)
    with reading(engine) as conn:
        mine = conn.execute(sa.select(ballots.c.id).where(
            ballots.c.poll_id == poll.id,
            ballots.c.voter == ident.voter if poll.integrity == "cookie" else ballots.c.reader == ident.reader,
        ).limit(1)).first()
        if mine is not None:
            return "reader"
        if poll.integrity == "ip" and ident.voter:
            if conn.execute(sa.select(ballots.c.id).where(ballots.c.poll_id == poll.id,
                                                          ballots.c.voter == ident.voter)).first():
                return "address"
    return ""


def has_voted(engine: Engine, settings: Settings, poll: Poll, reader: str, ip: str) -> bool:
    return bool(voted_as(engine, settings, poll, reader, ip))


# --- what counting needs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BallotSummary:
    """How many ballots a poll has, its highest ballot id and the first and last ballot's
    times. (count, last_id) changes whenever a ballot is added (ballots are never changed
    or removed), so a count made from them can be kept until it does."""

    count: int
    last_id: int
    first_at: datetime | None
    last_at: datetime | None


def ballot_summary(engine: Engine, poll_id: int) -> BallotSummary:
    with reading(engine) as conn:
        row = conn.execute(sa.select(sa.func.count(), sa.func.max(ballots.c.id), sa.func.min(ballots.c.created_at),
                                     sa.func.max(ballots.c.created_at))
                           .where(ballots.c.poll_id == poll_id)).one()
    return BallotSummary(int(row[0]), int(row[1] or 0), row[2], row[3])  # min/max keep the UTC type


def ballots_for(engine: Engine, poll: Poll) -> list[Ballot]:
    """Every stored ballot of the poll, for counting: choices in rank order for a ranked
    poll, in ballot order (option position) otherwise."""
    position = {o.id: o.position for o in poll.options}
    query = (sa.select(ballot_choices.c.ballot_id, ballot_choices.c.option_id, ballot_choices.c.rank)
             .join(ballots, ballots.c.id == ballot_choices.c.ballot_id)
             .where(ballots.c.poll_id == poll.id)
             .order_by(ballot_choices.c.ballot_id))
    grouped: dict[int, list[tuple[int, int]]] = {}
    with reading(engine) as conn:
        for ballot_id, option_id, rank in conn.execute(query):
            key = rank if poll.kind == "ranked" else position.get(option_id, -1)
            grouped.setdefault(ballot_id, []).append((key if key is not None else 0, option_id))
    return [Ballot(poll.id, tuple(o for _, o in sorted(choices))) for choices in grouped.values()]


def rejection_counts(engine: Engine, poll_id: int) -> dict[str, int]:
    """Refused ballots by reason (only reasons that occurred)."""
    query = (sa.select(ballot_rejections.c.reason, sa.func.count())
             .where(ballot_rejections.c.poll_id == poll_id).group_by(ballot_rejections.c.reason))
    with reading(engine) as conn:
        return {reason: int(n) for reason, n in conn.execute(query)}


def ballot_times(engine: Engine, poll_id: int) -> list[datetime]:
    """When each counted ballot arrived, oldest first (the moderators' chart)."""
    query = sa.select(ballots.c.created_at).where(ballots.c.poll_id == poll_id).order_by(ballots.c.created_at)
    with reading(engine) as conn:
        return list(conn.execute(query).scalars())


