"""A site with mail: the real app and database, settings that send to a loopback SMTP server,
and helpers the mail, digest and subscription tests share."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
import webtest

from aggregator import db, feed_store, post_store
from aggregator.db import outbox, subscribers
from aggregator.models import Post
from aggregator.settings import Settings
from community import mailer, subscriptions
from web.app import make_app

SITE_URL = "https://hustings.example"


def mail_settings(data_dir, port: int, **extra) -> Settings:
    values = dict(data_dir=data_dir, allow_networks=("127.0.0.1/32",), site_url=SITE_URL, smtp_host="127.0.0.1",
                  smtp_port=port, smtp_security="none", mail_from="Hustings digest <digest@hustings.example>",
                  mail_rate_per_s=0, page_cache_s=0)
    values.update(extra)
    return Settings(**values)


class MailSite:
    def __init__(self, data_dir, smtp, *, web: bool = True, **extra):
        self.smtp = smtp
        self.settings = mail_settings(data_dir, smtp.port, **extra)
        self.engine = db.make_engine(self.settings)
        db.migrate(self.engine)
        self.app = make_app(self.settings) if web else None
        self.feeds = {}

    def blog(self, title: str, category: str = "", posts: list[str] = (), hours_ago: float = 1.0):
        feed, _ = feed_store.add_feed(self.engine, f"http://127.0.0.1:9/{len(self.feeds)}/feed.xml", title=title,
                                      site_url=f"http://127.0.0.1:9/{len(self.feeds)}/", category=category)
        self.feeds[title] = feed
        now = datetime.now(timezone.utc)
        post_store.save_posts(self.engine, feed, [
            Post(feed.id, f"g{i}", f"http://127.0.0.1:9/{feed.id}/p/{i}", t, f"<p>{t}, in full.</p>",
                 published=now - timedelta(hours=hours_ago + i), identity=f"g:{i}", summary=f"About {t.lower()}.")
            for i, t in enumerate(posts)])
        return feed

    def reader(self) -> webtest.TestApp:
        return webtest.TestApp(self.app)

    def deliver(self, **kw) -> mailer.Report:
        return mailer.deliver(self.engine, self.settings, **kw)

    def confirmed(self, *emails: str, frequency: str = "daily") -> list[subscriptions.Subscriber]:
        for e in emails:
            subscriptions.add(self.engine, self.settings, e, frequency=frequency, confirmed=True)
        return [subscriptions.by_email(self.engine, e) for e in emails]

    def rows(self, *where) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(outbox).where(*where).order_by(outbox.c.id))]

    def subscriber(self, email: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(subscribers).where(subscribers.c.email == email)).first()
        return dict(row._mapping) if row is not None else None

    def close(self) -> None:
        self.engine.dispose()


def token_of(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def link_in(message, path: str) -> str:
    """The first link to `path` on this site in a message's plain text."""
    body = message.get_body(("plain",)).get_content()
    found = re.search(re.escape(SITE_URL + path) + r"\?token=[0-9a-f.]+", body)
    assert found, f"no {path} link in:\n{body}"
    return found.group(0)
