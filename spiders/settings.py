"""Scrapy settings from Hustings settings: polite, guarded, and capped like every feed fetch.

One function, so the crawl processes and the benchmark run with exactly the same rules.
"""

from __future__ import annotations

from typing import Any

from aggregator.settings import Settings

AUTOTHROTTLE_MAX_DELAY_S = 60.0  # a slow site slows us down this far, and no further
RETRY_TIMES = 1  # one more try after a timeout or a dropped connection; errors from the site are not retried


def scrapy_settings(settings: Settings, *, max_pages: int | None = None) -> dict[str, Any]:
    """The Scrapy settings for one crawl process."""
    return {
        "BOT_NAME": "hustings",
        "USER_AGENT": settings.http_user_agent,
        "LOG_LEVEL": settings.log_level.upper(),
        "TELNETCONSOLE_ENABLED": False,
        # Politeness: robots.txt, at most fetch_per_host requests in flight per site, at
        # least crawl_delay_s between them, and AutoThrottle slows down when the site does.
        "ROBOTSTXT_OBEY": True,
        "CONCURRENT_REQUESTS": 16,
        "CONCURRENT_REQUESTS_PER_DOMAIN": settings.fetch_per_host,
        "DOWNLOAD_DELAY": settings.crawl_delay_s,
        "DOWNLOAD_DELAY_JITTER": 0.5,  # each wait is the delay +-50%, so requests do not beat in step
        "AUTOTHROTTLE_ENABLED": True,
        "AUTOTHROTTLE_START_DELAY": settings.crawl_delay_s,
        "AUTOTHROTTLE_MAX_DELAY": max(AUTOTHROTTLE_MAX_DELAY_S, settings.crawl_delay_s),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        # The same caps as a feed fetch: size (Scrapy counts decompressed bytes too),
        # time per request, redirect hops; and the crawl's own limits.
        "DOWNLOAD_MAXSIZE": settings.fetch_max_bytes,
        "DOWNLOAD_WARNSIZE": 0,
        "DOWNLOAD_TIMEOUT": settings.fetch_deadline_s,
        "REDIRECT_MAX_TIMES": settings.fetch_max_redirects,
        "CLOSESPIDER_TIMEOUT": settings.crawl_deadline_s,
        "HUSTINGS_MAX_PAGES": settings.crawl_max_pages if max_pages is None else max_pages,
        "RETRY_TIMES": RETRY_TIMES,
        "RETRY_HTTP_CODES": [502, 503, 504, 522, 524, 408],
        "RETRY_EXCEPTIONS": [  # not DNS errors: the guard refusing a name is final
            "scrapy.exceptions.DownloadConnectionRefusedError",
            "scrapy.exceptions.DownloadTimeoutError",
            "scrapy.exceptions.ResponseDataLossError",
            "twisted.internet.error.ConnectionLost",
        ],
        # Safety: only http(s); no proxies from the environment; no cookies kept; every
        # request and hop through the address guard; names resolved through it too.
        "DOWNLOAD_HANDLERS": {"file": None, "s3": None, "ftp": None, "data": None},
        "HTTPPROXY_ENABLED": False,
        "COOKIES_ENABLED": False,
        "HUSTINGS_ALLOW_NETWORKS": list(settings.allow_networks),
        "TWISTED_DNS_RESOLVER": "spiders.middlewares.GuardedResolver",
        "DOWNLOADER_MIDDLEWARES": {
            "spiders.middlewares.GuardMiddleware": 950,
            "spiders.middlewares.PageBudgetMiddleware": 960,
        },
        "ITEM_PIPELINES": {"spiders.pipelines.PostPipeline": 300},
        "HUSTINGS_SETTINGS": settings,
    }
