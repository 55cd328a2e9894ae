"""The `fulltext` spider: each post's own page, for feeds that carry only a summary.

For every post it is given it fetches the post's URL and yields the Post again with
the article's HTML (the feed's CSS selector when one is set and the page is on the
feed's site, else readability-lxml). The pipeline sanitises it and replaces the stored
content in place. A page with no article (less text than the summary, or hardly any)
is recorded on the post and tried again later.
"""

from __future__ import annotations

from collections import defaultdict

import scrapy
from scrapy.http import HtmlResponse

from aggregator.article_head import strip_repeated_head
from aggregator.models import Feed, Post

from .article import MIN_ARTICLE_CHARS, article_chars, article_html, selected_html
from .markup import same_site
from .pipelines import CrawlTally


class FulltextSpider(scrapy.Spider):
    name = "fulltext"

    def __init__(self, jobs: list[tuple[Feed, list[dict]]] = (), **kwargs):
        super().__init__(**kwargs)
        self.jobs = list(jobs)
        self.feeds = {feed.id: feed for feed, _ in self.jobs}
        self.tally: defaultdict[int, CrawlTally] = defaultdict(CrawlTally)
        self.failures: list[tuple[int, str]] = []  # (post id, why): recorded on the posts by spiders.run

    async def start(self):
        # Interleave feeds, so one feed's backlog does not hold up the others.
        queues = [[(feed, p) for p in posts] for feed, posts in self.jobs]
        while any(queues):
            for queue in queues:
                if queue:
                    feed, post = queue.pop(0)
                    yield scrapy.Request(post["url"], callback=self.parse, errback=self.failed, dont_filter=True,
                                         cb_kwargs={"feed": feed, "post": post})

    def parse(self, response, feed: Feed, post: dict):
        tally = self.tally[feed.id]
        tally.pages += 1
        if not isinstance(response, HtmlResponse):
            return self._fail(feed, post, "the post's page is not HTML")
        # The feed's selector is for its own site's pages; a post elsewhere gets the guess.
        on_site = same_site(response.url, post["url"]) or (feed.site_url and same_site(response.url, feed.site_url))
        html = selected_html(response.text, response.url, feed.content_selector) if on_site else ""
        chars = article_chars(html)
        if not chars:  # no selector, or it matched nothing: the guess, which must look like an article
            html = article_html(response.text, response.url)
            chars = article_chars(html)
            if chars < MIN_ARTICLE_CHARS or chars < len(post.get("summary") or "") * 0.8:
                html = ""
        if not html:
            return self._fail(feed, post, f"no article found on {response.url} ({chars} characters of text)")
        tally.posts_found += 1
        # The page's own headline and byline are not the post's text: the site shows its own.
        html = strip_repeated_head(html, post["title"], post["author"])
        return Post(
            feed_id=feed.id, guid=post["guid"], url=post["url"], title=post["title"], content_html=html,
            published=post["published"], author=post["author"], base_url=response.url, id=post["id"],
        )

    def _fail(self, feed: Feed, post: dict, why: str) -> None:
        self.tally[feed.id].error(f"post {post['id']}: {why}")
        self.failures.append((post["id"], why))

    def failed(self, failure):
        kwargs = failure.request.cb_kwargs
        response = getattr(failure.value, "response", None)
        status = getattr(response, "status", None)
        reason = f"HTTP {status}" if status else f"{type(failure.value).__name__}: {failure.getErrorMessage()}"
        self._fail(kwargs["feed"], kwargs["post"], f"{failure.request.url}: {reason}")
