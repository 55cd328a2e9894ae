"""Ingest benchmark: the real `hustings fetch` path against the floor of its two libraries.
Long because ours and the libraries' floor must run on the same generated feeds in the same run, with the profiler option beside them.

    python3 bench/ingest.py [--size heavy|ordinary] [--feeds 300] [--entries 20] [--seed 1] [--repeat 3] [--py-spy]

1. Writes N synthetic feeds (bench/feedgen_corpus.py) to a temporary directory.
2. Serves them from a separate process on 127.0.0.1 (an ephemeral port), so the
   server's work does not take the measured process's GIL. Nothing but loopback
   is ever contacted.
3. "Ours": for each sanitiser (nh3, the default, then bleach) a fresh data
   directory gets `hustings init` and every feed URL (untimed), then
   `python -m hustings fetch --all --json --no-progress --no-index` runs as a subprocess
   (search indexing is measured by bench/index.py)
   with HUSTINGS_DATA_DIR and HUSTINGS_ALLOW_NETWORKS=127.0.0.0/8.
   posts/s = new_posts from its JSON / the subprocess's wall time (start-up
   included); peak memory is the subprocess's VmHWM, polled while it runs.
4. "Floor", in this process, on one core, on the same bytes: feedparser.parse
   with sanitising and relative-URI resolution off (the options Hustings uses),
   then nh3.clean on each entry's body with a blog allow-list and
   ``url_relative=rewrite_with_base`` (the two jobs feedparser was told to skip).
   floor posts/s = entries / wall time. bleach's Cleaner with the same
   allow-list is timed beside it, for the record, on every 5th body
   (--bleach-every) because it is about 20x slower.
5. ratio = ours (nh3) / floor. Target: >= 0.8.

Also printed: the fixed cost of a `hustings fetch` with no feeds (interpreter,
imports, database open), and a per-stage CPU breakdown from one extra run of
the same command in a child process whose stage functions are wrapped with
per-thread CPU timers (--no-stages to skip). --py-spy samples one more run of
the real command, parse processes and threads included, with py-spy (a sampling
profiler: it does not slow the code it watches) and prints the samples per
process and the top functions, inclusive and by own time.

--repeat K runs each measurement K times (interleaved) and reports the median
and the range. Each measurement also reports the CPU that other processes used
meanwhile (this VM is shared); --wait-quiet S waits for them to settle first. Timings are reported, never asserted: the exit status is 0
unless a run failed outright.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(HERE), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import feedgen_corpus
from measuring import BUSY_CORES, code_version, machine_busy_s, process_cpu_s, spread, wait_quiet

CODE = ("aggregator", "hustings")  # the folders whose changes the figures are about

from aggregator import feed_store

LOOPBACK = "127.0.0.1"
ALLOW = "127.0.0.0/8"
HUSTINGS = [sys.executable, "-m", "hustings"]

# The floor's allow-list: about what a blog needs, as in the research baselines (4.2).
FLOOR_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "div", "dl", "dt",
    "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd",
    "li", "mark", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}
FLOOR_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title", "width", "height"},
                    "blockquote": {"cite"}, "q": {"cite"}, "td": {"colspan", "rowspan"},
                    "th": {"colspan", "rowspan"}, "abbr": {"title"}}
FLOOR_SCHEMES = {"http", "https", "mailto"}


# --- the feed server (runs in its own process) -------------------------------------------


def serve(corpus_dir: Path) -> None:
    """Serve corpus_dir's feeds from memory on 127.0.0.1; print the port, then serve for ever."""
    import http.server
    import zlib

    files = {}
    for f in feedgen_corpus.read_manifest(corpus_dir):
        data = (corpus_dir / f.name).read_bytes()
        files["/" + f.name] = (data, f.content_type, f'"{zlib.crc32(data):08x}"')
    stamp = "Mon, 16 Nov 2026 08:00:00 GMT"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hit = files.get(self.path.split("?", 1)[0])
            if hit is None:
                self.send_error(404)
                return
            data, ctype, etag = hit
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", stamp)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 128
        daemon_threads = True

    server = Server((LOOPBACK, 0), Handler)
    print(server.server_port, flush=True)
    server.serve_forever()


class FeedServer:
    """The serve() process, started and stopped by the benchmark."""

    def __init__(self, corpus_dir: Path):
        self.proc = subprocess.Popen([sys.executable, __file__, "--_child", "serve", "--corpus", str(corpus_dir)],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            self.proc.kill()
            raise SystemExit(f"the feed server did not start (said {line!r})")
        self.base = f"http://{LOOPBACK}:{int(line)}/"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


# --- other load on the machine (Linux /proc) -------------------------------------------



class Meter:
    """How much CPU the rest of the machine used while one measurement ran.

    This VM is shared: a test run elsewhere takes a core and halves a figure. Each
    measurement reports the cores used by everything except itself and the feed server.
    """

    def __init__(self, server_pid: int):
        self.server_pid = server_pid

    def start(self) -> None:
        self.t0, self.busy0, self.server0 = time.perf_counter(), machine_busy_s(), process_cpu_s(self.server_pid)

    def stop(self, own_cpu_s: float) -> dict:
        wall = time.perf_counter() - self.t0
        busy = machine_busy_s()
        server = process_cpu_s(self.server_pid) - self.server0
        if busy is None or self.busy0 is None:
            return dict(server_cpu=server, others_cores=float("nan"))
        return dict(server_cpu=server, others_cores=max(0.0, (busy - self.busy0 - own_cpu_s - server) / wall))


# --- running the real command ----------------------------------------------------------


def child_env(data_dir: Path, sanitizer: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUSTINGS_")}
    env.update(HUSTINGS_DATA_DIR=str(data_dir), HUSTINGS_ALLOW_NETWORKS=ALLOW, HUSTINGS_SANITIZER=sanitizer)
    return env


def _peak_rss_kb(pid: int) -> int | None:
    """VmHWM: the peak resident set of pid's own memory since its exec (Linux)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of pid and all its descendants now (the parse pool's workers are grandchildren)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                total += next((int(l.split()[1]) for l in fh if l.startswith("VmRSS:")), 0)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            pass
    return total


def run_timed(cmd: list[str], env: dict[str, str]) -> dict:
    """Run cmd; its wall time, exit code, CPU seconds, peak RSS (MB) and output.

    Peak RSS is the larger of the child's VmHWM and the most the child and its own
    children (the parse processes) held together at any 20 ms poll.
    rusage's ru_maxrss is no good here: a child started with vfork, as subprocess
    does, inherits the benchmark's own high-water mark, which the corpus inflates.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        peak = [0]
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                kb = max(_peak_rss_kb(proc.pid) or 0, _tree_rss_kb(proc.pid))
                peak[0] = max(peak[0], kb)
                done.wait(0.02)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not all children's
        wall = time.perf_counter() - started
        done.set()
        watcher.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return dict(wall=wall, rc=proc.returncode, cpu=usage.ru_utime + usage.ru_stime,
                    user=usage.ru_utime, sys=usage.ru_stime, rss_mb=(peak[0] or usage.ru_maxrss) / 1024,
                    stdout=out.read().decode("utf-8", "replace"), stderr=err.read().decode("utf-8", "replace"))


def fresh_data_dir(parent: Path, urls: list[str], sanitizer: str) -> Path:
    """A new data directory: `hustings init`, then every feed added (not timed)."""
    from aggregator import db
    from aggregator.settings import Settings

    data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=parent))
    done = run_timed(HUSTINGS + ["init", "--json"], child_env(data_dir, sanitizer))
    if done["rc"] != 0:
        raise SystemExit(f"hustings init failed:\n{done['stderr']}")
    engine = db.make_engine(Settings(data_dir=data_dir))
    try:
        for url in urls:
            feed_store.add_feed(engine, url)
    finally:
        engine.dispose()
    return data_dir


def measure_ours(work: Path, urls: list[str], sanitizer: str, extra: list[str], meter: Meter) -> dict:
    data_dir = fresh_data_dir(work, urls, sanitizer)
    cmd = HUSTINGS + [a for s in extra for a in ("--set", s)] + ["fetch", "--all", "--json", "--no-progress", "--no-index"]
    meter.start()
    run = run_timed(cmd, child_env(data_dir, sanitizer))
    load = meter.stop(run["cpu"])
    shutil.rmtree(data_dir, ignore_errors=True)
    if run["rc"] != 0:
        raise SystemExit(f"hustings fetch exited {run['rc']}:\n{run['stderr'][-3000:]}")
    summary = json.loads(run["stdout"])
    failures = [r for r in summary["results"] if r["result"] != "ok"]
    return dict(wall=run["wall"], cpu=run["cpu"], rss_mb=run["rss_mb"], posts=summary["new_posts"],
                feeds_ok=summary["ok"], failed=len(failures),
                first_failure=(failures[0]["error"] if failures else ""),
                posts_s=summary["new_posts"] / run["wall"], **load)


def measure_fixed_cost(work: Path, extra: list[str]) -> dict:
    """`hustings fetch --all` over an empty feed list: start-up, imports, database open."""
    data_dir = fresh_data_dir(work, [], "nh3")
    cmd = HUSTINGS + [a for s in extra for a in ("--set", s)] + ["fetch", "--all", "--json", "--no-progress", "--no-index"]
    run = run_timed(cmd, child_env(data_dir, "nh3"))
    shutil.rmtree(data_dir, ignore_errors=True)
    return dict(wall=run["wall"], cpu=run["cpu"], rss_mb=run["rss_mb"])


# --- the floor, in this process ----------------------------------------------------------


def load_bytes(corpus_dir: Path) -> list[tuple[bytes, dict]]:
    """Each feed's bytes and the response headers feedparser is given, as parse.py gives them.

    parse.py passes the Content-Type and, on purpose, no Content-Location (links are made
    absolute afterwards), so the floor does the same.
    """
    return [((corpus_dir / f.name).read_bytes(), {"content-type": f.content_type})
            for f in feedgen_corpus.read_manifest(corpus_dir)]


def _body(entry) -> tuple[str, str]:
    """(the fullest HTML the entry has, the URL its relative links resolve against)."""
    contents = [c for c in entry.get("content") or [] if c.get("value")]
    chosen = max(contents, key=lambda c: len(c["value"])) if contents else entry.get("summary_detail") or {}
    return chosen.get("value", ""), chosen.get("base") or entry.get("link", "")


def measure_floor(feeds: list[tuple[bytes, dict]], bleach_every: int, meter: Meter) -> dict:
    """feedparser (sanitise and resolve off) + nh3 per entry, on one core; bleach on every Nth body."""
    import feedparser
    import nh3

    meter.start()
    cpu0 = time.process_time()
    parse_s = clean_s = 0.0
    n = 0
    bodies: list[str] = []
    started = time.perf_counter()
    for data, headers in feeds:
        t0 = time.perf_counter()
        result = feedparser.parse(io.BytesIO(data), response_headers=headers, sanitize_html=False,
                                  resolve_relative_uris=False)
        t1 = time.perf_counter()
        for entry in result.entries:
            value, base = _body(entry)
            nh3.clean(value, tags=FLOOR_TAGS, attributes=FLOOR_ATTRIBUTES, url_schemes=FLOOR_SCHEMES,
                      url_relative=("rewrite_with_base", base) if base.startswith("http") else "deny")
            if bleach_every and n % bleach_every == 0:
                bodies.append(value)
            n += 1
        t2 = time.perf_counter()
        parse_s += t1 - t0
        clean_s += t2 - t1
    wall = time.perf_counter() - started
    out = dict(posts=n, wall=wall, posts_s=n / wall, parse_s=parse_s, nh3_s=clean_s,
               parse_posts_s=n / parse_s, nh3_posts_s=n / clean_s, **meter.stop(time.process_time() - cpu0))
    if bodies:
        import bleach

        cleaner = bleach.Cleaner(tags=FLOOR_TAGS, attributes=FLOOR_ATTRIBUTES, protocols=FLOOR_SCHEMES, strip=True)
        t0 = time.perf_counter()
        for value in bodies:
            cleaner.clean(value)
        bleach_s = time.perf_counter() - t0
        per_post = bleach_s / len(bodies)
        out.update(bleach_s=bleach_s, bleach_sample=len(bodies), bleach_posts_s=1 / per_post,
                   bleach_floor_posts_s=n / (parse_s + n * per_post))
    return out


# --- where the time goes: per-stage CPU timers in-process, and py-spy on the real command ---

STAGES = [
    # (label, module, attribute, indent)
    ("gather (fetch, parse, sanitise; per feed)", "aggregator.pipeline", "gather", 0),
    ("fetch.fetch (HTTP GET, loopback)", "aggregator.fetch", "fetch", 1),
    ("parse.parse_feed", "aggregator.parse", "parse_feed", 1),
    ("feedparser.parse", "feedparser", "parse", 2),
    ("sanitize.sanitize_post", "aggregator.sanitize", "sanitize_post", 1),
    ("engine clean (prepass + nh3/bleach)", None, "clean", 2),
    ("prepass (lxml rewrite)", "aggregator.sanitize", "prepass", 3),
    ("html_to_text (summary)", "aggregator.sanitize", "html_to_text", 2),
    ("store (several feeds a transaction)", "aggregator.pipeline", "store", 0),
    ("post_store.save_posts_in", "aggregator.post_store", "save_posts_in", 1),
]


def _stages_child(out_path: Path) -> None:
    import importlib

    from aggregator import sanitize
    from hustings import cli

    totals: dict[str, list[float]] = {label: [0.0, 0] for label, *_ in STAGES}
    lock = threading.Lock()

    def timed(label, fn):
        def wrapper(*args, **kwargs):
            t0 = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.thread_time() - t0
                with lock:
                    totals[label][0] += spent
                    totals[label][1] += 1
        return wrapper

    for label, module, attr, _ in STAGES:
        if module:
            mod = importlib.import_module(module)
            setattr(mod, attr, timed(label, getattr(mod, attr)))
    clean_label = next(label for label, module, *_ in STAGES if module is None)
    real_sanitizer = sanitize.sanitizer
    sanitize.sanitizer = lambda settings: timed(clean_label, real_sanitizer(settings))

    cpu0 = time.process_time()
    with open(os.devnull, "w") as devnull:
        stdout, sys.stdout = sys.stdout, devnull
        try:
            rc = cli.main(["fetch", "--all", "--json", "--no-progress", "--no-index"])
        finally:
            sys.stdout = stdout
    out_path.write_text(json.dumps(dict(rc=rc, command_cpu=time.process_time() - cpu0, stages=totals)))


def measure_stages(work: Path, urls: list[str], sanitizer: str, extra: list[str]) -> dict:
    data_dir = fresh_data_dir(work, urls, sanitizer)
    out = work / f"stages-{sanitizer}.json"
    # Timers only see this process: keep parsing and sanitising in it (no parse pool), so
    # this run shows where the CPU goes per stage, not how fast the real command is.
    extra = list(extra) + ["parse_processes=1"]
    cmd = [sys.executable, __file__, "--_child", "stages", "--out", str(out)] + [a for s in extra for a in ("--set", s)]
    run = run_timed(cmd, child_env(data_dir, sanitizer))
    shutil.rmtree(data_dir, ignore_errors=True)
    if run["rc"] != 0 or not out.exists():
        raise SystemExit(f"the per-stage run failed:\n{run['stderr'][-3000:]}")
    data = json.loads(out.read_text())
    data.update(wall=run["wall"], process_cpu=run["cpu"])
    return data


def run_py_spy(work: Path, urls: list[str], sanitizer: str, extra: list[str], rate: int) -> Path:
    """The real command, parse processes included, sampled by py-spy; returns its raw stacks."""
    spy = shutil.which("py-spy")
    if not spy:
        raise SystemExit("--py-spy needs py-spy: python3 -m pip install py-spy (or the [bench] extra)")
    data_dir = fresh_data_dir(work, urls, sanitizer)
    out = work / f"py-spy-{sanitizer}.txt"
    cmd = [spy, "record", "--subprocesses", "--rate", str(rate), "--format", "raw", "--nonblocking",
           "--output", str(out), "--"]
    cmd += HUSTINGS + [a for s in extra for a in ("--set", s)] + ["fetch", "--all", "--json", "--no-progress", "--no-index"]
    run = run_timed(cmd, child_env(data_dir, sanitizer))
    shutil.rmtree(data_dir, ignore_errors=True)
    if run["rc"] != 0 or not out.exists():
        raise SystemExit(f"the py-spy run failed:\n{run['stderr'][-3000:]}")
    return out


def _frame_name(frame: str) -> str:
    """'save_posts (/x/aggregator/post_store.py:120)' -> 'save_posts (aggregator/post_store.py)'."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3", str(ROOT) + "/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where})" if where else name


def summarise_py_spy(raw: Path, top: int) -> str:
    """Where the samples went: per process, then for the command and for its parse processes
    the top functions inclusive (with what they called) and by own time."""
    by_process: dict[str, int] = {}
    tables: dict[str, tuple[dict[str, int], dict[str, int]]] = {}
    total, command = 0, ""
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        command = command or frames[0].split(":", 1)[0]  # every stack starts in the command
        # A parse process's stacks start with its parent's (where it forked): the last
        # "process" frame says whose stack it is.
        at = max(i for i, f in enumerate(frames) if f.startswith("process ") or i == 0)
        pid = frames[at].split(":", 1)[0] if frames[at].startswith("process ") else "(unknown)"
        by_process[pid] = by_process.get(pid, 0) + n
        role = "the command" if pid == command else "parse processes"
        inclusive, own = tables.setdefault(role, ({}, {}))
        names = [_frame_name(f) for f in frames[at + 1:]]
        total += n
        for name in set(names):
            inclusive[name] = inclusive.get(name, 0) + n
        leaf = names[-1] if names else "(no Python frame)"
        own[leaf] = own.get(leaf, 0) + n
    if not total:
        return "py-spy took no samples"
    lines = [f"{total} samples (percentages are of all of them); by process:"]
    for pid, n in sorted(by_process.items(), key=lambda kv: -kv[1]):
        role = "the command" if pid == command else "parse process"
        lines.append(f"  {pid:<16} {role:<14} {n:6d}  {100 * n / total:5.1f} %")
    for role, (inclusive, own) in sorted(tables.items(), key=lambda kv: kv[0] != "the command"):
        for title, table in (("inclusive (the function and what it called)", inclusive), ("own time", own)):
            lines.append(f"{role}, top {top} {title}:")
            for name, n in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
                lines.append(f"  {100 * n / total:5.1f} %  {n:6d}  {name}")
    return "\n".join(lines)


# --- reporting ---------------------------------------------------------------------------


def versions() -> str:
    import sqlite3
    from importlib.metadata import version

    libs = ", ".join(f"{name} {version(name)}" for name in ("feedparser", "nh3", "bleach", "lxml", "SQLAlchemy"))
    return f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, {libs}; {os.cpu_count()} CPUs"


def report(args, corpus: list, runs: dict, stages: dict | None) -> None:
    posts = sum(f.entries for f in corpus)
    mb = sum(f.bytes for f in corpus) / 1e6
    ours, bl, floor, fixed = runs["nh3"], runs["bleach"], runs["floor"], runs["fixed"]
    ratios = [o["posts_s"] / f["posts_s"] for o, f in zip(ours, floor)]
    print()
    print(f"corpus: {len(corpus)} {'RSS ' if args.rss_only else ''}feeds x {args.entries} {args.size} entries = "
          f"{posts} posts, {mb:.1f} MB "
          f"(seed {args.seed}); {args.repeat} run(s), median (min\u2013max)")
    rows = [
        ("ours, nh3: posts/s", spread([r["posts_s"] for r in ours])),
        ("ours, nh3: wall s", spread([r["wall"] for r in ours], "{:.2f}")),
        ("ours, nh3: CPU s (user+sys)", spread([r["cpu"] for r in ours], "{:.2f}")),
        ("ours, nh3: peak RSS MB", spread([r["rss_mb"] for r in ours], "{:.0f}")),
        ("ours, nh3: feed server CPU s (other process)", spread([r["server_cpu"] for r in ours], "{:.2f}")),
    ]
    if bl:
        rows += [
            ("ours, bleach: posts/s", spread([r["posts_s"] for r in bl])),
            ("ours, bleach: wall s", spread([r["wall"] for r in bl], "{:.2f}")),
            ("ours, bleach: CPU s (user+sys)", spread([r["cpu"] for r in bl], "{:.2f}")),
            ("ours, bleach: peak RSS MB", spread([r["rss_mb"] for r in bl], "{:.0f}")),
        ]
    rows += [
        ("fixed cost: fetch with 0 feeds, wall s", spread([r["wall"] for r in fixed], "{:.2f}")),
        ("fixed cost: fetch with 0 feeds, peak RSS MB", spread([r["rss_mb"] for r in fixed], "{:.0f}")),
        ("floor (feedparser + nh3): posts/s", spread([r["posts_s"] for r in floor])),
        ("  feedparser.parse alone: posts/s", spread([r["parse_posts_s"] for r in floor])),
        ("  nh3.clean alone: posts/s", spread([r["nh3_posts_s"] for r in floor])),
    ]
    if bl:
        rows += [
            (f"  bleach Cleaner alone (every {args.bleach_every}th body): posts/s", spread([r["bleach_posts_s"] for r in floor])),
            ("floor with bleach (feedparser + bleach): posts/s", spread([r["bleach_floor_posts_s"] for r in floor])),
        ]
    rows.append(("RATIO ours(nh3) / floor (target >= 0.8)", spread(ratios, "{:.2f}")))
    if bl:
        rows.append(("ratio ours(bleach) / floor with bleach",
                     spread([b["posts_s"] / f["bleach_floor_posts_s"] for b, f in zip(bl, floor)], "{:.2f}")))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    busy = [r["others_cores"] for r in ours + bl + floor if r["others_cores"] > BUSY_CORES]
    if busy:
        print(f"  NOTE: other processes used more than {BUSY_CORES} cores during {len(busy)} of "
              f"{len(ours + bl + floor)} measurements (up to {max(busy):.2f} cores): those figures are low")
    for name, rs in (("nh3", ours), ("bleach", bl)):
        bad = [r for r in rs if r["posts"] != posts or r["failed"]]
        if bad:
            print(f"  WARNING: {len(bad)} of {len(rs)} {name} runs lost posts (stored "
                  f"{', '.join(str(r['posts']) for r in bad)} of {posts}; failed feeds "
                  f"{', '.join(str(r['failed']) for r in bad)}); first error: {bad[0]['first_failure']}")

    if stages:
        cpu = stages["process_cpu"]
        print()
        print(f"per-stage CPU, one extra nh3 run with timers and parse_processes=1, so every stage runs in "
              f"the timed process (process: {stages['wall']:.2f} s wall, {cpu:.2f} s CPU; timers add a little):")
        total = sum(stages["stages"][label][0] for label, _, _, indent in STAGES if indent == 0)
        for label, _, _, indent in STAGES:
            spent, calls = stages["stages"][label]
            print(f"  {'  ' * indent}{label:<{44 - 2 * indent}} {spent:7.2f} s  {100 * spent / cpu:5.1f} %  "
                  f"{1000 * spent / posts:6.3f} ms/post  ({int(calls)} calls)")
        print(f"  {'outside both (start-up, imports, DB open, output)':<44} {cpu - total:7.2f} s  "
              f"{100 * (cpu - total) / cpu:5.1f} %")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--feeds", type=int, default=300, help="feeds to generate (default 300)")
    p.add_argument("--entries", type=int, default=20, help="entries per feed (default 20)")
    p.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    p.add_argument("--size", choices=sorted(feedgen_corpus.BODY_BYTES), default="heavy",
                   help="entry bodies: heavy (3-8 KB, the default) or ordinary (1.2-4.4 KB, 2.8 KB on average)")
    p.add_argument("--rss-only", action="store_true",
                   help="every feed RSS 2.0 with its HTML in CDATA (the cheapest for feedparser, so the fixed "
                        "costs weigh most); by default 40 %% are Atom with escaped HTML")
    p.add_argument("--repeat", type=int, default=1, help="runs of each measurement (default 1)")
    p.add_argument("--no-bleach", action="store_true", help="skip the bleach runs (ours and floor)")
    p.add_argument("--bleach-every", type=int, default=5, metavar="N",
                   help="the bleach floor cleans every Nth body, as it is slow (default 5; 1 = all)")
    p.add_argument("--no-stages", action="store_true", help="skip the per-stage CPU run")
    p.add_argument("--py-spy", action="store_true",
                   help="also sample the real command and its parse processes with py-spy and print where the time goes")
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second (default 250)")
    p.add_argument("--top", type=int, default=30, help="functions shown by --py-spy (default 30)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="passed to `hustings --set` for every run, e.g. fetch_workers=4")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="S",
                   help="before each measurement wait up to S seconds for other processes to go quiet")
    p.add_argument("--keep", type=Path, help="keep the corpus and profiles in this directory")
    p.add_argument("--_child", choices=("serve", "stages"), help=argparse.SUPPRESS)
    p.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args._child == "serve":
        serve(args.corpus)
        return 0
    if args._child == "stages":
        if args.set:  # the parent's --set, applied as the command line would
            for item in args.set:
                name, value = item.split("=", 1)
                os.environ["HUSTINGS_" + name.strip().upper()] = value
        _stages_child(args.out)
        return 0

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="hustings-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    corpus_dir = work / "corpus"
    server = None
    try:
        t0 = time.perf_counter()
        corpus = feedgen_corpus.write_corpus(corpus_dir, args.feeds, args.entries, args.seed,
                                             size=args.size, rss_share=1.0 if args.rss_only else 0.6)
        print(f"generated {len(corpus)} feeds in {time.perf_counter() - t0:.1f} s in {corpus_dir}", flush=True)
        server = FeedServer(corpus_dir)
        urls = [server.base + f.name for f in corpus]
        feeds = load_bytes(corpus_dir)
        commit = code_version(*CODE)
        print(f"serving on {server.base}; code {commit}; {versions()}", flush=True)

        runs: dict[str, list] = {"nh3": [], "bleach": [], "floor": [], "fixed": []}
        meter = Meter(server.proc.pid)
        for k in range(args.repeat):
            for sanitizer in ("nh3",) if args.no_bleach else ("nh3", "bleach"):
                wait_quiet(args.wait_quiet)
                o = measure_ours(work, urls, sanitizer, args.set, meter)
                runs[sanitizer].append(o)
                print(f"run {k + 1}: ours {sanitizer:<7} {o['posts_s']:8,.0f} posts/s  ({o['posts']} posts, "
                      f"{o['wall']:.2f} s, {o['cpu']:.2f} s CPU, server {o['server_cpu']:.2f} s CPU, "
                      f"{o['rss_mb']:.0f} MB; others {o['others_cores']:.2f} cores)", flush=True)
            wait_quiet(args.wait_quiet)
            f = measure_floor(feeds, 0 if args.no_bleach else args.bleach_every, meter)
            runs["floor"].append(f)
            print(f"run {k + 1}: floor        {f['posts_s']:8,.0f} posts/s  (parse {f['parse_s']:.2f} s, "
                  f"nh3 {f['nh3_s']:.2f} s" + (f", bleach {f['bleach_s']:.2f} s on {f['bleach_sample']} bodies"
                                                if "bleach_s" in f else "")
                  + f"; others {f['others_cores']:.2f} cores)", flush=True)
            runs["fixed"].append(measure_fixed_cost(work, args.set))
        stages = None if args.no_stages else measure_stages(work, urls, "nh3", args.set)
        report(args, corpus, runs, stages)
        if code_version(*CODE) != commit:
            print(f"  WARNING: the code changed during the run ({commit} -> {code_version(*CODE)}): rerun")
        if args.py_spy:
            raw = run_py_spy(work, urls, "nh3", args.set, args.rate)
            print(f"\npy-spy of `hustings fetch --all` (nh3, the real command; raw stacks in {raw}):\n")
            print(summarise_py_spy(raw, args.top))
    finally:
        if server:
            server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
