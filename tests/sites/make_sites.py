"""Writes the loopback test sites in this folder (run it after changing a template).

Three blogs, each imitating real markup closely enough that a crawler tuned on them
works on the real thing:

* ``wordpress/``: a Twenty Twenty-One theme with Yoast SEO (JSON-LD ``@graph`` with an
  ``Article``, Open Graph ``article``), Jetpack share buttons inside the post body,
  comments, a sidebar with archives, paginated home (``/page/2/``), monthly archives,
  a page (``/about/``) that is not a post, a full-content feed (``/feed/``) and a
  summary-only one (``/summary-feed/``: WordPress's "Summary" reading setting).
* ``blogger/``: Blogger's Simple template: hAtom (``hentry``) and schema.org
  ``BlogPosting`` microdata, full posts on the home page, the ``/search?updated-max=``
  older-posts pager, a ``BlogArchive`` widget, comments.
* ``static/``: a hand-written blog with no feed and no metadata: ``<article>`` and
  ``<time>`` only, an archive paginated over ``/archive/2.html`` and ``/archive/3.html``,
  a ``robots.txt`` that disallows ``/private/``.

``{{base}}`` in a file is replaced by the server's own address when it is served, and
``{{elsewhere}}`` by an address no test may reach (a documentation address the guard
refuses without a DNS lookup). ``_routes.txt`` maps URLs with a query string to files.
"""

from __future__ import annotations

import html  # noqa: F401 (tests use sites.html)
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (slug, title, author, ISO date, paragraphs, extra HTML inside the body)
WP_POSTS = [
    ("2026/09/first-branch-meeting", "Our first branch meeting of the autumn", "Jo Bloggs", "2026-09-08T19:30:00+00:00", [
        "Thirty-two members came to the community centre on Tuesday for the first branch meeting since the summer break.",
        "We agreed to put a motion on the cost of school uniforms to the next general committee, and elected Priya as our new youth officer.",
        "The meeting closed with a collection for the food bank, which raised &pound;214.",
    ], ""),
    ("2026/10/canvassing-in-the-rain", "Canvassing in the rain", "Sam Okafor", "2026-10-03T09:00:00+00:00", [
        "Eleven of us braved the drizzle on Saturday to knock doors on Mill Lane and the Hawthorn estate.",
        "Most residents wanted to talk about bus cuts: the number 14 now runs once an hour after six.",
        "Next session is Saturday at ten, meeting outside the library. Bring an umbrella.",
    ], '<figure class="wp-block-image size-large"><img decoding="async" width="1024" height="683" src="/wp-content/uploads/2026/10/doors.jpg" alt="Volunteers with clipboards" class="wp-image-77"><figcaption>Volunteers on Mill Lane</figcaption></figure>'),
    ("2026/10/council-budget-cuts", "What the council budget cuts mean for Riverside", "Jo Bloggs", "2026-10-21T12:15:00+00:00", [
        "The council's draft budget takes another &pound;3.2 million from adult social care, on top of last year's cuts.",
        "<strong>Three day centres</strong> are on the list for closure, including the one on Orchard Road that our members campaigned to save in 2024.",
        "The consultation closes on 30 November. You can respond online or at any library.",
    ], '<ul><li>Adult social care: &minus;&pound;3.2m</li><li>Libraries: &minus;&pound;0.4m</li><li>Highways: &minus;&pound;1.1m</li></ul>'),
    ("2026/11/housing-motion", "Why we backed the housing motion", "Priya Shah", "2026-11-02T10:00:00+00:00", [
        "On Thursday the general committee voted by a large majority for our motion calling on the council to build 500 new council homes.",
        "The waiting list in Riverside now stands at 4,100 households, and the average wait for a family home is over six years.",
        "The motion also asks the council to license every private landlord in the borough, as Newham has done since 2013.",
        "We will be taking the motion to the regional conference in March.",
    ], '<blockquote class="wp-block-quote"><p>Everyone deserves a secure, affordable home.</p><cite>From the motion</cite></blockquote>'),
    ("2026/11/winter-fuel-campaign", "Winter fuel: our campaign starts today", "Sam Okafor", "2026-11-16T08:45:00+00:00", [
        "From today we are running a winter fuel advice stall every Saturday outside the Co-op on the high street.",
        "Volunteers will help residents check they are getting the Warm Home Discount and apply for the council's hardship fund.",
        "If you can spare two hours, sign up with the branch secretary.",
    ], '<figure class="wp-block-embed is-type-video is-provider-youtube"><div class="wp-block-embed__wrapper"><iframe title="Winter fuel advice" width="750" height="422" src="https://www.youtube.com/embed/dQw4w9WgXcQ?feature=oembed" frameborder="0" allowfullscreen></iframe></div></figure>'),
]

WP_SITE = "Riverside Labour Voices"


def esc(text: str) -> str:
    return html.escape(html.unescape(text), quote=True)


def excerpt(paragraphs: list[str]) -> str:
    text = html.unescape(paragraphs[0]).replace("<strong>", "").replace("</strong>", "")
    return text[:140].rsplit(" ", 1)[0] + " [&hellip;]"


def wp_head(title: str, canonical: str, og_type: str, extra: str = "") -> str:
    return f"""<!doctype html>
<html lang="en-GB">
<head>
<meta charset="UTF-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<meta name="robots" content="index, follow, max-image-preview:large, max-snippet:-1, max-video-preview:-1">
<link rel="canonical" href="{canonical}">
<meta property="og:locale" content="en_GB">
<meta property="og:type" content="{og_type}">
<meta property="og:url" content="{canonical}">
<meta property="og:site_name" content="{WP_SITE}">
{extra}
<link rel="alternate" type="application/rss+xml" title="{WP_SITE} &raquo; Feed" href="{{{{base}}}}/feed/">
<link rel="stylesheet" id="twenty-twenty-one-style-css" href="{{{{base}}}}/wp-content/themes/twentytwentyone/style.css?ver=2.1" media="all">
<style id="twenty-twenty-one-custom-color-overrides">:root .editor-styles-wrapper{{--global--color-background: #ffffff;}}</style>
<script src="{{{{base}}}}/wp-includes/js/jquery/jquery.min.js?ver=3.7.1" id="jquery-core-js"></script>
<link rel="https://api.w.org/" href="{{{{base}}}}/wp-json/">
<link rel="EditURI" type="application/rsd+xml" title="RSD" href="{{{{base}}}}/xmlrpc.php?rsd">
<meta name="generator" content="WordPress 6.7.1">
</head>"""


def wp_header() -> str:
    return f"""<div id="page" class="site">
<a class="skip-link screen-reader-text" href="#content">Skip to content</a>
<header id="masthead" class="site-header has-title-and-tagline has-menu">
<div class="site-branding"><p class="site-title"><a href="{{{{base}}}}/" rel="home">{WP_SITE}</a></p>
<p class="site-description">News and views from Riverside CLP members</p></div>
<nav id="site-navigation" class="primary-navigation" aria-label="Primary menu"><div class="primary-menu-container">
<ul id="primary-menu-list" class="menu-wrapper"><li class="menu-item"><a href="{{{{base}}}}/">Home</a></li>
<li class="menu-item"><a href="{{{{base}}}}/about/">About us</a></li>
<li class="menu-item"><a href="{{{{base}}}}/category/events/">Events</a></li>
<li class="menu-item"><a href="{{{{elsewhere}}}}/join/">Join Labour</a></li></ul></div></nav>
</header>
<div id="content" class="site-content"><div id="primary" class="content-area"><main id="main" class="site-main">"""


def wp_sidebar_footer() -> str:
    recent = "".join(f'<li><a href="{{{{base}}}}/{slug}/">{title}</a></li>' for slug, title, *_ in reversed(WP_POSTS))
    return f"""</main></div></div>
<aside class="widget-area">
<section id="search-2" class="widget widget_search"><form role="search" method="get" class="search-form" action="{{{{base}}}}/">
<label for="search-form-1">Search&hellip;</label><input type="search" id="search-form-1" class="search-field" value="" name="s">
<input type="submit" class="search-submit" value="Search"></form></section>
<section id="recent-posts-2" class="widget widget_recent_entries"><h2 class="widget-title">Recent Posts</h2>
<nav aria-label="Recent Posts"><ul>{recent}</ul></nav></section>
<section id="archives-2" class="widget widget_archive"><h2 class="widget-title">Archives</h2><nav aria-label="Archives"><ul>
<li><a href="{{{{base}}}}/2026/11/">November 2026</a></li><li><a href="{{{{base}}}}/2026/10/">October 2026</a></li>
<li><a href="{{{{base}}}}/2026/09/">September 2026</a></li></ul></nav></section>
<section id="meta-2" class="widget widget_meta"><h2 class="widget-title">Meta</h2><nav aria-label="Meta"><ul>
<li><a href="{{{{base}}}}/wp-login.php">Log in</a></li><li><a href="{{{{base}}}}/wp-admin/">Site admin</a></li>
<li><a href="{{{{base}}}}/feed/">Entries feed</a></li><li><a href="{{{{base}}}}/comments/feed/">Comments feed</a></li>
<li><a href="{{{{elsewhere}}}}/">WordPress.org</a></li></ul></nav></section>
</aside>
<footer id="colophon" class="site-footer"><div class="site-info">
<div class="site-name"><a href="{{{{base}}}}/">{WP_SITE}</a></div>
<div class="privacy-policy"><a class="privacy-policy-link" href="{{{{base}}}}/privacy-policy/">Privacy Policy</a></div>
<div class="powered-by">Proudly powered by <a href="{{{{elsewhere}}}}/">WordPress</a>.</div></div></footer>
</div>
<script src="{{{{base}}}}/wp-content/themes/twentytwentyone/assets/js/primary-navigation.js?ver=2.1" id="twenty-twenty-one-primary-navigation-script-js"></script>
<script>document.body.classList.remove("no-js");</script>
</body></html>
"""


def wp_body(paragraphs: list[str], extra: str) -> str:
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs[:2]) + "\n" + extra + "\n" + "\n".join(f"<p>{p}</p>" for p in paragraphs[2:])
    return body


def wp_post(i: int) -> str:
    slug, title, author, date, paragraphs, extra = WP_POSTS[i]
    url = f"{{{{base}}}}/{slug}/"
    graph = {"@context": "https://schema.org", "@graph": [
        {"@type": "Article", "@id": f"{url}#article", "isPartOf": {"@id": url},
         "author": {"name": author, "@id": "{{base}}/#/schema/person/" + author.split()[0].lower()},
         "headline": html.unescape(title), "datePublished": date, "dateModified": date,
         "mainEntityOfPage": {"@id": url}, "wordCount": 40 * len(paragraphs),
         "publisher": {"@id": "{{base}}/#organization"}, "articleSection": ["News"], "inLanguage": "en-GB"},
        {"@type": "WebPage", "@id": url, "url": url, "name": f"{html.unescape(title)} - {WP_SITE}",
         "isPartOf": {"@id": "{{base}}/#website"}, "datePublished": date, "dateModified": date,
         "breadcrumb": {"@id": f"{url}#breadcrumb"}, "inLanguage": "en-GB"},
        {"@type": "BreadcrumbList", "@id": f"{url}#breadcrumb", "itemListElement": [
            {"@type": "ListItem", "position": 1, "name": "Home", "item": "{{base}}/"},
            {"@type": "ListItem", "position": 2, "name": html.unescape(title)}]},
        {"@type": "WebSite", "@id": "{{base}}/#website", "url": "{{base}}/", "name": WP_SITE},
        {"@type": "Person", "@id": "{{base}}/#/schema/person/" + author.split()[0].lower(), "name": author},
    ]}
    meta = (f'<meta property="og:title" content="{esc(title)}">\n<meta property="og:description" content="{esc(excerpt(paragraphs))}">\n'
            f'<meta property="article:published_time" content="{date}">\n<meta property="article:modified_time" content="{date}">\n'
            f'<meta name="author" content="{author}">\n<meta name="twitter:card" content="summary_large_image">\n'
            f'<script type="application/ld+json" class="yoast-schema-graph">{json.dumps(graph)}</script>')
    prev_link = next_link = ""
    if i > 0:
        p = WP_POSTS[i - 1]
        prev_link = f'<div class="nav-previous"><a href="{{{{base}}}}/{p[0]}/" rel="prev"><p class="meta-nav">Previous post</p><p class="post-title">{p[1]}</p></a></div>'
    if i + 1 < len(WP_POSTS):
        n = WP_POSTS[i + 1]
        next_link = f'<div class="nav-next"><a href="{{{{base}}}}/{n[0]}/" rel="next"><p class="meta-nav">Next post</p><p class="post-title">{n[1]}</p></a></div>'
    pid = 40 + i
    share = (f'<div class="sharedaddy sd-sharing-enabled"><div class="robots-nocontent sd-block sd-social sd-social-icon-text sd-sharing">'
             f'<h3 class="sd-title">Share this:</h3><div class="sd-content"><ul>'
             f'<li class="share-twitter"><a rel="nofollow noopener noreferrer" class="share-twitter sd-button" href="{url}?share=twitter" target="_blank" title="Click to share on X"><span>X</span></a></li>'
             f'<li class="share-facebook"><a rel="nofollow noopener noreferrer" class="share-facebook sd-button" href="{url}?share=facebook" target="_blank" title="Click to share on Facebook"><span>Facebook</span></a></li>'
             f'<li class="share-end"></li></ul></div></div></div>')
    return wp_head(f"{title} &#8211; {WP_SITE}", url, "article", meta) + f"""
<body class="post-template-default single single-post postid-{pid} single-format-standard wp-embed-responsive is-light-theme no-js singular has-main-navigation">
{wp_header()}
<article id="post-{pid}" class="post-{pid} post type-post status-publish format-standard hentry category-news entry">
<header class="entry-header alignwide"><h1 class="entry-title">{title}</h1></header>
<div class="entry-content">
{wp_body(paragraphs, extra)}
{share}
</div>
<footer class="entry-footer default-max-width"><div class="posted-by"><span class="posted-on">Published <time class="entry-date published updated" datetime="{date}">{date[:10]}</time></span>
<span class="byline">By <a href="{{{{base}}}}/author/{author.split()[0].lower()}/" rel="author">{author}</a></span></div>
<div class="post-taxonomies"><span class="cat-links">Categorised as <a href="{{{{base}}}}/category/news/" rel="category tag">News</a></span></div></footer>
</article>
<div id="comments" class="comments-area default-max-width show-avatars">
<h2 class="comments-title">One thought on &ldquo;{title}&rdquo;</h2>
<ol class="comment-list"><li id="comment-{pid}7" class="comment even thread-even depth-1"><article id="div-comment-{pid}7" class="comment-body">
<footer class="comment-meta"><div class="comment-author vcard"><b class="fn">Pat Reader</b> <span class="says">says:</span></div>
<div class="comment-metadata"><a href="{url}#comment-{pid}7"><time datetime="{date}">{date[:10]} at 8:00 pm</time></a></div></footer>
<div class="comment-content"><p>Great work, comrades &mdash; see you on Saturday. Commenters are not the author.</p></div>
<div class="reply"><a rel="nofollow" class="comment-reply-link" href="{url}?replytocom={pid}7#respond">Reply</a></div></article></li></ol>
<div id="respond" class="comment-respond"><h2 id="reply-title" class="comment-reply-title">Leave a comment</h2>
<form action="{{{{base}}}}/wp-comments-post.php" method="post" id="commentform" class="comment-form" novalidate>
<p class="comment-notes"><span id="email-notes">Your email address will not be published.</span></p>
<p class="comment-form-comment"><label for="comment">Comment</label> <textarea id="comment" name="comment" cols="45" rows="5"></textarea></p>
<p class="form-submit"><input name="submit" type="submit" id="submit" class="submit" value="Post Comment"></p></form></div>
</div>
<nav class="navigation post-navigation" aria-label="Posts"><h2 class="screen-reader-text">Post navigation</h2><div class="nav-links">{prev_link}{next_link}</div></nav>
{wp_sidebar_footer()}"""


def wp_listing(posts: list[int], title: str, canonical: str, older: str = "", newer: str = "", body_class: str = "home blog") -> str:
    articles = []
    for i in posts:
        slug, ptitle, author, date, paragraphs, _ = WP_POSTS[i]
        pid = 40 + i
        articles.append(f"""<article id="post-{pid}" class="post-{pid} post type-post status-publish format-standard hentry category-news entry">
<header class="entry-header default-max-width"><h2 class="entry-title default-max-width"><a href="{{{{base}}}}/{slug}/">{ptitle}</a></h2></header>
<div class="entry-content"><p>{excerpt(paragraphs)}</p>
<div class="more-link-container"><a class="more-link" href="{{{{base}}}}/{slug}/#more-{pid}">Continue reading <span class="screen-reader-text">{ptitle}</span></a></div></div>
<footer class="entry-footer default-max-width"><span class="posted-on">Published <time class="entry-date published updated" datetime="{date}">{date[:10]}</time></span>
<span class="byline">By <a href="{{{{base}}}}/author/{author.split()[0].lower()}/" rel="author">{author}</a></span></footer>
</article>""")
    pager = ""
    if older or newer:
        links = ""
        if newer:
            links += f'<a class="prev page-numbers" href="{newer}">Newer posts</a>'
        if older:
            links += f'<a class="next page-numbers" href="{older}">Older posts</a>'
        pager = f'<nav class="navigation pagination" aria-label="Posts"><h2 class="screen-reader-text">Posts navigation</h2><div class="nav-links">{links}</div></nav>'
    graph = {"@context": "https://schema.org", "@graph": [
        {"@type": "CollectionPage", "@id": canonical, "url": canonical, "name": title, "isPartOf": {"@id": "{{base}}/#website"}},
        {"@type": "WebSite", "@id": "{{base}}/#website", "url": "{{base}}/", "name": WP_SITE}]}
    meta = f'<meta property="og:title" content="{esc(title)}">\n<script type="application/ld+json" class="yoast-schema-graph">{json.dumps(graph)}</script>'
    return wp_head(title, canonical, "website", meta) + f"""
<body class="{body_class} wp-embed-responsive is-light-theme no-js hfeed has-main-navigation">
{wp_header()}
{chr(10).join(articles)}
{pager}
{wp_sidebar_footer()}"""


def wp_page_about() -> str:
    url = "{{base}}/about/"
    graph = {"@context": "https://schema.org", "@graph": [
        {"@type": "WebPage", "@id": url, "url": url, "name": f"About us - {WP_SITE}", "datePublished": "2025-01-10T10:00:00+00:00",
         "isPartOf": {"@id": "{{base}}/#website"}},
        {"@type": "WebSite", "@id": "{{base}}/#website", "url": "{{base}}/", "name": WP_SITE}]}
    meta = f'<meta property="og:title" content="About us">\n<meta property="article:modified_time" content="2025-01-10T10:00:00+00:00">\n<script type="application/ld+json" class="yoast-schema-graph">{json.dumps(graph)}</script>'
    return wp_head(f"About us &#8211; {WP_SITE}", url, "article", meta) + f"""
<body class="page-template-default page page-id-2 wp-embed-responsive is-light-theme no-js singular has-main-navigation">
{wp_header()}
<article id="post-2" class="post-2 page type-page status-publish hentry entry">
<header class="entry-header alignwide"><h1 class="entry-title">About us</h1></header>
<div class="entry-content"><p>Riverside Labour Voices is written by members of Riverside Constituency Labour Party. Views are the authors' own.</p>
<p>To write for us, email the branch secretary.</p></div>
</article>
{wp_sidebar_footer()}"""


def wp_feed(summary_only: bool) -> str:
    items = []
    for slug, title, author, date, paragraphs, extra in reversed(WP_POSTS):
        from datetime import datetime
        from email.utils import format_datetime
        when = format_datetime(datetime.fromisoformat(date))
        content = "" if summary_only else f"<content:encoded><![CDATA[{wp_body(paragraphs, extra)}]]></content:encoded>"
        items.append(f"""<item>
<title>{esc(title)}</title>
<link>{{{{base}}}}/{slug}/</link>
<dc:creator><![CDATA[{author}]]></dc:creator>
<pubDate>{when}</pubDate>
<category><![CDATA[News]]></category>
<guid isPermaLink="false">{{{{base}}}}/?p={40 + WP_POSTS.index((slug, title, author, date, paragraphs, extra))}</guid>
<description><![CDATA[{excerpt(paragraphs)}]]></description>
{content}
</item>""")
    return f"""<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"
xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:wfw="http://wellformedweb.org/CommentAPI/"
xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom"
xmlns:sy="http://purl.org/rss/1.0/modules/syndication/" xmlns:slash="http://purl.org/rss/1.0/modules/slash/">
<channel>
<title>{WP_SITE}</title>
<atom:link href="{{{{base}}}}/{'summary-feed' if summary_only else 'feed'}/" rel="self" type="application/rss+xml" />
<link>{{{{base}}}}/</link>
<description>News and views from Riverside CLP members</description>
<lastBuildDate>Mon, 16 Nov 2026 08:45:00 +0000</lastBuildDate>
<language>en-GB</language>
<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>1</sy:updateFrequency>
<generator>https://wordpress.org/?v=6.7.1</generator>
{chr(10).join(items)}
</channel>
</rss>
"""


def write_wordpress() -> None:
    root = HERE / "wordpress"
    files = {
        "index.html": wp_listing([4, 3, 2], WP_SITE, "{{base}}/", older="{{base}}/page/2/"),
        "page/2/index.html": wp_listing([1, 0], f"{WP_SITE} &#8211; Page 2", "{{base}}/page/2/", newer="{{base}}/",
                                        body_class="home blog paged paged-2"),
        "2026/11/index.html": wp_listing([4, 3], f"November 2026 &#8211; {WP_SITE}", "{{base}}/2026/11/", body_class="archive date"),
        "2026/10/index.html": wp_listing([2, 1], f"October 2026 &#8211; {WP_SITE}", "{{base}}/2026/10/", body_class="archive date"),
        "2026/09/index.html": wp_listing([0], f"September 2026 &#8211; {WP_SITE}", "{{base}}/2026/09/", body_class="archive date"),
        "about/index.html": wp_page_about(),
        "feed/index.xml": wp_feed(summary_only=False),
        "summary-feed/index.xml": wp_feed(summary_only=True),
        "robots.txt": "User-agent: *\nDisallow: /wp-admin/\nAllow: /wp-admin/admin-ajax.php\n\nSitemap: {{base}}/wp-sitemap.xml\n",
    }
    for i, (slug, *_rest) in enumerate(WP_POSTS):
        files[f"{slug}/index.html"] = wp_post(i)
    _write(root, files)


# --- Blogger --------------------------------------------------------------------

BLOG = "Eastfield Red"
BG_POSTS = [
    ("2026/08/summer-fair", "A stall at the summer fair", "Mary Hughes", "2026-08-15T14:20:00+01:00", [
        "Our stall at the Eastfield summer fair signed up nine new members and sold out of badges by two o'clock.",
        "Thanks to everyone who baked: the lemon drizzle raised more than the raffle.",
    ]),
    ("2026/09/bus-petition", "Save the 14: the bus petition", "Mary Hughes", "2026-09-12T10:05:00+01:00", [
        "Our petition to restore the evening service on the number 14 bus has passed 1,500 signatures.",
        "We will hand it in at the transport committee on 3 October. Come along and fill the public gallery.",
    ]),
    ("2026/09/ward-surgery", "Ward surgery dates for the autumn", "Dev Patel", "2026-09-28T18:40:00+01:00", [
        "Councillor surgeries continue on the first Saturday of each month at Eastfield library, from ten until twelve.",
        "No appointment is needed. Bring any letters from the council about your case.",
    ]),
    ("2026/10/leaflet-drop", "Leaflet drop on the Meadows estate", "Mary Hughes", "2026-10-05T09:12:00+01:00", [
        "We delivered two thousand leaflets on the Meadows estate over the weekend, with fourteen volunteers.",
        "The leaflet sets out our plan for the empty shops on Station Parade: a community cafe, a credit union and a youth club.",
        "Thank you to the Unite branch for paying for the printing.",
    ]),
    ("2026/10/transport-committee", "What happened at the transport committee", "Dev Patel", "2026-10-04T20:30:00+01:00", [
        "Forty residents packed the public gallery when we handed in the bus petition on Thursday evening.",
        "The committee agreed to review the evening timetable of the 14 and report back in January.",
    ]),
]
BG_ORDER = [3, 4, 2, 1, 0]  # newest first (by date)


def bg_post_div(i: int, full: bool = True) -> str:
    slug, title, author, date, paragraphs = BG_POSTS[i]
    pid = 7000 + i
    url = f"{{{{base}}}}/{slug}.html"
    body = "<br />\n".join(paragraphs)
    return f"""<div class='post-outer'>
<div class='post hentry uncustomized-post-template' itemprop='blogPost' itemscope='itemscope' itemtype='http://schema.org/BlogPosting'>
<meta content='{{{{base}}}}/img/b/{pid}.jpg' itemprop='image_url'/>
<meta content='4400' itemprop='blogId'/>
<meta content='{pid}' itemprop='postId'/>
<a name='{pid}'></a>
<h3 class='post-title entry-title' itemprop='name'>
<a href='{url}'>{title}</a>
</h3>
<div class='post-header'><div class='post-header-line-1'></div></div>
<div class='post-body entry-content' id='post-body-{pid}' itemprop='description articleBody'>
<div dir="ltr" style="text-align: left;" trbidi="on">
{body}
</div>
<div style='clear: both;'></div>
</div>
<div class='post-footer'>
<div class='post-footer-line post-footer-line-1'>
<span class='post-author vcard'>Posted by <span class='fn' itemprop='author' itemscope='itemscope' itemtype='http://schema.org/Person'>
<meta content='{{{{elsewhere}}}}/profile/{pid}' itemprop='url'/>
<a class='g-profile' href='{{{{elsewhere}}}}/profile/{pid}' rel='author' title='author profile'><span itemprop='name'>{author}</span></a></span></span>
<span class='post-timestamp'>at <meta content='{url}' itemprop='url'/>
<a class='timestamp-link' href='{url}' rel='bookmark' title='permanent link'><abbr class='published' itemprop='datePublished' title='{date}'>{date[11:16]}</abbr></a></span>
<span class='post-comment-link'><a class='comment-link' href='{url}#comment-form' onclick=''>2 comments:</a></span>
</div>
<div class='post-footer-line post-footer-line-2'><span class='post-labels'>Labels: <a href='{{{{base}}}}/search/label/Campaigns' rel='tag'>Campaigns</a></span></div>
<div class='post-share-buttons goog-inline-block'>
<a class='goog-inline-block share-button sb-email' href='{{{{elsewhere}}}}/share-post.g?blogID=4400&amp;postID={pid}&amp;target=email' target='_blank' title='Email This'><span class='share-button-link-text'>Email This</span></a>
<a class='goog-inline-block share-button sb-blog' href='{{{{elsewhere}}}}/share-post.g?blogID=4400&amp;postID={pid}&amp;target=blog' target='_blank' title='BlogThis!'><span class='share-button-link-text'>BlogThis!</span></a>
</div>
</div>
</div>
</div>"""


def bg_page(title: str, canonical: str, main: str, *, og: str = "") -> str:
    archive = []
    for month, label in (("2026/10", "October"), ("2026/09", "September"), ("2026/08", "August")):
        posts = "".join(f"<li><a href='{{{{base}}}}/{s}.html'>{t}</a></li>" for s, t, *_ in BG_POSTS if s.startswith(month))
        count = sum(1 for s, *_ in BG_POSTS if s.startswith(month))
        archive.append(f"<li class='archivedate'><a class='post-count-link' href='{{{{base}}}}/{month}/'>{label}</a> <span class='post-count' dir='ltr'>({count})</span><ul class='posts'>{posts}</ul></li>")
    return f"""<!DOCTYPE html>
<html class='v2' dir='ltr' lang='en-GB' xmlns='http://www.w3.org/1999/xhtml' xmlns:b='http://www.google.com/2005/gml/b' xmlns:data='http://www.google.com/2005/gml/data' xmlns:expr='http://www.google.com/2005/gml/expr'>
<head>
<meta content='width=1100' name='viewport'/>
<meta content='text/html; charset=UTF-8' http-equiv='Content-Type'/>
<meta content='blogger' name='generator'/>
<link href='{{{{base}}}}/favicon.ico' rel='icon' type='image/x-icon'/>
<link href='{canonical}' rel='canonical'/>
<link rel="alternate" type="application/atom+xml" title="{BLOG} - Atom" href="{{{{base}}}}/feeds/posts/default" />
<link rel="alternate" type="application/rss+xml" title="{BLOG} - RSS" href="{{{{base}}}}/feeds/posts/default?alt=rss" />
<link rel="service.post" type="application/atom+xml" title="{BLOG} - Atom" href="{{{{elsewhere}}}}/feeds/4400/posts/default" />
<meta content='{canonical}' property='og:url'/>
<meta content='{title}' property='og:title'/>
{og}
<title>{title}</title>
<style id='page-skin-1' type='text/css'><!--
body {{ font: normal normal 12px Arial, Tahoma, Helvetica, FreeSans, sans-serif; color: #222222; }}
--></style>
</head>
<body class='loading'>
<div class='navbar no-items section' id='navbar' name='Navbar'></div>
<div class='body-fauxcolumns'><div class='fauxcolumn-outer body-fauxcolumn-outer'></div></div>
<div class='content'><div class='content-outer'>
<header><div class='header-outer'><div class='header section' id='header' name='Header'><div class='widget Header' data-version='1' id='Header1'>
<div id='header-inner'><div class='titlewrapper'><h1 class='title'><a href='{{{{base}}}}/'>{BLOG}</a></h1></div>
<div class='descriptionwrapper'><p class='description'><span>A socialist blog from Eastfield ward</span></p></div></div></div></div></div></header>
<div class='main-outer'><div class='main-inner'><div class='columns fauxcolumns'>
<div class='columns-inner'><div class='column-center-outer'><div class='column-center-inner'>
<div class='main section' id='main' name='Main'><div class='widget Blog' data-version='1' id='Blog1'>
{main}
</div></div>
</div></div>
<div class='column-right-outer'><div class='column-right-inner'><aside>
<div class='sidebar section' id='sidebar-right-1'>
<div class='widget Profile' data-version='1' id='Profile1'><h2>About Me</h2><div class='widget-content'>
<dl class='profile-datablock'><dt class='profile-data'><a class='profile-name-link g-profile' href='{{{{elsewhere}}}}/profile/1' rel='author'>Mary Hughes</a></dt>
<dd class='profile-textblock'>Ward councillor, union rep and allotment holder.</dd></dl>
<a class='profile-link' href='{{{{elsewhere}}}}/profile/1' rel='author'>View my complete profile</a></div></div>
<div class='widget BlogArchive' data-version='1' id='BlogArchive1'><h2>Blog Archive</h2><div class='widget-content'>
<div id='ArchiveList'><div id='BlogArchive1_ArchiveList'><ul class='hierarchy'>
<li class='archivedate expanded'><a class='toggle' href='javascript:void(0)'><span class='zippy toggle-open'>&#9660;&#160;</span></a>
<a class='post-count-link' href='{{{{base}}}}/2026/'>2026</a> <span class='post-count' dir='ltr'>({len(BG_POSTS)})</span>
<ul class='hierarchy'>{''.join(archive)}</ul></li></ul></div></div></div></div>
</div></aside></div></div>
</div></div></div></div>
<footer><div class='footer-outer'><div class='widget Attribution' data-version='1' id='Attribution1'>
<div class='widget-content' style='text-align: center;'>Simple theme. Powered by <a href='{{{{elsewhere}}}}/' target='_blank'>Blogger</a>.</div></div></div></footer>
</div></div>
<script type="text/javascript" src="{{{{elsewhere}}}}/static/v1/widgets/2271878333-widgets.js"></script>
</body>
</html>
"""


def bg_listing(indices: list[int], title: str, canonical: str, older: str = "", newer: str = "") -> str:
    groups = []
    for i in indices:
        date = BG_POSTS[i][3]
        groups.append(f"<div class=\"date-outer\"><h2 class='date-header'><span>{date[:10]}</span></h2><div class=\"date-posts\">{bg_post_div(i)}</div></div>")
    pager = "<div class='blog-pager' id='blog-pager'>"
    if newer:
        pager += f"<span id='blog-pager-newer-link'><a class='blog-pager-newer-link' href='{newer}' id='Blog1_blog-pager-newer-link' title='Newer Posts'>Newer Posts</a></span>"
    if older:
        pager += f"<span id='blog-pager-older-link'><a class='blog-pager-older-link' href='{older}' id='Blog1_blog-pager-older-link' title='Older Posts'>Older Posts</a></span>"
    pager += "<a class='home-link' href='{{base}}/'>Home</a></div>"
    main = f"<div class='blog-posts hfeed'>{''.join(groups)}</div>{pager}<div class='clear'></div><div class='blog-feeds'><div class='feed-links'>Subscribe to: <a class='feed-link' href='{{{{base}}}}/feeds/posts/default' target='_blank' type='application/atom+xml'>Posts (Atom)</a></div></div>"
    return bg_page(title, canonical, main)


def bg_post(i: int) -> str:
    slug, title, author, date, paragraphs = BG_POSTS[i]
    url = f"{{{{base}}}}/{slug}.html"
    pos = BG_ORDER.index(i)
    newer = f"{{{{base}}}}/{BG_POSTS[BG_ORDER[pos - 1]][0]}.html" if pos > 0 else ""
    older = f"{{{{base}}}}/{BG_POSTS[BG_ORDER[pos + 1]][0]}.html" if pos + 1 < len(BG_ORDER) else ""
    comments = f"""<div class='comments' id='comments'><a name='comments'></a><h4>2 comments:</h4>
<div class='comments-content'><div id='comment-holder'><div class='comment-thread toplevel-thread'><ol id='top-ra'>
<li class='comment' id='c{7000 + i}1'><div class='avatar-image-container'><img src='{{{{elsewhere}}}}/img/blank.gif' alt=''/></div>
<div class='comment-block'><div class='comment-header'><cite class='user'>Anonymous</cite><span class='datetime secondary-text'><a rel='nofollow' href='{url}?showComment=1#c{7000 + i}1'>5 October 2026 at 11:02</a></span></div>
<p class='comment-content'>Well done all! A reader's comment, not part of the post.</p></div></li></ol></div></div></div>
<p class='comment-footer'><a href='{{{{elsewhere}}}}/comment/fullpage/post/4400/{7000 + i}' onclick=''>Post a Comment</a></p></div>"""
    pager = "<div class='blog-pager' id='blog-pager'>"
    if newer:
        pager += f"<span id='blog-pager-newer-link'><a class='blog-pager-newer-link' href='{newer}' id='Blog1_blog-pager-newer-link' title='Newer Post'>Newer Post</a></span>"
    if older:
        pager += f"<span id='blog-pager-older-link'><a class='blog-pager-older-link' href='{older}' id='Blog1_blog-pager-older-link' title='Older Post'>Older Post</a></span>"
    pager += "<a class='home-link' href='{{base}}/'>Home</a></div>"
    main = (f"<div class='blog-posts hfeed'><div class=\"date-outer\"><h2 class='date-header'><span>{date[:10]}</span></h2>"
            f"<div class=\"date-posts\">{bg_post_div(i)}{comments}</div></div></div>{pager}")
    og = f"<meta content='{esc(paragraphs[0][:120])}' property='og:description'/>"
    return bg_page(f"{BLOG}: {title}", url, main, og=og)


def write_blogger() -> None:
    root = HERE / "blogger"
    older_1 = "{{base}}/search?updated-max=2026-09-28T18:40:00%2B01:00&max-results=3"
    older_2 = "{{base}}/search?updated-max=2026-09-12T10:05:00%2B01:00&max-results=3"
    files = {
        "index.html": bg_listing(BG_ORDER[:3], BLOG, "{{base}}/", older=older_1),
        "search-older-1.html": bg_listing(BG_ORDER[3:], BLOG, older_1, newer="{{base}}/"),
        "2026/10/index.html": bg_listing([3, 4], f"{BLOG}: October 2026", "{{base}}/2026/10/"),
        "2026/09/index.html": bg_listing([2, 1], f"{BLOG}: September 2026", "{{base}}/2026/09/"),
        "2026/08/index.html": bg_listing([0], f"{BLOG}: August 2026", "{{base}}/2026/08/"),
        "2026/index.html": bg_listing(BG_ORDER, f"{BLOG}: 2026", "{{base}}/2026/"),
        "robots.txt": "User-agent: Mediapartners-Google\nDisallow: \n\nUser-agent: *\nDisallow: /search\nAllow: /\n\nSitemap: {{base}}/sitemap.xml\n",
        "_routes.txt": ("# URL (path and query, as a browser shows it) -> file\n"
                        "/search?updated-max=2026-09-28T18:40:00+01:00&max-results=3 search-older-1.html\n"),
    }
    # Blogger's robots.txt disallows /search, and so its older-posts pager: the crawler
    # must find the older posts through the archive widget instead (as on real Blogger).
    del older_2
    for i, (slug, *_rest) in enumerate(BG_POSTS):
        files[f"{slug}.html"] = bg_post(i)
    _write(root, files)


# --- a hand-made static blog: no feed, no metadata ----------------------------------

ST_POSTS = [
    ("tea-with-the-tenants", "Tea with the tenants' association", "2026-05-02", [
        "The tenants' association at Cobden House invited me to tea to talk about the lifts, which have been broken on and off since February.",
        "I have written to the housing department with their list of repairs and will post the reply here.",
    ]),
    ("the-reply-about-the-lifts", "The reply about the lifts", "2026-05-20", [
        "The housing department says both lifts at Cobden House will be replaced by the end of July.",
        "Residents on the top floors will get help with shopping until then.",
    ]),
    ("street-stall-diary", "Street stall diary", "2026-06-06", [
        "Two hours on the corner of Market Street: forty conversations, six new supporters, one dog who wanted all the leaflets.",
    ]),
    ("why-i-joined", "Why I joined", "2026-06-30", [
        "People ask why I joined the party at sixty-one. The short answer is my granddaughter's school, which lost its music teacher to the cuts.",
        "The long answer is below, and it involves a trombone.",
        "My granddaughter plays the trombone. She plays it badly, and with enormous joy, and the only place she could play it was at school.",
    ]),
    ("summer-reading", "Summer reading for activists", "2026-07-25", [
        "A few books that kept me going this summer, none of them new: The Ragged Trousered Philanthropists, Road to Wigan Pier and a history of the Co-operative movement.",
    ]),
    ("leaflets-and-lampposts", "Leaflets and lampposts", "2026-08-14", [
        "A reminder that leaflets go through letterboxes, not on lampposts: the council fined a candidate in the next ward last year.",
        "Our delivery maps are in the office, sorted by street.",
    ]),
    ("back-to-school", "Back to school", "2026-09-03", [
        "The new term starts with good news: the primary on Elm Road has hired a music teacher again, after our two-year campaign.",
        "My granddaughter has already brought the trombone home.",
    ]),
]
ST_AUTHOR = "Sam Okafor"
ST_PER_PAGE = 3


def st_page(title: str, main: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="/style.css">
</head>
<body>
<header>
<p class="site"><a href="/">Notes from the doorstep</a></p>
<nav><a href="/">Home</a> | <a href="/about.html">About</a> | <a href="mailto:sam@example.org">Email me</a></nav>
</header>
<main>
{main}
</main>
<footer><p>&copy; 2026 Sam Okafor. Written by hand in a text editor. <a href="{{{{elsewhere}}}}/">Web ring</a></p></footer>
</body>
</html>
"""


def st_post(i: int) -> str:
    slug, title, date, paragraphs = ST_POSTS[i]
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    nav = []
    if i > 0:
        nav.append(f'<a href="{ST_POSTS[i - 1][0]}.html">&larr; {ST_POSTS[i - 1][1]}</a>')
    if i + 1 < len(ST_POSTS):
        nav.append(f'<a href="{ST_POSTS[i + 1][0]}.html">{ST_POSTS[i + 1][1]} &rarr;</a>')
    extra = ""
    if slug == "street-stall-diary":
        # A link that the tests redirect to the trap server (a blocked address).
        extra = '<p>Photos from the stall are <a href="/go/photos">on my photo page</a>.</p>'
    return st_page(f"{title} | Notes from the doorstep", f"""<article>
<h1>{title}</h1>
<p class="byline">By {ST_AUTHOR} &middot; <time datetime="{date}">{date}</time></p>
{body}
{extra}
</article>
<p class="postnav">{' | '.join(nav)}</p>""")


def st_listing(page: int, pages: int) -> str:
    newest_first = list(reversed(ST_POSTS))
    chunk = newest_first[(page - 1) * ST_PER_PAGE: page * ST_PER_PAGE]
    items = []
    for slug, title, date, paragraphs in chunk:
        items.append(f'<li><h2><a href="/posts/{slug}.html">{title}</a></h2>\n<p><time datetime="{date}">{date}</time> &mdash; {paragraphs[0][:90]}&hellip;</p></li>')
    nav = []
    if page > 1:
        nav.append(f'<a href="{"/" if page == 2 else f"/archive/{page - 1}.html"}">&larr; Newer posts</a>')
    if page < pages:
        nav.append(f'<a href="/archive/{page + 1}.html">Older posts &rarr;</a>')
    private = '<p class="draft"><a href="/private/draft.html">(draft, do not share)</a></p>' if page == 1 else ""
    heading = "<h1>Latest notes</h1>" if page == 1 else f"<h1>Archive, page {page}</h1>"
    return st_page("Notes from the doorstep" + ("" if page == 1 else f" (page {page})"),
                   f"{heading}\n<ul class=\"posts\">\n{chr(10).join(items)}\n</ul>\n<p class=\"pages\">{' | '.join(nav)}</p>\n{private}")


def write_static() -> None:
    root = HERE / "static"
    pages = (len(ST_POSTS) + ST_PER_PAGE - 1) // ST_PER_PAGE
    files = {"index.html": st_listing(1, pages), "robots.txt": "User-agent: *\nDisallow: /private/\n",
             "about.html": st_page("About | Notes from the doorstep", "<h1>About</h1>\n<p>I am a retired bus driver and a Labour member in Eastfield.</p>"),
             "private/draft.html": st_page("Draft", "<article><h1>Not for publication</h1><p><time datetime=\"2026-09-10\">2026-09-10</time> Secret draft.</p></article>"),
             "style.css": "body { font-family: Georgia, serif; max-width: 40em; margin: auto; }\n"}
    for page in range(2, pages + 1):
        files[f"archive/{page}.html"] = st_listing(page, pages)
    for i, (slug, *_rest) in enumerate(ST_POSTS):
        files[f"posts/{slug}.html"] = st_post(i)
    _write(root, files)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write_wordpress()
    write_blogger()
    write_static()
