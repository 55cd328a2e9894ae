"""Campaigns (issue 13) on the real site: the real app through WebTest (each reader a TestApp of
their own, with their own cookies and address), the real database (SQLite and PostgreSQL), the real
search index, and real mail: every message goes through the one delivery path (community/mailer.py)
to a loopback SMTP server (tests/smtp_server.py), and the links a test follows are read from the
messages that server accepted.

The concurrency guarantees (a hundred copies of one reader's back count once, a hundred readers a
hundred) are in test_campaigns_concurrency.py, over a real socket.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime, timedelta, timezone

import feedparser
import pytest
import sqlalchemy as sa
import webtest

from aggregator import db, feed_store, post_store
from aggregator.db import campaign_backings, outbox
from aggregator.models import Post
from aggregator.settings import Settings
from community import accounts, mailer, moderation
from community.campaigns import backing, decisions, store
from community.moderation_log import moderation_entries
from index import writer
from tests.smtp_server import SmtpServer
from web.app import make_app

SITE_URL = "https://hustings.example"
MOD = "mod@example.org"
PASSWORD = "a long enough password"
ORGANISER = "jo.organiser@example.org"
FIELDS = dict(title="Reopen the Mill Lane library", idea="The library **closed** in May.\n\nIt was the only one.",
              ask="Fund it again for five years", ask_of="Millbrook council", organiser="Jo Marsh",
              contact=ORGANISER, query="library")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Site:
    def __init__(self, data_dir, smtp: SmtpServer, **extra):
        self.smtp = smtp
        values = dict(data_dir=data_dir, site_url=SITE_URL, smtp_host="127.0.0.1", smtp_port=smtp.port,
                      smtp_security="none", mail_from="Hustings <news@hustings.example>", mail_rate_per_s=0,
                      page_cache_s=0, allow_networks=("127.0.0.1/32",))
        values.update(extra)
        self.settings = Settings(**values)
        self.engine = db.make_engine(self.settings)
        db.migrate(self.engine)
        accounts.add_moderator(self.engine, MOD, PASSWORD)
        self.app = make_app(self.settings)
        self.blog = None

    def reader(self, ip: str = "198.51.100.7") -> webtest.TestApp:
        r = webtest.TestApp(self.app, extra_environ={"REMOTE_ADDR": ip})
        r.get("/campaigns/new")  # a page with a form: the reader cookie is set
        return r

    def moderator(self) -> webtest.TestApp:
        r = webtest.TestApp(self.app, extra_environ={"REMOTE_ADDR": "198.51.100.200"})
        form = form_for(r.get("/login"), "/login")
        form["email"], form["password"] = MOD, PASSWORD
        form.submit(status=303)
        return r

    def deliver(self) -> mailer.Report:
        report = mailer.deliver(self.engine, self.settings)
        assert not report.error and not report.failed, report
        return report

    def mail(self, to: str, subject_has: str):
        """The newest message to `to` whose subject has the words (delivered first)."""
        self.deliver()
        found = [m.message for m in self.smtp.to(to) if subject_has in m.message["Subject"]]
        assert found, (to, subject_has, [m.message["Subject"] for m in self.smtp.to(to)])
        return found[-1]

    def published(self, **fields) -> store.Campaign:
        """A campaign proposed, its organiser confirmed and a moderator's approval: the quick way."""
        c = store.propose(self.engine, self.settings, **dict(FIELDS, **fields))
        token = store.confirm_token(self.settings, c, utcnow())
        assert store.confirm_contact(self.engine, self.settings, c.slug, token)[0] == "confirmed"
        return moderation.approve_campaign(self.engine, self.settings, c.id, actor=MOD)

    def posts(self, titles: list[str], hours_apart: float = 1.0) -> list[int]:
        """Posts in one blog, the first the newest; indexed. Returns their ids, in the same order."""
        if self.blog is None:
            self.blog, _ = feed_store.add_feed(self.engine, "http://127.0.0.1:9/feed.xml", title="Millbrook Reds",
                                               site_url="http://127.0.0.1:9/")
        now = utcnow()
        start = len(post_ids(self))
        post_store.save_posts(self.engine, self.blog, [
            Post(self.blog.id, f"g{start + i}", f"http://127.0.0.1:9/p/{start + i}", t, f"<p>{t}: a post about it.</p>",
                 published=now - timedelta(hours=hours_apart * (i + 1)), identity=f"g:{start + i}",
                 summary=f"{t}.")
            for i, t in enumerate(titles)])
        writer.sync(self.engine, self.settings)
        ids = post_ids(self)
        return [ids[f"http://127.0.0.1:9/p/{start + i}"] for i in range(len(titles))]


def post_ids(site: Site) -> dict[str, int]:
    with site.engine.connect() as conn:
        return {u: i for i, u in conn.execute(sa.text("SELECT id, url FROM posts"))}


@pytest.fixture
def site(tmp_path, smtp, database) -> Site:
    return Site(tmp_path / "data", smtp)


@pytest.fixture
def doors(monkeypatch) -> list[tuple[str, str | None]]:
    """(action, the outermost community.moderation function on the stack) for every log line written."""
    real = decisions.log_action
    calls: list[tuple[str, str | None]] = []

    def spy(conn, actor, action, **kwargs):
        door, frame = None, sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename == moderation.__file__ and not frame.f_code.co_name.startswith("_"):
                door = frame.f_code.co_name
            frame = frame.f_back
        calls.append((action, door))
        return real(conn, actor, action, **kwargs)

    monkeypatch.setattr(decisions, "log_action", spy)
    return calls


def form_for(page, action: str):
    forms = [f for f in page.forms.values() if f.action.split("?")[0] == action]
    assert forms, (action, [f.action for f in page.forms.values()])
    return forms[0]


def path_of(url: str) -> str:
    assert url.startswith(SITE_URL), url
    return url[len(SITE_URL):]


def link_in(message, path: str) -> str:
    body = message.get_body(("plain",)).get_content()
    found = re.search(rf"{re.escape(SITE_URL)}{re.escape(path)}\S*", body)
    assert found, (path, body)
    return path_of(found.group(0))


def log_lines(site: Site, action: str) -> list[dict]:
    return [e for e in moderation_entries(site.engine, limit=500) if e["action"] == action]


# --- proposing, confirming, approving ---------------------------------------------------------------------


def test_a_proposal_is_confirmed_by_mail_approved_and_published(site):
    r = site.reader()
    page = r.get("/campaigns/new")
    assert "published whether or not they match party policy" in page.text  # the house rules, from the setting
    form = form_for(page, "/campaigns/new")
    assert form["csrf_token"].value
    for name, value in FIELDS.items():
        form[name] = value
    assert form.submit(status=303).headers["Location"].endswith("/campaigns/sent")
    c = store.by_slug(site.engine, "reopen-the-mill-lane-library")
    assert c.status == "pending" and not c.confirmed
    # Not public yet, not in the directory or the API; the log names it by number only.
    r.get(f"/campaigns/{c.slug}", status=404)
    assert c.slug not in r.get("/campaigns").text and r.get("/api/campaigns").json["campaigns"] == []
    assert log_lines(site, "propose_campaign")[0]["target_label"] == f"campaign proposal {c.id}"
    assert FIELDS["title"] not in r.get("/moderation").text
    # A moderator cannot publish it before the organiser confirms their address.
    mod = site.moderator()
    queue = mod.get("/moderate/campaigns")
    assert "Waiting for the organiser to confirm" in queue.text
    mod.post(f"/moderate/campaigns/{c.id}/approve", {"csrf_token": csrf(mod)}, status=409)

    confirm = site.mail(ORGANISER, "Confirm your campaign")
    assert "List-Unsubscribe" not in confirm  # not a list: the organiser's own mail
    done = r.get(link_in(confirm, f"/campaigns/{c.slug}/confirm?token="))
    assert "Address confirmed" in done.text
    manage_link = link_in(site.mail(ORGANISER, "private link"), f"/campaigns/{c.slug}/manage?token=")
    assert manage_link in done.text.replace("&amp;", "&").replace(SITE_URL, "")
    assert r.get(link_in(confirm, f"/campaigns/{c.slug}/confirm?token=")).text.count("Already confirmed") == 1

    queue = mod.get("/moderate/campaigns")
    assert FIELDS["title"] in queue.text and "The library <strong>closed</strong> in May." in queue.text
    form_for(queue, f"/moderate/campaigns/{c.id}/approve").submit(status=303)
    c = store.get(site.engine, c.id)
    assert c.status == "open" and c.decided_by == MOD
    published = site.mail(ORGANISER, "Your campaign is published")
    assert link_in(published, f"/campaigns/{c.slug}/manage?token=") == manage_link

    page = r.get(f"/campaigns/{c.slug}")
    assert "<h1 id=\"campaign-h\">Reopen the Mill Lane library" in page.text
    assert "Organised by <strong>Jo Marsh</strong>" in page.text and "of Millbrook council" in page.text
    assert ORGANISER not in page.text and c.nonce not in page.text
    assert c.slug in r.get("/campaigns").text
    entry = log_lines(site, "approve_campaign")[0]
    assert entry["actor"] == MOD and entry["target_label"] == FIELDS["title"]
    assert f'<a href="/campaigns/{c.id}">{FIELDS["title"]}</a>' in r.get("/moderation").text
    moved = r.get(f"/campaigns/{c.id}", status=303)  # the log's link, by number
    assert moved.headers["Location"].endswith(f"/campaigns/{c.slug}") and "Content-Security-Policy" in moved.headers


def csrf(r: webtest.TestApp) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', r.get("/campaigns/new").text).group(1)


def test_refusals_give_their_reason_in_the_public_log_and_the_organiser_is_told(site):
    c = store.propose(site.engine, site.settings, **dict(FIELDS, title="Buy everyone a yacht"))
    r = site.reader()
    r.get(link_in(site.mail(ORGANISER, "Confirm your campaign"), f"/campaigns/{c.slug}/confirm?token="))
    mod = site.moderator()
    mod.post(f"/moderate/campaigns/{c.id}/reject", {"csrf_token": csrf(mod), "reason": ""}, status=400)
    page = mod.get(f"/campaigns/{c.slug}")  # moderators see a pending campaign, with the forms
    form = form_for(page, f"/moderate/campaigns/{c.id}/reject")
    form["reason"] = "Rule 1: not a campaign (an advert)"
    form.submit(status=303)
    assert store.get(site.engine, c.id).status == "rejected"
    entry = log_lines(site, "reject_campaign")[0]
    assert entry["reason"] == "Rule 1: not a campaign (an advert)" and entry["target_label"] == f"campaign proposal {c.id}"
    log = r.get("/moderation").text
    assert "Rule 1: not a campaign (an advert)" in log and "yacht" not in log
    told = site.mail(ORGANISER, "was not published")
    assert "Rule 1: not a campaign" in told.get_body(("plain",)).get_content()
    r.get(f"/campaigns/{c.slug}", status=404)
    mod.post(f"/moderate/campaigns/{c.id}/approve", {"csrf_token": csrf(mod)}, status=409)


def test_the_form_is_checked_rate_limited_and_needs_its_csrf_token(site, tmp_path, smtp):
    r = site.reader()
    form = form_for(r.get("/campaigns/new"), "/campaigns/new")
    for name, value in dict(FIELDS, contact="not an address").items():
        form[name] = value
    res = form.submit(status=422)
    assert 'id="contact"' in res.text and 'aria-invalid="true"' in res.text and "Jo Marsh" in res.text
    form = form_for(res, "/campaigns/new")
    form["contact"], form["query"] = ORGANISER, "NOT library"
    res = form.submit(status=422)
    assert "The search: a search needs at least one word" in res.text
    form = form_for(res, "/campaigns/new")
    form["query"], form["title"] = "library", ""
    assert "Give a title" in form.submit(status=422).text
    # No token, or another reader's: refused before anything is written.
    other = site.reader("198.51.100.8")
    other.post("/campaigns/new", dict(FIELDS, csrf_token=csrf(r)), status=403)
    assert store.listing(site.engine) == []

    limited = Site(tmp_path / "limited", smtp, campaign_limit="2/1h")
    r = limited.reader()
    statuses = [r.post("/campaigns/new", dict(FIELDS, csrf_token=csrf(r)), expect_errors=True).status_int
                for _ in range(3)]
    assert statuses == [303, 303, 429]
    assert len(store.listing(limited.engine)) == 2


def test_what_people_type_is_shown_safely_markdown_or_plain_text_never_html(site):
    c = site.published(
        title="Safe <b>words</b>",
        idea="Plain text\non two lines.\n\n# A heading\n\n<script>alert(1)</script> <img src=x onerror=alert(1)> "
             "[click](javascript:alert(1)) [ours](https://example.org/x) ![pic](https://example.org/p.png)",
        ask="**Bold** ask")
    page = site.reader().get(f"/campaigns/{c.slug}").text
    idea = page.split('id="idea-h"', 1)[1].split("</section>", 1)[0]
    assert "<script" not in idea and "<img" not in idea and 'href="javascript' not in idea
    assert "[click](javascript:alert(1))" in idea  # not a link: shown as typed
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Safe &lt;b&gt;words&lt;/b&gt;" in page
    assert "<p>Plain text<br>\non two lines.</p>" in page and "<h3>A heading</h3>" in page
    assert '<a href="https://example.org/x" rel="nofollow noopener noreferrer ugc">ours</a>' in page
    assert '<a href="https://example.org/p.png" rel="nofollow noopener noreferrer ugc">pic</a>' in idea  # no image
    assert "<strong>Bold</strong> ask" in page


# --- backing ----------------------------------------------------------------------------------------------------


def test_one_back_per_reader_names_only_when_chosen_and_a_chart_over_time(site):
    c = site.published()
    a, b = site.reader("198.51.100.10"), site.reader("198.51.100.11")
    page = a.get(f"/campaigns/{c.slug}")
    form = page.forms["back-form"]
    res = form.submit(status=303)
    assert res.headers["Location"].endswith(f"/campaigns/{c.slug}?backed=yes#back")
    assert "Thank you: you back this campaign." in res.follow().text
    again = a.post(f"/campaigns/{c.slug}/back", {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"',
                                                                          page.text).group(1)}, status=303)
    assert "backed=already" in again.headers["Location"]
    page = b.get(f"/campaigns/{c.slug}")
    form = page.forms["back-form"]
    form["listed"], form["name"] = True, "Sam Okafor"
    form.submit(status=303)
    assert store.get(site.engine, c.id).backers == 2 == backing.counted(site.engine, c.id)
    page = site.reader("198.51.100.12").get(f"/campaigns/{c.slug}").text
    assert "Backers who chose to be listed: Sam Okafor." in page
    assert '<strong id="backers">2</strong> backers' in page
    svg = re.search(r"<svg.*?</svg>", page, re.S).group(0)
    assert 'role="img"' in svg and "2 backers from" in svg and "<polyline" in svg and "style=" not in svg
    # A listed name must be given if the box is ticked; nothing else is kept of a backer.
    c2 = site.published(title="A second campaign here")
    r = site.reader("198.51.100.13")
    form = r.get(f"/campaigns/{c2.slug}").forms["back-form"]
    form["listed"] = True
    assert "Give the name to list" in form.submit(status=422).text
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(campaign_backings)).all()
    assert all("198.51" not in row.ip_hash and len(row.reader) == 64 for row in rows)
    assert sorted(row.listed_name for row in rows) == ["", "Sam Okafor"]


def test_backers_updates_by_mail_double_opt_in_and_one_click_unsubscribe(site):
    c = site.published()
    r = site.reader("198.51.100.20")
    form = r.get(f"/campaigns/{c.slug}").forms["back-form"]
    form["email"] = "Backer@Example.org"
    res = form.submit(status=303)
    assert "mail=confirm" in res.headers["Location"]
    assert "open it within 48 hours" in res.follow().text
    manage = link_in(site.mail(ORGANISER, "Your campaign is published"), f"/campaigns/{c.slug}/manage?token=")
    organiser = site.reader("203.0.113.5")

    def update(words: str):
        form = form_for(organiser.get(manage), f"/campaigns/{c.slug}/manage/update")
        form["body"] = words
        form.submit(status=303)

    update("We met the council on Monday.")  # before the backer confirms: not mailed to them
    site.deliver()
    assert [m.message["Subject"] for m in site.smtp.to("backer@example.org")] == [
        f"Confirm: updates from the campaign \u201c{c.title}\u201d"]
    confirm = site.mail("backer@example.org", "Confirm: updates")
    assert "You will get its updates" in r.get(link_in(confirm, "/campaigns/follow/confirm?token=")).text

    update("The council will vote on **Thursday**.")
    news = site.mail("backer@example.org", "An update from the campaign")
    text = news.get_body(("plain",)).get_content()
    assert "The council will vote on **Thursday**." in text
    leave = link_in(news, "/campaigns/unsubscribe?token=")
    assert news["List-Unsubscribe"].startswith(f"<{SITE_URL}{leave}>")
    assert news["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # GET changes nothing (link scanners); the mail client's POST needs no cookie and no CSRF token.
    assert "Stop the updates" in webtest.TestApp(site.app).get(leave).text
    res = webtest.TestApp(site.app).post(leave, "List-Unsubscribe=One-Click",
                                         content_type="application/x-www-form-urlencoded")
    assert "no more updates" in res.text
    update("A third update, after they left.")
    site.deliver()
    assert not [m for m in site.smtp.to("backer@example.org") if "third" in m.message.get_body(("plain",)).get_content()]
    assert store.get(site.engine, c.id).backers == 1  # leaving the mail is not unbacking


# --- updates, responses, the feed ----------------------------------------------------------------------------------


def test_responses_and_updates_are_on_the_page_in_the_feed_and_the_log(site):
    c = site.published()
    backing.back(site.engine, site.settings, c, "reader-1", "192.0.2.1", email="fan@example.org")
    assert "You will get" in site.reader().get(link_in(site.mail("fan@example.org", "Confirm"),
                                                       "/campaigns/follow/confirm?token=")).text
    mod = site.moderator()
    form = form_for(mod.get(f"/campaigns/{c.slug}"), f"/moderate/campaigns/{c.id}/respond")
    form["responder"], form["role"], form["body"] = "Ann Vale", "MP for Millbrook", "I will ask the minister."
    form.submit(status=303)
    page = site.reader().get(f"/campaigns/{c.slug}").text
    assert "Ann Vale, MP for Millbrook" in page and "I will ask the minister." in page
    entry = log_lines(site, "record_response")[0]
    assert entry["actor"] == MOD and entry["reason"] == "from Ann Vale, MP for Millbrook"
    news = site.mail("fan@example.org", "A response to")
    assert "Ann Vale, MP for Millbrook responded" in news.get_body(("plain",)).get_content()

    from community.campaigns import decisions
    decisions.post_update(site.engine, site.settings, c.id, "Thank you all: <b>300</b> backers!")
    feed = feedparser.parse(site.reader().get(f"/campaigns/{c.slug}.atom").body)
    assert not feed.bozo, feed.bozo_exception
    titles = [e.title for e in feed.entries]
    assert titles[0].startswith("Update: Thank you all") and titles[1] == "Response from Ann Vale, MP for Millbrook"
    assert "&lt;b&gt;300&lt;/b&gt;" in feed.entries[0].content[0].value  # typed HTML stays text
    assert feed.feed.title == f"{c.title}: updates and responses"


# --- what the movement is writing about it -------------------------------------------------------------------------


def test_posts_matching_its_query_newest_first_paginated_with_highlights_and_pins(site):
    ids = site.posts([f"Library news {n}" for n in range(23)] + ["Allotments and bins"])
    c = site.published()
    r = site.reader()
    page = r.get(f"/campaigns/{c.slug}").text
    shown = [int(x) for x in re.findall(r'<article class="item" id="p(\d+)"', page)]
    assert shown == ids[:10]  # newest first, ten a page
    assert "<mark>Library</mark>" in page or "<mark>library</mark>" in page.lower()
    assert [int(x) for x in re.findall(r'<article class="item" id="p(\d+)"', r.get(
        f"/campaigns/{c.slug}?page=3").text)] == ids[20:23]
    r.get(f"/campaigns/{c.slug}?page=4", status=404)
    assert ids[23] not in shown

    # The organiser pins an old post (first on the page, logged under their name) and takes one off.
    manage = link_in(site.mail(ORGANISER, "Your campaign is published"), f"/campaigns/{c.slug}/manage?token=")
    organiser = site.reader("203.0.113.5")
    mpage = organiser.get(manage)
    form_for(mpage, f"/campaigns/{c.slug}/manage/posts/{ids[0]}/remove").submit(status=303)
    mpage = organiser.get(manage + "&page=3")
    form_for(mpage, f"/campaigns/{c.slug}/manage/posts/{ids[22]}/pin").submit(status=303)
    page = r.get(f"/campaigns/{c.slug}").text
    assert re.findall(r'<article class="item pinned" id="p(\d+)"', page) == [str(ids[22])]
    assert [int(x) for x in re.findall(r'<article class="item" id="p(\d+)"', page)] == ids[1:11]
    api = r.get(f"/api/campaigns/{c.slug}").json["posts"]
    assert api["total"] == 22 and [p["id"] for p in api["pinned"]] == [ids[22]]
    assert "<mark>" in api["found"][0]["highlights"]
    assert log_lines(site, "pin_campaign_post")[0]["actor"] == "Jo Marsh (organiser)"
    assert log_lines(site, "remove_campaign_post")[0]["actor"] == "Jo Marsh (organiser)"

    # A moderator puts it back; a hidden post leaves the campaign as it leaves every page.
    mod = site.moderator()
    form_for(mod.get(f"/campaigns/{c.slug}"), f"/moderate/campaigns/{c.id}/posts/{ids[0]}/restore").submit(status=303)
    moderation.hide_post(site.engine, ids[1], actor=MOD, reason="Spam")
    writer.sync(site.engine, site.settings)
    shown = [int(x) for x in re.findall(r'<article class="item" id="p(\d+)"', r.get(f"/campaigns/{c.slug}").text)]
    assert shown[0] == ids[0] and ids[1] not in shown
    assert log_lines(site, "restore_campaign_post")[0]["actor"] == MOD

    # The organiser changes the search; a search that cannot be run is refused with the reason.
    form = form_for(organiser.get(manage), f"/campaigns/{c.slug}/manage/query")
    form["query"] = "NOT library"
    assert "The search: a search needs" in form.submit(status=422).text
    form["query"] = "allotments"
    form.submit(status=303)
    shown = [int(x) for x in re.findall(r'<article class="item" id="p(\d+)"', r.get(f"/campaigns/{c.slug}").text)]
    assert shown == [ids[23]]
    organiser.get(manage.replace("token=", "token=1"), status=404)


def test_open_polls_linked_to_the_campaign_are_shown(site):
    from community.polls import store as poll_store

    c = site.published()
    poll = moderation.create_poll(site.engine, actor=MOD, question="Which branch should lead it?", options=["A", "B"])
    mod = site.moderator()
    form = form_for(mod.get(f"/campaigns/{c.slug}"), f"/moderate/campaigns/{c.id}/poll")
    form["poll"] = str(poll.id)
    form.submit(status=303)
    assert "Which branch should lead it?" in site.reader().get(f"/campaigns/{c.slug}").text
    assert log_lines(site, "link_campaign_poll")[0]["target_label"] == f"Which branch should lead it? on {c.title}"
    poll_store.close_poll(site.engine, poll.id, by=MOD)
    assert "Which branch should lead it?" not in site.reader().get(f"/campaigns/{c.slug}").text


# --- the directory, closing, the API --------------------------------------------------------------------------------


def test_the_directory_orders_rising_newest_most_backed_and_closed(site):
    now = utcnow()
    old = site.published(title="An old favourite")
    fresh = site.published(title="A rising one")
    site.published(title="The newest one")
    for n in range(5):  # five backers, all more than a week ago
        backing.back(site.engine, site.settings, old, f"old-{n}", "192.0.2.1", now=now - timedelta(days=8 + n))
    for n in range(3):  # three this week
        backing.back(site.engine, site.settings, fresh, f"new-{n}", "192.0.2.2", now=now - timedelta(days=n))
    r = site.reader()

    def order(sort: str) -> list[str]:
        return [c["title"] for c in r.get(f"/api/campaigns?sort={sort}").json["campaigns"]]

    assert order("rising") == ["A rising one", "An old favourite", "The newest one"]
    assert order("backed") == ["An old favourite", "A rising one", "The newest one"]
    assert order("new") == ["The newest one", "A rising one", "An old favourite"]
    assert order("closed") == []
    page = r.get("/campaigns").text
    assert page.index("A rising one") < page.index("An old favourite") and "3 in the last 7 days" in page
    about = r.get("/about").text
    assert "How campaigns are ordered" in about and "last 7 days" in about

    moderation.close_campaign(site.engine, site.settings, old.id, actor=MOD, reason="The council agreed",
                              outcome="won")
    assert order("closed") == ["An old favourite"] and "An old favourite" not in order("rising")
    page = r.get(f"/campaigns/{old.slug}").text
    assert "Closed as won: The council agreed" in page and 'id="back-form"' not in page
    assert r.post(f"/campaigns/{old.slug}/back", {"csrf_token": csrf(r)}, status=409)
    assert store.get(site.engine, old.id).backers == 5
    api = r.get(f"/api/campaigns/{old.slug}").json
    assert api["status"] == "closed" and api["outcome"] == "won" and "contact" not in api and "nonce" not in api
    r.get("/api/campaigns?sort=hot", status=400)
    front = r.get("/").text  # the front page's Campaigns box: the rising ones, with their backers
    box = front.split('id="campaigns-h"', 1)[1].split("</section>", 1)[0]
    assert box.index("A rising one") < box.index("The newest one") and "3 backers · 3 this week" in box
    assert "An old favourite" not in box  # closed


def test_a_burst_of_backs_from_one_address_is_flagged_to_moderators(site):
    c = site.published()
    quiet = site.published(title="A quiet campaign")
    at = utcnow() - timedelta(minutes=30)
    for n in range(backing.BURST_FROM_ONE + 2):  # new readers, one address, within minutes
        backing.back(site.engine, site.settings, c, f"sybil-{n}", "192.0.2.66", now=at + timedelta(seconds=n * 20))
    for n in range(backing.BURST_FROM_ONE):  # ten from another, spread over a day: no burst
        backing.back(site.engine, site.settings, quiet, f"hall-{n}", "192.0.2.77", now=at - timedelta(hours=2 * n))
    flagged = backing.bursts(site.engine)
    assert [(b.campaign_id, b.backs) for b in flagged] == [(c.id, backing.BURST_FROM_ONE + 2)]
    mod = site.moderator()
    queue = mod.get("/moderate/campaigns").text
    assert "Bursts of backs from one address" in queue and f"<td>{backing.BURST_FROM_ONE + 2}</td>" in queue
    assert f"<td>{backing.BURST_FROM_ONE + 2}</td>" in mod.get(f"/campaigns/{c.slug}").text
    assert "Bursts of backs" not in site.reader().get(f"/campaigns/{c.slug}").text  # moderators only
    assert store.get(site.engine, c.id).backers == backing.BURST_FROM_ONE + 2  # flagged, still counted


def test_the_back_limit_counts_new_backs_per_address(tmp_path, smtp, database):
    site = Site(tmp_path / "data", smtp, back_limit="2/1h")
    campaigns = [site.published(title=f"Campaign number {n}") for n in range(3)]
    r = site.reader("192.0.2.9")
    assert [r.post(f"/campaigns/{c.slug}/back", {"csrf_token": csrf(r)}, expect_errors=True).status_int
            for c in campaigns] == [303, 303, 429]
    # Backing again what it already backs is not limited: it changes nothing.
    assert r.post(f"/campaigns/{campaigns[0].slug}/back", {"csrf_token": csrf(r)}, status=303)


# --- the command line ------------------------------------------------------------------------------------------------


def test_the_command_lists_approves_refuses_and_closes_through_the_one_door(cli, smtp):
    import json

    settings = Settings(data_dir=cli.data_dir, site_url=SITE_URL)
    engine = db.make_engine(settings)
    db.migrate(engine)
    one = store.propose(engine, settings, **FIELDS)
    two = store.propose(engine, settings, **dict(FIELDS, title="Another idea entirely"))
    out, _ = cli("campaigns", "list", "--json")
    listed = json.loads(out)["campaigns"]
    assert [(c["id"], c["status"], c["confirmed"]) for c in listed] == [(two.id, "pending", False),
                                                                         (one.id, "pending", False)]
    assert all("contact" not in c and "nonce" not in c for c in listed)
    _, err = cli("campaigns", "approve", str(one.id), expect=1)
    assert "not confirmed" in err and str(one.id) in err
    store.confirm_contact(engine, settings, one.slug, store.confirm_token(settings, one, utcnow()))
    out, _ = cli("campaigns", "approve", one.slug, "--reason", "Clear and in the rules", "--by", "Sam", "--json")
    assert json.loads(out)["status"] == "open"
    out, _ = cli("campaigns", "reject", str(two.id), "--reason", "Rule 4: a repeat")
    assert f"campaign {two.id} refused" in out
    cli("campaigns", "reject", str(two.id), "--reason", "again", expect=1)
    cli("campaigns", "close", "no-such-campaign", "--reason", "x", expect=1)
    out, _ = cli("campaigns", "close", str(one.id), "--reason", "Won at conference", "--won")
    assert "closed as won" in out
    out, _ = cli("campaigns", "list", "--status", "closed")
    assert one.slug in out and "closed (won)" in out
    lines = {e["action"]: e for e in moderation_entries(engine, limit=50)}
    assert lines["approve_campaign"]["actor"] == "Sam" and lines["approve_campaign"]["reason"] == "Clear and in the rules"
    assert lines["reject_campaign"]["actor"] == "command line" and lines["reject_campaign"]["reason"] == "Rule 4: a repeat"
    assert lines["close_campaign"]["target_label"] == f"{FIELDS['title']} (won)"
    with engine.connect() as conn:
        kinds = [r[0] for r in conn.execute(sa.select(outbox.c.kind).order_by(outbox.c.id))]
    assert kinds.count("campaign-approved") == 1 and kinds.count("campaign-closed") == 1
    assert "campaign-rejected" not in kinds  # its organiser never confirmed the address: not written to
    engine.dispose()


def test_backers_addresses_never_confirmed_or_left_are_forgotten_after_a_week(site):
    from aggregator.db import campaign_followers

    c = site.published()
    long_ago = utcnow() - timedelta(days=backing.PENDING_KEEP_DAYS + 1)
    backing.follow(site.engine, site.settings, c, "never@example.org", now=long_ago)
    backing.follow(site.engine, site.settings, c, "recent@example.org")
    backing.follow(site.engine, site.settings, c, "kept@example.org", now=long_ago)
    backing.follow(site.engine, site.settings, c, "gone@example.org", now=long_ago)
    with site.engine.begin() as conn:
        conn.execute(sa.update(campaign_followers).where(campaign_followers.c.email == "kept@example.org")
                     .values(status="confirmed", confirmed_at=long_ago))
        conn.execute(sa.update(campaign_followers).where(campaign_followers.c.email == "gone@example.org")
                     .values(status="left", left_at=long_ago))
    assert backing.forget(site.engine) == 2
    with site.engine.connect() as conn:
        left = sorted(r[0] for r in conn.execute(sa.select(campaign_followers.c.email)))
    assert left == ["kept@example.org", "recent@example.org"]
    assert "Campaigns" in site.reader().get("/privacy").text


def test_posts_taken_off_a_campaign_are_left_out_whether_or_not_the_index_can_exclude(site):
    """writing.about asks the index to leave posts out (Searcher.search(exclude=...)); a Searcher
    without that (an index being reworked) gets the same pages from the filtering done here."""
    from community.campaigns import writing
    from index.search import Searcher

    class Plain:  # a Searcher whose search() takes no `exclude`
        def __init__(self, real):
            self.real = real

        def search(self, text, *, sort="relevance", page=1, limit=10):
            return self.real.search(text, sort=sort, page=page, limit=limit)

    ids = site.posts([f"Library news {n}" for n in range(15)])
    c = site.published()
    moderation.pin_campaign_post(site.engine, c.id, ids[14], actor=MOD)
    moderation.remove_campaign_post(site.engine, c.id, ids[3], actor=MOD)
    real = Searcher(site.settings, site.engine)
    try:
        for searcher in (real, Plain(real)):
            first, second = (writing.about(site.engine, searcher, c, n) for n in (1, 2))
            assert [p["id"] for p in first.pinned] == [ids[14]] and second.pinned == []
            assert [h.id for h in first.found.results] == [i for i in ids[:11] if i != ids[3]]
            assert [h.id for h in second.found.results] == ids[11:14]
            assert first.found.total == 13 and first.found.pages == 2 and first.total == 14
    finally:
        real.close()
