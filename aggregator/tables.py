"""A post's tables, each in a box of its own that scrolls sideways when the table is wider than
the screen: a ward's results over five elections do not fit a phone, and squeezed into it their
numbers broke a digit a line.

Done when the post page is rendered, on the sanitised HTML, which closes every table it opens.
Each box is a named region that takes keyboard focus (tabindex="0"), so a reader without a
pointer can scroll it too (WCAG 2.1.1; axe-core's scrollable-region-focusable). It adds only this
fixed markup; the table inside is the sanitiser's.
"""

from __future__ import annotations

import re

_OPEN = re.compile(r"<table\b", re.I)
_CLOSE = re.compile(r"</table\s*>", re.I)
BOX = '<div class="table-box" role="region" tabindex="0" aria-label="Table (scrolls sideways)">'


def in_boxes(content_html: str) -> str:
    """Every <table> ... </table> inside a scrolling box; HTML without a balanced set left as it is."""
    if "<table" not in content_html.lower():
        return content_html
    if len(_OPEN.findall(content_html)) != len(_CLOSE.findall(content_html)):
        return content_html  # not the sanitiser's: better unboxed than unbalanced
    return _CLOSE.sub(lambda m: m.group(0) + "</div>", _OPEN.sub(lambda m: BOX + m.group(0), content_html))
