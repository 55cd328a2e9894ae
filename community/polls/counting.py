"""Counting ballots: plurality, and instant-runoff with every round and every tie-break in words.

Part of the reader polls package: see community/polls/model.py for the rules every
part keeps (no database, no clock, no request; integer arithmetic; every decision in words).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .ballots import _check_ballot
from .model import Ballot, Option, Poll


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


