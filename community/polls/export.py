"""The results as CSV, safe to open in a spreadsheet (no formulas).

Part of the reader polls package: see community/polls/model.py for the rules every
part keeps (no database, no clock, no request; integer arithmetic; every decision in words).
"""

from __future__ import annotations

import csv
import io

from .counting import IRVResult, Result
from .model import Poll

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
