"""Running the app: gunicorn for `hustings serve`, waitress for `hustings run`.

`serve` uses gunicorn's sync workers, one process per core: the benchmark in
docs/performance.md (and the research before it) found that threads in one process
serve a CPU-bound page at about half the rate, with several times the tail latency,
because of the GIL. Each worker builds its own app after the fork (no preload), so no
database connection or Whoosh file handle crosses a fork.

`run` is the embedded default, one process: the scheduler (fetching, index sync)
on its own threads beside waitress, a pure-Python threaded server that needs no
fork. It is for one machine and a modest audience; a site under heavy load runs
`hustings worker` and `hustings serve` as separate processes.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable

from aggregator.settings import Settings

from .app import make_app

log = logging.getLogger("hustings.web")


def worker_count(settings: Settings) -> int:
    return settings.web_workers or (os.cpu_count() or 1)


def serve(settings: Settings, host: str, port: int, *, workers: int | None = None,
          on_ready: Callable[[], None] | None = None) -> None:
    """Run the site on gunicorn until SIGINT/SIGTERM. Blocks."""
    from gunicorn.app.base import BaseApplication


    make_app(settings)  # fail here, in the parent, on an old schema or a broken template

    class Hustings(BaseApplication):
        def load_config(self):
            cfg = {
                "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                "workers": workers or worker_count(settings),
                "worker_class": "sync",
                "preload_app": False,
                "timeout": 30,
                "graceful_timeout": 10,
                "keepalive": 2,
                "backlog": 2048,
                "accesslog": None,
                "errorlog": "-",
                "loglevel": settings.log_level.lower(),
                "proc_name": "hustings-web",
                # Requests larger than this are refused by gunicorn before the app runs.
                "limit_request_line": 8190,
                "limit_request_fields": 100,
            }
            if on_ready is not None:
                cfg["when_ready"] = lambda _arbiter: on_ready()
            for key, value in cfg.items():
                self.cfg.set(key, value)

        def load(self):
            return make_app(settings)

    Hustings().run()


def serve_threaded(settings: Settings, host: str, port: int, *, threads: int = 8,
                   on_ready: Callable[[object], None] | None = None, stop: threading.Event | None = None) -> None:
    """Run the site on waitress in this process until stopped. Blocks.

    on_ready gets the server (its .effective_port is the port, when 0 was asked for).
    """
    from waitress.server import create_server


    server = create_server(make_app(settings), host=host, port=port, threads=threads,
                           ident="Hustings", clear_untrusted_proxy_headers=True, channel_timeout=30)
    log.info("serving on http://%s:%s/", host, server.effective_port)
    if stop is not None:
        threading.Thread(target=lambda: (stop.wait(), server.close()), daemon=True, name="web-stop").start()
    if on_ready is not None:
        on_ready(server)
    try:
        server.run()
    except (OSError, ValueError):
        if stop is None or not stop.is_set():  # closing the server under run() is how we stop
            raise
