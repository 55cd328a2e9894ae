"""The `blog` spider: a blog without a usable feed, from its home page.

It stays on the site, follows pagination, archive and post links (posts first), and
turns every page that is a post (see spiders.extract) into a Post. Posts this blog
already has are not fetched again, nor are posts another feed already carries. After
one crawl has walked the whole blog, later crawls stop at listing pages that bring
nothing new.
"""

from __future__ import annotations

from collections import defaultdict
from urllib.parse import urlsplit

import scrapy
from scrapy.http import HtmlResponse

from aggregator.models import Feed, Post
from aggregator.parse import norm_url

from .extract import read_page
from .links import page_links
from .pipelines import CrawlTally

# Higher first: posts as soon as they are found, then the next listing page, then the rest.
PRIORITY = {"home": 100, "entry": 40, "pager": 30, "archive": 20, "other": 10, "taxonomy": 0}


class BlogSpider(scrapy.Spider):
    name = "blog"

    def __init__(self, feed: Feed, known: set[str] = frozenset(), elsewhere: set[str] = frozenset(),
                 full: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.feed = feed
        self.feeds = {feed.id: feed}
        self.tally: defaultdict[int, CrawlTally] = defaultdict(CrawlTally)
        self.known = set(known)  # normalised URLs of the posts this blog already has
        self.elsewhere = set(elsewhere)  # ... and of the posts other feeds have on this host
        self.full = full  # fetch and re-read every post, known or not
        self.incremental = feed.crawled_all_at is not None and not full
        host = (urlsplit(feed.url).hostname or "").removeprefix("www.")
        self.allowed_domains = [host]
        self.found: set[str] = set()
        self.seen_elsewhere: set[str] = set()  # posts met here that another feed already carries
        self.home_status: int | None = None
        self.home_url = ""
        self.home_error = ""

    async def start(self):
        yield scrapy.Request(self.feed.url, callback=self.parse, errback=self.failed, priority=PRIORITY["home"],
                             meta={"home": True})

    def parse(self, response):
        tally = self.tally[self.feed.id]
        tally.pages += 1
        if response.meta.get("home"):
            self.home_status, self.home_url = response.status, response.url
        if not isinstance(response, HtmlResponse):
            if response.meta.get("home"):
                self.home_error = f"the start page is not HTML ({response.headers.get('Content-Type', b'').decode('latin-1')})"
            return
        page = read_page(response.text, response.url, self.feed.content_selector, sel=response.selector)
        if page.is_post:
            yield from self._post(page, response)
        yield from self._follow(page, response)

    def _post(self, page, response):
        tally = self.tally[self.feed.id]
        norm = norm_url(page.url)
        if norm in self.found:
            return
        self.found.add(norm)
        if norm in self.elsewhere:  # another feed carries it: stored once, there
            self.seen_elsewhere.add(norm)
            return
        if norm in self.known and not self.full:
            return
        tally.posts_found += 1
        yield Post(
            feed_id=self.feed.id, guid="", url=page.url, title=page.title or page.url,
            content_html=page.content_html, published=page.published, author=page.author,
            base_url=response.url,
        )

    def _follow(self, page, response):
        links = page_links(response.text, response.url, sel=response.selector)
        if self.incremental:
            # Only new posts and the listings that lead to them: a listing page whose
            # posts are all known ends the walk down that way.
            if page.is_post:
                return
            entries = [l for l in links if l.kind == "entry"]
            if entries and all(self._known(l.url) for l in entries) and not response.meta.get("home"):
                return
            links = [l for l in links if l.kind in ("entry", "pager")]
        for link in links:
            if self._known(link.url):
                continue
            yield response.follow(link.url, callback=self.parse, errback=self.failed, priority=PRIORITY[link.kind])

    def _known(self, url: str) -> bool:
        norm = norm_url(url)
        if norm in self.elsewhere:
            self.seen_elsewhere.add(norm)
            return True
        return norm in self.known and not self.full

    def failed(self, failure):
        request = failure.request
        response = getattr(failure.value, "response", None)
        status = getattr(response, "status", None)
        reason = f"HTTP {status}" if status else f"{type(failure.value).__name__}: {failure.getErrorMessage()}"
        if request.meta.get("home"):
            self.home_status = status
            self.home_url = request.url
            self.home_error = f"{request.url}: {reason}"
        tally = self.tally[self.feed.id]
        if len(tally.errors) < 20:
            tally.errors.append(f"{request.url}: {reason}"[:300])
