"""Every moderator action, whichever door it comes through: the web's forms and the command.

Blogs: approve_submission, reject_submission, pause_blog, resume_blog, remove_blog.
Posts: feature_post, unfeature_post, hide_post, unhide_post. Polls: create_poll,
close_poll. Campaigns: approve_campaign, reject_campaign, close_campaign, edit_campaign,
record_campaign_response, pin_campaign_post, unpin_campaign_post, remove_campaign_post,
restore_campaign_post (the organiser pins and removes through these too), link_campaign_poll,
unlink_campaign_poll, and close_own_campaign (the organiser's, from their private link). The web (web/moderate.py, web/moderate_polls.py) and the command (hustings
posts/feeds/polls/submissions) call these functions and nothing beneath them.

Every function takes the actor (a moderator's e-mail address; "command line" or a
name given with --by from the command) and the reason, changes what it changes through
the aggregator's in-transaction helpers (so posts get new change numbers and the page
cache and search index follow), and writes the log line (community.moderation_log) before the
transaction commits: an action is never without its record, nor a record without its action.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from aggregator.db import feeds, posts, utcnow, writing
from aggregator.errors import HustingsError, NotFound
from aggregator.feed_store import set_feed_status_in
from aggregator.models import POLLED_STATUSES
from aggregator.post_store import change_post_in
from aggregator.settings import Settings

from . import outbox, submissions
from .campaigns import decisions as campaign_decisions
from .campaigns.store import Campaign
from .moderation_log import log_action
from .polls import store as poll_store


class NotAllowed(HustingsError):
    """The action does not apply to the blog or post as it is (pausing a paused blog...)."""


def _feed(conn: Connection, feed_id: int):
    row = conn.execute(sa.select(feeds).where(feeds.c.id == feed_id)).first()
    if row is None:
        raise NotFound(f"there is no blog number {feed_id}")
    return row


def _label(feed) -> str:
    return feed.title or feed.site_url or feed.url


# --- submissions -------------------------------------------------------------------------------------


def approve_submission(engine: Engine, submission_id: int, *, actor: str, reason: str = "", **details) -> dict:
    """The blog goes on the site and is fetched now; its blogger is told. `details`: name,
    category (what the moderator changed), site_name, site_url, status_url, now."""
    return submissions.decide(engine, submission_id, actor=actor, approve=True, reason=reason, **details)


def reject_submission(engine: Engine, submission_id: int, *, actor: str, reason: str, **details) -> dict:
    """The blog stays off the site (a reason is required and shown in the log); its blogger is told."""
    return submissions.decide(engine, submission_id, actor=actor, approve=False, reason=reason, **details)


# --- blogs -----------------------------------------------------------------------------------------


def pause_blog(engine: Engine, feed_id: int, *, actor: str, reason: str = "") -> None:
    """Stop fetching a blog; its posts stay on the site."""
    with writing(engine) as conn:
        feed = _feed(conn, feed_id)
        if feed.status not in POLLED_STATUSES:
            raise NotAllowed(f"{_label(feed)} is {feed.status}, not being fetched: there is nothing to pause")
        set_feed_status_in(conn, feed_id, "paused")
        log_action(conn, actor, "pause_blog", target_type="blog", target_id=feed_id, target_label=_label(feed),
                         reason=reason)


def resume_blog(engine: Engine, feed_id: int, *, actor: str, reason: str = "", now: datetime | None = None) -> None:
    """Fetch a paused, gone or removed blog again, starting now (a removed blog's posts come back)."""
    with writing(engine) as conn:
        feed = _feed(conn, feed_id)
        if feed.status not in ("paused", "gone", "rejected"):
            raise NotAllowed(f"{_label(feed)} is {feed.status}: only a paused, gone or removed blog can be resumed"
                             + (" (a pending one is approved from the queue)" if feed.status == "pending" else ""))
        set_feed_status_in(conn, feed_id, "active", next_check_at=now or utcnow())
        log_action(conn, actor, "resume_blog", target_type="blog", target_id=feed_id, target_label=_label(feed),
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
        set_feed_status_in(conn, feed_id, "rejected")
        # Not linked from the log: the blog has no page any more.
        log_action(conn, actor, "remove_blog", target_type="feed", target_id=feed_id, target_label=_label(feed),
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
        change_post_in(conn, post_id, featured_at=now or utcnow(), featured_by=actor[:320])
        log_action(conn, actor, "feature_post", target_type="post", target_id=post_id,
                         target_label=_post_label(row), reason=reason)


def unfeature_post(engine: Engine, post_id: int, *, actor: str, reason: str = "") -> None:
    with writing(engine) as conn:
        row = _post(conn, post_id)
        change_post_in(conn, post_id, featured_at=None, featured_by="")
        log_action(conn, actor, "unfeature_post", target_type="post", target_id=post_id,
                         target_label=_post_label(row), reason=reason)


def hide_post(engine: Engine, post_id: int, *, actor: str, reason: str, now: datetime | None = None) -> None:
    """Take a post off every page (its page answers 410); the row stays, so the next fetch does
    not bring it back. Needs a reason. An editor's pick stops being one."""
    reason = (reason or "").strip()
    if not reason:
        raise HustingsError("say why the post is hidden: the reason is shown in the public log")
    with writing(engine) as conn:
        row = _post(conn, post_id)
        change_post_in(conn, post_id, hidden=True, hidden_reason=reason, hidden_at=now or utcnow(),
                             featured_at=None, featured_by="")
        log_action(conn, actor, "hide_post", target_type="post", target_id=post_id,
                         target_label=_post_label(row), reason=reason)


def unhide_post(engine: Engine, post_id: int, *, actor: str, reason: str = "") -> None:
    with writing(engine) as conn:
        row = _post(conn, post_id)
        change_post_in(conn, post_id, hidden=False, hidden_reason="", hidden_at=None)
        log_action(conn, actor, "unhide_post", target_type="post", target_id=post_id,
                         target_label=_post_label(row), reason=reason)


# --- polls --------------------------------------------------------------------------------------------


def create_poll(engine: Engine, *, actor: str, question: str, options: list[str], **details) -> poll_store.PollRecord:
    """A new reader poll (logged as create_poll); `details` as community.polls.store.create_poll."""
    return poll_store.create_poll(engine, question=question, options=options, created_by=actor, **details)


def close_poll(engine: Engine, poll_id: int, *, actor: str, now: datetime | None = None) -> bool:
    """Close a poll now (logged as close_poll); False when it was already closed."""
    return poll_store.close_poll(engine, poll_id, by=actor, now=now)


# --- campaigns ------------------------------------------------------------------------------------------
# The work, the log line and the mails are in community/campaigns/decisions.py, in one transaction.


def approve_campaign(engine: Engine, settings: Settings, campaign_id: int, *, actor: str, reason: str = "",
                     now: datetime | None = None) -> Campaign:
    """Publish a pending campaign (its organiser must have confirmed their address); they are told."""
    return campaign_decisions.approve(engine, settings, campaign_id, actor=actor, reason=reason, now=now)


def reject_campaign(engine: Engine, settings: Settings, campaign_id: int, *, actor: str, reason: str,
                    now: datetime | None = None) -> Campaign:
    """Refuse a pending campaign, for a reason the house rules give (required; public)."""
    return campaign_decisions.reject(engine, settings, campaign_id, actor=actor, reason=reason, now=now)


def close_campaign(engine: Engine, settings: Settings, campaign_id: int, *, actor: str, reason: str,
                   outcome: str = "ended", now: datetime | None = None) -> Campaign:
    """Close an open campaign, won or ended; its page stays and takes no more backers."""
    return campaign_decisions.close(engine, settings, campaign_id, actor=actor, reason=reason, outcome=outcome,
                                    now=now)


def edit_campaign(engine: Engine, settings: Settings, campaign_id: int, *, actor: str, reason: str,
                  title: str | None = None, idea: str | None = None, ask: str | None = None,
                  ask_of: str | None = None, query: str | None = None, now: datetime | None = None) -> Campaign:
    """Change a campaign's words (None: left as it is), checked as a proposal is; its address stays.
    The log names the fields changed and the reason (required; public). Raises CampaignError naming
    the field at fault."""
    changes = {"title": title, "idea": idea, "ask": ask, "ask_of": ask_of, "query": query}
    return campaign_decisions.edit(engine, settings, campaign_id, actor=actor, reason=reason, changes=changes,
                                   now=now)[0]


def close_own_campaign(engine: Engine, settings: Settings, campaign_id: int, *, outcome: str, note: str = "",
                       now: datetime | None = None) -> Campaign:
    """The organiser closes their campaign (won or ended; an optional note), logged under their name
    as "<name> (organiser)". The caller has checked their private link."""
    return campaign_decisions.close_by_organiser(engine, settings, campaign_id, outcome=outcome, note=note, now=now)


def record_campaign_response(engine: Engine, settings: Settings, campaign_id: int, *, actor: str, responder: str,
                             role: str, body: str, now: datetime | None = None) -> int:
    """A named representative's response to a campaign; returns the mails queued to its followers."""
    return campaign_decisions.record_response(engine, settings, campaign_id, actor=actor, responder=responder,
                                              role=role, body=body, now=now)


def pin_campaign_post(engine: Engine, campaign_id: int, post_id: int, *, actor: str, reason: str = "") -> bool:
    """Show a post first among the campaign's posts (a moderator, or its organiser)."""
    return campaign_decisions.mark_post(engine, campaign_id, post_id, actor=actor, mark="pin", on=True, reason=reason)


def unpin_campaign_post(engine: Engine, campaign_id: int, post_id: int, *, actor: str, reason: str = "") -> bool:
    return campaign_decisions.mark_post(engine, campaign_id, post_id, actor=actor, mark="pin", on=False, reason=reason)


def remove_campaign_post(engine: Engine, campaign_id: int, post_id: int, *, actor: str, reason: str = "") -> bool:
    """Take a post the campaign's search found off its page (the post stays on the site)."""
    return campaign_decisions.mark_post(engine, campaign_id, post_id, actor=actor, mark="remove", on=True,
                                        reason=reason)


def restore_campaign_post(engine: Engine, campaign_id: int, post_id: int, *, actor: str, reason: str = "") -> bool:
    return campaign_decisions.mark_post(engine, campaign_id, post_id, actor=actor, mark="remove", on=False,
                                        reason=reason)


def link_campaign_poll(engine: Engine, campaign_id: int, poll_id: int, *, actor: str) -> bool:
    """Show a reader poll on the campaign's page while it is open."""
    return campaign_decisions.link_poll(engine, campaign_id, poll_id, actor=actor, on=True)


def unlink_campaign_poll(engine: Engine, campaign_id: int, poll_id: int, *, actor: str) -> bool:
    return campaign_decisions.link_poll(engine, campaign_id, poll_id, actor=actor, on=False)
