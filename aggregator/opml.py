"""Read and write OPML subscription lists; nested outlines become category paths.

Reading walks the outline tree itself (lxml), so it knows each feed's folder path
and can say exactly what it skipped and why. A file that is not well-formed XML is
re-read with lxml's forgiving HTML parser, which recovers what it can (the same
approach as listparser); the malformation is reported, not fatal. Neither parser
expands entities from a DTD or touches the network.
A category path is the folder titles joined by " / ".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Iterable
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

from lxml import etree

from .errors import OPMLError

SEPARATOR = " / "
FEED_TYPES = ("rss", "atom", "feed", "rdf")
LIST_TYPES = ("source", "include")  # outlines that point at other lists (Liferea, OPML includes)
_DOCTYPE = re.compile(rb"<!DOCTYPE[^\[>]*(?:\[.*?\]\s*)?>", re.S | re.I)


@dataclass(frozen=True)
class OPMLFeed:
    url: str
    title: str = ""
    category: str = ""
    site_url: str = ""


def _parse_tree(data: bytes, source: str) -> tuple[etree._Element, str]:
    """(root element, malformation message or "")."""
    # A DTD can only hurt here (entity expansion); OPML never needs one. Drop it, as
    # feedparser does for feeds: undefined entities then fall to the forgiving parser.
    data = _DOCTYPE.sub(b"", data, count=1)
    strict = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        return etree.fromstring(data, strict), ""
    except etree.XMLSyntaxError as exc:
        problem = f"{source} is malformed XML ({exc}); imported what could be read"
    forgiving = etree.HTMLParser(recover=True, no_network=True, remove_comments=True)
    root = etree.fromstring(data, forgiving) if data.strip() else None
    if root is None:
        raise OPMLError(f"{source} is not an OPML subscription list (it is empty)")
    return root, problem


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _attrs(el) -> dict[str, str]:
    # The HTML parser lower-cases attribute names; OPML in the wild mixes xmlUrl and xmlurl.
    return {_local(k): (v or "").strip() for k, v in el.attrib.items()}


def read_opml(data: bytes, source: str = "the OPML file") -> tuple[list[OPMLFeed], list[str]]:
    """(feeds, skipped) from an OPML document: each skipped item says why.

    Raises:
        OPMLError: when nothing in the file can be read as a subscription list.
    """
    if not isinstance(data, bytes):
        raise TypeError("read_opml takes bytes")
    root, problem = _parse_tree(data, source)
    outlines = [el for el in root.iter() if _local(el.tag) == "outline"]
    has_opml = _local(root.tag) == "opml" or any(_local(el.tag) == "opml" for el in root.iter())
    if not has_opml and not outlines:
        raise OPMLError(f"{source} is not an OPML subscription list" + (f" ({problem})" if problem else ""))
    skipped = [problem] if problem else []
    feeds: list[OPMLFeed] = []
    seen: set[str] = set()
    for el in outlines:
        a = _attrs(el)
        name = a.get("text") or a.get("title") or ""  # text is OPML's required label
        url = a.get("xmlurl", "")
        # type="link" is WordPress's word for a feed when xmlUrl is there, else a link to a list.
        if a.get("type", "").lower() in LIST_TYPES or (a.get("type", "").lower() == "link" and not url):
            skipped.append(f"{name or url}: a link to another subscription list ({url or a.get('url', '')}), not followed")
            continue
        if not url:
            is_folder = any(_local(c.tag) == "outline" for c in el)
            if a.get("type", "").lower() in FEED_TYPES:
                skipped.append(f"{name or 'an outline'}: type={a['type']} but no xmlUrl")
            elif a.get("htmlurl") and not is_folder:
                skipped.append(f"{name or a['htmlurl']}: a site with no feed URL ({a['htmlurl']})")
            continue
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError:
            scheme = ""
        if scheme not in ("http", "https"):
            skipped.append(f"{name or url}: feed URL {url!r} is not http or https")
            continue
        if url in seen:
            continue  # listed in two folders: the first wins
        seen.add(url)
        folders = [_attrs(p).get("text") or _attrs(p).get("title") or ""
                   for p in el.iterancestors() if _local(p.tag) == "outline"]
        path = [f for f in reversed(folders) if f]
        if not path and a.get("category"):
            # category="/News/UK, /Blogs": comma-separated slash paths; the first real one.
            for item in a["category"].split(","):
                path = [p.strip() for p in item.split("/") if p.strip()]
                if path:
                    break
        feeds.append(OPMLFeed(url=url, title=name, category=SEPARATOR.join(path), site_url=a.get("htmlurl", "")))
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
