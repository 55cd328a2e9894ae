"""The whole path, feed to stored post, over a real loopback server and SQLite file."""

from aggregator import pipeline, store

from .conftest import rss


def test_feed_is_fetched_parsed_sanitised_and_stored(server, settings, engine):
    url = server.route("/feed.xml", rss([
        {"title": "Hello &amp; welcome", "link": server.url("/p/1?utm_source=tw"), "guid": "p1",
         "date": "Mon, 02 Nov 2026 10:00:00 GMT",
         "description": '<p onclick="x()">Hi <script>alert(1)</script><a href="/rel">rel</a></p>'},
    ], link=server.url("/")))
    feed, created = store.add_feed(engine, url)
    assert created
    outcome = pipeline.refresh_feed(engine, feed, settings)
    assert outcome.result == "ok", outcome.error
    assert outcome.new == 1
    [post] = store.list_posts(engine)
    assert post["title"] == "Hello & welcome"
    assert post["url"] == server.url("/p/1")
    assert "script" not in post["content_html"] and "onclick" not in post["content_html"]
    assert f'href="{server.url("/rel")}"' in post["content_html"]
    assert post["summary"] == "Hi rel"
