"""Bloggers' submissions: recorded as pending, decided by a moderator, optionally verified.

A submission is a `submissions` row plus a `feeds` row with status ``pending``, written
in one transaction with its "submitted" line in the moderation log. A pending feed is
neither fetched (the scheduler polls active and erroring feeds only) nor shown (pages
show active, erroring, paused and gone blogs), so nothing a blogger submits reaches
readers before a moderator approves it. The public log names a pending submission by
its number only: the name and address are the blogger's words, unmoderated until then.

Approving makes the feed active and due at once; rejecting makes it ``rejected`` (its
URL stays known, so the same feed cannot be submitted again and again). Both write
the log line and the blogger's message (aggregator/outbox.py) in the same transaction.

Ownership: every submission gets a random token. The blogger puts it in a
``<meta name="hustings-verification" content="TOKEN">`` on the blog's page, or anywhere
in the feed, and asks for a check; the site fetches (under the address guard) and,
when it finds the token, records ``verified_at``. Blog pages say "verified".
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from html.parser import HTMLParser
from typing import Iterable, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from aggregator import db, feed_store, fetch
from aggregator.db import feeds, next_counter, reading, submissions, utcnow, writing
from aggregator.errors import AggregatorError, HustingsError, NotFound
from aggregator.guard import AddressGuard
from aggregator.models import PUBLIC_STATUSES
from aggregator.settings import Settings

from . import outbox
from .feedcheck import guard_for, refusal
from .identity import keyed
from .moderation_log import log_action

META_NAME = "hustings-verification"


class Known(HustingsError):
    """The feed is already on the site, or already waiting for a moderator."""

    def __init__(self, feed: dict):
        super().__init__(describe_known(feed))
        self.feed = feed


class Decided(HustingsError):
    """The submission was decided already (by another moderator, a moment ago?)."""


# --- known feeds -------------------------------------------------------------------------------


def url_variants(url: str) -> set[str]:
    """The spellings of one address a feed may be stored under: http or https, with or without
    the trailing slash."""
    url = (url or "").strip()
    if not url:
        return set()
    out = {url}
    for u in list(out):
        if u.startswith("https://"):
            out.add("http://" + u[len("https://"):])
        elif u.startswith("http://"):
            out.add("https://" + u[len("http://"):])
    for u in list(out):
        out.add(u[:-1] if u.endswith("/") else u + "/")
    return out


def known_feed(engine: Engine, feed_urls: Iterable[str], page_urls: Iterable[str] = ()) -> dict | None:
    """The feed already here under one of these addresses (or whose blog is at one of the pages)."""
    wanted = set().union(*(url_variants(u) for u in feed_urls)) if feed_urls else set()
    pages = set().union(*(url_variants(u) for u in page_urls)) if page_urls else set()
    conds = []
    if wanted:
        wanted_l = sorted(wanted)
        conds += [feeds.c.url.in_(wanted_l), feeds.c.previous_url.in_(wanted_l)]
    if pages:
        conds.append(sa.and_(feeds.c.site_url.in_(sorted(pages)), feeds.c.site_url != ""))
    if not conds:
        return None
    with reading(engine) as conn:
        row = conn.execute(sa.select(feeds.c.id, feeds.c.url, feeds.c.title, feeds.c.status)
                           .where(sa.or_(*conds)).order_by(feeds.c.id).limit(1)).first()
    if row is None:
        return None
    found = dict(row._mapping)
    found["public"] = found["status"] in PUBLIC_STATUSES
    return found


def describe_known(feed: dict) -> str:
    if feed["status"] in PUBLIC_STATUSES:
        return "this blog is already on the site"
    if feed["status"] == "pending":
        return "this blog was already submitted and is waiting for a moderator"
    return "this blog was submitted before and a moderator did not accept it"


# --- submitting --------------------------------------------------------------------------------


def create(engine: Engine, *, url: str, feed_url: str, name: str, contact: str, note: str, check: dict,
           now: datetime | None = None) -> dict:
    """Record a submission and its pending feed, and log it. Raises Known for a known feed."""
    now = now or utcnow()
    known = known_feed(engine, [feed_url, check.get("feed_url", "")])
    if known is not None:
        raise Known(known)
    title = (name or check.get("title") or "").strip()
    with writing(engine) as conn:
        feed, created = feed_store.add_feed_in(conn, check.get("feed_url") or feed_url, title=title,
                                          site_url=check.get("site_url") or "", status="pending", now=now)
        if not created:  # submitted by someone else a moment ago
            raise Known({"id": feed.id, "url": feed.url, "title": feed.title, "status": feed.status,
                         "public": feed.status in PUBLIC_STATUSES})
        sub_id = conn.execute(sa.insert(submissions).values(
            url=url[:2048], feed_url=feed.url, name=name[:300], contact=contact[:320], note=note,
            status="pending", check_json=json.dumps(check), feed_id=feed.id, token=secrets.token_urlsafe(18),
            created_at=now,
        )).inserted_primary_key[0]
        log_action(conn, "blogger", "submitted", target_type="submission", target_id=sub_id,
                         target_label=f"submission {sub_id}", reason="waiting for a moderator", at=now)
    return get(engine, sub_id)


def _row(row) -> dict:
    d = dict(row._mapping)
    try:
        d["check"] = json.loads(d.get("check_json") or "{}")
    except ValueError:
        d["check"] = {}
    return d


def get(engine: Engine, submission_id: int) -> dict | None:
    with reading(engine) as conn:
        row = conn.execute(sa.select(submissions, feeds.c.status.label("feed_status"), feeds.c.title.label("feed_title"))
                           .outerjoin(feeds, feeds.c.id == submissions.c.feed_id)
                           .where(submissions.c.id == submission_id)).first()
    return _row(row) if row is not None else None


def listing(engine: Engine, status: str | None = "pending", limit: int = 100) -> list[dict]:
    query = (sa.select(submissions, feeds.c.status.label("feed_status"), feeds.c.title.label("feed_title"))
             .outerjoin(feeds, feeds.c.id == submissions.c.feed_id))
    if status is not None:
        query = query.where(submissions.c.status == status)
    # The queue oldest first (first come, first served); decisions newest first.
    query = query.order_by(submissions.c.id if status == "pending" else submissions.c.id.desc()).limit(limit)
    with reading(engine) as conn:
        return [_row(r) for r in conn.execute(query)]


def for_feed(engine: Engine, feed_id: int) -> dict | None:
    """The newest submission of this feed."""
    with reading(engine) as conn:
        row = conn.execute(sa.select(submissions.c.id).where(submissions.c.feed_id == feed_id)
                           .order_by(submissions.c.id.desc()).limit(1)).scalar()
    return get(engine, row) if row is not None else None


def verified_at(engine: Engine, feed_id: int) -> datetime | None:
    """When the owner of this blog proved it (the latest proof), or None."""
    with reading(engine) as conn:
        return conn.execute(sa.select(sa.func.max(submissions.c.verified_at))
                            .where(submissions.c.feed_id == feed_id)).scalar()


# --- the blogger's private link ---------------------------------------------------------------


def access_key(settings: Settings, sub: Mapping) -> str:
    """The key in the blogger's private link to their submission: a keyed hash of its id and
    stored token, so the link works without the token itself ever leaving the database."""
    return keyed(settings, "submission", str(sub["id"]), sub["token"])[:32]


def status_path(settings: Settings, sub: Mapping) -> str:
    """The private page where a blogger follows their submission."""
    return f"/submit/{sub['id']}?token={access_key(settings, sub)}"


# --- deciding ------------------------------------------------------------------------------------


def decide(engine: Engine, submission_id: int, *, actor: str, approve: bool, reason: str = "",
           name: str = "", category: str = "", site_name: str = "", site_url: str = "",
           status_url: str = "", now: datetime | None = None) -> dict:
    """Approve (the feed becomes active, due now) or reject (the feed becomes rejected) a
    pending submission; the log line and the blogger's message commit with it.

    Raises:
        NotFound: no such submission. Decided: it is not pending any more.
        HustingsError: a rejection without a reason, or a submission whose feed is gone.
    """
    now = now or utcnow()
    reason = (reason or "").strip()
    if not approve and not reason:
        raise HustingsError("say why the submission is rejected: the reason is shown in the public log")
    with writing(engine) as conn:
        row = conn.execute(sa.select(submissions).where(submissions.c.id == submission_id)).first()
        if row is None:
            raise NotFound(f"there is no submission number {submission_id}")
        if row.status != "pending":
            raise Decided(f"submission {submission_id} was already {row.status} by {row.decided_by or 'a moderator'}")
        feed = conn.execute(sa.select(feeds).where(feeds.c.id == row.feed_id)).first() if row.feed_id else None
        if feed is None:
            raise HustingsError(f"submission {submission_id} has no feed any more")
        if approve:
            values: dict = {"next_check_at": now}
            if name.strip():
                values["title"] = name.strip()[:500]
            if category.strip():
                values["category"] = category.strip()[:500]
            feed_store.set_feed_status_in(conn, feed.id, "active", **values)
            label = values.get("title") or feed.title or feed.url
            log_action(conn, actor, "approve_blog", target_type="blog", target_id=feed.id, target_label=label,
                             reason=reason, at=now)
        else:
            feed_store.set_feed_status_in(conn, feed.id, "rejected")
            log_action(conn, actor, "reject_submission", target_type="submission", target_id=submission_id,
                             target_label=f"submission {submission_id}", reason=reason, at=now)
        status = "approved" if approve else "rejected"
        conn.execute(sa.update(submissions).where(submissions.c.id == submission_id).values(
            status=status, reason=reason, decided_at=now, decided_by=actor[:320]))
        sub = dict(row._mapping, status=status)
        blog_url = f"{site_url.rstrip('/')}/blogs/{feed.id}" if site_url and approve else ""
        outbox.submission_decided(conn, sub, approved=approve, reason=reason, site_name=site_name,
                                  blog_url=blog_url, status_url=status_url)
    return get(engine, submission_id)


# --- ownership --------------------------------------------------------------------------------------


class _MetaFinder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.values: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "meta":
            a = {k.lower(): (v or "") for k, v in attrs}
            if a.get("name", "").strip().lower() == META_NAME:
                self.values.append(a.get("content", "").strip())

    handle_startendtag = handle_starttag


def token_in_page(body: bytes, token: str) -> bool:
    finder = _MetaFinder()
    try:
        finder.feed(body.decode("utf-8", "replace"))
        finder.close()
    except (AssertionError, ValueError):
        pass
    return token in finder.values


def verify(engine: Engine, settings: Settings, submission_id: int, *, guard: AddressGuard | None = None,
           now: datetime | None = None) -> tuple[bool, str]:
    """Look for the submission's token in its feed, then in a <meta> on the blog's pages, fetching
    under the address guard. Returns (verified, what was found or why not)."""
    sub = get(engine, submission_id)
    if sub is None:
        raise NotFound(f"there is no submission number {submission_id}")
    if sub["verified_at"] is not None:
        return True, "already verified"
    guard = guard or guard_for(settings)
    token = sub["token"]
    found = ""
    problems = []
    try:
        got = fetch.fetch(sub["feed_url"], settings, guard=guard)
        if token.encode() in got.body:
            found = "the token is in the feed"
    except AggregatorError as exc:
        problems.append(f"the feed: {refusal(exc, sub['feed_url'])}")
    if not found:
        pages = [u for u in dict.fromkeys([sub["url"], sub["check"].get("site_url") or ""])
                 if u and u != sub["feed_url"]]
        for page in pages:
            try:
                got = fetch.fetch(page, settings, guard=guard)
            except AggregatorError as exc:
                problems.append(f"{page}: {refusal(exc, page)}")
                continue
            if token_in_page(got.body, token):
                found = f"the token is in a <meta name=\"{META_NAME}\"> on {got.final_url}"
                break
    if not found:
        why = "the token is neither in the feed nor in a <meta name=\"hustings-verification\"> on the blog's page"
        return False, why + (" (" + "; ".join(problems) + ")" if problems else "")
    with writing(engine) as conn:
        conn.execute(sa.update(submissions).where(submissions.c.id == submission_id)
                     .values(verified_at=now or utcnow()))
        next_counter(conn, db.CHANGE_COUNTER)  # the blog's page says "verified": render it again
    return True, found
