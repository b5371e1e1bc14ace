"""Backup and restore: identical rows and a valid audit chain, SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from nettrial.exceptions import ConflictError, InputError
from nettrial.store import migrate
from nettrial.store.audit import verify_chain
from nettrial.store.backup import backup, restore
from nettrial.store.db import connect
from nettrial.store.models import Base
from tests import factories


def _dump(db) -> dict[str, list[tuple]]:
    with db.engine.connect() as connection:
        return {
            t.name: [tuple(r) for r in connection.execute(select(t).order_by(*t.primary_key.columns))]
            for t in Base.metadata.sorted_tables
        }


def _study(db) -> None:
    users = factories.seed(db)
    for name in ("Zhang Wei", "Li Na"):
        factories.enrolled(db, users["coordinator"], name=name)
    factories.patient(db, users["coordinator"], name="Screening Only")


@pytest.mark.parametrize("suffix", [".json", ".json.gz"])
def test_restore_gives_back_identical_data_and_a_valid_chain(db, tmp_path, suffix):
    _study(db)
    original = _dump(db)
    file = tmp_path / f"study{suffix}"
    counts = backup(db, file)
    assert counts["participant"] == 2 and counts["audit_log"] > 100
    target = connect(f"sqlite:///{tmp_path / 'restored.db'}")
    restore(target, file)
    assert _dump(target) == original
    with target.session(write=False) as session:
        assert verify_chain(session).ok
    # The restored database keeps working: new ids continue after the restored ones.
    factories.patient(target, 2, name="After Restore")
    target.dispose()


def test_restore_into_postgresql_from_sqlite_backup(db, tmp_path):
    """Whatever ``db`` is, its backup restores into the other kind too (here: into ``db`` itself)."""
    source = connect(f"sqlite:///{tmp_path / 'source.db'}")
    migrate.upgrade(source)
    _study(source)
    backup(source, tmp_path / "b.json")
    for table in Base.metadata.sorted_tables:  # db is freshly migrated and empty
        assert _dump(db)[table.name] == []
    restore(db, tmp_path / "b.json")
    assert _dump(db) == _dump(source)
    with db.session(write=False) as session:
        assert verify_chain(session).ok
    source.dispose()


def test_restore_refuses_a_non_empty_database_and_foreign_files(db, tmp_path):
    _study(db)
    backup(db, tmp_path / "b.json")
    with pytest.raises(ConflictError, match="empty database"):
        restore(db, tmp_path / "b.json")
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(InputError):
        restore(db, tmp_path / "other.json")
