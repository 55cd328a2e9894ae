"""Rate limits counted in the database, so every web process and node shares them.

Fixed windows per (action, client); the web answers 429 with Retry-After. Who is counted
(an address, a typed e-mail address) is stored only as a keyed hash (community.identity),
and windows are forgotten by the `purge_rate_hits` job (community/jobs.py) a day after
they start, or after the longest limit's period if that is longer.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from aggregator.db import insert_for, rate_hits, writing
from aggregator.settings import Settings, parse_limit

from .identity import keyed

KEEP_S = 86_400  # a window is forgotten this long after it starts (longer when a limit's period is)
PURGE_EVERY_S = 3_600  # how often the job runs: rows are ~(clients seen in a day x actions), a cheap scan


def _now_s(now: float | None) -> int:
    return int(now if now is not None else datetime.now(timezone.utc).timestamp())


IPV6_PREFIX = 64  # one IPv6 host is handed a /64 to rotate through: the limit holds for all of it


def client_of(who: str) -> str:
    """Who a limit counts: an IPv6 address as its /64 (an IPv4 one inside IPv6 as itself);
    anything else (an IPv4 address, a typed e-mail address) as it is."""
    try:
        ip = ipaddress.ip_address(who)
    except ValueError:
        return who
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return who


def key_for(settings: Settings, what: str, who: str) -> str:
    """What is stored for (action, client): the action in clear, the client (client_of) as a keyed hash."""
    return f"{what[:60]}:{keyed(settings, 'rate', what, client_of(who))[:40]}"


def hit(engine: Engine, settings: Settings, what: str, who: str, limit: str, now: float | None = None) -> int:
    """Count one request by `who` against `what`; returns 0 when allowed, else the seconds to wait."""
    count, period = parse_limit(limit)
    now_s = _now_s(now)
    window = now_s - now_s % period
    with writing(engine) as conn:
        stmt = insert_for(engine)(rate_hits).values(key=key_for(settings, what, who), window_start=window, hits=1)
        stmt = stmt.on_conflict_do_update(index_elements=["key", "window_start"],
                                          set_={"hits": rate_hits.c.hits + 1}).returning(rate_hits.c.hits)
        hits = conn.execute(stmt).scalar_one()
    return 0 if hits <= count else window + period - now_s


def keep_s(settings: Settings) -> int:
    """How long windows are kept: a day, or the longest period of any `*_limit` setting."""
    periods = [parse_limit(getattr(settings, f.name))[1] for f in dataclasses.fields(settings)
               if f.name.endswith("_limit") and isinstance(getattr(settings, f.name), str)]
    return max([KEEP_S, *periods])


def purge(engine: Engine, settings: Settings, now: float | None = None) -> int:
    """Delete windows older than keep_s(settings); returns how many."""
    with writing(engine) as conn:
        return conn.execute(sa.delete(rate_hits).where(
            rate_hits.c.window_start < _now_s(now) - keep_s(settings))).rowcount
