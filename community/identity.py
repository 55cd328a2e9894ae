"""The site's secret, and the keyed hashes of readers and addresses that are all we store of them.

The secret comes from the `secret_key` setting or, on one machine, from
`<data_dir>/secret.key`, made on first use (0600). Several web hosts must share it.
A reader is stored as a keyed hash of their cookie, so the database cannot be used to
impersonate one; an address as a keyed hash salted with the day, so a stored hash stops
being linkable to an address the next day.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import datetime
from pathlib import Path

from aggregator.db import utcnow
from aggregator.errors import HustingsError
from aggregator.settings import Settings

_secrets: dict[str, bytes] = {}



def secret(settings: Settings) -> bytes:
    if settings.secret_key:
        return settings.secret_key.encode()
    known = _secrets.get(str(settings.data_dir))  # every keyed hash asks: no file system calls then
    if known is not None:
        return known
    path = Path(settings.data_dir) / "secret.key"
    path.parent.mkdir(parents=True, exist_ok=True)  # on PostgreSQL nothing else may have made it yet
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
    _secrets[str(settings.data_dir)] = _secrets[key]
    return _secrets[key]



def keyed(settings: Settings, *parts: str) -> str:
    """A hex HMAC of the parts under the site's secret (64 characters)."""
    return hmac.new(secret(settings), "\x1f".join(parts).encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()



def reader_id(settings: Settings, cookie: str) -> str:
    return keyed(settings, "reader", cookie)



def ip_hash(settings: Settings, ip: str, when: datetime | None = None) -> str:
    """Salted with the day: the same address hashes differently tomorrow."""
    day = (when or utcnow()).strftime("%Y-%m-%d")
    return keyed(settings, "ip", day, ip)
