"""Crawls from the outside: which are due, and running `python -m spiders.run` as a subprocess.

Scrapy is never imported here (nor by the web or the command's other paths): each crawl
is its own process, because Twisted's reactor cannot be restarted in one process. The
child stores its posts and records the crawl in the feed's fetch history; this side
gives it a deadline, kills it past that, and records the kill.
"""

from __future__ import annotations

import dataclasses
import html
import json
import logging
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Sequence

from sqlalchemy.engine import Engine

from . import discover, feed_store, fetch, fetch_history, fulltext_store, polling
from .db import utcnow
from .errors import AggregatorError
from .fetch_history import FetchRecord
from .guard import AddressGuard
from .models import Feed
from .settings import ENV_PREFIX, Settings, as_environ

log = logging.getLogger(__name__)

KILL_GRACE_S = 60  # past crawl_deadline_s, Scrapy has this long to close cleanly before it is killed
# The first <title>'s start tag (stopping at "<", so a page of unclosed "<title" costs linear
# time), then its end from there: one scan, whatever the page holds.
_TITLE = re.compile(rb"<title[^<>]*>", re.I)
_TITLE_END = re.compile(rb"</title", re.I)


@dataclass(frozen=True)
class CrawlOutcome:
    spider: str  # 'blog' or 'fulltext'
    feed_ids: tuple[int, ...]
    result: str  # 'ok' or 'failed'
    report: dict = field(default_factory=dict)  # what the crawl process printed
    error: str = ""
    duration_s: float = 0.0

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "feed_ids": list(self.feed_ids)}


def crawl_command(spider: str, feed_ids: Sequence[int], *, full: bool = False, again: bool = False,
                  post_ids: Sequence[int] = ()) -> list[str]:
    cmd = [sys.executable, "-m", "spiders.run", spider]
    for feed_id in feed_ids:
        cmd += ["--feed", str(feed_id)]
    if full:
        cmd.append("--full")
    if again:
        cmd.append("--again")
    for post_id in post_ids:
        cmd += ["--post", str(post_id)]
    return cmd


def run_crawl(
    engine: Engine, settings: Settings, spider: str, feeds: Sequence[Feed], *, full: bool = False,
    again: bool = False, post_ids: Sequence[int] = (), timeout_s: float | None = None,
) -> CrawlOutcome:
    """Run one crawl process to its end (or kill it at its deadline) and return what it reported.

    Never raises for a failed crawl: a failure is recorded on each feed and in the outcome.
    """
    ids = tuple(f.id for f in feeds)
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(as_environ(settings))
    timeout_s = timeout_s or settings.crawl_deadline_s + KILL_GRACE_S
    started, clock = utcnow(), time.monotonic()
    try:
        done = subprocess.run(crawl_command(spider, ids, full=full, again=again, post_ids=post_ids), env=env,
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        error = f"the crawl process was killed after {timeout_s:g}s (crawl_deadline_s + {KILL_GRACE_S}s)"
        _record_kill(engine, settings, spider, feeds, started, time.monotonic() - clock, error)
        return CrawlOutcome(spider, ids, "failed", error=error, duration_s=time.monotonic() - clock)
    duration = time.monotonic() - clock
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    try:
        report = json.loads(lines[-1]) if lines else {}
    except ValueError:
        report = {}
    if not report:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])[-500:]
        error = f"the crawl process exited with code {done.returncode} and no report: {tail}"
        _record_kill(engine, settings, spider, feeds, started, duration, error)
        return CrawlOutcome(spider, ids, "failed", error=error, duration_s=duration)
    result = report.get("result", "failed")
    return CrawlOutcome(spider, ids, result, report=report, error=report.get("error", ""), duration_s=duration)


def _record_kill(engine, settings, spider, feeds, started: datetime, duration: float, error: str) -> None:
    """The child could not record its own end: record a failure on each feed here."""
    for feed in feeds:
        record = FetchRecord(started_at=started, duration_s=duration, error=error,
                             kind="crawl" if spider == "blog" else "fulltext")
        if spider == "blog":
            next_at = polling.after_error(started, feed.error_count + 1, settings)
            fetch_history.record_failure(engine, feed, record, next_check_at=next_at, status="erroring")
        else:
            fetch_history.insert_fetch(engine, feed.id, record)


def run_due(engine: Engine, settings: Settings, after: Callable[[], None] | None = None, *, worker: str = "",
            leading: Callable[[], bool] = lambda: True) -> list[CrawlOutcome]:
    """The worker's crawl job: due blog crawls (crawl_workers at a time, each claimed with a
    lease as feeds are), then one full-text pass, on the leader only (it reads pages of
    many feeds at once, so two workers would read the same pages)."""
    now = utcnow()
    due = feed_store.claim_due(engine, "crawl", now, worker=worker or f"crawl:{os.getpid()}",
                               lease_s=settings.crawl_deadline_s + settings.claim_lease_s, limit=1000)
    outcomes: list[CrawlOutcome] = []
    if due:
        with ThreadPoolExecutor(settings.crawl_workers, thread_name_prefix="crawl") as pool:
            outcomes += list(pool.map(lambda f: run_crawl(engine, settings, "blog", [f]), due))
    pending = fulltext_store.fulltext_pending_feeds(engine, now) if leading() else []
    if pending:
        feeds = [feed_store.get_feed(engine, i) for i in pending]
        outcomes.append(run_crawl(engine, settings, "fulltext", feeds))
    for o in outcomes:
        if o.result == "failed":
            log.warning("%s crawl of feeds %s failed: %s", o.spider, list(o.feed_ids), o.error)
        else:
            r = o.report
            log.info("%s crawl of feeds %s: %s pages, %s new posts, %s updated", o.spider, list(o.feed_ids),
                     r.get("pages"), r.get("new", 0), r.get("updated", 0))
    if outcomes and after is not None:
        after()
    return outcomes


@dataclass(frozen=True)
class SiteCheck:
    url: str  # where the home page ended up after redirects
    title: str
    feeds: tuple[str, ...]  # feeds the page advertises (a feed is cheaper than a crawl)
    headers: dict[str, str] = field(default_factory=dict, compare=False)  # the page's response headers


def check_site(url: str, settings: Settings, *, guard: AddressGuard | None = None) -> SiteCheck:
    """Fetch a blog's home page (guarded, capped) and check it is an HTML page.

    Raises:
        AggregatorError: the page could not be fetched or is not HTML.
    """
    result = fetch.fetch(url, settings, guard=guard or AddressGuard(settings.allowed_networks),
                         accept="text/html, application/xhtml+xml;q=0.9, */*;q=0.1")
    ctype = result.headers.get("content-type", "").lower()
    head = result.body[:2048].lstrip().lower()
    if "html" not in ctype and not head.startswith((b"<!doctype html", b"<html")):
        raise AggregatorError(url, f"not an HTML page ({ctype or 'no content type'}): nothing to crawl")
    page = result.body[:200_000]
    start = _TITLE.search(page)
    end = _TITLE_END.search(page, start.end()) if start else None
    raw = page[start.end():end.start()] if start and end else b""
    title = " ".join(html.unescape(raw.decode("utf-8", "replace")).split())[:500]
    feeds = tuple(link.href for link in discover.find_feed_links(result.body, result.final_url))
    return SiteCheck(result.final_url, title, feeds, result.headers)

