"""The community's scheduled jobs, handed to the worker's scheduler by the command."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from aggregator.scheduler import Job
from aggregator.settings import Settings

from . import notices, ratelimits, signin
from .campaigns import backing as campaign_backing
from .mailer import jobs as mail_jobs
from .polls import store as poll_store

SALT_EVERY_S = 300  # closed polls' address salts are deleted within five minutes of closing


def jobs(engine: Engine, settings: Settings) -> list[Job]:
    return [
        # Feed events become log lines and bloggers' messages within a dispatch interval.
        Job("notices", notices.deliver, settings.dispatch_every_s, (engine, settings)),
        Job("expire_poll_salts", poll_store.expire_salts, SALT_EVERY_S, (engine,)),
        # Mail: deliver the outbox, send each digest at its time, forget departed addresses.
        *mail_jobs(engine, settings),
        # Rate-limit windows (keyed hashes of addresses) are forgotten after a day.
        Job("purge_rate_hits", ratelimits.purge, ratelimits.PURGE_EVERY_S, (engine, settings)),
        # Moderators' failed sign-ins are shown for 30 days, then forgotten.
        Job("purge_sign_in_failures", signin.purge, signin.PURGE_EVERY_S, (engine,)),
        # Campaign backers' addresses never confirmed, or that left, are deleted after a week.
        Job("forget_campaign_followers", campaign_backing.forget, campaign_backing.FORGET_EVERY_S, (engine,)),
    ]
