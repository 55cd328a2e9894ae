"""The `hustings` command's groups, one module each; hustings/cli.py builds the tree from GROUPS.

Each module has `register(sub)`, which adds its commands to the top-level subparsers and
sets `func` (and `needs_db=False` where no database is needed) on each; context.py holds
what they all use.
"""

from . import (
    campaigns,
    database,
    digest,
    feeds,
    fetch,
    index,
    mail,
    moderators,
    polls,
    posts,
    search,
    site,
    status,
    submissions,
    subscribers,
)

# In the order `hustings --help` lists them.
GROUPS = (database, feeds, fetch, index, search, posts, submissions, moderators, polls, campaigns, subscribers, digest,
          mail, site, status)
