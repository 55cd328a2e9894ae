"""Readers' recommendations, moderators signing in and out, and the public moderation log.

POST handlers take (site, visitor, form, **url args) and return either a URL to redirect
to (POST, then 303 to a page) or an Out to show (a form again, with what was wrong).
web/app.py has checked the CSRF token and the rate limit before they run.
"""

from __future__ import annotations

import bottle

from aggregator import listings
from aggregator.errors import HustingsError
from community import accounts, identity, ratelimits, recommendations, signin
from community.moderation_log import moderation_entries

from . import pages, security
from .request import Out, Site, Visitor, set_device_cookie, set_session_cookie

LOG_PER_PAGE = 50


def _first(form: dict, name: str) -> str:
    return (form.get(name) or [""])[0]


# --- recommendations --------------------------------------------------------------------


def recommend(site: "Site", v: "Visitor", form: dict, post_id: int) -> str:
    if listings.post(site.engine, post_id) is None:
        raise bottle.HTTPError(404, f"there is no post number {post_id} to recommend")
    counted = recommendations.recommend_post(site.engine, post_id, v.reader,
                                            identity.ip_hash(site.settings, ratelimits.client_of(v.ip)))
    # From a listing line: back to that list, at the post (its line now says "Recommended").
    back = security.same_site_path(_first(form, "back"))
    if back:
        return back.split("#", 1)[0] + f"#t{post_id}"
    return f"/posts/{post_id}?recommended={'yes' if counted else 'already'}#recommend"


# --- signing in and out ------------------------------------------------------------------------


def _safe_next(value: str) -> str:
    """Where to go after signing in: a path on this site (web.security.same_site_path), else /moderate."""
    return security.same_site_path(value) or "/moderate"


def login_form(site: "Site", params: dict, error: str = "", status: int = 200, email: str = "") -> "Out":
    body = site.render("login.html", title="Moderators: sign in", error=error, email=email,
                       next=_safe_next(params.get("next", "")))
    return Out(body, status=status)


def login(site: "Site", v: "Visitor", form: dict) -> "str | Out":
    email = _first(form, "email").strip()
    password = _first(form, "password")
    # Decided before anything is written: a refused `next` falls back, never fails after the session exists.
    target = _safe_next(_first(form, "next"))
    try:
        # The limits are community.signin's: per browser for one that has signed in before, else
        # per client and per address typed (so the route table gives this form none of its own).
        moderator, device = signin.sign_in(site.engine, site.settings, email, password, v.ip,
                                           bottle.request.get_cookie(security.DEVICE_COOKIE))
    except signin.Throttled as exc:
        raise bottle.HTTPError(429, str(exc), **{"Retry-After": str(exc.wait)}) from None
    except HustingsError as exc:
        return login_form(site, {"next": _first(form, "next")}, error=str(exc), status=401, email=email)
    if v.session_token:
        accounts.end_session(site.engine, v.session_token)  # a new session id on every sign-in
    token, _ = accounts.create_session(site.engine, moderator)
    set_session_cookie(site, token)
    set_device_cookie(site, device)
    return target


def logout(site: "Site", v: "Visitor", form: dict) -> str:
    accounts.end_session(site.engine, v.session_token)
    set_session_cookie(site, None)
    return "/"


# --- the public moderation log -------------------------------------------------------------------


def moderation_log(site: "Site", params: dict) -> "Out":
    page = pages.page_number(params)
    entries = moderation_entries(site.engine, limit=LOG_PER_PAGE + 1, offset=(page - 1) * LOG_PER_PAGE)
    more = len(entries) > LOG_PER_PAGE
    if page > 1 and not entries:
        raise bottle.HTTPError(404, "the moderation log does not go back that far")
    return pages.out(site.render("moderation.html", title="Moderation log", entries=entries[:LOG_PER_PAGE],
                                 page=page, more=more))
