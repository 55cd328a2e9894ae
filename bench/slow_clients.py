"""Slow clients: does /healthz still answer while N connections dribble a request header?

    python3 bench/slow_clients.py [--clients 8,50,200] [--seconds 30] [--servers serve,run,sync,gthread,gevent,waitress]

For each server and each N: the server starts as a subprocess on a free 127.0.0.1 port over a fresh
data directory (`hustings init`); N connections each send "GET /healthz HTTP/1.1\\r\\n" and then one
header byte every 2 seconds, never finishing, and reconnect at once whenever the server closes them
(an attacker's loop). Meanwhile a probe asks GET /healthz once a second on a new connection with a
10-second timeout. Printed per cell: probes answered / sent, the probe's median and worst latency,
and how often the server closed a slow connection. Nothing is asserted; the exit status is 0 unless a
server fails to start.

The servers (all with 2 processes where they fork, as `hustings serve --workers 2`):
  * serve:    the real command, `python -m hustings --data-dir D serve --port P --workers 2`
  * run:      the real command, `python -m hustings --data-dir D run --port P` (one process, scheduler beside)
  * sync:     gunicorn sync workers (what `serve` ran before issue 16)
  * gthread:  gunicorn gthread, 2 workers x 4 threads
  * gevent:   gunicorn gevent, 2 workers x 1,000 connections (needs `pip install gevent`)
  * waitress: waitress alone, one process, 8 threads, its default 100-connection limit (as `hustings run`
              was before issue 16)
Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))
sys.path.append(str(HERE))

from measuring import free_port  # noqa: E402

DRIBBLE_EVERY_S = 2.0  # one header byte per connection this often, as in issue 16
PROBE_EVERY_S = 1.0
PROBE_TIMEOUT_S = 10.0
SERVERS = ("serve", "run", "sync", "gthread", "gevent", "waitress")


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUSTINGS_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _serve_variant(kind: str, data_dir: Path, port: int) -> None:
    """A comparison server in this process (not a command of ours)."""
    from aggregator.settings import load_settings
    from web.app import make_app

    settings = load_settings(data_dir=str(data_dir), log_level="WARNING")
    if kind == "waitress":
        from waitress import serve

        serve(make_app(settings), host="127.0.0.1", port=port, threads=8, channel_timeout=30, _quiet=True)
        return
    from gunicorn.app.base import BaseApplication

    extra = {"sync": {"worker_class": "sync"},
             "gthread": {"worker_class": "gthread", "threads": 4},
             "gevent": {"worker_class": "gevent", "worker_connections": 1000}}[kind]

    class App(BaseApplication):
        def load_config(self):
            cfg = dict(bind=f"127.0.0.1:{port}", workers=2, timeout=30, keepalive=2, backlog=2048,
                       accesslog=None, errorlog="-", loglevel="warning", **extra)
            for k, v in cfg.items():
                self.cfg.set(k, v)

        def load(self):
            return make_app(settings)

    App().run()


class Server:
    def __init__(self, kind: str, data_dir: Path, log_dir: Path):
        self.kind, self.port = kind, free_port()
        if kind in ("serve", "run"):
            cmd = [sys.executable, "-m", "hustings", "--data-dir", str(data_dir), kind, "--host", "127.0.0.1",
                   "--port", str(self.port)] + (["--workers", "2"] if kind == "serve" else [])
        else:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--_serve", kind, "--data-dir", str(data_dir),
                   "--port", str(self.port)]
        self.log = open(log_dir / f"{kind}.log", "wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(), stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.kind} exited {self.proc.returncode}:\n{Path(self.log.name).read_text()}")
            if probe(self.port, 2) is not None:
                return
            time.sleep(0.2)
        raise SystemExit(f"{self.kind} did not answer in {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def probe(port: int, timeout: float) -> float | None:
    """Seconds /healthz took on a new connection, or None when it did not answer in time."""
    t = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)  # no proxy from the environment
    try:
        conn.request("GET", "/healthz")
        res = conn.getresponse()
        res.read()
        return time.perf_counter() - t if res.status == 200 else None
    except OSError:
        return None
    finally:
        conn.close()


class Dribblers:
    """N connections that each send a request line, then one header byte every DRIBBLE_EVERY_S."""

    HEAD = b"GET /healthz HTTP/1.1\r\n"
    TAIL = b"X-Slow: " + b"a" * 10_000  # never ends: no CRLF CRLF

    def __init__(self, port: int, n: int):
        self.port, self.n = port, n
        self.closed_by_server = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        s.sendall(self.HEAD)
        return [s, 0]

    def _run(self) -> None:
        conns = []
        for _ in range(self.n):
            try:
                conns.append(self._connect())
            except OSError:
                conns.append(None)
        while not self.done.wait(DRIBBLE_EVERY_S):
            for i, c in enumerate(conns):
                try:
                    if c is None:
                        conns[i] = self._connect()
                        continue
                    c[0].send(self.TAIL[c[1]:c[1] + 1])
                    c[1] = (c[1] + 1) % len(self.TAIL)
                except OSError:
                    self.closed_by_server += c is not None
                    if c is not None:
                        c[0].close()
                    try:
                        conns[i] = self._connect()
                    except OSError:
                        conns[i] = None
        for c in conns:
            if c is not None:
                c[0].close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def measure(server: Server, n: int, seconds: float) -> dict:
    """Probe once a second, each probe on its own thread, so one that hangs does not delay the next."""
    results: list[float | None] = []

    def one():
        results.append(probe(server.port, PROBE_TIMEOUT_S))

    with Dribblers(server.port, n) as d:
        time.sleep(DRIBBLE_EVERY_S * 1.5)  # every slow connection is open and has sent a byte or two
        probes = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t = threading.Thread(target=one, daemon=True)
            t.start()
            probes.append(t)
            time.sleep(PROBE_EVERY_S)
        for t in probes:
            t.join()
        closed = d.closed_by_server
    answered = [r for r in results if r is not None]
    return dict(sent=len(results), answered=len(answered), p50=statistics.median(answered) if answered else None,
                worst=max(answered) if answered else None, closed=closed)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", default="8,50,200", help="slow connections per cell, comma-separated")
    p.add_argument("--seconds", type=float, default=30, help="probing time per cell (default 30)")
    p.add_argument("--servers", default="serve,run,sync,gthread,gevent,waitress",
                   help=f"comma-separated, from {', '.join(SERVERS)}")
    p.add_argument("--_serve", help=argparse.SUPPRESS)
    p.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a._serve:
        _serve_variant(a._serve, a.data_dir, a.port)
        return 0
    kinds = [k.strip() for k in a.servers.split(",") if k.strip()]
    for k in kinds:
        if k not in SERVERS:
            p.error(f"unknown server {k!r}; choose from {', '.join(SERVERS)}")
    counts = [int(x) for x in a.clients.split(",")]
    with tempfile.TemporaryDirectory(prefix="hustings-slow-") as tmp:
        data_dir = Path(tmp) / "data"
        subprocess.run([sys.executable, "-m", "hustings", "--data-dir", str(data_dir), "init"], cwd=ROOT,
                       env=child_env(), check=True, capture_output=True)
        print(f"probe: GET /healthz every {PROBE_EVERY_S:g} s, {PROBE_TIMEOUT_S:g} s timeout, for {a.seconds:g} s "
              f"per cell; slow connections send a header byte every {DRIBBLE_EVERY_S:g} s and reconnect when closed")
        print(f"  {'server':<9} {'slow':>5} {'answered':>9} {'p50 s':>7} {'worst s':>8} {'slow conns closed':>18}")
        for kind in kinds:
            for n in counts:
                server = Server(kind, data_dir, Path(tmp))
                try:
                    server.wait_ready()
                    r = measure(server, n, a.seconds)
                finally:
                    server.stop()
                fmt = (lambda x: "-" if x is None else f"{x:.3f}")
                print(f"  {kind:<9} {n:>5} {r['answered']:>4}/{r['sent']:<4} {fmt(r['p50']):>7} "
                      f"{fmt(r['worst']):>8} {r['closed']:>18}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
