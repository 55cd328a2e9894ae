"""`hustings init`: create the database, or migrate it to the newest schema; `hustings backup`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from aggregator import db
from aggregator.errors import HustingsError
from aggregator.settings import Settings

from .context import EXIT_FAILED, EXIT_OK, Context, print_json


def register(sub) -> None:
    s = sub.add_parser("init", help="create or migrate the database")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_init, needs_db=False)
    s = sub.add_parser("backup", help="copy the SQLite database safely while the site runs (PostgreSQL: use pg_dump)")
    s.add_argument("file", help="where to write the copy (it must not exist)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_backup, needs_db=False)


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


def cmd_backup(ctx: Context, args) -> int:
    """SQLite's online backup API copies a consistent snapshot page by page while other
    processes keep reading and writing (never a plain file copy of a live WAL database).
    PostgreSQL has its own tool for this, and the command says how to run it."""
    from sqlalchemy.engine import make_url

    url = make_url(ctx.settings.resolved_database_url)
    if url.get_backend_name() != "sqlite":
        host = f" -h {url.host}" if url.host else ""
        port = f" -p {url.port}" if url.port else ""
        user = f" -U {url.username}" if url.username else ""
        command = f"pg_dump --format=custom{host}{port}{user} --file {args.file} {url.database}"
        if args.json:
            print_json({"database": safe_url(ctx.settings), "backed_up": False, "command": command})
        else:
            print(f"hustings backup copies SQLite databases; for PostgreSQL use its own tool:\n  {command}\n"
                  "(restore with pg_restore; it is consistent while the site runs)")
        return EXIT_FAILED
    target = Path(args.file)
    if target.exists():
        raise HustingsError(f"{target} already exists: choose a new file, a backup never overwrites one")
    source = Path(url.database)
    if not source.exists():
        raise HustingsError(f"there is no database at {source} to back up (run `hustings init`)")
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst, pages=1024)  # in steps, so writers are held up only briefly
        ok = dst.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        dst.close()
        src.close()
    if ok != "ok":
        raise HustingsError(f"the copy at {target} failed its integrity check: {ok}")
    size = target.stat().st_size
    if args.json:
        print_json({"database": safe_url(ctx.settings), "backed_up": True, "file": str(target), "bytes": size})
    else:
        print(f"backed up {source} to {target} ({size:,} bytes, integrity checked)")
    return EXIT_OK
