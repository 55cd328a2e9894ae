"""What every command is handed and shares: the Context, the exit codes, and how it prints.

A command is a function `cmd_x(ctx, args) -> int` registered by its group's module
(`register(sub)`); hustings/cli.py builds the tree and turns the expected failures
(HustingsError) into one line and an exit code.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from aggregator import db
from aggregator.errors import AggregatorError, HustingsError, SchemaError, SettingsError
from aggregator.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_SCHEMA, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

# Who the public moderation log names for an action taken from the command without --by.
COMMAND_LINE_ACTOR = "command line"

log = logging.getLogger("hustings")


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

    def sync_index(self, quiet: bool = False) -> dict | None:
        """Bring the search index up to date; a busy writer is reported, not fatal."""
        from index import writer  # Whoosh is only imported by the commands that index

        try:
            report = writer.sync(self.engine, self.settings, lock_wait_s=10)
        except writer.IndexBusy as exc:
            print(f"hustings: search index not updated now: {exc}", file=sys.stderr)
            return None
        if not quiet:
            how = "rebuilt" if report.rebuilt else "synced"
            print(f"search index {how}: {report.indexed} posts indexed, {report.removed} removed")
        return dict(report.__dict__)


# --- moderator actions -----------------------------------------------------------------------------


def add_actor_option(parser, what: str = "took the action") -> None:
    """--by NAME: who the public moderation log names (default "command line")."""
    parser.add_argument("--by", metavar="NAME", help=f"who {what} (the public moderation log; "
                                                     f"default \"{COMMAND_LINE_ACTOR}\")")


def actor(args) -> str:
    """Who the public moderation log names for an action taken here."""
    return (getattr(args, "by", None) or "").strip() or COMMAND_LINE_ACTOR


@contextmanager
def refusal_names(kind: str, ident: int | str) -> Iterator[None]:
    """A refused action's one line names what was refused ("post 7: ..."), unless it already
    names the id ("there is no post number 7")."""
    try:
        yield
    except (SchemaError, SettingsError, AggregatorError):
        raise
    except HustingsError as exc:
        if re.search(rf"(?<![\w.]){re.escape(str(ident))}(?!\w)", str(exc)):
            raise
        raise HustingsError(f"{kind} {ident}: {exc}") from None


# --- output ----------------------------------------------------------------------------------------


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


def print_json(value: Any) -> None:
    json.dump(_jsonable(value), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"
