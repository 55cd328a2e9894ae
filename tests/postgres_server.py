"""A real PostgreSQL server for the tests: found, started or installed, never assumed.

The storage tests run twice, on SQLite and on PostgreSQL (tests/conftest.py). Before the
first test, `provision()` makes sure a server answers on 127.0.0.1:5432 and that the
role `hustings_test` can log in:

1. a server already listening there is used;
2. otherwise the installed Debian cluster is started (`pg_ctlcluster 15 main start`, or
   whichever version `pg_lsclusters` lists);
3. otherwise Debian's `postgresql` package is installed (apt-get) and started.

The role is made (or its password reset) through the `postgres` superuser over the local
socket (`runuser -u postgres -- psql`), then a template database is migrated to head once
per run; each test gets a fresh copy (CREATE DATABASE ... TEMPLATE is fast). When none of
this works the PostgreSQL tests FAIL with the reason; they are skipped only when
HUSTINGS_TEST_POSTGRES=0 says so on purpose.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid

HOST, PORT = "127.0.0.1", 5432
ROLE, PASSWORD = "hustings_test", "hustings_test"
# One template per test run (its workers inherit the name), so runs side by side never
# drop each other's template.
TEMPLATE = os.environ.setdefault("HUSTINGS_TEST_PG_TEMPLATE", f"hustings_tpl_{uuid.uuid4().hex[:12]}")
ADMIN_URL = f"postgresql+psycopg://{ROLE}:{PASSWORD}@{HOST}:{PORT}/postgres"


def wanted() -> bool:
    return os.environ.get("HUSTINGS_TEST_POSTGRES", "1") != "0"


def url(database: str) -> str:
    return f"postgresql+psycopg://{ROLE}:{PASSWORD}@{HOST}:{PORT}/{database}"


def _listening() -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((HOST, PORT)) == 0


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def _as_postgres(sql: str) -> subprocess.CompletedProcess:
    runner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else ["sudo", "-n", "-u", "postgres"]
    return _run(*runner, "psql", "-v", "ON_ERROR_STOP=1", "-qAtc", sql, timeout=60)


def _start_cluster() -> str:
    """Start an installed cluster; returns what was done, or raises RuntimeError."""
    if not shutil.which("pg_lsclusters"):
        if os.geteuid() != 0:
            raise RuntimeError("PostgreSQL is not installed and installing it needs root (apt-get install postgresql)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for args in (["apt-get", "update"], ["apt-get", "install", "-y", "-q", "postgresql"]):
            done = subprocess.run(args, capture_output=True, text=True, timeout=900, env=env)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    clusters = [line.split() for line in _run("pg_lsclusters", "-h").stdout.splitlines() if line.strip()]
    if not clusters:
        raise RuntimeError("pg_lsclusters lists no cluster to start")
    version, name = clusters[0][0], clusters[0][1]
    started = _run("pg_ctlcluster", version, name, "start")
    if started.returncode != 0 and "already running" not in started.stderr:
        raise RuntimeError(f"pg_ctlcluster {version} {name} start failed: {started.stderr.strip()[-500:]}")
    for _ in range(100):
        if _listening():
            return f"started cluster {version}/{name}"
        time.sleep(0.1)
    raise RuntimeError(f"cluster {version}/{name} started but nothing listens on {HOST}:{PORT}")


def _can_log_in() -> bool:
    import psycopg

    try:
        psycopg.connect(host=HOST, port=PORT, user=ROLE, password=PASSWORD, dbname="postgres", connect_timeout=5).close()
        return True
    except psycopg.OperationalError:
        return False


def provision() -> None:
    """Make the server, the role and the template database ready. Raises RuntimeError saying why not."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise RuntimeError("psycopg is not installed: run python3 -m pip install -e '.[test]'") from exc
    if not _listening():
        _start_cluster()
    if not _can_log_in():
        made = _as_postgres(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN "
            f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD}'; ELSE "
            f"ALTER ROLE {ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD}'; END IF; END $$;")
        if made.returncode != 0:
            raise RuntimeError(f"could not create the test role {ROLE}: {made.stderr.strip()[-500:]}")
        if not _can_log_in():
            raise RuntimeError(f"the role {ROLE} cannot log in to {HOST}:{PORT} (pg_hba.conf?)")
    _make_template()


def _admin():
    import psycopg

    return psycopg.connect(host=HOST, port=PORT, user=ROLE, password=PASSWORD, dbname="postgres", autocommit=True)


def _make_template() -> None:
    """The test template, migrated to head from empty by Alembic (itself a test of the migrations)."""

    from aggregator import db
    from aggregator.settings import Settings

    with _admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    engine = db.make_engine(Settings(database_url=url(TEMPLATE)))
    try:
        db.migrate(engine)
    finally:
        engine.dispose()


def create_database(empty: bool = False) -> str:
    """A fresh database copied from the migrated template (or empty: no schema); returns its name."""
    import psycopg

    name = f"hustings_t_{uuid.uuid4().hex[:16]}"
    for attempt in range(100):
        try:
            with _admin() as conn:
                conn.execute(f"CREATE DATABASE {name} TEMPLATE {'template0' if empty else TEMPLATE}")
            return name
        except psycopg.errors.ObjectInUse:
            # Another test process is copying the template this instant (PostgreSQL refuses
            # two copies of one template at once): wait a moment and try again.
            time.sleep(0.05 + 0.01 * attempt)
    raise RuntimeError(f"the template database {TEMPLATE} stayed busy")


def drop_template() -> None:
    drop_database(TEMPLATE)


def drop_database(name: str) -> None:
    """Drop a test's database. FORCE ends our own sessions in it; a backend of another role
    (autovacuum working on it this instant) cannot be ended by us, so wait and try again,
    and leave the database behind rather than fail a test that passed."""
    import psycopg

    for attempt in range(20):
        try:
            with _admin() as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            return
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
            time.sleep(0.1 + 0.05 * attempt)
