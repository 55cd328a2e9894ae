"""Campaigns on the site: the directory, proposing one, a campaign's page, backing it, and the links
in campaign mail (the organiser's confirmation, a backer's confirmation, one-click unsubscribe).
The organiser's private pages and the moderators' are in campaign_manage.py; JSON and Atom in
campaign_feeds.py; everything they change is in community/campaigns (through community.moderation
for moderators' actions).

Forms are plain POSTs with CSRF tokens that work without JavaScript: POST, then 303 to the page to
see. A campaign's page shows each reader whether they back it, so it is never in the shared page
cache; the directory and the proposal form are.
"""

from __future__ import annotations

from datetime import datetime, timezone

import bottle
import markupsafe

from community.addresses import BadAddress
from community.campaigns import backing, charts, store, text, writing
from community.campaigns.store import Campaign
from community.polls import store as poll_store

from . import pages
from .request import Out, Site, Visitor, check_rate, query_params, secure, visitor

SORT_WORDS = {"rising": "Rising", "new": "Newest", "backed": "Most backed", "closed": "Closed and won"}
FIELDS = ("title", "idea", "ask", "ask_of", "organiser", "contact", "query")


def first(form: dict, name: str) -> str:
    return (form.get(name) or [""])[0]


def now() -> datetime:
    return datetime.now(timezone.utc)


def render(site: "Site", template: str, status: int = 200, last_modified: datetime | None = None,
           **context) -> "Out":
    context.setdefault("nav", "campaigns")
    return Out(site.render(template, md=lambda source: markupsafe.Markup(text.to_html(site.settings, source)),
                           **context), status=status, last_modified=last_modified)


def campaign_or_404(site: "Site", slug: str, *, moderator_too: bool = True) -> Campaign:
    """The campaign, if readers may see it (moderators see pending and refused ones too)."""
    c = store.by_slug(site.engine, slug)
    if c is None or (not c.public and not (moderator_too and visitor(site).moderator is not None)):
        raise bottle.HTTPError(404, "there is no published campaign at this address")
    return c


# --- the directory and proposing ----------------------------------------------------------------------------


def directory(site: "Site", params: dict) -> "Out":
    sort = params.get("sort") or "rising"
    if sort not in store.SORTS:
        raise bottle.HTTPError(400, f"sort by one of {', '.join(store.SORTS)}")
    page = pages.page_number(params)
    items, more = store.directory(site.engine, sort, page=page)
    if page > 1 and not items:
        raise bottle.HTTPError(404, "the directory does not go that far")
    return render(site, "campaigns.html", title="Campaigns", items=items, sort=sort, sorts=SORT_WORDS, page=page,
                  more=more, days=store.RISING_DAYS,
                  summary=lambda c: text.to_text(site.settings, c.idea, 220),
                  feeds=[], last_modified=store.last_change(site.engine))


def _new(site: "Site", values: dict, error: str = "", field: str = "", status: int = 200) -> "Out":
    return render(site, "campaign_new.html", status, title="Propose a campaign", values=values, error=error,
                  field=field, rules=site.settings.campaign_rules, limits=store.LIMITS)


def new_form(site: "Site", params: dict) -> "Out":
    return _new(site, {f: "" for f in FIELDS})


def propose(site: "Site", v: "Visitor", form: dict) -> "str | Out":
    values = {f: first(form, f) for f in FIELDS}
    try:
        store.propose(site.engine, site.settings, **values)
    except store.CampaignError as exc:
        clean = dict(values, contact=" ".join(values["contact"].split()))
        return _new(site, clean, str(exc), exc.field, 422)
    return "/campaigns/sent"


def sent(site: "Site", params: dict) -> "Out":
    return render(site, "campaign_note.html", title="Check your mail", note="sent", c=None, manage_url="",
                  hours=store.CONFIRM_HOURS)


def confirm(site: "Site", params: dict, slug: str) -> "Out":
    outcome, c = store.confirm_contact(site.engine, site.settings, slug, params.get("token", ""))
    status = {"confirmed": 200, "already": 200, "expired": 410, "invalid": 404}[outcome]
    manage = store.manage_url(site.settings, c) if c is not None and outcome in ("confirmed", "already") else ""
    return render(site, "campaign_note.html", status, title="Your campaign", note=f"organiser-{outcome}", c=c,
                  manage_url=manage, hours=store.CONFIRM_HOURS)


# --- a campaign's page ------------------------------------------------------------------------------------------


def page_context(site: "Site", v: "Visitor", c: Campaign, page: int) -> dict:
    at = now()
    times = backing.back_times(site.engine, c.id)
    start = c.opened_at or c.created_at
    end = max([c.closed_at or at, *times[-1:]])
    polls = [r for r in (poll_store.get_poll(site.engine, pid) for pid in store.linked_polls(site.engine, c.id))
             if r is not None and r.state(at) == "open"]
    found = writing.about(site.engine, site.searcher, c, page)
    if page > 1 and not (found.found and found.found.results):
        raise bottle.HTTPError(404, "the campaign's posts do not go that far")
    entries = store.entries(site.engine, c.id)
    moderator = v.moderator is not None
    return dict(
        c=c, page=page, found=found, backed=backing.has_backed(site.engine, c.id, v.reader),
        chart=markupsafe.Markup(charts.backers_svg(times, start=start, end=end)),
        updates=[e for e in entries if e.kind == "update"], responses=[e for e in entries if e.kind == "response"],
        names=backing.listed_names(site.engine, c.id), polls=polls, moderator=moderator,
        bursts=backing.bursts(site.engine, c.id) if moderator else [],
        followers=backing.follower_counts(site.engine, c.id) if moderator else {},
        linked=store.linked_polls(site.engine, c.id) if moderator else [],
        marks=store.post_marks(site.engine, c.id) if moderator else {})


def edit_form(c: Campaign, values: dict | None = None, error: str = "", field: str = "") -> dict:
    """The moderators' form to edit the words: the campaign's own, or what was sent with what was wrong."""
    words = {f: getattr(c, f) for f in ("title", "idea", "ask", "ask_of", "query")}
    return {"values": {**words, "reason": "", **(values or {})}, "error": error, "field": field}


def campaign_page(site: "Site", params: dict, slug: str, *, error: str = "", status: int = 200,
                  values: dict | None = None, edit: dict | None = None) -> "Out":
    if slug.isdigit():  # /campaigns/12 (the moderation log's links): the campaign's own address
        c = store.get(site.engine, int(slug))
        if c is None or not c.public:
            raise bottle.HTTPError(404, "there is no published campaign with that number")
        res = bottle.HTTPResponse(status=303, body=b"", headers={"Location": f"/campaigns/{c.slug}",
                                                                 "Cache-Control": "no-store"})
        secure(res, site.settings)  # a raised response skips the after-request hook
        raise res
    v = visitor(site)
    c = campaign_or_404(site, slug)
    ctx = page_context(site, v, c, pages.page_number(params))
    done = params.get("backed", "")
    return render(site, "campaign.html", status, title=c.title, error=error, values=values or {},
                  done=done if done in ("yes", "already") else "", mail=params.get("mail", ""),
                  feeds=[("application/atom+xml", f"/campaigns/{c.slug}.atom")], rules_days=store.RISING_DAYS,
                  hours=backing.CONFIRM_HOURS, edit=edit or edit_form(c), limits=store.LIMITS, **ctx)


def back(site: "Site", v: "Visitor", form: dict, slug: str) -> "str | Out":
    c = campaign_or_404(site, slug, moderator_too=False)
    if c.status != "open":
        return campaign_page(site, {}, slug, error="This campaign has closed: it takes no more backers.", status=409)
    if not backing.has_backed(site.engine, c.id, v.reader):
        # Only new backs count against the address's limit: a duplicate changes nothing.
        check_rate(site, "back", site.settings.back_limit, v.ip)
    listed = first(form, "listed") == "yes"
    values = {"name": first(form, "name")[:200], "email": first(form, "email")[:320], "listed": listed}
    if listed and not text.one_line(values["name"]):
        return campaign_page(site, {}, slug, error="Give the name to list, or leave the box unticked.", status=422,
                             values=values)
    try:
        done = backing.back(site.engine, site.settings, c, v.reader, v.ip,
                            listed_name=values["name"] if listed else "", email=values["email"])
    except BadAddress as exc:
        values["email"] = " ".join(values["email"].split())
        return campaign_page(site, {}, slug, error=str(exc), status=422, values=values)
    except backing.Closed as exc:
        return campaign_page(site, {}, slug, error=str(exc), status=409)
    mail = f"&mail={done.mail}" if done.mail else ""
    return f"/campaigns/{c.slug}?backed={'yes' if done.counted else 'already'}{mail}#back"


# --- backers' mail links ---------------------------------------------------------------------------------------


def follow_confirm(site: "Site", params: dict) -> "Out":
    outcome, f = backing.confirm_follow(site.engine, site.settings, params.get("token", ""))
    c = store.get(site.engine, f.campaign_id) if f is not None else None
    status = {"confirmed": 200, "already": 200, "expired": 410, "invalid": 404}[outcome]
    return render(site, "campaign_note.html", status, title="Updates by mail", note=f"follow-{outcome}", c=c,
                  manage_url="", hours=backing.CONFIRM_HOURS)


def _follower(site: "Site", token: str) -> backing.Follower:
    f = backing.follower_by_token(site.engine, site.settings, token)
    if f is None:
        raise bottle.HTTPError(404, "that link is not (or no longer) valid: use the link in your latest update")
    return f


def unsubscribe_page(site: "Site", params: dict) -> "Out":
    """GET changes nothing (link scanners open every link): a button that sends the POST."""
    token = params.get("token", "")
    f = _follower(site, token)
    return render(site, "campaign_unsubscribe.html", title="Stop a campaign's updates", f=f, token=token,
                  c=store.get(site.engine, f.campaign_id), done=f.status == "left")


def unsubscribe(site: "Site", v: "Visitor", form: dict) -> "Out":
    """RFC 8058 one-click: no cookie and no CSRF token; the signed token in the address decides."""
    f = _follower(site, query_params(("token",)).get("token", ""))
    backing.leave(site.engine, site.settings, f)
    return render(site, "campaign_unsubscribe.html", title="Stop a campaign's updates", f=f, token="",
                  c=store.get(site.engine, f.campaign_id), done=True)
