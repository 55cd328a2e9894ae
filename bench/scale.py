"""Scale-out benchmark: several workers and several web nodes on one database (issue 11, item 9).
Long because the worker runs, the web runs, their servers, databases and floors must share one run to be comparable.

    python3 bench/scale.py [--feeds 1000] [--latency-ms 200] [--workers 1,2,4] [--duration 10] [--quick]

1. Workers. A feed server in its own process (a ThreadingHTTPServer on 127.0.0.1) answers each of
   --feeds feeds after --latency-ms with a small RSS document (one item) and counts the requests for
   each feed in shared memory. For each count in --workers, on a fresh PostgreSQL database (a copy of
   a template migrated to head that holds the feeds, all due): that many real ``python -m hustings
   worker`` processes, each with its own data directory, HUSTINGS_DATABASE_URL,
   HUSTINGS_ALLOW_NETWORKS=127.0.0.1/32 and HUSTINGS_DISPATCH_EVERY_S=1. The clock starts when the
   first is launched; feeds.last_success_at is polled every 0.1 s until every feed has it. Then the
   workers keep running for --settle seconds (more dispatch passes, in which nothing may be fetched
   again) and the feed server's counters give the fetches per feed: min, max, and every feed not
   fetched exactly once, which is reported as a failure. Peak RSS is each worker's process tree
   (its parse processes included), polled every 0.1 s.
   All feeds are on one address, so the per-host politeness limit (fetch_per_host, default 2) would be
   the only limit: real blogrolls have a host per blog, where fetch_workers (8) binds. So the workers
   run with fetch_per_host = fetch_workers unless --fetch-per-host says otherwise.
   The floor, measured in the same run against the same server: a bare client (http.client, one
   thread per fetch the workers may have in flight, workers x min(fetch_workers, fetch_per_host))
   fetching every feed once. ours/floor compares the span from the first stored fetch to the last.
2. Web. For each backend (SQLite, PostgreSQL) and node count (1, 2): a fresh database seeded with
   --posts posts from 60 blogs (bench/web_corpus.py's blogs and posts, saved with
   post_store.save_posts, 40 % recommended, three editor's picks). Each node is a real ``python -m
   hustings serve`` with its own data directory, on its own loopback port, sharing the database
   (SQLite: one file, its URL given to every node) and an explicit secret_key; --web-processes (2)
   worker processes in all, split between the nodes, so one node and two run the same number of
   processes on this machine's cores. trusted_proxies is 127.0.0.1/32 and every reader sends its
   own X-Forwarded-For address, as behind a reverse proxy, so the per-address limits count readers.
   * The cached front page: wrk -c32 on ``/`` (2 s warm-up per node first), split evenly over the
     nodes (one wrk per node, at once: a proxy's round robin over kept-alive connections); the
     nodes' latency histograms (wrk's Lua ``done``) are merged for p50/p99.
   * A vote-heavy mix: --readers readers in Python threads (2 processes), each in a loop: a new
     reader (no cookies, a new address) GETs the poll page (the reader cookie and the CSRF token),
     POSTs a ballot for a random option (303), and GETs the results page it is sent to; every
     request goes to the next node in turn, so a reader's cookie and token are made on one node and
     used on the other. Each round votes in a new poll. After the run, the ballots counted in the
     database must equal the 303s the readers got.
   Rounds (--runs) are interleaved over the configurations, whose servers all stay up.

Printed: a table per part, with the ratio to the peer in the same run (speedup against one worker
and against the floor; two nodes against one, PostgreSQL against SQLite), the CPU the servers, the
load generator and other processes used, and peak RSS. Nothing is asserted: the exit status is 0
unless a run failed outright; double fetches and miscounted ballots are printed as FAILURES.
Needs PostgreSQL: a server on 127.0.0.1:5432, or the installed Debian cluster, started with
pg_ctlcluster; the role hustings_bench is made through ``runuser -u postgres -- psql`` (as
tests/postgres_server.py does for hustings_test). Contacts nothing but 127.0.0.1.
About 5 minutes at the defaults; --quick is a one-minute look (200 feeds, 3-second runs).
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# bench/index.py would shadow the project's `index` package: the project goes first.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))
sys.path.append(str(HERE))


def _load(name: str, file: str):
    spec = importlib.util.spec_from_file_location(name, HERE / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench_index = _load("bench_index", "index.py")  # machine_busy_s, wait_quiet
bench_web = _load("bench_web", "web.py")  # pct, spread, free_port, parse_wrk, code_version

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_ROLE = PG_PASSWORD = "hustings_bench"  # its own role: never touches the tests' databases
SECRET_KEY = "scale-bench-shared-secret-0123456789abcdef"  # every node must share one (issue 11, item 4)
NEVER = datetime(2100, 1, 1, tzinfo=UTC)
POLL_OPTIONS = ["The 42 to Fernleigh", "The 7 night bus", "The Mill Lane hopper", "None of them"]
SAMPLE_S = 0.1  # how often the workers' progress and memory are read


# --- PostgreSQL ----------------------------------------------------------------------------------


def pg_url(database: str) -> str:
    return f"postgresql+psycopg://{PG_ROLE}:{PG_PASSWORD}@{PG_HOST}:{PG_PORT}/{database}"


def _listening() -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((PG_HOST, PG_PORT)) == 0


def _admin(user: str = PG_ROLE):
    import psycopg

    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=user, password=PG_PASSWORD, dbname="postgres",
                           autocommit=True, connect_timeout=5)


def provision_postgres() -> str:
    """A server on 127.0.0.1:5432 and the bench's role; returns the server's version. Raises SystemExit."""
    if not _listening():
        clusters = [line.split() for line in subprocess.run(["pg_lsclusters", "-h"], capture_output=True,
                                                             text=True).stdout.splitlines() if line.strip()]
        if not clusters:
            raise SystemExit("no PostgreSQL listens on 127.0.0.1:5432 and pg_lsclusters lists no cluster "
                             "(apt-get install postgresql)")
        version, name = clusters[0][:2]
        done = subprocess.run(["pg_ctlcluster", version, name, "start"], capture_output=True, text=True)
        if done.returncode != 0 and "already running" not in done.stderr:
            raise SystemExit(f"pg_ctlcluster {version} {name} start failed: {done.stderr.strip()}")
        for _ in range(100):
            if _listening():
                break
            time.sleep(0.1)
    import psycopg

    try:
        conn = _admin()
    except psycopg.OperationalError:
        runner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else ["sudo", "-n", "-u", "postgres"]
        sql = (f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PG_ROLE}') THEN "
               f"CREATE ROLE {PG_ROLE} LOGIN CREATEDB PASSWORD '{PG_PASSWORD}'; ELSE "
               f"ALTER ROLE {PG_ROLE} LOGIN CREATEDB PASSWORD '{PG_PASSWORD}'; END IF; END $$;")
        done = subprocess.run(runner + ["psql", "-v", "ON_ERROR_STOP=1", "-qAtc", sql], capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise SystemExit(f"could not make the role {PG_ROLE}: {done.stderr.strip()}")
        conn = _admin()
    with conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def create_database(template: str | None = None) -> str:
    name = f"hustings_bench_{uuid.uuid4().hex[:12]}"
    with _admin() as conn:
        conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    return name


def drop_database(name: str) -> None:
    with _admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class PgMeter:
    """CPU of the PostgreSQL backends logged in as the bench's role (the tests and other benchmarks
    may use the same cluster). Sampled: a backend that exits counts up to the last sample."""

    def __init__(self):
        import psutil

        self.root, self.seen, self.ours = None, {}, {}
        self.lock = threading.Lock()
        try:
            for c in psutil.net_connections("tcp"):
                if c.status == psutil.CONN_LISTEN and c.laddr.port == PG_PORT and c.pid:
                    self.root = psutil.Process(c.pid)
                    break
        except (psutil.Error, OSError):
            pass

    def cpu_s(self) -> float:
        import psutil

        if self.root is None:
            return float("nan")
        with self.lock:
            try:
                children = self.root.children()
            except psutil.Error:
                children = []
            for ch in children:
                try:
                    if ch.pid not in self.ours:
                        self.ours[ch.pid] = f": {PG_ROLE} " in (ch.cmdline() or [""])[0]
                    if self.ours[ch.pid]:
                        t = ch.cpu_times()
                        self.seen[ch.pid] = t.user + t.system
                except psutil.Error:
                    pass
            return sum(self.seen.values())


PG_METER: PgMeter | None = None  # made once the server is known to run


def engine_for(url: str, data_dir: Path):
    from aggregator import db
    from aggregator.settings import Settings

    return db.make_engine(Settings(data_dir=data_dir, database_url=url))


# --- the feed server ---------------------------------------------------------------------------------


def feed_body(i: int, base: str) -> bytes:
    """One item with its full text (content:encoded), so no worker fetches the article page too."""
    return ('<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
            f"<title>Loopback blog {i}</title><link>{base}/blog/{i}</link><description>Blog {i}</description>"
            f"<item><title>Council meeting notes, part {i}</title><link>{base}/blog/{i}/1</link>"
            f"<guid>loopback-{i}-1</guid><pubDate>Mon, 30 Nov 2026 09:00:00 +0000</pubDate>"
            f"<description>What was said about the bus routes at meeting {i}.</description>"
            f"<content:encoded><![CDATA[<p>What was said about the bus routes at meeting {i}, and who said "
            "it.</p><p>The council will vote on the <a href=\"/routes\">route plan</a> next month.</p>]]>"
            "</content:encoded></item></channel></rss>").encode()


class FeedServer:
    """1..n feeds at /f<i>.xml (and the floor's copies at /floor/f<i>.xml), each answered after
    `latency_s`; a separate process, so its threads never wait on the bench's GIL. Counts every
    request for a feed in shared memory."""

    def __init__(self, n: int, latency_s: float):
        import multiprocessing as mp

        self.n, self.latency_s = n, latency_s
        ctx = mp.get_context("fork")
        self.counts = ctx.Array("i", n + 1, lock=False)  # [i]: requests for feed i; [0]: anything else
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.httpd.request_queue_size = 1024
        self.port = self.httpd.server_port
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = ctx.Process(target=self._serve, daemon=True)
        self.proc.start()
        self.httpd.socket.close()  # the child accepts

    def _handler(self):
        server = self
        pattern = re.compile(r"^/(floor/)?f(\d+)\.xml$")
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                m = pattern.match(self.path)
                i = int(m.group(2)) if m and 1 <= int(m.group(2)) <= server.n else 0
                if not m or not m.group(1) or i == 0:
                    with lock:
                        server.counts[i] += 1
                time.sleep(server.latency_s)
                if i == 0:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = feed_body(i, server.base)
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler

    def _serve(self) -> None:
        self.httpd.serve_forever(poll_interval=0.5)

    def url(self, i: int) -> str:
        return f"{self.base}/f{i}.xml"

    def cpu_s(self) -> float:
        import psutil

        try:
            t = psutil.Process(self.proc.pid).cpu_times()
        except psutil.Error:
            return 0.0
        return t.user + t.system

    def hits(self) -> list[int]:
        return list(self.counts[1:])

    def reset(self) -> None:
        for i in range(self.n + 1):
            self.counts[i] = 0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(5)


def floor_fetch(server: FeedServer, concurrency: int) -> float:
    """Seconds a bare client with `concurrency` threads takes to GET every feed once."""
    local = threading.local()

    def get(i: int) -> None:
        conn = getattr(local, "conn", None) or http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        local.conn = conn
        conn.request("GET", f"/floor/f{i}.xml")
        res = conn.getresponse()
        res.read()
        if res.status != 200:
            raise SystemExit(f"the floor's GET of feed {i} answered {res.status}")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(get, range(1, server.n + 1)))
    return time.perf_counter() - t0


# --- processes we start ----------------------------------------------------------------------------------


def child_env(**hustings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUSTINGS_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update({f"HUSTINGS_{k.upper()}": str(v) for k, v in hustings.items()})
    return env


class Proc:
    """A command of ours in its own session, its log in a file; its process tree's CPU and peak RSS."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log: Path):
        self.name, self.cmd, self.log_path = name, cmd, log
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.peak_rss = self.peak_main = 0  # bytes: the tree (children's shared pages counted again), the process
        self.last_cpu = 0.0

    def tree(self):
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            return [root] + root.children(recursive=True)
        except psutil.Error:
            return []

    def rss(self) -> int:
        import psutil

        total = 0
        for k, p in enumerate(self.tree()):
            try:
                rss = p.memory_info().rss
            except psutil.Error:
                continue
            total += rss
            if k == 0:
                self.peak_main = max(self.peak_main, rss)
        self.peak_rss = max(self.peak_rss, total)
        return total

    def pss(self) -> int:
        """The tree's proportional set size in bytes: pages shared after a fork counted once."""
        return sum(bench_index._pss_kb(p.pid) for p in self.tree()) * 1024

    def cpu_s(self) -> float:
        """CPU of the tree, and of its children already reaped (a worker's parse pools come and go)."""
        import psutil

        total = 0.0
        for k, p in enumerate(self.tree()):
            try:
                t = p.cpu_times()
            except psutil.Error:
                continue
            total += t.user + t.system + (t.children_user + t.children_system if k == 0 else 0.0)
        self.last_cpu = max(self.last_cpu, total)
        return self.last_cpu

    def text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self.log.close()


def log_problems(text: str) -> list[str]:
    """Lines of a log that say something went wrong."""
    return [line for line in text.splitlines()
            if re.search(r"Traceback|\bERROR\b|\bCRITICAL\b|\bWARNING\b|Error:", line)
            # a dispatch pass longer than the 1 s interval makes APScheduler skip the next, and
            # waitress says when a request waits for one of its 8 threads: both expected under load
            and "maximum number of running instances reached" not in line
            and "Task queue depth" not in line]


# --- part 1: workers ---------------------------------------------------------------------------------------


def workers_template(server: FeedServer, work: Path) -> str:
    """A migrated database holding every feed (all due), copied for each run."""
    from aggregator import db, feed_store

    name = create_database()
    engine = engine_for(pg_url(name), work)
    try:
        db.migrate(engine)
        for i in range(1, server.n + 1):
            feed_store.add_feed(engine, server.url(i), title=f"Loopback blog {i}")
    finally:
        engine.dispose()
    return name


def fetch_state(engine) -> tuple[int, int, datetime | None, datetime | None]:
    """(feeds fetched, feeds failed, first and last success) from the database."""
    import sqlalchemy as sa

    from aggregator.db import feeds

    with engine.connect() as conn:
        row = conn.execute(sa.select(
            sa.func.count(feeds.c.last_success_at),
            sa.func.count().filter(sa.and_(feeds.c.last_success_at.is_(None), feeds.c.error_count > 0)),
            sa.func.min(feeds.c.last_success_at), sa.func.max(feeds.c.last_success_at))).one()
    return row[0], row[1], row[2], row[3]


def run_workers(n: int, server: FeedServer, template: str, a, work: Path) -> dict:
    import sqlalchemy as sa

    from aggregator.db import feeds, fetches, posts

    name = create_database(template)
    url = pg_url(name)
    run_dir = Path(tempfile.mkdtemp(prefix=f"workers-{n}-", dir=work))
    engine = engine_for(url, run_dir)
    from aggregator import db

    db.migrate(engine)  # a no-op, unless the code gained a migration since the template was made
    server.reset()
    procs: list[Proc] = []
    peak_sum = peak_pss = 0
    try:
        busy0, t0 = bench_index.machine_busy_s(), time.perf_counter()
        pg0, own0, feed0 = PG_METER.cpu_s(), time.process_time(), server.cpu_s()
        t0_wall = datetime.now(UTC)
        for k in range(n):
            env = child_env(database_url=url, data_dir=run_dir / f"worker-{k}", allow_networks="127.0.0.1/32",
                            dispatch_every_s="1", log_level="INFO", fetch_per_host=str(a.fetch_per_host),
                            **dict(kv.split("=", 1) for kv in a.set))
            procs.append(Proc(f"worker-{k}", [sys.executable, "-m", "hustings", "worker"], env,
                              run_dir / f"worker-{k}.log"))
        limit = max(120.0, 4 * a.feeds * a.latency_ms / 1000 / n / min(a.fetch_workers, a.fetch_per_host))
        fetched = failed = 0
        first = last = None
        done_at = None
        cpu_start, pg_start, fetched_start = 0.0, pg0, 0
        k = 0
        while time.perf_counter() - t0 < limit:
            peak_sum = max(peak_sum, sum(p.rss() for p in procs))
            k += 1
            if k % 5 == 0:  # smaps_rollup costs more than the RSS: every 0.5 s
                peak_pss = max(peak_pss, sum(p.pss() for p in procs))
            cpu_now = sum(p.cpu_s() for p in procs)
            pg_now = PG_METER.cpu_s()
            fetched, failed, first, last = fetch_state(engine)
            if first is None:  # start-up (imports, schema check) ends with the first stored fetch
                cpu_start, pg_start, fetched_start = cpu_now, pg_now, fetched
            if fetched + failed >= a.feeds:
                done_at = time.perf_counter()
                break
            dead = [p for p in procs if p.proc.poll() is not None]
            if dead:
                raise SystemExit(f"{dead[0].name} exited {dead[0].proc.returncode}:\n{dead[0].text()[-3000:]}")
            time.sleep(SAMPLE_S)
        wall = (done_at or time.perf_counter()) - t0
        busy_at_done = bench_index.machine_busy_s()
        cpu = sum(p.cpu_s() for p in procs)
        pg_cpu, own_cpu, feed_cpu = PG_METER.cpu_s() - pg0, time.process_time() - own0, server.cpu_s() - feed0
        settle_end = time.perf_counter() + a.settle
        while time.perf_counter() < settle_end:  # more dispatch passes: nothing may be fetched again
            peak_sum = max(peak_sum, sum(p.rss() for p in procs))
            time.sleep(SAMPLE_S)
        hits = server.hits()
        with engine.connect() as conn:
            stored = conn.execute(sa.select(sa.func.count()).select_from(posts)).scalar()
            claims_left = conn.execute(sa.select(sa.func.count()).select_from(feeds)
                                       .where(feeds.c.claimed_by != "")).scalar()
            history_twice = conn.execute(sa.select(sa.func.count()).select_from(
                sa.select(fetches.c.feed_id).group_by(fetches.c.feed_id)
                .having(sa.func.count() > 1).subquery())).scalar()
            errors = [r[0] for r in conn.execute(sa.select(feeds.c.last_error).where(feeds.c.last_error != "")
                                                 .limit(3))]
            # Each refresh's own time (GET, parse, until its row is written): how busy the fetch threads were.
            refresh_s, refresh_ms = conn.execute(sa.select(sa.func.sum(fetches.c.duration_ms) / 1000.0,
                                                           sa.func.avg(fetches.c.duration_ms))).one()
    finally:
        for p in procs:
            p.stop()
        engine.dispose()
        drop_database(name)
    shares, problems = [], []
    for p in procs:
        text = p.text() if not p.log.closed else p.log_path.read_text(errors="replace")
        shares.append(sum(int(x) for x in re.findall(r"dispatched (\d+) feeds", text)))
        problems += [f"{p.name}: {line}" for line in log_problems(text)]
    twice = [i + 1 for i, h in enumerate(hits) if h > 1]
    never = [i + 1 for i, h in enumerate(hits) if h == 0]
    return dict(
        workers=n, wall=wall, complete=done_at is not None, fetched=fetched, failed=failed,
        startup=(first - t0_wall).total_seconds() if first else float("nan"),
        span=(last - first).total_seconds() if first and last else float("nan"),
        hits_min=min(hits), hits_max=max(hits), twice=twice, never=never, other_requests=server.counts[0],
        stored=stored, claims_left=claims_left, history_twice=history_twice, errors=errors,
        shares=shares, problems=problems, peak_each=[p.peak_rss for p in procs], peak_sum=peak_sum,
        peak_main=max(p.peak_main for p in procs), peak_pss=peak_pss, refresh_ms=float(refresh_ms or 0),
        cpu_ms_feed=(cpu - cpu_start) * 1000 / max(1, fetched - fetched_start),
        pg_ms_feed=(pg0 + pg_cpu - pg_start) * 1000 / max(1, fetched - fetched_start),
        busy_threads=float(refresh_s or 0) / max(1e-9, (last - first).total_seconds() if first and last else 0) / n,
        cpu=cpu, cores=cpu / wall, pg_cores=pg_cpu / wall, feed_cores=feed_cpu / wall, own_cores=own_cpu / wall,
        others=(max(0.0, (busy_at_done - busy0 - cpu - pg_cpu - own_cpu - feed_cpu) / wall)
                if busy0 is not None else float("nan")),
    )


def report_workers(runs: list[dict], a, pg_version: str) -> None:
    per = min(a.fetch_workers, a.fetch_per_host)
    print(f"\nWORKERS: {a.feeds:,} feeds on 127.0.0.1, {a.latency_ms:g} ms each; fetch_workers {a.fetch_workers}, "
          f"fetch_per_host {a.fetch_per_host}, dispatch every 1 s{''.join(', ' + kv for kv in a.set)}; "
          f"PostgreSQL {pg_version}; {os.cpu_count()} cores")
    print(f"  {'workers':>7} {'wall s':>7} {'start s':>7} {'span s':>7} {'feeds/s':>8} {'speedup':>7} "
          f"{'floor s':>7} {'span/floor':>10} {'fetches/feed':>12} {'not 1':>5} "
          f"{'peak MB: worker; trees / all / PSS':>38} {'cores: workers/pg/feeds+bench/others':>36}  feeds per worker")
    ones = [r["wall"] for r in runs if r["workers"] == 1]
    base = statistics.median(ones) if ones else None  # speedup: against the median of one worker's runs
    for r in runs:
        floor = r["floor"]
        each = f"{r['peak_main'] / 2**20:.0f}; " + "/".join(f"{x / 2**20:.0f}" for x in r["peak_each"])
        memory = f"{each} / {r['peak_sum'] / 2**20:.0f} / {r['peak_pss'] / 2**20:.0f}"
        speed = f"{base / r['wall']:.2f}" if base else "-"
        bad = len(r["twice"]) + len(r["never"])
        cores = f"{r['cores']:.2f}/{r['pg_cores']:.2f}/{r['feed_cores'] + r['own_cores']:.2f}/{r['others']:.2f}"
        print(f"  {r['workers']:>7} {r['wall']:7.1f} {r['startup']:7.1f} {r['span']:7.1f} "
              f"{r['fetched'] / r['wall']:8.1f} {speed:>7} {floor:7.1f} {floor / r['span']:10.2f} "
              f"{r['hits_min']:>5} / {r['hits_max']:<4} {bad:>5} {memory:>38} {cores:>36}  "
              f"{', '.join(map(str, r['shares']))}")
    print(f"  refresh time per feed (GET, parse, until its row is written; fetches.duration_ms) and fetch threads busy "
          f"per worker\n  over the span, of {a.fetch_workers} (the rest is each batch's tail, claims and dispatch "
          f"passes):")
    for r in runs:
        print(f"  {r['workers']:>7} workers: {r['refresh_ms']:.0f} ms per feed (the server answers after "
              f"{a.latency_ms:g}), {r['busy_threads']:.1f} threads busy; CPU per feed after start-up: workers "
              f"{r['cpu_ms_feed']:.1f} ms, PostgreSQL {r['pg_ms_feed']:.1f} ms")
    if a.repeat > 1:
        print(f"  medians of {a.repeat} interleaved runs (min\u2013max):")
        for n in sorted({r["workers"] for r in runs}):
            rs = [r for r in runs if r["workers"] == n]
            print(f"  {n:>7} workers: wall {bench_web.spread([r['wall'] for r in rs], '{:.1f}')} s, span "
                  f"{bench_web.spread([r['span'] for r in rs], '{:.1f}')} s, speedup "
                  + (bench_web.spread([base / r['wall'] for r in rs], '{:.2f}') if base else "-")
                  + f", span/floor {bench_web.spread([r['floor'] / r['span'] for r in rs], '{:.2f}')}")
    print(f"  wall: launch of the first worker to the last feeds.last_success_at seen (polled every {SAMPLE_S} s);\n"
          f"  start: launch to the first stored fetch; span: first to last stored fetch;\n"
          f"  floor: a bare client, {per} threads per worker, every feed once;\n"
          f"  peak MB: RSS of the largest worker process alone; of each worker's tree (its forkserver and parse\n"
          f"  processes share pages with it, counted again); of all trees at once; PSS of all trees at once;\n"
          f"  cores: CPU / wall of the workers (parse processes included), of PostgreSQL's backends for the bench's\n"
          f"  role, of the feed server and this script, and of every other process on the machine")
    failures = []
    for r in runs:
        n = r["workers"]
        if not r["complete"]:
            failures.append(f"{n} worker(s): only {r['fetched']} of {a.feeds} feeds fetched ({r['failed']} failed) "
                            f"in {r['wall']:.0f} s; errors: {r['errors']}")
        if r["twice"]:
            failures.append(f"{n} worker(s): {len(r['twice'])} feeds fetched more than once: {r['twice'][:20]}")
        if r["never"]:
            failures.append(f"{n} worker(s): {len(r['never'])} feeds never requested: {r['never'][:20]}")
        if r["history_twice"]:
            failures.append(f"{n} worker(s): {r['history_twice']} feeds with more than one fetch row")
        if r["stored"] != a.feeds:
            failures.append(f"{n} worker(s): {r['stored']} posts stored, {a.feeds} expected")
        if r["claims_left"]:
            failures.append(f"{n} worker(s): {r['claims_left']} claims left after the run")
        if r["other_requests"]:
            failures.append(f"{n} worker(s): {r['other_requests']} requests for something not a feed")
        failures += [f"{n} worker(s) log: {line}" for line in r["problems"][:10]]
    print("  FAILURES:\n    " + "\n    ".join(failures) if failures else
          "  every feed fetched exactly once in every run; no claim left, no error in the workers' logs")


# --- part 2: the web ----------------------------------------------------------------------------------------


def seed_site(engine, posts_n: int, seed: int) -> None:
    """The front page's data: web_corpus's blogs and posts, first seen over 30 days, recommendations, picks."""
    import sqlalchemy as sa
    import web_corpus as wc

    from aggregator import db, feed_store, post_store
    from aggregator.models import Post
    from community import moderation

    db.migrate(engine)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=wc.DAYS)
    blog_list = wc.blogs(seed)
    feeds = [feed_store.add_feed(engine, f"http://127.0.0.1:9/{b['slug']}/feed.xml", title=b["title"],
                                 site_url=f"https://{b['slug']}.example.net/", category=b["category"],
                                 now=start - timedelta(days=90))[0] for b in blog_list]
    with db.writing(engine) as conn:  # never due: nothing fetches during the benchmark
        conn.execute(sa.update(db.feeds).values(next_check_at=NEVER))
    r = random.Random(f"scale-layout:{seed}")
    weights = [b["weight"] for b in blog_list]
    batches: dict[tuple[int, int], list[int]] = {}
    for n in range(posts_n):
        k = r.choices(range(len(blog_list)), weights)[0]
        batches.setdefault((r.randrange(wc.DAYS * 24), k), []).append(n)
    for (hour, k), numbers in sorted(batches.items()):
        at = start + timedelta(hours=hour, minutes=r.randint(0, 59))
        batch = []
        for n in numbers:
            p = wc.make_post(seed, n, blog_list[k])
            batch.append(Post(feeds[k].id, p["url"], p["url"], p["title"], p["content_html"],
                              published=at - timedelta(seconds=p["claimed_lag_s"]), author=p["author"],
                              summary=p["summary"], tags=p["tags"], identity=f"g:{p['url']}"))
        post_store.save_posts(engine, feeds[k], batch, now=at)
    with db.reading(engine) as conn:
        ids = [row.id for row in conn.execute(sa.select(db.posts.c.id).order_by(db.posts.c.id))]
    recs = {i: min(900, int(r.paretovariate(1.1))) for i in ids if r.random() < 0.4}
    with db.writing(engine) as conn:
        seq = db.next_counter(conn, db.CHANGE_COUNTER, len(recs))
        conn.execute(sa.update(db.posts).where(db.posts.c.id == sa.bindparam("pid"))
                     .values(recommendations=sa.bindparam("recs"), change_seq=sa.bindparam("seq")),
                     [dict(pid=i, recs=v, seq=seq + j) for j, (i, v) in enumerate(sorted(recs.items()))])
    for j, i in enumerate(r.sample(ids[-300:], 3)):
        moderation.feature_post(engine, i, actor="bench", now=end - timedelta(hours=3 * j))


class Site:
    """One configuration: a database (a copy of the backend's seeded template) and its serve nodes."""

    def __init__(self, backend: str, nodes: int, template: str, a, work: Path):
        self.backend, self.nodes_n = backend, nodes
        self.key = f"{backend}-{nodes}"
        self.dir = work / f"web-{self.key}"
        self.dir.mkdir()
        if backend == "sqlite":
            shared = self.dir / "shared"
            shared.mkdir()
            shutil.copyfile(template, shared / "hustings.sqlite3")
            self.db_name, self.url = None, f"sqlite:///{shared / 'hustings.sqlite3'}"
        else:
            self.db_name = create_database(template)
            self.url = pg_url(self.db_name)
        self.engine = engine_for(self.url, self.dir / "bench")
        from aggregator import db

        db.migrate(self.engine)  # as run_workers: the template may be older than the code
        per_node = max(1, a.web_processes // nodes)
        self.nodes: list[Proc] = []
        self.ports: list[int] = []
        for k in range(nodes):
            port = bench_web.free_port()
            env = child_env(database_url=self.url, data_dir=self.dir / f"node-{k}", secret_key=SECRET_KEY,
                            trusted_proxies="127.0.0.1/32", log_level="WARNING")
            cmd = [sys.executable, "-m", "hustings", "serve", "--host", "127.0.0.1", "--port", str(port),
                   "--workers", str(per_node)]
            self.nodes.append(Proc(f"{self.key} node {k}", cmd, env, self.dir / f"node-{k}.log"))
            self.ports.append(port)
        self.label = f"{'SQLite' if backend == 'sqlite' else 'PostgreSQL'}, {nodes} node{'s' * (nodes > 1)} " \
                     f"x {per_node} process{'es' * (per_node > 1)}"

    def wait_ready(self, timeout: float = 90) -> None:
        for node, port in zip(self.nodes, self.ports):
            deadline = time.monotonic() + timeout
            while True:
                if node.proc.poll() is not None:
                    raise SystemExit(f"{node.name} exited {node.proc.returncode}:\n{node.text()[-3000:]}")
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    conn.request("GET", "/healthz")
                    if conn.getresponse().status == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"{node.name} did not answer /healthz in {timeout:.0f} s:\n{node.text()[-3000:]}")
                time.sleep(0.2)
        # serve keeps each node's search index in step with the database in a child process: the
        # first sync indexes every post, which must be over before anything is measured.
        from aggregator.settings import Settings
        from index import replica

        for k, node in enumerate(self.nodes):
            settings = Settings(data_dir=self.dir / f"node-{k}", database_url=self.url)
            deadline = time.monotonic() + timeout
            while replica.lag(self.engine, settings)["changes"] and time.monotonic() < deadline:
                time.sleep(0.5)

    def new_poll(self) -> tuple[int, list[int]]:
        from community.polls import store as poll_store

        record = poll_store.create_poll(self.engine, question="Which bus route should come back first?",
                                        options=list(POLL_OPTIONS), created_by="bench")
        return record.id, [o.id for o in record.poll.options]

    def counted(self, poll_id: int) -> int:
        import sqlalchemy as sa

        from aggregator.db import ballots

        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(ballots)
                                .where(ballots.c.poll_id == poll_id)).scalar()

    def cpu_s(self) -> float:
        return sum(n.cpu_s() for n in self.nodes)

    def sample(self) -> None:
        for n in self.nodes:
            n.rss()

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()
        self.engine.dispose()
        if self.db_name:
            drop_database(self.db_name)


HIST_LUA = """
done = function(summary, latency, requests)
  io.write("HIST-BEGIN\\n")
  for i = 1, #latency do
    local v, c = latency(i)
    io.write(string.format("%d %d\\n", v, c))
  end
  io.write("HIST-END\\n")
end
"""


def hist_pct(hist: Counter, p: float) -> float:
    """The p-quantile (0..1) of a {microseconds: count} histogram, in ms."""
    total, seen = sum(hist.values()), 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= p * total:
            return value / 1000
    return float("nan")


def front_page_load(site: Site, a, duration: float, lua: Path) -> dict:
    """wrk on / of every node at once, the connections split evenly; histograms merged."""
    per = max(1, a.connections // site.nodes_n)
    threads = max(1, a.threads // site.nodes_n)
    runs = []
    for port in site.ports:
        out = tempfile.TemporaryFile()
        cmd = ["wrk", f"-t{threads}", f"-c{per}", f"-d{max(1, round(duration))}s", "--latency", "-s", str(lua),
               f"http://127.0.0.1:{port}/"]
        runs.append((subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT), out))
    hist, rps, requests, sock_err, non2xx, load_cpu = Counter(), 0.0, 0, 0, 0, 0.0
    for proc, out in runs:
        _, status, usage = os.wait4(proc.pid, 0)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
        out.close()
        if os.waitstatus_to_exitcode(status) != 0 or "Requests/sec" not in text:
            raise SystemExit(f"wrk failed on {site.key}:\n{text[-2000:]}")
        r = bench_web.parse_wrk(text)
        rps += r["rps"]
        requests += r["requests"]
        sock_err += r["sock_err"]
        non2xx += r["non2xx"]
        load_cpu += usage.ru_utime + usage.ru_stime
        block = text.split("HIST-BEGIN", 1)[1].split("HIST-END", 1)[0]
        for line in block.split("\n"):
            if line.strip():
                v, c = line.split()
                hist[int(float(v))] += int(float(c))
    return dict(rps=rps, requests=requests, p50_ms=hist_pct(hist, .5), p99_ms=hist_pct(hist, .99),
                errors=sock_err + non2xx, loadgen_cpu=load_cpu)


def _voters(ports: list[int], poll_id: int, options: list[int], readers: int, duration: float, index: int,
            out_q) -> None:
    """One load process: `readers` threads, each a loop of new readers who open the poll, vote and
    see the results, every request to the next node in turn."""
    end = time.perf_counter() + duration
    lock = threading.Lock()
    total = dict(lat={"poll": [], "vote": [], "results": []}, status=Counter(), acked=0, readers=0, errors=0,
                 samples=[])

    def loop(t: int) -> None:
        rnd = random.Random(f"{index}:{t}")
        conns = [http.client.HTTPConnection("127.0.0.1", p, timeout=30) for p in ports]
        turn = t
        lat = {"poll": [], "vote": [], "results": []}
        status, acked, done, errors, samples = Counter(), 0, 0, 0, []

        def request(kind, method, path, headers, body=None):
            nonlocal turn, errors
            node = turn % len(ports)
            turn += 1
            t0 = time.perf_counter()
            try:
                conns[node].request(method, path, body=body, headers=headers)
                res = conns[node].getresponse()
                data = res.read()
            except (OSError, http.client.HTTPException):
                errors += 1
                conns[node].close()
                conns[node] = http.client.HTTPConnection("127.0.0.1", ports[node], timeout=30)
                return None, b"", None
            lat[kind].append((time.perf_counter() - t0) * 1000)
            status[(kind, res.status)] += 1
            if res.will_close:
                conns[node].close()
                conns[node] = http.client.HTTPConnection("127.0.0.1", ports[node], timeout=30)
            return res.status, data, res

        k = 0
        while time.perf_counter() < end:
            k += 1
            n = ((index * 64 + t) << 12) + (k % 4096)
            ip = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"  # only ever a header: no packet goes there
            code, page, res = request("poll", "GET", f"/polls/{poll_id}", {"X-Forwarded-For": ip})
            if code != 200:
                continue
            cookie = "; ".join(c.split(";", 1)[0] for c in res.msg.get_all("Set-Cookie") or [])
            m = re.search(rb'name="csrf_token" value="([^"]+)"', page)
            if not m or not cookie:
                if len(samples) < 3:
                    samples.append(f"poll page without {'a token' if not m else 'a cookie'}")
                continue
            form = urllib.parse.urlencode([("csrf_token", m.group(1).decode()), ("option", rnd.choice(options))])
            headers = {"X-Forwarded-For": ip, "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
            code, page, res = request("vote", "POST", f"/polls/{poll_id}/vote", headers, form.encode())
            if code != 303:
                if code is not None and len(samples) < 3:
                    samples.append(f"vote answered {code}: {page[:300]!r}")
                continue
            acked += 1
            location = urllib.parse.urlsplit(res.getheader("Location", "")).path or f"/polls/{poll_id}/results"
            request("results", "GET", location, {"X-Forwarded-For": ip, "Cookie": cookie})
            done += 1
        for c in conns:
            c.close()
        with lock:
            for kind, xs in lat.items():
                total["lat"][kind] += xs
            total["status"].update(status)
            total["acked"] += acked
            total["readers"] += done
            total["errors"] += errors
            total["samples"] += samples

    threads = [threading.Thread(target=loop, args=(t,)) for t in range(readers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    total["status"] = [[k, s, c] for (k, s), c in total["status"].items()]
    out_q.put(total)


def vote_load(site: Site, poll_id: int, options: list[int], a, duration: float) -> dict:
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_voters, args=(site.ports, poll_id, options, max(1, a.readers // a.threads),
                                               duration, i, q)) for i in range(a.threads)]
    c0, t0 = os.times(), time.perf_counter()
    for p in procs:
        p.start()
    parts = [q.get() for _ in procs]
    for p in procs:
        p.join()
    wall = time.perf_counter() - t0
    c1 = os.times()
    lat = {k: [x for part in parts for x in part["lat"][k]] for k in ("poll", "vote", "results")}
    every = [x for xs in lat.values() for x in xs]
    status = Counter()
    for part in parts:
        for kind, code, count in part["status"]:
            status[(kind, code)] += count
    expected = {"poll": 200, "vote": 303, "results": 200}
    unexpected = {f"{k} {s}": c for (k, s), c in status.items() if s != expected[k]}
    acked = sum(part["acked"] for part in parts)
    return dict(
        rps=len(every) / wall, requests=len(every), ballots_s=acked / wall, acked=acked,
        p50_ms=bench_web.pct(every, .5) if every else float("nan"),
        p99_ms=bench_web.pct(every, .99) if every else float("nan"),
        p99_by_kind={k: bench_web.pct(xs, .99) if xs else float("nan") for k, xs in lat.items()},
        errors=sum(part["errors"] for part in parts) + sum(unexpected.values()), unexpected=unexpected,
        samples=[s for part in parts for s in part["samples"]][:3],
        loadgen_cpu=(c1.children_user + c1.children_system) - (c0.children_user + c0.children_system))


def measure(site: Site, what: str, a, duration: float, lua: Path) -> dict:
    busy0, cpu0, t0 = bench_index.machine_busy_s(), site.cpu_s(), time.perf_counter()
    pg0, own0 = PG_METER.cpu_s(), time.process_time()
    if what == "front":
        r = front_page_load(site, a, duration, lua)
    else:
        poll_id, options = site.new_poll()
        r = vote_load(site, poll_id, options, a, duration)
        time.sleep(0.2)
        r["counted"] = site.counted(poll_id)
    wall = time.perf_counter() - t0
    r["server_cores"] = (site.cpu_s() - cpu0) / wall
    r["pg_cores"] = (PG_METER.cpu_s() - pg0) / wall
    # CPU per request: what the servers and PostgreSQL cost, however many cores others left them
    r["server_ms"] = r["server_cores"] * wall * 1000 / max(1, r["requests"])
    r["pg_ms"] = r["pg_cores"] * wall * 1000 / max(1, r["requests"])
    r["loadgen_cores"] = (r["loadgen_cpu"] + time.process_time() - own0) / wall  # this script's too
    busy = bench_index.machine_busy_s()
    known = r["server_cores"] + r["loadgen_cores"] + (r["pg_cores"] if r["pg_cores"] == r["pg_cores"] else 0)
    r["others_cores"] = (max(0.0, (busy - busy0) / wall - known)
                         if busy is not None and busy0 is not None else float("nan"))
    return r


class MemoryWatch:
    def __init__(self, sites: list[Site]):
        self.sites, self.done = sites, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.done.is_set():
            for s in self.sites:
                s.sample()
            PG_METER.cpu_s()
            self.done.wait(0.25)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def report_web(sites: list[Site], results: dict, a) -> None:
    spread = bench_web.spread
    print(f"\nWEB: {a.posts:,} posts; {a.web_processes} serve worker processes per configuration (split between "
          f"the nodes), waitress 8 threads each; {a.duration:g} s runs, median of {a.runs} interleaved round(s) "
          f"(min\u2013max); load generator and servers share {os.cpu_count()} cores")
    print(f"  front page: wrk -c{a.connections} on / (per node: -c{a.connections}/nodes); votes: {a.readers} "
          f"readers in {a.threads} Python processes, each GET poll page + POST ballot + GET results, round robin")
    print(f"  {'configuration':<34} {'load':<6} {'req/s':>18} {'ballots/s':>10} {'p50 ms':>7} {'p99 ms':>16} "
          f"{'errors':>6} {'cores: server/pg/load/others':>29} {'CPU ms/req: server/pg':>21}")
    for s in sites:
        for what in ("front", "votes"):
            rs = results[(s.key, what)]
            cores = "/".join(f"{statistics.median(r[k] for r in rs):.2f}"
                             for k in ("server_cores", "pg_cores", "loadgen_cores", "others_cores"))
            ballots = f"{statistics.median(r['ballots_s'] for r in rs):,.0f}" if what == "votes" else ""
            cost = "/".join(f"{statistics.median(r[k] for r in rs):.2f}" for k in ("server_ms", "pg_ms"))
            p50 = statistics.median(r["p50_ms"] for r in rs)
            print(f"  {s.label:<34} {what:<6} {spread([r['rps'] for r in rs]):>18} {ballots:>10} "
                  f"{p50:7.1f} {spread([r['p99_ms'] for r in rs], '{:.1f}'):>16} "
                  f"{sum(r['errors'] for r in rs):>6} {cores:>29} {cost:>21}")
    print("\n  votes, p99 by request (ms; median over rounds): poll page / POST ballot / results page; "
          "ballots acknowledged (303) against counted in the database")
    failures = []
    for s in sites:
        rs = results[(s.key, "votes")]
        by = "/".join(f"{statistics.median(r['p99_by_kind'][k] for r in rs):.1f}" for k in ("poll", "vote", "results"))
        acked, counted = sum(r["acked"] for r in rs), sum(r["counted"] for r in rs)
        print(f"  {s.label:<34} {by:>20}   acknowledged {acked:,}, counted {counted:,}")
        if acked != counted:
            failures.append(f"{s.label}: {acked} ballots acknowledged but {counted} counted")
        for r in rs:
            if r["unexpected"]:
                failures.append(f"{s.label}: unexpected answers {r['unexpected']}; e.g. {r['samples']}")
        for what in ("front", "votes"):
            errors = sum(r["errors"] for r in results[(s.key, what)])
            if errors and what == "front":
                failures.append(f"{s.label}: {errors} socket errors or non-2xx answers on the front page")
        for node in s.nodes:
            failures += [f"{node.name} log: {line}" for line in log_problems(node.text())[:5]]

    def ratio(k1: str, k2: str, what: str) -> str:
        x = [r["rps"] for r in results.get((k1, what), [])]
        y = [r["rps"] for r in results.get((k2, what), [])]
        return f"{statistics.median(x) / statistics.median(y):.2f}" if x and y else "-"

    print("\n  ratios of req/s (medians): two nodes / one node, and PostgreSQL / SQLite")
    keys = {s.key for s in sites}
    for what in ("front", "votes"):
        parts = [f"{b}: 2/1 nodes {ratio(f'{b}-2', f'{b}-1', what)}" for b in ("sqlite", "postgresql")
                 if f"{b}-1" in keys and f"{b}-2" in keys]
        parts += [f"{n} node(s): PostgreSQL/SQLite {ratio(f'postgresql-{n}', f'sqlite-{n}', what)}" for n in (1, 2)
                  if f"postgresql-{n}" in keys and f"sqlite-{n}" in keys]
        print(f"  {what:<6} " + "; ".join(parts))
    print("\n  peak RSS of each configuration's serve processes (arbiter, workers and index replica, per node), "
          "and how often\n  waitress logged a request waiting for a thread (all 8 of a process busy):")
    for s in sites:
        queued = sum(n.text().count("Task queue depth") for n in s.nodes)
        print(f"  {s.label:<34} " + ", ".join(f"node {k} {n.peak_rss / 2**20:.0f} MB" for k, n in enumerate(s.nodes))
              + f"; queued {queued:,} times")
    print("  FAILURES:\n    " + "\n    ".join(failures) if failures else
          "  every acknowledged ballot counted once; no error answer, no error in the nodes' logs")


# --- main --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="\n".join(__doc__.split("\n\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--feeds", type=int, default=1000, help="loopback feeds (default 1,000)")
    p.add_argument("--latency-ms", type=float, default=200, help="the feed server's delay per answer (default 200)")
    p.add_argument("--workers", default="1,2,4", help="worker counts to run (default 1,2,4)")
    p.add_argument("--fetch-per-host", type=int, default=8,
                   help="the workers' fetch_per_host (default 8 = fetch_workers; the setting's default is 2)")
    p.add_argument("--settle", type=float, default=3, help="seconds the workers run on after the last fetch "
                                                           "(default 3: three more dispatch passes)")
    p.add_argument("--repeat", type=int, default=1, help="runs of each worker count, interleaved (default 1)")
    p.add_argument("--no-floor", action="store_true", help="skip the bare client's floor")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="any other setting for the workers (HUSTINGS_NAME=VALUE), e.g. parse_processes=1")
    p.add_argument("--backends", default="sqlite,postgresql", help="web: sqlite, postgresql or both (default)")
    p.add_argument("--nodes", default="1,2", help="web: node counts (default 1,2)")
    p.add_argument("--web-processes", type=int, default=2, help="serve worker processes per configuration, split "
                                                                "between its nodes (default 2)")
    p.add_argument("--posts", type=int, default=1000, help="posts behind the front page (default 1,000)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--runs", type=int, default=1, help="interleaved rounds of the web loads (default 1)")
    p.add_argument("--duration", type=float, default=10, help="seconds per web load run (default 10)")
    p.add_argument("--warmup", type=float, default=2, help="seconds of each load before the rounds (default 2)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections in all (default 32)")
    p.add_argument("--readers", type=int, default=16, help="concurrent voting readers (default 16)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads / Python load processes (default 2)")
    p.add_argument("--only", choices=("workers", "web"), help="run one part")
    p.add_argument("--quick", action="store_true", help="200 feeds, 1 and 2 workers, 500 posts, 3-second runs")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="S",
                   help="before each part and round, wait up to S seconds for other processes to go quiet")
    p.add_argument("--keep", type=Path, metavar="DIR", help="keep the logs and data directories in DIR")
    a = p.parse_args(argv)
    if a.quick:
        a.feeds, a.workers, a.posts, a.duration, a.warmup = min(a.feeds, 200), "1,2", min(a.posts, 500), 3, 1
    a.fetch_workers = int(dict(kv.split("=", 1) for kv in a.set).get("fetch_workers", 8))
    worker_counts = [int(x) for x in a.workers.split(",") if x.strip()]
    backends = [b.strip() for b in a.backends.split(",") if b.strip()]
    node_counts = [int(x) for x in a.nodes.split(",") if x.strip()]
    if a.only != "workers" and not shutil.which("wrk"):
        p.error("the web part needs wrk (apt-get install -y wrk), or --only workers")

    commit = bench_web.code_version(*bench_web.CODE)
    print(f"code {commit}; {bench_web.versions()}", flush=True)
    global PG_METER
    pg_version = provision_postgres()
    PG_METER = PgMeter()
    print(f"PostgreSQL {pg_version} on {PG_HOST}:{PG_PORT} (role {PG_ROLE}); wrk: "
          f"{shutil.which('wrk') or 'not installed'}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="hustings-bench-scale-"))
    lua = work / "hist.lua"
    lua.write_text(HIST_LUA)
    started = time.perf_counter()
    templates: list[str] = []
    sites: list[Site] = []
    server = None
    try:
        if a.only != "web":
            server = FeedServer(a.feeds, a.latency_ms / 1000)
            print(f"feed server on {server.base}: {a.feeds:,} feeds, {a.latency_ms:g} ms each", flush=True)
            templates.append(workers_template(server, work))
            runs = []
            for rep in range(a.repeat):  # interleaved: 1, 2, 4, 1, 2, 4 ...
                for n in worker_counts:
                    bench_index.wait_quiet(a.wait_quiet)
                    r = run_workers(n, server, templates[-1], a, work)
                    r["floor"] = float("nan")
                    if not a.no_floor:
                        r["floor"] = floor_fetch(server, n * min(a.fetch_workers, a.fetch_per_host))
                    runs.append(r)
                    print(f"  {n} worker(s): {r['fetched']:,} feeds in {r['wall']:.1f} s (start {r['startup']:.1f} s, "
                          f"span {r['span']:.1f} s; floor {r['floor']:.1f} s); fetches per feed {r['hits_min']}.."
                          f"{r['hits_max']}; feeds per worker {r['shares']}; {r['cores']:.2f} cores", flush=True)
            server.stop()
            server = None
            report_workers(runs, a, pg_version)

        if a.only != "workers":
            from aggregator import db
            from aggregator.settings import Settings

            bench_index.wait_quiet(a.wait_quiet)
            sources = {}
            for backend in backends:
                t0 = time.perf_counter()
                if backend == "sqlite":
                    tpl = work / "web-template"
                    engine = db.make_engine(Settings(data_dir=tpl))
                    seed_site(engine, a.posts, a.seed)
                    with engine.connect() as conn:
                        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                    engine.dispose()
                    sources[backend] = str(tpl / "hustings.sqlite3")
                else:
                    name = create_database()
                    templates.append(name)
                    engine = engine_for(pg_url(name), work)
                    seed_site(engine, a.posts, a.seed)
                    engine.dispose()
                    sources[backend] = name
                print(f"seeded {backend}: {a.posts:,} posts in {time.perf_counter() - t0:.0f} s", flush=True)
            for backend in backends:
                for n in node_counts:
                    sites.append(Site(backend, n, sources[backend], a, work))
            for s in sites:
                s.wait_ready()
                print(f"  {s.label}: ports {', '.join(map(str, s.ports))}", flush=True)
            results = {(s.key, what): [] for s in sites for what in ("front", "votes")}
            with MemoryWatch(sites):
                for s in sites:  # fills every process's page cache, templates, pools
                    measure(s, "front", a, a.warmup, lua)
                    measure(s, "votes", a, a.warmup, lua)
                for rnd in range(a.runs):
                    bench_index.wait_quiet(a.wait_quiet)
                    for s in sites:
                        for what in ("front", "votes"):
                            r = measure(s, what, a, a.duration, lua)
                            results[(s.key, what)].append(r)
                            extra = (f" ballots/s {r['ballots_s']:.0f} (acknowledged {r['acked']}, counted "
                                     f"{r['counted']})" if what == "votes" else "")
                            print(f"  round {rnd + 1} {s.label:<34} {what:<6} {r['rps']:8,.0f} req/s  p50 "
                                  f"{r['p50_ms']:6.1f}  p99 {r['p99_ms']:7.1f} ms  errors {r['errors']}{extra}  "
                                  f"CPU ms/req {r['server_ms']:.2f}+{r['pg_ms']:.2f}  cores: server "
                                  f"{r['server_cores']:.2f} pg {r['pg_cores']:.2f} load {r['loadgen_cores']:.2f} "
                                  f"others {r['others_cores']:.2f}", flush=True)
            report_web(sites, results, a)
        print(f"\ntotal {time.perf_counter() - started:.0f} s")
        if bench_web.code_version(*bench_web.CODE) != commit:
            print(f"  WARNING: the code changed during the run ({commit} -> {bench_web.code_version(*bench_web.CODE)}): rerun")
    finally:
        for s in sites:
            try:
                s.stop()
            except Exception:  # noqa: BLE001
                pass
        if server is not None:
            server.stop()
        for name in templates:
            drop_database(name)
        if a.keep:
            a.keep.mkdir(parents=True, exist_ok=True)
            shutil.copytree(work, a.keep / work.name, symlinks=True)
            print(f"kept {a.keep / work.name}")
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
