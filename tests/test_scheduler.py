"""The worker's scheduler: the jobs it registers, the dispatcher, and the single-scheduler lock."""

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from aggregator import feed_store, fetch_history, scheduler
from aggregator.errors import HustingsError
from community.jobs import jobs as community_jobs

from .conftest import rss


def test_build_registers_jobs_with_one_instance_and_coalescing(engine, settings):
    sched = scheduler.build(engine, settings, BackgroundScheduler(timezone="UTC"), jobs=community_jobs(engine, settings))
    jobs = {job.id: job for job in sched.get_jobs()}
    assert set(jobs) == {"cluster", "dispatch", "crawl", "prune_history", "notices", "expire_poll_salts",
                         "deliver_mail", "send_digest", "forget_subscribers",
                         "purge_rate_hits", "purge_sign_in_failures", "forget_campaign_followers"}
    for job in jobs.values():
        assert job.max_instances == 1 and job.coalesce is True
    assert jobs["dispatch"].trigger.interval.total_seconds() == settings.dispatch_every_s


def test_dispatch_fetches_only_due_feeds(server, engine, settings):
    due = server.route("/due", rss([{"title": "A", "link": server.url("/a"), "guid": "a"}]))
    later = server.route("/later", rss([{"title": "B", "link": server.url("/b"), "guid": "b"}]))
    feed_store.add_feed(engine, due)
    feed_store.add_feed(engine, later)
    outcomes = scheduler.dispatch(engine, settings)
    assert {o.url for o in outcomes} == {due, later}
    assert scheduler.dispatch(engine, settings) == []  # both now scheduled in the future
    called = []
    feed_store.add_feed(engine, server.route("/new", rss([])))
    scheduler.dispatch(engine, settings, after=lambda: called.append(1))
    assert called == [1]


def test_only_one_scheduler_per_data_dir(settings):
    with scheduler.SchedulerLock(settings):
        with pytest.raises(HustingsError, match="already runs"):
            with scheduler.SchedulerLock(settings):
                pass
    with scheduler.SchedulerLock(settings):  # released on exit
        pass


def test_prune_keeps_recent_history(engine, server, settings):
    url = server.route("/f", rss([]))
    feed, _ = feed_store.add_feed(engine, url)
    scheduler.dispatch(engine, settings)
    assert scheduler.prune_history(engine) == 0
    assert len(fetch_history.fetch_history(engine, feed.id)) == 1
