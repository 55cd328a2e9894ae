"""Reader polls on the site: voting, results, visibility, moderators, the API, the CSV and
the command line, on a real migrated SQLite database.

Most tests go through WebTest, each reader a TestApp of their own (their own cookie jar)
with a client address set in the environ. The concurrency guarantees (a hundred copies
of one reader's ballot count once; a hundred readers count a hundred) are tested over a
real socket (waitress on 127.0.0.1) with many threads, because the guarantee is the
database's unique constraint, not anything inside one process.

Times: polls that must already be closed are created "in the past" (create_poll's now),
and ballots cast into them directly with the store, so no test waits for a clock.
"""

from __future__ import annotations

import csv
import html
import http.client
import io
import json
import re
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlalchemy as sa
import webtest
from sqlalchemy.exc import IntegrityError

from aggregator import db
from aggregator.db import ballot_choices, ballot_rejections, ballots, poll_options
from aggregator.db import polls as polls_table
from aggregator.settings import Settings
from community import accounts
from community.moderation_log import moderation_entries
from community.polls import Ballot, ballot_store
from community.polls import store as poll_store
from web import security
from web.app import make_app
from web.pages import iso
from web.poll_pages import when
from web.server import serve_threaded

MOD = "mod@example.org"
PASSWORD = "a long enough password"
QUESTION = "Which bus route should come back first?"
OPTIONS = ["The 42 to Fernleigh", "The 7 night bus", "The Mill Lane hopper"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --- the site ---------------------------------------------------------------------------------


DB_FILE = "hustings.sqlite3"
_template: list[Path] = []
_backend: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def template_database(tmp_path_factory, database) -> Path:
    """A migrated database with the moderator, made once per module (per test process) and
    copied for each site: migrating and hashing a password each time would be most of
    every test. (On PostgreSQL each site's database is a copy of the migrated template
    already; the moderator is added to it.)"""
    _backend[:] = [database]
    data_dir = tmp_path_factory.mktemp("template")
    engine = db.make_engine(Settings(data_dir=data_dir))
    db.migrate(engine)
    accounts.add_moderator(engine, MOD, PASSWORD)
    engine.dispose()  # the last connection closing checkpoints the WAL into the file
    assert not (data_dir / (DB_FILE + "-wal")).exists()
    _template[:] = [data_dir / DB_FILE]
    return _template[0]


class Site:
    def __init__(self, data_dir: Path, **settings):
        data_dir.mkdir(parents=True, exist_ok=True)
        if _backend == ["sqlite"]:
            shutil.copyfile(_template[0], data_dir / DB_FILE)
        self.settings = Settings(data_dir=data_dir, **settings)
        self.engine = db.make_engine(self.settings)
        if _backend != ["sqlite"]:
            accounts.add_moderator(self.engine, MOD, PASSWORD)
        db.check_schema(self.engine)
        self.wsgi = make_app(self.settings)

    def reader(self, ip: str = "198.51.100.7") -> "Reader":
        return Reader(self, ip)

    def moderator(self, ip: str = "198.51.100.200") -> "Reader":
        r = Reader(self, ip)
        page = r.web.get("/login")
        form = [f for f in page.forms.values() if f.action == "/login"][0]
        form["email"], form["password"] = MOD, PASSWORD
        form.submit(status=303)
        return r

    def poll(self, **kw) -> poll_store.PollRecord:
        kw.setdefault("question", QUESTION)
        kw.setdefault("options", list(OPTIONS))
        kw.setdefault("created_by", MOD)
        return poll_store.create_poll(self.engine, **kw)

    def past_poll(self, *, hours_ago: int = 3, open_for: int = 2, **kw) -> poll_store.PollRecord:
        """A poll that opened `hours_ago` and has been closed (by its time) since."""
        then = utcnow() - timedelta(hours=hours_ago)
        return self.poll(now=then, opens_at=then, closes_at=then + timedelta(hours=open_for), **kw)

    def counted(self, poll_id: int) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(ballots)
                                .where(ballots.c.poll_id == poll_id)).scalar()

    def rejected(self, poll_id: int) -> dict[str, int]:
        return ballot_store.rejection_counts(self.engine, poll_id)


class Reader:
    """One browser: its own cookies, from one address."""

    def __init__(self, site: Site, ip: str):
        self.site = site
        self.web = webtest.TestApp(site.wsgi, extra_environ={"REMOTE_ADDR": ip})
        self.web.get("/login")  # a page with a form: the reader cookie is set

    @property
    def token(self) -> str:
        if security.SESSION_COOKIE in self.web.cookies:
            return csrf_of(self.web.get("/login"))
        return security.reader_csrf(self.site.settings, self.web.cookies[security.READER_COOKIE])

    def vote(self, poll_id: int, fields: list[tuple[str, str]], status: int | None = None):
        errors = status == "*" or (isinstance(status, int) and status >= 400)
        return self.web.post(f"/polls/{poll_id}/vote", [("csrf_token", self.token)] + fields, status=status,
                             expect_errors=errors)

    def get(self, url: str, **kw):
        return self.web.get(url, **kw)


def csrf_of(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def option_ids(record) -> list[int]:
    return [o.id for o in record.poll.options]


def pick(record, *indexes: int) -> list[tuple[str, str]]:
    ids = option_ids(record)
    return [("option", str(ids[i])) for i in indexes]


def rank(record, *order: int) -> list[tuple[str, str]]:
    """Fields for a ranked ballot: order[0] is the index of the first choice, and so on."""
    ids = option_ids(record)
    ranks = {ids[i]: str(n + 1) for n, i in enumerate(order)}
    return [(f"rank_{oid}", ranks.get(oid, "")) for oid in ids]


def cast(site: Site, record, choices: list[list[int]], at: datetime, who: str = "voter") -> None:
    """Ballots straight into the store (option indexes, in rank order for ranked polls)."""
    ids = option_ids(record)
    for n, chosen in enumerate(choices):
        got = ballot_store.cast_ballot(site.engine, record.poll, Ballot(record.id, tuple(ids[i] for i in chosen)),
                                       f"{who}-{n}", f"{who}-reader-{n}", at)
        assert got.counted, got


@pytest.fixture
def site(tmp_path) -> Site:
    return Site(tmp_path / "data")


def results_shown(page) -> bool:
    return 'id="result-h"' in page.text


# --- the voting form ------------------------------------------------------------------------------


def test_each_kind_of_poll_has_a_plain_form_that_needs_no_javascript(site):
    single = site.poll()
    multiple = site.poll(kind="multiple", max_choices=2, question="Which campaigns should we run?")
    ranked = site.poll(kind="ranked", question="Rank the candidates")
    r = site.reader()

    page = r.get(f"/polls/{single.id}")
    assert page.headers["Cache-Control"] == "no-store"
    form = page.forms["vote"]
    assert form.action == f"/polls/{single.id}/vote" and form.method.lower() == "post"
    assert form["csrf_token"].value == r.token and security.CSRF_PLACEHOLDER not in page.text
    assert inputs(page, "option") == [("radio", str(i)) for i in option_ids(single)]
    for label in OPTIONS:
        assert html.escape(label) in page.text

    page = r.get(f"/polls/{multiple.id}")
    assert inputs(page, "option") == [("checkbox", str(i)) for i in option_ids(multiple)]
    assert "up to 2" in page.text

    page = r.get(f"/polls/{ranked.id}")
    assert inputs(page, "option") == []
    for oid in option_ids(ranked):
        select = re.search(rf'<select id="rank_{oid}" name="rank_{oid}">(.*?)</select>', page.text, re.S).group(1)
        assert re.findall(r'<option value="([^"]*)"', select) == ["", "1", "2", "3"]
    # The form carries nothing validate_ballot would refuse: the token and ballot fields only.
    form = page.forms["vote"]
    assert {name for name in form.fields if name} == {"csrf_token"} | {f"rank_{oid}" for oid in option_ids(ranked)}


def inputs(page, name: str) -> list[tuple[str, str]]:
    return [(a.get("type", ""), a.get("value", "")) for tag, a in Tags(page.text).tags
            if tag == "input" and a.get("name") == name]


def test_a_vote_redirects_to_the_results_and_a_second_one_is_409(site):
    poll = site.poll()
    r = site.reader()
    form = r.get(f"/polls/{poll.id}").forms["vote"]
    form["option"] = str(option_ids(poll)[1])
    done = form.submit(status=303)
    assert done.headers["Location"].endswith(f"/polls/{poll.id}/results")
    page = done.follow()
    assert "You have voted in this poll" in page.text and results_shown(page)
    row = re.search(r"<th scope=\"row\">The 7 night bus</th><td>([^<]*)</td><td>([^<]*)</td>", page.text)
    assert row.groups() == ("1", "100.0%")

    again = r.get(f"/polls/{poll.id}")
    assert "You have already voted in this poll" in again.text and 'id="vote"' not in again.text
    assert f'href="/polls/{poll.id}/results"' in again.text
    refused = r.vote(poll.id, pick(poll, 0), status=409)
    assert "you have already voted" in refused.text
    assert refused.headers["Cache-Control"] == "no-store"
    assert site.counted(poll.id) == 1 and site.rejected(poll.id) == {"duplicate": 1}
    with site.engine.connect() as conn:
        stored = conn.execute(sa.select(ballot_choices.c.option_id)).scalars().all()
    assert stored == [option_ids(poll)[1]]


def test_multiple_choice_and_ranked_ballots_are_stored_as_chosen(site):
    multiple = site.poll(kind="multiple", max_choices=2)
    ranked = site.poll(kind="ranked", question="Rank the routes")
    r = site.reader()
    r.vote(multiple.id, pick(multiple, 2, 0), status=303)
    r.vote(ranked.id, rank(ranked, 2, 0), status=303)  # third option first, first second, second unranked
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(ballots.c.poll_id, ballot_choices.c.option_id, ballot_choices.c.rank)
                            .join(ballots, ballots.c.id == ballot_choices.c.ballot_id)
                            .order_by(ballots.c.poll_id, ballot_choices.c.rank, ballot_choices.c.option_id)).all()
    m, k = option_ids(multiple), option_ids(ranked)
    assert [tuple(x) for x in rows] == [(multiple.id, m[0], None), (multiple.id, m[2], None),
                                        (ranked.id, k[2], 1), (ranked.id, k[0], 2)]
    assert ballot_store.ballots_for(site.engine, ranked.poll) == [Ballot(ranked.id, (k[2], k[0]))]


@pytest.mark.parametrize("kind, fields, words", [
    ("single", [], "Please choose an option"),
    ("single", [("option", "99999")], "is not one of this poll"),
    ("single", [("option", "{0}"), ("option", "{1}")], "only one option"),
    ("single", [("option", "{0}"), ("sneaky", "1")], "unexpected field"),
    ("multiple", [("option", "{0}"), ("option", "{1}"), ("option", "{2}")], "at most 2 options"),
    ("ranked", [("rank_{0}", "1"), ("rank_{1}", "3")], "without gaps"),
    ("ranked", [("rank_{0}", "1"), ("rank_{1}", "1")], "Each rank can be used only once"),
    ("ranked", [("rank_{0}", "")], "Please rank at least one option"),
])
def test_a_form_that_is_not_a_valid_ballot_is_400_with_the_reason_and_counted_as_invalid(site, kind, fields, words):
    poll = site.poll(kind=kind, max_choices=2 if kind == "multiple" else None)
    ids = option_ids(poll)
    fields = [(k.format(*ids), v.format(*ids)) for k, v in fields]
    r = site.reader()
    res = r.vote(poll.id, fields, status=400)
    error = re.search(r'<p class="error" role="alert" id="vote-error">(.*?)</p>', res.text, re.S).group(1)
    assert words in html.unescape(error)
    assert 'id="vote"' in res.text  # the poll again, to vote properly
    assert site.counted(poll.id) == 0 and site.rejected(poll.id) == {"invalid": 1}
    r.vote(poll.id, pick(poll, 0) if kind != "ranked" else rank(poll, 0), status=303)  # and then it works


def test_ballots_before_opening_and_after_closing_are_409_and_counted_by_reason(site):
    later = site.poll(opens_at=utcnow() + timedelta(days=1))
    gone = site.past_poll()
    r = site.reader()
    page = r.get(f"/polls/{later.id}")
    assert "Voting opens" in page.text and 'id="vote"' not in page.text
    assert "has not opened yet" in r.vote(later.id, pick(later, 0), status=409).text
    page = r.get(f"/polls/{gone.id}")
    assert "This poll has closed" in page.text and 'id="vote"' not in page.text
    assert "this poll has closed" in r.vote(gone.id, pick(gone, 0), status=409).text
    assert site.rejected(later.id) == {"not_open": 1} and site.rejected(gone.id) == {"closed": 1}
    assert site.counted(later.id) == site.counted(gone.id) == 0


def test_unknown_polls_are_404(site):
    r = site.reader()
    for url in ("/polls/999", "/polls/999/results", "/polls/999/results.csv", "/polls/99999999999999999999",
                "/polls/abc"):
        r.get(url, status=404)
    assert r.get("/api/polls/999", status=404).json["error"]["status"] == 404
    r.vote(999, [("option", "1")], status=404)


# --- CSRF and rate limits ------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "x" * 40, "other reader"])
def test_a_missing_or_wrong_csrf_token_is_403_and_nothing_is_counted(site, token):
    poll = site.poll()
    r = site.reader()
    if token == "other reader":
        token = site.reader().token
    fields = pick(poll, 0) + ([("csrf_token", token)] if token is not None else [])
    res = r.web.post(f"/polls/{poll.id}/vote", fields, status=403)
    assert "reload the page" in res.text
    # A new browser with no cookie at all, even with a token copied from a page: 403 too.
    webtest.TestApp(site.wsgi).post(f"/polls/{poll.id}/vote", [("csrf_token", r.token)] + pick(poll, 0), status=403)
    assert site.counted(poll.id) == 0 and site.rejected(poll.id) == {}


def test_ballots_are_rate_limited_per_address_with_retry_after(tmp_path):
    site = Site(tmp_path / "data", vote_limit="3/1m")
    poll = site.poll()
    r = site.reader(ip="203.0.113.9")
    # The limit counts every ballot sent from the address, counted or refused. Seven tries
    # meet the limit even if a new minute's window starts during them.
    statuses, answers = [], []
    for _ in range(7):
        res = r.vote(poll.id, pick(poll, 0), status="*")
        statuses.append(res.status_int)
        answers.append(res)
    assert statuses[:3] == [303, 409, 409]
    assert 429 in statuses
    limited = answers[statuses.index(429)]
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    assert "Content-Security-Policy" in limited.headers
    # Another address is not limited by this one.
    site.reader(ip="203.0.113.10").vote(poll.id, pick(poll, 1), status=303)


# --- one ballot per voter, under concurrency --------------------------------------------------------------


def _serve(st: Settings):
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


def _new_reader(port: int, path: str) -> tuple[str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    res = conn.getresponse()
    body = res.read().decode()
    assert res.status == 200, body[:300]
    cookie = res.getheader("Set-Cookie").split(";", 1)[0]
    conn.close()
    return cookie, csrf_of_text(body)


def csrf_of_text(text: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)


def _vote(port: int, path: str, cookie: str, token: str, option: int) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", path, body=f"csrf_token={token}&option={option}",
                 headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    res = conn.getresponse()
    body = res.read().decode()
    conn.close()
    return res.status, body


def test_a_hundred_copies_of_one_ballot_count_once_and_a_hundred_readers_count_a_hundred(tmp_path):
    site = Site(tmp_path / "data", rate_limits=False)
    same, many = site.poll(), site.poll(question="Should the branch meet on Thursdays?", visibility="always")
    port, stop, thread = _serve(site.settings)
    try:
        cookie, token = _new_reader(port, f"/polls/{same.id}")
        option = option_ids(same)[0]
        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(lambda _: _vote(port, f"/polls/{same.id}/vote", cookie, token, option),
                                    range(100)))
        assert sorted(s for s, _ in answers) == [303] + [409] * 99
        assert all("you have already voted" in body for s, body in answers if s == 409)
        assert site.counted(same.id) == 1
        assert site.rejected(same.id) == {"duplicate": 99}

        readers = [_new_reader(port, f"/polls/{many.id}") for _ in range(100)]
        ids = option_ids(many)
        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(lambda n: _vote(port, f"/polls/{many.id}/vote", *readers[n], ids[n % 3]),
                                    range(100)))
        assert [s for s, _ in answers] == [303] * 100
        assert site.counted(many.id) == 100 and site.rejected(many.id) == {}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", f"/api/polls/{many.id}")
        data = json.loads(conn.getresponse().read())
        conn.close()
        assert data["results"]["ballots"] == 100
        assert [o["votes"] for o in data["results"]["options"]] == [34, 33, 33]
    finally:
        stop.set()
        thread.join(10)


def test_ip_integrity_counts_one_ballot_per_address(site):
    poll = site.poll(integrity="ip", visibility="after_vote")
    first, second = site.reader(ip="192.0.2.44"), site.reader(ip="192.0.2.44")
    first.vote(poll.id, pick(poll, 0), status=303)
    page = second.get(f"/polls/{poll.id}")
    assert "already been cast in this poll from your internet address" in page.text and 'id="vote"' not in page.text
    refused = second.vote(poll.id, pick(poll, 1), status=409)
    assert "from your internet address" in refused.text and "you have already voted" in refused.text
    # Sharing the address, they have as good as voted: no running count can steer them now.
    assert results_shown(second.get(f"/polls/{poll.id}/results"))
    site.reader(ip="192.0.2.45").vote(poll.id, pick(poll, 1), status=303)  # another address counts
    # The first reader, moving to another network, is still the reader who voted.
    cookie = first.web.cookies[security.READER_COOKIE]
    moved = webtest.TestApp(site.wsgi, extra_environ={"REMOTE_ADDR": "192.0.2.99",
                                                      "HTTP_COOKIE": f"{security.READER_COOKIE}={cookie}"})
    res = moved.post(f"/polls/{poll.id}/vote", [("csrf_token", first.token)] + pick(poll, 2), status=409)
    assert "you have already voted" in res.text
    assert site.counted(poll.id) == 2 and site.rejected(poll.id) == {"duplicate": 2}

    # Nothing stored is the address itself, and the salt goes when the poll closes.
    with site.engine.connect() as conn:
        voters = conn.execute(sa.select(ballots.c.voter, ballots.c.reader)).all()
        salt = conn.execute(sa.select(polls_table.c.ip_salt).where(polls_table.c.id == poll.id)).scalar()
    assert len(salt) == 64 and all("192.0.2" not in v and len(v) == 64 for row in voters for v in row)
    assert poll_store.close_poll(site.engine, poll.id, by=MOD)
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(polls_table.c.ip_salt).where(polls_table.c.id == poll.id)).scalar() == ""
    # After the salt has gone, the reader who voted still sees that they did.
    assert "You have voted in this poll" in first.get(f"/polls/{poll.id}/results").text


def test_an_ip_polls_salt_is_deleted_once_its_closing_time_has_passed(site):
    poll = site.past_poll(integrity="ip")
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(polls_table.c.ip_salt).where(polls_table.c.id == poll.id)).scalar()
    site.reader().get("/polls")  # any listing of polls deletes the salts of closed polls
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(polls_table.c.ip_salt).where(polls_table.c.id == poll.id)).scalar() == ""


# --- who sees results ---------------------------------------------------------------------------------------


def _sees(r: Reader, poll_id: int) -> tuple[bool, bool, bool]:
    """Does this reader see numbers in the page, the API (one poll, and the list) and the CSV?"""
    page = r.get(f"/polls/{poll_id}/results")
    assert page.status_int == 200 and page.headers["Cache-Control"] == "no-store"
    page_sees = results_shown(page)
    if not page_sees:  # no numbers at all, and a sentence saying when
        assert 'id="results-hidden"' in page.text and "<svg" not in page.text and "<table" not in page.text
        assert "How this poll worked" not in page.text and "results.csv" not in page.text
    api = r.get(f"/api/polls/{poll_id}").json
    listed = [p for p in r.get("/api/polls").json["polls"] if p["id"] == poll_id][0]
    assert listed["results"] == api["results"]
    api_sees = api["results"] is not None
    assert api["results_visible"] is api_sees
    if not api_sees:
        assert api["methodology"] is None and api["rejected"] is None
    csv_res = r.get(f"/polls/{poll_id}/results.csv", expect_errors=True)
    assert csv_res.status_int in (200, 403)
    if csv_res.status_int == 200:
        assert csv_res.headers["Content-Disposition"] == f'attachment; filename="poll-{poll_id}-results.csv"'
        assert csv_res.content_type == "text/csv"
    else:
        assert "votes" not in csv_res.text and csv_res.headers["Cache-Control"] == "no-store"
    assert page_sees == api_sees == (csv_res.status_int == 200), (page_sees, api_sees, csv_res.status)
    return page_sees


@pytest.mark.parametrize("visibility, before_vote, after_vote, after_close, moderator", [
    ("always", True, True, True, True),
    ("after_vote", False, True, True, True),
    ("after_close", False, False, True, True),
    ("moderators", False, False, False, True),
])
def test_visibility_in_the_page_the_api_and_the_csv(site, visibility, before_vote, after_vote, after_close,
                                                    moderator):
    closes = utcnow() + timedelta(days=2)
    poll = site.poll(visibility=visibility, closes_at=closes)
    voter, bystander, mod = site.reader(ip="198.51.100.1"), site.reader(ip="198.51.100.2"), site.moderator()
    assert _sees(voter, poll.id) is before_vote
    assert _sees(mod, poll.id) is moderator
    api = voter.get(f"/api/polls/{poll.id}").json
    if not before_vote:
        expected = iso(closes) if visibility in ("after_vote", "after_close") else None
        assert api["results_visible_from"] == expected
        assert api["results_hidden_because"]
    voter.vote(poll.id, pick(poll, 0), status=303)
    assert _sees(voter, poll.id) is after_vote
    assert _sees(bystander, poll.id) is before_vote  # someone else's vote shows them nothing
    assert _sees(mod, poll.id) is moderator
    poll_store.close_poll(site.engine, poll.id, by=MOD)
    assert _sees(voter, poll.id) is after_close
    assert _sees(bystander, poll.id) is after_close
    assert _sees(mod, poll.id) is True
    hidden = voter.get(f"/polls/{poll.id}/results").text
    if not after_close:
        assert "shown only to the site" in html.unescape(hidden)


def test_hidden_results_say_when_they_will_be_shown(site):
    closes = utcnow() + timedelta(days=3)
    r = site.reader()
    text = r.get(f"/polls/{site.poll(visibility='after_close', closes_at=closes).id}/results").text
    assert f"shown when the poll closes on {when(closes)}" in text
    text = r.get(f"/polls/{site.poll(visibility='after_close', question='Another?').id}/results").text
    assert "when a moderator closes the poll" in text
    text = r.get(f"/polls/{site.poll(visibility='after_vote', question='Third?').id}/results").text
    assert "shown once you have voted" in text and "Vote in this poll" in text


# --- results ---------------------------------------------------------------------------------------------------


def test_ranked_results_show_every_instant_runoff_round(site):
    poll = site.past_poll(kind="ranked", visibility="always")
    # First preferences: Fernleigh 4, night bus 3, hopper 2; the hopper goes and both its
    # ballots move to the night bus, which then wins 5 to 4.
    cast(site, poll, [[0]] * 4 + [[1, 0]] * 3 + [[2, 1]] * 2, utcnow() - timedelta(hours=2, minutes=30))
    page = site.reader().get(f"/polls/{poll.id}/results")
    text = html.unescape(page.text)
    assert "Round 1" in text and "Round 2" in text and "Round 3" not in text
    assert text.count("<svg") == 2  # a chart for each round
    round1 = text[text.index('id="round-1"'):text.index('id="round-2"')]
    assert "<td>eliminated</td>" in round1 and "“The Mill Lane hopper” had the fewest votes (2)" in round1
    assert "Transfers: 2 to The 7 night bus." in round1
    round2 = text[text.index('id="round-2"'):]
    assert re.search(r"The 7 night bus</th><td>5</td><td>55.6%</td><td>wins</td>", round2)
    assert "“The 7 night bus” won in round 2" in text
    data = site.reader().get(f"/api/polls/{poll.id}").json["results"]
    assert data["method"] == "instant_runoff" and data["winner"] == option_ids(poll)[1]
    assert [r["round"] for r in data["rounds"]] == [1, 2]
    assert data["rounds"][0]["eliminated"] == option_ids(poll)[2]
    assert data["rounds"][0]["transfers"] == [{"to": option_ids(poll)[1], "ballots": 2}]
    rows = list(csv.DictReader(io.StringIO(site.reader().get(f"/polls/{poll.id}/results.csv").text)))
    assert [(r["round"], r["outcome"]) for r in rows] == [("1", ""), ("1", ""), ("1", "eliminated"),
                                                          ("2", ""), ("2", "winner")]


def test_the_methodology_box_counts_ballots_and_rejections_by_reason(site):
    poll = site.poll(visibility="always")
    voters = [site.reader(ip=f"198.51.100.{n}") for n in range(1, 4)]
    for n, r in enumerate(voters):
        r.vote(poll.id, pick(poll, n % 2), status=303)
    voters[0].vote(poll.id, pick(poll, 1), status=409)
    voters[1].vote(poll.id, pick(poll, 0), status=409)
    late = site.reader(ip="198.51.100.9")
    late.vote(poll.id, [], status=400)
    poll_store.close_poll(site.engine, poll.id, by=MOD)
    late.vote(poll.id, pick(poll, 0), status=409)

    page = late.get(f"/polls/{poll.id}/results")
    box = html.unescape(page.text[page.text.index('id="method-h"'):])
    method = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", box, re.S))
    assert method["Ballots counted"] == "3 ballots."
    assert method["Ballots rejected"] == ("4 ballots not counted: 2 duplicate (the reader had already voted); "
                                          "1 sent after the poll closed; 1 invalid (the form was incomplete or "
                                          "malformed).")
    assert "One ballot per reader cookie" in method["How duplicate votes were prevented"]
    assert "First ballot" in method["Dates"] and "Open from" in method["Dates"]
    assert re.search(r"The 42 to Fernleigh</th><td>2</td><td>66.7%</td>", page.text)
    data = late.get(f"/api/polls/{poll.id}").json
    assert data["rejected"] == {"total": 4, "by_reason": {"duplicate": 2, "invalid": 1, "closed": 1}}
    assert {"heading": "Ballots counted", "text": "3 ballots."} in data["methodology"]
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ballot_rejections)).scalar() == 4


def test_moderators_see_ballots_over_time_with_bursts_and_readers_do_not(site):
    poll = site.past_poll(hours_ago=3, open_for=2)
    start = poll.poll.opens_at
    for minutes in (10, 40, 70):
        cast(site, poll, [[0]], start + timedelta(minutes=minutes), who=f"early-{minutes}")
    cast(site, poll, [[1]] * 30, start + timedelta(minutes=101))
    assert site.counted(poll.id) == 33
    mod_page = site.moderator().get(f"/polls/{poll.id}/results")
    text = html.unescape(mod_page.text)
    assert "Ballots over time" in text and "1 burst flagged" in text
    burst_at = start + timedelta(minutes=100)
    assert f"{burst_at:%H:%M} UTC: 30 ballots" in text
    reader_page = site.reader().get(f"/polls/{poll.id}/results")
    assert results_shown(reader_page) and "Ballots over time" not in reader_page.text


# --- moderators: create and close ---------------------------------------------------------------------------


def test_only_moderators_can_create_or_close_polls(site):
    poll = site.poll()
    r = site.reader()
    res = r.get("/moderate/polls/new", status=303)
    assert res.headers["Location"].endswith("/login?next=/moderate/polls/new")
    res = r.web.post("/moderate/polls/new", {"csrf_token": r.token, "question": "Sneaky?", "options": "a\nb"},
                     status=303)
    assert "/login?next=" in res.headers["Location"]
    res = r.web.post(f"/moderate/polls/{poll.id}/close", {"csrf_token": r.token}, status=303)
    assert "/login?next=" in res.headers["Location"]
    assert len(poll_store.list_polls(site.engine)) == 1
    assert poll_store.get_poll(site.engine, poll.id).state(utcnow()) == "open"
    assert "Close this poll" not in r.get(f"/polls/{poll.id}").text


def test_a_moderator_creates_a_poll_with_the_form_and_closes_it(site):
    mod = site.moderator()
    page = mod.get("/moderate/polls/new")
    assert page.headers["Cache-Control"] == "no-store"
    form = [f for f in page.forms.values() if f.action == "/moderate/polls/new"][0]
    form["question"] = "Where should the summer school be held?"
    form["options"] = "Hollinbridge"  # one option is too few
    bad = form.submit(status=400)
    assert "at least two options" in bad.text and "Where should the summer school be held?" in bad.text
    form = [f for f in bad.forms.values() if f.action == "/moderate/polls/new"][0]
    form["options"] = "Hollinbridge\r\nCwm Aderyn\r\n\r\nMarrowfield\r\n"
    form["kind"] = "multiple"
    form["max_choices"] = "2"
    form["closes_at"] = (utcnow() + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M")
    form["visibility"] = "after_close"
    form["integrity"] = "ip"
    done = form.submit(status=303)
    poll_id = int(done.headers["Location"].rsplit("/", 1)[1])
    record = poll_store.get_poll(site.engine, poll_id)
    assert [o.label for o in record.poll.options] == ["Hollinbridge", "Cwm Aderyn", "Marrowfield"]
    assert (record.poll.kind, record.poll.max_choices, record.poll.visibility, record.poll.integrity) == \
        ("multiple", 2, "after_close", "ip")
    assert record.created_by == MOD

    page = mod.get(f"/polls/{poll_id}")
    close = [f for f in page.forms.values() if f.action == f"/moderate/polls/{poll_id}/close"][0]
    assert close.submit(status=303).headers["Location"].endswith(f"/polls/{poll_id}/results")
    assert poll_store.get_poll(site.engine, poll_id).state(utcnow()) == "closed"
    log = moderation_entries(site.engine)
    assert [(e["action"], e["target_id"], e["actor"]) for e in log][:2] == [("close_poll", poll_id, MOD),
                                                                           ("create_poll", poll_id, MOD)]
    public = site.reader().get("/moderation").text
    assert f'<a href="/polls/{poll_id}">Where should the summer school be held?</a>' in public


# --- options, once voted on --------------------------------------------------------------------------------


def test_options_with_ballots_cannot_be_changed_or_deleted(site):
    poll = site.poll()
    poll_store.set_options(site.engine, poll.id, ["Yes", "No"], by=MOD)  # no ballots yet: allowed
    poll = poll_store.get_poll(site.engine, poll.id)
    assert [o.label for o in poll.poll.options] == ["Yes", "No"]
    site.reader().vote(poll.id, pick(poll, 0), status=303)
    with pytest.raises(poll_store.PollError, match="cannot be changed or deleted once anyone has voted"):
        poll_store.set_options(site.engine, poll.id, ["Yes", "No", "Maybe"], by=MOD)
    voted_for, other = option_ids(poll)
    with pytest.raises(IntegrityError):  # the database itself refuses, whatever the code does
        with site.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM poll_options WHERE id = :id"), {"id": voted_for})
    with site.engine.begin() as conn:  # an option nobody chose can still go (by hand)
        conn.execute(sa.delete(poll_options).where(poll_options.c.id == other))
    assert [o.label for o in poll_store.get_poll(site.engine, poll.id).poll.options] == ["Yes"]


@pytest.mark.parametrize("kw, words", [
    (dict(options=["Only one"]), "at least two options"),
    (dict(options=["Same", "same"]), "two options are labelled"),
    (dict(question="  "), "needs a question"),
    (dict(kind="single", max_choices=2), "only applies to multiple-choice"),
    (dict(kind="multiple", max_choices=9), "from 1 to 3"),
    (dict(kind="approval"), "kind must be one of"),
    (dict(visibility="friends"), "visibility must be one of"),
    (dict(integrity="none"), "integrity must be one of"),
    (dict(opens_at=datetime(2019, 1, 1, tzinfo=timezone.utc), closes_at=datetime(2020, 1, 1, tzinfo=timezone.utc)),
     "closing time has already passed"),
    (dict(closes_at=datetime(2020, 1, 1)), "must say its time zone"),
])
def test_polls_that_could_not_be_counted_sensibly_are_refused(site, kw, words):
    with pytest.raises(poll_store.PollError, match=words):
        site.poll(**kw)
    assert poll_store.list_polls(site.engine) == []


def test_a_poll_that_has_not_opened_cannot_be_closed(site):
    later = site.poll(opens_at=utcnow() + timedelta(hours=1))
    with pytest.raises(poll_store.PollError, match="has not opened yet"):
        poll_store.close_poll(site.engine, later.id, by=MOD)


# --- lists, the front page and the API -------------------------------------------------------------------------


def test_open_polls_are_on_the_front_page_and_the_poll_list(tmp_path):
    site = Site(tmp_path / "data", page_cache_s=0)
    open_poll = site.poll()
    gone = site.past_poll(question="Was the conference worth it?")
    later = site.poll(question="Which date for the AGM?", opens_at=utcnow() + timedelta(days=1))
    r = site.reader()
    front = r.get("/")
    box = front.text[front.text.index('class="poll-box"'):]
    box = box[:box.index("</section>")]
    assert f'<a href="/polls/{open_poll.id}">{html.escape(QUESTION)}</a>' in box
    assert "conference" not in box and "AGM" not in box
    assert security.CSRF_PLACEHOLDER not in front.text and 'name="csrf_token"' not in front.text
    listing = r.get("/polls").text
    for heading, record in (("Open now", open_poll), ("Opening soon", later), ("Closed", gone)):
        assert heading in listing and f'/polls/{record.id}' in listing
    poll_store.close_poll(site.engine, open_poll.id, by=MOD)
    assert 'class="poll-box"' not in r.get("/").text


def test_the_front_page_and_poll_list_stay_shared_cacheable(site):
    site.poll()
    reader = site.reader()
    for url in ("/", "/polls"):
        res = reader.get(url)
        assert res.headers["Cache-Control"] == "no-cache", url  # public: the same for every reader
        assert "Set-Cookie" not in res.headers
        again = reader.get(url, headers={"If-None-Match": res.headers["ETag"]}, status=304)
        assert again.body == b""
    mod_list = site.moderator().get("/polls")
    assert "Create a poll" in mod_list.text and mod_list.headers["Cache-Control"] != "no-cache"
    assert "Create a poll" not in reader.get("/polls").text


def test_api_lists_polls_with_their_options_and_state(site):
    closes = utcnow() + timedelta(days=1)
    poll = site.poll(kind="multiple", max_choices=2, closes_at=closes, description="Pick up to two.")
    data = site.reader().get("/api/polls")
    assert data.content_type == "application/json" and data.headers["Cache-Control"] == "no-store"
    (p,) = data.json["polls"]
    assert p["id"] == poll.id and p["kind"] == "multiple" and p["max_choices"] == 2 and p["state"] == "open"
    assert p["description"] == "Pick up to two." and p["closes_at"] == iso(closes)
    assert [o["label"] for o in p["options"]] == OPTIONS and p["voted"] is False
    assert p["link"].endswith(f"/polls/{poll.id}") and p["visibility"] == "after_vote"


# --- the command line ------------------------------------------------------------------------------------------


def test_polls_create_list_and_close_from_the_command_line(cli):
    out, _ = cli("polls", "create", "--question", "Should we stand a candidate?", "--option", "Yes",
                 "--option", "No", "--option", "Not yet", "--kind", "ranked", "--closes", "2099-01-01T09:00",
                 "--visibility", "after_close", "--integrity", "ip", "--json")
    made = json.loads(out)
    assert made["question"] == "Should we stand a candidate?" and made["kind"] == "ranked"
    assert [o["label"] for o in made["options"]] == ["Yes", "No", "Not yet"]
    assert made["closes_at"].startswith("2099-01-01T09:00:00") and made["state"] == "open"
    out, _ = cli("polls", "create", "--question", "Thursdays?", "--option", "Yes", "--option", "No")
    assert "poll 2 created" in out
    listed = json.loads(cli("polls", "list", "--json")[0])["polls"]
    assert [(p["id"], p["state"], p["ballots"]) for p in listed] == [(2, "open", 0), (1, "open", 0)]
    assert "Should we stand a candidate?" in cli("polls", "list")[0]
    assert "poll 1 closed" in cli("polls", "close", "1")[0]
    assert "already closed" in cli("polls", "close", "1")[0]
    assert json.loads(cli("polls", "list", "--json")[0])["polls"][1]["state"] == "closed"
    _, err = cli("polls", "close", "99", expect=1)
    assert "no poll number 99" in err
    _, err = cli("polls", "create", "--question", "Q?", "--option", "Only", expect=1)
    assert "at least two options" in err
    _, err = cli("polls", "create", "--question", "Q?", "--option", "A", "--option", "B", "--opens", "soon",
                 expect=1)
    assert "not a date and time" in err
    settings = Settings(data_dir=cli.data_dir)
    engine = db.make_engine(settings)
    try:
        actions = [(e["action"], e["target_id"], e["actor"]) for e in moderation_entries(engine)]
        with engine.connect() as conn:
            salt = conn.execute(sa.select(polls_table.c.ip_salt).where(polls_table.c.id == 1)).scalar()
    finally:
        engine.dispose()
    assert actions == [("close_poll", 1, "command line"), ("create_poll", 2, "command line"),
                       ("create_poll", 1, "command line")]
    assert salt == ""


# --- no inline code on any page -----------------------------------------------------------------------------


class Tags(HTMLParser):
    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def test_no_poll_page_has_inline_script_or_style(site):
    single = site.poll(visibility="always", description="Tell us.\n\nEvery vote counts once.")
    ranked = site.past_poll(kind="ranked", visibility="always", question="Rank them")
    cast(site, ranked, [[0, 1], [1], [2, 0]], ranked.poll.opens_at + timedelta(minutes=5))
    hidden = site.poll(visibility="moderators", question="Secret?")
    r, mod = site.reader(), site.moderator()
    r.vote(single.id, pick(single, 0), status=303)
    pages = []
    for who in (r, mod):
        for url in ("/", "/polls", f"/polls/{single.id}", f"/polls/{single.id}/results", f"/polls/{ranked.id}",
                    f"/polls/{ranked.id}/results", f"/polls/{hidden.id}", f"/polls/{hidden.id}/results",
                    "/polls/999"):
            pages.append((url, who.get(url, status="*")))
    pages.append(("/moderate/polls/new", mod.get("/moderate/polls/new")))
    pages.append(("vote refused", r.vote(single.id, pick(single, 1), status=409)))
    pages.append(("vote invalid", site.reader().vote(single.id, [], status=400)))
    for where, res in pages:
        assert res.status_int in (200, 400, 404, 409), where
        assert "Content-Security-Policy" in res.headers and "'unsafe-inline'" not in res.headers[
            "Content-Security-Policy"]
        for tag, attrs in Tags(res.text).tags:
            assert tag not in ("script", "style"), f"<{tag}> in {where}"
            for name in attrs:
                assert name != "style" and not name.startswith("on"), f"{name}= on <{tag}> in {where}"
        assert "<script" not in res.text.lower() and "javascript:" not in res.text.lower(), where
