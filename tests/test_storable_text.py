"""Feeds carry characters no database column may hold (NUL, other C0 controls, lone
surrogates). They are dropped on the way in, so such a feed is stored on both databases."""

from __future__ import annotations

from aggregator import feed_store, pipeline, post_store

from .conftest import rss


def test_control_characters_from_a_feed_are_dropped_and_the_post_is_stored(engine, server, settings):
    server.route("/f.xml", rss([{"title": "Branch\x00 minutes\x07", "link": server.url("/p/1"), "guid": "g\x001",
                                 "description": "Agreed\x00 the <b>motion</b>\x0b on buses."}]))
    feed, _ = feed_store.add_feed(engine, server.url("/f.xml"))
    outcome = pipeline.refresh_feed(engine, feed, settings)
    assert outcome.result == "ok", outcome.error
    [post] = post_store.list_posts(engine)
    assert post["title"] == "Branch minutes"
    assert post["guid"] == "g1"
    assert "\x00" not in post["content_html"] and "<b>motion</b>" in post["content_html"]
