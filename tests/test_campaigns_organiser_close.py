"""Organisers close their own campaign (issue 13) from their private page: the real app through WebTest,
the manage link read from the mail a loopback SMTP server received, the form's CSRF token and the
link's token both required. It goes through community.moderation (close_own_campaign), logged as
"<name> (organiser)"; once closed, backing stops exactly as after a moderator's closing. On SQLite
and PostgreSQL.
"""

from __future__ import annotations

import re

import pytest
import webtest

from community import moderation
from community.campaigns import backing, decisions, store
from tests.test_campaigns import ORGANISER, csrf, doors, form_for, link_in, log_lines, site

__all__ = ["doors", "site"]  # the fixtures, shared with test_campaigns.py

NOTE = "The council voted on Thursday to fund the library for five years"


def manage_link(site, c) -> str:
    return link_in(site.mail(ORGANISER, "Your campaign is published"), f"/campaigns/{c.slug}/manage?token=")


def close_form(page, c):
    return form_for(page, f"/campaigns/{c.slug}/manage/close")


def test_the_organiser_closes_it_as_won_and_backing_stops(site, doors):
    c = site.published()
    doors.clear()  # approving it was logged too
    backer = site.reader("198.51.100.30")
    form = backer.get(f"/campaigns/{c.slug}").forms["back-form"]
    form["email"] = "fan@example.org"
    form.submit(status=303)
    backer.get(link_in(site.mail("fan@example.org", "Confirm"), "/campaigns/follow/confirm?token="))
    manage = manage_link(site, c)

    organiser = site.reader("203.0.113.5")
    form = close_form(organiser.get(manage), c)
    assert form["csrf_token"].value and form["token"].value and form["outcome"].value == "ended"
    form["outcome"], form["note"] = "won", NOTE
    res = form.submit(status=303)
    assert res.headers["Location"].endswith("&done=closed")
    done = res.follow()
    assert "The campaign is closed" in done.text and f'action="/campaigns/{c.slug}/manage/close"' not in done.text

    after = store.get(site.engine, c.id)
    assert (after.status, after.outcome, after.reason, after.decided_by) == ("closed", "won", NOTE, "Jo Marsh (organiser)")
    [line] = log_lines(site, "close_campaign")
    assert line["actor"] == "Jo Marsh (organiser)" and line["reason"] == NOTE and line["target_label"] == f"{c.title} (won)"
    assert doors == [("close_campaign", "close_own_campaign")]  # through the one door
    log = site.reader().get("/moderation").text
    assert "Jo Marsh (organiser)" in log and NOTE in log

    # Backing stops, as after a moderator's closing: no form, and a back sent anyway is refused.
    late = site.reader("198.51.100.31")
    page = late.get(f"/campaigns/{c.slug}").text
    assert f"Closed as won by its organiser: {NOTE}" in page and 'id="back-form"' not in page
    late.post(f"/campaigns/{c.slug}/back", {"csrf_token": csrf(late)}, status=409)
    assert store.get(site.engine, c.id).backers == 1 == backing.counted(site.engine, c.id)
    assert c.slug in site.reader().get("/api/campaigns?sort=closed").text

    news = site.mail("fan@example.org", "has closed").get_body(("plain",)).get_content()
    assert f"Won. {NOTE}" in " ".join(news.split())
    site.deliver()
    assert not [m for m in site.smtp.to(ORGANISER) if "has been won" in m.message["Subject"]]  # they did it

    # Closing twice is refused; the organiser's page still opens.
    organiser.post(f"/campaigns/{c.slug}/manage/close", {"csrf_token": csrf(organiser), "token": manage.split("=", 1)[1],
                                                          "outcome": "ended"}, status=409)
    assert "closed: won" in organiser.get(manage).text


def test_closing_without_a_note_and_the_checks_on_the_form(site):
    c = site.published()
    manage = manage_link(site, c)
    token = manage.split("token=", 1)[1]
    organiser = site.reader("203.0.113.5")
    fields = {"token": token, "outcome": "ended", "note": ""}
    path = f"/campaigns/{c.slug}/manage/close"

    webtest.TestApp(site.app).post(path, fields, status=403)  # no cookie, no CSRF token
    organiser.post(path, dict(fields, csrf_token="forged"), status=403)
    wrong = token[:-1] + ("1" if token.endswith("0") else "0")  # one character off
    organiser.post(path, dict(fields, csrf_token=csrf(organiser), token=wrong), status=404)
    other = site.published(title="Somebody else's campaign")
    organiser.post(f"/campaigns/{other.slug}/manage/close", dict(fields, csrf_token=csrf(organiser)), status=404)
    organiser.post(path, dict(fields, csrf_token=csrf(organiser), outcome="maybe"), status=400)
    res = organiser.post(path, dict(fields, csrf_token=csrf(organiser), note="n" * (decisions.NOTE_CHARS + 1)),
                         status=422)
    assert "The note is 501 characters: keep it to 500." in res.text
    assert re.search(r'<input id="note"[^>]*aria-invalid="true"', res.text)
    assert store.get(site.engine, c.id).status == "open" and log_lines(site, "close_campaign") == []

    form = close_form(organiser.get(manage), c)
    form.submit(status=303)  # "Ended", no note
    after = store.get(site.engine, c.id)
    assert (after.status, after.outcome, after.reason) == ("closed", "ended", "")
    [line] = log_lines(site, "close_campaign")
    assert line["actor"] == "Jo Marsh (organiser)" and line["reason"] == "" and line["target_label"] == c.title
    page = site.reader().get(f"/campaigns/{c.slug}").text
    assert "<p class=\"notice\">Closed by its organiser.</p>" in page
    assert store.get(site.engine, other.id).status == "open"


@pytest.mark.parametrize("status", ["pending", "closed"])
def test_only_an_open_campaign_can_be_closed_by_its_organiser(site, status):
    if status == "pending":
        c = store.propose(site.engine, site.settings, title="Not yet published", idea="x", ask="y", organiser="Jo Marsh",
                          contact=ORGANISER)
        store.confirm_contact(site.engine, site.settings, c.slug,
                              store.confirm_token(site.settings, c, store.utcnow()))
        manage = link_in(site.mail(ORGANISER, "private link"), f"/campaigns/{c.slug}/manage?token=")
    else:
        c = site.published()
        manage = manage_link(site, c)
        moderation.close_campaign(site.engine, site.settings, c.id, actor="mod@example.org", reason="Done")
    organiser = site.reader("203.0.113.5")
    assert f'action="/campaigns/{c.slug}/manage/close"' not in organiser.get(manage).text
    organiser.post(f"/campaigns/{c.slug}/manage/close", {"csrf_token": csrf(organiser), "outcome": "won",
                                                         "token": manage.split("token=", 1)[1]}, status=409)
    assert store.get(site.engine, c.id).status == status
