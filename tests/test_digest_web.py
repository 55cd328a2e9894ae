"""The digest on the web: the archive, each issue, the Atom feed, and the moderators' page."""

from __future__ import annotations

import feedparser
import pytest
import webtest

from aggregator.db import utcnow
from community import accounts, digest, mailer
from tests.mailsite import MailSite, token_of

EMAIL = "jo.whitfield@hustings.example"
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def quick_passwords(monkeypatch):
    from argon2 import PasswordHasher

    monkeypatch.setattr(accounts, "_hasher", lambda: PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def site(tmp_path, smtp):
    s = MailSite(tmp_path / "data", smtp)
    s.blog("Valley Branch", "Local parties", ["Saving the library", "The bus depot vote"])
    accounts.add_moderator(s.engine, EMAIL, PASSWORD)
    yield s
    s.close()


def moderator(site) -> webtest.TestApp:
    app = site.reader()
    page = app.get("/login")
    app.post("/login", {"email": EMAIL, "password": PASSWORD, "csrf_token": token_of(page)}, status=303)
    return app


def test_the_archive_each_issue_and_the_feed(site):
    assert "No issues yet" in site.reader().get("/digest").text
    daily = digest.build(site.engine, site.settings, "daily")
    weekly = digest.build(site.engine, site.settings, "weekly")
    archive = site.reader().get("/digest")
    assert daily.subject in archive.text and weekly.subject in archive.text
    page = site.reader().get(daily.path)
    assert daily.path == f"/digest/{daily.key}" and "Saving the library" in page.text
    assert site.reader().get(weekly.path).status_int == 200 and weekly.path.startswith("/digest/week/20")
    site.reader().get("/digest/2001-01-01", status=404)
    site.reader().get("/digest/2026-02-31", status=404)
    site.reader().get("/digest/week/2026-W77", status=404)
    feed = feedparser.parse(site.reader().get("/digest.atom").body)
    assert not feed.bozo and {e.title for e in feed.entries} == {daily.subject, weekly.subject}
    assert any("Saving the library" in e.content[0].value for e in feed.entries)


def test_the_moderators_page_previews_and_takes_the_editors_note(site, smtp):
    site.reader().get("/moderate/digest", status=303)
    app = moderator(site)
    page = app.get("/moderate/digest")
    assert "Next daily issue" in page.text and "Saving the library" in page.text
    form = next(f for f in page.forms.values() if f.action == "/moderate/digest/note" and f["period"].value == "daily")
    form["note"] = "Conference week: three things to read."
    saved = form.submit().follow()
    assert "Note saved." in saved.text and saved.text.count("Conference week: three things to read.") >= 2
    key = digest.next_key(site.settings, "daily", utcnow())
    assert digest.note_for(site.engine, "daily", key) == "Conference week: three things to read."
    # A stranger's form (no session, no token) changes nothing.
    site.reader().post("/moderate/digest/note", {"period": "daily", "key": key, "note": "spam"}, status=403)


def test_failed_messages_are_shown_to_moderators(site, smtp):
    site.confirmed("gone@example.org")
    smtp.answer("gone@example.org", 550, always=True)
    digest.queue(site.engine, digest.build(site.engine, site.settings, "daily"))
    mailer.deliver(site.engine, site.settings)
    page = moderator(site).get("/moderate/digest")
    assert "gone@example.org" in page.text and "550" in page.text
