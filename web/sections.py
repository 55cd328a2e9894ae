"""Section pages: /sections/NAME, one section's own ranked list (aggregator/sections.py
says what a section is), and the list of sections every page's masthead shows."""

from __future__ import annotations

import logging
import time

import bottle

from aggregator import listings, sections

from . import pages
from .request import Out, Site

log = logging.getLogger("hustings.web")

NAV_KEEP_S = 30.0  # the masthead's list of sections is read at most this often per process


def section_or_404(site: "Site", name: str) -> sections.Section:
    found = sections.section(site.engine, name)
    if found is None:
        raise bottle.HTTPError(404, f"there is no section called {name!r}; the sections are listed on every page")
    return found


def section(site: "Site", params: dict, name: str) -> "Out":
    sec = section_or_404(site, name)
    page = pages.page_number(params)
    items, count = pages.front_page_posts(site, page, blog_ids=sec.blog_ids)
    if page > count:
        raise bottle.HTTPError(404, f"{sec.name} has {count} page{'s' if count != 1 else ''} of posts")
    blogs = [b for b in listings.blogs(site.engine) if b.id in set(sec.blog_ids)]
    return pages.out(site.render("section.html", section=sec, blogs=blogs, items=pages.with_images(site, items),
                                 page=page, pages=count,
                                 here=sec.path if page == 1 else f"{sec.path}?page={page}", nav="section:" + sec.slug,
                                 feeds=[("application/atom+xml", sec.path + ".atom"),
                                        ("application/rss+xml", sec.path + ".rss")],
                                 title=sec.name, description=f"The latest from the {sec.name} of the movement's blogs, "
                                                             f"ranked by readers' recommendations and freshness."),
                     listings.latest_change(site.engine, blog_ids=sec.blog_ids))


def href(category: str | None) -> str:
    """The address of the section a blog's category belongs to ("" for none)."""
    key = sections.slug(sections.section_name(category))
    return f"/sections/{key}" if key else ""


def nav(site: "Site") -> list[sections.Section]:
    """The sections for the masthead, kept NAV_KEEP_S per process (a page render does not
    pay a query for it); on a database error the last list read, so no page fails over it."""
    memo = site.__dict__.setdefault("_nav_sections", {"at": float("-inf"), "list": []})
    now = time.monotonic()
    if now - memo["at"] >= NAV_KEEP_S:
        try:
            memo["list"] = sections.sections(site.engine)
        except Exception:  # an error page is rendered while the database is away: no sections row
            log.warning("could not read the sections for the masthead", exc_info=True)
        memo["at"] = now
    return memo["list"]
