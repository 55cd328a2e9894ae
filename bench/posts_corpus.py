"""N realistic stored posts for the search benchmarks, as a Hustings database.

    python3 bench/posts_corpus.py [--posts 100000] [--seed 1]   # build (or find) the cached database

What a post looks like (the research baselines' posts.jsonl, shared/research/perf-baselines.md §3,
re-made here as rows of the ``posts`` table):

* Words come from a Zipf(1.0) vocabulary of about 30,500 terms: common English words, tech and
  blogging words, then a long tail of made-up words from syllables. The top 100 terms are about
  half of all tokens, as in English, which is what index size and query cost depend on. About 15 %
  of sentences carry an accented word (café, Zürich) and 8 % windows-1252 punctuation (—, “”, €).
* Title: 3–9 words. Body: 2,500–3,500 characters of text (mean about 3,000) as simple blog HTML:
  <p> paragraphs with a few links, <em>, <strong> and <code>, now and then an <h2> or a list.
  Summary: the first 300 characters of text.
* 200 blogs with titles ("Ana Garcia on Rust", "The Kernel Notebook"), each with 1–3 authors; how
  much a blog posts follows a Zipf curve too. 1–5 tags per post. Published dates spread evenly over
  the 3 years before 2026-11-01; first seen 0–6 hours later.

Every post is drawn from its own seeded generator (seed, post number), so a corpus is the same on
every run and machine, a smaller corpus is a prefix of a larger one, and any post can be made again
without the database (the search benchmark takes its phrase queries from post text this way).

The database is an ordinary Hustings one: ``db.migrate`` (Alembic), then SQLAlchemy Core bulk
inserts into ``feeds`` and ``posts`` with every NOT NULL column filled (key = sha256 of the guid,
change_seq 1..N in id order and the ``post_change`` counter at N, aware UTC datetimes through
UTCDateTime, tags as JSON, content_hash as the store computes it). All posts are visible.
Building 100,000 posts takes a few minutes; the result is cached under /tmp per (N, seed, this
file, the schema revision) and copied for each run, because runs change it.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import random
import shutil
import sys
import tempfile
import time
from bisect import bisect
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CACHE = Path(os.environ.get("HUSTINGS_BENCH_CACHE", Path(tempfile.gettempdir()) / "hustings-bench-posts"))
BLOGS = 200
EPOCH = datetime(2026, 11, 1, tzinfo=timezone.utc)
SPAN_S = 3 * 365 * 86400

COMMON = """the of and to a in is that for it as was with be by on not he this are or his from at which
but have an they you were her she there been one all we their has would when if so no will more what
about up out them can some into only other then time its also new could these two may first any like
now my than people over such very just most made after did many before where well through back years
much way good should because each those how work even get used me three own make here while part
still state every great between might being same another know world year day under long little think
again right old small last found both take thing never down high around general few course end since
against point life without place want set off go better real hand problem fact always often group
number system""".split()

TECH = """python rust golang javascript typescript linux kernel docker kubernetes postgres sqlite mysql
redis nginx apache http https tls api rest graphql json yaml toml xml rss atom feed feeds parser
parsing compiler interpreter runtime async await thread threads process memory cache caching latency
throughput benchmark performance profiling database index search query queries server client browser
frontend backend framework library package module function class method object variable pointer
garbage collector allocation stack heap queue scheduler cron deploy deployment container cluster
network socket protocol encryption security vulnerability patch upgrade migration schema table column
transaction commit branch merge rebase github gitlab review refactor bug bugs crash error exception
logging metrics monitoring alert dashboard grafana prometheus learning model training inference dataset
vector embedding tokenizer emacs vim editor terminal shell bash zsh script scripting regex unicode
encoding decoding html css template templates markdown static generator hugo jekyll wordpress django
flask bottle fastapi whoosh lucene elasticsearch scrapy crawler spider sitemap bandwidth cdn dns ipv6
router firewall raspberry arduino keyboard laptop desktop monitor battery wasm webassembly llvm gcc
clang data code release version users build change issue support feature project write read blog post
design simple fast slow quick easy hard lesson result test tests testing example idea page""".split()

ACCENTED = ["café", "naïve", "résumé", "über", "jalapeño", "façade", "Zürich", "São", "Málaga",
            "fiancée", "déjà", "voilà", "Ångström"]
PUNCT = ["\u2014", "\u201cquoted\u201d", "it\u2019s", "\u20ac42", "\u2026", "\u2122"]
SYLLABLES = ["ka", "lo", "mi", "ren", "tor", "vex", "qua", "zin", "bel", "dar", "fen", "gar", "hul",
             "jor", "kel", "lum", "mor", "nex", "pol", "ras", "sel", "tun", "ulm", "var", "wen", "xor",
             "yel", "zed", "an", "ex", "in", "on", "us"]
FIRST = ["ana", "li", "sam", "olu", "maria", "john", "priya", "jurgen", "chloe", "soren", "fatima",
         "kenji", "ines", "tomas", "amara", "yusuf", "elena", "ravi", "nadia", "pablo"]
LAST = ["garcia", "wei", "patel", "adeyemi", "rossi", "smith", "novak", "muller", "dubois", "kowalski",
        "okafor", "tanaka", "silva", "haddad", "larsen", "moreau", "ivanova", "chen", "byrne", "costa"]
BLOG_NOUNS = ["Notebook", "Journal", "Notes", "Log", "Dispatch", "Workshop", "Garden", "Digest",
              "Field Notes", "Letters", "Bench", "Margin"]


def _vocabulary() -> tuple[list[str], list[float]]:
    r = random.Random(42)
    tail: set[str] = set()
    while len(tail) < 30000:
        tail.add("".join(r.choice(SYLLABLES) for _ in range(r.randint(2, 4))))
    ordered = sorted(tail)
    r.shuffle(ordered)
    seen: set[str] = set()
    vocab = [w for w in COMMON + TECH + ordered if not (w in seen or seen.add(w))]
    cum, total = [], 0.0
    for rank in range(len(vocab)):
        total += 1.0 / (rank + 1)  # Zipf, s = 1.0
        cum.append(total)
    return vocab, cum


VOCAB, CUM = _vocabulary()
MID = VOCAB[len(COMMON) + 150: 3000]  # mid-frequency words: the end of TECH and the head of the tail


def blogs(seed: int) -> list[dict]:
    """The 200 blogs: id (1-based, = feeds.id), title, url, authors, weight (how much it posts)."""
    r = random.Random(f"blogs:{seed}")
    out = []
    for i in range(BLOGS):
        owner = f"{r.choice(FIRST).title()} {r.choice(LAST).title()}"
        topic = r.choice(TECH)
        title = r.choice([f"{owner} on {topic.title()}", f"The {topic.title()} {r.choice(BLOG_NOUNS)}",
                          f"{owner}'s {r.choice(BLOG_NOUNS)}", f"{r.choice(MID).title()} {r.choice(BLOG_NOUNS)}"])
        authors = [owner] + [f"{r.choice(FIRST).title()} {r.choice(LAST).title()}" for _ in range(r.randint(0, 2))]
        out.append(dict(id=i + 1, title=title, slug=f"blog{i:03d}", authors=authors))
    order = list(range(BLOGS))
    r.shuffle(order)  # so the busiest blog is not feed 1
    for rank, i in enumerate(order):
        out[i]["weight"] = 1.0 / (rank + 1) ** 0.8
    return out


class _Words:
    def __init__(self, r: random.Random):
        self.r = r

    def words(self, n: int) -> list[str]:
        return self.r.choices(VOCAB, cum_weights=CUM, k=n)

    def sentence(self) -> str:
        r = self.r
        ws = self.words(r.randint(6, 22))
        if r.random() < 0.15:
            ws.insert(r.randrange(len(ws)), r.choice(ACCENTED))
        if r.random() < 0.08:
            ws.insert(r.randrange(len(ws)), r.choice(PUNCT))
        s = " ".join(ws)
        return s[0].upper() + s[1:] + r.choice(".....?!")


def _inline(r: random.Random, text: str, slug: str) -> str:
    """One paragraph's text as HTML: escaped, with now and then a link, emphasis or code."""
    words = text.split(" ")
    out = [html.escape(w, quote=False) for w in words]
    for _ in range(r.randint(0, 3)):
        i = r.randrange(len(out))
        j = min(len(out), i + r.randint(1, 4))
        kind = r.random()
        if any(x.startswith("<") for x in out[i:j]):
            continue  # no markup inside markup
        span = " ".join(out[i:j])
        if kind < 0.45:
            href = r.choice([f"https://{slug}.example.net/{r.randint(2019, 2026)}/{r.randint(1, 999)}/",
                             f"https://en.example.org/wiki/{words[i].strip('.,?!')}",
                             f"https://github.example.com/{slug}/{r.choice(TECH)}"])
            out[i:j] = [f'<a href="{href}">{span}</a>']
        elif kind < 0.7:
            out[i:j] = [f"<em>{span}</em>"]
        elif kind < 0.85:
            out[i:j] = [f"<strong>{span}</strong>"]
        else:
            out[i] = f"<code>{out[i]}</code>"
    return " ".join(out)


def make_post(seed: int, n: int, blog_list: list[dict] | None = None, cum_blogs: list[float] | None = None) -> dict:
    """Post number n (0-based) of the corpus: plain values, ready for the posts table."""
    blog_list = blog_list or blogs(seed)
    if cum_blogs is None:
        cum_blogs = _cum([b["weight"] for b in blog_list])
    r = random.Random(f"post:{seed}:{n}")
    w = _Words(r)
    blog = blog_list[min(bisect(cum_blogs, r.random() * cum_blogs[-1]), len(blog_list) - 1)]
    title = " ".join(w.words(r.randint(3, 9)))
    title = title[0].upper() + title[1:]
    target = r.randint(2500, 3500)
    paragraphs: list[str] = []
    length = 0
    while length < target:
        p = " ".join(w.sentence() for _ in range(r.randint(2, 6)))
        paragraphs.append(p)
        length += len(p) + 1
    text = " ".join(paragraphs)
    parts = []
    for k, p in enumerate(paragraphs):
        if k and r.random() < 0.08:
            parts.append(f"<h2>{html.escape(' '.join(w.words(r.randint(2, 5))).capitalize(), quote=False)}</h2>")
        if k and r.random() < 0.05:
            items = "".join(f"<li>{html.escape(' '.join(w.words(r.randint(2, 7))), quote=False)}</li>"
                            for _ in range(r.randint(2, 4)))
            parts.append(f"<ul>{items}</ul>")
        parts.append(f"<p>{_inline(r, p, blog['slug'])}</p>")
    published = EPOCH - timedelta(seconds=r.randint(0, SPAN_S))
    first_seen = published + timedelta(seconds=r.randint(0, 6 * 3600))
    tags = sorted(set(r.choices(TECH, k=r.randint(1, 5))))
    url = f"https://{blog['slug']}.example.net/{published:%Y/%m}/{n}-{'-'.join(title.lower().split()[:4])}/"
    summary = text[:300].rsplit(" ", 1)[0] + "…"
    return dict(n=n, feed_id=blog["id"], blog=blog["title"], title=title, author=r.choice(blog["authors"]),
                url=url, content_html="\n".join(parts), text=text, summary=summary, tags=tags,
                published=published, first_seen=first_seen)


def _cum(weights: list[float]) -> list[float]:
    out, t = [], 0.0
    for x in weights:
        t += x
        out.append(t)
    return out


def post_rows(seed: int, start: int, stop: int) -> list[dict]:
    """posts-table rows for posts start..stop-1 (ids start+1..stop)."""
    blog_list = blogs(seed)
    cum_blogs = _cum([b["weight"] for b in blog_list])
    rows = []
    for n in range(start, stop):
        p = make_post(seed, n, blog_list, cum_blogs)
        tags = p["tags"]
        digest = hashlib.sha256("\x00".join((p["title"], p["url"], p["author"], p["content_html"],
                                             "\x1f".join(tags))).encode()).hexdigest()
        rows.append(dict(
            id=n + 1, feed_id=p["feed_id"], key=hashlib.sha256(p["url"].encode()).hexdigest(), guid=p["url"],
            url=p["url"], url_norm=p["url"], title=p["title"], author=p["author"], published=p["published"],
            published_claimed=p["published"], first_seen=p["first_seen"], updated_at=p["first_seen"],
            content_html=p["content_html"], summary=p["summary"], tags=json.dumps(tags), summary_only=False,
            content_hash=digest, change_seq=n + 1,
        ))
    return rows


def _chunk_rows(args: tuple[int, int, int]) -> list[dict]:
    return post_rows(*args)


# --- the database ----------------------------------------------------------------------


def _fingerprint() -> str:
    from aggregator import db

    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(db.head_revision().encode())
    return h.hexdigest()[:10]


def cached_db(posts: int, seed: int, log=print) -> Path:
    """The path of a finished database of `posts` posts (built now if not cached). Do not write to it."""
    target = CACHE / f"posts-{posts}-s{seed}-{_fingerprint()}" / "hustings.sqlite3"
    if target.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix="building-", dir=CACHE))
    started = time.perf_counter()
    build_db(tmp_dir, posts, seed, log)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp_dir / "hustings.sqlite3", target)
    shutil.rmtree(tmp_dir, ignore_errors=True)
    log(f"built {posts:,} posts (seed {seed}) in {time.perf_counter() - started:.0f} s: {target} "
        f"({target.stat().st_size / 1e6:.0f} MB)")
    return target


def build_db(data_dir: Path, posts_n: int, seed: int, log=print) -> None:
    from multiprocessing import get_context

    import sqlalchemy as sa

    from aggregator import db
    from aggregator.settings import Settings

    engine = db.make_engine(Settings(data_dir=data_dir))
    db.migrate(engine)
    now = EPOCH
    with db.writing(engine) as conn:
        conn.execute(sa.insert(db.feeds), [
            dict(id=b["id"], url=f"https://{b['slug']}.example.net/feed.xml", site_url=f"https://{b['slug']}.example.net/",
                 title=b["title"], kind="feed", status="active", next_check_at=now, created_at=now - timedelta(days=1200),
                 updated_at=now)
            for b in blogs(seed)
        ])
    step = 2000
    chunks = [(seed, i, min(i + step, posts_n)) for i in range(0, posts_n, step)]
    done = 0
    with get_context("fork").Pool(min(2, os.cpu_count() or 1)) as pool:  # generating is most of the time
        for rows in pool.imap(_chunk_rows, chunks):
            with db.writing(engine) as conn:
                conn.execute(sa.insert(db.posts), rows)
            done += len(rows)
            if done % 20000 == 0 or done == posts_n:
                log(f"  corpus: {done:,} / {posts_n:,} posts written", flush=True)
    with db.writing(engine) as conn:
        conn.execute(sa.insert(db.counters).values(name="post_change", value=posts_n))
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


def index_cache_dir(posts: int, seed: int, whoosh_version: str) -> Path:
    """Where a data directory with this corpus and its rebuilt index is kept for bench/search.py."""
    from index.schema import SCHEMA_VERSION

    return CACHE / f"indexed-{posts}-s{seed}-{_fingerprint()}-whoosh{whoosh_version}-schema{SCHEMA_VERSION}"


def fresh_data_dir(posts: int, seed: int, parent: Path, log=print) -> Path:
    """A new data directory holding a copy of the cached database (and no index)."""
    source = cached_db(posts, seed, log)
    data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=parent))
    shutil.copyfile(source, data_dir / "hustings.sqlite3")
    return data_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--posts", type=int, default=100000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--show", type=int, metavar="N", help="print post N (0-based) and exit")
    args = p.parse_args(argv)
    if args.show is not None:
        post = make_post(args.seed, args.show)
        print(json.dumps({k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in post.items()},
                         indent=2, ensure_ascii=False))
        return 0
    print(cached_db(args.posts, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
