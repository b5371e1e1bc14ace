"""The migrations build the schema the models describe, and every per-participant read has an index."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from nettrial.store import migrate
from nettrial.store.models import Base

# Tables read by participant (or patient) on every participant page, and the column they are read by.
READ_BY = {
    "dosing_period": "participant_id",
    "lab_result": "participant_id",
    "vital_signs": "participant_id",
    "adverse_event": "participant_id",
    "tumour_assessment": "participant_id",
    "visit": "participant_id",
    "disposition": "participant_id",
    "screening_record": "patient_id",
    "eligibility_evaluation": "patient_id",
    "consent": "patient_id",
}


def test_the_migrated_schema_is_the_models_schema(db):
    assert migrate.current(db) == migrate.head() == "0002"
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_each_table_read_by_participant_or_patient_has_an_index_that_begins_with_that_column(db):
    inspector = inspect(db.engine)
    for table, column in READ_BY.items():
        leading = [i["column_names"][0] for i in inspector.get_indexes(table)]
        leading += [u["column_names"][0] for u in inspector.get_unique_constraints(table)]
        assert column in leading, f"{table}.{column} has no index"


def test_the_indexes_come_off_with_a_downgrade_and_back_on_with_an_upgrade(db):
    assert migrate.downgrade(db, "0001") == "0001"
    assert "ix_lab_result_participant_id" not in {
        i["name"] for i in inspect(db.engine).get_indexes("lab_result")
    }
    assert migrate.upgrade(db, "head") == "0002"
    assert "ix_lab_result_participant_id" in {i["name"] for i in inspect(db.engine).get_indexes("lab_result")}
