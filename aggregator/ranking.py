"""The front page's order: a pure function of posts, recommendations and time.

    score = log10(1 + recommendations) - hours since first seen / window

One window of age costs as much as ten times the recommendations earn, so a post
seen a window ago needs ten times the recommendations of a new one to stand level
(Reddit's and Lobsters' shape; the window is the `rank_window_h` setting). The time
is when *we* first saw the post, never the date its feed claims: a feed cannot
push its posts up by dating them in the future or re-dating old ones, and an edit
does not bring an old post back.

Then fairness to every blog: at most one post per blog in the top ten and at most
two per page. A post that would break a cap moves down to the first place it may
take, and its `note` says why. Editor's picks are not ranked here at all: they are
shown in their own labelled slot (web/pages.py), never as a hidden boost.

Nothing here reads the database or the clock; tests give it posts and a `now`.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime

TOP_SLOTS = 10  # "above the fold": one post per blog here
TOP_PER_BLOG = 1
PAGE_PER_BLOG = 2
PAGE_SIZE = 30


@dataclass(frozen=True)
class Candidate:
    id: int
    blog_id: int
    first_seen: datetime
    recommendations: int = 0


@dataclass(frozen=True)
class Placed:
    id: int
    blog_id: int
    page: int  # 1-based
    position: int  # 1-based, over all pages
    score: float
    terms: dict = field(default_factory=dict)  # each term of the score, for "why is this here"
    note: str = ""  # why it sits lower than its score alone would put it, if it does


def score_terms(c: Candidate, *, now: datetime, window_h: float) -> dict:
    """The score and each of its terms, rounded for showing to readers."""
    # Recommendations count on a log scale: the first few matter most, and a
    # pile-on cannot hold a post up for ever. log10(1 + 0) = 0 for a new post.
    recommendation_points = math.log10(1 + max(0, c.recommendations))
    # Age, from our first sighting, in windows; a post seen "in the future" (clock
    # skew between processes) counts as seen now rather than gaining points.
    age_h = max(0.0, (now - c.first_seen).total_seconds() / 3600)
    age_points = -age_h / window_h
    return {
        "recommendations": c.recommendations,
        "recommendation_points": round(recommendation_points, 4),
        "hours_since_first_seen": round(age_h, 2),
        "age_points": round(age_points, 4),
        "window_hours": window_h,
        "score": round(recommendation_points + age_points, 4),
    }


def rank(
    candidates: list[Candidate],
    *,
    now: datetime,
    window_h: float,
    page_size: int = PAGE_SIZE,
    top_slots: int = TOP_SLOTS,
    top_per_blog: int = TOP_PER_BLOG,
    page_per_blog: int = PAGE_PER_BLOG,
) -> list[Placed]:
    """Every candidate in front-page order, laid out in pages with the per-blog caps.

    Ties in score go to the post seen later, then the higher id, so the order is
    total and the same on every run.
    """
    scored = []
    for c in candidates:
        terms = score_terms(c, now=now, window_h=window_h)
        scored.append((terms["score"], c.first_seen, c.id, c, terms))
    scored.sort(key=lambda t: (t[0], t[1], t[2]), reverse=True)
    natural = {t[2]: i + 1 for i, t in enumerate(scored)}  # position by score alone

    # Each blog's posts in that order, and a heap of each blog's best pending post
    # (keyed by its place in `scored`). "The best-scored pending post whose blog is
    # under its cap" is then the best head of a blog under its cap: the heads of
    # capped blogs are set aside for the slot and put back after it. One pass over a
    # list of every pending post per slot made this quadratic: 25 ms instead of 14 at
    # 1,566 candidates (a third of an uncached front page), most of it skipping the posts
    # of a prolific blog at its cap (docs/performance.md, Web).
    queues: dict[int, deque] = {}
    for i, item in enumerate(scored):
        queues.setdefault(item[3].blog_id, deque()).append((i, item))
    heads = [(q[0][0], blog_id) for blog_id, q in queues.items()]
    heapq.heapify(heads)

    placed: list[Placed] = []
    page = 0
    while heads:
        page += 1
        on_page: Counter[int] = Counter()
        taken = 0
        while taken < page_size and heads:
            slot = taken + 1
            cap = top_per_blog if page == 1 and slot <= top_slots else page_per_blog
            capped = []
            while heads and on_page[heads[0][1]] >= cap:
                capped.append(heapq.heappop(heads))
            if not heads:  # every post left is from a blog at its cap: the page ends short
                for h in capped:
                    heapq.heappush(heads, h)
                break
            _, blog_id = heapq.heappop(heads)
            for h in capped:
                heapq.heappush(heads, h)
            queue = queues[blog_id]
            score, _, post_id, c, terms = queue.popleft()[1]
            if queue:
                heapq.heappush(heads, (queue[0][0], blog_id))
            taken += 1
            on_page[c.blog_id] += 1
            position = len(placed) + 1
            note = ""
            if position > natural[post_id]:
                note = (f"moved down from {natural[post_id]} to {position}: at most {top_per_blog} post per blog "
                        f"in the top {top_slots} and {page_per_blog} per page of {page_size}")
            placed.append(Placed(post_id, c.blog_id, page, position, score, terms, note))
    return placed
