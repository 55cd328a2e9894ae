"""The one HTML policy, with two engines behind it: nh3 (default) and bleach. Long because
the policy, the pre-pass and both engines that enforce it stay in one module: it is the
only module that imports nh3 or bleach, and a reviewer reads everything post HTML goes
through in one place (docs/design.md, "Sanitising").

The policy:

* a small allow-list of tags and attributes; no script, style, form, SVG, MathML,
  object or embed; script, style and other raw-text elements go with their content;
* iframes only from ``settings.iframe_hosts``, over https, sandboxed;
* links get ``rel="nofollow noopener noreferrer ugc"``; only http, https and mailto URLs;
* relative URLs resolved against the entry's xml:base, the entry URL, or the feed URL;
* tracking pixels (1x1 images, known tracker hosts) dropped; ``utm_*``/``fbclid``
  parameters removed from links; lazy-loaded images (``data-src``) restored;
* plain-text entries escaped, then linkified;
* a plain-text summary for listing pages.

Sanitising is the last thing done to post HTML: nothing after it adds markup.
"""

from __future__ import annotations

import html
import re
import threading
from dataclasses import fields, replace
from functools import lru_cache
from typing import Callable
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import nh3

from .models import Post
from .settings import Settings

TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "details",
    "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "iframe", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp",
    "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "time", "tr", "u", "ul", "var", "wbr",
})
ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "blockquote": {"cite"},
    "iframe": {"src", "width", "height", "allowfullscreen", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "ol": {"start", "reversed"},
    "q": {"cite"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "time": {"datetime"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
URL_ATTRIBUTES = {("a", "href"), ("img", "src"), ("iframe", "src"), ("blockquote", "cite"), ("q", "cite")}
# Removed together with everything inside them.
CLEAN_CONTENT_TAGS = frozenset({
    "script", "style", "noscript", "template", "textarea", "select", "object", "embed", "applet",
    "svg", "math", "title", "xmp", "noembed", "noframes", "head", "frameset", "frame",
})
LINK_REL = "nofollow noopener noreferrer ugc"
IFRAME_SANDBOX = "allow-scripts allow-same-origin allow-popups allow-presentation"
# YouTube's player refuses to play without a referrer (error 153).
IFRAME_SET = {"sandbox": IFRAME_SANDBOX, "referrerpolicy": "strict-origin-when-cross-origin", "loading": "lazy"}
IMG_SET = {"loading": "lazy"}
# nh3 adds forced attributes in hash order; more than one per tag would make the same
# input come out differently on each call (and look "updated" at every fetch). So it
# forces only sandbox on iframes; the pre-pass, which always runs on iframes, sets the
# other two, and they are allowed through with exactly these values.
IFRAME_FIXED = {k: {v} for k, v in IFRAME_SET.items() if k != "sandbox"}

TRACKING_PARAMS = ("utm_", "fbclid", "gclid", "mc_cid", "mc_eid", "_hsenc", "_hsmi")
TRACKER_HOSTS = (
    "pixel.wp.com", "stats.wordpress.com", "feeds.feedburner.com", "feedproxy.google.com",
    "www.google-analytics.com", "pixel.quantserve.com", "doubleclick.net", "feedsportal.com",
    "pi.feedsportal.com", "assets.feedblitz.com", "mf.feeds.reuters.com",
)
# Substrings (of the lower-cased HTML) that mean the pre-pass has work to do: lazy
# images, iframes, tiny images, tracker hosts. Plain substring tests cost a few
# microseconds; a case-insensitive regex over the same text cost more than nh3 itself.
PREPASS_MARKERS = (
    "data-src", "data-lazy", "data-original", "<iframe", "pixel.wp.com", "stats.wordpress.com",
    "feedburner.com/~", "feedproxy", "/~r/", "/~ff/", "doubleclick", "feedsportal",
)
_TINY_MARKERS = ('width="1"', "width='1'", "width=1", 'width="0"', "width='0'", "width=0", 'height="1"', "height='1'",
                 "height=1", 'height="0"', "height='0'", "height=0")


_IFRAME = re.compile(r"<iframe", re.I)
# An <img> start tag with its quoted values whole, or, when a quote never closes, up to
# the first ">" (what a browser might make of it is the pre-pass's to judge, not ours).
_IMG_TAG = re.compile(r"""<img\b(?:(?:[^<>"']|"[^"]*"|'[^']*')*>|[^<>]*>?)""", re.I)
_MARKERS = PREPASS_MARKERS + _TINY_MARKERS


def needs_prepass(fragment: str) -> bool:
    """Whether the pre-pass has work here: an iframe, or an image with a marker in its tag.

    Every marker but iframes is about an image, so only image tags are read: a quarter of
    the time of lower-casing the fragment and searching all of it for each marker.
    """
    if _IFRAME.search(fragment):
        return True
    return any(any(m in tag for m in _MARKERS) for tag in map(str.lower, _IMG_TAG.findall(fragment)))


# Where a browser would break the line: every block element's start and end (a post's
# "<section>click</section><div>overlay" is two words, not "clickoverlay"), and br, hr, img.
# A tag's attributes, quoted values whole, stopping at "<" so that no input, sanitised or not,
# takes more than linear time.
_ATTRS = r"""(?:[^<>"']|"[^"]*"|'[^']*')*"""
_BLOCK_END = re.compile(
    r"</?(?:p|div|h[1-6]|li|dd|dt|dl|blockquote|pre|tr|td|th|figure|figcaption|table|thead|tbody|tfoot|caption|ul|ol"
    r"|section|article|aside|header|footer|nav|main|details|summary|address|hgroup|fieldset|legend|center)\b"
    + _ATTRS + r">|<(?:br|hr|img)\b" + _ATTRS + ">", re.I)
# Headings and list items end a thought without punctuation of their own; in one line of
# text they would run into what follows ("What happens next A report to..."), so they
# end with a full stop when they have no punctuation.
_UNPUNCTUATED_END = re.compile(r"</(?:h[1-6]|li|dt|figcaption)>", re.I)
# Any tag, attribute values quoted or not; a quoted value may hold ">" (the sanitisers quote
# every value with double quotes, and write "<" in text only as "&lt;").
_TAG = re.compile("<" + _ATTRS + ">")
_BREAK = "\u2029"  # a paragraph separator: never in the text we keep (it is whitespace to \s)
_STOPS = frozenset(".!?:;,…")
_URL_JUNK = re.compile(r"[\x00-\x1f\x7f]")
# Characters HTML forbids in text; lxml refuses them, so they go before anything parses.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):", re.I)
_URL_IN_TEXT = re.compile(r"\bhttps?://[^\s<>\"']+", re.I)
LAZY_ATTRS = ("data-src", "data-lazy-src", "data-original", "data-lazy")


# --- URL helpers shared by both engines -----------------------------------------


def strip_tracking(url: str) -> str:
    """The URL without utm_* and similar tracking parameters."""
    if not any(t in url for t in TRACKING_PARAMS):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not k.lower().startswith(TRACKING_PARAMS)]
    return urlunsplit(parts._replace(query=urlencode(kept)))


def iframe_src_allowed(src: str, hosts: tuple[str, ...]) -> str | None:
    """The https form of an embed URL from a listed host, or None."""
    src = src.strip()
    if src.startswith("//"):
        src = "https:" + src
    try:
        parts = urlsplit(src)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("https", "http") or (parts.hostname or "").lower() not in hosts:
        return None
    if any(c in src for c in "<>\"'` \t\r\n"):
        return None
    return urlunsplit(parts._replace(scheme="https"))


def _is_tracker(src: str) -> bool:
    try:
        host = (urlsplit(src).hostname or "").lower()
    except ValueError:
        return False
    return any(host == t or host.endswith("." + t) for t in TRACKER_HOSTS) or "/~r/" in src or "/~ff/" in src


def _tiny(value: str | None) -> bool:
    if value is None:
        return False
    digits = re.match(r"\s*(\d+)", value)
    return bool(digits) and int(digits.group(1)) <= 1


# --- the pre-pass: lazy images, pixels and iframes, before the sanitiser ----------


def _lazy_source(src: str, get: Callable[[str], str | None]) -> str | None:
    """The address a lazy-loading plugin hid in data-src (or its kin), when src is only its placeholder."""
    lazy = next((get(a) for a in LAZY_ATTRS if get(a)), None)
    if lazy and (not src or src.startswith("data:") or "placeholder" in src or "blank" in src or "lazy" in src):
        return lazy
    return None


def _is_pixel(width: str | None, height: str | None, src: str) -> bool:
    """A tracking pixel: 1x1 (or 0x0), or from a host that only counts readers."""
    return (_tiny(width) and _tiny(height)) or _is_tracker(src)


# A start tag of an image or iframe: its name, its attributes (quoted values whole), its end.
# Outside quotes a tag stops at "<": otherwise each of a hostile post's many "<img" would
# scan to its end, and the pass would take quadratic time (tests/test_sanitize.py).
_MEDIA_START = re.compile(r"""<(img|iframe)\b((?:[^<>"']|"[^"]*"|'[^']*')*)>""", re.I)
_ATTRIBUTE = re.compile(r"""([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")
_MEDIA_OPEN = re.compile(r"<(?:img|iframe)\b", re.I)
_IFRAME_END = re.compile(r"</iframe[\s/>]", re.I)


def _attributes(text: str) -> dict[str, str]:
    """A start tag's attributes, names lower-cased, values decoded; the first of a name wins, as in HTML."""
    found: dict[str, str] = {}
    for m in _ATTRIBUTE.finditer(text):
        name = m.group(1).lower()
        if name not in found:
            found[name] = html.unescape(next((v for v in m.group(2, 3, 4) if v is not None), ""))
    return found


def _start_tag(name: str, attrs: dict[str, str]) -> str:
    return f"<{name}" + "".join(f' {k}="{html.escape(v)}"' for k, v in attrs.items()) + ">"


def tag_prepass(fragment: str, hosts: tuple[str, ...]) -> str:
    """prepass() for the nh3 engine, done on the image and iframe tags alone: the same decisions,
    with no element tree (parsing and writing a whole post with lxml cost 4 % of ingest's CPU,
    bench/ingest.py --py-spy). nh3 parses what this writes, and stays the last word; links need
    no pass here, as nh3's own URL callback strips their tracking parameters."""
    tags = list(_MEDIA_START.finditer(fragment))
    if len(tags) != len(_MEDIA_OPEN.findall(fragment)):
        # A tag these expressions cannot read ("<" in an unquoted value, a quote never closed):
        # the element tree reads it as a browser might.
        return prepass(fragment, "", hosts, resolve_urls=False)
    out: list[str] = []
    last = 0
    for m in tags:
        if m.start() < last:
            continue  # inside an iframe already dropped
        name, attrs = m.group(1).lower(), _attributes(m.group(2))
        src = attrs.get("src", "")
        if name == "img":
            lazy = _lazy_source(src, attrs.get)
            if lazy:
                attrs["src"] = src = lazy
            replacement = "" if _is_pixel(attrs.get("width"), attrs.get("height"), src) else \
                (_start_tag("img", attrs) if lazy else m.group(0))
            out.append(fragment[last:m.start()] + replacement)
            last = m.end()
            continue
        allowed = iframe_src_allowed(src, hosts)
        out.append(fragment[last:m.start()])
        if allowed is None:
            # Gone with its content: an iframe's content is text up to "</iframe" (or the end).
            end = _IFRAME_END.search(fragment, m.end())
            last = len(fragment) if end is None else fragment.find(">", end.start()) + 1 or len(fragment)
            continue
        out.append(_start_tag("iframe", {**attrs, "src": allowed, **IFRAME_SET}))
        last = m.end()
    return "".join(out) + fragment[last:] if out else fragment


def prepass(fragment: str, base: str, hosts: tuple[str, ...], resolve_urls: bool, drop_content: bool = False) -> str:
    """Restore lazy images, drop pixels and foreign iframes, clean tracking params.

    Runs before the sanitiser, which stays the last word: anything this pass
    misses or mis-parses is still held to the allow-list.
    """
    import lxml.html
    from lxml import etree

    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (etree.ParserError, ValueError, AssertionError):
        # lxml gives up on some shapes (an <html> with no body); the sanitiser still
        # judges the fragment, only the pre-pass conveniences are lost.
        return fragment
    if drop_content:
        for el in list(root.iter(*CLEAN_CONTENT_TAGS)):
            el.drop_tree()
        for el in list(root.iter(etree.Comment)):
            el.drop_tree()
    for el in list(root.iter("img")):
        src = el.get("src", "")
        lazy = _lazy_source(src, el.get)
        if lazy:
            el.set("src", lazy)
            src = lazy
        if _is_pixel(el.get("width"), el.get("height"), src):
            el.drop_tree()  # keeps the text that follows the image
    for el in list(root.iter("iframe")):
        allowed = iframe_src_allowed(el.get("src", ""), hosts)
        if allowed is None:
            el.drop_tree()
        else:
            el.set("src", allowed)
            for name, value in IFRAME_SET.items():
                el.set(name, value)
    for el in root.iter("a", "img"):
        attr = "href" if el.tag == "a" else "src"
        value = el.get(attr)
        if value:
            # Read the URL as a browser would: tabs and newlines inside are dropped (other
            # control characters too, to be strict), so "jav&#x09;ascript:" is judged as
            # the javascript: URL it really is.
            value = strip_tracking(_URL_JUNK.sub("", value).strip())
            if resolve_urls and base:
                value = urljoin(base, value)
            try:
                el.set(attr, value)
            except ValueError:
                del el.attrib[attr]
    if resolve_urls and base:
        for el in root.iter("blockquote", "q"):
            if el.get("cite"):
                el.set("cite", urljoin(base, el.get("cite").strip()))
    # One serialisation of the wrapper, then drop its own tags: "<div>" ... "</div>".
    return lxml.html.tostring(root, encoding="unicode")[5:-6]


# --- engines ---------------------------------------------------------------------


class _Nh3Engine:
    name = "nh3"

    def __init__(self, hosts: tuple[str, ...]):
        self.hosts = hosts
        # Built once: nh3 copies them into Rust on every call, so at least avoid rebuilding.
        self._options = dict(
            tags=set(TAGS),
            clean_content_tags=set(CLEAN_CONTENT_TAGS),
            attributes={"*": set(), **{k: set(v) for k, v in ATTRIBUTES.items()}},  # no default title/lang
            tag_attribute_values={"iframe": IFRAME_FIXED},
            attribute_filter=self._filter,
            strip_comments=True,
            link_rel=LINK_REL,
            url_schemes=set(URL_SCHEMES),
            set_tag_attribute_values={"iframe": {"sandbox": IFRAME_SANDBOX}, "img": dict(IMG_SET)},
        )

    def _filter(self, element: str, attribute: str, value: str) -> str | None:
        if element == "iframe" and attribute == "src":
            return iframe_src_allowed(value, self.hosts)
        if attribute in ("href", "src") and "=" in value:
            return strip_tracking(value)
        return value

    def clean(self, fragment: str, base: str) -> str:
        fragment = _CONTROL.sub("", fragment)
        if needs_prepass(fragment):
            fragment = tag_prepass(fragment, self.hosts)
        relative = ("rewrite_with_base", base) if base.startswith(("http://", "https://")) else "deny"
        return nh3.clean(fragment, url_relative=relative, **self._options)


class _BleachEngine:
    name = "bleach"

    def __init__(self, hosts: tuple[str, ...]):
        import bleach
        from bleach.html5lib_shim import Filter

        self.hosts = hosts
        engine = self

        class PolicyFilter(Filter):
            """Adds what the policy sets on links, images and iframes, after bleach has cleaned."""

            def __iter__(self):
                for token in super().__iter__():
                    if token["type"] in ("StartTag", "EmptyTag") and token["name"] in ("a", "img", "iframe"):
                        attrs = dict(token["data"])
                        if token["name"] == "a":
                            attrs[(None, "rel")] = LINK_REL
                        else:
                            for k, v in (IMG_SET if token["name"] == "img" else IFRAME_SET).items():
                                attrs[(None, k)] = v
                        token["data"] = attrs
                    yield token

        def allow(tag: str, name: str, value: str) -> bool:
            if name not in ATTRIBUTES.get(tag, ()):
                return False
            if tag == "iframe" and name == "src":
                return iframe_src_allowed(value, engine.hosts) == value
            if (tag, name) in URL_ATTRIBUTES:
                # bleach's own check reads "javascript:123" as a relative URL; judge the
                # scheme as a browser would see it.
                scheme = _SCHEME.match(_URL_JUNK.sub("", html.unescape(value)).strip())
                return scheme is None or scheme.group(1).lower() in URL_SCHEMES
            return True

        def make_cleaner():
            return bleach.Cleaner(
                tags=set(TAGS),
                attributes={tag: allow for tag in ATTRIBUTES},
                protocols=set(URL_SCHEMES),
                strip=True,
                strip_comments=True,
                filters=[PolicyFilter],
            )

        self._make_cleaner = make_cleaner
        # bleach's Cleaner keeps parser state between calls and is not thread-safe
        # (shared by the fetch threads it silently truncated posts): one per thread.
        self._local = threading.local()

    def clean(self, fragment: str, base: str) -> str:
        # bleach keeps the text of elements it strips, so raw-text elements go first;
        # it cannot rewrite URLs, so the pre-pass resolves them (always run here).
        fragment = prepass(_CONTROL.sub("", fragment), base, self.hosts, resolve_urls=True, drop_content=True)
        cleaner = getattr(self._local, "cleaner", None)
        if cleaner is None:
            cleaner = self._local.cleaner = self._make_cleaner()
        out = cleaner.clean(fragment)
        # bleach leaves relative URLs it could not resolve (no base): drop them, as nh3 does.
        if not base.startswith(("http://", "https://")):
            out = re.sub(r'\s(?:href|src)="(?![a-z][a-z0-9+.-]*:)[^"]*"', "", out, flags=re.I)
        return out


@lru_cache(maxsize=8)
def _engine(name: str, hosts: tuple[str, ...]):
    if name == "bleach":
        return _BleachEngine(hosts)
    return _Nh3Engine(hosts)


def sanitizer(settings: Settings) -> Callable[[str, str], str]:
    """clean(fragment, base_url) -> safe HTML, for the engine the settings name."""
    return _engine(settings.sanitizer, tuple(h.lower() for h in settings.iframe_hosts)).clean


# --- text ------------------------------------------------------------------------


def text_to_html(text: str) -> str:
    """Escape plain text, turn URLs into links and blank lines into paragraphs."""
    paragraphs = []
    for para in re.split(r"\n\s*\n", text.strip()):
        pieces, last = [], 0
        for match in _URL_IN_TEXT.finditer(para):
            url = match.group(0).rstrip(".,;:!?)]}'\"")
            end = match.start() + len(url)
            pieces.append(html.escape(para[last:match.start()]))
            pieces.append(f'<a href="{html.escape(url)}">{html.escape(url)}</a>')
            last = end
        pieces.append(html.escape(para[last:]))
        paragraphs.append("<p>" + "".join(pieces).replace("\n", "<br>") + "</p>")
    return "".join(p for p in paragraphs if p != "<p></p>")


def html_to_text(fragment: str, enough: int | None = None) -> str:
    """Plain text of (already sanitised) HTML, one line, entities decoded: what a browser
    shows, with a full stop after a heading or list item that has none.

    With ``enough``, only as much of the HTML is read as it takes to yield that many
    characters of text (a summary needs 300 characters, not the whole post).
    """
    if enough is None:
        return _plain_text(fragment)
    size = max(1024, enough * 4)
    while True:
        text = _plain_text(fragment[:size])
        if len(text) > enough or size >= len(fragment):
            return text
        size *= 4


def _plain_text(fragment: str) -> str:
    # Tags out by plain substitutions and the text put together by split and join: sanitised
    # HTML needs no parser to lose its tags. nh3 (a parser), substitutions by function and a
    # regex that tried every position cost five times as much: a third of what sanitising a
    # post cost (bench/ingest.py --py-spy, issue 15).
    marked = _UNPUNCTUATED_END.sub(_BREAK, fragment.replace(_BREAK, " "))
    pieces = _TAG.sub("", _BLOCK_END.sub(" ", marked)).split(_BREAK)
    words: list[str] = []
    for n, piece in enumerate(pieces):
        piece = " ".join(html.unescape(piece).split())
        if not piece:
            continue
        # A heading or list item ended here: a full stop, unless it has its own punctuation.
        if n < len(pieces) - 1 and piece[-1] not in _STOPS:
            piece += "."
        words.append(piece)
    return " ".join(words)


def summarise(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + "…"


# Characters no stored text may hold: C0 controls but tab and newlines (PostgreSQL refuses
# NUL outright; XML, our feeds out, refuses them all), non-characters and lone surrogates
# (not encodable as UTF-8). Feeds do carry them; they carry no meaning.
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def storable(text: str) -> str:
    return _UNSTORABLE.sub("", text) if text else text


def _storable_fields(post: Post) -> Post:
    changes = {}
    for f in fields(post):
        value = getattr(post, f.name)
        if isinstance(value, str) and _UNSTORABLE.search(value):
            changes[f.name] = storable(value)
        elif isinstance(value, tuple) and any(isinstance(v, str) and _UNSTORABLE.search(v) for v in value):
            changes[f.name] = tuple(storable(v) if isinstance(v, str) else v for v in value)
    return replace(post, **changes) if changes else post


# An <img> as both engines write it (attribute values always in double quotes).
_IMG = re.compile(r'<img((?:\s+[^\s"=>]+(?:="[^"]*")?)*)(\s*/?)>', re.I)


def with_alt(html_: str) -> str:
    """Every image with an alt: a feed's image without one gets alt="" (decorative, as far as
    we know), so screen readers do not read its file name out."""
    return _IMG.sub(lambda m: m.group(0) if re.search(r'\salt="', m.group(1), re.I)
                    else f'<img alt=""{m.group(1)}{m.group(2)}>', html_) if "<img" in html_ else html_


def sanitize_post(post: Post, settings: Settings, clean: Callable[[str, str], str] | None = None) -> Post:
    """The post with safe content_html, a plain-text summary, and a title; no field holds a
    character that cannot be stored (see _UNSTORABLE)."""
    post = _storable_fields(post)
    clean = clean or sanitizer(settings)
    raw = post.content_html or ""
    if post.content_type == "text":
        raw = text_to_html(raw)
    content = with_alt(clean(raw, post.base_url)) if raw else ""
    # One character more than the summary shows, so summarise() knows to add the ellipsis.
    text = html_to_text(content, enough=settings.summary_chars + 1) if content else ""
    title = post.title or summarise(text, 80) or post.url or "(untitled)"
    return replace(
        post,
        content_html=content,
        content_type="html",
        summary=summarise(text, settings.summary_chars),
        title=title,
        url=strip_tracking(post.url),
    )
