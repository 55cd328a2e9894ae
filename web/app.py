"""The Bottle application: every route in one table, and what every response gets. Long because
that table is the whole site's map, kept in one place on purpose (docs/design.md).

``make_app(settings)`` builds the app; ``hustings serve`` runs it on gunicorn and
``hustings run`` on waitress beside the scheduler (web/server.py). The app reads the
database and opens Whoosh searchers; it never writes the index.

Every response gets the security headers (CSP without inline script,
``frame-ancestors 'none'`` and the rest), including errors and static files, which
Bottle builds through other paths (see ``web.request.secure``). Logged-out GET pages come from
the rendered cache (web/cache.py) with an ETag and Last-Modified, and answer 304 when
the reader already has them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import urllib.parse
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Callable

import bottle
import jinja2

from aggregator import db
from aggregator.listings import site_version
from aggregator.settings import Settings
from community import accounts, identity
from index import replica
from index.search import Searcher

from . import (
    api,
    campaign_feeds,
    campaign_manage,
    campaign_pages,
    community,
    digest_pages,
    front,
    moderate,
    moderate_polls,
    pages,
    poll_api,
    poll_pages,
    reader_state,
    sections,
    security,
    submit,
    subscribe,
    syndication,
)
from .cache import PageCache, Rendered, etag_for
from .request import (
    Site,
    Visitor,
    check_rate,
    form_params,
    query_params,
    secure,
    sentence,
    set_reader_cookie,
    utf8_path,
    visitor,
)

log = logging.getLogger("hustings.web")

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"


MAX_ID = 2**63 - 1  # the largest id a database column holds
NO_CSRF = "no csrf"  # a POST route's last field: its link's own signed token is its authority (RFC 8058)


# --- the routes -------------------------------------------------------------------
# (method, path, handler, the query parameters it reads, cached for logged-out readers)
# Handlers are plain functions of (site, query, **url args) returning Out.
ROUTES: list[tuple[str, str, Callable, tuple[str, ...], bool]] = [
    ("GET", "/", front.front, ("page",), True),
    ("GET", "/new", pages.new, ("page",), True),
    ("GET", "/posts/<post_id:int>", pages.post, ("recommended",), True),
    ("GET", "/blogs", pages.blog_directory, (), True),
    ("GET", "/blogs/<blog_id:int>", pages.blog, ("page",), True),
    ("GET", "/sections/<name:re:[a-z0-9-]+>", sections.section, ("page",), True),
    ("GET", "/search", pages.search, ("q", "blog", "since", "until", "sort", "page"), True),
    ("GET", "/about", pages.about, (), True),
    ("GET", "/privacy", pages.privacy, (), True),
    # Out: feeds, the blogroll and the JSON API.
    ("GET", "/feed.atom", syndication.front_atom, (), True),
    ("GET", "/feed.rss", syndication.front_rss, (), True),
    ("GET", "/new.atom", syndication.new_atom, (), True),
    ("GET", "/new.rss", syndication.new_rss, (), True),
    ("GET", "/blogs/<blog_id:int>.atom", syndication.blog_atom, (), True),
    ("GET", "/blogs/<blog_id:int>.rss", syndication.blog_rss, (), True),
    ("GET", "/sections/<name:re:[a-z0-9-]+>.atom", syndication.section_atom, (), True),
    ("GET", "/sections/<name:re:[a-z0-9-]+>.rss", syndication.section_rss, (), True),
    ("GET", "/blogs.opml", syndication.blogroll, (), True),
    ("GET", "/api/posts", api.posts, ("sort", "blog", "page"), True),
    ("GET", "/api/posts/<post_id:int>", api.post, (), True),
    ("GET", "/api/blogs", api.blogs, (), True),
    ("GET", "/api/search", api.search, ("q", "blog", "since", "until", "sort", "page"), True),
    ("GET", "/healthz", pages.healthz, (), False),
    # The community. Pages with forms carry a CSRF placeholder filled per reader on the way out.
    ("GET", "/moderation", community.moderation_log, ("page",), True),
    ("GET", "/login", community.login_form, ("next",), False),
    # Bloggers submit their blog (web/submit.py); a submission's page is the blogger's own, never cached.
    ("GET", "/submit", submit.submit_form, (), True),
    ("GET", "/submit/<submission_id:int>", submit.submission_status, ("token",), False),
    # Moderators' pages (web/moderate.py): signed-in moderators only, never cached.
    ("GET", "/moderate", moderate.moderate_dashboard, (), False),
    ("GET", "/moderate/queue", moderate.moderate_queue, (), False),
    ("GET", "/moderate/blogs", moderate.moderate_blogs, (), False),
    ("GET", "/moderate/blogs/<blog_id:int>", moderate.blog_health, (), False),
    ("GET", "/moderate/posts", moderate.moderate_posts, (), False),
    # Reader polls (web/poll_pages.py; poll_api.py; moderate_polls.py). Only the list is cached: a
    # poll, its results, the CSV and the API depend on whether this reader has voted (and who sees
    # results), so they are never stored.
    ("GET", "/polls", poll_pages.polls_index, (), True),
    ("GET", "/polls/<poll_id:int>", poll_pages.poll_page, (), False),
    ("GET", "/polls/<poll_id:int>/results", poll_pages.poll_results, (), False),
    ("GET", "/polls/<poll_id:int>/results.csv", poll_pages.poll_results_csv, (), False),
    ("GET", "/api/polls", poll_api.api_polls, (), False),
    ("GET", "/api/polls/<poll_id:int>", poll_api.api_poll, (), False),
    ("GET", "/moderate/polls/new", moderate_polls.poll_new_form, (), False),
    # Campaigns (web/campaign_pages.py, campaign_manage.py, campaign_feeds.py). A campaign's page shows
    # each reader whether they back it, and the organiser's and moderators' pages are theirs: not cached.
    ("GET", "/campaigns", campaign_pages.directory, ("sort", "page"), True),
    ("GET", "/campaigns/new", campaign_pages.new_form, (), True),
    ("GET", "/campaigns/sent", campaign_pages.sent, (), True),
    ("GET", "/campaigns/follow/confirm", campaign_pages.follow_confirm, ("token",), False),
    ("GET", "/campaigns/unsubscribe", campaign_pages.unsubscribe_page, ("token",), False),
    ("GET", "/campaigns/<slug:re:[a-z0-9][a-z0-9-]{0,79}>", campaign_pages.campaign_page, ("page", "backed", "mail"), False),
    ("GET", "/campaigns/<slug:re:[a-z0-9][a-z0-9-]{0,79}>.atom", campaign_feeds.atom, (), True),
    ("GET", "/campaigns/<slug:re:[a-z0-9][a-z0-9-]{0,79}>/confirm", campaign_pages.confirm, ("token",), False),
    ("GET", "/campaigns/<slug:re:[a-z0-9][a-z0-9-]{0,79}>/manage", campaign_manage.manage, ("token", "page", "done"), False),
    ("GET", "/api/campaigns", campaign_feeds.api_campaigns, ("sort", "page"), True),
    ("GET", "/api/campaigns/<slug:re:[a-z0-9][a-z0-9-]{0,79}>", campaign_feeds.api_campaign, (), True),
    ("GET", "/moderate/campaigns", campaign_manage.moderate_campaigns, (), False),
    # The digest (web/subscribe.py, web/digest_pages.py). Issues are fixed once built, so their
    # pages are cached; the archive and its feed change when an issue is built, so they are not.
    ("GET", "/subscribe", subscribe.subscribe_form, ("email", "frequency"), False),
    ("GET", "/subscribe/sent", subscribe.sent, (), True),
    ("GET", "/subscribe/confirm", subscribe.confirm, ("token",), False),
    ("GET", "/subscribe/manage", subscribe.manage, ("token", "saved"), False),
    ("GET", "/unsubscribe", subscribe.unsubscribe_page, ("token",), False),
    ("GET", "/digest", digest_pages.archive, (), False),
    ("GET", "/digest.atom", digest_pages.atom, (), False),
    ("GET", "/digest/<key:re:[0-9]{4}-[0-9]{2}-[0-9]{2}>", digest_pages.daily_issue, (), True),
    ("GET", "/digest/week/<key:re:[0-9]{4}-W[0-9]{2}>", digest_pages.weekly_issue, (), True),
    ("GET", "/moderate/digest", digest_pages.moderate_digest, ("saved",), False),
    # POST: (method, path, handler, the rate-limit setting that applies or None, -). Each checks
    # the form's csrf_token first, and answers with a 303 to the page to see.
    ("POST", "/login", community.login, None, False),  # limited inside, by community.signin
    ("POST", "/logout", community.logout, None, False),
    ("POST", "/posts/<post_id:int>/recommend", community.recommend, "recommend_limit", False),
    ("POST", "/submit", submit.submit, None, False),  # submit_limit inside: only what fetches counts
    ("POST", "/submit/<submission_id:int>/verify", submit.verify, "submit_limit", False),
    ("POST", "/moderate/submissions/<submission_id:int>/approve", moderate.approve, None, False),
    ("POST", "/moderate/submissions/<submission_id:int>/reject", moderate.reject, None, False),
    ("POST", "/moderate/blogs/<blog_id:int>/pause", moderate.pause_blog, None, False),
    ("POST", "/moderate/blogs/<blog_id:int>/resume", moderate.resume_blog, None, False),
    ("POST", "/moderate/blogs/<blog_id:int>/remove", moderate.remove_blog, None, False),
    ("POST", "/moderate/posts/<post_id:int>/feature", moderate.feature_post, None, False),
    ("POST", "/moderate/posts/<post_id:int>/unfeature", moderate.unfeature_post, None, False),
    ("POST", "/moderate/posts/<post_id:int>/hide", moderate.hide_post, None, False),
    ("POST", "/moderate/posts/<post_id:int>/unhide", moderate.unhide_post, None, False),
    ("POST", "/polls/<poll_id:int>/vote", poll_pages.poll_vote, None, False),  # vote_limit inside: refusals counted
    ("POST", "/moderate/polls/new", moderate_polls.poll_create, None, False),
    ("POST", "/moderate/polls/<poll_id:int>/close", moderate_polls.poll_close, None, False),
    ("POST", "/campaigns/new", campaign_pages.propose, "campaign_limit", False),
    ("POST", "/campaigns/<slug:re:[a-z0-9][a-z0-9-]{0,79}>/back", campaign_pages.back, None, False),  # back_limit inside: new backs only
    ("POST", "/campaigns/<slug:re:[a-z0-9][a-z0-9-]{0,79}>/manage/update", campaign_manage.manage_update, None, False),
    ("POST", "/campaigns/<slug:re:[a-z0-9][a-z0-9-]{0,79}>/manage/query", campaign_manage.manage_query, None, False),
    ("POST", "/campaigns/<slug:re:[a-z0-9][a-z0-9-]{0,79}>/manage/resend", campaign_manage.manage_resend, None, False),
    ("POST", "/campaigns/<slug:re:[a-z0-9][a-z0-9-]{0,79}>/manage/close", campaign_manage.manage_close, None, False),
    ("POST", "/campaigns/<slug:re:[a-z0-9][a-z0-9-]{0,79}>/manage/posts/<post_id:int>/<action:re:pin|unpin|remove|restore>",
     campaign_manage.manage_post, None, False),
    ("POST", "/moderate/campaigns/<campaign_id:int>/approve", campaign_manage.approve, None, False),
    ("POST", "/moderate/campaigns/<campaign_id:int>/reject", campaign_manage.reject, None, False),
    ("POST", "/moderate/campaigns/<campaign_id:int>/close", campaign_manage.close, None, False),
    ("POST", "/moderate/campaigns/<campaign_id:int>/edit", campaign_manage.edit, None, False),
    ("POST", "/moderate/campaigns/<campaign_id:int>/respond", campaign_manage.respond, None, False),
    ("POST", "/moderate/campaigns/<campaign_id:int>/poll", campaign_manage.link_poll, None, False),
    ("POST", "/moderate/campaigns/<campaign_id:int>/posts/<post_id:int>/<action:re:pin|unpin|remove|restore>",
     campaign_manage.moderate_post, None, False),
    ("POST", "/subscribe", subscribe.subscribe, "subscribe_limit", False),
    ("POST", "/subscribe/manage", subscribe.manage_save, "subscribe_limit", False),
    ("POST", "/subscribe/leave", subscribe.leave, None, False),
    ("POST", "/moderate/digest/note", digest_pages.save_note, None, False),
    # RFC 8058 one-click unsubscribe: mail clients POST with no cookie and no token, so this one
    # form is NO_CSRF: the signed token in its address is the authority, and its body is not read.
    ("POST", "/unsubscribe", subscribe.unsubscribe_one_click, None, NO_CSRF),
    ("POST", "/campaigns/unsubscribe", campaign_pages.unsubscribe, None, NO_CSRF),  # a campaign's updates
]


def make_app(settings: Settings) -> bottle.Bottle:
    """The web app for these settings. Refuses to start on an old database schema."""
    engine = db.make_engine(settings)
    db.check_schema(engine)
    accounts.prepare()  # before the first request, so no sign-in pays for it (issue 16)
    templates = _templates(settings)
    site = Site(settings, engine, Searcher(settings, engine), templates,
                PageCache(lambda: (site_version(engine), replica.applied_seq(settings)), settings.page_cache_s))
    app = bottle.Bottle(catchall=True)
    app.config["hustings.site"] = site
    for method, path, handler, params, cached in ROUTES:
        wrapped = (_wrap_post(site, handler, params, csrf=cached != NO_CSRF) if method == "POST"
                   else _wrap(site, handler, params, cached))
        app.route(path, method, wrapped, name=f"{method.lower()}_{handler.__name__}")
    templates.globals["nav_sections"] = lambda: sections.nav(site)  # the masthead's second row
    templates.globals["signed_in"] = lambda: visitor(site).moderator if bottle.request.get_cookie(
        security.SESSION_COOKIE) else None
    app.route("/static/<name:path>", "GET", _static)
    app.add_hook("after_request", lambda: secure(bottle.response, settings))
    app.add_hook("before_request", utf8_path)  # /posts/26%ff is a 400, not /posts/26
    app.default_error_handler = functools.partial(_error_page, site)
    return app


def _templates(settings: Settings) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,  # every {{ }} escaped; sanitised post HTML is marked |safe where shown
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name is an error in tests, not a blank
    )
    css = (STATIC / "style.css").read_bytes()
    env.globals.update(
        site_name=settings.site_name,
        site_url=settings.site_url.rstrip("/"),
        css_url="/static/style.css?v=" + hashlib.blake2b(css, digest_size=6).hexdigest(),
        window_h=settings.rank_window_h,
        csrf_token=security.CSRF_PLACEHOLDER,  # web/app.py puts the reader's own token in its place
        rec_widget=reader_state.widget,  # a recommend button, made per reader on the way out
        canonical=functools.partial(pages.canonical_url, settings.site_url),
        site_description=pages.SITE_DESCRIPTION,
    )
    env.filters.update(ago=pages.ago, day=pages.day, iso=pages.iso, dated=pages.dated, section_href=sections.href)
    env.filters["sentence"] = sentence  # messages: a capital for our words only, one full stop
    return env


# --- request handling ----------------------------------------------------------------


def _cache_key(params: dict[str, str]) -> str:
    # Only the parameters the route reads, in a fixed order: ?utm_x=1 or ?page=1&x=2
    # cannot make a cache miss of their own.
    return bottle.request.path + "?" + urllib.parse.urlencode(sorted(params.items()))


def _wrap_post(site: Site, handler: Callable, limit: str | None, csrf: bool = True) -> Callable:
    def route(**url_args):
        if any(isinstance(v, int) and abs(v) > MAX_ID for v in url_args.values()):
            raise bottle.HTTPError(404, "there is no such page")
        form = form_params() if csrf else {}
        v = visitor(site)
        given = (form.get("csrf_token") or [""])[0]
        if csrf and (v.new_reader or not security.same_token(given, v.csrf(site.settings))):
            # No cookie (a new reader, or cookies off) or a token from another page or site.
            set_reader_cookie(site, v)
            raise bottle.HTTPError(403, "this form has expired or did not come from this site's page: go back, "
                                        "reload the page and send it again (this site needs cookies for forms)")
        if limit is not None:
            check_rate(site, handler.__name__, getattr(site.settings, limit), v.ip)
        res = handler(site, v, form, **url_args)
        bottle.response.set_header("Cache-Control", "no-store")
        if isinstance(res, str):  # a URL: POST, then redirect (303) to the page to see
            bottle.response.status = 303
            bottle.response.set_header("Location", res)
            return b""
        bottle.response.status = res.status
        bottle.response.content_type = res.content_type
        return _personal(site, v, res.body)

    route.__name__ = handler.__name__
    return route


def _personal(site: Site, v: Visitor, body: bytes) -> bytes:
    """The reader's CSRF token in place of the cached page's placeholder; their cookie set."""
    placeholder = security.CSRF_PLACEHOLDER.encode()
    if placeholder in body:
        body = body.replace(placeholder, v.csrf(site.settings).encode())
        set_reader_cookie(site, v)
    return body


def _render(site: Site, handler: Callable, params: dict, url_args: dict, key: str, shared: bool) -> Rendered:
    """Run the handler; store the page when it is for everyone."""
    # The site's version before anything is read: a change made while this renders
    # is not stored as included, so the next version check renders the page again.
    version = site.cache.version() if shared else 0
    seen_at = site.cache.changed_at if shared else 0.0
    out = handler(site, params, **url_args)
    lm = out.last_modified.timestamp() if out.last_modified else 0.0
    # Never older than the moment this process saw the site as it is: hiding or picking
    # a post changes pages without a newer post, and a reader asking If-Modified-Since
    # must not be told the copy from before is current. Pages without a date of their
    # own (about, search) get one this way too.
    lm = max(lm, seen_at)
    if shared:
        return site.cache.put(key, out.status, out.body, out.content_type, lm, version)
    return Rendered(out.status, out.body, out.content_type, etag_for(out.body), lm, 0.0, version)


def _wrap(site: Site, handler: Callable, names: tuple[str, ...], cached: bool) -> Callable:
    def route(**url_args):
        if any(isinstance(v, int) and abs(v) > MAX_ID for v in url_args.values()):
            # /posts/99999999999999999999: no such post, not an overflow in the database driver.
            raise bottle.HTTPError(404, "there is no such page")
        params = query_params(names)
        bottle.request.environ["hustings.params"] = params  # for the page's canonical address
        key = _cache_key(params)
        # A signed-in moderator's pages are made for them and never stored.
        personal = bottle.request.get_cookie(security.SESSION_COOKIE) is not None and visitor(site).session is not None
        shared = cached and not personal
        public = shared
        entry = site.cache.get(key) if shared else None
        if entry is None:
            # One render per page at a time: threads asking meanwhile wait and serve it (web/cache.py).
            with site.cache.rendering(key) if shared else contextlib.nullcontext() as entry:
                if entry is None:
                    entry = _render(site, handler, params, url_args, key, shared)
        res = bottle.response
        res.status = entry.status
        res.content_type = entry.content_type
        body, etag = entry.body, entry.etag
        if security.CSRF_PLACEHOLDER.encode() in body:
            # A page with a form: the cached body with this reader's token; its ETag differs per reader.
            v = visitor(site)
            body = _personal(site, v, body)
            # Their recommendations and the live counts (web/reader_state.py); the ETag says which.
            body, state = reader_state.personalise(site, v, body)
            etag = etag[:-1] + "-" + identity.keyed(site.settings, "etag", v.csrf(site.settings))[:8] + state + '"'
            public = False  # not for shared caches
        res.set_header("ETag", etag)
        if entry.last_modified:
            res.set_header("Last-Modified", format_datetime(
                datetime.fromtimestamp(int(entry.last_modified), timezone.utc), usegmt=True))
        # Readers always revalidate (cheap: a 304), so a change shows at once.
        res.set_header("Cache-Control", "no-cache" if public else ("private, no-cache" if cached else "no-store"))
        if _not_modified(etag, entry.last_modified):
            res.status = 304
            return b""
        return body

    route.__name__ = handler.__name__
    return route


def _not_modified(etag: str, last_modified: float) -> bool:
    if bottle.request.method not in ("GET", "HEAD"):
        return False
    inm = bottle.request.headers.get("If-None-Match")
    if inm is not None:  # RFC 9110: If-None-Match wins over If-Modified-Since
        # Weak comparison (RFC 9110 13.1.2): a proxy that compresses sends W/"..." back.
        return etag in {t.strip().removeprefix("W/") for t in inm.split(",")} or inm.strip() == "*"
    ims = bottle.request.headers.get("If-Modified-Since")
    if ims and last_modified:
        try:
            since = parsedate_to_datetime(ims).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        return int(last_modified) <= since
    return False


def _static(name: str):
    res = bottle.static_file(name, root=str(STATIC))
    # static_file builds its own response, which replaces the headers the hook set.
    secure(res, None)
    if res.status_code == 200:
        res.set_header("Cache-Control", "public, max-age=31536000, immutable")  # URLs carry a hash
    return res


ERROR_TITLES = {400: "That request could not be read", 404: "Page not found", 405: "Method not allowed",
                410: "This post was removed", 500: "Something went wrong on our side",
                503: "The site is briefly unavailable"}
DATABASE_AWAY_RETRY_S = 5  # Retry-After while the database cannot be reached (restarting, failing over)


def _error_page(site: Site, error: bottle.HTTPError) -> bytes:
    res = bottle.response
    secure(res, site.settings)
    res.set_header("Cache-Control", "no-store")
    if error.status_code == 500 and db.unreachable(error.exception):
        # The database is restarting or out of reach: not a bug. Say so, and when to come back;
        # the pool's pre-ping reconnects by itself once it answers again.
        log.warning("503 on %s %s: the database cannot be reached: %s", bottle.request.method, bottle.request.path,
                    error.exception)
        res.status = 503  # Bottle copied the 500 onto the response before calling us
        res.set_header("Retry-After", str(DATABASE_AWAY_RETRY_S))
    status = res.status_code
    message = error.body if isinstance(error.body, str) and status < 500 else ""
    if status == 503:
        message = "the database is restarting or out of reach; please try again in a few seconds"
    elif status >= 500:
        # The reader sees an apology and a reference; the log has the traceback.
        log.error("500 on %s %s: %r\n%s", bottle.request.method, bottle.request.path, error.exception,
                  error.traceback or "")
    if bottle.request.path.startswith("/api/"):
        res.content_type = "application/json"
        return json.dumps({"error": {"status": status, "message": message or ERROR_TITLES.get(status, "error")}}).encode()
    res.content_type = "text/html; charset=utf-8"
    try:
        body = site.render("error.html", status=status, title=ERROR_TITLES.get(status, f"Error {status}"),
                           message=message, path=bottle.request.path, last_page=getattr(error, "last_page", ""))
        placeholder = security.CSRF_PLACEHOLDER.encode()
        if placeholder in body:  # a signed-in moderator's "Sign out" form: their own token
            body = body.replace(placeholder, visitor(site).csrf(site.settings).encode())
        return body
    except Exception:  # the error page itself must never fail
        log.exception("rendering the error page failed")
        return f"<!doctype html><title>Error {status}</title><p>Error {status}.</p>".encode()
