"""The peer for bench/search.py: the same queries on the same posts with SQLite FTS5.

    python3 bench/search_fts5.py DATA_DIR      # build (or find) the FTS5 copy of DATA_DIR's posts

The FTS5 table holds what our index matches on: title, body (the same plain text,
``aggregator.sanitize.html_to_text``), tags, author and blog name, with the Porter
tokenizer (as our English stemming), plus the blog id and date unindexed for counts and
sorting. It is built once per data directory, into ``fts5.sqlite3`` beside it, and its build
time is kept in ``fts5.json``.

Each query is translated to FTS5's syntax (words AND-ed within title, body and tags;
"phrases"; title:, author:, blog:, tag: as column filters) and answered with the same work as
ours: the top 10 by bm25 with title weighted 2 (or the 10 newest), a snippet of the body with
matches in <mark>, and the per-blog counts (whose sum is the exact total).
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FIELD = re.compile(r"^(title|author|blog|tag|tags):(\S+)$")
COLUMNS = {"title": "title", "author": "author", "blog": "blog", "tag": "tags", "tags": "tags"}
TOP = """SELECT rowid, title, snippet(posts_fts, 1, '<mark>', '</mark>', '…', 32) FROM posts_fts
         WHERE posts_fts MATCH ? ORDER BY {order} LIMIT 10"""
RELEVANCE = "bm25(posts_fts, 2.0, 1.0, 1.0, 1.0, 1.0)"  # title counts twice, as in our schema
COUNTS = "SELECT feed_id, count(*) FROM posts_fts WHERE posts_fts MATCH ? GROUP BY feed_id"


def fts5_path(data_dir: Path) -> Path:
    return Path(data_dir).parent / (Path(data_dir).name + "-fts5.sqlite3")


def build(data_dir: Path, log=print) -> dict:
    """The FTS5 copy of data_dir's posts (built now if missing): {path, build_s, mb}."""
    target = fts5_path(data_dir)
    meta = target.with_suffix(".json")
    if target.exists() and meta.exists():
        return json.loads(meta.read_text())
    from aggregator.sanitize import html_to_text

    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    log(f"building the FTS5 peer of {data_dir} (a few minutes) ...", flush=True)
    source = sqlite3.connect(f"file:{Path(data_dir) / 'hustings.sqlite3'}?mode=ro", uri=True)
    started = time.perf_counter()
    out = sqlite3.connect(tmp)
    out.execute("PRAGMA journal_mode=OFF")
    out.execute("""CREATE VIRTUAL TABLE posts_fts USING fts5(title, body, tags, author, blog,
                   feed_id UNINDEXED, published UNINDEXED, tokenize='porter unicode61')""")
    rows = source.execute("""SELECT p.id, p.title, p.content_html, p.tags, p.author, f.title, p.feed_id, p.published
                             FROM posts p JOIN feeds f ON f.id = p.feed_id
                             WHERE p.hidden = 0 AND p.deleted = 0 AND p.duplicate_of IS NULL ORDER BY p.id""")
    batch = []
    for pid, title, content, tags, author, blog, feed_id, published in rows:
        batch.append((pid, title or "", html_to_text(content or ""), " ".join(json.loads(tags or "[]")),
                      author or "", blog or "", feed_id, published))
        if len(batch) == 2000:
            out.executemany("INSERT INTO posts_fts(rowid, title, body, tags, author, blog, feed_id, published) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch)
            batch = []
    if batch:
        out.executemany("INSERT INTO posts_fts(rowid, title, body, tags, author, blog, feed_id, published) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch)
    out.execute("INSERT INTO posts_fts(posts_fts) VALUES ('optimize')")
    out.commit()
    out.close()
    build_s = time.perf_counter() - started
    tmp.rename(target)
    info = {"path": str(target), "build_s": round(build_s, 1), "mb": round(target.stat().st_size / 1e6, 1)}
    meta.write_text(json.dumps(info))
    log(f"  FTS5 built in {build_s:.0f} s, {info['mb']:,.0f} MB", flush=True)
    return info


def translate(query: str) -> str:
    """Our query syntax (as bench/search.py writes it) in FTS5's."""
    out = []
    for part in re.findall(r'"[^"]*"|\S+', query):
        m = FIELD.match(part)
        if m:
            out.append(f'{COLUMNS[m.group(1)]} : "{m.group(2)}"')
        elif part.startswith('"'):
            out.append("{title body tags} : " + part)
        else:
            out.append('{title body tags} : "' + part.replace('"', "") + '"')
    return " AND ".join(out)


def measure(path: str, queries: list[tuple[str, str]], reps: int) -> dict:
    """Per-query median ms of top 10 + snippets + per-blog counts, by relevance and by newest."""
    import statistics

    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    translated = [translate(q) for _, q in queries]
    out = {}
    for sort, order in (("relevance", RELEVANCE), ("newest", "published DESC")):
        sql = TOP.format(order=order)
        passes, cpus = [], []
        for k in range(reps + 1):  # the first is a warm-up
            lat, cpu, totals = [], [], []
            for match in translated:
                c, t = time.process_time(), time.perf_counter()
                con.execute(sql, (match,)).fetchall()
                counts = con.execute(COUNTS, (match,)).fetchall()
                lat.append((time.perf_counter() - t) * 1000)
                cpu.append((time.process_time() - c) * 1000)
                totals.append(sum(n for _, n in counts))
            if k:
                passes.append(lat)
                cpus.append(cpu)
        out[sort] = [statistics.median(x) for x in zip(*passes)]
        out[sort + "_cpu"] = [statistics.median(x) for x in zip(*cpus)]
        out[sort + "_totals"] = totals
    lat = []  # the least FTS5 can do: the top 10 and their snippets, no total, no counts
    sql = TOP.format(order=RELEVANCE)
    for k in range(reps + 1):
        for i, match in enumerate(translated):
            t = time.perf_counter()
            con.execute(sql, (match,)).fetchall()
            if k:
                lat.append((i, (time.perf_counter() - t) * 1000))
    out["top_only"] = [statistics.median(ms for j, ms in lat if j == i) for i in range(len(translated))]
    con.close()
    return out


if __name__ == "__main__":
    print(json.dumps(build(Path(sys.argv[1]))))
