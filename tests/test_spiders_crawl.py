"""Crawls end to end: `hustings crawl` starts `python -m spiders.run` over the loopback test blogs.

Every crawl here is a real subprocess (Scrapy's reactor cannot restart in-process). It
reaches only 127.0.0.1 (IP literals, no names); the trap server on 127.0.0.2 is outside
allow_networks and must never see a request.
"""

import json

import sqlalchemy as sa

from aggregator import crawls, db, feed_store, post_store
from aggregator.db import fetches, posts

from .conftest import rss
from .sitefixtures import serve_site
from .sites import make_sites as sites

FAST = ("--set", "crawl_delay_s=0")  # no politeness delay against our own loopback server


def crawl(cli, feed, *args, expect=0):
    out, _ = cli(*FAST, "crawl", str(feed), "--json", "--no-index", *args, expect=expect)
    return json.loads(out)


def engine_of(cli):
    from aggregator.settings import Settings

    return db.make_engine(Settings(data_dir=cli.data_dir))


def history(cli, feed_id):
    with engine_of(cli).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            sa.select(fetches).where(fetches.c.feed_id == feed_id).order_by(fetches.c.id))]


def test_static_blog_without_a_feed_paginated_archive_robots_and_a_second_crawl(cli, server, trap):
    home = serve_site(server, "static")
    server.route("/go/photos", status=302, headers={"Location": trap.url("/photos")})
    added = json.loads(cli("feeds", "add", home, "--crawl", "--json")[0])
    assert added["kind"] == "crawl" and added["title"] == "Notes from the doorstep"
    report = crawl(cli, added["id"])
    assert report["result"] == "ok"
    r = report["report"]
    assert (r["posts_found"], r["new"], r["stopped"]) == (len(sites.ST_POSTS), len(sites.ST_POSTS), "")
    stored = json.loads(cli("posts", "--json", "--limit", "50")[0])
    assert sorted(p["title"] for p in stored) == sorted(t for _, t, *_ in sites.ST_POSTS)
    why = next(p for p in stored if p["title"] == "Why I joined")
    assert why["author"] == "Sam Okafor" and why["published"].startswith("2026-06-30")
    assert "trombone" in why["content_html"] and "Notes from the doorstep" not in why["content_html"]
    assert server.hits("/robots.txt") == 1
    assert not [r for r in server.requests if r.path.startswith("/private/")]  # robots.txt: Disallow: /private/
    assert trap.hits() == 0  # the redirect to 127.0.0.2 was not followed
    assert all(r.headers["user-agent"].startswith("Hustings/") for r in server.requests)
    [row] = history(cli, added["id"])
    assert (row["kind"], row["http_status"], row["new_posts"]) == ("crawl", 200, len(sites.ST_POSTS))

    # The blog was walked to its end: the next crawl fetches listings, not the posts it has.
    before = len(server.requests)
    again = crawl(cli, added["id"])["report"]
    assert again["incremental"] and (again["new"], again["posts_found"]) == (0, 0)
    paths = [r.path for r in server.requests[before:]]
    assert not [p for p in paths if p.startswith("/posts/")] and "/" in paths


def test_wordpress_blog_and_its_feed_store_each_post_once(cli, server):
    home = serve_site(server, "wordpress")
    feed = json.loads(cli("feeds", "add", server.url("/feed/"), "--json")[0])
    assert json.loads(cli("fetch", "--json", "--no-index")[0])["new_posts"] == len(sites.WP_POSTS)
    blog = json.loads(cli("feeds", "add", home, "--crawl", "--json")[0])
    assert blog["advertised_feeds"] == [server.url("/feed/")]
    r = crawl(cli, blog["id"])["report"]
    assert r["elsewhere"] == len(sites.WP_POSTS) and r["new"] == 0  # the feed has them all already
    listed = json.loads(cli("posts", "--json", "--limit", "50")[0])
    assert len(listed) == len({p["url"] for p in listed}) == len(sites.WP_POSTS)
    with engine_of(cli).connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(posts)).scalar() == len(sites.WP_POSTS)
    assert not [q for q in server.requests if q.path.startswith(("/wp-admin", "/wp-login"))]
    assert feed["id"] != blog["id"]


def test_blogger_blog_is_crawled_through_its_archive_when_robots_forbids_search(cli, server):
    home = serve_site(server, "blogger")
    blog = json.loads(cli("feeds", "add", home, "--crawl", "--json")[0])
    r = crawl(cli, blog["id"])["report"]
    assert r["new"] == len(sites.BG_POSTS)
    assert not [q for q in server.requests if q.path.startswith("/search")]  # Disallow: /search
    stored = {p["url"]: p for p in json.loads(cli("posts", "--json")[0])}
    leaflet = stored[server.url("/2026/10/leaflet-drop.html")]
    assert leaflet["author"] == "Mary Hughes" and leaflet["published"].startswith("2026-10-05T08:12")
    assert "Station Parade" in leaflet["content_html"] and "Well done all" not in leaflet["content_html"]


def test_summary_only_feed_gets_each_posts_full_text_which_a_refetch_keeps(cli, server):
    serve_site(server, "wordpress")
    feed = json.loads(cli("feeds", "add", server.url("/summary-feed/"), "--json")[0])
    cli("fetch", "--json", "--no-index")
    motion = next(p for p in json.loads(cli("posts", "--json")[0]) if "housing motion" in p["title"])
    assert "Newham" not in motion["content_html"]  # the feed carries a sentence of it
    r = crawl(cli, feed["id"])["report"]
    assert (r["updated"], r["failed"]) == (len(sites.WP_POSTS), 0)
    full = post_store.get_post(engine_of(cli), motion["id"])
    assert "Newham" in full["content_html"] and "Everyone deserves" in full["content_html"]
    assert "Share this" not in full["content_html"] and "Pat Reader" not in full["content_html"]
    assert full["summary"].startswith("On Thursday the general committee")
    # A refetch of the same feed leaves the full text alone; nothing is waiting any more.
    assert json.loads(cli("fetch", "--all", "--json", "--no-index")[0])["updated_posts"] == 0
    assert "Newham" in post_store.get_post(engine_of(cli), motion["id"])["content_html"]
    assert crawl(cli, feed["id"])["report"]["pages"] == 0
    kinds = [h["kind"] for h in history(cli, feed["id"])]
    assert kinds == ["fetch", "fulltext", "fetch"]  # a run with nothing to do leaves no row

    # A selector overrides the guess; --post re-extracts one post on demand.
    cli("feeds", "set", str(feed["id"]), "--selector", ".entry-content blockquote")
    r = crawl(cli, feed["id"], "--post", str(motion["id"]))["report"]
    assert r["updated"] == 1
    quoted = post_store.get_post(engine_of(cli), motion["id"])["content_html"]
    assert "Everyone deserves" in quoted and "Newham" not in quoted


def test_full_text_never_follows_a_redirect_to_a_blocked_address(cli, server, trap):
    server.route("/feed.xml", rss([
        {"title": "Moved", "link": server.url("/moved"), "guid": "m", "description": "A summary only."},
        {"title": "Missing", "link": server.url("/missing"), "guid": "x", "description": "Another summary."},
    ]))
    server.route("/moved", status=302, headers={"Location": trap.url("/article")})
    trap.route("/article", "<html><body><article><p>" + "secret " * 100 + "</p></article></body></html>",
               content_type="text/html")
    feed = json.loads(cli("feeds", "add", server.url("/feed.xml"), "--json")[0])
    cli("fetch", "--json", "--no-index")
    r = crawl(cli, feed["id"])["report"]
    assert (r["updated"], r["failed"]) == (0, 2)
    assert trap.hits() == 0
    with engine_of(cli).connect() as conn:
        errors = dict(conn.execute(sa.select(posts.c.title, posts.c.fulltext_error)).all())
    assert "IgnoreRequest" in errors["Moved"] and "127.0.0.2" in errors["Moved"]
    assert "HTTP 404" in errors["Missing"]


def test_an_endless_calendar_stops_at_the_page_limit(cli, server):
    def month(request):
        y, m = (int(x) for x in request.path.strip("/").split("/")[1:3])
        prev_y, prev_m = (y, m - 1) if m > 1 else (y - 1, 12)
        body = (f'<html><body><h1>{y}-{m:02d}</h1><a class="prev" href="/cal/{prev_y}/{prev_m}/">&laquo; '
                f'previous month</a> <a href="/cal/{y + 1}/{m}/">next year</a></body></html>').encode()
        request.send_response(200)
        request.send_header("Content-Type", "text/html")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    import re

    class Calendar(dict):  # every /cal/Y/M/ path answers
        def get(self, key, default=None):
            return super().get(key) or (self["/cal/"] if re.match(r"^/cal/\d+/\d+/$", key) else default)

    server.routes = Calendar(server.routes)
    server.route("/cal/", handler=month)
    server.route("/", '<html><body><a href="/cal/2026/11/">calendar</a></body></html>', content_type="text/html")
    blog = json.loads(cli("feeds", "add", server.url("/"), "--crawl", "--json")[0])
    server.requests.clear()  # adding the blog fetched its home page once
    out, _ = cli(*FAST, "--set", "crawl_max_pages=12", "crawl", str(blog["id"]), "--json", "--no-index")
    r = json.loads(out)["report"]
    assert r["stopped"] == "stopped at the page limit (12 requests)"
    assert len(server.requests) <= 12 and r["requests"] == 12
    [row] = history(cli, blog["id"])
    assert "page limit" in row["error"]


def test_a_crawl_process_past_its_deadline_is_killed_and_recorded(cli, tmp_path):
    cli("init")
    engine = engine_of(cli)
    feed, _ = feed_store.add_feed(engine, "http://127.0.0.1:9/", kind="crawl")
    from aggregator.settings import Settings

    settings = Settings(data_dir=cli.data_dir, allow_networks=("127.0.0.1/32",))
    outcome = crawls.run_crawl(engine, settings, "blog", [feed], timeout_s=0.01)
    assert outcome.result == "failed" and "killed after" in outcome.error
    [row] = history(cli, feed.id)
    assert row["kind"] == "crawl" and "killed" in row["error"]
    assert feed_store.get_feed(engine, feed.id).status == "erroring"


def test_the_worker_job_crawls_due_blogs_and_takes_pending_full_text(cli, server, tmp_path):
    serve_site(server, "static")
    serve_site_feed = server.route("/summary.xml", rss([
        {"title": "Why I joined", "link": server.url("/posts/why-i-joined.html"), "guid": "w",
         "description": "People ask why I joined."}]))
    blog = json.loads(cli("feeds", "add", server.url("/"), "--crawl", "--json")[0])
    feed = json.loads(cli("feeds", "add", serve_site_feed, "--json")[0])
    cli("fetch", "--json", "--no-index")
    from aggregator.settings import Settings

    settings = Settings(data_dir=cli.data_dir, allow_networks=("127.0.0.1/32",), crawl_delay_s=0)
    engine = engine_of(cli)
    synced = []
    outcomes = crawls.run_due(engine, settings, after=lambda: synced.append(1))
    assert sorted((o.spider, o.feed_ids, o.result) for o in outcomes) == [
        ("blog", (blog["id"],), "ok"), ("fulltext", (feed["id"],), "ok")]
    assert synced == [1]
    assert crawls.run_due(engine, settings) == []  # nothing due now
    assert feed_store.get_feed(engine, blog["id"]).next_check_at > db.utcnow()
