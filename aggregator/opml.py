"""Read and write OPML subscription lists; nested outlines become category paths.

Reading uses listparser (Kurt McKee's, the feedparser author's), which recovers
what it can from malformed files; we then say what was skipped and why.
A category path is the outline titles joined by " / ".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Iterable
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

import listparser

from .errors import OPMLError

SEPARATOR = " / "


@dataclass(frozen=True)
class OPMLFeed:
    url: str
    title: str = ""
    category: str = ""


def read_opml(data: bytes, source: str = "the OPML file") -> tuple[list[OPMLFeed], list[str]]:
    """(feeds, skipped) from an OPML document: each skipped item says why.

    Raises:
        OPMLError: when nothing in the file can be read as a subscription list.
    """
    if not isinstance(data, bytes):
        raise TypeError("read_opml takes bytes")  # a str URL would make listparser fetch it
    result = listparser.parse(data)
    skipped: list[str] = []
    problem = ""
    if result.get("bozo"):
        problem = f"{source} is malformed: {result.get('bozo_exception')}"
    if not result.get("version") and not result.get("feeds"):
        raise OPMLError(f"{source} is not an OPML subscription list" + (f" ({problem})" if problem else ""))
    if problem:
        skipped.append(problem + " (imported what could be read)")
    feeds: list[OPMLFeed] = []  # listparser has already merged repeated URLs
    for item in result.get("feeds", []):
        url = (item.get("url") or "").strip()
        title = (item.get("title") or "").strip()
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError:
            scheme = ""
        if scheme not in ("http", "https"):
            skipped.append(f"{title or url or 'an outline'}: feed URL {url!r} is not http or https")
            continue
        categories = item.get("categories") or []
        category = SEPARATOR.join(categories[0]) if categories else ""
        feeds.append(OPMLFeed(url=url, title=title, category=category))
    for item in result.get("opportunities", []):
        skipped.append(f"{item.get('title') or item.get('url')}: a site with no feed URL ({item.get('url')})")
    for item in result.get("lists", []):
        skipped.append(f"{item.get('title') or item.get('url')}: a link to another list ({item.get('url')}), not followed")
    return feeds, skipped


def write_opml(feeds: Iterable[dict], title: str = "Hustings: the movement's blogs") -> bytes:
    """OPML 2.0 for feeds (dicts with url, title, site_url, category); categories nest."""
    opml = ET.Element("opml", version="2.0")
    head = ET.SubElement(opml, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(datetime.now(timezone.utc), usegmt=True)
    body = ET.SubElement(opml, "body")
    folders: dict[tuple[str, ...], ET.Element] = {(): body}

    def folder(path: tuple[str, ...]) -> ET.Element:
        if path not in folders:
            parent = folder(path[:-1])
            folders[path] = ET.SubElement(parent, "outline", text=path[-1], title=path[-1])
        return folders[path]

    for feed in sorted(feeds, key=lambda f: (f.get("category") or "", (f.get("title") or f["url"]).lower())):
        path = tuple(p for p in (feed.get("category") or "").split(SEPARATOR) if p)
        name = feed.get("title") or feed["url"]
        attrs = {"type": "rss", "text": name, "title": name, "xmlUrl": feed["url"]}
        if feed.get("site_url"):
            attrs["htmlUrl"] = feed["site_url"]
        ET.SubElement(folder(path), "outline", attrs)
    ET.indent(opml)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(opml, encoding="utf-8") + b"\n"
