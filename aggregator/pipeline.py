"""refresh_feed(): the one place that knows the order of the stages.

fetch -> parse -> sanitize (gather()) -> store (store()), and the fetch is recorded on
the feed with its next check, in the transaction that stores its posts. One bad feed never stops a batch: expected failures
(AggregatorError) are recorded on the feed and reported in the outcome.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
from collections import defaultdict
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from hashlib import sha256
from typing import Callable, Iterable, Sequence
from urllib.parse import urlsplit

from sqlalchemy.engine import Connection, Engine

from . import feed_store, fetch, fetch_history, orphans, parse, polling, post_store, sanitize
from .db import utcnow, writing
from .errors import AggregatorError, FetchError
from .fetch_history import FetchRecord
from .guard import AddressGuard, embedded_ipv4, parse_ip
from .models import Feed, FetchResult, ParsedFeed, SaveReport
from .settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefreshOutcome:
    feed_id: int
    url: str
    result: str  # 'ok', 'not_modified' or 'failed'
    new: int = 0
    updated: int = 0
    http_status: int | None = None
    error: str = ""
    moved_to: str = ""
    warning: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def refresh_feed(
    engine: Engine,
    feed: Feed,
    settings: Settings,
    *,
    guard: AddressGuard | None = None,
    now: datetime | None = None,
    cpu: Executor | None = None,
) -> RefreshOutcome:
    """Fetch one feed and store its new or changed posts; never raises AggregatorError.

    ``cpu`` is an executor (a process pool) to parse and sanitise on; without one
    that happens in this thread.
    """
    got = gather(engine, feed, settings, guard=guard, now=now, cpu=cpu)
    return got if isinstance(got, RefreshOutcome) else store(engine, settings, [got])[0]


@dataclass(frozen=True)
class Gathered:
    """A feed fetched, parsed and sanitised, waiting to be stored with its fetch record."""

    feed: Feed
    result: FetchResult
    parsed: ParsedFeed
    now: datetime
    started: float  # time.monotonic() when the fetch began
    body_hash: str
    moved_to: str
    next_at: datetime
    interval: int
    warning: str


def gather(
    engine: Engine,
    feed: Feed,
    settings: Settings,
    *,
    guard: AddressGuard | None = None,
    now: datetime | None = None,
    cpu: Executor | None = None,
) -> Gathered | RefreshOutcome:
    """Fetch, parse and sanitise one feed: what store() needs, or the outcome already recorded
    when there is nothing to store (a failure, a 304, the same bytes as last time)."""
    now = now or utcnow()
    started = time.monotonic()
    try:
        result = fetch.fetch(feed.url, settings, etag=feed.etag, last_modified=feed.last_modified, guard=guard)
    except FetchError as exc:
        return _failed(engine, feed, settings, exc, now, time.monotonic() - started)

    moved_to = ""
    if result.permanent_redirect and result.final_url != feed.url and not feed_store.url_taken(engine, result.final_url, feed.id):
        # 301/308 all the way: the feed has moved. We only follow it once the new
        # address answered through the guard with a feed (or a 304 for the one we had).
        moved_to = result.final_url

    body_hash = sha256(result.body).hexdigest() if not result.not_modified else ""
    if result.not_modified or body_hash == feed.body_hash:
        # A 304, or a server that ignores conditional GET but sent the same bytes: nothing to parse.
        next_at, interval = polling.after_success(now, _interval(feed), settings, max_age_s=result.max_age_s)
        record = FetchRecord(started_at=now, duration_s=time.monotonic() - started, http_status=result.status,
                             bytes=result.bytes_read, not_modified=True, final_url=result.final_url)
        fetch_history.record_success(engine, feed, record, next_check_at=next_at, interval_s=interval,
                             etag=result.etag, last_modified=result.last_modified, new_url=moved_to or None)
        return RefreshOutcome(feed.id, feed.url, "not_modified", http_status=result.status, moved_to=moved_to)

    try:
        args = (result.body, feed, result.final_url, result.headers, settings)
        parsed = cpu.submit(prepare, *args).result() if cpu is not None else prepare(*args)
    except AggregatorError as exc:
        return _failed(engine, feed, settings, exc, now, time.monotonic() - started,
                       bytes_read=result.bytes_read, http_status=result.status)

    interval = polling.posting_interval([p.published for p in parsed.posts], now, settings)
    next_at, interval = polling.after_success(now, interval, settings, ttl_s=parsed.ttl_s,
                                              max_age_s=result.max_age_s)
    warning = f"{parsed.problem} (kept {len(parsed.posts)} entries)" if parsed.problem else ""
    return Gathered(feed, replace(result, body=b""), parsed, now, started, body_hash, moved_to, next_at, interval,
                    warning)


def store(engine: Engine, settings: Settings, items: Sequence[Gathered]) -> list[RefreshOutcome]:
    """Store gathered feeds: each one's posts and its fetch record land together.

    Several go in one transaction: on ordinary feeds a feed's commit and statements cost
    more than its posts do (bench/ingest.py --py-spy, issue 15). If that transaction
    fails, each feed is stored again in its own, so one feed's fault stays its own.
    """
    if len(items) > 1:
        try:
            with writing(engine) as conn:
                reports = [post_store.save_posts_in(conn, g.feed, g.parsed.posts, g.now) for g in items]
                for g, report in zip(items, reports):
                    _record_in(conn, report, g)
            return [_stored(g, report) for g, report in zip(items, reports)]
        except Exception:  # noqa: BLE001 (each feed is tried again alone, and reports its own error)
            log.info("storing %d feeds in one transaction failed; storing each alone", len(items), exc_info=True)
    outcomes = []
    for g in items:
        try:
            report = post_store.save_posts(engine, g.feed, g.parsed.posts, g.now, then=partial(_record_in, g=g))
            outcomes.append(_stored(g, report))
        except Exception as exc:  # a bug in one feed's handling must not stop the batch
            outcomes.append(_internal_error(engine, g.feed, settings, exc))
    return outcomes


def _record_in(conn: Connection, report: SaveReport, g: Gathered) -> None:
    """The fetch's record on the feed, in the transaction that stores its posts."""
    r = g.result
    record = FetchRecord(
        started_at=g.now, duration_s=time.monotonic() - g.started, http_status=r.status,
        bytes=r.bytes_read, new_posts=report.new, updated_posts=report.updated,
        final_url=r.final_url, error=g.warning,
    )
    fetch_history.record_success_in(conn, g.feed, record, fetch_history.success_values(
        g.feed, record, next_check_at=g.next_at, interval_s=g.interval, etag=r.etag,
        last_modified=r.last_modified, body_hash=g.body_hash, title=g.parsed.title,
        site_url=g.parsed.site_url, new_url=g.moved_to or None, warning=g.warning,
    ))


def _stored(g: Gathered, report: SaveReport) -> RefreshOutcome:
    return RefreshOutcome(g.feed.id, g.feed.url, "ok", new=report.new, updated=report.updated,
                          http_status=g.result.status, moved_to=g.moved_to, warning=g.warning)


def _internal_error(engine: Engine, feed: Feed, settings: Settings, exc: Exception) -> RefreshOutcome:
    """A bug met while refreshing one feed: logged with its traceback, recorded on the feed."""
    log.error("internal error refreshing %s", feed.label, exc_info=exc, extra={"feed_id": feed.id, "url": feed.url})
    error = AggregatorError(feed.url, f"internal error: {type(exc).__name__}: {exc}")
    try:
        return _failed(engine, feed, settings, error, utcnow(), 0.0)
    except Exception:
        return RefreshOutcome(feed.id, feed.url, "failed", error=str(error))


def prepare(body: bytes, feed: Feed, final_url: str, headers: dict[str, str], settings: Settings) -> ParsedFeed:
    """Parse and sanitise one body: the CPU-bound part, pure, so it can run in another process.

    Raises:
        ParseError: nothing usable in the body.
    """
    parsed = parse.parse_feed(body, feed, final_url=final_url, headers=headers,
                              max_entries=settings.fetch_max_entries)
    clean = sanitize.sanitizer(settings)
    return replace(parsed, posts=tuple(sanitize.sanitize_post(p, settings, clean) for p in parsed.posts))


def _interval(feed: Feed) -> int:
    return feed.interval_s or 3600


def _failed(
    engine: Engine, feed: Feed, settings: Settings, exc: AggregatorError, now: datetime,
    duration_s: float, bytes_read: int = 0, http_status: int | None = None,
) -> RefreshOutcome:
    status_code = getattr(exc, "status", None) or http_status
    errors = feed.error_count + 1
    status = "erroring"
    message = str(exc)
    last_good = feed.last_success_at or feed.created_at or now
    if getattr(exc, "gone", False):
        status = "gone"
    elif now - last_good > timedelta(days=settings.fetch_disable_after_days):
        status = "gone"
        message += f" (no successful fetch for {settings.fetch_disable_after_days} days: polling stopped)"
    next_at = polling.after_error(now, errors, settings, retry_after_s=getattr(exc, "retry_after_s", None))
    record = FetchRecord(started_at=now, duration_s=duration_s, http_status=status_code,
                         bytes=getattr(exc, "bytes_read", 0) or bytes_read, error=message)
    fetch_history.record_failure(engine, feed, record, next_check_at=next_at, status=status)
    return RefreshOutcome(feed.id, feed.url, "failed", http_status=status_code, error=message)


def refresh_feeds(
    engine: Engine,
    feeds: Iterable[Feed],
    settings: Settings,
    *,
    guard: AddressGuard | None = None,
    on_done: Callable[[RefreshOutcome], None] | None = None,
) -> list[RefreshOutcome]:
    """Refresh many feeds: a bounded thread pool fetches (at most fetch_per_host per host at
    once), parses and sanitises them (on a process pool for a big batch); this thread stores
    them, several feeds a transaction (store())."""
    guard = guard or AddressGuard(settings.allowed_networks)
    feeds = list(feeds)
    host_slots: dict[str, threading.BoundedSemaphore] = defaultdict(
        lambda: threading.BoundedSemaphore(settings.fetch_per_host)
    )
    slots_lock = threading.Lock()

    def host_of(feed: Feed) -> str:
        # One slot pool per server: 127.1, 0x7f.1 and ::ffff:127.0.0.1 are one host.
        try:
            host = (urlsplit(feed.url).hostname or "").lower().rstrip(".")
        except ValueError:
            return ""
        ip = parse_ip(host)
        if ip is not None and ip.version == 6 and embedded_ipv4(ip) is not None:
            ip = embedded_ipv4(ip)
        return str(ip) if ip is not None else host

    ready: queue.SimpleQueue = queue.SimpleQueue()

    def run(feed: Feed) -> None:
        with slots_lock:
            slot = host_slots[host_of(feed)]
        with slot:
            try:
                got = gather(engine, feed, settings, guard=guard, cpu=cpu)
            except Exception as exc:  # a bug in one feed's handling must not stop the batch
                got = _internal_error(engine, feed, settings, exc)
        ready.put(got)

    # Interleave hosts so the pool is not filled with feeds waiting on one host's slots.
    by_host: dict[str, list[Feed]] = defaultdict(list)
    for feed in feeds:
        by_host[host_of(feed)].append(feed)
    ordered: list[Feed] = []
    while any(by_host.values()):
        for host in list(by_host):
            if by_host[host]:
                ordered.append(by_host[host].pop(0))

    outcomes: list[RefreshOutcome] = []
    processes = parse_processes(settings, len(feeds))
    with (_parse_pool(processes) if processes else nullcontext()) as cpu, \
            ThreadPoolExecutor(max_workers=settings.fetch_workers, thread_name_prefix="fetch") as pool:
        for f in ordered:
            pool.submit(run, f)
        # This thread stores what the fetch threads gather, several feeds a transaction:
        # whatever is ready, after a short wait for company (the fetch threads go on
        # meanwhile, so the wait costs nothing but the feeds' moment in memory).
        left = len(ordered)
        while left:
            group = [ready.get()]
            deadline = time.monotonic() + STORE_WAIT_S
            while len(group) < min(STORE_GROUP, left):
                try:
                    group.append(ready.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            left -= len(group)
            done = [g for g in group if isinstance(g, RefreshOutcome)]
            done += store(engine, settings, [g for g in group if isinstance(g, Gathered)])
            for outcome in done:
                outcomes.append(outcome)
                if on_done:
                    on_done(outcome)
    return outcomes


# Feeds stored in one transaction, and how long the store waits for more to come. A
# transaction holds SQLite's one write lock: 32 ordinary feeds hold it ~50 ms.
STORE_GROUP = 32
STORE_WAIT_S = 0.05


BIG_BATCH = 8  # below this many feeds, starting parse processes costs more than it saves


def parse_processes(settings: Settings, batch: int) -> int:
    """How many processes should parse and sanitise a batch of this size (0: in the fetch threads)."""
    if settings.parse_processes == 1:
        return 0
    wanted = settings.parse_processes or (os.cpu_count() or 1)
    return wanted if wanted > 1 and batch >= BIG_BATCH else 0


def _warm(seconds: float) -> None:
    time.sleep(seconds)


def _parse_pool(processes: int) -> ProcessPoolExecutor:
    """A pool started now, before the fetch threads start.

    Forking is fastest, but unsafe once a process has other threads (a lock one of them
    holds is copied into the child held): `hustings fetch` forks, while the worker,
    whose scheduler runs threads, starts its pool from a fork server instead.
    """
    if threading.active_count() == 1:
        context = multiprocessing.get_context("fork")
    else:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["aggregator.pipeline"])
    # Each process dies with this one: killed (kill -9 included), it could not shut them down.
    pool = ProcessPoolExecutor(processes, mp_context=context, initializer=orphans.die_with_parent,
                               initargs=(os.getpid(),))
    # A forking pool starts every process at the first task; a fork server's starts them on
    # demand, so there the first tasks overlap (sleep) to make every one of them start here.
    overlap = 0.0 if context.get_start_method() == "fork" else 0.05
    for future in [pool.submit(_warm, overlap) for _ in range(processes)]:
        future.result()
    return pool
