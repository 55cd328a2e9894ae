"""The spiders' one item pipeline: each yielded Post goes through sanitize, then the store.

The same two stages every fetched feed goes through (aggregator.sanitize and
aggregator.store); only the order of calls is the spiders' own. New posts are saved
in batches, so a crawl stopped by its deadline keeps what it had found.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from aggregator import fulltext_store, post_store, sanitize
from aggregator.db import make_engine, utcnow
from aggregator.models import Post
from aggregator.parse import assign_identities

BATCH = 25  # new posts per transaction


@dataclass
class CrawlTally:
    """What one crawl process did, per feed: the report `spiders.run` prints and records."""

    pages: int = 0  # responses the spider read (robots.txt aside)
    posts_found: int = 0  # post pages recognised (crawl) or articles extracted (full text)
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    elsewhere: int = 0  # posts another feed already has (stored once, there)
    failed: int = 0  # full text: pages with no article
    errors: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.failed += 1
        if len(self.errors) < 20:
            self.errors.append(message[:300])


class PostPipeline:
    def __init__(self, crawler, settings):
        self.crawler = crawler
        self.settings = settings
        self.engine = make_engine(settings)
        self.clean = sanitize.sanitizer(settings)
        self.pending: dict[int, list[Post]] = defaultdict(list)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler, crawler.settings["HUSTINGS_SETTINGS"])

    def process_item(self, item, spider=None):
        if not isinstance(item, Post):
            return item
        spider = self.crawler.spider
        post = sanitize.sanitize_post(item, self.settings, self.clean)
        tally = spider.tally[post.feed_id]
        if post.id is not None:  # the full text of a post we have: replace its content in place
            if fulltext_store.save_fulltext(self.engine, post):
                tally.updated += 1
            else:
                tally.unchanged += 1
            return item
        self.pending[post.feed_id].append(post)
        if len(self.pending[post.feed_id]) >= BATCH:
            self.flush(post.feed_id)
        return item

    def flush(self, feed_id: int) -> None:
        spider = self.crawler.spider
        batch = assign_identities(self.pending.pop(feed_id, []))
        if not batch:
            return
        report = post_store.save_posts(self.engine, spider.feeds[feed_id], batch, utcnow())
        tally = spider.tally[feed_id]
        tally.new += report.new
        tally.updated += report.updated
        tally.unchanged += report.unchanged

    def close_spider(self, spider=None):
        for feed_id in list(self.pending):
            self.flush(feed_id)
        self.engine.dispose()
