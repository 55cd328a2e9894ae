"""The `hustings` command's groups, one module each; hustings/cli.py builds the tree from groups().

Each module has `register(sub)`, which adds its commands to the top-level subparsers and
sets `func` (and `needs_db=False` where no database is needed) on each; context.py holds
what they all use.
"""

import importlib

# The groups, in the order `hustings --help` lists them, and the top-level commands each one
# registers (tests/test_cli.py holds this to what register() really adds). A group module is
# imported when the tree is built (groups()), not with this package: a command names its
# group, and only that group is built and imported, so `hustings search` or `hustings fetch`
# does not pay for importing every other command's dependencies (Alembic, the mailer, the
# campaigns, the web app ...). Start-up is most of a quick command's time (issue 15).
COMMANDS = {
    "database": ("init", "backup"), "feeds": ("feeds",), "fetch": ("fetch", "crawl"), "index": ("index",),
    "search": ("search",), "posts": ("posts",), "submissions": ("submissions",), "moderators": ("moderator",),
    "polls": ("polls",), "campaigns": ("campaigns",), "subscribers": ("subscribers",), "digest": ("digest",),
    "mail": ("mail",), "site": ("serve", "run", "demo", "worker", "settings"), "status": ("status",),
}
GROUP_NAMES = tuple(COMMANDS)


def group_of(command: str | None) -> str | None:
    """The group that registers this top-level command, or None (no command, or a mistyped one)."""
    return next((group for group, names in COMMANDS.items() if command in names), None)


def groups(names: tuple[str, ...] = GROUP_NAMES) -> list:
    """The command group modules named, imported."""
    return [importlib.import_module(f"{__name__}.{name}") for name in names]
