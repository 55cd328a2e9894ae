"""The digest on the web: the archive (/digest, each issue, an Atom feed) and the moderators'
page where the editor's note is written and the next issues previewed (/moderate/digest).

Every issue is readable and linkable without subscribing: /digest/2026-12-05 for a daily
issue, /digest/week/2026-W49 for a weekly one, each as it was built (community/digest.py).
"""

from __future__ import annotations

from datetime import datetime, timezone

import bottle
from feedgen.feed import FeedGenerator

from aggregator.db import utcnow
from aggregator.errors import HustingsError, NotFound
from community import digest, digest_render, mailer, subscriptions

from .request import Out, Site, Visitor, require_moderator

ATOM = "application/atom+xml; charset=utf-8"
ARCHIVE_ITEMS = 60


def _issue_context(site: "Site", issue: digest.Issue) -> dict:
    return {"issue": issue, "c": digest_render.for_reader(issue), "heading": digest_render.heading(site.settings, issue)}


def archive(site: "Site", params: dict) -> "Out":
    issues = digest.archive(site.engine, limit=ARCHIVE_ITEMS)
    return Out(site.render("digest_archive.html", title="The digest", issues=issues,
                           feeds=[("application/atom+xml", "/digest.atom")], nav="digest"),
               last_modified=issues[0].created_at if issues else None)


def _show(site: "Site", period: str, key: str) -> "Out":
    try:
        issue = digest.get_or_404(site.engine, period, key)
    except (NotFound, HustingsError) as exc:
        raise bottle.HTTPError(404, str(exc)) from None
    return Out(site.render("digest_issue.html", title=digest_render.heading(site.settings, issue),
                           **_issue_context(site, issue)), last_modified=issue.created_at)


def daily_issue(site: "Site", params: dict, key: str) -> "Out":
    return _show(site, "daily", key)


def weekly_issue(site: "Site", params: dict, key: str) -> "Out":
    return _show(site, "weekly", key)


def atom(site: "Site", params: dict) -> "Out":
    base = site.settings.site_url.rstrip("/")
    issues = digest.archive(site.engine, limit=30)
    fg = FeedGenerator()
    fg.id(base + "/digest")
    fg.title(f"{site.settings.site_name}: the digest")
    fg.subtitle("Every issue of the daily and weekly digest")
    fg.link(href=base + "/digest", rel="alternate")
    fg.link(href=base + "/digest.atom", rel="self")
    fg.language("en-GB")
    fg.generator("Hustings")
    fg.updated(issues[0].created_at if issues else datetime(2000, 1, 1, tzinfo=timezone.utc))
    for issue in issues:
        fe = fg.add_entry(order="append")
        fe.id(base + issue.path)
        fe.title(issue.subject)
        fe.link(href=base + issue.path, rel="alternate")
        fe.published(issue.created_at)
        fe.updated(issue.created_at)
        fe.content(site.render("_digest_body.html", **_issue_context(site, issue), absolute=base).decode(), type="html")
    return Out(fg.atom_str(pretty=False), ATOM, issues[0].created_at if issues else None)


# --- moderators -------------------------------------------------------------------------------------------


def moderate_digest(site: "Site", params: dict) -> "Out":
    mod = require_moderator(site)
    now = utcnow()
    nexts = []
    for period in digest.PERIODS:
        key = digest.next_key(site.settings, period, now)
        issue = digest.preview(site.engine, site.settings, period, key, now)
        plain = digest_render.text(site.settings, issue, digest_render.for_reader(issue), "(your manage link)",
                                   site.settings.site_url.rstrip("/") + issue.path)
        nexts.append({"period": period, "key": key, "issue": issue, "plain": plain,
                      "sends_at": digest.send_moment(site.settings, issue.published),
                      "note": digest.note_for(site.engine, period, key), **_issue_context(site, issue)})
    return Out(site.render("moderate_digest.html", title="The digest and mail", moderator=mod, nexts=nexts,
                           mod_nav="digest", counts=subscriptions.counts(site.engine),
                           mail=mailer.status_counts(site.engine), failures=mailer.recent_failures(site.engine),
                           smtp=bool(site.settings.smtp_host), timezone=site.settings.digest_timezone,
                           saved=params.get("saved", ""), issues=digest.archive(site.engine, limit=10)))


def save_note(site: "Site", v: "Visitor", form: dict) -> str:
    if v.moderator is None:
        return "/login?next=/moderate/digest"
    period = (form.get("period") or [""])[0]
    key = (form.get("key") or [""])[0]
    try:
        digest.save_note(site.engine, period, key, (form.get("note") or [""])[0], v.moderator.email)
    except HustingsError as exc:
        raise bottle.HTTPError(409, str(exc)) from None
    return f"/moderate/digest?saved={period}#{period}"
