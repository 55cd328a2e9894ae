"""When to check a feed next: pure functions of what the last fetch told us.

* After a success, the interval follows how often the feed posts (CommaFeed's
  rule, which suits blogs that post a few times a week), is stretched to honour
  the feed's own ``<ttl>`` and the server's ``Cache-Control``/``Expires``, and is
  kept within [fetch_min_interval_s, fetch_max_interval_s].
* After an error, the wait doubles with each consecutive failure (exponential
  backoff) up to fetch_max_backoff_s; a 429/503 ``Retry-After`` is honoured.
* Every wait gets +-10% jitter so feeds added together do not stay in lockstep.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Iterable

from .settings import Settings

JITTER = 0.10  # +-10% on every interval
BACKOFF_BASE_S = 300  # first retry after an error: five minutes (before jitter)
DAY = 86_400


def _jitter(seconds: float, rng: random.Random) -> float:
    return seconds * (1 + rng.uniform(-JITTER, JITTER))


def posting_interval(post_dates: Iterable[datetime], now: datetime, settings: Settings) -> int:
    """Seconds between checks, from when the feed's latest posts appeared.

    Inactive for 30 days: the maximum. 14 days: half of it. 7 days: a quarter.
    Otherwise half the average gap between recent posts, within the bounds.
    """
    lo, hi = settings.fetch_min_interval_s, settings.fetch_max_interval_s
    dates = sorted((d for d in post_dates if d is not None and d <= now), reverse=True)[:20]
    if not dates:
        return hi
    since_last = (now - dates[0]).total_seconds()
    if since_last >= 30 * DAY:
        return hi
    if since_last >= 14 * DAY:
        return max(lo, hi // 2)
    if since_last >= 7 * DAY:
        return max(lo, hi // 4)
    if len(dates) < 2:
        return max(lo, hi // 4)
    average_gap = (dates[0] - dates[-1]).total_seconds() / (len(dates) - 1)
    return int(min(hi, max(lo, average_gap / 2)))


def after_success(
    now: datetime,
    interval_s: int,
    settings: Settings,
    *,
    ttl_s: int | None = None,
    max_age_s: int | None = None,
    rng: random.Random | None = None,
) -> tuple[datetime, int]:
    """(next check time, interval) after a 200 or 304."""
    rng = rng or random
    wanted = max(interval_s, ttl_s or 0, max_age_s or 0)
    interval = int(min(settings.fetch_max_interval_s, max(settings.fetch_min_interval_s, wanted)))
    return now + timedelta(seconds=_jitter(interval, rng)), interval


def after_error(
    now: datetime,
    error_count: int,
    settings: Settings,
    *,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> datetime:
    """Next check time after the error_count-th consecutive failure (1 = first)."""
    rng = rng or random
    wait = min(settings.fetch_max_backoff_s, BACKOFF_BASE_S * 2 ** max(0, min(error_count - 1, 30)))
    if retry_after_s is not None:
        # The server said when to come back: do not come back sooner.
        return now + timedelta(seconds=max(retry_after_s, 1) * (1 + rng.uniform(0, JITTER)))
    return now + timedelta(seconds=_jitter(wait, rng))
