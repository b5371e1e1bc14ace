"""Tumour assessments and dispositions: recurrence sites, one disposition per phase, status that follows."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from nettrial.exceptions import ConflictError, InputError
from nettrial.store import audit
from nettrial.store.assessments import (
    create_disposition,
    create_tumour_assessment,
    update_disposition,
    update_tumour_assessment,
)
from nettrial.store.models import AuditEntry, Disposition, Participant, TumourAssessment
from tests import factories

TODAY = dt.datetime.now(dt.UTC).date()
ENROLLED = factories.ENROLLED_AT.date()


def _participant(db) -> tuple[int, int]:
    users = factories.seed(db)
    return users["investigator"], factories.enrolled(db, users["investigator"])


def _assess(db, user_id, participant_id, **fields):
    with db.session() as session:
        audit.acting_as(session, user_id, "investigator")
        participant = session.get(Participant, participant_id)
        return create_tumour_assessment(
            session, participant=participant, **({"assessed_on": TODAY, "method": "CT"} | fields)
        )


def _dispose(db, user_id, participant_id, **fields):
    with db.session() as session:
        audit.acting_as(session, user_id, "investigator")
        participant = session.get(Participant, participant_id)
        disposition = create_disposition(
            session, participant=participant, **({"status_date": TODAY} | fields)
        )
        return disposition, participant.status


def test_a_recurrence_is_stored_with_its_sites_in_a_fixed_order(db):
    user, participant = _participant(db)
    found = _assess(db, user, participant, result="recurrence", recurrence_sites=["liver", "nodal", "liver"])
    assert found.recurrence_sites == ["nodal", "liver"]
    assert _assess(db, user, participant, result="no_evidence_of_disease").recurrence_sites == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"result": "recurrence"}, "recurrence_sites"),
        ({"result": "no_evidence_of_disease", "recurrence_sites": ["liver"]}, "recurrence_sites"),
        ({"result": "recurrence", "recurrence_sites": ["lung"]}, "recurrence_sites"),
        ({"result": "no_evidence_of_disease", "method": "X-ray"}, "method"),
        ({"result": "stable"}, "result"),
        ({"result": "no_evidence_of_disease", "assessed_on": TODAY + dt.timedelta(days=3)}, "assessed_on"),
    ],
)
def test_sites_go_with_a_recurrence_and_only_with_one(db, fields, field):
    user, participant = _participant(db)
    with pytest.raises(InputError) as error:
        _assess(db, user, participant, **fields)
    assert error.value.field == field


def test_a_correction_is_checked_again_and_audited_with_its_reason(db):
    user, participant = _participant(db)
    found = _assess(db, user, participant, result="no_evidence_of_disease")
    with pytest.raises(InputError) as error, db.session() as session:
        audit.acting_as(session, user, "investigator")
        assessment = session.get(TumourAssessment, found.id)
        update_tumour_assessment(session, assessment=assessment, result="recurrence")
    assert error.value.field == "recurrence_sites"
    with db.session() as session:
        audit.acting_as(session, user, "investigator")
        with audit.because(session, "radiology report amended: new liver lesion"):
            update_tumour_assessment(
                session,
                assessment=session.get(TumourAssessment, found.id),
                result="recurrence",
                recurrence_sites=["liver"],
            )
        entry = session.scalar(
            select(AuditEntry).where(AuditEntry.entity == "tumour_assessment", AuditEntry.field == "result")
            .where(AuditEntry.action == "update")
        )  # fmt: skip
    assert (entry.old_value, entry.new_value) == ('"no_evidence_of_disease"', '"recurrence"')
    assert entry.reason == "radiology report amended: new liver lesion"


def test_treatment_end_moves_to_follow_up_and_a_second_one_is_a_conflict(db):
    user, participant = _participant(db)
    _, status = _dispose(db, user, participant, phase="treatment", status="completed")
    assert status == "follow_up"
    with pytest.raises(ConflictError) as error:
        _dispose(db, user, participant, phase="treatment", status="withdrawn", reason="changed mind")
    assert error.value.field == "phase"
    with db.session(write=False) as session:
        status_change = session.scalar(
            select(AuditEntry).where(AuditEntry.entity == "participant", AuditEntry.field == "status")
            .where(AuditEntry.action == "update")
        )  # fmt: skip
    assert (status_change.new_value, status_change.reason) == (
        '"follow_up"',
        "treatment disposition: completed",
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"phase": "treatment", "status": "withdrawn"}, "reason"),
        ({"phase": "treatment", "status": "death", "reason": "died"}, "cause_of_death"),
        (
            {"phase": "study", "status": "withdrawn", "reason": "moved", "cause_of_death": "n/a"},
            "cause_of_death",
        ),
        ({"phase": "study", "status": "recurrence", "reason": "recurred"}, "status"),
        ({"phase": "follow_up", "status": "completed"}, "phase"),
        (
            {"phase": "study", "status": "completed", "status_date": ENROLLED - dt.timedelta(days=2)},
            "status_date",
        ),
    ],
)
def test_a_disposition_gives_its_reason_and_a_death_its_cause(db, fields, field):
    user, participant = _participant(db)
    with pytest.raises(InputError) as error:
        _dispose(db, user, participant, **fields)
    assert error.value.field == field


def test_study_end_takes_the_participant_off_study_and_a_death_wins(db):
    user, participant = _participant(db)
    treatment = {"phase": "treatment", "status": "adverse_event", "reason": "grade 3 bleeding"}
    assert _dispose(db, user, participant, **treatment)[1] == "follow_up"
    study = {"phase": "study", "status": "lost_to_follow_up", "reason": "no contact since May"}
    found, status = _dispose(db, user, participant, **study)
    assert status == "off_study"
    with db.session() as session:
        audit.acting_as(session, user, "investigator")
        with audit.because(session, "the family reported the death"):
            update_disposition(
                session, disposition=session.get(Disposition, found.id), status="death", cause_of_death="MI"
            )
        assert session.get(Participant, participant).status == "died"


def test_a_death_on_treatment_is_the_end_of_the_study_too(db):
    user, participant = _participant(db)
    _dispose(db, user, participant, phase="treatment", status="death", reason="died", cause_of_death="stroke")
    with pytest.raises(InputError) as error:
        _dispose(db, user, participant, phase="study", status="completed")
    assert error.value.field == "status"
    _, status = _dispose(
        db, user, participant, phase="study", status="death", reason="died", cause_of_death="stroke"
    )
    assert status == "died"


def test_correcting_a_mistaken_death_moves_the_status_back(db):
    user, participant = _participant(db)
    found, _ = _dispose(
        db, user, participant, phase="study", status="death", reason="died", cause_of_death="?"
    )
    with db.session() as session:
        audit.acting_as(session, user, "investigator")
        with audit.because(session, "wrong participant: NET-001 withdrew, did not die"):
            update_disposition(
                session,
                disposition=session.get(Disposition, found.id),
                status="withdrawn",
                reason="withdrew consent",
                cause_of_death=None,
            )
        assert session.get(Participant, participant).status == "off_study"
    with pytest.raises(InputError) as error, db.session() as session:
        audit.acting_as(session, user, "investigator")
        update_disposition(session, disposition=session.get(Disposition, found.id), phase="treatment")
    assert error.value.field == "phase"
