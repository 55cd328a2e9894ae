"""Act on every line (issue 14, item 4): each listing line has the recommend button with its
count (a plain form), and a reader who recommended sees it said, with the new count, at once:
on the list they came from and on the post page, whatever the page cache holds.

The page cache here is on a clock that never moves, so it never re-reads the site's version:
what a reader sees after recommending comes from their own copy of the cached page
(web/reader_state.py), not from a fresh render.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
import webtest

from aggregator import db, feed_store, listings, post_store
from aggregator.models import Post
from aggregator.sanitize import sanitize_post
from aggregator.settings import Settings
from web import security
from web.app import make_app
from web.cache import PageCache


@pytest.fixture(scope="module")
def site(tmp_path_factory, database):
    settings = Settings(data_dir=tmp_path_factory.mktemp("rec") / "data", allow_networks=("127.0.0.1/32",),
                        rate_limits=False)
    engine = db.make_engine(settings)
    db.migrate(engine)
    t0 = datetime.now(timezone.utc)
    ids = []
    for b in range(4):
        feed, _ = feed_store.add_feed(engine, f"http://127.0.0.1/b{b}/feed.xml", title=f"Branch {b}",
                                      site_url=f"http://127.0.0.1/b{b}/", category="Branches")
        for j in range(3):
            url = f"http://127.0.0.1/b{b}/{j}"
            raw = Post(feed.id, f"g{b}-{j}", url, f"Branch {b} news, part {j}", "<p>Words.</p>",
                       published=t0 - timedelta(hours=b + 4 * j), identity=f"g:{b}-{j}", base_url=url)
            post_store.save_posts(engine, feed, [sanitize_post(raw, settings)], now=t0 - timedelta(hours=b + 4 * j))
    with db.reading(engine) as conn:
        ids = [r.id for r in conn.execute(sa.select(db.posts.c.id).order_by(db.posts.c.id))]
    app = make_app(settings)
    s = app.config["hustings.site"]
    s.cache = PageCache(lambda: listings.site_version(engine), settings.page_cache_s, clock=lambda: 5000.0)
    yield settings, engine, app, ids
    s.searcher.close()
    engine.dispose()


def forms_on(body: str) -> dict[int, str]:
    """post id -> its recommend button and count, for every line (and the post page)."""
    return {int(m.group(1)): m.group(0) for m in re.finditer(r"<!--[rR](\d+)-->.*?<!--/r-->", body, re.S)}


def page_form(body: str) -> str:
    """The one form a listing's buttons submit."""
    return re.search(r'<form id="rf" method="post">.*?</form>', body, re.S).group(0)


def count_in(form: str) -> int:
    return int(re.search(r'<span class="rec-n">(\d+)', form).group(1))


def token_of(body: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)


@pytest.mark.parametrize("path", ["/", "/new", "BLOG"])
def test_every_listing_line_has_a_recommend_form_with_its_count(site, path):
    settings, engine, app, ids = site
    web = webtest.TestApp(app)
    if path == "BLOG":
        path = f"/blogs/{listings.blogs(engine)[0].id}"
    body = web.get(path).text
    lines = re.findall(r'<h3 id="t(\d+)">', body)
    forms = forms_on(body)
    assert lines and set(map(int, lines)) <= set(forms), "a form on every line"
    token = security.reader_csrf(settings, web.cookies[security.READER_COOKIE])
    form = page_form(body)
    assert f'name="csrf_token" value="{token}"' in form and f'name="back" value="{path}"' in form
    assert body.count('name="csrf_token"') == 1, "one token for the page, not one per line"
    for pid, widget in forms.items():
        assert f'<button class="rec-b" form="rf" formaction="/posts/{pid}/recommend" aria-describedby="t{pid}">' \
               f'Recommend</button>' in widget
        assert count_in(widget) == listings.post(engine, pid)["recommendations"]
    assert security.CSRF_PLACEHOLDER not in body


def test_recommending_from_the_front_page_comes_back_to_it_saying_so(site):
    settings, engine, app, ids = site
    reader, other = webtest.TestApp(app), webtest.TestApp(app)
    front = reader.get("/")
    pid, form = next(iter(forms_on(front.text).items()))
    before = count_in(form)
    etag = front.headers["ETag"]
    other.get("/")  # the cached front page exists for everyone, from before
    done = reader.post(f"/posts/{pid}/recommend", {"csrf_token": token_of(front.text), "back": "/"}, status=303)
    assert done.headers["Location"].endswith(f"/#t{pid}")
    after = done.follow()
    mine = forms_on(after.text)[pid]
    assert "Recommended" in mine and '<button class="rec-b"' not in mine
    assert count_in(mine) == before + 1, "the new count, at once"
    assert after.headers["ETag"] != etag, "a reader's copy changes its ETag when their state does"
    assert reader.get("/", headers={"If-None-Match": etag}).status_int == 200
    # Another reader: the button, and the count as it now is once they have a cookie.
    theirs = forms_on(other.get("/").text)[pid]
    assert '<button class="rec-b"' in theirs and "Recommended" not in theirs
    assert count_in(theirs) == before + 1
    # A new reader without a cookie gets the cached page as it is: a button.
    assert '<button class="rec-b"' in forms_on(webtest.TestApp(app).get("/").text)[pid]


def test_the_post_page_shows_the_new_count_at_once(site):
    settings, engine, app, ids = site
    reader = webtest.TestApp(app)
    pid = ids[-1]
    page = reader.get(f"/posts/{pid}")
    before = listings.post(engine, pid)["recommendations"]
    webtest.TestApp(app).get(f"/posts/{pid}?recommended=yes")  # the thank-you page, cached from before
    after = page.forms["recommend"].submit(status=303).follow()
    assert "Thank you" in after.text
    words = f"{before + 1} reader{'s' if before + 1 != 1 else ''} recommend{'s' if before + 1 == 1 else ''} this"
    assert words in after.text
    assert "Recommended" in forms_on(after.text)[pid]
    # Coming back later, the page still says so.
    assert "Recommended" in forms_on(reader.get(f"/posts/{pid}").text)[pid]


def test_back_must_be_a_path_on_this_site(site):
    settings, engine, app, ids = site
    reader = webtest.TestApp(app)
    page = reader.get("/new")
    pid = ids[0]
    for back in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        res = reader.post(f"/posts/{pid}/recommend", {"csrf_token": token_of(page.text), "back": back}, status=303)
        assert res.headers["Location"].endswith(f"/posts/{pid}?recommended=" +
                                                res.headers["Location"].rsplit("=", 1)[1])
        assert "evil" not in res.headers["Location"]
