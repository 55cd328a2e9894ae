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

import csv
import hashlib
import io
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property

__all__ = [
    "KINDS", "VISIBILITIES", "INTEGRITIES", "REJECTION_REASONS", "IGNORED_FIELDS", "TIE_BREAK_RULE",
    "Option", "Poll", "Ballot", "BallotError", "OptionCount", "Result", "Round", "IRVResult",
    "validate_ballot", "is_open", "is_closed", "count_plurality", "count_irv", "percent_text",
    "methodology", "visible_to", "bar_chart_svg", "votes_over_time_svg", "burst_threshold",
    "results_csv",
]

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


# --------------------------------------------------------------------------- the poll


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


# ------------------------------------------------------------------- validating a ballot


def _show(value: object, limit: int = 30) -> str:
    """A submitted value quoted for an error message, cut short so a hostile form
    cannot fill the page with it."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    return f"“{text}”"


def _values(form: Mapping[str, Sequence[str] | str], name: str) -> list[str]:
    raw = form[name]
    # A bare string is one value (iterating it would give its characters).
    values = [raw] if isinstance(raw, str) else list(raw)
    for v in values:
        if not isinstance(v, str):
            raise BallotError("The form was malformed. Please reload the poll and try again.")
    return values


def validate_ballot(poll: Poll, form: Mapping[str, Sequence[str] | str], *,
                    ignore: Iterable[str] = IGNORED_FIELDS) -> Ballot:
    """Turn a submitted voting form (field -> list of values, as a form parser gives)
    into a Ballot, or raise BallotError saying what is wrong in words a voter
    understands. It does not check whether the poll is open: that needs the clock
    (see `is_open`), and a late voter deserves that message rather than this one.

    single:   exactly one `option` value, an option id.
    multiple: one or more distinct `option` values, at most `max_choices`.
    ranked:   `rank_<option id>` fields, each "" (not ranked) or 1..N (N = number of
              options); the ranks used must be 1, 2, 3... with no gaps or repeats,
              and at least one option must be ranked.
    Fields in `ignore` (the CSRF token) are skipped; any other field is refused.
    """
    ignored = set(ignore)
    fields = [name for name in form if name not in ignored]
    if poll.kind == "ranked":
        return _validate_ranked(poll, form, fields)
    for name in fields:
        # Rules: a choice form has only `option` fields; anything else is junk.
        if name != "option":
            raise BallotError(f"The form had an unexpected field {_show(name)}. "
                              "Please reload the poll and try again.")
    # Blank values are "no choice" (e.g. a "none selected" radio), not an error.
    values = [v.strip() for v in (_values(form, "option") if "option" in form else [])]
    values = [v for v in values if v]
    chosen: list[Option] = []
    for v in values:
        # Rule: every value must be the id of one of this poll's options.
        option = poll._by_id.get(int(v)) if _ID.fullmatch(v) else None
        if option is None:
            raise BallotError(f"{_show(v)} is not one of this poll's options. "
                              "Please reload the poll and try again.")
        chosen.append(option)
    if not chosen:
        raise BallotError("Please choose an option before voting." if poll.kind == "single"
                          else "Please choose at least one option before voting.")
    if poll.kind == "single":
        # Rule: a single-choice ballot names exactly one option.
        if len(chosen) > 1:
            raise BallotError("Please choose only one option.")
        return Ballot(poll.id, (chosen[0].id,))
    # Rule (multiple): each option at most once; a repeat is a tampered form, and
    # silently merging it would hide that.
    seen: set[int] = set()
    for option in chosen:
        if option.id in seen:
            raise BallotError(f"You chose {_show(option.label, 60)} more than once.")
        seen.add(option.id)
    # Rule (multiple): no more than max_choices options, when the poll sets a limit.
    if poll.max_choices is not None and len(chosen) > poll.max_choices:
        most = "1 option" if poll.max_choices == 1 else f"{poll.max_choices} options"
        raise BallotError(f"Please choose at most {most} (you chose {len(chosen)}).")
    ordered = tuple(o.id for o in poll.options if o.id in seen)
    return Ballot(poll.id, ordered)


def _validate_ranked(poll: Poll, form: Mapping[str, Sequence[str] | str], fields: list[str]) -> Ballot:
    n = len(poll.options)
    ranks: dict[int, Option] = {}  # rank -> option
    seen_options: set[int] = set()
    for name in fields:
        m = _RANK_FIELD.fullmatch(name)
        # Rule: a ranked form has only rank_<option id> fields.
        if m is None:
            raise BallotError(f"The form had an unexpected field {_show(name)}. "
                              "Please reload the poll and try again.")
        key = m.group(1)
        option = poll._by_id.get(int(key)) if _ID.fullmatch(key) else None
        # Rule: the id in the field name must be one of this poll's options.
        if option is None:
            raise BallotError(f"The form asked to rank {_show(key)}, which is not one of this "
                              "poll's options. Please reload the poll and try again.")
        # Rule: one rank per option ("rank_3" and "rank_03" are the same option).
        values = [v.strip() for v in _values(form, name)]
        if option.id in seen_options or len(values) > 1:
            raise BallotError(f"The form gave more than one rank for {_show(option.label, 60)}.")
        seen_options.add(option.id)
        value = values[0] if values else ""
        if value == "":
            continue  # left blank: not ranked, which is allowed
        # Rule: a rank is a whole number from 1 to N.
        rank = int(value) if _ID.fullmatch(value) else 0
        if not 1 <= rank <= n:
            raise BallotError(f"The rank for {_show(option.label, 60)} must be a number from 1 to {n}, "
                              f"or left blank (you entered {_show(value)}).")
        # Rule: each rank is used once.
        if rank in ranks:
            raise BallotError(f"You gave rank {rank} to both {_show(ranks[rank].label, 60)} and "
                              f"{_show(option.label, 60)}. Each rank can be used only once.")
        ranks[rank] = option
    # Rule: at least one option ranked.
    if not ranks:
        raise BallotError("Please rank at least one option (1 for your first choice).")
    # Rule: ranks run 1, 2, 3... with no gap, so "first choice" always means rank 1
    # and no voter's intent has to be guessed from a gap.
    for rank in range(1, max(ranks) + 1):
        if rank not in ranks:
            raise BallotError(f"Ranks must run 1, 2, 3… without gaps: you used rank {max(ranks)} "
                              f"but not rank {rank}.")
    return Ballot(poll.id, tuple(ranks[r].id for r in sorted(ranks)))


def _check_ballot(poll: Poll, ballot: Ballot) -> tuple[int, ...]:
    """A stored ballot, checked against the poll before it is counted. These can only
    fail if the data was changed behind validate_ballot's back (or a ballot from
    another poll was passed in), and then no result may be printed."""
    if not isinstance(ballot, Ballot):
        raise TypeError(f"expected a Ballot, got {type(ballot).__name__}")
    if ballot.poll_id != poll.id:
        raise ValueError(f"a ballot for poll {ballot.poll_id} was passed to the count of poll {poll.id}")
    choices = tuple(ballot.choices)
    if not choices:
        raise ValueError(f"an empty ballot was passed to the count of poll {poll.id}")
    for c in choices:
        if c not in poll._by_id:
            raise ValueError(f"a ballot names option {c!r}, which is not in poll {poll.id}")
    if len(set(choices)) != len(choices):
        raise ValueError(f"a ballot names an option more than once: {choices}")
    if poll.kind == "single" and len(choices) != 1:
        raise ValueError(f"a single-choice ballot names {len(choices)} options")
    if poll.kind == "multiple" and poll.max_choices is not None and len(choices) > poll.max_choices:
        raise ValueError(f"a ballot names {len(choices)} options, more than max_choices={poll.max_choices}")
    return choices


# --------------------------------------------------------------------------- counting


def percent_text(part: int, whole: int) -> str:
    """part/whole as a percentage with one decimal place, halves rounded up, worked
    out in integers so it is the same on every machine and matches a hand count
    (1/8 -> "12.5", 1/16 -> "6.3", 2/3 -> "66.7"). No ballots -> "0.0"."""
    if part < 0 or whole < 0:
        raise ValueError("counts cannot be negative")
    if whole == 0:
        return "0.0"
    tenths = (part * 2000 + whole) // (2 * whole)  # round(part * 1000 / whole), halves up
    return f"{tenths // 10}.{tenths % 10}"


@dataclass(frozen=True)
class OptionCount:
    """An option's votes and its share of `base` (ballots for plurality, continuing
    ballots for an instant-runoff round). `percent` is exact; show `percent_text`."""

    option: Option
    votes: int
    base: int

    @property
    def percent(self) -> float:
        return 100.0 * self.votes / self.base if self.base else 0.0

    @property
    def percent_text(self) -> str:
        return percent_text(self.votes, self.base)


@dataclass(frozen=True)
class Result:
    """A single- or multiple-choice count.

    `counts` has every option in ballot order (options nobody chose show 0).
    `leaders` are the options with the most votes: one normally, several on a tie,
    none when there are no ballots. Percentages are of `ballots` for both kinds; in a
    multiple-choice poll one ballot can back several options, so they add up to more
    than 100 and `choices` (options chosen in all) is more than `ballots`.
    """

    poll_id: int
    kind: str
    ballots: int
    choices: int
    counts: tuple[OptionCount, ...]
    leaders: tuple[Option, ...]
    note: str
    percent_basis: str = "ballots"

    @property
    def tie(self) -> bool:
        return len(self.leaders) > 1


def _names(options: Sequence[Option]) -> str:
    labels = [f"“{o.label}”" for o in options]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def count_plurality(poll: Poll, ballots: Iterable[Ballot]) -> Result:
    """Count a single- or multiple-choice poll: one vote per option chosen."""
    if poll.kind not in ("single", "multiple"):
        raise ValueError(f"poll {poll.id} is {poll.kind!r}: count it with count_irv")
    votes: Counter[int] = Counter()
    total = 0
    for ballot in ballots:
        votes.update(_check_ballot(poll, ballot))
        total += 1
    counts = tuple(OptionCount(o, votes[o.id], total) for o in poll.options)
    top = max(c.votes for c in counts)
    # Leaders: every option with the most votes. No ballots: nobody leads.
    leaders = tuple(c.option for c in counts if c.votes == top) if total else ()
    basis = ("Percentages are of ballots, not of choices: a ballot could choose several "
             "options, so they add up to more than 100." if poll.kind == "multiple" else
             "Percentages are of ballots and are rounded to one decimal place.")
    if not total:
        note = "No ballots were counted, so there is no result."
    elif len(leaders) > 1:
        note = (f"Tie: {_names(leaders)} each have {_n(top, 'vote')} of {_n(total, 'ballot')} "
                f"({percent_text(top, total)}%). {basis}")
    else:
        note = (f"{_names(leaders)} has the most votes: {top:,} of {_n(total, 'ballot')} "
                f"({percent_text(top, total)}%). {basis}")
    return Result(poll.id, poll.kind, total, sum(votes.values()), counts, leaders, note)


@dataclass(frozen=True)
class Round:
    """One round of an instant-runoff count.

    `tallies`: each continuing option (ballot order) with the ballots whose
    highest-ranked continuing option it is; percentages are of `continuing`.
    `exhausted`: ballots with no continuing option left (continuing + exhausted =
    all ballots, every round). `needed`: votes for a majority of continuing ballots.
    The round ends in exactly one of: a `winner`, a tie between all continuing
    options (`tied`), or one `eliminated` option whose ballots move as `transfers`
    shows (to an option, or None = exhausted) in the next round. `reason` says which
    and why in words; `tie_break` names the tie-break rule used, or is "".
    """

    number: int
    tallies: tuple[OptionCount, ...]
    continuing: int
    exhausted: int
    needed: int
    winner: Option | None = None
    tied: tuple[Option, ...] = ()
    eliminated: Option | None = None
    transfers: tuple[tuple[Option | None, int], ...] = ()
    tie_break: str = ""
    reason: str = ""

    def votes(self, option_id: int) -> int | None:
        """This round's votes for an option; None once it has been eliminated."""
        for t in self.tallies:
            if t.option.id == option_id:
                return t.votes
        return None


@dataclass(frozen=True)
class IRVResult:
    """An instant-runoff count with every round. `winner` is None when there were no
    ballots or when the count ended in a tie (`tied` lists the tied options). A
    tie-break deciding an elimination is not a tie in the result: it is reported in
    that round and by `tie_break_rounds`."""

    poll_id: int
    ballots: int
    rounds: tuple[Round, ...]
    winner: Option | None
    tied: tuple[Option, ...]
    note: str

    @property
    def tie(self) -> bool:
        return len(self.tied) > 1

    @property
    def tie_break_rounds(self) -> tuple[int, ...]:
        return tuple(r.number for r in self.rounds if r.tie_break)


TIE_BREAK_RULE = (
    "When options tie for the fewest votes, the one eliminated is the one with fewer "
    "votes in the previous round; if still tied, the one with fewer first preferences; "
    "if still tied, the one listed last on the ballot.")


def _choose_elimination(lowest: list[int], history: list[dict[int, int]], poll: Poll) -> tuple[int, str, str]:
    """Which of the options tied on the fewest votes goes, the rule that decided it
    (or "" when there was no tie), and the explanation."""
    def label(oid: int) -> str:
        return f"“{poll.option(oid).label}”"

    this_round = len(history)
    if len(lowest) == 1:
        oid = lowest[0]
        return oid, "", f"{label(oid)} had the fewest votes ({history[-1][oid]:,}) and is eliminated."
    words = [(f"{_names([poll.option(o) for o in lowest])} tied for the fewest votes "
              f"({history[-1][lowest[0]]:,} each).")]
    candidates = lowest
    # Tie-break (a): fewer votes in the previous round. Having gained fewer transfers
    # is the evidence the count already has about who is weaker. Round 1 has none.
    # Tie-break (b): fewer first preferences (round 1); in round 2 that is (a) again.
    steps = []
    if this_round >= 2:
        steps.append(("previous round", f"round {this_round - 1}", history[-2]))
    if this_round >= 3:
        steps.append(("first preferences", "first preferences (round 1)", history[0]))
    for rule, where, tally in steps:
        fewest = min(tally[o] for o in candidates)
        narrowed = [o for o in candidates if tally[o] == fewest]
        detail = ", ".join(f"{label(o)} {tally[o]:,}" for o in candidates)
        if len(narrowed) == 1:
            words.append(f"Tie-break: fewer votes in {where} ({detail}), so {label(narrowed[0])} "
                         "is eliminated.")
            return narrowed[0], rule, " ".join(words)
        if len(narrowed) < len(candidates):
            words.append(f"Fewer votes in {where} ({detail}) left {_names([poll.option(o) for o in narrowed])} "
                         "still tied.")
        else:
            words.append(f"They also tied in {where} ({detail}).")
        candidates = narrowed
    # Tie-break (c): the fixed ballot order. Arbitrary but stated in advance and the
    # same every time: the option listed last (highest position, then highest id).
    last = max(candidates, key=lambda o: (poll.option(o).position, o))
    words.append(f"Tie-break: the option listed last on the ballot, {label(last)}, is eliminated.")
    return last, "ballot order", " ".join(words)


def count_irv(poll: Poll, ballots: Iterable[Ballot]) -> IRVResult:
    """Count a ranked poll by instant-runoff, one elimination per round, every round
    kept (rules in the module docstring)."""
    if poll.kind != "ranked":
        raise ValueError(f"poll {poll.id} is {poll.kind!r}: count it with count_plurality")
    # Identical rankings are counted together: the same result, far fewer steps.
    groups: Counter[tuple[int, ...]] = Counter(_check_ballot(poll, b) for b in ballots)
    total = sum(groups.values())
    if not total:
        return IRVResult(poll.id, 0, (), None, (), "No ballots were counted, so there is no result.")
    continuing = [o.id for o in poll.options]  # ballot order, always
    history: list[dict[int, int]] = []
    rounds: list[Round] = []
    while True:
        number = len(history) + 1
        live = set(continuing)
        # Rule 1: each ballot counts for its highest-ranked continuing option.
        tally = {oid: 0 for oid in continuing}
        for prefs, n in groups.items():
            top = next((c for c in prefs if c in live), None)
            if top is not None:
                tally[top] += n
        history.append(tally)
        active = sum(tally.values())
        tallies = tuple(OptionCount(poll.option(o), tally[o], active) for o in continuing)
        base = dict(number=number, tallies=tallies, continuing=active, exhausted=total - active,
                    needed=active // 2 + 1)
        most = max(tally.values())
        # Rule 2: more than half of the continuing ballots wins. (One option left
        # with any ballots always has all of them.)
        if active and most * 2 > active:
            winner = poll.option(next(o for o in continuing if tally[o] == most))
            reason = (f"{_names([winner])} has {most:,} of {_n(active, 'continuing ballot')} "
                      f"({percent_text(most, active)}%), more than half (needed {active // 2 + 1:,}), and wins.")
            if total - active:
                reason += f" {_n(total - active, 'ballot')} had no continuing choice left (exhausted)."
            rounds.append(Round(**base, winner=winner, reason=reason))
            break
        # Rule 3: every continuing option level: a tie, and no rule may pick a winner.
        if len(set(tally.values())) == 1:
            tied = tuple(poll.option(o) for o in continuing)
            reason = (f"{_names(tied)} are tied with {_n(most, 'vote')} each, and no option has more "
                      "than half of the continuing ballots. The result is a tie; there is no winner.")
            rounds.append(Round(**base, tied=tied, reason=reason))
            break
        # Rule 4: eliminate exactly one option with the fewest votes (tie-broken).
        fewest = min(tally.values())
        out, rule, reason = _choose_elimination([o for o in continuing if tally[o] == fewest], history, poll)
        # Where the eliminated option's ballots go next (None: nowhere, exhausted).
        moves: Counter[int | None] = Counter()
        after = live - {out}
        for prefs, n in groups.items():
            if next((c for c in prefs if c in live), None) == out:
                moves[next((c for c in prefs if c in after), None)] += n
        transfers = tuple((poll.option(o), moves[o]) for o in continuing if o in moves and o != out)
        if None in moves:
            transfers += ((None, moves[None]),)
        rounds.append(Round(**base, eliminated=poll.option(out), transfers=transfers, tie_break=rule,
                            reason=reason))
        continuing.remove(out)
    last = rounds[-1]
    used = [r.number for r in rounds if r.tie_break]
    tie_note = ""
    if used:
        which = ", ".join(str(n) for n in used)
        tie_note = (f" A tie for elimination was broken by the stated rule in round{'s' if len(used) > 1 else ''} "
                    f"{which}.")
    if last.winner is not None:
        won = last.votes(last.winner.id)
        note = (f"{_names([last.winner])} won in round {last.number} with {won:,} of "
                f"{_n(last.continuing, 'continuing ballot')} ({percent_text(won, last.continuing)}%); "
                f"{_n(total, 'ballot')} counted, {last.exhausted:,} exhausted by then.{tie_note}")
    else:
        note = f"Tie in round {last.number}: {last.reason}{tie_note}"
    return IRVResult(poll.id, total, tuple(rounds), last.winner, last.tied, note)


# ----------------------------------------------------------------- visibility and method


def visible_to(poll: Poll, *, now: datetime, has_voted: bool, is_moderator: bool) -> bool:
    """May this reader see the results? Enforce it on every route that shows numbers:
    page, API, CSV, chart (Discourse leaked hidden results through a side endpoint)."""
    # Moderators always see results: they have to watch for bursts and errors.
    if is_moderator:
        return True
    closed = is_closed(poll, now)
    if poll.visibility == "always":
        return True
    # After voting, so results cannot steer a reader's own vote; and to all once closed.
    if poll.visibility == "after_vote":
        return has_voted or closed
    # Only after closing, so no voter is swayed by the running count.
    if poll.visibility == "after_close":
        return closed
    # 'moderators': never shown to readers.
    return False


def _when(value: datetime) -> str:
    """A UTC time in words, independent of the server's locale: "3 May 2026, 09:00 UTC"."""
    v = value.astimezone(timezone.utc)
    return f"{v.day} {_MONTHS[v.month - 1]} {v.year}, {v:%H:%M} UTC"


def methodology(poll: Poll, *, counted: int, rejected: int, rejected_reasons: Mapping[str, int],
                first_vote_at: datetime | None, last_vote_at: datetime | None) -> list[tuple[str, str]]:
    """The methodology box: (heading, plain-English text) rows to print beside every
    result, so anyone quoting it can see what kind of poll it was. LabourHome's 2008
    survey was attacked for exactly what such a box would have said."""
    if counted < 0 or rejected < 0 or any(v < 0 for v in rejected_reasons.values()):
        raise ValueError("counts cannot be negative")
    # A box whose numbers do not add up would undo the point of having one.
    if sum(rejected_reasons.values()) != rejected:
        raise ValueError(f"rejected_reasons add up to {sum(rejected_reasons.values())}, not {rejected}")
    rows: list[tuple[str, str]] = []
    who = ("Anyone with the link could vote. This is not a sample: voters chose "
           "themselves, so the result is not representative of the public or of the "
           "movement's membership. It shows only what the people who chose to vote think.")
    rows.append(("Who could vote", who))
    if poll.integrity == "cookie":
        duplicates = ("One ballot per reader cookie: each browser gets a random reader cookie, and the "
                     "database accepts only one ballot per cookie in this poll (a unique constraint, so "
                     "two ballots sent at once still count once). Limits: someone who clears their "
                     "cookies, opens a private window or uses another browser or device can vote "
                     "again. This stops accidental repeat votes, not a determined person.")
    else:
        duplicates = ("One ballot per IP address: the address itself is never stored, only a hash of it "
                     "salted with a secret kept for this poll alone, and the database accepts only one "
                     "ballot per hash in this poll (a unique constraint). The salt expires: it is deleted "
                     "when the poll closes, after which no hash can be matched to an address. Limits: "
                     "households, workplaces, universities and mobile networks often share one address, so "
                     "only one person behind it could vote; someone who changes network or uses a VPN can "
                     "vote again.")
    rows.append(("How duplicate votes were prevented", duplicates))
    if poll.closes_at is None:
        dates = (f"Opened {_when(poll.opens_at)}. No closing time was set: it stays open until a "
                 "moderator closes it.")
    else:
        dates = f"Open from {_when(poll.opens_at)} to {_when(poll.closes_at)}."
    if first_vote_at is not None and last_vote_at is not None:
        dates += f" First ballot {_when(first_vote_at)}; last ballot {_when(last_vote_at)}."
    rows.append(("Dates", dates))
    counted_text = _n(counted, "ballot")
    if poll.kind == "multiple":
        counted_text += " (ballots, not choices: one ballot can choose several options)"
    rows.append(("Ballots counted", counted_text + "."))
    if rejected:
        reasons = [f"{n:,} {REJECTION_REASONS.get(key, key.replace('_', ' '))}"
                   for key, n in sorted(rejected_reasons.items(), key=lambda kv: (-kv[1], kv[0])) if n]
        rows.append(("Ballots rejected", f"{_n(rejected, 'ballot')} not counted: " + "; ".join(reasons) + "."))
    else:
        rows.append(("Ballots rejected", "None."))
    if poll.kind == "single":
        method = ("Plurality: each ballot chose one option, and the option with the most votes leads. "
                  "Percentages are of ballots counted.")
    elif poll.kind == "multiple":
        limit = "any number of options" if poll.max_choices is None else f"up to {_n(poll.max_choices, 'option')}"
        method = (f"Plurality with several choices: each ballot could choose {limit}, and each option's "
                  "percentage is the share of ballots that chose it. Percentages are of ballots, not of "
                  "choices, so they add up to more than 100.")
    else:
        method = ("Instant-runoff, with each round shown. Voters ranked options in order of preference. "
                  "In each round every ballot counts for its highest-ranked option still in the count; an "
                  "option with more than half of those ballots wins. Otherwise the option with the fewest "
                  "votes is eliminated and its ballots move to their next choice; a ballot with no choices "
                  "left is exhausted and stops counting, so the majority is of ballots still counting. "
                  f"{TIE_BREAK_RULE} If all remaining options tie, the result is reported as a tie.")
    rows.append(("Counting method", method + " Percentages are rounded to one decimal place (halves up), "
                 "so they may not add up exactly."))
    shown = {
        "always": "Results were shown to everyone throughout, including while the poll was open.",
        "after_vote": ("Results were shown to each reader only after they had voted, and to everyone once "
                       "the poll closed, so running results could not steer a reader's own vote."),
        "after_close": "Results were hidden until the poll closed, so no voter saw the running count.",
        "moderators": "Results are shown only to the site's moderators.",
    }[poll.visibility]
    rows.append(("When results were shown", shown))
    return rows


# ------------------------------------------------------------------------------ charts

BAR_FILL = "#2f7dd1"  # contrast ≥ 3.7:1 on the site's light and dark backgrounds and panels
BURST_FILL = "#d9480f"  # likewise (≥ 3.7:1); bursts are also marked in text, not by colour only
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


def _x(text: object) -> str:
    """Text made safe for SVG element content and attribute values: characters XML
    cannot carry removed, then & < > " ' escaped, and = too, so that even a label
    reading `style="..."` or `href=...` never puts those strings in the markup for a
    scanner (or a careless later edit) to trip over."""
    s = _NOT_XML.sub("", str(text))
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;").replace("=", "&#61;"))


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())  # a label's newlines would not show in SVG anyway
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sentence(text: str) -> str:
    return text if text.endswith((".", "?", "!", ":")) else text + "."


def _chart_id(*parts: object) -> str:
    # Unique enough per page (two charts of different data never share it) and stable,
    # so the SVG is cacheable and tests can compare output.
    return "c" + hashlib.sha256(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()[:10]


def _svg_open(width: int, height: int, cid: str, title: str, desc: str) -> list[str]:
    # role="img" and a <title>/<desc> pair make one image with a name and a full text
    # description; no width/height, so the viewBox scales it to its container.
    return [
        (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
         f'aria-labelledby="{cid}-t" aria-describedby="{cid}-d" font-family="{_x(FONT)}">'),
        f'<title id="{cid}-t">{_x(title)}</title>',
        f'<desc id="{cid}-d">{_x(desc)}</desc>',
    ]


def bar_chart_svg(rows: list[tuple[str, int]], *, total: int, title: str) -> str:
    """A horizontal bar chart of counts, each bar's length its share of `total`
    (ballots), so a full-width bar means every ballot. Each row shows its label above
    the bar and "count (percent%)" beside it; <desc> repeats every number in text.
    Text is `currentColor`, so the chart must be inlined in the page (not an <img>)
    to follow the page's light or dark colour."""
    if total < 0 or any(count < 0 for _, count in rows):
        raise ValueError("counts cannot be negative")
    if any(count > total for _, count in rows):
        raise ValueError("a row's count is more than the total")
    # An image needs a name: a title that is empty once unusable characters go gets one.
    title = " ".join(_NOT_XML.sub("", str(title)).split()) or "Poll results"
    width, pad, label_h, bar_h, gap, title_h = 600, 8, 20, 24, 14, 34
    number_w = 130  # room right of the bars for "12,345 (100.0%)"
    track_w = width - 2 * pad - number_w
    height = title_h + len(rows) * (label_h + bar_h + gap) + pad
    desc = f"{_sentence(_clip(title, 500))} {_n(total, 'ballot')} in all." + "".join(
        f" {_clip(label, 500)}: {count:,} ({percent_text(count, total)}%)." for label, count in rows)
    cid = _chart_id("bar", title, rows, total)
    out = _svg_open(width, height, cid, title, desc)
    out.append(f'<text x="{pad}" y="22" font-size="17" font-weight="700" fill="currentColor">'
               f'{_x(_clip(title, 64))}</text>')
    y = title_h
    for label, count in rows:
        bar_w = round(track_w * count / total, 2) if total else 0
        out.append(f'<text x="{pad}" y="{y + 15}" font-size="15" fill="currentColor">{_x(_clip(label, 70))}</text>')
        out.append(f'<rect x="{pad}" y="{y + label_h}" width="{track_w}" height="{bar_h}" rx="3" '
                   'fill="currentColor" fill-opacity="0.08"/>')
        if bar_w:
            out.append(f'<rect x="{pad}" y="{y + label_h}" width="{bar_w}" height="{bar_h}" rx="3" '
                       f'fill="{BAR_FILL}"/>')
        out.append(f'<text x="{width - pad}" y="{y + label_h + 17}" font-size="15" text-anchor="end" '
                   f'fill="currentColor">{count:,} ({percent_text(count, total)}%)</text>')
        y += label_h + bar_h + gap
    out.append("</svg>")
    return "\n".join(out)


def burst_threshold(counts: Iterable[int]) -> float:
    """A bucket is a burst when its count is more than this: max(10, 5 × the median of
    the non-empty buckets). The median, not the mean, so the burst itself does not
    raise the bar; the floor of 10 keeps a quiet poll's 1 → 6 from looking like an
    attack. Known blind spot: if nearly all ballots arrive in one bucket, that bucket
    is the median and is never flagged; the chart still shows it."""
    busy = [c for c in counts if c > 0]
    return max(10.0, statistics.median(busy) * 5) if busy else 10.0


def _num(x: float) -> str:
    """12 -> "12", 12.5 -> "12.5", 1500000 -> "1,500,000" (never "1.5e+06")."""
    return f"{int(x):,}" if x == int(x) else f"{x:,.1f}"


def _duration(d: timedelta) -> str:
    """A bucket length in words: "hour", "15 minutes", "day", "90 seconds"."""
    seconds = int(d.total_seconds())
    if seconds != d.total_seconds() or seconds <= 0:
        return str(d)
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds % size == 0:
            k = seconds // size
            return unit if k == 1 else f"{k:,} {unit}s"
    return str(d)  # pragma: no cover


MAX_BUCKETS = 2000  # a chart wider than this is unreadable, and unbounded work


def votes_over_time_svg(times: list[datetime], *, bucket: timedelta, start: datetime,
                        end: datetime) -> tuple[str, list[tuple[datetime, int]]]:
    """Ballots per time bucket from `start`, as a column chart for moderators, and the
    bursts (bucket start, count) by `burst_threshold`'s rule, to list in text too.

    Buckets are [start + k·bucket, start + (k+1)·bucket); the last may be shorter and
    also takes a ballot at exactly `end`. Every time must lie within [start, end]:
    pass end = the later of the closing time (or now) and the last ballot, so none
    is ever dropped from the picture without a word.
    """
    start = _aware_utc(start, "start")
    end = _aware_utc(end, "end")
    if bucket <= timedelta(0):
        raise ValueError("bucket must be positive")
    if end <= start:
        raise ValueError("end must be after start")
    n = -((start - end) // bucket)  # ceil((end - start) / bucket)
    if n > MAX_BUCKETS:
        raise ValueError(f"{n} buckets is too many (at most {MAX_BUCKETS}): use a longer bucket")
    counts = [0] * n
    for t in times:
        t = _aware_utc(t, "a ballot time")
        if not start <= t <= end:
            raise ValueError(f"a ballot time {t.isoformat()} is outside {start.isoformat()} – {end.isoformat()}")
        counts[min((t - start) // bucket, n - 1)] += 1
    threshold = burst_threshold(counts)
    bursts = [(start + k * bucket, c) for k, c in enumerate(counts) if c > threshold]
    threshold_text = _num(threshold)

    width, height, left, right, top, bottom = 600, 240, 44, 8, 34, 196
    plot_w, plot_h = width - left - right, bottom - top
    scale_max = max(max(counts), threshold)
    col_w = plot_w / n
    desc = (f"Ballots received per {_duration(bucket)} from {_when(start)} to {_when(end)}: {len(times):,} in all, "
            f"in {n} buckets. A bucket is a burst when it has more than {threshold_text} ballots "
            "(the larger of 10 and five times the median of the non-empty buckets). ")
    desc += ("Bursts: " + "; ".join(f"{_when(s)}: {c:,}" for s, c in bursts) + ".") if bursts else "No bursts."
    cid = _chart_id("time", tuple(counts), bucket, start, end)
    out = _svg_open(width, height, cid, "Ballots over time", desc)
    out.append('<text x="8" y="22" font-size="17" font-weight="700" fill="currentColor">Ballots over time'
               f'{" — " + _n(len(bursts), "burst") + " flagged" if bursts else ""}</text>')
    # Axes and their numbers.
    out.append(f'<line x1="{left}" y1="{bottom}" x2="{width - right}" y2="{bottom}" stroke="currentColor" '
               'stroke-width="1"/>')
    out.append(f'<text x="{left - 4}" y="{top + 5}" font-size="12" text-anchor="end" fill="currentColor">'
               f'{_num(scale_max)}</text>')
    out.append(f'<text x="{left - 4}" y="{bottom}" font-size="12" text-anchor="end" fill="currentColor">0</text>')
    out.append(f'<text x="{left}" y="{bottom + 18}" font-size="12" fill="currentColor">{_x(_when(start))}</text>')
    out.append(f'<text x="{width - right}" y="{bottom + 18}" font-size="12" text-anchor="end" '
               f'fill="currentColor">{_x(_when(end))}</text>')
    for k, c in enumerate(counts):
        if not c:
            continue
        h = round(plot_h * c / scale_max, 2)
        x = round(left + k * col_w, 2)
        w = round(max(col_w - (1 if col_w > 3 else 0), 0.5), 2)
        burst = c > threshold
        out.append(f'<rect x="{x}" y="{round(bottom - h, 2)}" width="{w}" height="{h}" '
                   f'fill="{BURST_FILL if burst else BAR_FILL}"/>')
        if burst:  # marked in text as well as colour
            out.append(f'<text x="{round(x + w / 2, 2)}" y="{round(bottom - h - 3, 2)}" font-size="12" '
                       f'text-anchor="middle" fill="currentColor">!</text>')
    # The burst threshold as a dashed line, labelled.
    ty = round(bottom - plot_h * threshold / scale_max, 2)
    out.append(f'<line x1="{left}" y1="{ty}" x2="{width - right}" y2="{ty}" stroke="currentColor" '
               'stroke-width="1" stroke-dasharray="4 3" stroke-opacity="0.7"/>')
    out.append(f'<text x="{width - right}" y="{round(ty - 4, 2)}" font-size="12" text-anchor="end" '
               f'fill="currentColor">burst above {threshold_text}</text>')
    out.append(f'<text x="{left}" y="{bottom + 36}" font-size="12" fill="currentColor">'
               f'{_x(_n(len(times), "ballot"))}, one column per {_x(_duration(bucket))}</text>')
    out.append("</svg>")
    return "\n".join(out), bursts


# -------------------------------------------------------------------------------- CSV

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run: text starting like a formula (= + - @,
    and tab or carriage return, which some spreadsheets skip before one) gets a
    leading single quote (OWASP's CSV-injection advice)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def results_csv(poll: Poll, result: Result | IRVResult) -> str:
    """The result as CSV with a header row. Plurality: one row per option. Ranked: one
    block of rows per round (a row per continuing option, with the round's
    continuing and exhausted ballots), in round order, under a single header so a
    spreadsheet can filter by round. The outcome column says who won, tied, or was
    eliminated; the note column says why."""
    buf = io.StringIO()
    w = csv.writer(buf)

    def row(values: list) -> None:
        w.writerow([_cell(v) for v in values])

    if result.poll_id != poll.id:
        raise ValueError(f"result of poll {result.poll_id} passed with poll {poll.id}")
    if isinstance(result, Result):
        if poll.kind == "ranked":
            raise ValueError("a ranked poll's result is an IRVResult")
        row(["poll_id", "question", "option_id", "option", "votes", "ballots", "percent_of_ballots", "outcome"])
        leaders = {o.id for o in result.leaders}
        for c in result.counts:
            outcome = ("tied for most votes" if result.tie else "most votes") if c.option.id in leaders else ""
            row([poll.id, poll.question, c.option.id, c.option.label, c.votes, result.ballots,
                 c.percent_text, outcome])
        return buf.getvalue()
    if poll.kind != "ranked":
        raise ValueError("only a ranked poll has an IRVResult")
    row(["poll_id", "question", "round", "option_id", "option", "votes", "continuing_ballots",
         "exhausted_ballots", "percent_of_continuing", "outcome", "note"])
    for r in result.rounds:
        for t in r.tallies:
            outcome, note = "", ""
            if r.winner is not None and t.option.id == r.winner.id:
                outcome, note = "winner", r.reason
            elif t.option in r.tied:
                outcome, note = "tied", r.reason
            elif r.eliminated is not None and t.option.id == r.eliminated.id:
                outcome, note = "eliminated", r.reason
                if r.transfers:
                    note += " Transfers: " + "; ".join(
                        f"{n:,} to {'exhausted' if o is None else o.label}" for o, n in r.transfers) + "."
            row([poll.id, poll.question, r.number, t.option.id, t.option.label, t.votes, r.continuing,
                 r.exhausted, t.percent_text, outcome, note])
    return buf.getvalue()
