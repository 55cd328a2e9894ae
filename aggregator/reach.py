"""Whether the feeds can be reached, in a sentence: for the empty front page and the worker's
log, so a site that cannot fetch says so and why instead of only "No posts yet" (issue 16).

The reasons come from the feeds' last errors (the fetcher's FetchError reasons), each
folded into one of a few causes an operator can act on.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .db import feeds, reading
from .models import POLLED_STATUSES

CAUSES = [  # (what the error says, what it means to an operator), first match wins
    (re.compile(r"cannot resolve host|has no addresses"),
     "their host names cannot be looked up (is this machine offline, or its DNS down?)"),
    (re.compile(r"cannot connect to|connection closed|reset by peer|[Nn]etwork is unreachable"),
     "their servers cannot be connected to (is this machine offline, or behind a firewall?)"),
    (re.compile(r"deadline|timed out"), "they do not answer in time"),
    (re.compile(r"TLS failed"), "their secure connections fail (is this machine's clock right?)"),
    (re.compile(r"refusing to connect|not a web port|only http and https"), "their addresses are refused by the address guard"),
    (re.compile(r"HTTP [45]\d\d"), "their servers answer with errors"),
]
SHOWN_CAUSES = 2  # a note names the commonest causes only


def cause(error: str) -> str:
    """The cause an error text belongs to, or the error's own reason cut short."""
    for pattern, meaning in CAUSES:
        if pattern.search(error):
            return meaning
    reason = error.split(": ", 1)[-1] if "://" in error.split(": ", 1)[0] else error
    return reason[:100]


def failure_note(errors: Iterable[str]) -> str:
    """The commonest causes among errors, most common first ("" for none)."""
    counts = Counter(cause(e) for e in errors if e)
    return "; ".join(meaning for meaning, _ in counts.most_common(SHOWN_CAUSES))


def unreachable(engine: Engine) -> str:
    """"" unless the site polls feeds and every one of them is failing; then a sentence saying
    so and why. One indexed scan of feeds (a few hundred rows at most)."""
    query = sa.select(feeds.c.error_count, feeds.c.last_error).where(feeds.c.status.in_(POLLED_STATUSES))
    with reading(engine) as conn:
        rows = conn.execute(query).all()
    if not rows or any(r.error_count == 0 for r in rows):
        return ""
    note = failure_note(r.last_error for r in rows)
    feeds_text = "the feed" if len(rows) == 1 else f"any of the {len(rows)} feeds"
    return f"this site cannot reach {feeds_text}" + (f": {note}" if note else "")
