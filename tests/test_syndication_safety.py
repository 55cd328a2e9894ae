"""Hostile plain text through every feed we serve, read back by a feed reader (issue 16, item 3).

A blog's name, a post's title and its summary are plain text that may hold markup
(`<script>alert(1)</script>`, `<img src=x onerror=alert(1)>`). A reader of our feeds must
show that text literally, never run it: RSS readers take a description (and often a
title) as HTML, so there it must be HTML-escaped; Atom says `type="text"`. Each feed is
parsed with feedparser, and every title, subtitle, summary and source it yields is read
as HTML when it is HTML (always, for RSS) and searched for elements.

WebTest on the real app over a real migrated database (SQLite, and PostgreSQL too).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

import feedparser
import pytest
import webtest

from aggregator import db, feed_store, post_store
from aggregator.models import Post
from aggregator.sanitize import sanitize_post
from aggregator.settings import Settings
from web.app import make_app

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
HOSTILE = f"{SCRIPT} and {IMG} & more"


class Markup(HTMLParser):
    """What an HTML reader would make of a string: its elements and its shown text."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[str] = []
        self.shown: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.elements.append(tag)

    def handle_data(self, data):
        self.shown.append(data)


@pytest.fixture(scope="module")
def site(tmp_path_factory, database):
    settings = Settings(data_dir=tmp_path_factory.mktemp("feeds") / "data", allow_networks=("127.0.0.1/32",),
                        site_url="https://hustings.example", page_cache_s=0)
    engine = db.make_engine(settings)
    db.migrate(engine)
    feed, _ = feed_store.add_feed(engine, "http://127.0.0.1:9/feed.xml", title=f"Branch {HOSTILE}",
                                  site_url="http://127.0.0.1:9/")
    now = datetime.now(timezone.utc)
    # The post's text arrives as plain text (an RSS summary, a JSON Feed's content_text): it
    # is escaped into the stored HTML, and its summary is the hostile text itself.
    post = sanitize_post(Post(feed.id, "g1", "http://127.0.0.1:9/p/1", f"Title {HOSTILE}", f"Summary {HOSTILE}",
                              published=now - timedelta(hours=1), content_type="text", identity="g:1"), settings)
    assert SCRIPT in post.summary and IMG in post.summary  # plain text, as a listing shows it
    post_store.save_posts(engine, feed, [post])
    app = webtest.TestApp(make_app(settings))
    yield app, feed.id
    engine.dispose()


FEEDS = ["/feed.rss", "/new.rss", "/blogs/{blog}.rss", "/feed.atom", "/new.atom", "/blogs/{blog}.atom"]


def texts(parsed, rss: bool) -> list[tuple[str, str, bool]]:
    """(where, value, read as HTML) for every text a reader shows from the feed."""
    found, sources = [], []
    details = [("feed title", parsed.feed.get("title_detail")), ("feed subtitle", parsed.feed.get("subtitle_detail"))]
    for i, entry in enumerate(parsed.entries):
        details += [(f"entry {i} title", entry.get("title_detail")), (f"entry {i} summary", entry.get("summary_detail"))]
        if entry.get("source", {}).get("title"):
            # RSS's <source> names the channel the item came from: HTML, like a channel title.
            sources.append((f"entry {i} source", entry.source.title, rss))
    for where, detail in details:
        assert detail is not None, f"{where} is missing"
        # RSS titles and descriptions are HTML to most readers, whatever feedparser guesses.
        found.append((where, detail.value, rss or detail.type in ("text/html", "application/xhtml+xml")))
    return found + sources


@pytest.mark.parametrize("path", FEEDS)
def test_hostile_plain_text_reaches_readers_as_text(site, path):
    app, blog = site
    res = app.get(path.format(blog=blog))
    parsed = feedparser.parse(res.body)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert len(parsed.entries) == 1
    rss = path.endswith(".rss")
    shown = {}
    for where, value, as_html in texts(parsed, rss):
        if as_html:
            markup = Markup(value)
            assert markup.elements == [], f"{path}: {where} holds live markup {markup.elements}: {value!r}"
            shown[where] = "".join(markup.shown)
        else:
            shown[where] = value
    entry_title, entry_summary = shown["entry 0 title"], shown["entry 0 summary"]
    # The text is still all there, shown literally.
    for text in (entry_title, entry_summary):
        assert SCRIPT in text and IMG in text and "& more" in text, (path, text)
    assert entry_title.startswith("Title ") and entry_summary.startswith("Summary ")
    if "/blogs/" in path:
        assert f"Branch {HOSTILE} on Hustings" == shown["feed title"]
        assert f"Posts from Branch {HOSTILE}" in shown["feed subtitle"]
    if rss:
        assert shown["entry 0 source"] == f"Branch {HOSTILE}"


def test_rss_description_is_escaped_html_not_markup(site):
    """The decoded <description> of an item is HTML whose text is the summary: `<script>` is
    `&lt;script&gt;` there."""
    import xml.etree.ElementTree as ET

    app, blog = site
    root = ET.fromstring(app.get(f"/blogs/{blog}.rss").body)
    description = root.find("channel/item/description").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in description and "<script>" not in description
    assert "&lt;img src=x onerror=alert(1)&gt;" in description and "&amp; more" in description
    assert "&lt;script&gt;" in root.find("channel/item/title").text
    assert "&lt;script&gt;" in root.find("channel/description").text
