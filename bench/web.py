"""Web benchmark: the cached front page against /healthz on the same server, and the uncached front page.
Long because every server under test, the load generator and the floor (/healthz) must run in one interleaved run.

    python3 bench/web.py [--posts 10000] [--runs 3] [--duration 10] [--servers serve,waitress,sync,gthread]

1. The data: bench/web_corpus.py (N posts, default 10,000, from 60 blogs, one prolific, first seen over
   30 days, recommendations, three editor's picks; saved with post_store.save_posts and indexed with
   index.writer.sync), cached under /tmp and copied into a fresh data directory for each run.
2. The servers, each a subprocess on its own free port on 127.0.0.1, all on that one data directory:
   * ``serve``: ``python -m hustings --data-dir D serve --port P --workers 2``, the real command
     (gunicorn's arbiter, 2 worker processes each running waitress with 8 threads, since issue 16);
   * ``waitress``: ``python -m hustings --data-dir D run --port P``, the real command (waitress, 8
     threads, beside the scheduler; every feed's next check is in 2100, so it fetches nothing);
   * ``sync``: gunicorn sync workers, 2 of them, with serve's other settings (what ``serve`` ran
     before issue 16; a child of this script, for comparison only);
   * ``gthread``: gunicorn gthread, 2 workers x 4 threads, with the rest of serve's configuration
     (a child of this script, for comparison only; no command runs it).
3. The load: ``wrk -t2 -c32 -d10s --latency`` (as the research baselines, perf-baselines.md §4.4), on
   ``/healthz`` then ``/`` (the cached front page), after a 2-second warm-up of each that fills
   every worker's page cache. Rounds are interleaved: each round runs every server's two endpoints
   back to back, so the front/healthz ratio compares neighbouring runs. wrk and the servers share the
   machine's cores, so the figures are ceilings for the whole machine with the load generator's cost
   in them. Medians of --runs rounds, with the range. Without wrk (``apt-get install wrk``), a Python
   load generator (processes with keep-alive http.client connections) stands in; it is much slower
   than wrk, so its figures say less, and the output says which one ran.
4. Per run: requests/s, latency p50 and p99, socket errors and non-2xx answers; the server's CPU,
   the load generator's CPU and the other processes' (the VM is shared); peak RSS of each server's
   processes (psutil, polled every 0.25 s) over the whole run.
5. The uncached front page, in a child process: ``make_app`` with ``page_cache_s=0``, so every request
   renders; --renders (default 200) calls of the WSGI app for ``GET /``, after a warm-up, with
   p50/p95/p99. One more pass with a timer around each step the handler takes (candidate query,
   ranking, row fetch, editor's picks, Last-Modified query, template render) shows where the time
   goes; the SQL statements per render are counted. The same child gives the front page's size
   (bytes, and gzipped) and the CSS's, and the in-process cost of a cache hit and of /healthz.
   --profile adds a cProfile of the uncached renders.

Targets (issue 4): on the chosen server, front page req/s >= 0.5 x healthz req/s and front page
p99 < 20 ms; uncached front page p95 < 100 ms at 10,000 posts; front page <= 30 KB for 30 posts;
CSS <= 15 KB. Printed, never asserted: the exit status is 0 unless a run failed outright.
At the defaults it takes about 4 minutes once the corpus is cached (building 10,000 posts takes
2–6 minutes more, once); --quick is a one-round, 3-second look (under a minute).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import io
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# bench/index.py would shadow the project's `index` package: the project goes first.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))
sys.path.append(str(HERE))

from measuring import code_version, free_port, pct, spread  # noqa: E402

CODE = ("web", "index", "aggregator", "hustings")  # the folders whose changes the figures are about

_spec = importlib.util.spec_from_file_location("bench_index", HERE / "index.py")
bench_index = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_index)

TARGET_RATIO = 0.5
TARGET_P99_MS = 20.0
TARGET_UNCACHED_P95_MS = 100.0
TARGET_HTML_KB = 30
TARGET_CSS_KB = 15
ENDPOINTS = ("/healthz", "/")
SERVERS = {
    "serve": "gunicorn arbiter + waitress, 2 workers x 8 threads (`hustings serve --workers 2`)",
    "waitress": "waitress, 8 threads + scheduler (`hustings run`)",
    "sync": "gunicorn sync, 2 workers (serve before issue 16)",
    "gthread": "gunicorn gthread, 2 workers x 4 threads",
}


# --- small helpers ----------------------------------------------------------------------------


def versions() -> str:
    import sqlite3
    from importlib.metadata import version as v

    out = [f"python {sys.version.split()[0]}"]
    for name in ("bottle", "jinja2", "gunicorn", "waitress", "sqlalchemy"):
        try:
            out.append(f"{name} {v(name)}")
        except Exception:  # noqa: BLE001
            out.append(f"{name} ?")
    out.append(f"sqlite {sqlite3.sqlite_version}")
    return ", ".join(out) + f"; {os.cpu_count()} CPUs"


def child_env(data_dir: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUSTINGS_")}
    env["PYTHONPATH"] = str(ROOT)
    if data_dir is not None:
        env["HUSTINGS_DATA_DIR"] = str(data_dir)
    return env


# --- the servers -----------------------------------------------------------------------------------


def _serve_gunicorn(kind: str, data_dir: Path, port: int) -> None:
    """gunicorn sync or gthread with serve()'s other settings: a comparison, not a command of ours."""
    from gunicorn.app.base import BaseApplication

    from aggregator.settings import load_settings
    from web.app import make_app

    settings = load_settings(data_dir=str(data_dir))

    class App(BaseApplication):
        def load_config(self):
            workers = dict(worker_class="gthread", threads=4) if kind == "gthread" else dict(worker_class="sync")
            for k, v in dict(bind=f"127.0.0.1:{port}", workers=2, **workers,
                             preload_app=False, timeout=30, keepalive=2, backlog=2048, accesslog=None,
                             errorlog="-", loglevel="warning").items():
                self.cfg.set(k, v)

        def load(self):
            return make_app(settings)

    App().run()


class Server:
    def __init__(self, kind: str, data_dir: Path, work: Path):
        self.kind, self.port = kind, free_port()
        self.label = SERVERS[kind]
        py = sys.executable
        common = [py, "-m", "hustings", "--data-dir", str(data_dir)]
        if kind == "serve":
            cmd = common + ["serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "2"]
        elif kind == "waitress":
            cmd = common + ["run", "--host", "127.0.0.1", "--port", str(self.port)]
        elif kind in ("sync", "gthread"):
            cmd = [py, str(Path(__file__).resolve()), "--_serve", kind, "--data-dir", str(data_dir),
                   "--port", str(self.port)]
        else:
            raise SystemExit(f"unknown server {kind!r}; choose from {', '.join(SERVERS)}")
        self.cmd = cmd
        self.log = open(work / f"server-{kind}.log", "wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(), stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.peak = dict(tree_rss=0, procs={})  # bytes; procs: pid -> (name, peak rss)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.label} exited {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url("/healthz"), timeout=2) as res:
                    if res.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"{self.label} did not answer /healthz in {timeout:.0f} s:\n{self.tail()}")

    def tail(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-3000:]

    def processes(self):
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            return [root] + root.children(recursive=True)
        except psutil.Error:
            return []

    def cpu_s(self) -> float:
        import psutil

        total = 0.0
        for p in self.processes():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def sample_memory(self) -> None:
        import psutil

        tree = 0
        for p in self.processes():
            try:
                rss = p.memory_info().rss
                name = "arbiter/main" if p.pid == self.proc.pid else "worker"
            except psutil.Error:
                continue
            tree += rss
            prev = self.peak["procs"].get(p.pid, (name, 0))[1]
            self.peak["procs"][p.pid] = (name, max(prev, rss))
        self.peak["tree_rss"] = max(self.peak["tree_rss"], tree)

    def pss_mb(self) -> float:
        """The tree's proportional set size now: pages shared after fork counted once."""
        import psutil

        total = 0
        for p in self.processes():
            try:
                total += p.memory_full_info().pss
            except (psutil.Error, AttributeError):
                pass
        return total / 2**20

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


class MemoryWatch:
    """Polls every server's process tree for RSS until stopped."""

    def __init__(self, servers: list[Server], every_s: float = 0.25):
        self.servers, self.every_s = servers, every_s
        self.done = threading.Event()
        self.cpu_s = 0.0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.done.is_set():
            c0 = time.thread_time()
            for s in self.servers:
                s.sample_memory()
            self.cpu_s += time.thread_time() - c0
            self.done.wait(self.every_s)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


# --- the load ----------------------------------------------------------------------------------


def _to_ms(s: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def parse_wrk(out: str) -> dict:
    r = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
    r["p50_ms"], r["p99_ms"] = _to_ms(lat["50"]), _to_ms(lat["99"])
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["sock_err"] = sum(map(int, m.groups())) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    r["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
    return r


def run_wrk(url: str, a, duration: float) -> dict:
    cmd = ["wrk", f"-t{a.threads}", f"-c{a.connections}", f"-d{max(1, round(duration))}s", "--latency", url]
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if os.waitstatus_to_exitcode(status) != 0 or "Requests/sec" not in text:
        raise SystemExit(f"wrk failed on {url}:\n{text[-2000:]}")
    r = parse_wrk(text)
    r["loadgen_cpu"] = usage.ru_utime + usage.ru_stime
    return r


def _py_load_worker(host: str, port: int, path: str, conns: int, duration: float, out_q) -> None:
    """One load process: `conns` threads, each a keep-alive http.client connection in a closed loop."""
    import http.client

    lat, errors, non2xx = [], [0], [0]
    lock = threading.Lock()
    end = time.perf_counter() + duration

    def loop():
        conn = http.client.HTTPConnection(host, port, timeout=5)
        mine = []
        while time.perf_counter() < end:
            t = time.perf_counter()
            try:
                conn.request("GET", path)
                res = conn.getresponse()
                res.read()
                if res.status >= 400:
                    non2xx[0] += 1
                if res.will_close:
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=5)
            except (OSError, http.client.HTTPException):
                errors[0] += 1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=5)
                continue
            mine.append(time.perf_counter() - t)
        conn.close()
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=loop) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out_q.put((lat, errors[0], non2xx[0]))


def run_python_load(url: str, a, duration: float) -> dict:
    import multiprocessing as mp

    m = re.match(r"http://([\d.]+):(\d+)(/.*)", url)
    host, port, path = m.group(1), int(m.group(2)), m.group(3)
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_py_load_worker, args=(host, port, path, max(1, a.connections // a.threads),
                                                        duration, q)) for _ in range(a.threads)]
    c0 = os.times()
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    wall = time.perf_counter() - t0
    c1 = os.times()
    lat = [x for r in results for x in r[0]]
    return dict(rps=len(lat) / wall, p50_ms=pct(lat, .5) * 1000 if lat else float("nan"),
                p99_ms=pct(lat, .99) * 1000 if lat else float("nan"), sock_err=sum(r[1] for r in results),
                non2xx=sum(r[2] for r in results), requests=len(lat),
                loadgen_cpu=(c1.children_user + c1.children_system) - (c0.children_user + c0.children_system))


def measure(server: Server, path: str, a, duration: float) -> dict:
    load = run_wrk if a.loadgen == "wrk" else run_python_load
    busy0, cpu0, t0 = bench_index.machine_busy_s(), server.cpu_s(), time.perf_counter()
    r = load(server.url(path), a, duration)
    wall = time.perf_counter() - t0
    r["server_cores"] = (server.cpu_s() - cpu0) / wall
    r["loadgen_cores"] = r["loadgen_cpu"] / wall
    busy = bench_index.machine_busy_s()
    r["others_cores"] = (max(0.0, (busy - busy0) / wall - r["server_cores"] - r["loadgen_cores"])
                         if busy is not None and busy0 is not None else float("nan"))
    return r


# --- the uncached front page (a child process) ----------------------------------------------------


def _environ(path: str, query: str = "") -> dict:
    from wsgiref.util import setup_testing_defaults

    env = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "127.0.0.1",
           "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1", "wsgi.input": io.BytesIO(b"")}
    setup_testing_defaults(env)
    return env


def call(app, path: str, query: str = "") -> tuple[str, bytes]:
    status = []
    body = b"".join(app(_environ(path, query), lambda s, h, exc=None: status.append(s)))
    return status[0], body


def _uncached_child(a) -> dict:
    import cProfile
    import pstats

    import sqlalchemy as sa

    from aggregator import listings, ranking
    from aggregator.settings import Settings
    from web import app as web_app

    settings = Settings(data_dir=a.data_dir, page_cache_s=0)
    app = web_app.make_app(settings)
    site = app.config["hustings.site"]
    statements = [0]
    sa.event.listen(site.engine, "before_cursor_execute", lambda *args: statements.__setitem__(0, statements[0] + 1))

    status, body = call(app, "/")
    if not status.startswith("200"):
        raise SystemExit(f"GET / answered {status}")
    for _ in range(10):  # warm-up: templates compiled, connections pooled, pages in SQLite's cache
        call(app, "/")

    times, cpu, statements[0] = [], [], 0
    for _ in range(a.renders):
        t, c = time.perf_counter(), time.process_time()
        call(app, "/")
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    per_render_statements = statements[0] / a.renders

    # Where the time goes: the same requests with a timer around each step the handler takes.
    stages: dict[str, float] = {}
    sizes = {}

    inner = [0.0]  # time spent in timed calls nested inside the current one

    def timed(label, fn):
        """Exclusive time: a timed step called inside another (listings.editors_picks inside
        listings.ranked_candidates) counts once, under its own label."""

        def wrapper(*args, **kw):
            outer, inner[0] = inner[0], 0.0
            t = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                spent = (time.perf_counter() - t) * 1000
                stages[label] = stages.get(label, 0.0) + spent - inner[0]
                inner[0] = outer + spent

        return wrapper

    originals = dict(ranked_candidates=listings.ranked_candidates, posts_by_id=listings.posts_by_id,
                     editors_picks=listings.editors_picks, latest_change=listings.latest_change, rank=ranking.rank,
                     render=web_app.Site.render, first_images=listings.first_images,
                     most_recommended=listings.most_recommended, newest=listings.newest)

    def candidates(*args, **kw):
        out = originals["ranked_candidates"](*args, **kw)
        sizes["candidates"] = len(out)
        return out

    listings.ranked_candidates = timed("candidate queries (listings.ranked_candidates)", candidates)
    ranking.rank = timed("ranking (ranking.rank, pure Python)", originals["rank"])
    listings.posts_by_id = timed("the page's rows (listings.posts_by_id)", originals["posts_by_id"])
    listings.editors_picks = timed("editor's picks (listings.editors_picks)", originals["editors_picks"])
    listings.latest_change = timed("Last-Modified (listings.latest_change)", originals["latest_change"])
    web_app.Site.render = timed("template render (Jinja2, front.html)", originals["render"])
    # Issue 14's front page: the posts' first pictures (their HTML read and searched), and the rail.
    listings.first_images = timed("pictures (listings.first_images)", originals["first_images"])
    listings.most_recommended = timed("rail: most recommended (listings.most_recommended)",
                                      originals["most_recommended"])
    listings.newest = timed("rail: latest (listings.newest)", originals["newest"])
    total = 0.0
    try:
        for _ in range(a.renders):
            t = time.perf_counter()
            call(app, "/")
            total += (time.perf_counter() - t) * 1000
    finally:
        listings.ranked_candidates, listings.posts_by_id = originals["ranked_candidates"], originals["posts_by_id"]
        listings.editors_picks, listings.latest_change = originals["editors_picks"], originals["latest_change"]
        ranking.rank, web_app.Site.render = originals["rank"], originals["render"]
        listings.first_images, listings.most_recommended = originals["first_images"], originals["most_recommended"]
        listings.newest = originals["newest"]
    stages["everything else (Bottle, headers, ETag, polls, the rest of front.front)"] = total - sum(stages.values())

    # Each SQL statement of one render, run again on its own (SQLite alone: execute + fetchall,
    # median of 20), with the plan SQLite chose.
    captured = []
    def capture(_conn, _cursor, statement, parameters, *_):
        captured.append((statement, parameters))

    sa.event.listen(site.engine, "before_cursor_execute", capture)
    call(app, "/")
    sa.event.remove(site.engine, "before_cursor_execute", capture)
    sql = []
    raw = site.engine.raw_connection()
    try:
        cur = raw.cursor()
        for statement, parameters in captured:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            spent = []
            for _ in range(20):
                t = time.perf_counter()
                rows = cur.execute(statement, parameters).fetchall()
                spent.append((time.perf_counter() - t) * 1000)
            plan = "; ".join(r[3] for r in cur.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall())
            sql.append(dict(ms=statistics.median(spent), rows=len(rows), plan=plan,
                            sql=" ".join(statement.split())))
    finally:
        raw.close()

    profile = ""
    if a.profile:
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(min(a.renders, 100)):
            call(app, "/")
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(a.top)
        profile = buf.getvalue()

    # The size of what readers get, and the in-process cost of a cache hit and of /healthz.
    items = body.count(b'<article class="item"')
    css = (web_app.STATIC / "style.css").read_bytes()
    cached_app = web_app.make_app(Settings(data_dir=a.data_dir))
    call(cached_app, "/")
    hit, health = [], []
    for _ in range(2000):
        t = time.perf_counter()
        call(cached_app, "/")
        hit.append((time.perf_counter() - t) * 1e6)
        t = time.perf_counter()
        call(cached_app, "/healthz")
        health.append((time.perf_counter() - t) * 1e6)
    return dict(times=times, cpu=cpu, statements=per_render_statements, sql=sql, stages=stages, total=total,
                candidates=sizes.get("candidates"), html_bytes=len(body), html_gzip=len(gzip.compress(body, 6)),
                items=items, css_bytes=len(css), css_gzip=len(gzip.compress(css, 6)),
                hit_us=pct(hit, .5), healthz_us=pct(health, .5), profile=profile, window_h=settings.rank_window_h)


def run_uncached(a, data_dir: Path, work: Path) -> dict:
    out = work / "uncached.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_child", "uncached", "--data-dir", str(data_dir),
           "--out", str(out), "--renders", str(a.renders), "--top", str(a.top)] + (["--profile"] if a.profile else [])
    busy0, t0 = bench_index.machine_busy_s(), time.perf_counter()
    run = bench_index.run_measured(cmd, child_env())
    if run["rc"] != 0 or not out.exists():
        raise SystemExit(f"the uncached child exited {run['rc']}:\n{run['stderr'][-4000:]}")
    wall = time.perf_counter() - t0
    res = json.loads(out.read_text())
    busy = bench_index.machine_busy_s()
    res["others_cores"] = max(0.0, (busy - busy0 - run["cpu"]) / wall) if busy0 is not None else float("nan")
    res["rss_mb"] = run["rss_mb"]
    return res


# --- the report ----------------------------------------------------------------------------------


def report_http(servers: list[Server], results: dict, a) -> None:
    print(f"\nHTTP: {a.loadgen} -t{a.threads} -c{a.connections} -d{a.duration:g}s on 127.0.0.1, median of "
          f"{a.runs} interleaved round(s) (min\u2013max); load generator and servers share {os.cpu_count()} cores")
    head = f"  {'server':<10} {'path':<8} {'req/s':>22} {'p50 ms':>18} {'p99 ms':>20} {'errors':>7} " \
           f"{'server/load/others cores':>25}"
    print(head)
    for s in servers:
        for path in ENDPOINTS:
            rs = results[(s.kind, path)]
            errors = sum(r["sock_err"] + r["non2xx"] for r in rs)
            cores = "/".join(f"{statistics.median(r[k] for r in rs):.2f}"
                             for k in ("server_cores", "loadgen_cores", "others_cores"))
            print(f"  {s.kind:<10} {path:<8} {spread([r['rps'] for r in rs]):>22} "
                  f"{spread([r['p50_ms'] for r in rs], '{:.2f}'):>18} "
                  f"{spread([r['p99_ms'] for r in rs], '{:.2f}'):>20} "
                  f"{errors:>7} {cores:>25}")
    print("\n  front page / healthz, per round (same server, neighbouring runs), and the targets:")
    for s in servers:
        ratios = [f["rps"] / h["rps"] for h, f in zip(results[(s.kind, "/healthz")], results[(s.kind, "/")])]
        p99 = statistics.median(r["p99_ms"] for r in results[(s.kind, "/")])
        ok = statistics.median(ratios) >= TARGET_RATIO and p99 < TARGET_P99_MS
        print(f"  {s.kind:<10} ratio {spread(ratios, '{:.2f}'):<20} (target >= {TARGET_RATIO}); front p99 {p99:.1f} ms "
              f"(target < {TARGET_P99_MS:.0f}): {'met' if ok else 'NOT met'}   [{s.label}]")
    print("\n  peak RSS over the run (psutil; shared pages counted in every process) and PSS at its end:")
    for s in servers:
        procs = sorted(s.peak["procs"].values(), key=lambda x: x[0])
        detail = ", ".join(f"{name} {rss / 2**20:.0f}" for name, rss in procs)
        print(f"  {s.kind:<10} tree {s.peak['tree_rss'] / 2**20:6.0f} MB  ({detail} MB); PSS at the end "
              f"{s.peak.get('pss_end', float('nan')):.0f} MB")


def report_uncached(res: dict, a) -> None:
    xs = res["times"]
    print(f"\nuncached front page (page_cache_s=0), in-process WSGI calls of GET /, {len(xs)} renders after a "
          f"warm-up, {a.posts:,} posts; {res['candidates']} ranking candidates, {res['statements']:.0f} SQL "
          f"statements per render ({len(res['sql'])} SELECTs, the rest BEGIN/COMMIT); other processes "
          f"{res['others_cores']:.2f} cores; child peak RSS "
          f"{res['rss_mb']:.0f} MB")
    p95 = pct(xs, .95)
    print(f"  ms: p50 {pct(xs, .5):.1f}  p95 {p95:.1f}  p99 {pct(xs, .99):.1f}  max {max(xs):.1f}  mean "
          f"{statistics.mean(xs):.1f}   target p95 < {TARGET_UNCACHED_P95_MS:.0f} ms: "
          f"{'met' if p95 < TARGET_UNCACHED_P95_MS else 'NOT met'}")
    cs = res["cpu"]
    print(f"  CPU ms (this process, SQLite included): p50 {pct(cs, .5):.1f}  p95 {pct(cs, .95):.1f}  "
          f"(wall above CPU: waiting for a core, when other processes are busy)")
    n = a.renders
    print(f"  where the time goes (one more {n} renders with timers; {res['total'] / n:.1f} ms per render):")
    for label, ms in sorted(res["stages"].items(), key=lambda kv: -kv[1]):
        print(f"    {label:<66} {ms / n:6.2f} ms  {100 * ms / res['total']:5.1f} %")
    print("  its SQL statements, each alone on the database (execute + fetchall, median of 20; the plan):")
    for q in res["sql"]:
        text = q["sql"]
        where = text.find(" FROM ")
        short = (text[:60] + " …" + text[where:where + 40]) if where > 60 else text[:100]
        print(f"    {q['ms']:6.2f} ms {q['rows']:5d} rows  {short}  [{q['plan'][:90]}]")
    kb = res["html_bytes"] / 1024
    print(f"  front page HTML: {res['html_bytes']:,} bytes ({kb:.1f} KiB; {res['html_gzip']:,} gzipped) for "
          f"{res['items']} posts (30 ranked + the editor's picks); target <= {TARGET_HTML_KB} KB: "
          f"{'met' if res['html_bytes'] <= TARGET_HTML_KB * 1024 else 'NOT met'}")
    print(f"  CSS: {res['css_bytes']:,} bytes ({res['css_gzip']:,} gzipped); target <= {TARGET_CSS_KB} KB: "
          f"{'met' if res['css_bytes'] <= TARGET_CSS_KB * 1024 else 'NOT met'}")
    print(f"  in-process, page cache on: a cached front page {res['hit_us']:.0f} us, /healthz "
          f"{res['healthz_us']:.0f} us "
          f"(median of 2,000 WSGI calls each)")
    if res.get("profile"):
        print("\ncProfile of the uncached renders (cumulative):\n")
        print(res["profile"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="\n".join(__doc__.split("\n\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--posts", type=int, default=10000, help="posts in the corpus (default 10,000)")
    p.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    p.add_argument("--servers", default="serve,waitress,sync,gthread",
                   help=f"comma-separated, from {', '.join(SERVERS)} (default: all)")
    p.add_argument("--runs", type=int, default=3, help="interleaved rounds per server and path (default 3)")
    p.add_argument("--duration", type=float, default=10, help="seconds per load run (default 10)")
    p.add_argument("--warmup", type=float, default=2, help="seconds of load before the rounds, per path (default 2)")
    p.add_argument("--connections", type=int, default=32, help="concurrent connections (wrk -c; default 32)")
    p.add_argument("--threads", type=int, default=2, help="load threads (wrk -t) or processes (default 2)")
    p.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto",
                   help="wrk, or a Python load generator (default: wrk when installed)")
    p.add_argument("--renders", type=int, default=200, help="uncached front page renders (default 200)")
    p.add_argument("--no-http", action="store_true", help="skip the servers; only the uncached front page")
    p.add_argument("--no-uncached", action="store_true", help="skip the uncached front page")
    p.add_argument("--quick", action="store_true", help="one round of 3 s per path, 1 s warm-up, 50 renders")
    p.add_argument("--profile", action="store_true", help="also cProfile the uncached renders")
    p.add_argument("--top", type=int, default=30, help="functions shown by --profile (default 30)")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="S",
                   help="before the first round, each later round and the uncached renders, wait up to S "
                        "seconds for other processes to go quiet (each run line reports their cores)")
    p.add_argument("--keep", type=Path, metavar="DIR", help="keep the data directory and server logs in DIR")
    p.add_argument("--_child", help=argparse.SUPPRESS)
    p.add_argument("--_serve", help=argparse.SUPPRESS)
    p.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a._serve:
        _serve_gunicorn(a._serve, a.data_dir, a.port)
        return 0
    if a._child:
        Path(a.out).write_text(json.dumps(_uncached_child(a)))
        return 0
    if a.quick:
        a.runs, a.duration, a.warmup, a.renders = 1, 3, 1, min(a.renders, 50)
    if a.loadgen == "auto":
        a.loadgen = "wrk" if shutil.which("wrk") else "python"
    kinds = [k.strip() for k in a.servers.split(",") if k.strip()]
    for k in kinds:
        if k not in SERVERS:
            p.error(f"unknown server {k!r}; choose from {', '.join(SERVERS)}")

    import web_corpus

    commit = code_version(*CODE)
    print(f"code {commit}; {versions()}", flush=True)
    if a.loadgen == "wrk":
        print(subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0], flush=True)
    else:
        print("load generator: Python (http.client, keep-alive; wrk is not installed: `apt-get install wrk`)")
    work = Path(tempfile.mkdtemp(prefix="hustings-bench-web-"))
    servers: list[Server] = []
    started = time.perf_counter()
    try:
        data_dir = web_corpus.fresh_copy(a.posts, a.seed, work)
        print(f"data {data_dir} ({a.posts:,} posts, copied from {web_corpus.CACHE})", flush=True)
        bench_index.wait_quiet(a.wait_quiet)
        if not a.no_http:
            servers = [Server(k, data_dir, work) for k in kinds]
            for s in servers:
                s.wait_ready()
                print(f"  {s.kind}: {s.label} on port {s.port}: {' '.join(s.cmd[1:])}", flush=True)
            results = {(s.kind, path): [] for s in servers for path in ENDPOINTS}
            with MemoryWatch(servers):
                for s in servers:
                    for path in ENDPOINTS:  # fills every worker's page cache and the OS's
                        measure(s, path, a, a.warmup)
                for rnd in range(a.runs):
                    if rnd:
                        bench_index.wait_quiet(a.wait_quiet)
                    for s in servers:
                        for path in ENDPOINTS:
                            r = measure(s, path, a, a.duration)
                            results[(s.kind, path)].append(r)
                            print(f"  round {rnd + 1} {s.kind:<9} {path:<8} {r['rps']:8,.0f} req/s  p50 "
                                  f"{r['p50_ms']:6.2f}  p99 {r['p99_ms']:7.2f} ms  errors {r['sock_err']}+"
                                  f"{r['non2xx']}  cores: server {r['server_cores']:.2f} load "
                                  f"{r['loadgen_cores']:.2f} others {r['others_cores']:.2f}", flush=True)
            for s in servers:
                s.peak["pss_end"] = s.pss_mb()
                s.stop()
            report_http(servers, results, a)
        if not a.no_uncached:
            if not a.no_http:
                bench_index.wait_quiet(a.wait_quiet)
            res = run_uncached(a, data_dir, work)
            report_uncached(res, a)
        print(f"\ntotal {time.perf_counter() - started:.0f} s")
        if code_version(*CODE) != commit:
            print(f"  WARNING: the code changed during the run ({commit} -> {code_version(*CODE)}): rerun")
    finally:
        for s in servers:
            try:
                s.stop()
            except Exception:  # noqa: BLE001
                pass
        if a.keep:
            a.keep.mkdir(parents=True, exist_ok=True)
            shutil.copytree(work, a.keep / work.name, symlinks=True)
            print(f"kept {a.keep / work.name}")
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
