"""`hustings init`: create the database, or migrate it to the newest schema."""

from __future__ import annotations

from aggregator import db
from aggregator.settings import Settings

from .context import EXIT_OK, Context, print_json


def register(sub) -> None:
    s = sub.add_parser("init", help="create or migrate the database")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_init, needs_db=False)


def cmd_init(ctx: Context, args) -> int:
    engine = db.make_engine(ctx.settings)
    before, after = db.migrate(engine)
    if args.json:
        print_json({"database": safe_url(ctx.settings), "before": before, "revision": after})
    elif before == after:
        print(f"database {safe_url(ctx.settings)} is up to date (revision {after})")
    else:
        print(f"database {safe_url(ctx.settings)} migrated from {before or 'nothing'} to revision {after}")
    return EXIT_OK


def safe_url(settings: Settings) -> str:
    """The database URL with any password hidden, for printing."""
    from sqlalchemy.engine import make_url

    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)
