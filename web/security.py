"""Who is asking, and may they: the site's secret, readers, CSRF, sessions, passwords,
client addresses and rate limits.

* **The secret** signs readers' CSRF tokens and keys every hash we store of a cookie or
  an address. It comes from the `secret_key` setting or, on one machine, from
  `<data_dir>/secret.key`, made on first use (0600). Several web hosts must share it.
* **Readers** carry one random cookie (HttpOnly, SameSite=Lax, a year). We store only a
  keyed hash of it, so the database cannot be used to impersonate a reader.
* **CSRF**: every form carries `csrf_token`. A reader's token is an HMAC of their cookie;
  a moderator's is stored with their session. Logged-out pages are cached with a
  placeholder that web/app.py replaces with the reader's token on the way out.
* **Sessions** live in the database (never Bottle's signed cookies, which unpickle): a
  random token in an HttpOnly, SameSite=Lax cookie (Secure over HTTPS), its SHA-256 in
  `sessions`, with an expiry.
* **Passwords**: argon2id (argon2-cffi's defaults), re-hashed on login when the
  parameters change; unknown e-mail addresses cost the same time as wrong passwords.
* **Addresses** are hashed with a salt that changes every day, so a stored hash stops
  being linkable to an address the next day. Behind a proxy, `trusted_proxies` says
  whose `X-Forwarded-For` to believe.
* **Rate limits** count in the database, so every web process shares them: fixed
  windows per (action, client), answered 429 with Retry-After by the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from aggregator.db import moderators, rate_hits, reading, sessions, utcnow, writing
from aggregator.errors import HustingsError
from aggregator.settings import Settings, parse_limit
from aggregator.store import insert_for

READER_COOKIE = "hustings_reader"
SESSION_COOKIE = "hustings_session"
CSRF_PLACEHOLDER = "csrf-8d1f0c7e-placeholder"  # replaced per reader in cached pages
SESSION_DAYS = 7


class AuthError(HustingsError):
    """The e-mail address and password do not match a moderator who may sign in."""


# --- the secret -----------------------------------------------------------------------


_secrets: dict[str, bytes] = {}


def secret(settings: Settings) -> bytes:
    if settings.secret_key:
        return settings.secret_key.encode()
    path = Path(settings.data_dir) / "secret.key"
    key = str(path.resolve())
    if key not in _secrets:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        value = path.read_text().strip()
        if len(value) < 32:
            raise HustingsError(f"{path} holds no usable secret: delete it and a new one is made")
        _secrets[key] = value.encode()
    return _secrets[key]


def keyed(settings: Settings, *parts: str) -> str:
    """A hex HMAC of the parts under the site's secret (64 characters)."""
    return hmac.new(secret(settings), "\x1f".join(parts).encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


# --- readers and CSRF --------------------------------------------------------------------


def new_reader_token() -> str:
    return secrets.token_urlsafe(32)


def valid_reader_token(value: str | None) -> bool:
    return bool(value) and 20 <= len(value) <= 64 and re.fullmatch(r"[A-Za-z0-9_-]+", value) is not None


def reader_id(settings: Settings, cookie: str) -> str:
    return keyed(settings, "reader", cookie)


def reader_csrf(settings: Settings, cookie: str) -> str:
    return keyed(settings, "csrf", cookie)[:40]


def same_token(given: str | None, expected: str | None) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


# --- addresses -----------------------------------------------------------------------------


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


def ip_hash(settings: Settings, ip: str, when: datetime | None = None) -> str:
    """Salted with the day: the same address hashes differently tomorrow."""
    day = (when or utcnow()).strftime("%Y-%m-%d")
    return keyed(settings, "ip", day, ip)


# --- passwords and sessions ------------------------------------------------------------------


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id, RFC 9106's low-memory profile


_DUMMY: list[str] = []


def hash_password(password: str) -> str:
    if len(password) < 10:
        raise HustingsError("a moderator's password must be at least 10 characters")
    if len(password) > 1000:
        raise HustingsError("that password is longer than 1,000 characters")
    return _hasher().hash(password)


@dataclass(frozen=True)
class Moderator:
    id: int
    email: str


def add_moderator(engine: Engine, email: str, password: str) -> Moderator:
    email = normal_email(email)
    hashed = hash_password(password)
    with writing(engine) as conn:
        if conn.execute(sa.select(moderators.c.id).where(moderators.c.email == email)).first():
            raise HustingsError(f"there is already a moderator {email}")
        new_id = conn.execute(sa.insert(moderators).values(
            email=email, password_hash=hashed, created_at=utcnow())).inserted_primary_key[0]
    return Moderator(new_id, email)


def normal_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not re.fullmatch(r"[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}", email):
        raise HustingsError(f"{email[:80]!r} is not an e-mail address")
    return email


def authenticate(engine: Engine, email: str, password: str) -> Moderator:
    """The moderator with this e-mail and password, or AuthError (the same for both
    mistakes, and taking the same time, so addresses cannot be probed)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    ph = _hasher()
    try:
        email = normal_email(email)
    except HustingsError:
        email = ""
    with reading(engine) as conn:
        row = conn.execute(sa.select(moderators).where(moderators.c.email == email)).first() if email else None
    if row is None or row.disabled:
        if not _DUMMY:
            _DUMMY.append(ph.hash(secrets.token_hex(16)))
        try:
            ph.verify(_DUMMY[0], password or "")
        except (VerificationError, InvalidHashError):
            pass
        raise AuthError("that e-mail address and password do not match")
    try:
        ph.verify(row.password_hash, password or "")
    except (VerificationError, InvalidHashError):
        raise AuthError("that e-mail address and password do not match") from None
    with writing(engine) as conn:
        values = {"last_login_at": utcnow()}
        if ph.check_needs_rehash(row.password_hash):
            values["password_hash"] = ph.hash(password)
        conn.execute(sa.update(moderators).where(moderators.c.id == row.id).values(**values))
    return Moderator(row.id, row.email)


@dataclass(frozen=True)
class Session:
    moderator: Moderator
    csrf_token: str
    expires_at: datetime


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_session(engine: Engine, moderator: Moderator, now: datetime | None = None) -> tuple[str, Session]:
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    expires = now + timedelta(days=SESSION_DAYS)
    with writing(engine) as conn:
        conn.execute(sa.delete(sessions).where(sessions.c.expires_at < now))  # housekeeping, cheap
        conn.execute(sa.insert(sessions).values(token_hash=_token_hash(token), moderator_id=moderator.id,
                                                csrf_token=csrf, created_at=now, expires_at=expires,
                                                last_seen_at=now))
    return token, Session(moderator, csrf, expires)


def load_session(engine: Engine, token: str | None, now: datetime | None = None) -> Session | None:
    if not token or len(token) > 100:
        return None
    now = now or utcnow()
    query = (
        sa.select(sessions.c.csrf_token, sessions.c.expires_at, moderators.c.id, moderators.c.email,
                  moderators.c.disabled)
        .join(moderators, moderators.c.id == sessions.c.moderator_id)
        .where(sessions.c.token_hash == _token_hash(token))
    )
    with reading(engine) as conn:
        row = conn.execute(query).first()
    if row is None or row.disabled or row.expires_at <= now:
        return None
    return Session(Moderator(row.id, row.email), row.csrf_token, row.expires_at)


def end_session(engine: Engine, token: str | None) -> None:
    if token:
        with writing(engine) as conn:
            conn.execute(sa.delete(sessions).where(sessions.c.token_hash == _token_hash(token)))


# --- rate limits --------------------------------------------------------------------------------


def hit(engine: Engine, key: str, limit: str, now: float | None = None) -> int:
    """Count one request against `key`; returns 0 when allowed, else the seconds to wait."""
    count, period = parse_limit(limit)
    now_s = int(now if now is not None else datetime.now(timezone.utc).timestamp())
    window = now_s - now_s % period
    key = key[:200]
    with writing(engine) as conn:
        stmt = insert_for(engine)(rate_hits).values(key=key, window_start=window, hits=1)
        stmt = stmt.on_conflict_do_update(index_elements=["key", "window_start"],
                                          set_={"hits": rate_hits.c.hits + 1}).returning(rate_hits.c.hits)
        hits = conn.execute(stmt).scalar_one()
        if hits == 1 and secrets.randbelow(50) == 0:  # now and then, forget windows over a day old
            conn.execute(sa.delete(rate_hits).where(rate_hits.c.window_start < now_s - 86400))
    return 0 if hits <= count else window + period - now_s
