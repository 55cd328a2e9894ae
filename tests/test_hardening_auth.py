"""Signing in, under attack (issue 16): the redirect after signing in stays on this site, the
Secure flag believes only trusted proxies, unknown addresses cost no extra time on a
process's first sign-in, and what rate limits count is stored hashed and forgotten.

WebTest on the real app over a real migrated database (SQLite, and PostgreSQL too); each
client is a TestApp with its own cookies and its own REMOTE_ADDR.
"""

from __future__ import annotations

import re
import urllib.parse

import pytest
import sqlalchemy as sa
import webtest
from argon2 import PasswordHasher

from aggregator import db, feed_store, post_store
from aggregator.db import sessions
from aggregator.models import Post
from aggregator.settings import Settings
from community import accounts
from web import security
from web.app import make_app

EMAIL = "jo.whitfield@hustings.example"
PASSWORD = "correct horse battery staple"
CLIENT_A = "198.51.100.7"
CLIENT_B = "203.0.113.20"
PROXY = "10.0.0.5"


@pytest.fixture(autouse=True)
def quick_passwords(monkeypatch):
    """argon2id with the smallest cost: these tests sign in often, and what they test is
    not the hash (tests/test_community.py checks the real parameters)."""
    monkeypatch.setattr(accounts, "_hasher", lambda: PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


class Site:
    def __init__(self, tmp_path, **overrides):
        self.settings = Settings(data_dir=tmp_path / "data", site_url="https://hustings.example", page_cache_s=0,
                                 **overrides)
        self.engine = db.make_engine(self.settings)
        db.migrate(self.engine)
        accounts.add_moderator(self.engine, EMAIL, PASSWORD)
        feed, _ = feed_store.add_feed(self.engine, "http://127.0.0.1:9/feed.xml", title="Valley Branch")
        post_store.save_posts(self.engine, feed, [Post(feed.id, "g1", "http://127.0.0.1:9/p/1", "Saving the library",
                                                       "<p>In full.</p>", identity="g:1")])
        self.post_id = post_store.list_posts(self.engine)[0]["id"]
        self.app = make_app(self.settings)

    def client(self, ip: str = CLIENT_A, **environ) -> webtest.TestApp:
        return webtest.TestApp(self.app, extra_environ={"REMOTE_ADDR": ip, **environ})

    def session_rows(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(sessions)).scalar_one()


@pytest.fixture
def site(tmp_path):
    s = Site(tmp_path)
    yield s
    s.engine.dispose()


def token_of(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def sign_in(client, email=EMAIL, password=PASSWORD, status=303, next_path=None, page="/login", **kwargs):
    form_page = client.get(page, **kwargs)
    fields = {"email": email, "password": password, "csrf_token": token_of(form_page)}
    if next_path is not None:
        fields["next"] = next_path
    return client.post("/login", fields, status=status, **kwargs)


def cookie_line(res, name: str) -> str:
    return next(c for c in res.headers.getall("Set-Cookie") if c.startswith(name + "="))


# --- item 4: the redirect after signing in --------------------------------------------------------------

CRAFTED = [
    "/\t/evil.example", "/\t/evil.example/path", "/\\evil.example", "\\\\evil.example", "//evil.example",
    "///evil.example", "https://evil.example", "http:evil.example", "HTTPS://evil.example", "javascript:alert(1)",
    " javascript:alert(1)", "%2F%2Fevil.example", "/\n/evil", "/\r/evil", "/\x0b/evil", "/\x00/evil", "/\r\n/evil",
    "\t//evil.example", " /x", "/x\n", "/\\/evil.example", "/\t\\evil.example", "evil.example", "",
    "/" + "x" * 2000, "/caf\u00e9", "/a b", "/\x7f/evil",
]


@pytest.mark.parametrize("crafted", CRAFTED)
def test_sign_in_never_redirects_off_the_site(site, crafted):
    client = site.client()
    before = site.session_rows()
    res = sign_in(client, next_path=crafted)
    assert res.headers["Location"] == "/moderate"
    assert site.session_rows() == before + 1  # this sign-in's session only: no orphan left by a failure
    assert accounts.load_session(site.engine, client.cookies[security.SESSION_COOKIE]) is not None


@pytest.mark.parametrize("crafted", CRAFTED)
def test_the_sign_in_form_carries_only_a_same_site_next(site, crafted):
    page = site.client().get("/login?next=" + urllib.parse.quote(crafted, safe=""))
    assert re.search(r'name="next" value="([^"]*)"', page.text).group(1) == "/moderate"


@pytest.mark.parametrize("query", ["/%09/evil.example", "/%09/host/path", "%2F%2Fevil.example", "/%5Cevil.example",
                                   "/%0a/evil", "/%0d/evil", "/%0b/evil", "//evil.example", "javascript:alert(1)"])
def test_next_from_the_address_bar_is_checked_after_decoding(site, query):
    """`/login?next=/%09/host/path` is what the attacker links to: the form must not carry the tab on."""
    client = site.client()
    page = client.get("/login?next=" + query)
    assert re.search(r'name="next" value="([^"]*)"', page.text).group(1) == "/moderate"
    res = client.post("/login", {"email": EMAIL, "password": PASSWORD, "csrf_token": token_of(page),
                                 "next": urllib.parse.unquote(query)}, status=303)
    assert res.headers["Location"] == "/moderate"


@pytest.mark.parametrize("good", ["/moderate/queue", "/moderate/blogs/3?x=1&y=%20z#top", "/posts/1", "/",
                                  "/search?q=%22council+tax%22", "/%09/stays-a-path-here"])
def test_same_site_paths_are_kept(site, good):
    res = sign_in(site.client(), next_path=good)
    assert res.headers["Location"] == good


@pytest.mark.parametrize("crafted", ["/\t/evil.example", "//evil.example", "/\\evil.example", "https://evil.example"])
def test_moderator_forms_next_stays_on_the_site_too(site, crafted):
    """The moderators' forms carry a `next` of their own (web/moderate.py): the same rule."""
    post_id = site.post_id
    client = site.client()
    sign_in(client)
    page = client.get("/moderate")
    res = client.post(f"/moderate/posts/{post_id}/feature", {"csrf_token": token_of(page), "next": crafted},
                      status=303)
    assert res.headers["Location"] == f"/posts/{post_id}"
    res = client.post(f"/moderate/posts/{post_id}/unfeature", {"csrf_token": token_of(page), "next": "/moderate"},
                      status=303)
    assert res.headers["Location"] == "/moderate"


# --- item 8: the Secure flag, and the first sign-in's time -----------------------------------------------


@pytest.mark.parametrize("trusted, remote, forwarded, secure", [
    ((), CLIENT_A, "https", False),  # anyone can send the header: not believed
    ((f"{PROXY}/32",), CLIENT_A, "https", False),  # a proxy is trusted, but this is not it
    ((f"{PROXY}/32",), PROXY, "https", True),  # our proxy says the client came over HTTPS
    ((f"{PROXY}/32",), PROXY, "http", False),
    ((f"{PROXY}/32",), PROXY, "http, https", True),  # the last value is the nearest proxy's
    (("10.0.0.0/8",), PROXY, "", False),
])
def test_secure_cookies_believe_x_forwarded_proto_only_from_trusted_proxies(tmp_path, trusted, remote, forwarded,
                                                                           secure):
    site = Site(tmp_path, trusted_proxies=trusted)
    headers = {"X-Forwarded-Proto": forwarded} if forwarded else {}
    client = site.client(remote)
    page = client.get("/login", headers=headers)
    reader = cookie_line(page, security.READER_COOKIE)
    assert ("; secure" in reader.lower()) is secure
    # WebTest speaks plain HTTP to the app, so it would not send a Secure cookie back: as the browser
    # on the proxy's far side, send it anyway.
    client.set_cookie(security.READER_COOKIE, reader.split(";")[0].split("=", 1)[1])
    res = client.post("/login", {"email": EMAIL, "password": PASSWORD, "csrf_token": token_of(page)},
                      headers=headers, status=303)
    assert ("; secure" in cookie_line(res, security.SESSION_COOKIE).lower()) is secure
    site.engine.dispose()


def test_https_itself_still_makes_cookies_secure(site):
    res = sign_in(site.client(), extra_environ={"wsgi.url_scheme": "https"})
    assert "; secure" in cookie_line(res, security.SESSION_COOKIE).lower()


def test_the_dummy_hash_is_made_when_the_app_is_built(tmp_path, monkeypatch):
    """An unknown address is checked against a dummy hash; made on first use, it made that
    first sign-in ~4x slower than the rest, which told an observer the address was unknown."""
    monkeypatch.setattr(accounts, "_DUMMY", {})
    site = Site(tmp_path)
    assert len(accounts._DUMMY) == 1  # made by make_app, with the parameters passwords use
    made = []

    class Counting(PasswordHasher):
        def hash(self, *args, **kwargs):
            made.append(1)
            return super().hash(*args, **kwargs)

    monkeypatch.setattr(accounts, "_hasher", lambda: Counting(time_cost=1, memory_cost=1024, parallelism=1))
    sign_in(site.client(), email="nobody@hustings.example", status=401)
    assert made == []  # nothing hashed on the way: the unknown address costs one verify, like a wrong password
    site.engine.dispose()


# --- item 6: no raw address or typed e-mail is stored, and windows are forgotten on a schedule -------------


def all_rows(engine, tables=None) -> dict[str, list[str]]:
    """Every row of every table (or the named ones), each as one string of its values."""
    out = {}
    with engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            if tables is None or table.name in tables:
                out[table.name] = [" ".join(str(v) for v in row) for row in conn.execute(sa.select(table))]
    return out


def test_rate_limits_store_no_raw_address_or_typed_email(tmp_path):
    site = Site(tmp_path, login_limit="6/15m", recommend_limit="2/1m")
    stranger = "Stranger.Person@Elsewhere.example"
    client = site.client(CLIENT_A)
    for email in (stranger, EMAIL.upper()):
        for _ in range(3):
            sign_in(client, email=email, password="not the password at all", status=401)
    sign_in(client, email=stranger, password="not the password at all", status=429)
    page = client.get(f"/posts/{site.post_id}")
    for status in (303, 303, 429):  # a rate-limited action
        client.post(f"/posts/{site.post_id}/recommend", {"csrf_token": token_of(page)}, status=status)
    rows = all_rows(site.engine)
    assert rows["rate_hits"], "the limits counted something"
    for table, values in rows.items():
        for value in values:
            assert CLIENT_A not in value, (table, value)
            assert stranger.lower() not in value.lower(), (table, value)
    for value in rows["rate_hits"]:
        assert EMAIL not in value.lower(), value  # the moderator's own address, as typed at sign-in
    site.engine.dispose()


def test_rate_limit_windows_are_purged_by_a_scheduled_job(site):
    from community import ratelimits
    from community.jobs import jobs

    job = next(j for j in jobs(site.engine, site.settings) if j.id == "purge_rate_hits")
    assert job.every_s <= 3600
    now = 10_000_000
    ratelimits.hit(site.engine, site.settings, "login", CLIENT_A, "10/15m", now=now - 2 * 86400)
    ratelimits.hit(site.engine, site.settings, "login", CLIENT_A, "10/15m", now=now - 600)
    assert len(all_rows(site.engine, {"rate_hits"})["rate_hits"]) == 2
    assert ratelimits.purge(site.engine, site.settings, now=now) == 1
    assert len(all_rows(site.engine, {"rate_hits"})["rate_hits"]) == 1
    job.func(*job.args)  # as the worker runs it, on today's clock: both are long gone
    assert all_rows(site.engine, {"rate_hits"})["rate_hits"] == []


def test_a_limit_longer_than_a_day_keeps_its_windows(tmp_path):
    from community import ratelimits

    site = Site(tmp_path, submit_limit="10/2d")
    assert ratelimits.keep_s(site.settings) == 2 * 86400
    site.engine.dispose()


def test_privacy_page_says_what_is_kept_for_how_long_and_why(site):
    text = " ".join(site.client().get("/privacy").text.split())
    for said in ("hustings_reader", "365 days", "ballot is a political opinion", "keyed hash",
                 "salted with the day", "deleted 24 hours after it starts", "contact e-mail address",
                 "never store your IP address"):
        assert said in text, said
