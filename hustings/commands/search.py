"""`hustings search`: search every post ever aggregated, as /search does.

Read-only and quick from a fresh process: only this group of commands is imported
(hustings/commands/__init__.py), and the database is opened without the schema check (Alembic and
the migration scripts cost more than the search itself; a search reads nothing new).
"""

from __future__ import annotations

import sys

from .context import EXIT_OK, EXIT_USAGE, Context, print_json, when


def register(sub) -> None:
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


def cmd_search(ctx: Context, args) -> int:
    from aggregator import db
    from index import search as search_mod
    from index.query import QueryError

    engine = db.make_engine(ctx.settings)
    try:
        page = search_mod.search(
            ctx.settings, engine, args.query, blog=args.blog, since=args.since, until=args.until,
            sort=args.sort, page=args.page, limit=args.limit,
        )
    except QueryError as exc:
        # A question that cannot be asked is a usage error (exit 2), as argparse's own are;
        # the site answers it with a 400.
        print(f"hustings: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        engine.dispose()
    if args.json:
        print_json(page.to_json())
        return EXIT_OK
    if page.suggestion:
        print(f"did you mean: {page.suggestion}")
    about = "" if page.total_exact else "about "
    print(f"{about}{page.total} results ({page.took_ms:.0f} ms), page {page.page} of {max(page.pages, 1)}")
    for h in page.results:
        print(f"{h.id:>6}  {h.title}  [{h.blog}, {when(h.published)}]\n        {h.url}")
    return EXIT_OK
