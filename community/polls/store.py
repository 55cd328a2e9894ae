"""Reader polls in the database: creating, changing and closing them, and reading them
back as the counting core's types (community/polls/model.py). Ballots, and who cast
them, are in ballot_store.py.

The guarantees, and where they come from:

* **Every change is logged**: creating a poll, changing its options and closing it each
  write their moderation-log row in the same transaction (community/moderation.py is
  the door moderators use).
* **The address salt does not outlive the poll**: a poll with integrity "ip" gets a
  random ip_salt, deleted when the poll closes (close_poll, and expire_salts for polls
  that reach their closing time: run on every read of polls and by the worker), after
  which no stored hash can be matched to an address (see ballot_store.identity).
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

from aggregator.db import CHANGE_COUNTER, ballots, next_counter, poll_options, polls, reading, utcnow, writing
from aggregator.errors import HustingsError, NotFound

from ..moderation_log import log_action
from .model import INTEGRITIES, KINDS, VISIBILITIES, Option, Poll, is_closed, is_open

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


def aware_time(value: datetime | None, name: str) -> datetime | None:
    """`value` in UTC; None stays None. Raises PollError for a time without a zone."""
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
    now = aware_time(now, "now") or utcnow()
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
    opens_at = aware_time(opens_at, "the opening time") or now
    closes_at = aware_time(closes_at, "the closing time")
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
    now = aware_time(now, "now") or utcnow()
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
    now = aware_time(now, "now") or utcnow()
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


# --- how many ballots (the poll's side of them) --------------------------------------------------------


def _ballot_count(conn: Connection, poll_id: int) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(ballots).where(ballots.c.poll_id == poll_id)).scalar()


def ballot_counts(engine: Engine) -> dict[int, int]:
    """Ballots counted per poll (for the command line's listing)."""
    with reading(engine) as conn:
        return {pid: int(n) for pid, n in conn.execute(
            sa.select(ballots.c.poll_id, sa.func.count()).group_by(ballots.c.poll_id))}
