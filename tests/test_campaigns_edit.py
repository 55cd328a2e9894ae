"""Moderators edit a campaign's words (issue 13): the form on the campaign's page (the real app through
WebTest, signed in, CSRF-protected) and `hustings campaigns edit` (in-process, exit codes checked),
both through community.moderation.edit_campaign, the one door, which writes the public log line
naming the fields changed and the reason. The words are checked as a proposal's are; the address
stays. On SQLite and PostgreSQL, with real mail to a loopback SMTP server.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time

import webtest

from aggregator import db
from aggregator.settings import Settings
from community import moderation, moderation_log
from community.campaigns import store
from tests.test_campaigns import FIELDS, MOD, ORGANISER, SITE_URL, csrf, doors, form_for, log_lines, site, utcnow
from web.app import make_app

__all__ = ["doors", "site"]  # the fixtures, shared with test_campaigns.py

NEW_TITLE = "Reopen the Mill Lane library for good"
NEW_IDEA = "The library closed in May.\n\nIt was the only one for three miles."


def edit_form(page, c):
    return form_for(page, f"/moderate/campaigns/{c.id}/edit")


def test_a_moderator_edits_the_words_from_the_campaigns_page(site, doors):
    c = site.published()
    doors.clear()  # approving it was logged too
    mod = site.moderator()
    form = edit_form(mod.get(f"/campaigns/{c.slug}"), c)
    assert form["title"].value == FIELDS["title"] and form["query"].value == "library"  # filled in as they are
    assert form["csrf_token"].value and form["reason"].value == ""
    form["title"], form["idea"], form["reason"] = NEW_TITLE, NEW_IDEA, "Rule 3: a typo in the title"
    res = form.submit(status=303)
    assert res.headers["Location"].endswith(f"/campaigns/{c.slug}#edit")

    after = store.get(site.engine, c.id)
    assert (after.title, after.idea, after.slug) == (NEW_TITLE, NEW_IDEA, c.slug)  # the address stays
    assert (after.ask, after.ask_of, after.query) == (c.ask, c.ask_of, c.query)
    [line] = log_lines(site, "edit_campaign")
    assert line["actor"] == MOD and line["target_label"] == NEW_TITLE and line["target_type"] == "campaign"
    assert line["reason"] == "changed the title and the idea: Rule 3: a typo in the title"
    assert doors == [("edit_campaign", "edit_campaign")]  # through the one door

    r = site.reader()
    page = r.get(f"/campaigns/{c.slug}").text
    assert f'<h1 id="campaign-h">{NEW_TITLE}' in page and "three miles" in page
    assert 'action="/moderate/campaigns/' not in page  # readers get no form
    log = r.get("/moderation").text
    assert f'edit campaign: <a href="/campaigns/{c.id}">{NEW_TITLE}</a>' in log
    assert "changed the title and the idea: Rule 3: a typo in the title" in log
    told = site.mail(ORGANISER, "A moderator edited your campaign").get_body(("plain",)).get_content()
    assert "changed the title and the idea" in told and "Rule 3: a typo in the title" in told
    assert f"{SITE_URL}/campaigns/{c.slug}/manage?token=" in told


def test_bad_words_re_show_the_form_with_the_field_named_and_change_nothing(site):
    c = site.published()
    mod = site.moderator()
    for field, value, words in [
        ("title", "", "Give a title"),
        ("title", "Tiny", "Give a title of five characters or more"),
        ("title", "x" * 201, "Title is 201 characters: keep it to 200"),
        ("idea", "   ", "Give the idea"),
        ("ask_of", "y" * 301, "Ask of is 301 characters: keep it to 300"),
        ("query", "NOT library", "The search: a search needs at least one word"),
        ("reason", "", "Say why the words are changed"),
    ]:
        form = edit_form(mod.get(f"/campaigns/{c.slug}"), c)  # a fresh form each time
        form["reason"] = "Rule 3"
        form[field] = value  # past the browser's own checks (required, maxlength)
        res = form.submit(status=400)
        assert words in res.text, (field, re.findall(r"role=\"alert\"[^>]*>[^<]*<", res.text))
        marked = re.findall(r'<(?:input|textarea) id="([a-z-]+)"[^>]*aria-invalid="true"', res.text)
        assert marked == ["edit-" + field.replace("_", "-")], (field, marked)
        again = edit_form(res, c)
        assert again[field].value in (value, value.strip())  # what was typed is kept
        assert again["csrf_token"].value
    form = edit_form(mod.get(f"/campaigns/{c.slug}"), c)
    form["reason"] = "nothing really"
    assert "Nothing to change" in form.submit(status=400).text
    assert store.get(site.engine, c.id) == c and log_lines(site, "edit_campaign") == []


def test_the_form_needs_a_moderator_and_its_csrf_token(site):
    c = site.published()
    mod = site.moderator()
    fields = {"title": NEW_TITLE, "idea": c.idea, "ask": c.ask, "ask_of": c.ask_of, "query": c.query, "reason": "Rule 3"}
    webtest.TestApp(site.app).post(f"/moderate/campaigns/{c.id}/edit", fields, status=403)  # no cookie, no token
    mod.post(f"/moderate/campaigns/{c.id}/edit", dict(fields, csrf_token="forged"), status=403)
    reader = site.reader("198.51.100.50")
    res = reader.post(f"/moderate/campaigns/{c.id}/edit", dict(fields, csrf_token=csrf(reader)), status=303)
    assert "/login" in res.headers["Location"]  # a reader's own token is no moderator's
    assert store.get(site.engine, c.id).title == FIELDS["title"] and log_lines(site, "edit_campaign") == []
    mod.post(f"/moderate/campaigns/{c.id + 99}/edit", dict(fields, csrf_token=csrf(mod)), status=404)


def test_pending_campaigns_are_edited_by_number_and_refused_ones_not_at_all(site):
    c = store.propose(site.engine, site.settings, **FIELDS)
    mod = site.moderator()
    page = mod.get(f"/campaigns/{c.slug}")  # moderators see a pending campaign, with the form
    form = edit_form(page, c)
    form["ask"], form["reason"] = "Fund it again for ten years", "Rule 4: a member's phone number in it"
    form.submit(status=303)
    [line] = log_lines(site, "edit_campaign")
    assert line["target_label"] == f"campaign proposal {c.id}" and line["target_type"] == "proposal"
    assert line["reason"] == "changed what it asks: Rule 4: a member's phone number in it"
    assert FIELDS["title"] not in site.reader().get("/moderation").text  # unpublished words stay out of the log
    site.deliver()
    assert not [m for m in site.smtp.to(ORGANISER) if "edited" in m.message["Subject"]]  # unconfirmed: not written to

    moderation.reject_campaign(site.engine, site.settings, c.id, actor=MOD, reason="Rule 1")
    assert f'action="/moderate/campaigns/{c.id}/edit"' not in mod.get(f"/campaigns/{c.slug}").text
    res = mod.post(f"/moderate/campaigns/{c.id}/edit", {"csrf_token": csrf(mod), "title": NEW_TITLE,
                                                         "reason": "Rule 3"}, status=409)
    assert "was refused" in res.text


def test_cached_pages_show_the_new_words(site):
    """Every edit takes a change number, which is what makes cached pages render again."""
    c = site.published()
    cached = webtest.TestApp(make_app(dataclasses.replace(site.settings, page_cache_s=60)))
    assert FIELDS["title"] in cached.get("/campaigns").text and FIELDS["title"] in cached.get("/api/campaigns").text
    moderation.edit_campaign(site.engine, site.settings, c.id, actor=MOD, reason="Rule 3", title=NEW_TITLE)
    time.sleep(1.1)  # the cache reads the change counter at most once a second (web/cache.py)
    assert NEW_TITLE in cached.get("/campaigns").text
    assert [x["title"] for x in cached.get("/api/campaigns").json["campaigns"]] == [NEW_TITLE]


def test_the_command_edits_through_the_one_door_and_bad_words_exit_2(cli, smtp, doors):
    settings = Settings(data_dir=cli.data_dir, site_url=SITE_URL)
    engine = db.make_engine(settings)
    db.migrate(engine)
    c = store.propose(engine, settings, **FIELDS)
    store.confirm_contact(engine, settings, c.slug, store.confirm_token(settings, c, utcnow()))
    moderation.approve_campaign(engine, settings, c.id, actor=MOD)
    lines = len(moderation_log.moderation_entries(engine, limit=100))
    doors.clear()  # approving it was logged too

    for argv, words in [
        (("--title", ""), "hustings: --title: give a title"),
        (("--title", "Tiny"), "hustings: --title: give a title of five characters or more"),
        (("--ask", " "), "hustings: --ask: give what the campaign asks for"),
        (("--ask-of", "z" * 301), "hustings: --ask-of: ask of is 301 characters"),
        (("--query", "NOT library"), "hustings: --query: the search: a search needs at least one word"),
        (("--title", FIELDS["title"]), "hustings: nothing to change: the words given are the campaign's own"),
        ((), "hustings: give what to change: --title, --idea, --ask, --ask-of, --query"),
    ]:
        _, err = cli("campaigns", "edit", c.slug, *argv, "--reason", "Rule 3", expect=2)
        assert err.startswith(words) and len(err.strip().splitlines()) == 1, (argv, err)
    _, err = cli("campaigns", "edit", c.slug, "--title", NEW_TITLE, "--reason", " ", expect=2)
    assert err.startswith("hustings: --reason: say why the words are changed")
    _, err = cli("campaigns", "edit", "no-such-campaign", "--title", NEW_TITLE, "--reason", "x", expect=1)
    assert "no-such-campaign" in err
    assert store.get(engine, c.id) == store.by_slug(engine, c.slug) and store.get(engine, c.id).title == FIELDS["title"]
    assert len(moderation_log.moderation_entries(engine, limit=100)) == lines and doors == []

    out, _ = cli("campaigns", "edit", c.slug, "--title", NEW_TITLE, "--ask-of", "", "--query", "library OR libraries",
                 "--reason", "Rule 3: a typo", "--by", "Sam")
    assert out.startswith(f"campaign {c.id} edited (title, ask_of, query): {NEW_TITLE!r}; its page: /campaigns/{c.slug}")
    after = store.get(engine, c.id)
    assert (after.title, after.ask_of, after.query, after.slug) == (NEW_TITLE, "", "library OR libraries", c.slug)
    line = moderation_log.moderation_entries(engine, limit=1)[0]
    assert (line["action"], line["actor"], line["target_label"]) == ("edit_campaign", "Sam", NEW_TITLE)
    assert line["reason"] == "changed the title, whom it asks and the search: Rule 3: a typo"
    out, _ = cli("campaigns", "edit", str(c.id), "--idea", NEW_IDEA, "--reason", "Rule 4", "--json")
    assert json.loads(out)["idea"] == NEW_IDEA and json.loads(out)["slug"] == c.slug
    assert moderation_log.moderation_entries(engine, limit=1)[0]["actor"] == "command line"
    assert doors == [("edit_campaign", "edit_campaign")] * 2  # the same door as the form's
    engine.dispose()
