"""Shared fixtures: real HTTP servers on loopback, real databases, settings.

Storage tests (the modules in STORAGE_MODULES) run twice: on a real SQLite file and on a
fresh database of a real PostgreSQL server (tests/postgres_server.py finds, starts or
installs it). Tests build `Settings(data_dir=...)` as a user would; on the PostgreSQL
run every data directory a test uses is given its own fresh database, so the same test
code exercises both. Subprocesses a test starts get the URL through
HUSTINGS_DATABASE_URL (see `subprocess_env`).

No test may send a packet to any address but loopback: servers bind 127.0.0.1
(and 127.0.0.2 for traps), and the only hostnames used are IP literals, so no
name is ever looked up in DNS.
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import os
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from aggregator import db
from aggregator.settings import Settings
from tests import postgres_server

# Every module whose tests touch storage runs on both databases.
STORAGE_MODULES = {
    "test_subscribe_web", "test_mail_delivery", "test_mail_crash", "test_mail_commands", "test_digest", "test_digest_web",
    "test_store", "test_smoke_pipeline", "test_fetch", "test_index", "test_search", "test_scheduler", "test_worker",
    "test_polls_web", "test_community", "test_moderation", "test_submissions", "test_web", "test_cli",
    "test_migrations", "test_one_door", "test_spiders_crawl", "test_hardening_auth", "test_syndication_safety",
    "test_postgres", "test_notices", "test_ballots_concurrency", "test_storable_text", "test_replica", "test_recommendation_worth", "test_status_backup",
    "test_front_page", "test_recommend_lines", "test_campaigns", "test_campaigns_concurrency", "test_sections",
    "test_digest_campaigns", "test_campaigns_edit", "test_campaigns_organiser_close",
    "test_front_layout", "test_share_tags", "test_post_page",
    "test_hardening_more", "test_search_quality",
}
_PG_ERROR = "HUSTINGS_TEST_PG_ERROR"  # HUSTINGS_TEST_* are never read as settings


def pytest_configure(config):
    """Provision PostgreSQL once, in the controlling process, before any worker starts;
    workers inherit the outcome through the environment."""
    if hasattr(config, "workerinput") or not postgres_server.wanted():
        return
    try:
        postgres_server.provision()
        os.environ.pop(_PG_ERROR, None)
    except Exception as exc:  # the PostgreSQL tests fail with this reason
        os.environ[_PG_ERROR] = f"{type(exc).__name__}: {exc}"


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput") and postgres_server.wanted() and not os.environ.get(_PG_ERROR):
        try:
            postgres_server.drop_template()
        except Exception:  # the server went away: nothing to tidy
            pass


def pytest_generate_tests(metafunc):
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    # A module may name its own backends (BACKENDS = ["postgresql"] for the cluster's tests).
    backends = getattr(metafunc.module, "BACKENDS", None)
    if backends is None and module in STORAGE_MODULES:
        backends = ["sqlite", "postgresql"]
    if backends and "database" in metafunc.fixturenames:
        # Module scope: a module's shared fixtures (a site built once) are built once per database.
        metafunc.parametrize("database", backends, indirect=True, scope="module")


@pytest.fixture(scope="module", autouse=True)
def database(request):
    """Which database this module's tests run on: "sqlite" or "postgresql" (see STORAGE_MODULES).
    Module-scoped fixtures that build a site take `database` as an argument, so they are built
    after it, once per database."""
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        yield kind
        return
    if not postgres_server.wanted():
        pytest.skip("PostgreSQL tests are off: HUSTINGS_TEST_POSTGRES=0 was set")
    if os.environ.get(_PG_ERROR):
        pytest.fail(f"no PostgreSQL server for the tests: {os.environ[_PG_ERROR]} "
                    "(set HUSTINGS_TEST_POSTGRES=0 to run without it on purpose)")
    made: dict[str, str] = {}
    empty = request.node.get_closest_marker("empty_database") is not None

    def resolved(self) -> str:
        if self.database_url:
            return self.database_url
        key = str(Path(self.data_dir).resolve())
        if key not in made:
            made[key] = postgres_server.create_database(empty=empty)
        return postgres_server.url(made[key])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Settings, "resolved_database_url", property(resolved))
        yield kind
    for name in made.values():
        postgres_server.drop_database(name)


def subprocess_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment for a `hustings` subprocess using `settings`' database, on either backend."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUSTINGS_")}
    env["HUSTINGS_DATA_DIR"] = str(settings.data_dir)
    if not settings.resolved_database_url.startswith("sqlite"):
        env["HUSTINGS_DATABASE_URL"] = settings.resolved_database_url
    env.update(extra)
    return env

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPORA = SHARED / "corpora"


def corpus(*parts: str) -> Path:
    """A path in ../shared/corpora, or skip the test saying the corpus is absent."""
    path = CORPORA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"third-party corpus {path} is absent (it lives in ../shared/corpora beside the repo; CI has it)")
    return path


def _is_loopback(host) -> bool:
    try:
        ip = ipaddress.ip_address(str(host).split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Fail the test, before any packet leaves, on a DNS lookup or a non-loopback connect.

    Covers this process; tests that start subprocesses use IP literals only.
    """
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            pytest.fail(f"a test tried to connect to {address!r}, which is not loopback")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_loopback(host):
            pytest.fail(f"a test tried to resolve {host!r} (a DNS lookup or a non-loopback address)")
        return real_getaddrinfo(host, *args, **kwargs)

    def no_reverse_lookup(*args, **kwargs):
        pytest.fail("a test tried a reverse DNS lookup")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "gethostbyaddr", no_reverse_lookup)
    monkeypatch.setattr(socket, "getfqdn", lambda name="": no_reverse_lookup())


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch):
    """No HUSTINGS_* setting leaks in from the machine running the tests."""
    for key in list(os.environ):
        if key.startswith("HUSTINGS_") and not key.startswith("HUSTINGS_TEST_"):
            monkeypatch.delenv(key)
    # A proxy in the environment must never be used by the fetcher; make sure one is
    # visible so a regression would show (it points at a closed loopback port).
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", allow_networks=("127.0.0.1/32",), fetch_deadline_s=5.0)


@pytest.fixture
def engine(settings):
    eng = db.make_engine(settings)
    db.migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def captured(monkeypatch):
    """The feedparser result parse_feed computes (and the keyword arguments it passed)."""
    import feedparser

    seen: dict = {}
    real = feedparser.parse

    def spy(*args, **kwargs):
        seen["result"] = real(*args, **kwargs)
        seen["kwargs"] = kwargs
        return seen["result"]

    monkeypatch.setattr(feedparser, "parse", spy)
    return seen


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """Run `hustings ARGS` in-process on a fresh data dir; assert the exit code and no traceback."""
    from hustings.cli import main

    monkeypatch.setenv("HUSTINGS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HUSTINGS_ALLOW_NETWORKS", "127.0.0.1/32")
    monkeypatch.setenv("HUSTINGS_LOG_LEVEL", "WARNING")

    def run(*args, expect=0):
        try:
            code = main(list(args))
        except SystemExit:
            raise
        except BaseException as exc:  # a crash is a failure with the command named
            pytest.fail(f"hustings {' '.join(map(str, args))[:80]} raised {type(exc).__name__}: {exc}")
        out, err = capsys.readouterr()
        assert code == expect, (args, code, out, err)
        assert "Traceback" not in err and "Traceback" not in out
        return out, err

    run.data_dir = tmp_path / "data"
    return run


# --- loopback HTTP servers ------------------------------------------------------


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # handler(request_handler) takes over the whole response when set.
    handler: Callable[[http.server.BaseHTTPRequestHandler], None] | None = None
    etag: str = ""  # when set, answers 304 to a matching If-None-Match


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


class LoopbackServer:
    """A real threaded HTTP server on a loopback address with routes set by the test."""

    def __init__(self, host: str = "127.0.0.1"):
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                outer.requests.append(Seen("GET", self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = outer.routes.get(self.path) or outer.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    self._send(404, b"not found", {"Content-Type": "text/plain"})
                    return
                if route.handler is not None:
                    try:
                        route.handler(self)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return
                if route.etag and self.headers.get("If-None-Match") == route.etag:
                    self._send(304, b"", {"ETag": route.etag})
                    return
                headers = dict(route.headers)
                if route.etag:
                    headers["ETag"] = route.etag
                self._send(route.status, route.body, headers)

            def _send(self, status, body, headers):
                self.send_response(status)
                headers = dict(headers)
                headers.setdefault("Content-Type", "application/xml")
                headers.setdefault("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if body:
                    try:
                        self.wfile.write(body)
                    except (BrokenPipeError, ConnectionResetError):
                        pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def server_bind(self):
                # HTTPServer.server_bind calls socket.getfqdn(host): for 127.0.0.2 that is a
                # reverse DNS query sent to the system's resolver, off loopback. Skip it.
                socketserver.TCPServer.server_bind(self)
                self.server_name, self.server_port = self.server_address[:2]

        self.httpd = Server((host, 0), Handler)
        self.host = host
        self.port = self.httpd.server_port
        # A short poll interval so shutdown() returns at once instead of after 0.5 s.
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def route(self, path: str, body: bytes | str = b"", *, status: int = 200, headers: dict | None = None,
              handler=None, etag: str = "", content_type: str | None = None) -> str:
        if isinstance(body, str):
            body = body.encode("utf-8")
        headers = dict(headers or {})
        if content_type:
            headers["Content-Type"] = content_type
        self.routes[path] = Route(status=status, body=body, headers=headers, handler=handler, etag=etag)
        return self.url(path)

    def hits(self, path: str | None = None) -> int:
        return sum(1 for r in self.requests if path is None or r.path == path)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = LoopbackServer("127.0.0.1")
    yield srv
    srv.close()


@pytest.fixture
def trap():
    """A server on 127.0.0.2: tests allow only 127.0.0.1/32, so nothing may ever reach it."""
    srv = LoopbackServer("127.0.0.2")
    yield srv
    srv.close()


def rss(items: list[dict], title: str = "Test Blog", link: str = "http://127.0.0.1/", extra: str = "") -> str:
    """A small RSS 2.0 document; each item dict may have title, link, guid, date, description, content."""
    parts = []
    for it in items:
        fields = []
        for key, tag in (("title", "title"), ("link", "link"), ("guid", "guid"), ("date", "pubDate"),
                         ("author", "author")):
            if it.get(key) is not None:
                fields.append(f"<{tag}>{it[key]}</{tag}>")
        if it.get("description") is not None:
            fields.append(f"<description><![CDATA[{it['description']}]]></description>")
        if it.get("content") is not None:
            fields.append(f"<content:encoded><![CDATA[{it['content']}]]></content:encoded>")
        for cat in it.get("categories", []):
            fields.append(f"<category>{cat}</category>")
        parts.append("<item>" + "".join(fields) + "</item>")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>{title}</title><link>{link}</link>{extra}" + "".join(parts) + "</channel></rss>"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    """A real SMTP server (aiosmtpd) on a loopback port, for the test's mail to go to."""
    from tests.smtp_server import SmtpServer

    server = SmtpServer(free_port())
    yield server
    server.close()


def wait_until(predicate, timeout: float, every: float = 0.05) -> bool:
    """Whether predicate() came true within timeout seconds (asked every `every` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def wait_for(condition, timeout: float, what: str):
    """condition()'s first true value within timeout seconds, or the test fails naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def load_json(text: str):
    return json.loads(text)
