"""web/ranking.py: the front page's order, as a pure function of posts and a clock.

Every expected value here is worked out by hand from the formula in the module's
docstring (score = log10(1 + recommendations) - hours since published / window), or
checked against an independent re-implementation of the per-blog caps, so a change
to a term, a cap or the tie-break fails a test.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import pytest

from aggregator import ranking
from aggregator.ranking import Candidate, rank, score_terms

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
WINDOW = 24.0


def seen(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def ranked(cands, **kw):
    kw.setdefault("now", NOW)
    kw.setdefault("window_h", WINDOW)
    return rank(list(cands), **kw)


def by_id(placed):
    return {p.id: p for p in placed}


# --- the score's terms ------------------------------------------------------------


@pytest.mark.parametrize("recs, hours, rec_points, age_points, score", [
    (0, 0, 0.0, 0.0, 0.0),
    (9, 0, 1.0, 0.0, 1.0),  # log10(1 + 9) = 1
    (99, 0, 2.0, 0.0, 2.0),
    (0, 12, 0.0, -0.5, -0.5),  # half a window
    (9, 24, 1.0, -1.0, 0.0),  # ten-fold recommendations buy back one window
    (999, 48, 3.0, -2.0, 1.0),
    (1, 6, math.log10(2), -0.25, math.log10(2) - 0.25),
])
def test_score_terms(recs, hours, rec_points, age_points, score):
    terms = score_terms(Candidate(1, 1, seen(hours), recs), now=NOW, window_h=WINDOW)
    assert terms["recommendations"] == recs
    assert terms["recommendation_points"] == pytest.approx(rec_points, abs=1e-4)
    assert terms["hours_since_published"] == pytest.approx(hours, abs=1e-2)
    assert terms["age_points"] == pytest.approx(age_points, abs=1e-4)
    assert terms["window_hours"] == WINDOW
    assert terms["score"] == pytest.approx(score, abs=1e-4)
    # The score is exactly the sum of the terms a reader is shown.
    assert terms["score"] == pytest.approx(terms["recommendation_points"] + terms["age_points"], abs=2e-4)


def test_age_is_counted_in_windows_of_the_setting():
    c = Candidate(1, 1, seen(12), 0)
    assert score_terms(c, now=NOW, window_h=24)["age_points"] == pytest.approx(-0.5)
    assert score_terms(c, now=NOW, window_h=12)["age_points"] == pytest.approx(-1.0)
    assert score_terms(c, now=NOW, window_h=6)["age_points"] == pytest.approx(-2.0)
    assert score_terms(c, now=NOW, window_h=6)["window_hours"] == 6


def test_a_post_seen_in_the_future_counts_as_seen_now_not_as_a_bonus():
    terms = score_terms(Candidate(1, 1, NOW + timedelta(hours=30), 0), now=NOW, window_h=WINDOW)
    assert terms["hours_since_published"] == 0
    assert terms["age_points"] == 0
    assert terms["score"] == 0
    # ... so it ranks level with a post seen right now, not above one.
    placed = ranked([Candidate(1, 1, NOW + timedelta(hours=30)), Candidate(2, 2, NOW, 1)])
    assert [p.id for p in placed] == [2, 1]


def test_negative_recommendations_earn_nothing():
    assert score_terms(Candidate(1, 1, NOW, -5), now=NOW, window_h=WINDOW)["recommendation_points"] == 0


def test_the_candidate_ages_from_its_date_clamped_to_first_sight():
    # The feed's date counts, but never later than our first sight (tests/test_front_page.py
    # checks the same end to end); without a date, first sight is the date.
    assert {f.name for f in dataclasses.fields(Candidate)} == {"id", "blog_id", "first_seen", "recommendations",
                                                               "published"}
    assert Candidate(1, 1, seen(5), 0, seen(50)).dated == seen(50)
    assert Candidate(1, 1, seen(5), 0, seen(1)).dated == seen(5)
    assert Candidate(1, 1, seen(5), 0).dated == seen(5)


# --- recommendations against age ---------------------------------------------------


def test_many_recommendations_outrank_a_slightly_newer_post_with_none():
    placed = ranked([Candidate(1, 1, seen(1), 0), Candidate(2, 2, seen(3), 50)])
    assert [p.id for p in placed] == [2, 1]
    # One recommendation is worth log10(2) = 0.30 windows: about seven hours at 24 h.
    placed = ranked([Candidate(1, 1, seen(0), 0), Candidate(2, 2, seen(7), 1)])
    assert [p.id for p in placed] == [2, 1]
    placed = ranked([Candidate(1, 1, seen(0), 0), Candidate(2, 2, seen(7.5), 1)])
    assert [p.id for p in placed] == [1, 2]


@pytest.mark.parametrize("windows", [1, 2, 3])
def test_each_window_of_age_costs_ten_fold_recommendations(windows):
    fresh = Candidate(1, 1, seen(0), 4)  # log10(5)
    needed = 5 * 10 ** windows - 1  # log10(1 + needed) = log10(5) + windows
    level = Candidate(2, 2, seen(WINDOW * windows), needed)
    s_fresh = score_terms(fresh, now=NOW, window_h=WINDOW)["score"]
    assert score_terms(level, now=NOW, window_h=WINDOW)["score"] == pytest.approx(s_fresh, abs=1e-4)
    # A little short of ten-fold loses to the fresh post; a little more beats it.
    short = Candidate(3, 3, seen(WINDOW * windows), int(needed * 0.9))
    more = Candidate(4, 4, seen(WINDOW * windows), int(needed * 1.1) + 1)
    order = [p.id for p in ranked([fresh, short, more])]
    assert order == [4, 1, 3]


def test_an_old_post_with_recommendations_loses_to_fresh_posts_in_the_end():
    old = Candidate(1, 1, seen(3 * WINDOW), 99)  # 2 - 3 = -1
    fresh = Candidate(2, 2, seen(0), 0)  # 0
    assert [p.id for p in ranked([old, fresh])] == [2, 1]


# --- order and ties ------------------------------------------------------------------


def test_order_is_by_score_when_no_cap_applies():
    cands = [Candidate(i, i, seen(i * 0.5), recs) for i, recs in enumerate([0, 3, 0, 40, 1, 0, 7], start=1)]
    expected = sorted(cands, key=lambda c: score_terms(c, now=NOW, window_h=WINDOW)["score"], reverse=True)
    placed = ranked(cands)
    assert [p.id for p in placed] == [c.id for c in expected]
    assert [p.position for p in placed] == list(range(1, len(cands) + 1))
    assert all(p.note == "" for p in placed)
    for p in placed:
        assert p.score == p.terms["score"]


def test_ties_go_to_the_later_first_seen_then_the_higher_id_whatever_the_input_order():
    # Equal scores: 9 recommendations one window ago == 0 now; and four posts seen at the same instant.
    cands = [
        Candidate(10, 1, seen(0), 0),
        Candidate(11, 2, seen(WINDOW), 9),  # same score as 10, seen earlier
        Candidate(12, 3, seen(2), 0),
        Candidate(13, 4, seen(2), 0),
        Candidate(14, 5, seen(2), 0),
        Candidate(15, 6, seen(2), 0),
    ]
    expected = [10, 11, 15, 14, 13, 12]
    rng = random.Random(7)
    results = set()
    for _ in range(20):
        shuffled = cands[:]
        rng.shuffle(shuffled)
        placed = ranked(shuffled)
        results.add(tuple((p.id, p.position, p.page, p.note) for p in placed))
        assert [p.id for p in placed] == expected
    assert len(results) == 1


def test_no_candidates_no_places():
    assert ranked([]) == []


# --- fairness between blogs ---------------------------------------------------------------


def prolific_and_quiet(prolific_posts=40, quiet_blogs=30, quiet_posts=2):
    """One blog posting every ten minutes (the newest posts), many quiet blogs posting less."""
    cands = [Candidate(1000 + k, 1, seen(k / 6), 0) for k in range(prolific_posts)]
    n = 0
    for b in range(quiet_blogs):
        for j in range(quiet_posts):
            n += 1
            cands.append(Candidate(2000 + n, 100 + b, seen(7 + n * 0.25), 0))
    return cands


def natural_positions(cands):
    order = sorted(cands, key=lambda c: (score_terms(c, now=NOW, window_h=WINDOW)["score"], c.first_seen, c.id),
                   reverse=True)
    return {c.id: i + 1 for i, c in enumerate(order)}


def check_caps(placed, page_size=30, top=10):
    """Pages full but the last, positions in order; with enough blogs (as here) the caps hold."""
    pages = defaultdict(list)
    for p in placed:
        pages[p.page].append(p)
    assert sorted(pages) == list(range(1, len(pages) + 1)), "pages are numbered without gaps"
    for page, items in pages.items():
        assert len(items) == page_size or page == len(pages), (page, len(items))
    # Positions run 1..N in order, and pages follow each other.
    assert [p.position for p in placed] == list(range(1, len(placed) + 1))
    assert [p.page for p in placed] == sorted(p.page for p in placed)


def check_strict_caps(placed, top=10):
    """Every blog under its caps: true while other blogs have posts in reach."""
    pages = defaultdict(list)
    for p in placed:
        pages[p.page].append(p)
    for page, items in pages.items():
        per_blog = Counter(p.blog_id for p in items)
        assert max(per_blog.values()) <= 2, (page, per_blog)
    top_blogs = [p.blog_id for p in placed if p.page == 1 and p.position <= top]
    assert len(top_blogs) == len(set(top_blogs)), top_blogs


def test_one_prolific_blog_gets_one_post_in_the_top_ten_and_two_per_page():
    cands = prolific_and_quiet()
    placed = ranked(cands)
    check_caps(placed)
    check_strict_caps([p for p in placed if p.page <= 2])
    # Every candidate placed exactly once.
    assert sorted(p.id for p in placed) == sorted(c.id for c in cands)
    page1 = [p for p in placed if p.page == 1]
    assert len(page1) == 30  # quiet blogs fill the page; it is not cut short
    top_ten = [p.blog_id for p in placed if p.position <= 10]
    assert len(set(top_ten)) == 10
    prolific_on_1 = [p.position for p in page1 if p.blog_id == 1]
    # Its newest post leads; its second comes straight after the top ten.
    assert prolific_on_1 == [1, 11]
    # Two of its posts a page while the quiet blogs have posts left (60 of them: pages 1
    # and 2 and the start of 3); then its posts fill the places, which are never left empty.
    per_page = Counter(p.page for p in placed if p.blog_id == 1)
    assert per_page[1] == per_page[2] == 2
    assert per_page[3] == 30 - (60 - 28 - 28)
    assert sum(per_page.values()) == 40
    assert Counter(p.page for p in placed) == {1: 30, 2: 30, 3: 30, 4: 10}


def test_a_capped_post_takes_the_first_place_it_may_and_its_note_says_it_moved():
    cands = prolific_and_quiet(prolific_posts=3, quiet_blogs=20)
    placed = by_id(ranked(cands))
    # The prolific blog's posts are the three newest: natural positions 1, 2, 3.
    assert (placed[1000].position, placed[1001].position, placed[1002].position) == (1, 11, 31)
    assert placed[1000].note == ""
    assert "moved down from 2 to 11" in placed[1001].note
    assert "moved down from 3 to 31" in placed[1002].note
    assert placed[1002].page == 2
    for note in (placed[1001].note, placed[1002].note):
        assert "1 post per blog in the top 10" in note and "2 per page of 30" in note


def test_a_note_appears_exactly_when_a_post_sits_below_its_place_by_score():
    cands = prolific_and_quiet()
    natural = natural_positions(cands)
    placed = ranked(cands)
    moved = [p for p in placed if p.position > natural[p.id]]
    assert moved, "the prolific blog must have been capped"
    for p in placed:
        if p.position > natural[p.id]:
            assert p.note.startswith(f"moved down from {natural[p.id]} to {p.position}:"), p
        else:
            assert p.note == "", p
    # The quiet blogs' posts only ever move up.
    assert all(p.blog_id == 1 for p in moved)


def test_with_few_blogs_the_pages_are_still_full():
    """Three blogs: one each in the first three places, then repeats, all on page 1 (a cap
    that left places empty gave page 1 three posts and page 2 six: issue 14)."""
    cands = [Candidate(b * 10 + j, b, seen(b + j * 5), 0) for b in range(1, 4) for j in range(5)]
    placed = ranked(cands)
    check_caps(placed)
    assert sorted(p.id for p in placed) == sorted(c.id for c in cands)
    assert [p.id for p in placed][:3] == [10, 20, 30]
    assert Counter(p.page for p in placed) == {1: 15}
    assert all(p.note == "" for p in placed)  # in score order already: nothing moved


@pytest.mark.parametrize("seed", range(12))
def test_invariants_hold_for_random_sites(seed):
    rng = random.Random(seed)
    blogs = rng.randint(1, 40)
    cands = []
    for i in range(rng.randint(0, 300)):
        # Skewed towards a few busy blogs, with repeated timestamps to force ties.
        blog = min(int(rng.expovariate(0.3)), blogs - 1)
        cands.append(Candidate(i + 1, blog, seen(rng.choice([0, 1, 2, 2, 5]) + rng.randint(0, 200) / 4),
                               rng.choice([0, 0, 0, 1, 3, 10, 120])))
    placed = ranked(cands)
    assert sorted(p.id for p in placed) == sorted(c.id for c in cands)
    if placed:
        check_caps(placed)
    natural = natural_positions(cands)
    for p in placed:
        assert (p.note != "") == (p.position > natural[p.id])
    # The same input in another order gives the same pages.
    again = ranked(rng.sample(cands, len(cands)))
    assert [(p.id, p.page, p.position, p.note) for p in again] == [(p.id, p.page, p.position, p.note) for p in placed]


def test_page_size_and_caps_are_parameters():
    cands = prolific_and_quiet(prolific_posts=10, quiet_blogs=10, quiet_posts=3)
    placed = ranked(cands, page_size=10, top_slots=5, top_per_blog=1, page_per_blog=3)
    pages = defaultdict(list)
    for p in placed:
        pages[p.page].append(p)
    assert all(len(v) <= 10 for v in pages.values())
    assert all(max(Counter(p.blog_id for p in v).values()) <= 3 for v in pages.values())
    top = [p.blog_id for p in placed if p.position <= 5]
    assert len(top) == len(set(top))
    assert sorted(p.id for p in placed) == sorted(c.id for c in cands)


def test_module_constants_match_the_documented_rule():
    assert (ranking.TOP_SLOTS, ranking.TOP_PER_BLOG, ranking.PAGE_PER_BLOG, ranking.PAGE_SIZE) == (10, 1, 2, 30)
