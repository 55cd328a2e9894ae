"""Subscribing to the digest through the web: double opt-in, no enumeration, one-click leaving.

The real app (WebTest) on a real migrated database, mail delivered over SMTP to a real
aiosmtpd server on loopback, every message read back and parsed with the `email` package.
"""

from __future__ import annotations

import urllib.parse
from datetime import timedelta

import pytest

from aggregator.db import utcnow
from community import digest, subscriptions
from tests.mailsite import SITE_URL, MailSite, link_in, token_of


@pytest.fixture
def site(tmp_path, smtp):
    s = MailSite(tmp_path / "data", smtp)
    s.blog("Valley Branch", "Local parties", ["Saving the library", "The bus depot vote"])
    yield s
    s.close()


def subscribe(app, email: str, frequency: str = "daily", categories=(), status: int = 303):
    page = app.get("/subscribe")
    return app.post("/subscribe", {"email": email, "frequency": frequency, "csrf_token": token_of(page),
                                   "categories": list(categories)}, status=status)


def send_digest(site: MailSite, period: str = "daily") -> int:
    issue = digest.build(site.engine, site.settings, period)
    queued = digest.queue(site.engine, issue)
    site.deliver()
    return queued


def test_double_opt_in_through_the_form(site, smtp):
    app = site.reader()
    res = subscribe(app, "Jo.Whitfield@Example.ORG")
    assert res.headers["Location"].endswith("/subscribe/sent")
    assert "Check your inbox" in res.follow().text
    # Stored normalised, and pending: the digest goes to nobody yet.
    assert site.subscriber("jo.whitfield@example.org")["status"] == "pending"
    assert send_digest(site) == 0
    site.deliver()
    [confirmation] = smtp.to("jo.whitfield@example.org")
    message = confirmation.message
    assert message["Subject"] == "Confirm your subscription to the Hustings daily digest"
    assert message["Auto-Submitted"] == "auto-generated" and message["List-Unsubscribe"] is None
    assert "/subscribe/manage?token=" in message.get_content()  # every mail carries it

    page = site.reader().get(link_in(message, "/subscribe/confirm").removeprefix(SITE_URL))
    assert "You are subscribed" in page.text
    assert site.subscriber("jo.whitfield@example.org")["status"] == "confirmed"

    # The issue was built before the confirmation: a second send reaches the new subscriber, once.
    assert send_digest(site) == 1
    assert send_digest(site) == 0
    digests = [m for m in smtp.to("jo.whitfield@example.org") if m.message["List-Id"]]
    assert len(digests) == 1
    assert "Saving the library" in digests[0].message["Subject"]


def test_one_digest_per_confirmed_subscriber_and_none_for_the_unconfirmed(site, smtp):
    site.confirmed("a@example.org", "b@example.org")
    site.confirmed("weekly@example.org", frequency="weekly")
    subscribe(site.reader(), "pending@example.org")
    send_digest(site)
    assert [len(smtp.to(a)) for a in ("a@example.org", "b@example.org", "weekly@example.org")] == [1, 1, 0]
    assert [m.message["Subject"] for m in smtp.to("pending@example.org")] == [
        "Confirm your subscription to the Hustings daily digest"]


def test_the_same_answer_for_new_pending_and_confirmed_addresses(site, smtp):
    site.confirmed("known@example.org")
    subscribe(site.reader(), "pending@example.org")
    pages = [subscribe(site.reader(), email).follow().text
             for email in ("new@example.org", "pending@example.org", "known@example.org")]
    assert pages[0] == pages[1] == pages[2]
    site.deliver()
    # The confirmed address is told it is already subscribed, with its own link, and nothing changes.
    [already] = smtp.to("known@example.org")
    assert already.message["Subject"] == "You already get the Hustings digest"
    assert "/subscribe/manage?token=" in already.message.get_content()
    assert site.subscriber("known@example.org")["status"] == "confirmed"


def test_one_address_gets_at_most_three_mails_a_day(site, smtp):
    for _ in range(5):
        subscribe(site.reader(), "busy@example.org")
    site.deliver()
    assert len(smtp.to("busy@example.org")) == 3


def test_a_client_is_rate_limited_with_retry_after(tmp_path, smtp):
    site = MailSite(tmp_path / "data", smtp, subscribe_limit="2/1h")
    app = site.reader()
    subscribe(app, "one@example.org")
    subscribe(app, "two@example.org")
    refused = subscribe(app, "three@example.org", status=429)
    assert int(refused.headers["Retry-After"]) > 0
    site.close()


@pytest.mark.parametrize("typed, says", [
    ("jo@example.org\r\nBcc: everyone@example.org", "one line"),
    ("jo@example.org\nBcc: everyone@example.org", "one line"),
    ("jo@example.org%0d%0aBcc: x@example.org", "not an e-mail address"),
    ("Jo <jo@example.org>", "not an e-mail address"),
    ("jo@@example.org", "one @"),
    ("jo@example", "not a domain name"),
    ("jo smith@example.org", "not an e-mail address"),
    ("<script>alert(1)</script>@example.org", "not an e-mail address"),
    ("", "give an e-mail address"),
])
def test_malformed_addresses_and_header_injection_are_refused(site, smtp, typed, says):
    res = subscribe(site.reader(), typed, status=422)
    assert says in res.text.lower()
    assert "<script>alert" not in res.text  # echoed escaped, if at all
    assert site.rows() == []
    site.deliver()
    assert smtp.messages == []


def test_confirmation_links_expire_and_cannot_be_forged(site, smtp):
    subscribe(site.reader(), "late@example.org")
    site.deliver()
    link = link_in(smtp.to("late@example.org")[0].message, "/subscribe/confirm")
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["token"][0]
    later = utcnow() + timedelta(hours=subscriptions.CONFIRM_HOURS, minutes=1)
    assert subscriptions.confirm(site.engine, site.settings, token, now=later)[0] == "expired"
    sub_id, expires, mac = token.split(".")
    forged = f"{sub_id}.{int(expires) + 86400}.{mac}"
    page = site.reader().get(f"/subscribe/confirm?token={forged}", status=404)
    assert "does not work" in page.text
    assert site.subscriber("late@example.org")["status"] == "pending"


def _digest_to(site, smtp, email: str):
    site.confirmed(email)
    send_digest(site)
    [message] = [m.message for m in smtp.to(email) if m.message["List-Id"]]
    return message


def test_digest_headers_offer_one_click_unsubscribe(site, smtp):
    message = _digest_to(site, smtp, "reader@example.org")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    links = [part.strip().strip("<>") for part in message["List-Unsubscribe"].split(",")]
    assert links[0].startswith(SITE_URL + "/unsubscribe?token=")
    assert links[1].startswith("mailto:digest@hustings.example?subject=unsubscribe")
    assert message.is_multipart()
    assert {p.get_content_type() for p in message.iter_parts()} == {"text/plain", "text/html"}
    assert "/subscribe/manage?token=" in message.get_body(("plain",)).get_content()


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_unsubscribe_by_post_without_cookie_or_csrf_token(site, smtp, encoding):
    message = _digest_to(site, smtp, "leaver@example.org")
    url = message["List-Unsubscribe"].split(",")[0].strip().strip("<>").removeprefix(SITE_URL)
    stranger = site.reader()  # no cookie, no token: a mail provider's server
    if encoding == "urlencoded":
        res = stranger.post(url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    else:
        res = stranger.post(url, upload_files=[], params={"List-Unsubscribe": "One-Click"},
                            content_type="multipart/form-data")
    assert res.status_int == 200 and "You are unsubscribed" in res.text
    assert "Set-Cookie" not in res.headers
    assert site.subscriber("leaver@example.org")["status"] == "left"
    assert send_digest(site, "daily") == 0  # no more digests, starting now


def test_get_of_the_unsubscribe_link_shows_a_button_and_changes_nothing(site, smtp):
    message = _digest_to(site, smtp, "scanned@example.org")
    url = message["List-Unsubscribe"].split(",")[0].strip().strip("<>").removeprefix(SITE_URL)
    page = site.reader().get(url)
    assert page.status_int == 200 and "Unsubscribe" in page.text
    assert site.subscriber("scanned@example.org")["status"] == "confirmed"
    form = next(f for f in page.forms.values() if f.action.startswith("/unsubscribe?token="))
    assert form.method.upper() == "POST"
    done = form.submit()
    assert "You are unsubscribed" in done.text
    assert site.subscriber("scanned@example.org")["status"] == "left"


def test_a_wrong_unsubscribe_token_is_refused(site, smtp):
    sub = site.confirmed("safe@example.org")[0]
    site.reader().post(f"/unsubscribe?token={sub.id}.{'0' * 32}", "List-Unsubscribe=One-Click",
                       content_type="application/x-www-form-urlencoded", status=404)
    assert site.subscriber("safe@example.org")["status"] == "confirmed"


def test_manage_link_changes_frequency_and_categories_and_leaves(site, smtp):
    site.blog("Fabian Review", "Think tanks", ["Pamphlets"])
    message = _digest_to(site, smtp, "chooser@example.org")
    app = site.reader()
    page = app.get(link_in(message, "/subscribe/manage").removeprefix(SITE_URL))
    form = next(f for f in page.forms.values() if f.action == "/subscribe/manage")
    form["frequency"] = "weekly"
    form.get("categories", index=1).checked = True  # Think tanks (sorted after Local parties)
    saved = form.submit().follow()
    assert "Saved." in saved.text
    sub = subscriptions.by_email(site.engine, "chooser@example.org")
    assert (sub.frequency, sub.categories) == ("weekly", ("Think tanks",))
    leave = next(f for f in saved.forms.values() if f.action == "/subscribe/leave")
    assert "You are unsubscribed" in leave.submit().text
    assert subscriptions.by_email(site.engine, "chooser@example.org").status == "left"


def test_the_footer_form_leaves_cached_pages_without_cookies(site):
    front = site.reader().get("/about")  # a page with no form of its own
    form = next(f for f in front.forms.values() if f.action == "/subscribe")
    assert form.method.upper() == "GET"
    assert "Set-Cookie" not in front.headers
    form["email"] = "footer@example.org"
    form["frequency"] = "weekly"
    page = form.submit()
    assert 'value="footer@example.org"' in page.text and 'name="csrf_token"' in page.text


def test_the_privacy_page_says_what_is_kept_and_for_how_long(site):
    text = site.reader().get("/privacy").text
    for promise in (f"{subscriptions.PENDING_KEEP_DAYS} days after the last confirmation",
                    f"{subscriptions.CONFIRM_HOURS} hours", f"deleted {subscriptions.LEFT_KEEP_DAYS} days later",
                    f"{subscriptions.SUSPENDED_KEEP_DAYS} days", f"{subscriptions.MAIL_KEEP_DAYS} days"):
        assert promise in text, promise
