"""The front page's order: a pure function of posts, recommendations and time.

    score = log10(1 + recommendations) - hours since published / window

One window of age costs as much as ten times the recommendations earn, so a post a
window old needs ten times the recommendations of a new one to stand level (Reddit's
and Lobsters' shape; the window is the `rank_window_h` setting).

Age is counted from the post's own date, clamped so it is never later than when we
first saw it: a feed can make its posts older, never newer. So a blog added today
does not put its 2019 back catalogue at the top as news, a feed cannot lift its posts
by dating them in the future, an undated post counts from when we first saw it, and
an edit does not bring an old post back (issue 14).

Then fairness to every blog: one post per blog in the top ten and two per page, as
long as other blogs have recent posts to take the place. A post that would break a cap
moves down to the first place it may take, and its `note` says why; a cap never leaves
a place empty. A blog repeats in the top ten only when fewer than ten blogs have a
recent post (within RECENT_WINDOWS windows of the best), and a page holds more than two
of one blog's posts only when no other blog has one. Editor's picks are not ranked
here at all: they are shown in their own labelled slot (web/pages.py), never as a
hidden boost.

Nothing here reads the database or the clock; tests give it posts and a `now`.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime

TOP_SLOTS = 10  # "above the fold": one post per blog here while other blogs have recent posts
TOP_PER_BLOG = 1
PAGE_PER_BLOG = 2
PAGE_SIZE = 30
# How far a cap may pull a post up: past capped posts at most this many windows of score
# ahead of it (a week at the default 24 h window: most of the movement's blogs post weekly
# or more). A post further behind keeps its place by score, so a blog's 2019 post is never
# pulled up for variety's sake: that would be old news on the front page.
RECENT_WINDOWS = 7


@dataclass(frozen=True)
class Candidate:
    id: int
    blog_id: int
    first_seen: datetime
    recommendations: int = 0
    published: datetime | None = None  # the post's own date; None when it had none

    @property
    def dated(self) -> datetime:
        """When the post counts as published: its date, never later than our first sight."""
        if self.published is None:
            return self.first_seen
        return min(self.published, self.first_seen)


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
    # Age, from the post's own date (clamped to our first sighting), in windows; a date
    # "in the future" (clock skew between processes) counts as now rather than gaining points.
    age_h = max(0.0, (now - c.dated).total_seconds() / 3600)
    age_points = -age_h / window_h
    return {
        "recommendations": c.recommendations,
        "recommendation_points": round(recommendation_points, 4),
        "hours_since_published": round(age_h, 2),
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
    recent_windows: float = RECENT_WINDOWS,
) -> list[Placed]:
    """Every candidate in front-page order, laid out in full pages with the per-blog caps.

    Ties in score go to the post published later, then the higher id, so the order is
    total and the same on every run.
    """
    scored = []
    for c in candidates:
        terms = score_terms(c, now=now, window_h=window_h)
        scored.append((terms["score"], c.dated, c.id, c, terms))
    scored.sort(key=lambda t: (t[0], t[1], t[2]), reverse=True)
    natural = {t[2]: i + 1 for i, t in enumerate(scored)}  # position by score alone

    # Each blog's posts in that order, and a heap of each blog's best pending post (keyed
    # by its place in `scored`): the best post a slot may take is the best *head* that
    # qualifies, so a slot looks at one post per blog, not at every pending post (one pass
    # over every pending post per slot was quadratic: docs/performance.md, Web).
    queues: dict[int, deque] = {}
    for i, item in enumerate(scored):
        queues.setdefault(item[3].blog_id, deque()).append((i, item))
    heads = [(q[0][0], blog_id) for blog_id, q in queues.items()]
    heapq.heapify(heads)

    placed: list[Placed] = []
    in_top: Counter[int] = Counter()
    page = 0
    while heads:
        page += 1
        on_page: Counter[int] = Counter()
        for slot in range(1, page_size + 1):
            if not heads:
                break
            top = page == 1 and slot <= top_slots

            def over(head) -> int:
                """0 when the head's blog is under its cap here; else by how much it would go over."""
                if top:
                    return max(0, in_top[head[1]] - top_per_blog + 1)
                return max(0, on_page[head[1]] - page_per_blog + 1)

            # Pop heads best first, within `recent_windows` of the best one's score, until one
            # is under its cap: that post takes the place. A post further behind is never pulled
            # up past capped ones (a blog's 2019 post does not jump the queue for variety's
            # sake). When every head in reach is at its cap, the place goes to the best of those
            # least over it: a cap moves a post down; it never leaves a place empty.
            popped, chosen = [], None
            while heads:
                head = heapq.heappop(heads)
                if popped and scored[head[0]][0] < scored[popped[0][0]][0] - recent_windows:
                    heapq.heappush(heads, head)
                    break
                popped.append(head)
                if over(head) == 0:
                    chosen = head
                    break
            if chosen is None:
                chosen = min(popped, key=lambda h: (over(h), h[0]))
            for h in popped:
                if h is not chosen:
                    heapq.heappush(heads, h)
            blog_id = chosen[1]
            queue = queues[blog_id]
            score, _, post_id, c, terms = queue.popleft()[1]
            if queue:
                heapq.heappush(heads, (queue[0][0], blog_id))
            on_page[blog_id] += 1
            if top:
                in_top[blog_id] += 1
            position = len(placed) + 1
            note = ""
            if position > natural[post_id]:
                note = (f"moved down from {natural[post_id]} to {position}: at most {top_per_blog} post per blog "
                        f"in the top {top_slots} and {page_per_blog} per page of {page_size}, while other blogs "
                        f"have recent posts to show")
            placed.append(Placed(post_id, c.blog_id, page, position, score, terms, note))
    return placed
