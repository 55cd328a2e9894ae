"""Sections (issue 14, item 5): the blogs' OPML categories as /sections/NAME, each with its
own ranked list and Atom and RSS feeds, in every page's navigation; blogs carry their section."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import feedparser
import pytest
import webtest

from aggregator import db, feed_store, post_store, sections
from aggregator.models import Post
from aggregator.sanitize import sanitize_post
from aggregator.settings import Settings
from web.app import make_app

# slug -> (category, blogs in it, posts per blog)
BLOGS = [
    ("news1", "News and magazines", 12), ("news2", "News and magazines", 12), ("news3", "News and magazines", 12),
    ("north", "Local parties / North", 3), ("south", "Local parties / South", 3),
    ("mp", "MPs and councillors", 2), ("loose", "", 4),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory, database):
    settings = Settings(data_dir=tmp_path_factory.mktemp("sections") / "data", allow_networks=("127.0.0.1/32",))
    engine = db.make_engine(settings)
    db.migrate(engine)
    t0 = datetime.now(timezone.utc)
    blog_ids = {}
    for b, (key, category, n) in enumerate(BLOGS):
        feed, _ = feed_store.add_feed(engine, f"http://127.0.0.1/{key}/feed.xml", title=f"Blog {key}",
                                      site_url=f"http://127.0.0.1/{key}/", category=category)
        blog_ids[key] = feed.id
        for j in range(n):
            url = f"http://127.0.0.1/{key}/{j}"
            seen = t0 - timedelta(hours=j * 2 + b * 0.1)
            raw = Post(feed.id, f"{key}-{j}", url, f"{key} post {j}", "<p>Words.</p>", published=seen,
                       identity=f"g:{key}-{j}", base_url=url)
            post_store.save_posts(engine, feed, [sanitize_post(raw, settings)], now=seen)
    pending, _ = feed_store.add_feed(engine, "http://127.0.0.1/pending/feed.xml", title="Pending",
                                     category="Waiting room", status="pending")
    app = make_app(settings)
    yield settings, engine, webtest.TestApp(app), blog_ids
    app.config["hustings.site"].searcher.close()
    engine.dispose()


def blogs_of(site, body: str) -> list[int]:
    """The blog of each post in the page's ranked list, in order."""
    settings, engine, web, blog_ids = site
    start = body.index('aria-labelledby="ranked-h"')
    part = body[start:body.index("</section>", start)]
    return [int(b) for b in re.findall(r'<p class="meta"><a href="/blogs/(\d+)">', part)]


def test_sections_come_from_the_top_folder_of_each_category():
    assert sections.section_name("Local parties / North") == "Local parties"
    assert sections.section_name("") == ""
    assert sections.slug("News and magazines") == "news-and-magazines"
    assert sections.slug("MPs & councillors!") == "mps-councillors"


def test_the_list_of_sections_leaves_out_unshown_blogs(site):
    settings, engine, web, blog_ids = site
    found = {s.slug: s for s in sections.sections(engine)}
    assert list(found) == ["local-parties", "mps-and-councillors", "news-and-magazines"]
    assert set(found["local-parties"].blog_ids) == {blog_ids["north"], blog_ids["south"]}
    assert "waiting-room" not in found


def test_a_section_page_ranks_its_own_blogs_only(site):
    settings, engine, web, blog_ids = site
    news = {blog_ids[k] for k in ("news1", "news2", "news3")}
    body = web.get("/sections/news-and-magazines").text
    blogs = blogs_of(site, body)
    assert len(blogs) == 30 and set(blogs) == news, "a full page, from the section's blogs only"
    assert len(set(blogs[:3])) == 3, "one per blog before any repeats"
    assert "<h1>News and magazines</h1>" in body
    page2 = web.get("/sections/news-and-magazines?page=2").text
    assert len(blogs_of(site, page2)) == 6
    local = blogs_of(site, web.get("/sections/local-parties").text)
    assert sorted(local) == sorted([blog_ids["north"]] * 3 + [blog_ids["south"]] * 3)
    web.get("/sections/news-and-magazines?page=3", status=404)
    web.get("/sections/no-such-section", status=404)
    web.get("/sections/waiting-room", status=404)  # its only blog is not shown


@pytest.mark.parametrize("kind", ["atom", "rss"])
def test_each_section_has_its_feeds(site, kind):
    settings, engine, web, blog_ids = site
    res = web.get(f"/sections/local-parties.{kind}")
    assert res.content_type == f"application/{kind}+xml"
    parsed = feedparser.parse(res.body)
    assert parsed.bozo == 0
    assert sorted(e.title for e in parsed.entries) == sorted(f"{k} post {j}" for k in ("north", "south")
                                                             for j in range(3))
    assert "Local parties" in parsed.feed.title
    web.get(f"/sections/nothing-here.{kind}", status=404)
    page = web.get("/sections/local-parties").text
    assert f'href="/sections/local-parties.{kind}"' in page


@pytest.mark.parametrize("path", ["/", "/new", "/about", "/blogs", "/polls", "/sections/local-parties"])
def test_every_page_shows_the_sections(site, path):
    settings, engine, web, blog_ids = site
    body = web.get(path).text
    nav = body[body.index('aria-label="Sections"'):]
    nav = nav[:nav.index("</nav>")]
    assert re.findall(r'href="(/sections/[a-z-]+)"', nav) == [
        "/sections/local-parties", "/sections/mps-and-councillors", "/sections/news-and-magazines"]
    current = re.findall(r'href="(/sections/[a-z-]+)" aria-current="page"', nav)
    assert current == (["/sections/local-parties"] if path.startswith("/sections/") else [])


def test_blogs_carry_their_section(site):
    settings, engine, web, blog_ids = site
    assert 'Section: <a href="/sections/local-parties">Local parties / North</a>' in \
        web.get(f"/blogs/{blog_ids['north']}").text
    assert "Section:" not in web.get(f"/blogs/{blog_ids['loose']}").text
    directory = web.get("/blogs").text
    assert '<a href="/sections/news-and-magazines">News and magazines</a></h2>' in directory
    api = {b["id"]: b for b in web.get("/api/blogs").json["blogs"]}
    assert api[blog_ids["south"]]["section"] == "local-parties" and api[blog_ids["loose"]]["section"] is None
