"""Who is asking, over HTTP: readers' cookies, CSRF tokens and client addresses.

* **Readers** carry one random cookie (HttpOnly, SameSite=Lax, a year). We store only a
  keyed hash of it (community.identity.reader_id).
* **CSRF**: every form carries `csrf_token`. A reader's token is an HMAC of their cookie;
  a moderator's is stored with their session (community.accounts). Logged-out pages are
  cached with a placeholder that web/app.py replaces with the reader's token on the way out.
* **Device cookies**: a browser that signs in as a moderator keeps a signed cookie naming
  them (community.signin), sent only to /login; with it, others' guessing cannot lock that
  moderator out.
* **Sessions**: the token is in an HttpOnly, SameSite=Lax cookie (Secure over HTTPS, which
  a proxy's `X-Forwarded-Proto` says only when it is one of `trusted_proxies`);
  community.accounts stores its hash.
* **Addresses**: behind a proxy, `trusted_proxies` says whose `X-Forwarded-For` to believe.
  Rate limits (community.ratelimits) count in the database, so every process shares them,
  under a keyed hash of the address (never the address), forgotten after a day.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets

from aggregator.settings import Settings
from community.identity import keyed

READER_COOKIE = "hustings_reader"
READER_COOKIE_DAYS = 365  # a reader's recommendations and ballots stay theirs for a year (/privacy says so)


SESSION_COOKIE = "hustings_session"
DEVICE_COOKIE = "hustings_device"  # a browser a moderator has signed in on (community/signin.py)


CSRF_PLACEHOLDER = "csrf-8d1f0c7e-placeholder"  # replaced per reader in cached pages



def new_reader_token() -> str:
    return secrets.token_urlsafe(32)



def valid_reader_token(value: str | None) -> bool:
    return bool(value) and 20 <= len(value) <= 64 and re.fullmatch(r"[A-Za-z0-9_-]+", value) is not None



def reader_csrf(settings: Settings, cookie: str) -> str:
    return keyed(settings, "csrf", cookie)[:40]



def same_token(given: str | None, expected: str | None) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(given.encode(), expected.encode())



# What may follow the leading "/" of a path we redirect to: printable ASCII but "\\". Browsers
# send URLs percent-encoded, so a real page's path and query fit; anything else is refused.
_PATH_AFTER_SLASH = re.compile(r"[!-\[\]-~]*")
MAX_NEXT = 1000


def same_site_path(value: str | None) -> str | None:
    """`value` when a browser would read it, as a Location, as a path on this site; else None.

    Decided the strict way round from how the WHATWG URL parser reads it: it strips leading
    and trailing controls and spaces, drops tabs and newlines anywhere ("/\t/evil.example"
    becomes "//evil.example"), reads "\\" as "/", and takes "//host" (or "/\\host") as another
    host and "scheme:" as another scheme. So only "/" followed by printable ASCII is
    accepted, with no second "/" straight after it and no backslash anywhere: every control
    character, space, scheme and scheme-relative form is refused, not repaired.
    """
    if not value or len(value) > MAX_NEXT or not value.startswith("/") or value.startswith("//"):
        return None
    if not _PATH_AFTER_SLASH.fullmatch(value, 1):
        return None
    return value


def client_ip(environ: dict, settings: Settings) -> str:
    """The client's address: REMOTE_ADDR, or the first untrusted hop of X-Forwarded-For
    when the request came through a proxy named in `trusted_proxies`."""
    remote = (environ.get("REMOTE_ADDR") or "").strip()
    trusted = settings.trusted_proxy_networks
    if not trusted or not _in(remote, trusted):
        return remote
    hops = [h.strip() for h in (environ.get("HTTP_X_FORWARDED_FOR") or "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            return hop
    return remote



def request_scheme(environ: dict, settings: Settings) -> str:
    """"https" or "http": how the client reached us. `X-Forwarded-Proto` is believed only from
    a proxy named in `trusted_proxies` (anyone else could send it to get a Secure cookie
    over plain HTTP, or none over HTTPS); its last value is what the nearest proxy said."""
    scheme = (environ.get("wsgi.url_scheme") or "http").lower()
    trusted = settings.trusted_proxy_networks
    if trusted and _in((environ.get("REMOTE_ADDR") or "").strip(), trusted):
        said = (environ.get("HTTP_X_FORWARDED_PROTO") or "").split(",")[-1].strip().lower()
        if said in ("http", "https"):
            scheme = said
    return scheme


def _in(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks)
