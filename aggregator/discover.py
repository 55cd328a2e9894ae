"""Find a blog's feeds from its home page: <link rel="alternate"> first, then common paths.

discover_feed() is the whole of it, every request through the address guard; used by
`hustings feeds add` and the blogger submission form. Parsing uses the stdlib HTML
parser: it never fails on broken markup, and we only need <base> and <link> elements.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from . import fetch, parse
from .errors import AggregatorError
from .guard import AddressGuard
from .models import Feed
from .settings import Settings

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


@dataclass(frozen=True)
class DiscoveredFeed:
    url: str  # the feed's own URL
    title: str
    site_url: str
    entries: int
    page_url: str = ""  # the page it was found on, when the user gave a page
    alternatives: tuple[str, ...] = ()  # other feeds the page advertised
    # Every response's headers (the page's, then the feed's): the web's say whether it is this very site.
    headers: tuple[dict[str, str], ...] = field(default=(), compare=False)


def discover_feed(url: str, settings: Settings, *, guard: AddressGuard | None = None) -> DiscoveredFeed:
    """The feed behind url: url itself if it is a feed, else one its page advertises.

    Every request goes through the address guard and the fetch limits.

    Raises:
        AggregatorError: naming the URL and why no feed was found.
    """
    guard = guard or AddressGuard(settings.allowed_networks)
    probe = Feed(id=0, url=url)
    result = fetch.fetch(url, settings, guard=guard)
    if looks_like_feed(result.body):
        parsed = parse.parse_feed(result.body, probe, final_url=result.final_url, headers=result.headers,
                                  max_entries=settings.fetch_max_entries)
        return DiscoveredFeed(result.final_url, parsed.title, parsed.site_url, len(parsed.posts),
                              headers=(result.headers,))
    links = find_feed_links(result.body, result.final_url)
    candidates = [l.href for l in links] or candidate_paths(result.final_url)
    errors = []
    for candidate in candidates:
        try:
            got = fetch.fetch(candidate, settings, guard=guard)
            if not looks_like_feed(got.body):
                errors.append(f"{candidate}: not a feed")
                continue
            parsed = parse.parse_feed(got.body, Feed(id=0, url=candidate), final_url=got.final_url,
                                      headers=got.headers, max_entries=settings.fetch_max_entries)
        except AggregatorError as exc:
            errors.append(str(exc))
            continue
        others = tuple(h for h in (l.href for l in links) if h != candidate)
        return DiscoveredFeed(got.final_url, parsed.title, parsed.site_url or result.final_url,
                              len(parsed.posts), page_url=result.final_url, alternatives=others,
                              headers=(result.headers, got.headers))
    if links:
        raise AggregatorError(url, "the page advertises feeds but none could be read: " + "; ".join(errors[:3]))
    raise AggregatorError(url, "no feed found: the page has no <link rel=\"alternate\"> feed and no feed "
                               "at the usual addresses (/feed/, /rss.xml, /atom.xml, ...)")
