"""Bloggers submit their blog: /submit, the feed check, the submission's own page, ownership.

The flow, every step a plain form (no JavaScript):

1. ``GET /submit``: the address, a name, an optional contact address and note.
2. ``POST /submit`` with ``url``: the server fetches it under the address guard and caps
   (aggregator/feedcheck.py). A feed is checked at once; a page is searched for feeds; when
   it names several, the blogger picks one (``POST /submit`` again with ``feed_url``).
3. The feed check: valid or not and why, entries, dates, GUIDs, full text or summaries,
   the last post, and three posts previewed as the site will show them. A known feed is
   recognised instead ("already on the site", with a link, or "waiting for a moderator").
4. ``POST /submit`` with ``step=confirm``: the feed is checked again (what is stored is
   what the server saw, never what the form claims), then a pending submission and a
   pending feed are recorded (aggregator/submissions.py), and the blogger is sent to the
   submission's page, ``/submit/ID?token=KEY``. KEY is an HMAC of the submission under the
   site's secret: only the blogger has the link, and it is not the ownership token, which
   they publish on their blog.
5. ``POST /submit/ID/verify``: the ownership check, fetched under the guard again.

A POST counts against ``submit_limit`` when the server fetches for it: a form with a
mistake in it, or an address the site already knows, costs nothing and does not count.
Over the limit, the 429 is the form again with what was typed.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

import bottle

from aggregator.errors import AggregatorError, HustingsError
from community import accounts, feedcheck, submissions

from . import security
from .request import Out, Site, Visitor, check_rate, sentence

MAX_URL = 2048
MAX_NAME = 300
MAX_NOTE = 4000


def _first(form: dict, name: str) -> str:
    return (form.get(name) or [""])[0]


def _date(value):
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def present(check: dict | None) -> dict | None:
    """The stored check with its ISO dates as datetimes, for the templates' date filters."""
    if not check:
        return check
    out = dict(check, last_post=_date(check.get("last_post")), checked_at=_date(check.get("checked_at")))
    out["preview"] = [dict(p, published=_date(p.get("published")), published_claimed=_date(p.get("published_claimed")))
                      for p in check.get("preview") or []]
    # Every field the templates read, so an older or partial check still renders.
    defaults = {"valid": False, "why": "", "feed_url": check.get("url", ""), "redirects": [], "warnings": [],
                "title": "", "site_url": "", "entries": 0, "dated": 0, "future_dated": 0, "guids": 0,
                "guid_duplicates": 0, "guids_unique": False, "full_content": 0, "summary_only": 0, "content": "none"}
    for key, value in defaults.items():
        out.setdefault(key, value)
    return out


def _render(site: "Site", template: str, status: int = 200, **context) -> "Out":
    context.setdefault("title", "Submit a blog")
    if "check" in context:
        context["check"] = present(context["check"])
    known = context.get("known")
    if known:
        message = submissions.describe_known(known)
        context["known_message"] = sentence(message).removesuffix(".")  # the template goes on: ": link."
    return Out(site.render(template, **context), status=status)


def _values(form: dict) -> dict:
    return {"url": _first(form, "url").strip(), "name": " ".join(_first(form, "name").split()),
            "contact": _first(form, "contact").strip(), "note": _first(form, "note").strip()}


def _normal_url(url: str) -> str:
    if url and "://" not in url:
        url = "https://" + url.lstrip("/")  # "example.org/blog" as typed
    return url


def _problem(values: dict) -> str:
    url = values["url"]
    if not url:
        return "give the address of your blog or of its feed"
    if len(url) > MAX_URL:
        return f"that address is longer than {MAX_URL} characters"
    try:
        parts = urlsplit(url)
    except ValueError:
        return f"{url[:80]} is not a web address"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url[:80]} is not a web address (http:// or https://)"
    if len(values["name"]) > MAX_NAME:
        return f"the name is longer than {MAX_NAME} characters"
    if len(values["note"]) > MAX_NOTE:
        return f"the note is longer than {MAX_NOTE} characters"
    if values["contact"]:
        try:
            values["contact"] = accounts.normal_email(values["contact"])
        except HustingsError:
            return f"{values['contact'][:80]} is not an e-mail address (or leave it empty)"
    return ""


def _over_limit(site: "Site", v: "Visitor", values: dict) -> "Out | None":
    """Count a submission that is about to fetch; over submit_limit, the form again (429)."""
    try:
        check_rate(site, "submit", site.settings.submit_limit, v.ip)
    except bottle.HTTPError as exc:
        if exc.status_code != 429:
            raise
        bottle.response.set_header("Retry-After", exc.headers.get("Retry-After", "60"))
        return _render(site, "submit.html", 429, values=values, error=f"{exc.body}; what you typed is kept below")
    return None


# --- the form --------------------------------------------------------------------------------------


def submit_form(site: "Site", params: dict) -> "Out":
    return _render(site, "submit.html", values={"url": "", "name": "", "contact": "", "note": ""}, error="")


def submit(site: "Site", v: "Visitor", form: dict) -> "str | Out":
    values = _values(form)
    values["url"] = _normal_url(values["url"])
    problem = _problem(values)
    if problem:
        return _render(site, "submit.html", 422, values=values, error=problem)
    feed_url = _normal_url(_first(form, "feed_url").strip())
    if feed_url and _problem(dict(values, url=feed_url)):
        return _render(site, "submit.html", 422, values=values, error=_problem(dict(values, url=feed_url)))
    guard = feedcheck.guard_for(site.settings)

    if _first(form, "step") == "confirm":
        if not feed_url:
            raise bottle.HTTPError(400, "the confirmation names no feed: start again from the form")
        over = _over_limit(site, v, values)
        if over is not None:
            return over
        check = feedcheck.check(feed_url, site.settings, guard=guard)
        if not check["valid"]:
            return _render(site, "submit_check.html", 422, values=values, check=check, known=None)
        try:
            sub = submissions.create(site.engine, url=values["url"], feed_url=feed_url, name=values["name"],
                                     contact=values["contact"], note=values["note"], check=check)
        except submissions.Known as exc:
            return _render(site, "submit_check.html", values=values, check=check, known=exc.feed)
        return submissions.status_path(site.settings, sub)

    # Known before anything is fetched: the address is a feed (or a blog) we have.
    target = feed_url or values["url"]
    known = submissions.known_feed(site.engine, [target], [] if feed_url else [target])
    if known is not None:
        return _render(site, "submit_check.html", values=values, check=None, known=known)
    over = _over_limit(site, v, values)
    if over is not None:
        return over

    result = None
    if not feed_url:
        try:
            found = feedcheck.probe(values["url"], site.settings, guard=guard)
        except AggregatorError as exc:
            return _render(site, "submit.html", 422, values=values, error=feedcheck.refusal(exc, values["url"]))
        pages_ = [] if found.is_feed else [found.final_url]
        known = submissions.known_feed(site.engine, [f.url for f in found.feeds] + [found.final_url], pages_)
        if known is not None:
            return _render(site, "submit_check.html", values=values, check=None, known=known)
        if len(found.feeds) > 1:
            return _render(site, "submit_pick.html", values=values, options=found.feeds, page_url=found.final_url)
        feed_url, result = found.feeds[0].url, found.result

    check = feedcheck.check(feed_url, site.settings, guard=guard, result=result)
    known = submissions.known_feed(site.engine, [check["feed_url"]]) if check["valid"] else None
    return _render(site, "submit_check.html", 200 if check["valid"] else 422, values=values, check=check, known=known)


# --- the submission's own page -------------------------------------------------------------------------


def _own(site: "Site", submission_id: int, key: str) -> dict:
    sub = submissions.get(site.engine, submission_id)
    if sub is None or not security.same_token(key, submissions.access_key(site.settings, sub)):
        # The same answer for a wrong key as for no submission: ids cannot be probed.
        raise bottle.HTTPError(404, "there is no such submission (use the whole link you were given)")
    return sub


def _status_page(site: "Site", sub: dict, status: int = 200, error: str = "") -> "Out":
    return _render(site, "submit_status.html", status, sub=sub, check=sub["check"], key=submissions.access_key(site.settings, sub),
                   meta_name=submissions.META_NAME, error=error, title=f"Submission {sub['id']}")


def submission_status(site: "Site", params: dict, submission_id: int) -> "Out":
    return _status_page(site, _own(site, submission_id, params.get("token", "")))


def verify(site: "Site", v: "Visitor", form: dict, submission_id: int) -> "str | Out":
    sub = _own(site, submission_id, _first(form, "token"))
    ok, message = submissions.verify(site.engine, site.settings, submission_id)
    if ok:
        return submissions.status_path(site.settings, sub) + "#ownership"
    return _status_page(site, submissions.get(site.engine, submission_id), 422, error=message)


def verified_at(site: "Site", blog_id: int):
    """For the blog page: when its owner proved it is theirs, or None."""
    return submissions.verified_at(site.engine, blog_id)

