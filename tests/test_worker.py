"""`hustings worker` in a real process: it fetches due feeds at once, holds the lock, stops on SIGTERM."""

import json
import os
import signal
import subprocess
import sys
import time

from .conftest import rss


def test_worker_fetches_due_feeds_and_stops_cleanly(tmp_path, server):
    url = server.route("/f.xml", rss([{"title": "Scheduled", "link": server.url("/1"), "guid": "1"}]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUSTINGS_")}
    env.update(HUSTINGS_DATA_DIR=str(tmp_path / "d"), HUSTINGS_ALLOW_NETWORKS="127.0.0.1/32",
               HUSTINGS_LOG_LEVEL="INFO")

    def hustings(*args, **kw):
        return subprocess.run([sys.executable, "-m", "hustings", *args], env=env, capture_output=True, text=True,
                              timeout=60, **kw)

    assert hustings("feeds", "add", url).returncode == 0
    worker = subprocess.Popen([sys.executable, "-m", "hustings", "worker"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        posts = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not posts:
            time.sleep(0.3)
            posts = json.loads(hustings("posts", "--json").stdout or "[]")
        assert [p["title"] for p in posts] == ["Scheduled"]
        second = hustings("worker")  # the lock is held: a second worker refuses to start
        assert second.returncode == 1 and "already runs the scheduler" in second.stderr
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert "dispatched 1 feeds" in err and "Traceback" not in err
