"""The public pages in real headless Chromium (Debian's, driven by Playwright).

Each page, at a phone's and a desktop's width in light and a phone's in dark: it renders with its
main heading visible, has the landmarks and a language, logs no console error (a CSP
violation is one), throws nothing, fetches nothing from another host, does not scroll
sideways, and leaves a full-page screenshot in tests/artefacts/screenshots/. axe-core
finds no serious or critical accessibility violation. Search works without
JavaScript, and the keyboard reaches the skip link first and sees where focus is.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from .conftest import DESKTOP, PHONE

# The search shown: results for "council", and a did-you-mean for the misspelt word.
SEARCH_QUERY = "council OR canvasing"
SUGGESTION = "council OR canvassing"

# name -> (path, or a function of the site giving it; HTTP status; the heading that must be visible)
PAGES = {
    "front": ("/", 200, "#ranked-h"),  # its h1 is for screen readers; "Top posts" is what a reader sees
    "new": ("/new", 200, "main h1"),
    "post": (lambda s: f"/posts/{s.rich_post}", 200, "main h1"),
    "blog": (lambda s: f"/blogs/{s.blogs['doorstep']}", 200, "main h1"),  # erroring: health panel, history
    "blog-long-name": (lambda s: f"/blogs/{s.blogs['long']}", 200, "main h1"),
    "blogs": ("/blogs", 200, "main h1"),
    "search": ("/search?q=" + SEARCH_QUERY.replace(" ", "+"), 200, "main h1"),
    "section": ("/sections/local-parties", 200, "main h1"),
    "poll": (lambda s: f"/polls/{s.poll}", 200, "main h1"),
    "poll-results": (lambda s: f"/polls/{s.poll}/results", 200, "main h1"),
    "about": ("/about", 200, "main h1"),
    "privacy": ("/privacy", 200, "main h1"),
    "not-found": ("/no/such/page", 404, "main h1"),
}
AXE_PAGES = ("front", "post", "blog", "search", "section", "poll")  # checked in dark too; every page in light
# Issue 14: the front page, a section, a post, search and a poll at both widths in light and dark.
ISSUE_PAGES = ("front", "section", "post", "search", "poll")

PASSES = {  # name -> (viewport, dark): both widths in light, a phone in dark; a desktop in dark for ISSUE_PAGES
    "phone": (PHONE, False),
    "desktop": (DESKTOP, False),
    "phone-dark": (PHONE, True),
    "desktop-dark": (DESKTOP, True),
}
RUNS = [(name, view) for name in PAGES for view in PASSES if view != "desktop-dark" or name in ISSUE_PAGES]


def path_of(name: str, site) -> str:
    path = PAGES[name][0]
    return path(site) if callable(path) else path


def wait_for_images(page) -> None:
    """Bring lazy images into view and wait until each has loaded or failed."""
    page.evaluate("""async () => {
        for (const img of document.images) { img.loading = 'eager'; }
        await Promise.all([...document.images].map(img => img.complete ? null :
            new Promise(done => { img.addEventListener('load', done); img.addEventListener('error', done); })));
    }""")


# What a page says about itself, in one round trip.
FACTS = """() => {
    const style = e => e ? getComputedStyle(e) : null;
    const nav = document.querySelector("nav[aria-label='Site']");
    const wide = [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
        .slice(0, 5).map(e => e.tagName + '.' + e.className + ': ' + (e.textContent || '').trim().slice(0, 50));
    return {
        lang: document.documentElement.lang,
        h1: document.querySelectorAll('h1').length,
        main: document.querySelectorAll('main').length,
        nav_visible: !!nav && nav.getBoundingClientRect().height > 0 && style(nav).visibility === 'visible',
        header: document.querySelectorAll('header.masthead').length,
        footer: document.querySelectorAll('body > footer').length,
        masthead_border: style(document.querySelector('.masthead'))?.borderBottomStyle,
        // The page background's brightest channel, 0 to 255: low in dark, high in light.
        background: Math.max(...(style(document.body).backgroundColor.match(/[\\d.]+/g) || [0]).slice(0, 3).map(Number)),
        broken_images: [...document.images].filter(i => !i.naturalWidth).map(i => i.src),
        scroll_width: document.scrollingElement.scrollWidth,
        inner_width: window.innerWidth,
        too_wide: wide,
    };
}"""


@pytest.mark.parametrize("name, view", RUNS)
def test_page_renders_cleanly(open_tab, site, artefacts, name, view):
    """The page loads with its status, shows its heading, has the landmarks and language,
    applies the stylesheet, loads its images, fits the width, and logs no error (a CSP
    violation is one) and asks nothing of another host; a full-page screenshot is kept.
    axe-core runs here too (one load serves both), at desktop width in light for every
    page and at phone width in dark for the issue's four: front, post, blog and search."""
    viewport, dark = PASSES[view]
    _, status, heading = PAGES[name]
    tab = open_tab(viewport=viewport, dark=dark)
    response = tab.goto(path_of(name, site), status=status)
    page = tab.page

    expect(page.locator(heading).first).to_be_visible()
    wait_for_images(page)
    # The artefact first, so a page that fails below can be looked at.
    page.screenshot(path=str(artefacts / f"{name}-{view}.png"), full_page=True)
    if name in ISSUE_PAGES:  # and what a reader sees first, the screen as it opens
        page.screenshot(path=str(artefacts / f"{name}-{view}-fold.png"))

    assert response.headers["content-type"].startswith("text/html")
    assert "content-security-policy" in response.headers
    assert page.title().endswith("Hustings")
    facts = page.evaluate(FACTS)
    assert facts["lang"] == "en-GB", facts
    assert facts["h1"] == 1, "one h1 per page"
    assert facts["main"] == 1 and facts["nav_visible"], facts
    assert facts["header"] == 1 and facts["footer"] == 1, facts
    # The stylesheet applied (a blocked or missing one leaves the browser's plain page).
    assert facts["masthead_border"] == "solid", facts
    assert (facts["background"] < 60) if dark else (facts["background"] > 230), f"{'dark' if dark else 'light'}: {facts}"
    assert facts["broken_images"] == [], f"images that did not load: {facts['broken_images']}"
    assert facts["scroll_width"] <= facts["inner_width"], (
        f"{name} scrolls sideways at {viewport['width']} px "
        f"({facts['scroll_width']} > {facts['inner_width']}); too wide: {facts['too_wide']}")
    problems = tab.problems(allow_document_status=(status == 404))
    assert problems == [], f"{name} at {view}:\n" + "\n".join(problems)

    if view == "desktop" or (view.endswith("-dark") and name in AXE_PAGES):
        assert_no_serious_axe_violations(page, f"{name} at {view}")


def assert_no_serious_axe_violations(page, label: str) -> None:
    """axe-core (bundled by axe-playwright-python): no serious or critical violation.
    Lesser ones are printed, not failed."""
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    lesser = [f"{v['impact']}: {v['id']} ({len(v['nodes'])})" for v in violations
              if v["impact"] not in ("serious", "critical")]
    if lesser:
        print(f"axe, {label}, not failing: {', '.join(lesser)}")
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not serious, f"axe-core found on {label}:\n" + "\n".join(
        f"- {v['impact']} {v['id']}: {v['help']} ({v['helpUrl']})\n" + "\n".join(
            f"    {n['target']}: {n.get('failureSummary', '').replace(chr(10), ' ')[:300]}\n"
            f"      {n['html'][:200]}" for n in v["nodes"][:6])
        for v in serious)


def test_search_works_without_javascript(open_tab, site, artefacts):
    """With scripting off in the browser: the masthead box, Enter, highlighted results,
    then the filters (plain form controls) narrow them."""
    tab = open_tab(viewport=PHONE, javascript=False)
    tab.goto("/")
    page = tab.page
    box = page.get_by_role("searchbox", name="Search every post")
    box.fill("canvassing")
    with page.expect_navigation():
        box.press("Enter")
    url = urlsplit(page.url)
    assert url.path == "/search" and parse_qs(url.query)["q"] == ["canvassing"]
    expect(page.locator("#results-h")).to_contain_text("results for “canvassing”")
    marks = page.locator("main article mark")
    expect(marks.first).to_be_visible()
    words = {m.lower() for m in marks.all_inner_texts()}
    assert words and all(w.startswith("canvass") for w in words), words  # every form of the word, stemmed

    # The filters are plain form controls too: one blog only, newest first.
    page.get_by_label("Blog", exact=True).select_option(label="Young Members' Network")
    page.get_by_label("Order").select_option(label="Newest first")
    with page.expect_navigation():
        page.get_by_role("button", name="Search").last.click()
    query = parse_qs(urlsplit(page.url).query)
    assert query["blog"] == [str(site.blogs["youth"])] and query["sort"] == ["newest"]
    results = page.locator("main article")
    assert results.count() == 1
    expect(results.first.locator(".meta a")).to_have_text("Young Members' Network")
    expect(results.first.locator("mark").first).to_be_visible()
    page.screenshot(path=str(artefacts / "search-no-javascript-phone.png"), full_page=True)
    assert tab.problems() == []


def test_did_you_mean_links_to_the_corrected_search(open_tab, site):
    tab = open_tab(viewport=PHONE)
    tab.goto(path_of("search", site))
    page = tab.page
    expect(page.locator("#results-h")).to_contain_text("for “council OR canvasing”")
    assert page.locator("main article").count() == 10  # a full first page
    expect(page.locator(".pager")).to_contain_text("Page 1 of")
    suggestion = page.get_by_role("link", name=SUGGESTION)
    expect(suggestion).to_be_visible()
    with page.expect_navigation():
        suggestion.click()
    assert parse_qs(urlsplit(page.url).query)["q"] == [SUGGESTION]
    expect(page.locator(".suggestion")).to_have_count(0)
    assert tab.problems() == []


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_keyboard_skip_link_and_visible_focus(open_tab, site, artefacts, dark):
    tab = open_tab(viewport=PHONE, dark=dark)
    tab.goto("/")
    page = tab.page
    page.keyboard.press("Tab")
    skip = page.locator("a.skip")
    expect(skip).to_be_focused()
    expect(skip).to_have_text("Skip to content")
    expect(skip).to_be_in_viewport(ratio=1)
    box = skip.bounding_box()
    assert box["x"] >= 0 and box["y"] >= 0 and box["width"] > 40 and box["height"] > 20, box
    assert_focus_visible(page)
    page.screenshot(path=str(artefacts / f"skip-link-focused-phone{'-dark' if dark else ''}.png"))

    page.keyboard.press("Enter")  # follows the skip link: focus moves to the main content
    expect(page.locator("main")).to_be_focused()
    assert urlsplit(page.url).fragment == "main"
    page.keyboard.press("Tab")
    first = page.evaluate("document.activeElement.closest('main') !== null")
    assert first, "the Tab after the skip link should land in the main content"

    # Every stop from the top of the page shows where focus is.
    tab.goto("/")
    for _ in range(12):
        page.keyboard.press("Tab")
        assert_focus_visible(page)
    assert tab.problems() == []


FOCUS = """() => {
    const el = document.activeElement, s = getComputedStyle(el);
    const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
    const lum = c => { const [r, g, b] = rgb(c).map(v => v / 255)
        .map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
        return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
    // The colour the outline is drawn against: the nearest ancestor's own background.
    let bg = 'rgb(255, 255, 255)';
    for (let e = el.parentElement; e; e = e.parentElement) {
        const c = getComputedStyle(e).backgroundColor, a = rgb(c);
        if (a.length === 3 || (a.length === 4 && a[3] > 0)) { bg = c; break; }
    }
    const [hi, lo] = [lum(s.outlineColor), lum(bg)].sort((x, y) => y - x);
    return {
        element: el.outerHTML.slice(0, 80),
        outline: (s.outlineStyle === 'none' || parseFloat(s.outlineWidth) === 0) ? 'none'
            : s.outlineStyle + ' ' + s.outlineWidth + ' ' + s.outlineColor,
        against: bg,
        contrast: (hi + 0.05) / (lo + 0.05),
    };
}"""


def focus_ring(page) -> dict:
    """The focused element's outline and its contrast with what is behind it."""
    return page.evaluate(FOCUS)


def assert_focus_visible(page) -> None:
    ring = focus_ring(page)
    assert ring["outline"] != "none", f"no visible focus on {ring['element']}"
    # WCAG 1.4.11: a focus indicator needs 3:1 against the colours next to it.
    assert ring["contrast"] >= 3, f"focus outline too faint ({ring['contrast']:.2f}:1): {ring}"


def test_post_page_content(open_tab, site):
    """The sanitised content renders: headings, lists, quote, table, image with its alt
    text, and links out that carry no referrer."""
    tab = open_tab(viewport=PHONE)
    tab.goto(f"/posts/{site.rich_post}")
    page = tab.page
    content = page.locator(".post .content")
    for selector in ("h2", "h3", "ol li", "ul li", "blockquote", "table caption", "figure figcaption"):
        expect(content.locator(selector).first).to_be_visible()
    image = content.get_by_role("img", name="The branch's red rosette logo")
    image.scroll_into_view_if_needed()
    expect(image).to_be_visible()
    assert image.evaluate("i => i.naturalWidth") > 0
    for rel in content.locator("a").evaluate_all("as => as.map(a => a.rel)"):
        assert "noreferrer" in rel and "noopener" in rel, rel
    original = page.get_by_role("link", name="Read it on Valley Socialist")
    assert original.get_attribute("href") == "http://127.0.0.1/valley/posts/0"
    expect(page.locator(".why")).to_contain_text("Score")
    expect(page.locator(".tags")).to_contain_text("canvassing")
    assert tab.problems() == []


def test_front_page_shows_the_pick_apart_and_respects_the_caps(open_tab, site):
    tab = open_tab(viewport=DESKTOP)
    tab.goto("/")
    page = tab.page
    picks = page.locator(".picks")
    expect(picks.locator("h2")).to_have_text("Editor's picks")
    expect(picks.locator("li > a")).to_have_text("The river report nobody wanted published")
    # The stories and the ranked list: thirty posts, a blog once in the top ten (twelve blogs).
    blogs = page.locator(".ranked-section article .meta > a:first-child").all_inner_texts()
    assert len(blogs) == 30
    top = blogs[:10]
    assert len(set(top)) == len(top), f"one post per blog in the top ten: {top}"
    # The lead is the top post, with its picture beside it on a desktop.
    lead = page.locator("article.lead")
    expect(lead.locator("img.story-img")).to_be_visible()
    box, title = lead.locator("img").bounding_box(), lead.locator("h3").bounding_box()
    assert box["x"] > title["x"] + title["width"] - 1, "the picture sits beside the headline"
    # The rail is beside the stories, not under them.
    rail, main = page.locator("aside.rail").bounding_box(), page.locator(".front-main").bounding_box()
    assert rail["x"] >= main["x"] + main["width"] and rail["y"] < main["y"] + 200
    assert tab.problems() == []


def test_a_reader_recommends_from_a_front_page_line_without_javascript(open_tab, site, artefacts):
    """The line's button submits the page's one form to its post (formaction): back on the front
    page at that line, it says Recommended and the count went up; a phone, no JavaScript."""
    tab = open_tab(viewport=PHONE, javascript=False)
    tab.goto("/")
    page = tab.page
    line = page.locator("ol.ranked > li").nth(2)
    count = int(line.locator(".rec-n").inner_text().split()[0])
    with page.expect_navigation():
        line.get_by_role("button", name="Recommend").click()
    assert urlsplit(page.url).path == "/" and urlsplit(page.url).fragment.startswith("t")
    line = page.locator(f"ol.ranked article:has(h3#{urlsplit(page.url).fragment})")
    expect(line.locator(".rec-b.done")).to_have_text("Recommended")
    assert int(line.locator(".rec-n").inner_text().split()[0]) == count + 1
    line.scroll_into_view_if_needed()
    page.screenshot(path=str(artefacts / "front-recommended-phone.png"))
    assert tab.problems() == []


def test_the_checks_see_a_csp_violation_and_a_request_off_loopback(open_tab, site):
    """The console and network watch used above is live: an inline style (refused by our
    CSP) is a console error, and an image from any host but 127.0.0.1 is blocked and
    recorded (127.0.0.2 here, so that even a request that escaped would stay on loopback)."""
    tab = open_tab(viewport=PHONE)
    tab.goto("/about")
    tab.page.evaluate("""() => {
        document.querySelector('main').insertAdjacentHTML('beforeend', '<p style="color: red">inline</p>');
        const img = new Image(); img.src = 'https://127.0.0.2:9/pixel.gif';
        return new Promise(done => { img.onerror = done; img.onload = done; });
    }""")
    problems = tab.problems()
    assert any("violates the following Content Security Policy directive" in p for p in problems), problems
    assert tab.blocked == ["https://127.0.0.2:9/pixel.gif"], tab.blocked


def test_a_wide_table_scrolls_in_its_own_box_on_a_phone(open_tab, site):
    """The rich post's seven-column results table: on a phone its numbers stay whole (one line a
    cell) and its box scrolls sideways, by keyboard too; the page itself never does."""
    tab = open_tab(viewport=PHONE)
    tab.goto(f"/posts/{site.rich_post}")
    facts = tab.page.evaluate("""() => {
        const boxes = [...document.querySelectorAll('.post .content .table-box')];
        const wide = boxes.find(b => b.textContent.includes('by-election'));
        const cell = [...wide.querySelectorAll('td')].find(td => td.textContent.trim() === '1,412');
        const lines = document.createRange(); lines.selectNodeContents(cell);
        return {boxes: boxes.length, tables: document.querySelectorAll('.post .content table').length,
                scrolls: wide.scrollWidth > wide.clientWidth, focusable: wide.tabIndex === 0,
                name: wide.getAttribute('aria-label'), lines: lines.getClientRects().length,
                page_fits: document.scrollingElement.scrollWidth <= window.innerWidth};
    }""")
    assert facts["boxes"] == facts["tables"] == 2, facts
    assert facts["scrolls"] and facts["focusable"] and facts["name"], facts
    assert facts["lines"] == 1, facts  # "1,412" on one line, not a digit a line
    assert facts["page_fits"], facts
    tab.page.locator(".table-box").last.focus()
    tab.page.keyboard.press("ArrowRight")
    tab.page.wait_for_function("() => [...document.querySelectorAll('.table-box')].pop().scrollLeft > 0")
    assert tab.problems() == []
