"""Find a blog's feeds from its home page: <link rel="alternate"> first, then common paths.

Used by `hustings feeds add` and (later) the blogger submission form. Parsing
uses the stdlib HTML parser: it never fails on broken markup, and we only need
<base> and <link> elements.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

FEED_TYPES = {
    "application/rss+xml": "rss",
    "application/atom+xml": "atom",
    "application/rdf+xml": "rdf",
    "application/feed+json": "json",
    "application/x.atom+xml": "atom",
    "application/x-atom+xml": "atom",
    "text/xml": "xml",
    "application/xml": "xml",
}
# Tried, in order, when a page advertises no feed (Miniflux's list, root-relative).
COMMON_PATHS = ("feed/", "rss.xml", "atom.xml", "feed.xml", "index.xml", "rss/", "feeds/posts/default")
_FEED_START = re.compile(rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:rss|feed|rdf:RDF)[\s>]", re.S | re.I)


@dataclass(frozen=True)
class FeedLink:
    href: str
    type: str
    title: str = ""


class _LinkCollector(HTMLParser):
    def __init__(self, page_url: str):
        super().__init__(convert_charrefs=True)
        self.base = page_url
        self.base_set = False
        self.links: list[FeedLink] = []

    def handle_starttag(self, tag, attrs):
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "base" and not self.base_set and a.get("href"):
            self.base = urljoin(self.base, a["href"].strip())
            self.base_set = True
        elif tag == "link":
            rels = a.get("rel", "").lower().split()
            kind = a.get("type", "").split(";")[0].strip().lower()
            href = a.get("href", "").strip()
            if "alternate" in rels and kind in FEED_TYPES and href:
                absolute = urljoin(self.base, href)
                if urlsplit(absolute).scheme in ("http", "https"):
                    self.links.append(FeedLink(absolute, kind, a.get("title", "").strip()))

    handle_startendtag = handle_starttag


def looks_like_feed(body: bytes) -> bool:
    """True when the bytes start like RSS, Atom or RDF (after any BOM or XML prolog)."""
    head = body[:2048].lstrip(b"\xef\xbb\xbf")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True  # UTF-16: only feeds bother
    return bool(_FEED_START.match(head)) or head.lstrip().startswith(b"{") and b"jsonfeed" in head


def find_feed_links(page: bytes | str, page_url: str) -> list[FeedLink]:
    """Feed links a page advertises, resolved against <base> and the page URL, in page order."""
    text = page.decode("utf-8", "replace") if isinstance(page, bytes) else page
    collector = _LinkCollector(page_url)
    try:
        collector.feed(text)
        collector.close()
    except (AssertionError, ValueError):  # the stdlib parser gives up on some garbage
        pass
    seen, out = set(), []
    for link in collector.links:
        if link.href not in seen:
            seen.add(link.href)
            out.append(link)
    # Real feed types before the vague text/xml and application/xml.
    return sorted(out, key=lambda l: FEED_TYPES[l.type] == "xml")


def candidate_paths(page_url: str) -> list[str]:
    root = urljoin(page_url, "/")
    here = page_url if page_url.endswith("/") else page_url.rsplit("/", 1)[0] + "/"
    out = []
    for base in dict.fromkeys((here, root)):
        for path in COMMON_PATHS:
            out.append(urljoin(base, path))
    return list(dict.fromkeys(out))
