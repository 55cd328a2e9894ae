"""The digest's content and dates (community/digest.py, digest_render.py) on a real database."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest

from aggregator import post_store, ranking
from aggregator.db import utcnow
from aggregator.errors import HustingsError
from community import digest, digest_render, moderation, submissions
from tests.mailsite import MailSite


@pytest.fixture
def site(tmp_path, smtp):
    s = MailSite(tmp_path / "data", smtp, web=False)
    s.blog("Valley Branch", "Local parties", [f"Valley post {i}" for i in range(6)])
    s.blog("Fabian Review", "Think tanks", ["A fairer settlement", "Housing at scale"])
    s.blog("Unions Together", "Trade unions", ["Pay talks resume"])
    yield s
    s.close()


def test_posts_follow_the_front_page_ranking_with_its_per_blog_caps(site):
    issue = digest.build(site.engine, site.settings, "daily")
    ids = [p["id"] for p in issue.content["posts"]]
    candidates = digest._candidates(site.engine, issue.starts_at, issue.ends_at)
    expected = [p.id for p in ranking.rank(candidates, now=issue.ends_at, window_h=site.settings.rank_window_h)]
    assert ids == expected[:len(ids)] and len(ids) == 9
    blogs = [p["blog"] for p in issue.content["posts"][:3]]
    assert len(set(blogs)) == 3  # the top of the issue is not one prolific blog
    assert issue.subject.startswith("Hustings daily, ") and issue.content["posts"][0]["title"] in issue.subject


def test_picks_polls_new_blogs_and_the_editors_note(site, smtp):
    post_id = next(p["id"] for p in post_store.list_posts(site.engine) if p["title"] == "Housing at scale")
    moderation.feature_post(site.engine, post_id, actor="jo@hustings.example")
    moderation.create_poll(site.engine, actor="jo@hustings.example", question="Who should lead the council group?",
                           options=["Ayesha", "Brian"])
    sub = submissions.create(site.engine, url="http://127.0.0.1:9/new/feed.xml",
                             feed_url="http://127.0.0.1:9/new/feed.xml", name="Rural Reds", contact="",
                             note="", check={"valid": True})
    submissions.decide(site.engine, sub["id"], actor="jo@hustings.example", approve=True)
    key = digest.current_key(site.settings, "daily", utcnow())
    digest.save_note(site.engine, "daily", key, "Conference week.\n\nThree things to read.", "jo@hustings.example")
    issue = digest.build(site.engine, site.settings, "daily")
    c = issue.content
    assert [p["title"] for p in c["picks"]] == ["Housing at scale"]
    assert "Housing at scale" not in [p["title"] for p in c["posts"]]  # in its own slot, not twice
    assert [p["question"] for p in c["polls"]] == ["Who should lead the council group?"]
    assert [b["title"] for b in c["blogs"]] == ["Rural Reds"]
    assert c["note"] == "Conference week.\n\nThree things to read."
    subject, text, html = digest_render.render(site.settings, issue, (), "1.abc")
    for part in (text, html):
        for words in ("From the editors", "Conference week.", "Housing at scale", "Who should lead the council group?",
                      "Rural Reds", "Valley post 0", "/subscribe/manage?token=1.abc"):
            assert words in part, words
    with pytest.raises(HustingsError, match="already built"):
        digest.save_note(site.engine, "daily", key, "too late", "jo@hustings.example")


def test_the_html_part_is_self_contained_and_safe(site):
    post_store.save_posts(site.engine, site.feeds["Unions Together"], [post_store_post(
        site, "Unions Together", '<script>alert(1)</script> & "quotes"')])
    issue = digest.build(site.engine, site.settings, "daily")
    _, text, html = digest_render.render(site.settings, issue, (), "1.abc")
    assert "<script" not in html.lower() and "&lt;script&gt;" in html
    assert "<img" not in html.lower() and "@import" not in html and "<link" not in html.lower()
    assert 'name="color-scheme" content="light dark"' in html and "prefers-color-scheme: dark" in html
    resources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert all(r.startswith(("https://hustings.example", "http://127.0.0.1:9/")) for r in resources), resources
    assert all(len(line) <= 80 for line in text.splitlines() if "://" not in line)


def post_store_post(site, blog: str, title: str):
    from aggregator.models import Post

    feed = site.feeds[blog]
    return Post(feed.id, "odd", "http://127.0.0.1:9/odd", title, "<p>x</p>", published=utcnow(), identity="g:odd")


def test_readers_who_follow_categories_get_those_posts(site):
    issue = digest.build(site.engine, site.settings, "daily")
    mine = digest_render.for_reader(issue, ("Think tanks",))
    assert {p["blog"] for p in mine["posts"]} == {"Fabian Review"}
    subject, _, _ = digest_render.render(site.settings, issue, ("Think tanks",), "1.abc")
    assert mine["posts"][0]["title"] in subject
    none = digest_render.for_reader(issue, ("Youth",))
    assert none["posts"] == [] and "A quiet day in the categories you follow" in digest_render.render(
        site.settings, issue, ("Youth",), "1.abc")[1]


def test_issues_chain_without_gaps_or_repeats(site):
    now = utcnow()
    today = digest.local_today(site.settings, now)
    first = digest.build(site.engine, site.settings, "daily", digest.key_for("daily", today), now)
    assert first.ends_at == now and first.starts_at == digest.send_moment(site.settings, today) - timedelta(days=1)
    tomorrow = digest.key_for("daily", today + timedelta(days=1))
    start, _ = digest.window(site.engine, site.settings, "daily", tomorrow, now + timedelta(hours=1))
    assert start == first.ends_at  # the next issue picks up where this one stopped
    again = digest.build(site.engine, site.settings, "daily", first.key, now + timedelta(hours=3))
    assert again == first  # built once


def test_dates_and_keys():
    from aggregator.settings import Settings

    settings = Settings(digest_send_time="07:00", digest_timezone="Europe/London")
    assert digest.send_moment(settings, date(2026, 7, 1)) == datetime(2026, 7, 1, 6, 0, tzinfo=timezone.utc)  # BST
    assert digest.send_moment(settings, date(2026, 12, 1)) == datetime(2026, 12, 1, 7, 0, tzinfo=timezone.utc)
    assert digest.key_for("weekly", date(2026, 12, 4)) == "2026-W49"
    assert digest.publication_day("weekly", "2026-W49") == date(2026, 11, 30)
    monday_after = datetime(2026, 11, 30, 7, 30, tzinfo=timezone.utc)
    assert digest.due_key(settings, "weekly", monday_after) == "2026-W49"
    assert digest.due_key(settings, "weekly", monday_after + timedelta(days=1)) is None
    assert digest.due_key(settings, "daily", datetime(2026, 12, 4, 6, 59, tzinfo=timezone.utc)) is None
    assert digest.due_key(settings, "daily", datetime(2026, 12, 4, 7, 1, tzinfo=timezone.utc)) == "2026-12-04"
    assert digest.next_key(settings, "daily", datetime(2026, 12, 4, 8, 0, tzinfo=timezone.utc)) == "2026-12-05"
    assert digest.next_key(settings, "weekly", datetime(2026, 12, 4, 8, 0, tzinfo=timezone.utc)) == "2026-W50"
    for bad in ("2026-13-01", "yesterday", "2026-W60"):
        with pytest.raises(HustingsError):
            digest.publication_day("weekly" if "W" in bad else "daily", bad)


def test_the_worker_sends_each_issue_once_at_its_time(site, smtp):
    site.confirmed("early@example.org")
    today = digest.local_today(site.settings, utcnow()) + timedelta(days=1)  # the posts are in its window
    moment = digest.send_moment(site.settings, today)
    assert [d for d in digest.send_due(site.engine, site.settings, moment - timedelta(minutes=1))
            if d[0].period == "daily"] == []
    [(issue, queued)] = [d for d in digest.send_due(site.engine, site.settings, moment + timedelta(minutes=1))
                         if d[0].period == "daily"]
    assert queued == 1 and issue.key == digest.key_for("daily", today)
    assert [d for d in digest.send_due(site.engine, site.settings, moment + timedelta(minutes=2))
            if d[0].period == "daily"] == []
    site.deliver()
    assert len(smtp.to("early@example.org")) == 1


def test_nothing_happened_means_no_issue(tmp_path, smtp):
    empty = MailSite(tmp_path / "empty", smtp, web=False)
    moment = digest.send_moment(empty.settings, digest.local_today(empty.settings, utcnow()))
    assert digest.send_due(empty.engine, empty.settings, moment + timedelta(minutes=1)) == []
    assert digest.archive(empty.engine) == []
    empty.close()
