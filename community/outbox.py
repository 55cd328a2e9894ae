"""Messages to bloggers, written to the `outbox` table in the transaction of the event.

A blogger who gave a contact address when submitting is told when their blog is
approved or rejected, when a moderator removes it, when its feed has failed
FAILING_AFTER times in a row, and when the site stops fetching it (gone). Messages are
plain text; the worker's mailer (community/mailer.py) sends them over SMTP. Each is written in the
caller's transaction, so a decision and its message commit together or not at all, and
a message is never written for a change that was rolled back.

Nobody is written to without an address they gave us, and only about their own blog.
"""

from __future__ import annotations

import textwrap
from datetime import datetime
from typing import Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from aggregator.db import outbox, reading, submissions, utcnow

FAILING_AFTER = 5  # failures in a row before the blogger is told (once per run of failures)
SIGNATURE = "The moderators"


def queue(conn: Connection, to: str, subject: str, body: str, kind: str, now: datetime | None = None, *,
          subscriber_id: int | None = None, html: str = "", list_unsubscribe: str = "") -> int | None:
    """One message for `to`, or None (nothing written) when there is no address. `list_unsubscribe`:
    the one-click address of the list it belongs to (a campaign's updates), for its List-* headers.

    The subject is made one line here (a line break in it would start a new header); the
    address is checked again when the mailer sends (community/addresses.py)."""
    to = (to or "").strip()
    if not to:
        return None
    subject = " ".join(subject.split())[:300]
    return conn.execute(sa.insert(outbox).values(to_address=to[:320], subject=subject, body=body, kind=kind[:32],
                                                 html_body=html, subscriber_id=subscriber_id,
                                                 list_unsubscribe=list_unsubscribe[:2048],
                                                 created_at=now or utcnow())).inserted_primary_key[0]


def _body(*paragraphs: str, site_name: str = "") -> str:
    parts = [textwrap.fill(p, 72, break_long_words=False, break_on_hyphens=False) if not p.startswith("  ") else p
             for p in paragraphs if p]
    parts.append(f"-- \n{SIGNATURE}{' of ' + site_name if site_name else ''}")
    return "\n\n".join(parts) + "\n"


def submission_decided(conn: Connection, sub: Mapping, *, approved: bool, reason: str = "", site_name: str = "",
                       blog_url: str = "", status_url: str = "") -> int | None:
    """Tell the submitter of `sub` (a submissions row) what the moderators decided."""
    name = sub.get("name") or sub.get("feed_url") or sub.get("url")
    if approved:
        subject = f"Your blog {name} is now on {site_name or 'the site'}"
        body = _body(
            f"Good news: a moderator approved your submission of {name} ({sub.get('feed_url') or sub.get('url')}).",
            "We fetch its feed within minutes, and its posts then appear on the site."
            + (f" Its page: {blog_url}" if blog_url else ""),
            f"The moderator's note: {reason}" if reason else "",
            "If the feed stops working for a while we will write to you here.",
            site_name=site_name)
        kind = "approved"
    else:
        subject = f"Your submission of {name} was not accepted"
        body = _body(
            f"A moderator looked at your submission of {name} ({sub.get('feed_url') or sub.get('url')}) "
            "and did not accept it.",
            f"Their reason: {reason}" if reason else "",
            "Every moderation decision is listed in the public moderation log."
            + (f" Your submission's page: {status_url}" if status_url else ""),
            site_name=site_name)
        kind = "rejected"
    return queue(conn, sub.get("contact", ""), subject, body, kind)


def contact_for_feed(conn: Connection, feed_id: int) -> Mapping | None:
    """The newest approved submission of this feed that left a contact address, if any."""
    row = conn.execute(
        sa.select(submissions).where(submissions.c.feed_id == feed_id, submissions.c.status == "approved",
                                     submissions.c.contact != "")
        .order_by(submissions.c.id.desc()).limit(1)
    ).first()
    return row._mapping if row is not None else None


def feed_failing(conn: Connection, feed_id: int, *, gone: bool, failures: int, error: str) -> int | None:
    """Tell the blogger that their feed keeps failing, or that we stopped fetching it."""
    sub = contact_for_feed(conn, feed_id)
    if sub is None:
        return None
    name = sub["name"] or sub["feed_url"]
    if gone:
        subject = f"We have stopped fetching {name}"
        opening = (f"The feed of {name} ({sub['feed_url']}) has stopped working, so the site no longer fetches it. "
                   "Its posts stay on the site.")
        after = "If you fix it, or it has moved, reply and a moderator will start fetching it again."
    else:
        subject = f"The feed of {name} keeps failing"
        opening = f"The last {failures} attempts to fetch the feed of {name} ({sub['feed_url']}) failed."
        after = ("We keep trying, less often as the failures go on; if it keeps failing for a month we stop. "
                 "If the feed has moved, reply with its new address.")
    return queue(conn, sub["contact"], subject,
                 _body(opening, f"The last error: {error}" if error else "", after), "gone" if gone else "failing")


def feed_removed(conn: Connection, feed_id: int, *, reason: str, site_name: str = "") -> int | None:
    """Tell the blogger a moderator took their blog off the site."""
    sub = contact_for_feed(conn, feed_id)
    if sub is None:
        return None
    name = sub["name"] or sub["feed_url"]
    return queue(conn, sub["contact"], f"{name} was removed from {site_name or 'the site'}",
                 _body(f"A moderator removed {name} ({sub['feed_url']}) from the site.",
                       f"Their reason: {reason}" if reason else "",
                       "Every moderation decision is listed in the public moderation log.", site_name=site_name),
                 "removed")


def messages(engine: Engine, *, limit: int = 50, unsent_only: bool = False) -> list[dict]:
    query = sa.select(outbox).order_by(outbox.c.id.desc()).limit(limit)
    if unsent_only:
        query = query.where(outbox.c.sent_at.is_(None))
    with reading(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def backlog(engine: Engine) -> int:
    """Messages written and not yet sent (for `hustings status`)."""
    with reading(engine) as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(outbox).where(outbox.c.status == "queued")).scalar()
