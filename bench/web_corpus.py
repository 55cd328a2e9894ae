"""A data directory for the web benchmark: N posts from 60 blogs over 30 days, stored and indexed.

    python3 bench/web_corpus.py [--posts 10000] [--seed 1]   # build (or find) the cached data directory

What it holds (all deterministic for a seed):

* 60 blogs (``feed_store.add_feed``): one prolific blog writes about a fifth of the posts, the other 59
  follow a Zipf-like curve from a few a day to a handful a month. Titles like "Ana Garcia on Rust"
  or "The Kernel Notebook", each in a category, with 1–3 authors. Feed URLs point at 127.0.0.1:9
  (nothing listens there) and every feed's next check is in 2100, so ``hustings run``'s scheduler
  never fetches during a benchmark.
* Posts, saved the way the fetch pipeline saves them: ``post_store.save_posts`` one batch per blog per
  hour of simulated fetching, with ``now`` = that hour, so first_seen is spread over the 30 days
  before the build (what the ranking reads), and published (the feed's claim) is 0–6 hours earlier.
  Titles are headline-like ("Why we moved our queue from Redis to Postgres", "Week notes #12"),
  bodies are about 3 KB of blog HTML (paragraphs with links, emphasis and code, now and then a
  heading or a list: bench/posts_corpus.py's Zipf vocabulary), summaries the first 300 characters
  of text, 1–4 tags.
* Recommendations (``posts.recommendations``): about 40 % of posts have some, from a heavy-tailed
  (Pareto) distribution, a few in the hundreds; each change bumps the post's change number as the
  store does. Three editor's picks (``moderation.feature_post``).
* The search index, made by ``index.writer.sync`` (the web app opens a Searcher at start-up).

Built once per (N, seed, this file, the schema revision, the index schema) under
/tmp/hustings-bench-web/ and copied for each benchmark run (a run's servers write WAL files and
take locks there). 10,000 posts take 2–6 minutes, most of it indexing.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# bench/index.py would shadow the project's `index` package: the project goes first.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))
sys.path.append(str(HERE))

import posts_corpus as pc  # the vocabulary and the paragraph maker

from aggregator import feed_store, post_store
from community import moderation

CACHE = Path(os.environ.get("HUSTINGS_BENCH_WEB_CACHE", Path(tempfile.gettempdir()) / "hustings-bench-web"))
BLOGS = 60
PROLIFIC_SHARE = 0.2
DAYS = 30
PICKS = 3
NEVER = datetime(2100, 1, 1, tzinfo=timezone.utc)

CATEGORIES = ["Programming", "Operations", "Data", "The web", "Hardware", "Essays"]

HEADLINES = [
    "Why we moved our {t} from {T} to {T2}",
    "How I cut {t} latency by {n} %",
    "Notes on {t} and {t2}",
    "What I learned running {T} in production for {n} months",
    "A week with {T}",
    "The case for boring {t}",
    "Debugging a {t} {t2} at three in the morning",
    "Week notes #{n}",
    "Reading list: {month}",
    "{T} {v} is out: what changed",
    "On {m} and {m2}",
    "Ten things I wish I had known about {T}",
    "Stop writing your own {t}",
    "A small {t} for {t2}, in {n} lines",
    "Why is my {t} slow?",
    "{T} vs {T2}: a benchmark nobody asked for",
    "Migrating {n},000 {t} rows without downtime",
    "The {m} problem, revisited",
    "Things I got wrong about {t}",
    "Building a {t} {t2} on a Raspberry Pi",
    "An introduction to {t} for {T} people",
    "Postmortem: the {t} outage of {month}",
    "Is {T} still worth learning in {year}?",
    "Fixing {t} {t2} the hard way",
]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]


def _fingerprint() -> str:
    from aggregator import db
    from index import schema

    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(Path(pc.__file__).read_bytes())
    h.update(db.head_revision().encode())
    h.update(str(getattr(schema, "SCHEMA_VERSION", "")).encode())
    return h.hexdigest()[:10]


def blogs(seed: int) -> list[dict]:
    """The 60 blogs; weight is the share of posts each writes (blog 0 is the prolific one)."""
    r = random.Random(f"web-blogs:{seed}")
    out, names = [], set()
    for i in range(BLOGS):
        while True:
            owner = f"{r.choice(pc.FIRST).title()} {r.choice(pc.LAST).title()}"
            topic = r.choice(pc.TECH)
            title = r.choice([f"{owner} on {topic.title()}", f"The {topic.title()} {r.choice(pc.BLOG_NOUNS)}",
                              f"{owner}'s {r.choice(pc.BLOG_NOUNS)}"])
            if title not in names:
                names.add(title)
                break
        authors = [owner] + [f"{r.choice(pc.FIRST).title()} {r.choice(pc.LAST).title()}"
                             for _ in range(r.choice([0, 0, 0, 1, 2]))]
        out.append(dict(n=i, title=title, slug=f"blog{i:02d}", authors=authors, category=r.choice(CATEGORIES)))
    quiet = [1.0 / (rank + 1) ** 0.9 for rank in range(BLOGS - 1)]
    total = sum(quiet)
    out[0]["weight"] = PROLIFIC_SHARE
    for b, w in zip(out[1:], quiet):
        b["weight"] = (1 - PROLIFIC_SHARE) * w / total
    return out


def _title(r: random.Random) -> str:
    tech = [w for w in pc.TECH if len(w) > 2]

    def cap(w: str) -> str:
        return w if not w.islower() else (w.upper() if len(w) <= 3 else w.title())

    t, t2 = r.sample(tech, 2)
    return r.choice(HEADLINES).format(
        t=t, t2=t2, T=cap(t), T2=cap(t2), n=r.randint(2, 60), month=r.choice(MONTHS),
        m=r.choice(pc.MID), m2=r.choice(pc.MID), v=f"{r.randint(1, 9)}.{r.randint(0, 20)}",
        year=r.randint(2024, 2027))


def make_post(seed: int, n: int, blog: dict) -> dict:
    """Post number n of the corpus as plain values (without first_seen, which the saving sets)."""
    r = random.Random(f"web-post:{seed}:{n}")
    w = pc._Words(r)
    target = r.randint(2600, 3200)  # HTML characters, about 3 KB
    paragraphs, parts, size = [], [], 0
    while size < target:
        p = " ".join(w.sentence() for _ in range(r.randint(2, 5)))
        paragraphs.append(p)
        if len(parts) > 1 and r.random() < 0.1:
            parts.append(f"<h2>{html.escape(' '.join(w.words(r.randint(2, 5))).capitalize(), quote=False)}</h2>")
        if len(parts) > 1 and r.random() < 0.06:
            parts.append("<ul>" + "".join(f"<li>{html.escape(' '.join(w.words(r.randint(2, 7))), quote=False)}</li>"
                                          for _ in range(r.randint(2, 4))) + "</ul>")
        parts.append(f"<p>{pc._inline(r, p, blog['slug'])}</p>")
        size = sum(len(x) + 1 for x in parts)
    text = " ".join(paragraphs)
    title = _title(r)
    return dict(
        title=title, author=r.choice(blog["authors"]), content_html="\n".join(parts),
        summary=text[:300].rsplit(" ", 1)[0] + "…",
        tags=tuple(sorted(set(r.choices(pc.TECH, k=r.randint(1, 4))))),
        url=f"https://{blog['slug']}.example.net/{n}-{'-'.join(title.lower().split()[:5]).strip('?:,')}/",
        claimed_lag_s=r.randint(0, 6 * 3600),
    )


def build(data_dir: Path, posts_n: int, seed: int, log=print) -> dict:
    """Build the corpus in data_dir (which must be new). Returns what was built."""
    import sqlalchemy as sa

    from aggregator import db
    from aggregator.models import Post
    from aggregator.settings import Settings
    from index import writer

    settings = Settings(data_dir=data_dir)
    engine = db.make_engine(settings)
    db.migrate(engine)
    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=DAYS)
    blog_list = blogs(seed)
    feeds = {}
    for b in blog_list:
        feed, _ = feed_store.add_feed(engine, f"http://127.0.0.1:9/{b['slug']}/feed.xml", title=b["title"],
                                 site_url=f"https://{b['slug']}.example.net/", category=b["category"],
                                 now=start - timedelta(days=90))
        feeds[b["n"]] = feed
    with db.writing(engine) as conn:  # never due: `hustings run` must not fetch during a benchmark
        conn.execute(sa.update(db.feeds).values(next_check_at=NEVER))

    # Which blog writes each post, and the hour it is first seen (uniform over the 30 days).
    r = random.Random(f"web-layout:{seed}")
    cum, t = [], 0.0
    for b in blog_list:
        t += b["weight"]
        cum.append(t)
    hours = DAYS * 24
    batches: dict[tuple[int, int], list[int]] = {}
    for n in range(posts_n):
        k = _pick(cum, r.random() * cum[-1])
        batches.setdefault((r.randrange(hours), k), []).append(n)
    t0 = time.perf_counter()
    saved = 0
    for (hour, k), numbers in sorted(batches.items()):
        blog = blog_list[k]
        fetched_at = start + timedelta(hours=hour, minutes=r.randint(0, 59), seconds=r.randint(0, 59))
        batch = []
        for n in numbers:
            p = make_post(seed, n, blog)
            batch.append(Post(feeds[k].id, p["url"], p["url"], p["title"], p["content_html"],
                              published=fetched_at - timedelta(seconds=p["claimed_lag_s"]), author=p["author"],
                              summary=p["summary"], tags=p["tags"], identity=f"g:{p['url']}"))
        saved += post_store.save_posts(engine, feeds[k], batch, now=fetched_at).new
        if saved % 2500 < len(numbers):
            log(f"  corpus: {saved:,} / {posts_n:,} posts saved", flush=True)
    save_s = time.perf_counter() - t0

    # Recommendations: 40 % of posts, heavy-tailed; each change numbered as the store numbers changes.
    r = random.Random(f"web-recs:{seed}")
    with db.reading(engine) as conn:
        ids = [row.id for row in conn.execute(sa.select(db.posts.c.id).order_by(db.posts.c.id))]
    recs = {i: min(900, int(r.paretovariate(1.1))) for i in ids if r.random() < 0.4}
    with db.writing(engine) as conn:
        seq = db.next_counter(conn, db.CHANGE_COUNTER, len(recs))
        conn.execute(sa.update(db.posts).where(db.posts.c.id == sa.bindparam("pid"))
                     .values(recommendations=sa.bindparam("recs"), change_seq=sa.bindparam("seq")),
                     [dict(pid=i, recs=v, seq=seq + j) for j, (i, v) in enumerate(sorted(recs.items()))])
    for j, i in enumerate(r.sample(ids[-300:], PICKS)):  # recent posts, picked a few hours apart
        moderation.feature_post(engine, i, actor="bench", now=end - timedelta(hours=3 * j))

    t1 = time.perf_counter()
    report = writer.sync(engine, settings)
    index_s = time.perf_counter() - t1
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return dict(posts=saved, blogs=BLOGS, recommended=len(recs), max_recommendations=max(recs.values(), default=0),
                picks=PICKS, save_s=save_s, index_s=index_s, indexed=report.indexed, end=end.isoformat())


def _pick(cum: list[float], x: float) -> int:
    from bisect import bisect_left

    return min(len(cum) - 1, bisect_left(cum, x))


def cached(posts_n: int, seed: int, log=print) -> Path:
    """The path of a finished data directory (built now if not cached). Copy it before use."""
    target = CACHE / f"web-{posts_n}-s{seed}-{_fingerprint()}"
    if (target / "DONE").exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="building-", dir=CACHE))
    started = time.perf_counter()
    log(f"building the web corpus: {posts_n:,} posts (seed {seed}) in {target}", flush=True)
    info = build(tmp / "data", posts_n, seed, log)
    (tmp / "DONE").write_text(repr(info) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    log(f"built in {time.perf_counter() - started:.0f} s (saving {info['save_s']:.0f} s, indexing "
        f"{info['index_s']:.0f} s): {info}", flush=True)
    return target


def fresh_copy(posts_n: int, seed: int, parent: Path, log=print) -> Path:
    """A new data directory with a copy of the cached corpus (database and index)."""
    source = cached(posts_n, seed, log) / "data"
    dest = Path(tempfile.mkdtemp(prefix="web-data-", dir=parent)) / "data"
    shutil.copytree(source, dest, symlinks=True, ignore=shutil.ignore_patterns("*.lock", "*-wal", "*-shm"))
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--posts", type=int, default=10000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--show", type=int, metavar="N", help="print post N of blog 0 and exit")
    args = p.parse_args(argv)
    if args.show is not None:
        print(make_post(args.seed, args.show, blogs(args.seed)[0]))
        return 0
    print(cached(args.posts, args.seed) / "data")
    return 0


if __name__ == "__main__":
    sys.exit(main())
