"""Feed autodiscovery against real saved home pages (../shared/corpora/feed-discovery).

Each case in ``feed-discovery/*/expected.json`` gives a page, the URL it was
served from and the feed links it advertises (absolute, in page order).
``find_feed_links(page bytes, page_url)`` must report exactly those hrefs, in
that order, with the same type and title; and no ``rel="alternate"`` link that
is not a feed (YouTube's ``android-app:``/``ios-app:`` and ``media="handheld"``
alternates, translations, ...) may be reported.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

from aggregator.discover import FEED_TYPES, find_feed_links

from .conftest import CORPORA, corpus

ROOT = CORPORA / "feed-discovery"


def _cases():
    if not ROOT.exists():
        return [pytest.param(None, None, id="corpus-absent")]
    out = []
    for expected in sorted(ROOT.glob("*/expected.json")):
        for case in json.loads(expected.read_text(encoding="utf-8"))["tests"]:
            out.append(pytest.param(expected.parent.name, case, id=f"{expected.parent.name}/{case['file']}"))
    return out


class _Alternates(HTMLParser):
    """Every <link rel="alternate"> on the page, feed or not, resolved like a browser would."""

    def __init__(self, page_url: str):
        super().__init__(convert_charrefs=True)
        self.base = page_url
        self.links: list[tuple[str, str]] = []  # (absolute href, type)

    def handle_starttag(self, tag, attrs):
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "base" and a.get("href") and self.base:
            self.base = urljoin(self.base, a["href"].strip())
        if tag == "link" and "alternate" in a.get("rel", "").lower().split() and a.get("href", "").strip():
            self.links.append((urljoin(self.base, a["href"].strip()), a.get("type", "").split(";")[0].strip().lower()))

    handle_startendtag = handle_starttag


@pytest.mark.parametrize("folder, case", _cases())
def test_discovery_finds_the_expected_feeds(folder, case):
    if case is None:
        corpus("feed-discovery")
    page = corpus("feed-discovery", folder, case["file"]).read_bytes()
    links = find_feed_links(page, case["page_url"])

    expected = case["expected_feed_links"]
    assert [l.href for l in links] == [e["href"] for e in expected]
    assert [l.type for l in links] == [e["type"] for e in expected]
    assert [l.title for l in links] == [e.get("title") or "" for e in expected]
    if "expected_count" in case:
        assert len(links) == case["expected_count"]
    for link in links:
        assert urlsplit(link.href).scheme in ("http", "https"), link


@pytest.mark.parametrize("folder, case", _cases())
def test_discovery_ignores_alternates_that_are_not_feeds(folder, case):
    if case is None:
        corpus("feed-discovery")
    page = corpus("feed-discovery", folder, case["file"]).read_bytes()
    reported = {l.href for l in find_feed_links(page, case["page_url"])}

    collector = _Alternates(case["page_url"])
    collector.feed(page.decode("utf-8", "replace"))
    collector.close()
    not_feeds = {href for href, kind in collector.links if kind not in FEED_TYPES}
    assert not (reported & not_feeds), f"non-feed alternates reported: {sorted(reported & not_feeds)}"
    if case["file"].startswith("YouTube"):
        # The page's own non-feed alternates must be among those we checked.
        assert any(h.startswith("android-app:") for h in not_feeds)
        assert any(h.startswith("ios-app:") for h in not_feeds)
        assert any(h.startswith("https://m.youtube.com/") for h in not_feeds)
