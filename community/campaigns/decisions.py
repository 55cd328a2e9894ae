"""What moderators (and, for updates and posts, organisers) do to a campaign: each change, its line
in the public moderation log and the mail it causes, in one transaction.

Moderators' actions are reached only through community.moderation (the one door the web's forms
and the command both call): approve, reject, close, edit the words, record a response, pin or
take off a post, link or unlink a poll. The organiser, from their private link, posts updates,
pins or takes off posts and closes their own campaign; the log names them as "<their public
name> (organiser)".
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from aggregator.db import (
    CHANGE_COUNTER,
    campaign_polls,
    campaign_posts,
    campaign_updates,
    campaigns,
    insert_for,
    next_counter,
    polls,
    posts,
    utcnow,
    writing,
)
from aggregator.errors import HustingsError, NotFound
from aggregator.settings import Settings

from .. import outbox
from ..moderation_log import log_action
from . import letters
from .backing import queue_news
from .store import OUTCOMES, Campaign, CampaignError, clean_proposal, get, manage_url, url
from .text import one_line

BODY_CHARS = 5000
NOTE_CHARS = 500  # the organiser's note on closing: a line on the page, the log and the backers' mail
EDITABLE = ("title", "idea", "ask", "ask_of", "query")  # what a moderator may change (never the organiser or contact)
FIELD_WORDS = {"title": "the title", "idea": "the idea", "ask": "what it asks", "ask_of": "whom it asks",
               "query": "the search"}


class NotAllowed(HustingsError):
    """The action does not apply to the campaign as it is (approving a refused one...)."""


def _campaign(conn: Connection, campaign_id: int) -> Campaign:
    row = conn.execute(sa.select(campaigns).where(campaigns.c.id == campaign_id)).first()
    if row is None:
        raise NotFound(f"there is no campaign number {campaign_id}")
    return Campaign.of(row)


def _reason(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise HustingsError(f"say why the campaign is {what}: the reason is shown in the public log")
    return reason


def _tell_organiser(conn: Connection, settings: Settings, c: Campaign, what: str, reason: str, now: datetime,
                    outcome: str = "") -> None:
    if not c.confirmed:  # an unconfirmed address is sent nothing but its confirmation
        return
    subject, body = letters.decided(settings, c.title, what, reason, url(settings, f"/campaigns/{c.slug}"),
                                    manage_url(settings, c), outcome)
    outbox.queue(conn, c.contact, subject, body, f"campaign-{what}", now)


def approve(engine: Engine, settings: Settings, campaign_id: int, *, actor: str, reason: str = "",
            now: datetime | None = None) -> Campaign:
    """Publish a pending campaign whose organiser confirmed their address; the organiser is told."""
    now = now or utcnow()
    with writing(engine) as conn:
        c = _campaign(conn, campaign_id)
        if c.status != "pending":
            raise NotAllowed(f"campaign {campaign_id} is {c.status}, not waiting for a moderator")
        if not c.confirmed:
            raise NotAllowed(f"campaign {campaign_id}'s organiser has not confirmed their address yet: "
                             "it can be refused, not published")
        conn.execute(sa.update(campaigns).where(campaigns.c.id == c.id).values(
            status="open", opened_at=now, updated_at=now, reason=reason.strip(), decided_by=actor[:320]))
        log_action(conn, actor, "approve_campaign", target_type="campaign", target_id=c.id, target_label=c.title,
                   reason=reason.strip(), at=now)
        _tell_organiser(conn, settings, c, "approved", reason.strip(), now)
    return get(engine, campaign_id)


def reject(engine: Engine, settings: Settings, campaign_id: int, *, actor: str, reason: str,
           now: datetime | None = None) -> Campaign:
    """Refuse a pending campaign (a reason from the house rules is required, and public)."""
    now = now or utcnow()
    reason = _reason(reason, "refused")
    with writing(engine) as conn:
        c = _campaign(conn, campaign_id)
        if c.status != "pending":
            raise NotAllowed(f"campaign {campaign_id} is {c.status}, not waiting for a moderator")
        conn.execute(sa.update(campaigns).where(campaigns.c.id == c.id).values(
            status="rejected", updated_at=now, reason=reason, decided_by=actor[:320]))
        # By number only: the words were never published.
        log_action(conn, actor, "reject_campaign", target_type="proposal", target_id=c.id,
                   target_label=f"campaign proposal {c.id}", reason=reason, at=now)
        _tell_organiser(conn, settings, c, "rejected", reason, now)
    return get(engine, campaign_id)


def close(engine: Engine, settings: Settings, campaign_id: int, *, actor: str, reason: str, outcome: str = "ended",
          now: datetime | None = None) -> Campaign:
    """Close an open campaign (`outcome` won or ended): it keeps its page and takes no more backers.
    The organiser and the backers who asked for updates are told."""
    return _close(engine, settings, campaign_id, actor=actor, reason=_reason(reason, "closed"), outcome=outcome,
                  now=now)


def close_by_organiser(engine: Engine, settings: Settings, campaign_id: int, *, outcome: str, note: str = "",
                       now: datetime | None = None) -> Campaign:
    """The organiser closes their own open campaign (from their private link), won or ended, with an
    optional note: as a moderator's closing, logged under "<name> (organiser)"; the backers who asked
    for updates are told. Raises CampaignError for a note too long, NotAllowed unless it is open."""
    note = one_line(note)
    if len(note) > NOTE_CHARS:
        raise CampaignError("note", f"the note is {len(note):,} characters: keep it to {NOTE_CHARS:,}")
    return _close(engine, settings, campaign_id, actor=None, reason=note, outcome=outcome, now=now)


def _close(engine: Engine, settings: Settings, campaign_id: int, *, actor: str | None, reason: str, outcome: str,
           now: datetime | None) -> Campaign:
    """actor None: the campaign's organiser (who is not told: they did it)."""
    now = now or utcnow()
    if outcome not in OUTCOMES:
        raise HustingsError(f"the outcome is one of {', '.join(OUTCOMES)}")
    with writing(engine) as conn:
        c = _campaign(conn, campaign_id)
        if c.status != "open":
            raise NotAllowed(f"campaign {campaign_id} is {c.status}: only an open campaign can be closed")
        by = actor if actor is not None else f"{c.organiser} (organiser)"
        conn.execute(sa.update(campaigns).where(campaigns.c.id == c.id).values(
            status="closed", outcome=outcome, closed_at=now, updated_at=now, reason=reason, decided_by=by[:320]))
        log_action(conn, by, "close_campaign", target_type="campaign", target_id=c.id,
                   target_label=c.title + (" (won)" if outcome == "won" else ""), reason=reason, at=now)
        if actor is not None:
            _tell_organiser(conn, settings, c, "closed", reason, now, outcome)
        news = reason or ("Its organiser closed the campaign." if actor is None else "")
        queue_news(conn, settings, c, "closed", f"{'Won. ' if outcome == 'won' else ''}{news}", now)
    return get(engine, campaign_id)


def edit(engine: Engine, settings: Settings, campaign_id: int, *, actor: str, reason: str, changes: dict[str, str],
         now: datetime | None = None) -> tuple[Campaign, list[str]]:
    """A moderator's correction of a campaign's words (a typo, something against the house rules):
    `changes` maps fields of EDITABLE to their new text. The same checks as proposing; the address
    (slug) stays. The log line names the fields changed and why; a confirmed organiser is told.
    Returns the campaign and the fields changed. Raises CampaignError naming the field at fault (or
    "reason"), NotAllowed for a refused campaign."""
    now = now or utcnow()
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise HustingsError(f"a moderator changes only {', '.join(EDITABLE)}, not {', '.join(unknown)}")
    reason = (reason or "").strip()
    if not reason:
        raise CampaignError("reason", "say why the words are changed: the reason is shown in the public log")
    with writing(engine) as conn:
        c = _campaign(conn, campaign_id)
        if c.status == "rejected":
            raise NotAllowed(f"campaign {campaign_id} was refused: its words are not shown, so there is nothing to edit")
        current = {f: getattr(c, f) for f in EDITABLE}
        given = {f: v for f, v in changes.items() if v is not None}
        values = clean_proposal(**dict(current, **given), organiser=c.organiser, contact=c.contact)
        changed = [f for f in EDITABLE if values[f] != current[f]]
        if not changed:
            raise CampaignError("", "nothing to change: the words given are the campaign's own")
        conn.execute(sa.update(campaigns).where(campaigns.c.id == c.id)
                     .values(updated_at=now, **{f: values[f] for f in changed}))
        words = [FIELD_WORDS[f] for f in changed]
        what = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
        # A pending campaign's words were never published: named by number, as when it was proposed.
        pending = c.status == "pending"
        log_action(conn, actor, "edit_campaign", target_type="proposal" if pending else "campaign", target_id=c.id,
                   target_label=f"campaign proposal {c.id}" if pending else values["title"],
                   reason=f"changed {what}: {reason}", at=now)
        if c.confirmed:
            subject, body = letters.edited(settings, values["title"], what, reason,
                                           url(settings, f"/campaigns/{c.slug}"), manage_url(settings, c))
            outbox.queue(conn, c.contact, subject, body, "campaign-edited", now)
    return get(engine, campaign_id), changed


def _body(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise CampaignError("body", "write something")
    if len(text) > BODY_CHARS:
        raise CampaignError("body", f"it is {len(text):,} characters: keep it to {BODY_CHARS:,}")
    return text


def post_update(engine: Engine, settings: Settings, campaign_id: int, body: str, now: datetime | None = None) -> int:
    """The organiser's update (from their private link): on the page and in the feed, and mailed to
    the backers who asked for updates. Returns how many mails were queued."""
    now = now or utcnow()
    body = _body(body)
    with writing(engine) as conn:
        c = _campaign(conn, campaign_id)
        if c.status != "open":
            raise NotAllowed(f"campaign {campaign_id} is {c.status}: updates are posted while it is open")
        conn.execute(sa.insert(campaign_updates).values(campaign_id=c.id, kind="update", body=body, created_at=now))
        conn.execute(sa.update(campaigns).where(campaigns.c.id == c.id).values(updated_at=now))
        next_counter(conn, CHANGE_COUNTER)
        return queue_news(conn, settings, c, "update", body, now)


def record_response(engine: Engine, settings: Settings, campaign_id: int, *, actor: str, responder: str, role: str,
                    body: str, now: datetime | None = None) -> int:
    """A response from a named representative, recorded by a moderator (logged, mailed to followers)."""
    now = now or utcnow()
    responder, role, body = one_line(responder)[:200], one_line(role)[:200], _body(body)
    if not responder or not role:
        raise CampaignError("responder" if not responder else "role",
                            "give the name and the role of who responded (an MP, a councillor, a party officer)")
    with writing(engine) as conn:
        c = _campaign(conn, campaign_id)
        if not c.public:
            raise NotAllowed(f"campaign {campaign_id} is {c.status}: responses are recorded on published campaigns")
        conn.execute(sa.insert(campaign_updates).values(campaign_id=c.id, kind="response", body=body,
                                                        responder=responder, role=role, recorded_by=actor[:320],
                                                        created_at=now))
        conn.execute(sa.update(campaigns).where(campaigns.c.id == c.id).values(updated_at=now))
        log_action(conn, actor, "record_response", target_type="campaign", target_id=c.id, target_label=c.title,
                   reason=f"from {responder}, {role}", at=now)
        return queue_news(conn, settings, c, "response", body, now, responder=responder, role=role)


MARKS = {"pin": "pinned", "remove": "removed"}
ACTIONS = {("pin", True): "pin_campaign_post", ("pin", False): "unpin_campaign_post",
           ("remove", True): "remove_campaign_post", ("remove", False): "restore_campaign_post"}


def mark_post(engine: Engine, campaign_id: int, post_id: int, *, actor: str, mark: str, on: bool,
              reason: str = "", now: datetime | None = None) -> bool:
    """Pin a post to the campaign's page (or unpin it), or take one its search found off the page
    (or put it back). Logged. False when it was already so."""
    now = now or utcnow()
    if mark not in MARKS:
        raise HustingsError("pin or remove")
    with writing(engine) as conn:
        c = _campaign(conn, campaign_id)
        if not c.public:
            raise NotAllowed(f"campaign {campaign_id} is {c.status}: its page is not published")
        post = conn.execute(sa.select(posts.c.id, posts.c.title, posts.c.url).where(posts.c.id == post_id)).first()
        if post is None:
            raise NotFound(f"there is no post number {post_id}")
        where = sa.and_(campaign_posts.c.campaign_id == c.id, campaign_posts.c.post_id == post_id)
        current = conn.execute(sa.select(campaign_posts.c.state).where(where)).scalar()
        if on:
            if current == MARKS[mark]:
                return False
            stmt = insert_for(engine)(campaign_posts).values(campaign_id=c.id, post_id=post_id, state=MARKS[mark],
                                                            by=actor[:320], at=now)
            conn.execute(stmt.on_conflict_do_update(index_elements=["campaign_id", "post_id"],
                                                    set_={"state": MARKS[mark], "by": actor[:320], "at": now}))
        else:
            if current != MARKS[mark]:
                return False
            conn.execute(sa.delete(campaign_posts).where(where))
        log_action(conn, actor, ACTIONS[(mark, on)], target_type="campaign", target_id=c.id,
                   target_label=f"{post.title or post.url or f'post {post_id}'} on {c.title}", reason=reason, at=now)
    return True


def link_poll(engine: Engine, campaign_id: int, poll_id: int, *, actor: str, on: bool = True,
              now: datetime | None = None) -> bool:
    """Show a reader poll on the campaign's page (or stop). Logged. False when it already was (not)."""
    with writing(engine) as conn:
        c = _campaign(conn, campaign_id)
        question = conn.execute(sa.select(polls.c.question).where(polls.c.id == poll_id)).scalar()
        if question is None:
            raise NotFound(f"there is no poll number {poll_id}")
        where = sa.and_(campaign_polls.c.campaign_id == c.id, campaign_polls.c.poll_id == poll_id)
        linked = conn.execute(sa.select(campaign_polls.c.poll_id).where(where)).first() is not None
        if linked == on:
            return False
        if on:
            conn.execute(sa.insert(campaign_polls).values(campaign_id=c.id, poll_id=poll_id))
        else:
            conn.execute(sa.delete(campaign_polls).where(where))
        log_action(conn, actor, "link_campaign_poll" if on else "unlink_campaign_poll", target_type="campaign",
                   target_id=c.id, target_label=f"{question} on {c.title}", at=now)
    return True
