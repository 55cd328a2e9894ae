"""Child processes die with their parent (issue 16, item 9): kill -9 of `hustings fetch`
mid-batch leaves no parse process behind. (The web server's workers: tests/test_slow_clients.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import psutil

from aggregator import db, feed_store
from aggregator.settings import Settings
from tests.conftest import rss, wait_until

ROOT = Path(__file__).resolve().parents[1]
FEEDS = 10  # at least pipeline.BIG_BATCH, so the batch is parsed in a process pool


def test_parse_processes_die_with_a_killed_fetch(tmp_path, server):
    release = threading.Event()

    def slow_feed(handler):  # keeps the fetch busy until the test is over
        release.wait(30)
        body = rss([{"title": "late", "link": server.url("/late"), "guid": "late"}]).encode()
        handler._send(200, body, {})

    settings = Settings(data_dir=tmp_path / "data")
    engine = db.make_engine(settings)
    db.migrate(engine)
    for i in range(FEEDS):
        feed_store.add_feed(engine, server.route(f"/{i}.xml", handler=slow_feed))
    engine.dispose()

    env = {k: v for k, v in os.environ.items() if not k.startswith("HUSTINGS_")}
    env.update(HUSTINGS_DATA_DIR=str(settings.data_dir), HUSTINGS_ALLOW_NETWORKS="127.0.0.1/32",
               HUSTINGS_PARSE_PROCESSES="2")
    fetch = subprocess.Popen([sys.executable, "-m", "hustings", "fetch", "--no-progress", "--no-index"],
                             cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        parent = psutil.Process(fetch.pid)
        # The pool starts before the first request is sent; once a feed is asked for, it is there.
        assert wait_until(lambda: server.hits() > 0 or fetch.poll() is not None, 60), "no feed was fetched"
        children = parent.children(recursive=True)
        assert len(children) >= 2, f"expected parse processes, found {children}"

        fetch.kill()  # SIGKILL: the pool's own shutdown never runs
        fetch.wait()
        gone, alive = psutil.wait_procs(children, timeout=5)
        assert not alive, f"parse processes {[p.pid for p in alive]} outlived the killed fetch"
    finally:
        release.set()
        if fetch.poll() is None:
            fetch.kill()
            fetch.wait()
        fetch.stderr.close()


POOL_IN_A_THREADED_PROCESS = """
import threading, time
from aggregator import pipeline
if __name__ == "__main__":
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()  # as the worker's scheduler
    pool = pipeline._parse_pool(2)  # so its processes come from a fork server
    print("ready", flush=True)
    time.sleep(60)
"""


def test_parse_processes_from_a_fork_server_die_with_a_killed_worker(tmp_path):
    script = tmp_path / "pool.py"
    script.write_text(POOL_IN_A_THREADED_PROCESS)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env=env, stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        descendants = psutil.Process(proc.pid).children(recursive=True)
        assert len(descendants) >= 3  # the fork server and its two parse processes (and a resource tracker)
        proc.kill()
        proc.wait()
        gone, alive = psutil.wait_procs(descendants, timeout=5)
        assert not alive, f"{[p.cmdline()[-1][:60] for p in alive]} outlived the killed process"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_a_child_whose_parent_is_already_gone_exits_at_once():
    # The child is told it works for a process that has exited (as if it died before the
    # child could ask for the signal): it must exit at once instead of living on.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    child = subprocess.run([sys.executable, "-c", f"from aggregator import orphans; orphans.die_with_parent({dead.pid})"],
                           cwd=ROOT, timeout=30)
    assert child.returncode == 1
