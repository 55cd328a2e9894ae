"""Feeds out: Atom and RSS of the front page, of the newest list and of each blog
(feedgen, so the XML is right by construction), and the blogroll as OPML.

Our titles, summaries and blog names are plain text. Atom says so (`type="text"`); RSS
cannot: readers take an RSS description as HTML, and many take titles as HTML too, so for
RSS that text is HTML-escaped before feedgen escapes it again for XML (a title holding
`<script>` reaches a reader as `&lt;script&gt;`, shown literally). The post's own HTML,
sanitised, goes in `content:encoded` as HTML, which is what it is.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone

import bottle
from feedgen.feed import FeedGenerator

from aggregator import listings, sections
from aggregator.opml import write_opml

from . import pages
from .request import Site

ATOM = "application/atom+xml; charset=utf-8"
RSS = "application/rss+xml; charset=utf-8"
ITEMS = 30
# Characters XML 1.0 cannot carry. Feeds deliver them in titles, authors and tags (a JSON
# Feed's "\u0007", an RSS title's "&#7;"), and lxml refuses the whole document over one.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _x(text: str | None) -> str:
    return _NOT_XML.sub("", text or "")


def _text(text: str | None, kind: str) -> str:
    """Plain text as the format carries it: Atom's type="text" as it is, RSS's as HTML."""
    text = _x(text)
    return html.escape(text, quote=False) if kind == "rss" else text


def _feed(site: "Site", items: list[dict], *, title: str, page_path: str, self_path: str, kind: str,
          description: str, updated: datetime | None):
    base = site.settings.site_url.rstrip("/")
    fg = FeedGenerator()
    fg.id(base + page_path)
    fg.title(_text(title, kind))
    fg.subtitle(_text(description, kind))  # RSS's required <description>
    # feedgen makes RSS's channel <link> of the last link given: the page, never the feed itself.
    fg.link(href=base + self_path, rel="self")
    fg.link(href=base + page_path, rel="alternate")
    fg.language("en-GB")
    fg.generator("Hustings")
    fg.updated(updated or datetime(2000, 1, 1, tzinfo=timezone.utc))
    for item in items:
        fe = fg.add_entry(order="append")
        link = f"{base}/posts/{item['id']}"
        fe.id(link)  # ours, stable: the original's URL can change
        fe.guid(link, permalink=True)
        fe.title(_text(item["title"], kind) or "Untitled post")
        fe.link(href=item["url"] or link, rel="alternate")
        who = _x(item["author"] or item["blog"])
        if who:
            fe.author({"name": who})
        fe.published(item["published"])
        fe.updated(max(item["updated_at"], item["first_seen"]))
        if item.get("content_html"):
            fe.content(_x(item["content_html"]), type="html")
        if kind == "rss":
            fe.description(_text(item["summary"], kind) or " ")
            # Which blog it came from (Atom says it through the author and link); a channel's
            # name, so HTML like the channel's title.
            fe.source(title=_text(item["blog"], kind), url=item["blog_url"] or link)
        else:
            fe.summary(_x(item["summary"]) or " ")
        for tag in item["tags"][:20]:
            if _x(tag):
                fe.category(term=_x(tag))
    body = fg.atom_str(pretty=False) if kind == "atom" else fg.rss_str(pretty=False)
    return pages.out(body, updated, ATOM if kind == "atom" else RSS)


def _with_content(site: "Site", items: list[dict]) -> list[dict]:
    html = listings.contents(site.engine, [i["id"] for i in items])
    return [dict(i, content_html=html.get(i["id"], "")) for i in items]


def _front(site: "Site", kind: str):
    items, _ = pages.front_page_posts(site, 1)
    return _feed(site, _with_content(site, items), title=f"{site.settings.site_name}: front page",
                 page_path="/", self_path=f"/feed.{kind}", kind=kind,
                 description="The movement's blogs, ranked by readers' recommendations and freshness",
                 updated=listings.latest_change(site.engine))


def _new(site: "Site", kind: str):
    items, _ = listings.newest(site.engine, page=1, per_page=ITEMS)
    return _feed(site, _with_content(site, items), title=f"{site.settings.site_name}: newest posts",
                 page_path="/new", self_path=f"/new.{kind}", kind=kind,
                 description="Every post from the movement's blogs, newest first",
                 updated=listings.latest_change(site.engine))


def _blog(site: "Site", blog_id: int, kind: str):
    b = listings.blog(site.engine, blog_id)
    if b is None:
        raise bottle.HTTPError(404, f"there is no blog number {blog_id}")
    items, _ = listings.newest(site.engine, page=1, per_page=ITEMS, blog_id=blog_id)
    return _feed(site, _with_content(site, items), title=f"{b.name} on {site.settings.site_name}",
                 page_path=f"/blogs/{blog_id}", self_path=f"/blogs/{blog_id}.{kind}", kind=kind,
                 description=f"Posts from {b.name}, as gathered by {site.settings.site_name}",
                 updated=listings.latest_change(site.engine, blog_id))


def front_atom(site, params):
    return _front(site, "atom")


def front_rss(site, params):
    return _front(site, "rss")


def new_atom(site, params):
    return _new(site, "atom")


def new_rss(site, params):
    return _new(site, "rss")


def blog_atom(site, params, blog_id: int):
    return _blog(site, blog_id, "atom")


def blog_rss(site, params, blog_id: int):
    return _blog(site, blog_id, "rss")


def _section(site: "Site", name: str, kind: str):
    sec = sections.section(site.engine, name)
    if sec is None:
        raise bottle.HTTPError(404, f"there is no section called {name!r}")
    items, _ = pages.front_page_posts(site, 1, blog_ids=sec.blog_ids)  # its ranked page 1, as the page shows it
    return _feed(site, _with_content(site, items), title=f"{site.settings.site_name}: {sec.name}",
                 page_path=sec.path, self_path=f"{sec.path}.{kind}", kind=kind,
                 description=f"The {sec.name} section's blogs, ranked by readers' recommendations and freshness",
                 updated=listings.latest_change(site.engine, blog_ids=sec.blog_ids))


def section_atom(site, params, name: str):
    return _section(site, name, "atom")


def section_rss(site, params, name: str):
    return _section(site, name, "rss")


def blogroll(site: "Site", params: dict):
    blogs = [{"url": b.feed_url, "title": _x(b.name), "site_url": b.site_url, "category": _x(b.category)}
             for b in listings.blogs(site.engine)]
    body = write_opml(blogs, title=f"{site.settings.site_name}: the movement's blogs")
    return pages.out(body, listings.latest_change(site.engine), "text/x-opml; charset=utf-8")
