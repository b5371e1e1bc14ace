"""The audit trail: field-level entries with who, when, old, new and why, in a verifiable hash chain."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from nettrial.exceptions import InputError
from nettrial.store import audit
from nettrial.store.models import AuditEntry, Patient
from tests import factories


def _entries(db, **where):
    with db.session(write=False) as session:
        query = select(AuditEntry).order_by(AuditEntry.id)
        for key, value in where.items():
            query = query.where(getattr(AuditEntry, key) == value)
        return session.scalars(query).all()


def test_an_insert_records_every_field_with_who_and_when(db):
    users = factories.seed(db)
    patient_id = factories.patient(db, users["coordinator"], name="Wang Fang")
    entries = _entries(db, entity="patient", entity_id=str(patient_id))
    fields = {e.field: e for e in entries}
    assert {"full_name", "date_of_birth", "sex", "screening_number", "site_id"} <= set(fields)
    assert fields["full_name"].new_value == '"Wang Fang"'
    assert fields["full_name"].old_value is None
    assert all(e.action == "insert" and e.user_id == users["coordinator"] for e in entries)
    assert all(e.at.tzinfo is not None and e.at <= dt.datetime.now(dt.UTC) for e in entries)


def test_a_change_after_first_entry_needs_a_reason_and_records_old_and_new(db):
    users = factories.seed(db)
    patient_id = factories.patient(db, users["coordinator"], name="Wang Fang")
    with pytest.raises(InputError) as error, db.session() as session:
        audit.acting_as(session, users["coordinator"], "coordinator")
        session.get(Patient, patient_id).full_name = "Wang Fan"
        session.flush()
    assert error.value.field == "reason"
    with db.session() as session:
        audit.acting_as(session, users["investigator"], "investigator")
        with audit.because(session, "typo in the name, checked against the ID card"):
            session.get(Patient, patient_id).full_name = "Wang Fan"
    (entry,) = _entries(db, entity="patient", field="full_name", action="update")
    assert (entry.old_value, entry.new_value) == ('"Wang Fang"', '"Wang Fan"')
    assert (entry.username, entry.reason) == ("investigator", "typo in the name, checked against the ID card")


def test_a_change_without_an_actor_is_refused(db):
    factories.seed(db)
    with pytest.raises(RuntimeError, match="actor"), db.session() as session:
        session.add(Patient(screening_number="S-9", site_id=1, full_name="x", medical_record_number="m",
                            date_of_birth=dt.date(1970, 1, 1), sex="male"))  # fmt: skip
        session.flush()


def test_password_hashes_are_audited_as_changed_but_never_shown(db):
    factories.seed(db)
    entries = _entries(db, entity="user_account", field="password_hash")
    assert entries and all(e.new_value == "<hidden>" for e in entries)


def test_the_chain_verifies_and_names_the_first_altered_entry(db):
    users = factories.seed(db)
    factories.patient(db, users["coordinator"])
    with db.session(write=False) as session:
        report = audit.verify_chain(session)
    assert report.ok and report.entries > 20
    target = _entries(db, entity="patient", field="full_name")[0].id
    if db.url.startswith("postgresql"):
        # The database itself refuses to alter the trail ...
        with pytest.raises(DBAPIError, match="append-only"), db.session() as session:
            session.execute(
                update(AuditEntry).where(AuditEntry.id == target).values(new_value='"Someone Else"')
            )
        with pytest.raises(DBAPIError, match="append-only"), db.session() as session:
            session.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": target})
        # ... so tampering needs the owner to switch the triggers off first.
        with db.session() as session:
            session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
    with db.session() as session:
        session.execute(update(AuditEntry).where(AuditEntry.id == target).values(new_value='"Someone Else"'))
    with db.session(write=False) as session:
        report = audit.verify_chain(session)
    assert (report.ok, report.broken_at) == (False, target)
    assert "altered" in report.problem


def test_a_removed_entry_breaks_the_link_of_the_next(db):
    users = factories.seed(db)
    factories.patient(db, users["coordinator"])
    target = _entries(db, entity="patient")[2].id
    with db.session() as session:
        if db.url.startswith("postgresql"):
            session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        session.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": target})
    with db.session(write=False) as session:
        report = audit.verify_chain(session)
    assert report.broken_at == target + 1
    assert "removed or inserted" in report.problem


def test_events_are_chained_too(db):
    factories.seed(db)
    with db.session() as session:
        audit.acting_as(session, None, "monitor")
        audit.record_event(session, entity="export", entity_id="sdtm", what="export", detail={"rows": 3})
    (entry,) = _entries(db, action="event", entity="export")
    assert entry.new_value == '{"rows": 3}'
    with db.session(write=False) as session:
        assert audit.verify_chain(session).ok


@pytest.mark.parametrize("batch", [1, 2, 7, 5000])
def test_the_chain_is_read_in_id_order_in_batches_of_any_size(db, batch):
    users = factories.seed(db)
    factories.patient(db, users["coordinator"])
    with db.session(write=False) as session:
        everything = [e.id for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
        assert [e.id for e in audit._in_order(session, batch=batch)] == everything
    assert len(everything) > 7
