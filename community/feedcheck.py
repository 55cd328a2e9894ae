"""What a blogger's submission is checked with: find the feeds behind an address, and check one.

Every request goes through fetch.fetch, so through the address guard (every redirect hop
judged, the connected peer checked) and the deadline and size caps, exactly like the
fetcher's. Feeds are found the way `hustings feeds add` finds them (discover.py:
<link rel="alternate"> first, then the usual paths), and the preview is parsed and
sanitised by pipeline.prepare, the function the fetcher stores posts with, so the
blogger sees their posts exactly as the site will show them.

The check is a plain dict (stored as the submission's check_json, shown to moderators):

* ``valid`` and ``why``: whether the site can use the feed, and the reason when not;
* ``entries``, ``dated`` (entries with a date), ``future_dated``, ``guids`` (entries with
  an id), ``guid_duplicates``, ``guids_unique``, ``full_content``, ``summary_only``,
  ``content`` ("full", "summary", "mixed" or "none"), ``last_post`` (ISO date);
* ``warnings``: what is usable but worth knowing (malformed XML, missing dates...);
* ``preview``: the newest three posts, sanitised, with the dates the site would show.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Mapping
from urllib.parse import urlsplit

from aggregator import discover, fetch
from aggregator.db import utcnow
from aggregator.errors import AggregatorError, BlockedAddress
from aggregator.guard import AddressGuard
from aggregator.models import Feed, FetchResult
from aggregator.pipeline import prepare
from aggregator.settings import Settings

from .identity import keyed

MAX_GUESSES = 7  # the usual feed paths tried when a page advertises no feed
PREVIEW_POSTS = 3
FUTURE_SKEW_S = 300  # as post_store.FUTURE_SKEW: a clock a little ahead is not a future date


@dataclass(frozen=True)
class FeedOption:
    url: str
    title: str = ""
    type: str = ""


@dataclass(frozen=True)
class Probe:
    """What the submitted address led to."""

    url: str  # as given
    final_url: str  # after redirects
    feeds: tuple[FeedOption, ...]  # the feeds found; the address itself when it is a feed
    result: FetchResult | None = None  # the feed's response, when the address was the feed
    is_feed: bool = False


def guard_for(settings: Settings) -> AddressGuard:
    return AddressGuard(settings.allowed_networks)


# --- never this site itself ----------------------------------------------------------------------------
# The site's own feeds (/feed.atom, /new.rss, /blogs/ID.atom, a section's...) would have it
# aggregate itself, every post coming back as a new one. Two tests: the address is on the
# host of site_url (before anything is fetched; by name, so it holds while the site is down),
# and, for any name or redirect that leads here, every response of ours carries SITE_HEADER
# with a mark made from the site's secret, which no other site can know.

SITE_HEADER = "X-Hustings-Site"


class OwnSite(AggregatorError):
    """The address is this site's own: it is never aggregated."""


@functools.lru_cache(maxsize=8)
def site_mark(settings: Settings) -> str:
    """What this site's responses say in SITE_HEADER (the same on every node: one secret)."""
    return keyed(settings, "own-site")[:32]


def _origin(url: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(url.strip())
        host, port = (parts.hostname or "").rstrip("."), parts.port
    except ValueError:
        return None
    if not host:
        return None
    host = host[4:] if host.startswith("www.") else host
    return host, port or {"https": 443, "http": 80}.get(parts.scheme.lower(), 0)


def is_own_address(settings: Settings, url: str) -> bool:
    """Whether url is on this site's host: same name (www. aside), and the same port, where
    http's 80 and https's 443 count as one site."""
    ours, theirs = _origin(settings.site_url), _origin(url)
    if not ours or not theirs or ours[0] != theirs[0]:
        return False
    return ours[1] == theirs[1] or {ours[1], theirs[1]} <= {80, 443}


def own_site_reason(settings: Settings, url: str, headers: Mapping[str, str] | None = None) -> str:
    """A sentence when url (or a response from it, by its headers) is this site; else ""."""
    if is_own_address(settings, url) or (headers or {}).get(SITE_HEADER.lower()) == site_mark(settings):
        return (f"that address is this site's own ({settings.site_name} does not aggregate itself): "
                "submit the address of your blog or of its feed")
    return ""


def refuse_own_site(settings: Settings, url: str, headers: Mapping[str, str] | None = None) -> None:
    """Raises:
        OwnSite: url is this site (see own_site_reason)."""
    reason = own_site_reason(settings, url, headers)
    if reason:
        raise OwnSite(url, reason)


def refusal(exc: AggregatorError, asked: str) -> str:
    """A blogger-facing sentence for a fetch that failed, naming a redirect that led astray."""
    if isinstance(exc, OwnSite):
        return exc.reason
    if isinstance(exc, BlockedAddress):
        where = exc.url
        if where != asked:
            return (f"{asked} redirected to {where}, an address this site will not fetch ({exc.reason}). "
                    "Submit the public address of the blog or its feed.")
        return (f"this site will not fetch {where} ({exc.reason}). "
                "Submit the public address of the blog or its feed.")
    return str(exc)


def probe(url: str, settings: Settings, guard: AddressGuard | None = None) -> Probe:
    """Fetch the submitted address and find its feeds.

    Raises:
        AggregatorError: the address could not be fetched (BlockedAddress when the guard
            refused it or a redirect), or no feed was found there.
    """
    guard = guard or guard_for(settings)
    refuse_own_site(settings, url)
    result = fetch.fetch(url, settings, guard=guard)
    refuse_own_site(settings, result.final_url, result.headers)
    if discover.looks_like_feed(result.body):
        return Probe(url, result.final_url, (FeedOption(result.final_url),), result, is_feed=True)
    # A blog that advertises this site's feed beside its own: offer only its own.
    links = [l for l in discover.find_feed_links(result.body, result.final_url) if not is_own_address(settings, l.href)]
    if links:
        return Probe(url, result.final_url, tuple(FeedOption(l.href, l.title, l.type) for l in links))
    errors = []
    for candidate in discover.candidate_paths(result.final_url)[:MAX_GUESSES]:
        try:
            got = fetch.fetch(candidate, settings, guard=guard)
        except AggregatorError as exc:
            errors.append(str(exc))
            continue
        if discover.looks_like_feed(got.body) and not own_site_reason(settings, got.final_url, got.headers):
            return Probe(url, result.final_url, (FeedOption(got.final_url),), got)
    raise AggregatorError(url, "no feed found: the page names no feed (<link rel=\"alternate\">) and there is none "
                               "at the usual addresses (/feed/, /rss.xml, /atom.xml, ...); submit the feed's own "
                               "address if you know it")


def _iso(when: datetime | None) -> str | None:
    return when.isoformat(timespec="seconds") if when else None


def check(feed_url: str, settings: Settings, *, guard: AddressGuard | None = None,
          result: FetchResult | None = None, now: datetime | None = None) -> dict:
    """The feed check for feed_url (fetched under the guard unless `result` is its response)."""
    now = now or utcnow()
    out: dict = {"url": feed_url, "feed_url": feed_url, "checked_at": _iso(now), "valid": False, "why": "",
                 "redirects": [], "warnings": [], "preview": []}
    try:
        refuse_own_site(settings, feed_url)
        if result is None:
            result = fetch.fetch(feed_url, settings, guard=guard or guard_for(settings))
        out.update(feed_url=result.final_url, http_status=result.status, bytes=len(result.body),
                   redirects=list(result.redirects))
        refuse_own_site(settings, result.final_url, result.headers)
        parsed = prepare(result.body, Feed(id=0, url=result.final_url), result.final_url, result.headers, settings)
    except AggregatorError as exc:
        out["why"] = refusal(exc, feed_url) if isinstance(exc, (BlockedAddress, OwnSite)) else exc.reason
        return out

    posts = parsed.posts
    guids = Counter(p.guid for p in posts if p.guid)
    dated = [p.published for p in posts if p.published is not None]
    future = [d for d in dated if (d - now).total_seconds() > FUTURE_SKEW_S]
    full = sum(1 for p in posts if not p.summary_only)
    content = "none" if not posts else "full" if full == len(posts) else "summary" if full == 0 else "mixed"
    out.update(
        valid=True, title=parsed.title, site_url=parsed.site_url, format=parsed.version,
        entries=len(posts), dated=len(dated), future_dated=len(future),
        guids=sum(guids.values()), guid_duplicates=sum(n - 1 for n in guids.values() if n > 1),
        full_content=full, summary_only=len(posts) - full, content=content,
        last_post=_iso(max((d for d in dated if d not in future), default=None)),
    )
    out["guids_unique"] = out["guid_duplicates"] == 0 and out["guids"] == len(posts)
    warnings = out["warnings"]
    if parsed.problem:
        warnings.append(f"the feed is malformed but readable: {parsed.problem}")
    if not posts:
        warnings.append("the feed has no entries yet: nothing will show until you publish a post")
    if posts and len(dated) < len(posts):
        warnings.append(f"{len(posts) - len(dated)} of {len(posts)} entries have no date: the site dates them "
                        "when it first sees them")
    if future:
        warnings.append(f"{len(future)} entries are dated in the future: the site shows them as published "
                        "when it first sees them, and says so in the public moderation log")
    if posts and out["guids"] < len(posts):
        warnings.append(f"{len(posts) - out['guids']} entries have no id (GUID): they are recognised by their "
                        "links instead, so a changed link shows as a new post")
    if out["guid_duplicates"]:
        warnings.append(f"{out['guid_duplicates']} entries repeat another entry's id (GUID): they are told "
                        "apart by their links")
    if content in ("summary", "mixed"):
        warnings.append("the feed carries only the start of " + ("every post" if content == "summary" else
                        "some posts") + ": readers see that much here and follow the link for the rest")
    if urlsplit(out["feed_url"]).scheme == "http":
        warnings.append("the feed is served over plain http; https is better if your blog supports it")

    def shown_date(p) -> datetime:
        # As post_store.save_posts dates a new post: the feed's claim unless missing or in the future.
        if p.published is None or (p.published - now).total_seconds() > FUTURE_SKEW_S:
            return now
        return min(p.published, now)

    newest = sorted(posts, key=lambda p: p.published or now, reverse=True)[:PREVIEW_POSTS]
    out["preview"] = [
        {"title": p.title, "url": p.url, "author": p.author, "published": _iso(shown_date(p)),
         "published_claimed": _iso(p.published), "content_html": p.content_html, "summary": p.summary,
         "summary_only": p.summary_only, "tags": list(p.tags)}
        for p in newest
    ]
    return out
