"""`hustings status` and `hustings backup` on both databases."""

from __future__ import annotations

import json
import sqlite3

from aggregator import cluster, db
from aggregator.settings import load_settings


def test_status_reports_schema_workers_leader_claims_lag_and_outbox(cli, database):
    cli("init")
    cli("feeds", "add", "http://127.0.0.1:9/feed.xml", "--no-check")
    status = json.loads(cli("status", "--json")[0])
    assert status["database"]["dialect"] == ("sqlite" if database == "sqlite" else "postgresql")
    assert status["database"]["revision"] == status["database"]["head"] == db.head_revision()
    assert status["leader"] is None and status["workers"] == []
    assert status["feeds"]["due"] == 1 and status["feeds"]["claimed"] == 0
    assert status["index_lag"]["changes"] == 0 and status["outbox"]["unsent"] == 0
    engine = db.make_engine(load_settings())
    me = cluster.Me.here()
    lead = cluster.Leadership(engine, me)
    assert lead.check()  # this test process takes the lead, as a worker would
    status = json.loads(cli("status", "--json")[0])
    assert status["leader"]["pid"] == me.pid and status["leader"]["host"] == me.host and status["leader"]["since"]
    assert [w["id"] for w in status["workers"]] == [me.id]
    text = cli("status")[0]
    assert "leader" in text and f"pid {me.pid}" in text
    lead.release()
    engine.dispose()


def test_backup_copies_a_live_sqlite_database_or_names_pg_dump(cli, tmp_path, database):
    cli("init")
    cli("feeds", "add", "http://127.0.0.1:9/feed.xml", "--no-check")
    target = tmp_path / "backups" / "hustings.sqlite3"
    if database == "sqlite":
        out = json.loads(cli("backup", str(target), "--json")[0])
        assert out["backed_up"] and target.exists()
        with sqlite3.connect(target) as conn:
            assert conn.execute("SELECT url FROM feeds").fetchall() == [("http://127.0.0.1:9/feed.xml",)]
        _, err = cli("backup", str(target), expect=1)
        assert "already exists" in err
    else:
        out, _ = cli("backup", str(target), expect=1)
        assert "pg_dump --format=custom" in out and not target.exists()
