"""Issue 14's two ranking defects, fixed: fresh (age from the post's own date) and full
(per-blog caps move a post down and never leave a place empty).

The pure rules are checked on `aggregator.ranking` directly; then a site on a real
database (SQLite and PostgreSQL) shows them end to end: a blog added today with a
back catalogue from 2019, an undated and a future-dated post, one prolific blog and
several quiet ones, read through the front page, /new, their Atom and RSS feeds and
the API.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from datetime import datetime, timedelta, timezone

import feedparser
import pytest
import sqlalchemy as sa
import webtest

from aggregator import db, feed_store, listings, post_store
from aggregator.models import Post
from aggregator.ranking import RECENT_WINDOWS, Candidate, rank, score_terms
from aggregator.sanitize import sanitize_post
from aggregator.settings import Settings
from web.app import make_app
from web.cache import PageCache

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
WINDOW = 24.0


def ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def ranked(cands, **kw):
    kw.setdefault("now", NOW)
    kw.setdefault("window_h", WINDOW)
    return rank(list(cands), **kw)


# --- defect 1: age from the post's own date, clamped to first sight --------------------------


def test_a_back_catalogue_seen_today_ages_from_its_own_dates():
    """A blog added today: its 2019 post was first seen a minute ago but is seven years old."""
    old = Candidate(1, 1, ago(0.02), 0, published=datetime(2019, 6, 1, tzinfo=timezone.utc))
    fresh = Candidate(2, 2, ago(5), 0, published=ago(5.2))
    terms = score_terms(old, now=NOW, window_h=WINDOW)
    assert terms["hours_since_published"] > 24 * 365 * 6
    assert [p.id for p in ranked([old, fresh])] == [2, 1]


def test_a_date_after_first_sight_is_clamped_to_first_sight():
    """A feed can make its posts older, never newer: a future date counts as first seen."""
    future = Candidate(1, 1, ago(40), 0, published=datetime(2099, 1, 1, tzinfo=timezone.utc))
    assert future.dated == ago(40)
    assert score_terms(future, now=NOW, window_h=WINDOW)["hours_since_published"] == pytest.approx(40)
    # A date an hour after first sight (a slow clock at the blog) gains that hour back, no more.
    late = Candidate(2, 1, ago(10), 0, published=ago(9))
    assert score_terms(late, now=NOW, window_h=WINDOW)["hours_since_published"] == pytest.approx(10)


def test_an_undated_post_counts_from_first_sight():
    undated = Candidate(1, 1, ago(30), 0)
    assert undated.dated == ago(30)
    assert score_terms(undated, now=NOW, window_h=WINDOW)["hours_since_published"] == pytest.approx(30)


# --- defect 2: caps move posts down, never leave a place empty ----------------------------------


def issue_site(blogs=7, posts=36):
    """The issue's reproduction: 7 blogs and 36 posts, one blog posting most of them."""
    cands, n = [], 0
    for b in range(1, blogs + 1):
        for j in range(3 if b > 1 else posts - 3 * (blogs - 1)):
            n += 1
            # Blog 1 posts every half hour; the others every four hours.
            cands.append(Candidate(n, b, ago(0.5 + j / 2) if b == 1 else ago(1 + j * 4 + b * 0.3), 0))
    assert len(cands) == posts
    return cands


def test_page_one_is_full_whatever_the_number_of_blogs():
    placed = ranked(issue_site())
    pages = Counter(p.page for p in placed)
    assert pages == {1: 30, 2: 6}, "page 1 holds 30 posts; the rest go on page 2"
    assert [p.position for p in placed] == list(range(1, 37))


def test_the_top_ten_holds_every_blog_with_recent_posts_then_repeats():
    placed = ranked(issue_site())
    top = [p.blog_id for p in placed[:10]]
    assert len(set(top[:7])) == 7, f"the seven blogs first: {top}"
    assert set(top) == set(range(1, 8))
    # A repeat only once every blog is in: the eighth to tenth places go to second posts,
    # and no blog has a third post in the top ten while another has only one.
    counts = Counter(top)
    assert max(counts.values()) - min(counts.values()) <= 1, counts


def test_a_blog_repeats_in_the_top_ten_only_when_there_are_not_enough_others():
    # Twelve blogs with recent posts: ten different blogs in the top ten.
    cands = [Candidate(b * 100 + j, b, ago(b * 0.1 + j), 0) for b in range(1, 13) for j in range(4)]
    top = [p.blog_id for p in ranked(cands)[:10]]
    assert len(set(top)) == 10
    # Three blogs: the top ten is full, three of each and one more, best first.
    cands = [Candidate(b * 100 + j, b, ago(b * 0.1 + j), 0) for b in range(1, 4) for j in range(8)]
    placed = ranked(cands)
    top = [p.blog_id for p in placed[:10]]
    assert len(top) == 10 and top[:3] == [1, 2, 3]
    assert sorted(Counter(top).values()) == [3, 3, 4]
    assert Counter(p.page for p in placed) == {1: 24}


def test_an_old_post_is_not_pulled_into_the_top_ten_for_variety():
    """A blog whose newest post is a month old has no claim on a top-ten place: the prolific
    blog's second post of today comes first."""
    cands = [Candidate(i, 1, ago(i), 0) for i in range(1, 15)]
    cands += [Candidate(100 + b, b, ago(2 + b), 0) for b in range(2, 6)]  # four more blogs, today
    cands.append(Candidate(999, 9, ago(30 * 24), 0))  # a quiet blog: a month ago
    placed = {p.id: p for p in ranked(cands)}
    assert placed[999].position == len(cands), "by score alone: last"
    top = [p for p in placed.values() if p.position <= 10]
    assert {p.blog_id for p in top} == {1, 2, 3, 4, 5}


def test_a_capped_post_moves_down_and_says_so():
    placed = ranked(issue_site())
    prolific = [p for p in placed if p.blog_id == 1]
    moved = [p for p in prolific if p.note]
    assert moved and all(p.note.startswith("moved down from ") for p in moved)


def natural_order(cands):
    order = sorted(cands, key=lambda c: (score_terms(c, now=NOW, window_h=WINDOW)["score"], c.dated, c.id),
                   reverse=True)
    return {c.id: i + 1 for i, c in enumerate(order)}


@pytest.mark.parametrize("seed", range(16))
def test_pages_are_full_and_every_choice_is_the_best_the_caps_allow(seed):
    rng = random.Random(seed)
    blogs = rng.randint(1, 25)
    cands = []
    for i in range(rng.randint(0, 250)):
        blog = min(int(rng.expovariate(0.35)), blogs - 1)
        seen = ago(rng.choice([0, 1, 2, 5, 40, 400]) + rng.randint(0, 300) / 4)
        published = rng.choice([None, seen, seen - timedelta(days=rng.randint(0, 3000)), seen + timedelta(hours=9)])
        cands.append(Candidate(i + 1, blog, seen, rng.choice([0, 0, 0, 1, 3, 10, 120]), published))
    placed = ranked(cands)
    assert sorted(p.id for p in placed) == sorted(c.id for c in cands)
    # Every page but the last is full.
    sizes = Counter(p.page for p in placed)
    assert all(n == 30 for page, n in sizes.items() if page < max(sizes, default=0)), sizes
    assert len(placed) == 0 or sizes[max(sizes)] == len(placed) - 30 * (max(sizes) - 1)
    # Each place went to the best-scored post that was within reach and under its blog's cap,
    # or, when none was, to the best of those least over it.
    by_id = {c.id: c for c in cands}
    score = {c.id: score_terms(c, now=NOW, window_h=WINDOW)["score"] for c in cands}
    natural = natural_order(cands)
    in_top: Counter = Counter()
    left = sorted(cands, key=lambda c: natural[c.id])
    for p in placed:
        page_items = [q for q in placed if q.page == p.page and q.position < p.position]
        top = p.page == 1 and p.position <= 10
        on_page = Counter(q.blog_id for q in page_items)
        heads = {}
        for c in left:
            heads.setdefault(c.blog_id, c)
        best = min(heads.values(), key=lambda c: natural[c.id])

        def over(c):
            return max(0, in_top[c.blog_id]) if top else max(0, on_page[c.blog_id] - 1)

        reach = [c for c in heads.values() if score[c.id] >= score[best.id] - RECENT_WINDOWS]
        expected = min(reach, key=lambda c: (over(c), natural[c.id]))
        assert p.id == expected.id, (seed, p.position)
        if top:
            in_top[p.blog_id] += 1
        left.remove(by_id[p.id])
        assert (p.note != "") == (p.position > natural[p.id])


# --- end to end: a site with a back catalogue, undated and future-dated posts -----------------

STEADY = ["Hollinbridge North Branch", "Four Walls Housing Action", "The Lantern Forum", "Shop Floor Notes",
          "Riverside Ward Labour", "Tenants Together"]
BACK = [("My 2019 conference diary", datetime(2019, 9, 24, 18, 0, tzinfo=timezone.utc))] + [
    (f"From the archive, number {k}", datetime(2020 + k % 4, 1 + k, 3, tzinfo=timezone.utc)) for k in range(11)]


class Site:
    def __init__(self, settings, engine, web, t0):
        self.settings, self.engine, self.web, self.t0 = settings, engine, web, t0
        self.ids: dict[str, int] = {}
        self.blog_of: dict[int, int] = {}
        self.blogs: dict[str, int] = {}


def save(site, feed, name, title, *, seen_h, published):
    n = len(site.ids) + 1
    url = f"http://127.0.0.1/{feed.id}/posts/{n}"
    raw = Post(feed.id, f"guid-{n}", url, title, f"<p>{title}. Words about the branch and the council.</p>",
               published=published, identity=f"g:{n}", base_url=url)
    clean = sanitize_post(raw, site.settings)
    assert post_store.save_posts(site.engine, feed, [clean], now=site.t0 - timedelta(hours=seen_h)).new == 1
    with db.reading(site.engine) as conn:
        pid = conn.execute(sa.select(db.posts.c.id).where(db.posts.c.feed_id == feed.id,
                                                          db.posts.c.key == clean.key)).scalar_one()
    site.ids[name] = pid
    site.blog_of[pid] = feed.id
    return pid


@pytest.fixture(scope="module")
def site(tmp_path_factory, database):
    settings = Settings(data_dir=tmp_path_factory.mktemp("front") / "data", allow_networks=("127.0.0.1/32",))
    engine = db.make_engine(settings)
    db.migrate(engine)
    t0 = datetime.now(timezone.utc).replace(microsecond=0)
    s = Site(settings, engine, None, t0)

    def feed(slug, title):
        made, _ = feed_store.add_feed(engine, f"http://127.0.0.1/{slug}/feed.xml", title=title,
                                      site_url=f"http://127.0.0.1/{slug}/", category="Branches")
        s.blogs[slug] = made.id
        return made

    prolific = feed("daily", "The Daily Pamphleteer")
    for k in range(12):  # a post every half hour: the newest posts
        save(s, prolific, f"p{k}", f"Campaign diary, entry {k}", seen_h=0.5 + k / 2,
             published=t0 - timedelta(hours=0.5 + k / 2, minutes=5))
    for i, name in enumerate(STEADY):
        f = feed(f"s{i}", name)
        for j, hours in enumerate((2, 20, 50, 90)):
            save(s, f, f"s{i}.{j}", f"{name}: report {j}", seen_h=hours + i,
                 published=t0 - timedelta(hours=hours + i, minutes=10))
    # Undated: counts from first sight. Future-dated: counts from first sight, no later.
    save(s, feed("undated", "No Dates Weekly"), "undated", "A post without a date", seen_h=30, published=None)
    save(s, feed("future", "Tomorrow's Papers"), "future", "A post dated in 2099", seen_h=3,
         published=datetime(2099, 1, 1, tzinfo=timezone.utc))
    # Added today: the whole back catalogue is first seen a minute ago.
    back = feed("back", "Back Catalogue Blog")
    for k, (title, when) in enumerate(BACK):
        save(s, back, f"back{k}", title, seen_h=0.02, published=when)

    app = make_app(settings)
    site_obj = app.config["hustings.site"]
    site_obj.cache = PageCache(lambda: listings.site_version(engine), settings.page_cache_s, clock=lambda: 1000.0)
    s.web = webtest.TestApp(app)
    yield s
    site_obj.searcher.close()
    engine.dispose()


def hot(site) -> list[dict]:
    out, page = [], 1
    while True:
        data = site.web.get(f"/api/posts?sort=hot&page={page}").json
        out.extend(data["posts"])
        if data["next_page"] is None:
            return out
        page += 1


def links(fragment: str) -> list[int]:
    return [int(m) for m in re.findall(r'href="/posts/(\d+)"', fragment)]


def ranked_ids(body: str) -> list[int]:
    """The post ids of the front page's ranked list, in order (each post once)."""
    start = body.index('aria-labelledby="ranked-h"')
    seen: list[int] = []
    for pid in links(body[start:body.index("</section>", start)]):
        if pid not in seen:
            seen.append(pid)
    return seen


def test_the_back_catalogue_ranks_below_every_recent_post(site):
    posts = hot(site)
    back = {pid for name, pid in site.ids.items() if name.startswith("back")}
    places = {p["id"]: p["rank"] for p in posts}
    worst_recent = max(r for pid, r in places.items() if pid not in back)
    assert min(places[pid] for pid in back) > worst_recent, "every post of this year ranks first"
    diary = next(p for p in posts if p["id"] == site.ids["back0"])
    assert diary["why"]["hours_since_published"] > 24 * 365 * 5
    assert diary["published"].startswith("2019-09-24")
    # The front page (its ranked list: 30 posts) has none of them.
    front = ranked_ids(site.web.get("/").text)
    assert len(front) == 30 and not back & set(front)


def test_undated_and_future_dated_posts_count_from_first_sight(site):
    posts = {p["id"]: p for p in hot(site)}
    undated, future = posts[site.ids["undated"]], posts[site.ids["future"]]
    assert undated["why"]["hours_since_published"] == pytest.approx(30, abs=0.2)
    assert future["why"]["hours_since_published"] == pytest.approx(3, abs=0.2)
    assert future["published"] == future["first_seen"]


def test_new_is_newest_by_the_posts_own_dates(site):
    newest = site.web.get("/api/posts?sort=new").json["posts"]
    dates = [p["published"] for p in newest]
    assert dates == sorted(dates, reverse=True)
    back = {pid for name, pid in site.ids.items() if name.startswith("back")}
    assert not back & {p["id"] for p in newest}, "the back catalogue is at the end of /new, not the start"
    page = site.web.get("/new").text
    listed = links(page[page.index("<h1"):])
    assert listed[0] == site.ids["p0"] and not back & set(listed)
    # The 2019 post says 2019 where it is listed, not "just now".
    last = site.web.get("/new?page=2").text
    assert "24 September 2019" in last


@pytest.mark.parametrize("path", ["/feed.atom", "/feed.rss", "/new.atom", "/new.rss"])
def test_the_feeds_of_the_front_page_and_new_are_fresh_and_full(site, path):
    parsed = feedparser.parse(site.web.get(path).body)
    titles = [e.title for e in parsed.entries]
    assert len(titles) == 30, f"{path} has {len(titles)} entries"
    assert not any(t.startswith(("My 2019", "From the archive")) for t in titles), titles


def test_page_one_holds_thirty_posts_and_the_top_ten_every_recent_blog(site):
    data = site.web.get("/api/posts?sort=hot").json
    total = len(site.ids)
    assert len(data["posts"]) == 30
    assert data["pages"] == math.ceil(total / 30)
    top = [p["blog"]["id"] for p in data["posts"][:10]]
    recent_blogs = {site.blogs[k] for k in site.blogs if k != "back"}
    assert set(top) == recent_blogs, "every blog with a recent post is in the top ten"
    assert len(set(top[:len(recent_blogs)])) == len(recent_blogs), "each once before any repeats"
    assert ranked_ids(site.web.get("/").text) == [p["id"] for p in data["posts"]]
