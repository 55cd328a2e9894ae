"""Who may see the results, and the methodology box that explains a poll's count.

Part of the reader polls package: see community/polls/model.py for the rules every
part keeps (no database, no clock, no request; integer arithmetic; every decision in words).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone

from .counting import TIE_BREAK_RULE, _n
from .model import _MONTHS, REJECTION_REASONS, Poll, is_closed


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


