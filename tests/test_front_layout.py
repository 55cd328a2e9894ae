"""The news front page (issue 14, items 3 and 6): the lead story with its first picture, the
four beneath it, the ranked list with thumbnails, and the rail (editor's picks, open polls,
the week's most recommended, the latest posts), within 30 KB even when every post has a
picture; pictures carry their size, lazy loading, no referrer and alt text (empty when the
feed gave none)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa
import webtest

from aggregator import db, feed_store, post_store
from aggregator.models import Post
from aggregator.sanitize import sanitize_post
from aggregator.settings import Settings
from community import moderation
from community.polls import store as poll_store
from web.app import make_app

LONG = "A long headline about the council budget, the depot and the branch's answer"  # 80 with its number


class Tags(HTMLParser):
    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    handle_startendtag = handle_starttag


@pytest.fixture(scope="module")
def site(tmp_path_factory, database):
    settings = Settings(data_dir=tmp_path_factory.mktemp("layout") / "data", allow_networks=("127.0.0.1/32",))
    engine = db.make_engine(settings)
    db.migrate(engine)
    t0 = datetime.now(timezone.utc)
    ids = {}
    for b in range(8):
        feed, _ = feed_store.add_feed(engine, f"http://127.0.0.1/b{b}/feed.xml",
                                      title=f"The Hollinbridge and District Branch Blog {b}",
                                      site_url=f"http://127.0.0.1/b{b}/", category="Branches")
        for j in range(5):
            url = f"http://127.0.0.1/b{b}/2026/12/04/{'a-long-address-for-the-post-' * 2}{j}"
            seen = t0 - timedelta(hours=b * 0.3 + j * 5)
            # Every post has a picture at a long address; the first blog's say nothing about it.
            alt = "" if b == 0 else f' alt="Members at the count, picture {b}.{j}"'
            size = ' width="1200" height="800"' if j % 2 == 0 else ""
            body = (f'<p>{LONG}, part {j}. ' + "The branch met on Thursday to talk it through. " * 8 + "</p>"
                    f'<img src="https://images.blog{b}.example/wp-content/uploads/2026/12/members-at-the-count-'
                    f'{j}-scaled-1200x800.jpg"{size}{alt}><p>More words.</p>')
            raw = Post(feed.id, f"g{b}-{j}", url, f"{LONG} ({b}.{j})", body, published=seen, author="Jo Whitfield",
                       identity=f"g:{b}-{j}", base_url=url)
            post_store.save_posts(engine, feed, [sanitize_post(raw, settings)], now=seen)
            with db.reading(engine) as conn:
                ids[(b, j)] = conn.execute(sa.select(sa.func.max(db.posts.c.id))).scalar()
    # Last week's most recommended; an older post with more, outside the week.
    old_feed = feed_store.get_feed(engine, 1)
    url = "http://127.0.0.1/b0/old"
    raw = Post(old_feed.id, "old", url, "Last month's big story", "<p>Old.</p>", published=t0 - timedelta(days=12),
               identity="g:old", base_url=url)
    post_store.save_posts(engine, old_feed, [sanitize_post(raw, settings)], now=t0 - timedelta(days=12))
    with db.writing(engine) as conn:
        old = conn.execute(sa.select(sa.func.max(db.posts.c.id))).scalar()
        for (b, j), n in (((3, 4), 40), ((5, 1), 12), ((2, 2), 7)):
            conn.execute(sa.update(db.posts).where(db.posts.c.id == ids[(b, j)]).values(recommendations=n))
        conn.execute(sa.update(db.posts).where(db.posts.c.id == old).values(recommendations=99))
        db.next_counter(conn, db.CHANGE_COUNTER)
    moderation.feature_post(engine, ids[(6, 3)], actor="editor")
    poll = poll_store.create_poll(engine, question="Which campaign should the branch take on next?",
                                  options=["Buses", "Libraries"], created_by="mod@example.org")
    app = make_app(settings)
    yield webtest.TestApp(app), ids, old, poll
    app.config["hustings.site"].searcher.close()
    engine.dispose()


def section(body: str, start: str) -> str:
    i = body.index(start)
    return body[i:body.index("</section>", i)]


def test_the_lead_and_four_stories_then_the_ranked_list(site):
    web, ids, old, poll = site
    body = web.get("/").text
    stories = re.findall(r'<article class="(story[^"]*)" aria-labelledby="t(\d+)"', body)
    assert len(stories) == 5 and stories[0][0] == "story lead has-img"
    assert all("has-img" in kind for kind, _ in stories)
    assert '<ol class="ranked" start="6">' in body
    ranked = re.findall(r'<li><article class="item">(?:<img[^>]*>)?\s*<h3 id="t(\d+)"', body)
    assert len(ranked) == 25
    assert len(body.encode()) <= 30 * 1024, f"{len(body.encode())} bytes with a picture on every line"


def test_pictures_carry_their_size_alt_lazy_loading_and_no_referrer(site):
    web, ids, old, poll = site
    imgs = [a for t, a in Tags(web.get("/").text).tags if t == "img"]
    assert len(imgs) == 30
    for a in imgs:
        assert a["loading"] == "lazy" and a["referrerpolicy"] == "no-referrer", a
        assert a["width"].isdigit() and a["height"].isdigit(), a
        assert "alt" in a, a
        assert a["src"].startswith("https://images.blog")
    lead = imgs[0]
    assert lead["class"] == "story-img"
    # The feed's size when it gave one (the lead's aspect), else a 16:9 box the picture is cropped to.
    assert (lead["width"], lead["height"]) in (("1200", "800"), ("800", "450"))
    assert {a["width"] for a in imgs if a["class"] == "thumb"} == {"160"}
    # The feed's words for the picture, or alt="" (decoration beside the headline) when it had none.
    alts = {a["alt"] for a in imgs}
    assert "" in alts and any(a.startswith("Members at the count") for a in alts)


def test_the_rail_has_picks_polls_the_weeks_most_recommended_and_the_latest(site):
    web, ids, old, poll = site
    body = web.get("/").text
    rail = body[body.index('<aside class="rail"'):body.index("</aside>")]
    picks = section(rail, 'class="picks"')
    assert f'href="/posts/{ids[(6, 3)]}"' in picks and "Editor's picks" in picks
    polls = section(rail, 'class="poll-box"')
    assert f'href="/polls/{poll.id}"' in polls
    popular = section(rail, 'id="popular-h"')
    order = [int(i) for i in re.findall(r'href="/posts/(\d+)"', popular)]
    assert order == [ids[(3, 4)], ids[(5, 1)], ids[(2, 2)]], "most first, this week's only"
    assert old not in order and "40 recommendations" in popular
    latest = [int(i) for i in re.findall(r'href="/posts/(\d+)"', section(rail, 'id="latest-h"'))]
    on_page = {int(i) for i in re.findall(r'<h3 id="t(\d+)"', body)}
    assert latest and not set(latest) & on_page, "the latest posts not already on the page"
    assert 'href="/subscribe"' in section(rail, 'id="digest-h"'), "and the way to the digest by e-mail"


def test_later_pages_are_the_ranked_list_alone(site):
    web, ids, old, poll = site
    body = web.get("/?page=2").text
    assert '<aside class="rail"' not in body and 'class="story' not in body
    assert '<ol class="ranked" start="31">' in body
    assert 'rel="prev" href="/"' in body

