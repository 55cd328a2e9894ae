"""Readers subscribe to the digest, confirm, change their choices and leave (community/subscriptions.py).

* ``GET /subscribe`` is the form (the footer's small form is a GET to it, so every cached
  page stays free of cookies and tokens); ``POST /subscribe`` checks the form's CSRF token
  and the client's rate limit (web/app.py), then answers with the same page whatever the
  address's state: no one can learn from it who subscribes.
* ``GET /subscribe/confirm?token=`` confirms (the link in the confirmation mail).
* ``GET /subscribe/manage?token=`` changes frequency and categories, or leaves, by forms
  with CSRF tokens like every other.
* ``/unsubscribe?token=`` is the List-Unsubscribe address (RFC 8058): GET shows a button
  and changes nothing (link scanners open every link); POST unsubscribes at once with no
  cookie and no CSRF token, because mail clients send exactly that. The token in the
  address, signed for this subscriber, is the authority. Its body is not read (clients send
  `List-Unsubscribe=One-Click` as urlencoded or multipart form data).
"""

from __future__ import annotations

import bottle

from aggregator.errors import HustingsError
from community import subscriptions
from community.addresses import BadAddress

from .request import Out, Site, Visitor, query_params


def _first(form: dict, name: str) -> str:
    return (form.get(name) or [""])[0]


def _page(site: "Site", template: str, status: int = 200, **context) -> "Out":
    context.setdefault("title", f"The {site.settings.site_name} digest")
    return Out(site.render(template, **context), status=status)


def _form(site: "Site", values: dict, error: str = "", status: int = 200) -> "Out":
    return _page(site, "subscribe.html", status, values=values, error=error,
                 categories=subscriptions.categories(site.engine), frequencies=subscriptions.FREQUENCIES)


def subscribe_form(site: "Site", params: dict) -> "Out":
    frequency = params.get("frequency") if params.get("frequency") in subscriptions.FREQUENCIES else "daily"
    return _form(site, {"email": params.get("email", "")[:320], "frequency": frequency, "categories": []})


def subscribe(site: "Site", v: "Visitor", form: dict) -> "str | Out":
    values = {"email": _first(form, "email")[:320], "frequency": _first(form, "frequency") or "daily",
              "categories": form.get("categories") or []}
    try:
        subscriptions.subscribe(site.engine, site.settings, values["email"], values["frequency"],
                                values["categories"])
    except BadAddress as exc:
        return _form(site, dict(values, email=values["email"].replace("\r", " ").replace("\n", " ")), str(exc), 422)
    except HustingsError as exc:
        return _form(site, values, str(exc), 422)
    return "/subscribe/sent"


def sent(site: "Site", params: dict) -> "Out":
    return _page(site, "subscribe_sent.html", confirm_hours=subscriptions.CONFIRM_HOURS)


def confirm(site: "Site", params: dict) -> "Out":
    outcome, sub = subscriptions.confirm(site.engine, site.settings, params.get("token", ""))
    manage = (subscriptions.link(site.settings, "/subscribe/manage", subscriptions.manage_token(site.settings, sub))
              if sub is not None and outcome in ("confirmed", "already") else "")
    status = {"confirmed": 200, "already": 200, "expired": 410, "invalid": 404}[outcome]
    return _page(site, "subscribe_confirmed.html", status, outcome=outcome, sub=sub, manage_url=manage)


def _own(site: "Site", token: str) -> subscriptions.Subscriber:
    sub = subscriptions.by_token(site.engine, site.settings, token)
    if sub is None:
        raise bottle.HTTPError(404, "that link is not (or no longer) valid: use the link in your latest digest, "
                                    "or subscribe again")
    return sub


def manage(site: "Site", params: dict) -> "Out":
    token = params.get("token", "")
    sub = _own(site, token)
    return _page(site, "subscribe_manage.html", sub=sub, token=token, saved=params.get("saved") == "1",
                 categories=subscriptions.categories(site.engine), frequencies=subscriptions.FREQUENCIES, error="")


def manage_save(site: "Site", v: "Visitor", form: dict) -> "str | Out":
    token = _first(form, "token")
    sub = _own(site, token)
    if sub.status != "confirmed":
        raise bottle.HTTPError(409, f"this subscription is {sub.status}: subscribe again to change it")
    try:
        subscriptions.change(site.engine, sub, _first(form, "frequency"), form.get("categories") or [])
    except HustingsError as exc:
        return _page(site, "subscribe_manage.html", 422, sub=sub, token=token, saved=False, error=str(exc),
                     categories=subscriptions.categories(site.engine), frequencies=subscriptions.FREQUENCIES)
    return f"/subscribe/manage?token={token}&saved=1"


def leave(site: "Site", v: "Visitor", form: dict) -> "Out":
    sub = _own(site, _first(form, "token"))
    subscriptions.leave(site.engine, sub.id)
    return _page(site, "unsubscribe.html", sub=sub, done=True, token="")


def unsubscribe_page(site: "Site", params: dict) -> "Out":
    token = params.get("token", "")
    sub = _own(site, token)
    return _page(site, "unsubscribe.html", sub=sub, done=sub.status == "left", token=token)


def unsubscribe_one_click(site: "Site", v: "Visitor", form: dict) -> "Out":
    """RFC 8058: no cookie, no CSRF token; the signed token in the address decides."""
    sub = _own(site, query_params(("token",)).get("token", ""))
    subscriptions.leave(site.engine, sub.id)
    return _page(site, "unsubscribe.html", sub=sub, done=True, token="")
