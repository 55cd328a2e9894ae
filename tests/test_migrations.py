"""Migrations: `init` creates the schema the code declares, is idempotent, and old schemas are refused."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from aggregator import db
from aggregator.errors import SchemaError


def test_migrated_schema_matches_the_declared_tables(settings):
    engine = db.make_engine(settings)
    before, after = db.migrate(engine)
    assert before is None and after == db.head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == [], diff
    assert db.migrate(engine) == (after, after)  # idempotent
    db.check_schema(engine)


def test_sqlite_is_wal_with_foreign_keys_and_full_sync(engine):
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
