"""A killed index rebuild leaves nothing behind once the next writer starts (issue 16, item 11).

The rebuild runs in a child process with Whoosh's two sub-writer processes, as `hustings
index rebuild` does, and is killed with SIGKILL half way through.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psutil

from aggregator import feed_store, post_store
from aggregator.models import Post
from index import writer
from index.schema import index_link

ROOT = Path(__file__).resolve().parents[1]
POSTS = 600  # enough for the killed rebuild to have started both sub-writers (batches of 100)

REBUILD = r"""
import sys, time
from pathlib import Path
from aggregator import db
from aggregator.settings import Settings
from index import writer

settings = Settings(data_dir=Path(sys.argv[1]))
def progress(n):
    print("progress", n, flush=True)
    time.sleep(60)  # killed here, half way through writing the new index
writer.rebuild(db.make_engine(settings), settings, procs=2, progress=progress)
"""


def index_dirs(settings) -> set[str]:
    return {p.name for p in Path(settings.data_dir).glob("index-*") if p.is_dir()}


def test_the_next_writer_removes_what_a_killed_rebuild_left(settings, engine):
    feed = feed_store.add_feed(engine, "http://127.0.0.1/blog/feed.xml", title="Blog")[0]
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    post_store.save_posts(engine, feed, [
        Post(feed.id, f"g{i}", f"http://127.0.0.1/p/{i}", f"post {i}", f"<p>text {i}</p>",
             published=base + timedelta(minutes=i), summary=f"text {i}", identity=f"g:{i}")
        for i in range(POSTS)])
    writer.sync(engine, settings)
    previous = os.readlink(index_link(settings))
    writer.rebuild(engine, settings)
    live = os.readlink(index_link(settings))
    assert index_dirs(settings) == {previous, live}  # the previous one is kept for readers

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", REBUILD, str(settings.data_dir)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("progress"), (line, proc.stderr.read() if proc.poll() is not None else "")
        sub_writers = psutil.Process(proc.pid).children(recursive=True)
        assert sub_writers, "the rebuild started no Whoosh sub-writer"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    gone, alive = psutil.wait_procs(sub_writers, timeout=5)
    assert not alive, f"Whoosh sub-writers {[p.pid for p in alive]} outlived the killed rebuild"
    unfinished = index_dirs(settings) - {previous, live}
    assert len(unfinished) == 1, index_dirs(settings)

    # The next writer, even a sync with nothing to apply, gets the lock at once and tidies up.
    report = writer.sync(engine, settings, lock_wait_s=5)
    assert report.stale_lock_pid == proc.pid and not report.rebuilt
    assert index_dirs(settings) == {previous, live}
    assert os.readlink(index_link(settings)) == live
    assert writer.check(engine, settings).ok
