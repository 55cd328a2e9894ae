"""feedparser on bytes -> ParsedFeed of raw Posts (HTML not yet sanitised).

feedparser never fetches anything here: it is given bytes (a str would make it
open a local file) and the response headers, with its own sanitiser and
relative-URI resolution turned off, because sanitize.py does both, faster and
more strictly. Dates come out timezone-aware UTC or None.
"""

from __future__ import annotations

import calendar
import html
import io
import json
import re
from collections import Counter
from datetime import datetime, timezone
from hashlib import sha256
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import feedparser

from .errors import ParseError
from .models import Feed, ParsedFeed, Post

HTML_TYPES = ("text/html", "application/xhtml+xml", "html", "xhtml")
_ABSOLUTE = re.compile(r"^https?://", re.I)
_JSON_START = re.compile(rb"^(?:\xef\xbb\xbf)?\s*\{")
_DECLARED = re.compile(rb"^(?:\xef\xbb\xbf)?\s*<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)", re.I)
SINGLE_BYTE = re.compile(r"^(?:iso-?8859-\d+|latin-?1|windows-125\d|cp125\d|us-ascii|ascii)$", re.I)
_SPACE = re.compile(r"\s+")
MAX_TAGS = 20
MAX_TAG_CHARS = 100
MAX_TITLE_CHARS = 1000
EARLIEST = datetime(1990, 1, 1, tzinfo=timezone.utc)  # before this a date is a mistake

# Markers of an HTML page served where a feed was expected.
_HTML_PAGE = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])", re.I | re.S)


class _TextOnly(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data):
        self.parts.append(data)


def plain_text(value: str, is_html: bool) -> str:
    """One line of plain text from a title or name that may carry markup."""
    if is_html and "<" in value:
        parser = _TextOnly()
        parser.feed(value)
        parser.close()
        value = " ".join(parser.parts)
    elif is_html:
        value = html.unescape(value)
    return _SPACE.sub(" ", value).strip()


def _absolute(url: str, base: str) -> str:
    url = (url or "").strip()
    if not url:
        return ""
    joined = urljoin(base, url) if base else url
    return joined if urlsplit(joined).scheme in ("http", "https") else ""


def _date(struct) -> datetime | None:
    if not struct:
        return None
    try:
        when = datetime.fromtimestamp(calendar.timegm(struct), tz=timezone.utc)
    except (OverflowError, ValueError, OSError, TypeError):
        return None
    return when if when >= EARLIEST else None


def _entry_url(entry, where: str) -> str:
    """The article's address: its alternate link, else its link, else its first enclosure."""
    links = entry.get("links") or []
    alternates = [l for l in links if l.get("rel", "alternate") == "alternate" and l.get("href")]
    alternates.sort(key=lambda l: l.get("type", "text/html") not in ("text/html", "application/xhtml+xml"))
    link = alternates[0]["href"] if alternates else entry.get("link", "")
    if entry.get("guidislink") and link == entry.get("id") and not _ABSOLUTE.match(link or ""):
        link = ""  # feedparser took a non-URL guid (e.g. "t3_glvkc5") for the link
    url = _absolute(link, where)
    if not url:
        for l in links:
            if l.get("rel") == "enclosure" and l.get("href"):
                return _absolute(l["href"], where)
    return url


def _pick_content(entry) -> tuple[str, str, str, bool]:
    """(value, 'html'|'text', xml:base, summary_only) for the fullest body the entry has."""
    contents = [c for c in entry.get("content") or [] if c.get("value")]
    summary = entry.get("summary_detail") or {}
    if contents:
        best = max(contents, key=lambda c: (c.get("type", "") in HTML_TYPES, len(c.get("value", ""))))
        chosen, summary_only = best, False
    elif summary.get("value"):
        chosen, summary_only = summary, True
    else:
        return "", "html", "", True
    kind = "text" if chosen.get("type", "text/html") == "text/plain" else "html"
    return chosen.get("value", ""), kind, chosen.get("base", "") or "", summary_only


def _tags(entry) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for tag in entry.get("tags") or []:
        raw = tag.get("term") or tag.get("label") or ""
        # Some platforms join several categories into one with commas.
        for piece in raw.split(",") if raw.count(",") >= 1 and len(raw) > 40 else [raw]:
            text = plain_text(piece, True)[:MAX_TAG_CHARS]
            if text and text.lower() not in seen:
                seen[text.lower()] = text
    return tuple(list(seen.values())[:MAX_TAGS])


def _author(entry, feed_author: str) -> str:
    detail = entry.get("author_detail") or {}
    name = detail.get("name") or entry.get("author") or ""
    if not name:
        # Dublin Core and RSS <author> both arrive as 'author'; fall back to the feed's.
        name = feed_author
    return plain_text(name, True)[:500]


def _mislabelled_utf8(body: bytes, content_type: str) -> bool:
    """UTF-8 bytes declared as a single-byte charset (a common WordPress misconfiguration)."""
    charset = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9._-]+)", content_type, re.I)
    declared = charset.group(1) if charset else None
    if declared is None:
        match = _DECLARED.match(body[:512])
        declared = match.group(1).decode("ascii") if match else None
    if not declared or not SINGLE_BYTE.match(declared) or body.isascii():
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _json_date(value) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    when = when.astimezone(timezone.utc)
    return when if when >= EARLIEST else None


def _parse_json_feed(body: bytes, feed: Feed, where: str, max_entries: int) -> ParsedFeed:
    """JSON Feed 1.0/1.1 (https://jsonfeed.org/version/1.1), which feedparser 6.0 cannot read."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(where, f"not a feed we can read (invalid JSON: {exc})") from None
    if not isinstance(doc, dict) or "jsonfeed.org" not in str(doc.get("version", "")):
        raise ParseError(where, "JSON that is not a JSON Feed (no jsonfeed.org version)")

    def names(obj) -> str:
        people = obj.get("authors") or ([obj["author"]] if isinstance(obj.get("author"), dict) else [])
        return ", ".join(str(p.get("name", "")) for p in people if isinstance(p, dict) and p.get("name"))

    feed_author = names(doc)
    items = doc.get("items") if isinstance(doc.get("items"), list) else []
    posts = []
    for item in [i for i in items if isinstance(i, dict)][:max_entries]:
        if isinstance(item.get("content_html"), str):
            value, kind, summary_only = item["content_html"], "html", False
        elif isinstance(item.get("content_text"), str):
            value, kind, summary_only = item["content_text"], "text", False
        else:
            value, kind, summary_only = str(item.get("summary") or ""), "text", True
        url = _absolute(str(item.get("url") or item.get("external_url") or ""), where)
        posts.append(Post(
            feed_id=feed.id, guid=str(item.get("id") or "").strip()[:2048], url=url,
            title=plain_text(str(item.get("title") or ""), False)[:MAX_TITLE_CHARS],
            content_html=value, content_type=kind, base_url=url or where,
            published=_json_date(item.get("date_published")) or _json_date(item.get("date_modified")),
            updated=_json_date(item.get("date_modified")), author=plain_text(names(item) or feed_author, False)[:500],
            tags=tuple(dict.fromkeys(str(t)[:MAX_TAG_CHARS] for t in item.get("tags") or [] if str(t).strip()))[:MAX_TAGS],
            summary_only=summary_only,
        ))
    problem = f"{len(items)} entries, only the first {max_entries} taken" if len(items) > max_entries else ""
    return ParsedFeed(
        title=plain_text(str(doc.get("title") or ""), False),
        site_url=_absolute(str(doc.get("home_page_url") or ""), where),
        posts=tuple(assign_identities(posts)), problem=problem, version="json1",
    )


def norm_url(url: str) -> str:
    """The URL used to recognise one article across feeds and refetches."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url
    host = (parts.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    query = "&".join(
        p for p in parts.query.split("&")
        if p and not p.lower().startswith(("utm_", "fbclid=", "gclid=", "mc_cid=", "mc_eid="))
    )
    path = parts.path.rstrip("/") or "/"
    return f"{host}{path}" + (f"?{query}" if query else "")


def assign_identities(posts: list[Post]) -> list[Post]:
    """Give each post an identity stable across fetches, even when GUIDs are broken.

    A GUID that is present and unique in this fetch is trusted. Entries whose GUID
    is missing or repeated (some platforms give every entry the same one) fall back
    to their normalised URL, then to a hash of title and content. Whatever still
    collides is an exact duplicate within the feed and is dropped.
    """
    from dataclasses import replace

    guid_counts = Counter(p.guid for p in posts if p.guid)
    staged: list[tuple[str, Post]] = []
    for p in posts:
        if p.guid and guid_counts[p.guid] == 1:
            ident = f"g:{p.guid}"
        elif p.url:
            ident = f"u:{norm_url(p.url)}"
        else:
            ident = "c:" + sha256(f"{p.title}\x00{p.content_html}".encode()).hexdigest()
        staged.append((ident, p))
    ident_counts = Counter(ident for ident, _ in staged)
    out: list[Post] = []
    used: set[str] = set()
    for ident, p in staged:
        if ident_counts[ident] > 1:
            # Same URL (or no URL) for different entries: tell them apart by title.
            ident = f"{ident}#" + sha256(p.title.encode()).hexdigest()[:16]
        if ident in used:
            continue
        used.add(ident)
        out.append(replace(p, identity=ident))
    return out


def parse_feed(
    body: bytes,
    feed: Feed,
    *,
    final_url: str = "",
    headers: dict[str, str] | None = None,
    max_entries: int = 200,
) -> ParsedFeed:
    """Read a feed body into raw Posts.

    Raises:
        ParseError: the body is empty, an HTML page, or yields no feed at all.
    """
    if not isinstance(body, bytes):  # a str would make feedparser open a local path
        raise TypeError("parse_feed takes bytes")
    where = final_url or feed.url
    if not body.strip():
        raise ParseError(where, "the server sent an empty body")
    if _JSON_START.match(body[:64]):
        return _parse_json_feed(body, feed, where, max_entries)
    response_headers = {k.lower(): v for k, v in (headers or {}).items()}
    response_headers.setdefault("content-type", "application/xml")
    if _mislabelled_utf8(body, response_headers["content-type"]):
        response_headers["content-type"] = "application/xml; charset=utf-8"
    # A stream, never bytes or str: feedparser tries open() on a bytes or str
    # argument, so a body naming a local path would be read from our disk.
    # No Content-Location either: feedparser would rewrite non-URL ids against
    # it (the same entry would change identity when the feed moves); links are
    # made absolute against the final URL below instead.
    result = feedparser.parse(
        io.BytesIO(body), response_headers=response_headers, sanitize_html=False, resolve_relative_uris=False
    )
    entries = result.get("entries") or []
    meta = result.get("feed") or {}
    problem = ""
    if result.get("bozo"):
        exc = result.get("bozo_exception")
        problem = f"malformed feed: {type(exc).__name__}: {exc}" if exc else "malformed feed"
    if not entries and not result.get("version"):
        if _HTML_PAGE.match(body[:4096]):
            raise ParseError(where, "this is an HTML page, not a feed (use `hustings feeds add` on the page to find its feed)")
        raise ParseError(where, f"not a feed we can read ({problem or 'unknown format'})")

    feed_title = plain_text(meta.get("title", ""), (meta.get("title_detail") or {}).get("type") in HTML_TYPES)
    site_url = _absolute(meta.get("link", ""), where)
    feed_author = (meta.get("author_detail") or {}).get("name") or meta.get("author") or ""
    ttl_s = None
    ttl = str(meta.get("ttl") or "").strip()
    if ttl.isdigit():
        ttl_s = int(ttl) * 60

    posts: list[Post] = []
    for entry in entries[:max_entries]:
        value, kind, xml_base, summary_only = _pick_content(entry)
        url = _entry_url(entry, where)
        base = _absolute(xml_base, where) or url or where
        title_detail = entry.get("title_detail") or {}
        title = plain_text(entry.get("title", ""), title_detail.get("type") in HTML_TYPES)[:MAX_TITLE_CHARS]
        # dict.get, not entry.get: feedparser's own get maps a missing updated_parsed
        # to published_parsed (with a DeprecationWarning); we want exactly what was there.
        published = _date(dict.get(entry, "published_parsed")) or _date(dict.get(entry, "updated_parsed")) \
            or _date(dict.get(entry, "created_parsed"))
        posts.append(
            Post(
                feed_id=feed.id,
                guid=str(entry.get("id") or "").strip()[:2048],
                url=url,
                title=title,
                content_html=value,
                content_type=kind,
                base_url=base,
                published=published,
                updated=_date(dict.get(entry, "updated_parsed")),
                author=_author(entry, feed_author),
                tags=_tags(entry),
                summary_only=summary_only,
            )
        )
    if len(entries) > max_entries:
        problem = (problem + "; " if problem else "") + f"{len(entries)} entries, only the first {max_entries} taken"
    return ParsedFeed(
        title=feed_title,
        site_url=site_url,
        posts=tuple(assign_identities(posts)),
        ttl_s=ttl_s,
        problem=problem,
        version=result.get("version", "") or "",
    )
