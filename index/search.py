"""Search (read-only): the Searcher, one page of results read back from the database.

Query parsing and filters are in query.py, snippets in snippets.py, did-you-mean in
spelling.py. Results come from the database by id: titles, URLs and the text that
highlights are cut from. A post hidden since the last sync is dropped there, so it is
never shown.
"""

from __future__ import annotations

import html
import threading
import time
import weakref
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from whoosh import query as wq
from whoosh import sorting
from whoosh.highlight import ContextFragmenter
from whoosh.reading import TermNotFound

from aggregator.db import feeds, posts, reading
from aggregator.sanitize import html_to_text
from aggregator.settings import Settings

# parse_query and did_you_mean are called through this module's names (bench/search.py times them here).
from .query import QueryError, parse_query, search_filter
from .schema import current_dir, make_schema, open_index
from .snippets import MarkFormatter, excerpt, near_words
from .spelling import did_you_mean
from .writer import VISIBLE

MAX_LIMIT = 100
MAX_PAGE = 1000


@dataclass(frozen=True)
class SearchHit:
    id: int
    title: str
    url: str
    blog: str
    blog_id: int
    published: datetime
    score: float
    highlights: str  # HTML: text escaped, matches in <mark>
    title_highlight: str = ""


@dataclass(frozen=True)
class SearchPage:
    query: str
    total: int
    took_ms: float
    page: int
    pages: int
    results: list[SearchHit] = field(default_factory=list)
    suggestion: str = ""  # "did you mean", or "" when the query looks right
    blog_counts: dict[int, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        """The shape `hustings search --json` prints and /api/search returns."""
        return {
            "query": self.query, "total": self.total, "took_ms": self.took_ms, "page": self.page,
            "pages": self.pages, "suggestion": self.suggestion,
            "blog_counts": {str(k): v for k, v in self.blog_counts.items()},
            "results": [{"id": h.id, "title": h.title, "url": h.url, "blog": h.blog, "blog_id": h.blog_id,
                         "published": h.published.isoformat() if h.published else None, "score": h.score,
                         "highlights": h.highlights} for h in self.results],
        }


class Searcher:
    """One reused Whoosh searcher per process, refreshed when the index changes.

    Opening a searcher on a 100k-post index costs ~190 ms, ten times a query, so the
    web keeps one and calls refresh() (free when nothing changed).
    """

    def __init__(self, settings: Settings, engine: Engine):
        self.settings = settings
        self.engine = engine
        # Whoosh searchers are not shared between threads (refresh() closes the reader
        # another thread may be reading), so each thread keeps its own.
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: dict[int, object] = {}  # thread id -> its searcher, to close them all

    def _current(self):
        path = current_dir(self.settings)
        if path is None:
            return None
        local = self._local
        if getattr(local, "path", None) != path:  # first use in this thread, or a rebuild swapped it
            if getattr(local, "searcher", None) is not None:
                local.searcher.close()
            local.searcher = _open_with_retry(self.settings).searcher()
            local.path = path
        else:
            try:
                local.searcher = _refreshed(local.searcher)  # itself when nothing changed
            except OSError:  # a commit removed a segment file as we opened it: start afresh
                local.searcher = _open_with_retry(self.settings).searcher()
        with self._lock:
            self._open[threading.get_ident()] = local.searcher
        return local.searcher

    def close(self) -> None:
        with self._lock:
            for searcher in self._open.values():
                try:
                    searcher.close()
                except Exception:
                    pass
            self._open.clear()
        self._local = threading.local()

    def search(
        self,
        text: str,
        *,
        blog: int | str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        sort: str = "relevance",
        page: int = 1,
        limit: int = 10,
        exclude: tuple[int, ...] | list[int] = (),
    ) -> SearchPage:
        """One page of results. Raises QueryError for a query or filter that cannot be searched.
        `exclude`: post ids left out of the results and the total (a campaign's removed posts)."""
        started = time.perf_counter()
        if sort not in ("relevance", "newest"):
            raise QueryError("sort by relevance or newest")
        if not (1 <= page <= MAX_PAGE) or not (1 <= limit <= MAX_LIMIT):
            raise QueryError(f"page must be 1 to {MAX_PAGE} and limit 1 to {MAX_LIMIT}")
        searcher = self._current()
        q = parse_query(searcher.schema if searcher is not None else make_schema(), text)
        if searcher is None:
            return SearchPage(text, 0, round((time.perf_counter() - started) * 1000, 2), page, 0)
        filter_q = search_filter(blog, since, until)
        sortedby = None if sort == "relevance" else sorting.FieldFacet("published", reverse=True)
        # Top hits: Whoosh's collector prunes matches that cannot reach the top N (which is
        # why its own count is only a lower bound); optimize=False because block-quality
        # skipping was slower, not faster, on this schema (55 vs 18 ms for a one-word query
        # at 100k posts). The exact total and the per-blog counts come from the match set,
        # built with set algebra on posting lists (half the time of Whoosh's docs_for_query).
        mask = wq.Or([wq.Term("id", str(i)) for i in exclude]) if exclude else None
        results = searcher.search(q, limit=page * limit, filter=filter_q, mask=mask, sortedby=sortedby,
                                  optimize=False)
        matched = _match_set(searcher, q)
        if filter_q is not None:
            matched &= _match_set(searcher, filter_q)
        if mask is not None:
            matched -= _match_set(searcher, mask)
        total = len(matched)
        page_hits = list(results)[(page - 1) * limit: page * limit]
        rows = _rows(self.engine, [int(h["id"]) for h in page_hits])
        results.fragmenter = ContextFragmenter(maxchars=200, surround=40)
        results.formatter = MarkFormatter()
        near = near_words(text)
        hits = []
        for hit in page_hits:
            row = rows.get(int(hit["id"]))
            if row is None:
                continue  # hidden or deleted since the last sync: never shown
            body = html_to_text(row.content_html or "")
            snippet = hit.highlights("body", text=excerpt(body, near), top=2) or html.escape(body[:200], quote=False)
            hits.append(SearchHit(
                id=row.id, title=row.title, url=row.url, blog=row.blog or "", blog_id=row.feed_id,
                # Sorted by date, Whoosh's score is the sort key; there is no relevance to report.
                published=row.published, score=round(float(hit.score or 0.0), 4) if sortedby is None else 0.0,
                highlights=snippet,
                title_highlight=hit.highlights("title", text=row.title or "", top=1) or html.escape(row.title or ""),
            ))
        counts = _blog_counts(searcher, matched) if total else {}
        suggestion = did_you_mean(searcher, text)
        pages = (total + limit - 1) // limit
        return SearchPage(text, total, round((time.perf_counter() - started) * 1000, 2), page, pages, hits,
                          suggestion, counts)

    def related(self, post_id: int, limit: int = 5) -> list[SearchHit]:
        """Posts most like this one (by its body's key terms); [] when it is not indexed."""
        searcher = self._current()
        if searcher is None:
            return []
        docnum = searcher.document_number(id=str(post_id))
        if docnum is None:
            return []
        row = _rows(self.engine, [post_id]).get(post_id)
        if row is None:
            return []
        text = html_to_text(row.content_html or "") + " " + (row.title or "")
        similar = searcher.more_like(docnum, "body", text=text, top=limit + 5)
        ids = [int(h["id"]) for h in similar if int(h["id"]) != post_id]
        found = _rows(self.engine, ids)
        out = []
        for h in similar:
            row = found.get(int(h["id"]))
            if row is not None and row.id != post_id:
                out.append(SearchHit(row.id, row.title, row.url, row.blog or "", row.feed_id, row.published,
                                     round(float(h.score or 0.0), 4), html.escape(row.summary or "")))
        return out[:limit]


def _refreshed(searcher):
    """The searcher for the index's latest generation; itself when nothing changed.

    Not Whoosh's Searcher.refresh(): whoosh-reloaded 2.7.5 reuses an open segment reader
    whenever the segment id matches, so deletions a sync made in an existing segment stay
    invisible (a hidden post kept counting in totals), and it appends the old segments to
    the new list, so segments a merge removed come back. (2.7.4 never reuses at all.)
    Here a segment reader is reused only when its segment is unchanged: same id and the
    same number of deletions (a segment's deletions only ever grow).
    """
    from whoosh.reading import MultiReader, SegmentReader  # noqa: PLC0415 (Whoosh internals, kept local)
    from whoosh.searching import Searcher as WhooshSearcher

    ix = searcher._ix
    old_reader = searcher.reader()
    if ix.latest_generation() == old_reader.generation():
        return searcher
    toc = ix._read_toc()
    old = {r.segment().segment_id(): r for r, _ in old_reader.leaf_readers() if r.segment() is not None}
    readers, opened = [], []
    try:
        for segment in toc.segments:
            r = old.get(segment.segment_id())
            if r is not None and r.segment().deleted_count() == segment.deleted_count():
                del old[segment.segment_id()]
            else:
                r = SegmentReader(ix.storage, toc.schema, segment, generation=toc.generation)
                opened.append(r)
            readers.append(r)
    except Exception:  # a commit removed a file under us: the caller's retry opens afresh
        for r in opened:
            r.close()
        raise
    for r in old.values():
        r.close()
    if not readers:
        return ix.searcher()
    reader = readers[0] if len(readers) == 1 else MultiReader(readers, generation=toc.generation)
    if len(readers) == 1:
        reader._gen = toc.generation  # a lone reused SegmentReader still carries its old generation
    return WhooshSearcher(reader, fromindex=ix, weighting=searcher.weighting)


def _match_set(searcher, q: wq.Query) -> set[int]:
    """Every (undeleted) document matching q, as global document numbers.

    Words and their OR/AND/NOT combinations are evaluated as Python sets of posting
    lists; phrases, date ranges and anything else fall back to Whoosh's matcher."""
    if isinstance(q, wq.Term):
        try:
            return set(searcher.reader().postings(q.fieldname, q.text).all_ids())
        except TermNotFound:
            return set()
    if isinstance(q, wq.Or):
        out: set[int] = set()
        for sub in q.subqueries:
            out |= _match_set(searcher, sub)
        return out
    if isinstance(q, wq.And):
        wanted = [sub for sub in q.subqueries if not isinstance(sub, wq.Not)]
        unwanted = [sub.query for sub in q.subqueries if isinstance(sub, wq.Not)]
        if wanted:
            parts = sorted((_match_set(searcher, sub) for sub in wanted), key=len)
            out = parts[0]
            for part in parts[1:]:
                out &= part
            for sub in unwanted:
                out -= _match_set(searcher, sub)
            return out
    if isinstance(q, wq.AndNot):
        return _match_set(searcher, q.a) - _match_set(searcher, q.b)
    return set(searcher.docs_for_query(q))


_blog_columns: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _blog_counts(searcher, matched: set[int]) -> dict[int, int]:
    """Matches per blog id, from the blog_id column read once per searcher (a refresh
    after a sync makes a new searcher, and with it a new column)."""
    column = _blog_columns.get(searcher)
    if column is None:
        column = [int(v) if v else 0 for v in searcher.reader().column_reader("blog_id", translate=True)]
        _blog_columns[searcher] = column
    counted = Counter(column[d] for d in matched)
    counted.pop(0, None)
    return dict(counted.most_common())


def _open_with_retry(settings: Settings, tries: int = 5):
    """Open the live index; a commit can replace its table of contents mid-open."""
    for attempt in range(tries):
        try:
            return open_index(settings)
        except OSError:
            if attempt == tries - 1:
                raise
            time.sleep(0.02 * (attempt + 1))


def _rows(engine: Engine, ids: list[int]) -> dict:
    if not ids:
        return {}
    query = (
        sa.select(posts.c.id, posts.c.title, posts.c.url, posts.c.feed_id, posts.c.published, posts.c.content_html,
                  posts.c.summary, feeds.c.title.label("blog"))
        .join(feeds, feeds.c.id == posts.c.feed_id)
        .where(posts.c.id.in_(ids), VISIBLE)
    )
    with reading(engine) as conn:
        return {row.id: row for row in conn.execute(query)}


def search(settings: Settings, engine: Engine, text: str, **kwargs) -> SearchPage:
    """A one-off search (the command line). The web keeps a Searcher instead."""
    searcher = Searcher(settings, engine)
    try:
        return searcher.search(text, **kwargs)
    finally:
        searcher.close()
