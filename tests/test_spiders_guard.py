"""The spiders' address guard and page budget, in-process (the crawls themselves: test_spiders_crawl.py)."""

import ipaddress

import pytest
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse, Request
from twisted.internet.error import DNSLookupError

from aggregator.guard import AddressGuard
from aggregator.settings import Settings
from spiders.middlewares import GuardedResolver, GuardMiddleware, PageBudgetMiddleware
from spiders.settings import scrapy_settings

ALLOWED = [ipaddress.ip_network("127.0.0.1/32")]


@pytest.mark.parametrize("url", [
    "http://127.0.0.2:8080/", "http://0x7f.0.0.2:8080/", "http://2130706434:8080/", "http://169.254.169.254/latest/",
    "http://[::ffff:127.0.0.2]:8080/", "http://10.0.0.1/", "http://127.0.0.1:22/", "ftp://127.0.0.1/",
    "file:///etc/passwd", "http://user:pw@127.0.0.1:8080/", "http://1.2.3.4.5/",
])
def test_guard_refuses_blocked_requests_before_they_are_sent(url):
    with pytest.raises(IgnoreRequest):
        GuardMiddleware(AddressGuard(ALLOWED)).process_request(Request(url))


def test_guard_lets_allowed_addresses_and_names_through():
    guard = GuardMiddleware(AddressGuard(ALLOWED))
    assert guard.process_request(Request("http://127.0.0.1:8080/a")) is None
    assert guard.process_request(Request("http://blog.example.org/")) is None  # names: judged by the resolver


def test_guard_checks_the_address_a_response_came_from():
    guard = GuardMiddleware(AddressGuard(ALLOWED))
    ok = HtmlResponse("http://127.0.0.1:8080/", body=b"<html></html>", ip_address=ipaddress.ip_address("127.0.0.1"))
    assert guard.process_response(Request(ok.url), ok) is ok
    bad = HtmlResponse("http://blog.example.org/", body=b"<html></html>", ip_address=ipaddress.ip_address("10.1.2.3"))
    with pytest.raises(IgnoreRequest, match="connected to 10.1.2.3"):
        guard.process_response(Request(bad.url), bad)


def test_resolver_answers_only_with_addresses_the_guard_allows():
    resolver = GuardedResolver(None, ALLOWED)
    assert resolver._resolve("127.0.0.1") == "127.0.0.1"
    for name in ("127.0.0.2", "localhost.localdomain.invalid.0x7f"):
        with pytest.raises(DNSLookupError):
            resolver._resolve(name)


class _Stats:
    def __init__(self):
        self.values = {}

    def inc_value(self, key, n=1):
        self.values[key] = self.values.get(key, 0) + n


def test_page_budget_is_per_site_and_drops_requests_unsent():
    crawler = type("Crawler", (), {"stats": _Stats()})()
    budget = PageBudgetMiddleware(crawler, max_pages=3)
    for i in range(3):
        assert budget.process_request(Request(f"http://127.0.0.1:8080/{i}")) is None
    with pytest.raises(IgnoreRequest, match="page limit of 3"):
        budget.process_request(Request("http://127.0.0.1:8080/4"))
    assert budget.process_request(Request("http://127.0.0.1:9090/")) is None  # another site has its own budget
    assert crawler.stats.values == {"hustings/requests_sent": 4, "hustings/page_limit_refused": 1}


def test_scrapy_settings_carry_our_limits_and_politeness():
    s = Settings(fetch_max_bytes=1234, fetch_deadline_s=7.0, fetch_per_host=2, crawl_delay_s=1.5,
                 crawl_max_pages=50, crawl_deadline_s=99.0, fetch_max_redirects=3, user_agent="UA/1")
    got = scrapy_settings(s)
    assert got["ROBOTSTXT_OBEY"] is True and got["AUTOTHROTTLE_ENABLED"] is True
    assert (got["CONCURRENT_REQUESTS_PER_DOMAIN"], got["DOWNLOAD_DELAY"], got["USER_AGENT"]) == (2, 1.5, "UA/1")
    assert (got["DOWNLOAD_MAXSIZE"], got["DOWNLOAD_TIMEOUT"], got["REDIRECT_MAX_TIMES"]) == (1234, 7.0, 3)
    assert (got["HUSTINGS_MAX_PAGES"], got["CLOSESPIDER_TIMEOUT"]) == (50, 99.0)
    assert got["HTTPPROXY_ENABLED"] is False and got["DOWNLOAD_HANDLERS"]["file"] is None
    assert got["TWISTED_DNS_RESOLVER"] == "spiders.middlewares.GuardedResolver"
