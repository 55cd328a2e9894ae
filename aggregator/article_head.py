"""A post's text without its own title and byline at the top.

A blog's page, read for the full text (spiders/fulltext.py), usually starts its article
with the post's title as a heading and a byline ("By Dave Kerrigan, 3 Dec 2026"): shown
under our own headline and byline, they say everything twice (issue 14). Some feeds do the
same. These functions take them off the top of the HTML, and off the top of a plain-text
summary made from such HTML before this existed. They only ever remove the title as the
first heading, and a short byline-like line right after it (or first): nothing else.
"""

from __future__ import annotations

import html
import re
import unicodedata

HEAD_WINDOW = 3000  # the title and byline are at the top; nothing further down is touched
BYLINE_MAX_CHARS = 160
_OPEN = re.compile(r"\s*(?:<(?:div|article|header|section|main|hgroup)\b[^>]*>\s*)*", re.I)
_HEADING = re.compile(r"<(h[1-6])\b[^>]*>(.*?)</\1\s*>\s*", re.I | re.S)
_LINE = re.compile(r"<(p|div|span|time|address|small|em)\b[^>]*>(.*?)</\1\s*>\s*", re.I | re.S)
_TAGS = re.compile(r"<[^>]+>")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DATE = re.compile(r"\b(?:\d{4}-\d{2}-\d{2}|\d{1,2}(?:st|nd|rd|th)? (?:%s)[a-z]*,? \d{4}|(?:%s)[a-z]* \d{1,2}(?:st|nd|rd|th)?,? "
                   r"\d{4})(?:,? (?:at )?\d{1,2}[:.]\d{2}(?: ?[ap]m)?(?: [A-Z]{2,4})?)?" % ("|".join(_MONTHS),
                                                                                         "|".join(_MONTHS)), re.I)
_BY = re.compile(r"^(?:by|posted by|written by|words by|published by|posted on|published on|posted|published)\b",
                 re.I)


def _norm(text: str) -> str:
    """Text as compared: entities decoded, case and accents folded, only letters and digits."""
    text = unicodedata.normalize("NFKD", html.unescape(_TAGS.sub(" ", text))).casefold()
    return re.sub(r"[^0-9a-z]+", "", "".join(c for c in text if not unicodedata.combining(c)))


def _text(fragment: str) -> str:
    return " ".join(html.unescape(_TAGS.sub(" ", fragment)).split())


def is_byline(text: str, author: str = "") -> bool:
    """A short line that only says who wrote the post and when."""
    if not text or len(text) > BYLINE_MAX_CHARS:
        return False
    if _BY.match(text) and (len(text.split()) <= 6 or _DATE.search(text)
                            or (author and _norm(author) and _norm(author) in _norm(text))):
        return True  # "By Dave Kerrigan", "Posted on 3 May 2026"; not "By the time we arrived, ..."
    rest = _DATE.sub("", text)
    if author and _norm(author) and _norm(author) in _norm(text):
        rest = re.sub(re.escape(author), "", rest, flags=re.I)
    # What is left once the date and the author are taken out: a word or two ("Posted", "|").
    return (rest != text) and len(_norm(rest)) <= 12


def strip_repeated_head(content_html: str, title: str, author: str = "") -> str:
    """The HTML without a first heading that is the post's title, and without a byline line
    right after it (or at the very top)."""
    if not content_html:
        return content_html
    head, tail = content_html[:HEAD_WINDOW], content_html[HEAD_WINDOW:]
    start = _OPEN.match(head).end()
    out = head[:start]
    pos = start
    m = _HEADING.match(head, pos)
    if m and title and _norm(m.group(2)) == _norm(title):
        pos = m.end()
    m = _LINE.match(head, pos)
    if m and is_byline(_text(m.group(2)), author):
        pos = m.end()
    if pos == start:
        return content_html
    return out + head[pos:] + tail


def strip_repeated_head_text(summary: str, title: str, author: str = "") -> str:
    """A plain-text summary without the title and byline its start repeats (summaries made
    from a page's text before strip_repeated_head was applied to it)."""
    text = summary or ""
    words = text.split(" ")
    n = len(title.split())
    if not (title and n and _norm(title) and _norm(" ".join(words[:n])).startswith(_norm(title))):
        return text  # it does not start with the title: a summary of the post itself
    text = " ".join(words[n:]).lstrip(" .:–-")
    if _BY.match(text) or (author and text.casefold().startswith(author.casefold())):
        date = _DATE.search(text, 0, BYLINE_MAX_CHARS)
        if date:
            text = text[date.end():].lstrip(" .,|–-")
            text = re.sub(r"^(?:UTC|GMT|BST)\b[ .]*", "", text)
        elif author and author.casefold() in text[:BYLINE_MAX_CHARS].casefold():
            end = text.casefold().index(author.casefold()) + len(author)
            text = text[end:].lstrip(" .,|–-")
    return text
