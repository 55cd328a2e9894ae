"""Signing in without being locked out: device cookies, the limits that apply, and the record
of failed attempts a moderator is shown.

After OWASP's "Slow Down Online Guessing Attacks with Device Cookies":

* A browser that signs in as a moderator is given a **device cookie**: a random nonce and an
  HMAC of (the moderator's e-mail address, the nonce) under the site's secret. It names the
  moderator without holding their address, and nothing about it is stored.
* An attempt presenting a valid device cookie for the address typed is counted against that
  device alone (`login_limit`). Nobody else can add to that count, so strangers guessing a
  moderator's password cannot lock the moderator out of a browser they have used before.
* An attempt without one is a stranger's: it is counted per client address (`login_limit`,
  which also bounds any one address-and-client pair) and per address typed, across every
  stranger together (`login_account_limit`), so guessing stays slow from one place or many.
* Every failed attempt is recorded (when, a short day-salted hash of the client, whether it
  came from a browser that had signed in as that moderator), kept FAILURES_KEPT_DAYS days,
  and shown to the moderator on /moderate. Unknown addresses are recorded the same way (under
  a keyed hash of what was typed), so the answer takes the same time either way.

The web keeps the cookie (HttpOnly, SameSite=Strict, sent only to /login); this module
says what it holds and what an attempt may do.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from aggregator.db import reading, sign_in_failures, utcnow, writing
from aggregator.errors import HustingsError
from aggregator.settings import Settings

from . import accounts, ratelimits
from .identity import ip_hash, keyed

DEVICE_DAYS = 365  # a browser stays known this long after its last sign-in
DEVICES_PER_BROWSER = 3  # moderators sharing a browser each keep their own entry
FAILURES_KEPT_DAYS = 30  # failed attempts are shown, then forgotten, after this long
FAILURES_SHOWN = 20  # the latest this many are listed on /moderate (all are counted)
CLIENT_CHARS = 10  # how much of the client's day-salted hash is kept: enough to tell clients apart
PURGE_EVERY_S = 3_600

_ENTRY = re.compile(r"([A-Za-z0-9_-]{22})\.([0-9a-f]{32})")


class Throttled(HustingsError):
    """Too many attempts: wait `wait` seconds."""

    def __init__(self, wait: int):
        super().__init__(f"too many sign-in attempts; try again in {wait} seconds")
        self.wait = wait


def _typed(email: str) -> str:
    """The address as counted and recorded: normalised when it is one, else as typed."""
    try:
        return accounts.normal_email(email)
    except HustingsError:
        return (email or "").strip().lower()[:320]


def _mac(settings: Settings, email: str, nonce: str) -> str:
    return keyed(settings, "device", email, nonce)[:32]


def _entries(cookie: str | None) -> list[tuple[str, str]]:
    return [m.groups() for m in map(_ENTRY.fullmatch, (cookie or "").split("~")[:DEVICES_PER_BROWSER]) if m]


def known_device(settings: Settings, email: str, cookie: str | None) -> str | None:
    """The device id (its nonce) when `cookie` holds a valid entry for this address; else None."""
    typed = _typed(email)
    for nonce, mac in _entries(cookie):
        if hmac.compare_digest(mac, _mac(settings, typed, nonce)):
            return nonce
    return None


def remember_device(settings: Settings, email: str, cookie: str | None) -> str:
    """The device cookie to give a browser that has just signed in as `email`: its own entry
    first (kept when it had one, so the device's count carries on), then other moderators'."""
    typed = _typed(email)
    nonce = known_device(settings, typed, cookie) or secrets.token_urlsafe(16)
    others = [f"{n}.{m}" for n, m in _entries(cookie) if n != nonce]
    return "~".join([f"{nonce}.{_mac(settings, typed, nonce)}", *others][:DEVICES_PER_BROWSER])


def limits(settings: Settings, email: str, client_ip: str, device: str | None) -> list[tuple[str, str, str]]:
    """(what, who, limit) counted for one attempt, in the order they are checked."""
    if device:
        return [("login-device", device, settings.login_limit)]
    return [("login-client", client_ip, settings.login_limit),
            ("login-account", _typed(email), settings.login_account_limit)]


def sign_in(engine: Engine, settings: Settings, email: str, password: str, client_ip: str,
            device_cookie: str | None, now: datetime | None = None) -> tuple[accounts.Moderator, str]:
    """The moderator, and the device cookie their browser should now hold.

    Raises:
        Throttled: a limit is used up (nothing is checked or recorded).
        accounts.AuthError: the address and password do not match (the failure is recorded).
    """
    device = known_device(settings, email, device_cookie)
    if settings.rate_limits:
        for what, who, limit in limits(settings, email, client_ip, device):
            # The first refusal stops here: a client held up per address does not go on to
            # use up the budget every stranger shares for that account.
            wait = ratelimits.hit(engine, settings, what, who, limit)
            if wait:
                raise Throttled(wait)
    try:
        moderator = accounts.authenticate(engine, email, password)
    except accounts.AuthError:
        record_failure(engine, settings, email, client_ip, known=device is not None, now=now)
        raise
    return moderator, remember_device(settings, moderator.email, device_cookie)


def _account(settings: Settings, email: str) -> str:
    return keyed(settings, "account", _typed(email))


def record_failure(engine: Engine, settings: Settings, email: str, client_ip: str, *, known: bool,
                   now: datetime | None = None) -> None:
    now = now or utcnow()
    with writing(engine) as conn:
        conn.execute(sa.insert(sign_in_failures).values(
            account=_account(settings, email), at=now, client=ip_hash(settings, client_ip, now)[:CLIENT_CHARS],
            known_device=known))


@dataclass(frozen=True)
class Failure:
    at: datetime
    client: str  # a short hash of the client's address, salted with that day
    known_device: bool  # from a browser that had signed in as this moderator


@dataclass(frozen=True)
class Failures:
    count: int  # in the last FAILURES_KEPT_DAYS days
    latest: list[Failure]
    days: int = FAILURES_KEPT_DAYS


def recent_failures(engine: Engine, settings: Settings, email: str, now: datetime | None = None) -> Failures:
    """The failed sign-ins on this moderator's address that are still kept, newest first."""
    since = (now or utcnow()) - timedelta(days=FAILURES_KEPT_DAYS)
    where = (sign_in_failures.c.account == _account(settings, email), sign_in_failures.c.at >= since)
    with reading(engine) as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(sign_in_failures).where(*where)).scalar_one()
        rows = conn.execute(sa.select(sign_in_failures).where(*where)
                            .order_by(sign_in_failures.c.at.desc(), sign_in_failures.c.id.desc())
                            .limit(FAILURES_SHOWN)).all()
    return Failures(count, [Failure(r.at, r.client, r.known_device) for r in rows])


def purge(engine: Engine, now: datetime | None = None) -> int:
    """Forget failed attempts older than FAILURES_KEPT_DAYS; returns how many."""
    cutoff = (now or utcnow()) - timedelta(days=FAILURES_KEPT_DAYS)
    with writing(engine) as conn:
        return conn.execute(sa.delete(sign_in_failures).where(sign_in_failures.c.at < cutoff)).rowcount
