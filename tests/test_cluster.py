"""Several `hustings worker` processes on one PostgreSQL: shared load, exactly-once fetches,
an elected leader that is replaced when killed, and claims that lapse when a worker dies.

Real worker processes (`python -m hustings worker`), a real PostgreSQL, feeds on a loopback
server that counts every request. PostgreSQL only: on SQLite one worker runs per database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from aggregator import cluster, db, feed_store
from aggregator.db import feeds, posts
from aggregator.settings import Settings

from .conftest import rss, subprocess_env, wait_for

BACKENDS = ["postgresql"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def site(tmp_path):
    settings = Settings(data_dir=tmp_path / "shared", allow_networks=("127.0.0.1/32",))
    engine = db.make_engine(settings)
    db.migrate(engine)
    yield settings, engine
    engine.dispose()


class Workers:
    def __init__(self, tmp_path: Path, settings: Settings):
        self.tmp_path, self.settings, self.procs = tmp_path, settings, {}

    def start(self, name: str, **env: str) -> subprocess.Popen:
        data_dir = self.tmp_path / f"worker-{name}"  # each worker host has its own data directory
        environ = subprocess_env(self.settings, HUSTINGS_DATA_DIR=str(data_dir),
                                 HUSTINGS_DATABASE_URL=self.settings.resolved_database_url,
                                 HUSTINGS_ALLOW_NETWORKS="127.0.0.1/32", HUSTINGS_LOG_LEVEL="INFO", **env)
        log = open(self.tmp_path / f"worker-{name}.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "hustings", "worker"], cwd=ROOT, env=environ,
                                stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.tmp_path / f"worker-{name}.log").read_text()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def workers(tmp_path, site):
    w = Workers(tmp_path, site[0])
    yield w
    w.stop_all()


def fetched(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(feeds)
                            .where(feeds.c.last_success_at.is_not(None))).scalar()


def add_feeds(server, engine, n: int, prefix: str = "f") -> list[str]:
    paths = []
    for i in range(n):
        path = f"/{prefix}{i}.xml"
        server.route(path, rss([{"title": f"Post {prefix}{i}", "link": server.url(f"/p/{prefix}{i}"), "guid": f"{prefix}{i}"}]))
        feed_store.add_feed(engine, server.url(path))
        paths.append(path)
    return paths


def test_two_workers_fetch_each_of_200_feeds_exactly_once(server, site, workers):
    settings, engine = site
    paths = add_feeds(server, engine, 200)
    workers.start("a", HUSTINGS_DISPATCH_EVERY_S="1")
    workers.start("b", HUSTINGS_DISPATCH_EVERY_S="1")
    wait_for(lambda: fetched(engine) == 200, 120, "200 feeds fetched")
    time.sleep(2.5)  # two more dispatch rounds on each worker: nothing may be fetched again
    assert sorted(server.hits(p) for p in paths) == [1] * 200, "a feed was fetched twice or not at all"
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(posts)).scalar() == 200
        assert conn.execute(sa.select(sa.func.count()).select_from(feeds).where(feeds.c.claimed_by != "")).scalar() == 0
    alive = {w["pid"] for w in cluster.alive(engine, within=_minutes(1))}
    assert {workers.procs["a"].pid, workers.procs["b"].pid} <= alive
    assert cluster.leader(engine, _minutes(1))["pid"] in alive


def test_killing_the_leader_hands_the_lead_to_another_worker_within_two_intervals(server, site, workers):
    settings, engine = site
    interval = 3
    a = workers.start("a", HUSTINGS_DISPATCH_EVERY_S=str(interval))
    wait_for(lambda: (cluster.leader(engine, _minutes(1)) or {}).get("pid") == a.pid, 30, "worker a to lead")
    b = workers.start("b", HUSTINGS_DISPATCH_EVERY_S=str(interval))
    wait_for(lambda: b.pid in {w["pid"] for w in cluster.alive(engine, _minutes(1))}, 30, "worker b to beat")
    assert cluster.leader(engine, _minutes(1))["pid"] == a.pid  # b does not take what a holds
    os.kill(a.pid, signal.SIGKILL)
    a.wait(timeout=10)
    killed = time.monotonic()
    wait_for(lambda: (cluster.leader(engine, _minutes(1)) or {}).get("pid") == b.pid, 4 * interval,
             "worker b to take the lead")
    took = time.monotonic() - killed
    assert took <= 2 * interval + 1, f"the lead passed after {took:.1f} s, more than two dispatch intervals"
    [path] = add_feeds(server, engine, 1, prefix="late")  # added after the kill: the survivor fetches it
    wait_for(lambda: server.hits(path) == 1 and fetched(engine) == 1, 4 * interval, "the new feed to be fetched")


def test_a_killed_workers_claims_lapse_and_another_worker_fetches_those_feeds(server, site, workers):
    settings, engine = site
    paths = add_feeds(server, engine, 6)
    slow = {}
    for path in paths:  # the first worker's fetches hang: it is killed holding its claims
        slow[path] = server.routes[path]
        server.route(path, handler=lambda h: time.sleep(30))
    a = workers.start("a", HUSTINGS_DISPATCH_EVERY_S="1", HUSTINGS_CLAIM_LEASE_S="3")

    def claimed_by_a():
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(feeds)
                                .where(feeds.c.claimed_by.like(f"%:{a.pid}:%"))).scalar() == 6

    wait_for(claimed_by_a, 30, "worker a to claim the six feeds")
    os.kill(a.pid, signal.SIGKILL)
    a.wait(timeout=10)
    server.routes.update(slow)  # the feeds answer again
    workers.start("b", HUSTINGS_DISPATCH_EVERY_S="1", HUSTINGS_CLAIM_LEASE_S="3")
    wait_for(lambda: fetched(engine) == 6, 60, "worker b to fetch the dead worker's feeds")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(posts)).scalar() == 6  # nothing twice
        assert conn.execute(sa.select(sa.func.count()).select_from(feeds).where(feeds.c.claimed_by != "")).scalar() == 0


def _minutes(n: int):
    from datetime import timedelta

    return timedelta(minutes=n)
