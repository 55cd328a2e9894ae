"""The links of a blog page worth following, and what kind each is (a post listed here,
a pager, an archive, a tag or category page), so a crawl walks a blog as a reader would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from parsel import Selector

from .markup import absolute, same_site, text_of

SKIP_PATH = re.compile(
    r"/(?:wp-admin|wp-login\.php|wp-json|xmlrpc\.php|wp-content|wp-includes|cdn-cgi|trackback|feed|feeds|rss|atom|"
    r"comment-page-\d+|amp)(?:/|$)|/wp-signup\.php|/comments/feed", re.I)
SKIP_EXTENSIONS = (
    ".jpg", ".jpeg", ".png", ".gif", ".webp", ".svg", ".ico", ".bmp", ".tif", ".tiff", ".pdf", ".zip", ".gz", ".tgz",
    ".rar", ".7z", ".mp3", ".m4a", ".ogg", ".wav", ".mp4", ".m4v", ".mov", ".avi", ".webm", ".doc", ".docx", ".xls",
    ".xlsx", ".ppt", ".pptx", ".odt", ".ods", ".epub", ".css", ".js", ".json", ".xml", ".rss", ".atom", ".rdf", ".txt",
    ".exe", ".dmg", ".iso",
)
SKIP_QUERY_KEYS = {"replytocom", "share", "shared", "action", "print", "amp", "m", "showcomment", "preview",
                   "s", "q", "format", "like_comment", "redirect_to", "lang"}
TAXONOMY = re.compile(r"/(?:tag|tags|category|categories|label|labels|author|authors|topic|topics|search)(?:/|$)", re.I)
DATE_ARCHIVE = re.compile(r"/(?:19|20)\d{2}(?:/\d{1,2}){0,2}/?(?:index\.html?)?$")
PAGED = re.compile(r"/page/\d+/?$|/archive/?\d*(?:\.html?)?$|/archives?(?:/|\.html?$)", re.I)
PAGER_TEXT = re.compile(
    r"^(?:(?:older|newer|next|previous|prev|more|earlier|later)\b.*|.*\b(?:older|newer|earlier) (?:posts|entries)\b.*|"
    r"[«»‹›←→<>]+|page \d+|\d{1,4})$", re.I)
PAGER_CLASS = re.compile(r"next|prev|older|newer|pager|pagination|page-numbers|nav-links", re.I)


@dataclass(frozen=True)
class Link:
    url: str
    kind: str  # 'entry' (a post listed here), 'pager', 'archive', 'taxonomy' or 'other'


def skip_url(url: str) -> bool:
    """Addresses no crawl needs: admin, login, feeds, files, share and reply links, searches."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return True
    path = parts.path.lower()
    if SKIP_PATH.search(path) or path.endswith(SKIP_EXTENSIONS):
        return True
    keys = {k.lower() for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
    if keys & SKIP_QUERY_KEYS:
        return True
    if path.rstrip("/") == "/search" and "updated-max" not in keys:
        return True  # a site search; Blogger's older-posts pager is /search?updated-max=...
    return False


def page_links(html: str, url: str, *, sel: Selector | None = None) -> list[Link]:
    """The on-site links of a page worth following, each with its kind, in page order."""
    sel = sel or Selector(text=html, base_url=url)
    base = absolute(sel.xpath("//base/@href").get(), url) or url
    seen: dict[str, Link] = {}
    for a in sel.xpath("//a[@href]"):
        target = absolute(a.attrib.get("href"), base)
        if not target or target == url or not same_site(target, url) or skip_url(target):
            continue
        rel = (a.attrib.get("rel") or "").lower().split()
        cls = a.attrib.get("class", "") + " " + " ".join(a.xpath("ancestor::*[position() <= 3]/@class").getall())
        words = text_of(a)
        path = urlsplit(target).path
        if "next" in rel or "prev" in rel or PAGED.search(path) or "updated-max=" in target or \
                (PAGER_CLASS.search(cls) and PAGER_TEXT.match(words or "-")):
            kind = "pager"
        elif a.xpath("ancestor::*[self::h1 or self::h2 or self::h3 or self::h4]") or "bookmark" in rel or \
                re.search(r"more-link|read-?more|continue", cls + " " + words, re.I):
            kind = "entry"
        elif TAXONOMY.search(path):
            kind = "taxonomy"
        elif DATE_ARCHIVE.search(path) or re.search(r"archive", cls, re.I):
            kind = "archive"
        else:
            kind = "other"
        previous = seen.get(target)
        if previous is None or RANK[kind] > RANK[previous.kind]:
            seen[target] = Link(target, kind)
    return list(seen.values())


RANK = {"taxonomy": 0, "other": 1, "archive": 2, "pager": 3, "entry": 4}
