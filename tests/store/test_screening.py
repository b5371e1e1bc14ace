"""Screening and enrolment: versioned records, stored evaluations, study ids in order, closed at 35."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, update

from nettrial.exceptions import ConflictError, InputError
from nettrial.store import audit
from nettrial.store.models import AuditEntry, EligibilityEvaluation, Participant, Patient, Study
from nettrial.store.screening import enrol, evaluate_patient, save_screening_record
from tests import factories
from tests.factories import PROTOCOL


def _enrol(db, user_id, patient_id, **kwargs):
    with db.session() as session:
        audit.acting_as(session, user_id, "test")
        patient = session.get(Patient, patient_id)
        return enrol(session, patient=patient, protocol=PROTOCOL, user_id=user_id, **kwargs).study_id


def test_records_are_versioned_and_the_identity_is_the_patients(db):
    users = factories.seed(db)
    patient_id = factories.patient(db, users["coordinator"], dob="1965-05-10")
    with db.session() as session:
        audit.acting_as(session, users["coordinator"], "coordinator")
        patient = session.get(Patient, patient_id)
        first = save_screening_record(session, patient=patient, record=factories.eligible_record(), user_id=1)
        second = save_screening_record(
            session, patient=patient, record=factories.eligible_record(), user_id=1
        )
        assert (first.version, second.version) == (1, 2)
        assert first.record["identity"]["date_of_birth"] == "1965-05-10"
        with pytest.raises(InputError) as error:
            wrong = factories.eligible_record(identity={"date_of_birth": "1970-01-01"})
            save_screening_record(session, patient=patient, record=wrong, user_id=1)
        assert error.value.field == "identity.date_of_birth"


def test_an_implausible_record_is_refused_with_its_field_path(db):
    users = factories.seed(db)
    patient_id = factories.patient(db, users["coordinator"])
    record = factories.eligible_record()
    record["labs"][2]["unit"] = "g/dL"  # haemoglobin 118 g/dL
    with pytest.raises(InputError) as error, db.session() as session:
        audit.acting_as(session, users["coordinator"], "coordinator")
        save_screening_record(session, patient=session.get(Patient, patient_id), record=record, user_id=1)
    assert error.value.field.startswith("labs.2")
    assert "g/L" in str(error.value)


def test_the_evaluation_is_stored_with_record_and_protocol_versions(db):
    users = factories.seed(db)
    patient_id = factories.eligible_patient(db, users["coordinator"])
    with db.session(write=False) as session:
        (evaluation,) = session.scalars(select(EligibilityEvaluation)).all()
    assert (evaluation.decision, evaluation.protocol_version) == ("ELIGIBLE", PROTOCOL.protocol_version)
    assert evaluation.patient_id == patient_id
    assert {v["criterion"] for v in evaluation.result["verdicts"]} >= {"I1", "I5", "E3"}


def test_study_ids_are_given_in_order(db):
    users = factories.seed(db)
    ids = [
        _enrol(db, users["coordinator"], factories.eligible_patient(db, users["coordinator"]))
        for _ in range(3)
    ]
    assert ids == ["NET-001", "NET-002", "NET-003"]


def test_enrolment_closes_at_the_target(db):
    users = factories.seed(db)
    with db.session() as session:
        audit.acting_as(session, None, "test")
        from nettrial.store.screening import ensure_study

        ensure_study(session, PROTOCOL)
        session.execute(update(Study).values(target_enrolment=2))
    for _ in range(2):
        _enrol(db, users["coordinator"], factories.eligible_patient(db, users["coordinator"]))
    extra = factories.eligible_patient(db, users["coordinator"])
    with pytest.raises(ConflictError) as error:
        _enrol(db, users["coordinator"], extra)
    assert error.value.field == "enrolment"
    assert "2 of 2" in str(error.value)
    with db.session(write=False) as session:
        assert session.scalar(select(func.count(Participant.id))) == 2


def test_enrolment_needs_a_current_eligible_evaluation(db):
    users = factories.seed(db)
    coordinator = users["coordinator"]
    never = factories.patient(db, coordinator, name="Not Evaluated")
    with pytest.raises(ConflictError, match="no eligibility evaluation"):
        _enrol(db, coordinator, never)

    stale = factories.eligible_patient(db, coordinator, name="Stale")
    with db.session() as session:
        # 29 days old: beyond eligibility_verdict_valid_days (28)
        old = dt.datetime.now(dt.UTC) - dt.timedelta(days=29)
        session.execute(update(EligibilityEvaluation).where(EligibilityEvaluation.patient_id == stale).values(
            evaluated_at=old))  # fmt: skip
    with pytest.raises(ConflictError, match="older than 28 days"):
        _enrol(db, coordinator, stale)

    changed = factories.eligible_patient(db, coordinator, name="Changed")
    with db.session() as session:
        audit.acting_as(session, coordinator, "coordinator")
        record = factories.eligible_record()
        save_screening_record(
            session, patient=session.get(Patient, changed), record=record, user_id=coordinator
        )
    with pytest.raises(ConflictError, match="changed"):
        _enrol(db, coordinator, changed)

    ineligible = factories.patient(db, coordinator, name="Low Platelets")
    with db.session() as session:
        audit.acting_as(session, coordinator, "coordinator")
        record = factories.eligible_record()
        record["labs"][1]["value"] = 90
        patient = session.get(Patient, ineligible)
        save_screening_record(session, patient=patient, record=record, user_id=coordinator)
        assert evaluate_patient(
            session, patient=patient, protocol=PROTOCOL, user_id=coordinator
        ).decision == ("INELIGIBLE")
    with pytest.raises(ConflictError, match="INELIGIBLE"):
        _enrol(db, coordinator, ineligible)


def test_an_investigator_override_needs_a_reason_and_is_audited(db):
    users = factories.seed(db)
    patient_id = factories.patient(db, users["coordinator"], name="Override")
    with pytest.raises(ConflictError, match="only an investigator"):
        _enrol(db, users["coordinator"], patient_id, override_reason="urgent")
    with pytest.raises(ConflictError, match="override with a reason"):
        _enrol(db, users["investigator"], patient_id, may_override=True)
    study_id = _enrol(
        db, users["investigator"], patient_id, may_override=True, override_reason="labs repeated today"
    )
    assert study_id == "NET-001"
    with db.session(write=False) as session:
        event = session.scalar(select(AuditEntry).where(AuditEntry.field == "enrolment override"))
        participant = session.scalar(select(Participant))
    assert event.user_id == users["investigator"]
    assert "labs repeated today" in event.reason and "no eligibility evaluation" in event.reason
    assert participant.override_reason == event.reason


def test_a_patient_is_enrolled_once(db):
    users = factories.seed(db)
    patient_id = factories.eligible_patient(db, users["coordinator"])
    _enrol(db, users["coordinator"], patient_id)
    with pytest.raises(ConflictError) as error:
        _enrol(db, users["coordinator"], patient_id)
    assert error.value.field == "patient"
