"""`hustings status`: the operator's first command when something looks wrong.

The database and its schema revision, the current leader (`null` when none), the workers
seen lately, feeds due and claimed, this node's search replica and how far it is behind
the database, and the outbox backlog.
"""

from __future__ import annotations

from datetime import timedelta

from aggregator import cluster, db, feed_store
from community import outbox
from index import replica

from .context import EXIT_OK, Context, print_json
from .database import safe_url


def register(sub) -> None:
    s = sub.add_parser("status", help="the database, the leader and workers, claims, this node's index lag, the outbox")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)


def gather(ctx: Context) -> dict:
    engine = ctx.engine
    now = db.utcnow()
    recent = timedelta(seconds=max(180, 3 * ctx.settings.dispatch_every_s))  # "alive": beat within three rounds
    return {
        "database": {"url": safe_url(ctx.settings), "dialect": engine.dialect.name,
                     "revision": db.current_revision(engine), "head": db.head_revision()},
        "leader": cluster.leader(engine, recent),
        "workers": cluster.alive(engine, recent),
        "feeds": feed_store.claims(engine, now),
        "index_lag": replica.lag(engine, ctx.settings),
        "outbox": {"unsent": outbox.backlog(engine)},
    }


def cmd_status(ctx: Context, args) -> int:
    status = gather(ctx)
    if args.json:
        print_json(status)
        return EXIT_OK
    d, lead, lag = status["database"], status["leader"], status["index_lag"]
    print(f"database   {d['url']} ({d['dialect']}), schema {d['revision']}"
          + ("" if d["revision"] == d["head"] else f" (the code expects {d['head']}: run `hustings init`)"))
    print("leader     " + (f"{lead['host']} pid {lead['pid']} since {lead['since']}" if lead else "none"))
    print(f"workers    {len(status['workers'])} seen lately"
          + "".join(f"\n           {w['host']} pid {w['pid']}, last seen {w['seen_at']}" for w in status["workers"]))
    f = status["feeds"]
    print(f"feeds      {f['due']} due, {f['claimed']} claimed, {f['lapsed_claims']} claims lapsed")
    seconds = "never synced" if lag["seconds"] is None else f"{lag['seconds']:.0f} s"
    print(f"index      {lag['path'] or 'none yet'}: {lag['changes']} changes behind ({seconds})")
    print(f"outbox     {status['outbox']['unsent']} messages waiting")
    return EXIT_OK
