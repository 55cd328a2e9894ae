"""The organiser's private pages and the moderators' campaign pages and forms.

* The organiser's private link (``/campaigns/SLUG/manage?token=...``, mailed when they confirm
  their address) is the authority for their forms: each carries the token and the reader's
  CSRF token. From it they post updates, set the search that finds posts about the campaign,
  pin posts to it or take posts off it, and close it, won or not (logged as "<name>
  (organiser)", through community.moderation like a moderator's).
* Moderators: ``/moderate/campaigns`` (the proposals waiting, bursts of backs from one
  address, open campaigns), and the forms on a campaign's own page: approve, refuse, close,
  edit the words, record a response, pin or take off posts, link polls. Every one goes through
  community.moderation and writes its line in the public log.
"""

from __future__ import annotations

from datetime import timedelta

import bottle

from aggregator.errors import HustingsError, NotFound
from community import moderation
from community.campaigns import backing, decisions, store, writing
from community.campaigns.decisions import NotAllowed
from community.campaigns.store import Campaign, CampaignError

from . import pages
from .campaign_pages import campaign_page, edit_form, first, now, render
from .request import Out, Site, Visitor, login_path, require_moderator
from .security import same_site_path

POST_ACTIONS = {
    "pin": moderation.pin_campaign_post, "unpin": moderation.unpin_campaign_post,
    "remove": moderation.remove_campaign_post, "restore": moderation.restore_campaign_post,
}
BURSTS_SHOWN_DAYS = 7


def _act(action, *args, **kwargs):
    """Run an action; its refusals become 4xx pages that say why."""
    try:
        return action(*args, **kwargs)
    except NotFound as exc:
        raise bottle.HTTPError(404, str(exc)) from None
    except NotAllowed as exc:
        raise bottle.HTTPError(409, str(exc)) from None
    except HustingsError as exc:
        raise bottle.HTTPError(400, str(exc)) from None


# --- the organiser ------------------------------------------------------------------------------------------


def _own(site: "Site", slug: str, token: str) -> Campaign:
    c = store.by_manage_token(site.engine, site.settings, slug, token)
    if c is None:
        raise bottle.HTTPError(404, "that link is not (or no longer) valid: use the private link in your mail")
    return c


def _manage_page(site: "Site", c: Campaign, token: str, page: int = 1, *, done: str = "", error: str = "",
                 field: str = "", values: dict | None = None, status: int = 200) -> "Out":
    return render(site, "campaign_manage.html", status, title=f"Manage: {c.title}", c=c, token=token,
                  found=writing.about(site.engine, site.searcher, c, page), page=page,
                  marks=store.post_marks(site.engine, c.id), entries=store.entries(site.engine, c.id),
                  followers=backing.follower_counts(site.engine, c.id), done=done, error=error, field=field,
                  values=dict({"body": "", "query": c.query, "note": ""}, **(values or {})),
                  page_url=f"/campaigns/{c.slug}", note_chars=decisions.NOTE_CHARS)


def manage(site: "Site", params: dict, slug: str) -> "Out":
    token = params.get("token", "")
    c = _own(site, slug, token)
    done = params.get("done", "")
    return _manage_page(site, c, token, pages.page_number(params),
                        done=done if done in ("update", "query", "posts", "resent", "closed") else "")


def _back_to(c: Campaign, token: str, done: str) -> str:
    return f"/campaigns/{c.slug}/manage?token={token}&done={done}"


def manage_update(site: "Site", v: "Visitor", form: dict, slug: str) -> "str | Out":
    """The organiser's update: on the page, in the feed, mailed to backers who asked (not a moderator action)."""
    token = first(form, "token")
    c = _own(site, slug, token)
    try:
        decisions.post_update(site.engine, site.settings, c.id, first(form, "body"))
    except CampaignError as exc:
        return _manage_page(site, c, token, error=str(exc), field="body", status=422,
                            values={"body": first(form, "body"), "query": c.query})
    except NotAllowed as exc:
        raise bottle.HTTPError(409, str(exc)) from None
    return _back_to(c, token, "update")


def manage_query(site: "Site", v: "Visitor", form: dict, slug: str) -> "str | Out":
    token = first(form, "token")
    c = _own(site, slug, token)
    try:
        store.set_query(site.engine, c, first(form, "query"))
    except CampaignError as exc:
        return _manage_page(site, c, token, error=str(exc), field="query", status=422,
                            values={"body": "", "query": first(form, "query")})
    return _back_to(c, token, "query")


def manage_resend(site: "Site", v: "Visitor", form: dict, slug: str) -> str:
    token = first(form, "token")
    c = _own(site, slug, token)
    store.resend_confirmation(site.engine, site.settings, c)
    return _back_to(c, token, "resent")


def manage_close(site: "Site", v: "Visitor", form: dict, slug: str) -> "str | Out":
    """The organiser closes their campaign, won or not, with an optional note: backing stops."""
    token = first(form, "token")
    c = _own(site, slug, token)
    outcome = {"won": "won", "ended": "ended", "closed": "ended"}.get(first(form, "outcome"))
    if outcome is None:
        raise bottle.HTTPError(400, "say whether the campaign was won or has closed")
    try:
        moderation.close_own_campaign(site.engine, site.settings, c.id, outcome=outcome, note=first(form, "note"))
    except CampaignError as exc:
        return _manage_page(site, c, token, error=str(exc), field="note", status=422,
                            values={"note": first(form, "note")[:2000]})
    except NotAllowed as exc:
        raise bottle.HTTPError(409, str(exc)) from None
    return _back_to(c, token, "closed")


def manage_post(site: "Site", v: "Visitor", form: dict, slug: str, post_id: int, action: str) -> str:
    token = first(form, "token")
    c = _own(site, slug, token)
    _act(POST_ACTIONS[action], site.engine, c.id, post_id, actor=f"{c.organiser} (organiser)",
         reason=first(form, "reason"))
    return _back_to(c, token, "posts") + f"#p{post_id}"


# --- moderators -------------------------------------------------------------------------------------------------


def moderate_campaigns(site: "Site", params: dict) -> "Out":
    require_moderator(site)
    pending = store.listing(site.engine, "pending")
    since = now() - timedelta(days=BURSTS_SHOWN_DAYS)
    flagged = backing.bursts(site.engine, since=since)
    by_id = {c.id: c for c in store.listing(site.engine)}
    return render(site, "moderate_campaigns.html", title="Campaigns: moderation", nav="",
                  waiting=[c for c in pending if c.confirmed], unconfirmed=[c for c in pending if not c.confirmed],
                  open=store.listing(site.engine, "open"), flagged=flagged, by_id=by_id, days=BURSTS_SHOWN_DAYS,
                  burst=backing.BURST_FROM_ONE, rules=site.settings.campaign_rules,
                  decided=[c for c in store.listing(site.engine) if c.status in ("rejected", "closed")][:20])


def _moderator(v: "Visitor") -> str | None:
    return v.moderator.email if v.moderator else None


def _page_of(site: "Site", campaign_id: int) -> str:
    c = store.get(site.engine, campaign_id)
    return f"/campaigns/{c.slug}" if c is not None else "/moderate/campaigns"


def _next(form: dict, default: str) -> str:
    return same_site_path(first(form, "next")) or default


def _mod_action(name: str, call):
    def handler(site: "Site", v: "Visitor", form: dict, campaign_id: int) -> str:
        actor = _moderator(v)
        if actor is None:
            return login_path("/moderate/campaigns")
        _act(call, site, campaign_id, actor, form)
        return _next(form, _page_of(site, campaign_id))

    handler.__name__ = name
    return handler


approve = _mod_action("approve", lambda site, cid, actor, form: moderation.approve_campaign(
    site.engine, site.settings, cid, actor=actor, reason=first(form, "reason")))
reject = _mod_action("reject", lambda site, cid, actor, form: moderation.reject_campaign(
    site.engine, site.settings, cid, actor=actor, reason=first(form, "reason")))
close = _mod_action("close", lambda site, cid, actor, form: moderation.close_campaign(
    site.engine, site.settings, cid, actor=actor, reason=first(form, "reason"), outcome=first(form, "outcome") or "ended"))
respond = _mod_action("respond", lambda site, cid, actor, form: moderation.record_campaign_response(
    site.engine, site.settings, cid, actor=actor, responder=first(form, "responder"), role=first(form, "role"),
    body=first(form, "body")))


def edit(site: "Site", v: "Visitor", form: dict, campaign_id: int) -> "str | Out":
    """A moderator corrects the words; a field that fails the proposal's checks re-shows the form (400)."""
    actor = _moderator(v)
    if actor is None:
        return login_path("/moderate/campaigns")
    given = {f: first(form, f) for f in decisions.EDITABLE if f in form}
    refused: list[CampaignError] = []

    def words() -> Campaign | None:
        try:
            return moderation.edit_campaign(site.engine, site.settings, campaign_id, actor=actor,
                                            reason=first(form, "reason"), **given)
        except CampaignError as exc:  # the form again, the field marked; other refusals are 4xx pages
            refused.append(exc)
            return None

    c = _act(words)
    if refused:
        c = store.get(site.engine, campaign_id)
        values = dict(given, reason=first(form, "reason"))
        return campaign_page(site, {}, c.slug, status=400, edit=edit_form(c, values, str(refused[0]), refused[0].field))
    return _next(form, f"/campaigns/{c.slug}") + "#edit"


def _poll(site: "Site", cid: int, actor: str, form: dict) -> bool:
    raw = first(form, "poll").strip()
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        raise HustingsError("give the poll's number")
    call = moderation.unlink_campaign_poll if first(form, "unlink") == "yes" else moderation.link_campaign_poll
    return call(site.engine, cid, int(raw), actor=actor)


link_poll = _mod_action("link_poll", _poll)


def moderate_post(site: "Site", v: "Visitor", form: dict, campaign_id: int, post_id: int, action: str) -> str:
    actor = _moderator(v)
    if actor is None:
        return login_path("/moderate/campaigns")
    _act(POST_ACTIONS[action], site.engine, campaign_id, post_id, actor=actor, reason=first(form, "reason"))
    return _next(form, _page_of(site, campaign_id)) + f"#p{post_id}"
