"""Issue 16, the rest: refused ballots are all counted, the site never aggregates itself,
the RSS channel links to the site, and the paper cuts.

WebTest on the real app over a real migrated database (SQLite, and PostgreSQL too); each
client is a TestApp with its own cookies and its own REMOTE_ADDR.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import webtest

from aggregator import db, feed_store, post_store
from aggregator.models import Post
from aggregator.settings import Settings
from community.polls import ballot_store
from community.polls import store as poll_store
from web import security
from web.app import make_app

ROOT = Path(__file__).resolve().parent.parent
SITE_URL = "https://hustings.example"
MOD = "mod@hustings.example"


class Site:
    def __init__(self, tmp_path, **overrides):
        overrides.setdefault("site_url", SITE_URL)
        self.settings = Settings(data_dir=tmp_path / "data", page_cache_s=0, **overrides)
        self.engine = db.make_engine(self.settings)
        db.migrate(self.engine)
        self.app = make_app(self.settings)

    def client(self, ip: str = "198.51.100.7") -> webtest.TestApp:
        web = webtest.TestApp(self.app, extra_environ={"REMOTE_ADDR": ip})
        web.get("/login")  # a page with a form: the reader cookie is set
        return web

    def token(self, web: webtest.TestApp) -> str:
        return security.reader_csrf(self.settings, web.cookies[security.READER_COOKIE])

    def post(self, title: str = "Saving the library", url: str = "http://127.0.0.1:9/p/1", html: str = "<p>In full.</p>"):
        feed, _ = feed_store.add_feed(self.engine, "http://127.0.0.1:9/feed.xml", title="Valley Branch",
                                      category="Local parties / North")
        post_store.save_posts(self.engine, feed, [Post(feed.id, url, url, title, html, identity=url)])
        return [p for p in post_store.list_posts(self.engine) if p["title"] == title][0]


@pytest.fixture
def site(tmp_path) -> Site:
    return Site(tmp_path)


# --- item 7: ballots refused by the rate limit are counted as refused ---------------------------------


def test_ballots_refused_by_the_rate_limit_are_in_the_methodology_box(tmp_path):
    site = Site(tmp_path, vote_limit="2/1m")
    record = poll_store.create_poll(site.engine, question="Which bus route first?", options=["The 42", "The 7"], visibility="always",
                                    created_by=MOD)
    option = str(record.poll.options[0].id)
    statuses = []
    for n in range(4):  # one address, four readers (cookies cleared): the limit is per address
        web = site.client("203.0.113.9")
        res = web.post(f"/polls/{record.id}/vote", [("csrf_token", site.token(web)), ("option", option)],
                       expect_errors=True)
        statuses.append(res.status_int)
    assert statuses == [303, 303, 429, 429]
    assert res.headers["Retry-After"].isdigit()
    # The refusal keeps the poll and the reader's choice, and says why.
    assert "Your ballot was not counted: too many attempts" in res.text
    assert re.search(rf'value="{option}"[^>]*checked', res.text)

    assert ballot_store.rejection_counts(site.engine, record.id) == {"rate_limited": 2}
    results = site.client().get(f"/polls/{record.id}/results")
    box = " ".join(results.text.split())
    assert "2 ballots not counted: 2 sent too fast from one address" in box


# --- item 17: the site never aggregates itself ------------------------------------------------------------


def submit(site: Site, web: webtest.TestApp, url: str, **fields):
    form = [("csrf_token", site.token(web)), ("url", url), ("name", "Us again")] + list(fields.items())
    return web.post("/submit", form, expect_errors=True)


@pytest.mark.parametrize("url", [
    "https://hustings.example/feed.atom",
    "https://hustings.example/feed.rss",
    "http://www.hustings.example/new.rss",
    "hustings.example/blogs/3.atom",
    "https://HUSTINGS.example./sections/news.atom",
    "https://hustings.example:443/",
])
def test_the_sites_own_address_is_refused_before_anything_is_fetched(site, url):
    web = site.client()
    res = submit(site, web, url)
    assert res.status_int == 422
    assert "hat address is this site&#39;s own (Hustings does not aggregate itself)" in res.text
    assert url.split("://")[-1] + '"' in res.text  # the form keeps what was typed


def test_another_host_and_port_are_not_this_site(site):
    from community import feedcheck

    assert not feedcheck.is_own_address(site.settings, "https://hustings.example.org/feed.atom")
    assert not feedcheck.is_own_address(site.settings, "https://hustings.example:8443/feed.atom")
    assert not feedcheck.is_own_address(site.settings, "https://blog.hustings.example/feed.atom")
    local = Settings(data_dir=site.settings.data_dir, site_url="http://127.0.0.1:8080")
    assert feedcheck.is_own_address(local, "http://127.0.0.1:8080/new.atom")
    assert not feedcheck.is_own_address(local, "http://127.0.0.1:8081/feed.atom")


@pytest.fixture
def live(tmp_path):
    """This site (site_url https://hustings.example) served for real on 127.0.0.1: reached by
    another name, which only the mark in its responses can tell."""
    import threading

    from web.server import serve_threaded

    site = Site(tmp_path, allow_networks=("127.0.0.1/32",), fetch_deadline_s=5.0)
    site.post()
    ready, stop = threading.Event(), threading.Event()
    port: list[int] = []
    thread = threading.Thread(target=serve_threaded, args=(site.settings, "127.0.0.1", 0), daemon=True,
                              kwargs={"threads": 2, "stop": stop,
                                      "on_ready": lambda srv: (port.append(srv.effective_port), ready.set())})
    thread.start()
    assert ready.wait(20)
    site.base = f"http://127.0.0.1:{port[0]}"
    yield site
    stop.set()
    thread.join(10)


def test_the_sites_feeds_by_another_name_or_a_redirect_are_refused(live, server):
    from tests.conftest import rss

    web = live.client()
    for path in ("/feed.atom", "/feed.rss", "/new.atom", "/"):
        res = submit(live, web, live.base + path)
        assert res.status_int == 422, path
        assert "this site&#39;s own" in res.text, path
    # A redirect elsewhere that lands here, and a page that advertises only this site's feed.
    server.route("/moved.xml", status=301, headers={"Location": live.base + "/feed.rss"})
    server.route("/", f'<html><head><link rel="alternate" type="application/atom+xml" href="{live.base}/feed.atom">'
                      '</head><body>A blog</body></html>', content_type="text/html")
    for url in (server.url("/moved.xml"), server.url("/")):
        res = submit(live, web, url)
        assert res.status_int == 422 and "this site&#39;s own" in res.text, url
    # Nor at the confirmation step, where the form names the feed.
    res = submit(live, web, server.url("/"), feed_url=live.base + "/feed.atom", step="confirm")
    assert res.status_int == 422 and "this site&#39;s own" in res.text
    # A real blog on the same machine is still welcome.
    server.route("/blog.xml", rss([{"title": "Bus routes", "link": server.url("/p/1")}]))
    assert submit(live, web, server.url("/blog.xml")).status_int == 200


def test_hustings_feeds_add_refuses_the_sites_own_feed(live, cli, monkeypatch):
    monkeypatch.setenv("HUSTINGS_DATA_DIR", str(live.settings.data_dir))
    monkeypatch.setenv("HUSTINGS_SITE_URL", SITE_URL)
    _, err = cli("feeds", "add", "--no-check", "https://www.hustings.example/feed.atom", expect=1)
    assert "this site's own" in err
    _, err = cli("feeds", "add", live.base + "/new.rss", expect=1)  # another name: the mark says so
    assert "this site's own" in err
    _, err = cli("feeds", "add", "--crawl", live.base + "/", expect=1)
    assert "this site's own" in err


# --- item 15, second half: the RSS channel links to the site's page, not to itself ------------------------


def test_every_rss_channel_links_to_its_page_and_names_itself_as_self(site):
    import feedparser

    post = site.post()
    blog = post["feed_id"]
    web = site.client()
    for feed, page in [("/feed.rss", "/"), ("/new.rss", "/new"), (f"/blogs/{blog}.rss", f"/blogs/{blog}"),
                       ("/sections/local-parties.rss", "/sections/local-parties")]:
        body = web.get(feed).body
        parsed = feedparser.parse(body)
        assert not parsed.bozo, (feed, parsed.get("bozo_exception"))
        assert parsed.version == "rss20"
        assert parsed.feed.link == SITE_URL + page, feed
        assert [(l.rel, l.href) for l in parsed.feed.links if l.rel == "self"] == [("self", SITE_URL + feed)]
        assert re.search(rb"<channel>.*?<link>" + re.escape((SITE_URL + page).encode()) + rb"</link>", body)
        assert len(parsed.entries) == 1
        # Atom says the same, with its own self.
        atom = feedparser.parse(web.get(feed.replace(".rss", ".atom")).body)
        assert atom.feed.link == SITE_URL + page


# --- item 18: paper cuts -------------------------------------------------------------------------------------


def raw_get(site: Site, path: bytes) -> tuple[int, bytes]:
    """A GET with a path WebTest cannot send (bytes that are not UTF-8), straight to the WSGI app."""
    from wsgiref.util import setup_testing_defaults

    environ: dict = {}
    setup_testing_defaults(environ)
    environ.update(PATH_INFO=path.decode("latin-1"), REMOTE_ADDR="198.51.100.7")
    seen = {}
    body = b"".join(site.app(environ, lambda status, headers, exc_info=None: seen.update(status=status)))
    return int(seen["status"][:3]), body


def test_addresses_that_are_not_utf8_are_a_400_not_another_page(site):
    post = site.post()
    for path in (b"/\xff", b"/posts/%d\xff" % post["id"], b"/blogs\xff", b"/new\xff"):
        status, body = raw_get(site, path)
        assert status == 400, path
        assert b"not valid UTF-8" in body
    assert raw_get(site, b"/posts/%d" % post["id"])[0] == 200
    assert raw_get(site, "/search?q=caf\u00e9".encode())[0] != 400  # UTF-8 is fine


def test_messages_keep_what_was_typed_as_it_was_typed_and_end_once(site):
    from web.request import sentence

    web = site.client()
    res = submit(site, web, "file:///etc/passwd")
    assert res.status_int == 422
    assert "file:///etc/passwd is not a web address" in res.text
    assert "File:///" not in res.text
    assert sentence("give the address") == "Give the address."
    assert sentence("Method not allowed.") == "Method not allowed."
    assert sentence("mary@example.org is not an e-mail address") == "mary@example.org is not an e-mail address."
    res = web.put("/", expect_errors=True)
    assert res.status_int == 405
    assert ".." not in res.text.replace("...", "")


def test_a_submission_with_a_mistake_does_not_count_and_the_429_keeps_the_form(tmp_path, server):
    from tests.conftest import rss

    site = Site(tmp_path, submit_limit="2/1h", allow_networks=("127.0.0.1/32",), fetch_deadline_s=5.0)
    web = site.client()
    for _ in range(5):  # mistakes: nothing fetched, nothing counted
        assert submit(site, web, "file:///etc/passwd").status_int == 422
        assert submit(site, web, "").status_int == 422
    server.route("/feed.xml", rss([{"title": "Bus routes", "link": server.url("/p/1")}]))
    assert submit(site, web, server.url("/feed.xml")).status_int == 200
    assert submit(site, web, server.url("/feed.xml")).status_int == 200
    res = submit(site, web, server.url("/feed.xml"), note="Our branch's blog")
    assert res.status_int == 429 and res.headers["Retry-After"].isdigit()
    assert "Too many attempts from here" in res.text
    assert f'value="{server.url("/feed.xml")}"' in res.text and "Our branch&#39;s blog</textarea>" in res.text


def test_a_score_of_nothing_is_never_minus_zero_and_one_ballot_is_one_ballot(site):
    from jinja2 import Environment

    env = Environment()
    shown = env.from_string('{{ "%+.2f"|format(x|round(2) + 0) }}')
    assert shown.render(x=-0.001) == "+0.00"
    assert shown.render(x=-0.5) == "-0.50"
    source = open(ROOT / "web/templates/post.html").read()
    assert '"%+.2f"|format(why.terms.score)' not in source and '"%+.2f"|format(why.terms.age_points)' not in source
    record = poll_store.create_poll(site.engine, question="Which route?", options=["A", "B", "C"], kind="ranked",
                                    visibility="always", created_by=MOD)
    ids = [o.id for o in record.poll.options]
    web = site.client()
    web.post(f"/polls/{record.id}/vote", [("csrf_token", site.token(web)), (f"rank_{ids[0]}", "1"),
                                          (f"rank_{ids[1]}", ""), (f"rank_{ids[2]}", "")], status=303)
    page = web.get(f"/polls/{record.id}/results").text
    assert "votes of 1 continuing ballot<" in page or "votes of 1 continuing ballot\"" in page
    assert "1 continuing ballots" not in page


def test_a_page_past_the_last_says_so_and_links_to_the_last(site):
    post = site.post()
    web = site.client()
    for path in ("/new", f"/blogs/{post['feed_id']}"):
        res = web.get(path + "?page=99", expect_errors=True)
        assert res.status_int == 404
        assert "is not a page here" not in res.text
        assert "has 1 page; the page asked for is beyond the last" in res.text
        assert f'<a href="{path}">Go to the last page</a>' in res.text


def test_a_post_without_a_usable_link_does_not_offer_one(site):
    web = site.client()
    for n, url in enumerate(["", "javascript:alert(1)"]):  # as the parser leaves it, and as stored by anything else
        post = site.post(title=f"No link {n}", url=url or f"urn:x:{n}")
        if not url:
            with site.engine.begin() as conn:
                conn.execute(db.posts.update().where(db.posts.c.id == post["id"]).values(url=""))
        page = web.get(f"/posts/{post['id']}")
        assert 'href=""' not in page.text and "javascript:" not in page.text
        assert "Read it on" not in page.text


@pytest.mark.parametrize("fragment, text", [
    ("<section>click</section><section>overlay</section>", "click overlay"),
    ("<div>click<div>overlay</div></div>", "click overlay"),
    ("<article><p>click</p></article><aside>overlay</aside>", "click overlay"),
    ("<figure><img src='https://x.example/a.png'><figcaption>click</figcaption></figure>overlay", "click. overlay"),
    ("<p>a <b>bold</b> word, <a href='https://x.example/'>link</a>s</p>", "a bold word, links"),
])
def test_summaries_never_join_words_across_blocks(fragment, text):
    from aggregator.sanitize import html_to_text

    assert html_to_text(fragment) == text


@pytest.mark.parametrize("engine", ["nh3", "bleach"])
def test_images_from_feeds_without_alt_get_an_empty_one(engine):
    from aggregator.sanitize import sanitize_post

    post = Post(1, "g", "https://b.example/p", "T", '<p>x<img src="https://b.example/a.png" title="a>b"> '
                '<img src="https://b.example/b.png" alt="The march"></p>', identity="g")
    html = sanitize_post(post, Settings(sanitizer=engine)).content_html
    imgs = re.findall(r"<img[^>]*>", html)
    assert len(imgs) == 2
    assert 'alt=""' in imgs[0] and 'alt="The march"' in imgs[1] and 'alt=""' not in imgs[1]


def test_newest_has_no_heading_jump(site):
    site.post()
    page = site.client().get("/new").text
    levels = [int(n) for n in re.findall(r"<h([1-6])[\s>]", page.split('<main', 1)[1].split("</main>", 1)[0])]
    assert levels[0] == 1
    assert all(b <= a + 1 for a, b in zip(levels, levels[1:])), levels


def test_moderators_pick_and_hide_look_different_and_the_log_wraps_whole_words():
    css = open(ROOT / "web/static/style.css").read()
    template = open(ROOT / "web/templates/moderate_posts.html").read()
    assert '<button type="submit" class="danger">Hide</button>' in template
    assert '<button type="submit" class="secondary">Pick</button>' in template
    assert re.search(r"button\.secondary \{[^}]*background: transparent", css)
    log_rule = re.search(r"table\.log td \{([^}]*)\}", css).group(1)
    assert "anywhere" not in log_rule and "break-word" in log_rule


# --- item 16: a site that cannot fetch says so, and why ------------------------------------------------------


def test_when_no_feed_can_be_reached_the_front_page_and_the_log_say_why(tmp_path, server, caplog):
    import logging

    from aggregator import scheduler
    from tests.conftest import free_port, rss

    site = Site(tmp_path, allow_networks=("127.0.0.1/32",), fetch_deadline_s=5.0)
    closed = free_port()  # nothing listens there: connections are refused, as when offline
    for n in range(2):
        feed_store.add_feed(site.engine, f"http://127.0.0.1:{closed}/feed{n}.xml", title=f"Branch {n}")
    with caplog.at_level(logging.INFO, logger="aggregator.scheduler"):
        outcomes = scheduler.dispatch(site.engine, site.settings)
    assert [o.result for o in outcomes] == ["failed", "failed"]
    summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith("none of the")]
    assert summary == ["none of the 2 feeds could be fetched: their servers cannot be connected to "
                       "(is this machine offline, or behind a firewall?)"]

    page = site.client().get("/")
    text = " ".join(page.text.split())
    assert ("No posts yet, because this site cannot reach any of the 2 feeds: their servers cannot be "
            "connected to (is this machine offline, or behind a firewall?)") in text

    # One feed that works, even with nothing in it yet: the page no longer says the feeds cannot be reached.
    working = server.route("/feed.xml", rss([]))
    feed_store.add_feed(site.engine, working, title="Working")
    scheduler.dispatch(site.engine, site.settings)
    text = " ".join(site.client().get("/").text.split())
    assert "cannot reach" not in text and "No posts yet." in text


@pytest.mark.parametrize("error, meaning", [
    ("http://a.example/feed: cannot resolve host 'a.example': [Errno -3] Temporary failure in name resolution",
     "their host names cannot be looked up"),
    ("http://a.example/feed: took longer than the 20s deadline", "they do not answer in time"),
    ("http://a.example/feed: HTTP 503", "their servers answer with errors"),
    ("http://a.example/feed: something new went wrong", "something new went wrong"),
])
def test_a_fetch_error_is_told_as_its_cause(error, meaning):
    from aggregator import reach

    assert reach.cause(error).startswith(meaning)


def test_routine_scheduler_chatter_is_quiet(cli):
    import logging

    cli("feeds", "list")
    assert logging.getLogger("apscheduler").getEffectiveLevel() == logging.WARNING


# --- item 5 (first part): rate limits hold for a whole IPv6 /64 -----------------------------------------------


def test_rate_limits_count_an_ipv6_host_by_its_64(site):
    from community import ratelimits

    limit = "2/1m"
    hit = lambda who: ratelimits.hit(site.engine, site.settings, "recommend", who, limit, now=1_000_000)  # noqa: E731
    assert [hit(f"2001:db8:1:2::{n:x}") for n in range(1, 4)][:2] == [0, 0]
    assert hit("2001:db8:1:2:ffff::9") > 0  # the same /64, rotated: still over
    assert hit("2001:db8:1:3::1") == 0  # the next /64 is someone else
    assert ratelimits.client_of("::ffff:198.51.100.7") == "198.51.100.7"
    assert ratelimits.client_of("198.51.100.7") == "198.51.100.7"
    assert ratelimits.client_of("jo@example.org") == "jo@example.org"


def test_recommending_from_a_rotating_ipv6_64_is_limited(tmp_path):
    site = Site(tmp_path, recommend_limit="3/1m")
    post = site.post()
    statuses = []
    for n in range(5):  # cookies cleared and a new address in the same /64 each time
        web = site.client(f"2001:db8:5:6::{n + 1:x}")
        res = web.post(f"/posts/{post['id']}/recommend", [("csrf_token", site.token(web))], expect_errors=True)
        statuses.append(res.status_int)
    assert statuses.count(429) == 2, statuses
