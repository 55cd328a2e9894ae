"""Who is asking, over HTTP: readers' cookies, CSRF tokens and client addresses.

* **Readers** carry one random cookie (HttpOnly, SameSite=Lax, a year). We store only a
  keyed hash of it (community.identity.reader_id).
* **CSRF**: every form carries `csrf_token`. A reader's token is an HMAC of their cookie;
  a moderator's is stored with their session (community.accounts). Logged-out pages are
  cached with a placeholder that web/app.py replaces with the reader's token on the way out.
* **Sessions**: the token is in an HttpOnly, SameSite=Lax cookie (Secure over HTTPS);
  community.accounts stores its hash.
* **Addresses**: behind a proxy, `trusted_proxies` says whose `X-Forwarded-For` to believe.
  Rate limits (community.ratelimits) count in the database, so every process shares them.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets

from aggregator.settings import Settings
from community.identity import keyed

READER_COOKIE = "hustings_reader"


SESSION_COOKIE = "hustings_session"


CSRF_PLACEHOLDER = "csrf-8d1f0c7e-placeholder"  # replaced per reader in cached pages



def new_reader_token() -> str:
    return secrets.token_urlsafe(32)



def valid_reader_token(value: str | None) -> bool:
    return bool(value) and 20 <= len(value) <= 64 and re.fullmatch(r"[A-Za-z0-9_-]+", value) is not None



def reader_csrf(settings: Settings, cookie: str) -> str:
    return keyed(settings, "csrf", cookie)[:40]



def same_token(given: str | None, expected: str | None) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(given.encode(), expected.encode())



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



def _in(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks)
