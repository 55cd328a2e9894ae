"""The community's flows in real Chromium with JavaScript off: a blogger submits a blog,
a moderator signs in and approves it, readers vote in polls and read the results.

Every step is a plain form, so the browser contexts here have scripting disabled: what
works here works for a reader whose browser runs no script. The site is
``web.server.serve_threaded`` on 127.0.0.1 with its own small database (one moderator,
one blog already approved); the blogs submitted live on a loopback HTTP server
(tests/conftest.py's LoopbackServer), each a home page naming a posts feed and a
comments feed.

Each page of a flow is checked as tests/browser/test_pages.py checks the public pages:
its heading shows, it logs no console error (a CSP violation is one), throws nothing,
asks nothing of another host (requests off loopback are aborted and recorded), does not
scroll sideways, and leaves a full-page screenshot in tests/artefacts/screenshots/;
axe-core finds no serious or critical violation on /submit, the feed check, /login,
/moderate/queue, a poll and its results.

The site's page cache is off (page_cache_s=0): a cached /blogs may be up to a second
behind a moderator's decision by design (web/cache.py reads the site's version once a
second), and a test that had to wait that out would depend on timing. The cache's own
invalidation is tested in tests/test_submissions.py.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from aggregator import db, feed_store
from aggregator.settings import Settings
from community import accounts
from community.polls import Ballot, ballot_store
from community.polls import store as poll_store
from tests.conftest import LoopbackServer, rss

from .conftest import DESKTOP, PHONE
from .test_pages import FACTS, assert_no_serious_axe_violations

MODERATOR = "jo.whitfield@hustings.example"
PASSWORD = "correct horse battery staple"


# --- the site ------------------------------------------------------------------------


@dataclass
class Community:
    base: str
    settings: Settings
    engine: object


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Overrides the public pages' site (conftest.py): a fresh database with a moderator
    and one blog, served by waitress on a real socket. open_tab uses its ``base``."""
    from web.server import serve_threaded

    data = tmp_path_factory.mktemp("community-site") / "data"
    settings = Settings(data_dir=data, allow_networks=("127.0.0.1/32",), log_level="WARNING",
                        fetch_deadline_s=5.0, page_cache_s=0, site_url="https://hustings.example")
    engine = db.make_engine(settings)
    db.migrate(engine)
    accounts.add_moderator(engine, MODERATOR, PASSWORD)
    # A blog approved before the tests: /blogs is never empty.
    feed_store.add_feed(engine, "http://127.0.0.1/valley/feed.xml", title="Valley Socialist",
                   site_url="http://127.0.0.1/valley/", category="Local parties")

    ready, holder, stop = threading.Event(), {}, threading.Event()

    def on_ready(srv):
        holder["port"] = srv.effective_port
        ready.set()

    def run():
        try:
            serve_threaded(settings, "127.0.0.1", 0, threads=8, on_ready=on_ready, stop=stop)
        except BaseException as exc:  # noqa: BLE001 - shown by the wait below
            holder["error"] = exc
            ready.set()

    thread = threading.Thread(target=run, daemon=True, name="community-site")
    thread.start()
    assert ready.wait(30), "the site did not start within 30 s"
    if "error" in holder:
        raise holder["error"]
    yield Community(f"http://127.0.0.1:{holder['port']}", settings, engine)
    stop.set()
    thread.join(10)
    engine.dispose()


# --- a blog to submit ------------------------------------------------------------------

ROSETTE = ('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
           '<circle cx="32" cy="32" r="30" fill="#c0392b"/></svg>')


@dataclass
class Blog:
    """A blog on the module's loopback server, under /SLUG/."""

    server: LoopbackServer
    slug: str
    title: str
    items: list[dict] = field(default_factory=list)

    def url(self, path: str = "/") -> str:
        return self.server.url(f"/{self.slug}{path}")


@pytest.fixture(scope="module")
def blogs():
    """The bloggers' server, one for the module (the moderation queue shows every pending
    submission, whichever test made it, so every blog's images must stay reachable)."""
    srv = LoopbackServer("127.0.0.1")
    yield srv
    srv.close()


def serve_blog(blogs, slug: str, title: str) -> Blog:
    """A blog whose home page names its posts feed (four posts, newest first, dated in the
    last few days, the newest with an image on the blog and markup to be sanitised away)
    and its comments feed."""
    blog = Blog(blogs, slug, title)
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    posts = [
        ("Allotments saved on Mill Lane", "allotments",
         ('<p>The council backed down, and the plots stay.</p>'
          f'<p><img src="{blog.url("/img/rosette.svg")}" alt="A red rosette" width="64" height="64"></p>'
          '<p onclick="steal()">Thanks to everyone who signed.</p><script>steal()</script>')),
        ("The bus depot vote", "depot", "<p>Members voted to fight the closure of the depot.</p>"),
        ("Canvassing in the rain", "rain", "<p>Four hundred doors, one umbrella.</p>"),
        ("Our first branch meeting", "first", "<p>Twelve of us, and biscuits.</p>"),
    ]
    blog.items = [{"title": t, "link": blog.url(f"/p/{post}"), "guid": f"urn:{slug}:{post}",
                   "date": format_datetime(noon - timedelta(days=n + 1), usegmt=True), "content": content}
                  for n, (t, post, content) in enumerate(posts)]
    blogs.route(f"/{slug}/feed.xml", rss(blog.items, title=title, link=blog.url("/")))
    blogs.route(f"/{slug}/comments.xml", rss([{"title": "Re: allotments", "link": blog.url("/c/1"), "guid": "c1"}],
                                             title=f"Comments on {title}", link=blog.url("/")))
    blogs.route(f"/{slug}/img/rosette.svg", ROSETTE, content_type="image/svg+xml")
    blogs.route(f"/{slug}/", "<!doctype html><html lang=en><head><title>" + title + "</title>"
                '<link rel="alternate" type="application/rss+xml" title="Posts" href="feed.xml">'
                '<link rel="alternate" type="application/rss+xml" title="Comments" href="comments.xml">'
                "</head><body><p>Hello</p></body></html>", content_type="text/html; charset=utf-8")
    return blog


# --- helpers ---------------------------------------------------------------------------------


def click_through(page, button):
    """Click a form's submit button and wait for the page it leads to; its response."""
    with page.expect_navigation(wait_until="load") as nav:
        button.click()
    return nav.value


def path_of(page) -> str:
    parts = urlsplit(page.url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def definitions(scope) -> dict[str, str]:
    """A <dl>'s terms and what they say, as the reader sees them."""
    return scope.evaluate("""dl => Object.fromEntries([...dl.querySelectorAll('dt')].map(
        dt => [dt.innerText.trim(), dt.nextElementSibling ? dt.nextElementSibling.innerText.trim() : '']))""")


def images_loaded(page) -> None:
    """Every image has loaded (or failed). Watched from Playwright's side: with scripting
    off, a page's own event listeners and timers never run (test_pages' wait_for_images
    would wait for ever on an image still loading)."""
    for image in page.locator("img").all():
        expect(image).to_have_js_property("complete", True)


def check_page(tab, artefacts, name: str, *, axe: bool = False, refused: str = "") -> None:
    """The page as test_pages checks every page: its h1 shows, one of it, a language,
    the stylesheet applied, nothing scrolls sideways, images load; a full-page screenshot;
    no console or CSP error, no page error, nothing asked of another host, no failed
    request (but a 409 from `refused`, a ballot refused on purpose); and, when asked, axe-core."""
    page = tab.page
    expect(page.locator("main h1")).to_be_visible()
    images_loaded(page)
    page.screenshot(path=str(artefacts / f"community-{name}.png"), full_page=True)
    facts = page.evaluate(FACTS)
    assert facts["lang"] == "en-GB" and facts["h1"] == 1 and facts["main"] == 1, facts
    assert facts["masthead_border"] == "solid", f"{name}: the stylesheet did not apply: {facts}"
    assert facts["broken_images"] == [], f"{name}: images that did not load: {facts['broken_images']}"
    assert facts["scroll_width"] <= facts["inner_width"], (
        f"{name} scrolls sideways ({facts['scroll_width']} > {facts['inner_width']}); too wide: {facts['too_wide']}")
    problems = [p for p in tab.problems()
                if not (refused and refused in p and ("409 " + refused in p or "status of 409" in p))]
    assert problems == [], f"{name}:\n" + "\n".join(problems)
    if axe:
        axe_on_a_replay(tab, name)


def axe_on_a_replay(tab, name: str) -> None:
    """axe-core is a script, and a context with scripting off never finishes running it
    (its timers never fire). So the page the reader has, exactly as parsed (with scripting
    off the DOM is the HTML the server sent), is replayed at its own address, with the
    headers it came with (its CSP among them), in a context of the same browser with
    scripting on; its stylesheet and images come from the site as before."""
    page = tab.page
    url, html = page.url, page.content()
    headers = {k: v for k, v in tab.documents[url].items()
               if k in ("content-type", "content-security-policy", "content-language")}
    context = tab.context.browser.new_context(viewport=page.viewport_size, locale="en-GB",
                                              timezone_id="Europe/London", reduced_motion="reduce")
    try:
        context.set_default_timeout(30_000)
        replay = context.new_page()

        def route(r):
            if r.request.url == url and r.request.resource_type == "document":
                r.fulfill(status=200, headers=headers, body=html)
            elif urlsplit(r.request.url).hostname == "127.0.0.1":
                r.continue_()
            else:
                tab.blocked.append(r.request.url)
                r.abort("blockedbyclient")

        context.route("**/*", route)
        replay.goto(url, wait_until="load")
        assert_no_serious_axe_violations(replay, name)
    finally:
        context.close()


@pytest.fixture
def js_off(open_tab):
    """open_tab with scripting off, keeping each page's response headers (for the replay)."""

    def open_(viewport=PHONE):
        tab = open_tab(viewport=viewport, javascript=False)
        tab.documents = {}
        tab.page.on("response", lambda r: tab.documents.__setitem__(r.url, r.headers)
                    if r.request.resource_type == "document" else None)
        return tab

    return open_


def submit_blog(tab, blog, artefacts=None, *, name: str, contact: str = "", note: str = ""):
    """The blogger's way through /submit: the form, the pick between the page's two feeds,
    the feed check, the confirmation. Pages are checked (with axe) when `artefacts` is given.
    Returns the feed check's facts and the preview's post titles, read from the check page."""
    page = tab.page
    tab.goto("/submit")
    expect(page.locator("main h1")).to_have_text("Submit a blog")
    if artefacts:
        check_page(tab, artefacts, "submit", axe=True)

    page.get_by_label("Your blog's address, or its feed's").fill(blog.url("/"))
    page.get_by_label("Its name").fill(name)
    if contact:
        page.get_by_label("Your e-mail address").fill(contact)
    if note:
        page.get_by_label("A note for the moderators").fill(note)
    response = click_through(page, page.get_by_role("button", name="Check my blog"))
    assert response.status == 200, response.status

    # The page names two feeds: the blogger picks the one with the posts.
    expect(page.locator("main h1")).to_have_text("Which feed?")
    feeds = page.get_by_role("group", name="Feeds found on the page").get_by_role("radio")
    expect(feeds).to_have_count(2)
    page.get_by_role("radio", name=re.compile(r"^Posts ")).check()
    if artefacts:
        check_page(tab, artefacts, "submit-pick")
    response = click_through(page, page.get_by_role("button", name="Check this feed"))
    assert response.status == 200, response.status

    expect(page.locator("main h1")).to_have_text("Submit a blog: the check")
    check = page.locator("section.feed-check")
    expect(check.get_by_role("heading", name="Feed check")).to_be_visible()
    expect(check.locator("p.ok")).to_have_text("Valid: the site can read this feed.")
    expect(check.locator("dl")).to_be_visible()
    facts = definitions(check.locator("dl"))
    previews = check.locator("article.post.preview")
    expect(previews).to_have_count(3)
    for n in range(3):
        expect(previews.nth(n)).to_be_visible()
    titles = previews.locator("h3").all_inner_texts()
    if artefacts:
        check_page(tab, artefacts, "submit-check", axe=True)

    response = click_through(page, page.get_by_role("button", name="Submit this blog"))
    assert response.status == 200, response.status
    assert re.fullmatch(r"/submit/\d+\?token=[0-9a-f]{32}", path_of(page)), page.url
    return facts, titles


def sign_in(tab, artefacts=None) -> None:
    """A moderator asks for the queue, is sent to /login, signs in, and is sent back."""
    page = tab.page
    tab.goto("/moderate/queue")  # 303 to the sign-in form, which remembers where they were going
    assert path_of(page) == "/login?next=/moderate/queue", page.url
    expect(page.locator("main h1")).to_have_text("Moderators: sign in")
    if artefacts:
        check_page(tab, artefacts, "login", axe=True)
    page.get_by_label("E-mail address").fill(MODERATOR)
    page.get_by_label("Password").fill(PASSWORD)
    response = click_through(page, page.get_by_role("button", name="Sign in"))
    assert response.status == 200, response.status
    assert path_of(page) == "/moderate/queue", page.url
    expect(page.locator("main h1")).to_have_text("Submissions waiting")


# --- 1. a blogger submits a blog ---------------------------------------------------------------


def test_a_blogger_submits_a_blog_and_it_waits_for_a_moderator(js_off, site, blogs, artefacts):
    # A long address, as real ones are: it must wrap on a phone, not push the page sideways.
    blog = serve_blog(blogs, "marrowfieldanddistrictsocialists", "Marrowfield Socialists")
    tab = js_off(PHONE)
    page = tab.page
    facts, titles = submit_blog(tab, blog, artefacts, name="Marrowfield Socialists",
                                   contact="editor@marrowfield.example", note="We post weekly.")

    # What the check said: valid, and each fact about the feed.
    assert facts["Feed"] == blog.url("/feed.xml"), facts
    assert facts["Title"] == "Marrowfield Socialists", facts
    assert facts["Entries found"] == "4", facts
    assert facts["Dates present"] == "yes", facts
    assert facts["GUIDs unique"] == "yes", facts
    assert facts["Content"] == "full posts", facts
    newest = parsedate_to_datetime(blog.items[0]["date"])
    assert facts["Last post"].startswith(f"{newest.day} {newest:%B %Y}"), facts
    # Three posts previewed, the newest three, as the site will show them.
    assert titles == [it["title"] for it in blog.items[:3]], titles

    # The status page: waiting for a moderator, with what was submitted.
    expect(page.locator("main h1")).to_have_text("Your submission: Marrowfield Socialists")
    status = definitions(page.locator("main dl").first)
    assert status["Status"] == "Waiting for a moderator", status
    assert status["Feed"] == blog.url("/feed.xml") and status["We will write to"] == "editor@marrowfield.example"
    check_page(tab, artefacts, "submit-status")

    # Readers do not see it until a moderator approves it.
    tab.goto("/blogs")
    expect(page.get_by_role("link", name="Valley Socialist")).to_be_visible()
    assert "Marrowfield" not in page.locator("main").inner_text()
    assert tab.problems() == []


def test_the_feed_check_shows_the_preview_as_the_site_will(js_off, site, blogs, artefacts):
    """The check page's preview: three posts, sanitised (no script, no event handlers),
    the blog's image loaded from the blog, and the feed check's verdict plain to see."""
    blog = serve_blog(blogs, "moorside", "Moorside Tenants")
    tab = js_off(DESKTOP)
    page = tab.page
    tab.goto("/submit")
    page.get_by_label("Your blog's address, or its feed's").fill(blog.url("/feed.xml"))  # the feed itself
    response = click_through(page, page.get_by_role("button", name="Check my blog"))
    assert response.status == 200
    # A feed's address needs no pick: straight to the check.
    expect(page.locator("main h1")).to_have_text("Submit a blog: the check")
    check = page.locator("section.feed-check")
    expect(check.locator("p.ok")).to_have_text("Valid: the site can read this feed.")
    previews = check.locator("article.post.preview")
    expect(previews).to_have_count(3)
    expect(check.get_by_role("heading", name="How the newest 3 posts will look here")).to_be_visible()
    first = previews.first
    expect(first.locator(".meta").first).to_have_text("Moorside Tenants")
    expect(first.get_by_text("The council backed down, and the plots stay.")).to_be_visible()
    image = first.get_by_role("img", name="A red rosette")
    images_loaded(page)
    expect(image).to_be_visible()
    assert image.evaluate("i => i.naturalWidth") > 0
    assert check.locator("script, [onclick]").count() == 0
    expect(first.get_by_role("link", name="Read it on Moorside Tenants")).to_have_attribute(
        "href", blog.url("/p/allotments"))
    check_page(tab, artefacts, "submit-check-desktop", axe=True)


# --- 2. a moderator approves it ---------------------------------------------------------------------


def test_a_moderator_signs_in_approves_the_submission_and_the_log_says_so(js_off, site, blogs, artefacts):
    blog = serve_blog(blogs, "tenants", "Tenants Together")
    blogger = js_off(PHONE)
    submit_blog(blogger, blog, name="Tenants Together", contact="editor@tenants.example",
                note="The tenants' union branch; we post weekly.")
    status_url = path_of(blogger.page)

    mod = js_off(DESKTOP)
    page = mod.page
    sign_in(mod, artefacts)
    submission = page.locator("article.submission").filter(
        has=page.get_by_role("heading", name=re.compile(r"^\d+\. Tenants Together")))
    expect(submission).to_have_count(1)
    about = definitions(submission.locator("dl").first)
    assert about["Address given"] == blog.url("/") and about["Contact"] == "editor@tenants.example", about
    assert about["Note"] == "The tenants' union branch; we post weekly.", about
    # Each check in the queue is a region named for its submission, not one of several "Feed check"s.
    expect(submission.get_by_role("region", name=re.compile(r"^Feed check \d+\. Tenants Together"))).to_be_visible()
    check = definitions(submission.locator("section.feed-check dl"))
    assert check["Entries found"] == "4" and check["GUIDs unique"] == "yes", check
    expect(submission.locator("article.post.preview")).to_have_count(3)
    check_page(mod, artefacts, "moderate-queue", axe=True)

    # Approve, with a category and a note for the public log.
    approve = submission.locator("form", has=page.get_by_role("button", name="Approve"))
    expect(approve.get_by_label("Name on the site")).to_have_value("Tenants Together")
    approve.get_by_label("Category").fill("Campaigns")
    approve.get_by_label("Note for the log").fill("Active branch, posts weekly")
    response = click_through(page, approve.get_by_role("button", name="Approve"))
    assert response.status == 200 and path_of(page) == "/moderate/queue", page.url
    expect(submission).to_have_count(0)
    decided = page.locator("table tbody tr", has_text="Tenants Together")
    expect(decided).to_have_count(1)
    cells = decided.locator("td").all_inner_texts()
    assert cells[1].startswith("approved") and cells[2] == MODERATOR and cells[3] == "Active branch, posts weekly", cells
    check_page(mod, artefacts, "moderate-queue-decided")

    # A reader (another browser, never signed in) now finds it on /blogs, in its category.
    reader = js_off(PHONE)
    rpage = reader.page
    reader.goto("/blogs")
    section = rpage.locator("main section", has=rpage.get_by_role("heading", name="Campaigns"))
    link = section.get_by_role("link", name="Tenants Together")
    expect(link).to_be_visible()
    blog_path = link.get_attribute("href")
    assert re.fullmatch(r"/blogs/\d+", blog_path), blog_path
    check_page(reader, artefacts, "blogs-after-approval")

    # The public moderation log: who approved what, and why.
    reader.goto("/moderation")
    row = rpage.locator("table.log tbody tr", has_text="approve blog")
    expect(row).to_have_count(1)
    _when, who, what, why = row.locator("td").all_inner_texts()
    assert who == MODERATOR.split("@")[0], who
    assert what == "approve blog: Tenants Together", what
    assert why == "Active branch, posts weekly", why
    expect(row.get_by_role("link", name="Tenants Together")).to_have_attribute("href", blog_path)
    assert "tenants.example" not in rpage.locator("main").inner_text()  # the contact stays private
    check_page(reader, artefacts, "moderation-log")

    # And the blogger's own page says so.
    blogger.goto(status_url)
    status = definitions(blogger.page.locator("main dl").first)
    assert status["Status"].startswith("Approved"), status
    expect(blogger.page.get_by_role("link", name="its page here")).to_have_attribute("href", blog_path)
    assert blogger.problems() == []


# --- 3. voting ------------------------------------------------------------------------------------------


def make_poll(site, *, kind: str, question: str, options: list[str], earlier: list[list[int]]):
    """A poll (results shown after voting) and ballots already cast by other readers
    (option indexes, in rank order for a ranked poll)."""
    record = poll_store.create_poll(site.engine, question=question, options=options, created_by=MODERATOR,
                                    kind=kind, visibility="after_vote")
    ids = [o.id for o in record.poll.options]
    for n, chosen in enumerate(earlier):
        cast = ballot_store.cast_ballot(site.engine, record.poll, Ballot(record.id, tuple(ids[i] for i in chosen)),
                                        f"earlier-{record.id}-{n}", f"earlier-reader-{record.id}-{n}")
        assert cast.counted, cast
    return record


def table_rows(table) -> list[list[str]]:
    return table.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))")


def assert_no_numbers_before_voting(js_off, poll_id: int, question: str, artefacts, name: str) -> None:
    """Another reader, who has not voted, sees the ballot and no count anywhere."""
    other = js_off(PHONE)
    page = other.page
    other.goto(f"/polls/{poll_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(question)
    expect(page.get_by_role("button", name="Vote")).to_be_visible()
    other.goto(f"/polls/{poll_id}/results")
    expect(page.locator("#results-hidden")).to_be_visible()
    main = page.locator("main")
    assert main.locator("svg, table, .results, .methodology").count() == 0
    assert not re.search(r"\d+(\.\d)?%", main.inner_text()), main.inner_text()
    expect(page.get_by_role("link", name="Vote in this poll")).to_have_attribute("href", f"/polls/{poll_id}")
    check_page(other, artefacts, f"{name}-results-hidden")


def another_tab(tab):
    """A second page in the tab's browser context (same cookies), watched like the first:
    its console, page errors and failed requests go into the tab's lists."""
    page = tab.context.new_page()
    page.on("console", lambda m: tab.console.append((m.type, m.text, (m.location or {}).get("url", ""))))
    page.on("pageerror", lambda e: tab.errors.append(str(e)))
    page.on("response", lambda r: tab.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return page


def vote_again_refused(tab, poll_id: int, stale, artefacts, name: str) -> None:
    """Voting again: the poll now says so and offers no ballot; a ballot sent from a page
    opened before the vote (another tab of the same browser) is refused with the reason."""
    page = tab.page
    tab.goto(f"/polls/{poll_id}")
    expect(page.get_by_role("status")).to_contain_text("You have already voted in this poll.")
    expect(page.locator("form#vote")).to_have_count(0)
    expect(page.get_by_role("link", name="See the results")).to_have_attribute("href", f"/polls/{poll_id}/results")

    response = click_through(stale, stale.get_by_role("button", name="Vote"))
    assert response.status == 409, response.status
    expect(stale.get_by_role("alert")).to_contain_text("you have already voted in this poll")
    refused = f"{tab.base}/polls/{poll_id}/vote"
    assert tab.failed == [f"409 {refused}"], tab.failed
    stale.screenshot(path=str(artefacts / f"community-{name}-refused.png"), full_page=True)
    check_page(tab, artefacts, f"{name}-already-voted", refused=refused)


def test_a_reader_votes_in_a_single_choice_poll_and_reads_the_results(js_off, site, artefacts):
    question = "Which bus route should come back first?"
    options = ["The 42 to Fernleigh", "The 7 night bus", "The Mill Lane hopper"]
    poll = make_poll(site, kind="single", question=question, options=options, earlier=[[0], [0], [2]])
    assert_no_numbers_before_voting(js_off, poll.id, question, artefacts, "poll-single")

    tab = js_off(PHONE)
    page = tab.page
    tab.goto(f"/polls/{poll.id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(question)
    assert page.locator("main").get_by_text(re.compile(r"\d+(\.\d)?%")).count() == 0
    expect(page.get_by_role("radio")).to_have_count(3)
    check_page(tab, artefacts, "poll-single", axe=True)
    stale = another_tab(tab)  # a second tab on the same ballot, for later
    stale.goto(f"{tab.base}/polls/{poll.id}", wait_until="load")
    stale.get_by_role("radio", name="The 42 to Fernleigh").check()

    page.get_by_role("radio", name="The 7 night bus").check()
    response = click_through(page, page.get_by_role("button", name="Vote"))
    assert response.status == 200 and path_of(page) == f"/polls/{poll.id}/results", page.url
    expect(page.get_by_role("status")).to_contain_text("You have voted in this poll")
    results = page.locator("section.results")
    chart = results.get_by_role("img", name=re.compile("."))
    expect(chart).to_have_count(1)
    expect(chart).to_be_visible()
    assert chart.evaluate("e => e.tagName.toLowerCase()") == "svg"
    assert chart.evaluate("e => e.getBoundingClientRect().width") > 100
    assert table_rows(results.locator("table")) == [
        ["The 42 to Fernleigh", "2", "50.0%"], ["The 7 night bus", "1", "25.0%"], ["The Mill Lane hopper", "1", "25.0%"]]
    expect(results.locator("table caption")).to_have_text("Votes for each option, of 4 ballots")
    method = definitions(page.locator("section.methodology dl"))
    assert method["Ballots counted"].startswith("4 ballots"), method
    check_page(tab, artefacts, "poll-single-results", axe=True)

    vote_again_refused(tab, poll.id, stale, artefacts, "poll-single")


def test_a_reader_ranks_a_ranked_poll_and_reads_every_round(js_off, site, artefacts):
    question = "Rank the candidates for branch chair"
    options = ["Ruth Adeyemi", "Sam Reid", "Jamie Lowe"]
    # Three ballots put Ruth first and three Sam; this reader puts Jamie first, Sam second.
    # Round 1: Ruth 3, Sam 3, Jamie 1 of 7, 4 needed; Jamie is eliminated, the ballot
    # moves to Sam; round 2: Sam 4, Ruth 3, Sam wins.
    poll = make_poll(site, kind="ranked", question=question, options=options,
                     earlier=[[0], [0, 1], [0], [1], [1, 0], [1]])
    assert_no_numbers_before_voting(js_off, poll.id, question, artefacts, "poll-ranked")

    tab = js_off(PHONE)
    page = tab.page
    tab.goto(f"/polls/{poll.id}")
    expect(page.locator("form.vote").get_by_role("combobox")).to_have_count(3)  # the footer has its own (subscribe)
    check_page(tab, artefacts, "poll-ranked", axe=True)
    stale = another_tab(tab)
    stale.goto(f"{tab.base}/polls/{poll.id}", wait_until="load")
    stale.get_by_role("combobox", name="Ruth Adeyemi").select_option("1")

    page.get_by_role("combobox", name="Jamie Lowe").select_option("1")
    page.get_by_role("combobox", name="Sam Reid").select_option("2")
    response = click_through(page, page.get_by_role("button", name="Vote"))
    assert response.status == 200 and path_of(page) == f"/polls/{poll.id}/results", page.url
    expect(page.get_by_role("status")).to_contain_text("You have voted in this poll")

    rounds = page.locator("section.round")
    expect(rounds).to_have_count(2)
    expect(rounds.locator("h3")).to_have_text(["Round 1", "Round 2"])
    for n in range(2):
        chart = rounds.nth(n).get_by_role("img", name=re.compile("."))
        expect(chart).to_have_count(1)
        chart.scroll_into_view_if_needed()
        expect(chart).to_be_visible()
        assert chart.evaluate("e => e.tagName.toLowerCase()") == "svg"
    first, second = (table_rows(rounds.nth(n).locator("table")) for n in range(2))
    assert [(r[0], r[1], r[3]) for r in first] == [
        ("Ruth Adeyemi", "3", ""), ("Sam Reid", "3", ""), ("Jamie Lowe", "1", "eliminated")], first
    votes = {r[0]: (r[1], r[3]) for r in second}
    assert votes["Sam Reid"] == ("4", "wins") and votes["Ruth Adeyemi"][0] == "3", second
    expect(rounds.nth(0).locator("table caption")).to_contain_text("4 needed for a majority")
    expect(rounds.nth(0)).to_contain_text("Transfers: 1 to Sam Reid")
    check_page(tab, artefacts, "poll-ranked-results", axe=True)

    vote_again_refused(tab, poll.id, stale, artefacts, "poll-ranked")
