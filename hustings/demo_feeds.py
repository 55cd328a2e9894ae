"""The demo's sample blogs: read from ``hustings/demo_blogs/*.toml`` and rendered as each
blog's feed (RSS 2.0 with content:encoded, a summaries-only RSS, Atom or JSON Feed 1.1),
home page and post pages.

Each post gives its age (``hours_ago``), not a date: pages and feeds are dated back from
an anchor (the moment the feed server started), so the demo never looks stale.
"""

from __future__ import annotations

import email.utils
import html
import json
import re
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources
from xml.sax.saxutils import escape, quoteattr

FEED_FILES = {"rss": "feed.xml", "rss-summary": "rss.xml", "atom": "atom.xml", "json": "feed.json"}
FEED_TYPES = {
    "rss": "application/rss+xml", "rss-summary": "application/rss+xml",
    "atom": "application/atom+xml", "json": "application/feed+json",
}


# --- the sample blogs -------------------------------------------------------------


@dataclass(frozen=True)
class SamplePost:
    slug: str
    title: str
    author: str
    hours_ago: float
    tags: tuple[str, ...]
    html: str


@dataclass(frozen=True)
class SampleBlog:
    slug: str
    title: str
    description: str
    format: str  # a key of FEED_FILES
    category: str
    author: str
    posts: tuple[SamplePost, ...]  # newest first

    @property
    def feed_path(self) -> str:
        return f"/blogs/{self.slug}/{FEED_FILES[self.format]}"


@lru_cache(maxsize=1)
def load_blogs() -> tuple[SampleBlog, ...]:
    """Every sample blog in hustings/demo_blogs/*.toml, in slug order."""
    blogs = []
    for item in sorted(resources.files("hustings").joinpath("demo_blogs").iterdir(), key=lambda p: p.name):
        if not item.name.endswith(".toml"):
            continue
        data = tomllib.loads(item.read_text(encoding="utf-8"))
        slug = item.name[: -len(".toml")]
        posts = tuple(sorted((
            SamplePost(p["slug"], p["title"], p.get("author", data["author"]), float(p["hours_ago"]),
                       tuple(p.get("tags", ())), p["html"].strip())
            for p in data["posts"]), key=lambda p: p.hours_ago))
        if data["format"] not in FEED_FILES or any(p.hours_ago <= 0 or "]]>" in p.html for p in posts):
            raise ValueError(f"{item.name}: an unknown format, a post not in the past, or ]]> in a post")
        blogs.append(SampleBlog(slug, data["title"], data["description"], data["format"], data["category"],
                                data["author"], posts))
    return tuple(blogs)


def images() -> dict[str, bytes]:
    """The sample blogs' images (SVG), by file name."""
    folder = resources.files("hustings").joinpath("demo_blogs")
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name.endswith(".svg")}


# --- rendering --------------------------------------------------------------------


def _excerpt(post: SamplePost) -> str:
    """The first paragraph as HTML: what a summaries-only feed carries."""
    match = re.search(r"<p>.*?</p>", post.html, re.S)
    return match.group(0) if match else post.html


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def _rfc3339(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _post_url(base: str, blog: SampleBlog, post: SamplePost) -> str:
    return f"{base}/blogs/{blog.slug}/posts/{post.slug}/"


def render_feed(blog: SampleBlog, base: str, anchor: datetime, as_of: datetime | None = None) -> bytes:
    """The blog's feed as it stood at as_of (default: with every post), dated back from anchor."""
    dated = [(p, anchor - timedelta(hours=p.hours_ago)) for p in blog.posts]
    dated = [(p, when) for p, when in dated if as_of is None or when <= as_of]
    # The newest post's date, not the clock: the same posts give the same bytes, so ETags hold.
    newest = dated[0][1] if dated else anchor - timedelta(days=60)
    render = {"json": _json_feed, "atom": _atom_feed}.get(blog.format, _rss_feed)
    return render(blog, base, dated, newest).encode("utf-8")


def _json_feed(blog: SampleBlog, base: str, dated: list, newest: datetime) -> str:
    return json.dumps({
        "version": "https://jsonfeed.org/version/1.1", "title": blog.title,
        "home_page_url": f"{base}/blogs/{blog.slug}/", "feed_url": base + blog.feed_path,
        "description": blog.description, "language": "en-GB", "authors": [{"name": blog.author}],
        "items": [{
            "id": _post_url(base, blog, p), "url": _post_url(base, blog, p), "title": p.title,
            "content_html": p.html, "summary": _text(_excerpt(p)), "date_published": _rfc3339(when),
            "authors": [{"name": p.author}], "tags": list(p.tags),
        } for p, when in dated],
    }, ensure_ascii=False, indent=1)


def _atom_feed(blog: SampleBlog, base: str, dated: list, newest: datetime) -> str:
    entries = "".join(
        f"<entry><title>{escape(p.title)}</title>"
        f'<link rel="alternate" type="text/html" href={quoteattr(_post_url(base, blog, p))}/>'
        f"<id>tag:hustings.invalid,2024:{blog.slug}/{p.slug}</id>"
        f"<published>{_rfc3339(when)}</published><updated>{_rfc3339(when)}</updated>"
        f"<author><name>{escape(p.author)}</name></author>"
        + "".join(f"<category term={quoteattr(t)}/>" for t in p.tags)
        + f'<content type="html">{escape(p.html)}</content></entry>\n'
        for p, when in dated
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en-GB">\n'
        f"<title>{escape(blog.title)}</title><subtitle>{escape(blog.description)}</subtitle>"
        f'<link rel="alternate" type="text/html" href={quoteattr(f"{base}/blogs/{blog.slug}/")}/>'
        f'<link rel="self" type="application/atom+xml" href={quoteattr(base + blog.feed_path)}/>'
        f"<id>tag:hustings.invalid,2024:{blog.slug}</id><updated>{_rfc3339(newest)}</updated>"
        f"<author><name>{escape(blog.author)}</name></author>\n{entries}</feed>\n"
    )


def _rss_feed(blog: SampleBlog, base: str, dated: list, newest: datetime) -> str:
    items = []
    for p, when in dated:
        url = escape(_post_url(base, blog, p))
        if blog.format == "rss-summary":
            body = f"<description>{escape(_excerpt(p))}</description>"
        else:  # WordPress-style: a plain excerpt, and the whole post in content:encoded
            body = (f"<description>{escape(_text(_excerpt(p))[:240])} […]</description>"
                    f"<content:encoded><![CDATA[{p.html}]]></content:encoded>")
        items.append(
            f'<item><title>{escape(p.title)}</title><link>{url}</link><guid isPermaLink="true">{url}</guid>'
            f"<pubDate>{email.utils.format_datetime(when, usegmt=True)}</pubDate>"
            f"<dc:creator>{escape(p.author)}</dc:creator>"
            + "".join(f"<category>{escape(t)}</category>" for t in p.tags) + body + "</item>\n"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:atom="http://www.w3.org/2005/Atom">\n<channel>'
        f"<title>{escape(blog.title)}</title><link>{escape(f'{base}/blogs/{blog.slug}/')}</link>"
        f"<description>{escape(blog.description)}</description><language>en-gb</language>"
        f'<atom:link rel="self" type="application/rss+xml" href={quoteattr(base + blog.feed_path)}/>'
        f"<lastBuildDate>{email.utils.format_datetime(newest, usegmt=True)}</lastBuildDate>\n"
        + "".join(items) + "</channel></rss>\n"
    )


def page(title: str, body: str, head: str = "") -> bytes:
    """A small HTML page: what the sample blogs' pages are made of."""
    return (f'<!DOCTYPE html>\n<html lang="en-GB"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title>{head}</head>\n<body>{body}</body></html>\n").encode("utf-8")


def render_home(blog: SampleBlog, anchor: datetime) -> bytes:
    link = (f'<link rel="alternate" type="{FEED_TYPES[blog.format]}" title="{html.escape(blog.title)}" '
            f'href="{FEED_FILES[blog.format]}">')
    items = "".join(f'<li><a href="posts/{p.slug}/">{html.escape(p.title)}</a> '
                    f"({(anchor - timedelta(hours=p.hours_ago)):%d %b %Y})</li>" for p in blog.posts)
    return page(blog.title, f"<h1>{html.escape(blog.title)}</h1><p>{html.escape(blog.description)}</p>"
                             f"<ul>{items}</ul>", head=link)


def render_post(blog: SampleBlog, post: SamplePost, anchor: datetime) -> bytes:
    when = anchor - timedelta(hours=post.hours_ago)
    return page(f"{post.title} | {blog.title}",
                 f'<p><a href="../../">{html.escape(blog.title)}</a></p><article><h1>{html.escape(post.title)}</h1>'
                 f"<p>By {html.escape(post.author)}, {when:%d %b %Y %H:%M} UTC</p>{post.html}</article>")
