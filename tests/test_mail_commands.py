"""`hustings subscribers`, `digest` and `mail`, run in-process on a real database, sending to a
real SMTP server on loopback."""

from __future__ import annotations

import json

import pytest

from tests.conftest import free_port


@pytest.fixture
def mail_cli(cli, smtp, monkeypatch):
    for name, value in {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_SECURITY": "none",
                        "MAIL_RATE_PER_S": "0", "SITE_URL": "https://hustings.example",
                        "MAIL_FROM": "Hustings <digest@hustings.example>"}.items():
        monkeypatch.setenv(f"HUSTINGS_{name}", value)
    return cli


def _feed(cli, tmp_path):
    from aggregator import db, feed_store, post_store
    from aggregator.models import Post
    from aggregator.settings import load_settings

    settings = load_settings()
    engine = db.make_engine(settings)
    db.migrate(engine)
    feed, _ = feed_store.add_feed(engine, "http://127.0.0.1:9/feed.xml", title="Valley Branch",
                                  site_url="http://127.0.0.1:9/")
    post_store.save_posts(engine, feed, [Post(feed.id, "g1", "http://127.0.0.1:9/p/1", "Saving the library",
                                              "<p>Saving the library.</p>", identity="g:1")])
    engine.dispose()


def test_subscribers_add_list_import_remove(mail_cli, smtp, tmp_path):
    out, _ = mail_cli("subscribers", "add", "A@Example.org", "b@example.org", "--confirmed", "--frequency", "weekly")
    assert "a@example.org: added, confirmed" in out
    out, _ = mail_cli("subscribers", "add", "c@example.org", "--json")
    assert json.loads(out)["subscribers"] == [{"email": "c@example.org", "outcome": "confirm"}]
    csv = tmp_path / "list.csv"
    csv.write_text("email,frequency\nd@example.org,daily\nnot an address,daily\ne@example.org,weekly\n")
    out, err = mail_cli("subscribers", "import", str(csv), "--confirmed", expect=1)
    assert "d@example.org: added, confirmed" in out and "e@example.org: added, confirmed" in out
    assert "not an address" in out and "1 address refused" in err
    listed = json.loads(mail_cli("subscribers", "list", "--json")[0])["subscribers"]
    assert {(s["email"], s["status"], s["frequency"]) for s in listed} == {
        ("a@example.org", "confirmed", "weekly"), ("b@example.org", "confirmed", "weekly"),
        ("c@example.org", "pending", "daily"), ("d@example.org", "confirmed", "daily"),
        ("e@example.org", "confirmed", "weekly")}
    out, _ = mail_cli("subscribers", "list", "--status", "pending")
    assert "c@example.org" in out and "a@example.org" not in out
    mail_cli("subscribers", "remove", "C@example.org")
    mail_cli("subscribers", "remove", "c@example.org", expect=1)
    mail_cli("subscribers", "add", "x@example.org\r\nBcc: y@example.org", expect=1)
    mail_cli("mail", "deliver")
    assert smtp.to("c@example.org") == []  # removed before its confirmation went out


def test_digest_preview_then_send_twice(mail_cli, smtp, tmp_path):
    mail_cli("init")
    _feed(mail_cli, tmp_path)
    mail_cli("subscribers", "add", "a@example.org", "b@example.org", "--confirmed")
    out, _ = mail_cli("digest", "preview")
    assert out.startswith("Subject: Hustings daily, ") and "Saving the library" in out
    assert smtp.messages == []  # a preview sends nothing and stores nothing
    out, _ = mail_cli("digest", "send", "--json")
    sent = json.loads(out)
    assert sent["queued"] == 2 and sent["delivery"]["sent"] == 2 and sent["issue"]["built"] is True
    out, _ = mail_cli("digest", "send")
    assert "0 messages queued" in out and "0 sent" in out
    assert sorted(m.to for m in smtp.messages) == ["a@example.org", "b@example.org"]
    assert json.loads(mail_cli("digest", "preview", "--json")[0])["built"] is True
    mail_cli("digest", "send", "--date", "05/12/2026", expect=1)


def test_mail_test_and_deliver_all(mail_cli, smtp):
    out, _ = mail_cli("mail", "test", "Ops@Example.org")
    assert "test message sent to ops@example.org" in out
    [m] = smtp.to("ops@example.org")
    assert m.message["Subject"] == "A test message from Hustings"
    smtp.answer("later@example.org", 451)
    mail_cli("mail", "test", "later@example.org", expect=1)
    out, _ = mail_cli("mail", "deliver", "--json")
    assert json.loads(out)["sent"] == 0  # still waiting for its retry
    out, _ = mail_cli("mail", "deliver", "--all")
    assert "1 sent" in out and len(smtp.to("later@example.org")) == 1


def test_mail_deliver_says_when_the_server_is_down(mail_cli, monkeypatch):
    monkeypatch.setenv("HUSTINGS_SMTP_PORT", str(free_port()))
    _, err = mail_cli("mail", "test", "ops@example.org", expect=1)
    assert "cannot send through 127.0.0.1" in err
