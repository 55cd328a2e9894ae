"""A web node's index replica follows the shared database: posts stored by another process
appear, hidden posts leave, and the lag is measured (index/replica.py)."""

from __future__ import annotations

import threading

from aggregator import db, feed_store, post_store
from aggregator.models import Post
from aggregator.settings import Settings
from community import moderation
from index import replica
from index.search import Searcher

from .conftest import wait_until


def test_a_node_replica_follows_posts_stored_and_hidden_elsewhere(tmp_path, database):
    shared = Settings(data_dir=tmp_path / "worker")  # where the worker writes posts
    engine = db.make_engine(shared)
    db.migrate(engine)
    node = Settings(data_dir=tmp_path / "node", database_url=shared.resolved_database_url)  # the web node's replica
    node_engine = db.make_engine(node)
    stop = threading.Event()
    thread = threading.Thread(target=replica.follow, args=(node_engine, node, stop, 0.2), daemon=True)
    thread.start()
    searcher = Searcher(node, node_engine)
    try:
        feed, _ = feed_store.add_feed(engine, "http://127.0.0.1:9/feed.xml", title="Valley Branch")
        post_store.save_posts(engine, feed, [Post(feed.id, "g1", "http://127.0.0.1:9/p/1", "Library closure vote",
                                                  "<p>The library vote is on Monday.</p>", identity="g:1")])
        assert wait_until(lambda: searcher.search("library").total == 1, 20), "the new post never reached the replica"
        assert wait_until(lambda: replica.lag(node_engine, node)["changes"] == 0, 20)
        [post] = post_store.list_posts(engine)
        moderation.hide_post(engine, post["id"], actor="test", reason="libel")
        assert wait_until(lambda: searcher.search("library").total == 0, 20), "the hidden post stayed in the replica"
    finally:
        stop.set()
        thread.join(timeout=10)
        searcher.close()
    post_store.save_posts(engine, feed, [Post(feed.id, "g2", "http://127.0.0.1:9/p/2", "Bus depot", "<p>Buses.</p>",
                                              identity="g:2")])
    behind = replica.lag(node_engine, node)
    assert behind["changes"] == 1 and behind["seconds"] is not None and behind["seconds"] >= 0
    engine.dispose()
    node_engine.dispose()


def test_the_replica_dies_with_a_killed_serve(tmp_path, database):
    import os
    import signal
    import socket
    import subprocess
    import sys
    from pathlib import Path

    import psutil

    from .conftest import subprocess_env

    settings = Settings(data_dir=tmp_path / "node", secret_key="r" * 40)
    engine = db.make_engine(settings)
    db.migrate(engine)
    engine.dispose()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = subprocess_env(settings, HUSTINGS_SECRET_KEY="r" * 40, HUSTINGS_WEB_WORKERS="1")
    serve = subprocess.Popen([sys.executable, "-m", "hustings", "serve", "--port", str(port)], env=env,
                             cwd=Path(__file__).resolve().parents[1], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def replica_child():
            try:
                return next((c for c in psutil.Process(serve.pid).children()
                             if "index.replica" in " ".join(c.cmdline())), None)
            except psutil.NoSuchProcess:
                return None

        assert wait_until(lambda: replica_child() is not None, 60), "serve never started its replica"
        child = replica_child()
        os.kill(serve.pid, signal.SIGKILL)
        serve.wait(timeout=10)
        assert wait_until(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, 10), \
            "the replica outlived its serve process"
    finally:
        if serve.poll() is None:
            serve.kill()
        for proc in psutil.process_iter(["cmdline"]):  # never leave one behind, whatever happened
            if proc.info["cmdline"] and "index.replica" in " ".join(proc.info["cmdline"]) and str(serve.pid) in proc.info["cmdline"]:
                proc.kill()
