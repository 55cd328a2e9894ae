"""The digest's HTML part in real Chromium, at phone width, light and dark: screenshots kept in
tests/artefacts/screenshots/, axe-core's colour-contrast rule with no violation, nothing
fetched from anywhere (no images, fonts or pixels: it reads the same with images off)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator import post_store
from community import digest, digest_render, moderation, submissions
from community.campaigns import backing, store
from tests.browser import install_chromium
from tests.browser.conftest import CHROMIUM_FLAGS, PHONE
from tests.conftest import free_port
from tests.mailsite import MailSite
from tests.smtp_server import SmtpServer

ARTEFACTS = Path(__file__).resolve().parent / "artefacts" / "screenshots"


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    try:
        path = install_chromium.ensure()
    except install_chromium.InstallError as exc:
        pytest.fail(f"this test needs Chromium: {exc}", pytrace=False)
    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS, headless=True, chromium_sandbox=False)
    yield browser
    browser.close()
    pw.stop()


@pytest.fixture
def html(tmp_path):
    smtp = SmtpServer(free_port())
    site = MailSite(tmp_path / "data", smtp, web=False)
    site.blog("The Association of Ward Branch Secretaries and Friends of the Municipal Baths", "Local parties",
              ["Canvassing in the rain on the Moorside estate: forty doors, four new members and a dog",
               "Why the bus cuts matter more than the budget headline"])
    site.blog("Fabian Review", "Think tanks", ["A fairer settlement for local government finance"])
    post = next(p for p in post_store.list_posts(site.engine) if p["title"].startswith("A fairer"))
    moderation.feature_post(site.engine, post["id"], actor="jo@hustings.example")
    moderation.create_poll(site.engine, actor="jo@hustings.example", question="Who should lead the group?",
                           options=["Ayesha", "Brian"])
    sub = submissions.create(site.engine, url="http://127.0.0.1:9/n/feed.xml", feed_url="http://127.0.0.1:9/n/feed.xml",
                             name="Rural Reds", contact="", note="", check={"valid": True})
    submissions.decide(site.engine, sub["id"], actor="jo@hustings.example", approve=True, category="Local parties")
    c = store.propose(site.engine, site.settings, title="Reopen the Mill Lane library and its reading room",
                      idea="It closed in May.", ask="Fund it again for five years", ask_of="Millbrook council",
                      organiser="Jo Marsh", contact="jo@example.org")
    store.confirm_contact(site.engine, site.settings, c.slug, store.confirm_token(site.settings, c, digest.utcnow()))
    c = moderation.approve_campaign(site.engine, site.settings, c.id, actor="jo@hustings.example")
    backing.back(site.engine, site.settings, c, "reader-1", "192.0.2.1")
    key = digest.current_key(site.settings, "daily", digest.utcnow())
    digest.save_note(site.engine, "daily", key, "Conference week: three things to read before Sunday.", "jo")
    issue = digest.build(site.engine, site.settings, "daily")
    _, _, body = digest_render.render(site.settings, issue, (), "1.0123456789abcdef")
    assert "Campaigns gathering backers" in body  # its colours are checked with the rest
    yield body
    site.close()
    smtp.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_html_digest_reads_well_on_a_phone(chromium, html, scheme):
    from axe_playwright_python.sync_playwright import Axe

    context = chromium.new_context(viewport=PHONE, color_scheme=scheme, java_script_enabled=True)
    requests = []
    context.route("**/*", lambda r: (requests.append(r.request.url), r.abort()))
    page = context.new_page()
    page.set_content(html, wait_until="load")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"digest-mail-phone-{scheme}.png"), full_page=True)
    assert requests == []  # no image, font, stylesheet or pixel: the same with images off
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scroll
    result = Axe().run(page, options={"runOnly": ["color-contrast"]}).response
    assert result["violations"] == [], [n["html"] for v in result["violations"] for n in v["nodes"]]
    background = page.evaluate("getComputedStyle(document.querySelector('.sheet')).backgroundColor")
    assert background == ("rgb(22, 22, 22)" if scheme == "dark" else "rgb(255, 255, 255)")
    context.close()
