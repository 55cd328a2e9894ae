"""Read one HTML page: is it a blog post, and what are its title, author, date, address and text?

What a page says about itself comes first: schema.org JSON-LD and microdata, h-entry
(and the older hAtom ``hentry``) microformats, Open Graph and ``<meta>`` tags,
``<link rel=canonical>``, ``<time datetime>``. The post's text comes from the blog's
CSS selector when an operator set one, else from readability-lxml (article.py). Pure
functions of (HTML, URL, selector): the spiders call them, and tests call them on saved
pages. The links worth following from a page are read by links.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from parsel import Selector

from .article import article_html, short_title
from .markup import SPACE, absolute, parse_date, same_site, text_of

# schema.org types that are a post (https://schema.org/Article and its subtypes).
ARTICLE_TYPES = frozenset({
    "Article", "BlogPosting", "NewsArticle", "OpinionNewsArticle", "AnalysisNewsArticle", "ReportageNewsArticle",
    "LiveBlogPosting", "SocialMediaPosting", "DiscussionForumPosting", "TechArticle", "Report", "ScholarlyArticle",
    "SatiricalArticle", "Posting",
})
ENTRY_CONTAINERS = (
    "article, .h-entry, .hentry, [itemtype*='schema.org/BlogPosting'], [itemtype*='schema.org/Article'], "
    "[itemtype*='schema.org/NewsArticle']"
)
# An h-entry (or hAtom hentry) root: the class list holds the token exactly.
_HENTRY_XPATH = ("//*[contains(concat(' ', normalize-space(@class), ' '), ' h-entry ') or "
                 "contains(concat(' ', normalize-space(@class), ' '), ' hentry ')]")
_MICRODATA_POST_XPATH = "//*[@itemscope and (" + " or ".join(
    f"substring(@itemtype, string-length(@itemtype) - {len(t)}) = '/{t}'"
    for t in ("BlogPosting", "Article", "NewsArticle")) + ")]"
_BYLINE = re.compile(r"^\s*(?:posted|written|published)?\s*by\s+(.+?)\s*(?:[·|•,]|\bon\b|\bat\b|\d|$)", re.I)


@dataclass(frozen=True)
class Page:
    """What one page says it is."""

    url: str  # the canonical address when the page names one on its own site, else where it was fetched
    is_post: bool
    why: str  # the signal that decided: 'json-ld BlogPosting', 'h-entry', 'og:type article', 'article', 'selector'
    title: str = ""
    author: str = ""
    published: datetime | None = None
    content_html: str = ""
    entries: int = 0  # posts listed on the page (several: an index, archive or label page)


# --- JSON-LD ------------------------------------------------------------------------


def _types(node: dict) -> set[str]:
    kind = node.get("@type")
    kinds = kind if isinstance(kind, list) else [kind]
    return {str(k).rsplit("/", 1)[-1] for k in kinds if k}


def json_ld_nodes(sel: Selector) -> list[dict]:
    """Every object in the page's JSON-LD blocks, @graph and lists flattened; bad blocks skipped."""
    nodes: list[dict] = []

    def walk(value, depth=0):
        if depth > 4:
            return
        if isinstance(value, list):
            for v in value:
                walk(v, depth + 1)
        elif isinstance(value, dict):
            if "@type" in value:
                nodes.append(value)
            if "@graph" in value:
                walk(value["@graph"], depth + 1)

    for block in sel.xpath("//script[@type='application/ld+json']/text()").getall():
        try:
            walk(json.loads(block.strip().rstrip(";")))
        except (ValueError, RecursionError):
            continue
    return nodes


def _ld_text(value, by_id: dict[str, dict]) -> str:
    """A name from a JSON-LD value: a string, a {name}, a {@id} reference, or a list of those."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return ", ".join(t for t in (_ld_text(v, by_id) for v in value[:5]) if t)
    if isinstance(value, dict):
        if value.get("name"):
            return _ld_text(value["name"], by_id)
        ref = by_id.get(str(value.get("@id", "")))
        if ref is not None and ref is not value and ref.get("name"):
            return _ld_text(ref["name"], by_id)
    return ""


def _ld_url(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return str(value.get("@id") or value.get("url") or "")
    if isinstance(value, list) and value:
        return _ld_url(value[0])
    return ""


# --- the page -------------------------------------------------------------------------


def _top_level(nodes) -> list:
    """Drop nodes nested inside another node of the same list (a comment's h-entry inside a post's)."""
    roots = list(nodes)
    if len(roots) < 2:
        return roots
    ids = {id(n.root) for n in roots}
    out = []
    for n in roots:
        parent = n.root.getparent()
        nested = False
        while parent is not None:
            if id(parent) in ids:
                nested = True
                break
            parent = parent.getparent()
        if not nested:
            out.append(n)
    return out


def _first(sel, queries: list[tuple[str, str]]) -> str:
    """The first non-empty value among (css, how) queries: how is 'text' or an attribute name."""
    for css, how in queries:
        for node in sel.css(css):
            value = text_of(node) if how == "text" else (node.attrib.get(how) or "").strip()
            if value:
                return value
    return ""


def _norm(url: str) -> str:
    parts = urlsplit(url)
    return f"{(parts.hostname or '').removeprefix('www.')}{parts.path.rstrip('/') or '/'}?{parts.query}"


def _clean_author(name: str) -> str:
    name = SPACE.sub(" ", name).strip()
    match = _BYLINE.match(name)
    if match:
        name = match.group(1)
    if name.startswith(("http://", "https://")):
        return ""
    return name.strip(" ,·|-")[:200]


def read_page(html: str, url: str, selector: str = "", *, content: bool = True, sel: Selector | None = None) -> Page:
    """Decide whether the page at url is a post and read what it says about itself.

    ``selector`` (the blog's CSS selector) overrides the content guess; ``content=False``
    skips the text extraction (the costly part) when only the metadata is wanted; ``sel``
    is the page already parsed (Scrapy's ``response.selector``), so it is parsed once.
    """
    sel = sel if sel is not None else Selector(text=html or "<html></html>", base_url=url)
    nodes = json_ld_nodes(sel)
    by_id = {str(n["@id"]): n for n in nodes if n.get("@id")}
    articles = [n for n in nodes if _types(n) & ARTICLE_TYPES]
    page_types = {t for n in nodes for t in _types(n)}

    hentries = _top_level(sel.xpath(_HENTRY_XPATH))
    microdata = _top_level(sel.xpath(_MICRODATA_POST_XPATH))
    articles_html = _top_level(sel.xpath("//article[not(ancestor::*[@id='comments' or contains(@class, 'comment')])]"))
    entries = max(len(hentries), len(microdata), len(articles_html))
    og_type = (sel.xpath("//meta[@property='og:type']/@content").get() or "").strip().lower()

    # The entry that the page is about, when there is one.
    entry = None
    for group in (hentries, microdata, articles_html):
        if len(group) == 1:
            entry = group[0]
            break
    scope = entry if entry is not None else sel

    ld = articles[0] if articles else {}
    published = (
        parse_date(str(ld.get("datePublished") or ld.get("dateCreated") or ""))
        or parse_date(_first(scope, [(".dt-published", "datetime"), (".dt-published", "title"),
                                     ("time.published", "datetime"), (".published", "title"),
                                     ("[itemprop=datePublished]", "content"), ("[itemprop=datePublished]", "datetime"),
                                     ("[itemprop=datePublished]", "title")]))
        or parse_date(sel.xpath("//meta[@property='article:published_time']/@content").get())
        or parse_date(_first(scope, [(".dt-published", "text"), ("time[datetime]", "datetime")]))
        or parse_date(sel.xpath("//meta[@name='date' or @name='DC.date.issued' or @itemprop='datePublished']"
                                "/@content").get())
    )

    # A page listing a single post (a month with one post) looks like the post itself,
    # except that the entry's permalink points elsewhere.
    permalink = ""
    if entry is not None:
        permalink = absolute(_first(entry, [(".u-url", "href"), ("[rel~=bookmark]", "href"), (".entry-title a", "href"),
                                            (".p-name a", "href"), ("meta[itemprop=url]", "content"),
                                            ("h1 a", "href"), ("h2 a", "href")]), url)
    here = absolute(sel.xpath("//link[@rel='canonical']/@href").get(), url) or url
    elsewhere = bool(permalink) and same_site(permalink, url) and _norm(permalink) != _norm(here) \
        and _norm(permalink) != _norm(url)
    if elsewhere:
        entry, scope = None, sel

    why, is_post = "", False
    if selector:
        try:
            matched = sel.css(selector)
        except Exception:  # a selector the parser refuses: fall back to the guess
            matched = []
        if matched and entries <= 1:
            is_post, why = True, "selector"
    if not why and nodes and page_types - {"WebSite", "Organization", "Person", "BreadcrumbList", "ImageObject",
                                           "SiteNavigationElement", "SearchAction", "ListItem"}:
        # JSON-LD that describes the page decides: an Article-like node about this page is a
        # post; a WebPage or CollectionPage without one is not (a WordPress page, an archive).
        if len(articles) == 1 or (articles and entries <= 1):
            is_post, why = True, "json-ld " + sorted(_types(ld) & ARTICLE_TYPES)[0]
        else:
            why = "json-ld " + ",".join(sorted(page_types))[:60]
    if not why:
        if entries >= 2 or elsewhere:
            why = f"{entries} entries" if entries >= 2 else "one entry, whose permalink is another page"
        elif og_type and og_type != "article":
            why = f"og:type {og_type}"
        elif published is not None and (og_type == "article" or entry is not None):
            is_post = True
            why = "og:type article" if og_type == "article" else (
                "h-entry" if hentries else "microdata" if microdata else "article")
        else:
            why = "no post markup" if entry is None else "no date"

    canonical = ""
    for candidate in (sel.xpath("//link[@rel='canonical']/@href").get(),
                      sel.xpath("//meta[@property='og:url']/@content").get(),
                      _ld_url(ld.get("mainEntityOfPage")) or _ld_url(ld.get("url"))):
        candidate = absolute(candidate, url)
        if candidate and same_site(candidate, url):
            canonical = candidate
            break
    if not canonical and entry is not None:
        candidate = absolute(_first(entry, [(".u-url", "href")]), url)
        canonical = candidate if candidate and same_site(candidate, url) else ""

    title = (
        _ld_text(ld.get("headline") or ld.get("name"), by_id)
        or _first(scope, [(".p-name", "text"), (".entry-title", "text"), ("[itemprop=headline]", "text"),
                          ("[itemprop=name]", "text")])
        or (sel.xpath("//meta[@property='og:title']/@content").get() or "").strip()
        or _first(scope, [("h1", "text"), ("h2", "text")])
    )
    author = _clean_author(
        _ld_text(ld.get("author"), by_id)
        or _first(scope, [(".p-author .p-name", "text"), (".p-author", "text"), (".author .fn", "text"),
                          (".vcard .fn", "text"), ("[itemprop=author] [itemprop=name]", "text"),
                          ("[itemprop=author]", "text"), ("[rel~=author]", "text")])
        or (sel.xpath("//meta[@name='author']/@content").get() or "")
        or _first(scope, [(".byline", "text"), (".author", "text")])
    )

    body = ""
    if content and is_post:
        body = article_html(html, url, selector, sel=sel)
        if not title:
            title = short_title(html)
    return Page(url=canonical or url, is_post=is_post, why=why, title=SPACE.sub(" ", title).strip()[:1000],
                author=author, published=published, content_html=body, entries=entries)
