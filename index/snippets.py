"""Snippets: the parts of a post's body a search shows, matches marked.

Whoosh's highlighter decides what matches; this narrows where it looks (`excerpt`) and
writes the HTML (`MarkFormatter`: matches in <mark>, everything else escaped).
"""

from __future__ import annotations

import html
import re

from whoosh.highlight import Formatter, get_text

from .query import NAMED, OPERATORS, QUERY_WORD

EXCERPT_WINDOW = 160  # characters kept either side of a likely match
EXCERPT_MIN = 800  # bodies shorter than this are highlighted whole


def near_words(text: str) -> re.Pattern | None:
    """A pattern for where query words probably stand in a body (by their first letters,
    so a stemmed match such as canvassed for canvassing is found too)."""
    words = {w.lower()[:5] for w in QUERY_WORD.findall(NAMED.sub(" ", text))
             if w not in OPERATORS and len(w) > 2}
    if not words:
        return None
    return re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, words))) + ")", re.I)


def excerpt(body: str, near: re.Pattern | None, most: int = 4) -> str:
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


class MarkFormatter(Formatter):
    """Matches in <mark>, everything else HTML-escaped, fragments joined by an ellipsis."""

    between = " … "

    def format_token(self, text, token, replace=False):
        return "<mark>" + html.escape(get_text(text, token, replace), quote=False) + "</mark>"

    def _text(self, text):
        return html.escape(text, quote=False)
