"""`hustings fetch` (feeds that are due, or all, or named ones) and `hustings crawl` (one blog now)."""

from __future__ import annotations

import sys

from aggregator import db, feed_store, pipeline
from community import notices

from .context import EXIT_FAILED, EXIT_OK, Context, print_json


def register(sub) -> None:
    s = sub.add_parser("fetch", help="fetch due feeds (or --all, or --feed) and store new posts")
    s.add_argument("--all", action="store_true", help="every active feed, due or not")
    s.add_argument("--feed", action="append", metavar="ID|URL", help="this feed (repeatable)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.add_argument("--no-index", action="store_true", help="do not update the search index afterwards")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_fetch)

    s = sub.add_parser("crawl", help="crawl a blog without a feed now, or take a feed's posts' full text")
    s.add_argument("feed", metavar="ID|URL")
    s.add_argument("--full", action="store_true", help="a blog: fetch and re-read every post, known or not")
    s.add_argument("--again", action="store_true", help="a feed: re-extract every post's full text")
    s.add_argument("--post", type=int, action="append", metavar="ID", help="re-extract this post only (repeatable)")
    s.add_argument("--no-index", action="store_true", help="do not update the search index afterwards")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_crawl)


def cmd_fetch(ctx: Context, args) -> int:
    engine = ctx.engine
    if args.feed:
        feeds = [feed_store.get_feed(engine, ref) for ref in args.feed]
    elif args.all:
        feeds = feed_store.pollable_feeds(engine)
    else:
        feeds = feed_store.feeds_due(engine, db.utcnow())
    bar = None
    if feeds and not args.json and not args.no_progress and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(feeds), unit="feed", file=sys.stderr)
    outcomes = pipeline.refresh_feeds(engine, feeds, ctx.settings, on_done=(lambda o: bar.update(1)) if bar else None)
    if bar:
        bar.close()
    notices.deliver(engine, ctx.settings)  # a feed gone is in the public log when the command returns
    summary = {
        "feeds": len(outcomes),
        "ok": sum(o.result == "ok" for o in outcomes),
        "not_modified": sum(o.result == "not_modified" for o in outcomes),
        "failed": sum(o.result == "failed" for o in outcomes),
        "new_posts": sum(o.new for o in outcomes),
        "updated_posts": sum(o.updated for o in outcomes),
        "results": sorted((o.as_dict() for o in outcomes), key=lambda d: d["feed_id"]),
    }
    if not args.no_index:
        summary["index"] = ctx.sync_index(quiet=True)
    if args.json:
        print_json(summary)
    else:
        print(f"{summary['feeds']} feeds: {summary['ok']} ok, {summary['not_modified']} not modified, "
              f"{summary['failed']} failed; {summary['new_posts']} new posts, {summary['updated_posts']} updated")
        for o in sorted(outcomes, key=lambda o: o.feed_id):
            if o.result == "failed":
                print(f"  failed: feed {o.feed_id} ({o.url}): {o.error}")
            elif o.warning:
                print(f"  warning: feed {o.feed_id} ({o.url}): {o.warning}")
            if o.moved_to:
                print(f"  moved: feed {o.feed_id} now at {o.moved_to}")
        if summary.get("index"):
            print(f"search index: {summary['index']['indexed']} posts indexed, {summary['index']['removed']} removed")
    # Fetching one named feed is a question with an answer: say so in the exit code.
    if args.feed and summary["failed"]:
        return EXIT_FAILED
    return EXIT_OK


def cmd_crawl(ctx: Context, args) -> int:
    from aggregator import crawls  # asyncio and the spiders' plumbing: not for every fetch

    feed = feed_store.get_feed(ctx.engine, args.feed)
    if feed.kind == "crawl" and not args.post:
        spider = "blog"
    else:
        spider = "fulltext"
    outcome = crawls.run_crawl(ctx.engine, ctx.settings, spider, [feed], full=args.full, again=args.again,
                               post_ids=args.post or ())
    notices.deliver(ctx.engine, ctx.settings)
    out = outcome.as_dict()
    if not args.no_index and outcome.result == "ok":
        out["index"] = ctx.sync_index(quiet=True)
    if args.json:
        print_json(out)
    else:
        r = outcome.report
        if outcome.result == "failed":
            print(f"{spider} crawl of feed {feed.id} failed: {outcome.error}")
        elif spider == "blog":
            print(f"crawled {feed.url}: {r.get('pages', 0)} pages, {r.get('posts_found', 0)} posts found; "
                  f"{r.get('new', 0)} new, {r.get('updated', 0)} updated" +
                  (f", {r['elsewhere']} already stored from another feed" if r.get("elsewhere") else "") +
                  (f" ({r['stopped']})" if r.get("stopped") else ""))
        else:
            print(f"full text for feed {feed.id}: {r.get('pages', 0)} pages read, {r.get('updated', 0)} posts "
                  f"updated, {r.get('failed', 0)} without an article" + (f" ({r['stopped']})" if r.get("stopped") else ""))
            for f in r.get("feeds", []):
                for error in f.get("errors", [])[:5]:
                    print(f"  {error}")
    return EXIT_OK if outcome.result == "ok" else EXIT_FAILED
