"""Backing counts hold under concurrency, on SQLite and on PostgreSQL: a hundred copies of one reader's
back sent at once count once, and a hundred readers backing at once count a hundred.

Over a real socket (the threaded server `hustings run` uses, 16 threads) from 32 client threads,
because the guarantee is the database's unique constraint and the count's update in the same
transaction, not anything inside one process. Rate limits are off here (one loopback address sends
everything); test_campaigns.py tests the limit itself.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest

from aggregator import db
from aggregator.settings import Settings
from community import moderation
from community.campaigns import backing, store
from web.server import serve_threaded

FIELDS = dict(title="Free buses for under-21s", idea="Young people cannot afford the bus.", ask="Free fares",
              organiser="Ade Bello", contact="ade@example.org", query="")


def _serve(settings: Settings):
    ready, stop, box = threading.Event(), threading.Event(), {}

    def on_ready(server):
        box["port"] = server.effective_port
        ready.set()

    thread = threading.Thread(target=serve_threaded, args=(settings, "127.0.0.1", 0),
                              kwargs={"on_ready": on_ready, "stop": stop, "threads": 16}, daemon=True)
    thread.start()
    assert ready.wait(20), "the server did not start"
    return box["port"], stop, thread


def _request(port: int, method: str, path: str, body: str = "", cookie: str = "") -> tuple[int, str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if method == "POST" else {}
    if cookie:
        headers["Cookie"] = cookie
    conn.request(method, path, body=body or None, headers=headers)
    res = conn.getresponse()
    text = res.read().decode()
    set_cookie = res.getheader("Set-Cookie") or ""
    conn.close()
    return res.status, text, set_cookie.split(";", 1)[0]


def _new_reader(port: int, slug: str) -> tuple[str, str]:
    status, text, cookie = _request(port, "GET", f"/campaigns/{slug}")
    assert status == 200 and cookie, text[:300]
    return cookie, re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)


@pytest.fixture
def published(tmp_path, database):
    settings = Settings(data_dir=tmp_path / "data", rate_limits=False, page_cache_s=0)
    engine = db.make_engine(settings)
    db.migrate(engine)
    made = []
    for title in ("Free buses for under-21s", "Warm banks in every ward"):
        c = store.propose(engine, settings, **dict(FIELDS, title=title))
        store.confirm_contact(engine, settings, c.slug, store.confirm_token(settings, c, datetime.now(timezone.utc)))
        made.append(moderation.approve_campaign(engine, settings, c.id, actor="mod@example.org"))
    yield settings, engine, made
    engine.dispose()


def test_a_hundred_copies_of_one_back_count_once_and_a_hundred_readers_count_a_hundred(published):
    settings, engine, (same, many) = published
    port, stop, thread = _serve(settings)
    try:
        cookie, token = _new_reader(port, same.slug)
        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(lambda _: _request(port, "POST", f"/campaigns/{same.slug}/back",
                                                       f"csrf_token={token}", cookie), range(100)))
        assert [s for s, _, _ in answers] == [303] * 100  # each is told where to look; the count decides
        assert store.get(engine, same.id).backers == 1 == backing.counted(engine, same.id)

        readers = [_new_reader(port, many.slug) for _ in range(100)]
        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(lambda n: _request(port, "POST", f"/campaigns/{many.slug}/back",
                                                       f"csrf_token={readers[n][1]}", readers[n][0]), range(100)))
        assert [s for s, _, _ in answers] == [303] * 100
        assert store.get(engine, many.id).backers == 100 == backing.counted(engine, many.id)
        status, text, _ = _request(port, "GET", f"/api/campaigns/{many.slug}")
        assert status == 200 and json.loads(text)["backers"] == 100
        # Everyone behind one loopback address, at once: a burst the moderators are shown.
        assert [b.campaign_id for b in backing.bursts(engine)] == [many.id]
    finally:
        stop.set()
        thread.join(10)


def test_concurrent_backs_straight_into_the_store_count_exactly(published):
    """The same guarantee without the web: 200 backs, each reader twice, from 32 threads."""
    settings, engine, (c, _) = published
    with ThreadPoolExecutor(32) as pool:
        done = list(pool.map(lambda n: backing.back(engine, settings, c, f"reader-{n % 100}", "192.0.2.1"),
                             range(200)))
    assert sum(d.counted for d in done) == 100
    assert store.get(engine, c.id).backers == 100 == backing.counted(engine, c.id)
