"""What one request needs besides its handler: the site's parts, what a handler returns,
who is asking (reader cookie, address, moderator session), forms and query strings read
strictly, cookies, rate limits, and the headers every response carries.

web/app.py builds the app from these; the handler modules (pages, api, community, ...)
import them directly, so nothing imports the app module but the command.
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from dataclasses import dataclass
from datetime import datetime

import bottle
import jinja2
from sqlalchemy.engine import Engine

from aggregator.settings import Settings
from community import accounts, feedcheck, identity, ratelimits, signin
from index.search import Searcher

from . import security
from .cache import PageCache


class BadRequest(bottle.HTTPError):
    def __init__(self, message: str):
        super().__init__(400, message)


@dataclass
class Site:
    """What every handler needs, built once per process by make_app."""

    settings: Settings
    engine: Engine
    searcher: Searcher
    templates: jinja2.Environment
    cache: PageCache

    def render(self, template: str, **context) -> bytes:
        return self.templates.get_template(template).render(**context).encode("utf-8")


@dataclass(frozen=True)
class Out:
    """What a handler returns: the body, its type and when its content last changed."""

    body: bytes
    content_type: str = "text/html; charset=utf-8"
    last_modified: datetime | None = None
    status: int = 200


def query_params(names: tuple[str, ...]) -> dict[str, str]:
    """The named query parameters, decoded as UTF-8; 400 for bytes that are not UTF-8."""
    raw = bottle.request.environ.get("QUERY_STRING", "")
    try:
        pairs = urllib.parse.parse_qsl(raw, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("the address has characters that are not valid UTF-8") from None
    out: dict[str, str] = {}
    for key, value in pairs:
        if key in names and key not in out:  # the first of a repeated parameter wins
            out[key] = value
    return out


@dataclass
class Visitor:
    """Who is asking: their reader cookie, address and moderator session, if any."""

    reader_cookie: str
    new_reader: bool  # the cookie was made for this response and must be set
    reader: str  # keyed hash of the cookie: what is stored
    ip: str
    session: accounts.Session | None
    session_token: str | None

    def csrf(self, settings: Settings) -> str:
        if self.session is not None:
            return self.session.csrf_token
        return security.reader_csrf(settings, self.reader_cookie)

    @property
    def moderator(self) -> accounts.Moderator | None:
        return self.session.moderator if self.session else None


def visitor(site: Site) -> Visitor:
    environ = bottle.request.environ
    found = environ.get("hustings.visitor")
    if found is None:
        cookie = bottle.request.get_cookie(security.READER_COOKIE)
        new = not security.valid_reader_token(cookie)
        if new:
            cookie = security.new_reader_token()
        token = bottle.request.get_cookie(security.SESSION_COOKIE)
        session = accounts.load_session(site.engine, token) if token else None
        found = Visitor(cookie, new, identity.reader_id(site.settings, cookie),
                        security.client_ip(environ, site.settings), session, token if session else None)
        environ["hustings.visitor"] = found
    return found


def login_path(next_path: str) -> str:
    """The sign-in page, coming back to next_path afterwards."""
    return "/login?next=" + urllib.parse.quote(next_path, safe="/")


def require_moderator(site: Site) -> accounts.Moderator:
    """The signed-in moderator, or a 303 to the sign-in page that comes back here (GET pages)."""
    mod = visitor(site).moderator
    if mod is None:
        query = bottle.request.query_string
        res = bottle.HTTPResponse(status=303, body=b"")
        res.set_header("Location", login_path(bottle.request.path + ("?" + query if query else "")))
        res.set_header("Cache-Control", "no-store")
        secure(res, site.settings)
        raise res
    return mod


def _https(site: Site) -> bool:
    # Not bottle's urlparts: it believes X-Forwarded-Proto from anyone.
    return security.request_scheme(bottle.request.environ, site.settings) == "https"


def set_reader_cookie(site: Site, v: Visitor) -> None:
    if v.new_reader:
        bottle.response.set_cookie(security.READER_COOKIE, v.reader_cookie, path="/", httponly=True,
                                   max_age=security.READER_COOKIE_DAYS * 86400, samesite="lax", secure=_https(site))


def set_session_cookie(site: Site, token: str | None) -> None:
    if token is None:
        bottle.response.delete_cookie(security.SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                                      secure=_https(site))
    else:
        bottle.response.set_cookie(security.SESSION_COOKIE, token, max_age=accounts.SESSION_DAYS * 86400,
                                   path="/", httponly=True, samesite="lax", secure=_https(site))


def set_device_cookie(site: Site, value: str) -> None:
    """The browser is now known for this moderator (community.signin): sent back to /login only."""
    bottle.response.set_cookie(security.DEVICE_COOKIE, value, max_age=signin.DEVICE_DAYS * 86400, path="/login",
                               httponly=True, samesite="strict", secure=_https(site))


def form_params() -> dict[str, list[str]]:
    """The urlencoded form body, decoded as UTF-8 (strictly: 400 otherwise); each name's values."""
    kind = (bottle.request.content_type or "").split(";")[0].strip().lower()
    if kind not in ("application/x-www-form-urlencoded", ""):
        raise BadRequest("send the form as application/x-www-form-urlencoded")
    raw = bottle.request.body.read(bottle.BaseRequest.MEMFILE_MAX + 1)
    if len(raw) > bottle.BaseRequest.MEMFILE_MAX:
        raise bottle.HTTPError(413, "the form is too large")
    try:
        pairs = urllib.parse.parse_qsl(raw.decode("ascii"), keep_blank_values=True, encoding="utf-8",
                                       errors="strict", max_num_fields=500)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the form could not be read as UTF-8") from None
    out: dict[str, list[str]] = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out


def beyond_last(path: str, count: int, per_page: int, what: str) -> bottle.HTTPError:
    """The 404 for ?page= past the last page of `count` items: it says so and links to the last."""
    last = max(1, -(-count // per_page))
    err = bottle.HTTPError(404, f"{what} has {last} page{'' if last == 1 else 's'}; the page asked for is beyond "
                                "the last")
    err.last_page = path if last == 1 else f"{path}?page={last}"
    return err


def utf8_path() -> None:
    """400 for an address that is not UTF-8 (/%ff): Bottle drops the bytes it cannot decode,
    so /posts/26%ff would otherwise be /posts/26, served as if it were right."""
    try:
        bottle.request.environ.get("bottle.raw_path", "").encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise bottle.HTTPError(400, "that address is not valid UTF-8: check the link you followed") from None


_OUR_WORD = re.compile(r"[a-z][a-z'’-]*(?=[\s,;]|$)")  # a word, not the start of an address or a URL


def sentence(message: str) -> str:
    """A message as a sentence: a capital letter, and one full stop. Only our own words are
    capitalised: a message that starts with what someone typed (an address, an e-mail, a
    URL) keeps its case, so "file:///etc/passwd is not a web address" stays as it was typed."""
    message = (message or "").strip()
    if not message:
        return ""
    if _OUR_WORD.match(message):
        message = message[0].upper() + message[1:]
    return message if message.endswith((".", "!", "?", "…")) else message + "."


def check_rate(site: Site, what: str, limit: str, who: str) -> None:
    """429 with Retry-After when `who` has used up `what` (unless rate_limits is off)."""
    if not site.settings.rate_limits:
        return
    wait = ratelimits.hit(site.engine, site.settings, what, who, limit)
    if wait:
        raise bottle.HTTPError(429, f"too many attempts from here; try again in {wait} seconds",
                               **{"Retry-After": str(wait)})


@functools.lru_cache(maxsize=8)
def _csp(frame_hosts: tuple[str, ...]) -> str:
    frames = " ".join(f"https://{h}" for h in frame_hosts) or "'none'"
    return "; ".join([
        "default-src 'none'",
        "style-src 'self'",
        # Post pages show the blog's own images from the blog's server; nothing else
        # of ours comes from another host.
        "img-src 'self' https: http: data:",
        f"frame-src {frames}",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ])


def secure(res, settings: Settings | None) -> None:
    """The headers every response carries. Called from three places because Bottle
    replaces the response headers for static files and for errors."""
    res.set_header("Content-Security-Policy", _csp(settings.iframe_hosts if settings else ()))
    res.set_header("X-Content-Type-Options", "nosniff")
    res.set_header("Referrer-Policy", "strict-origin-when-cross-origin")
    res.set_header("X-Frame-Options", "DENY")
    res.set_header("Cross-Origin-Opener-Policy", "same-origin")
    res.set_header("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()")
    if settings is not None:  # so a submission that leads here, by any name, is refused (community.feedcheck)
        res.set_header(feedcheck.SITE_HEADER, feedcheck.site_mark(settings))
