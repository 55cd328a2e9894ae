"""Small readers the extractors share: a selection's visible text, a date, whether two
addresses are the same site, and an address made absolute.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from urllib.parse import urljoin, urlsplit, urlunsplit

SPACE = re.compile(r"\s+")


def text_of(sel) -> str:
    """The visible text of a selection, on one line."""
    if sel is None:
        return ""
    parts = sel.xpath(".//text()[not(ancestor::script) and not(ancestor::style)]").getall() \
        if hasattr(sel, "xpath") else [str(sel)]
    return SPACE.sub(" ", " ".join(parts)).strip()


def parse_date(value: str | None) -> datetime | None:
    """An ISO 8601 date or date-time as aware UTC; naive ones are taken as UTC."""
    if not value:
        return None
    value = value.strip()
    if not value or not value[:4].isdigit():
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        match = re.match(r"(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2})?))?", value)
        if not match:
            return None
        try:
            when = datetime.fromisoformat(match.group(1) + ("T" + match.group(2) if match.group(2) else ""))
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    when = when.astimezone(timezone.utc)
    return when if when.year >= 1990 else None


def same_site(a: str, b: str) -> bool:
    """Same scheme family, host (a leading www. aside) and port."""
    try:
        pa, pb = urlsplit(a), urlsplit(b)
        ports = (pa.port or (443 if pa.scheme == "https" else 80), pb.port or (443 if pb.scheme == "https" else 80))
    except ValueError:
        return False
    if pa.scheme not in ("http", "https") or pb.scheme not in ("http", "https"):
        return False
    ha = (pa.hostname or "").removeprefix("www.")
    hb = (pb.hostname or "").removeprefix("www.")
    same_port = ports[0] == ports[1] or {ports} <= {(80, 443), (443, 80)}
    return bool(ha) and ha == hb and same_port


def absolute(href: str | None, base: str) -> str:
    """href made absolute against base, without its fragment; '' unless http(s)."""
    href = (href or "").strip()
    if not href or href.startswith(("#", "javascript:", "mailto:", "tel:", "data:")):
        return ""
    try:
        parts = urlsplit(urljoin(base, href))
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))
