"""web/polls.py: ballots, counts, methodology, charts and CSV for reader polls.

The instant-runoff examples are worked by hand first (the working is in each test's
comment) and the code must agree with the hand count round by round. Random ballots
then check the invariants any correct count keeps (every ballot accounted for in
every round, one elimination per round, a real majority or a declared tie), and an
independent, deliberately naive re-implementation of the rules must agree with
`count_irv` on every random election, tie-breaks included.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import random
import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest

from community import polls
from community.polls import (
    Ballot,
    BallotError,
    IRVResult,
    Option,
    Poll,
    Result,
    bar_chart_svg,
    burst_threshold,
    charts,
    count_irv,
    count_plurality,
    is_closed,
    is_open,
    methodology,
    percent_text,
    results_csv,
    validate_ballot,
    visible_to,
    votes_over_time_svg,
)

OPEN = datetime(2026, 5, 3, 9, 0, tzinfo=timezone.utc)
CLOSE = datetime(2026, 5, 10, 18, 0, tzinfo=timezone.utc)
SVG = "{http://www.w3.org/2000/svg}"


def make_poll(kind="single", labels=("A", "B", "C"), *, poll_id=1, closes_at=CLOSE, ids=None,
              positions=None, **kw) -> Poll:
    ids = ids or list(range(1, len(labels) + 1))
    positions = positions or list(range(1, len(labels) + 1))
    options = [Option(i, label, p) for i, label, p in zip(ids, labels, positions)]
    return Poll(poll_id, "Who should lead?", kind, options, OPEN, closes_at, **kw)


def ranked(labels="ABCD", **kw) -> Poll:
    return make_poll("ranked", tuple(labels), **kw)


def ballots(poll: Poll, spec: list[tuple[int, str]]) -> list[Ballot]:
    """[(count, "BA")] -> count ballots ranking B then A (labels are one letter)."""
    by_label = {o.label: o.id for o in poll.options}
    out = []
    for n, prefs in spec:
        out += [Ballot(poll.id, tuple(by_label[c] for c in prefs))] * n
    return out


def tallies(rnd) -> dict[str, int]:
    return {t.option.label: t.votes for t in rnd.tallies}


# ------------------------------------------------------------------------------ Poll


def test_poll_keeps_options_in_ballot_order_and_times_in_utc():
    bst = timezone(timedelta(hours=1))
    p = Poll(7, "Q?", "single", [Option(3, "C", 2), Option(1, "A", 9), Option(2, "B", 2)],
             datetime(2026, 5, 3, 10, 0, tzinfo=bst), None)
    assert [o.id for o in p.options] == [2, 3, 1]  # position, then id
    assert isinstance(p.options, tuple)
    assert p.opens_at == OPEN and p.opens_at.tzinfo == timezone.utc
    assert p.closes_at is None
    assert p.option(3).label == "C"
    with pytest.raises(KeyError):
        p.option(99)


@pytest.mark.parametrize("change, message", [
    (dict(kind="approval"), "kind"),
    (dict(visibility="public"), "visibility"),
    (dict(integrity="email"), "integrity"),
    (dict(question="  "), "question"),
    (dict(options=[]), "at least one option"),
    (dict(options=[Option(1, "A", 1), Option(1, "B", 2)]), "appears twice"),
    (dict(options=[Option(1, "Yes", 1), Option(2, " yes ", 2)]), "labelled"),
    (dict(options=[Option(1, " ", 1)]), "no label"),
    (dict(opens_at=datetime(2026, 5, 3, 9, 0)), "timezone-aware"),
    (dict(closes_at=datetime(2026, 5, 10)), "timezone-aware"),
    (dict(closes_at=OPEN), "after opens_at"),
    (dict(max_choices=2), "only applies"),
])
def test_poll_refuses_impossible_polls(change, message):
    args = dict(id=1, question="Q?", kind="single", options=[Option(1, "A", 1), Option(2, "B", 2)],
                opens_at=OPEN, closes_at=CLOSE)
    args.update(change)
    with pytest.raises(ValueError, match=message):
        Poll(**args)


@pytest.mark.parametrize("bad", [0, 4, True, 2.0])
def test_max_choices_must_fit_the_options(bad):
    with pytest.raises(ValueError, match="max_choices"):
        make_poll("multiple", max_choices=bad)


def test_poll_is_frozen():
    p = make_poll()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.kind = "ranked"  # type: ignore[misc]


def test_is_open_and_is_closed_at_the_edges():
    p = make_poll()
    second = timedelta(seconds=1)
    assert not is_open(p, OPEN - second) and not is_closed(p, OPEN - second)  # not yet open is not closed
    assert is_open(p, OPEN)
    assert is_open(p, CLOSE - second)
    assert not is_open(p, CLOSE) and is_closed(p, CLOSE)  # the closing second is late
    forever = make_poll(closes_at=None)
    assert is_open(forever, OPEN + timedelta(days=3650)) and not is_closed(forever, OPEN + timedelta(days=3650))
    with pytest.raises(ValueError, match="aware"):
        is_open(p, datetime(2026, 5, 4))
    assert is_open(p, datetime(2026, 5, 4, 12, tzinfo=timezone(timedelta(hours=-5))))


# ------------------------------------------------------------------ validate_ballot


def test_single_choice_ballot():
    p = make_poll()
    assert validate_ballot(p, {"option": ["2"], "csrf_token": ["x"]}) == Ballot(1, (2,))
    assert validate_ballot(p, {"option": "3"}) == Ballot(1, (3,))  # a bare string is one value
    assert validate_ballot(p, {"option": [" 1 "]}) == Ballot(1, (1,))
    assert validate_ballot(p, {"option": ["", "1"]}) == Ballot(1, (1,))  # blank = no choice


@pytest.mark.parametrize("form, message", [
    ({}, "Please choose an option"),
    ({"option": []}, "Please choose an option"),
    ({"option": [""]}, "Please choose an option"),
    ({"option": ["1", "2"]}, "only one"),
    ({"option": ["1", "1"]}, "only one"),
    ({"option": ["9"]}, "“9” is not one of this poll's options"),
    ({"option": ["abc"]}, "“abc” is not one of"),
    ({"option": ["+1"]}, "not one of"),
    ({"option": ["1.0"]}, "not one of"),
    ({"option": ["١"]}, "not one of"),  # an Arabic-Indic 1: int() would take it
    ({"option": ["9" * 40]}, "…” is not one of"),  # cut short in the message
    ({"option": ["1"], "vote": ["yes"]}, "unexpected field “vote”"),
    ({"option": ["1"], "rank_1": ["1"]}, "unexpected field “rank_1”"),
    ({"option": [None]}, "malformed"),
])
def test_single_choice_errors_name_the_problem(form, message):
    with pytest.raises(BallotError, match=re.escape(message)) as e:
        validate_ballot(make_poll(), form)
    assert e.value.message == str(e.value)
    assert isinstance(e.value, ValueError)
    assert len(e.value.message) < 200


def test_multiple_choice_ballot_is_in_ballot_order():
    p = make_poll("multiple", ids=[30, 10, 20])  # positions 1, 2, 3
    assert validate_ballot(p, {"option": ["20", "30"]}) == Ballot(1, (30, 20))
    assert validate_ballot(p, {"option": ["30", "20"]}) == Ballot(1, (30, 20))
    assert validate_ballot(p, {"option": ["10", "20", "30"]}).choices == (30, 10, 20)
    assert validate_ballot(p, {"option": ["10"]}).choices == (10,)


@pytest.mark.parametrize("form, max_choices, message", [
    ({}, None, "at least one option"),
    ({"option": ["", " "]}, None, "at least one option"),
    ({"option": ["1", "1"]}, None, "You chose “A” more than once"),
    ({"option": ["1", "2", "3"]}, 2, "at most 2 options (you chose 3)"),
    ({"option": ["1", "2"]}, 1, "at most 1 option (you chose 2)"),
    ({"option": ["1", "4"]}, None, "“4” is not one of"),
    ({"option": ["1"], "extra": ["1"]}, None, "unexpected field"),
])
def test_multiple_choice_errors(form, max_choices, message):
    with pytest.raises(BallotError, match=re.escape(message)):
        validate_ballot(make_poll("multiple", max_choices=max_choices), form)


def test_multiple_choice_at_the_limit_is_fine():
    p = make_poll("multiple", max_choices=2)
    assert validate_ballot(p, {"option": ["3", "1"]}).choices == (1, 3)


def test_ranked_ballot_lists_options_in_preference_order():
    p = ranked("ABCD")
    form = {"rank_1": ["3"], "rank_2": ["1"], "rank_3": [""], "rank_4": ["2"], "csrf_token": ["t"]}
    assert validate_ballot(p, form) == Ballot(1, (2, 4, 1))
    assert validate_ballot(p, {"rank_3": ["1"]}).choices == (3,)  # missing fields = blank
    assert validate_ballot(p, {"rank_3": " 1 "}).choices == (3,)
    full = {"rank_1": ["4"], "rank_2": ["3"], "rank_3": ["2"], "rank_4": ["1"]}
    assert validate_ballot(p, full).choices == (4, 3, 2, 1)
    assert validate_ballot(p, {"rank_1": ["01"], "rank_2": ["02"]}).choices == (1, 2)


@pytest.mark.parametrize("form, message", [
    ({"rank_1": ["1"], "rank_2": ["3"]}, "without gaps: you used rank 3 but not rank 2"),
    ({"rank_1": ["2"]}, "you used rank 2 but not rank 1"),
    ({"rank_1": ["1"], "rank_2": ["1"]}, "You gave rank 1 to both “A” and “B”"),
    ({}, "Please rank at least one option"),
    ({"rank_1": [""], "rank_2": [""]}, "Please rank at least one option"),
    ({"rank_1": ["0"]}, "The rank for “A” must be a number from 1 to 4, or left blank (you entered “0”)"),
    ({"rank_2": ["5"]}, "The rank for “B” must be a number from 1 to 4"),
    ({"rank_1": ["first"]}, "(you entered “first”)"),
    ({"rank_1": ["1.5"]}, "must be a number"),
    ({"rank_1": ["-1"]}, "must be a number"),
    ({"rank_1": ["١"]}, "must be a number"),
    ({"rank_9": ["1"]}, "asked to rank “9”, which is not one of this poll's options"),
    ({"rank_x": ["1"]}, "asked to rank “x”"),
    ({"rank_": ["1"]}, "asked to rank “”"),
    ({"rank_1": ["1", "2"]}, "more than one rank for “A”"),
    ({"rank_1": ["1"], "rank_01": ["2"]}, "more than one rank for “A”"),
    ({"option": ["1"]}, "unexpected field “option”"),
    ({"rank_1": ["1"], "junk": [""]}, "unexpected field “junk”"),
    ({"rank_1": [b"1"]}, "malformed"),
])
def test_ranked_errors_name_the_problem(form, message):
    with pytest.raises(BallotError, match=re.escape(message)):
        validate_ballot(ranked("ABCD"), form)


def test_validate_ballot_can_ignore_other_fields_when_told():
    p = make_poll()
    with pytest.raises(BallotError):
        validate_ballot(p, {"option": ["1"], "submit": ["Vote"]})
    assert validate_ballot(p, {"option": ["1"], "submit": ["Vote"]}, ignore={"submit"}).choices == (1,)


def test_random_forms_never_crash_and_valid_ones_round_trip():
    rng = random.Random(5)
    p = ranked("ABCDE")
    junk = ["", "1", "2", "3", "6", "0", "x", "-1", " 2", "1e1", "٢", "99999999999999999999"]
    for _ in range(500):
        form = {f"rank_{rng.choice([1, 2, 3, 4, 5, 6, 'x'])}": [rng.choice(junk)] for _ in range(rng.randint(0, 5))}
        try:
            b = validate_ballot(p, form)
        except BallotError as e:
            assert e.message
            continue
        # A valid ballot: ranks 1..k, once each, so feeding it back gives it again.
        back = {f"rank_{oid}": [str(i + 1)] for i, oid in enumerate(b.choices)}
        assert validate_ballot(p, back) == b
        assert len(set(b.choices)) == len(b.choices) >= 1


# ------------------------------------------------------------------------ plurality


@pytest.mark.parametrize("part, whole, text", [
    (1, 8, "12.5"), (1, 16, "6.3"), (1, 3, "33.3"), (2, 3, "66.7"), (0, 7, "0.0"), (5, 5, "100.0"),
    (0, 0, "0.0"), (1, 2000, "0.1"), (1, 2001, "0.0"), (3, 40, "7.5"), (1, 80, "1.3"),
])
def test_percent_text_rounds_halves_up(part, whole, text):
    assert percent_text(part, whole) == text


def test_percent_text_matches_decimal_half_up():
    rng = random.Random(1)
    for _ in range(2000):
        whole = rng.randint(1, 10**6)
        part = rng.randint(0, whole)
        exact = (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
        assert percent_text(part, whole) == str(exact)
    with pytest.raises(ValueError):
        percent_text(-1, 3)


def test_single_choice_count():
    p = make_poll()
    bs = [Ballot(1, (1,))] * 5 + [Ballot(1, (2,))] * 2 + [Ballot(1, (3,))]
    r = count_plurality(p, bs)
    assert isinstance(r, Result)
    assert [(c.option.label, c.votes, c.percent_text) for c in r.counts] == [
        ("A", 5, "62.5"), ("B", 2, "25.0"), ("C", 1, "12.5")]
    assert r.ballots == 8 and r.choices == 8 and r.percent_basis == "ballots"
    assert [o.label for o in r.leaders] == ["A"] and not r.tie
    assert r.counts[0].percent == 62.5
    assert r.note.startswith("“A” has the most votes: 5 of 8 ballots (62.5%).")


def test_multiple_choice_percentages_are_of_ballots_and_say_so():
    p = make_poll("multiple")
    bs = [Ballot(1, (1, 2))] * 3 + [Ballot(1, (2,))] + [Ballot(1, (1, 2, 3))]
    r = count_plurality(p, bs)
    assert {c.option.label: (c.votes, c.percent_text) for c in r.counts} == {
        "A": (4, "80.0"), "B": (5, "100.0"), "C": (1, "20.0")}
    assert r.ballots == 5 and r.choices == 10
    assert "of ballots, not of choices" in r.note and "more than 100" in r.note


def test_plurality_tie_and_unchosen_options():
    p = make_poll(labels=("A", "B", "C", "D"))
    r = count_plurality(p, [Ballot(1, (2,)), Ballot(1, (4,)), Ballot(1, (2,)), Ballot(1, (4,))])
    assert r.tie and [o.label for o in r.leaders] == ["B", "D"]
    assert r.note.startswith("Tie: “B” and “D” each have 2 votes of 4 ballots (50.0%).")
    assert [c.votes for c in r.counts] == [0, 2, 0, 2]


def test_plurality_with_no_ballots():
    r = count_plurality(make_poll(), [])
    assert r.ballots == 0 and r.leaders == () and not r.tie
    assert all(c.votes == 0 and c.percent_text == "0.0" for c in r.counts)
    assert "No ballots" in r.note


@pytest.mark.parametrize("ballot, message", [
    (Ballot(2, (1,)), "poll 2"),
    (Ballot(1, (9,)), "option 9"),
    (Ballot(1, ()), "empty"),
    (Ballot(1, (1, 2)), "single-choice"),
])
def test_plurality_refuses_ballots_that_cannot_be_right(ballot, message):
    with pytest.raises(ValueError, match=message):
        count_plurality(make_poll(), [Ballot(1, (1,)), ballot])


def test_wrong_types_are_type_errors():
    with pytest.raises(TypeError, match="expected a Ballot"):
        count_plurality(make_poll(), [(1,)])
    with pytest.raises(TypeError, match="integers"):
        Poll(1, "Q?", "single", [Option("1", "A", 1)], OPEN, CLOSE)


def test_multiple_refuses_repeats_and_too_many_choices():
    with pytest.raises(ValueError, match="more than once"):
        count_plurality(make_poll("multiple"), [Ballot(1, (1, 1))])
    with pytest.raises(ValueError, match="max_choices"):
        count_plurality(make_poll("multiple", max_choices=1), [Ballot(1, (1, 2))])


def test_counts_refuse_the_wrong_kind_of_poll():
    with pytest.raises(ValueError, match="count_irv"):
        count_plurality(ranked(), [])
    with pytest.raises(ValueError, match="count_plurality"):
        count_irv(make_poll(), [])


def test_plurality_properties_on_random_ballots():
    rng = random.Random(2)
    for trial in range(300):
        n = rng.randint(1, 6)
        kind = rng.choice(["single", "multiple"])
        p = make_poll(kind, tuple("ABCDEF"[:n]))
        bs = []
        for _ in range(rng.randint(0, 60)):
            k = 1 if kind == "single" else rng.randint(1, n)
            bs.append(Ballot(1, tuple(sorted(rng.sample(range(1, n + 1), k)))))
        r = count_plurality(p, bs)
        expected = Counter(c for b in bs for c in b.choices)
        assert [c.votes for c in r.counts] == [expected[o.id] for o in p.options]
        assert sum(c.votes for c in r.counts) == r.choices == sum(len(b.choices) for b in bs)
        assert r.ballots == len(bs)
        if kind == "single":
            assert r.choices == r.ballots
        assert all(c.votes <= r.ballots for c in r.counts)
        if bs:
            top = max(expected.values())
            assert {o.id for o in r.leaders} == {k for k, v in expected.items() if v == top}
        else:
            assert r.leaders == ()
        assert count_plurality(p, rng.sample(bs, len(bs))) == r  # ballot order never matters


# -------------------------------------------------------------- instant-runoff by hand


def test_irv_first_round_majority():
    # A 6, B 3, C 2: 11 ballots, 6 > 5.5, so A wins at once.
    p = ranked("ABC")
    r = count_irv(p, ballots(p, [(4, "A"), (2, "AB"), (3, "BC"), (2, "CB")]))
    assert isinstance(r, IRVResult)
    assert len(r.rounds) == 1
    (one,) = r.rounds
    assert tallies(one) == {"A": 6, "B": 3, "C": 2}
    assert (one.continuing, one.exhausted, one.needed) == (11, 0, 6)
    assert r.winner.label == "A" and one.winner == r.winner and one.eliminated is None
    assert r.tied == () and not r.tie and r.tie_break_rounds == ()
    assert r.note.startswith("“A” won in round 1 with 6 of 11 continuing ballots (54.5%)")


def test_irv_three_rounds_with_transfers():
    # 23 ballots: A 8, BA 7, CB 5, DC 3. Majority of 23 is 12.
    # Round 1: A 8, B 7, C 5, D 3 -> D out, its 3 go to C.
    # Round 2: A 8, B 7, C 8 -> B out, its 7 go to A.
    # Round 3: A 15, C 8 -> A wins with 15 of 23.
    p = ranked("ABCD")
    r = count_irv(p, ballots(p, [(8, "A"), (7, "BA"), (5, "CB"), (3, "DC")]))
    assert [tallies(x) for x in r.rounds] == [
        {"A": 8, "B": 7, "C": 5, "D": 3},
        {"A": 8, "B": 7, "C": 8},
        {"A": 15, "C": 8},
    ]
    assert [x.eliminated.label if x.eliminated else None for x in r.rounds] == ["D", "B", None]
    assert [[(o.label if o else None, n) for o, n in x.transfers] for x in r.rounds] == [
        [("C", 3)], [("A", 7)], []]
    assert r.rounds[0].reason == "“D” had the fewest votes (3) and is eliminated."
    assert r.rounds[1].reason == "“B” had the fewest votes (7) and is eliminated."
    assert all(x.tie_break == "" for x in r.rounds)
    assert all(x.exhausted == 0 and x.continuing == 23 for x in r.rounds)
    assert r.winner.label == "A" and r.rounds[-1].winner.label == "A"
    assert r.rounds[-1].reason.startswith("“A” has 15 of 23 continuing ballots (65.2%), more than half (needed 12)")
    assert r.rounds[1].votes(2) == 7 and r.rounds[2].votes(2) is None
    assert r.ballots == 23


def test_irv_exhausted_ballots_and_majority_of_continuing():
    # A 4, B 3, C 2 (C ranked alone). 9 ballots, majority 5: nobody.
    # C out; its 2 ballots have no further choice: exhausted.
    # Round 2: A 4, B 3, continuing 7, exhausted 2: A has 4 > 3.5 and wins,
    # with a majority of continuing ballots though not of all 9.
    p = ranked("ABC")
    r = count_irv(p, ballots(p, [(4, "A"), (3, "B"), (2, "C")]))
    first, second = r.rounds
    assert first.eliminated.label == "C" and first.transfers == ((None, 2),)
    assert (second.continuing, second.exhausted, second.needed) == (7, 2, 4)
    assert tallies(second) == {"A": 4, "B": 3}
    assert r.winner.label == "A"
    assert "2 ballots had no continuing choice left (exhausted)" in second.reason
    assert second.tallies[0].percent_text == "57.1"
    assert "4 of 7 continuing ballots" in r.note and "2 exhausted" in r.note


def test_irv_partial_transfer_split():
    # D 5 split: 3 to B, 1 to C, 1 exhausted.
    p = ranked("ABCD")
    r = count_irv(p, ballots(p, [(9, "A"), (7, "B"), (6, "C"), (3, "DB"), (1, "DC"), (1, "D")]))
    first = r.rounds[0]
    assert first.eliminated.label == "D"
    assert [(o.label if o else None, n) for o, n in first.transfers] == [("B", 3), ("C", 1), (None, 1)]
    assert tallies(r.rounds[1]) == {"A": 9, "B": 10, "C": 7} and r.rounds[1].exhausted == 1


def test_irv_elimination_tie_broken_by_previous_round():
    # 24 ballots: A 10, B 7, C 6 (C then B), D 1 (D then C).
    # Round 1: A 10, B 7, C 6, D 1 -> D out, its 1 to C.
    # Round 2: A 10, B 7, C 7: B and C tie for fewest. Previous round: B 7, C 6,
    #          so C goes (rule a). C's 6 go to B; the D-then-C ballot is exhausted.
    # Round 3: A 10, B 13, continuing 23, exhausted 1: B wins (13 > 11.5).
    p = ranked("ABCD")
    r = count_irv(p, ballots(p, [(10, "A"), (7, "B"), (6, "CB"), (1, "DC")]))
    assert [tallies(x) for x in r.rounds] == [
        {"A": 10, "B": 7, "C": 6, "D": 1}, {"A": 10, "B": 7, "C": 7}, {"A": 10, "B": 13}]
    second = r.rounds[1]
    assert second.eliminated.label == "C" and second.tie_break == "previous round"
    assert second.reason == ("“B” and “C” tied for the fewest votes (7 each). Tie-break: fewer votes in "
                             "round 1 (“B” 7, “C” 6), so “C” is eliminated.")
    assert [(o.label if o else None, n) for o, n in second.transfers] == [("B", 6), (None, 1)]
    assert r.winner.label == "B" and r.tie_break_rounds == (2,)
    assert "broken by the stated rule in round 2" in r.note
    assert r.rounds[2].exhausted == 1


def test_irv_elimination_tie_broken_by_first_preferences():
    # 23 ballots: A 10, B 5, C 4, D 1 (D then C), E 3 (E alone).
    # Round 1: A 10, B 5, C 4, D 1, E 3 -> D out, to C.
    # Round 2: A 10, B 5, C 5, E 3 -> E out, 3 exhausted.
    # Round 3: A 10, B 5, C 5 (continuing 20): B and C tie; they also tied in round 2;
    #          first preferences B 5, C 4 -> C goes (rule b); 5 exhausted.
    # Round 4: A 10, B 5, continuing 15: A wins.
    p = ranked("ABCDE")
    r = count_irv(p, ballots(p, [(10, "A"), (5, "B"), (4, "C"), (1, "DC"), (3, "E")]))
    assert [tallies(x) for x in r.rounds] == [
        {"A": 10, "B": 5, "C": 4, "D": 1, "E": 3}, {"A": 10, "B": 5, "C": 5, "E": 3},
        {"A": 10, "B": 5, "C": 5}, {"A": 10, "B": 5}]
    third = r.rounds[2]
    assert third.eliminated.label == "C" and third.tie_break == "first preferences"
    assert "They also tied in round 2" in third.reason
    assert "fewer votes in first preferences (round 1) (“B” 5, “C” 4), so “C” is eliminated" in third.reason
    assert [x.exhausted for x in r.rounds] == [0, 0, 3, 8]
    assert r.winner.label == "A" and r.tie_break_rounds == (3,)


def test_irv_elimination_tie_broken_by_ballot_order():
    # A 3, B 2 (then C), C 2 (then B): 7 ballots, majority 4. Round 1 has no earlier
    # round, so B and C's tie goes to the ballot order: the one listed last goes.
    # Positions are set so that is B (position 3), not C. Round 2: A 3, C 4: C wins.
    p = make_poll("ranked", ("A", "B", "C"), positions=[1, 3, 2])
    r = count_irv(p, ballots(p, [(3, "A"), (2, "BC"), (2, "CB")]))
    first = r.rounds[0]
    assert first.eliminated.label == "B" and first.tie_break == "ballot order"
    assert first.reason == ("“C” and “B” tied for the fewest votes (2 each). Tie-break: the option listed "
                            "last on the ballot, “B”, is eliminated.")
    assert tallies(r.rounds[1]) == {"A": 3, "C": 4}
    assert r.winner.label == "C" and r.tie_break_rounds == (1,)


def test_irv_ballot_order_tie_break_after_partial_narrowing():
    # 14 ballots. Round 1: A 5, B 3, C 3, D 2, E 1 (then D) -> E out, to D.
    # Round 2: A 5, B 3, C 3, D 3: three-way tie for fewest. Round 1: B 3, C 3, D 2 ->
    # rule a picks D. D's 3 ballots are exhausted.
    # Round 3: A 5, B 3, C 3 (continuing 11, A short of 6); round 2 had B 3, C 3 and
    # first preferences B 3, C 3 -> ballot order: C (listed after B) goes.
    # Round 4: A 5, B 3: A wins with 5 of 8 continuing.
    p = ranked("ABCDE")
    r = count_irv(p, ballots(p, [(5, "A"), (3, "B"), (3, "C"), (2, "D"), (1, "ED")]))
    assert r.rounds[1].eliminated.label == "D" and r.rounds[1].tie_break == "previous round"
    assert r.rounds[1].reason.startswith("“B”, “C” and “D” tied for the fewest votes (3 each).")
    third = r.rounds[2]
    assert tallies(third) == {"A": 5, "B": 3, "C": 3}
    assert third.eliminated.label == "C" and third.tie_break == "ballot order"
    assert "They also tied in round 2" in third.reason and "They also tied in first preferences" in third.reason
    assert tallies(r.rounds[3]) == {"A": 5, "B": 3} and r.winner.label == "A" and r.tie_break_rounds == (2, 3)


def test_irv_tie_break_rules_in_sequence():
    # 15 ballots: A 5, B 2, C 2, D 3, E 2 (1 then B, 1 then C), F 1.
    # Round 1: F has fewest (1) -> out, exhausted.
    # Round 2: A 5, B 2, C 2, D 3, E 2: B, C, E tie; round 1 the same -> ballot order: E.
    # Round 3: A 5, B 3, C 3, D 3: B, C, D tie; round 2 B 2, C 2, D 3 leaves B and C;
    #          first preferences B 2, C 2 -> still tied -> ballot order: C.
    # Round 4: A 5, B 3, D 3: tie; round 3 B 3, D 3; first preferences B 2, D 3 -> B.
    # Round 5: A 5, D 3: A wins with 5 of 8 continuing (7 exhausted).
    p = ranked("ABCDEF")
    r = count_irv(p, ballots(p, [(5, "A"), (2, "B"), (2, "C"), (3, "D"), (1, "EB"), (1, "EC"), (1, "F")]))
    assert [tallies(x) for x in r.rounds] == [
        {"A": 5, "B": 2, "C": 2, "D": 3, "E": 2, "F": 1}, {"A": 5, "B": 2, "C": 2, "D": 3, "E": 2},
        {"A": 5, "B": 3, "C": 3, "D": 3}, {"A": 5, "B": 3, "D": 3}, {"A": 5, "D": 3}]
    assert [(x.eliminated.label if x.eliminated else None, x.tie_break) for x in r.rounds] == [
        ("F", ""), ("E", "ballot order"), ("C", "ballot order"), ("B", "first preferences"), (None, "")]
    assert r.rounds[2].reason == (
        "“B”, “C” and “D” tied for the fewest votes (3 each). "
        "Fewer votes in round 2 (“B” 2, “C” 2, “D” 3) left “B” and “C” still tied. "
        "They also tied in first preferences (round 1) (“B” 2, “C” 2). "
        "Tie-break: the option listed last on the ballot, “C”, is eliminated.")
    assert r.winner.label == "A" and r.rounds[-1].exhausted == 7 and r.tie_break_rounds == (2, 3, 4)
    assert "broken by the stated rule in rounds 2, 3, 4" in r.note


def test_irv_final_tie_is_reported_not_broken():
    # A 3, B 3, C 1 (C alone): C out, exhausted; A 3, B 3 -> a tie, no winner.
    p = ranked("ABC")
    r = count_irv(p, ballots(p, [(3, "A"), (3, "BA"), (1, "C")]))
    last = r.rounds[-1]
    assert r.winner is None and [o.label for o in r.tied] == ["A", "B"] and r.tie
    assert last.winner is None and last.eliminated is None and [o.label for o in last.tied] == ["A", "B"]
    assert (last.continuing, last.exhausted) == (6, 1)
    assert "The result is a tie; there is no winner." in last.reason
    assert r.note.startswith("Tie in round 2:")


def test_irv_all_options_tied_in_the_first_round():
    p = ranked("ABC")
    r = count_irv(p, ballots(p, [(2, "AB"), (2, "BC"), (2, "CA")]))
    assert len(r.rounds) == 1 and r.winner is None
    assert [o.label for o in r.tied] == ["A", "B", "C"] and r.tie_break_rounds == ()


def test_irv_one_option_only():
    p = ranked("A")
    r = count_irv(p, ballots(p, [(3, "A")]))
    (one,) = r.rounds
    assert r.winner.label == "A" and tallies(one) == {"A": 3} and one.tallies[0].percent_text == "100.0"
    assert r.ballots == 3


def test_irv_no_ballots():
    r = count_irv(ranked("ABC"), [])
    assert r.winner is None and r.tied == () and r.rounds == () and r.ballots == 0
    assert r.note == "No ballots were counted, so there is no result."


def test_irv_one_ballot():
    p = ranked("ABC")
    r = count_irv(p, ballots(p, [(1, "CB")]))
    assert r.winner.label == "C" and len(r.rounds) == 1


@pytest.mark.parametrize("ballot, message", [
    (Ballot(1, (1, 1)), "more than once"),
    (Ballot(1, (1, 7)), "option 7"),
    (Ballot(1, ()), "empty"),
    (Ballot(3, (1,)), "poll 3"),
])
def test_irv_refuses_ballots_that_cannot_be_right(ballot, message):
    with pytest.raises(ValueError, match=message):
        count_irv(ranked("ABC"), [Ballot(1, (1,)), ballot])


# -------------------------------------------------------------- instant-runoff at random


def reference_irv(option_ids: list[int], positions: dict[int, int], prefs: list[tuple[int, ...]]):
    """The rules, written again as plainly as possible and without sharing any code:
    returns ([(tally, eliminated)], winner, tied)."""
    remaining = list(option_ids)
    history = []
    log = []
    while True:
        tally = {o: 0 for o in remaining}
        for p in prefs:
            for o in p:
                if o in remaining:
                    tally[o] += 1
                    break
        history.append(tally)
        total = sum(tally.values())
        for o in remaining:
            if 2 * tally[o] > total:
                log.append((tally, None))
                return log, o, []
        if min(tally.values()) == max(tally.values()):
            log.append((tally, None))
            return log, None, sorted(remaining)
        low = min(tally.values())
        tied = [o for o in remaining if tally[o] == low]
        if len(tied) > 1 and len(history) >= 2:
            m = min(history[-2][o] for o in tied)
            tied = [o for o in tied if history[-2][o] == m]
        if len(tied) > 1 and len(history) >= 3:
            m = min(history[0][o] for o in tied)
            tied = [o for o in tied if history[0][o] == m]
        out = max(tied, key=lambda o: (positions[o], o))
        log.append((tally, out))
        remaining.remove(out)


def random_ranked_election(rng: random.Random):
    n = rng.randint(1, 6)
    ids = rng.sample(range(1, 50), n)
    positions = rng.sample(range(1, 20), n)
    p = Poll(4, "Q?", "ranked", [Option(i, f"Option {i}", pos) for i, pos in zip(ids, positions)], OPEN, CLOSE)
    bs = []
    # Few voters and few distinct rankings make ties (and tie-breaks) common.
    styles = [tuple(rng.sample(ids, rng.randint(1, n))) for _ in range(rng.randint(1, 6))]
    for _ in range(rng.randint(0, 40)):
        bs.append(Ballot(4, rng.choice(styles) if rng.random() < 0.7 else tuple(rng.sample(ids, rng.randint(1, n)))))
    return p, bs


def test_irv_invariants_on_random_ballots():
    rng = random.Random(3)
    tie_breaks = Counter()
    ended = Counter()
    for _ in range(1500):
        p, bs = random_ranked_election(rng)
        r = count_irv(p, bs)
        assert r.ballots == len(bs)
        if not bs:
            assert r.rounds == () and r.winner is None
            ended["none"] += 1
            continue
        assert 1 <= len(r.rounds) <= len(p.options)
        previous = None
        for i, rnd in enumerate(r.rounds):
            assert rnd.number == i + 1
            # Every ballot is accounted for in every round.
            assert sum(t.votes for t in rnd.tallies) == rnd.continuing
            assert rnd.continuing + rnd.exhausted == len(bs)
            assert rnd.needed == rnd.continuing // 2 + 1
            final = i == len(r.rounds) - 1
            # Exactly one outcome per round; eliminations only before the last round.
            outcomes = [rnd.winner is not None, bool(rnd.tied), rnd.eliminated is not None]
            assert outcomes.count(True) == 1
            assert (rnd.eliminated is None) == final
            if rnd.eliminated is not None:
                low = min(t.votes for t in rnd.tallies)
                assert rnd.votes(rnd.eliminated.id) == low
                assert sum(n for _, n in rnd.transfers) == low
                tie_breaks[rnd.tie_break] += 1
                assert bool(rnd.tie_break) == (sum(t.votes == low for t in rnd.tallies) > 1)
                nxt = r.rounds[i + 1]
                assert nxt.votes(rnd.eliminated.id) is None
                moved = {(o.id if o else None): n for o, n in rnd.transfers}
                for t in nxt.tallies:  # next round = this round + transfers, exactly
                    assert t.votes == rnd.votes(t.option.id) + moved.get(t.option.id, 0)
                assert nxt.exhausted == rnd.exhausted + moved.get(None, 0)
                assert [t.option.id for t in nxt.tallies] == [t.option.id for t in rnd.tallies
                                                              if t.option.id != rnd.eliminated.id]
            if previous is not None:  # votes only ever move to continuing options
                for t in rnd.tallies:
                    assert t.votes >= previous.votes(t.option.id)
            previous = rnd
        last = r.rounds[-1]
        # The winner has more than half of the continuing ballots, or it is a tie.
        if r.winner is not None:
            assert r.tied == () and 2 * last.votes(r.winner.id) > last.continuing
            ended["winner"] += 1
        else:
            assert len({t.votes for t in last.tallies}) == 1 and len(r.tied) == len(last.tallies)
            assert all(2 * t.votes <= last.continuing for t in last.tallies)
            ended["tie"] += 1
        # The naive re-implementation agrees round by round.
        log, winner, tied = reference_irv([o.id for o in p.options], {o.id: o.position for o in p.options},
                                          [b.choices for b in bs])
        assert [(tally, out) for tally, out in log] == [
            ({t.option.id: t.votes for t in x.tallies}, x.eliminated.id if x.eliminated else None)
            for x in r.rounds]
        assert (r.winner.id if r.winner else None) == winner
        assert sorted(o.id for o in r.tied) == tied
        # Ballot order never matters.
        assert count_irv(p, rng.sample(bs, len(bs))) == r
    # The random elections did exercise every path.
    assert ended["winner"] and ended["tie"] and ended["none"]
    assert tie_breaks["previous round"] and tie_breaks["first preferences"] and tie_breaks["ballot order"]
    assert tie_breaks[""]


def test_irv_from_random_forms_end_to_end():
    rng = random.Random(4)
    p = ranked("ABCDE")
    bs = []
    for _ in range(200):
        order = rng.sample([o.id for o in p.options], rng.randint(1, 5))
        form = {f"rank_{o.id}": [""] for o in p.options}
        form.update({f"rank_{oid}": [str(i + 1)] for i, oid in enumerate(order)})
        form["csrf_token"] = ["x"]
        b = validate_ballot(p, form)
        assert b.choices == tuple(order)
        bs.append(b)
    r = count_irv(p, bs)
    assert r.winner is not None or r.tie
    assert all(x.continuing + x.exhausted == 200 for x in r.rounds)


# ----------------------------------------------------------------------- visibility


@pytest.mark.parametrize("visibility, when, has_voted, is_moderator, expected", [
    ("always", "open", False, False, True),
    ("always", "before", False, False, True),
    ("after_vote", "open", False, False, False),
    ("after_vote", "open", True, False, True),
    ("after_vote", "closed", False, False, True),
    ("after_vote", "open", False, True, True),
    ("after_close", "open", True, False, False),
    ("after_close", "before", False, False, False),
    ("after_close", "closed", False, False, True),
    ("after_close", "open", False, True, True),
    ("moderators", "closed", True, False, False),
    ("moderators", "open", True, False, False),
    ("moderators", "open", False, True, True),
    ("moderators", "closed", False, True, True),
])
def test_visible_to(visibility, when, has_voted, is_moderator, expected):
    p = make_poll(visibility=visibility)
    now = {"before": OPEN - timedelta(hours=1), "open": OPEN + timedelta(hours=1), "closed": CLOSE}[when]
    assert visible_to(p, now=now, has_voted=has_voted, is_moderator=is_moderator) is expected


def test_after_close_with_no_closing_time_stays_hidden():
    p = make_poll(visibility="after_close", closes_at=None)
    assert not visible_to(p, now=OPEN + timedelta(days=999), has_voted=True, is_moderator=False)
    with pytest.raises(ValueError):
        visible_to(p, now=datetime(2026, 6, 1), has_voted=True, is_moderator=False)


# ---------------------------------------------------------------------- methodology


def method(poll, **kw):
    args = dict(counted=1234, rejected=12, rejected_reasons={"duplicate": 10, "closed": 1, "invalid": 1},
                first_vote_at=OPEN + timedelta(minutes=5), last_vote_at=CLOSE - timedelta(minutes=1))
    args.update(kw)
    return dict(methodology(poll, **args))


def test_methodology_cookie_single():
    rows = method(make_poll())
    assert list(rows) == ["Who could vote", "How duplicate votes were prevented", "Dates", "Ballots counted",
                          "Ballots rejected", "Counting method", "When results were shown"]
    who = rows["Who could vote"]
    assert "Anyone with the link" in who and "not a sample" in who
    assert "not representative of the public or of the movement's membership" in who
    dup = rows["How duplicate votes were prevented"]
    assert "reader cookie" in dup and "unique constraint" in dup and "clears their cookies" in dup
    assert rows["Dates"] == ("Open from 3 May 2026, 09:00 UTC to 10 May 2026, 18:00 UTC. "
                             "First ballot 3 May 2026, 09:05 UTC; last ballot 10 May 2026, 17:59 UTC.")
    assert rows["Ballots counted"] == "1,234 ballots."
    assert rows["Ballots rejected"] == ("12 ballots not counted: 10 duplicate (the reader had already voted); "
                                        "1 sent after the poll closed; 1 invalid (the form was incomplete or "
                                        "malformed).")
    assert rows["Counting method"].startswith("Plurality")
    assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in methodology(
        make_poll(), counted=0, rejected=0, rejected_reasons={}, first_vote_at=None, last_vote_at=None))


def test_methodology_ip_multiple_open_ended():
    p = make_poll("multiple", closes_at=None, integrity="ip", max_choices=2, visibility="after_close")
    rows = method(p, counted=1, rejected=0, rejected_reasons={"duplicate": 0}, first_vote_at=None,
                  last_vote_at=None)
    dup = rows["How duplicate votes were prevented"]
    assert "IP address" in dup and "never stored" in dup and "salted" in dup and "deleted when the poll closes" in dup
    assert "households, workplaces" in dup and "VPN" in dup
    assert rows["Dates"] == ("Opened 3 May 2026, 09:00 UTC. No closing time was set: it stays open until a "
                             "moderator closes it.")
    assert rows["Ballots counted"].startswith("1 ballot (ballots, not choices")
    assert rows["Ballots rejected"] == "None."
    assert "up to 2 options" in rows["Counting method"] and "not of choices" in rows["Counting method"]
    assert "hidden until the poll closed" in rows["When results were shown"]


def test_methodology_ranked_states_the_method_and_tie_break():
    rows = method(ranked(), rejected=3, rejected_reasons={"not_open": 1, "bot_like": 2})
    m = rows["Counting method"]
    assert m.startswith("Instant-runoff, with each round shown.")
    assert polls.TIE_BREAK_RULE in m and "reported as a tie" in m and "exhausted" in m
    assert rows["Ballots rejected"] == "3 ballots not counted: 2 bot like; 1 sent before the poll opened."


def test_methodology_numbers_must_add_up():
    with pytest.raises(ValueError, match="add up"):
        method(make_poll(), rejected=5, rejected_reasons={"duplicate": 4})
    with pytest.raises(ValueError, match="negative"):
        method(make_poll(), counted=-1)


def test_methodology_visibility_rows_differ():
    texts = {v: method(make_poll(visibility=v))["When results were shown"] for v in polls.VISIBILITIES}
    assert len(set(texts.values())) == 4


# ---------------------------------------------------------------------------- charts


def parse_svg(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == SVG + "svg"
    for el in root.iter():
        assert el.tag.split("}")[-1] not in ("script", "foreignObject", "image", "use", "a", "style")
        for name in el.attrib:
            local = name.split("}")[-1]
            assert local != "style" and local != "href" and not local.startswith("on")
    assert "<script" not in svg.lower() and "style=" not in svg and "href=" not in svg
    assert "url(" not in svg and "http://" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    return root


def check_chart_basics(root: ET.Element):
    assert root.get("role") == "img"
    assert re.fullmatch(r"0 0 \d+ \d+", root.get("viewBox"))
    assert root.get("width") is None and root.get("height") is None  # scales by viewBox
    title = root.find(SVG + "title")
    desc = root.find(SVG + "desc")
    assert next(iter(root)) is title and title.text and desc.text
    assert root.get("aria-labelledby") == title.get("id")
    assert root.get("aria-describedby") == desc.get("id")
    for t in root.iter(SVG + "text"):
        assert t.get("fill") == "currentColor"
    return title, desc


def test_bar_chart_is_accessible_and_escaped():
    rows = [("<script>alert(1)</script>", 3), ('"&', 1), ("it's style=\"x\" href=y", 0)]
    svg = bar_chart_svg(rows, total=4, title="Leader <b>poll</b> & more")
    root = parse_svg(svg)
    title, desc = check_chart_basics(root)
    assert title.text == "Leader <b>poll</b> & more"
    assert desc.text == ("Leader <b>poll</b> & more. 4 ballots in all. <script>alert(1)</script>: 3 (75.0%). "
                         "\"&: 1 (25.0%). it's style=\"x\" href=y: 0 (0.0%).")
    texts = ["".join(t.itertext()) for t in root.iter(SVG + "text")]
    assert "<script>alert(1)</script>" in texts and '"&' in texts
    assert "3 (75.0%)" in texts and "1 (25.0%)" in texts and "0 (0.0%)" in texts
    bars = [r for r in root.iter(SVG + "rect") if r.get("fill") == charts.BAR_FILL]
    track = float(next(r for r in root.iter(SVG + "rect") if r.get("fill") == "currentColor").get("width"))
    assert [float(b.get("width")) for b in bars] == [track * 0.75, track * 0.25]  # a zero bar is not drawn


def test_bar_chart_edge_cases():
    root = parse_svg(bar_chart_svg([("A", 0), ("B", 0)], total=0, title="Nobody yet"))
    check_chart_basics(root)
    assert "0 ballots in all" in root.find(SVG + "desc").text
    parse_svg(bar_chart_svg([], total=0, title="Empty"))
    # Characters XML cannot carry are dropped, not passed through to break the page.
    root = parse_svg(bar_chart_svg([("bell\x07 and \x00nul\ufffe", 1)], total=1, title="t\x1b"))
    assert "bell and nul" in root.find(SVG + "desc").text
    long = "word " * 60
    root = parse_svg(bar_chart_svg([(long, 1)], total=1, title=long))
    shown = ["".join(t.itertext()) for t in root.iter(SVG + "text")]
    assert all(len(s) <= 70 for s in shown) and any(s.endswith("…") for s in shown)
    assert long.strip() in root.find(SVG + "title").text
    with pytest.raises(ValueError):
        bar_chart_svg([("A", 5)], total=4, title="t")
    with pytest.raises(ValueError):
        bar_chart_svg([("A", -1)], total=4, title="t")


def test_charts_of_different_data_have_different_ids():
    a = parse_svg(bar_chart_svg([("A", 1)], total=1, title="One"))
    b = parse_svg(bar_chart_svg([("A", 1)], total=2, title="One"))
    assert a.get("aria-labelledby") != b.get("aria-labelledby")
    assert bar_chart_svg([("A", 1)], total=1, title="One") == bar_chart_svg([("A", 1)], total=1, title="One")


def test_bar_chart_random_labels_always_parse():
    rng = random.Random(6)
    alphabet = "ab<>&\"'=/\\ \n\t\x00\x01\x7f\u2028é—🗳️\ud800\ufffe]]>--"
    for _ in range(200):
        rows = [("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))), rng.randint(0, 9))
                for _ in range(rng.randint(0, 5))]
        total = max([c for _, c in rows] + [0]) + rng.randint(0, 3)
        title = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        check_chart_basics(parse_svg(bar_chart_svg(rows, total=total, title=title)))


def test_results_feed_the_chart():
    p = make_poll("multiple")
    r = count_plurality(p, [Ballot(1, (1, 2)), Ballot(1, (2,))])
    root = parse_svg(bar_chart_svg([(c.option.label, c.votes) for c in r.counts], total=r.ballots, title=p.question))
    assert "B: 2 (100.0%)" in root.find(SVG + "desc").text


def times_at(counts: list[int], bucket=timedelta(hours=1)) -> list[datetime]:
    out = []
    for k, c in enumerate(counts):
        out += [OPEN + k * bucket + timedelta(seconds=i) for i in range(c)]
    return out


@pytest.mark.parametrize("counts, threshold", [
    ([], 10), ([0, 0], 10), ([1, 1, 1], 10), ([4, 4, 4, 30], 20), ([3, 0, 5], 20), ([2, 3], 12.5),
])
def test_burst_threshold(counts, threshold):
    assert burst_threshold(counts) == threshold


def test_votes_over_time_flags_bursts():
    counts = [4, 4, 0, 4, 4, 30, 20, 21]  # non-empty 4 4 4 4 20 21 30: median 4 -> max(10, 20) = 20
    svg, bursts = votes_over_time_svg(times_at(counts), bucket=timedelta(hours=1), start=OPEN,
                                      end=OPEN + timedelta(hours=8))
    assert bursts == [(OPEN + timedelta(hours=5), 30), (OPEN + timedelta(hours=7), 21)]  # 20 is not > 20
    root = parse_svg(svg)
    check_chart_basics(root)
    desc = root.find(SVG + "desc").text
    assert "87 in all, in 8 buckets" in desc and "more than 20 ballots" in desc
    assert "Bursts: 3 May 2026, 14:00 UTC: 30; 3 May 2026, 16:00 UTC: 21." in desc
    assert "per hour" in desc
    assert [r.get("fill") for r in root.iter(SVG + "rect")] == [charts.BAR_FILL] * 4 + [charts.BURST_FILL, charts.BAR_FILL,
                                                                                      charts.BURST_FILL]
    assert sum(1 for t in root.iter(SVG + "text") if t.text == "!") == 2  # marked in text, not colour alone
    assert "2 bursts flagged" in "".join(root.itertext())


def test_votes_over_time_floor_of_ten():
    _, bursts = votes_over_time_svg(times_at([1, 1, 10, 1]), bucket=timedelta(hours=1), start=OPEN,
                                      end=OPEN + timedelta(hours=4))
    assert bursts == []  # 10 is not more than 10
    _, bursts = votes_over_time_svg(times_at([1, 1, 11, 1]), bucket=timedelta(hours=1), start=OPEN,
                                      end=OPEN + timedelta(hours=4))
    assert bursts == [(OPEN + timedelta(hours=2), 11)]


def test_votes_over_time_buckets_and_edges():
    bucket = timedelta(minutes=15)
    end = OPEN + timedelta(minutes=40)  # buckets: [0,15) [15,30) [30,40]
    times = [OPEN, OPEN + timedelta(minutes=14, seconds=59), OPEN + timedelta(minutes=15), end]
    svg, bursts = votes_over_time_svg(times, bucket=bucket, start=OPEN, end=end)
    root = parse_svg(svg)
    desc = root.find(SVG + "desc").text
    assert "4 in all, in 3 buckets" in desc and "per 15 minutes" in desc and "No bursts." in desc
    heights = [float(r.get("height")) for r in root.iter(SVG + "rect")]
    assert heights[0] == pytest.approx(2 * heights[1]) and heights[1] == heights[2]
    svg, bursts = votes_over_time_svg([], bucket=bucket, start=OPEN, end=end)
    assert bursts == [] and "0 in all" in parse_svg(svg).find(SVG + "desc").text


@pytest.mark.parametrize("kw, message", [
    (dict(times=[OPEN - timedelta(seconds=1)]), "outside"),
    (dict(times=[OPEN + timedelta(days=2)]), "outside"),
    (dict(times=[datetime(2026, 5, 3, 10)]), "aware"),
    (dict(bucket=timedelta(0)), "positive"),
    (dict(end=OPEN), "after start"),
    (dict(start=datetime(2026, 5, 3)), "aware"),
    (dict(bucket=timedelta(seconds=1)), "too many"),
])
def test_votes_over_time_refuses_bad_input(kw, message):
    args = dict(times=[], bucket=timedelta(hours=1), start=OPEN, end=OPEN + timedelta(days=1))
    args.update(kw)
    times = args.pop("times")
    with pytest.raises(ValueError, match=message):
        votes_over_time_svg(times, **args)


def test_votes_over_time_random_inputs_parse_and_agree():
    rng = random.Random(8)
    for _ in range(60):
        bucket = timedelta(minutes=rng.choice([1, 5, 60, 90]))
        end = OPEN + timedelta(minutes=rng.randint(1, 600))
        span = int((end - OPEN).total_seconds())
        times = [OPEN + timedelta(seconds=rng.randint(0, span)) for _ in range(rng.randint(0, 300))]
        svg, bursts = votes_over_time_svg(times, bucket=bucket, start=OPEN, end=end)
        check_chart_basics(parse_svg(svg))
        n = -(-span // int(bucket.total_seconds()))
        counts = Counter(min(int((t - OPEN).total_seconds()) // int(bucket.total_seconds()), n - 1) for t in times)
        threshold = burst_threshold([counts[k] for k in range(n)])
        assert bursts == [(OPEN + k * bucket, counts[k]) for k in range(n) if counts[k] > threshold]


# ------------------------------------------------------------------------------- CSV


def read_csv(text: str) -> list[dict]:
    assert text.endswith("\r\n")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_plurality_csv():
    p = make_poll(labels=("A", "B", "C"))
    r = count_plurality(p, [Ballot(1, (1,))] * 2 + [Ballot(1, (2,))] * 2 + [Ballot(1, (3,))])
    rows = read_csv(results_csv(p, r))
    assert list(rows[0]) == ["poll_id", "question", "option_id", "option", "votes", "ballots",
                             "percent_of_ballots", "outcome"]
    assert [(x["option"], x["votes"], x["ballots"], x["percent_of_ballots"], x["outcome"]) for x in rows] == [
        ("A", "2", "5", "40.0", "tied for most votes"), ("B", "2", "5", "40.0", "tied for most votes"),
        ("C", "1", "5", "20.0", "")]
    assert rows[0]["question"] == "Who should lead?"


def test_ranked_csv_has_a_block_per_round():
    p = ranked("ABCD")
    r = count_irv(p, ballots(p, [(10, "A"), (7, "B"), (6, "CB"), (1, "DC")]))
    rows = read_csv(results_csv(p, r))
    assert list(rows[0]) == ["poll_id", "question", "round", "option_id", "option", "votes", "continuing_ballots",
                             "exhausted_ballots", "percent_of_continuing", "outcome", "note"]
    assert [(x["round"], x["option"], x["votes"], x["outcome"]) for x in rows] == [
        ("1", "A", "10", ""), ("1", "B", "7", ""), ("1", "C", "6", ""), ("1", "D", "1", "eliminated"),
        ("2", "A", "10", ""), ("2", "B", "7", ""), ("2", "C", "7", "eliminated"),
        ("3", "A", "10", ""), ("3", "B", "13", "winner")]
    assert [(x["continuing_ballots"], x["exhausted_ballots"]) for x in rows if x["round"] == "3"] == [("23", "1")] * 2
    c_out = rows[6]["note"]
    assert "Tie-break" in c_out and c_out.endswith("Transfers: 6 to B; 1 to exhausted.")
    for rnd in {x["round"] for x in rows}:  # each block adds up
        block = [x for x in rows if x["round"] == rnd]
        assert sum(int(x["votes"]) for x in block) + int(block[0]["exhausted_ballots"]) == 24


def test_ranked_csv_tie_and_empty():
    p = ranked("AB")
    r = count_irv(p, ballots(p, [(2, "A"), (2, "B")]))
    rows = read_csv(results_csv(p, r))
    assert [x["outcome"] for x in rows] == ["tied", "tied"]
    assert results_csv(p, count_irv(p, [])).count("\r\n") == 1  # the header alone


def test_csv_injection_is_neutralised():
    evil = ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=2"]
    p = Poll(1, "=cmd|' /C calc'!A0", "single", [Option(i + 1, label, i) for i, label in enumerate(evil)] +
             [Option(99, "safe - text", 99)], OPEN, CLOSE)
    r = count_plurality(p, [Ballot(1, (1,))])
    rows = read_csv(results_csv(p, r))
    assert [x["option"] for x in rows] == ["'" + e for e in evil] + ["safe - text"]
    assert all(x["question"] == "'=cmd|' /C calc'!A0" for x in rows)
    assert rows[0]["votes"] == "1" and rows[0]["percent_of_ballots"] == "100.0"
    pr = ranked("AB", ids=[1, 2])
    pr = Poll(2, "-ranked?", "ranked", [Option(1, "@a", 1), Option(2, "b", 2)], OPEN, CLOSE)
    rows = read_csv(results_csv(pr, count_irv(pr, [Ballot(2, (1,))])))
    assert rows[0]["option"] == "'@a" and rows[0]["question"] == "'-ranked?"
    assert rows[0]["note"].startswith("“@a”")


def test_csv_refuses_mismatched_results():
    p, q = make_poll(), ranked()
    with pytest.raises(ValueError):
        results_csv(q, count_plurality(p, []))
    with pytest.raises(ValueError):
        results_csv(p, count_irv(q, []))
    with pytest.raises(ValueError):
        results_csv(make_poll(poll_id=2), count_plurality(p, []))
