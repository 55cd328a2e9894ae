"""Two `hustings serve` nodes on one PostgreSQL, each with its own data directory and search
replica: a post stored by another process becomes searchable on both; a reader's duplicate
ballots sent to both nodes at once count once; a hundred readers spread over both count a
hundred (sessions, CSRF tokens, reader cookies and ballots work across nodes)."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from aggregator import db, feed_store, post_store
from aggregator.models import Post
from aggregator.settings import Settings
from community.polls import store as poll_store

from .conftest import subprocess_env

BACKENDS = ["postgresql"]
ROOT = Path(__file__).resolve().parents[1]
SECRET = "s" * 48


_next_port = [20000 + (os.getpid() % 800) * 50]


def free_port() -> int:
    """A free port from a range of this test process's own: the server binds it later, so a port
    the kernel handed out (port 0) could be taken meanwhile by a node of a test running in
    another process, and a ballot would reach the wrong site."""
    while True:
        _next_port[0] += 1
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", _next_port[0]))
            except OSError:
                continue
            return _next_port[0]


def get(port: int, path: str, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        res = conn.getresponse()
        return res.status, dict(res.getheaders()), res.read().decode()
    finally:
        conn.close()


def post(port: int, path: str, fields: dict, cookie: str):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=urllib.parse.urlencode(fields),
                     headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
        res = conn.getresponse()
        return res.status, res.read().decode()
    finally:
        conn.close()


@pytest.fixture
def cluster(tmp_path):
    shared = Settings(data_dir=tmp_path / "worker", secret_key=SECRET, rate_limits=False)
    engine = db.make_engine(shared)
    db.migrate(engine)
    nodes, procs = [], []
    try:
        for name in ("a", "b"):
            port = free_port()
            env = subprocess_env(shared, HUSTINGS_DATA_DIR=str(tmp_path / f"node-{name}"),
                                 HUSTINGS_DATABASE_URL=shared.resolved_database_url, HUSTINGS_SECRET_KEY=SECRET,
                                 HUSTINGS_RATE_LIMITS="0", HUSTINGS_WEB_WORKERS="2", HUSTINGS_PAGE_CACHE_S="60")
            log = open(tmp_path / f"node-{name}.log", "w")
            procs.append(subprocess.Popen([sys.executable, "-m", "hustings", "serve", "--port", str(port)],
                                          cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
            nodes.append(port)
        deadline = time.monotonic() + 60
        for port, proc in zip(nodes, procs):
            while True:
                try:
                    if get(port, "/healthz")[0] == 200:
                        break
                except OSError:
                    pass
                assert proc.poll() is None, (tmp_path / "node-a.log").read_text() + (tmp_path / "node-b.log").read_text()
                assert time.monotonic() < deadline, "a node did not start"
                time.sleep(0.2)
        yield shared, engine, nodes
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        engine.dispose()


def test_a_post_stored_elsewhere_is_searchable_on_both_nodes(cluster):
    shared, engine, nodes = cluster
    feed, _ = feed_store.add_feed(engine, "http://127.0.0.1:9/feed.xml", title="Valley Branch")
    post_store.save_posts(engine, feed, [Post(feed.id, "g1", "http://127.0.0.1:9/p/1", "Marsh Lane allotments saved",
                                              "<p>The allotments stay.</p>", identity="g:1")])
    for port in nodes:
        deadline = time.monotonic() + 10  # the promise: within ten seconds on every node
        while True:
            status, _, body = get(port, "/api/search?q=allotments")
            if status == 200 and json.loads(body)["total"] == 1:
                break
            assert time.monotonic() < deadline, f"node on port {port} never found the post: {body[:300]}"
            time.sleep(0.25)


def test_ballots_across_two_nodes_count_once_per_reader(cluster):
    shared, engine, nodes = cluster
    same = poll_store.create_poll(engine, question="Meet on Thursdays?", options=["Yes", "No"], created_by="mod")
    many = poll_store.create_poll(engine, question="Which campaign first?", options=["Buses", "Housing", "Parks"],
                                  created_by="mod", visibility="always")

    def reader(port: int, poll_id: int) -> tuple[str, str]:
        status, headers, body = get(port, f"/polls/{poll_id}")
        assert status == 200, body[:300]
        return headers["Set-Cookie"].split(";", 1)[0], re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)

    cookie, token = reader(nodes[0], same.id)  # the cookie and token come from node a...
    option = same.poll.options[0].id
    with ThreadPoolExecutor(20) as pool:  # ...and the same ballot goes to both nodes at once
        answers = list(pool.map(lambda i: post(nodes[i % 2], f"/polls/{same.id}/vote",
                                                {"csrf_token": token, "option": option}, cookie)[0], range(40)))
    assert sorted(answers) == [303] + [409] * 39, answers
    readers = [reader(nodes[i % 2], many.id) for i in range(100)]
    ids = [o.id for o in many.poll.options]
    with ThreadPoolExecutor(20) as pool:  # each reader votes through the other node than gave them the form
        answers = list(pool.map(lambda i: post(nodes[(i + 1) % 2], f"/polls/{many.id}/vote",
                                                {"csrf_token": readers[i][1], "option": ids[i % 3]},
                                                readers[i][0])[0], range(100)))
    assert answers == [303] * 100
    status, _, body = get(nodes[1], f"/api/polls/{many.id}")
    assert json.loads(body)["results"]["ballots"] == 100


def test_serve_on_postgresql_refuses_to_start_without_a_shared_secret(tmp_path):
    shared = Settings(data_dir=tmp_path / "node")
    engine = db.make_engine(shared)
    db.migrate(engine)
    engine.dispose()
    env = subprocess_env(shared, HUSTINGS_DATABASE_URL=shared.resolved_database_url)
    done = subprocess.run([sys.executable, "-m", "hustings", "serve", "--port", str(free_port())], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "secret_key" in done.stderr and "every web node" in done.stderr
