"""`hustings demo`: the sample blogs, served on loopback, fetched, indexed; run twice, nothing new."""

from __future__ import annotations

import dataclasses
import http.client
import io
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import feedparser
import pytest

from aggregator import db, discover, feed_store, fetch_history, parse, post_store
from aggregator.errors import HustingsError
from aggregator.models import Feed
from hustings import demo, demo_feeds, demo_server
from index import search

BLOGS = demo_feeds.load_blogs()


def test_the_sample_blogs_cover_every_format_and_a_prolific_blog_among_quiet_ones():
    assert len(BLOGS) == 8
    assert {b.format for b in BLOGS} == set(demo_feeds.FEED_FILES)
    counts = sorted(len(b.posts) for b in BLOGS)
    assert counts[-1] == 25 and counts[-2] <= 12 and counts[0] >= 6
    assert all(0 < p.hours_ago < 24 * 40 for b in BLOGS for p in b.posts)


def test_prepare_demo_fetches_indexes_and_is_idempotent(settings):
    lines: list[str] = []
    # As the command gives it: nothing allowed beyond the defaults; the demo admits its own address.
    site = demo.prepare_demo(dataclasses.replace(settings, allow_networks=()), on_progress=lines.append)
    try:
        assert site.settings.allow_networks == ("127.0.0.1/32",)
        assert urlsplit(site.feed_server_url).hostname == "127.0.0.1"
        expected = {b.title: len(b.posts) for b in BLOGS}
        assert (site.feeds, site.posts, site.new_feeds, site.new_posts) == (8, 81, 8, 81) == (
            len(expected), sum(expected.values()), len(expected), sum(expected.values()))
        assert lines and all(line.startswith("demo: ") for line in lines)

        engine = db.make_engine(site.settings)
        try:
            feeds = feed_store.list_feeds(engine)
            assert {f["title"]: f["posts"] for f in feeds} == expected
            for f in feeds:
                assert (f["status"], f["error_count"], f["last_error"]) == ("active", 0, ""), f
                history = fetch_history.fetch_history(engine, f["id"], limit=100)
                assert history and all(h["error"] == "" and h["http_status"] in (200, 304) for h in history)

            posts = post_store.list_posts(engine, limit=1000)
            by_title = {p["title"]: p for p in posts}
            hostile = by_title["Sign the petition: the box is back"]["content_html"]
            assert "<script" not in hostile and "onerror" not in hostile and "document.cookie" not in hostile
            assert f'src="{site.feed_server_url}/static/sign-the-petition.svg"' in hostile
            summaries_only = {p["summary_only"] for p in posts if p["author"] == "Dave Kerrigan"}
            assert summaries_only == {True}
            assert sum(p["summary_only"] for p in posts) == 8

            # History was replayed: first sightings spread over weeks, never before the claimed date.
            seen = sorted(p["first_seen"] for p in posts)
            assert seen[-1] - seen[0] > timedelta(days=20)
            assert all(p["published"] <= p["first_seen"] for p in posts)

            found = search.search(site.settings, engine, "mould")
            assert found.total >= 1
            assert found.results[0].title == "Damp and mould: a guide for renters"
        finally:
            engine.dispose()

        # While this demo serves its blogs, another on the same data directory cannot.
        with pytest.raises(HustingsError, match="in use"):
            demo.prepare_demo(settings, on_progress=lambda line: None)
    finally:
        site.close()

    with demo.prepare_demo(settings, on_progress=lambda line: None) as again:
        assert again.feed_server_url == site.feed_server_url  # same port, so stored URLs still work
        assert (again.feeds, again.posts, again.new_feeds, again.new_posts) == (8, 81, 0, 0)


@pytest.fixture(scope="module")
def feed_server():
    server = demo_server.FeedServer(BLOGS)
    yield server
    server.close()


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    """A plain GET (http.client: urllib would use the environment's proxy)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.request("GET", parts.path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("blog", BLOGS, ids=[b.slug for b in BLOGS])
def test_each_sample_feed_is_valid_dated_from_now_and_discoverable(blog, feed_server, settings):
    status, headers, body = get(feed_server.feed_url(blog))
    assert status == 200 and headers["content-type"].startswith(demo_feeds.FEED_TYPES[blog.format])
    now = datetime.now(timezone.utc)
    if blog.format == "json":
        assert json.loads(body)["version"] == "https://jsonfeed.org/version/1.1"
        parsed = parse.parse_feed(body, Feed(id=1, url=feed_server.feed_url(blog)), headers=headers)
        assert (parsed.version, parsed.problem, len(parsed.posts)) == ("json1", "", len(blog.posts))
        newest = max(p.published for p in parsed.posts)
    else:
        result = feedparser.parse(io.BytesIO(body), response_headers=headers)
        assert result.bozo == 0, result.get("bozo_exception")
        assert len(result.entries) == len(blog.posts)
        assert all(e.get("author") and e.get("tags") and e.get("link") for e in result.entries)
        newest = max(datetime(*e.published_parsed[:6], tzinfo=timezone.utc) for e in result.entries)
    assert now - timedelta(days=2) < newest < now  # dated back from when the server started

    found = discover.discover_feed(feed_server.home_url(blog), settings)
    assert found.url == feed_server.feed_url(blog) and found.entries == len(blog.posts)


def test_feed_server_answers_conditional_gets_pages_and_images(feed_server):
    blog = BLOGS[0]
    _, headers, _ = get(feed_server.feed_url(blog))
    parts = urlsplit(feed_server.feed_url(blog))
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.request("GET", parts.path, headers={"If-None-Match": headers["etag"]})
        assert conn.getresponse().status == 304
    finally:
        conn.close()
    status, headers, page = get(f"{feed_server.home_url(blog)}posts/{blog.posts[0].slug}/")
    assert status == 200 and blog.posts[0].title.encode() in page
    assert "script-src" not in headers["content-security-policy"]  # default-src 'none': no script runs
    status, headers, _ = get(f"{feed_server.url}/static/fernleigh-march.svg")
    assert status == 200 and headers["content-type"] == "image/svg+xml"
    assert get(f"{feed_server.url}/blogs/no-such-blog/")[0] == 404
