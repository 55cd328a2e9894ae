"""spiders.extract and spiders.links on the test blogs' saved pages: which pages are posts, what each says."""

from datetime import datetime, timezone

import pytest

from spiders.extract import read_page
from spiders.links import page_links, skip_url

from .sitefixtures import page
from .sites import make_sites as sites

BASE = "http://127.0.0.1:8000"


def _posts():
    for slug, title, author, date, paragraphs, _extra in sites.WP_POSTS:
        yield "wordpress", f"{slug}/index.html", f"/{slug}/", title, author, date, paragraphs
    for slug, title, author, date, paragraphs in sites.BG_POSTS:
        yield "blogger", f"{slug}.html", f"/{slug}.html", title, author, date, paragraphs
    for slug, title, date, paragraphs in sites.ST_POSTS:
        yield "static", f"posts/{slug}.html", f"/posts/{slug}.html", title, sites.ST_AUTHOR, date, paragraphs


JUNK = ("Commenters are not the author", "A reader's comment", "Share this", "Recent Posts", "Leave a comment",
        "About Me", "Blog Archive", "Proudly powered", "Email This", "Web ring", "Skip to content", "Privacy Policy")


@pytest.mark.parametrize("site,path,url_path,title,author,date,paragraphs", list(_posts()),
                         ids=lambda v: v if isinstance(v, str) and v.endswith(".html") else "")
def test_post_pages_are_read_with_their_metadata_and_article(site, path, url_path, title, author, date, paragraphs):
    got = read_page(page(site, path, BASE), BASE + url_path)
    assert got.is_post, got.why
    assert got.url == BASE + url_path  # the canonical link, or the page itself when it names none
    assert got.title == sites.html.unescape(title)
    assert got.author == author
    expected = datetime.fromisoformat(date if "T" in date else date + "T00:00:00+00:00").astimezone(timezone.utc)
    assert got.published == expected
    text = " ".join(sites.html.unescape(got.content_html).split())
    for p in paragraphs:
        plain = " ".join(sites.html.unescape(p).replace("<strong>", "").replace("</strong>", "").split())
        assert plain[:60] in text.replace("<strong>", "").replace("</strong>", "")
    assert not [j for j in JUNK if j in text]


@pytest.mark.parametrize("site,path,url_path,why", [
    ("wordpress", "index.html", "/", "json-ld"),  # CollectionPage with three entries
    ("wordpress", "page/2/index.html", "/page/2/", "json-ld"),
    ("wordpress", "about/index.html", "/about/", "json-ld"),  # a page: og:type article, but JSON-LD says WebPage
    ("wordpress", "2026/09/index.html", "/2026/09/", "json-ld"),  # a month with one post
    ("blogger", "index.html", "/", "3 entries"),
    ("blogger", "2026/08/index.html", "/2026/08/", "permalink"),  # one post, listed: its permalink is elsewhere
    ("static", "index.html", "/", "no post markup"),
    ("static", "about.html", "/about.html", "no post markup"),
])
def test_listings_and_pages_are_not_posts(site, path, url_path, why):
    got = read_page(page(site, path, BASE), BASE + url_path)
    assert not got.is_post and why in got.why
    assert got.content_html == ""


def test_a_selector_overrides_the_content_guess():
    html = page("wordpress", "2026/11/housing-motion/index.html", BASE)
    got = read_page(html, BASE + "/2026/11/housing-motion/", ".entry-content blockquote")
    assert got.is_post and got.why == "selector"
    assert got.content_html.startswith("<blockquote") and "Everyone deserves" in got.content_html
    assert "waiting list" not in got.content_html
    # A selector that matches nothing (or does not parse) falls back to the guess.
    for selector in (".no-such-thing", "p:::"):
        assert "waiting list" in read_page(html, BASE + "/2026/11/housing-motion/", selector).content_html


def test_json_ld_variants_and_a_foreign_canonical():
    html = """<html><head><link rel="canonical" href="http://192.0.2.10/stolen">
    <script type="application/ld+json">{"@context": "https://schema.org", "@graph": [
      {"@type": ["BlogPosting"], "headline": "Graph &amp; list", "author": {"@id": "#me"},
       "datePublished": "2026-03-04T05:06:07Z"},
      {"@type": "Person", "@id": "#me", "name": "Ann Author"}]}</script>
    <script type="application/ld+json">{not json</script></head>
    <body><p>""" + "Words in the body of the post. " * 10 + "</p></body></html>"
    got = read_page(html, BASE + "/p")
    assert got.is_post and got.why == "json-ld BlogPosting"
    assert (got.title, got.author) == ("Graph &amp; list", "Ann Author")
    assert got.published == datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
    assert got.url == BASE + "/p"  # a canonical on another site is not believed


def test_h_entry_microformats():
    html = """<html><body><div class="h-entry"><h1 class="p-name">Mf2 post</h1>
    <a class="u-url" href="/notes/1">#</a><span class="p-author h-card">Bo Writer</span>
    <time class="dt-published" datetime="2026-01-02 03:04">Jan 2</time>
    <div class="e-content"><p>""" + "An h-entry with its content marked up. " * 5 + """</p></div>
    <div class="h-entry"><p>a nested reply is not a second post</p></div></div></body></html>"""
    got = read_page(html, BASE + "/notes/1")
    assert got.is_post and got.why == "h-entry" and got.entries == 1
    assert (got.title, got.author) == ("Mf2 post", "Bo Writer")
    assert got.published == datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc)


def test_links_are_classified_and_junk_is_skipped():
    links = {l.url: l.kind for l in page_links(page("wordpress", "index.html", BASE), BASE + "/")}
    assert links[BASE + "/2026/11/housing-motion/"] == "entry"
    assert links[BASE + "/page/2/"] == "pager"
    assert links[BASE + "/2026/10/"] == "archive"
    assert links[BASE + "/category/events/"] == "taxonomy"
    assert not [u for u in links if "wp-login" in u or "wp-admin" in u or "/feed/" in u or "192.0.2.10" in u]
    blogger = {l.url: l.kind for l in page_links(page("blogger", "index.html", BASE), BASE + "/")}
    assert [k for u, k in blogger.items() if "updated-max" in u] == ["pager"]
    for url in ("/x/?replytocom=3", "/x/?share=twitter", "/wp-content/up.jpg", "/files/a.PDF", "/search?q=tax",
                "/?s=housing", "/feed/", "/2026/01/x/?m=1", "/wp-admin/", "/comments/feed/"):
        assert skip_url(BASE + url), url
    assert not skip_url(BASE + "/search?updated-max=2026-01-01T00:00:00%2B01:00&max-results=3")
