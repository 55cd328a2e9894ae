"""A web node's own search index, kept in step with the shared database.

On one machine the worker syncs the index after each dispatch. With several web nodes on
one PostgreSQL, each node has its own data directory and its own Whoosh replica; `hustings
serve` runs `follow` beside the web processes (as the child process `python -m
index.replica`, so a fork of the web server never copies its threads or locks). Every
FOLLOW_EVERY_S it applies the post changes other processes made since the replica's last
sync (writer.sync: hidden and removed posts leave as fast as new ones arrive). The web's
searchers reopen when the index changes.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from datetime import datetime, timezone

from sqlalchemy.engine import Engine

from aggregator import db
from aggregator.orphans import die_with_parent
from aggregator.settings import Settings, load_settings

from . import writer
from .schema import current_dir

log = logging.getLogger(__name__)

FOLLOW_EVERY_S = 2.0  # a post stored by any worker is searchable on every node within a few seconds


def applied_seq(settings: Settings) -> int:
    """The last post change this node's index holds (0 when there is no index yet): cheap, a
    small file read. Cached pages that show search results are keyed on it too, so a page
    rendered before the replica caught up is rendered again once it has."""
    path = current_dir(settings)
    return int(writer.read_state(path).get("seq", 0)) if path else 0


def lag(engine: Engine, settings: Settings) -> dict:
    """How far this node's replica is behind the database: in changes and in seconds (since the
    replica's last sync, when changes are waiting; 0 when it is up to date)."""
    path = current_dir(settings)
    state = writer.read_state(path) if path else {}
    applied = int(state.get("seq", 0))
    newest = writer.last_change(engine)
    behind = writer.changes_after(engine, applied)
    seconds = 0.0
    if behind and state.get("at"):
        seconds = max(0.0, (datetime.now(timezone.utc) - datetime.fromisoformat(state["at"])).total_seconds())
    elif behind:
        seconds = None  # never synced
    return {"path": str(path) if path else None, "applied_seq": applied, "database_seq": newest,
            "changes": behind, "seconds": seconds}


def follow(engine: Engine, settings: Settings, stop: threading.Event, every_s: float = FOLLOW_EVERY_S) -> None:
    """Sync the replica every `every_s` until `stop` is set. Errors are logged and retried:
    a database restart or a busy writer lock only delays the next sync."""
    while True:
        try:
            report = writer.sync(engine, settings, lock_wait_s=every_s)
            if report.applied:
                log.info("index replica: %d changes applied (%d indexed, %d removed), at change %d",
                         report.applied, report.indexed, report.removed, report.seq)
        except writer.IndexBusy:
            pass  # another process (a rebuild) holds the writer's lock: next time
        except Exception as exc:  # the database is away, or a post cannot be indexed: say so, go on
            log.warning("index replica sync failed (retrying in %.0f s): %s", every_s, exc)
        if stop.wait(every_s):
            return


def main(argv: list[str] | None = None) -> int:
    """`python -m index.replica SERVE_PID`: follow with the settings from the environment
    (HUSTINGS_*), and end when the serve process that started it ends (even by kill -9)."""
    args = sys.argv[1:] if argv is None else argv
    die_with_parent(int(args[0]) if args else os.getppid(), signal.SIGTERM)
    settings = load_settings(environ=os.environ)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s replica: %(message)s", stream=sys.stderr)
    engine = db.make_engine(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    follow(engine, settings, stop)
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
