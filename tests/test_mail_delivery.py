"""The one delivery path (community/mailer.py) against a real SMTP server on loopback.

Every message is read back from the aiosmtpd server and parsed with the `email` package.
The server is told to answer chosen recipients 451 (try later) or 550 (no such user).
"""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
import sqlalchemy as sa

from aggregator.db import outbox, utcnow, writing
from community import digest, mailer, subscriptions
from community import outbox as outbox_module
from community.addresses import BadAddress, normal_address
from community.mail_compose import Parts, compose
from tests.conftest import free_port
from tests.mailsite import MailSite, mail_settings


@pytest.fixture
def site(tmp_path, smtp):
    s = MailSite(tmp_path / "data", smtp, web=False)
    s.blog("Valley Branch", "Local parties", ["Saving the library", "The bus depot vote"])
    yield s
    s.close()


def queue_issue(site, key: str | None = None) -> digest.Issue:
    issue = digest.build(site.engine, site.settings, "daily", key)
    digest.queue(site.engine, issue)
    return issue


def test_several_messages_go_over_one_connection(site, smtp):
    site.confirmed(*[f"reader{i}@example.org" for i in range(5)])
    queue_issue(site)
    report = site.deliver()
    assert (report.sent, report.failed, report.deferred) == (5, 0, 0)
    assert smtp.count() == 5 and smtp.connections == 1
    assert {r["status"] for r in site.rows()} == {"sent"}


def test_a_451_is_retried_later_and_then_sent_once(site, smtp):
    site.confirmed("slow@example.org", "quick@example.org")
    smtp.answer("slow@example.org", 451)
    queue_issue(site)
    first = site.deliver()
    assert (first.sent, first.deferred) == (1, 1)
    [row] = site.rows(outbox.c.to_address == "slow@example.org")
    assert row["status"] == "queued" and row["attempts"] == 1 and "451" in row["last_error"]
    assert row["next_attempt_at"] > utcnow() + timedelta(seconds=mailer.FIRST_RETRY_S * 0.8)
    assert site.deliver().handled == 0  # not due yet: the backoff holds
    later = site.deliver(ignore_backoff=True)
    assert later.sent == 1
    assert len(smtp.to("slow@example.org")) == 1 and len(smtp.to("quick@example.org")) == 1
    [row] = site.rows(outbox.c.to_address == "slow@example.org")
    assert row["status"] == "sent" and row["attempts"] == 2


def test_a_550_marks_the_message_failed_and_repeated_ones_suspend_the_subscriber(site, smtp):
    site.confirmed("gone@example.org", "fine@example.org")
    smtp.answer("gone@example.org", 550, always=True)
    today = digest.local_today(site.settings, utcnow())
    for days in (2, 1):
        queue_issue(site, digest.key_for("daily", today - timedelta(days=days)))
        report = site.deliver()
        assert report.failed == 1 and report.sent == 1
        assert "550" in report.failures[0]
    [first, second] = site.rows(outbox.c.to_address == "gone@example.org")
    assert first["status"] == second["status"] == "failed" and first["attempts"] == 1
    assert subscriptions.by_email(site.engine, "gone@example.org").status == "confirmed"
    queue_issue(site, digest.key_for("daily", today))
    site.deliver()
    gone = subscriptions.by_email(site.engine, "gone@example.org")
    assert gone.status == "suspended" and gone.failures == subscriptions.SUSPEND_AFTER
    assert smtp.to("gone@example.org") == []
    assert len(mailer.recent_failures(site.engine)) == 3


def test_an_unconfirmed_or_departed_address_is_sent_nothing_but_its_confirmation(site, smtp):
    subscriptions.subscribe(site.engine, site.settings, "pending@example.org")
    left = site.confirmed("left@example.org")[0]
    issue = digest.build(site.engine, site.settings, "daily")
    pending = subscriptions.by_email(site.engine, "pending@example.org")
    with writing(site.engine) as conn:  # rows no code path writes: the mailer still refuses them
        for sub in (pending, left):
            conn.execute(sa.insert(outbox).values(to_address=sub.email, subject="x", body="", kind="digest",
                                                  created_at=utcnow(), subscriber_id=sub.id, issue_id=issue.id))
    subscriptions.leave(site.engine, left.id)
    report = site.deliver()
    assert report.sent == 1  # the confirmation
    assert [m.message["Subject"] for m in smtp.to("pending@example.org")] == [
        "Confirm your subscription to the Hustings daily digest"]
    assert smtp.to("left@example.org") == []
    assert {r["status"] for r in site.rows(outbox.c.kind == "digest")} == {"cancelled"}


def test_the_messages_bloggers_were_already_sent_go_through_the_same_path(site, smtp):
    with writing(site.engine) as conn:
        outbox_module.queue(conn, "editor@valley.example", "Your blog Valley Branch is now on Hustings",
                            "Good news.\n", "approved")
    assert site.deliver().sent == 1
    [m] = smtp.to("editor@valley.example")
    assert m.message["Subject"] == "Your blog Valley Branch is now on Hustings"
    assert m.message["Auto-Submitted"] == "auto-generated" and m.message["List-Unsubscribe"] is None
    assert m.message["From"] == "Hustings digest <digest@hustings.example>"
    [row] = site.rows()
    assert row["status"] == "sent" and row["sent_at"] is not None


@pytest.mark.parametrize("to", ["editor@valley.example\r\nBcc: everyone@example.org",
                                "editor@valley.example\nBcc: everyone@example.org",
                                "Editor <editor@valley.example>, everyone@example.org"])
def test_header_injection_in_an_address_is_refused(site, smtp, to):
    with writing(site.engine) as conn:
        outbox_module.queue(conn, to, "Hello", "Body\n", "approved")
    report = site.deliver()
    assert report.failed == 1 and report.sent == 0
    assert smtp.messages == [] and smtp.refused == []
    assert site.rows()[0]["status"] == "failed"


def test_header_injection_in_a_subject_is_refused_or_flattened(site, smtp):
    with pytest.raises(BadAddress, match="one line"):
        compose(site.settings, 1, "a@example.org", Parts("Hello\r\nBcc: everyone@example.org", "body"))
    with writing(site.engine) as conn:  # the outbox makes every subject one line before it is stored
        outbox_module.queue(conn, "a@example.org", "Hello\r\nBcc: everyone@example.org", "Body\n", "approved")
    site.deliver()
    [m] = smtp.messages
    assert m.message["Subject"] == "Hello Bcc: everyone@example.org" and m.message["Bcc"] is None
    assert [c.to for c in smtp.messages] == ["a@example.org"]


@pytest.mark.parametrize("typed, stored", [(" Jo.Smith@Example.ORG ", "jo.smith@example.org"),
                                           ("jo+digest@bücher.example", "jo+digest@xn--bcher-kva.example")])
def test_addresses_are_stored_normalised(typed, stored):
    assert normal_address(typed) == stored


def test_a_server_that_cannot_be_reached_leaves_everything_queued(tmp_path, site, smtp):
    site.confirmed("a@example.org", "b@example.org")
    queue_issue(site)
    down = mail_settings(site.settings.data_dir, free_port())  # nobody listens there
    report = mailer.deliver(site.engine, down)
    assert report.error and report.sent == 0 and report.deferred == 1
    rows = site.rows(outbox.c.kind == "digest")
    assert {r["status"] for r in rows} == {"queued"} and sorted(r["attempts"] for r in rows) == [0, 1]
    assert {r["claimed_by"] for r in rows} == {""}  # claims given back
    assert site.deliver(ignore_backoff=True).sent == 2


def test_no_smtp_server_set_sends_nothing_and_says_so(site):
    import dataclasses

    from aggregator.errors import HustingsError

    with pytest.raises(HustingsError, match="smtp_host"):
        mailer.deliver(site.engine, dataclasses.replace(site.settings, smtp_host=""))
    mailer.deliver_due(site.engine, dataclasses.replace(site.settings, smtp_host=""))  # the worker: quietly


def test_dkim_signature_verifies_and_covers_the_list_headers(tmp_path, smtp):
    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "dkim.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                      serialization.NoEncryption()))
    public = base64.b64encode(key.public_key().public_bytes(serialization.Encoding.DER,
                                                            serialization.PublicFormat.SubjectPublicKeyInfo))
    site = MailSite(tmp_path / "data", smtp, web=False, dkim_key_file=str(pem), dkim_selector="mail2026")
    site.blog("Valley Branch", "", ["Saving the library"])
    site.confirmed("signed@example.org")
    queue_issue(site)
    site.deliver()
    [m] = smtp.to("signed@example.org")
    signature = m.message["DKIM-Signature"]
    assert "d=hustings.example" in signature and "s=mail2026" in signature
    signed = signature.replace(" ", "").replace("\t", "").split("h=")[1].split(";")[0].lower().split(":")
    assert {"list-unsubscribe", "list-unsubscribe-post", "from", "subject"} <= set(signed)

    def dns(name, timeout=5):
        assert name == b"mail2026._domainkey.hustings.example."
        return b"v=DKIM1; k=rsa; p=" + public

    assert dkim.verify(m.data, dnsfunc=dns)
    site.close()


def test_a_template_encodes_exactly_as_the_whole_text_would():
    import random

    from community.mail_compose import QPTemplate, qp

    rng = random.Random(12)
    pieces = ["a", "bb", "é", "  ", "TOKEN", "x" * 90, "=", "\t", "·", "\u2028", "\n", "\n\n", "line ", "\r\n"]
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(60))
        assert QPTemplate(text, "TOKEN").fill("12.0123abcd") == qp(text.replace("TOKEN", "12.0123abcd"))


def test_starttls_is_required_when_asked_for(site, smtp):
    import dataclasses

    site.confirmed("a@example.org")
    queue_issue(site)
    report = mailer.deliver(site.engine, dataclasses.replace(site.settings, smtp_security="starttls"))
    assert "does not offer STARTTLS" in report.error and report.sent == 0
    assert smtp.messages == []
