"""`hustings demo`: a populated site with no internet, from sample blogs served on loopback.

The eight sample blogs in ``hustings/demo_blogs/`` were written for the project; their
people and places are fictional. Each post gives its age (``hours_ago``), not a date:
the feed server dates posts back from the moment it started, so the demo never looks
stale. It renders RSS 2.0 with content:encoded, Atom, a summaries-only RSS and a JSON
Feed 1.1, plus each blog's home page (with ``<link rel="alternate">``, so discovery
works), its post pages and images.

``prepare_demo`` adds the feeds and fetches them through the ordinary pipeline. For a
blog it has no posts from yet, it first replays the blog's history: it fetches the feed
as it stood whenever a new post appeared, with the pipeline's clock set to that moment.
The front page ranks by when *we* first saw a post, so without the replay every sample
post would be "first seen" in the same second and the ranking would have nothing to show.
"""

from __future__ import annotations

import email.utils
import errno
import html
import http.server
import ipaddress
import json
import re
import socketserver
import threading
import tomllib
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from hashlib import sha256
from importlib import resources
from typing import Callable
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

from aggregator import db, feed_store, pipeline
from aggregator.errors import HustingsError
from aggregator.settings import Settings
from index import writer

HOST = "127.0.0.1"  # the feed server binds loopback only, and nothing else is ever fetched
FEED_FILES = {"rss": "feed.xml", "rss-summary": "rss.xml", "atom": "atom.xml", "json": "feed.json"}
FEED_TYPES = {
    "rss": "application/rss+xml", "rss-summary": "application/rss+xml",
    "atom": "application/atom+xml", "json": "application/feed+json",
}
# A worker polling every half hour or so notices a new post some minutes after it appears.
NOTICED_AFTER_MIN = (4, 40)
# The sample blogs' pages run no script, whatever a post carries (one carries some on purpose).
PAGE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"


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


def _images() -> dict[str, bytes]:
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


def _page(title: str, body: str, head: str = "") -> bytes:
    return (f'<!DOCTYPE html>\n<html lang="en-GB"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title>{head}</head>\n<body>{body}</body></html>\n").encode("utf-8")


def render_home(blog: SampleBlog, anchor: datetime) -> bytes:
    link = (f'<link rel="alternate" type="{FEED_TYPES[blog.format]}" title="{html.escape(blog.title)}" '
            f'href="{FEED_FILES[blog.format]}">')
    items = "".join(f'<li><a href="posts/{p.slug}/">{html.escape(p.title)}</a> '
                    f"({(anchor - timedelta(hours=p.hours_ago)):%d %b %Y})</li>" for p in blog.posts)
    return _page(blog.title, f"<h1>{html.escape(blog.title)}</h1><p>{html.escape(blog.description)}</p>"
                             f"<ul>{items}</ul>", head=link)


def render_post(blog: SampleBlog, post: SamplePost, anchor: datetime) -> bytes:
    when = anchor - timedelta(hours=post.hours_ago)
    return _page(f"{post.title} | {blog.title}",
                 f'<p><a href="../../">{html.escape(blog.title)}</a></p><article><h1>{html.escape(post.title)}</h1>'
                 f"<p>By {html.escape(post.author)}, {when:%d %b %Y %H:%M} UTC</p>{post.html}</article>")


# --- the feed server --------------------------------------------------------------


class FeedServer:
    """The sample blogs over HTTP on 127.0.0.1, from a daemon thread."""

    def __init__(self, blogs: tuple[SampleBlog, ...], port: int = 0):
        self.blogs = {b.slug: b for b in blogs}
        self.anchor = datetime.now(timezone.utc).replace(microsecond=0)
        self.as_of: dict[str, datetime] = {}  # slug -> serve its feed as it stood then (replay)
        self.images = _images()
        handler = type("Handler", (_Handler,), {"site": self})
        try:
            self.httpd = _Server((HOST, port), handler)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise HustingsError(
                f"port {port} on {HOST}, where this demo's sample blogs were served before, is in use "
                "(another `hustings demo` on this data directory?); stop it, or use a new data directory"
            ) from None
        self.port = self.httpd.server_address[1]
        self.url = f"http://{HOST}:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="demo-feeds", daemon=True)
        self._thread.start()

    def feed_url(self, blog: SampleBlog) -> str:
        return self.url + blog.feed_path

    def home_url(self, blog: SampleBlog) -> str:
        return f"{self.url}/blogs/{blog.slug}/"

    def published(self, post: SamplePost) -> datetime:
        return self.anchor - timedelta(hours=post.hours_ago)

    def respond(self, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET of path."""
        parts = path.split("?", 1)[0].strip("/").split("/")
        blog = self.blogs.get(parts[1]) if len(parts) > 1 and parts[0] == "blogs" else None
        if parts == [""]:
            items = "".join(f'<li><a href="/blogs/{b.slug}/">{html.escape(b.title)}</a></li>'
                            for b in self.blogs.values())
            return 200, "text/html; charset=utf-8", _page("Sample blogs", f"<h1>Sample blogs</h1><ul>{items}</ul>")
        if len(parts) == 2 and parts[0] == "static" and parts[1] in self.images:
            return 200, "image/svg+xml", self.images[parts[1]]
        if blog is not None and len(parts) == 2:
            return 200, "text/html; charset=utf-8", render_home(blog, self.anchor)
        if blog is not None and len(parts) == 3 and parts[2] == FEED_FILES[blog.format]:
            body = render_feed(blog, self.url, self.anchor, self.as_of.get(blog.slug))
            return 200, FEED_TYPES[blog.format] + "; charset=utf-8", body
        if blog is not None and len(parts) == 4 and parts[2] == "posts":
            for post in blog.posts:
                if post.slug == parts[3]:
                    return 200, "text/html; charset=utf-8", render_post(blog, post, self.anchor)
        return 404, "text/plain; charset=utf-8", b"not found\n"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS query that may
        # leave the machine. The demo never asks anything of the network: skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class _Handler(http.server.BaseHTTPRequestHandler):
    site: FeedServer
    server_version = "HustingsDemoBlogs/1"

    def log_message(self, *args) -> None:  # the demo's console is for progress lines
        pass

    def do_GET(self) -> None:
        status, kind, body = self.site.respond(self.path)
        etag = '"' + sha256(body).hexdigest()[:20] + '"'
        if status == 200 and self.headers.get("If-None-Match") == etag:
            status, body = 304, b""
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("Content-Security-Policy", PAGE_CSP)
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(body)
            except ConnectionError:  # a browser that moved on; nothing to report
                pass

    do_HEAD = do_GET


# --- preparing the demo -----------------------------------------------------------


@dataclass
class DemoSite:
    """A prepared demo: the settings to serve it with, and the feed server to stop afterwards."""

    settings: Settings  # serve with these: they admit the feed server's loopback address
    feed_server_url: str
    feeds: int
    posts: int
    new_feeds: int = 0
    new_posts: int = 0
    server: FeedServer | None = field(default=None, repr=False)

    def close(self) -> None:
        """Stop the feed server."""
        if self.server is not None:
            self.server.close()

    def __enter__(self) -> DemoSite:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def admit_loopback(settings: Settings) -> Settings:
    """settings, with the feed server's address in allow_networks if it was not already."""
    ip = ipaddress.ip_address(HOST)
    if any(ip.version == net.version and ip in net for net in settings.allowed_networks):
        return settings
    return replace(settings, allow_networks=settings.allow_networks + (f"{HOST}/32",))


def prepare_demo(settings: Settings, *, on_progress: Callable[[str], None] = print) -> DemoSite:
    """Serve the sample blogs on loopback, then add, fetch and index them in settings.data_dir.

    Safe to run again on the same data directory: known feeds are not added twice, and the
    blogs are served on the port their feeds were stored with. Call close() on the result
    to stop the feed server.

    Raises:
        HustingsError: the port the blogs were served on before is taken; the index is busy.
    """
    blogs = load_blogs()
    settings = admit_loopback(settings)
    # Eight small feeds: starting parse processes would cost more than they save.
    fetch_settings = replace(settings, parse_processes=1)
    engine = db.make_engine(settings)
    try:
        db.migrate(engine)
        known = _demo_feeds(engine, blogs)
        ports = Counter(urlsplit(row["url"]).port for row in known.values())
        server = FeedServer(blogs, port=ports.most_common(1)[0][0] if ports else 0)
        try:
            return _populate(engine, settings, fetch_settings, blogs, known, server, on_progress)
        except BaseException:
            server.close()
            raise
    finally:
        engine.dispose()


def _demo_feeds(engine, blogs: tuple[SampleBlog, ...]) -> dict[str, dict]:
    """Feed rows (with post counts) of sample blogs already in the database, by blog slug."""
    slugs = {b.feed_path: b.slug for b in blogs}
    found: dict[str, dict] = {}
    for row in feed_store.list_feeds(engine):
        parts = urlsplit(row["url"])
        if parts.hostname == HOST and parts.path in slugs:
            found.setdefault(slugs[parts.path], row)
    return found


def _populate(engine, settings, fetch_settings, blogs, known, server: FeedServer, on_progress) -> DemoSite:
    on_progress(f"demo: serving {len(blogs)} sample blogs at {server.url}/")
    feeds = {}
    for blog in blogs:
        if blog.slug in known:
            feeds[blog.slug] = feed_store.get_feed(engine, known[blog.slug]["id"])
        else:
            feeds[blog.slug], _ = feed_store.add_feed(engine, server.feed_url(blog), title=blog.title,
                                                 site_url=server.home_url(blog), category=blog.category)
    added = len(blogs) - len(known)
    on_progress(f"demo: {added} feeds added, {len(known)} already known")

    replayed = 0
    for blog in blogs:
        if not known.get(blog.slug, {}).get("posts"):
            replayed += _replay(engine, feeds[blog.slug], blog, server, fetch_settings)
    if replayed:
        oldest = max(p.hours_ago for b in blogs for p in b.posts)
        on_progress(f"demo: {replayed} posts fetched as they appeared over the last {oldest / 24:.0f} days")

    current = [feed_store.get_feed(engine, f.id) for f in feeds.values()]
    outcomes = pipeline.refresh_feeds(engine, current, fetch_settings)
    failed = [o for o in outcomes if o.result == "failed"]
    fresh = sum(o.new for o in outcomes)
    on_progress(f"demo: fetched {len(outcomes)} feeds, {len(failed)} failed, {fresh} new posts")
    for o in failed:
        on_progress(f"demo:   failed: {o.url}: {o.error}")

    report = writer.sync(engine, settings)
    on_progress(f"demo: search index {'built' if report.rebuilt else 'synced'}: {report.indexed} posts indexed")
    rows = _demo_feeds(engine, blogs)
    return DemoSite(settings=settings, feed_server_url=server.url, feeds=len(rows),
                    posts=sum(r["posts"] for r in rows.values()), new_feeds=added,
                    new_posts=replayed + fresh, server=server)


def _noticed_after(post: SamplePost) -> timedelta:
    low, high = NOTICED_AFTER_MIN
    return timedelta(minutes=low + int(sha256(post.slug.encode()).hexdigest()[:6], 16) % (high - low))


def _replay(engine, feed, blog: SampleBlog, server: FeedServer, settings: Settings) -> int:
    """Fetch blog's feed as it stood whenever it gained a post, the pipeline's clock set then.

    Returns the posts stored. Moments still to come are left to the live fetch.
    """
    now = db.utcnow()
    moments = sorted({server.published(p) + _noticed_after(p) for p in blog.posts})
    new = 0
    try:
        for moment in (m for m in moments if m < now):
            server.as_of[blog.slug] = moment
            outcome = pipeline.refresh_feed(engine, feed_store.get_feed(engine, feed.id), settings, now=moment)
            if outcome.result == "failed":
                break  # the live fetch tries again and reports it
            new += outcome.new
    finally:
        server.as_of.pop(blog.slug, None)
    return new
