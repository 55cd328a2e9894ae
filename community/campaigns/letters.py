"""The words of every campaign mail: (subject, plain text body), wrapped at 72 columns, each link
on a line of its own so no mail client breaks it. They go out through the one delivery path
(community/outbox.py queues them; community/mailer.py sends them).

Before the organiser confirms their address, the confirmation is the only mail it is sent;
a backer's address gets nothing but its confirmation until it is confirmed, and every
update mail carries its one-click unsubscribe link (also in the List-Unsubscribe header).
"""

from __future__ import annotations

import textwrap

from aggregator.settings import Settings

from ..mail_text import signature


def _wrap(*paragraphs: str) -> str:
    out = []
    for p in paragraphs:
        if p.startswith(("  ", "-- \n")):  # a link, a quoted line or the signature: never wrapped
            out.append(p)
        elif p:
            out.append(textwrap.fill(p, 72, break_long_words=False, break_on_hyphens=False))
    return "\n\n".join(out) + "\n"


def _quoted(text: str) -> str:
    """What was typed (Markdown reads as text), indented, its paragraphs kept."""
    out = []
    for para in text.replace("\r\n", "\n").split("\n\n"):
        lines = textwrap.wrap(" ".join(para.split()), 68, break_long_words=False, break_on_hyphens=False)
        if lines:
            out.append("\n".join("  " + line for line in lines))
    return "\n\n".join(out) or "  (empty)"


def organiser_confirmation(settings: Settings, title: str, confirm_url: str, hours: int) -> tuple[str, str]:
    subject = f"Confirm your campaign on {settings.site_name}: {title}"
    body = _wrap(
        f"Someone, probably you, proposed the campaign \u201c{title}\u201d on {settings.site_name} and gave "
        "this address as the organiser's.",
        f"To confirm the address, open this link within {hours} hours:",
        f"  {confirm_url}",
        "Once it is confirmed, a moderator reads the campaign and publishes it or says why not. "
        "The address is never shown on the site.",
        "If it was not you, do nothing: nothing more is sent to this address.",
        signature(settings))
    return subject, body


def organiser_link(settings: Settings, title: str, manage_url: str, page_url: str) -> tuple[str, str]:
    subject = f"Your campaign's private link: {title}"
    body = _wrap(
        f"Thank you for confirming your address. Keep this link private: it is how you post updates to "
        f"\u201c{title}\u201d, set the search that finds posts about it, and pin posts to it.",
        f"  {manage_url}",
        "A moderator will read the campaign soon. Once it is published, its page is:",
        f"  {page_url}",
        signature(settings))
    return subject, body


def decided(settings: Settings, title: str, what: str, reason: str, page_url: str, manage_url: str,
            outcome: str = "") -> tuple[str, str]:
    """To the organiser: `what` is approved, rejected or closed."""
    if what == "approved":
        subject = f"Your campaign is published: {title}"
        opening = (f"A moderator published \u201c{title}\u201d. Readers can back it now, and its page gathers "
                   "what the movement writes about it.")
        links = ["Its page:", f"  {page_url}", "Your private link, for updates:", f"  {manage_url}"]
    elif what == "rejected":
        subject = f"Your campaign was not published: {title}"
        opening = (f"A moderator did not publish \u201c{title}\u201d. Campaigns are refused only for the reasons "
                   "in the house rules, and every refusal is listed in the public moderation log.")
        links = []
    else:
        subject = f"Your campaign has {'been won' if outcome == 'won' else 'closed'}: {title}"
        opening = (f"A moderator closed \u201c{title}\u201d{' as won' if outcome == 'won' else ''}. Its page stays "
                   "on the site with its backers, updates and responses; it takes no new backers.")
        links = ["Its page:", f"  {page_url}"]
    body = _wrap(opening, f"The moderator's reason: {reason}" if reason else "", *links, signature(settings))
    return subject, body


def edited(settings: Settings, title: str, what: str, reason: str, page_url: str, manage_url: str) -> tuple[str, str]:
    """To the organiser: a moderator changed `what` ("the title and the idea") of their campaign."""
    subject = f"A moderator edited your campaign: {title}"
    body = _wrap(
        f"A moderator changed {what} of your campaign \u201c{title}\u201d on {settings.site_name}. "
        "Moderators edit a campaign's words only to correct them or to take out what the house rules do not "
        "allow, and every edit is listed in the public moderation log.",
        f"The moderator's reason: {reason}",
        "Its page:", f"  {page_url}", "Your private link:", f"  {manage_url}",
        signature(settings))
    return subject, body


def follow_confirmation(settings: Settings, title: str, confirm_url: str, hours: int) -> tuple[str, str]:
    subject = f"Confirm: updates from the campaign \u201c{title}\u201d"
    body = _wrap(
        f"Someone, probably you, backed the campaign \u201c{title}\u201d on {settings.site_name} and asked for "
        "its organiser's updates to be sent to this address.",
        f"To confirm, open this link within {hours} hours:",
        f"  {confirm_url}",
        "If it was not you, do nothing: without a confirmation nothing more is sent here, and the address "
        "is deleted within a week. Backing the campaign does not depend on it.",
        signature(settings))
    return subject, body


def follower_news(settings: Settings, title: str, kind: str, text: str, page_url: str, unsubscribe_url: str,
                  responder: str = "", role: str = "") -> tuple[str, str]:
    """An update, a response or the closing, to a backer who confirmed they want them."""
    if kind == "response":
        subject = f"A response to \u201c{title}\u201d from {responder}"
        opening = f"{responder}{', ' + role if role else ''} responded to the campaign \u201c{title}\u201d:"
    elif kind == "closed":
        subject = f"The campaign \u201c{title}\u201d has closed"
        opening = f"The campaign \u201c{title}\u201d has closed:"
    else:
        subject = f"An update from the campaign \u201c{title}\u201d"
        opening = f"The organiser of \u201c{title}\u201d posted an update:"
    body = _wrap(
        opening, _quoted(text), "Read it on the campaign's page:", f"  {page_url}",
        "You get this because you backed the campaign and asked for its updates. To stop them, with one "
        "click:", f"  {unsubscribe_url}",
        signature(settings))
    return subject, body
