"""Reader polls: validating ballots, counting them, and explaining the count.

A poll result from this site once made a national front page, so everything here is
built to be exactly right and to be explainable to someone who was not in the room:

* Nothing here reads the database, the clock or the request. The web routes hand in
  a `Poll`, the submitted form, the stored `Ballot`s and a `now`; tests do the same.
* Counting is integer arithmetic. Percentages are worked out from integers and
  rounded once, for display, to one decimal place with halves rounded up
  (`percent_text`), so a reader checking 1 of 16 by hand gets 6.3, not the 6.2 that
  float formatting's round-half-even would print.
* Every decision a count makes is recorded in words next to the numbers: who led,
  which option was eliminated in which round and why, whether a tie-break was
  needed, and when there is no winner at all. A tie is reported as a tie; no rule
  here ever invents a winner.
* Stored ballots are checked again when they are counted (right poll, known
  options, no repeats). A ballot that could not have come from `validate_ballot`
  means the data is wrong, and a wrong count must fail loudly rather than print.

The methodology box (`methodology`) says in plain English who could vote, how
duplicate votes were stopped and what that cannot stop, the dates, how many ballots
were counted and rejected, and how they were counted. Charts are server-rendered SVG
(no scripts, no inline styles, so the site's CSP holds) with every number in text.

Instant-runoff rules (`count_irv`), in short:

1. Each round, every ballot counts for its highest-ranked option still in the count
   ("continuing"). A ballot with no continuing option left is *exhausted*.
2. An option with more than half of the continuing ballots wins.
3. If every continuing option has the same number of votes, the count stops and
   reports a tie between them (this includes the two-option final).
4. Otherwise exactly one option is eliminated (never several at once): the one with
   the fewest votes. If several share the fewest, the tie is broken by, in turn,
   (a) fewer votes in the previous round, (b) fewer first preferences (round 1),
   (c) the fixed ballot order: the option listed *last* on the ballot (highest
   `position`, then highest id) goes. The round says which rule decided it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property

KINDS = ("single", "multiple", "ranked")
VISIBILITIES = ("always", "after_vote", "after_close", "moderators")
INTEGRITIES = ("cookie", "ip")

# The reasons a ballot may be turned away, as the methodology box words them. The web
# routes count rejections under these keys; any other key is shown as written.
REJECTION_REASONS = {
    "duplicate": "duplicate (the reader had already voted)",
    "closed": "sent after the poll closed",
    "not_open": "sent before the poll opened",
    "invalid": "invalid (the form was incomplete or malformed)",
    "rate_limited": "sent too fast from one address (over the site's ballot rate limit)",
}

# Fields a voting form carries that are not part of the ballot. Everything else that
# is not a ballot field is refused, so a tampered or stale form cannot slip through.
IGNORED_FIELDS = frozenset({"csrf_token"})

_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits only: int() would also take "١٢" or "+3"
_RANK_FIELD = re.compile(r"rank_(.*)", re.DOTALL)
# Characters XML 1.0 cannot carry at all; escaping does not help, they must go.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


def _aware_utc(value: datetime, name: str) -> datetime:
    """Times must say which zone they are in: a naive time compared with an aware one
    is a bug (or a TypeError) waiting to happen, and a poll that closes an hour off
    because of summer time is a wrong result."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(timezone.utc)




@dataclass(frozen=True)
class Option:
    """One answer a voter can choose. `position` is its place on the ballot (lower
    first); it is also the last-resort tie-break in instant-runoff, so it must not
    change once a poll has votes."""

    id: int
    label: str
    position: int


@dataclass(frozen=True)
class Poll:
    """Everything about a poll that counting and presenting need, and nothing else.

    `closes_at` None means open until a moderator closes it (the route then sets
    `closes_at`). `max_choices` applies to 'multiple' polls only; None = any number.
    Options are kept in ballot order (position, then id) whatever order they are
    given in, so every listing and tie-break uses the same order.
    """

    id: int
    question: str
    kind: str
    options: tuple[Option, ...]
    opens_at: datetime
    closes_at: datetime | None = None
    visibility: str = "always"
    integrity: str = "cookie"
    max_choices: int | None = None

    def __post_init__(self) -> None:
        # Refuse an impossible poll here, once, rather than count it strangely later.
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.visibility not in VISIBILITIES:
            raise ValueError(f"visibility must be one of {VISIBILITIES}, got {self.visibility!r}")
        if self.integrity not in INTEGRITIES:
            raise ValueError(f"integrity must be one of {INTEGRITIES}, got {self.integrity!r}")
        if not str(self.question).strip():
            raise ValueError("a poll needs a question")
        options = tuple(sorted(self.options, key=lambda o: (o.position, o.id)))
        if not options:
            raise ValueError("a poll needs at least one option")
        by_id: dict[int, Option] = {}
        labels: set[str] = set()
        for o in options:
            if not isinstance(o.id, int) or isinstance(o.id, bool):
                raise TypeError(f"option ids must be integers, got {o.id!r}")
            if o.id in by_id:
                raise ValueError(f"option id {o.id} appears twice")
            label = str(o.label).strip()
            if not label:
                raise ValueError(f"option {o.id} has no label")
            # Two options a reader cannot tell apart make any result unreadable.
            if label.casefold() in labels:
                raise ValueError(f"two options are labelled {label!r}")
            labels.add(label.casefold())
            by_id[o.id] = o
        opens_at = _aware_utc(self.opens_at, "opens_at")
        closes_at = None if self.closes_at is None else _aware_utc(self.closes_at, "closes_at")
        if closes_at is not None and closes_at <= opens_at:
            raise ValueError("closes_at must be after opens_at")
        if self.max_choices is not None:
            if self.kind != "multiple":
                raise ValueError("max_choices only applies to 'multiple' polls")
            if isinstance(self.max_choices, bool) or not isinstance(self.max_choices, int) \
                    or not 1 <= self.max_choices <= len(options):
                raise ValueError(f"max_choices must be from 1 to {len(options)}, got {self.max_choices!r}")
        object.__setattr__(self, "options", options)
        object.__setattr__(self, "opens_at", opens_at)
        object.__setattr__(self, "closes_at", closes_at)

    @cached_property
    def _by_id(self) -> dict[int, Option]:
        # Not a dataclass field, so dataclasses.asdict(poll) stays plain for the API.
        return {o.id: o for o in self.options}

    def option(self, option_id: int) -> Option:
        """The option with this id (KeyError if it is not in this poll)."""
        return self._by_id[option_id]


@dataclass(frozen=True)
class Ballot:
    """One voter's valid ballot. `choices` are option ids: for 'ranked' in order of
    preference (first choice first); for 'single' and 'multiple' in ballot order, so
    the same choices always make an equal Ballot whatever order the form sent them."""

    poll_id: int
    choices: tuple[int, ...]


class BallotError(ValueError):
    """A submitted form that is not a valid ballot. `message` is written for the voter
    and is safe to show (after the template's usual HTML escaping)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def is_closed(poll: Poll, now: datetime) -> bool:
    """Closed once its closing time has come (a moderator closing it early sets
    closes_at). A poll that has not opened yet is not closed."""
    now = _aware_utc(now, "now")
    return poll.closes_at is not None and now >= poll.closes_at


def is_open(poll: Poll, now: datetime) -> bool:
    """Accepting ballots: from opens_at (inclusive) until closes_at (exclusive), so a
    ballot at the very second of closing is late, as a polling station's would be."""
    now = _aware_utc(now, "now")
    return poll.opens_at <= now and not is_closed(poll, now)


