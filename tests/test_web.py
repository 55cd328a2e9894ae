"""The public site through WebTest on a real migrated SQLite database and Whoosh index.

One module-wide site (built once per test process) has a prolific blog (40 posts),
fifteen quiet blogs, and every kind of post that must never be shown: hidden,
tombstoned, from a pending or a rejected blog, and a cross-posted copy. Each of
those carries a word of its own, so a leak shows in any page, feed or search. Tests
that change posts build a small site of their own, with the page cache on a clock
the test moves (the cache re-reads the site's version at most once a second).

Network rule: nothing leaves loopback (the autouse ``loopback_only`` fixture); the
one socket test binds 127.0.0.1.
"""

from __future__ import annotations

import html
import http.client
import json
import math
import queue
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path

import feedparser
import listparser
import pytest
import sqlalchemy as sa
import webtest

from aggregator import db, feed_store, fetch_history, listings, post_store, ranking
from aggregator.db import posts as posts_table
from aggregator.db import writing
from aggregator.models import Post
from aggregator.opml import read_opml
from aggregator.sanitize import sanitize_post
from aggregator.settings import Settings
from community import moderation
from index import writer
from web.app import make_app
from web.cache import PageCache

# --- the site ------------------------------------------------------------------------

TOPICS = [
    "Allotments under threat on Mill Lane", "The bus depot closure and what comes next",
    "Why the library must stay open on Saturdays", "A fair deal for the care workers of Hollinbridge",
    "Council tax, explained without the jargon", "What the new housing plan means for renters",
    "Our candidate's first hundred days", "Flooding on the Fernleigh estate: a timeline",
    "The case for a municipal energy company", "Notes from the regional conference",
    "How we won the by-election in Cwm Aderyn", "The school meals petition passes ten thousand",
    "Potholes, pavements and the highways budget", "Young members organise the summer school",
    "Bringing the buses back into public hands",
]
SENTENCES = [
    "We knocked on four hundred doors on Saturday and the same worry came up again and again.",
    "The council's own figures show the gap has widened every year since the cuts began.",
    "Members packed the community hall on Thursday night to hear the candidates answer questions.",
    "If you can spare an hour this weekend, the campaign office opens at ten with tea and leaflets.",
    "Residents told us that the last bus now leaves the estate before most shifts have even ended.",
    "The motion passed with a large majority after a long and mostly good-natured debate.",
    "A petition started by a local parent has now gathered more signatures than the council expected.",
    "We will publish the full response from the cabinet member as soon as it arrives.",
    "Nobody we spoke to had heard of the consultation, which closes at the end of the month.",
    "The branch agreed to write to the housing association asking for an urgent meeting.",
]
QUIET_BLOGS = [
    "Hollinbridge North Branch", "Cwm Aderyn Socialists", "Four Walls Housing Action", "The Lantern Forum",
    "Marrowfield Young Members", "Save Fernleigh Campaign", "Shop Floor Notes", "Cllr Priya Nandakumar",
    "Valley Co-operative News", "Riverside Ward Labour", "Green Lanes Residents", "Tenants Together",
    "The Bus Users' Voice", "Millbrook Trades Council", "Eastgate Women's Forum",
]

# A word of its own for every post that must never be shown anywhere.
NEVER = {
    "hidden": "Wobblegate",
    "pending": "Pendleworth",
    "rejected": "Rejectamenta",
    "duplicate": "Copycatting",
}
SCRIPT_TITLE = "<script>alert(1)</script>"


def paragraphs(n: int, extra: str = "") -> str:
    picked = [SENTENCES[(n + i) % len(SENTENCES)] for i in range(6)]
    return (f"<p>{picked[0]} {picked[1]} {picked[2]}</p><p>{picked[3]} {picked[4]}</p>"
            f"<p>{picked[5]} {extra}</p>")


@dataclass
class Site:
    settings: Settings
    engine: object
    app: object  # the Bottle app
    web: webtest.TestApp
    t0: datetime
    post: dict = field(default_factory=dict)  # name -> post id
    blog: dict = field(default_factory=dict)  # name -> feed id
    blog_of: dict = field(default_factory=dict)  # post id -> feed id
    title: dict = field(default_factory=dict)  # post id -> title
    url: dict = field(default_factory=dict)  # post id -> original URL
    public_blogs: set = field(default_factory=set)
    hidden_ids: set = field(default_factory=set)  # every post id that must never be listed

    @property
    def visible(self) -> set[int]:
        return set(self.title) - self.hidden_ids

    def get(self, url: str, **kw):
        return self.web.get(url, **kw)


class Clock:
    """A monotonic clock for the page cache that only moves when a test moves it."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def frozen_cache(app, clock: Clock) -> PageCache:
    """Give the app's site a page cache on `clock` (same version source and age limit)."""
    site = app.config["hustings.site"]
    site.cache = PageCache(lambda: listings.site_version(site.engine), site.settings.page_cache_s, clock=clock)
    return site.cache


class Builder:
    def __init__(self, settings: Settings, engine, t0: datetime):
        self.settings, self.engine, self.t0 = settings, engine, t0
        self.n = 0
        self.post: dict = {}
        self.blog_of: dict = {}
        self.title: dict = {}
        self.url: dict = {}

    def feed(self, slug: str, title: str, *, status: str = "active", category: str = "Branches"):
        feed, created = feed_store.add_feed(self.engine, f"http://127.0.0.1/{slug}/feed.xml", title=title,
                                       site_url=f"http://127.0.0.1/{slug}/", category=category, status=status)
        assert created
        return feed

    def save(self, feed, name: str, title: str, *, seen_h: float, content: str | None = None,
             published: datetime | None = None, url: str | None = None, author: str = "",
             tags: tuple = ()) -> int:
        self.n += 1
        url = url or f"http://127.0.0.1/{feed.id}/posts/{self.n}"
        raw = Post(feed.id, f"guid-{self.n}", url, title, content if content is not None else paragraphs(self.n),
                   published=published, author=author, tags=tags, identity=f"g:{self.n}", base_url=url)
        clean = sanitize_post(raw, self.settings)
        report = post_store.save_posts(self.engine, feed, [clean], now=self.t0 - timedelta(hours=seen_h))
        assert report.new == 1
        with db.reading(self.engine) as conn:
            pid = conn.execute(sa.select(posts_table.c.id).where(
                posts_table.c.feed_id == feed.id, posts_table.c.key == clean.key)).scalar_one()
        self.post[name] = pid
        self.blog_of[pid] = feed.id
        self.title[pid] = clean.title
        self.url[pid] = clean.url
        return pid


def recommend(engine, post_id: int, n: int) -> None:
    with writing(engine) as conn:
        conn.execute(sa.update(posts_table).where(posts_table.c.id == post_id).values(recommendations=n))
        db.next_counter(conn, db.CHANGE_COUNTER)


def fast_engine(settings: Settings):
    """The migrated database for a test site. Its writes skip fsync: a test database need
    not survive a power cut, and a hundred durable commits cost seconds. (The app under
    test opens its own engine, with the production settings.)"""
    engine = db.make_engine(settings)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", lambda conn, _record: conn.execute("PRAGMA synchronous=OFF"))
    db.migrate(engine)
    return engine


def build_site(data_dir: Path) -> Site:
    settings = Settings(data_dir=data_dir, allow_networks=("127.0.0.1/32",))
    engine = fast_engine(settings)
    t0 = datetime.now(timezone.utc).replace(microsecond=0)
    b = Builder(settings, engine, t0)
    blogs: dict = {}

    prolific = b.feed("daily", "The Daily Pamphleteer", category="Campaigns")
    blogs["prolific"] = prolific.id
    for k in range(40):  # a post every ten minutes: the newest posts on the site
        b.save(prolific, f"prolific{k}", f"Campaign diary, day {40 - k}: {TOPICS[k % len(TOPICS)].lower()}",
               seen_h=0.05 + k / 6, author="Jo Whitfield", tags=("diary",))

    quiet = []
    for i, name in enumerate(QUIET_BLOGS):
        feed = b.feed(f"q{i}", name)
        blogs[f"q{i}"] = feed.id
        quiet.append(feed)
        for j in range(3):
            b.save(feed, f"q{i}.{j}", f"{TOPICS[(i + j * 5) % len(TOPICS)]} ({name.split()[0]}, part {j + 1})",
                   seen_h=7 + i * 0.4 + j * 9,
                   content=paragraphs(i * 3 + j, "Thanks to everyone who joined us on the doorstep."),
                   author=f"Member {i}", tags=("local", f"ward{i}"))

    # Claimed dates that must not rank: a very old claim seen just now, a future claim seen long ago.
    b.save(quiet[0], "old_claim", "Archive find: the 1945 manifesto leaflet, scanned", seen_h=0.02,
           published=datetime(2011, 5, 1, 9, 0, tzinfo=timezone.utc))
    b.save(quiet[1], "future_claim", "Meeting minutes dated in the future", seen_h=40,
           published=datetime(2099, 1, 1, tzinfo=timezone.utc))
    # Recommendations against freshness.
    b.save(quiet[2], "recommended", "The speech everyone is sharing", seen_h=3)
    b.save(quiet[3], "fresher", "A fresher post nobody recommended", seen_h=2)
    # Editor's picks: one two days old, one fresh.
    b.save(quiet[4], "pick_old", "An older essay the editors picked", seen_h=50)
    b.save(quiet[5], "pick_new", "A fresh report the editors picked", seen_h=1.5)
    # Escaping: a title that is markup, and a body that talks about markup.
    b.save(quiet[6], "script", SCRIPT_TITLE, seen_h=4,
           content="<p>Someone pasted &lt;script&gt;alert(1)&lt;/script&gt; and &lt;b&gt;bold&lt;/b&gt; "
                   "into the alert box of our branch website.</p>")
    # Content to sanitise, with a picture from the blog's own host.
    b.save(quiet[7], "rich", "Photos from the rally at the town hall", seen_h=5,
           content='<p onclick="steal()" style="color:red">Styled words</p><script>steal()</script>'
                   '<p><img src="https://img.q7.example/rally.jpg" alt="The rally" width="640" height="480"></p>'
                   '<p><a href="javascript:alert(1)">a trap</a> and <a href="https://q7.example/more">more</a></p>'
                   + paragraphs(3, "Allotments were discussed too."))
    # Never shown: hidden, tombstoned, pending, rejected, cross-posted copy.
    b.save(quiet[8], "hidden", f"{NEVER['hidden']}: the allegation", seen_h=0.01,
           content=f"<p>{NEVER['hidden']} on the doorstep.</p>")
    b.save(quiet[9], "tombstone", "A post its blog withdrew", seen_h=0.03,
           content="<p>Withdrawn words on the doorstep.</p>")
    pending = b.feed("pending", "Pending Blog", status="pending")
    rejected = b.feed("rejected", "Rejected Blog", status="rejected")
    for feed, word in ((pending, NEVER["pending"]), (rejected, NEVER["rejected"])):
        for j in range(2):
            b.save(feed, f"{feed.status}{j}", f"{word} news {j}", seen_h=0.04 + j,
                   content=f"<p>{word} allotments on the doorstep, part {j}.</p>")
    shared_url = "http://127.0.0.1/shared/bus-depot"
    b.save(quiet[10], "original", "The bus depot: our joint statement", seen_h=6, url=shared_url,
           content="<p>The joint statement on the depot.</p>")
    b.save(quiet[11], "duplicate", f"{NEVER['duplicate']} the bus depot statement", seen_h=5.5, url=shared_url,
           content=f"<p>{NEVER['duplicate']} the joint statement on the depot.</p>")

    moderation.hide_post(engine, b.post["hidden"], actor="test", reason="legal advice")
    post_store.delete_post(engine, b.post["tombstone"])
    moderation.feature_post(engine, b.post["pick_old"], actor="editor")
    moderation.feature_post(engine, b.post["pick_new"], actor="editor")
    recommend(engine, b.post["recommended"], 50)
    # An erroring blog, as the fetcher leaves it.
    erroring = feed_store.get_feed(engine, blogs["q12"])
    fetch_history.record_failure(engine, erroring, fetch_history.FetchRecord(started_at=t0 - timedelta(hours=1), duration_s=0.3,
                                                             http_status=503, error="HTTP 503 Service Unavailable"),
                         next_check_at=t0 + timedelta(hours=2), status="erroring")

    writer.rebuild(engine, settings, procs=1)  # one process: a hundred posts need no fork

    with db.reading(engine) as conn:
        assert conn.execute(sa.select(posts_table.c.duplicate_of).where(
            posts_table.c.id == b.post["duplicate"])).scalar() == b.post["original"]

    app = make_app(settings)
    frozen_cache(app, Clock())  # entries never expire mid-test; nothing changes this site
    site = Site(settings, engine, app, webtest.TestApp(app), t0, post=b.post, blog=blogs, blog_of=b.blog_of,
                title=b.title, url=b.url)
    site.public_blogs = set(blogs.values())
    site.hidden_ids = {b.post[n] for n in ("hidden", "tombstone", "pending0", "pending1", "rejected0",
                                           "rejected1", "duplicate")}
    return site


@pytest.fixture(scope="module")
def site(tmp_path_factory, database):
    s = build_site(tmp_path_factory.mktemp("web") / "data")
    yield s
    s.app.config["hustings.site"].searcher.close()
    s.engine.dispose()


# --- helpers -----------------------------------------------------------------------------


class Tags(HTMLParser):
    """Every start tag of an HTML page, with its attributes."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    handle_startendtag = handle_starttag


def between(body: str, start: str, end: str) -> str:
    i = body.index(start)
    return body[i:body.index(end, i)]


def picks_section(body: str) -> str:
    return between(body, '<section class="picks"', "</section>") if 'class="picks"' in body else ""


def ranked_section(body: str) -> str:
    return between(body, 'aria-labelledby="ranked-h"', "</section>")


def post_links(fragment: str) -> list[int]:
    return [int(m) for m in re.findall(r'href="/posts/(\d+)"', fragment)]


def api_hot(site, **params) -> list[dict]:
    """Every post on every page of /api/posts?sort=hot."""
    out, page = [], 1
    while True:
        data = site.get("/api/posts?" + urllib.parse.urlencode(dict(params, sort="hot", page=page))).json
        out.extend(data["posts"])
        assert data["page"] == page
        if data["next_page"] is None:
            assert page == data["pages"]
            return out
        assert data["next_page"] == page + 1
        page += 1


SECURE_REFERRER = {"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"}


def assert_secure(res) -> None:
    csp = res.headers.get("Content-Security-Policy")
    assert csp, f"{res.request.path_qs} ({res.status}) has no Content-Security-Policy"
    directives = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, csp
    assert directives.get("frame-ancestors") == ["'none'"], csp
    assert directives.get("default-src") == ["'none'"], csp  # so no script runs unless listed
    assert "script-src" not in directives, csp
    assert directives.get("style-src") == ["'self'"], csp
    assert res.headers.get("X-Content-Type-Options") == "nosniff"
    assert res.headers.get("Referrer-Policy") in SECURE_REFERRER, res.headers.get("Referrer-Policy")


def assert_no_inline_code(body: str, where: str) -> None:
    for tag, attrs in Tags(body).tags:
        assert tag not in ("script", "style"), f"<{tag}> in {where}"
        for name in attrs:
            assert name != "style" and not name.startswith("on"), f"{name}= on <{tag}> in {where}"
    assert "<script" not in body.lower(), where


def assert_nothing_from_other_hosts(body: str, where: str, *, images_allowed: bool = False) -> None:
    for tag, attrs in Tags(body).tags:
        urls = []
        if tag == "link" and attrs.get("rel") != "canonical":  # the page's own address names, loads nothing
            urls.append(attrs.get("href", ""))
        elif tag in ("script", "iframe", "embed", "object", "audio", "video", "source", "track"):
            urls += [attrs.get("src", ""), attrs.get("data", "")]
        elif tag == "img" and not images_allowed:
            urls += [attrs.get("src", "")] + [u.split()[0] for u in attrs.get("srcset", "").split(",") if u.strip()]
        for url in urls:
            parts = urllib.parse.urlsplit(url)
            assert not parts.netloc and not url.startswith("//"), f"<{tag}> loads {url!r} from another host in {where}"
    assert "@import" not in body and "url(" not in body, where


# --- the front page: ranking, caps, picks --------------------------------------------------


def test_front_page_lists_thirty_ranked_posts_with_the_caps(site):
    body = site.get("/").text
    ranked = post_links(ranked_section(body))
    assert len(ranked) == 30
    blogs = [site.blog_of[p] for p in ranked]
    assert len(set(blogs[:10])) == 10, "one post per blog in the top ten"
    assert max(blogs.count(b) for b in blogs) <= 2, "two per page"
    assert blogs.count(site.blog["prolific"]) == 2
    assert '<article class="story lead' in body and '<ol class="ranked" start="6">' in body


def test_every_ranked_page_keeps_the_caps_and_lists_every_visible_post_once(site):
    hot = api_hot(site)
    ids = [p["id"] for p in hot]
    assert len(ids) == len(set(ids))
    picks = {site.post["pick_old"], site.post["pick_new"]}
    assert set(ids) == site.visible - picks, "every visible post is ranked once (the boxed picks apart), nothing else"
    assert [p["rank"] for p in hot] == list(range(1, len(hot) + 1))
    # The pages as the API serves them: full but the last (a cap never leaves a place empty).
    pages, page = [], 1
    while True:
        data = site.get(f"/api/posts?sort=hot&page={page}").json
        pages.append(data["posts"])
        blogs = [p["blog"]["id"] for p in data["posts"]]
        assert len(blogs) == 30 or not data["next_page"], (page, len(blogs))
        if page == 1:
            assert len(set(blogs[:10])) == 10
        if not data["next_page"]:
            break
        page += 1
    assert [p["id"] for posts in pages for p in posts] == ids
    assert len(pages) == math.ceil(len(ids) / 30)
    prolific = [p for p in hot if p["blog"]["id"] == site.blog["prolific"]]
    assert len(prolific) == 40
    # Two a page while the quiet blogs have posts in reach; the prolific blog's older posts
    # then fill the places: a page has more of them only when no other blog has a post left.
    for number, posts in enumerate(pages):
        if sum(p["blog"]["id"] == site.blog["prolific"] for p in posts) > 2:
            # (The post dated 2011 is out of reach: no cap pulls it up for variety.)
            assert all(p["blog"]["id"] == site.blog["prolific"] or p["id"] == site.post["old_claim"]
                       for ps in pages[number + 1:] for p in ps)
    assert sum(p["blog"]["id"] == site.blog["prolific"] for p in pages[0]) == 2
    moved = [p for p in prolific if p["why"]["note"]]
    assert moved and all(p["why"]["note"].startswith("moved down from ") for p in moved)
    # (tests/test_front_page.py checks every place against the rule, post by post.)


def test_ranking_ages_posts_from_their_own_date_clamped_to_first_sight(site):
    hot = {p["id"]: p for p in api_hot(site)}
    old = hot[site.post["old_claim"]]
    assert old["published"].startswith("2011-05-01")  # first seen just now, but from 2011 ...
    assert old["why"]["hours_since_published"] > 24 * 365 * 10  # ... and aged as such
    assert old["rank"] == len(hot), "the oldest post ranks last"
    future = hot[site.post["future_claim"]]
    assert 39.9 <= future["why"]["hours_since_published"] <= 40.5  # a date in 2099 counts as first seen
    assert future["published"] == future["first_seen"]  # the future claim was not believed
    # Every post's age term is from its date, which is never later than its first sighting.
    for p in hot.values():
        published = datetime.fromisoformat(p["published"].replace("Z", "+00:00"))
        assert p["published"] <= p["first_seen"]
        assert p["why"]["hours_since_published"] == pytest.approx(
            (datetime.now(timezone.utc) - published).total_seconds() / 3600, abs=0.2)
    # The newest list is by the posts' dates too: the 2011 post is at its very end.
    newest = [p["id"] for page in (1, 2, 3, 4) for p in site.get(f"/api/posts?sort=new&page={page}").json["posts"]]
    assert newest[-1] == site.post["old_claim"]
    assert site.post["old_claim"] not in post_links(site.get("/new").text)


def test_recommendations_outrank_a_slightly_newer_post(site):
    hot = {p["id"]: p for p in api_hot(site)}
    rec, fresh = hot[site.post["recommended"]], hot[site.post["fresher"]]
    assert rec["recommendations"] == 50 and rec["why"]["recommendation_points"] == pytest.approx(1.7076, abs=1e-3)
    assert fresh["why"]["recommendation_points"] == 0
    assert rec["why"]["hours_since_published"] > fresh["why"]["hours_since_published"]
    assert rec["rank"] == 1 < fresh["rank"]
    assert rec["why"]["window_hours"] == site.settings.rank_window_h


def test_api_score_terms_follow_the_formula(site):
    for p in api_hot(site):
        why = p["why"]
        assert why["recommendation_points"] == pytest.approx(math.log10(1 + p["recommendations"]), abs=1e-4)
        assert why["age_points"] == pytest.approx(-why["hours_since_published"] / why["window_hours"], abs=1e-3)
        assert why["score"] == pytest.approx(why["recommendation_points"] + why["age_points"], abs=2e-4)


def test_editors_picks_are_shown_in_their_labelled_section(site):
    body = site.get("/").text
    picks = picks_section(body)
    assert "Editor's picks" in html.unescape(picks)
    assert set(post_links(picks)) == {site.post["pick_old"], site.post["pick_new"]}
    # Newest pick first.
    assert post_links(picks) == [site.post["pick_new"], site.post["pick_old"]]
    # Only on the first page.
    assert 'class="picks"' not in site.get("/?page=2").text


def test_a_pick_is_not_a_hidden_boost(site):
    """Picks in the box are left out of the ranked list (docs/web.md), and their score is
    the same function of first sighting and recommendations as every other post's."""
    hot_ids = {p["id"] for p in api_hot(site)}
    now = datetime.now(timezone.utc)
    for name in ("pick_old", "pick_new", "fresher"):
        pid = site.post[name]
        data = site.get(f"/api/posts/{pid}").json
        featured = name != "fresher"
        assert data["featured"] is featured and data["why"]["featured"] is featured
        seen = datetime.fromisoformat(data["first_seen"].replace("Z", "+00:00"))
        published = datetime.fromisoformat(data["published"].replace("Z", "+00:00"))
        terms = ranking.score_terms(ranking.Candidate(pid, data["blog"]["id"], seen, data["recommendations"],
                                                      published), now=now, window_h=site.settings.rank_window_h)
        for term in ("recommendations", "recommendation_points", "window_hours"):
            assert data["why"][term] == terms[term], (name, term)
        for term in ("hours_since_published", "age_points", "score"):
            assert data["why"][term] == pytest.approx(terms[term], abs=2e-3), (name, term)
        assert (pid in hot_ids) is not featured
        assert (data["why"]["rank"] is None) is featured
    # No boost: the old pick's score is what fifty hours without recommendations earn.
    assert site.get(f"/api/posts/{site.post['pick_old']}").json["why"]["score"] == pytest.approx(-50 / 24, abs=0.01)
    ranked = post_links(ranked_section(site.get("/").text))
    assert site.post["pick_old"] not in ranked and site.post["pick_new"] not in ranked


# --- never shown ----------------------------------------------------------------------------

NEVER_URLS = ["/", "/?page=2", "/?page=3", "/new", "/new?page=2", "/new?page=3", "/blogs", "/feed.atom", "/feed.rss",
              "/new.atom", "/new.rss", "/blogs.opml", "/api/posts", "/api/posts?sort=new", "/api/posts?sort=new&page=2",
              "/api/posts?sort=new&page=3", "/api/blogs", "/search?q=doorstep", "/search?q=allotments",
              "/api/search?q=doorstep", "/api/search?q=allotments"]


def pages_that_list_posts(site) -> list[str]:
    urls = list(NEVER_URLS)
    for fid in sorted(site.public_blogs):
        urls += [f"/blogs/{fid}", f"/blogs/{fid}.atom", f"/blogs/{fid}.rss", f"/api/posts?blog={fid}",
                 f"/api/posts?blog={fid}&sort=new"]
    for word in NEVER.values():
        urls += [f"/search?q={word}", f"/api/search?q={word}"]
    return urls


def check_never_shown(site, url: str, hidden: set, never_words: list) -> None:
    """None of the posts `hidden` (by id, link or words of their own) on the page at url."""
    res = site.get(url)
    text = res.text
    for word in never_words:
        if word not in urllib.parse.unquote(url):  # a search page repeats its own query
            assert word not in text, f"{word!r} shown on {url}"
    ids = {int(i) for i in re.findall(r"/posts/(\d+)", text)}
    if res.content_type == "application/json":
        data = res.json
        ids |= {p["id"] for p in data.get("posts", []) + data.get("results", [])}
    assert not ids & hidden, f"{url} lists {ids & hidden}"


def test_hidden_tombstoned_pending_rejected_and_copied_posts_never_appear(site):
    hidden = site.hidden_ids
    never_words = list(NEVER.values()) + ["Pending Blog", "Rejected Blog", "A post its blog withdrew"]
    for url in pages_that_list_posts(site):
        if "search" in url:
            continue  # below, and in the known failure after it
        check_never_shown(site, url, hidden, never_words)


def test_search_never_shows_hidden_tombstoned_or_copied_posts(site):
    hidden = {site.post[n] for n in ("hidden", "tombstone", "duplicate")}
    words = [NEVER["hidden"], NEVER["duplicate"], "A post its blog withdrew"]
    for url in pages_that_list_posts(site):
        if "search" in url:
            check_never_shown(site, url, hidden, words)
    for pid in sorted(site.visible):
        related = {r["id"] for r in site.get(f"/api/posts/{pid}").json["related"]}
        assert pid not in related and not related & hidden, (pid, related & hidden)


def test_search_never_shows_posts_of_pending_or_rejected_blogs(site):
    unpublished = {site.post[n] for n in ("pending0", "pending1", "rejected0", "rejected1")}
    words = [NEVER["pending"], NEVER["rejected"], "Pending Blog", "Rejected Blog"]
    problems = []
    for url in pages_that_list_posts(site):
        if "search" in url:
            try:
                check_never_shown(site, url, unpublished, words)
            except AssertionError as exc:
                problems.append(str(exc).splitlines()[0])
    for word in ("doorstep", "allotments"):
        data = site.get(f"/api/search?q={word}").json
        if sum(data["blog_counts"].values()) != data["total"] or \
                not {int(b) for b in data["blog_counts"]} <= site.public_blogs:
            problems.append(f"{word}: total {data['total']}, counts {data['blog_counts']}")
    for pid in sorted(site.visible):
        related = {r["id"] for r in site.get(f"/api/posts/{pid}").json["related"]}
        if related & unpublished:
            problems.append(f"related posts of {pid}: {related & unpublished}")
    assert not problems, "\n".join(problems[:10])


def test_never_shown_posts_have_no_page(site):
    for name in ("hidden", "tombstone"):
        res = site.get(f"/posts/{site.post[name]}", status=410)
        assert "removed" in res.text
        assert site.get(f"/api/posts/{site.post[name]}", status=410).json["error"]["status"] == 410
    for name in ("pending0", "rejected0", "duplicate"):
        site.get(f"/posts/{site.post[name]}", status=404)
        site.get(f"/api/posts/{site.post[name]}", status=404)
    for fid in {site.blog_of[site.post["pending0"]], site.blog_of[site.post["rejected0"]]}:
        for url in (f"/blogs/{fid}", f"/blogs/{fid}.atom", f"/blogs/{fid}.rss", f"/api/posts?blog={fid}"):
            site.get(url, status=404)


def test_a_cross_post_is_listed_once_as_the_original(site):
    new = [p["id"] for p in site.get("/api/posts?sort=new&page=1").json["posts"]] + \
          [p["id"] for p in site.get("/api/posts?sort=new&page=2").json["posts"]] + \
          [p["id"] for p in site.get("/api/posts?sort=new&page=3").json["posts"]]
    assert new.count(site.post["original"]) == 1
    assert site.post["duplicate"] not in new
    found = site.get("/api/search?q=depot").json
    assert site.post["original"] in {r["id"] for r in found["results"]}


# --- pages ------------------------------------------------------------------------------------


def test_new_lists_posts_newest_first_with_paging(site):
    first = site.get("/new").text
    ids = post_links(between(first, "<h1>Newest posts</h1>", '<nav class="pager"'))
    assert len(ids) == 30
    seen = [site.get(f"/api/posts/{i}").json["first_seen"] for i in ids]
    assert seen == sorted(seen, reverse=True)
    assert 'href="/new?page=2"' in first and 'rel="prev"' not in first
    second = site.get("/new?page=2").text
    ids2 = post_links(between(second, "<h1>Newest posts</h1>", '<nav class="pager"'))
    assert ids2 and not set(ids) & set(ids2)
    assert 'href="/new?page=1"' in second


def test_post_page_shows_sanitised_content_the_original_and_why(site):
    pid = site.post["rich"]
    res = site.get(f"/posts/{pid}")
    body = res.text
    content = between(body, '<div class="content">', "</div>")
    assert "Styled words" in content
    assert "steal()" not in body and "javascript:" not in body and "onclick" not in body
    assert 'src="https://img.q7.example/rally.jpg"' in content  # the blog's own picture, on its post page
    assert 'href="https://q7.example/more"' in content
    # The link to the original.
    original = between(body, '<p class="original">', "</p>")
    assert f'href="{html.escape(site.url[pid])}"' in original
    # Why is this here: the same terms as the API.
    why = between(body, 'id="why-h"', "</section>")
    data = site.get(f"/api/posts/{pid}").json
    assert f"It is number {data['why']['rank']} on the front page" in why
    assert "Recommendations" in why and "Age" in why and "Score" in why
    assert f"{data['why']['score']:+.2f}" in why
    assert f"{data['why']['hours_since_published']:.1f} hours" in why
    assert data["why"]["window_hours"] == 24.0
    assert data["content_html"].count("Styled words") == 1 and "<script" not in data["content_html"]


def test_post_page_lists_related_posts(site):
    pid = site.post["recommended"]
    body = site.get(f"/posts/{pid}").text
    related = post_links(between(body, 'id="related-h"', "</section>"))
    assert related and pid not in related
    assert related == [r["id"] for r in site.get(f"/api/posts/{pid}").json["related"]]


def test_post_page_of_a_capped_post_says_it_moved(site):
    hot = api_hot(site)
    moved = next(p for p in hot if p["why"]["note"])
    body = html.unescape(site.get(f"/posts/{moved['id']}").text)
    assert moved["why"]["note"] in body
    assert f"number {moved['rank']} on the front page" in body


def test_post_page_of_a_future_dated_post_says_what_the_feed_claimed(site):
    body = site.get(f"/posts/{site.post['future_claim']}").text
    assert "the feed said" in body and "2099" in body


def test_post_page_of_a_pick_says_it_is_a_pick(site):
    body = site.get(f"/posts/{site.post['pick_new']}").text
    assert "editor's pick" in html.unescape(body)


def test_unknown_post_is_404_with_a_helpful_page(site):
    res = site.get("/posts/999999", status=404)
    assert "Page not found" in res.text
    assert 'href="/"' in res.text and 'action="/search"' in res.text
    assert_secure(res)


def test_blog_directory_lists_public_blogs_only(site):
    body = site.get("/blogs").text
    listed = {int(m) for m in re.findall(r'href="/blogs/(\d+)"', body)}
    assert listed == site.public_blogs
    assert "Pending Blog" not in body and "Rejected Blog" not in body
    assert "16 blogs" in body
    assert "failing lately" in body  # the erroring one says so
    api = site.get("/api/blogs").json["blogs"]
    assert {b["id"] for b in api} == site.public_blogs
    prolific = next(b for b in api if b["id"] == site.blog["prolific"])
    assert prolific["posts"] == 40 and prolific["title"] == "The Daily Pamphleteer"
    assert set(prolific) >= {"id", "title", "url", "feed_url", "category", "status", "posts", "last_post_at",
                             "error_count", "last_error", "link"}


def test_blog_page_lists_its_posts_and_its_health(site):
    fid = site.blog["q12"]
    body = site.get(f"/blogs/{fid}").text
    health = between(body, 'id="health-h"', "</section>")
    assert "Failing lately" in health
    assert "HTTP 503 Service Unavailable" in health
    assert "1 failure in a row" in health
    assert "failed" in health  # the fetch history row
    posts = post_links(between(body, 'id="posts-h"', "</section>"))
    expected = {p for p, b in site.blog_of.items() if b == fid} - site.hidden_ids
    assert set(posts) == expected and len(posts) == len(expected)
    api = next(b for b in site.get("/api/blogs").json["blogs"] if b["id"] == fid)
    assert api["status"] == "erroring" and api["error_count"] == 1 and "503" in api["last_error"]


def test_blog_page_of_the_prolific_blog_pages_through_its_posts(site):
    fid = site.blog["prolific"]
    first = post_links(between(site.get(f"/blogs/{fid}").text, 'id="posts-h"', "</section>"))
    second = post_links(between(site.get(f"/blogs/{fid}?page=2").text, 'id="posts-h"', "</section>"))
    assert len(first) == 30 and len(second) == 10
    assert set(first) | set(second) == {p for p, b in site.blog_of.items() if b == fid}
    site.get(f"/blogs/{fid}?page=3", status=404)
    hot = site.get(f"/api/posts?blog={fid}").json["posts"]
    assert len(hot) == 30 and {p["blog"]["id"] for p in hot} == {fid}
    assert all(p["why"]["note"] == "" for p in hot)  # caps are between blogs, not within one


def test_about_privacy_and_healthz(site):
    about = site.get("/about").text
    assert "log<sub>10</sub>(1 + recommendations)" in about
    assert "at most 1 post per blog in the top 10" in about and "at most 2 per page of 30" in about
    assert "Editor's picks" in html.unescape(about)
    privacy = site.get("/privacy").text
    assert "Privacy" in privacy and "tracking" in privacy
    res = site.get("/healthz")
    assert res.body == b"ok" and res.content_type == "text/plain"
    assert_secure(res)


# --- search ---------------------------------------------------------------------------------------


def test_search_highlights_matches(site):
    body = site.get("/search?q=allotments").text
    assert "<mark>Allotments</mark>" in body
    assert "<mark>allotments</mark>" in body.lower() or "<mark>Allotments</mark>" in body


def test_search_escapes_titles_and_snippets(site):
    res = site.get("/search?q=alert")
    body = res.text
    assert site.post["script"] in post_links(body)
    assert SCRIPT_TITLE not in body
    assert "<script" not in body.lower()
    assert "&lt;script&gt;" in body
    assert "<b>bold" not in body and "&lt;b&gt;bold" in body
    assert "<mark>alert</mark>" in body
    assert_no_inline_code(body, "/search?q=alert")
    # The title is escaped on every other page that shows it too.
    for url in ("/", "/new", f"/posts/{site.post['script']}", f"/blogs/{site.blog['q6']}"):
        text = site.get(url).text
        assert SCRIPT_TITLE not in text and html.escape(SCRIPT_TITLE, quote=False) in text, url
    # In JSON it is data, not markup.
    assert site.get(f"/api/posts/{site.post['script']}").json["title"] == SCRIPT_TITLE


def test_search_per_blog_counts_did_you_mean_and_pagination(site):
    # "thanks" is in the forty-five posts of the quiet blogs and nowhere else.
    body = site.get("/search?q=thanks").text
    expected = {p for p in site.visible if site.blog_of[p] in {site.blog[f"q{i}"] for i in range(15)}
                and site.title[p] and "part " in site.title[p]}
    total = int(re.search(r"([\d,]+) results? for", body).group(1).replace(",", ""))
    assert total == len(expected) == 45
    counts = {int(b): int(n) for b, n in re.findall(
        r'<a href="/search\?q=thanks&amp;blog=(\d+)&amp;sort=relevance">[^<]+</a> \((\d+)\)', body)}
    assert sum(counts.values()) == total
    assert counts == {site.blog[f"q{i}"]: 3 for i in range(15)}
    # Pages of ten.
    assert "Page 1 of 5" in body
    seen = []
    for page in range(1, 6):
        text = site.get(f"/search?q=thanks&sort=relevance&page={page}").text
        ids = post_links(between(text, 'id="results-h"', "</section>"))
        assert len(ids) == 10 if page < 5 else 5
        seen += ids
        links = {rel: html.unescape(href) for rel, href in re.findall(r'rel="(next|prev)" href="([^"]+)"', text)}
        if page < 5:
            assert urllib.parse.parse_qs(urllib.parse.urlsplit(links["next"]).query) == {
                "q": ["thanks"], "sort": ["relevance"], "page": [str(page + 1)]}
        else:
            assert "next" not in links
        if page > 1:
            assert urllib.parse.parse_qs(urllib.parse.urlsplit(links["prev"]).query)["page"] == [str(page - 1)]
    assert len(seen) == len(set(seen)) == 45 and set(seen) == expected
    # Did you mean.
    typo = site.get("/search?q=doorstpe").text
    assert 'Did you mean <a href="/search?q=doorstep">doorstep</a>?' in typo
    # A blog filter.
    fid = site.blog["q3"]
    one = site.get(f"/search?q=thanks&blog={fid}").text
    assert {site.blog_of[p] for p in post_links(between(one, 'id="results-h"', "</section>"))} == {fid}
    assert "3 results for" in one


def test_search_without_a_query_shows_the_form(site):
    body = site.get("/search").text
    assert '<form class="search-form" action="/search"' in body
    assert 'id="results-h"' not in body


def test_search_json_shape(site):
    data = site.get("/api/search?q=thanks").json
    assert {"query", "total", "took_ms", "suggestion", "results", "page", "pages", "blog_counts"} <= set(data)
    assert data["total"] == 45 and len(data["results"]) == 10 and data["pages"] == 5 and data["page"] == 1
    assert data["query"] == "thanks"
    assert data["blog_counts"] == {str(site.blog[f"q{i}"]): 3 for i in range(15)}
    assert isinstance(data["took_ms"], (int, float)) and data["suggestion"] == ""
    for r in data["results"]:
        assert {"id", "title", "url", "blog", "published", "score", "highlights"} <= set(r)
        assert r["id"] in site.visible and r["url"] == site.url[r["id"]]
        datetime.fromisoformat(r["published"])
    assert any("<mark>" in r["highlights"] for r in data["results"])
    typo = site.get("/api/search?q=doorstpe").json
    assert typo["total"] == 0 and typo["suggestion"] == "doorstep"


# --- feeds out -----------------------------------------------------------------------------------


def parse_feed(res):
    parsed = feedparser.parse(res.body)  # bytes: feedparser fetches nothing
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed


def shown_title(entry, kind: str) -> str:
    """The title as a reader shows it: RSS titles are HTML (escaped plain text), Atom's text."""
    return html.unescape(entry.title) if kind == "rss" else entry.title


@pytest.mark.parametrize("kind", ["atom", "rss"])
def test_front_and_new_feeds_parse_and_match_the_pages(site, kind):
    front = parse_feed(site.get(f"/feed.{kind}"))
    hot = site.get("/api/posts?sort=hot").json["posts"]
    assert [shown_title(e, kind) for e in front.entries] == [p["title"] for p in hot]
    assert [e.link for e in front.entries] == [p["url"] for p in hot]
    assert len(front.entries) == 30
    assert site.get(f"/feed.{kind}").content_type == f"application/{kind}+xml"
    new = parse_feed(site.get(f"/new.{kind}"))
    newest = site.get("/api/posts?sort=new").json["posts"]
    assert [shown_title(e, kind) for e in new.entries] == [p["title"] for p in newest]
    assert [e.link for e in new.entries] == [p["url"] for p in newest]
    ids = [e.id for e in new.entries]
    assert ids == [f"{site.settings.site_url}/posts/{p['id']}" for p in newest]
    assert SCRIPT_TITLE in [shown_title(e, kind) for e in new.entries] + [shown_title(e, kind) for e in parse_feed(
        site.get(f"/blogs/{site.blog['q6']}.{kind}")).entries]


@pytest.mark.parametrize("kind", ["atom", "rss"])
def test_blog_feeds_parse_and_hold_that_blogs_posts(site, kind):
    for name in ("q12", "q7", "prolific"):
        fid = site.blog[name]
        parsed = parse_feed(site.get(f"/blogs/{fid}.{kind}"))
        expected = {p for p, b in site.blog_of.items() if b == fid} - site.hidden_ids
        assert len(parsed.entries) == min(30, len(expected))
        assert {e.link for e in parsed.entries} <= {site.url[p] for p in expected}
        assert {shown_title(e, kind) for e in parsed.entries} <= {site.title[p] for p in expected}
        assert parsed.feed.title.endswith("on Hustings")
    rich = parse_feed(site.get(f"/blogs/{site.blog['q7']}.{kind}"))
    entry = next(e for e in rich.entries if e.title == "Photos from the rally at the town hall")
    content = entry.content[0].value if kind == "atom" else entry.get("content", [{"value": entry.summary}])[0]["value"]
    assert "Styled words" in content and "steal()" not in content


def test_feeds_out_survive_characters_xml_cannot_carry(tmp_path):
    """A JSON Feed may say "\u0007" in a title and an RSS feed "&#7;": the sanitising stage drops
    them from posts (PostgreSQL refuses NUL outright), but a blog's name or category given by
    hand still holds them, and one such blog must not break every feed we serve."""
    from aggregator.pipeline import prepare

    settings = Settings(data_dir=tmp_path / "data", allow_networks=("127.0.0.1/32",))
    engine = fast_engine(settings)
    feed, _ = feed_store.add_feed(engine, "http://127.0.0.1/bell/feed.json", title="Bell\x07 Branch\x0b",
                             site_url="http://127.0.0.1/bell/", category="Odd\x01ities")
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "Bell", "items": [
        {"id": "1", "url": "http://127.0.0.1/bell/1", "title": "Ring\u0007 the bell",
         "content_html": "<p>Ding\u0008 dong</p>", "authors": [{"name": "Ann\u0001 Author"}], "tags": ["t\u0002ag"]},
    ]}).encode()
    parsed = prepare(body, feed, feed.url, {"content-type": "application/feed+json"}, settings)
    rss = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>R</title><item><title>Second&#7; bell</title>'
           b'<link>http://127.0.0.1/bell/2</link><guid>2</guid><description>two</description></item></channel></rss>')
    parsed_rss = prepare(rss, feed, "http://127.0.0.1/bell/feed.xml", {"content-type": "application/rss+xml"}, settings)
    assert parsed.posts[0].title == "Ring the bell" and parsed_rss.posts[0].title == "Second bell"  # dropped on the way in
    post_store.save_posts(engine, feed, list(parsed.posts) + list(parsed_rss.posts))
    app = make_app(settings)
    web = webtest.TestApp(app)
    try:
        for url in ("/feed.atom", "/feed.rss", "/new.atom", "/new.rss", f"/blogs/{feed.id}.atom",
                    f"/blogs/{feed.id}.rss"):
            parsed_out = feedparser.parse(web.get(url).body)
            assert parsed_out.bozo == 0, (url, parsed_out.get("bozo_exception"))
            titles = sorted(e.title for e in parsed_out.entries)
            # One blog: both posts on the front page too (a cap never leaves a place empty).
            assert titles == ["Ring the bell", "Second bell"], url
        opml = web.get("/blogs.opml").body
        assert listparser.parse(opml).bozo == 0
        feeds, _ = read_opml(opml)
        assert [(f.url, f.title) for f in feeds] == [(feed.url, "Bell Branch")]
        # The pages and the API show them too, without failing.
        assert "Ring" in web.get("/new").text and len(web.get("/api/posts?sort=new").json["posts"]) == 2
    finally:
        app.config["hustings.site"].searcher.close()
        engine.dispose()


def test_opml_lists_the_public_blogs_only(site):
    res = site.get("/blogs.opml")
    assert res.content_type == "text/x-opml"
    feeds, skipped = read_opml(res.body)
    assert not skipped
    urls = {f.url for f in feeds}
    expected = {f"http://127.0.0.1/{slug}/feed.xml" for slug in ["daily"] + [f"q{i}" for i in range(15)]}
    assert urls == expected
    parsed = listparser.parse(res.body)
    assert parsed.bozo == 0
    assert {f.url for f in parsed.feeds} == expected
    assert "The Daily Pamphleteer" in {f.title for f in parsed.feeds}


# --- the JSON API -------------------------------------------------------------------------------


def test_api_posts_shapes(site):
    hot = site.get("/api/posts").json  # hot by default
    assert hot["sort"] == "hot" and hot["page"] == 1 and hot["next_page"] == 2 and hot["pages"] >= 3
    p = hot["posts"][0]
    assert {"id", "title", "url", "link", "blog", "author", "published", "first_seen", "summary", "tags",
            "recommendations", "featured", "rank", "why"} <= set(p)
    assert set(p["blog"]) == {"id", "title", "url", "link"}
    assert p["link"] == f"{site.settings.site_url}/posts/{p['id']}"
    assert {"recommendations", "recommendation_points", "hours_since_published", "age_points", "window_hours",
            "score", "note"} <= set(p["why"])
    new = site.get("/api/posts?sort=new&page=2").json
    assert new["sort"] == "new" and new["page"] == 2 and len(new["posts"]) == 30
    fid = site.blog["q3"]
    one = site.get(f"/api/posts?sort=new&blog={fid}").json["posts"]
    assert {x["blog"]["id"] for x in one} == {fid}
    assert len(one) == len({x for x, b in site.blog_of.items() if b == fid} - site.hidden_ids)


def test_api_post_shape(site):
    pid = site.post["recommended"]
    data = site.get(f"/api/posts/{pid}").json
    assert data["id"] == pid and data["url"] == site.url[pid] and data["title"] == site.title[pid]
    assert data["recommendations"] == 50 and data["featured"] is False
    assert {"content_html", "summary_only", "why", "related"} <= set(data)
    assert data["why"]["rank"] == 1 and data["why"]["note"] == "" and data["why"]["featured"] is False
    for r in data["related"]:
        assert {"id", "title", "url", "blog", "link"} <= set(r)


@pytest.mark.parametrize("url, status", [
    ("/api/posts?sort=bogus", 400), ("/api/posts?page=abc", 400), ("/api/posts?page=-1", 400),
    ("/api/posts?page=0", 400), ("/api/posts?blog=abc", 400), ("/api/posts?blog=999999", 404),
    ("/api/posts/999999", 404), ("/api/search", 400), ("/api/search?q=", 400), ("/api/search?q=%20%20", 400),
    ("/api/search?q=NOT%20doorstep", 400), ("/api/search?q=doorstep&sort=bogus", 400),
    ("/api/search?q=doorstep&since=yesterday", 400), ("/api/search?q=doorstep&page=0", 400),
    ("/api/nothing-here", 404),
])
def test_api_errors_are_json(site, url, status):
    res = site.get(url, status=status)
    assert res.content_type == "application/json"
    err = res.json["error"]
    assert err["status"] == status and isinstance(err["message"], str) and err["message"]
    assert_secure(res)


# --- conditional GET and the cache ------------------------------------------------------------------

CACHED = ["/", "/?page=2", "/new", "/posts/{post}", "/blogs", "/blogs/{blog}", "/search?q=doorstep", "/search",
          "/about", "/privacy", "/feed.atom", "/feed.rss", "/new.atom", "/new.rss", "/blogs/{blog}.atom",
          "/blogs/{blog}.rss", "/blogs.opml", "/api/posts", "/api/posts?sort=new", "/api/posts/{post}",
          "/api/blogs", "/api/search?q=doorstep"]


def fill(site, url: str) -> str:
    return url.format(post=site.post["rich"], blog=site.blog["q7"])


@pytest.mark.parametrize("url", CACHED)
def test_every_cached_route_answers_conditional_gets(site, url):
    url = fill(site, url)
    first = site.get(url)
    etag, lm = first.headers.get("ETag"), first.headers.get("Last-Modified")
    assert etag and etag.startswith('"') and etag.endswith('"'), url
    assert lm, f"{url} has no Last-Modified"
    modified = parsedate_to_datetime(lm)
    assert modified <= datetime.now(timezone.utc) + timedelta(seconds=1)
    # A page with recommend forms (a post, and every listing of posts) carries the reader's own
    # CSRF token in them: private.
    path = urllib.parse.urlsplit(url).path
    forms = path in ("/", "/new") or (path.startswith(("/posts/", "/blogs/")) and not path.endswith((".atom", ".rss")))
    assert first.headers.get("Cache-Control") == ("private, no-cache" if forms else "no-cache")
    # If-None-Match: exact, in a list, and the weak form a proxy that compresses sends back.
    for inm in (etag, f'"nope", {etag}', f"W/{etag}"):
        res = site.get(url, headers={"If-None-Match": inm}, status=304)
        assert res.body == b"" and res.headers["ETag"] == etag
        assert_secure(res)
    res = site.get(url, headers={"If-None-Match": '"something-else"'}, status=200)
    assert res.body == first.body
    # If-Modified-Since: the same time or later is a 304, a second earlier is not.
    site.get(url, headers={"If-Modified-Since": lm}, status=304)
    later = format_datetime(modified + timedelta(hours=1), usegmt=True)
    site.get(url, headers={"If-Modified-Since": later}, status=304)
    earlier = format_datetime(modified - timedelta(seconds=1), usegmt=True)
    assert site.get(url, headers={"If-Modified-Since": earlier}, status=200).body == first.body
    # If-None-Match wins over If-Modified-Since.
    site.get(url, headers={"If-None-Match": '"other"', "If-Modified-Since": later}, status=200)
    site.get(url, headers={"If-Modified-Since": "not a date"}, status=200)
    # A parameter the route does not read cannot make a different page.
    joiner = "&" if "?" in url else "?"
    assert site.get(url + joiner + "utm_source=x").headers["ETag"] == etag


def test_healthz_is_not_cached(site):
    res = site.get("/healthz")
    assert res.headers["Cache-Control"] == "no-store"


def small_site(data_dir: Path, blogs: int = 12):
    """A site with `blogs` blogs of two posts each, indexed, its cache on a test clock."""
    settings = Settings(data_dir=data_dir, allow_networks=("127.0.0.1/32",))
    engine = fast_engine(settings)
    t0 = datetime.now(timezone.utc).replace(microsecond=0)
    b = Builder(settings, engine, t0)
    feeds = []
    for i in range(blogs):
        feed = b.feed(f"s{i}", f"Small Blog {i}")
        feeds.append(feed)
        for j in range(2):
            b.save(feed, f"s{i}.{j}", f"Small post {i}.{j} about the {TOPICS[i % len(TOPICS)].lower()}",
                   seen_h=i * 0.5 + j * 6, content=paragraphs(i + j, f"Marker{i}x{j} doorstep."))
    writer.rebuild(engine, settings, procs=1)
    app = make_app(settings)
    clock = Clock()
    frozen_cache(app, clock)
    return settings, engine, app, webtest.TestApp(app), clock, b, feeds


@pytest.fixture
def small(tmp_path):
    settings, engine, app, web, clock, b, feeds = small_site(tmp_path / "data")
    yield settings, engine, app, web, clock, b, feeds
    app.config["hustings.site"].searcher.close()
    engine.dispose()


def test_hiding_a_post_invalidates_every_cached_page_at_the_next_version_check(small):
    settings, engine, app, web, clock, b, feeds = small
    victim = b.post["s0.0"]
    urls = ["/", "/new", "/feed.atom", "/new.rss", f"/blogs/{feeds[0].id}", "/api/posts", "/api/posts?sort=new",
            f"/blogs/{feeds[0].id}.atom", "/search?q=doorstep", "/api/search?q=doorstep"]
    before = {}
    for url in urls:
        res = web.get(url)
        assert b.title[victim] in res.text or str(victim) in res.text, url
        before[url] = (res.headers["ETag"], res.headers["Last-Modified"])
    time.sleep(1.1)  # Last-Modified has whole seconds: let the change fall in a later one
    moderation.hide_post(engine, victim, actor="test", reason="spam")
    writer.sync(engine, settings)
    # Within the second the cache does not ask the database again ...
    assert web.get("/").headers["ETag"] == before["/"][0]
    # ... and after it, every page is rendered afresh: no waiting for the minute to pass.
    clock.advance(1.01)
    for url in urls:
        etag, lm = before[url]
        res = web.get(url, headers={"If-None-Match": etag}, status=200)
        assert res.headers["ETag"] != etag, url
        assert b.title[victim] not in res.text, url
        # A client that only sends If-Modified-Since is not told its copy (with the hidden post) is current.
        web.get(url, headers={"If-Modified-Since": lm}, status=200)
    web.get(f"/posts/{victim}", status=410)


def test_a_new_post_shows_at_once(small):
    settings, engine, app, web, clock, b, feeds = small
    etag = web.get("/new").headers["ETag"]
    api_etag = web.get("/api/posts?sort=new").headers["ETag"]
    feed_etag = web.get("/new.atom").headers["ETag"]
    b.t0 = datetime.now(timezone.utc)
    pid = b.save(feeds[3], "brand-new", "Breaking: the depot is saved", seen_h=0)
    clock.advance(1.01)
    res = web.get("/new", headers={"If-None-Match": etag}, status=200)
    assert post_links(res.text)[0] == pid
    assert web.get("/api/posts?sort=new").json["posts"][0]["id"] == pid
    assert web.get("/api/posts?sort=new").headers["ETag"] != api_etag
    parsed = feedparser.parse(web.get("/new.atom", headers={"If-None-Match": feed_etag}, status=200).body)
    assert parsed.entries[0].title == "Breaking: the depot is saved"
    assert post_links(ranked_section(web.get("/").text))[0] == pid


def test_cached_pages_are_rendered_again_after_a_minute_even_without_a_change(small):
    settings, engine, app, web, clock, b, feeds = small
    cache = app.config["hustings.site"].cache
    web.get("/blogs")
    misses = cache.misses
    clock.advance(30)
    web.get("/blogs")
    assert cache.misses == misses  # served from the cache
    clock.advance(settings.page_cache_s)
    web.get("/blogs")
    assert cache.misses == misses + 1


def test_a_change_during_rendering_is_not_cached_as_current(small, monkeypatch):
    """The cache must tag a page with the version read before rendering it.

    Here a moderator hides a post while the front page is being rendered (after its
    posts were read, before the page is stored), and the version check falls due in
    that moment. Tagged with the version read afterwards, the page with the hidden
    post would be served as current for up to a minute.
    """
    settings, engine, app, web, clock, b, feeds = small
    victim = b.post["s0.0"]
    real = listings.latest_change
    done = []

    def latest_change(engine_, blog_id=None):
        if not done:
            done.append(1)
            moderation.hide_post(engine, victim, actor="test", reason="spam")
            clock.advance(1.01)
        return real(engine_, blog_id)

    monkeypatch.setattr(listings, "latest_change", latest_change)
    first = web.get("/")
    assert victim in post_links(first.text)  # rendered from the posts as they were
    second = web.get("/")
    assert victim not in post_links(second.text)


def test_featuring_a_post_changes_no_score_and_never_takes_it_off_the_front_page(small):
    settings, engine, app, web, clock, b, feeds = small

    def hot():
        return web.get("/api/posts?sort=hot").json["posts"]

    def terms(posts):
        return {p["id"]: (p["why"]["recommendation_points"], round(p["why"]["hours_since_published"], 1))
                for p in posts}

    before = hot()
    assert len(before) == 24  # twelve blogs of two: one page
    picked = before[12]["id"]  # below the top ten
    t = datetime.now(timezone.utc)
    moderation.feature_post(engine, picked, actor="editor", now=t)
    clock.advance(1.01)
    after = hot()
    # Out of the ranked list and into the box; nothing else moves and no score changes.
    assert [p["id"] for p in after] == [p["id"] for p in before if p["id"] != picked]
    assert terms(after) == {k: v for k, v in terms(before).items() if k != picked}
    body = web.get("/").text
    assert post_links(picks_section(body)) == [picked]
    assert picked not in post_links(ranked_section(body))
    # The box holds three. A fourth pick pushes the oldest out of it, back to its ranked place.
    later = [before[i]["id"] for i in (15, 18, 21)]
    for n, pid in enumerate(later, start=1):
        moderation.feature_post(engine, pid, actor="editor", now=t + timedelta(seconds=n))
    clock.advance(1.01)
    body = web.get("/").text
    assert post_links(picks_section(body)) == later[::-1]
    ranked = post_links(ranked_section(body))
    assert ranked == [p["id"] for p in before if p["id"] not in later]
    assert picked in ranked, "a pick beyond the box must not vanish from the front page"
    data = web.get(f"/api/posts/{picked}").json
    assert data["featured"] is True and data["why"]["rank"] == ranked.index(picked) + 1
    ids = re.findall(r'\sid="([^"]+)"', body)
    assert len(ids) == len(set(ids)), "an id used twice on the page"


def test_feature_and_unfeature_from_the_command_line_change_the_picks(cli, tmp_path):
    settings, engine, app, web, clock, b, feeds = small_site(cli.data_dir, blogs=3)
    try:
        pid = b.post["s2.1"]
        assert picks_section(web.get("/").text) == ""
        out, _ = cli("posts", "feature", str(pid), "--by", "editor")
        assert f"post {pid} is an editor's pick" in out
        clock.advance(1.01)
        body = web.get("/").text
        assert post_links(picks_section(body)) == [pid]
        assert b.title[pid] in html.unescape(picks_section(body))
        assert web.get(f"/api/posts/{pid}").json["featured"] is True
        out, _ = cli("posts", "unfeature", str(pid))
        assert "no longer" in out
        clock.advance(1.01)
        assert picks_section(web.get("/").text) == ""
        assert web.get(f"/api/posts/{pid}").json["featured"] is False
    finally:
        app.config["hustings.site"].searcher.close()
        engine.dispose()


# --- security headers on every kind of response -----------------------------------------------------


@pytest.mark.parametrize("url, status", [
    ("/", 200), ("/posts/{post}", 200), ("/search?q=doorstep", 200), ("/feed.atom", 200), ("/blogs.opml", 200),
    ("/api/posts", 200), ("/static/style.css", 200), ("/static/favicon.svg", 200), ("/?page=abc", 400),
    ("/api/posts?page=abc", 400), ("/nowhere", 404), ("/api/posts/999999", 404), ("/static/missing.css", 404),
    ("/static/../app.py", 403), ("/posts/{hidden}", 410), ("/api/posts/{hidden}", 410),
])
def test_security_headers_on_every_response(site, url, status):
    url = url.format(post=site.post["rich"], hidden=site.post["hidden"])
    res = site.get(url, status=status)
    assert_secure(res)
    if status >= 400 and not url.startswith("/api/"):
        assert_no_inline_code(res.text, url)
    if url.startswith("/static/../"):
        assert b"make_app" not in res.body


def test_security_headers_on_304s_and_405s(site):
    etag = site.get("/").headers["ETag"]
    assert_secure(site.get("/", headers={"If-None-Match": etag}, status=304))
    css = site.get("/static/style.css")
    assert "immutable" in css.headers["Cache-Control"]
    assert_secure(site.get("/static/style.css", headers={"If-Modified-Since": css.headers["Last-Modified"]},
                           status=304))
    assert_secure(site.web.post("/", status=405))
    assert_secure(site.web.head("/"))


def test_a_500_is_an_apology_with_the_headers(site, monkeypatch, caplog):
    app = make_app(site.settings)
    web = webtest.TestApp(app)

    def broken(*args, **kwargs):
        raise RuntimeError("the database fell over")

    monkeypatch.setattr(listings, "blogs", broken)
    res = web.get("/blogs", status=500, expect_errors=True)
    assert_secure(res)
    assert "Something went wrong" in res.text and "fell over" not in res.text
    assert_no_inline_code(res.text, "the 500 page")
    assert res.headers["Cache-Control"] == "no-store"
    api = web.get("/api/blogs", status=500, expect_errors=True)
    assert_secure(api)
    assert api.json["error"]["status"] == 500 and "fell over" not in api.text
    assert any("fell over" in r.getMessage() for r in caplog.records)  # the log has it
    app.config["hustings.site"].searcher.close()


ALL_PAGES = ["/", "/?page=2", "/new", "/new?page=2", "/posts/{post}", "/posts/{script}", "/posts/{pick}", "/blogs",
             "/blogs/{blog}", "/blogs/{erroring}", "/search", "/search?q=doorstep", "/search?q=alert",
             "/search?q=doorstpe", "/about", "/privacy"]


def test_no_page_has_inline_script_or_style_or_loads_from_another_host(site):
    for url in ALL_PAGES:
        url = url.format(post=site.post["rich"], script=site.post["script"], pick=site.post["pick_new"],
                         blog=site.blog["q7"], erroring=site.blog["q12"])
        res = site.get(url)
        assert_secure(res)
        assert res.content_type == "text/html" and res.charset.lower() == "utf-8"
        assert_no_inline_code(res.text, url)
        # Blogs' own pictures: in a post, and each post's first one on the lists of posts (issue 14).
        assert_nothing_from_other_hosts(res.text, url, images_allowed=url.startswith(("/posts/", "/new", "/blogs/"))
                                        or url.split("?")[0] == "/")
        for tag, attrs in Tags(res.text).tags:
            if tag == "img":  # alt (empty when the feed said nothing), no referrer, lazy
                assert "alt" in attrs and attrs.get("referrerpolicy") == "no-referrer", (url, attrs)
                assert attrs.get("loading") == "lazy", (url, attrs)
        assert '<link rel="stylesheet" href="/static/style.css?v=' in res.text
        assert '<html lang="en-GB">' in res.text and 'class="skip" href="#main"' in res.text
    # The picture of the rich post: on its page, and as its post's picture on the lists, with its size.
    rich = site.get(f"/posts/{site.post['rich']}").text
    assert "img.q7.example" in rich
    for url in ("/", f"/blogs/{site.blog['q7']}"):
        imgs = [a for t, a in Tags(site.get(url).text).tags if t == "img" and "img.q7.example" in a.get("src", "")]
        assert len(imgs) == 1 and imgs[0]["width"] and imgs[0]["height"], (url, imgs)
    assert "img.q7.example" not in site.get("/search?q=rally").text  # search results are words only


def test_page_weight(site):
    front = site.get("/")
    assert len(post_links(ranked_section(front.text))) == 30
    # Every line has its recommend button (one form, one token, for the page's thirty).
    assert len(re.findall(r'formaction="/posts/\d+/recommend"', front.text)) == 30
    assert front.text.count('name="csrf_token"') == 1
    assert len(front.body) <= 30 * 1024, len(front.body)
    css = site.get("/static/style.css")
    assert len(css.body) <= 20 * 1024  # the budget: HTML <= 30 KB, CSS <= 20 KB (issue 14)
    text = css.text
    assert "@import" not in text and "@font-face" not in text
    for url in re.findall(r"url\(([^)]*)\)", text):
        assert not urllib.parse.urlsplit(url.strip("'\" ")).netloc, url
    assert "prefers-color-scheme: dark" in text


# --- bad parameters: 400 or 404, never 500 ---------------------------------------------------------

LONG_Q = "doorstep " * 1200  # 10,800 characters


@pytest.mark.parametrize("url, statuses", [
    ("/?page=-1", {400}), ("/?page=0", {400}), ("/?page=abc", {400}), ("/?page=99999999999", {400}),
    ("/?page=1e3", {400}), ("/?page=1.5", {400}), ("/?page=%ff", {400}), ("/?page=%C2%B2", {400}),
    ("/?page=%EF%BC%91", {400}), ("/?page=%00", {400}), ("/?page=50", {404}), ("/?page=1000", {404}),
    ("/new?page=-1", {400}), ("/new?page=999", {404}), ("/new?page=%ff", {400}),
    ("/blogs/{blog}?page=0", {400}), ("/blogs/{blog}?page=99", {404}), ("/blogs/{blog}?page=%C2%B2", {400}),
    ("/search?q=%ff", {400}), ("/search?q=doorstep&page=%ff", {400}), ("/search?q=doorstep&page=0", {400}),
    ("/search?q=doorstep&page=abc", {400}), ("/search?q=doorstep&page=%C2%B2", {400}),
    ("/search?q=doorstep&page=99999999999", {400}), ("/search?q=doorstep&sort=bogus", {400}),
    ("/search?q=doorstep&blog=abc", {400}), ("/search?q=doorstep&blog=%C2%B2", {200, 400}),
    ("/search?q=doorstep&blog=99999999999999999999", {400}), ("/search?q=doorstep&since=notadate", {200, 400}),
    ("/search?q=doorstep&since=0001-01-01T00:00:00%2B01:00", {200, 400}),
    ("/search?q=doorstep&until=9999-12-31T23:00:00-05:00", {200, 400}),
    ("/search?q=doorstep&since=2024-13-45", {200, 400}), ("/search?q=%00", {200, 400}),
    ("/search?q=" + urllib.parse.quote(LONG_Q), {200, 400}), ("/search?q=%22", {200, 400}),
    ("/search?q=(", {200, 400}), ("/search?q=title%3A", {200, 400}), ("/search?q=NOT", {200, 400}),
    ("/search?q=*%3F~", {200, 400}), ("/search?q=%ED%A0%80", {400}),
    ("/api/posts?page=99999999999", {400}), ("/api/posts?page=1e3", {400}), ("/api/posts?page=%ff", {400}),
    ("/api/posts?blog=%C2%B2", {400}), ("/api/posts?blog=99999999999999999999", {400}),
    ("/api/posts?blog=-1", {400}), ("/api/posts?sort=%ff", {400}),
    ("/api/search?q=" + urllib.parse.quote(LONG_Q), {400}), ("/api/search?q=%ff", {400}),
    ("/api/search?q=doorstep&until=9999-12-31T23:00:00-05:00", {200, 400}),
    ("/posts/abc", {404}), ("/posts/999999", {404}), ("/posts/0", {404}), ("/posts/-1", {404}),
    ("/posts/99999999999999999999999", {404}), ("/blogs/999999", {404}), ("/blogs/abc", {404}),
    ("/blogs/99999999999999999999", {404}), ("/blogs/999999.atom", {404}), ("/blogs/99999999999999999999.rss", {404}),
    ("/api/posts/99999999999999999999999", {404}), ("/api/posts/-5", {404}),
])
def test_bad_parameters_are_400_or_404_never_500(site, url, statuses):
    res = site.get(fill(site, url), expect_errors=True)
    assert res.status_int in statuses, (url, res.status, res.text[:300])
    assert_secure(res)
    if res.status_int >= 400:
        assert "Cache-Control" in res.headers and res.headers["Cache-Control"] == "no-store"
        if url.startswith("/api/"):
            assert res.json["error"]["status"] == res.status_int


def test_a_query_too_long_is_explained_on_the_page(site):
    res = site.get("/search?q=" + urllib.parse.quote(LONG_Q), expect_errors=True)
    if res.status_int == 200:
        error = between(res.text, '<p class="error" role="alert">', "</p>")
        assert "characters long" in error
        assert 'id="results-h"' not in res.text
    else:
        assert res.status_int == 400


# --- a real server --------------------------------------------------------------------------------


def test_smoke_over_a_real_socket(site):
    from web.server import serve_threaded

    ready: queue.Queue = queue.Queue()
    stop = threading.Event()
    errors: list = []

    def run():
        try:
            serve_threaded(site.settings, "127.0.0.1", 0, threads=2, on_ready=lambda srv: ready.put(srv.effective_port),
                           stop=stop)
        except BaseException as exc:  # reported below
            errors.append(exc)
            ready.put(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        port = ready.get(timeout=10)
        assert port, errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        res = conn.getresponse()
        body = res.read()
        assert res.status == 200
        assert b"The Daily Pamphleteer" in body
        assert "frame-ancestors 'none'" in res.getheader("Content-Security-Policy")
        assert res.getheader("ETag")
        conn.request("GET", "/healthz")
        res = conn.getresponse()
        assert (res.status, res.read()) == (200, b"ok")
        conn.request("GET", "/posts/999999")
        res = conn.getresponse()
        res.read()
        assert res.status == 404 and res.getheader("X-Content-Type-Options") == "nosniff"
        conn.close()
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert not errors


def test_many_readers_asking_for_an_expired_page_cause_one_render():
    # One thread renders; the others wait for its page instead of rendering it too (they
    # would slow each other down through the GIL: waitress p99 773 -> 71 ms in bench/web.py).
    import threading
    import time as _time

    from web.cache import PageCache

    cache = PageCache(lambda: 1, max_age_s=60)
    renders = []
    start = threading.Barrier(16)
    results = []

    def reader():
        start.wait()
        with cache.rendering("/") as entry:
            if entry is None:
                renders.append(1)
                _time.sleep(0.2)  # a slow render, so the others arrive while it runs
                entry = cache.put("/", 200, b"page", "text/html", 0.0, 1)
        results.append(entry.body)

    threads = [threading.Thread(target=reader) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(renders) == 1 and results == [b"page"] * 16
