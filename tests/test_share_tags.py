"""Share and preview (issue 14, item 7): every public page has its canonical address, a meta
description, and Open Graph and Twitter card tags, so a shared link shows a proper card."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa
import webtest

from aggregator import db, feed_store, post_store
from aggregator.models import Post
from aggregator.sanitize import sanitize_post
from aggregator.settings import Settings
from web.app import make_app

SITE = "https://hustings.example.org"


class Head(HTMLParser):
    """The <meta> and <link rel=canonical> of a page."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, list[str]] = {}
        self.canonical: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "meta" and ("property" in a or "name" in a):
            self.meta.setdefault(a.get("property") or a.get("name"), []).append(a.get("content", ""))
        if tag == "link" and a.get("rel") == "canonical":
            self.canonical.append(a["href"])

    handle_startendtag = handle_starttag


@pytest.fixture(scope="module")
def site(tmp_path_factory, database):
    settings = Settings(data_dir=tmp_path_factory.mktemp("share") / "data", allow_networks=("127.0.0.1/32",),
                        site_url=SITE + "/")
    engine = db.make_engine(settings)
    db.migrate(engine)
    t0 = datetime.now(timezone.utc)
    feed, _ = feed_store.add_feed(engine, "http://127.0.0.1/b/feed.xml", title="Valley Socialist",
                                  site_url="http://127.0.0.1/b/", category="Local parties")
    ids = []
    for j in range(35):
        url = f"http://127.0.0.1/b/{j}"
        body = (f"<p>Post {j}: we knocked on two hundred doors on Saturday and this is what people told us "
                f"about the buses, the library and the damp flats on Station Road, in their own words.</p>"
                + ('<img src="https://pics.example/rally.jpg" width="1200" height="630" alt="The rally">'
                   if j == 34 else ""))
        raw = Post(feed.id, f"g{j}", url, f"Canvassing report {j}", body, published=t0 - timedelta(hours=35 - j),
                   identity=f"g:{j}", base_url=url)
        post_store.save_posts(engine, feed, [sanitize_post(raw, settings)], now=t0 - timedelta(hours=35 - j))
        with db.reading(engine) as conn:
            ids.append(conn.execute(sa.select(sa.func.max(db.posts.c.id))).scalar())
    app = make_app(settings)
    yield webtest.TestApp(app), ids, feed.id
    app.config["hustings.site"].searcher.close()
    engine.dispose()


PAGES = ["/", "/?page=2", "/new", "/new?page=2", "/blogs", "BLOG", "POST", "/sections/local-parties", "/search",
         "/search?q=buses", "/about", "/privacy", "/polls", "/moderation", "/submit"]


@pytest.mark.parametrize("path", PAGES)
def test_every_public_page_has_its_canonical_address_description_and_card(site, path):
    web, ids, blog_id = site
    path = path.replace("BLOG", f"/blogs/{blog_id}").replace("POST", f"/posts/{ids[3]}")
    head = Head(web.get(path).text)
    assert head.canonical == [SITE + path], "one canonical link: the site's public address of this page"
    m = head.meta
    assert m["og:url"] == [SITE + path]
    for name in ("description", "og:title", "og:description", "og:site_name", "og:type", "twitter:card"):
        assert len(m.get(name, [])) == 1 and m[name][0].strip(), (name, m.get(name))
    assert m["og:description"] == m["description"]
    assert m["og:site_name"] == ["Hustings"]
    assert 40 <= len(m["description"][0]) <= 210, m["description"]


def test_the_canonical_address_leaves_out_what_is_not_the_page(site):
    web, ids, blog_id = site
    assert Head(web.get("/?page=1&utm_source=x").text).canonical == [SITE + "/"]
    assert Head(web.get(f"/posts/{ids[0]}?recommended=yes").text).canonical == [SITE + f"/posts/{ids[0]}"]
    assert Head(web.get("/search?q=buses&sort=newest&fbclid=1").text).canonical == [
        SITE + "/search?q=buses&sort=newest"]
    missing = Head(web.get("/posts/999999", status=404).text)
    assert missing.canonical == [] and "og:url" not in missing.meta


def test_a_post_is_an_article_with_its_summary_and_picture(site):
    web, ids, blog_id = site
    m = Head(web.get(f"/posts/{ids[34]}").text).meta
    assert m["og:type"] == ["article"] and m["og:title"] == ["Canvassing report 34"]
    assert m["description"][0].startswith("Post 34: we knocked on two hundred doors")
    assert m["og:image"] == ["https://pics.example/rally.jpg"] and m["twitter:card"] == ["summary_large_image"]
    plain = Head(web.get(f"/posts/{ids[3]}").text).meta
    assert "og:image" not in plain and plain["twitter:card"] == ["summary"]


def test_the_front_page_card_shows_its_lead_picture(site):
    web, ids, blog_id = site
    m = Head(web.get("/").text).meta
    assert m["og:type"] == ["website"] and m["og:title"] == ["Hustings"]
    assert m["og:image"] == ["https://pics.example/rally.jpg"]  # the newest post leads, with its picture
