"""The whole path, feed to stored post, over a real loopback server and SQLite file."""

from aggregator import feed_store, pipeline, post_store

from .conftest import rss


def test_feed_is_fetched_parsed_sanitised_and_stored(server, settings, engine):
    url = server.route("/feed.xml", rss([
        {"title": "Hello &amp; welcome", "link": server.url("/p/1?utm_source=tw"), "guid": "p1",
         "date": "Mon, 02 Nov 2026 10:00:00 GMT",
         "description": '<p onclick="x()">Hi <script>alert(1)</script><a href="/rel">rel</a></p>'},
    ], link=server.url("/")))
    feed, created = feed_store.add_feed(engine, url)
    assert created
    outcome = pipeline.refresh_feed(engine, feed, settings)
    assert outcome.result == "ok", outcome.error
    assert outcome.new == 1
    [post] = post_store.list_posts(engine)
    assert post["title"] == "Hello & welcome"
    assert post["url"] == server.url("/p/1")
    assert "script" not in post["content_html"] and "onclick" not in post["content_html"]
    assert f'href="{server.url("/rel")}"' in post["content_html"]
    assert post["summary"] == "Hi rel"


def test_big_batch_parses_on_a_process_pool_with_the_same_results(server, settings, engine):
    import dataclasses

    from aggregator.pipeline import BIG_BATCH, parse_processes, refresh_feeds

    pooled = dataclasses.replace(settings, parse_processes=2)
    assert parse_processes(pooled, BIG_BATCH) == 2 and parse_processes(pooled, BIG_BATCH - 1) == 0
    assert parse_processes(dataclasses.replace(settings, parse_processes=1), 100) == 0
    urls = [server.route(f"/f{i}.xml", rss([
        {"title": f"Post {i}.{j}", "link": server.url(f"/p/{i}/{j}"), "guid": f"{i}-{j}",
         "description": f"<p>Body {i}.{j}<script>x()</script></p>"} for j in range(5)
    ])) for i in range(BIG_BATCH + 2)]
    broken = server.route("/broken.xml", "<!DOCTYPE html><html><body>not a feed</body></html>",
                          content_type="text/html")
    feeds = [feed_store.add_feed(engine, u)[0] for u in urls + [broken]]
    outcomes = {o.url: o for o in refresh_feeds(engine, feeds, pooled)}
    assert all(outcomes[u].result == "ok" and outcomes[u].new == 5 for u in urls)
    # A ParseError raised in a worker process comes back whole: URL, reason, recorded on the feed.
    assert outcomes[broken].result == "failed" and "HTML page" in outcomes[broken].error
    assert broken in outcomes[broken].error
    stored = post_store.list_posts(engine, limit=1000)
    assert len(stored) == 5 * len(urls)
    assert all("script" not in p["content_html"] for p in stored)


def test_parse_pool_from_a_threaded_process_uses_a_fork_server(server, settings, engine):
    """The worker refreshes from a process that runs scheduler threads: no plain fork there."""
    import dataclasses
    import threading

    from aggregator.pipeline import BIG_BATCH, _parse_pool, refresh_feeds

    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        pool = _parse_pool(2)
        assert pool._mp_context.get_start_method() == "forkserver"
        pool.shutdown()
        urls = [server.route(f"/t{i}.xml", rss([{"title": f"T{i}", "link": server.url(f"/t/{i}"), "guid": str(i)}]))
                for i in range(BIG_BATCH)]
        feeds = [feed_store.add_feed(engine, u)[0] for u in urls]
        outcomes = refresh_feeds(engine, feeds, dataclasses.replace(settings, parse_processes=2))
        assert [o.result for o in outcomes] == ["ok"] * BIG_BATCH
    finally:
        stop.set()
