"""The `hustings` command, end to end over loopback servers and a real data directory."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from aggregator import db
from aggregator.settings import Settings

from .conftest import rss

ROOT = Path(__file__).resolve().parents[1]


def test_import_real_opml_list_and_export(cli, tmp_path):
    cli("init")
    out, _ = cli("feeds", "import", str(ROOT / "feeds.opml"), "--json")
    report = json.loads(out)
    assert report["added"] >= 20 and report["already_known"] == 0
    listed = json.loads(cli("feeds", "list", "--json")[0])
    assert len(listed) == report["added"]
    assert all(f["category"] and f["status"] == "active" and f["url"].startswith("https://") for f in listed)
    for key in ("url", "title", "status", "error_count", "last_error", "next_check_at"):
        assert key in listed[0]
    again = json.loads(cli("feeds", "import", str(ROOT / "feeds.opml"), "--json")[0])
    assert again["added"] == 0 and again["already_known"] == report["added"]
    export = tmp_path / "out.opml"
    cli("feeds", "export", str(export))
    text = export.read_text()
    assert all(f["url"] in text for f in listed)


def test_add_discovers_fetch_stores_posts_lists_json(cli, server):
    server.route("/feed.xml", rss([
        {"title": "Canvassing in the rain", "link": server.url("/p/1"), "guid": "1",
         "date": "Mon, 02 Nov 2026 10:00:00 GMT", "author": "jo@example.org (Jo Bloggs)",
         "description": "<p>Doors knocked: 40.</p><script>alert(1)</script>"},
    ], link=server.url("/")))
    server.route("/", '<html><head><link rel="alternate" type="application/rss+xml" href="/feed.xml"></head></html>',
                 content_type="text/html")
    added = json.loads(cli("feeds", "add", server.url("/"), "--json")[0])
    assert added["url"] == server.url("/feed.xml") and added["created"] and added["entries"] == 1
    summary = json.loads(cli("fetch", "--json")[0])
    assert {k: summary[k] for k in ("feeds", "ok", "failed", "new_posts")} == {"feeds": 1, "ok": 1, "failed": 0, "new_posts": 1}
    [post] = json.loads(cli("posts", "--json")[0])
    assert set(post) >= {"id", "feed_id", "url", "title", "author", "published", "first_seen", "content_html", "summary"}
    assert post["title"] == "Canvassing in the rain" and post["author"] == "Jo Bloggs"
    assert "script" not in post["content_html"] and post["summary"] == "Doors knocked: 40."
    assert post["published"].startswith("2026-11-02T10:00:00")
    # Nothing due any more; --all and --feed fetch anyway (the server honours nothing: same bytes).
    assert json.loads(cli("fetch", "--json")[0])["feeds"] == 0
    assert json.loads(cli("fetch", "--all", "--json")[0])["not_modified"] == 1
    assert json.loads(cli("fetch", "--feed", "1", "--json")[0])["feeds"] == 1
    out, _ = cli("fetch", "--feed", server.url("/feed.xml"))
    assert "1 feeds:" in out
    cli("posts", "hide", str(post["id"]), "--reason", "spam")
    assert json.loads(cli("posts", "--json")[0]) == []
    cli("posts", "unhide", str(post["id"]))
    assert len(json.loads(cli("posts", "--json")[0])) == 1


def test_failures_name_the_feed_and_url_without_traceback(cli, server, trap):
    cli("init")
    gone = server.route("/gone.xml", "", status=410)
    cli("feeds", "add", gone, "--no-check")
    out, _ = cli("fetch", "--feed", gone, expect=1)
    assert f"feed 1 ({gone})" in out and "410" in out
    [row] = json.loads(cli("feeds", "list", "--json")[0])
    assert row["status"] == "gone" and row["error_count"] == 1 and "410" in row["last_error"]
    # A batch with a failing feed still exits 0 and reports it.
    ok = server.route("/ok.xml", rss([{"title": "t", "link": server.url("/t"), "guid": "t"}]))
    cli("feeds", "add", ok)
    summary = json.loads(cli("fetch", "--all", "--json")[0])
    assert summary["ok"] == 1 and summary["feeds"] == 1  # gone feeds are no longer polled
    # Adding a page with no feed, or a blocked address, fails clearly.
    nofeed = server.route("/plain", "<html><body>no feeds here</body></html>", content_type="text/html")
    _, err = cli("feeds", "add", nofeed, expect=1)
    assert "no feed found" in err and nofeed in err
    _, err = cli("feeds", "add", trap.url("/feed.xml"), expect=1)
    assert "refusing to connect" in err and "127.0.0.2" in err
    assert trap.hits() == 0
    _, err = cli("fetch", "--feed", "999", expect=1)
    assert "999" in err


def test_bad_settings_and_old_schema_exit_codes(cli, monkeypatch):
    monkeypatch.setenv("HUSTINGS_FETCH_DEADLINE_S", "forever")
    _, err = cli("feeds", "list", expect=2)
    assert "fetch_deadline_s" in err
    monkeypatch.delenv("HUSTINGS_FETCH_DEADLINE_S")
    _, err = cli("--set", "no_such=1", "feeds", "list", expect=2)
    assert "no_such" in err
    cli("init")
    engine = db.make_engine(Settings(data_dir=cli.data_dir))
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0000'"))
    engine.dispose()
    _, err = cli("feeds", "list", expect=3)
    assert "hustings init" in err
    _, err = cli("init", expect=3)  # a revision this code does not know: refused, not guessed at
    assert "0000" in err and "does not know" in err


def test_settings_command_shows_layers(cli, tmp_path):
    cfg = tmp_path / "h.toml"
    cfg.write_text('sanitizer = "bleach"\n')
    values = json.loads(cli("--config", str(cfg), "--set", "fetch_workers=3", "settings", "--json")[0])
    assert values["sanitizer"] == "bleach" and values["fetch_workers"] == 3
    assert values["allow_networks"] == ["127.0.0.1/32"]


def test_console_script_in_a_real_process(tmp_path, server):
    url = server.route("/f.xml", rss([{"title": "Over the wire", "link": server.url("/1"), "guid": "1"}]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUSTINGS_")}
    env.update(HUSTINGS_DATA_DIR=str(tmp_path / "d"), HUSTINGS_ALLOW_NETWORKS="127.0.0.1/32")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "hustings", *args], env=env, capture_output=True, text=True,
                              timeout=60, cwd=tmp_path)

    assert run("init").returncode == 0
    assert run("feeds", "add", url).returncode == 0
    fetched = run("fetch", "--json")
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads(fetched.stdout)["new_posts"] == 1
    posts = json.loads(run("posts", "--json").stdout)
    assert posts[0]["title"] == "Over the wire"


def test_global_options_work_after_the_command_too(cli, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    cli("feeds", "add", "http://127.0.0.1:9/feed.xml", "--no-check", "--data-dir", str(elsewhere))
    listed = json.loads(cli("feeds", "list", "--json", "--data-dir", str(elsewhere))[0])
    assert [f["url"] for f in listed] == ["http://127.0.0.1:9/feed.xml"]
    assert json.loads(cli("feeds", "list", "--json")[0]) == []  # the default data dir was not touched
    values = json.loads(cli("settings", "--json", "--set", "fetch_workers=3")[0])
    assert values["fetch_workers"] == 3


@pytest.mark.parametrize("command", ["serve", "run", "demo"])
def test_a_busy_port_is_refused_in_one_line_before_anything_starts(cli, command):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        _, err = cli(command, "--port", str(port), expect=1)
    assert err.strip() == (f"hustings: port {port} on 127.0.0.1 is already in use (another Hustings, or another "
                           "program): stop it, or choose another port with --port")


def test_run_links_to_where_it_listens_when_site_url_is_not_set(tmp_path, database):
    import http.client
    import socket
    import time

    from aggregator.settings import Settings
    from tests.conftest import subprocess_env

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = subprocess_env(Settings(data_dir=tmp_path / "d"), HUSTINGS_ALLOW_NETWORKS="127.0.0.1/32",
                         HUSTINGS_LOG_LEVEL="WARNING")
    proc = subprocess.Popen([sys.executable, "-m", "hustings", "run", "--port", str(port)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)  # no proxy, whatever the env says
                conn.request("GET", "/feed.atom")
                atom = conn.getresponse().read().decode()
                conn.close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() else ""
                time.sleep(0.2)
        assert f"http://127.0.0.1:{port}/" in atom and "localhost:8080" not in atom
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_routine_scheduler_skips_are_not_logged_but_other_warnings_are(cli, caplog):
    import logging

    cli("settings", "--json")  # main() installs the filter
    sched_log = logging.getLogger("apscheduler.scheduler")
    with caplog.at_level(logging.WARNING, logger="apscheduler.scheduler"):
        sched_log.warning('Execution of job "dispatch" skipped: maximum number of running instances reached (1)')
        sched_log.warning('Run time of job "dispatch" was missed by 0:00:05')
    assert [r.getMessage()[:24] for r in caplog.records] == ['Run time of job "dispatc']


def test_each_group_registers_exactly_the_commands_it_is_listed_with():
    """`hustings X` builds only X's group (hustings/commands/__init__.py, COMMANDS): a command
    missing from that list would be refused as unknown, so the list must be what is registered."""
    import argparse

    from hustings.commands import COMMANDS, GROUP_NAMES, groups

    assert tuple(COMMANDS) == GROUP_NAMES
    for name, group in zip(GROUP_NAMES, groups()):
        sub = argparse.ArgumentParser().add_subparsers()
        group.register(sub)
        assert tuple(sub.choices) == COMMANDS[name], name


def test_fetch_imports_only_what_fetching_needs(tmp_path):
    # No timing here: what it leaves out (Alembic, the other commands, Whoosh, the web app)
    # was half of every `hustings fetch`'s start-up (issue 15).
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUSTINGS_")}
    env.update(HUSTINGS_DATA_DIR=str(tmp_path / "d"), HUSTINGS_ALLOW_NETWORKS="127.0.0.1/32")
    assert subprocess.run([sys.executable, "-m", "hustings", "init"], env=env, capture_output=True).returncode == 0
    code = ("import sys; from hustings.cli import main; rc = main(['fetch', '--all', '--json', '--no-index']); "
            "sys.stdout.flush(); print(sorted({m.split('.')[0] if not m.startswith('hustings.commands.') else m "
            "for m in sys.modules} & {'alembic', 'whoosh', 'bottle', 'jinja2', 'web', 'index', 'scrapy', "
            "'hustings.commands.campaigns', 'hustings.commands.site', 'hustings.commands.polls'}), file=sys.stderr); "
            "sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"
    assert json.loads(done.stdout)["feeds"] == 0
