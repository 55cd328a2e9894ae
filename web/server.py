"""Running the app: `hustings serve` (processes) and `hustings run` (one process), both on waitress.

Every connection is read by waitress's event loop, which buffers a request until it is
complete and only then hands it to one of a few threads. A client that sends its header
a byte at a time costs an open socket, not a thread, and is cut off after
`web_request_timeout_s`; at most `web_max_connections` are open per process, and the rest
wait in the kernel's queue. That is what keeps slow clients from taking the site down
without a proxy in front (issue 16; the measurements are in docs/performance.md, the
deployment advice in docs/deploy.md). gunicorn's sync and gthread workers give a
connection a thread from its first byte to its last, so eight slow clients took `serve` down.

`serve` keeps gunicorn's arbiter for what it is good at: one worker process per core (the
GIL binds a process to one core), restarted when it dies, stopped gracefully on SIGTERM.
Each worker runs waitress on the listening socket the arbiter shares (`WaitressWorker`),
and builds its own app after the fork (no preload), so no database connection or Whoosh
file handle crosses a fork. A worker dies with the arbiter (PR_SET_PDEATHSIG), so after
a crash nothing keeps serving or holding the port, and a restart can bind at once.

`run` is the embedded default, one process: the scheduler (fetching, index sync) on its
own threads beside waitress. It is for one machine and a modest audience.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import threading
import time
from typing import Callable

from aggregator.orphans import die_with_parent
from aggregator.settings import Settings

from .app import make_app

log = logging.getLogger("hustings.web")

THREADS = 8  # per process: requests arrive whole, so threads only run the app (the GIL allows one at a time)
HEARTBEAT_S = 1.0  # a worker tells the arbiter it is alive this often (gunicorn kills it after `timeout`)
STOP_GRACE_S = 5.0  # `run` lets requests under way finish for this long when stopped


def worker_count(settings: Settings) -> int:
    return settings.web_workers or (os.cpu_count() or 1)


def port_in_use(host: str, port: int) -> bool:
    """Whether binding host:port would fail as the server's own bind would.

    SO_REUSEADDR, as the server sets it: connections of a server that just stopped linger in
    TIME_WAIT, and without it this check would call a free port busy.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _waitress_server(app, settings: Settings, *, host: str = "127.0.0.1", port: int = 0,
                     sockets: list[socket.socket] | None = None, threads: int = THREADS):
    """A waitress server with our limits; it has not started its loop."""
    from waitress.adjustments import Adjustments
    from waitress.channel import HTTPChannel
    from waitress.parser import HTTPRequestParser
    from waitress.server import TcpWSGIServer

    class Request(HTTPRequestParser):
        def __init__(self, adj):
            super().__init__(adj)
            self.started = time.time()  # when its first byte arrived

    class Channel(HTTPChannel):
        parser_class = Request

    class Server(TcpWSGIServer):
        channel_class = Channel

        def maintenance(self, now):
            """Close idle connections (waitress's channel_timeout) and unfinished requests."""
            super().maintenance(now)
            cutoff = now - settings.web_request_timeout_s
            for channel in list(self.active_channels.values()):
                request = channel.request
                if request is not None and not channel.requests and request.started < cutoff:
                    channel.will_close = True  # the loop closes it on its next pass

    timeout = settings.web_request_timeout_s
    where = dict(sockets=sockets) if sockets else dict(host=host, port=port)
    adj = Adjustments(
        threads=threads, connection_limit=settings.web_max_connections,
        channel_timeout=max(1, math.ceil(timeout)),  # idle kept-alive connections close after as long
        cleanup_interval=max(1, min(5, math.ceil(timeout / 4))),  # how often maintenance() looks
        asyncore_use_poll=True,  # select() fails past file descriptor 1023
        backlog=2048, ident="Hustings",
        # X-Forwarded-* reach the app, which believes them only from trusted_proxies (web/security.py).
        clear_untrusted_proxy_headers=False, **where)
    if sockets:
        sock = sockets[0]
        return Server(app, {}, _sock=sock, adj=adj, bind_socket=False,
                      sockinfo=(sock.family, sock.type, sock.proto, sock.getsockname()))
    return Server(app, {}, adj=adj, sockinfo=adj.listen[0])


def _run_until(server, done: Callable[[], bool], *, grace_s: float, beat: Callable[[], None] = lambda: None):
    """Run a waitress server's event loop until done(); then stop accepting, let requests under
    way finish (up to grace_s) and close the rest. beat() is called about every HEARTBEAT_S."""
    from waitress import wasyncore

    last = 0.0
    while not done():
        if time.monotonic() - last >= HEARTBEAT_S:
            beat()
            last = time.monotonic()
        wasyncore.loop(timeout=HEARTBEAT_S, map=server._map, use_poll=True, count=1)
    wasyncore.dispatcher.close(server)  # the listening socket (this process's copy), not the trigger
    deadline = time.monotonic() + grace_s
    while server.active_channels and time.monotonic() < deadline:
        for channel in list(server.active_channels.values()):
            if not channel.requests and not channel.total_outbufs_len:
                channel.will_close = True  # idle or half-received: closed on the next pass
        beat()
        wasyncore.loop(timeout=0.2, map=server._map, use_poll=True, count=1)
    server.task_dispatcher.shutdown(timeout=1)
    wasyncore.close_all(server._map)


def _worker_class():
    from gunicorn.workers.base import Worker

    class WaitressWorker(Worker):
        """A gunicorn worker process whose connections waitress reads, on the arbiter's socket."""

        def init_process(self):
            die_with_parent(self.ppid)  # the arbiter's death (kill -9 included) ends this worker at once
            super().init_process()

        def run(self):
            server = _waitress_server(self.wsgi, self.app.settings, sockets=[s.sock for s in self.sockets])
            # SIGTERM clears self.alive (gunicorn's handler); SIGQUIT and SIGINT exit at once.
            _run_until(server, lambda: not self.alive or self.ppid != os.getppid(),
                       grace_s=self.cfg.graceful_timeout, beat=self.notify)

    return WaitressWorker


def serve(settings: Settings, host: str, port: int, *, workers: int | None = None,
          on_ready: Callable[[], None] | None = None) -> None:
    """Run the site on gunicorn's arbiter with waitress workers until SIGINT/SIGTERM. Blocks."""
    from gunicorn.app.base import BaseApplication

    make_app(settings)  # fail here, in the parent, on an old schema or a broken template

    class Hustings(BaseApplication):
        def __init__(self):
            self.settings = settings  # read by each worker for its limits
            super().__init__()

        def load_config(self):
            cfg = {
                "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                "workers": workers or worker_count(settings),
                "worker_class": _worker_class(),
                "preload_app": False,
                "timeout": 30,  # a worker whose event loop stalls this long is replaced
                "graceful_timeout": 10,
                "backlog": 2048,
                "accesslog": None,
                "errorlog": "-",
                "loglevel": settings.log_level.lower(),
                "proc_name": "hustings-web",
                # Otherwise every gunicorn on the machine shares $HOME/.gunicorn/gunicorn.ctl.
                "control_socket_disable": True,
            }
            if on_ready is not None:
                cfg["when_ready"] = lambda _arbiter: on_ready()
            for key, value in cfg.items():
                self.cfg.set(key, value)

        def load(self):
            return make_app(settings)

    Hustings().run()


def serve_threaded(settings: Settings, host: str, port: int, *, threads: int = THREADS,
                   on_ready: Callable[[object], None] | None = None, stop: threading.Event | None = None) -> None:
    """Run the site on waitress in this process until stopped. Blocks.

    on_ready gets the server (its .effective_port is the port, when 0 was asked for).
    """
    server = _waitress_server(make_app(settings), settings, host=host, port=port, threads=threads)
    log.info("serving on http://%s:%s/", host, server.effective_port)
    if stop is not None:
        def wake():  # the event loop, at once, when told to stop
            stop.wait()
            with contextlib.suppress(OSError, ValueError):  # it may have closed already
                server.pull_trigger()

        threading.Thread(target=wake, daemon=True, name="web-stop").start()
    if on_ready is not None:
        on_ready(server)
    _run_until(server, stop.is_set if stop is not None else (lambda: False), grace_s=STOP_GRACE_S)
