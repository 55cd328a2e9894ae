"""The address guard and the page budget, as Scrapy sees them.

Three layers, so no crawl ever talks to an address the guard refuses, on any hop:

* ``GuardMiddleware`` (a downloader middleware, the last before the network) judges
  every request, redirect hops and robots.txt included, before it is sent: scheme,
  port, and the address when the host is an IP literal in any spelling. After the
  response it checks the address the connection actually went to.
* ``GuardedResolver`` replaces Scrapy's DNS resolver: a name resolves only to an
  address the guard allows, and Twisted connects to the address it returned, so DNS
  rebinding between the check and the connection is not possible (one answer per
  name per crawl, kept for the life of the process).
* ``PageBudgetMiddleware`` lets at most ``crawl_max_pages`` requests per site reach
  the network; the rest are dropped before they are sent.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import Counter
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest
from twisted.internet import defer, threads
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IResolverSimple
from zope.interface import implementer

from aggregator.errors import FetchError
from aggregator.guard import AddressGuard, looks_numeric, parse_ip

log = logging.getLogger(__name__)

# Why the guard refused something in this process: the crawl report lists these.
REFUSED: list[str] = []


def _networks(crawler_or_settings) -> list:
    settings = getattr(crawler_or_settings, "settings", crawler_or_settings)
    return [ipaddress.ip_network(n, strict=False) for n in settings.getlist("HUSTINGS_ALLOW_NETWORKS")]


def refuse(url: str, why: str) -> IgnoreRequest:
    message = f"{url}: {why}"
    if message not in REFUSED:
        REFUSED.append(message)
    log.warning("address guard: %s", message)
    return IgnoreRequest(message)


class GuardMiddleware:
    """Refuse any request the address guard would refuse, on every hop."""

    def __init__(self, guard: AddressGuard):
        self.guard = guard

    @classmethod
    def from_crawler(cls, crawler):
        return cls(AddressGuard(_networks(crawler)))

    def process_request(self, request, spider=None):
        url = request.url
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise refuse(url, f"not a valid URL: {exc}") from None
        if parts.scheme not in ("http", "https"):
            raise refuse(url, f"only http and https are crawled, not {parts.scheme!r}")
        if parts.username is not None or parts.password is not None:
            raise refuse(url, "URLs with a user name or password are not crawled")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise refuse(url, "no host")
        try:
            self.guard.check_port(url, port or (443 if parts.scheme == "https" else 80))
        except FetchError as exc:
            raise refuse(url, exc.reason) from None
        literal = parse_ip(host)
        if literal is not None:
            why = self.guard.verdict(literal)
            if why:
                raise refuse(url, f"{host} ({literal}) is {why}")
        elif looks_numeric(host) or ":" in host:
            raise refuse(url, f"host {host!r} is neither an IP address nor a host name")
        return None

    def process_response(self, request, response, spider=None):
        peer = getattr(response, "ip_address", None)
        if peer is not None:
            why = self.guard.verdict(ipaddress.ip_address(str(peer).split("%", 1)[0]))
            if why:  # the connection went somewhere the guard did not vet: drop what came back
                raise refuse(request.url, f"connected to {peer}, which is {why}")
        return response


@implementer(IResolverSimple)
class GuardedResolver:
    """Scrapy's TWISTED_DNS_RESOLVER: a name resolves only to an address the guard allows."""

    def __init__(self, reactor, allowed):
        self.reactor = reactor
        self.guard = AddressGuard(allowed)
        self._answers: dict[str, str] = {}

    @classmethod
    def from_crawler(cls, crawler, reactor):
        return cls(reactor, _networks(crawler))

    def install_on_reactor(self) -> None:
        self.reactor.installResolver(self)

    def getHostByName(self, name: str, timeout=()):  # noqa: N802 (Twisted's interface)
        if name in self._answers:
            return defer.succeed(self._answers[name])
        d = threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), self._resolve, name)
        d.addCallback(self._remember, name)
        return d

    def _resolve(self, name: str) -> str:
        url = f"http://{name}/"
        try:
            addresses = self.guard.resolve(url, name, 0)
        except FetchError as exc:
            REFUSED.append(f"{name}: {exc.reason}")
            log.warning("address guard: %s: %s", name, exc.reason)
            raise DNSLookupError(exc.reason) from None
        v4 = [a for a in addresses if a.version == 4]
        if not v4:
            raise DNSLookupError(f"{name} has no IPv4 address the guard allows")
        return str(v4[0])

    def _remember(self, address: str, name: str) -> str:
        self._answers.setdefault(name, address)
        return self._answers[name]


class PageBudgetMiddleware:
    """At most HUSTINGS_MAX_PAGES requests per site reach the network in one crawl."""

    def __init__(self, crawler, max_pages: int):
        self.crawler = crawler
        self.max_pages = max_pages
        self.sent: Counter[str] = Counter()
        self.refused = 0

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler, crawler.settings.getint("HUSTINGS_MAX_PAGES"))

    def process_request(self, request, spider=None):
        try:
            site = urlsplit(request.url).netloc.lower()
        except ValueError:
            site = ""
        if self.max_pages and self.sent[site] >= self.max_pages:
            self.refused += 1
            self.crawler.stats.inc_value("hustings/page_limit_refused")
            raise IgnoreRequest(f"page limit of {self.max_pages} requests reached for {site}")
        self.sent[site] += 1
        self.crawler.stats.inc_value("hustings/requests_sent")
        return None
