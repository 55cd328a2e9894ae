"""The text of a post: what the blog's CSS selector matches when an operator set one,
else readability-lxml's guess (see docs/dependencies.md for why that library).
"""

from __future__ import annotations

import logging

from parsel import Selector

from .markup import text_of

log = logging.getLogger(__name__)

MIN_ARTICLE_CHARS = 80  # less text than this is not an article (a login wall, an empty page)


def selected_html(html: str, url: str, selector: str, *, sel: Selector | None = None) -> str:
    """Everything the selector matches, in page order; '' when it matches nothing (or does not parse)."""
    if not selector:
        return ""
    sel = sel or Selector(text=html, base_url=url)
    try:
        return "\n".join(sel.css(selector).getall())
    except Exception:  # cssselect's SelectorError, or an XPath it cannot translate
        return ""


def article_html(html: str, url: str, selector: str = "", *, sel: Selector | None = None) -> str:
    """The post's HTML: what the selector matches when one is set (and matches), else readability's guess."""
    chosen = selected_html(html, url, selector, sel=sel)
    if chosen:
        return chosen
    from readability import Document  # imported here: only the spider processes need it

    try:
        return Document(html, url=url).summary(html_partial=True)
    except Exception as exc:  # readability raises its own Unparseable and lxml errors on junk
        log.info("no article in %s: %s", url, exc)
        return ""


def short_title(html: str) -> str:
    """readability's guess at the page's title without the site name; '' when it has none."""
    from readability import Document

    try:
        return Document(html).short_title()
    except Exception:
        return ""


def article_chars(fragment: str) -> int:
    """How much text an extracted article holds (to tell an article from an empty page)."""
    if not fragment:
        return 0
    return len(text_of(Selector(text=fragment)))
