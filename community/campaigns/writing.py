"""What the movement is writing about a campaign: the aggregated posts its query finds in the search
index, newest first, with highlights; the posts its organiser or a moderator pinned come first, and
the ones they took off the campaign are left out (of the results and of the count).

The index is the search page's (index/search.py), so a campaign finds exactly what a reader typing
its query would, and a post hidden by a moderator is never shown here either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from aggregator import listings
from index.query import QueryError
from index.search import Searcher, SearchPage

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
        found = searcher.search(c.query, sort="newest", page=page, limit=per_page, exclude=pinned_ids + removed)
    except QueryError as exc:
        return Writing(pinned, None, str(exc), len(removed))
    return Writing(pinned, found, "", len(removed))
