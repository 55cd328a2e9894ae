"""Campaigns in real Chromium with JavaScript off: an organiser proposes a campaign and confirms
their address from the mail a loopback SMTP server received, a moderator approves it, a reader
backs it (listed by name, with updates by mail) and reads it, and the organiser posts an update
from their private link that the reader then reads.

Every step is a plain form. Each page is checked as test_community_flows.py checks its pages
(one h1, the stylesheet applied, nothing sideways on a phone, no console, CSP or page error,
nothing asked of another host, a screenshot in tests/artefacts/screenshots/), and axe-core finds
no serious or critical violation on the proposal form, the moderators' queue, the directory, a
campaign's page (with its chart and highlighted posts), and the organiser's page.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from aggregator import db, feed_store, post_store
from aggregator.models import Post
from aggregator.settings import Settings
from community import accounts, mailer
from index import writer
from tests.conftest import free_port
from tests.smtp_server import SmtpServer

from .conftest import DESKTOP, PHONE
from .test_community_flows import MODERATOR, PASSWORD, check_page, click_through, path_of

SITE_URL = "https://hustings.example"
ORGANISER = "sam.organiser@example.org"
BACKER = "reader@example.org"


@dataclass
class CampaignSite:
    base: str
    settings: Settings
    engine: object
    smtp: SmtpServer

    def mail_to(self, address: str, subject_has: str) -> str:
        """The plain text of the newest message to `address` about `subject_has`, delivered first."""
        report = mailer.deliver(self.engine, self.settings)
        assert not report.error and not report.failed, report
        found = [m.message for m in self.smtp.to(address) if subject_has in m.message["Subject"]]
        assert found, [m.message["Subject"] for m in self.smtp.to(address)]
        return found[-1].get_body(("plain",)).get_content()

    def link(self, text: str, path: str) -> str:
        found = re.search(rf"{re.escape(SITE_URL)}({re.escape(path)}\S*)", text)
        assert found, (path, text)
        return found.group(1)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Overrides the public pages' site: a fresh database with a moderator and a blog whose posts
    talk about libraries (indexed), served on a real socket, sending mail to a loopback server."""
    from web.server import serve_threaded

    smtp = SmtpServer(free_port())
    data = tmp_path_factory.mktemp("campaign-site") / "data"
    settings = Settings(data_dir=data, allow_networks=("127.0.0.1/32",), log_level="WARNING", page_cache_s=0,
                        site_url=SITE_URL, smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_security="none",
                        mail_from="Hustings <news@hustings.example>", mail_rate_per_s=0)
    engine = db.make_engine(settings)
    db.migrate(engine)
    accounts.add_moderator(engine, MODERATOR, PASSWORD)
    feed, _ = feed_store.add_feed(engine, "http://127.0.0.1/valley/feed.xml", title="Valley Socialist",
                                  site_url="http://127.0.0.1/valley/", category="Local parties")
    now = datetime.now(UTC)
    post_store.save_posts(engine, feed, [
        Post(feed.id, f"g{n}", f"http://127.0.0.1/valley/{n}", title, f"<p>{title}: the branch's view.</p>",
             published=now - timedelta(hours=n + 1), identity=f"g:{n}", summary=f"{title}.")
        for n, title in enumerate(["The library must reopen", "Library hours cut again", "Bus fares rise"])])
    writer.sync(engine, settings)
    ready, holder, stop = threading.Event(), {}, threading.Event()

    def on_ready(srv):
        holder["port"] = srv.effective_port
        ready.set()

    thread = threading.Thread(target=serve_threaded, args=(settings, "127.0.0.1", 0),
                              kwargs={"threads": 8, "on_ready": on_ready, "stop": stop}, daemon=True)
    thread.start()
    assert ready.wait(30), "the site did not start within 30 s"
    yield CampaignSite(f"http://127.0.0.1:{holder['port']}", settings, engine, smtp)
    stop.set()
    thread.join(10)
    engine.dispose()
    smtp.close()


class _Documents(dict):
    """Each document's response headers, found by its address with or without a #fragment (the
    page after backing is /campaigns/SLUG?backed=yes#back; the response was for the part before #)."""

    def __getitem__(self, url: str):
        return super().__getitem__(url.split("#", 1)[0])


@pytest.fixture
def js_off(open_tab):
    def open_(viewport=PHONE):
        tab = open_tab(viewport=viewport, javascript=False)
        tab.documents = _Documents()
        tab.page.on("response", lambda r: tab.documents.__setitem__(r.url, r.headers)
                    if r.request.resource_type == "document" else None)
        return tab

    return open_


def test_propose_confirm_approve_back_and_read_a_campaign(js_off, site, artefacts):
    # The organiser proposes it (on a phone), with the house rules in front of them.
    organiser = js_off(PHONE)
    page = organiser.page
    organiser.goto("/campaigns/new")
    expect(page.locator("main h1")).to_have_text("Propose a campaign")
    expect(page.get_by_role("region", name="The house rules")).to_contain_text("whether or not they match party policy")
    check_page(organiser, artefacts, "campaign-new", axe=True)
    page.get_by_label("Title").fill("Reopen the Moorside library")
    page.get_by_label("The idea, in a few lines").fill("The library closed in May.\n\nIt was the **only** one.")
    page.get_by_label("What it asks for").fill("Fund it for five years")
    page.get_by_label("Of whom").fill("Moorside council")
    page.get_by_label("Your name, as the organiser").fill("Sam Okafor")
    page.get_by_label("Your e-mail address").fill(ORGANISER)
    page.get_by_label("A search that finds posts about it").fill("library")
    response = click_through(page, page.get_by_role("button", name="Propose the campaign"))
    assert response.status == 200 and path_of(page) == "/campaigns/sent", page.url
    check_page(organiser, artefacts, "campaign-sent")

    # The confirmation link, from the mail the SMTP server received.
    mail = site.mail_to(ORGANISER, "Confirm your campaign")
    organiser.goto(site.link(mail, "/campaigns/reopen-the-moorside-library/confirm?token="))
    expect(page.locator("main h1")).to_have_text("Address confirmed")
    manage = page.get_by_role("link", name="Manage “Reopen the Moorside library”")
    manage_path = manage.get_attribute("href").replace(SITE_URL, "")
    check_page(organiser, artefacts, "campaign-confirmed")

    # A moderator signs in and publishes it from the queue.
    mod = js_off(DESKTOP)
    mpage = mod.page
    mod.goto("/moderate/campaigns")
    assert path_of(mpage) == "/login?next=/moderate/campaigns", mpage.url
    mpage.get_by_label("E-mail address").fill(MODERATOR)
    mpage.get_by_label("Password").fill(PASSWORD)
    click_through(mpage, mpage.get_by_role("button", name="Sign in"))
    expect(mpage.locator("main h1")).to_have_text("Campaigns: moderation")
    proposal = mpage.locator("article.submission", has=mpage.get_by_role("heading", name=re.compile("Moorside")))
    expect(proposal).to_have_count(1)
    check_page(mod, artefacts, "campaign-moderate", axe=True)
    proposal.get_by_label("Note for the log").fill("Within the rules")
    response = click_through(mpage, proposal.get_by_role("button", name="Publish"))
    assert response.status == 200 and path_of(mpage) == "/moderate/campaigns", mpage.url
    expect(proposal).to_have_count(0)
    # The moderator's view of the published page: its forms (respond, link a poll, close, pin) checked too.
    mod.goto("/campaigns/reopen-the-moorside-library")
    expect(mpage.get_by_role("region", name="For moderators")).to_be_visible()
    expect(mpage.get_by_role("button", name="Pin to the campaign")).to_have_count(2)
    check_page(mod, artefacts, "campaign-moderator", axe=True)

    # A reader finds it in the directory and backs it, listed by name, asking for updates.
    reader = js_off(PHONE)
    rpage = reader.page
    reader.goto("/campaigns")
    check_page(reader, artefacts, "campaigns", axe=True)
    click_through(rpage, rpage.get_by_role("link", name="Reopen the Moorside library"))
    assert path_of(rpage) == "/campaigns/reopen-the-moorside-library", rpage.url
    expect(rpage.locator("main h1")).to_have_text("Reopen the Moorside library")
    writing = rpage.get_by_role("region", name="What the movement is writing about it")
    expect(writing.locator("mark").first).to_be_visible()
    expect(writing.locator("article")).to_have_count(2)  # the two library posts, not the bus fares
    check_page(reader, artefacts, "campaign", axe=True)
    rpage.get_by_label("List my name among the backers").check()
    rpage.get_by_label("The name to list").fill("Priya Shah")
    rpage.get_by_label(re.compile("^Your e-mail address, to get the organiser's updates")).fill(BACKER)
    response = click_through(rpage, rpage.get_by_role("button", name="Back this campaign"))
    assert response.status == 200 and "backed=yes" in path_of(rpage), rpage.url
    expect(rpage.get_by_role("status")).to_contain_text("Thank you: you back this campaign.")
    expect(rpage.locator("#backers")).to_have_text("1")
    expect(rpage.get_by_text("Backers who chose to be listed: Priya Shah.")).to_be_visible()
    expect(rpage.get_by_role("img", name="Backers over time")).to_be_visible()
    check_page(reader, artefacts, "campaign-backed", axe=True)
    reader.goto(site.link(site.mail_to(BACKER, "Confirm: updates"), "/campaigns/follow/confirm?token="))
    expect(rpage.locator("main h1")).to_have_text("You will get its updates")

    # The organiser posts an update from their private link; the reader reads it, and gets it by mail.
    organiser.goto(manage_path)
    expect(page.locator("main h1")).to_have_text("Manage “Reopen the Moorside library”")
    check_page(organiser, artefacts, "campaign-manage", axe=True)
    page.get_by_label(re.compile("^Post an update")).fill("We meet the council on **Thursday**.")
    click_through(page, page.get_by_role("button", name="Post the update"))
    expect(page.get_by_role("status")).to_contain_text("Your update is posted")
    reader.goto("/campaigns/reopen-the-moorside-library")
    updates = rpage.get_by_role("region", name="Updates from the organiser")
    expect(updates.locator("strong")).to_have_text("Thursday")
    assert "We meet the council on **Thursday**." in site.mail_to(BACKER, "An update from the campaign")

    # The public log says who published it and why.
    reader.goto("/moderation")
    row = rpage.locator("table.log tbody tr", has_text="approve campaign")
    expect(row).to_contain_text("Within the rules")
    expect(row.get_by_role("link", name="Reopen the Moorside library")).to_be_visible()
