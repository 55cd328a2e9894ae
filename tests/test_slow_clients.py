"""The web server against slow clients and crashes (issue 16, items 1 and 10).

The real `hustings serve` runs in a subprocess, `hustings run`'s server (serve_threaded) in a
thread, each on a free loopback port over a migrated SQLite database. Nothing here measures
speed: the assertions are "answers within a generous timeout" and "is gone".
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from aggregator import db
from aggregator.settings import Settings
from web import server

from .conftest import free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]
SLOW_CLIENTS = 20  # more than gunicorn's sync workers (one per core) or gthread's 2 x 4 threads
DRIBBLE_EVERY_S = 0.5
ANSWER_WITHIN_S = 3.0  # generous: /healthz takes milliseconds


def healthz(port: int, timeout: float = ANSWER_WITHIN_S) -> bool:
    """Whether GET /healthz on a new connection answers 200 within timeout (http.client: no proxy)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@pytest.fixture
def data_dir(tmp_path) -> Path:
    settings = Settings(data_dir=tmp_path / "data")
    engine = db.make_engine(settings)
    db.migrate(engine)
    engine.dispose()
    return settings.data_dir


def start_serve(data_dir: Path, port: int, log: Path, **env_settings: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUSTINGS_")}
    env.update(HUSTINGS_DATA_DIR=str(data_dir), **env_settings)
    return subprocess.Popen(
        [sys.executable, "-m", "hustings", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def serve(data_dir, tmp_path):
    """`hustings serve --workers 2` in a subprocess; yields its port."""
    port, log = free_port(), tmp_path / "serve.log"
    proc = start_serve(data_dir, port, log)
    try:
        assert wait_until(lambda: healthz(port, 1) or proc.poll() is not None, 60) and proc.poll() is None, \
            log.read_text()
        yield port
    finally:
        stop(proc)


@contextlib.contextmanager
def threaded_server(data_dir: Path):
    """`hustings run`'s web server (waitress, in this process) on a thread: yields (port, stop)."""
    ready, halt = threading.Event(), threading.Event()
    found: dict = {}
    thread = threading.Thread(
        target=server.serve_threaded, args=(Settings(data_dir=data_dir), "127.0.0.1", 0), daemon=True,
        kwargs=dict(on_ready=lambda srv: (found.update(port=srv.effective_port), ready.set()), stop=halt))
    thread.start()
    assert ready.wait(30)
    try:
        yield found["port"], thread
    finally:
        halt.set()
        thread.join(10)


@pytest.fixture
def run_server(data_dir):
    with threaded_server(data_dir) as (port, _thread):
        yield port


class Dribblers:
    """Connections that each send a request line, then one header byte every DRIBBLE_EVERY_S, never ending."""

    def __init__(self, port: int, n: int):
        self.port, self.n = port, n
        self.socks: list[socket.socket] = []
        self.closed_by_server = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        return s

    def _run(self):
        while not self.done.wait(DRIBBLE_EVERY_S):
            for i, s in enumerate(self.socks):
                try:
                    s.send(b"X")
                except OSError:  # the server closed it: come back, as an attacker would
                    self.closed_by_server += 1
                    s.close()
                    try:
                        self.socks[i] = self._open()
                    except OSError:
                        pass

    def __enter__(self):
        self.socks = [self._open() for _ in range(self.n)]
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        for s in self.socks:
            s.close()


@pytest.mark.parametrize("which", ["serve", "run"])
def test_healthz_answers_while_slow_clients_dribble_headers(which, request):
    port = request.getfixturevalue("serve" if which == "serve" else "run_server")
    with Dribblers(port, SLOW_CLIENTS):
        time.sleep(2 * DRIBBLE_EVERY_S)  # every slow connection has been accepted and has sent bytes
        answers = []
        for _ in range(8):
            answers.append(healthz(port))
            time.sleep(DRIBBLE_EVERY_S)
    assert all(answers), f"/healthz answered {sum(answers)} of {len(answers)} checks with {SLOW_CLIENTS} slow clients"


def test_run_stops_at_once_with_a_kept_alive_connection_open(data_dir):
    with threaded_server(data_dir) as (port, thread):
        reader = socket.create_connection(("127.0.0.1", port))
        reader.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert reader.recv(100).startswith(b"HTTP/1.1 200")
    # threaded_server asked it to stop and waited; the reader is still connected
    assert not thread.is_alive(), "the server kept running for a kept-alive connection"
    reader.close()


def test_a_request_that_never_finishes_is_cut_off(data_dir, tmp_path):
    port = free_port()
    proc = start_serve(data_dir, port, tmp_path / "serve.log", HUSTINGS_WEB_REQUEST_TIMEOUT_S="1")
    try:
        assert wait_until(lambda: healthz(port, 1), 60), (tmp_path / "serve.log").read_text()
        with Dribblers(port, 3) as slow:
            assert wait_until(lambda: slow.closed_by_server >= 3, 12), "slow requests were never closed"
    finally:
        stop(proc)


def test_restart_right_after_kill_9(data_dir, tmp_path):
    port, log = free_port(), tmp_path / "serve.log"
    first = start_serve(data_dir, port, log)
    second, everyone = None, []
    try:
        assert wait_until(lambda: healthz(port, 1), 60), log.read_text()
        master = psutil.Process(first.pid)

        def workers():  # forked from the master: the same command line (other children may run beside)
            return [p for p in master.children() if p.cmdline() == master.cmdline()]

        assert wait_until(lambda: len(workers()) == 2, 30)
        children = workers()
        everyone = master.children(recursive=True)  # left to the finally clause, whatever outlives the kill
        busy = socket.create_connection(("127.0.0.1", port))  # a kept-alive connection, as a reader leaves one
        busy.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert busy.recv(100).startswith(b"HTTP/1.1 200")

        first.kill()  # SIGKILL: no handler runs in the master
        first.wait()
        second = start_serve(data_dir, port, log)  # at once, on the same port
        gone, alive = psutil.wait_procs(children, timeout=2)
        assert not alive, f"workers {[p.pid for p in alive]} outlived their master"
        assert wait_until(lambda: healthz(port, 1) or second.poll() is not None, 60)
        assert second.poll() is None, log.read_text()
        # gunicorn retries a busy port five times, a second apart, saying so: it must not have had to.
        assert "in use" not in log.read_text()
        busy.close()
    finally:
        stop(first)
        if second is not None:
            stop(second)
        for p in everyone:
            with contextlib.suppress(psutil.Error):
                p.kill()


def test_port_in_use_is_not_fooled_by_time_wait():
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn and waitress set it
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert server.port_in_use("127.0.0.1", port)
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = listener.accept()
        conn.close()  # the server side closes first: its end waits in TIME_WAIT
        client.close()
    with socket.socket() as naive, pytest.raises(OSError):
        naive.bind(("127.0.0.1", port))  # a bind without SO_REUSEADDR calls the port busy
    assert not server.port_in_use("127.0.0.1", port)
