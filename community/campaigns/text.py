"""What organisers and moderators type, made safe to show: Markdown or plain text, never raw HTML.

markdown-it-py reads CommonMark with its HTML rules off, so `<script>` typed in a campaign
is shown as text, never parsed; images are off too (a campaign page loads nothing from a
host an organiser chose). Single line breaks are kept, so plain text reads as typed.
Headings are moved down two levels (a typed `#` becomes an h3 under the page's own h1 and
h2s). The HTML it makes then goes through the site's one sanitiser (aggregator/sanitize.py),
which allows only http, https and mailto links and marks each `rel="nofollow noopener
noreferrer ugc"`: a `[link](javascript:...)` is never a link.
"""

from __future__ import annotations

import re
import threading
import unicodedata

from markdown_it import MarkdownIt

from aggregator.sanitize import html_to_text, sanitizer
from aggregator.settings import Settings

SLUG_CHARS = 60  # a campaign's address stays readable
_local = threading.local()  # a MarkdownIt per thread: its parser keeps state while it renders


def _parser() -> MarkdownIt:
    md = getattr(_local, "md", None)
    if md is None:
        md = MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False}).disable("image")
        md.add_render_rule("heading_open", _heading)
        md.add_render_rule("heading_close", _heading)
        _local.md = md
    return md


def _heading(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    level = min(6, int(token.tag[1]) + 2)
    return f"<h{level}>" if token.nesting == 1 else f"</h{level}>\n"


def to_html(settings: Settings, source: str) -> str:
    """Safe HTML for what was typed (Markdown or plain text)."""
    source = (source or "").replace("\r\n", "\n").replace("\r", "\n")
    if not source.strip():
        return ""
    rendered = _parser().render(source)
    return sanitizer(settings)(rendered, settings.site_url)


def to_text(settings: Settings, source: str, limit: int | None = None) -> str:
    """One line of plain text for what was typed (summaries, the API's summary, mail subjects)."""
    text = html_to_text(to_html(settings, source))
    if limit is not None and len(text) > limit:
        cut = text[:limit].rsplit(" ", 1)[0]
        text = (cut or text[:limit]).rstrip(",.;:") + "…"
    return text


def one_line(text: str) -> str:
    """A name or title as typed, on one line, without control characters."""
    text = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in text or "")
    return " ".join(text.split())


def slug_of(title: str) -> str:
    """An address from a title: ASCII letters, digits and hyphens; never only digits (those are ids)."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title).strip("-")[:SLUG_CHARS].rstrip("-")
    if not slug:
        slug = "campaign"
    if slug.isdigit():
        slug = f"campaign-{slug}"
    return slug
