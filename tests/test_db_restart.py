"""PostgreSQL restarted under a running site: the web answers 503 with Retry-After while the
database is away, recovers by itself when it is back (the pool's pre-ping), and no
acknowledged write is lost. Uses a cluster of the test's own (tests/private_postgres.py):
the shared test server is never restarted under other tests."""

from __future__ import annotations

import http.client
import json
import queue
import re
import tempfile
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from aggregator import db, feed_store, post_store
from aggregator.db import recommendations
from aggregator.models import Post
from aggregator.settings import Settings

from .private_postgres import PrivateCluster

BACKENDS = ["postgresql"]  # the shared server must be there for the suite's PostgreSQL runs anyway


@pytest.fixture
def cluster():
    base = Path(tempfile.mkdtemp(prefix="hustings-pg-"))
    base.chmod(0o755)  # the postgres user must reach its data directory
    c = PrivateCluster(base)
    try:
        c.create()
    except RuntimeError as exc:
        pytest.fail(f"could not make a private PostgreSQL cluster: {exc}")
    yield c
    c.destroy()


@pytest.fixture
def site(cluster, tmp_path):
    settings = Settings(data_dir=tmp_path / "node", database_url=cluster.url, page_cache_s=0, rate_limits=False,
                        secret_key="k" * 40)
    engine = db.make_engine(settings)
    db.migrate(engine)
    feed, _ = feed_store.add_feed(engine, "http://127.0.0.1:9/feed.xml", title="Valley Branch")
    post_store.save_posts(engine, feed, [Post(feed.id, f"g{i}", f"http://127.0.0.1:9/p/{i}", f"Post {i}", "<p>x</p>",
                                              identity=f"g:{i}") for i in range(5)])
    ids = [p["id"] for p in post_store.list_posts(engine)]
    engine.dispose()
    return settings, ids


@pytest.fixture
def web(site):
    from web.server import serve_threaded

    ready: queue.Queue = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(target=serve_threaded, args=(site[0], "127.0.0.1", 0),
                              kwargs={"threads": 4, "on_ready": lambda srv: ready.put(srv.effective_port), "stop": stop},
                              daemon=True)
    thread.start()
    yield ready.get(timeout=20)
    stop.set()
    thread.join(timeout=10)


def request(port: int, method: str, path: str, body: str = "", headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body.encode(), headers=headers or {})
        res = conn.getresponse()
        return res.status, dict(res.getheaders()), res.read()
    finally:
        conn.close()


class Reader:
    """One browser: a reader cookie and the CSRF token that goes with it."""

    def __init__(self, port: int, post_id: int):
        status, headers, body = request(port, "GET", f"/posts/{post_id}")
        assert status == 200
        self.cookie = headers["Set-Cookie"].split(";", 1)[0]
        self.token = re.search(rb'name="csrf_token" value="([^"]+)"', body).group(1).decode()

    def recommend(self, port: int, post_id: int) -> int:
        status, _, _ = request(port, "POST", f"/posts/{post_id}/recommend", f"csrf_token={self.token}",
                               {"Cookie": self.cookie, "Content-Type": "application/x-www-form-urlencoded"})
        return status


def test_a_database_restart_gives_503_then_recovery_and_loses_no_acknowledged_write(cluster, site, web):
    settings, ids = site
    port = web
    readers = [Reader(port, ids[0]) for _ in range(30)]
    acked = []  # (reader index, post) of every recommendation the site acknowledged
    answers: list[int] = []

    def reader_loop(i: int, r: Reader, rounds: int):
        for k in range(rounds):
            post = ids[k % len(ids)]
            status = r.recommend(port, post)
            answers.append(status)
            if status in (200, 303):
                acked.append((i, post))
            time.sleep(0.05)

    threads = [threading.Thread(target=reader_loop, args=(i, r, len(ids))) for i, r in enumerate(readers)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    cluster.stop()  # mid-traffic
    status, headers, body = request(port, "GET", "/api/posts")
    assert status == 503, body[:300]
    assert int(headers["Retry-After"]) > 0
    assert json.loads(body)["error"]["status"] == 503
    status, headers, page = request(port, "GET", f"/posts/{ids[1]}")
    assert status == 503 and "Retry-After" in headers and b"briefly unavailable" in page
    time.sleep(1)
    cluster.start()
    for t in threads:
        t.join(timeout=60)
    deadline = time.monotonic() + 30
    while request(port, "GET", "/api/posts")[0] != 200:  # recovers by itself: no restart of the site
        assert time.monotonic() < deadline, "the site did not recover after the database came back"
        time.sleep(0.2)
    assert 503 in answers or all(a in (200, 303) for a in answers)
    assert set(answers) <= {200, 303, 503}, f"unexpected answers while the database restarted: {set(answers)}"
    engine = db.make_engine(settings)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(recommendations)).scalar()
    engine.dispose()
    assert stored >= len(acked), f"{len(acked)} recommendations were acknowledged but only {stored} stored"
