"""The post page (issue 14, item 8): "Why is this here?" folds into a <details>; the full text
taken from a blog's page never repeats the post's title or byline (in the text, the summary
or the listing); the summary-only note is not shown when the full text is there."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
import webtest
from scrapy.http import HtmlResponse

from aggregator import db, feed_store, fulltext_store, post_store
from aggregator.article_head import is_byline, strip_repeated_head, strip_repeated_head_text
from aggregator.models import Post
from aggregator.sanitize import sanitize_post
from aggregator.settings import Settings
from spiders.fulltext import FulltextSpider
from web.app import make_app

TITLE = "Pay offer: why I’m voting no"
AUTHOR = "Dave Kerrigan"
# The blog's page, as the demo's sample blogs (and many real ones) write it.
PAGE = (f'<!DOCTYPE html><html lang="en-GB"><head><title>{TITLE} | Shop Floor Notes</title></head><body>'
        f'<p><a href="../../">Shop Floor Notes</a></p><article><h1>{TITLE}</h1>'
        f"<p>By {AUTHOR}, 03 Dec 2026 17:55 UTC</p>"
        "<p>The company’s final offer is 3.1% this year and a review “in due course”. After three years in "
        "which our pay has fallen behind prices by nearly twelve per cent, I’m voting no.</p>"
        "<p>Nobody wants a dispute. Drivers lose money on strike days and passengers lose their buses. But "
        "the company made £9 million in profit last year.</p>"
        "<p>The ballot closes a week on Friday. Whatever you decide, vote.</p></article></body></html>")


# --- the rules, on their own ------------------------------------------------------------------


@pytest.mark.parametrize("line, byline", [
    ("By Dave Kerrigan", True), ("By Dave Kerrigan, 03 Dec 2026 17:55 UTC", True),
    ("Posted on 3 May 2026 by Jo", True), ("Dave Kerrigan | 12 March 2026", True), ("2026-03-12", True),
    ("By the time we arrived, the hall was already full to the doors.", False),
    ("The company’s final offer is 3.1% this year.", False), ("", False),
])
def test_what_is_a_byline(line, byline):
    assert is_byline(line, AUTHOR) is byline


@pytest.mark.parametrize("html, expected", [
    (f'<div><article><h1>{TITLE}</h1><p>By {AUTHOR}, 03 Dec 2026</p><p>Text.</p></article></div>',
     "<div><article><p>Text.</p></article></div>"),
    (f"<h2 class='entry-title'>{TITLE.upper()}</h2><p>Text.</p>", "<p>Text.</p>"),  # case and quotes folded
    (f'<p>By {AUTHOR}</p><p>Text.</p>', "<p>Text.</p>"),  # a byline at the very top
    ("<h2>What people raised</h2><p>By the time we arrived, the hall was full to the doors.</p>",
     "<h2>What people raised</h2><p>By the time we arrived, the hall was full to the doors.</p>"),
    (f"<p>Text.</p><h1>{TITLE}</h1>", f"<p>Text.</p><h1>{TITLE}</h1>"),  # only the top is ever touched
])
def test_the_title_and_byline_come_off_the_top_and_nothing_else(html, expected):
    assert strip_repeated_head(html, TITLE, AUTHOR) == expected


def test_a_summary_made_before_loses_them_too():
    summary = f"{TITLE}. By {AUTHOR}, 03 Dec 2026 17:55 UTC The company’s final offer is 3.1% this year"
    assert strip_repeated_head_text(summary, TITLE, AUTHOR) == "The company’s final offer is 3.1% this year"
    plain = "By the time we arrived, the hall was full."
    assert strip_repeated_head_text(plain, TITLE, AUTHOR) == plain


def test_the_full_text_spider_takes_the_article_without_its_headline_and_byline():
    from aggregator.models import Feed

    feed = Feed(id=1, url="http://127.0.0.1/shop/feed.xml", site_url="http://127.0.0.1/shop/")
    post = {"id": 9, "guid": "g", "url": "http://127.0.0.1/shop/posts/pay/", "title": TITLE, "author": AUTHOR,
            "published": datetime(2026, 12, 3, tzinfo=timezone.utc), "summary": "The company’s final offer"}
    spider = FulltextSpider(jobs=[(feed, [post])])
    response = HtmlResponse(url=post["url"], body=PAGE.encode(), encoding="utf-8")
    got = spider.parse(response, feed=feed, post=post)
    assert "The company’s final offer" in got.content_html
    assert TITLE not in got.content_html and "By Dave Kerrigan" not in got.content_html


# --- the page -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory, database):
    settings = Settings(data_dir=tmp_path_factory.mktemp("post") / "data", allow_networks=("127.0.0.1/32",))
    engine = db.make_engine(settings)
    db.migrate(engine)
    t0 = datetime.now(timezone.utc) - timedelta(hours=2)
    feed, _ = feed_store.add_feed(engine, "http://127.0.0.1/shop/feed.xml", title="Shop Floor Notes",
                                  site_url="http://127.0.0.1/shop/", category="Trade unions")
    ids = {}
    for name in ("taken", "waiting", "failed"):
        url = f"http://127.0.0.1/shop/posts/{name}/"
        raw = Post(feed.id, name, url, TITLE if name == "taken" else f"Post {name}",
                   "<p>The company’s final offer is 3.1% this year.</p>", published=t0, author=AUTHOR,
                   identity=f"g:{name}", base_url=url, summary_only=True)
        post_store.save_posts(engine, feed, [sanitize_post(raw, settings)], now=t0)
        with db.reading(engine) as conn:
            ids[name] = conn.execute(sa.select(sa.func.max(db.posts.c.id))).scalar()
    # What the full-text job stored before the spider took titles and bylines off: the page's
    # article as it was, its summary starting with them too.
    taken = sanitize_post(Post(feed.id, "taken", "http://127.0.0.1/shop/posts/taken/", TITLE,
                               PAGE[PAGE.index("<article>"):PAGE.index("</article>") + 10],
                               base_url="http://127.0.0.1/shop/posts/taken/"), settings)
    assert fulltext_store.save_fulltext(engine, replace(taken, id=ids["taken"]))
    fulltext_store.fulltext_failed(engine, ids["failed"], "no article found")
    app = make_app(settings)
    yield webtest.TestApp(app), ids
    app.config["hustings.site"].searcher.close()
    engine.dispose()


def test_why_is_this_here_is_folded_away(site):
    web, ids = site
    body = web.get(f"/posts/{ids['waiting']}").text
    why = body[body.index('<section class="why"'):]
    why = why[:why.index("</section>")]
    assert re.search(r'<details>\s*<summary><h2 id="why-h">Why is this here\?</h2></summary>', why)
    assert "<details open" not in why and "Score" in why and "</details>" in why


def test_the_full_text_does_not_repeat_the_title_or_byline(site):
    web, ids = site
    body = web.get(f"/posts/{ids['taken']}").text
    content = body[body.index('<div class="content">'):]
    content = content[:content.index("</div>\n")]
    assert "The company’s final offer" in content
    assert TITLE not in content and "By Dave Kerrigan" not in content
    assert body.count("<h1") == 1
    description = re.search(r'<meta name="description" content="([^"]*)"', body).group(1)
    assert description.startswith("The company’s final offer")
    # On the front page too: its summary starts with the post, not the title and byline again.
    front = web.get("/").text
    story = front[front.index(f'aria-labelledby="t{ids["taken"]}"'):]
    summary = re.search(r'<p class="summary">([^<]*)</p>', story).group(1)
    assert summary.startswith("The company’s final offer"), summary


def test_the_summary_only_note_is_for_posts_without_their_full_text(site):
    web, ids = site
    note = "carries only the start of each post"
    assert note not in web.get(f"/posts/{ids['taken']}").text
    assert note in web.get(f"/posts/{ids['waiting']}").text
    assert note in web.get(f"/posts/{ids['failed']}").text
