"""bench/crawl.py: the blog spider's pages/s on a 1,000-post loopback blog, against Scrapy's own rate.

A generated blog (N post pages, listing pages of 20 posts with pagination, a robots.txt) is
served by a ThreadingHTTPServer in a separate process on 127.0.0.1. In the same run, and
interleaved when repeated:

* **ours**: `python -m spiders.run blog --feed 1` on a fresh database, exactly as the worker
  starts it (robots.txt, AutoThrottle, the address guard, the page budget, post recognition,
  readability, sanitising and storing), with `crawl_delay_s=0` and `crawl_max_pages` above the
  site's size; `fetch_per_host` as given (default 2, the polite setting).
* **Scrapy, empty callback**: a bare Scrapy spider in its own process that follows every
  on-site link and does nothing else; once with our crawl rules (`fetch_per_host` per site,
  AutoThrottle on, no delay) and once with Scrapy's defaults (16 at once, 8 per site, no
  AutoThrottle); robots.txt obeyed by both. (At 2 per site without AutoThrottle, Scrapy 2.19
  crawled this site at about 20 pages/s, 10x slower than with it: we compare like with like.)

Pages/s is responses divided by the time from spider open to close (start-up aside); the
whole-process wall time and peak RSS (wait4) are printed too. Only 127.0.0.1 is contacted.

    python3 bench/crawl.py                  # 1,000 posts, 3 interleaved runs
    python3 bench/crawl.py --posts 200 --repeat 1
"""

from __future__ import annotations

import argparse
import html
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PER_PAGE = 20
WORDS = ("council housing budget members branch campaign doorstep leaflet motion vote union rent bus school "
         "library care workers ward meeting conference petition fair wages energy heating surgery").split()


def write_site(root: Path, posts: int, seed: int = 6) -> int:
    """A WordPress-like blog: home + listing pages + post pages. Returns the number of pages."""
    rng = random.Random(seed)
    pages = (posts + PER_PAGE - 1) // PER_PAGE

    def para() -> str:
        return "<p>" + " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 90))).capitalize() + ".</p>"

    def shell(title: str, canonical: str, main: str, ld: str = "") -> str:
        return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
                f'<link rel="canonical" href="{canonical}">{ld}</head><body>'
                f'<header><a href="/">Bench blog</a> <nav><a href="/">Home</a> <a href="/page/2/">Older</a></nav></header>'
                f'<main>{main}</main><aside><h2>About</h2><p>A generated blog for bench/crawl.py.</p></aside>'
                f'<footer>Powered by nothing</footer></body></html>')

    (root / "robots.txt").write_text("User-agent: *\nDisallow: /wp-admin/\n")
    for i in range(posts):
        slug = f"post-{i:05d}"
        title = f"Post {i}: {' '.join(rng.choice(WORDS) for _ in range(4))}"
        date = f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00+00:00"
        ld = ('<script type="application/ld+json">' + json.dumps(
            {"@context": "https://schema.org", "@type": "BlogPosting", "headline": title, "datePublished": date,
             "author": {"@type": "Person", "name": "Bench Author"}}) + "</script>")
        nav = (f'<a href="/posts/post-{i - 1:05d}/" rel="prev">Previous</a>' if i else "") + \
              (f' <a href="/posts/post-{i + 1:05d}/" rel="next">Next</a>' if i + 1 < posts else "")
        body = (f'<article class="post"><h1>{html.escape(title)}</h1><p class="byline">By Bench Author, '
                f'<time datetime="{date}">{date[:10]}</time></p>' + "".join(para() for _ in range(rng.randint(4, 8)))
                + f'</article><nav class="post-nav">{nav}</nav><section id="comments"><p>Comments are closed.</p></section>')
        path = root / "posts" / slug
        path.mkdir(parents=True)
        (path / "index.html").write_text(shell(html.escape(title), f"/posts/{slug}/", body, ld))
    for page in range(1, pages + 1):
        items = "".join(
            f'<article class="post"><h2><a href="/posts/post-{i:05d}/">Post {i}</a></h2><p>An excerpt.</p></article>'
            for i in range((page - 1) * PER_PAGE, min(posts, page * PER_PAGE)))
        pager = (f'<a class="prev" href="{"/" if page == 2 else f"/page/{page - 1}/"}">Newer posts</a>' if page > 1 else "") + \
                (f' <a class="next" href="/page/{page + 1}/">Older posts</a>' if page < pages else "")
        path = root if page == 1 else root / "page" / str(page)
        path.mkdir(parents=True, exist_ok=True)
        (path / "index.html").write_text(shell(f"Bench blog, page {page}", "/" if page == 1 else f"/page/{page}/",
                                               items + f'<nav class="pagination">{pager}</nav>'))
    return posts + pages


SERVER = """
import functools, http.server, sys
class Quiet(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stalls
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=sys.argv[1]))
srv.daemon_threads = True
print(srv.server_address[1], flush=True)
srv.serve_forever()
"""

BASELINE = """
import json, sys, time
import scrapy
from scrapy.crawler import CrawlerProcess

class Empty(scrapy.Spider):
    name = "empty"
    def __init__(self, start, **kw):
        super().__init__(**kw)
        self.start_urls = [start]
        self.allowed_domains = ["127.0.0.1"]
    def parse(self, response):
        for href in response.css("a::attr(href)").getall():
            yield response.follow(href, self.parse)

start, per_domain = sys.argv[1], int(sys.argv[2])
settings = {"LOG_LEVEL": "WARNING", "TELNETCONSOLE_ENABLED": False, "ROBOTSTXT_OBEY": True, "HTTPPROXY_ENABLED": False}
if per_domain:  # the crawl rules ours runs with (spiders/settings.py), at crawl_delay_s = 0
    settings.update(CONCURRENT_REQUESTS_PER_DOMAIN=per_domain, AUTOTHROTTLE_ENABLED=True,
                    AUTOTHROTTLE_START_DELAY=0, DOWNLOAD_DELAY=0)
process = CrawlerProcess(settings)
crawler = process.create_crawler(Empty)
process.crawl(crawler, start=start)
process.start()
st = crawler.stats.get_stats()
elapsed = (st["finish_time"] - st["start_time"]).total_seconds()
print(json.dumps({"responses": st.get("response_received_count", 0), "elapsed_s": elapsed}))
"""


def run_child(cmd: list[str], env: dict | None = None) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


# Each measured command runs under a wrapper of its own, so RUSAGE_CHILDREN's peak RSS is that command's.
WRAP = """
import os, resource, subprocess, sys, time, json
t = time.monotonic()
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.monotonic() - t
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
sys.stderr.write(p.stderr)
print(json.dumps({"stdout": p.stdout, "wall_s": wall, "rss_mb": rss, "rc": p.returncode}))
"""


def measured(cmd: list[str], env: dict | None = None) -> dict:
    out = run_child([sys.executable, "-c", WRAP, *cmd], env)
    got = json.loads(out.strip().splitlines()[-1])
    if got["rc"] != 0:
        raise SystemExit(f"{cmd[:4]} exited {got['rc']}")
    return got


def ours(base: str, fetch_per_host: int, pages: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="hustings-bench-crawl-") as data:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUSTINGS_")}
        env.update(HUSTINGS_DATA_DIR=data, HUSTINGS_ALLOW_NETWORKS="127.0.0.1/32", HUSTINGS_CRAWL_DELAY_S="0",
                   HUSTINGS_CRAWL_MAX_PAGES=str(pages * 2 + 10), HUSTINGS_FETCH_PER_HOST=str(fetch_per_host),
                   HUSTINGS_LOG_LEVEL="WARNING", HUSTINGS_CRAWL_DEADLINE_S="3600")
        subprocess.run([sys.executable, "-m", "hustings", "init"], env=env, check=True, capture_output=True)
        subprocess.run([sys.executable, "-m", "hustings", "feeds", "add", base + "/", "--crawl", "--no-check"],
                       env=env, check=True, capture_output=True)
        got = measured([sys.executable, "-m", "spiders.run", "blog", "--feed", "1"], env)
    report = json.loads(got["stdout"].strip().splitlines()[-1])
    return {"responses": report["requests"], "posts": report["new"], "elapsed_s": report["crawl_s"],
            "wall_s": got["wall_s"], "rss_mb": got["rss_mb"]}


def baseline(base: str, per_domain: int) -> dict:
    # From a file, not `-c`: Scrapy reads the callback's source (to warn about generators that return).
    with tempfile.NamedTemporaryFile("w", suffix=".py", prefix="scrapy_empty_") as script:
        script.write(BASELINE)
        script.flush()
        got = measured([sys.executable, script.name, base + "/", str(per_domain)])
    report = json.loads(got["stdout"].strip().splitlines()[-1])
    return {"responses": report["responses"], "posts": None, "elapsed_s": report["elapsed_s"],
            "wall_s": got["wall_s"], "rss_mb": got["rss_mb"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--posts", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--fetch-per-host", type=int, default=2)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hustings-bench-site-") as site:
        pages = write_site(Path(site), args.posts)
        server = subprocess.Popen([sys.executable, "-c", SERVER, site], stdout=subprocess.PIPE, text=True)
        try:
            base = f"http://127.0.0.1:{server.stdout.readline().strip()}"
            print(f"site: {args.posts} posts, {pages} pages at {base}; load before: {os.getloadavg()[0]:.2f}")
            runs: dict[str, list[dict]] = {}
            configs = [("ours", lambda: ours(base, args.fetch_per_host, pages)),
                       (f"scrapy empty, our rules ({args.fetch_per_host}/site)", lambda: baseline(base, args.fetch_per_host)),
                       ("scrapy empty, defaults (8/site)", lambda: baseline(base, 0))]
            for i in range(args.repeat):
                for name, fn in configs:
                    r = fn()
                    r["pages_s"] = r["responses"] / r["elapsed_s"]
                    runs.setdefault(name, []).append(r)
                    print(f"run {i + 1} {name:32s} {r['responses']:5d} responses in {r['elapsed_s']:6.2f} s = "
                          f"{r['pages_s']:6.1f} pages/s; process {r['wall_s']:.2f} s, peak RSS {r['rss_mb']:.0f} MB"
                          + (f"; {r['posts']} posts stored" if r["posts"] is not None else ""), flush=True)
            print(f"\nmedian of {args.repeat} (min-max); load after: {os.getloadavg()[0]:.2f}")
            floor = statistics.median(r["pages_s"] for r in runs[configs[1][0]])
            for name, rs in runs.items():
                rates = [r["pages_s"] for r in rs]
                print(f"{name:32s} {statistics.median(rates):6.1f} pages/s ({min(rates):.1f}-{max(rates):.1f}), "
                      f"ratio to scrapy at the same concurrency {statistics.median(rates) / floor:.2f}, "
                      f"peak RSS {max(r['rss_mb'] for r in rs):.0f} MB, process {statistics.median(r['wall_s'] for r in rs):.2f} s")
        finally:
            server.terminate()
            server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
