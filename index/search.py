"""Search (read-only): the Searcher, one page of results read back from the database.

Query parsing and filters are in query.py, matching and ranking in matching.py, snippets
in snippets.py, did-you-mean in spelling.py, the cache of finished pages in cache.py.
Results come from the database by id: titles, URLs and the text that highlights are cut
from. A post hidden since the last sync is dropped there, so it is never shown.
"""

from __future__ import annotations

import dataclasses
import html
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from aggregator.db import feeds, posts, reading
from aggregator.sanitize import html_to_text
from aggregator.settings import Settings

# parse_query, rank and did_you_mean are called through this module's names (bench/search.py times them here).
from .cache import ResultCache
from .matching import rank, view_of
from .query import QueryError, parse_query, search_filter
from .schema import MATCH_FIELD, current_dir, make_schema, open_index
from .snippets import highlight, mark_all, opening, plain_text, query_words
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
    blog_counts: dict[int, int] = field(default_factory=dict)  # empty when not asked for, or the total is estimated
    total_exact: bool = True  # False: total is an estimate ("about 1,200"; broad phrases, see matching.py)

    def to_json(self) -> dict:
        """The shape `hustings search --json` prints and /api/search returns."""
        return {
            "query": self.query, "total": self.total, "total_exact": self.total_exact, "took_ms": self.took_ms,
            "page": self.page, "pages": self.pages, "suggestion": self.suggestion,
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
        self.cache = ResultCache()

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
        counts: bool = True,
        exclude: Sequence[int] = (),
    ) -> SearchPage:
        """One page of results (with per-blog counts unless counts=False), leaving out the posts
        whose ids are in exclude. Raises QueryError for a query or filter that cannot be searched."""
        started = time.perf_counter()
        if sort not in ("relevance", "newest"):
            raise QueryError("sort by relevance or newest")
        if not (1 <= page <= MAX_PAGE) or not (1 <= limit <= MAX_LIMIT):
            raise QueryError(f"page must be 1 to {MAX_PAGE} and limit 1 to {MAX_LIMIT}")
        searcher = self._current()
        if searcher is None:
            parse_query(make_schema(), text), search_filter(blog, since, until)  # the same errors as with an index
            return SearchPage(text, 0, _ms(started), page, 0)
        # Only what parsed before is in the cache (and only for this index generation).
        generation = (self._local.path, searcher.reader().generation())
        key = (text, str(blog or ""), str(since or ""), str(until or ""), sort, page, limit, counts,
               tuple(sorted(exclude)))
        cached = self.cache.get(generation, key)
        if cached is not None:
            found, shown, dropped = cached
            # The index has not changed, but the database may have: a post hidden (or shown
            # again) since is never served from the cache.
            if _visible_ids(self.engine, shown + dropped) == set(shown):
                return dataclasses.replace(found, took_ms=_ms(started))
            self.cache.drop(key)
        q = parse_query(searcher.schema, text)
        filter_q = search_filter(blog, since, until)
        left_out = {d for d in (searcher.document_number(id=str(i)) for i in exclude) if d is not None}
        ranked = rank(searcher, q, filter_q, newest=sort == "newest", n=page * limit, exclude=left_out)
        docs = ranked.docs[(page - 1) * limit: page * limit]
        ids = [int(searcher.stored_fields(d)["id"]) for d in docs]
        rows = _rows(self.engine, ids)
        body_words = query_words(q, (MATCH_FIELD, "body", "title", "tags"))
        title_words = query_words(q, (MATCH_FIELD, "title", "tags"))
        hits = []
        for d, post_id in zip(docs, ids):
            row = rows.get(post_id)
            if row is None:
                continue  # hidden or deleted since the last sync: never shown
            body = plain_text(row.content_html or "")
            hits.append(SearchHit(
                id=row.id, title=row.title, url=row.url, blog=row.blog or "", blog_id=row.feed_id,
                published=row.published, score=round(float(ranked.scores.get(d, 0.0)), 4),
                highlights=highlight(body, body_words) or opening(body),
                title_highlight=mark_all(row.title or "", title_words) or html.escape(row.title or ""),
            ))
        blog_counts = {}
        if counts and ranked.exact and ranked.total:
            tally = Counter(view_of(searcher).blog_ids(list(ranked.matched)))
            tally.pop(0, None)
            blog_counts = dict(tally.most_common())
        suggestion = did_you_mean(searcher, text)
        found = SearchPage(text, ranked.total, _ms(started), page, (ranked.total + limit - 1) // limit, hits,
                           suggestion, blog_counts, ranked.exact)
        shown = [h.id for h in hits]
        self.cache.put(generation, key, (found, shown, [i for i in ids if i not in rows]))
        return found

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


def _open_with_retry(settings: Settings, tries: int = 5):
    """Open the live index; a commit can replace its table of contents mid-open."""
    for attempt in range(tries):
        try:
            return open_index(settings)
        except OSError:
            if attempt == tries - 1:
                raise
            time.sleep(0.02 * (attempt + 1))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _visible_ids(engine: Engine, ids: list[int]) -> set[int]:
    if not ids:
        return set()
    query = sa.select(posts.c.id).join(feeds, feeds.c.id == posts.c.feed_id).where(posts.c.id.in_(ids), VISIBLE)
    with reading(engine) as conn:
        return set(conn.execute(query).scalars())


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
