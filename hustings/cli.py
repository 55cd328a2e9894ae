"""The `hustings` command: the one place that wires the packages together.

Exit codes: 0 success; 1 an expected failure (bad input, a feed that cannot be
fetched, not found), reported in one line without a traceback; 2 a usage error
or a bad setting; 3 the database schema is older than the code (run
`hustings init`); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from aggregator import crawls, db, feed_store, opml, pipeline, post_store, scheduler
from aggregator.errors import AggregatorError, HustingsError, SchemaError, SettingsError
from aggregator.settings import Settings, describe_settings, load_settings
from community import accounts, moderation, notices
from community.jobs import jobs as community_jobs
from index import search as search_mod
from index import writer

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_SCHEMA, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

log = logging.getLogger("hustings")


# --- output helpers ----------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _print_json(value: Any) -> None:
    json.dump(_jsonable(value), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


# --- context -----------------------------------------------------------------------


class Context:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._engine = None

    @property
    def engine(self):
        """The database, created on first use of a fresh data directory; an old schema is refused."""
        if self._engine is None:
            self._engine = db.make_engine(self.settings)
            if db.current_revision(self._engine) is None:
                db.migrate(self._engine)
                log.info("created a new database at %s", self.settings.resolved_database_url)
            db.check_schema(self._engine)
        return self._engine


# --- commands ----------------------------------------------------------------------


def cmd_init(ctx: Context, args) -> int:
    engine = db.make_engine(ctx.settings)
    before, after = db.migrate(engine)
    if args.json:
        _print_json({"database": _safe_url(ctx.settings), "before": before, "revision": after})
    elif before == after:
        print(f"database {_safe_url(ctx.settings)} is up to date (revision {after})")
    else:
        print(f"database {_safe_url(ctx.settings)} migrated from {before or 'nothing'} to revision {after}")
    return EXIT_OK


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)


def cmd_feeds_add(ctx: Context, args) -> int:
    engine = ctx.engine
    url = args.url.strip()
    try:
        existing = feed_store.get_feed(engine, url)
    except HustingsError:
        existing = None
    if existing is not None:
        return _report_added(args, existing, created=False, found=None)
    if args.crawl:
        return _add_crawl(ctx, args, url)
    found = None
    if not args.no_check:
        found = pipeline.discover_feed(url, ctx.settings)
        url = found.url
    feed, created = feed_store.add_feed(
        engine, url, title=args.title or (found.title if found else ""),
        site_url=(found.site_url if found else ""), category=args.category or "",
    )
    return _report_added(args, feed, created, found)


def _add_crawl(ctx: Context, args, url: str) -> int:
    """A blog without a usable feed: crawled by the spiders (kind 'crawl')."""
    site = None
    if not args.no_check:
        site = crawls.check_site(url, ctx.settings)
        url = site.url
    selector = _check_selector(args.selector) if args.selector else ""
    feed, created = feed_store.add_feed(ctx.engine, url, title=args.title or (site.title if site else ""), site_url=url,
                                   category=args.category or "", kind="crawl")
    if created and selector:
        feed = feed_store.set_feed_options(ctx.engine, feed.id, content_selector=selector)
    if args.json:
        _print_json({"id": feed.id, "url": feed.url, "title": feed.title, "kind": feed.kind, "status": feed.status,
                     "created": created, "content_selector": feed.content_selector,
                     "advertised_feeds": list(site.feeds) if site else []})
        return EXIT_OK
    if not created:
        print(f"already known: feed {feed.id} {feed.url} ({feed.kind}, {feed.status})")
        return EXIT_OK
    print(f"added blog {feed.id} to crawl: {feed.url}" + (f" \"{feed.title}\"" if feed.title else ""))
    if site and site.feeds:
        print("note: the page advertises a feed, which is cheaper than a crawl: " + ", ".join(site.feeds))
    print("it will be crawled by the worker, or now with `hustings crawl " + str(feed.id) + "`")
    return EXIT_OK


def _check_selector(selector: str) -> str:
    """The selector if CSS can parse it (an empty one clears it); else a HustingsError."""
    selector = selector.strip()
    if selector:
        from cssselect import GenericTranslator, SelectorError

        try:
            GenericTranslator().css_to_xpath(selector)
        except SelectorError as exc:
            raise HustingsError(f"not a CSS selector: {selector!r} ({exc})") from None
    return selector


def cmd_feeds_set(ctx: Context, args) -> int:
    feed = feed_store.get_feed(ctx.engine, args.feed)
    selector = _check_selector(args.selector) if args.selector is not None else None
    feed = feed_store.set_feed_options(ctx.engine, feed.id, content_selector=selector, fulltext=args.fulltext,
                                  title=args.title, category=args.category)
    shown = {"id": feed.id, "url": feed.url, "kind": feed.kind, "title": feed.title, "category": feed.category,
             "content_selector": feed.content_selector, "fulltext": feed.fulltext}
    if args.json:
        _print_json(shown)
    else:
        print(f"feed {feed.id} ({feed.url}): selector {feed.content_selector or '(guess)'}, "
              f"full text {feed.fulltext}" + (f", title \"{feed.title}\"" if feed.title else ""))
    return EXIT_OK


def cmd_crawl(ctx: Context, args) -> int:
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
        out["index"] = _sync_index(ctx, quiet=True)
    if args.json:
        _print_json(out)
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


def _report_added(args, feed, created: bool, found) -> int:
    if args.json:
        out = {"id": feed.id, "url": feed.url, "title": feed.title, "status": feed.status, "created": created}
        if found is not None:
            out.update(entries=found.entries, page_url=found.page_url, alternatives=list(found.alternatives))
        _print_json(out)
        return EXIT_OK
    if not created:
        print(f"already known: feed {feed.id} {feed.url} ({feed.status})")
    else:
        how = f" (found on {found.page_url})" if found and found.page_url else ""
        print(f"added feed {feed.id}: {feed.url}{how}" + (f" \"{feed.title}\"" if feed.title else ""))
        if found and found.alternatives:
            print("the page also advertises: " + ", ".join(found.alternatives))
        print("it will be fetched by the next `hustings fetch` or worker pass")
    return EXIT_OK


def cmd_feeds_import(ctx: Context, args) -> int:
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HustingsError(f"cannot read {path}: {exc.strerror}") from None
    feeds, skipped = opml.read_opml(data, source=str(path))
    added = known = 0
    for f in feeds:
        _, created = feed_store.add_feed(ctx.engine, f.url, title=f.title, category=f.category)
        added += created
        known += not created
    if args.json:
        _print_json({"file": str(path), "added": added, "already_known": known, "skipped": skipped})
    else:
        print(f"{path}: {added} feeds added, {known} already known, {len(skipped)} skipped")
        for why in skipped:
            print(f"  skipped: {why}")
    return EXIT_OK


def cmd_feeds_export(ctx: Context, args) -> int:
    data = opml.write_opml(feed_store.list_feeds(ctx.engine))
    if args.file and args.file != "-":
        Path(args.file).write_bytes(data)
        print(f"wrote {args.file}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return EXIT_OK


FEED_LIST_KEYS = ("id", "url", "title", "site_url", "category", "kind", "status", "error_count", "last_error",
                  "last_error_at", "next_check_at", "last_checked_at", "last_success_at", "interval_s", "etag",
                  "last_modified", "previous_url", "posts", "created_at")


def cmd_feeds_list(ctx: Context, args) -> int:
    rows = [{k: r.get(k) for k in FEED_LIST_KEYS} for r in feed_store.list_feeds(ctx.engine)]
    if args.json:
        _print_json(rows)
        return EXIT_OK
    if not rows:
        print("no feeds yet: add one with `hustings feeds add URL` or `hustings feeds import feeds.opml`")
    for r in rows:
        print(f"{r['id']:>4}  {r['status']:<9} {r['posts']:>5} posts  next {_when(r['next_check_at'])}  "
              f"{r['title'] or '(untitled)'}\n      {r['url']}")
        if r["error_count"] or r["last_error"]:
            print(f"      {r['error_count']} errors; last: {r['last_error']}")
    return EXIT_OK


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
        summary["index"] = _sync_index(ctx, quiet=True)
    if args.json:
        _print_json(summary)
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


POST_KEYS = ("id", "feed_id", "url", "title", "author", "published", "first_seen", "updated_at", "content_html",
             "summary", "tags", "hidden", "duplicate_of")


def cmd_posts(ctx: Context, args) -> int:
    feed_id = feed_store.get_feed(ctx.engine, args.feed).id if args.feed else None
    rows = post_store.list_posts(ctx.engine, feed_id=feed_id, limit=args.limit, include_hidden=args.include_hidden)
    rows = [{k: r.get(k) for k in POST_KEYS} for r in rows]
    if args.json:
        _print_json(rows)
        return EXIT_OK
    for r in rows:
        print(f"{r['id']:>6}  {_when(r['first_seen'])}  feed {r['feed_id']}  {r['title']}\n        {r['url']}")
    if not rows:
        print("no posts yet: run `hustings fetch`")
    return EXIT_OK


def _actor(args) -> str:
    """Who the public moderation log names for an action taken here."""
    return (getattr(args, "by", None) or "").strip() or "command line"


def cmd_posts_hide(ctx: Context, args) -> int:
    moderation.hide_post(ctx.engine, args.id, actor=_actor(args), reason=args.reason)
    print(f"post {args.id} hidden: {args.reason}")
    _sync_index(ctx, quiet=True)
    return EXIT_OK


def cmd_posts_unhide(ctx: Context, args) -> int:
    moderation.unhide_post(ctx.engine, args.id, actor=_actor(args))
    print(f"post {args.id} shown again")
    _sync_index(ctx, quiet=True)
    return EXIT_OK


def _sync_index(ctx: Context, quiet: bool = False) -> dict | None:
    """Bring the search index up to date; a busy writer is reported, not fatal."""
    try:
        report = writer.sync(ctx.engine, ctx.settings, lock_wait_s=10)
    except writer.IndexBusy as exc:
        print(f"hustings: search index not updated now: {exc}", file=sys.stderr)
        return None
    if not quiet:
        how = "rebuilt" if report.rebuilt else "synced"
        print(f"search index {how}: {report.indexed} posts indexed, {report.removed} removed")
    return dict(report.__dict__)


def _progress_bar(total: int, enabled: bool, unit: str):
    if not enabled or not total or not sys.stderr.isatty():
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=total, unit=unit, file=sys.stderr)
    return bar, bar.update


def cmd_index_sync(ctx: Context, args) -> int:
    report = writer.sync(ctx.engine, ctx.settings)
    return _report_index(args, report)


def cmd_index_rebuild(ctx: Context, args) -> int:
    bar, update = _progress_bar(writer.visible_count(ctx.engine), not args.json and not args.no_progress, "post")
    report = writer.rebuild(ctx.engine, ctx.settings, progress=update)
    if bar:
        bar.close()
    return _report_index(args, report)


def _report_index(args, report) -> int:
    if args.json:
        _print_json(report.__dict__)
    else:
        if report.stale_lock_pid:
            print(f"a previous index writer (pid {report.stale_lock_pid}) had died mid-write; its work was redone")
        how = "rebuilt" if report.rebuilt else "synced"
        print(f"search index {how}: {report.applied} changes applied, {report.indexed} posts indexed, "
              f"{report.removed} removed; up to change {report.seq}")
    return EXIT_OK


def cmd_index_check(ctx: Context, args) -> int:
    report = writer.check(ctx.engine, ctx.settings)
    if args.json:
        _print_json(report.__dict__)
    elif report.ok:
        print(f"database and index agree: {report.index} posts" +
              (f" ({report.pending} changes waiting for `hustings index sync`)" if report.pending else ""))
    else:
        print(f"database has {report.database} searchable posts, the index {report.index}")
        if report.missing:
            print("  missing from the index: " + " ".join(map(str, report.missing)))
        if report.extra:
            print("  in the index but hidden, deleted or gone: " + " ".join(map(str, report.extra)))
        print("  run `hustings index sync` (or `hustings index rebuild`)")
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_search(ctx: Context, args) -> int:
    page = search_mod.search(
        ctx.settings, ctx.engine, args.query, blog=args.blog, since=args.since, until=args.until,
        sort=args.sort, page=args.page, limit=args.limit,
    )
    if args.json:
        _print_json(page.to_json())
        return EXIT_OK
    if page.suggestion:
        print(f"did you mean: {page.suggestion}")
    print(f"{page.total} results ({page.took_ms:.0f} ms), page {page.page} of {max(page.pages, 1)}")
    for h in page.results:
        print(f"{h.id:>6}  {h.title}  [{h.blog}, {_when(h.published)}]\n        {h.url}")
    return EXIT_OK


def cmd_worker(ctx: Context, args) -> int:
    engine = ctx.engine
    with scheduler.SchedulerLock(ctx.settings):
        # The index is synced after every dispatcher pass, in the same (single) process.
        sched = scheduler.build(engine, ctx.settings, after_dispatch=lambda: _sync_index(ctx, quiet=True),
                                jobs=community_jobs(engine, ctx.settings))

        def stop(signum, _frame):  # noqa: ARG001
            log.info("signal %s: stopping after the running jobs", signum)
            sched.shutdown(wait=False)

        signal.signal(signal.SIGTERM, stop)
        log.info("worker started: dispatching due feeds every %ss", ctx.settings.dispatch_every_s)
        sched.start()
    return EXIT_OK


def cmd_posts_feature(ctx: Context, args) -> int:
    moderation.feature_post(ctx.engine, args.id, actor=_actor(args))
    print(f"post {args.id} is an editor's pick")
    return EXIT_OK


def cmd_posts_unfeature(ctx: Context, args) -> int:
    moderation.unfeature_post(ctx.engine, args.id, actor=_actor(args))
    print(f"post {args.id} is no longer an editor's pick")
    return EXIT_OK


def _listen(ctx: Context, args) -> tuple[str, int]:
    return (args.host or ctx.settings.web_host, args.port if args.port is not None else ctx.settings.web_port)


def cmd_serve(ctx: Context, args) -> int:
    from web import server

    ctx.engine  # noqa: B018 (creates or checks the database before any worker starts)
    host, port = _listen(ctx, args)
    log.info("serving on http://%s:%s/ with %d gunicorn workers", host, port,
             args.workers or server.worker_count(ctx.settings))
    server.serve(ctx.settings, host, port, workers=args.workers)
    return EXIT_OK


def _run_site(ctx: Context, host: str, port: int, banner: str = "") -> int:
    """The scheduler and the web in this one process, until SIGINT or SIGTERM."""
    import threading

    from apscheduler.schedulers.background import BackgroundScheduler

    from web import server

    engine = ctx.engine
    stop = threading.Event()
    with scheduler.SchedulerLock(ctx.settings):
        sched = scheduler.build(engine, ctx.settings, scheduler=BackgroundScheduler(timezone="UTC"),
                                jobs=community_jobs(engine, ctx.settings),
                                after_dispatch=lambda: _sync_index(ctx, quiet=True))

        def on_signal(signum, _frame):  # noqa: ARG001
            log.info("signal %s: stopping", signum)
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        sched.start()

        def ready(srv):
            print(f"{banner}Hustings is running at http://{host}:{srv.effective_port}/ (Ctrl-C stops it)", flush=True)

        try:
            server.serve_threaded(ctx.settings, host, port, on_ready=ready, stop=stop)
        finally:
            sched.shutdown(wait=False)
    return EXIT_OK


def cmd_run(ctx: Context, args) -> int:
    host, port = _listen(ctx, args)
    return _run_site(ctx, host, port)


def cmd_demo(ctx: Context, args) -> int:
    import dataclasses

    from hustings import demo

    settings = ctx.settings
    if not args.data_dir and "HUSTINGS_DATA_DIR" not in os.environ and settings.data_dir == Path("data"):
        settings = dataclasses.replace(settings, data_dir=Path("hustings-demo"))  # never the real site's data
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    host, port = _listen(ctx, args)
    if host not in ("127.0.0.1", "::1", "localhost"):
        # The demo lets this process fetch 127.0.0.1 (its sample blogs live there).
        print(f"hustings: warning: the demo listens on {host}, and it may fetch addresses on this machine; "
              "keep it on 127.0.0.1 unless you trust everyone who can reach it", file=sys.stderr)
    site = demo.prepare_demo(settings)
    try:
        return _run_site(Context(site.settings), host, port, banner="Demo ready. ")
    finally:
        site.close()


def cmd_moderator_add(ctx: Context, args) -> int:

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        import getpass

        password = getpass.getpass(f"password for {args.email}: ")
        if getpass.getpass("again: ") != password:
            print("hustings: the two passwords differ; nothing changed", file=sys.stderr)
            return EXIT_USAGE
    moderator = accounts.add_moderator(ctx.engine, args.email, password)
    if args.json:
        _print_json({"id": moderator.id, "email": moderator.email})
    else:
        print(f"moderator {moderator.email} added (id {moderator.id}); they sign in at /login")
    return EXIT_OK


def _poll_json(record, ballots: int, now: datetime) -> dict:
    poll = record.poll
    return {"id": poll.id, "question": poll.question, "description": record.description, "kind": poll.kind,
            "max_choices": poll.max_choices,
            "options": [{"id": o.id, "label": o.label, "position": o.position} for o in poll.options],
            "opens_at": poll.opens_at, "closes_at": poll.closes_at, "state": record.state(now),
            "visibility": poll.visibility, "integrity": poll.integrity, "ballots": ballots,
            "created_by": record.created_by, "link": f"/polls/{poll.id}"}


def cmd_polls_create(ctx: Context, args) -> int:
    from community.polls import store as poll_store

    record = poll_store.create_poll(
        ctx.engine, question=args.question, options=args.option, kind=args.kind, description=args.description,
        max_choices=args.max_choices, opens_at=poll_store.parse_time(args.opens or "", "opening time"),
        closes_at=poll_store.parse_time(args.closes or "", "closing time"), visibility=args.visibility,
        integrity=args.integrity, created_by=args.by)
    if args.json:
        _print_json(_poll_json(record, 0, db.utcnow()))
    else:
        poll = record.poll
        print(f"poll {poll.id} created: {poll.question!r}, {poll.kind} choice, {len(poll.options)} options, "
              f"open {_when(poll.opens_at)} to {_when(poll.closes_at) if poll.closes_at else 'a moderator closes it'}; "
              f"readers vote at /polls/{poll.id}")
    return EXIT_OK


def cmd_polls_list(ctx: Context, args) -> int:
    from community.polls import store as poll_store

    now = db.utcnow()
    records = poll_store.list_polls(ctx.engine, now, limit=10_000)
    counts = poll_store.ballot_counts(ctx.engine)
    if args.json:
        _print_json({"polls": [_poll_json(r, counts.get(r.id, 0), now) for r in records]})
        return EXIT_OK
    if not records:
        print("no polls yet; make one with `hustings polls create`")
    for r in records:
        closes = _when(r.poll.closes_at) if r.poll.closes_at else "when closed"
        print(f"{r.id:>5}  {r.state(now):<8}  {r.poll.kind:<8}  {counts.get(r.id, 0):>7} ballots  "
              f"opens {_when(r.poll.opens_at)}  closes {closes}  {r.poll.question}")
    return EXIT_OK


def cmd_polls_close(ctx: Context, args) -> int:
    from community.polls import store as poll_store

    closed = poll_store.close_poll(ctx.engine, args.id, by=args.by)
    if args.json:
        _print_json({"id": args.id, "closed": closed, "already_closed": not closed})
    elif closed:
        print(f"poll {args.id} closed; its results are at /polls/{args.id}/results")
    else:
        print(f"poll {args.id} had already closed")
    return EXIT_OK


def cmd_settings(ctx: Context, args) -> int:
    values = {name: getattr(ctx.settings, name) for name, _, _ in describe_settings()}
    values["database_url"] = _safe_url(ctx.settings)
    if args.json:
        _print_json(values)
    else:
        for name, value in values.items():
            shown = ",".join(value) if isinstance(value, tuple) else value
            print(f"{name} = {shown}")
    return EXIT_OK


# --- parser ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hustings",
        description="Hustings: a blog aggregator and community news site for the movement's grassroots.",
        epilog="Settings come from defaults < --config FILE (or HUSTINGS_CONFIG) < HUSTINGS_<NAME> "
               "environment variables < flags. Exit codes: 0 ok, 1 failed, 2 usage or settings, "
               "3 database needs `hustings init`.",
    )
    p.add_argument("--config", metavar="FILE", help="TOML settings file")
    p.add_argument("--data-dir", metavar="DIR", help="where the database and index live")
    p.add_argument("--database-url", metavar="URL", help="SQLAlchemy URL instead of SQLite in the data dir")
    p.add_argument("--set", metavar="NAME=VALUE", action="append", default=[], help="set any setting")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("init", help="create or migrate the database")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_init, needs_db=False)

    feeds = sub.add_parser("feeds", help="add, import, export and list feeds")
    fsub = feeds.add_subparsers(dest="feeds_command", metavar="SUBCOMMAND", required=True)
    s = fsub.add_parser("add", help="add a feed, or a blog's home page (its feed is discovered)")
    s.add_argument("url")
    s.add_argument("--title")
    s.add_argument("--category", help='category path, e.g. "News / Magazines"')
    s.add_argument("--no-check", action="store_true", help="add the URL as it is, without fetching it")
    s.add_argument("--crawl", action="store_true", help="a blog without a usable feed: crawl its pages instead")
    s.add_argument("--selector", metavar="CSS", help="with --crawl: the CSS selector of a post's content")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_feeds_add)
    s = fsub.add_parser("set", help="set a feed's content selector, full-text mode, title or category")
    s.add_argument("feed", metavar="ID|URL")
    s.add_argument("--selector", metavar="CSS", help="CSS selector of a post's content on its page ('' clears it)")
    s.add_argument("--fulltext", choices=("auto", "on", "off"),
                   help="take each post's text from its page: auto (summary-only entries), on, off")
    s.add_argument("--title")
    s.add_argument("--category")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_feeds_set)
    s = fsub.add_parser("import", help="import feeds from an OPML file")
    s.add_argument("file")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_feeds_import)
    s = fsub.add_parser("export", help="write every feed as OPML (to FILE, or standard output)")
    s.add_argument("file", nargs="?")
    s.set_defaults(func=cmd_feeds_export)
    s = fsub.add_parser("list", help="list feeds with their status, errors and next check")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_feeds_list)

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

    index = sub.add_parser("index", help="keep the search index in step with the database")
    isub = index.add_subparsers(dest="index_command", metavar="SUBCOMMAND", required=True)
    s = isub.add_parser("sync", help="apply every post change since the last sync")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_index_sync)
    s = isub.add_parser("rebuild", help="build a new index from the database and swap it in")
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_index_rebuild)
    s = isub.add_parser("check", help="say whether the database and the index agree (exit 1 if not)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_index_check)

    s = sub.add_parser("search", help="search every post ever aggregated")
    s.add_argument("query")
    s.add_argument("--blog", metavar="ID", help="only this blog (feed id)")
    s.add_argument("--since", metavar="YYYY-MM-DD")
    s.add_argument("--until", metavar="YYYY-MM-DD")
    s.add_argument("--sort", choices=("relevance", "newest"), default="relevance")
    s.add_argument("--page", type=int, default=1)
    s.add_argument("--limit", type=int, default=10)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_search)

    posts = sub.add_parser("posts", help="list stored posts; hide or unhide one")
    posts.add_argument("--feed", metavar="ID|URL")
    posts.add_argument("--limit", type=int, default=50)
    posts.add_argument("--include-hidden", action="store_true")
    posts.add_argument("--json", action="store_true")
    posts.set_defaults(func=cmd_posts)
    psub = posts.add_subparsers(dest="posts_command", metavar="SUBCOMMAND")
    s = psub.add_parser("hide", help="take a post off every page (it stays hidden on refetch)")
    s.add_argument("id", type=int)
    s.add_argument("--reason", required=True)
    s.set_defaults(func=cmd_posts_hide)
    s = psub.add_parser("unhide", help="show a hidden post again")
    s.add_argument("id", type=int)
    s.set_defaults(func=cmd_posts_unhide)

    s = psub.add_parser("feature", help="make a post an editor's pick (its own labelled slot)")
    s.add_argument("id", type=int)
    s.add_argument("--by", metavar="NAME", help="who picked it (shown to moderators)")
    s.set_defaults(func=cmd_posts_feature)
    s = psub.add_parser("unfeature", help="take a post out of the editor's picks")
    s.add_argument("id", type=int)
    s.set_defaults(func=cmd_posts_unfeature)

    moderator = sub.add_parser("moderator", help="moderator accounts")
    msub = moderator.add_subparsers(dest="moderator_command", metavar="SUBCOMMAND", required=True)
    s = msub.add_parser("add", help="add a moderator (the password is asked for, or read from standard input)")
    s.add_argument("email")
    s.add_argument("--password-stdin", action="store_true", help="read the password from the first line of standard input")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_moderator_add)

    polls = sub.add_parser("polls", help="reader polls: create, list, close")
    pollsub = polls.add_subparsers(dest="polls_command", metavar="SUBCOMMAND", required=True)
    s = pollsub.add_parser("create", help="create a poll (listed in the public moderation log)")
    s.add_argument("--question", required=True)
    s.add_argument("--option", action="append", required=True, metavar="LABEL",
                   help="an option, in ballot order (repeat: at least two)")
    s.add_argument("--kind", choices=("single", "multiple", "ranked"), default="single")
    s.add_argument("--max-choices", type=int, metavar="N", help="multiple choice: at most N options per ballot")
    s.add_argument("--description", default="", help="shown above the ballot")
    s.add_argument("--opens", metavar="ISO", help="opening time, ISO 8601, UTC unless it says (default: now)")
    s.add_argument("--closes", metavar="ISO", help="closing time (default: none; close it with `polls close`)")
    s.add_argument("--visibility", choices=("always", "after_vote", "after_close", "moderators"), default="after_vote",
                   help="who sees results: always, after voting, after closing, moderators only")
    s.add_argument("--integrity", choices=("cookie", "ip"), default="cookie",
                   help="one ballot per reader cookie, or per IP address")
    s.add_argument("--by", default="command line", metavar="NAME", help="who made it (the moderation log)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_polls_create)
    s = pollsub.add_parser("list", help="every poll with its state and ballots counted")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_polls_list)
    s = pollsub.add_parser("close", help="close a poll now (its IP salt is deleted)")
    s.add_argument("id", type=int)
    s.add_argument("--by", default="command line", metavar="NAME", help="who closed it (the moderation log)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_polls_close)

    for name, func, text in (
        ("serve", cmd_serve, "serve the web site on gunicorn (run `hustings worker` beside it)"),
        ("run", cmd_run, "the whole site in one process: the scheduler and the web"),
        ("demo", cmd_demo, "a populated demo site from sample blogs served on this machine (no internet)"),
    ):
        s = sub.add_parser(name, help=text)
        s.add_argument("--host", help="address to listen on (default: the web_host setting)")
        s.add_argument("--port", type=int, help="port to listen on (default: the web_port setting)")
        if name == "serve":
            s.add_argument("--workers", type=int, help="worker processes (default: web_workers, 0 = one per core)")
        s.set_defaults(func=func)

    s = sub.add_parser("worker", help="run the scheduler: fetch due feeds every minute")
    s.set_defaults(func=cmd_worker)

    s = sub.add_parser("settings", help="show the settings in effect")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_settings, needs_db=False)
    return p


def _settings_from_args(args) -> Settings:
    overrides: dict[str, Any] = {}
    for item in args.set:
        if "=" not in item:
            raise SettingsError(f"--set takes NAME=VALUE, not {item!r}")
        name, value = item.split("=", 1)
        overrides[name.strip()] = value
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    if args.database_url:
        overrides["database_url"] = args.database_url
    return load_settings(config_file=args.config, **overrides)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = _settings_from_args(args)
    except SettingsError as exc:
        print(f"hustings: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines are noise to operators
    ctx = Context(settings)
    try:
        return args.func(ctx, args)
    except SchemaError as exc:
        print(f"hustings: {exc}", file=sys.stderr)
        return EXIT_SCHEMA
    except AggregatorError as exc:
        print(f"hustings: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except HustingsError as exc:
        print(f"hustings: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("hustings: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


def run() -> None:  # console_scripts entry point
    sys.exit(main())
