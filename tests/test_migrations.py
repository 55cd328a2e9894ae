"""Migrations: `init` creates the schema the code declares, is idempotent, and old schemas are refused."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from aggregator import db
from aggregator.errors import SchemaError

pytestmark = pytest.mark.empty_database  # on PostgreSQL too, each test starts with no schema


def test_migrated_schema_matches_the_declared_tables(settings):
    engine = db.make_engine(settings)
    before, after = db.migrate(engine)
    assert before is None and after == db.head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == [], diff
    assert db.migrate(engine) == (after, after)  # idempotent
    db.check_schema(engine)


def test_sqlite_is_wal_with_foreign_keys_and_full_sync(engine, database):
    if database != "sqlite":
        pytest.skip("SQLite's own settings; PostgreSQL is durable by default (fsync on, synchronous_commit on)")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_missing_or_old_schema_is_refused(settings):
    engine = db.make_engine(settings)
    with pytest.raises(SchemaError, match="hustings init"):
        db.check_schema(engine)
    db.migrate(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0000'"))
    with pytest.raises(SchemaError, match="0000"):
        db.check_schema(engine)


def test_head_and_current_revision_agree_with_alembic(settings):
    """head_revision() reads the scripts' file names and current_revision() Alembic's table
    without importing Alembic (a command's start-up); Alembic itself must agree with both."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(db.MIGRATIONS_DIR))
    assert db.head_revision() == script.get_current_head()
    for rev in script.walk_revisions():  # every script is NNNN_*.py with revision NNNN
        assert rev.module.__file__.rsplit("/", 1)[1].startswith(rev.revision + "_")
    engine = db.make_engine(settings)
    assert db.current_revision(engine) is None
    db.migrate(engine)
    with engine.connect() as conn:
        assert db.current_revision(engine) == MigrationContext.configure(conn).get_current_revision()
    engine.dispose()


def _all_revisions() -> list[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(db.MIGRATIONS_DIR))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


@pytest.mark.parametrize("start", _all_revisions()[:-1])
def test_every_earlier_revision_migrates_to_head(settings, start):
    """A site left at any earlier revision (with a post and a feed in it) reaches head with its
    data, and the schema then matches the declared tables exactly, on both databases."""
    from alembic import command

    engine = db.make_engine(settings)
    with engine.connect().execution_options(hustings_write=True) as conn:
        with conn.begin():
            command.upgrade(db._alembic_config(conn), start)
    assert db.current_revision(engine) == start
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO feeds (url, title, status, created_at, updated_at) "
                             "VALUES ('http://127.0.0.1:9/f.xml', 'Kept', 'active', :t, :t)"),
                     {"t": "2026-01-01 00:00:00"})
    db.migrate(engine)
    assert db.current_revision(engine) == db.head_revision()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT title FROM feeds")).scalar() == "Kept"
        assert compare_metadata(MigrationContext.configure(conn), db.metadata) == []
    engine.dispose()
