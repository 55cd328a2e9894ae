"""Buying the ranking by clearing cookies (issue 16, item 5): readers from one address each
get their recommendation recorded, but the post's standing grows once per address a day,
an IPv6 household's /64 is one address, bursts reach the moderators, and /about says so."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from aggregator import feed_store, post_store
from aggregator.db import posts, recommendations
from aggregator.models import Post
from community import identity, ratelimits
from community import recommendations as recs


def _post(engine) -> int:
    feed, _ = feed_store.add_feed(engine, "http://127.0.0.1:9/feed.xml", title="Valley Branch")
    post_store.save_posts(engine, feed, [Post(feed.id, "g1", "http://127.0.0.1:9/p/1", "Bus depot vote", "<p>x</p>",
                                              identity="g:1")])
    return post_store.list_posts(engine)[0]["id"]


def standing(engine, post_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(posts.c.recommendations).where(posts.c.id == post_id)).scalar()


def test_seventy_cleared_cookies_from_one_address_move_a_post_by_one(engine, settings):
    post_id = _post(engine)
    one_place = identity.ip_hash(settings, ratelimits.client_of("203.0.113.9"))
    assert all(recs.recommend_post(engine, post_id, f"reader-{i}", one_place) for i in range(70))
    assert standing(engine, post_id) == 1
    with engine.connect() as conn:  # every reader's recommendation is recorded (their page says so)
        assert conn.execute(sa.select(sa.func.count()).select_from(recommendations)).scalar() == 70
    elsewhere = identity.ip_hash(settings, ratelimits.client_of("198.51.100.4"))
    assert recs.recommend_post(engine, post_id, "reader-elsewhere", elsewhere)
    assert standing(engine, post_id) == 2
    [burst] = recs.bursts(engine, since=datetime.now(timezone.utc) - timedelta(days=1))
    assert burst["post_id"] == post_id and burst["recommendations"] == 70


def test_an_ipv6_household_rotating_through_its_64_is_one_address(engine, settings):
    post_id = _post(engine)
    for i in range(1, 30):
        address = f"2001:db8:1:2::{i:x}"
        recs.recommend_post(engine, post_id, f"reader-{i}", identity.ip_hash(settings, ratelimits.client_of(address)))
    assert standing(engine, post_id) == 1
    recs.recommend_post(engine, post_id, "next-door", identity.ip_hash(settings, ratelimits.client_of("2001:db8:1:3::1")))
    assert standing(engine, post_id) == 2
