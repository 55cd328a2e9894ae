"""Moderators' pages and actions, and the automatic actions in the public moderation log.

WebTest on the real app and a real migrated SQLite database; feeds are served by the
loopback ``server``. Moderators sign in through POST /login like anyone would.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
import webtest

from aggregator import db, feed_store, fetch_history, pipeline, post_store
from aggregator.db import moderation_log, outbox, posts
from aggregator.fetch_history import FAILING_NOTICE_AFTER
from aggregator.models import Post
from aggregator.settings import Settings
from community import accounts, notices, submissions
from tests.conftest import rss
from web import security
from web.app import make_app
from web.moderate import FAIL_FILL, OK_FILL

EMAIL = "jo.whitfield@hustings.example"
PASSWORD = "correct horse battery staple"
SVG = "{http://www.w3.org/2000/svg}"

GET_PAGES = ["/moderate", "/moderate/queue", "/moderate/blogs", "/moderate/blogs/{blog}", "/moderate/posts"]
POST_FORMS = ["/moderate/submissions/1/approve", "/moderate/submissions/1/reject", "/moderate/blogs/{blog}/pause",
              "/moderate/blogs/{blog}/resume", "/moderate/blogs/{blog}/remove", "/moderate/posts/{post}/feature",
              "/moderate/posts/{post}/unfeature", "/moderate/posts/{post}/hide", "/moderate/posts/{post}/unhide"]


class Site:
    def __init__(self, tmp_path, page_cache_s: int = 0):
        self.settings = Settings(data_dir=tmp_path / "data", allow_networks=("127.0.0.1/32",), fetch_deadline_s=5.0,
                                 page_cache_s=page_cache_s, site_url="https://hustings.example")
        self.engine = db.make_engine(self.settings)
        db.migrate(self.engine)
        self.app = make_app(self.settings)
        now = datetime.now(timezone.utc)
        self.feed, _ = feed_store.add_feed(self.engine, "http://127.0.0.1:9/feed.xml", title="Valley Branch",
                                      site_url="http://127.0.0.1:9/")
        post_store.save_posts(self.engine, self.feed, [
            Post(self.feed.id, f"g{i}", f"http://127.0.0.1:9/p/{i}", title, f"<p>{title}, in full.</p>",
                 published=now - timedelta(hours=i), identity=f"g:{i}")
            for i, title in enumerate(["Saving the library", "The bus depot vote"])])
        self.post = {p["title"]: p["id"] for p in post_store.list_posts(self.engine)}
        accounts.add_moderator(self.engine, EMAIL, PASSWORD)

    def reader(self) -> webtest.TestApp:
        return webtest.TestApp(self.app)

    def moderator(self) -> webtest.TestApp:
        app = self.reader()
        page = app.get("/login")
        app.post("/login", {"email": EMAIL, "password": PASSWORD, "csrf_token": token_of(page)}, status=303)
        return app

    def fill(self, path: str) -> str:
        return path.format(blog=self.feed.id, post=self.post["Saving the library"])

    def log(self, *where) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                sa.select(moderation_log).where(*where).order_by(moderation_log.c.id))]

    def outbox(self) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(outbox).order_by(outbox.c.id))]


@pytest.fixture(autouse=True)
def quick_passwords(monkeypatch):
    """argon2id with the smallest cost: these tests sign in often, and what they test is
    not the hash (tests/test_community.py checks the real parameters)."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(accounts, "_hasher", lambda: PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def site(tmp_path):
    s = Site(tmp_path)
    yield s
    s.engine.dispose()


def token_of(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def form_with_action(page, action: str):
    for form in page.forms.values():
        if form.action == action and form.method.upper() == "POST":
            return form
    raise AssertionError(f"no POST form to {action} on the page")


def public_log(site) -> str:
    return site.reader().get("/moderation").text


def submitted_blog(site, server, contact="editor@valley.example", title="Riverside Ward") -> int:
    """A blog that came through /submit's back end and was approved; returns its feed id."""
    url = server.url("/feed.xml")
    sub = submissions.create(site.engine, url=url, feed_url=url, name=title, contact=contact, note="",
                             check={"feed_url": url, "valid": True})
    submissions.decide(site.engine, sub["id"], actor=EMAIL, approve=True)
    return sub["feed_id"]


# --- who may -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", GET_PAGES)
def test_moderator_pages_send_anonymous_readers_to_sign_in(site, path):
    res = site.reader().get(site.fill(path), status=303)
    assert res.headers["Location"].endswith("/login?next=" + site.fill(path))
    assert res.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in res.headers["Content-Security-Policy"]


@pytest.mark.parametrize("path", POST_FORMS)
def test_moderator_forms_refuse_anonymous_readers(site, path):
    reader = site.reader()
    token = token_of(reader.get("/submit"))  # a reader's own valid token
    res = reader.post(site.fill(path), {"csrf_token": token, "reason": "because"}, status=303)
    assert "/login?next=" in res.headers["Location"]
    reader.post(site.fill(path), {"reason": "because"}, status=403)
    assert site.log() == []
    assert feed_store.get_feed(site.engine, site.feed.id).status == "active"
    assert not post_store.get_post(site.engine, site.post["Saving the library"])["hidden"]


@pytest.mark.parametrize("path", POST_FORMS)
def test_a_signed_in_moderator_without_the_right_csrf_token_gets_403(site, path):
    mod = site.moderator()
    reader_token = token_of(site.reader().get("/submit"))
    for form in ({"reason": "x"}, {"reason": "x", "csrf_token": ""}, {"reason": "x", "csrf_token": reader_token}):
        res = mod.post(site.fill(path), form, status=403)
        assert "reload the page" in res.text
    assert site.log() == []


def test_moderator_pages_are_personal_and_never_cached(tmp_path):
    site = Site(tmp_path, page_cache_s=60)
    post_url = f"/posts/{site.post['Saving the library']}"
    reader = site.reader()
    assert "Moderate this post" not in reader.get(post_url).text  # now cached for readers
    mod = site.moderator()
    page = mod.get(post_url)
    assert "Moderate this post" in page.text and page.headers["Cache-Control"] != "no-cache"
    assert "Moderate this post" not in reader.get(post_url).text  # the cached copy is the readers'
    for path in GET_PAGES:
        res = mod.get(site.fill(path))
        assert res.headers["Cache-Control"] == "no-store", path
        assert security.CSRF_PLACEHOLDER not in res.text
    site.engine.dispose()


# --- posts ----------------------------------------------------------------------------------------------


def test_feature_hide_unhide_from_the_pages_each_logged_with_who_what_why(site):
    mod = site.moderator()
    pid = site.post["Saving the library"]
    page = mod.get(f"/posts/{pid}")
    form_with_action(page, f"/moderate/posts/{pid}/feature").submit(status=303)
    assert post_store.get_post(site.engine, pid)["featured_at"] is not None
    picks = site.reader().get("/").text.split('class="picks"', 1)[1].split("</section>", 1)[0]
    assert "Saving the library" in picks

    # Hiding needs a reason.
    res = mod.post(f"/moderate/posts/{pid}/hide", {"csrf_token": token_of(page), "reason": " "}, status=400)
    assert "ay why the post is hidden" in res.text
    form = form_with_action(mod.get(f"/posts/{pid}"), f"/moderate/posts/{pid}/hide")
    form["reason"] = "Names a private individual"
    res = form.submit(status=303)
    assert res.headers["Location"].endswith("/moderate/posts#hidden")
    site.reader().get(f"/posts/{pid}", status=410)
    assert "Saving the library" not in site.reader().get("/new").text
    listing = mod.get("/moderate/posts")
    assert "Names a private individual" in listing.text

    form = form_with_action(listing, f"/moderate/posts/{pid}/unhide")
    form["reason"] = "Consent given"
    form.submit(status=303)
    assert "Saving the library" in site.reader().get("/new").text
    other = site.post["The bus depot vote"]
    form_with_action(mod.get("/moderate/posts"), f"/moderate/posts/{other}/feature").submit(status=303)
    form_with_action(mod.get(f"/posts/{other}"), f"/moderate/posts/{other}/unfeature").submit(status=303)

    lines = site.log()
    assert [(l["action"], l["target_id"]) for l in lines] == [
        ("feature_post", pid), ("hide_post", pid), ("unhide_post", pid), ("feature_post", other),
        ("unfeature_post", other)]
    assert all(l["actor"] == EMAIL and l["target_type"] == "post" for l in lines)
    assert lines[1]["reason"] == "Names a private individual" and lines[2]["reason"] == "Consent given"
    log = public_log(site)
    for text in ("jo.whitfield", "feature post", "hide post", "unhide post", "unfeature post",
                 "Names a private individual", "Consent given", f'href="/posts/{pid}"'):
        assert text in log, text


def test_a_hidden_pick_stops_being_a_pick(site):
    mod = site.moderator()
    pid = site.post["Saving the library"]
    token = token_of(mod.get("/moderate/posts"))
    mod.post(f"/moderate/posts/{pid}/feature", {"csrf_token": token}, status=303)
    mod.post(f"/moderate/posts/{pid}/hide", {"csrf_token": token, "reason": "Legal advice"}, status=303)
    assert post_store.get_post(site.engine, pid)["featured_at"] is None
    res = mod.post(f"/moderate/posts/{pid}/feature", {"csrf_token": token}, status=400)
    assert "unhide it first" in res.text
    # The error page's "Sign out" form carries the moderator's own token, not the placeholder.
    assert security.CSRF_PLACEHOLDER not in res.text and token_of(res) == token
    mod.post("/moderate/posts/999999/hide", {"csrf_token": token, "reason": "x"}, status=404)


# --- blogs ------------------------------------------------------------------------------------------------


def test_pause_resume_and_remove_a_blog(site, server):
    blog_id = submitted_blog(site, server)
    post_store.save_posts(site.engine, feed_store.get_feed(site.engine, blog_id), [
        Post(blog_id, "r1", server.url("/p/r1"), "Riverside ward surgery", "<p>Saturday.</p>",
             published=datetime.now(timezone.utc), identity="g:r1")])
    mod = site.moderator()
    health = mod.get(f"/moderate/blogs/{blog_id}")
    form = form_with_action(health, f"/moderate/blogs/{blog_id}/pause")
    form["reason"] = "Feed floods us with duplicates"
    form.submit(status=303)
    assert feed_store.get_feed(site.engine, blog_id).status == "paused"
    assert "Riverside ward surgery" in site.reader().get("/new").text  # paused: posts stay
    assert blog_id not in [f.id for f in feed_store.feeds_due(site.engine, datetime.now(timezone.utc) + timedelta(days=2))]
    token = token_of(health)
    mod.post(f"/moderate/blogs/{blog_id}/pause", {"csrf_token": token}, status=400)  # already paused

    health = mod.get(f"/moderate/blogs/{blog_id}")
    form_with_action(health, f"/moderate/blogs/{blog_id}/resume").submit(status=303)
    feed = feed_store.get_feed(site.engine, blog_id)
    assert feed.status == "active" and feed.next_check_at <= datetime.now(timezone.utc)

    res = mod.post(f"/moderate/blogs/{blog_id}/remove", {"csrf_token": token, "reason": ""}, status=400)
    assert "ay why the blog is removed" in res.text
    form = form_with_action(mod.get(f"/moderate/blogs/{blog_id}"), f"/moderate/blogs/{blog_id}/remove")
    form["reason"] = "The author asked us to"
    form.submit(status=303)
    assert feed_store.get_feed(site.engine, blog_id).status == "rejected"
    reader = site.reader()
    assert "Riverside" not in reader.get("/new").text and "Riverside" not in reader.get("/blogs").text
    reader.get(f"/blogs/{blog_id}", status=404)

    actions = [(l["action"], l["actor"], l["reason"]) for l in site.log() if l["target_id"] == blog_id
               and l["target_type"] in ("blog", "feed")]
    assert actions == [("approve_blog", EMAIL, ""), ("pause_blog", EMAIL, "Feed floods us with duplicates"),
                       ("resume_blog", EMAIL, ""), ("remove_blog", EMAIL, "The author asked us to")]
    log = public_log(site)
    assert "pause blog" in log and "remove blog" in log and "The author asked us to" in log
    kinds = [m["kind"] for m in site.outbox()]
    assert kinds == ["approved", "removed"]
    assert "The author asked us to" in site.outbox()[-1]["body"]


def test_blog_health_shows_history_next_check_and_an_svg_chart_that_parses(site):
    now = datetime.now(timezone.utc)
    feed = feed_store.get_feed(site.engine, site.feed.id)
    for hours, ok in [(200, True), (150, True), (100, False), (50, True), (30, False), (2, True)]:
        record = fetch_history.FetchRecord(started_at=now - timedelta(hours=hours), duration_s=0.2,
                                   http_status=200 if ok else 503, error="" if ok else "HTTP 503: the site is unavailable")
        if ok:
            fetch_history.record_success(site.engine, feed, record, next_check_at=now + timedelta(hours=1), interval_s=3600,
                                 etag="", last_modified="")
        else:
            fetch_history.record_failure(site.engine, feed, record, next_check_at=now + timedelta(hours=1), status="erroring")
    # A success with a warning, and a parse failure on a 200: told apart.
    fetch_history.record_success(site.engine, feed, fetch_history.FetchRecord(
        started_at=now - timedelta(hours=1), duration_s=0.1, http_status=200,
        error="malformed feed: SAXParseException (kept 3 entries)"), next_check_at=now + timedelta(hours=1),
        interval_s=3600, etag="", last_modified="")
    fetch_history.record_failure(site.engine, feed, fetch_history.FetchRecord(
        started_at=now - timedelta(minutes=30), duration_s=0.1, http_status=200,
        error="http://127.0.0.1:9/feed.xml: this is an HTML page, not a feed"),
        next_check_at=now + timedelta(hours=1), status="erroring")
    fetch_history.insert_fetch(site.engine, feed.id, fetch_history.FetchRecord(started_at=now - timedelta(hours=400), duration_s=1,
                                                               http_status=200))  # older than the chart

    page = site.moderator().get(f"/moderate/blogs/{feed.id}")
    text = page.text
    assert "Next check" in text and "HTTP 503" in text and "Pause fetching" in text and "Remove the blog" in text
    assert "style=" not in text and "<script" not in text
    svg = re.search(r"<svg.*?</svg>", text, re.S).group(0)
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag == SVG + "svg" and root.get("role") == "img"
    assert "5 succeeded and 3 failed" in root.find(SVG + "desc").text
    fills = [r.get("fill") for r in root.iter(SVG + "rect")]
    assert fills.count(FAIL_FILL) >= 2 and fills.count(OK_FILL) >= 4  # bars (plus one legend swatch each)
    assert "5 fetches succeeded and 3 failed" in text
    # No fetches at all: still a valid image.
    quiet, _ = feed_store.add_feed(site.engine, "http://127.0.0.1:9/quiet.xml", title="Quiet")
    svg = re.search(r"<svg.*?</svg>", site.moderator().get(f"/moderate/blogs/{quiet.id}").text, re.S).group(0)
    assert "No fetches" in "".join(ET.fromstring(svg).itertext())
    site.moderator().get("/moderate/blogs/999999", status=404)


def test_dashboard_and_queue(site, server):
    url = server.url("/feed.xml")
    submissions.create(site.engine, url=url, feed_url=url, name="Eastgate Women's Forum", contact="", note="Hello",
                       check={"feed_url": url, "valid": True, "entries": 2, "dated": 2, "guids": 2,
                              "guids_unique": True, "guid_duplicates": 0, "content": "full", "full_content": 2,
                              "summary_only": 0, "future_dated": 0, "last_post": None, "title": "Eastgate"})
    mod = site.moderator()
    dash = mod.get("/moderate")
    assert re.search(r"Submissions waiting</a></dt><dd>1<", dash.text)
    assert "Signed in as " + EMAIL in dash.text
    queue = mod.get("/moderate/queue")
    assert "Eastgate Women&#39;s Forum" in queue.text and "Feed check" in queue.text and "Hello" in queue.text
    assert "No submissions are waiting" not in queue.text
    assert len(mod.get("/moderate/blogs").html.select("tbody tr")) == 2


def refresh(site, feed):
    """Fetch a feed as the worker does: the fetch, then the feed events turned into log lines and mail."""
    pipeline.refresh_feed(site.engine, feed, site.settings)
    notices.deliver(site.engine, site.settings)


# --- automatic actions ------------------------------------------------------------------------------------


def test_a_feed_gone_410_is_logged_once_by_the_system_and_its_blogger_told(site, server):
    server.route("/feed.xml", b"", status=410)
    blog_id = submitted_blog(site, server)
    for _ in range(2):  # the second failure of a gone feed is not a new event
        refresh(site, feed_store.get_feed(site.engine, blog_id))
    assert feed_store.get_feed(site.engine, blog_id).status == "gone"
    [line] = site.log(moderation_log.c.action == "feed_gone")
    assert line["actor"] == "system" and line["target_id"] == blog_id and "410" in line["reason"]
    assert [m["kind"] for m in site.outbox()] == ["approved", "gone"]
    assert "stopped fetching" in site.outbox()[-1]["subject"]
    log = public_log(site)
    assert "the site, automatically" in log and "feed gone" in log and "HTTP 410" in log


def test_a_feed_without_success_for_the_disable_period_is_gone_and_logged(site, server):
    server.route("/old.xml", b"oops", status=500)
    old = datetime.now(timezone.utc) - timedelta(days=site.settings.fetch_disable_after_days + 1)
    feed, _ = feed_store.add_feed(site.engine, server.url("/old.xml"), title="Silent Since Spring", now=old)
    refresh(site, feed)
    [line] = site.log(moderation_log.c.action == "feed_gone")
    assert line["actor"] == "system" and "no successful fetch for 30 days" in line["reason"]
    assert line["target_label"] == "Silent Since Spring"


def test_a_failing_feed_tells_its_blogger_once_per_run_of_failures(site, server):
    server.route("/feed.xml", b"broken", status=500)
    blog_id = submitted_blog(site, server)
    for _ in range(FAILING_NOTICE_AFTER + 2):
        refresh(site, feed_store.get_feed(site.engine, blog_id))
    assert [m["kind"] for m in site.outbox()] == ["approved", "failing"]
    assert f"The last {FAILING_NOTICE_AFTER} attempts" in site.outbox()[-1]["body"]
    assert site.log(moderation_log.c.action == "feed_gone") == []  # failing is not gone
    # A success ends the run; the next run of failures is told again.
    server.route("/feed.xml", rss([{"title": "Back", "link": server.url("/p/back"), "guid": "b"}]))
    refresh(site, feed_store.get_feed(site.engine, blog_id))
    server.route("/feed.xml", b"broken", status=500)
    for _ in range(FAILING_NOTICE_AFTER):
        refresh(site, feed_store.get_feed(site.engine, blog_id))
    assert [m["kind"] for m in site.outbox()] == ["approved", "failing", "failing"]


def test_future_dates_clamped_are_logged_once_per_post(site, server):
    items = [
        {"title": "Minutes from the future", "link": server.url("/p/f1"), "guid": "f1",
         "date": "Fri, 01 Jan 2099 00:00:00 +0000"},
        {"title": "Also ahead of time", "link": server.url("/p/f2"), "guid": "f2",
         "date": "Sat, 02 Jan 2099 00:00:00 +0000"},
        {"title": "An honest date", "link": server.url("/p/h"), "guid": "h", "date": "Mon, 02 Mar 2026 09:00:00 +0000"},
    ]
    server.route("/feed.xml", rss(items))
    feed, _ = feed_store.add_feed(site.engine, server.url("/feed.xml"), title="Clock Skew Branch")
    refresh(site, feed)
    # Refetched with a change (an edit and a new entry): the clamped posts are not logged again.
    items[0] = dict(items[0], description="<p>Edited.</p>")
    server.route("/feed.xml", rss(items + [{"title": "New", "link": server.url("/p/n"), "guid": "n"}]))
    refresh(site, feed_store.get_feed(site.engine, feed.id))

    lines = site.log(moderation_log.c.action == "date_clamped")
    with site.engine.connect() as conn:
        ids = dict(conn.execute(sa.select(posts.c.title, posts.c.id).where(posts.c.feed_id == feed.id)).all())
    assert sorted((l["target_id"], l["target_label"]) for l in lines) == sorted(
        [(ids["Minutes from the future"], "Minutes from the future"), (ids["Also ahead of time"], "Also ahead of time")])
    assert all(l["actor"] == "system" and l["target_type"] == "post" and "2099-01-0" in l["reason"] for l in lines)
    log = public_log(site)
    assert "date clamped" in log and "the site, automatically" in log
    assert f'href="/posts/{ids["Minutes from the future"]}"' in log


def test_a_pending_blogs_clamped_dates_stay_out_of_the_public_log(site, server):
    feed, _ = feed_store.add_feed(site.engine, server.url("/pending.xml"), title="Pending", status="pending")
    post_store.save_posts(site.engine, feed, [Post(feed.id, "x", server.url("/p/x"), "Secret future", "<p>x</p>",
                                              published=datetime(2099, 1, 1, tzinfo=timezone.utc), identity="g:x")])
    assert site.log(moderation_log.c.action == "date_clamped") == []
