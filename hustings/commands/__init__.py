"""The `hustings` command's groups, one module each; hustings/cli.py builds the tree from groups().

Each module has `register(sub)`, which adds its commands to the top-level subparsers and
sets `func` (and `needs_db=False` where no database is needed) on each; context.py holds
what they all use.
"""

import importlib

# In the order `hustings --help` lists them. Imported when the tree is built (groups()), not
# with this package: `hustings search` builds only its own group, so a search does not pay for
# importing every command's dependencies (Alembic, the mailer, the campaigns ...).
GROUP_NAMES = ("database", "feeds", "fetch", "index", "search", "posts", "submissions", "moderators", "polls",
               "campaigns", "subscribers", "digest", "mail", "site", "status")


def groups(names: tuple[str, ...] = GROUP_NAMES) -> list:
    """The command group modules named, imported."""
    return [importlib.import_module(f"{__name__}.{name}") for name in names]
