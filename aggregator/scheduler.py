"""APScheduler wiring only: the dispatcher and housekeeping jobs for `hustings worker`.

Feeds are scheduled from the database (feeds.next_check_at), not one job per
feed: one dispatcher job picks due feeds every minute and refreshes them on the
bounded pool in pipeline.refresh_feeds. Every job has max_instances=1 and
coalesce=True, so a slow pass is never run twice at once nor replayed in a burst.
Exactly one worker may run the scheduler per data directory (a lock file held
for the life of the process; the kernel drops it if the process dies).
"""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Callable, Sequence

import sqlalchemy as sa
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.engine import Engine

from . import cluster, crawls, feed_store, pipeline, reach
from .db import fetches, utcnow, writing
from .errors import HustingsError
from .settings import Settings

log = logging.getLogger(__name__)

HISTORY_DAYS = 90  # fetch history older than this is pruned (the last 100 per feed are kept)
KEEP_PER_FEED = 100


def dispatch(engine: Engine, settings: Settings, after: Callable[[], None] | None = None, worker: str = "") -> list:
    """Refresh every due feed once; returns the outcomes. The worker's main job.

    Feeds are claimed a batch at a time (feed_store.claim_due), so several workers share
    the due feeds and none is fetched twice; a small batch keeps each claim's lease short
    of the time its fetch can take."""
    worker = worker or f"dispatch:{os.getpid()}"
    batch = max(4 * settings.fetch_workers, 16)
    outcomes: list = []
    seen: set[int] = set()
    while True:
        claimed = [f for f in feed_store.claim_due(engine, "feed", utcnow(), worker=worker,
                                                   lease_s=settings.claim_lease_s, limit=batch) if f.id not in seen]
        if not claimed:
            break
        seen.update(f.id for f in claimed)
        outcomes += pipeline.refresh_feeds(engine, claimed, settings)
    if not outcomes:
        return []
    failed = [o for o in outcomes if o.result == "failed"]
    log.info(
        "dispatched %d feeds: %d ok, %d not modified, %d failed; %d new posts, %d updated",
        len(outcomes), sum(o.result == "ok" for o in outcomes), sum(o.result == "not_modified" for o in outcomes),
        len(failed), sum(o.new for o in outcomes), sum(o.updated for o in outcomes),
    )
    for o in failed:
        log.warning("feed %s (%s) failed: %s", o.feed_id, o.url, o.error, extra={"feed_id": o.feed_id, "url": o.url})
    if len(failed) == len(outcomes):  # nothing could be fetched: say so once, and why
        log.warning("none of the %d feeds could be fetched: %s", len(failed),
                    reach.failure_note(o.error or "" for o in failed) or "see the errors above")
    if after is not None:
        after()
    return outcomes


def prune_history(engine: Engine, now=None) -> int:
    """Delete fetch history older than HISTORY_DAYS beyond each feed's last KEEP_PER_FEED rows."""
    cutoff = (now or utcnow()) - timedelta(days=HISTORY_DAYS)
    ranked = sa.select(
        fetches.c.id,
        sa.func.row_number().over(partition_by=fetches.c.feed_id, order_by=fetches.c.started_at.desc()).label("n"),
    ).subquery()
    keep = sa.select(ranked.c.id).where(ranked.c.n <= KEEP_PER_FEED)
    with writing(engine) as conn:
        return conn.execute(
            sa.delete(fetches).where(fetches.c.started_at < cutoff, fetches.c.id.not_in(keep))
        ).rowcount


@dataclass(frozen=True)
class Job:
    """A job the aggregator does not know about (the community's: notices, poll salts...),
    handed in by the command, which composes the worker."""

    id: str
    func: Callable
    every_s: float
    args: tuple = ()


def build(engine: Engine, settings: Settings, scheduler: BaseScheduler | None = None,
          after_dispatch: Callable[[], None] | None = None, jobs: Sequence[Job] = (),
          me: cluster.Me | None = None) -> BaseScheduler:
    """A scheduler with the worker's jobs and the given `jobs` registered (not started).

    Every worker dispatches and crawls (claims keep them apart); the jobs that must run once
    in the site (history pruning and every job handed in) run only while this worker leads
    (cluster.Leadership), and a `cluster` job beats the heart and asks for the lead twice per
    dispatch interval, so a dead leader is replaced within two intervals."""
    me = me or cluster.Me.here()
    leadership = cluster.Leadership(engine, me)
    scheduler = scheduler or BlockingScheduler(timezone="UTC")
    scheduler.hustings_leadership = leadership  # for the command: release it on shutdown
    # The dispatcher runs its own fetch pool; the scheduler's pool only needs a thread per job.
    scheduler.add_executor(ThreadPoolExecutor(4 + len(jobs)), "default")
    common = dict(max_instances=1, coalesce=True, replace_existing=True, misfire_grace_time=settings.dispatch_every_s)
    scheduler.add_job(_beat, "interval", id="cluster", seconds=max(1.0, settings.dispatch_every_s / 2),
                      args=(engine, me, leadership), next_run_time=utcnow(), **common)
    scheduler.add_job(dispatch, "interval", id="dispatch", seconds=settings.dispatch_every_s,
                      args=(engine, settings, after_dispatch, me.id), next_run_time=utcnow(), **common)
    # Blogs without a feed, and the full text of summary-only feeds: each crawl is a
    # subprocess (spiders.run) with a deadline; this job only waits for them.
    scheduler.add_job(crawls.run_due, "interval", id="crawl", seconds=settings.dispatch_every_s,
                      args=(engine, settings, after_dispatch),
                      kwargs={"worker": me.id, "leading": leadership.check}, next_run_time=utcnow(), **common)
    scheduler.add_job(leadership.only(prune_history), "interval", id="prune_history", hours=24, args=(engine,),
                      **common)
    for job in jobs:
        scheduler.add_job(leadership.only(job.func), "interval", id=job.id, seconds=job.every_s, args=job.args,
                          **common)
    return scheduler


def _beat(engine: Engine, me: cluster.Me, leadership: cluster.Leadership) -> None:
    try:
        cluster.heartbeat(engine, me)
        leadership.check()
    except sa.exc.DBAPIError as exc:  # the database is away: try again next beat
        log.warning("worker %s could not reach the database: %s", me.id, exc)


class SchedulerLock:
    """An exclusive lock on data_dir/scheduler.lock: one scheduler per data directory."""

    def __init__(self, settings: Settings):
        self.path = Path(settings.data_dir) / "scheduler.lock"
        self._fd: int | None = None

    def __enter__(self) -> "SchedulerLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise HustingsError(f"another worker already runs the scheduler for {self.path.parent} "
                                f"(lock {self.path} is held)") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
