"""`hustings demo`: a populated site with no internet, from sample blogs served on loopback.

The eight sample blogs in ``hustings/demo_blogs/`` were written for the project; their
people and places are fictional. Each post gives its age (``hours_ago``), not a date:
the feed server dates posts back from the moment it started, so the demo never looks
stale. demo_feeds.py reads the blogs and renders RSS 2.0 with content:encoded, Atom, a
summaries-only RSS and a JSON Feed 1.1, plus each blog's home page (with
``<link rel="alternate">``, so discovery works), its post pages and images;
demo_server.py serves them.

``prepare_demo`` adds the feeds and fetches them through the ordinary pipeline. For a
blog it has no posts from yet, it first replays the blog's history: it fetches the feed
as it stood whenever a new post appeared, with the pipeline's clock set to that moment.
The front page ranks by when *we* first saw a post, so without the replay every sample
post would be "first seen" in the same second and the ranking would have nothing to show.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import timedelta
from hashlib import sha256
from typing import Callable
from urllib.parse import urlsplit

from aggregator import db, feed_store, pipeline
from aggregator.settings import Settings
from index import writer

from .demo_feeds import SampleBlog, SamplePost, load_blogs
from .demo_server import HOST, FeedServer

# A worker polling every half hour or so notices a new post some minutes after it appears.
NOTICED_AFTER_MIN = (4, 40)


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
