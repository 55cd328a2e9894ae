"""A post's first image: the picture the front page leads with and listings show small.

Read from the post's sanitised HTML (aggregator/sanitize.py has already made addresses
absolute and dropped trackers, 1x1 pixels and lazy-load placeholders) with regular
expressions rather than a parser: a page reads it for up to 35 posts per render, and the
sanitiser writes every attribute quoted. Nothing is fetched: the browser loads the image
from the blog, as the post page does (docs/web.md, "Images", says why not through us).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

# Quoted values whole and no "<" outside them: both engines write ">" in a value as "&gt;", but
# a stored post should not depend on it, and the scan stays linear whatever it holds.
IMG = re.compile(r"""<img\b(?:[^<>"']|"[^"]*"|'[^']*')*>""", re.I)
ATTR = re.compile(r'([a-zA-Z-]+)\s*=\s*"([^"]*)"')
MIN_SIDE = 120  # a smaller picture is an icon, a button or a badge, not the story's image
SCAN_CHARS = 100_000  # the first image is near the top; a long post is not read to its end


@dataclass(frozen=True)
class Image:
    src: str
    alt: str  # the feed's words for it; "" when it gave none (then it is decoration beside the headline)
    width: int | None  # as the feed declared them, if it did
    height: int | None


def _size(value: str | None) -> int | None:
    return int(value) if value and value.isascii() and value.isdigit() and len(value) < 6 else None


def first_image(content_html: str, *, allow_http: bool = True) -> Image | None:
    """The first picture in the post worth showing, or None.

    Only absolute http(s) addresses; `allow_http=False` (a site served over https) leaves out
    plain http ones, which a browser would refuse or warn about as mixed content.
    """
    for m in IMG.finditer(content_html[:SCAN_CHARS]):
        attrs = {k.lower(): v for k, v in ATTR.findall(m.group(0))}
        src = html.unescape(attrs.get("src", "")).strip()
        if not (src.startswith("https://") or (allow_http and src.startswith("http://"))):
            continue
        width, height = _size(attrs.get("width")), _size(attrs.get("height"))
        if (width is not None and width < MIN_SIDE) or (height is not None and height < MIN_SIDE):
            continue
        return Image(src, html.unescape(attrs.get("alt", "")).strip(), width, height)
    return None


def with_safe_images(content_html: str) -> str:
    """The post's HTML with every image given alt="" when it has no alt (the feed said nothing
    about it), no referrer, and lazy loading: for posts stored before the sanitiser did so."""
    def fix(m: re.Match) -> str:
        tag = m.group(0)
        names = {k.lower() for k, _ in ATTR.findall(tag)}
        extra = "".join(f' {name}="{value}"' for name, value in
                        (("alt", ""), ("referrerpolicy", "no-referrer"), ("loading", "lazy")) if name not in names)
        if not extra:
            return tag
        end = -2 if tag.endswith("/>") else -1
        return tag[:end].rstrip() + extra + tag[end:]

    return IMG.sub(fix, content_html)
