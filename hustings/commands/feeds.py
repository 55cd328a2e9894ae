"""`hustings feeds`: add, set, import, export and list feeds; pause, resume or remove a blog.

Pausing, resuming and removing are moderator actions: they go through community.moderation,
as the web's forms do, and each writes its line in the public moderation log.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aggregator import crawls, discover, feed_store, opml
from aggregator.errors import HustingsError
from community import feedcheck, moderation

from .context import EXIT_OK, Context, actor, add_actor_option, print_json, refusal_names, when

FEED_LIST_KEYS = ("id", "url", "title", "site_url", "category", "kind", "status", "error_count", "last_error",
                  "last_error_at", "next_check_at", "last_checked_at", "last_success_at", "interval_s", "etag",
                  "last_modified", "previous_url", "posts", "created_at")


def register(sub) -> None:
    feeds = sub.add_parser("feeds", help="add, import, export and list feeds; pause, resume or remove a blog")
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

    s = fsub.add_parser("pause", help="stop fetching a blog; its posts stay on the site (logged)")
    s.add_argument("feed", metavar="ID|URL")
    s.add_argument("--reason", default="", help="why (shown in the public moderation log)")
    add_actor_option(s, "paused it")
    s.set_defaults(func=cmd_feeds_pause)
    s = fsub.add_parser("resume", help="fetch a paused, gone or removed blog again (logged)")
    s.add_argument("feed", metavar="ID|URL")
    s.add_argument("--reason", default="", help="why (shown in the public moderation log)")
    add_actor_option(s, "resumed it")
    s.set_defaults(func=cmd_feeds_resume)
    s = fsub.add_parser("remove", help="take a blog and all its posts off the site (logged)")
    s.add_argument("feed", metavar="ID|URL")
    s.add_argument("--reason", required=True, help="why (required; shown in the public moderation log)")
    add_actor_option(s, "removed it")
    s.set_defaults(func=cmd_feeds_remove)


# --- adding and changing feeds -------------------------------------------------------------------


def cmd_feeds_add(ctx: Context, args) -> int:
    engine = ctx.engine
    url = args.url.strip()
    try:
        existing = feed_store.get_feed(engine, url)
    except HustingsError:
        existing = None
    if existing is not None:
        return _report_added(args, existing, created=False, found=None)
    feedcheck.refuse_own_site(ctx.settings, url)
    if args.crawl:
        return _add_crawl(ctx, args, url)
    found = None
    if not args.no_check:
        found = discover.discover_feed(url, ctx.settings)
        for where, headers in zip((found.page_url or found.url, found.url), found.headers):
            feedcheck.refuse_own_site(ctx.settings, where, headers)
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
        feedcheck.refuse_own_site(ctx.settings, site.url, site.headers)
        url = site.url
    selector = _check_selector(args.selector) if args.selector else ""
    feed, created = feed_store.add_feed(ctx.engine, url, title=args.title or (site.title if site else ""), site_url=url,
                                        category=args.category or "", kind="crawl")
    if created and selector:
        feed = feed_store.set_feed_options(ctx.engine, feed.id, content_selector=selector)
    if args.json:
        print_json({"id": feed.id, "url": feed.url, "title": feed.title, "kind": feed.kind, "status": feed.status,
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


def _report_added(args, feed, created: bool, found) -> int:
    if args.json:
        out = {"id": feed.id, "url": feed.url, "title": feed.title, "status": feed.status, "created": created}
        if found is not None:
            out.update(entries=found.entries, page_url=found.page_url, alternatives=list(found.alternatives))
        print_json(out)
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


def cmd_feeds_set(ctx: Context, args) -> int:
    feed = feed_store.get_feed(ctx.engine, args.feed)
    selector = _check_selector(args.selector) if args.selector is not None else None
    feed = feed_store.set_feed_options(ctx.engine, feed.id, content_selector=selector, fulltext=args.fulltext,
                                       title=args.title, category=args.category)
    shown = {"id": feed.id, "url": feed.url, "kind": feed.kind, "title": feed.title, "category": feed.category,
             "content_selector": feed.content_selector, "fulltext": feed.fulltext}
    if args.json:
        print_json(shown)
    else:
        print(f"feed {feed.id} ({feed.url}): selector {feed.content_selector or '(guess)'}, "
              f"full text {feed.fulltext}" + (f", title \"{feed.title}\"" if feed.title else ""))
    return EXIT_OK


# --- OPML and listing ----------------------------------------------------------------------------


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
        print_json({"file": str(path), "added": added, "already_known": known, "skipped": skipped})
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


def cmd_feeds_list(ctx: Context, args) -> int:
    rows = [{k: r.get(k) for k in FEED_LIST_KEYS} for r in feed_store.list_feeds(ctx.engine)]
    if args.json:
        print_json(rows)
        return EXIT_OK
    if not rows:
        print("no feeds yet: add one with `hustings feeds add URL` or `hustings feeds import feeds.opml`")
    for r in rows:
        print(f"{r['id']:>4}  {r['status']:<9} {r['posts']:>5} posts  next {when(r['next_check_at'])}  "
              f"{r['title'] or '(untitled)'}\n      {r['url']}")
        if r["error_count"] or r["last_error"]:
            print(f"      {r['error_count']} errors; last: {r['last_error']}")
    return EXIT_OK


# --- moderator actions (community.moderation, logged) ---------------------------------------------------


def _moderate(ctx: Context, args, action, **extra):
    """Run one moderator action on the feed named by ID or URL; returns the feed as it was."""
    with refusal_names("feed", args.feed):
        feed = feed_store.get_feed(ctx.engine, args.feed)
    with refusal_names("feed", feed.id):
        action(ctx.engine, feed.id, actor=actor(args), reason=args.reason, **extra)
    return feed


def cmd_feeds_pause(ctx: Context, args) -> int:
    feed = _moderate(ctx, args, moderation.pause_blog)
    print(f"feed {feed.id} ({feed.url}) paused: it is not fetched until `hustings feeds resume {feed.id}`; "
          "its posts stay on the site")
    ctx.sync_index(quiet=True)
    return EXIT_OK


def cmd_feeds_resume(ctx: Context, args) -> int:
    feed = _moderate(ctx, args, moderation.resume_blog)
    print(f"feed {feed.id} ({feed.url}) resumed: it is fetched by the next `hustings fetch` or worker pass")
    ctx.sync_index(quiet=True)
    return EXIT_OK


def cmd_feeds_remove(ctx: Context, args) -> int:
    feed = _moderate(ctx, args, moderation.remove_blog, site_name=ctx.settings.site_name)
    print(f"feed {feed.id} ({feed.url}) and its posts are off the site: {args.reason.strip()}")
    ctx.sync_index(quiet=True)
    return EXIT_OK
