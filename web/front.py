"""The front page: the lead story with its picture and the next few beneath it, then the
ranked list; beside them on a wide screen (after them on a phone) the editor's picks, the
open polls, the rising campaigns, the week's most recommended posts and the latest ones."""

from __future__ import annotations

from datetime import timedelta

import bottle

from aggregator import article_head, listings, reach
from community.campaigns import store as campaign_store
from community.polls import store as poll_store

from . import pages
from .request import Out, Site

STORIES = 5  # the lead and the four beneath it: larger, with their summaries and pictures
RAIL_ITEMS = 5  # posts in each list of the sidebar
POPULAR_SINCE = timedelta(days=7)  # "most recommended this week"


def front(site: "Site", params: dict) -> "Out":
    page = pages.page_number(params)
    items, count = pages.front_page_posts(site, page)
    if page > count:
        raise bottle.HTTPError(404, f"the front page has {count} page{'s' if count != 1 else ''}; "
                                    f"older posts are on the newest-first list")
    items = pages.with_images(site, items)
    for item in items[:STORIES] if page == 1 else ():  # the stories show their summaries
        item["summary"] = article_head.strip_repeated_head_text(item["summary"], item["title"], item["author"])
    stories, rest = (items[:STORIES], items[STORIES:]) if page == 1 else ([], items)
    rail = {}
    changed = [listings.latest_change(site.engine)]
    if page == 1:
        shown = {i["id"] for i in items}
        latest, _ = listings.newest(site.engine, page=1, per_page=RAIL_ITEMS + len(shown))
        rail = dict(
            picks=listings.editors_picks(site.engine),
            polls=poll_store.open_polls(site.engine, limit=RAIL_ITEMS),
            campaigns=campaign_store.directory(site.engine, "rising", per_page=RAIL_ITEMS)[0],  # rising first
            popular=listings.most_recommended(site.engine, pages.now() - POPULAR_SINCE, limit=RAIL_ITEMS),
            # The latest posts not already on the page: the rail adds, it does not repeat.
            latest=[i for i in latest if i["id"] not in shown][:RAIL_ITEMS],
        )
        changed.append(poll_store.polls_changed_at(site.engine))
        changed.append(campaign_store.last_change(site.engine))
    changed = [t for t in changed if t]
    lead = stories[0] if stories else None
    return pages.out(site.render("front.html", stories=stories, items=rest, page=page, pages=count, rail=rail,
                                 here=pages.here("/", page), feeds=pages.feeds_of("/feed"), title="", nav="front",
                                 og_image=lead["image"].src if lead and lead.get("image") else "",
                                 # Nothing to show: say whether the feeds cannot be reached, and why.
                                 unreachable="" if stories or rest else reach.unreachable(site.engine)),
                     max(changed) if changed else None)
