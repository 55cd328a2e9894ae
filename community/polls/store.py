"""Reader polls in the database: creating and closing them, casting ballots, and reading
back what web/polls.py (the counting core) needs.

It lives in web/, not aggregator/, because it speaks the counting core's types
(web.polls.Poll, Ballot) and keys every stored identity with the site's secret
(web.security.keyed); aggregator/ never imports web/. The command line uses it as it
uses web.security for moderators.

The guarantees, and where they come from:

* **One ballot per voter per poll** is the UNIQUE(poll_id, voter) constraint: the
  ballot is an INSERT ... ON CONFLICT DO NOTHING RETURNING, and no row back means a
  duplicate. Never a check-then-insert, so a hundred copies sent at once count once.
* **A ballot and its choices are one transaction**, and so is the rejection row written
  for every ballot refused (duplicate, closed, not_open, invalid), so the methodology
  box's "rejected" always adds up.
* **Open or closed is decided in the ballot's own transaction**, from the row as it is
  then (a moderator closing the poll at the same moment is serialised with it).
* **Who a voter is**: with integrity "cookie", a keyed hash of the reader's cookie hash
  and the poll's id (so ballots in different polls cannot be joined by reader); with
  integrity "ip", a keyed hash of (the poll's random ip_salt, the client's address).
  The salt is deleted when the poll closes (close_poll, and expire_salts for polls that
  reach their closing time: run on every read of polls), after which no stored hash
  can be matched to an address. Each ballot also keeps the per-poll reader hash, so
  "you have voted" still works after the salt is gone, and a reader who already voted
  from one address is refused from another.
* **Options cannot be deleted once voted on**: ballot_choices' option foreign key is
  ON DELETE RESTRICT, and set_options refuses with a message when the poll has ballots.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from aggregator.db import (
    CHANGE_COUNTER,
    ballot_choices,
    ballot_rejections,
    ballots,
    insert_for,
    next_counter,
    poll_options,
    polls,
    reading,
    utcnow,
    writing,
)
from aggregator.errors import HustingsError, NotFound
from aggregator.settings import Settings

from ..identity import keyed
from ..moderation_log import log_action
from .model import INTEGRITIES, KINDS, REJECTION_REASONS, VISIBILITIES, Ballot, Option, Poll, is_closed, is_open

MAX_OPTIONS = 50
MAX_QUESTION = 500  # the column's size
MAX_LABEL = 300
MAX_DESCRIPTION = 5000


class PollError(HustingsError):
    """A poll that cannot be made or changed as asked; the message says why."""


@dataclass(frozen=True)
class PollRecord:
    """A poll as stored: the counting core's Poll and what only pages show."""

    poll: Poll
    description: str
    created_by: str
    created_at: datetime

    @property
    def id(self) -> int:
        return self.poll.id

    def state(self, now: datetime) -> str:
        """'upcoming', 'open' or 'closed'."""
        if is_open(self.poll, now):
            return "open"
        return "closed" if is_closed(self.poll, now) else "upcoming"


@dataclass(frozen=True)
class Cast:
    """What happened to a ballot: counted, or refused for `reason` (a REJECTION_REASONS key)."""

    counted: bool
    reason: str = ""
    ballot_id: int | None = None


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise PollError(f"{name} must say its time zone (e.g. 2026-05-01T09:00Z)")
    return value.astimezone(timezone.utc)


def parse_time(text: str, name: str) -> datetime | None:
    """A time typed into the form or given on the command line: ISO 8601, UTC unless it
    says otherwise ("2026-05-01T09:00", "2026-05-01 09:00+01:00", "2026-05-01"). Blank: None."""
    text = text.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace(" ", "T", 1) if len(text) > 10 else text)
    except ValueError:
        raise PollError(f"the {name} {text[:40]!r} is not a date and time like 2026-05-01T09:00") from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# --- creating, changing and closing -------------------------------------------------------------------


def _clean_options(labels: list[str]) -> list[str]:
    cleaned = [" ".join(str(label).split()) for label in labels]
    cleaned = [label for label in cleaned if label]
    if len(cleaned) < 2:
        raise PollError("a poll needs at least two options")
    if len(cleaned) > MAX_OPTIONS:
        raise PollError(f"a poll can have at most {MAX_OPTIONS} options, not {len(cleaned)}")
    seen: set[str] = set()
    for label in cleaned:
        if len(label) > MAX_LABEL:
            raise PollError(f"an option can be at most {MAX_LABEL} characters: {label[:40]!r}… is {len(label)}")
        if label.casefold() in seen:
            raise PollError(f"two options are labelled {label!r}: readers could not tell them apart")
        seen.add(label.casefold())
    return cleaned


def create_poll(engine: Engine, *, question: str, options: list[str], created_by: str, kind: str = "single",
                description: str = "", max_choices: int | None = None, opens_at: datetime | None = None,
                closes_at: datetime | None = None, visibility: str = "after_vote", integrity: str = "cookie",
                now: datetime | None = None) -> PollRecord:
    """Store a new poll and its options, with a line in the public moderation log.
    Raises PollError, saying what is wrong, for a poll that could not be counted sensibly."""
    now = _aware(now, "now") or utcnow()
    question = " ".join(str(question or "").split())
    description = str(description or "").strip().replace("\r\n", "\n")
    if not question:
        raise PollError("a poll needs a question")
    if len(question) > MAX_QUESTION:
        raise PollError(f"the question can be at most {MAX_QUESTION} characters (it is {len(question)})")
    if len(description) > MAX_DESCRIPTION:
        raise PollError(f"the description can be at most {MAX_DESCRIPTION} characters (it is {len(description)})")
    if kind not in KINDS:
        raise PollError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if visibility not in VISIBILITIES:
        raise PollError(f"visibility must be one of {', '.join(VISIBILITIES)}, not {visibility!r}")
    if integrity not in INTEGRITIES:
        raise PollError(f"integrity must be one of {', '.join(INTEGRITIES)}, not {integrity!r}")
    labels = _clean_options(options)
    if max_choices is not None and kind != "multiple":
        raise PollError("a maximum number of choices only applies to multiple-choice polls")
    if max_choices is not None and not 1 <= max_choices <= len(labels):
        raise PollError(f"the maximum number of choices must be from 1 to {len(labels)}, not {max_choices}")
    opens_at = _aware(opens_at, "the opening time") or now
    closes_at = _aware(closes_at, "the closing time")
    if closes_at is not None and closes_at <= opens_at:
        raise PollError("the closing time must be after the opening time")
    if closes_at is not None and closes_at <= now:
        raise PollError("the closing time has already passed")
    # The counting core's own checks, once more, before anything is stored.
    try:
        Poll(0, question, kind, tuple(Option(i + 1, label, i) for i, label in enumerate(labels)), opens_at,
             closes_at, visibility, integrity, max_choices)
    except ValueError as exc:
        raise PollError(str(exc)) from None
    with writing(engine) as conn:
        poll_id = conn.execute(sa.insert(polls).values(
            question=question, description=description, kind=kind, max_choices=max_choices,
            visibility=visibility, integrity=integrity,
            ip_salt=secrets.token_hex(32) if integrity == "ip" else "",
            opens_at=opens_at, closes_at=closes_at, created_by=created_by[:320], created_at=now,
        )).inserted_primary_key[0]
        conn.execute(sa.insert(poll_options), [{"poll_id": poll_id, "label": label, "position": i}
                                               for i, label in enumerate(labels)])
        log_action(conn, created_by, "create_poll", target_type="poll", target_id=poll_id, target_label=question,
                   reason=f"{kind} choice, {len(labels)} options; results {visibility.replace('_', ' ')}; "
                          f"one ballot per {'reader cookie' if integrity == 'cookie' else 'IP address'}", at=now)
        next_counter(conn, CHANGE_COUNTER)  # the front page lists open polls
    record = get_poll(engine, poll_id, now=now)
    assert record is not None
    return record


def set_options(engine: Engine, poll_id: int, labels: list[str], *, by: str, now: datetime | None = None) -> None:
    """Replace a poll's options. Refused once anyone has voted: an option someone chose
    cannot be deleted or renamed (the database's RESTRICT foreign key refuses the
    delete too), and positions decide instant-runoff's last tie-break."""
    now = _aware(now, "now") or utcnow()
    labels = _clean_options(labels)
    with writing(engine) as conn:
        row = conn.execute(sa.select(polls.c.question, polls.c.kind, polls.c.max_choices)
                           .where(polls.c.id == poll_id)).first()
        if row is None:
            raise NotFound(f"there is no poll number {poll_id}")
        voted = _ballot_count(conn, poll_id)
        if voted:
            raise PollError(f"poll {poll_id} already has {voted:,} ballot{'s' if voted != 1 else ''}: its options "
                            "cannot be changed or deleted once anyone has voted (close it and make a new poll)")
        if row.max_choices is not None and row.max_choices > len(labels):
            raise PollError(f"the poll allows up to {row.max_choices} choices, more than {len(labels)} options")
        try:
            conn.execute(sa.delete(poll_options).where(poll_options.c.poll_id == poll_id))
        except IntegrityError:  # a ballot got in first (another database's isolation): the key refuses
            raise PollError(f"poll {poll_id} has ballots: its options cannot be changed") from None
        conn.execute(sa.insert(poll_options), [{"poll_id": poll_id, "label": label, "position": i}
                                               for i, label in enumerate(labels)])
        log_action(conn, by, "edit_poll_options", target_type="poll", target_id=poll_id, target_label=row.question,
                   reason="; ".join(labels)[:1000], at=now)
        next_counter(conn, CHANGE_COUNTER)


def close_poll(engine: Engine, poll_id: int, *, by: str, now: datetime | None = None) -> bool:
    """Close a poll now: its closing time becomes now, its IP salt is deleted, and the
    moderation log says who closed it. False if it had already closed (the salt is
    deleted all the same). A poll that has not opened yet cannot be closed."""
    now = _aware(now, "now") or utcnow()
    with writing(engine) as conn:
        row = conn.execute(sa.select(polls.c.question, polls.c.opens_at, polls.c.closes_at)
                           .where(polls.c.id == poll_id)).first()
        if row is None:
            raise NotFound(f"there is no poll number {poll_id}")
        if row.closes_at is not None and row.closes_at <= now:
            conn.execute(sa.update(polls).where(polls.c.id == poll_id).values(ip_salt=""))
            return False
        if row.opens_at >= now:
            raise PollError(f"poll {poll_id} has not opened yet (it opens {row.opens_at:%Y-%m-%d %H:%M} UTC): "
                            "there is nothing to close")
        conn.execute(sa.update(polls).where(polls.c.id == poll_id).values(closes_at=now, ip_salt=""))
        log_action(conn, by, "close_poll", target_type="poll", target_id=poll_id, target_label=row.question,
                   reason="closed early by a moderator" if row.closes_at else "closed by a moderator", at=now)
        next_counter(conn, CHANGE_COUNTER)
    return True


def expire_salts(engine: Engine, now: datetime | None = None) -> int:
    """Delete the per-poll address salt of every poll whose closing time has come, so the
    stored voter hashes can no longer be tied to an address (the methodology box's promise).
    The worker runs this every few minutes; pages also call it. Returns how many."""
    now = now or utcnow()
    with writing(engine) as conn:
        return conn.execute(sa.update(polls).where(polls.c.ip_salt != "", polls.c.closes_at.is_not(None),
                                                   polls.c.closes_at <= now).values(ip_salt="")).rowcount


# --- reading polls -----------------------------------------------------------------------------------------


def _records(conn: Connection, rows) -> list[PollRecord]:
    rows = list(rows)
    if not rows:
        return []
    options: dict[int, list[Option]] = {}
    query = (sa.select(poll_options).where(poll_options.c.poll_id.in_([r.id for r in rows]))
             .order_by(poll_options.c.position, poll_options.c.id))
    for o in conn.execute(query):
        options.setdefault(o.poll_id, []).append(Option(o.id, o.label, o.position))
    return [PollRecord(Poll(r.id, r.question, r.kind, tuple(options.get(r.id, ())), r.opens_at, r.closes_at,
                            r.visibility, r.integrity, r.max_choices),
                       r.description, r.created_by, r.created_at) for r in rows]


def _salts_to_expire(rows, now: datetime) -> bool:
    return any(r.ip_salt and r.closes_at is not None and r.closes_at <= now for r in rows)


def get_poll(engine: Engine, poll_id: int, now: datetime | None = None) -> PollRecord | None:
    now = now or utcnow()
    with reading(engine) as conn:
        row = conn.execute(sa.select(polls).where(polls.c.id == poll_id)).first()
        found = _records(conn, [row]) if row is not None else []
    if row is not None and _salts_to_expire([row], now):
        expire_salts(engine, now)
    return found[0] if found else None


def load_poll(engine: Engine, poll_id: int) -> Poll | None:
    """The poll as the counting core takes it, or None."""
    record = get_poll(engine, poll_id)
    return record.poll if record else None


def list_polls(engine: Engine, now: datetime | None = None, *, open_only: bool = False,
               limit: int = 100) -> list[PollRecord]:
    """Polls newest first (open ones only with open_only); expires closed polls' salts."""
    now = now or utcnow()
    query = sa.select(polls).order_by(polls.c.opens_at.desc(), polls.c.id.desc()).limit(limit)
    if open_only:
        query = query.where(polls.c.opens_at <= now, sa.or_(polls.c.closes_at.is_(None), polls.c.closes_at > now))
    with reading(engine) as conn:
        rows = conn.execute(query).all()
        found = _records(conn, rows)
        stale = conn.execute(sa.select(polls.c.id).where(polls.c.ip_salt != "", polls.c.closes_at.is_not(None),
                                                         polls.c.closes_at <= now).limit(1)).first()
    if stale is not None:
        expire_salts(engine, now)
    return found


def open_polls(engine: Engine, now: datetime | None = None, limit: int = 100) -> list[PollRecord]:
    return list_polls(engine, now, open_only=True, limit=limit)


def last_change(records: list[PollRecord], now: datetime) -> datetime | None:
    """When the listing of these polls last changed: made, opened or closed (up to now)."""
    times = [r.created_at for r in records]
    times += [t for r in records for t in (r.poll.opens_at, r.poll.closes_at) if t is not None and t <= now]
    return max(times) if times else None


def polls_changed_at(engine: Engine, now: datetime | None = None) -> datetime | None:
    """When any poll was last made, opened or closed (up to now): pages listing polls
    have changed no later than this."""
    now = now or utcnow()
    query = sa.select(sa.func.max(polls.c.created_at),
                      sa.func.max(sa.case((polls.c.opens_at <= now, polls.c.opens_at))),
                      sa.func.max(sa.case((polls.c.closes_at <= now, polls.c.closes_at))))
    with reading(engine) as conn:
        row = conn.execute(query).one()
    times = [t for t in row if t is not None]
    return max(times) if times else None


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
    """Store a valid ballot (from web.polls.validate_ballot) with its choices, in one
    transaction; or refuse it, recording why: 'not_open', 'closed' (decided from the
    poll's row in this transaction) or 'duplicate' (decided by the unique constraint;
    for IP polls, also a reader who has voted from another address)."""
    now = _aware(now, "now") or utcnow()
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


def _ballot_count(conn: Connection, poll_id: int) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(ballots).where(ballots.c.poll_id == poll_id)).scalar()


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


def ballot_counts(engine: Engine) -> dict[int, int]:
    """Ballots counted per poll (for the command line's listing)."""
    with reading(engine) as conn:
        return {pid: int(n) for pid, n in conn.execute(
            sa.select(ballots.c.poll_id, sa.func.count()).group_by(ballots.c.poll_id))}
