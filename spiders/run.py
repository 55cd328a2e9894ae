"""`python -m spiders.run blog|fulltext --feed ID ...`: one crawl, in a process of its own.

Scrapy's Twisted reactor cannot be started twice in one process (scrapy/scrapy#2941),
so the worker and `hustings crawl` start this module as a subprocess and read the
one-line JSON report it prints on standard output (logs go to standard error). The
crawl's posts are stored, and the crawl recorded in each feed's fetch history
(kind 'crawl' or 'fulltext'), by this process.

Settings come from the environment (HUSTINGS_*) like any Hustings command; the
parent passes its own settings that way.

Exit codes: 0 the crawl ran (a blog's start page answered); 1 it failed (recorded on
the feed); 2 bad arguments or settings.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import timedelta
from urllib.parse import urlsplit

from aggregator import db, feed_store, fetch_history, fulltext_store, polling, post_store
from aggregator.db import utcnow
from aggregator.errors import HustingsError
from aggregator.fetch_history import FetchRecord
from aggregator.models import Feed
from aggregator.settings import load_settings

JITTER = 0.10  # +-10% on the time of the next crawl, as on every feed's next check


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m spiders.run", description=__doc__.split("\n")[0])
    p.add_argument("spider", choices=("blog", "fulltext"))
    p.add_argument("--feed", type=int, action="append", default=[], metavar="ID",
                   help="the feed (repeatable for fulltext); fulltext without --feed: every feed with posts waiting")
    p.add_argument("--full", action="store_true", help="blog: fetch and re-read every post, known or not")
    p.add_argument("--again", action="store_true", help="fulltext: re-extract every post, not only those waiting")
    p.add_argument("--post", type=int, action="append", default=[], metavar="ID", help="fulltext: just this post")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings()
        engine = db.make_engine(settings)
        db.check_schema(engine)
        if args.spider == "blog":
            if len(args.feed) != 1:
                raise HustingsError("blog crawls one feed: give exactly one --feed")
            report = crawl_blog(engine, settings, feed_store.get_feed(engine, args.feed[0]), full=args.full)
        else:
            feeds = [feed_store.get_feed(engine, i) for i in args.feed] or \
                [feed_store.get_feed(engine, i) for i in fulltext_store.fulltext_pending_feeds(engine, utcnow())]
            report = crawl_fulltext(engine, settings, feeds, again=args.again, post_ids=args.post)
    except HustingsError as exc:
        print(f"spiders.run: {exc}", file=sys.stderr)
        print(json.dumps({"spider": args.spider, "result": "failed", "error": str(exc)}))
        return 2
    print(json.dumps(report, default=str))
    return 0 if report["result"] == "ok" else 1


def _run(settings, spider_cls, max_pages: int | None = None, **kwargs):
    """Run one spider to the end in this process; returns (spider, stats)."""
    from scrapy.crawler import CrawlerProcess

    from . import middlewares
    from .settings import scrapy_settings

    middlewares.REFUSED.clear()
    process = CrawlerProcess(scrapy_settings(settings, max_pages=max_pages))
    crawler = process.create_crawler(spider_cls)
    process.crawl(crawler, **kwargs)
    process.start()
    return crawler.spider, crawler.stats.get_stats()


def _crawl_seconds(stats: dict) -> float:
    """From the spider's opening to its closing: the crawl, without process start-up."""
    start, finish = stats.get("start_time"), stats.get("finish_time")
    return round((finish - start).total_seconds(), 3) if start and finish else 0.0


def _stopped(stats: dict, settings) -> str:
    """Why the crawl stopped early, in words, or '' when it ran to its end."""
    reason = stats.get("finish_reason", "")
    if stats.get("hustings/page_limit_refused"):
        return f"stopped at the page limit ({settings.crawl_max_pages} requests)"
    if reason == "closespider_timeout":
        return f"stopped at the {settings.crawl_deadline_s:g}s deadline"
    if reason not in ("finished", ""):
        return f"stopped: {reason}"
    return ""


def crawl_blog(engine, settings, feed: Feed, *, full: bool = False) -> dict:
    from .blog import BlogSpider
    from .middlewares import REFUSED

    if feed.kind != "crawl":
        raise HustingsError(f"{feed.label} is a feed, not a blog to crawl (its posts' full text: fulltext)")
    started, clock = utcnow(), time.monotonic()
    host = urlsplit(feed.url).hostname or ""
    spider, stats = _run(settings, BlogSpider, feed=feed, known=post_store.post_urls(engine, feed.id),
                         elsewhere=post_store.post_urls_elsewhere(engine, feed.id, host), full=full)
    tally = spider.tally[feed.id]
    tally.elsewhere = len(spider.seen_elsewhere)
    stopped = _stopped(stats, settings)
    ok = spider.home_status == 200 and not spider.home_error
    warnings = [w for w in (stopped, *(f"refused: {r}" for r in REFUSED[:3])) if w]
    record = FetchRecord(
        started_at=started, duration_s=time.monotonic() - clock, http_status=spider.home_status,
        bytes=int(stats.get("downloader/response_bytes", 0)), new_posts=tally.new, updated_posts=tally.updated,
        final_url=spider.home_url or feed.url, error="; ".join(warnings)[:2000], kind="crawl",
    )
    if ok:
        # A crawl that ran to its end, or found nothing new, has everything it can reach:
        # from then on crawls stop at what they know.
        complete = not stopped or (tally.posts_found == 0 and not full)
        next_at = started + timedelta(seconds=settings.crawl_every_s * random.uniform(1 - JITTER, 1 + JITTER))
        fetch_history.record_crawl_success(engine, feed, record, next_check_at=next_at, interval_s=settings.crawl_every_s,
                                   crawled_all=complete)
    else:
        error = spider.home_error or f"{feed.url}: the start page could not be read"
        if REFUSED and not spider.home_status:
            error = f"{feed.url}: refused by the address guard: {REFUSED[0]}"
        record = FetchRecord(**{**record.__dict__, "error": error[:2000]})
        errors = feed.error_count + 1
        last_good = feed.last_success_at or feed.created_at or started
        status = "gone" if started - last_good > timedelta(days=settings.fetch_disable_after_days) else "erroring"
        fetch_history.record_failure(engine, feed, record, next_check_at=polling.after_error(started, errors, settings),
                             status=status)
    return {
        "spider": "blog", "result": "ok" if ok else "failed", "feed_id": feed.id, "url": feed.url,
        "pages": tally.pages, "requests": int(stats.get("hustings/requests_sent", 0)),
        "posts_found": tally.posts_found, "new": tally.new, "updated": tally.updated, "unchanged": tally.unchanged,
        "elsewhere": tally.elsewhere, "stopped": stopped, "error": record.error if not ok else "",
        "warnings": warnings, "page_errors": tally.errors, "incremental": spider.incremental,
        "duration_s": round(record.duration_s, 2), "crawl_s": _crawl_seconds(stats),
    }


def crawl_fulltext(engine, settings, feeds: list[Feed], *, again: bool = False, post_ids=()) -> dict:
    from .fulltext import FulltextSpider

    started, clock = utcnow(), time.monotonic()
    jobs = []
    for feed in feeds:
        posts = fulltext_store.fulltext_candidates(engine, feed.id, started, limit=settings.crawl_max_pages, again=again,
                                          post_ids=post_ids)
        if posts:
            jobs.append((feed, posts))
    report = {"spider": "fulltext", "result": "ok", "feeds": [], "pages": 0, "updated": 0, "failed": 0}
    if not jobs:
        return report
    spider, stats = _run(settings, FulltextSpider, jobs=jobs)
    failed_posts = dict(spider.failures)
    for post_id, why in failed_posts.items():
        fulltext_store.fulltext_failed(engine, post_id, why, started)
    stopped = _stopped(stats, settings)
    for feed, posts in jobs:
        tally = spider.tally[feed.id]
        untried = len(posts) - tally.updated - tally.unchanged - tally.failed
        problems = [w for w in (stopped, f"{tally.failed} of {len(posts)} pages gave no article" if tally.failed else "")
                    if w]
        fetch_history.insert_fetch(engine, feed.id, FetchRecord(
            started_at=started, duration_s=time.monotonic() - clock, updated_posts=tally.updated,
            error="; ".join(problems + tally.errors[:3])[:2000], kind="fulltext",
        ))
        report["feeds"].append({
            "feed_id": feed.id, "url": feed.url, "posts": len(posts), "pages": tally.pages,
            "updated": tally.updated, "unchanged": tally.unchanged, "failed": tally.failed,
            "untried": max(0, untried), "errors": tally.errors,
        })
        report["pages"] += tally.pages
        report["updated"] += tally.updated
        report["failed"] += tally.failed
    report["stopped"] = stopped
    report["duration_s"] = round(time.monotonic() - clock, 2)
    return report


if __name__ == "__main__":
    sys.exit(main())
