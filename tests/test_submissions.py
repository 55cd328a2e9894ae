"""Bloggers submit their blogs through /submit: the feed check, the pick between feeds,
pending until a moderator decides, known feeds, the address guard, ownership, the outbox.

WebTest drives the real app on a real migrated SQLite database; the blogs are loopback
servers (``server`` on 127.0.0.1). ``trap`` listens on 127.0.0.2, which the settings'
allow_networks (127.0.0.1/32 only) forbid: it must never see a request.
"""

from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa
import webtest

from aggregator import db, feed_store, pipeline
from aggregator.db import feeds, moderation_log, outbox, posts, submissions
from aggregator.settings import Settings
from community import accounts
from tests.conftest import rss
from web.app import make_app

EMAIL = "moderator@hustings.example"
PASSWORD = "correct horse battery staple"

POSTS = [
    {"title": "Allotments saved on Mill Lane", "link": "/p/allotments", "guid": "urn:p:1",
     "date": "Mon, 02 Mar 2026 09:00:00 +0000",
     "content": '<p onclick="steal()">The council backed down.</p><script>steal()</script>'
                '<p><a href="javascript:alert(1)">trap</a> <a href="/p/more">more</a></p>'},
    {"title": "The bus depot vote", "link": "/p/depot", "guid": "urn:p:2", "date": "Sun, 01 Mar 2026 09:00:00 +0000",
     "content": "<p>Members voted to fight the closure.</p>"},
    {"title": "Canvassing in the rain", "link": "/p/rain", "guid": "urn:p:3", "date": "Sat, 28 Feb 2026 09:00:00 +0000",
     "content": "<p>Four hundred doors, one umbrella.</p>"},
    {"title": "Our first branch meeting", "link": "/p/first", "guid": "urn:p:4",
     "date": "Fri, 27 Feb 2026 09:00:00 +0000", "content": "<p>Twelve of us, and biscuits.</p>"},
]


def blog_feed(server, title: str = "Marrowfield Socialists", items=POSTS, extra: str = "") -> str:
    base = server.url("")
    fixed = [dict(it, link=base + it["link"]) if it.get("link", "").startswith("/") else it for it in items]
    return rss(fixed, title=title, link=server.url("/"), extra=extra)


def home_page(server, *feeds_: tuple[str, str], meta: str = "") -> str:
    links = "".join(f'<link rel="alternate" type="application/rss+xml" title="{t}" href="{h}">' for t, h in feeds_)
    return f"<!doctype html><html><head><title>Marrowfield</title>{links}{meta}</head><body><p>Hello</p></body></html>"


@pytest.fixture(autouse=True)
def quick_passwords(monkeypatch):
    """argon2id with the smallest cost: these tests sign in often, and what they test is
    not the hash (tests/test_community.py checks the real parameters)."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(accounts, "_hasher", lambda: PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def site(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", allow_networks=("127.0.0.1/32",), fetch_deadline_s=5.0,
                        page_cache_s=0, site_url="https://hustings.example")
    engine = db.make_engine(settings)
    db.migrate(engine)
    app = make_app(settings)
    yield settings, engine, webtest.TestApp(app)
    engine.dispose()


def token_of(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def form_with_action(page, action: str):
    for form in page.forms.values():
        if form.action == action and form.method.upper() == "POST":
            return form
    raise AssertionError(f"no POST form to {action} on the page")


def start(app, url: str, **fields):
    page = app.get("/submit")
    form = form_with_action(page, "/submit")
    form["url"] = url
    for k, v in fields.items():
        form[k] = v
    return form


def rows(engine, table, *where):
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(table).where(*where))]


def sign_in(app, engine):
    accounts.add_moderator(engine, EMAIL, PASSWORD)
    page = app.get("/login")
    res = app.post("/login", {"email": EMAIL, "password": PASSWORD, "csrf_token": token_of(page),
                              "next": "/moderate/queue"}, status=303)
    return res.follow()


def submit_to_pending(app, server, **fields):
    """The whole flow for a blog whose page names a posts feed and a comments feed."""
    server.route("/feed.xml", blog_feed(server))
    server.route("/comments.xml", rss([{"title": "Re: hello", "link": server.url("/c/1"), "guid": "c1"}],
                                      title="Comments on Marrowfield"))
    server.route("/", home_page(server, ("Posts", "/feed.xml"), ("Comments", "/comments.xml")),
                 content_type="text/html; charset=utf-8")
    picked = start(app, server.url("/"), **fields).submit(status=200)
    assert "Which feed?" in picked.text
    choice = form_with_action(picked, "/submit")
    assert set(choice["feed_url"].options[i][0] for i in range(2)) == {server.url("/feed.xml"),
                                                                      server.url("/comments.xml")}
    choice["feed_url"] = server.url("/feed.xml")
    checked = choice.submit(status=200)
    done = form_with_action(checked, "/submit").submit(status=303)
    return checked, done


# --- the flow -------------------------------------------------------------------------------------


def test_submission_flow_end_to_end_pending_then_approved_and_fetched(site, server):
    settings, engine, app = site
    checked, done = submit_to_pending(app, server, name="Marrowfield Socialists", contact="Editor@Marrowfield.example",
                                      note="We post weekly.")

    # The feed check, as the blogger saw it.
    text = checked.text
    assert "Valid" in text and "Entries found</dt><dd>4" in text
    assert "GUIDs unique</dt><dd>yes" in text and "Dates present</dt><dd>yes" in text
    assert "Content</dt><dd>full posts" in text and "2 March 2026" in text
    assert text.count('class="post preview"') == 3  # three posts previewed
    assert "Our first branch meeting" not in text  # the fourth, oldest, is not
    assert "The council backed down." in text
    assert "<script>steal" not in text and "onclick" not in text and "javascript:" not in text

    # Pending: recorded, logged, messaged to nobody yet, shown to nobody.
    location = done.headers["Location"]
    assert re.search(r"/submit/\d+\?token=[0-9a-f]{32}$", location)
    [sub] = rows(engine, submissions)
    [feed] = rows(engine, feeds)
    assert sub["status"] == "pending" and sub["contact"] == "editor@marrowfield.example"
    assert sub["feed_url"] == server.url("/feed.xml") and sub["feed_id"] == feed["id"]
    assert feed["status"] == "pending" and feed["title"] == "Marrowfield Socialists"
    check = json.loads(sub["check_json"])
    assert check["valid"] and check["entries"] == 4 and len(check["preview"]) == 3
    [line] = rows(engine, moderation_log)
    assert (line["action"], line["actor"], line["target_type"]) == ("submitted", "blogger", "submission")
    assert "Marrowfield" not in line["target_label"]  # unmoderated words stay out of the public log
    assert rows(engine, outbox) == []
    status_page = done.follow()
    assert "Waiting for a moderator" in status_page.text and sub["token"] in status_page.text

    reader = webtest.TestApp(app.app)
    for url in ("/", "/new", "/blogs", "/blogs.opml", "/api/blogs", "/moderation", "/feed.atom"):
        assert "Marrowfield" not in reader.get(url).text, url
    reader.get(f"/blogs/{feed['id']}", status=404)
    assert feed_store.feeds_due(engine, db.utcnow()) == []  # the worker will not fetch it
    fetched_before = server.hits("/feed.xml")

    # A moderator approves it; the worker's next run fetches it; readers see it.
    queue = sign_in(app, engine)
    assert "Marrowfield Socialists" in queue.text and "Entries found" in queue.text
    assert "editor@marrowfield.example" in queue.text and "We post weekly." in queue.text
    form_with_action(queue, f"/moderate/submissions/{sub['id']}/approve").submit(status=303)
    [feed] = rows(engine, feeds)
    assert feed["status"] == "active"
    assert [f.id for f in feed_store.feeds_due(engine, db.utcnow())] == [feed["id"]]
    assert server.hits("/feed.xml") == fetched_before  # approval itself fetches nothing
    outcome = pipeline.refresh_feed(engine, feed_store.get_feed(engine, feed["id"]), settings)
    assert outcome.result == "ok" and outcome.new == 4

    blogs = reader.get("/blogs")
    assert "Marrowfield Socialists" in blogs.text
    blog = reader.get(f"/blogs/{feed['id']}")
    for item in POSTS:
        assert item["title"] in blog.text
    [msg] = rows(engine, outbox)
    assert msg["to_address"] == "editor@marrowfield.example" and msg["kind"] == "approved"
    assert "Marrowfield Socialists" in msg["subject"] and f"https://hustings.example/blogs/{feed['id']}" in msg["body"]
    assert rows(engine, submissions)[0]["status"] == "approved"
    assert "Approved" in app.get(location).text

    # The preview was exactly what the site shows: the same sanitised HTML.
    stored = {p["title"]: p["content_html"] for p in rows(engine, posts)}
    for shown in check["preview"]:
        assert shown["content_html"] == stored[shown["title"]]
    post_id = next(p["id"] for p in rows(engine, posts) if p["title"] == POSTS[0]["title"])
    assert check["preview"][0]["content_html"] in reader.get(f"/posts/{post_id}").text


def test_rejected_submission_is_messaged_logged_and_never_shown(site, server):
    settings, engine, app = site
    _, done = submit_to_pending(app, server, contact="editor@marrowfield.example")
    [sub] = rows(engine, submissions)
    queue = sign_in(app, engine)
    token = token_of(queue)
    res = app.post(f"/moderate/submissions/{sub['id']}/reject", {"csrf_token": token, "reason": "  "}, status=400)
    assert "ay why the submission is rejected" in res.text
    assert rows(engine, submissions)[0]["status"] == "pending"
    form = form_with_action(queue, f"/moderate/submissions/{sub['id']}/reject")
    form["reason"] = "Not a political blog: it sells garden furniture"
    form.submit(status=303)

    [sub] = rows(engine, submissions)
    [feed] = rows(engine, feeds)
    assert sub["status"] == "rejected" and sub["decided_by"] == EMAIL and feed["status"] == "rejected"
    [msg] = rows(engine, outbox)
    assert msg["kind"] == "rejected" and msg["to_address"] == "editor@marrowfield.example"
    assert "garden furniture" in msg["body"] and "/submit/" in msg["body"]
    line = rows(engine, moderation_log, moderation_log.c.action == "reject_submission")[0]
    assert line["actor"] == EMAIL and line["reason"].startswith("Not a political blog")
    log = webtest.TestApp(app.app).get("/moderation").text
    assert "reject submission" in log and "garden furniture" in log
    assert "Marrowfield" not in webtest.TestApp(app.app).get("/blogs").text
    assert "Not accepted" in app.get(done.headers["Location"]).text
    # Deciding again is refused, and changes nothing.
    app.post(f"/moderate/submissions/{sub['id']}/approve", {"csrf_token": token}, status=409)
    assert rows(engine, feeds)[0]["status"] == "rejected" and len(rows(engine, outbox)) == 1


def test_a_feed_url_is_checked_directly_and_without_contact_nobody_is_written_to(site, server):
    settings, engine, app = site
    url = server.route("/feed.xml", blog_feed(server, title="Valley Co-operative News"))
    checked = start(app, url).submit(status=200)
    assert "Which feed?" not in checked.text and "Valley Co-operative News" in checked.text
    assert server.hits("/feed.xml") == 1  # the probe's response is checked, not fetched again
    checked_form = form_with_action(checked, "/submit")
    checked_form.submit(status=303)
    [sub] = rows(engine, submissions)
    assert rows(engine, feeds)[0]["title"] == "Valley Co-operative News"  # the feed's own title
    sign_in(app, engine)
    app.post(f"/moderate/submissions/{sub['id']}/approve", {"csrf_token": token_of(app.get("/moderate"))},
             status=303)
    assert rows(engine, outbox) == []


def test_feed_check_reports_dates_guids_and_summaries(site, server):
    settings, engine, app = site
    items = [
        {"title": "Dated", "link": server.url("/a"), "guid": "same", "date": "Mon, 02 Mar 2026 09:00:00 +0000",
         "description": "<p>Only the start…</p>"},
        {"title": "Also same guid", "link": server.url("/b"), "guid": "same", "description": "<p>Start.</p>"},
        {"title": "No guid", "link": server.url("/c"), "description": "<p>Start again.</p>",
         "date": "Fri, 01 Jan 2099 00:00:00 +0000"},
    ]
    url = server.route("/summary.xml", rss(items, title="Summaries Only"))
    page = start(app, url).submit(status=200)
    text = page.text
    assert "Dates present</dt><dd>2 of 3; 1 in the future" in text
    assert "GUIDs unique</dt><dd>no: 1 missing, 1 repeated" in text
    assert "Content</dt><dd>summaries only" in text
    assert "Last post</dt><dd><time" in text and "2 March 2026" in text
    assert "dated in the future" in text and "have no date" in text


@pytest.mark.parametrize("case", ["html-without-feeds", "not-found", "not-a-feed"])
def test_unusable_addresses_are_explained(site, server, case):
    settings, engine, app = site
    if case == "html-without-feeds":
        url = server.route("/", "<!doctype html><html><head><title>x</title></head><body>hi</body></html>",
                           content_type="text/html")
        expect = "no feed found"
    elif case == "not-found":
        url = server.url("/missing")
        expect = "HTTP 404"
    else:
        url = server.route("/x.json", '{"version": "https://jsonfeed.org/version/1.1", "items": [',
                           content_type="application/feed+json")
        expect = "Not usable: not a feed we can read (invalid JSON"
    res = start(app, url).submit(status=422)
    assert expect in res.text
    assert rows(engine, submissions) == [] and rows(engine, feeds) == []


def test_the_form_is_checked_before_anything_is_fetched(site, server):
    settings, engine, app = site
    url = server.route("/feed.xml", blog_feed(server))
    res = start(app, url, contact="not an address").submit(status=422)
    assert "is not an e-mail address" in res.text
    res = start(app, "ftp://127.0.0.1/feed").submit(status=422)
    assert "not a web address" in res.text
    assert server.hits() == 0


# --- the address guard ------------------------------------------------------------------------------------


def test_a_redirect_to_a_blocked_address_is_refused_and_never_followed(site, server, trap):
    settings, engine, app = site
    trap.route("/feed.xml", blog_feed(trap))
    trap.route("/", home_page(trap, ("Posts", "/feed.xml")), content_type="text/html")
    moved = server.route("/moved", status=302, headers={"Location": trap.url("/feed.xml")})
    res = start(app, moved).submit(status=422)
    assert f"redirected to {trap.url('/feed.xml')}" in res.text
    assert "will not fetch" in res.text

    # Every other way in is refused too: the trap's address typed in, a page naming a feed
    # there, a feed_url pointing there at the pick or the confirm step.
    assert "will not fetch" in start(app, trap.url("/")).submit(status=422).text
    server.route("/", home_page(server, ("Posts", trap.url("/feed.xml")), ("Other", trap.url("/feed2.xml"))),
                 content_type="text/html")
    picked = start(app, server.url("/")).submit(status=200)
    form = form_with_action(picked, "/submit")
    form["feed_url"] = trap.url("/feed.xml")
    assert "will not fetch" in form.submit(status=422).text
    token = token_of(picked)
    res = app.post("/submit", {"csrf_token": token, "url": server.url("/"), "feed_url": trap.url("/feed.xml"),
                               "step": "confirm"}, status=422)
    assert "will not fetch" in res.text
    assert trap.hits() == 0
    assert rows(engine, submissions) == [] and rows(engine, feeds) == []


def test_submitting_needs_the_csrf_token_and_is_rate_limited(tmp_path, server):
    settings = Settings(data_dir=tmp_path / "data", allow_networks=("127.0.0.1/32",), submit_limit="2/1h")
    engine = db.make_engine(settings)
    db.migrate(engine)
    app = webtest.TestApp(make_app(settings))
    url = server.route("/feed.xml", blog_feed(server))
    token = token_of(app.get("/submit"))
    app.post("/submit", {"url": url}, status=403)
    app.post("/submit", {"url": url, "csrf_token": "forged" * 8}, status=403)
    assert server.hits() == 0
    for _ in range(2):
        app.post("/submit", {"url": url, "csrf_token": token}, status=200)
    res = app.post("/submit", {"url": url, "csrf_token": token}, status=429)
    assert int(res.headers["Retry-After"]) > 0
    assert server.hits() == 2
    engine.dispose()


# --- known feeds ---------------------------------------------------------------------------------------


def test_known_feeds_are_recognised(site, server):
    settings, engine, app = site
    url = server.route("/feed.xml", blog_feed(server))
    server.route("/", home_page(server, ("Posts", "/feed.xml")), content_type="text/html")
    known, _ = feed_store.add_feed(engine, url, title="Marrowfield Socialists")

    # The feed's address as typed (no fetch needed), in another spelling, or found on the page.
    res = start(app, url).submit(status=200)
    assert "This blog is already on the site" in res.text and f'href="/blogs/{known.id}"' in res.text
    assert server.hits() == 0
    assert "already on the site" in start(app, url.replace("http://", "https://")).submit(status=200).text
    res = start(app, server.url("/")).submit(status=200)
    assert "already on the site" in res.text and "Submit this blog" not in res.text
    assert len(rows(engine, feeds)) == 1 and rows(engine, submissions) == []


def test_a_pending_feed_is_recognised_as_waiting(site, server):
    settings, engine, app = site
    submit_to_pending(app, server)
    other = webtest.TestApp(app.app)
    page = other.get("/submit")
    res = other.post("/submit", {"url": server.url("/feed.xml"), "csrf_token": token_of(page)}, status=200)
    assert "already submitted and is waiting for a moderator" in res.text
    assert "/blogs/" not in res.text.split("<main", 1)[1].split("</main>", 1)[0]
    # The confirm step re-checks: a second confirm of the same feed records nothing new.
    res = other.post("/submit", {"url": server.url("/"), "feed_url": server.url("/feed.xml"), "step": "confirm",
                                 "csrf_token": token_of(page)}, status=200)
    assert "waiting for a moderator" in res.text
    assert len(rows(engine, submissions)) == 1 and len(rows(engine, feeds)) == 1


# --- the blogger's own page and ownership ----------------------------------------------------------------


def test_the_status_page_needs_its_key(site, server):
    settings, engine, app = site
    _, done = submit_to_pending(app, server)
    location = done.headers["Location"]
    sub_id = int(re.search(r"/submit/(\d+)", location).group(1))
    assert app.get(location).status_int == 200
    other = webtest.TestApp(app.app)
    other.get(f"/submit/{sub_id}", status=404)
    other.get(f"/submit/{sub_id}?token={'0' * 32}", status=404)
    other.get(f"/submit/{sub_id + 1}?token={location.rsplit('=', 1)[1]}", status=404)
    res = other.get(location)
    assert res.headers["Cache-Control"] == "no-store"
    assert rows(engine, submissions)[0]["token"] not in location  # the published token is not the key


def test_ownership_verified_by_a_meta_tag_and_shown_on_the_blog_page(site, server):
    settings, engine, app = site
    _, done = submit_to_pending(app, server)
    status_page = done.follow()
    [sub] = rows(engine, submissions)
    token = sub["token"]
    assert f'&lt;meta name="hustings-verification" content="{token}"&gt;' in status_page.text

    # Not there yet: refused, with the reason.
    res = form_with_action(status_page, f"/submit/{sub['id']}/verify").submit(status=422)
    assert "Not verified yet" in res.text
    assert rows(engine, submissions)[0]["verified_at"] is None
    # A token elsewhere in the page body does not count: only the <meta>.
    server.route("/", home_page(server, ("Posts", "/feed.xml"), ("Comments", "/comments.xml"))
                 .replace("<p>Hello</p>", f"<p>A comment: {token}</p>"), content_type="text/html")
    form_with_action(status_page, f"/submit/{sub['id']}/verify").submit(status=422)

    server.route("/", home_page(server, ("Posts", "/feed.xml"), ("Comments", "/comments.xml"),
                                meta=f'<meta name="hustings-verification" content="{token}">'),
                 content_type="text/html")
    res = form_with_action(status_page, f"/submit/{sub['id']}/verify").submit(status=303)
    assert "Verified" in res.follow().text
    assert rows(engine, submissions)[0]["verified_at"] is not None

    queue = sign_in(app, engine)
    assert "verified" in queue.text
    form_with_action(queue, f"/moderate/submissions/{sub['id']}/approve").submit(status=303)
    page = webtest.TestApp(app.app).get(f"/blogs/{sub['feed_id']}")
    assert 'class="verified"' in page.text


def test_ownership_verified_by_the_token_in_the_feed(site, server):
    settings, engine, app = site
    _, done = submit_to_pending(app, server)
    [sub] = rows(engine, submissions)
    server.route("/feed.xml", blog_feed(server, extra=f"<description>verify {sub['token']}</description>"))
    page = done.follow()
    form_with_action(page, f"/submit/{sub['id']}/verify").submit(status=303)
    assert rows(engine, submissions)[0]["verified_at"] is not None
    # A wrong key cannot verify (nor learn whether the submission exists).
    app.post(f"/submit/{sub['id']}/verify", {"csrf_token": token_of(page), "token": "x" * 32}, status=404)


def test_verification_fetches_under_the_guard_too(site, server, trap):
    settings, engine, app = site
    _, done = submit_to_pending(app, server)
    [sub] = rows(engine, submissions)
    # The blog now redirects its feed and its page to a forbidden address.
    server.route("/feed.xml", status=302, headers={"Location": trap.url("/feed.xml")})
    server.route("/", status=302, headers={"Location": trap.url("/")})
    trap.route("/feed.xml", f"<rss><channel><title>{sub['token']}</title></channel></rss>")
    page = done.follow()
    res = form_with_action(page, f"/submit/{sub['id']}/verify").submit(status=422)
    assert "will not fetch" in res.text
    assert trap.hits() == 0 and rows(engine, submissions)[0]["verified_at"] is None


def test_an_approved_blog_shows_on_the_cached_blog_list_before_any_post(tmp_path, server):
    """Approving changes no post, but the change counter moves, so cached pages render again."""
    from aggregator import listings
    from web.cache import PageCache

    class Clock:
        t = 1000.0

        def __call__(self):
            return self.t

    settings = Settings(data_dir=tmp_path / "data", allow_networks=("127.0.0.1/32",), page_cache_s=3600)
    engine = db.make_engine(settings)
    db.migrate(engine)
    app = make_app(settings)
    clock = Clock()
    app.config["hustings.site"].cache = PageCache(lambda: listings.site_version(engine), 3600, clock=clock)
    web = webtest.TestApp(app)
    _, done = submit_to_pending(web, server, name="Tenants Together")
    reader = webtest.TestApp(app)
    assert "Tenants Together" not in reader.get("/blogs").text  # now cached
    [sub] = rows(engine, submissions)
    sign_in(web, engine)
    web.post(f"/moderate/submissions/{sub['id']}/approve", {"csrf_token": token_of(web.get("/moderate"))},
             status=303)
    clock.t += 2  # past the once-a-second version check, far inside the hour the entry may live
    assert "Tenants Together" in reader.get("/blogs").text
    engine.dispose()
