"""Issue 16, the rest: refused ballots are all counted, the site never aggregates itself,
the RSS channel links to the site, and the paper cuts.

WebTest on the real app over a real migrated database (SQLite, and PostgreSQL too); each
client is a TestApp with its own cookies and its own REMOTE_ADDR.
"""

from __future__ import annotations

import re

import pytest
import webtest

from aggregator import db, feed_store, post_store
from aggregator.models import Post
from aggregator.settings import Settings
from community.polls import ballot_store
from community.polls import store as poll_store
from web import security
from web.app import make_app

SITE_URL = "https://hustings.example"
MOD = "mod@hustings.example"


class Site:
    def __init__(self, tmp_path, **overrides):
        overrides.setdefault("site_url", SITE_URL)
        self.settings = Settings(data_dir=tmp_path / "data", page_cache_s=0, **overrides)
        self.engine = db.make_engine(self.settings)
        db.migrate(self.engine)
        self.app = make_app(self.settings)

    def client(self, ip: str = "198.51.100.7") -> webtest.TestApp:
        web = webtest.TestApp(self.app, extra_environ={"REMOTE_ADDR": ip})
        web.get("/login")  # a page with a form: the reader cookie is set
        return web

    def token(self, web: webtest.TestApp) -> str:
        return security.reader_csrf(self.settings, web.cookies[security.READER_COOKIE])

    def post(self, title: str = "Saving the library", url: str = "http://127.0.0.1:9/p/1", html: str = "<p>In full.</p>"):
        feed, _ = feed_store.add_feed(self.engine, "http://127.0.0.1:9/feed.xml", title="Valley Branch")
        post_store.save_posts(self.engine, feed, [Post(feed.id, url, url, title, html, identity=url)])
        return [p for p in post_store.list_posts(self.engine) if p["title"] == title][0]


@pytest.fixture
def site(tmp_path) -> Site:
    return Site(tmp_path)


# --- item 7: ballots refused by the rate limit are counted as refused ---------------------------------


def test_ballots_refused_by_the_rate_limit_are_in_the_methodology_box(tmp_path):
    site = Site(tmp_path, vote_limit="2/1m")
    record = poll_store.create_poll(site.engine, question="Which bus route first?", options=["The 42", "The 7"], visibility="always",
                                    created_by=MOD)
    option = str(record.poll.options[0].id)
    statuses = []
    for n in range(4):  # one address, four readers (cookies cleared): the limit is per address
        web = site.client("203.0.113.9")
        res = web.post(f"/polls/{record.id}/vote", [("csrf_token", site.token(web)), ("option", option)],
                       expect_errors=True)
        statuses.append(res.status_int)
    assert statuses == [303, 303, 429, 429]
    assert res.headers["Retry-After"].isdigit()
    # The refusal keeps the poll and the reader's choice, and says why.
    assert "Your ballot was not counted: too many attempts" in res.text
    assert re.search(rf'value="{option}"[^>]*checked', res.text)

    assert ballot_store.rejection_counts(site.engine, record.id) == {"rate_limited": 2}
    results = site.client().get(f"/polls/{record.id}/results")
    box = " ".join(results.text.split())
    assert "2 ballots not counted: 2 sent too fast from one address" in box
