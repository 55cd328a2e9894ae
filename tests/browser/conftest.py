"""Browser tests' fixtures: Debian's Chromium (installed when missing), a realistic site
on a real socket, and a fresh Playwright context per test that lets no request leave
loopback.

Chromium is Debian's package driven by Playwright through ``executable_path``; never
``playwright install`` (it downloads a browser build). It runs with the flags that keep
it off the network (no background networking, component updates, sync or QUIC; no
proxy; every host name resolves to nothing) and Playwright's own fresh profile
directory. Each page's requests go through ``context.route``: anything not for
127.0.0.1 is aborted and recorded, and the tests assert there were none.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from aggregator import db, feed_store, fetch_history, post_store
from aggregator.fetch_history import FetchRecord
from aggregator.models import Post
from aggregator.sanitize import sanitize_post
from aggregator.settings import Settings
from community import moderation
from community.polls import store as poll_store
from index import writer

from . import install_chromium
from .site_data import BLOGS, PICTURES, POSTS, body, picture

ARTEFACTS = Path(__file__).resolve().parents[1] / "artefacts" / "screenshots"

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # Belt and braces: no proxy, and no host name resolves (the site is an IP literal),
    # so nothing Chromium tries on its own can reach a resolver or another host.
    "--no-proxy-server", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--disable-features=MediaRouter,OptimizationHints,Translate",
]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


# --- Chromium ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium; installed with apt-get first when missing (one xdist worker installs)."""
    started = time.monotonic()
    try:
        path = install_chromium.ensure()
    except install_chromium.InstallError as exc:
        pytest.fail(f"the browser tests need Chromium: {exc}", pytrace=False)
    took = time.monotonic() - started
    if took > 1:
        print(f"\nChromium ready at {path} after {took:.1f} s")
    return path


@pytest.fixture(scope="module")
def browser(chromium_path):
    """One headless Chromium per test module (per xdist worker); tests open contexts in it."""
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_FLAGS, headless=True,
                               chromium_sandbox=False, timeout=60_000)
    except Exception:
        pw.stop()
        raise
    yield b
    b.close()
    pw.stop()


@dataclass
class Tab:
    """A page in a fresh context, with everything it logged and tried to fetch."""

    page: object
    context: object
    base: str
    console: list = field(default_factory=list)  # (type, text, url)
    errors: list = field(default_factory=list)  # uncaught exceptions in the page
    blocked: list = field(default_factory=list)  # requests for anything but loopback, aborted
    failed: list = field(default_factory=list)  # loopback requests that failed or got >= 400

    def goto(self, path: str, status: int = 200):
        response = self.page.goto(self.base + path, wait_until="load")
        assert response is not None, f"no response for {path}"
        assert response.status == status, f"{path}: HTTP {response.status}, expected {status}"
        return response

    def problems(self, allow_document_status: bool = False) -> list[str]:
        """Console errors, page errors, blocked and failed requests, as readable lines."""
        out = []
        for kind, text, url in self.console:
            if kind != "error":
                continue
            # Chromium logs a document answered with 404 as a console error; a 404 page
            # that is meant to be a 404 is not a problem.
            if allow_document_status and "the server responded with a status of 404" in text \
                    and url == self.page.url:
                continue
            out.append(f"console {kind}: {text} ({url})")
        out += [f"page error: {e}" for e in self.errors]
        out += [f"request off loopback (blocked): {u}" for u in self.blocked]
        out += [f"request failed: {f}" for f in self.failed
                if not (allow_document_status and f.startswith("404 " + self.page.url))]
        return out


def _is_ours(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.hostname == "127.0.0.1"


@pytest.fixture
def open_tab(browser, site):
    """open_tab(viewport=..., dark=False, javascript=True) -> Tab in a fresh context."""
    contexts = []

    def open_(viewport=DESKTOP, dark: bool = False, javascript: bool = True) -> Tab:
        context = browser.new_context(viewport=viewport, color_scheme="dark" if dark else "light",
                                      java_script_enabled=javascript, locale="en-GB",
                                      timezone_id="Europe/London", reduced_motion="reduce")
        context.set_default_timeout(30_000)  # generous: CI machines are shared
        contexts.append(context)
        page = context.new_page()
        tab = Tab(page, context, site.base)

        def route(r):
            if urlsplit(r.request.url).path.startswith(PICTURES):
                # The blogs' pictures: made here, so a page looks as it would with real ones.
                r.fulfill(status=200, content_type="image/svg+xml", body=picture(r.request.url))
            elif _is_ours(r.request.url):
                r.continue_()
            else:
                tab.blocked.append(r.request.url)
                r.abort("blockedbyclient")

        context.route("**/*", route)
        page.on("console", lambda m: tab.console.append((m.type, m.text, (m.location or {}).get("url", ""))))
        page.on("pageerror", lambda e: tab.errors.append(str(e)))
        # A loopback request that failed; not one we blocked (recorded above), nor one
        # cancelled because the test moved on to the next page (net::ERR_ABORTED).
        page.on("requestfailed", lambda r: tab.failed.append(f"{r.failure} {r.url}")
                if _is_ours(r.url) and r.failure != "net::ERR_ABORTED" else None)
        page.on("response", lambda r: tab.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        return tab

    yield open_
    for context in contexts:
        context.close()


# --- the site ------------------------------------------------------------------------

@dataclass
class Site:
    base: str
    settings: Settings
    posts: dict[str, int]  # title -> id
    blogs: dict[str, int]  # key -> feed id
    rich_post: int
    featured_post: int
    poll: int = 0  # an open poll whose results everyone sees


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A migrated SQLite site with twelve blogs, forty-three posts, a pick and an index, on a real socket."""
    from web.server import serve_threaded

    data = tmp_path_factory.mktemp("browser-site") / "data"
    settings = Settings(data_dir=data, allow_networks=("127.0.0.1/32",), log_level="WARNING")
    engine = db.make_engine(settings)
    db.migrate(engine)
    now = datetime.now(timezone.utc).replace(microsecond=0)

    feeds = {}
    for n, (key, (title, category)) in enumerate(BLOGS.items()):
        feed, _ = feed_store.add_feed(engine, f"http://127.0.0.1/{key}/feed.xml", title=title,
                                 site_url=f"http://127.0.0.1/{key}/", category=category,
                                 now=now - timedelta(days=30 + n))
        feeds[key] = feed

    # The server first: post images are resolved against the site's own address (CSP img-src 'self').
    ready, holder, stop = threading.Event(), {}, threading.Event()

    def on_ready(srv):
        holder["port"] = srv.effective_port
        ready.set()

    def run():
        try:
            serve_threaded(settings, "127.0.0.1", 0, threads=8, on_ready=on_ready, stop=stop)
        except BaseException as exc:  # pragma: no cover - shown by the wait below
            holder["error"] = exc
            ready.set()

    thread = threading.Thread(target=run, daemon=True, name="browser-site")
    thread.start()
    assert ready.wait(30), "the site did not start within 30 s"
    if "error" in holder:
        raise holder["error"]
    base = f"http://127.0.0.1:{holder['port']}"

    ids: dict[str, int] = {}
    for i, (key, title, author, tags) in enumerate(POSTS):
        feed = feeds[key]
        seen = now - timedelta(hours=1 + i * 1.7)  # spread over three days, newest first
        # Relative URLs in the content resolve against the site itself (base_url), so the
        # post's image is same-origin; the post's own link is its blog's.
        raw = Post(feed.id, f"{key}-{i}", f"http://127.0.0.1/{key}/posts/{i}", title, body(i, title),
                   published=seen - timedelta(minutes=20), author=author, tags=tags,
                   base_url=f"{base}/{key}/posts/{i}", identity=f"g:{key}-{i}")
        assert post_store.save_posts(engine, feed, [sanitize_post(raw, settings)], now=seen).new == 1
    with engine.begin() as conn:
        for row in conn.execute(sa.select(db.posts.c.id, db.posts.c.title)):
            ids[row.title] = row.id
        for title, n in (("Care workers ballot for action", 41), ("Hustings night at the miners welfare", 12),
                         ("Housing: the case for council building at scale", 7),
                         (POSTS[0][1], 3), ("Votes at sixteen: the campaign so far", 1)):
            conn.execute(sa.update(db.posts).where(db.posts.c.id == ids[title]).values(recommendations=n))
    assert len(ids) == len(POSTS)

    # Fetch histories: every blog fetched fine; Green Doorstep has failed three times since.
    for key, feed in feeds.items():
        fetch_history.record_success(engine, feed, FetchRecord(now - timedelta(hours=5), 0.42, 200, 18_230, new_posts=2),
                             next_check_at=now + timedelta(minutes=40), interval_s=3600, etag="", last_modified="")
    doorstep = feed_store.get_feed(engine, feeds["doorstep"].id)
    for h, error in ((3, "HTTP 503 Service Unavailable"), (2, "HTTP 503 Service Unavailable"),
                     (1, "timed out after 20 s waiting for http://127.0.0.1/doorstep/feed.xml")):
        fetch_history.record_failure(engine, doorstep, FetchRecord(now - timedelta(hours=h), 20.0, 503 if h > 1 else None,
                                                           error=error),
                             next_check_at=now + timedelta(hours=2), status="erroring")

    featured = ids["The river report nobody wanted published"]
    moderation.feature_post(engine, featured, actor="editor", now=now - timedelta(minutes=30))
    poll = poll_store.create_poll(engine, question="Which campaign should the branch take on next?",
                                  options=["Save the number 14 bus", "Keep Moorside library open",
                                           "Fix the damp on Station Road"], created_by="editor@example.org",
                                  visibility="always", now=now - timedelta(hours=3),
                                  closes_at=now + timedelta(days=5))
    report = writer.sync(engine, settings)
    assert report.indexed == len(POSTS), report
    engine.dispose()

    yield Site(base, settings, ids, {k: f.id for k, f in feeds.items()}, ids[POSTS[0][1]], featured, poll.id)
    stop.set()
    thread.join(10)


@pytest.fixture(scope="session")
def artefacts() -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    return ARTEFACTS

