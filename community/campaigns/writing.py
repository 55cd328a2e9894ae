"""What the movement is writing about a campaign: the aggregated posts its query finds in the search
index, newest first, with highlights; the posts its organiser or a moderator pinned come first, and
the ones they took off the campaign are left out (of the results and of the count).

The index is the search page's (index/search.py), so a campaign finds exactly what a reader typing
its query would, and a post hidden by a moderator is never shown here either.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from aggregator import listings
from index.query import QueryError
from index.search import MAX_LIMIT, Searcher, SearchPage

from .store import Campaign, post_marks

PER_PAGE = 10


@dataclass(frozen=True)
class Writing:
    pinned: list[dict] = field(default_factory=list)  # listing rows (aggregator.listings), pinned order
    found: SearchPage | None = None  # this page of what the query finds (None: no query)
    error: str = ""  # the query could not be searched (the index changed its mind about it)
    removed: int = 0  # posts taken off the campaign

    @property
    def total(self) -> int:
        return len(self.pinned) + (self.found.total if self.found else 0)


def about(engine: Engine, searcher: Searcher, c: Campaign, page: int = 1, per_page: int = PER_PAGE) -> Writing:
    """Page `page` of the campaign's posts (pinned posts are shown on page 1 only)."""
    marks = post_marks(engine, c.id)
    pinned_ids = [pid for pid, state in marks.items() if state == "pinned"]
    removed = [pid for pid, state in marks.items() if state == "removed"]
    rows = listings.posts_by_id(engine, pinned_ids) if page == 1 else {}
    pinned = [rows[pid] for pid in pinned_ids if pid in rows]
    if not c.query:
        return Writing(pinned, None, "", len(removed))
    try:
        found = _search(searcher, c.query, page, per_page, pinned_ids + removed)
    except QueryError as exc:
        return Writing(pinned, None, str(exc), len(removed))
    return Writing(pinned, found, "", len(removed))


def _takes_exclude(searcher: Searcher) -> bool:
    return "exclude" in inspect.signature(searcher.search).parameters


def _search(searcher: Searcher, query: str, page: int, per_page: int, leave_out: list[int]) -> SearchPage:
    """Newest first, without the posts left out. The index does it exactly when its Searcher takes
    `exclude`; otherwise the posts are dropped here from a longer first stretch of results: exact while
    the query matches at most MAX_LIMIT posts (past that a page may be short, the count a little high)."""
    if not leave_out or _takes_exclude(searcher):
        kwargs = {"exclude": leave_out} if leave_out else {}
        return searcher.search(query, sort="newest", page=page, limit=per_page, **kwargs)
    gone = set(leave_out)
    want = page * per_page + len(gone)
    if want <= MAX_LIMIT:
        wide = searcher.search(query, sort="newest", page=1, limit=want)
        if want < wide.total <= MAX_LIMIT:  # every match in one stretch: the count is exact too
            wide = searcher.search(query, sort="newest", page=1, limit=wide.total)
        kept = [h for h in wide.results if h.id not in gone]
        total = wide.total - (len(wide.results) - len(kept))
        results = kept[(page - 1) * per_page: page * per_page]
    else:
        narrow = searcher.search(query, sort="newest", page=page, limit=per_page)
        results = [h for h in narrow.results if h.id not in gone]
        total = max(0, narrow.total - len(gone))
    pages = (total + per_page - 1) // per_page
    return SearchPage(query, total, 0.0, page, pages, results)
