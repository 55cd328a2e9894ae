"""Snippets: the parts of a post's text a search shows, matches marked.

A word is marked when its stem is one the query looks for: the index's own tokenizer
pattern and Porter stemmer, run over the text of the posts on the page (Whoosh's
highlighter pushed every word through its analyser chain, most of a search's time).
Snippets start and end on whole words: a fragment is widened or narrowed to the spaces
around it, never cut inside a word; everything but our <mark>s is HTML-escaped.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

from whoosh import query as wq
from whoosh.lang.porter import stem

_ATTRS = r"""(?:[^>"']|"[^"]*"|'[^']*')*"""
BLOCK = re.compile(r"</?(?:p|div|h[1-6]|li|ul|ol|dl|dd|dt|blockquote|pre|table|tr|td|th|figure|figcaption|br|hr)\b"
                   + _ATTRS + ">", re.I)  # a word ends here
TAG = re.compile("<" + _ATTRS + ">")  # inline (<em>, <a>): no gap
SPACE = re.compile(r"\s")
FRAGMENT_CHARS = 200  # about this long (widened to whole words)
SURROUND = 40  # characters of context kept before a fragment's first match
TOP = 2  # fragments per post
MOST_MATCHES = 60  # matches considered per post: a word on every line need not be weighed 300 times
BETWEEN = " … "

_stem = lru_cache(maxsize=50_000)(stem)


def plain_text(fragment: str) -> str:
    """The text of (already sanitised) HTML for a snippet, on one line: tags out, entities
    decoded. A quarter of aggregator.sanitize.html_to_text's cost (10 posts per search), and
    the same words; only the full stops it adds after headings are missing."""
    return " ".join(html.unescape(TAG.sub("", BLOCK.sub(" ", fragment))).split())


def query_words(q, fields: tuple[str, ...]) -> frozenset[str]:
    """The (stemmed) words q looks for in any of fields, leaving out the words after NOT."""
    out: set[str] = set()

    def walk(node):
        if isinstance(node, wq.Not):
            return
        if isinstance(node, wq.AndNot):
            walk(node.a)
            return
        if isinstance(node, wq.Term) and node.fieldname in fields and isinstance(node.text, str):
            out.add(node.text)
        elif isinstance(node, wq.Phrase) and node.fieldname in fields:
            out.update(w for w in node.words if isinstance(w, str))
        elif not node.is_leaf():
            for child in node.children():
                walk(child)

    walk(q)
    return frozenset(out)


@lru_cache(maxsize=256)
def _finder(words: frozenset[str]) -> re.Pattern:
    """The tokens that could stem to one of words: those starting as a stem starts (a stem is
    the word's start, give or take its last letter: happi for happy), so most tokens are
    never stemmed at all."""
    starts = sorted({w[:max(1, min(4, len(w) - 1))] for w in words})
    return re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, starts)) + r")\w*(?:\.\w+)*", re.I)


def _matches(text: str, words: frozenset[str]) -> list[tuple[int, int]]:
    spans = []
    for m in _finder(words).finditer(text):
        w = m.group().lower()
        if w in words or _stem(w) in words:
            spans.append(m.span())
            if len(spans) >= MOST_MATCHES:
                break
    return spans


def _start(text: str, i: int, first_match: int) -> int:
    """A fragment's start at or near i, on the first letter of a word, not after first_match."""
    if i <= 0 or SPACE.match(text, i - 1):
        return max(i, 0)
    gap = SPACE.search(text, i, first_match)
    if gap:
        return gap.end()
    back = max(text.rfind(" ", 0, i), text.rfind("\n", 0, i))
    return back + 1


def _end(text: str, j: int, last_match: int) -> int:
    """A fragment's end at or near j, just after a word's last character, not before last_match."""
    if j >= len(text) or text[j].isspace():
        return min(j, len(text))
    back = max(text.rfind(" ", last_match, j), text.rfind("\n", last_match, j))
    if back >= 0:
        return back
    gap = SPACE.search(text, j)
    return gap.start() if gap else len(text)


def _mark(text: str, spans: list[tuple[int, int]], a: int, b: int) -> str:
    out, at = [], a
    for s, e in spans:
        if s < a or e > b:
            continue
        out.append(html.escape(text[at:s], quote=False))
        out.append("<mark>" + html.escape(text[s:e], quote=False) + "</mark>")
        at = e
    out.append(html.escape(text[at:b], quote=False))
    return "".join(out).strip()


def highlight(text: str, words: frozenset[str], top: int = TOP, chars: int = FRAGMENT_CHARS) -> str:
    """Up to `top` fragments of text around its matches, as HTML; "" when nothing matches."""
    spans = _matches(text, words) if words else []
    if not spans:
        return ""
    if len(text) <= chars:
        return _mark(text, spans, 0, len(text))
    windows = []
    for k, (s, _) in enumerate(spans):
        a = _start(text, max(0, s - SURROUND), s)
        inside = [sp for sp in spans[k:] if sp[1] <= a + chars] or [spans[k]]
        b = _end(text, a + chars, inside[-1][1])
        found = {text[x:y].lower() for x, y in inside}
        windows.append((len(found), len(inside), -a, a, b))
    chosen: list[tuple[int, int]] = []
    for *_, a, b in sorted(windows, reverse=True):
        if all(b <= x or a >= y for x, y in chosen):
            chosen.append((a, b))
            if len(chosen) == top:
                break
    return BETWEEN.join(_mark(text, spans, a, b) for a, b in sorted(chosen))


def mark_all(text: str, words: frozenset[str]) -> str:
    """All of text with its matches marked (a title), or "" when nothing matches."""
    spans = _matches(text, words) if words else []
    return _mark(text, spans, 0, len(text)) if spans else ""


def opening(text: str, chars: int = FRAGMENT_CHARS) -> str:
    """The start of text as HTML, cut after a whole word."""
    if len(text) <= chars:
        return html.escape(text, quote=False)
    cut = text.rfind(" ", 0, chars + 1)
    if cut < chars // 2:
        gap = SPACE.search(text, chars)
        cut = gap.start() if gap else len(text)
    return html.escape(text[:cut].rstrip(" ,;:-"), quote=False) + " …"
