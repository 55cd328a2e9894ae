"""Campaigns out: JSON under /api/campaigns, and each campaign's Atom feed of updates and responses.

The JSON says what the pages say (never the organiser's address, nor a backer's): the directory
in any of its orders, and one campaign with its updates, responses, open linked polls, the
names of backers who chose to be listed, and the first page of what the movement is writing
about it. The Atom feed carries the organiser's updates and the recorded responses, newest
first, their text as the page renders it (sanitised HTML); feedgen writes the XML.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import bottle
from feedgen.feed import FeedGenerator

from community.campaigns import backing, store, text, writing

from . import pages
from .campaign_pages import campaign_or_404, now
from .request import Out, Site

ATOM = "application/atom+xml; charset=utf-8"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _x(value: str) -> str:
    return _NOT_XML.sub("", value or "")


def _json(data, last_modified: datetime | None = None) -> "Out":
    return Out(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), "application/json",
               last_modified)


def _base(site: "Site") -> str:
    return site.settings.site_url.rstrip("/")


def _campaign_json(site: "Site", c, recent: int | None = None) -> dict:
    out = c.to_json(_base(site))
    out["summary"] = text.to_text(site.settings, c.idea, 300)
    if recent is not None:
        out["backers_last_7_days"] = recent
    return out


def api_campaigns(site: "Site", params: dict) -> "Out":
    sort = params.get("sort") or "rising"
    if sort not in store.SORTS:
        raise bottle.HTTPError(400, f"sort must be one of {', '.join(store.SORTS)}")
    page = pages.page_number(params)
    items, more = store.directory(site.engine, sort, page=page)
    return _json({"sort": sort, "page": page, "more": more,
                  "rising": f"backers who joined in the last {store.RISING_DAYS} days, then all backers, "
                            "then the newer campaign",
                  "campaigns": [_campaign_json(site, c, recent) for c, recent in items]},
                 store.last_change(site.engine))


def _entry_json(site: "Site", e) -> dict:
    out = {"id": e.id, "kind": e.kind, "at": e.created_at.isoformat(), "text": e.body,
           "html": text.to_html(site.settings, e.body)}
    if e.kind == "response":
        out.update(responder=e.responder, role=e.role)
    return out


def api_campaign(site: "Site", params: dict, slug: str) -> "Out":
    c = campaign_or_404(site, slug, moderator_too=False)
    base = _base(site)
    found = writing.about(site.engine, site.searcher, c, 1)
    data = _campaign_json(site, c)
    data.update(
        idea_html=text.to_html(site.settings, c.idea), ask_html=text.to_html(site.settings, c.ask),
        feed=f"{base}/campaigns/{c.slug}.atom",
        updates=[_entry_json(site, e) for e in store.entries(site.engine, c.id)],
        listed_backers=backing.listed_names(site.engine, c.id),
        polls=[f"{base}/polls/{pid}" for pid in store.linked_polls(site.engine, c.id)],
        posts={
            "query": c.query, "total": found.total,
            "pinned": [{"id": p["id"], "title": p["title"], "url": p["url"], "link": f"{base}/posts/{p['id']}",
                        "blog": p["blog"], "published": pages.iso(p["published"])} for p in found.pinned],
            "found": [{"id": h.id, "title": h.title, "url": h.url, "link": f"{base}/posts/{h.id}", "blog": h.blog,
                       "published": h.published.isoformat() if h.published else None, "highlights": h.highlights}
                      for h in (found.found.results if found.found else [])],
        })
    return _json(data, c.updated_at)


def atom(site: "Site", params: dict, slug: str) -> "Out":
    c = campaign_or_404(site, slug, moderator_too=False)
    base = _base(site)
    page = f"{base}/campaigns/{c.slug}"
    entries = store.entries(site.engine, c.id, limit=50)
    fg = FeedGenerator()
    fg.id(page)
    fg.title(_x(f"{c.title}: updates and responses"))
    fg.subtitle(_x(f"The campaign \u201c{c.title}\u201d on {site.settings.site_name}, organised by {c.organiser}"))
    fg.link(href=page, rel="alternate")
    fg.link(href=f"{page}.atom", rel="self")
    fg.author({"name": _x(c.organiser)})
    fg.language("en-GB")
    fg.generator("Hustings")
    updated = max([c.updated_at, *(e.created_at for e in entries)]) if c.updated_at else now()
    fg.updated(updated or datetime(2000, 1, 1, tzinfo=timezone.utc))
    for e in reversed(entries):  # feedgen puts each new entry first: oldest in, newest on top
        fe = fg.add_entry()
        fe.id(f"{page}#u{e.id}")
        if e.kind == "response":
            fe.title(_x(f"Response from {e.responder}, {e.role}"))
            fe.author({"name": _x(e.responder)})
        else:
            fe.title(_x(f"Update: {text.to_text(site.settings, e.body, 80)}"))
            fe.author({"name": _x(c.organiser)})
        fe.link(href=f"{page}#u{e.id}", rel="alternate")
        fe.published(e.created_at)
        fe.updated(e.created_at)
        fe.content(_x(text.to_html(site.settings, e.body)), type="html")
    return Out(fg.atom_str(pretty=False), ATOM, updated)
