"""A digest issue as a reader receives it: plain text and HTML, made for their categories.

The HTML (community/mail_templates/digest.html) is for mail clients, not browsers: a
single-column table 600 pixels wide at most, every style inline (many clients drop
<style>), no images, scripts, remote fonts or tracking pixels, so it reads the same with
images off. Colours are declared for light and for dark (`color-scheme`, and a dark
@media block for the clients that honour it), each pair at WCAG AA contrast or better.

Each (issue, categories) pair is rendered once per run, with a placeholder where the
reader's own token goes, then copied per reader with their links put in: rendering every
copy was the slowest part of sending.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import jinja2
from sqlalchemy.engine import Engine

from aggregator.settings import Settings

from . import digest, subscriptions
from .mail_compose import Parts, QPTemplate

TOKEN = "HUSTINGS0SUBSCRIBER0TOKEN"  # stands for the reader's token until their copy is made
TEMPLATES = Path(__file__).resolve().with_name("mail_templates")


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


_ENV = _env()


def for_reader(issue: digest.Issue, categories: tuple[str, ...] = ()) -> dict:
    """The issue's content as one reader gets it: the posts of their categories, the usual number."""
    posts = issue.content.get("posts", [])
    if categories:
        posts = [p for p in posts if p.get("category") in categories]
    # Issues built before campaigns were in the digest have none.
    return dict(issue.content, posts=posts[:digest.SHOWN[issue.period]], categories=list(categories),
                campaigns=issue.content.get("campaigns", []))


def backers_line(campaign: dict) -> str:
    """ "12 backers · 3 new this week": the same words in both parts and on the web."""
    n, recent = campaign["backers"], campaign["recent"]
    return f"{n:,} backer{'' if n == 1 else 's'} · {recent:,} new this week"


def asks_line(campaign: dict) -> str:
    return f"Asks{' ' + campaign['ask_of'] if campaign['ask_of'] else ''}: {campaign['ask']}" if campaign["ask"] else ""


def heading(settings: Settings, issue: digest.Issue) -> str:
    day = issue.published
    if issue.period == "daily":
        return f"{settings.site_name} daily · {day:%A} {day.day} {day:%B %Y}"
    return f"{settings.site_name} weekly · week {day.isocalendar()[1]}, {day.isocalendar()[0]}"


def _fill(text: str, indent: str = "") -> str:
    return textwrap.fill(" ".join(text.split()), 72, initial_indent=indent, subsequent_indent=indent,
                         break_long_words=False, break_on_hyphens=False)


def text(settings: Settings, issue: digest.Issue, content: dict, manage_url: str, archive_url: str) -> str:
    """The plain-text copy: wrapped at 72 columns, every link on a line of its own."""
    top = heading(settings, issue)
    out = [top, "=" * min(72, len(top)), ""]
    if content["note"]:
        out += ["From the editors", "----------------"]
        out += [_fill(p) + "\n" for p in content["note"].split("\n\n") if p.strip()]
    out += ["Top posts", "---------"]
    if not content["posts"]:
        out += ["A quiet " + ("day" if issue.period == "daily" else "week")
                + (" in the categories you follow." if content["categories"] else ": no new posts."), ""]
    for n, p in enumerate(content["posts"], 1):
        out.append(_fill(f"{n}. {p['title']}"))
        out.append(_fill(" · ".join(x for x in (p["blog"], p["author"]) if x), "   "))
        if p["summary"]:
            out.append(_fill(p["summary"], "   "))
        out += [f"   {p['url'] or p['link']}", ""]
    sections = (("Editor's picks", content["picks"], lambda p: (p["title"], (p["blog"],), p["url"] or p["link"])),
                ("Open polls: have your say", content["polls"], lambda p: (p["question"], (), p["link"])),
                ("Campaigns gathering backers", content["campaigns"],
                 lambda c: (c["title"], (backers_line(c), asks_line(c)), c["link"])),
                ("New on the site", content["blogs"], lambda b: (b["title"], (b["category"],), b["link"])))
    for title, items, parts in sections:
        if not items:
            continue
        out += [title, "-" * len(title)]
        for item in items:
            first, more, url = parts(item)
            out.append(_fill(f"* {first}"))
            out += [_fill(line, "  ") for line in more if line]
            out += [f"  {url}", ""]
    out += ["-- ", f"You get this because you subscribed to the {settings.site_name} {issue.period} digest.",
            "Change how often, choose categories or unsubscribe:", f"  {manage_url}",
            "Read it on the web:", f"  {archive_url}", ""]
    return "\n".join(out)


def render(settings: Settings, issue: digest.Issue, categories: tuple[str, ...], token: str) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of one reader's copy."""
    content = for_reader(issue, categories)
    base = settings.site_url.rstrip("/")
    manage_url = subscriptions.link(settings, "/subscribe/manage", token)
    unsubscribe_url = subscriptions.link(settings, "/unsubscribe", token)
    archive_url = base + issue.path
    lead = content["posts"][0]["title"] if content["posts"] else ""
    subject = digest.subject_for(settings, issue.period, issue.key, lead) if categories else issue.subject
    html = _ENV.get_template("digest.html").render(
        site_name=settings.site_name, site_url=base, heading=heading(settings, issue), issue=issue, c=content,
        manage_url=manage_url, unsubscribe_url=unsubscribe_url, archive_url=archive_url,
        preheader=lead or "", backers_line=backers_line, asks_line=asks_line)
    return subject, text(settings, issue, content, manage_url, archive_url), html


class Issues:
    """Readers' copies of issues for one run of the mailer, each (issue, categories) rendered once."""

    def __init__(self, engine: Engine, settings: Settings):
        self.engine = engine
        self.settings = settings
        self._issues: dict[int, digest.Issue | None] = {}
        self._copies: dict[tuple, tuple[str, QPTemplate, QPTemplate]] = {}

    def parts(self, issue_id: int, sub: subscriptions.Subscriber) -> Parts | str:
        """The reader's copy, or why there is none (the issue was deleted)."""
        if issue_id not in self._issues:
            self._issues[issue_id] = digest.by_id(self.engine, issue_id)
        issue = self._issues[issue_id]
        if issue is None:
            return "the issue is gone"
        key = (issue_id, sub.categories)
        if key not in self._copies:
            subject, plain, html = render(self.settings, issue, sub.categories, TOKEN)
            self._copies[key] = subject, QPTemplate(plain, TOKEN), QPTemplate(html, TOKEN)
        subject, plain, html = self._copies[key]
        token = subscriptions.manage_token(self.settings, sub)
        return Parts(subject, "", "", unsubscribe_url=subscriptions.link(self.settings, "/unsubscribe", token),
                     unsubscribe_token=token, list_name=issue.period, text_qp=plain.fill(token),
                     html_qp=html.fill(token))
