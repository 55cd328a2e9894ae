"""The JSON API under /api/: the same questions as the pages, answered as data.

Dates are ISO 8601 in UTC; every post carries `link` (its page here) and `url` (the
original). Hot posts carry their place and the terms of their score, as the post
page shows them. Errors are JSON too: {"error": {"status": ..., "message": ...}}.
"""

from __future__ import annotations

import json

import bottle

from aggregator import listings, ranking, sections

from . import pages
from .pages import iso, page_number
from .request import Site


def _out(data, last_modified=None):
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return pages.out(body, last_modified, "application/json")


def post_json(site: "Site", item: dict) -> dict:
    base = site.settings.site_url.rstrip("/")
    return {
        "id": item["id"],
        "title": item["title"],
        "url": item["url"],
        "link": f"{base}/posts/{item['id']}",
        "blog": {"id": item["feed_id"], "title": item["blog"], "url": item["blog_url"],
                 "link": f"{base}/blogs/{item['feed_id']}"},
        "author": item["author"],
        "published": iso(item["published"]),
        "first_seen": iso(item["first_seen"]),
        "summary": item["summary"],
        "tags": item["tags"],
        "recommendations": item["recommendations"],
        "featured": item["featured_at"] is not None,
    }


def posts(site: "Site", params: dict):
    sort = params.get("sort") or "hot"
    if sort not in ("hot", "new"):
        raise bottle.HTTPError(400, "sort must be hot or new")
    page = page_number(params)
    blog = params.get("blog", "").strip()
    blog_id = None
    if blog:
        if not (blog.isascii() and blog.isdigit()) or len(blog) > 9:
            raise bottle.HTTPError(400, f"blog must be a blog's number, not {blog[:40]!r}")
        blog_id = int(blog)
        if listings.blog(site.engine, blog_id) is None:
            raise bottle.HTTPError(404, f"there is no blog number {blog_id}")
    if sort == "new":
        items, more = listings.newest(site.engine, page=page, per_page=pages.PER_PAGE, blog_id=blog_id)
        data = {"sort": sort, "page": page, "next_page": page + 1 if more else None,
                "posts": [post_json(site, i) for i in items]}
        return _out(data, listings.latest_change(site.engine, blog_id))
    if blog_id is None:
        items, count = pages.front_page_posts(site, page)
    else:
        # One blog's posts by score alone: the per-blog caps only matter between blogs.
        cands = [c for c in listings.ranked_candidates(site.engine, site.settings.rank_window_h) if c.blog_id == blog_id]
        size = ranking.PAGE_SIZE
        placed = ranking.rank(cands, now=pages.now(), window_h=site.settings.rank_window_h,
                              top_per_blog=size, page_per_blog=size)
        count = max(1, placed[-1].page if placed else 1)
        on_page = [p for p in placed if p.page == page]
        rows = listings.posts_by_id(site.engine, [p.id for p in on_page])
        items = [dict(rows[p.id], rank=p.position, score=p.score, why=p.terms, note=p.note)
                 for p in on_page if p.id in rows]
    data = {
        "sort": sort, "page": page, "pages": count, "next_page": page + 1 if page < count else None,
        "posts": [dict(post_json(site, i), rank=i["rank"], why=dict(i["why"], note=i["note"])) for i in items],
    }
    return _out(data, listings.latest_change(site.engine, blog_id))


def post(site: "Site", params: dict, post_id: int):
    ctx = pages.post_context(site, post_id)
    item, why = ctx["item"], ctx["why"]
    data = dict(post_json(site, item), content_html=item["content_html"], summary_only=item["summary_only"],
                why=dict(why["terms"], rank=why["rank"], note=why["note"], featured=why["featured"]),
                related=[{"id": h.id, "title": h.title, "url": h.url, "blog": h.blog,
                          "link": f"{site.settings.site_url.rstrip('/')}/posts/{h.id}"} for h in ctx["related"]])
    return _out(data, max(item["updated_at"], item["first_seen"]))


def blog_json(site: "Site", b: listings.Blog) -> dict:
    return {
        "id": b.id, "title": b.name, "url": b.site_url, "feed_url": b.feed_url, "category": b.category,
        "section": sections.slug(sections.section_name(b.category)) or None,
        "kind": b.kind, "status": b.status, "posts": b.posts, "last_post_at": iso(b.last_post_at),
        "last_success_at": iso(b.last_success_at), "next_check_at": iso(b.next_check_at),
        "error_count": b.error_count, "last_error": b.last_error,
        "link": f"{site.settings.site_url.rstrip('/')}/blogs/{b.id}",
    }


def blogs(site: "Site", params: dict):
    return _out({"blogs": [blog_json(site, b) for b in listings.blogs(site.engine)]}, listings.latest_change(site.engine))


def search(site: "Site", params: dict):
    if not params.get("q", "").strip():
        raise bottle.HTTPError(400, "q is required: the words to search for")
    found, error = pages.run_search(site, params)
    if error:
        raise bottle.HTTPError(400, error)
    return _out(found.to_json())
