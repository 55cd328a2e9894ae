"""Every public page is valid HTML by the W3C's Nu Html Checker (issue 14, item 9): no errors.

The checker is the npm registry's `vnu-jar` (tests/browser/install_vnu.py installs it into a
cache directory the first time), run on the machine's Java once for every page together: the
pages are fetched from the same real site the browser tests use and checked as files.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest

from . import install_vnu

# name -> path (or a function of the site): every page a reader can reach without signing in.
PUBLIC = {
    "front": "/", "front-2": "/?page=2", "new": "/new", "new-2": "/new?page=2",
    "post": lambda s: f"/posts/{s.rich_post}", "post-pick": lambda s: f"/posts/{s.featured_post}",
    "post-recommended": lambda s: f"/posts/{s.rich_post}?recommended=yes",
    "section": "/sections/local-parties", "section-campaigns": "/sections/campaigns",
    "blogs": "/blogs", "blog": lambda s: f"/blogs/{s.blogs['doorstep']}",
    "blog-long-name": lambda s: f"/blogs/{s.blogs['long']}",
    "search": "/search?q=council+OR+canvasing", "search-empty": "/search", "search-none": "/search?q=zzxqj",
    "search-blog": lambda s: f"/search?q=council&blog={s.blogs['valley']}&sort=newest",
    "polls": "/polls", "poll": lambda s: f"/polls/{s.poll}", "poll-results": lambda s: f"/polls/{s.poll}/results",
    "about": "/about", "privacy": "/privacy", "moderation-log": "/moderation", "submit": "/submit",
    "login": "/login", "not-found": "/no/such/page", "gone-post": "/posts/999999",
}


@pytest.fixture(scope="session")
def vnu():
    try:
        return install_vnu.ensure()
    except install_vnu.InstallError as exc:
        pytest.fail(f"the HTML tests need the Nu Html Checker: {exc}", pytrace=False)


NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the tests set a trap proxy


def fetch(url: str) -> bytes:
    try:
        with NO_PROXY.open(url, timeout=60) as res:
            return res.read()
    except urllib.error.HTTPError as err:  # 404 pages are pages too
        return err.read()


def test_every_public_page_is_valid_html(vnu, site, tmp_path):
    runtime, jar = vnu
    files = {}
    for name, path in PUBLIC.items():
        path = path(site) if callable(path) else path
        body = fetch(site.base + path)
        assert body.startswith(b"<!doctype html>"), (name, body[:80])
        files[name] = tmp_path / f"{name}.html"
        files[name].write_bytes(body)
    # A page with a known error (an image without alt), so a checker that saw nothing would show.
    trap = tmp_path / "trap.html"
    trap.write_text('<!doctype html><html lang="en"><title>t</title><img src="x.png">')
    files["trap"] = trap
    done = subprocess.run([runtime, "-jar", str(jar), "--format", "json", "--stdout",
                           *[str(f) for f in files.values()]],
                          capture_output=True, text=True, timeout=600, check=False)
    report = json.loads(done.stdout)
    errors = [m for m in report["messages"] if m.get("type") == "error" or m.get("subType") == "fatal"]
    by_page = {m.get("url"): m.get("url", "").rsplit("/", 1)[-1].removesuffix(".html") for m in report["messages"]}
    assert any(by_page.get(m.get("url")) == "trap" and "alt" in m.get("message", "") for m in errors), report
    errors = [m for m in errors if by_page.get(m.get("url")) != "trap"]
    assert not errors, f"the Nu Html Checker ({report.get('version')}) found:\n" + "\n".join(
        f"- {by_page.get(m.get('url'), m.get('url'))} line {m.get('lastLine')}: {m.get('message')}\n"
        f"    {(m.get('extract') or '').strip()[:160]}" for m in errors[:40])
    warnings = [m for m in report["messages"] if m.get("type") == "info" and m.get("subType") == "warning"]
    if warnings:  # shown, not failed: the checker's advice ("consider adding a lang attribute"...)
        print("\n".join(f"vnu warning: {by_page.get(m.get('url'))}: {m.get('message')}" for m in warnings[:20]))
