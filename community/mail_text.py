"""The words of the site's own short messages (confirmations, "already subscribed", test mail)
and who they come from. Plain text, wrapped at 72 columns; links on lines of their own, so a
mail client never breaks one."""

from __future__ import annotations

import functools
import textwrap
from email.utils import formataddr, parseaddr
from urllib.parse import urlsplit

from aggregator.settings import Settings


def sender(settings: Settings) -> tuple[str, str]:
    """(display name, address) of the From header: mail_from, or the site's name at its host."""
    return _sender(settings.mail_from, settings.site_name, settings.site_url)


@functools.lru_cache(maxsize=8)
def _sender(mail_from: str, site_name: str, site_url: str) -> tuple[str, str]:
    if mail_from:
        name, address = parseaddr(mail_from)
        return name, address
    host = (urlsplit(site_url).hostname or "localhost").lower()
    return site_name, f"digest@{host}"


def from_header(settings: Settings) -> str:
    return _from_header(sender(settings))


@functools.lru_cache(maxsize=8)
def _from_header(pair: tuple[str, str]) -> str:
    return formataddr(pair)


def _wrap(*paragraphs: str) -> str:
    out = []
    for p in paragraphs:
        if p.startswith("  "):  # a link or an indented line: never wrapped
            out.append(p)
        elif p:
            out.append(textwrap.fill(p, 72, break_long_words=False, break_on_hyphens=False))
    return "\n\n".join(out) + "\n"


def signature(settings: Settings) -> str:
    return f"-- \n{settings.site_name}\n{settings.site_url.rstrip('/')}/"


def confirmation(settings: Settings, email: str, frequency: str, confirm_url: str, hours: int,
                 manage_url: str) -> tuple[str, str]:
    subject = f"Confirm your subscription to the {settings.site_name} {frequency} digest"
    body = _wrap(
        f"Someone, probably you, asked for the {settings.site_name} {frequency} digest to be sent to "
        f"{email}.",
        f"To confirm, open this link within {hours} hours:",
        f"  {confirm_url}",
        "If it was not you, do nothing: without a confirmation we send nothing more to this address, "
        "and we delete it within a week.",
        "Once confirmed, this link changes how often it comes and which blogs, or stops it:",
        f"  {manage_url}",
        signature(settings))
    return subject, body


def already_subscribed(settings: Settings, email: str, frequency: str, manage_url: str) -> tuple[str, str]:
    subject = f"You already get the {settings.site_name} digest"
    body = _wrap(
        f"Someone, probably you, asked to subscribe {email} to the {settings.site_name} digest. "
        f"This address already gets it ({frequency}), so nothing has changed.",
        "To change how often it comes, choose categories, or stop it, use this link:",
        f"  {manage_url}",
        signature(settings))
    return subject, body


def test_message(settings: Settings, email: str) -> tuple[str, str]:
    subject = f"A test message from {settings.site_name}"
    body = _wrap(
        f"This message was sent by `hustings mail test` to {email}, to check that {settings.site_name} "
        "can send mail. Nothing else will be sent to this address unless it subscribes.",
        signature(settings))
    return subject, body
