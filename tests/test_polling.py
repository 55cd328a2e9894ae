"""When a feed is checked next: adaptive interval, ttl/Cache-Control, backoff, Retry-After."""

import random
from datetime import datetime, timedelta, timezone

from aggregator import polling
from aggregator.settings import Settings

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)
S = Settings()


def days_ago(*ds):
    return [NOW - timedelta(days=d) for d in ds]


def test_busy_feed_is_checked_often_and_quiet_feed_rarely():
    every_2h = polling.posting_interval([NOW - timedelta(hours=h) for h in range(0, 20, 2)], NOW, S)
    assert every_2h == 3600  # half the average gap
    busy = polling.posting_interval([NOW - timedelta(minutes=10 * m) for m in range(10)], NOW, S)
    weekly = polling.posting_interval(days_ago(1, 8, 15, 22), NOW, S)
    silent = polling.posting_interval(days_ago(40, 80), NOW, S)
    assert busy == S.fetch_min_interval_s  # posting every ten minutes: as often as allowed
    assert busy < weekly <= S.fetch_max_interval_s
    assert silent == S.fetch_max_interval_s
    assert polling.posting_interval([], NOW, S) == S.fetch_max_interval_s


def test_future_dates_do_not_make_a_feed_look_busy():
    future = [NOW + timedelta(days=d) for d in range(1, 10)]
    assert polling.posting_interval(future, NOW, S) == S.fetch_max_interval_s


def test_ttl_and_max_age_stretch_the_interval_within_bounds():
    rng = random.Random(1)
    _, interval = polling.after_success(NOW, 900, S, ttl_s=7200, rng=rng)
    assert interval == 7200
    _, interval = polling.after_success(NOW, 900, S, max_age_s=3600, rng=rng)
    assert interval == 3600
    _, interval = polling.after_success(NOW, 900, S, ttl_s=10 * 86400, rng=rng)
    assert interval == S.fetch_max_interval_s  # a huge ttl is capped
    when, interval = polling.after_success(NOW, 10, S, rng=rng)
    assert interval == S.fetch_min_interval_s  # never below the politeness floor
    assert abs((when - NOW).total_seconds() - interval) <= interval * polling.JITTER


def test_backoff_doubles_with_jitter_and_is_capped():
    rng = random.Random(2)
    waits = [(polling.after_error(NOW, n, S, rng=rng) - NOW).total_seconds() for n in range(1, 12)]
    base = polling.BACKOFF_BASE_S
    for n, wait in enumerate(waits[:5], start=1):
        expected = base * 2 ** (n - 1)
        assert expected * 0.89 <= wait <= expected * 1.11
    assert max(waits) <= S.fetch_max_backoff_s * 1.11
    assert waits[-1] >= S.fetch_max_backoff_s * 0.89


def test_retry_after_is_honoured():
    when = polling.after_error(NOW, 1, S, retry_after_s=3600, rng=random.Random(3))
    assert timedelta(seconds=3600) <= when - NOW <= timedelta(seconds=3600 * 1.11)
