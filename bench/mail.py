"""The digest to N confirmed subscribers over SMTP: ours against a bare smtplib loop.

    python3 bench/mail.py [--subscribers 10000] [--repeat 3] [--database-url URL] [--wait-quiet S]

A sink SMTP server (aiosmtpd, counting messages, keeping none) runs in its own process on a
free 127.0.0.1 port. A fresh data directory gets 20 posts on 4 blogs and N confirmed
subscribers; the daily issue is built and queued (one outbox row each, timed). Then, K times,
interleaved:

* **bare**: a child process composes the same N messages first (not timed: the same bytes
  community/mail_compose.py makes, each reader's own links in), then times a plain
  `smtplib.SMTP.sendmail` loop over them, a new connection every 100 messages as ours does.
* **ours**: `python -m hustings mail deliver` as a child process (start-up included), with
  `mail_rate_per_s=0`: claims, renders each reader's copy, composes, sends, records every
  answer in the database. Its peak memory is the child's max RSS.

Each run also prints the CPU time each side spent per message (the sink's excluded): on a
shared machine the rates swing with the load, the CPU per message much less.

The outbox is put back to queued between runs. Printed: messages/s of each, the ratio (the
goal is ours >= 0.8 of bare), peak memory, and the sink's count (each run must deliver N).
Only 127.0.0.1 is contacted; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

SINK = r"""
import asyncio, signal, sys, threading
from aiosmtpd.controller import Controller
count = 0
class Sink:
    async def handle_DATA(self, server, session, envelope):
        global count
        count += len(envelope.rcpt_tos)
        return "250 OK"
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return responses
c = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]), server_hostname="sink.test")
c.start()
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "count":
        print(count, flush=True)
    elif line.strip() == "quit":
        break
c.stop()
"""

BARE = r"""
import json, resource, smtplib, sys, time
sys.path.insert(0, sys.argv[1])
from aggregator import db
from aggregator.settings import load_settings
from community import digest_render, mailer
from community.mail_compose import compose
settings = load_settings()
engine = db.make_engine(settings)
rows = mailer.claim(engine, "bench-bare", db.utcnow(), limit=10**9)
mailer.release(engine, "bench-bare")
subs = mailer._subscribers_of(engine, rows)
issues = digest_render.Issues(engine, settings)
prepared = [compose(settings, r.id, r.to_address, issues.parts(r.issue_id, subs[r.subscriber_id])) for r in rows]
start = time.perf_counter()
cpu = time.process_time()
client = None
for i, m in enumerate(prepared):
    if i % 100 == 0:
        if client is not None:
            client.quit()
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, local_hostname="hustings.example")
        client.ehlo()
    client.sendmail(m.sender, [m.to], m.data)
client.quit()
took = time.perf_counter() - start
print(json.dumps({"sent": len(prepared), "seconds": took, "cpu_seconds": time.process_time() - cpu,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(settings, n: int) -> dict:
    from datetime import datetime, timedelta, timezone

    from aggregator import db, feed_store, post_store
    from aggregator.db import insert_for, subscribers, writing
    from aggregator.models import Post
    from community import digest

    engine = db.make_engine(settings)
    db.migrate(engine)
    now = datetime.now(timezone.utc)
    for b in range(4):
        feed, _ = feed_store.add_feed(engine, f"http://127.0.0.1:9/{b}/feed.xml", title=f"Branch blog {b}",
                                      site_url=f"http://127.0.0.1:9/{b}/", category=("Local parties", "Campaigns")[b % 2])
        post_store.save_posts(engine, feed, [
            Post(feed.id, f"g{i}", f"http://127.0.0.1:9/{b}/p/{i}", f"Post {i} of blog {b}: on the doorstep again",
                 "<p>" + "Words about the campaign. " * 40 + "</p>", published=now - timedelta(hours=i),
                 identity=f"g:{i}", summary="Words about the campaign. " * 10) for i in range(5)])
    with writing(engine) as conn:
        conn.execute(insert_for(conn)(subscribers), [
            {"email": f"reader{i:06d}@example.org", "frequency": "daily", "categories": "[]", "status": "confirmed",
             "nonce": f"{i:032x}", "source": "import", "created_at": now, "updated_at": now, "confirmed_at": now}
            for i in range(n)])
    start = time.perf_counter()
    issue = digest.build(engine, settings, "daily")
    queued = digest.queue(engine, issue)
    took = time.perf_counter() - start
    engine.dispose()
    return {"queued": queued, "queue_seconds": took}


def requeue(settings) -> None:
    import sqlalchemy as sa

    from aggregator import db
    from aggregator.db import outbox, writing

    engine = db.make_engine(settings)
    with writing(engine) as conn:
        conn.execute(sa.update(outbox).values(status="queued", sent_at=None, attempts=0, last_error="",
                                              next_attempt_at=None, claimed_by="", claimed_until=None))
    engine.dispose()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--subscribers", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--database-url", default="")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="S",
                   help="before each run, wait up to S seconds for the 1-minute load average to fall below 1.5")
    args = p.parse_args()

    def quiet() -> None:
        deadline = time.monotonic() + args.wait_quiet
        while os.getloadavg()[0] >= 1.5 and time.monotonic() < deadline:
            time.sleep(5)

    from aggregator.settings import Settings

    port = free_port()
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert sink.stdout.readline().strip() == "ready"

    def sunk() -> int:
        sink.stdin.write("count\n")
        sink.stdin.flush()
        return int(sink.stdout.readline())

    with tempfile.TemporaryDirectory(prefix="hustings-bench-mail-") as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=args.database_url, smtp_host="127.0.0.1", smtp_port=port,
                            smtp_security="none", mail_rate_per_s=0, site_url="https://hustings.example",
                            mail_from="Hustings <digest@hustings.example>")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUSTINGS_")}
        env.update(HUSTINGS_DATA_DIR=tmp, HUSTINGS_SMTP_HOST="127.0.0.1", HUSTINGS_SMTP_PORT=str(port),
                   HUSTINGS_SMTP_SECURITY="none", HUSTINGS_MAIL_RATE_PER_S="0", HUSTINGS_LOG_LEVEL="WARNING",
                   HUSTINGS_SITE_URL=settings.site_url, HUSTINGS_MAIL_FROM=settings.mail_from)
        if args.database_url:
            env["HUSTINGS_DATABASE_URL"] = args.database_url
        made = prepare(settings, args.subscribers)
        print(f"{made['queued']:,} subscribers queued for one issue in {made['queue_seconds']:.2f} s "
              f"({settings.resolved_database_url.split(':')[0]})")
        bare, ours, rss_ours, rss_bare, cpu_ours, cpu_bare = [], [], [], [], [], []
        for k in range(args.repeat):
            quiet()
            before = sunk()
            out = subprocess.run([sys.executable, "-c", BARE, str(ROOT)], env=env, capture_output=True, text=True,
                                 check=True).stdout
            b = json.loads(out)
            bare.append(b["sent"] / b["seconds"])
            assert sunk() - before == args.subscribers, "the bare loop did not deliver every message"
            requeue(settings)
            before = sunk()
            start = time.perf_counter()
            child = subprocess.Popen([sys.executable, "-m", "hustings", "mail", "deliver", "--json"], cwd=ROOT,
                                     env=env, stdout=subprocess.PIPE, text=True)
            out = child.stdout.read()
            _, status, usage = os.wait4(child.pid, 0)
            took = time.perf_counter() - start
            child.returncode = status = os.waitstatus_to_exitcode(status)
            rss_ours.append(usage.ru_maxrss / 1024)
            rss_bare.append(b["max_rss_mb"])
            report = json.loads(out)
            cpu_ours.append((usage.ru_utime + usage.ru_stime) / report["sent"] * 1000)
            cpu_bare.append(b["cpu_seconds"] / b["sent"] * 1000)
            delivered = sunk() - before
            ours.append(report["sent"] / took)
            print(f"run {k + 1}: bare {bare[-1]:,.0f} msg/s ({cpu_bare[-1]:.2f} ms CPU a message); ours "
                  f"{ours[-1]:,.0f} msg/s ({cpu_ours[-1]:.2f} ms CPU a message, start-up included; "
                  f"{report['sent']:,} sent, {delivered:,} received by the sink, exit {status}); "
                  f"load average {os.getloadavg()[0]:.1f}")
            requeue(settings)
        mb, mo = statistics.median(bare), statistics.median(ours)
        print(f"median of {args.repeat}: bare {mb:,.0f} msg/s, ours {mo:,.0f} msg/s, ratio {mo / mb:.2f} "
              f"(range {min(o / b for o, b in zip(ours, bare)):.2f}-{max(o / b for o, b in zip(ours, bare)):.2f})")
        print(f"CPU a message (median): bare {statistics.median(cpu_bare):.2f} ms, ours {statistics.median(cpu_ours):.2f} ms"
              " (the sink's own CPU is in neither)")
        print(f"peak memory: ours (the whole `hustings mail deliver` process) {max(rss_ours):.0f} MB; "
              f"bare (holding every prepared message) {max(rss_bare):.0f} MB")
    sink.stdin.write("quit\n")
    sink.stdin.flush()
    sink.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
