"""Labs and vital signs: refused before anything is written, graded by CTCAE against the baseline."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select

from nettrial.exceptions import ImplausibleValueError, InputError
from nettrial.safety.terms import find_term
from nettrial.store import audit, measurements
from nettrial.store.models import AuditEntry, LabResult, Participant
from nettrial.units import lab_tests
from tests import factories
from tests.factories import PROTOCOL

FIRST_DOSE = dt.date(2026, 3, 2)  # the eligible record's planned first dose, copied at enrolment
SCREENING_DAY = dt.date(2026, 2, 24)
C2D1 = dt.date(2026, 3, 30)


@contextmanager
def _writing(db, reason: str | None = None):
    with db.session() as session:
        audit.acting_as(session, None, "coordinator")
        with audit.because(session, reason):
            yield session


def _participant(db) -> int:
    users = factories.seed(db)
    return factories.enrolled(db, users["coordinator"])


def _lab(db, participant_id: int, **fields) -> LabResult:
    with _writing(db) as session:
        participant = session.get(Participant, participant_id)
        return measurements.add_lab(session, participant=participant, protocol=PROTOCOL, **fields)


def _count(db, model) -> int:
    with db.session(write=False) as session:
        return session.scalar(select(func.count(model.id)))


def test_every_ctcae_term_in_labs_yaml_grades_that_test():
    terms = {test: spec["ctcae_term"] for test, spec in lab_tests().items() if "ctcae_term" in spec}
    assert len(terms) == 22
    for test, term in terms.items():
        spec = find_term(term)
        assert spec.name == term
        assert test in {spec.test, *(route.test for route in spec.routes)}


def test_alt_is_graded_against_the_uln_with_the_screening_value_as_baseline(db):
    participant_id = _participant(db)
    baseline = _lab(db, participant_id, test="alt", value=30, unit="U/L", uln=40, collected_on=SCREENING_DAY)
    assert baseline.ctcae_grade == 0
    assert baseline.grading["baseline_source"] is None  # a screening value is itself a baseline
    lab = _lab(db, participant_id, test="alt", value=130, unit="U/L", uln=40, collected_on=C2D1)
    assert (lab.ctcae_term, lab.ctcae_grade, lab.ctcae_version) == (
        "Alanine aminotransferase increased",
        2,
        "5.0",
    )
    assert lab.grading["inputs"]["baseline"] == 30
    assert lab.grading["baseline_source"] == {"lab_id": baseline.id, "collected_on": "2026-02-24"}
    assert "> 3.0 x ULN" in lab.grading["rule"]
    with db.session(write=False) as session:
        stored = session.get(LabResult, lab.id)
        assert stored.ctcae_grade == 2 and stored.grading["grade"] == 2


def test_the_baseline_is_converted_to_the_unit_of_the_new_value(db):
    participant_id = _participant(db)
    _lab(db, participant_id, test="creatinine", value=70, unit="umol/L", uln=97, collected_on=SCREENING_DAY)
    lab = _lab(db, participant_id, test="creatinine", value=2.0, unit="mg/dL", uln=1.1, collected_on=C2D1)
    assert lab.grading["inputs"]["baseline"] == pytest.approx(70 / 88.4)
    assert lab.ctcae_grade == 2  # > 1.5 x ULN (1.65 mg/dL)


def test_an_abnormal_baseline_grades_by_the_baseline_and_its_removal_grades_again(db):
    participant_id = _participant(db)
    baseline = _lab(db, participant_id, test="alt", value=80, unit="U/L", uln=40, collected_on=SCREENING_DAY)
    lab = _lab(db, participant_id, test="alt", value=130, unit="U/L", uln=40, collected_on=C2D1)
    assert lab.ctcae_grade == 1  # >= 1.5 x baseline (120), not > 3.0 x baseline
    with _writing(db, "entered for the wrong patient") as session:
        measurements.delete_lab(session, lab=session.get(LabResult, baseline.id), protocol=PROTOCOL)
    with db.session(write=False) as session:
        assert session.get(LabResult, lab.id).ctcae_grade == 2  # now against the ULN
        entry = session.scalar(
            select(AuditEntry).where(
                AuditEntry.entity == "lab_result",
                AuditEntry.entity_id == str(lab.id),
                AuditEntry.field == "ctcae_grade",
                AuditEntry.action == "update",
            )
        )
    assert (entry.old_value, entry.new_value) == ("1", "2")
    assert entry.reason == "graded again: a baseline alt result was removed"


def test_an_implausible_value_is_refused_naming_the_field_and_the_likely_unit(db):
    participant_id = _participant(db)
    with pytest.raises(ImplausibleValueError) as refused:
        _lab(db, participant_id, test="haemoglobin", value=120, unit="g/dL", lln=11.5, collected_on=C2D1)
    assert refused.value.field == "value"
    assert "g/L" in refused.value.detail
    assert _count(db, LabResult) == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"test": "alt", "unit": "mg/dL", "uln": 40}, "unit"),
        ({"test": "alt", "unit": "U/L"}, "uln"),  # 130 U/L: grade 1 or more needs the ULN
        ({"test": "glucose", "unit": "mmol/L"}, "test"),
        ({"test": "systolic_bp", "unit": "mmHg"}, "test"),  # a vital sign
        ({"test": "alt", "unit": "U/L", "uln": 40, "lln": 50}, "lln"),
        ({"test": "alt", "unit": "U/L", "uln": 40, "visit_code": "C9D1"}, "visit_code"),
    ],
)
def test_refusals_name_the_field_and_write_nothing(db, fields, field):
    participant_id = _participant(db)
    with pytest.raises(InputError) as refused:
        _lab(db, participant_id, value=130, collected_on=C2D1, **fields)
    assert refused.value.field == field
    assert _count(db, LabResult) == 0


def test_a_correction_grades_again_and_needs_a_reason(db):
    participant_id = _participant(db)
    lab = _lab(db, participant_id, test="alt", value=130, unit="U/L", uln=40, collected_on=C2D1)
    with pytest.raises(InputError) as refused, _writing(db) as session:
        measurements.update_lab(
            session, lab=session.get(LabResult, lab.id), protocol=PROTOCOL, changes={"value": 13}
        )
    assert refused.value.field == "reason"
    with _writing(db, "transcription error: 13 U/L on the lab report") as session:
        corrected = measurements.update_lab(
            session, lab=session.get(LabResult, lab.id), protocol=PROTOCOL, changes={"value": 13}
        )
    assert corrected.ctcae_grade == 0


def test_vital_signs_grade_hypertension_and_weight_loss_from_the_baseline_weight(db):
    participant_id = _participant(db)
    with _writing(db) as session:
        participant = session.get(Participant, participant_id)
        baseline = measurements.add_vital_signs(
            session, participant=participant, protocol=PROTOCOL, measured_on=FIRST_DOSE, weight_kg=62
        )
        assert baseline.ctcae_grades is None  # the baseline itself: no weight loss to grade
        later = measurements.add_vital_signs(
            session,
            participant=participant,
            protocol=PROTOCOL,
            measured_on=C2D1,
            systolic_mmhg=150,
            diastolic_mmhg=95,
            weight_kg=55,
        )
    assert later.ctcae_grades["Hypertension"]["grade"] == 2
    assert later.ctcae_grades["Weight loss"]["grade"] == 2  # 11.3 % below 62 kg
    assert later.ctcae_grades["Weight loss"]["baseline_source"]["vital_signs_id"] == baseline.id


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"heart_rate_bpm": 300}, "heart_rate_bpm"),
        ({"temperature_c": 50}, "temperature_c"),
        ({"weight_kg": 620}, "weight_kg"),
        ({"systolic_mmhg": 400, "diastolic_mmhg": 90}, "systolic_mmhg"),
        ({"systolic_mmhg": 90, "diastolic_mmhg": 120}, "diastolic_mmhg"),
        ({}, "body"),
    ],
)
def test_implausible_vital_signs_are_refused_naming_the_field(db, fields, field):
    participant_id = _participant(db)
    with pytest.raises(InputError) as refused, _writing(db) as session:
        participant = session.get(Participant, participant_id)
        measurements.add_vital_signs(
            session, participant=participant, protocol=PROTOCOL, measured_on=C2D1, **fields
        )
    assert refused.value.field == field
