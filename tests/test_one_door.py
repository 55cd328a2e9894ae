"""One door for every moderator action (issue 10).

The command line (`hustings posts|feeds|submissions|polls ...`) and the moderators' forms on
the web call the same functions in community.moderation, and every action, whichever door
it came through, is a line of the public log at /moderation naming who did it and why.

Each walk takes every action once on a real data directory: the command through the
in-process `cli` fixture, the forms through WebTest on the real app, signed in as a
moderator. After each action the test reads /moderation as a reader would and checks that
its newest line is that action, with that actor and reason, and that exactly one line was
added. A spy on log_action records which community.moderation function each log line was
written under, so a door that went round the one door (straight to the poll store, say)
fails by name.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest
import webtest

from aggregator import db, feed_store, post_store
from aggregator.models import Post
from aggregator.settings import load_settings
from community import accounts, moderation, moderation_log, outbox, submissions
from index import writer
from web.app import make_app

EMAIL = "jo.whitfield@hustings.example"  # shown on /moderation as "jo.whitfield"
PASSWORD = "correct horse battery staple"
BY = "Sam Organiser"
POST_TITLE = "Saving the library"
BLOG_TITLE = "Valley Branch"
QUESTION = "Which campaign next?"
POLL_REASON = "single choice, 2 options; results after vote; one ballot per reader cookie"

# Every moderator action community.moderation offers: the one door.
DOOR_FUNCTIONS = ("approve_submission", "reject_submission", "pause_blog", "resume_blog", "remove_blog",
                  "feature_post", "unfeature_post", "hide_post", "unhide_post", "create_poll", "close_poll")


@dataclass(frozen=True)
class Step:
    door: str  # the community.moderation function this action must go through
    action: str  # the log's name for it
    what: str  # the "What" cell of /moderation
    reason: str  # given by the moderator (or, for polls, written by the store)
    cli: tuple[str, ...]  # the command, with {post} {blog} {sub1} {sub2} {poll} filled in
    by: bool  # the command gives --by (else the actor is "command line")
    page: str  # the web page that carries the form
    form: str  # the form's action
    fields: tuple[tuple[str, str], ...] = ()  # what the moderator types besides the reason
    syncs: bool = False  # the command brings the search index up to date afterwards


STEPS = [
    Step("hide_post", "hide_post", f"hide post: {POST_TITLE}", "Spam: a casino advert",
         ("posts", "hide", "{post}", "--reason", "Spam: a casino advert"), False,
         "/posts/{post}", "/moderate/posts/{post}/hide", syncs=True),
    Step("unhide_post", "unhide_post", f"unhide post: {POST_TITLE}", "The blog was hacked; fixed now",
         ("posts", "unhide", "{post}", "--reason", "The blog was hacked; fixed now"), True,
         "/moderate/posts", "/moderate/posts/{post}/unhide", syncs=True),
    Step("feature_post", "feature_post", f"feature post: {POST_TITLE}", "A model branch report",
         ("posts", "feature", "{post}", "--reason", "A model branch report"), False,
         "/posts/{post}", "/moderate/posts/{post}/feature"),
    Step("unfeature_post", "unfeature_post", f"unfeature post: {POST_TITLE}", "A week at the top is enough",
         ("posts", "unfeature", "{post}", "--reason", "A week at the top is enough"), True,
         "/moderate/posts", "/moderate/posts/{post}/unfeature"),
    Step("pause_blog", "pause_blog", f"pause blog: {BLOG_TITLE}", "The branch asked for a break",
         ("feeds", "pause", "{blog}", "--reason", "The branch asked for a break"), False,
         "/moderate/blogs/{blog}", "/moderate/blogs/{blog}/pause", syncs=True),
    Step("resume_blog", "resume_blog", f"resume blog: {BLOG_TITLE}", "Back from the break",
         ("feeds", "resume", "{blog}", "--reason", "Back from the break"), True,
         "/moderate/blogs/{blog}", "/moderate/blogs/{blog}/resume", syncs=True),
    Step("remove_blog", "remove_blog", f"remove blog: {BLOG_TITLE}", "Not a movement blog",
         ("feeds", "remove", "{blog}", "--reason", "Not a movement blog"), False,
         "/moderate/blogs/{blog}", "/moderate/blogs/{blog}/remove", syncs=True),
    Step("approve_submission", "approve_blog", "approve blog: Riverside Ward", "Welcome aboard",
         ("submissions", "approve", "{sub1}", "--reason", "Welcome aboard", "--name", "Riverside Ward",
          "--category", "Branches / North"), True,
         "/moderate/queue", "/moderate/submissions/{sub1}/approve",
         fields=(("name", "Riverside Ward"), ("category", "Branches / North")), syncs=True),
    Step("reject_submission", "reject_submission", "reject submission: submission {sub2}",
         "The same blog as submission {sub1}",
         ("submissions", "reject", "{sub2}", "--reason", "The same blog as submission {sub1}"), False,
         "/moderate/queue", "/moderate/submissions/{sub2}/reject"),
    Step("create_poll", "create_poll", f"create poll: {QUESTION}", POLL_REASON,
         ("polls", "create", "--question", QUESTION, "--option", "Buses", "--option", "Libraries", "--json"), True,
         "/moderate/polls/new", "/moderate/polls/new", fields=(("question", QUESTION), ("options", "Buses\nLibraries"))),
    Step("close_poll", "close_poll", f"close poll: {QUESTION}", "closed by a moderator",
         ("polls", "close", "{poll}"), False,
         "/polls/{poll}", "/moderate/polls/{poll}/close"),
]


# --- the site --------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def quick_passwords(monkeypatch):
    """argon2id at its smallest cost: what these tests check is not the hash."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(accounts, "_hasher", lambda: PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def doors(monkeypatch) -> list[tuple[str, str | None]]:
    """(action, the community.moderation function it was logged under) for every log line written.

    Every module that writes log lines imported log_action by name; each gets the spy."""
    real = moderation_log.log_action
    calls: list[tuple[str, str | None]] = []

    def spy(conn, actor, action, **kwargs):
        door, frame = None, sys._getframe(1)
        while frame is not None:  # the outermost community.moderation function on the stack
            if frame.f_code.co_filename == moderation.__file__ and frame.f_code.co_name in DOOR_FUNCTIONS:
                door = frame.f_code.co_name
            frame = frame.f_back
        calls.append((action, door))
        return real(conn, actor, action, **kwargs)

    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("aggregator", "community", "web") and getattr(module, "log_action", None) is real:
            monkeypatch.setattr(module, "log_action", spy)
    return calls


class Site:
    """A real data directory, shared by the command (`cli`) and the web app, holding a blog with
    a post, two pending submissions and a moderator account."""

    def __init__(self, cli):
        self.cli = cli
        cli("init")
        # The command's own settings (HUSTINGS_* set by `cli`), without the page cache: these
        # tests read /moderation right after each action.
        self.settings = load_settings(page_cache_s=0)
        self.engine = db.make_engine(self.settings)
        self.app = make_app(self.settings)
        feed, _ = feed_store.add_feed(self.engine, "http://127.0.0.1:9/feed.xml", title=BLOG_TITLE,
                                      site_url="http://127.0.0.1:9/")
        now = datetime.now(timezone.utc)
        post_store.save_posts(self.engine, feed, [
            Post(feed.id, f"g{i}", f"http://127.0.0.1:9/p/{i}", title, f"<p>{title}, in full.</p>",
                 published=now - timedelta(hours=i), identity=f"g:{i}")
            for i, title in enumerate([POST_TITLE, "The bus depot vote"])])
        subs = [submissions.create(self.engine, url=f"http://127.0.0.1:9/{name}.xml",
                                   feed_url=f"http://127.0.0.1:9/{name}.xml", name=name,
                                   contact=f"editor@{name}.example", note="",
                                   check={"feed_url": f"http://127.0.0.1:9/{name}.xml", "valid": True})
                for name in ("riverside", "riverside-again")]
        accounts.add_moderator(self.engine, EMAIL, PASSWORD)
        cli("index", "sync")
        self.ids = {"blog": feed.id, "sub1": subs[0]["id"], "sub2": subs[1]["id"],
                    "post": {p["title"]: p["id"] for p in post_store.list_posts(self.engine)}[POST_TITLE]}

    def fill(self, text: str) -> str:
        return text.format(**self.ids)

    def reader(self) -> webtest.TestApp:
        return webtest.TestApp(self.app)

    def moderator(self) -> webtest.TestApp:
        app = self.reader()
        page = app.get("/login")
        app.post("/login", {"email": EMAIL, "password": PASSWORD, "csrf_token": csrf_token(page)}, status=303)
        return app

    def public_log(self) -> list[dict]:
        """The rows of /moderation, newest first, as a reader sees them."""
        return log_rows(self.reader().get("/moderation").text)


@pytest.fixture
def site(cli):
    s = Site(cli)
    yield s
    s.engine.dispose()


def csrf_token(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def form_with_action(page, action: str):
    for form in page.forms.values():
        if form.action == action and form.method.upper() == "POST":
            return form
    raise AssertionError(f"no POST form to {action} on {page.request.path}")


class _LogTable(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append([])
        elif self._in_body and tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def log_rows(html: str) -> list[dict]:
    table = _LogTable()
    table.feed(html)
    return [dict(zip(("when", "who", "what", "why"), row)) for row in table.rows]


def expect_line(site: Site, before: int, step: Step, who: str, why: str) -> None:
    """/moderation gained exactly one line, the newest, and it is this action with who and why."""
    rows = site.public_log()
    assert len(rows) == before + 1, f"{step.door}: {len(rows) - before} new lines in /moderation, not 1"
    assert rows[0]["who"] == who, (step.door, rows[0])
    assert rows[0]["what"] == site.fill(step.what), (step.door, rows[0])
    assert rows[0]["why"] == (site.fill(why) or "—"), (step.door, rows[0])


# --- the walks -------------------------------------------------------------------------------------------


def walk_the_command_line(site: Site, doors: list) -> tuple[list[str], list]:
    """Every command-line moderator action once; returns the log's action names in order and
    the functions they were logged under."""
    doors.clear()
    for step in STEPS:
        before = len(site.public_log())
        argv = [site.fill(arg) for arg in step.cli] + (["--by", BY] if step.by else [])
        out, _ = site.cli(*argv)
        if step.door == "create_poll":
            site.ids["poll"] = json.loads(out)["id"]
        expect_line(site, before, step, who=BY if step.by else "command line", why=step.reason)
        if step.syncs:  # what search shows follows at once, as after `posts hide`
            assert writer.check(site.engine, site.settings).pending == 0, f"{step.door}: search index not synced"
    return _actions(site), list(doors)


def _actions(site: Site) -> list[str]:
    return [row["action"] for row in moderation_log.moderation_entries(site.engine, limit=len(STEPS))][::-1]


def walk_the_web(site: Site, doors: list) -> tuple[list[str], list]:
    """Every moderator form once, signed in; returns the log's action names in order and the
    functions they were logged under."""
    mod = site.moderator()
    doors.clear()
    for step in STEPS:
        before = len(site.public_log())
        form = form_with_action(mod.get(site.fill(step.page)), site.fill(step.form))
        why = step.reason if step.door in ("create_poll", "close_poll") else ""
        if "reason" in form.fields:  # the picks' buttons take no reason; the others do
            form["reason"] = why = site.fill(step.reason)
        for name, value in step.fields:
            form[name] = value
        res = form.submit(status=303)
        if step.door == "create_poll":
            site.ids["poll"] = int(res.headers["Location"].rsplit("/", 1)[1])
        expect_line(site, before, step, who=EMAIL.split("@")[0], why=why)
    return _actions(site), list(doors)


def test_every_command_line_action_is_a_line_of_the_public_log(site, doors):
    actions, logged_under = walk_the_command_line(site, doors)
    assert actions == [step.action for step in STEPS]
    assert logged_under == [(step.action, step.door) for step in STEPS]


def test_every_moderator_form_is_a_line_of_the_public_log(site, doors):
    actions, logged_under = walk_the_web(site, doors)
    assert actions == [step.action for step in STEPS]
    assert logged_under == [(step.action, step.door) for step in STEPS]


def test_both_doors_are_the_same_door(cli, tmp_path, doors, monkeypatch):
    """The same walk through each door writes the same log lines under the same functions."""
    by_command = Site(cli)
    command_actions, command_doors = walk_the_command_line(by_command, doors)
    by_command.engine.dispose()
    monkeypatch.setenv("HUSTINGS_DATA_DIR", str(tmp_path / "web"))  # a second, fresh site
    by_web = Site(cli)
    web_actions, web_doors = walk_the_web(by_web, doors)
    by_web.engine.dispose()
    assert command_actions == web_actions
    assert command_doors == web_doors == [(step.action, step.door) for step in STEPS]
    assert {door for _, door in command_doors} == set(DOOR_FUNCTIONS)  # no action left out of the walk


# --- the command's answers -------------------------------------------------------------------------------


def test_refusals_name_the_id_in_one_line_and_log_nothing(site):
    before = len(site.public_log())
    post, blog = site.ids["post"], site.ids["blog"]
    for argv, words in [
        (("posts", "hide", "999", "--reason", "spam"), "999"),
        (("posts", "unhide", "999"), "999"),
        (("posts", "feature", "999"), "999"),
        (("posts", "unfeature", "999"), "999"),
        (("posts", "hide", str(post), "--reason", "  "), "say why"),
        (("feeds", "pause", "999"), "999"),
        (("feeds", "resume", str(blog)), "only a paused, gone or removed blog"),
        (("feeds", "remove", "999", "--reason", "gone"), "999"),
        (("feeds", "remove", str(blog), "--reason", " "), "say why"),
        (("submissions", "approve", "999"), "999"),
        (("submissions", "reject", "999", "--reason", "no"), "999"),
        (("submissions", "reject", str(site.ids["sub1"]), "--reason", " "), "say why"),
        (("polls", "close", "999"), "999"),
    ]:
        _, err = site.cli(*argv, expect=1)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hustings: "), (argv, err)
        assert words in lines[0] and re.search(rf"\b{argv[2]}\b", lines[0]), (argv, err)
    site.cli("posts", "hide", str(post), "--reason", "spam")
    _, err = site.cli("posts", "feature", str(post), expect=1)
    assert err.startswith(f"hustings: post {post}: a hidden post cannot be an editor's pick")
    site.cli("feeds", "pause", str(blog))
    _, err = site.cli("feeds", "pause", str(blog), expect=1)
    assert err.startswith(f"hustings: feed {blog}: {BLOG_TITLE} is paused")
    site.cli("submissions", "approve", str(site.ids["sub1"]))
    _, err = site.cli("submissions", "approve", str(site.ids["sub1"]), expect=1)
    assert f"submission {site.ids['sub1']} was already approved by command line" in err
    assert len(site.public_log()) == before + 3  # the three that were allowed, and nothing else


def test_submissions_list_shows_the_queue_without_the_bloggers_token(site):
    out, _ = site.cli("submissions", "list")
    assert "riverside-again" in out and "editor@riverside.example" in out and "pending" in out
    queue = json.loads(site.cli("submissions", "list", "--json")[0])
    assert [s["id"] for s in queue] == [site.ids["sub1"], site.ids["sub2"]]
    assert all("token" not in s and s["status"] == "pending" and s["check"]["valid"] for s in queue)
    token = submissions.get(site.engine, site.ids["sub1"])["token"]
    assert token not in json.dumps(queue)

    site.cli("submissions", "approve", str(site.ids["sub1"]), "--name", "Riverside Ward", "--by", BY)
    assert [s["id"] for s in json.loads(site.cli("submissions", "list", "--json")[0])] == [site.ids["sub2"]]
    everything = json.loads(site.cli("submissions", "list", "--all", "--json")[0])
    decided = next(s for s in everything if s["id"] == site.ids["sub1"])
    assert decided["status"] == "approved" and decided["decided_by"] == BY
    assert feed_store.get_feed(site.engine, decided["feed_id"]).title == "Riverside Ward"
    site.cli("submissions", "reject", str(site.ids["sub2"]), "--reason", "duplicate")
    assert "no submissions are waiting" in site.cli("submissions", "list")[0]
    assert "rejected" in site.cli("submissions", "list", "--all")[0]


def test_a_rejection_from_the_command_line_tells_the_blogger_with_a_working_link(site):
    site.cli("submissions", "reject", str(site.ids["sub2"]), "--reason", "Not about the movement")
    [message] = [m for m in outbox.messages(site.engine, limit=10) if m["kind"] == "rejected"]
    assert message["to_address"] == "editor@riverside-again.example"
    assert "Not about the movement" in message["body"]
    link = re.search(r"(/submit/\d+\?token=\S+)", message["body"]).group(1)
    page = site.reader().get(link.rstrip("."))
    assert "Not about the movement" in page.text


def test_the_cached_public_log_shows_a_command_line_action_at_once(site):
    """With the page cache on (as in production), /moderation is not served stale after an action:
    every log line takes a change number, which is what invalidates cached pages."""
    cached = webtest.TestApp(make_app(dataclasses.replace(site.settings, page_cache_s=60)))
    before = log_rows(cached.get("/moderation").text)
    site.cli("feeds", "pause", str(site.ids["blog"]), "--reason", "on holiday")
    time.sleep(1.1)  # the cache reads the database's change counter at most once a second (web/cache.py)
    after = log_rows(cached.get("/moderation").text)
    assert len(after) == len(before) + 1
    assert "on holiday" in str(after[0])
