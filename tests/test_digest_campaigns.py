"""Campaigns gathering backers in the digest (issue 13), through the real path: the worker's job
builds and queues the issue (community/digest.py), the one delivery path sends it to a loopback
SMTP server (tests/smtp_server.py), and the test reads both parts of the message that server
accepted. Campaigns are proposed, confirmed, approved and backed through their own functions,
at chosen times around the issue's send time, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
import sqlalchemy as sa

from aggregator.db import campaign_backings, utcnow
from community import digest, moderation
from community.campaigns import backing, store
from tests.mailsite import SITE_URL, MailSite

MOD = "mod@hustings.example"
READER = "reader@example.org"
HOSTILE = '<script>alert("x")</script> & <b>Co</b>'
SECTION = "Campaigns gathering backers"


@pytest.fixture
def site(tmp_path, smtp, database):
    s = MailSite(tmp_path / "data", smtp)
    yield s
    s.close()


def moment_of(site) -> object:
    """A minute after yesterday's send time: the worker's job sends yesterday's daily issue then,
    covering the day before it."""
    day = digest.local_today(site.settings, utcnow()) - timedelta(days=1)
    return digest.send_moment(site.settings, day) + timedelta(minutes=1)


def campaign(site, title: str, *, approve: bool = True, ask_of: str = "Millbrook council") -> store.Campaign:
    n = len(store.listing(site.engine))
    c = store.propose(site.engine, site.settings, title=title, idea="Why it matters.",
                      ask="Fund it again for **five** years", ask_of=ask_of, organiser="Jo Marsh",
                      contact=f"organiser{n}@example.org")
    assert store.confirm_contact(site.engine, site.settings, c.slug,
                                 store.confirm_token(site.settings, c, utcnow()))[0] == "confirmed"
    return moderation.approve_campaign(site.engine, site.settings, c.id, actor=MOD) if approve else c


def back(site, c: store.Campaign, *times) -> None:
    for at in times:
        backing.back(site.engine, site.settings, c, f"reader-{c.id}-{at.timestamp()}", "192.0.2.1", now=at)


def sent_issue(site, smtp, moment) -> tuple[digest.Issue, str, str]:
    """The daily issue the worker sends at `moment`, as the reader's mail client gets it: (issue, text, HTML)."""
    [(issue, queued)] = [d for d in digest.send_due(site.engine, site.settings, moment) if d[0].period == "daily"]
    assert queued == 1
    site.deliver()
    [captured] = smtp.to(READER)
    message = captured.message
    text, html = (message.get_body((kind,)).get_content().replace("\r\n", "\n") for kind in ("plain", "html"))
    return issue, text, html


def section(text: str) -> str:
    """The plain text's campaigns section, up to the next heading or the signature."""
    assert SECTION in text, text
    return text.split(SECTION, 1)[1].split("New on the site", 1)[0].split("-- \n", 1)[0]


def test_rising_campaigns_backed_in_the_window_are_in_both_parts_escaped_and_linked(site, smtp):
    site.confirmed(READER)
    moment = moment_of(site)
    hours = [moment - timedelta(hours=h) for h in (2, 3, 4, 5, 6)]
    long_ago = [moment - timedelta(days=10 + d) for d in range(6)]

    library = campaign(site, "Reopen the Mill Lane library")
    back(site, library, *hours[:3], *long_ago[:2])  # 3 this week, 5 in all: first
    buses = campaign(site, "Save the number 9 bus")
    back(site, buses, *hours[:2])  # 2 this week: second
    hostile = campaign(site, HOSTILE, ask_of="")
    back(site, hostile, hours[0], *long_ago[:3])  # 1 this week, 4 in all: third
    crowded_out = campaign(site, "A fourth campaign, crowded out")
    back(site, crowded_out, hours[1])  # 1 this week, 1 in all: below the hostile one, past the three shown
    quiet = campaign(site, "An old favourite with no recent backers")
    back(site, quiet, *long_ago)  # six backers, none in the window
    closed = campaign(site, "A campaign closed after its backers came")
    back(site, closed, *hours)
    moderation.close_campaign(site.engine, site.settings, closed.id, actor=MOD, reason="Won", outcome="won")
    pending = campaign(site, "A proposal no moderator has approved", approve=False)
    with site.engine.begin() as conn:  # backs the site would refuse: only the status keeps it out
        for n, at in enumerate(hours):
            conn.execute(sa.insert(campaign_backings).values(campaign_id=pending.id, reader=f"sneaky-{n}", ip_hash="",
                                                             listed_name="", created_at=at))

    issue, text, html = sent_issue(site, smtp, moment)
    assert [c["title"] for c in issue.content["campaigns"]] == ["Reopen the Mill Lane library",
                                                                "Save the number 9 bus", HOSTILE]
    assert [(c["backers"], c["recent"]) for c in issue.content["campaigns"]] == [(5, 3), (2, 2), (4, 1)]

    shown = section(text)
    assert shown.index("Reopen the Mill Lane library") < shown.index("Save the number 9 bus") < shown.index(HOSTILE)
    assert "5 backers · 3 new this week" in shown and "2 backers · 2 new this week" in shown
    assert "Asks Millbrook council: Fund it again for five years" in shown  # Markdown read as text
    for c in (library, buses, hostile):
        assert f"  {SITE_URL}/campaigns/{c.slug}\n" in shown  # absolute, on a line of its own
    html_section = html.split(SECTION, 1)[1]
    assert f'<a href="{SITE_URL}/campaigns/{library.slug}"' in html_section
    assert "5 backers · 3 new this week" in html_section
    assert "<script" not in html.lower() and "<b>Co" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;Co&lt;/b&gt;" in html_section
    for left_out in (crowded_out, quiet, closed, pending):
        assert left_out.title not in text and left_out.title not in html, left_out.title
        assert left_out.slug not in text and left_out.slug not in html, left_out.slug

    # The archive's page of the issue lists them too, escaped the same way.
    page = site.reader().get(issue.path).text
    assert SECTION in page and f'<a href="{SITE_URL}/campaigns/{buses.slug}">Save the number 9 bus</a>' in page
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page


def test_without_backers_in_the_window_the_section_is_left_out(site, smtp):
    site.confirmed(READER)
    moment = moment_of(site)
    key = digest.key_for("daily", digest.local_today(site.settings, moment))
    digest.save_note(site.engine, "daily", key, "Conference week: three things to read.", MOD)
    quiet = campaign(site, "An old favourite with no recent backers")
    back(site, quiet, *(moment - timedelta(days=9 + d) for d in range(4)))
    earlier = campaign(site, "Backed earlier in the week")  # rising this week, but not in this day's window
    back(site, earlier, moment - timedelta(days=3), moment - timedelta(days=2))
    campaign(site, "A new campaign nobody has backed")
    rising = store.directory(site.engine, "rising", now=moment)[0]
    assert rising[0][0].title == "Backed earlier in the week"  # first in the directory's week, yet not today's
    issue, text, html = sent_issue(site, smtp, moment)
    assert issue.content["campaigns"] == []
    assert "Conference week" in text and "Conference week" in html  # the issue went out
    assert SECTION not in text and SECTION not in html
    for title in ("An old favourite", "Backed earlier", "nobody has backed"):
        assert title not in text and title not in html, title


def test_campaigns_alone_make_an_issue(site, smtp):
    """A day with no posts but a campaign gaining backers is worth an issue (the worker skips empty days)."""
    site.confirmed(READER)
    moment = moment_of(site)
    c = campaign(site, "Reopen the Mill Lane library")
    back(site, c, moment - timedelta(hours=1))
    issue, text, _ = sent_issue(site, smtp, moment)
    assert issue.content["posts"] == [] and "1 backer · 1 new this week" in section(text)


def test_issues_built_before_campaigns_joined_the_digest_still_render(site):
    """The archive keeps issues as they were built; one without a campaigns key renders without the section."""
    from community import digest_render

    issue = digest.build(site.engine, site.settings, "daily")
    old = dataclasses.replace(issue, content={k: v for k, v in issue.content.items() if k != "campaigns"})
    _, text, html = digest_render.render(site.settings, old, (), "1.abc")
    assert SECTION not in text and SECTION not in html
