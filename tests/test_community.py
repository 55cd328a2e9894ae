"""Readers and moderators: CSRF, recommendations (once per reader, under concurrency),
sessions, sign-in limits and the public moderation log.

Concurrency is tested over a real socket (waitress on 127.0.0.1) with many threads,
because the guarantee is the database's unique constraint, not anything in one process.
"""

from __future__ import annotations

import http.client
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
import webtest

from aggregator import db, feed_store, post_store
from aggregator.db import recommendations, sessions
from aggregator.models import Post
from aggregator.settings import Settings
from community import accounts, ratelimits
from community.moderation_log import log_action
from web import security
from web.app import make_app
from web.server import serve_threaded

PASSWORD = "a long enough password"


def make_site(data_dir: Path, **settings) -> tuple[Settings, object, int]:
    st = Settings(data_dir=data_dir, **settings)
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = db.make_engine(st)
    db.migrate(engine)
    feed, _ = feed_store.add_feed(engine, "http://127.0.0.1/feed.xml", title="Valley Branch")
    now = datetime.now(timezone.utc)
    post_store.save_posts(engine, feed, [Post(feed.id, "g1", "http://127.0.0.1/p/1", "Saving the library",
                                         "<p>Why the library matters.</p>", published=now, identity="g:1")])
    accounts.add_moderator(engine, "mod@example.org", PASSWORD)
    return st, engine, post_store.list_posts(engine)[0]["id"]


@pytest.fixture
def site(tmp_path):
    st, engine, post_id = make_site(tmp_path / "data")
    app = webtest.TestApp(make_app(st))
    return st, engine, post_id, app


def token_of(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def recommendation_count(engine, post_id: int) -> tuple[int, int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(recommendations)
                            .where(recommendations.c.post_id == post_id)).scalar()
    return rows, post_store.get_post(engine, post_id)["recommendations"]


# --- CSRF -------------------------------------------------------------------------------------


def test_forms_carry_the_readers_own_token_never_the_placeholder(site):
    st, engine, post_id, app = site
    page = app.get(f"/posts/{post_id}")
    assert security.CSRF_PLACEHOLDER not in page.text
    token = token_of(page)
    cookie = app.cookies[security.READER_COOKIE]
    assert token == security.reader_csrf(st, cookie)
    # Another reader gets another token from the same cached page.
    other = webtest.TestApp(app.app).get(f"/posts/{post_id}")
    assert token_of(other) != token and other.headers["ETag"] != page.headers["ETag"]
    set_cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "samesite=lax" in set_cookie.lower()


@pytest.mark.parametrize("form", [{}, {"csrf_token": ""}, {"csrf_token": "x" * 40}])
def test_a_missing_or_wrong_csrf_token_is_refused_with_403(site, form):
    st, engine, post_id, app = site
    app.get(f"/posts/{post_id}")  # has a reader cookie now
    res = app.post(f"/posts/{post_id}/recommend", form, status=403)
    assert "reload the page" in res.text
    assert recommendation_count(engine, post_id) == (0, 0)


def test_a_token_from_another_reader_is_refused(site):
    st, engine, post_id, app = site
    stolen = token_of(webtest.TestApp(app.app).get(f"/posts/{post_id}"))
    app.get(f"/posts/{post_id}")
    app.post(f"/posts/{post_id}/recommend", {"csrf_token": stolen}, status=403)
    # No cookie at all (cookies off, or a cross-site POST that SameSite=Lax stripped): 403 too.
    webtest.TestApp(app.app).post(f"/posts/{post_id}/recommend", {"csrf_token": stolen}, status=403)


def test_form_bodies_that_are_not_utf8_are_400(site):
    st, engine, post_id, app = site
    page = app.get(f"/posts/{post_id}")
    body = b"csrf_token=" + token_of(page).encode() + b"&x=%ff"
    app.post(f"/posts/{post_id}/recommend", body, content_type="application/x-www-form-urlencoded", status=400)


# --- recommendations ---------------------------------------------------------------------------


def test_a_reader_recommends_once_and_the_page_says_so(site):
    st, engine, post_id, app = site
    page = app.get(f"/posts/{post_id}")
    done = page.forms["recommend"].submit(status=303)
    assert done.headers["Location"].endswith(f"/posts/{post_id}?recommended=yes#recommend")
    after = done.follow()
    assert "1 reader recommends this" in after.text and "Thank you" in after.text
    again = after.forms["recommend"].submit(status=303).follow()
    assert "already recommended" in again.text
    assert recommendation_count(engine, post_id) == (1, 1)
    app.post("/posts/999999/recommend", {"csrf_token": token_of(page)}, status=404)


def _serve(st):
    ready = threading.Event()
    stop = threading.Event()
    box = {}

    def on_ready(server):
        box["port"] = server.effective_port
        ready.set()

    thread = threading.Thread(target=serve_threaded, args=(st, "127.0.0.1", 0),
                              kwargs={"on_ready": on_ready, "stop": stop, "threads": 16}, daemon=True)
    thread.start()
    assert ready.wait(20), "the server did not start"
    return box["port"], stop, thread


def _get_reader(port: int, path: str) -> tuple[str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    res = conn.getresponse()
    body = res.read().decode()
    cookie = res.getheader("Set-Cookie").split(";", 1)[0]
    conn.close()
    return cookie, re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)


def _post(port: int, path: str, cookie: str, token: str, address: str = "") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    if address:  # a reader elsewhere, as the trusted proxy in front reports them
        headers["X-Forwarded-For"] = address
    conn.request("POST", path, body=f"csrf_token={token}", headers=headers)
    status = conn.getresponse().status
    conn.close()
    return status


def test_concurrent_recommendations_count_once_per_reader_and_once_for_each_reader(tmp_path):
    # Behind a proxy (loopback), so each reader can come from an address of their own: the
    # ranking counts one recommendation per address a day (tests/test_recommendation_worth.py).
    st, engine, post_id, = make_site(tmp_path / "data", rate_limits=False, trusted_proxies=("127.0.0.1/32",))
    port, stop, thread = _serve(st)
    try:
        path = f"/posts/{post_id}"
        cookie, token = _get_reader(port, path)
        with ThreadPoolExecutor(32) as pool:
            statuses = list(pool.map(lambda _: _post(port, path + "/recommend", cookie, token), range(100)))
        assert statuses == [303] * 100
        assert recommendation_count(engine, post_id) == (1, 1)

        readers = [_get_reader(port, path) for _ in range(100)]
        with ThreadPoolExecutor(32) as pool:
            statuses = list(pool.map(lambda n: _post(port, path + "/recommend", *readers[n], f"198.51.100.{n + 1}"),
                                     range(100)))
        assert statuses == [303] * 100
        assert recommendation_count(engine, post_id) == (101, 101)
    finally:
        stop.set()
        thread.join(10)


# --- moderators: passwords, sessions, limits -------------------------------------------------------


def sign_in(app, email="mod@example.org", password=PASSWORD, status=303):
    page = app.get("/login")
    form = [f for f in page.forms.values() if f.action == "/login"][0]
    form["email"], form["password"] = email, password
    return form.submit(status=status)


def test_sign_in_makes_a_database_session_and_sign_out_ends_it(site):
    st, engine, post_id, app = site
    res = sign_in(app)
    assert res.headers["Location"] == "/moderate"
    cookie = [c for c in res.headers.getall("Set-Cookie") if c.startswith(security.SESSION_COOKIE)][0]
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Secure" not in cookie
    with engine.connect() as conn:
        stored = conn.execute(sa.select(sessions.c.token_hash)).scalars().all()
    token = app.cookies[security.SESSION_COOKIE]
    assert len(stored) == 1 and token not in stored[0]  # only a hash is stored
    front = app.get("/")
    assert "Sign out" in front.text and front.headers["Cache-Control"].startswith("private")
    front.forms[0].submit(status=303) if front.forms[0].action == "/logout" else None
    assert "Sign out" not in app.get("/").text
    assert accounts.load_session(engine, token) is None


def test_session_cookie_is_secure_over_https(site):
    st, engine, post_id, app = site
    page = app.get("/login", extra_environ={"wsgi.url_scheme": "https"})
    form = [f for f in page.forms.values() if f.action == "/login"][0]
    form["email"], form["password"] = "mod@example.org", PASSWORD
    res = form.submit(status=303, extra_environ={"wsgi.url_scheme": "https"})
    cookie = [c for c in res.headers.getall("Set-Cookie") if c.startswith(security.SESSION_COOKIE)][0]
    assert "Secure" in cookie


def test_wrong_passwords_and_unknown_addresses_get_the_same_answer(site):
    st, engine, post_id, app = site
    wrong = sign_in(app, password="not the password", status=401)
    unknown = sign_in(app, email="nobody@example.org", status=401)
    assert "do not match" in wrong.text and "do not match" in unknown.text
    assert security.SESSION_COOKIE not in app.cookies
    with pytest.raises(accounts.AuthError):
        accounts.authenticate(engine, "mod@example.org", "")


def test_next_after_sign_in_stays_on_this_site(site):
    st, engine, post_id, app = site
    page = app.get("/login?next=//evil.example/x")
    form = [f for f in page.forms.values() if f.action == "/login"][0]
    form["email"], form["password"] = "mod@example.org", PASSWORD
    assert form.submit(status=303).headers["Location"] == "/moderate"


def test_sign_in_attempts_are_rate_limited_with_retry_after(tmp_path):
    st, engine, post_id = make_site(tmp_path / "data", login_limit="3/15m")
    app = webtest.TestApp(make_app(st))
    for _ in range(3):
        sign_in(app, password="wrong password here", status=401)
    res = sign_in(app, status=429)  # even the right password: the limit comes first
    assert 0 < int(res.headers["Retry-After"]) <= 900
    assert "Content-Security-Policy" in res.headers


def test_rate_limits_can_be_turned_off(tmp_path):
    st, engine, post_id = make_site(tmp_path / "data", login_limit="1/15m", rate_limits=False)
    app = webtest.TestApp(make_app(st))
    for _ in range(4):
        sign_in(app, password="wrong password here", status=401)


def test_passwords_are_argon2id_and_short_ones_refused(site):
    st, engine, post_id, app = site
    from aggregator.db import moderators

    with engine.connect() as conn:
        hashed = conn.execute(sa.select(moderators.c.password_hash)).scalar()
    assert hashed.startswith("$argon2id$")
    with pytest.raises(Exception, match="at least 10"):
        accounts.add_moderator(engine, "b@example.org", "short")
    with pytest.raises(Exception, match="already"):
        accounts.add_moderator(engine, "MOD@example.org", PASSWORD)


def test_moderator_add_command(cli, tmp_path, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    out, _ = cli("moderator", "add", "Editor@Example.org", "--password-stdin", "--json")
    assert '"editor@example.org"' in out
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    _, err = cli("moderator", "add", "x@example.org", "--password-stdin", expect=1)
    assert "at least 10 characters" in err


def test_rate_limit_windows_are_shared_and_reset(site):
    st, engine, post_id, app = site
    assert [ratelimits.hit(engine, st, "t", "1", "2/1m", now=600) for _ in range(3)] == [0, 0, 60]
    assert ratelimits.hit(engine, st, "t", "1", "2/1m", now=659) == 1
    assert ratelimits.hit(engine, st, "t", "1", "2/1m", now=660) == 0  # a new window
    assert ratelimits.hit(engine, st, "t", "2", "2/1m", now=600) == 0  # another client


# --- the public moderation log ---------------------------------------------------------------------


def test_moderation_log_is_public_and_lists_actions(site):
    st, engine, post_id, app = site
    with db.writing(engine) as conn:
        log_action(conn, "mod@example.org", "hide_post", target_type="post", target_id=post_id,
                         target_label="Saving the library", reason="<b>spam</b>")
        log_action(conn, "system", "feed_gone", target_type="blog", target_id=1, target_label="Valley Branch",
                         reason="HTTP 410")
    page = app.get("/moderation")
    assert "hide post" in page.text and "&lt;b&gt;spam&lt;/b&gt;" in page.text
    assert "the site, automatically" in page.text and "HTTP 410" in page.text
    app.get("/moderation?page=0", status=400)
