"""Search (read-only): query parsing that hostile input cannot break, results from the database.

Query language: words are ANDed; "quoted phrases"; title:, author:, blog:, tag:
fields; OR and NOT (upper case) with parentheses. Wildcards, fuzzy terms, regular
expressions and ranges are not part of it (each can make one query scan the whole
index): their syntax is read as plain words. Dates and blogs are filters given
separately (since/until/blog), not query syntax.

Results come from the database by id: titles, URLs and the text that highlights
are cut from. A post hidden since the last sync is dropped there, so it is never shown.
"""

from __future__ import annotations

import html
import re
import threading
import time
import weakref
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from whoosh import qparser, sorting
from whoosh import query as wq
from whoosh.analysis import STOP_WORDS
from whoosh.highlight import ContextFragmenter, Formatter, get_text
from whoosh.reading import TermNotFound

from aggregator.db import feeds, posts, reading
from aggregator.errors import HustingsError
from aggregator.sanitize import html_to_text
from aggregator.settings import Settings

from .schema import current_dir, make_schema, open_index
from .writer import VISIBLE

MAX_QUERY_CHARS = 500  # longer than any real search; refuse rather than parse a novel
MAX_LIMIT = 100
MAX_PAGE = 1000
SEARCH_FIELDS = ("title", "body", "tags")
FIELD_ALIASES = {"tags": ["tag"], "blog": ["site"], "author": ["by"]}


class QueryError(HustingsError):
    """The query cannot be searched; the message says why, for the person who typed it."""


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


class _MarkFormatter(Formatter):
    """Matches in <mark>, everything else HTML-escaped, fragments joined by an ellipsis."""

    between = " … "

    def format_token(self, text, token, replace=False):
        return "<mark>" + html.escape(get_text(text, token, replace), quote=False) + "</mark>"

    def _text(self, text):
        return html.escape(text, quote=False)


def _parser(schema) -> qparser.QueryParser:
    parser = qparser.MultifieldParser(list(SEARCH_FIELDS), schema, group=qparser.AndGroup)
    for plugin in (qparser.WildcardPlugin, qparser.RangePlugin, qparser.BoostPlugin):
        parser.remove_plugin_class(plugin)
    parser.add_plugin(qparser.FieldAliasPlugin(FIELD_ALIASES))
    return parser


_WORD = re.compile(r"\w+", re.UNICODE)
QUERY_FIELDS = {"title", "body", "author", "blog", "tags"} | {a for names in FIELD_ALIASES.values() for a in names}
_FIELD_PREFIX = re.compile(r"\b(\w+):")


def parse_query(schema, text: str) -> wq.Query:
    """A Whoosh query for what a reader typed. Raises QueryError for what cannot be searched."""
    # Lone surrogates (from broken UTF-8 decoded leniently) cannot be encoded as index
    # terms: read them as the spaces the cleaning below turns "?" into.
    text = (text or "").encode("utf-8", "replace").decode("utf-8").strip()
    if not text:
        raise QueryError("type something to search for")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"the query is {len(text)} characters long; keep it under {MAX_QUERY_CHARS}")
    # Characters that only drive syntax we do not offer are read as spaces, and so is
    # the colon of a field that is not for searching (published:, url:, id: ...).
    cleaned = re.sub(r"[*?~^\[\]{}\\]", " ", text)
    cleaned = _FIELD_PREFIX.sub(lambda m: m.group(0) if m.group(1).lower() in QUERY_FIELDS else m.group(1) + " ",
                                cleaned)
    try:
        q = _parser(schema).parse(cleaned)
    except Exception:  # the parser is forgiving, but a query must never become a 500
        q = None
    if q is None or q is wq.NullQuery:
        words = _WORD.findall(cleaned)
        if not words:
            raise QueryError("the query has no words to search for")
        q = wq.And([qparser.MultifieldParser(list(SEARCH_FIELDS), schema).parse(w) for w in words])
    q = _drop_stopword_tags(q)
    if q is wq.NullQuery:
        raise QueryError("the query has only words too common to search for (the, and, of ...)")
    if not _has_positive(q):
        raise QueryError("a search needs at least one word that is not after NOT")
    return q


def _drop_stopword_tags(q: wq.Query) -> wq.Query:
    """tags has no stop list (a tag may be any word), so "the" typed in a query would
    otherwise become a required tags:the and match nothing."""
    def fix(node):
        if isinstance(node, wq.Term) and node.fieldname == "tags" and node.text in STOP_WORDS:
            return wq.NullQuery
        return node
    return q.accept(fix).normalize()


def _has_positive(q: wq.Query) -> bool:
    if isinstance(q, wq.Not):
        return False
    if isinstance(q, wq.AndNot):
        return _has_positive(q.a)
    if q.is_leaf():
        return True
    return any(_has_positive(child) for child in q.children())


def _as_utc(value, end_of_day: bool = False) -> datetime | None:
    if value is None or value == "":
        return None
    date_only = False
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise QueryError(f"{text!r} is not a date (use YYYY-MM-DD)") from None
        date_only = len(text) == 10
    try:
        if end_of_day and date_only:  # --until 2026-03-05 includes that day
            value += timedelta(days=1) - timedelta(microseconds=1)
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the calendar starts in UTC
        raise QueryError(f"{value} is outside the dates this site can search") from None
    return value


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
    ) -> SearchPage:
        """One page of results. Raises QueryError for a query or filter that cannot be searched."""
        started = time.perf_counter()
        if sort not in ("relevance", "newest"):
            raise QueryError("sort by relevance or newest")
        if not (1 <= page <= MAX_PAGE) or not (1 <= limit <= MAX_LIMIT):
            raise QueryError(f"page must be 1 to {MAX_PAGE} and limit 1 to {MAX_LIMIT}")
        searcher = self._current()
        q = parse_query(searcher.schema if searcher is not None else make_schema(), text)
        if searcher is None:
            return SearchPage(text, 0, round((time.perf_counter() - started) * 1000, 2), page, 0)
        filters = []
        start, end = _as_utc(since), _as_utc(until, end_of_day=True)
        if start or end:
            filters.append(wq.DateRange("published", start, end))
        if blog not in (None, ""):
            blog_id = str(blog).strip()
            if not blog_id.isdigit():
                raise QueryError(f"blog must be a blog's number, not {blog!r}")
            filters.append(wq.Term("blog_id", blog_id))
        filter_q = wq.And(filters) if filters else None
        sortedby = None if sort == "relevance" else sorting.FieldFacet("published", reverse=True)
        # Top hits: Whoosh's collector prunes matches that cannot reach the top N (which is
        # why its own count is only a lower bound); optimize=False because block-quality
        # skipping was slower, not faster, on this schema (55 vs 18 ms for a one-word query
        # at 100k posts). The exact total and the per-blog counts come from the match set,
        # built with set algebra on posting lists (half the time of Whoosh's docs_for_query).
        results = searcher.search(q, limit=page * limit, filter=filter_q, sortedby=sortedby, optimize=False)
        matched = _match_set(searcher, q)
        if filter_q is not None:
            matched &= _match_set(searcher, filter_q)
        total = len(matched)
        page_hits = list(results)[(page - 1) * limit: page * limit]
        rows = _rows(self.engine, [int(h["id"]) for h in page_hits])
        results.fragmenter = ContextFragmenter(maxchars=200, surround=40)
        results.formatter = _MarkFormatter()
        near = _near_words(text)
        hits = []
        for hit in page_hits:
            row = rows.get(int(hit["id"]))
            if row is None:
                continue  # hidden or deleted since the last sync: never shown
            body = html_to_text(row.content_html or "")
            snippet = hit.highlights("body", text=_excerpt(body, near), top=2) or html.escape(body[:200], quote=False)
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


_QUERY_WORD = re.compile(r"\b(\w+)\b(?!:)", re.UNICODE)
OPERATORS = {"AND", "OR", "NOT", "ANDNOT", "ANDMAYBE"}
SPELL_PREFIX = 2  # letters of a misspelt word taken as typed when looking for the right one
MAX_CORRECTED_WORDS = 3  # unknown words looked up per query: a pasted paragraph must stay cheap
_NAMED = re.compile(r"\b(?:author|by|blog|site|tags?):(?:\"[^\"]*\"|\S+)", re.I)


def did_you_mean(searcher, text: str) -> str:
    """The query with each word the index has never seen replaced by its nearest known word.

    Whoosh's own correct_query looks at stemmed terms ("canvasing" -> "canvas"), which
    are too far from real words to correct; this asks the unstemmed spelling words
    kept beside title and body (spelling=True) about what the reader actually typed.
    """
    reader = searcher.reader()
    analyzer = searcher.schema["body"].analyzer
    out, changed = text, False
    # Words given to author:, blog: or tag: are names, not prose: never "corrected".
    scan = _NAMED.sub(" ", text)
    tried = 0
    for word in dict.fromkeys(m.group(1) for m in _QUERY_WORD.finditer(scan)):
        if word in OPERATORS or word.isdigit():
            continue
        stems = [t.text for t in analyzer(word.lower())]
        if not stems or any(reader.doc_frequency(f, st) for f in ("title", "body") for st in stems):
            continue  # a stop word, or a word the index knows
        # The first two letters are taken as typed (prefix=2): without that the corrector
        # walks every word of the index, 0.7 s a word on 2,000 posts; with it, ~16 ms.
        for fieldname in ("title", "body"):
            best = searcher.corrector(fieldname).suggest(word.lower(), limit=1, maxdist=2, prefix=SPELL_PREFIX)
            if best:
                out = re.sub(rf"\b{re.escape(word)}\b(?!:)", best[0], out)
                changed = True
                break
        tried += 1
        if tried >= MAX_CORRECTED_WORDS:
            break
    return out if changed else ""


EXCERPT_WINDOW = 160  # characters kept either side of a likely match
EXCERPT_MIN = 800  # bodies shorter than this are highlighted whole


def _near_words(text: str) -> re.Pattern | None:
    """A pattern for where query words probably stand in a body (by their first letters,
    so a stemmed match such as canvassed for canvassing is found too)."""
    words = {w.lower()[:5] for w in _QUERY_WORD.findall(_NAMED.sub(" ", text))
             if w not in OPERATORS and len(w) > 2}
    if not words:
        return None
    return re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, words))) + ")", re.I)


def _excerpt(body: str, near: re.Pattern | None, most: int = 4) -> str:
    """The parts of body around likely matches, for the highlighter.

    Whoosh's highlighter re-analyses (tokenises and stems) all the text it is given;
    on whole 3 KB bodies that was most of a search's time. It still decides what
    matches: this only narrows where it looks, falling back to the opening.
    """
    if len(body) <= EXCERPT_MIN or near is None:
        return body
    spans: list[list[int]] = []
    for match in near.finditer(body):
        start, end = max(0, match.start() - EXCERPT_WINDOW), min(len(body), match.end() + EXCERPT_WINDOW)
        if spans and start <= spans[-1][1]:
            spans[-1][1] = end
        elif len(spans) < most:
            spans.append([start, end])
        else:
            break
    if not spans:
        return body[:EXCERPT_MIN]
    return " … ".join(body[a:b] for a, b in spans)


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
