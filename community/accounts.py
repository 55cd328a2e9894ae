"""Moderators' accounts and sessions: argon2id passwords, database sessions.

* **Passwords**: argon2id (argon2-cffi's defaults), re-hashed on login when the
  parameters change; unknown e-mail addresses cost the same time as wrong passwords.
* **Sessions** live in the database (never Bottle's signed cookies, which unpickle): the
  web keeps a random token in an HttpOnly cookie; we store its SHA-256 and an expiry.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from aggregator.db import moderators, reading, sessions, utcnow, writing
from aggregator.errors import HustingsError

SESSION_DAYS = 7


class AuthError(HustingsError):
    """The e-mail address and password do not match a moderator who may sign in."""



def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id, RFC 9106's low-memory profile


# A hash of nothing, checked when the e-mail address is unknown so that answer takes as long
# as a wrong password. One per set of parameters (they are in the hash, and set the time).
_DUMMY: dict[tuple, str] = {}


def _dummy_hash(ph) -> str:
    params = (ph.time_cost, ph.memory_cost, ph.parallelism, ph.hash_len, ph.salt_len, ph.type)
    if params not in _DUMMY:
        _DUMMY[params] = ph.hash(secrets.token_hex(16))
    return _DUMMY[params]


def prepare() -> None:
    """Make the dummy hash now (the web app calls this when it is built): made on first use,
    it made the first unknown-address sign-in of each process take about four times as long
    as the rest, which told an observer the address was unknown."""
    _dummy_hash(_hasher())



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
        try:
            ph.verify(_dummy_hash(ph), password or "")
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
