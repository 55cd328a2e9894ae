"""Running the site: `serve` (gunicorn), `run` (the web and the scheduler in one process),
`demo`, `worker` (the scheduler alone), and `settings` (what they would run with)."""

from __future__ import annotations

import dataclasses
import errno
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from aggregator import scheduler
from aggregator.errors import HustingsError
from aggregator.settings import as_environ, describe_settings
from community.jobs import jobs as community_jobs

from .context import EXIT_OK, Context, log, print_json
from .database import safe_url


def register(sub) -> None:
    for name, func, text in (
        ("serve", cmd_serve, "serve the web site on gunicorn (run `hustings worker` beside it)"),
        ("run", cmd_run, "the whole site in one process: the scheduler and the web"),
        ("demo", cmd_demo, "a populated demo site from sample blogs served on this machine (no internet)"),
    ):
        s = sub.add_parser(name, help=text)
        s.add_argument("--host", help="address to listen on (default: the web_host setting)")
        s.add_argument("--port", type=int, help="port to listen on (default: the web_port setting)")
        if name == "serve":
            s.add_argument("--workers", type=int, help="worker processes (default: web_workers, 0 = one per core)")
        s.set_defaults(func=func)

    s = sub.add_parser("worker", help="run the scheduler: fetch due feeds every minute")
    s.set_defaults(func=cmd_worker)

    s = sub.add_parser("settings", help="show the settings in effect")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_settings, needs_db=False)


def _listen(ctx: Context, args) -> tuple[str, int]:
    """Where to listen; refused at once, in one line, when something already listens there
    (before the demo spends half a minute fetching, and instead of a server's traceback)."""
    host = args.host or ctx.settings.web_host
    port = args.port if args.port is not None else ctx.settings.web_port
    if port:
        _check_port(host, port)
    return host, port


def _public(settings, host: str, port: int):
    """The settings with `site_url` derived from where the site listens, unless it was set: the
    feeds', API's and mails' links then point at this site (the demo on port 9000 linked to
    :8080 before). A wildcard address is shown as localhost."""
    default = dataclasses.fields(type(settings))
    unset = next(f.default for f in default if f.name == "site_url")
    if settings.site_url != unset or not port:
        return settings
    shown = "localhost" if host in ("0.0.0.0", "::", "") else (f"[{host}]" if ":" in host else host)
    return dataclasses.replace(settings, site_url=f"http://{shown}:{port}")


def _check_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR as the servers set it: a port left in TIME_WAIT by a server that just
        # stopped (or was killed) is free to them, so it must not be refused here.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise HustingsError(f"port {port} on {host} is already in use (another Hustings, or another "
                                    "program): stop it, or choose another port with --port") from None
            raise HustingsError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def cmd_serve(ctx: Context, args) -> int:
    from web import server

    host, port = _listen(ctx, args)
    ctx = Context(_public(ctx.settings, host, port))
    engine = ctx.engine  # creates or checks the database before any web process starts
    if engine.dialect.name != "sqlite" and not ctx.settings.secret_key:
        # Each node would otherwise make its own data_dir/secret.key: a reader's CSRF token and
        # hashed cookie from one node would mean nothing to the next, and ballots would not match.
        raise HustingsError("on a shared database every web node must use the same secret_key: set "
                            "HUSTINGS_SECRET_KEY (at least 32 random characters, e.g. from "
                            "`python3 -c 'import secrets; print(secrets.token_hex(32))'`) on every node")
    replica = _start_replica(ctx)
    try:
        log.info("serving on http://%s:%s/ with %d web workers; search index in %s kept in step by pid %d",
                 host, port, args.workers or server.worker_count(ctx.settings), ctx.settings.data_dir, replica.pid)
        server.serve(ctx.settings, host, port, workers=args.workers)
    finally:
        replica.terminate()
        replica.wait(timeout=10)
    return EXIT_OK


def _start_replica(ctx: Context) -> subprocess.Popen:
    """This node's search index follows the database (index/replica.py) in a child process
    that dies with this one: posts stored by any worker become searchable here within seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUSTINGS_")}
    env.update(as_environ(ctx.settings))  # exactly this process's settings and database
    return subprocess.Popen([sys.executable, "-m", "index.replica", str(os.getpid())], env=env)


def cmd_worker(ctx: Context, args) -> int:
    engine = ctx.engine
    with scheduler.SchedulerLock(ctx.settings):
        # The index is synced after every dispatcher pass, in the same (single) process.
        sched = scheduler.build(engine, ctx.settings, after_dispatch=lambda: ctx.sync_index(quiet=True),
                                jobs=community_jobs(engine, ctx.settings))

        def stop(signum, _frame):  # noqa: ARG001
            log.info("signal %s: stopping after the running jobs", signum)
            sched.shutdown(wait=False)

        signal.signal(signal.SIGTERM, stop)
        log.info("worker started: dispatching due feeds every %ss", ctx.settings.dispatch_every_s)
        sched.start()
    return EXIT_OK


def _run_site(ctx: Context, host: str, port: int, banner: str = "") -> int:
    """The scheduler and the web in this one process, until SIGINT or SIGTERM."""
    import threading

    from apscheduler.schedulers.background import BackgroundScheduler

    from web import server

    ctx = Context(_public(ctx.settings, host, port))
    engine = ctx.engine
    stop = threading.Event()
    with scheduler.SchedulerLock(ctx.settings):
        sched = scheduler.build(engine, ctx.settings, scheduler=BackgroundScheduler(timezone="UTC"),
                                jobs=community_jobs(engine, ctx.settings),
                                after_dispatch=lambda: ctx.sync_index(quiet=True))

        def on_signal(signum, _frame):  # noqa: ARG001
            log.info("signal %s: stopping", signum)
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        sched.start()

        def ready(srv):
            print(f"{banner}Hustings is running at http://{host}:{srv.effective_port}/ (Ctrl-C stops it)", flush=True)

        try:
            server.serve_threaded(ctx.settings, host, port, on_ready=ready, stop=stop)
        finally:
            sched.shutdown(wait=False)
    return EXIT_OK


def cmd_run(ctx: Context, args) -> int:
    host, port = _listen(ctx, args)
    return _run_site(ctx, host, port)


def cmd_demo(ctx: Context, args) -> int:
    from hustings import demo

    settings = ctx.settings
    if not args.data_dir and "HUSTINGS_DATA_DIR" not in os.environ and settings.data_dir == Path("data"):
        settings = dataclasses.replace(settings, data_dir=Path("hustings-demo"))  # never the real site's data
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    host, port = _listen(ctx, args)
    if host not in ("127.0.0.1", "::1", "localhost"):
        # The demo lets this process fetch 127.0.0.1 (its sample blogs live there).
        print(f"hustings: warning: the demo listens on {host}, and it may fetch addresses on this machine; "
              "keep it on 127.0.0.1 unless you trust everyone who can reach it", file=sys.stderr)
    site = demo.prepare_demo(settings)
    try:
        return _run_site(Context(site.settings), host, port, banner="Demo ready. ")
    finally:
        site.close()


def cmd_settings(ctx: Context, args) -> int:
    values = {name: getattr(ctx.settings, name) for name, _, _ in describe_settings()}
    values["database_url"] = safe_url(ctx.settings)
    if args.json:
        print_json(values)
    else:
        for name, value in values.items():
            shown = ",".join(value) if isinstance(value, tuple) else value
            print(f"{name} = {shown}")
    return EXIT_OK
