"""Exactly once, with real processes: `python -m hustings digest send` is killed with SIGKILL in
the middle of sending an issue to 500 subscribers, then run again. Every address gets the
issue, and at most one message (the one in flight when the first process died) twice."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from aggregator.db import insert_for, subscribers, utcnow, writing
from tests.conftest import subprocess_env
from tests.mailsite import MailSite
from tests.smtp_server import SmtpServer

ROOT = Path(__file__).resolve().parents[1]
READERS = 500


def _add_readers(site: MailSite, n: int) -> list[str]:
    now = utcnow()
    emails = [f"reader{i:04d}@example.org" for i in range(n)]
    with writing(site.engine) as conn:
        conn.execute(insert_for(conn)(subscribers), [
            {"email": e, "frequency": "daily", "categories": "[]", "status": "confirmed", "nonce": f"{i:032x}",
             "source": "import", "created_at": now, "updated_at": now, "confirmed_at": now}
            for i, e in enumerate(emails)])
    return emails


def _command(site: MailSite, smtp: SmtpServer, *args: str) -> subprocess.Popen:
    env = subprocess_env(site.settings, HUSTINGS_SMTP_HOST="127.0.0.1", HUSTINGS_SMTP_PORT=str(smtp.port),
                         HUSTINGS_SMTP_SECURITY="none", HUSTINGS_MAIL_RATE_PER_S="0",
                         HUSTINGS_SITE_URL=site.settings.site_url, HUSTINGS_MAIL_FROM=site.settings.mail_from,
                         HUSTINGS_LOG_LEVEL="WARNING")
    return subprocess.Popen([sys.executable, "-m", "hustings", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_kill_9_during_a_send_then_a_restart_sends_each_address_once(tmp_path, smtp):
    site = MailSite(tmp_path / "data", smtp, web=False)
    site.blog("Valley Branch", "Local parties", ["Saving the library", "The bus depot vote"])
    emails = _add_readers(site, READERS)
    smtp.delay_s = 0.004  # slow enough that the kill lands mid-run on any machine

    first = _command(site, smtp, "digest", "send")
    deadline = time.monotonic() + 120
    while smtp.count() < READERS // 4:
        assert first.poll() is None, f"the first send ended before it could be killed: {first.communicate()}"
        assert time.monotonic() < deadline, "the first send made no progress"
        time.sleep(0.01)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    before = smtp.count()
    assert 0 < before < READERS

    smtp.delay_s = 0
    second = _command(site, smtp, "digest", "send")
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, (out, err)

    got = collections.Counter(m.to for m in smtp.messages)
    assert set(got) == set(emails)  # everyone
    repeats = {to: n for to, n in got.items() if n > 1}
    assert len(repeats) <= 1 and all(n == 2 for n in repeats.values()), repeats  # at most the one in flight
    if repeats:  # the repeat is the same message: the same Message-ID, so a mail client shows it once
        [to] = repeats
        ids = {m.message["Message-ID"] for m in smtp.messages if m.to == to}
        assert len(ids) == 1

    third = _command(site, smtp, "digest", "send")  # again: nothing new
    out, _ = third.communicate(timeout=120)
    assert third.returncode == 0 and b"0 messages queued" in out
    assert smtp.count() == sum(got.values())
    with site.engine.connect() as conn:
        statuses = dict(conn.execute(sa.text("SELECT status, count(*) FROM outbox GROUP BY status")).all())
    assert statuses == {"sent": READERS}
    site.close()
