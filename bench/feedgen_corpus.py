"""Synthetic blog feeds for the benchmarks: deterministic, realistic in size and in mess.
Long because the vocabulary, the entry bodies and the feed documents are drawn from one seeded
random stream per feed: split, a change to one would silently change every corpus.

``write_corpus(outdir, feeds=300, entries=20, seed=1, size="heavy")`` writes ``feed_NNNN.xml``
files and a ``manifest.json`` naming each one's format, encoding and the
Content-Type a server should send. Feed i depends only on (seed, i, anchor), so
a smaller corpus is a prefix of a larger one.

What the feeds hold, and why:

* about 60 % RSS 2.0 (``rss_share``; WordPress-like: ``content:encoded`` in CDATA, an escaped
  ``description`` summary, ``dc:creator``, categories) and 40 % Atom 1.0 with
  escaped ``type="html"`` content and an ``xml:base`` that relative links
  resolve against;
* about 80 % UTF-8, 12 % windows-1252, 8 % ISO-8859-1; characters an encoding
  cannot hold become character references, as real feeds do it;
* entry bodies of 3-8 KB ("heavy", the default), or 1.2-4.4 KB ("ordinary",
  2.8 KB on average, the size of most blog posts): paragraphs with inline markup, absolute and relative
  links (some with ``utm_*`` parameters), headings, lists, code, quotes,
  tables, figures (some lazy-loaded through ``data-src``), and what the
  sanitiser must remove or rewrite: ``<script>``, ``<style>``, ``style=``,
  ``onclick=``, share buttons, YouTube iframes, 1x1 tracking pixels;
* text drawn from a Zipf-weighted vocabulary (a few hundred common words, tech
  words, a long synthetic tail) with accented and windows-1252 punctuation;
* entries dated over the six weeks before ``anchor`` (midnight UTC today by
  default), so polling sees a live blog.
"""

from __future__ import annotations

import email.utils
import html
import itertools
import json
import random
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

# Entry body size, in bytes, drawn uniformly from each range.
BODY_BYTES = {"heavy": (3000, 8000), "ordinary": (1200, 4400)}

# --- vocabulary ----------------------------------------------------------------------

_COMMON = (
    "the of and to a in is it that for on was with as be this are at by not have from or"
    " but an they you we he she his her their our all one so if more what about which when"
    " there can will would up out just like no time some also into new only than then them"
    " these two first other could people over after most very way because even well back"
    " much many where through before should each those how work get make still while here"
    " year years day week today last next again never always often place good great small"
    " long little right old high problem point fact number part group world life hand"
    " think know want need see seem find give tell ask show try leave call keep let begin"
    " change move live believe hold bring happen write read run meet include continue set"
    " learn lead understand watch follow stop create speak allow add spend grow open walk"
    " win offer remember love consider appear buy wait serve die send expect build stay"
    " fall cut reach kill remain suggest raise pass sell require report decide pull"
).split()
_TOPIC = (
    "council vote election campaign branch member members meeting motion policy housing"
    " rent wages union unions strike workers health care school schools transport bus"
    " rail budget tax cuts services community local national party leader conference"
    " manifesto candidate ward constituency volunteers canvass leaflet doorstep turnout"
    " poll polls survey minister government opposition parliament debate amendment bill"
    " budget deficit inflation energy climate green jobs industry pension benefits"
    " python sqlite feed feeds blog post posts server release version update database"
    " search index query page pages link links image images video website email newsletter"
).split()
_ACCENTED = ["café", "naïve", "résumé", "über", "façade", "Zürich", "São Paulo", "déjà vu",
             "rôle", "coöperative", "Málaga", "crème", "Ångström", "señor"]
# Characters that windows-1252 holds and ISO-8859-1 does not (curly quotes, dashes, euro).
_CP1252 = ["\u2014", "\u2013", "\u201cso-called\u201d", "\u2018fair\u2019", "\u20ac15", "\u2026", "\u2122", "\u2022"]
_SYLLABLES = ("ba be bi bo bu da de di do du fa fe fi fo ka ke ki ko la le li lo lu ma me mi mo"
              " na ne ni no pa pe pi po ra re ri ro sa se si so ta te ti to va ve vi vo za ze"
              " an en in on ar er ir or al el il ol ust ent ing ton ham ford ley").split()


def _build_vocab(size_tail: int = 20_000) -> tuple[list[str], list[float]]:
    r = random.Random(0x5EED)
    tail: set[str] = set()
    while len(tail) < size_tail:
        tail.add("".join(r.choice(_SYLLABLES) for _ in range(r.randint(2, 4))))
    ordered = sorted(tail)
    r.shuffle(ordered)
    words = _COMMON + _TOPIC + ordered
    # Zipf (s = 1): the r-th word is used in proportion to 1/r.
    return words, list(itertools.accumulate(1.0 / rank for rank in range(1, len(words) + 1)))


_WORDS, _CUM = _build_vocab()


class Text:
    """Words, sentences and titles from one seeded random source."""

    def __init__(self, rng: random.Random):
        self.r = rng

    def words(self, n: int) -> list[str]:
        return self.r.choices(_WORDS, cum_weights=_CUM, k=n)

    def slug(self) -> str:
        return "-".join(self.words(self.r.randint(2, 5)))

    def sentence(self, lo: int = 6, hi: int = 20, encoding: str = "utf-8") -> str:
        ws = self.words(self.r.randint(lo, hi))
        if self.r.random() < 0.12:
            ws.insert(self.r.randrange(len(ws)), self.r.choice(_ACCENTED))
        if encoding != "iso-8859-1" and self.r.random() < 0.10:
            ws.insert(self.r.randrange(len(ws)), self.r.choice(_CP1252))
        s = " ".join(ws)
        return s[:1].upper() + s[1:] + self.r.choice(".....?!")

    def title(self) -> str:
        s = " ".join(self.words(self.r.randint(3, 9)))
        return s[:1].upper() + s[1:]


# --- entry HTML ----------------------------------------------------------------------

_OTHER_HOSTS = ("example.org", "www.example.com", "en.wikipedia.org", "github.com", "www.bbc.co.uk")
_UTM = "utm_source=rss&amp;utm_medium=rss&amp;utm_campaign={slug}"


class EntryWriter:
    """Builds one entry's HTML body the way blog engines emit it."""

    def __init__(self, text: Text, blog: str, encoding: str, size: str = "heavy"):
        self.t = text
        self.size = size
        self.r = r = text.r
        self.blog = blog
        self.enc = encoding
        # Habits of the blog's platform and plugins, fixed per feed.
        self.utm_share = 0.3 if r.random() < 0.25 else 0.0  # newsletter-style tagged links
        self.lazy_share = 0.8 if r.random() < 0.30 else 0.0  # a lazy-loading plugin
        x = r.random()
        self.pixel = "wp" if x < 0.20 else ("feedburner" if x < 0.25 else "")  # stats pixel per entry

    def href(self) -> str:
        r = self.r
        slug = self.t.slug()
        x = r.random()
        if x < 0.30:  # relative: root-relative, document-relative, parent-relative
            return r.choice((f"/{r.randint(2018, 2026)}/{r.randint(1, 12):02d}/{slug}/", f"{slug}/",
                             f"../{slug}.html", f"/tag/{slug}"))
        url = f"https://{r.choice((self.blog,) * 3 + _OTHER_HOSTS)}/{slug}"
        if r.random() < self.utm_share:
            url += "?" + _UTM.format(slug=self.t.words(1)[0])
        return url

    def sentence(self) -> str:
        return html.escape(self.t.sentence(encoding=self.enc), quote=False)

    def paragraph(self) -> str:
        r = self.r
        parts = []
        for _ in range(r.randint(2, 6)):
            words = self.sentence().split(" ")
            x = r.random()
            if x < 0.35 and len(words) > 2:
                i = r.randrange(len(words) - 1)
                j = min(len(words), i + r.randint(1, 4))
                extra = ' target="_blank" rel="noopener"' if r.random() < 0.2 else ""
                if r.random() < 0.06:
                    extra += ' onclick="_gaq.push([\'_trackEvent\',\'out\']);"'
                words[i:j] = [f'<a href="{self.href()}"{extra}>' + " ".join(words[i:j]) + "</a>"]
            elif x < 0.50:
                i = r.randrange(len(words))
                tag = r.choice(("em", "strong", "b", "i", "code"))
                words[i] = f"<{tag}>{words[i]}</{tag}>"
            elif x < 0.55:
                words.append(f"More at https://{self.blog}/{self.t.slug()}")
            parts.append(" ".join(words))
        attrs = ""
        if r.random() < 0.08:
            attrs += ' style="margin-bottom:1.2em;line-height:1.6"'
        if r.random() < 0.15:
            attrs += ' class="has-text-align-left"'
        return f"<p{attrs}>" + " ".join(parts) + "</p>"

    def figure(self) -> str:
        r = self.r
        n = r.randint(1, 99999)
        if r.random() < 0.5:
            src = f"/wp-content/uploads/{r.randint(2019, 2026)}/{r.randint(1, 12):02d}/photo-{n}.jpg"
        else:
            src = f"https://i0.wp.com/{self.blog}/uploads/{n}.jpg?resize=800%2C450&amp;ssl=1"
        alt = html.escape(self.t.title())
        size = f'width="{r.choice((640, 800, 1024))}" height="{r.choice((360, 450, 576))}"'
        if r.random() < self.lazy_share:  # lazy-loading plugins keep the real address in data-src
            img = (f'<img src="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7" '
                   f'data-src="{src}" class="lazyload" alt="{alt}" {size}>')
        else:
            style = ' style="max-width:100%;height:auto"' if r.random() < 0.4 else ""
            img = f'<img src="{src}" alt="{alt}" {size} loading="lazy"{style}>'
        caption = f"<figcaption>{self.sentence()}</figcaption>" if r.random() < 0.6 else ""
        return f'<figure class="wp-block-image size-large">{img}{caption}</figure>'

    def block(self) -> str:
        r = self.r
        x = r.random()
        if x < 0.55:
            return self.paragraph()
        if x < 0.63:
            level = r.choice((2, 3))
            return f"<h{level}>{html.escape(self.t.title())}</h{level}>"
        if x < 0.70:
            tag = r.choice(("ul", "ol"))
            items = "".join(f"<li>{self.sentence()}</li>" for _ in range(r.randint(3, 6)))
            return f"<{tag}>{items}</{tag}>"
        if x < 0.75:
            lines = "\n".join(f"    {'_'.join(self.t.words(2))} = {r.randint(0, 999)}" for _ in range(r.randint(3, 9)))
            return f'<pre class="wp-block-code"><code>def main():\n{html.escape(lines)}\n</code></pre>'
        if x < 0.82:
            return self.figure()
        if x < 0.86:
            return f"<blockquote><p>{self.sentence()}</p><cite>{html.escape(self.t.title())}</cite></blockquote>"
        if x < 0.89:
            rows = "".join(f"<tr><td>{self.t.words(1)[0]}</td><td>{r.randint(1, 9999)}</td></tr>"
                           for _ in range(r.randint(2, 6)))
            return f"<table><thead><tr><th>ward</th><th>votes</th></tr></thead><tbody>{rows}</tbody></table>"
        if x < 0.92:
            return ('<div class="sharedaddy sd-sharing-enabled" style="clear:both">'
                    '<a class="share-twitter" href="#" onclick="window.open(this.href);return false;">Share</a>'
                    '<button onclick="navigator.share({url:location.href})">Share</button></div>')
        if x < 0.95:
            return (f'<script type="text/javascript">(function(){{var s=document.createElement("script");'
                    f's.async=true;s.src="https://stats.{self.blog}/count.js?p={r.randint(1, 10**6)}";'
                    f'document.body.appendChild(s);}})();</script>')
        if x < 0.97:
            return "<style>.entry-content p{font-family:Georgia,serif;margin:0 0 1em}</style>"
        if x < 0.98:
            return "<hr />"
        return f'<p><span style="color:#c00;font-weight:bold" onmouseover="hl(this)">{self.sentence()}</span></p>'

    def body(self) -> str:
        r = self.r
        target = r.randint(*BODY_BYTES[self.size])
        parts: list[str] = []
        size = 0
        while size < target:
            b = self.block()
            parts.append(b)
            size += len(b) + 1
        if r.random() < 0.10:  # an embedded video, somewhere in the middle
            vid = "".join(r.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") for _ in range(11))
            parts.insert(r.randrange(len(parts) + 1),
                         f'<iframe width="560" height="315" src="https://www.youtube.com/embed/{vid}?feature=oembed" '
                         'frameborder="0" allow="autoplay; encrypted-media; picture-in-picture" allowfullscreen></iframe>')
        if self.pixel:  # WordPress.com stats or FeedBurner pixel, at the end
            if self.pixel == "wp":
                pixel = f"https://pixel.wp.com/b.gif?host={self.blog}&amp;blog={r.randint(1, 10**8)}&amp;post={r.randint(1, 99999)}"
            else:
                pixel = f"https://feeds.feedburner.com/~r/{self.blog.split('.')[0]}/~4/{r.randint(1, 10**6)}"
            parts.append(f'<img src="{pixel}" alt="" width="1" height="1" />')
        return "\n".join(parts)

    def summary(self) -> str:
        text = " ".join(self.sentence() for _ in range(self.r.randint(2, 3)))
        return f"<p>{text}</p><p>The post <a href=\"{self.href()}\">continues here</a> &#8230;</p>"


# --- feeds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedFile:
    """One generated feed, as written to disk and served."""

    name: str
    kind: str  # 'rss' or 'atom'
    encoding: str
    content_type: str  # what the test server sends
    entries: int
    bytes: int


def _pick(r: random.Random, rss_share: float = 0.6) -> tuple[str, str, str]:
    kind = "rss" if r.random() < rss_share else "atom"
    x = r.random()
    encoding = "utf-8" if x < 0.80 else ("windows-1252" if x < 0.92 else "iso-8859-1")
    mime = "application/rss+xml" if kind == "rss" else "application/atom+xml"
    # Most servers name the charset; some legacy ones leave it to the XML declaration.
    content_type = f"{mime}; charset={encoding.upper() if encoding != 'utf-8' else 'UTF-8'}" \
        if r.random() < 0.7 else "application/xml"
    return kind, encoding, content_type


def make_feed(i: int, entries: int, seed: int, anchor: datetime,
              size: str = "heavy", rss_share: float = 0.6) -> tuple[FeedFile, bytes]:
    """Feed number i: its description and its bytes."""
    r = random.Random(f"hustings-bench:{seed}:{i}")
    t = Text(r)
    kind, encoding, content_type = _pick(r, rss_share)
    blog = f"{t.words(1)[0]}{i}.example.net"
    w = EntryWriter(t, blog, encoding, size)
    blog_title = f"{t.title()} \u2014 {blog}" if encoding != "iso-8859-1" else f"{t.title()} - {blog}"
    owner = " ".join(x.capitalize() for x in t.words(2))
    esc = html.escape  # quotes too: the text goes into attributes as well

    items = []
    for j in range(entries):
        when = anchor - timedelta(seconds=r.randint(3600, 42 * 86400))
        items.append(dict(
            title=t.title(), slug=t.slug(), when=when, n=i * 1000 + j,
            author=owner if r.random() < 0.7 else " ".join(x.capitalize() for x in t.words(2)),
            tags=sorted(set(t.words(r.randint(0, 4)))), summary=w.summary(), body=w.body(),
        ))
    items.sort(key=lambda e: e["when"], reverse=True)

    if kind == "rss":
        out = [f'<?xml version="1.0" encoding="{encoding}"?>',
               ('<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"'
                ' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">'),
               "<channel>", f"<title>{esc(blog_title)}</title>", f"<link>https://{blog}/</link>",
               f"<description>{esc(t.sentence())}</description>", "<language>en-GB</language>",
               f"<lastBuildDate>{email.utils.format_datetime(items[0]['when'])}</lastBuildDate>",
               f'<atom:link href="https://{blog}/feed/" rel="self" type="application/rss+xml" />',
               "<generator>https://wordpress.org/?v=6.6</generator>"]
        for e in items:
            link = f"https://{blog}/{e['when']:%Y/%m}/{e['slug']}/"
            out.append("<item>")
            out.append(f"<title>{esc(e['title'])}</title>")
            out.append(f"<link>{link}</link>")
            out.append(f"<dc:creator><![CDATA[{e['author']}]]></dc:creator>")
            out.append(f"<pubDate>{email.utils.format_datetime(e['when'])}</pubDate>")
            out.extend(f"<category><![CDATA[{tag}]]></category>" for tag in e["tags"])
            out.append(f'<guid isPermaLink="false">https://{blog}/?p={e["n"]}</guid>')
            out.append(f"<description>{esc(e['summary'])}</description>")
            out.append(f"<content:encoded><![CDATA[{e['body']}]]></content:encoded>")
            out.append("</item>")
        out.append("</channel>\n</rss>")
    else:
        out = [f'<?xml version="1.0" encoding="{encoding}"?>',
               f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en" xml:base="https://{blog}/">',
               f'<title type="text">{esc(blog_title)}</title>', f"<subtitle>{esc(t.sentence())}</subtitle>",
               f'<link rel="alternate" type="text/html" href="https://{blog}/" />',
               f'<link rel="self" type="application/atom+xml" href="https://{blog}/atom.xml" />',
               f"<id>https://{blog}/</id>", f"<updated>{_stamp(items[0]['when'])}</updated>",
               f"<author><name>{esc(owner)}</name></author>",
               '<generator uri="https://gohugo.io/">Hugo</generator>']
        for e in items:
            # Entry links are relative: they resolve against xml:base.
            out.append("<entry>")
            out.append(f'<title type="html">{esc(esc(e["title"]))}</title>')
            out.append(f'<link rel="alternate" type="text/html" href="posts/{e["slug"]}/" />')
            out.append(f"<id>tag:{blog},{e['when']:%Y-%m-%d}:/posts/{e['n']}</id>")
            out.append(f"<published>{_stamp(e['when'])}</published><updated>{_stamp(e['when'])}</updated>")
            out.append(f"<author><name>{esc(e['author'])}</name></author>")
            out.extend(f'<category term="{esc(tag)}" />' for tag in e["tags"])
            out.append(f'<summary type="html">{esc(e["summary"])}</summary>')
            out.append(f'<content type="html" xml:base="https://{blog}/posts/{e["slug"]}/">{esc(e["body"])}</content>')
            out.append("</entry>")
        out.append("</feed>")
    data = "\n".join(out).encode(encoding, errors="xmlcharrefreplace")
    return FeedFile(f"feed_{i:04d}.xml", kind, encoding, content_type, entries, len(data)), data


def _stamp(when: datetime) -> str:
    """RFC 3339, as Atom wants it."""
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def default_anchor() -> datetime:
    """Midnight UTC today: the corpus is the same all day and its posts are recent."""
    now = datetime.now(timezone.utc)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def write_corpus(outdir: Path, feeds: int = 300, entries: int = 20, seed: int = 1,
                 anchor: datetime | None = None, size: str = "heavy", rss_share: float = 0.6) -> list[FeedFile]:
    """Write feeds to outdir (feed_NNNN.xml + manifest.json); return their descriptions."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    anchor = anchor or default_anchor()
    made = []
    for i in range(feeds):
        info, data = make_feed(i, entries, seed, anchor, size, rss_share)
        (outdir / info.name).write_bytes(data)
        made.append(info)
    manifest = dict(seed=seed, entries=entries, size=size, rss_share=rss_share, anchor=anchor.isoformat(), feeds=[asdict(f) for f in made])
    (outdir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return made


def read_manifest(outdir: Path) -> list[FeedFile]:
    data = json.loads((Path(outdir) / "manifest.json").read_text())
    return [FeedFile(**f) for f in data["feeds"]]


if __name__ == "__main__":
    import argparse
    import time

    p = argparse.ArgumentParser(description="write the benchmark feed corpus")
    p.add_argument("outdir", type=Path)
    p.add_argument("--feeds", type=int, default=300)
    p.add_argument("--entries", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--size", choices=sorted(BODY_BYTES), default="heavy")
    a = p.parse_args()
    t0 = time.perf_counter()
    files = write_corpus(a.outdir, a.feeds, a.entries, a.seed, size=a.size)
    total = sum(f.bytes for f in files)
    print(f"wrote {len(files)} feeds, {sum(f.entries for f in files)} entries, {total / 1e6:.1f} MB "
          f"in {time.perf_counter() - t0:.1f} s to {a.outdir}")
