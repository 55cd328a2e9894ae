"""The HTML pages. Each handler takes (site, query parameters, URL arguments) and
returns an ``Out``; web/app.py does caching, conditional GET and headers."""

from __future__ import annotations

import urllib.parse
from datetime import datetime, timezone

import bottle

from aggregator import article_head, images, listings, ranking, tables
from community import ratelimits, signin, submissions
from index.query import QueryError

from . import security
from .request import Out, Site, beyond_last

PER_PAGE = ranking.PAGE_SIZE
MAX_PAGE = 1000
SEARCH_PER_PAGE = 10


def out(body: bytes, last_modified: datetime | None = None, content_type: str = "text/html; charset=utf-8"):
    return Out(body, content_type, last_modified)


def bad_request(message: str) -> bottle.HTTPError:
    return bottle.HTTPError(400, message)


def page_number(params: dict, name: str = "page", most: int = MAX_PAGE) -> int:
    """?page= as a number from 1 to `most`; 400 with the reason otherwise."""
    raw = params.get(name, "").strip()
    if raw == "":
        return 1
    # isascii: str.isdigit() also accepts "²" and "１", which int() then refuses or listings.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6 or not 1 <= int(raw) <= most:
        raise bad_request(f"{name} must be a whole number from 1 to {most}, not {raw[:40]!r}")
    return int(raw)


def now() -> datetime:
    return datetime.now(timezone.utc)


# --- the ranked front page ------------------------------------------------------------


def ranked(site: "Site", when: datetime | None = None, blog_ids: tuple[int, ...] | None = None
           ) -> list[ranking.Placed]:
    return ranking.rank(listings.ranked_candidates(site.engine, site.settings.rank_window_h, blog_ids),
                        now=when or now(), window_h=site.settings.rank_window_h)


def front_page_posts(site: "Site", page: int, blog_ids: tuple[int, ...] | None = None) -> tuple[list[dict], int]:
    """The page's posts in ranked order, each with its place and score terms; and the page count.
    With `blog_ids`, a section's ranked pages: its blogs' posts, ranked among themselves."""
    placed = ranked(site, blog_ids=blog_ids)
    pages = max(1, placed[-1].page if placed else 1)
    on_page = [p for p in placed if p.page == page]
    rows = listings.posts_by_id(site.engine, [p.id for p in on_page])
    items = []
    for p in on_page:
        row = rows.get(p.id)
        if row is not None:
            items.append(dict(row, rank=p.position, score=p.score, why=p.terms, note=p.note))
    return items, pages


def with_images(site: "Site", items: list[dict]) -> list[dict]:
    """The posts, each with its first picture (`image`, or None) for the lead and thumbnails.
    Plain http pictures are left out of a site served over https (mixed content)."""
    found = listings.first_images(site.engine, [i["id"] for i in items],
                                  allow_http=not site.settings.site_url.startswith("https:"))
    return [dict(i, image=found.get(i["id"])) for i in items]


def new(site: "Site", params: dict) -> "Out":
    page = page_number(params)
    items, more = listings.newest(site.engine, page=page, per_page=PER_PAGE)
    if page > 1 and not items:
        raise beyond_last("/new", listings.count_newest(site.engine), PER_PAGE, "the newest-first list")
    return out(site.render("new.html", items=with_images(site, items), page=page, more=more, feeds=feeds_of("/new"),
                           title="Newest", here=here("/new", page),
                           description="Every post from the movement's blogs, newest first."),
               listings.latest_change(site.engine))


def here(path: str, page: int) -> str:
    """The page's own address: where a recommend form on it comes back to."""
    return path if page == 1 else f"{path}?page={page}"


def feeds_of(base: str) -> list[tuple[str, str]]:
    """The Atom and RSS feeds a listing page links to in its head."""
    return [("application/atom+xml", base + ".atom"), ("application/rss+xml", base + ".rss")]



# --- a post ---------------------------------------------------------------------------------


def post_context(site: "Site", post_id: int) -> dict:
    item = listings.post(site.engine, post_id)
    if item is None:
        if listings.post_removed(site.engine, post_id):
            raise bottle.HTTPError(410, "a moderator removed this post from the site, or its blog withdrew it")
        raise bottle.HTTPError(404, f"there is no post number {post_id}")
    # The blog's own title and byline off the top of its text (we show ours above it); every
    # picture with alt (empty when the feed said nothing), no referrer and lazy loading: posts
    # stored before the full-text spider and the sanitiser did so included; every table in a
    # box that scrolls sideways on a narrow screen.
    item["content_html"] = tables.in_boxes(images.with_safe_images(
        article_head.strip_repeated_head(item["content_html"], item["title"], item["author"])))
    item["summary"] = article_head.strip_repeated_head_text(item["summary"], item["title"], item["author"])
    # The text taken from the post's page is there (and the feed has not changed the entry since).
    item["full_text"] = bool(item["fulltext_at"] and not item["fulltext_error"]
                             and item["fulltext_at"] >= item["updated_at"])
    placed = {p.id: p for p in ranked(site)}.get(post_id)
    why = {
        "featured": item["featured_at"] is not None,
        "rank": placed.position if placed else None,
        "page": placed.page if placed else None,
        "note": placed.note if placed else "",
        "terms": placed.terms if placed else ranking.score_terms(
            ranking.Candidate(item["id"], item["feed_id"], item["first_seen"], item["recommendations"],
                              item["published"]),
            now=now(), window_h=site.settings.rank_window_h),
    }
    related = site.searcher.related(post_id, limit=5)
    return dict(item=item, why=why, related=related)


def post(site: "Site", params: dict, post_id: int) -> "Out":
    ctx = post_context(site, post_id)
    item = ctx["item"]
    recommended = params.get("recommended", "")
    image = images.first_image(item["content_html"], allow_http=not site.settings.site_url.startswith("https:"))
    return out(site.render("post.html", title=item["title"] or "Untitled post",
                           recommended=recommended if recommended in ("yes", "already") else "",
                           description=_describe(item["summary"]) or f"A post from {item['blog'] or 'a blog'}.",
                           og_type="article", og_image=image.src if image else "", **ctx),
               max(item["updated_at"], item["first_seen"]))


# --- blogs ----------------------------------------------------------------------------------------


def blog_directory(site: "Site", params: dict) -> "Out":
    blogs = listings.blogs(site.engine)
    groups: dict[str, list] = {}
    for b in blogs:
        groups.setdefault(b.category or "Other blogs", []).append(b)
    return out(site.render("blogs.html", groups=sorted(groups.items()), count=len(blogs), title="Blogs"),
               listings.latest_change(site.engine))


def blog(site: "Site", params: dict, blog_id: int) -> "Out":
    b = listings.blog(site.engine, blog_id)
    if b is None:
        raise bottle.HTTPError(404, f"there is no blog number {blog_id}")
    page = page_number(params)
    items, more = listings.newest(site.engine, page=page, per_page=PER_PAGE, blog_id=blog_id)
    if page > 1 and not items:
        raise beyond_last(f"/blogs/{blog_id}", listings.count_newest(site.engine, blog_id=blog_id), PER_PAGE,
                          f"{b.name}'s list of posts")
    history = listings.fetch_summary(site.engine, blog_id) if page == 1 else []
    return out(site.render("blog.html", blog=b, items=with_images(site, items), page=page, more=more, history=history,
                           here=here(f"/blogs/{blog_id}", page),
                           feeds=feeds_of(f"/blogs/{blog_id}"), title=b.name,
                           description=f"Posts from {b.name}, gathered with the movement's other blogs.",
                           verified=submissions.verified_at(site.engine, blog_id)),
               listings.latest_change(site.engine, blog_id))


# --- search ------------------------------------------------------------------------------------


def run_search(site: "Site", params: dict, counts: bool = True):
    """(the search page or None, "") for the query parameters; a query or filter that cannot be
    searched (too long, since after until, ...) is a 400 with the reason, on the site as in the API.
    counts=False: no per-blog counts (the site shows them only when no blog is chosen)."""
    q = params.get("q", "").strip()
    if not q:
        return None, ""
    page = page_number(params, most=100)
    sort = params.get("sort") or "relevance"
    if sort not in ("relevance", "newest"):
        raise bad_request("sort must be relevance or newest")
    blog = params.get("blog", "").strip() or None
    if blog is not None and (not (blog.isascii() and blog.isdigit()) or len(blog) > 9):
        raise bad_request(f"blog must be a blog's number, not {blog[:40]!r}")
    try:
        found = site.searcher.search(q, blog=blog, since=params.get("since") or None,
                                     until=params.get("until") or None, sort=sort, page=page,
                                     limit=SEARCH_PER_PAGE, counts=counts)
    except QueryError as exc:
        raise bad_request(str(exc)) from None
    except OverflowError:  # a date filter past the calendar's ends (index/search.py does not catch it)
        raise bad_request("the dates must fall between the years 1 and 9999") from None
    return found, ""


def search(site: "Site", params: dict) -> "Out":
    found, error = run_search(site, params, counts=not params.get("blog", "").strip())
    blogs = {b.id: b for b in listings.blogs(site.engine)}
    return out(site.render("search.html", found=found, error=error, params=params, blogs=blogs,
                           title=f"Search: {params.get('q', '')}" if params.get("q") else "Search"))


# --- plain pages -----------------------------------------------------------------------------


def about(site: "Site", params: dict) -> "Out":
    return out(site.render("about.html", title="About", top_slots=ranking.TOP_SLOTS,
                           top_per_blog=ranking.TOP_PER_BLOG, page_per_blog=ranking.PAGE_PER_BLOG,
                           page_size=ranking.PAGE_SIZE,
                           recent_days=round(site.settings.rank_window_h * ranking.RECENT_WINDOWS / 24),
                           recommend_limit=_per(site.settings.recommend_limit)))


def _per(limit: str) -> str:
    """A rate-limit setting ("60/1m") in words: "60 a minute"."""
    count, _, period = limit.partition("/")
    unit = {"s": "second", "m": "minute", "h": "hour", "d": "day"}.get(period[-1:], period)
    number = period[:-1] if period[:-1] not in ("", "1") else ""
    return f"{count} every {number} {unit}s" if number else f"{count} a {unit}"


def privacy(site: "Site", params: dict) -> "Out":
    # What the page promises comes from the code that keeps the promise.
    return out(site.render("privacy.html", title="Privacy", reader_cookie_days=security.READER_COOKIE_DAYS,
                           rate_keep_h=ratelimits.keep_s(site.settings) // 3600, device_days=signin.DEVICE_DAYS,
                           failures_days=signin.FAILURES_KEPT_DAYS))


def healthz(site: "Site", params: dict) -> "Out":
    return out(b"ok", content_type="text/plain; charset=utf-8")


# --- template filters -----------------------------------------------------------------------


SITE_DESCRIPTION = ("The movement's blogs and news sites in one place, ranked by readers' recommendations and "
                    "freshness: read, search, recommend and vote.")
NOT_CANONICAL = {"recommended"}  # a thank-you after a form, not another page


def _describe(text: str, most: int = 200) -> str:
    """A summary cut to a link preview's length, at a word."""
    text = " ".join((text or "").split())
    if len(text) <= most:
        return text
    return text[:most].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def canonical_url(site_url: str) -> str:
    """This page's own address for search engines and link previews: the site's public URL,
    the path, and only the query parameters its route reads (web/app.py puts them in the
    environ), page 1 and empty ones left out; "" outside a request."""
    try:
        environ = bottle.request.environ
        path = bottle.request.path
    except RuntimeError:
        return ""
    params = environ.get("hustings.params") or {}
    kept = [(k, v) for k, v in sorted(params.items())
            if v and k not in NOT_CANONICAL and not (k == "page" and v == "1")]
    return site_url.rstrip("/") + path + ("?" + urllib.parse.urlencode(kept) if kept else "")



def ago(when: datetime | None, at: datetime | None = None) -> str:
    if when is None:
        return "never"
    seconds = ((at or now()) - when).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            text = f"{n} {unit}{'s' if n != 1 else ''}"
            return f"in {text}" if future else f"{text} ago"
    return "just now"


def dated(when: datetime | None, at: datetime | None = None) -> str:
    """A post's date for a listing: "3 hours ago" this week, the day itself before that."""
    if when is not None and ((at or now()) - when).total_seconds() >= 7 * 86400:
        return day(when)
    return ago(when, at)


def day(when: datetime | None) -> str:
    return when.strftime("%-d %B %Y") if when else ""


def iso(when: datetime | None) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z") if when else ""
