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


# --- item 2: strangers cannot lock a moderator out; guessing stays slow; the moderator sees it ------------


def wrong(client, times: int, status=401, email=EMAIL, **kwargs) -> None:
    for _ in range(times):
        sign_in(client, email=email, password="a wrong guess at it", status=status, **kwargs)


def test_strangers_guessing_cannot_lock_out_a_moderator_on_a_known_browser(site):
    owner = site.client(CLIENT_B)
    sign_in(owner)  # the owner's browser has signed in before: it holds a device cookie
    owner.post("/logout", {"csrf_token": token_of(owner.get("/moderate"))}, status=303)
    attacker = site.client(CLIENT_A)
    wrong(attacker, 10)
    wrong(attacker, 5, status=429)  # guessing from one client is held up after login_limit
    res = sign_in(attacker, status=429)  # even with the right password: the limit comes first
    assert 0 < int(res.headers["Retry-After"]) <= 900
    # The owner, from another client, with the device cookie: signs in at once.
    res = sign_in(owner)
    assert res.headers["Location"] == "/moderate"
    assert accounts.load_session(site.engine, owner.cookies[security.SESSION_COOKIE]) is not None
    assert security.DEVICE_COOKIE in owner.cookies
    # ...and from the attacker's own address too (a shared network): the browser is what counts.
    owner.post("/logout", {"csrf_token": token_of(owner.get("/moderate"))}, status=303)
    sign_in(owner, extra_environ={"REMOTE_ADDR": CLIENT_A})


def test_strangers_together_are_throttled_per_account_but_the_owner_is_not(site):
    owner = site.client(CLIENT_B)
    sign_in(owner)
    wrong(site.client("192.0.2.1"), 10)
    # With the owner's first sign-in (no device cookie yet, so counted with strangers) that is 20:
    # login_account_limit is used up.
    wrong(site.client("192.0.2.2"), 9)
    newcomer = site.client("192.0.2.3")
    sign_in(newcomer, status=429)  # a stranger without the cookie, right password or not
    wrong(newcomer, 2, status=429)
    forged = site.client("192.0.2.4")
    forged.set_cookie(security.DEVICE_COOKIE, "A" * 22 + "." + "0" * 32)  # not signed by the site
    sign_in(forged, status=429)
    assert sign_in(owner).headers["Location"] == "/moderate"  # the owner's browser is not held up
    # Another moderator's address is not held up by guesses at this one.
    accounts.add_moderator(site.engine, "sam@hustings.example", PASSWORD)
    sign_in(site.client("192.0.2.5"), email="sam@hustings.example")


def test_the_device_cookie_counts_only_its_own_attempts(site):
    owner = site.client(CLIENT_B)
    sign_in(owner)
    wrong(owner, 10)  # the owner's own typos, from their browser
    wrong(owner, 1, status=429)
    # ...which hold up no one else: a stranger's budget is untouched by them.
    sign_in(site.client(CLIENT_A))


def test_the_device_cookie_names_the_moderator_without_holding_their_address(site):
    client = site.client(CLIENT_B)
    res = sign_in(client)
    line = cookie_line(res, security.DEVICE_COOKIE)
    value = line.split(";")[0].split("=", 1)[1]
    assert EMAIL not in line.lower() and "whitfield" not in value.lower()
    attrs = line.lower()
    assert "httponly" in attrs and "samesite=strict" in attrs and "path=/login" in attrs
    assert int(re.search(r"max-age=(\d+)", attrs).group(1)) >= 180 * 86400
    from community import signin

    assert signin.known_device(site.settings, EMAIL.upper(), value)
    assert signin.known_device(site.settings, "someone.else@hustings.example", value) is None
    # Signing in again keeps the same device (its count carries on); a second moderator on the
    # same browser gets an entry of their own beside it.
    accounts.add_moderator(site.engine, "sam@hustings.example", PASSWORD)
    client.post("/logout", {"csrf_token": token_of(client.get("/moderate"))}, status=303)
    again = sign_in(client, email="sam@hustings.example")
    both = cookie_line(again, security.DEVICE_COOKIE).split(";")[0].split("=", 1)[1].strip('"')
    assert signin.known_device(site.settings, EMAIL, both) == signin.known_device(site.settings, EMAIL, value)
    assert signin.known_device(site.settings, "sam@hustings.example", both)


def test_the_moderator_sees_failed_attempts_after_signing_in(site):
    from community.identity import ip_hash

    owner = site.client(CLIENT_B)
    sign_in(owner)
    owner.post("/logout", {"csrf_token": token_of(owner.get("/moderate"))}, status=303)
    wrong(site.client(CLIENT_A), 10)
    wrong(site.client(CLIENT_A), 3, status=429)  # refused by the limit: not checked, not listed
    wrong(owner, 1)  # the owner's own typo, from their known browser
    sign_in(owner)
    page = owner.get("/moderate")
    text = " ".join(page.text.split())
    assert "Failed sign-ins on your account" in text
    assert "11 failed sign-ins with your address in the last 30 days" in text
    assert text.count("not one you have signed in on") == 10 and text.count("one you have signed in on") == 11
    assert ip_hash(site.settings, CLIENT_A)[:10] in text  # the client, hashed and cut short
    assert CLIENT_A not in page.text and CLIENT_B not in page.text
    # Another moderator sees none of them.
    accounts.add_moderator(site.engine, "sam@hustings.example", PASSWORD)
    other = site.client("192.0.2.9")
    sign_in(other, email="sam@hustings.example")
    assert "None in the last 30 days" in " ".join(other.get("/moderate").text.split())


def test_failed_attempts_are_forgotten_after_thirty_days_by_a_scheduled_job(site):
    from datetime import timedelta

    from aggregator.db import utcnow
    from community import signin
    from community.jobs import jobs

    old = utcnow() - timedelta(days=31)
    signin.record_failure(site.engine, site.settings, EMAIL, CLIENT_A, known=False, now=old)
    signin.record_failure(site.engine, site.settings, EMAIL, CLIENT_A, known=False)
    assert signin.recent_failures(site.engine, site.settings, EMAIL).count == 1  # the old one is not shown
    job = next(j for j in jobs(site.engine, site.settings) if j.id == "purge_sign_in_failures")
    assert job.func(*job.args) == 1
    assert len(all_rows(site.engine, {"sign_in_failures"})["sign_in_failures"]) == 1


def test_unknown_addresses_are_recorded_like_known_ones(site):
    """The same work for an address that is no moderator's: the answer's timing says nothing."""
    wrong(site.client(CLIENT_A), 2, email="nobody@hustings.example")
    assert len(all_rows(site.engine, {"sign_in_failures"})["sign_in_failures"]) == 2
