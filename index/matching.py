"""Matching and ranking a parsed query on the index's posting lists, in this process.

Whoosh's own searcher walks a tree of matcher objects and scores every candidate one
method call at a time: at 100,000 posts that alone was p95 77-250 ms for the search
page's queries, depending on the machine's load (docs/performance.md). Here each term's postings are read a block at a
time (the `text` field has no positions, so a block is a few hundred bytes), scored with
Whoosh's own BM25F formula in comprehensions, and combined as dicts (AND, OR, NOT).

Phrases are matched as an AND of their words first; their positions (in title and
body, which keep them) are checked only for the candidates a page needs. With at most
CHECK_ALL candidates every one is checked and the total is exact; past that the total
is an estimate (`Ranked.exact` is False) from the share of the checked ones that held.

Segments are read by index/segments.py.
"""

from __future__ import annotations

import heapq
import weakref
from array import array
from dataclasses import dataclass
from math import log

from whoosh import query as wq
from whoosh.util.numeric import byte_to_length

from . import segments
from .schema import MATCH_FIELD

K1, B = 1.2, 0.75  # Whoosh's BM25F defaults: a score means what it meant before
PHRASE_FIELDS = ("title", "body")  # where a phrase typed without a field must stand, word by word
CHECK_ALL = 300  # phrase candidates up to this many are all checked, so the total is exact
CHECK_MOST = 3000  # past CHECK_ALL, candidates are checked in rank order until a page is full, at most this many
BLOG_COLUMN_AT = 2000  # more matches than this: read the whole blog_id column once, not post by post


@dataclass
class Ranked:
    docs: list[int]  # the first n matches in order (Whoosh document numbers)
    scores: dict[int, float]  # the candidates' relevance scores (every listed doc is among them)
    total: int  # every match (an estimate when exact is False)
    exact: bool
    matched: object | None  # every matching doc (a collection), or None when the total is estimated


_views: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # Whoosh searcher -> its View


def view_of(searcher) -> "View":
    """The View of a Whoosh searcher (made once; a refresh makes a new searcher)."""
    view = _views.get(searcher)
    if view is None:
        view = _views[searcher] = View(searcher)
    return view


class View:
    """One Whoosh searcher as matching needs it: its segments, their field lengths and columns.

    Segment data is cached per segment reader, so after a sync only the new segment is read.
    """

    def __init__(self, searcher):
        self.searcher = searcher
        self.reader = searcher.reader()
        self.schema = self.reader.schema
        self.leaves = list(self.reader.leaf_readers())  # [(segment reader, first doc number)]
        self.size = self.reader.doc_count_all()  # deleted docs included, as in Whoosh's idf and average length
        self._norms: dict[str, list[float]] = {}
        self._published = None
        self._blogs = None

    # --- terms ---------------------------------------------------------------------------

    def term_scores(self, fieldname: str, text) -> dict[int, float]:
        """Every live doc holding the term, with its BM25F score for it."""
        if fieldname not in self.schema:
            return {}
        fieldobj = self.schema[fieldname]
        btext = text if isinstance(text, bytes) else fieldobj.to_bytes(text)
        df = self.reader.doc_frequency(fieldname, btext)
        if not df:
            return {}
        out: dict[int, float] = {}
        scorable = fieldobj.scorable
        if scorable:
            c = (log(self.size / (df + 1)) + 1) * (K1 + 1)  # Whoosh's idf, times BM25's (k1 + 1)
            norm = self._norm_table(fieldname)
        for leaf, base in self.leaves:
            ids, weights = segments.postings(leaf, fieldname, btext, fieldobj.format)
            if not ids:
                continue
            if not scorable:
                out.update(dict.fromkeys([base + d for d in ids], 0.0))
                continue
            lengths = segments.cached(leaf, ("len", fieldname), lambda: segments.lengths(leaf, fieldname))
            if base:
                out.update({base + d: c * w / (w + norm[lengths[d]]) for d, w in zip(ids, weights)})
            else:
                out.update({d: c * w / (w + norm[lengths[d]]) for d, w in zip(ids, weights)})
        return out

    def _norm_table(self, fieldname: str) -> list[float]:
        """BM25's length normalisation for each of the 256 length bytes Whoosh stores."""
        table = self._norms.get(fieldname)
        if table is None:
            avg = (self.reader.field_length(fieldname) / (self.size or 1)) or 1.0
            table = self._norms[fieldname] = [K1 * ((1 - B) + B * byte_to_length(b) / avg) for b in range(256)]
        return table

    # --- columns -------------------------------------------------------------------------

    def published(self) -> array:
        """Each doc's published date as Whoosh stores it (a sortable integer), by doc number."""
        if self._published is None:
            out = array("q")
            for leaf, _ in self.leaves:
                out.extend(segments.cached(leaf, "published", lambda leaf=leaf: segments.numbers(leaf, "published")))
            self._published = out
        return self._published

    def blog_ids(self, docs) -> list[int]:
        """The blog_id of each doc in docs."""
        if self._blogs is None and len(docs) > BLOG_COLUMN_AT:
            blogs: list[int] = []
            for leaf, _ in self.leaves:
                blogs.extend(segments.cached(leaf, "blog_id", lambda leaf=leaf: [
                    int(v) if v else 0 for v in leaf.column_reader("blog_id", translate=True)]))
            self._blogs = blogs
        if self._blogs is not None:
            return list(map(self._blogs.__getitem__, docs))
        readers = [(base, leaf.column_reader("blog_id", translate=True)) for leaf, base in self.leaves]
        out = []
        for d in docs:
            base, column = next((b, c) for b, c in reversed(readers) if b <= d)
            value = column[d - base]
            out.append(int(value) if value else 0)
        return out


def _in_order(positions: list[list[int]], slop: int) -> bool:
    """Do the words stand in order, each at most slop positions after the one before?"""
    current = set(positions[0])
    for nxt in positions[1:]:
        current = {q for q in nxt if any(0 < q - p <= slop for p in current)}
        if not current:
            return False
    return True


# --- evaluating a query -----------------------------------------------------------------------


class _Evaluation:
    """One query's evaluation: each node's candidates and scores, and its phrase checks."""

    def __init__(self, view: View):
        self.view = view
        self.found: dict[int, tuple[dict[int, float], bool]] = {}  # id(node) -> (scores, exact)
        self.phrases: list[wq.Phrase] = []
        self.held: dict[int, set[int]] = {}  # id(phrase) -> docs of the checked batch where it holds
        self._positions: dict[tuple, segments.Positions] = {}  # (segment, field, word) -> its reader

    def run(self, q) -> tuple[dict[int, float], bool]:
        got = self._run(q)
        self.found[id(q)] = got
        return got

    def word(self, fieldname: str, text) -> dict[int, float]:
        """A word's docs and scores; in the text field, with the title's score added where the
        title has it too (Whoosh would score Or(text:w, title:w) the same way)."""
        scores = self.view.term_scores(fieldname, text)
        if fieldname == MATCH_FIELD and scores and "title" in self.view.schema:
            for d, v in self.view.term_scores("title", text).items():
                if d in scores:  # always: the title is part of text
                    scores[d] += v
        return scores

    def _run(self, q):
        view = self.view
        if isinstance(q, wq.Term):
            return self.word(q.fieldname, q.text), True
        if isinstance(q, wq.Phrase):
            words = list(q.words)
            if len(words) == 1:
                return self.word(q.fieldname, words[0]), True
            scores = _and([self.word(q.fieldname, w) for w in words])
            if q.fieldname != MATCH_FIELD and not _has_positions(view.schema, q.fieldname):
                return scores, True  # nothing to check the order against: the words together
            self.phrases.append(q)
            return scores, False
        if isinstance(q, wq.And):
            plus = [self.run(c) for c in q.subqueries if not isinstance(c, wq.Not)]
            minus = [self.run(c.query) for c in q.subqueries if isinstance(c, wq.Not)]
            if not plus:
                return {}, True
            scores = _and([s for s, _ in plus])
            exact = all(e for _, e in plus)
            for s, e in minus:
                if e:
                    scores = {d: v for d, v in scores.items() if d not in s}
                else:
                    exact = False  # kept for now: the check decides
            return scores, exact
        if isinstance(q, wq.Or):
            parts = [self.run(c) for c in q.subqueries if not isinstance(c, wq.Not)]
            return _or([s for s, _ in parts]), all(e for _, e in parts)
        if isinstance(q, wq.AndNot):
            (a, ea), (b, eb) = self.run(q.a), self.run(q.b)
            return ({d: v for d, v in a.items() if d not in b} if eb else a), ea and eb
        if isinstance(q, wq.AndMaybe):
            (a, ea), (b, _) = self.run(q.a), self.run(q.b)
            return {d: v + b.get(d, 0.0) for d, v in a.items()}, ea
        if isinstance(q, wq.Require):
            (a, ea), (b, eb) = self.run(q.a), self.run(q.b)
            return {d: v for d, v in a.items() if d in b}, ea and eb
        if q is wq.NullQuery or isinstance(q, type(wq.NullQuery)):
            return {}, True
        return self._whoosh(q), True

    def _whoosh(self, q) -> dict[int, float]:
        """Anything else the parser may make: Whoosh's own matcher (every doc, exact)."""
        out = {}
        m = q.matcher(self.view.searcher)
        while m.is_active():
            out[m.id()] = m.score() if m.supports("score") else 0.0
            m.next()
        return out

    # --- checking candidates ---------------------------------------------------------------

    def check(self, q, docs: list[int]) -> list[int]:
        """The docs (candidates of q) that really match it: its phrases' words in order."""
        self.held = {}
        for phrase in self.phrases:
            scores = self.found[id(phrase)][0]
            self.held[id(phrase)] = self._phrase_holds(phrase, sorted(d for d in docs if d in scores))
        return [d for d in docs if self._holds(q, d)]

    def _holds(self, q, d: int) -> bool:
        scores, exact = self.found[id(q)]
        if exact or d not in scores:  # an inexact node's candidates hold every real match
            return d in scores
        if isinstance(q, wq.Phrase):
            return d in self.held[id(q)]
        if isinstance(q, wq.And):
            return (all(self._holds(c, d) for c in q.subqueries if not isinstance(c, wq.Not))
                    and not any(self._holds(c.query, d) for c in q.subqueries if isinstance(c, wq.Not)))
        if isinstance(q, wq.Or):
            return any(self._holds(c, d) for c in q.subqueries if not isinstance(c, wq.Not))
        if isinstance(q, wq.AndNot):
            return self._holds(q.a, d) and not self._holds(q.b, d)
        if isinstance(q, wq.Require):
            return self._holds(q.a, d) and self._holds(q.b, d)
        if isinstance(q, wq.AndMaybe):
            return self._holds(q.a, d)
        return True

    def _phrase_holds(self, phrase, docs: list[int]) -> set[int]:
        fields = PHRASE_FIELDS if phrase.fieldname == MATCH_FIELD else (phrase.fieldname,)
        words = list(phrase.words)
        held: set[int] = set()
        for fieldname in fields:
            if fieldname not in self.view.schema:
                continue
            todo = [d for d in docs if d not in held]
            for k, (leaf, base) in enumerate(self.view.leaves):
                end = base + leaf.doc_count_all()
                readers = None
                for d in todo:
                    if not base <= d < end:
                        continue
                    if readers is None:
                        readers = [self._reader(k, leaf, fieldname, w) for w in words]
                        rarest_first = sorted(range(len(words)), key=lambda i: readers[i].blocks)
                    found: dict[int, list[int]] = {}
                    for i in rarest_first:  # stop at the first word the doc lacks here
                        at = readers[i].of(d - base)
                        if at is None:
                            break
                        found[i] = at
                    if len(found) == len(words) and _in_order([found[i] for i in range(len(words))], phrase.slop):
                        held.add(d)
        return held

    def _reader(self, k: int, leaf, fieldname: str, word: str) -> segments.Positions:
        key = (k, fieldname, word)
        reader = self._positions.get(key)
        if reader is None:
            reader = self._positions[key] = segments.Positions(leaf, fieldname, word)
        return reader


def _has_positions(schema, fieldname: str) -> bool:
    return fieldname in schema and schema[fieldname].format.supports("positions")


def _and(parts: list[dict[int, float]]) -> dict[int, float]:
    if not parts:
        return {}
    parts = sorted(parts, key=len)
    out = parts[0]
    for other in parts[1:]:
        out = {d: v + other[d] for d, v in out.items() if d in other}
    return dict(out)


def _or(parts: list[dict[int, float]]) -> dict[int, float]:
    if not parts:
        return {}
    parts = sorted(parts, key=len, reverse=True)
    out = dict(parts[0])
    for other in parts[1:]:
        get = out.get
        for d, v in other.items():
            out[d] = get(d, 0.0) + v
    return out


# --- ranking -----------------------------------------------------------------------------


def rank(searcher, q, filter_q=None, *, newest: bool = False, n: int = 10, exclude: set[int] = frozenset()) -> Ranked:
    """The first n matches of q (and filter_q, but no doc in exclude), best first or newest first,
    and the total."""
    view = view_of(searcher)
    ev = _Evaluation(view)
    scores, exact = ev.run(q)
    if filter_q is not None:
        scores = _filtered(ev, filter_q, scores)
    if exclude:
        scores = {d: v for d, v in scores.items() if d not in exclude}
    key = view.published().__getitem__ if newest else scores.__getitem__
    if exact:
        docs = heapq.nlargest(n, scores, key=key)
        return Ranked(docs, scores, len(scores), True, scores)
    if len(scores) <= CHECK_ALL:
        held = ev.check(q, list(scores))
        docs = heapq.nlargest(n, held, key=key)
        return Ranked(docs, scores, len(held), True, held)
    order = sorted(scores, key=key, reverse=True)
    held, checked, step = [], 0, max(50, n)
    while len(held) < n and checked < min(len(order), CHECK_MOST):
        batch = order[checked:checked + step]
        held.extend(ev.check(q, batch))
        checked += len(batch)
        step *= 2
    if checked >= len(order):
        return Ranked(held[:n], scores, len(held), True, held)
    estimate = round(len(held) * len(order) / checked)
    return Ranked(held[:n], scores, max(estimate, len(held)), False, None)


def _filtered(ev: _Evaluation, filter_q, scores: dict[int, float]) -> dict[int, float]:
    """The candidates that pass the filters (a blog, a date range): tested one by one, since
    the candidates are usually far fewer than the posts a filter admits."""
    parts = filter_q.subqueries if isinstance(filter_q, wq.And) else [filter_q]
    for part in parts:
        if isinstance(part, wq.NumericRange) and part.fieldname == "published":
            published = ev.view.published()
            lo = part.start if part.start is not None else -(2**63)
            hi = part.end if part.end is not None else 2**63 - 1
            scores = {d: v for d, v in scores.items() if lo <= published[d] <= hi}
        else:
            keep, _ = ev.run(part)
            scores = {d: v for d, v in scores.items() if d in keep}
    return scores
