"""Moderators' actions on blogs and posts, each with its public log line in one transaction.

Every function takes the acting moderator (their e-mail address, shown in the public
log) and the reason, changes what it changes through store's in-transaction helpers
(so posts get new change numbers and the page cache and search index follow), and
writes the log line before the transaction commits: an action is never without its
record, nor a record without its action.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from . import outbox, store
from .db import feeds, fetches, moderation_log, posts, reading, submissions, utcnow, writing
from .db import outbox as outbox_table
from .errors import HustingsError, NotFound
from .models import POLLED_STATUSES, PUBLIC_STATUSES


class NotAllowed(HustingsError):
    """The action does not apply to the blog or post as it is (pausing a paused blog...)."""


def _feed(conn: Connection, feed_id: int):
    row = conn.execute(sa.select(feeds).where(feeds.c.id == feed_id)).first()
    if row is None:
        raise NotFound(f"there is no blog number {feed_id}")
    return row


def _label(feed) -> str:
    return feed.title or feed.site_url or feed.url


# --- blogs -----------------------------------------------------------------------------------------


def pause_blog(engine: Engine, feed_id: int, *, actor: str, reason: str = "") -> None:
    """Stop fetching a blog; its posts stay on the site."""
    with writing(engine) as conn:
        feed = _feed(conn, feed_id)
        if feed.status not in POLLED_STATUSES:
            raise NotAllowed(f"{_label(feed)} is {feed.status}, not being fetched: there is nothing to pause")
        store.set_feed_status_in(conn, feed_id, "paused")
        store.log_action(conn, actor, "pause_blog", target_type="blog", target_id=feed_id, target_label=_label(feed),
                         reason=reason)


def resume_blog(engine: Engine, feed_id: int, *, actor: str, reason: str = "", now: datetime | None = None) -> None:
    """Fetch a paused, gone or removed blog again, starting now (a removed blog's posts come back)."""
    with writing(engine) as conn:
        feed = _feed(conn, feed_id)
        if feed.status not in ("paused", "gone", "rejected"):
            raise NotAllowed(f"{_label(feed)} is {feed.status}: only a paused, gone or removed blog can be resumed"
                             + (" (a pending one is approved from the queue)" if feed.status == "pending" else ""))
        store.set_feed_status_in(conn, feed_id, "active", next_check_at=now or utcnow())
        store.log_action(conn, actor, "resume_blog", target_type="blog", target_id=feed_id, target_label=_label(feed),
                         reason=reason)


def remove_blog(engine: Engine, feed_id: int, *, actor: str, reason: str, site_name: str = "") -> None:
    """Take a blog and all its posts off the site (status rejected: never fetched, never shown,
    its address still known so it cannot simply be submitted again). Needs a reason."""
    reason = (reason or "").strip()
    if not reason:
        raise HustingsError("say why the blog is removed: the reason is shown in the public log")
    with writing(engine) as conn:
        feed = _feed(conn, feed_id)
        if feed.status == "rejected":
            raise NotAllowed(f"{_label(feed)} is already off the site")
        store.set_feed_status_in(conn, feed_id, "rejected")
        # Not linked from the log: the blog has no page any more.
        store.log_action(conn, actor, "remove_blog", target_type="feed", target_id=feed_id, target_label=_label(feed),
                         reason=reason)
        outbox.feed_removed(conn, feed_id, reason=reason, site_name=site_name)


# --- posts ------------------------------------------------------------------------------------------


def _post(conn: Connection, post_id: int):
    row = conn.execute(sa.select(posts.c.id, posts.c.title, posts.c.url, posts.c.hidden, posts.c.deleted,
                                 posts.c.featured_at).where(posts.c.id == post_id)).first()
    if row is None:
        raise NotFound(f"there is no post number {post_id}")
    if row.deleted:
        raise NotAllowed(f"post {post_id} was withdrawn by its blog: only its tombstone is left")
    return row


def _post_label(row) -> str:
    return row.title or row.url or f"post {row.id}"


def feature_post(engine: Engine, post_id: int, *, actor: str, reason: str = "", now: datetime | None = None) -> None:
    """An editor's pick: shown in the labelled picks box, its score unchanged."""
    with writing(engine) as conn:
        row = _post(conn, post_id)
        if row.hidden:
            raise NotAllowed("a hidden post cannot be an editor's pick: unhide it first")
        store.change_post_in(conn, post_id, featured_at=now or utcnow(), featured_by=actor[:320])
        store.log_action(conn, actor, "feature_post", target_type="post", target_id=post_id,
                         target_label=_post_label(row), reason=reason)


def unfeature_post(engine: Engine, post_id: int, *, actor: str, reason: str = "") -> None:
    with writing(engine) as conn:
        row = _post(conn, post_id)
        store.change_post_in(conn, post_id, featured_at=None, featured_by="")
        store.log_action(conn, actor, "unfeature_post", target_type="post", target_id=post_id,
                         target_label=_post_label(row), reason=reason)


def hide_post(engine: Engine, post_id: int, *, actor: str, reason: str, now: datetime | None = None) -> None:
    """Take a post off every page (its page answers 410); the row stays, so the next fetch does
    not bring it back. Needs a reason. An editor's pick stops being one."""
    reason = (reason or "").strip()
    if not reason:
        raise HustingsError("say why the post is hidden: the reason is shown in the public log")
    with writing(engine) as conn:
        row = _post(conn, post_id)
        store.change_post_in(conn, post_id, hidden=True, hidden_reason=reason, hidden_at=now or utcnow(),
                             featured_at=None, featured_by="")
        store.log_action(conn, actor, "hide_post", target_type="post", target_id=post_id,
                         target_label=_post_label(row), reason=reason)


def unhide_post(engine: Engine, post_id: int, *, actor: str, reason: str = "") -> None:
    with writing(engine) as conn:
        row = _post(conn, post_id)
        store.change_post_in(conn, post_id, hidden=False, hidden_reason="", hidden_at=None)
        store.log_action(conn, actor, "unhide_post", target_type="post", target_id=post_id,
                         target_label=_post_label(row), reason=reason)


# --- what the moderators' pages read ------------------------------------------------------------------


def counts(engine: Engine) -> dict:
    with reading(engine) as conn:
        by_status = dict(conn.execute(sa.select(feeds.c.status, sa.func.count()).group_by(feeds.c.status)).all())
        pending = conn.execute(sa.select(sa.func.count()).select_from(submissions)
                               .where(submissions.c.status == "pending")).scalar()
        hidden = conn.execute(sa.select(sa.func.count()).select_from(posts).where(
            posts.c.hidden == sa.true(), posts.c.deleted == sa.false())).scalar()
        featured = conn.execute(sa.select(sa.func.count()).select_from(posts).where(
            posts.c.featured_at.is_not(None), posts.c.hidden == sa.false())).scalar()
        unsent = conn.execute(sa.select(sa.func.count()).select_from(outbox_table)
                              .where(outbox_table.c.sent_at.is_(None))).scalar()
        since = utcnow() - timedelta(days=7)
        logged = conn.execute(sa.select(sa.func.count()).select_from(moderation_log)
                              .where(moderation_log.c.at >= since)).scalar()
    return {"pending": pending, "by_status": by_status, "hidden": hidden, "featured": featured,
            "unsent": unsent, "logged_week": logged}


def blogs(engine: Engine) -> list[dict]:
    """Every blog, whatever its status, for the moderators' list: troubled ones first."""
    order = sa.case({"erroring": 0, "gone": 1, "pending": 2, "paused": 3, "active": 4}, value=feeds.c.status, else_=5)
    query = sa.select(feeds.c.id, feeds.c.title, feeds.c.url, feeds.c.site_url, feeds.c.status, feeds.c.kind,
                      feeds.c.error_count, feeds.c.last_error, feeds.c.last_success_at, feeds.c.next_check_at,
                      feeds.c.category).order_by(order, sa.func.lower(feeds.c.title), feeds.c.id)
    with reading(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def blog(engine: Engine, feed_id: int) -> dict:
    with reading(engine) as conn:
        row = _feed(conn, feed_id)
        n = conn.execute(sa.select(sa.func.count()).select_from(posts).where(
            posts.c.feed_id == feed_id, posts.c.deleted == sa.false())).scalar()
    return dict(row._mapping, posts=n, public=row.status in PUBLIC_STATUSES)


def history(engine: Engine, feed_id: int, since: datetime) -> list[dict]:
    """The blog's fetches and crawls since `since`, oldest first, for the health chart."""
    query = (sa.select(fetches.c.started_at, fetches.c.http_status, fetches.c.error, fetches.c.kind,
                       fetches.c.not_modified, fetches.c.new_posts)
             .where(fetches.c.feed_id == feed_id, fetches.c.kind.in_(("fetch", "crawl")), fetches.c.started_at >= since)
             .order_by(fetches.c.started_at, fetches.c.id))
    with reading(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def fetch_ok(row: dict) -> bool:
    """Whether a fetches row records a success. Failures have no HTTP status, an error status, or
    (a body that was no feed) a 200 with an error; a success may carry a warning in `error`
    too ("malformed feed ... (kept N entries)"), which is how the two are told apart."""
    status = row.get("http_status")
    if status is None or not (200 <= status < 300 or status == 304):
        return False
    error = row.get("error") or ""
    return not error or row.get("kind") == "crawl" or "(kept " in error


POST_COLUMNS = (posts.c.id, posts.c.feed_id, posts.c.title, posts.c.url, posts.c.first_seen, posts.c.hidden,
                posts.c.hidden_reason, posts.c.hidden_at, posts.c.featured_at, posts.c.featured_by,
                feeds.c.title.label("blog"), feeds.c.status.label("blog_status"))


def posts_for_moderators(engine: Engine, limit: int = 50) -> dict[str, list[dict]]:
    """Editor's picks, hidden posts and the newest posts of public blogs."""
    base = sa.select(*POST_COLUMNS).join(feeds, feeds.c.id == posts.c.feed_id).where(posts.c.deleted == sa.false())
    with reading(engine) as conn:
        featured = conn.execute(base.where(posts.c.featured_at.is_not(None), posts.c.hidden == sa.false())
                                .order_by(posts.c.featured_at.desc()).limit(limit)).all()
        hidden = conn.execute(base.where(posts.c.hidden == sa.true())
                              .order_by(posts.c.hidden_at.desc(), posts.c.id.desc()).limit(limit)).all()
        recent = conn.execute(base.where(posts.c.hidden == sa.false(), posts.c.duplicate_of.is_(None),
                                         feeds.c.status.in_(PUBLIC_STATUSES))
                              .order_by(posts.c.first_seen.desc(), posts.c.id.desc()).limit(limit)).all()
    return {name: [dict(r._mapping) for r in rows]
            for name, rows in (("featured", featured), ("hidden", hidden), ("recent", recent))}


def post_state(engine: Engine, post_id: int) -> dict | None:
    """A post's moderation state (for the forms on its page)."""
    with reading(engine) as conn:
        row = conn.execute(sa.select(*POST_COLUMNS).join(feeds, feeds.c.id == posts.c.feed_id)
                           .where(posts.c.id == post_id)).first()
    return dict(row._mapping) if row is not None else None
