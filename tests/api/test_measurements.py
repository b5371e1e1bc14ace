"""Labs and vital signs over the API: graded on entry, refused with the field named, corrections audited."""

from __future__ import annotations

from sqlalchemy import func, select

from nettrial.store.models import AuditEntry, LabResult, VitalSigns
from tests import factories

LABS = "/api/v1/participants/NET-001/labs"
VITALS = "/api/v1/participants/NET-001/vital-signs"
SCREENING_ALT = {"test": "alt", "value": 30, "unit": "U/L", "uln": 40, "collected_on": "2026-02-24"}
C2D1_ALT = {
    "test": "alt",
    "value": 130,
    "unit": "U/L",
    "uln": 40,
    "collected_on": "2026-03-30",
    "visit_code": "C2D1",
}


def _study(db):
    users = factories.seed(db)
    factories.enrolled(db, users["coordinator"])
    api = factories.client(db)
    return api, factories.login(api, "coordinator")


def _count(db, model) -> int:
    with db.session(write=False) as session:
        return session.scalar(select(func.count(model.id)))


def _audit(db, **where) -> list[AuditEntry]:
    with db.session(write=False) as session:
        query = select(AuditEntry).order_by(AuditEntry.id)
        for key, value in where.items():
            query = query.where(getattr(AuditEntry, key) == value)
        return list(session.scalars(query))


def test_a_lab_is_graded_on_entry_against_the_screening_baseline(db):
    api, coordinator = _study(db)
    assert api.post(LABS, json=SCREENING_ALT, headers=coordinator).status_code == 201
    created = api.post(LABS, json=C2D1_ALT, headers=coordinator)
    assert created.status_code == 201, created.text
    lab = created.json()
    assert (lab["ctcae_term"], lab["ctcae_grade"], lab["ctcae_version"]) == (
        "Alanine aminotransferase increased",
        2,
        "5.0",
    )
    grading = lab["grading"]
    assert "> 3.0 x ULN" in grading["rule"]
    assert grading["needs_review"] is False and isinstance(grading["notes"], list)
    assert (grading["baseline"], grading["baseline_source"]["collected_on"]) == (30, "2026-02-24")
    listed = api.get(LABS, params={"test": "alt"}, headers=factories.login(api, "statistician"))
    assert [r["ctcae_grade"] for r in listed.json()] == [0, 2]
    with db.session(write=False) as session:
        assert session.get(LabResult, lab["id"]).ctcae_grade == 2


def test_an_implausible_haemoglobin_is_refused_and_nothing_is_written(db):
    api, coordinator = _study(db)
    before = (_count(db, LabResult), _count(db, AuditEntry))
    refused = api.post(
        LABS,
        json={"test": "haemoglobin", "value": 120, "unit": "g/dL", "lln": 11.5, "collected_on": "2026-03-30"},
        headers=coordinator,
    )
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["field"] == "value"
    assert "looks like g/L" in error["message"]
    assert (_count(db, LabResult), _count(db, AuditEntry)) == before


def test_an_unknown_unit_is_refused_with_the_units_allowed(db):
    api, coordinator = _study(db)
    refused = api.post(LABS, json=C2D1_ALT | {"unit": "mg/dL"}, headers=coordinator)
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "unit"
    assert "U/L" in refused.json()["error"]["allowed"]
    assert _count(db, LabResult) == 0


def test_a_missing_uln_the_grade_needs_is_refused(db):
    api, coordinator = _study(db)
    without_uln = {key: value for key, value in C2D1_ALT.items() if key != "uln"}
    refused = api.post(LABS, json=without_uln, headers=coordinator)
    assert (refused.status_code, refused.json()["error"]["field"]) == (422, "uln")
    assert _count(db, LabResult) == 0


def test_readers_without_clinical_write_cannot_enter_results(db):
    api, _ = _study(db)
    for role in ("monitor", "statistician"):
        headers = factories.login(api, role)
        assert api.post(LABS, json=C2D1_ALT, headers=headers).status_code == 403
        assert (
            api.post(VITALS, json={"measured_on": "2026-03-30", "weight_kg": 60}, headers=headers).status_code
            == 403
        )
    assert _count(db, LabResult) == 0


def test_a_correction_needs_a_reason_grades_again_and_audits_old_and_new(db):
    api, coordinator = _study(db)
    api.post(LABS, json=SCREENING_ALT, headers=coordinator)
    lab_id = api.post(LABS, json=C2D1_ALT, headers=coordinator).json()["id"]
    unexplained = api.patch(f"/api/v1/labs/{lab_id}", json={"value": 13}, headers=coordinator)
    assert (unexplained.status_code, unexplained.json()["error"]["field"]) == (422, "reason")
    reason = "transcription error: 13 U/L on the report"
    corrected = api.patch(f"/api/v1/labs/{lab_id}", json={"value": 13, "reason": reason}, headers=coordinator)
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["ctcae_grade"] == 0
    changed = {e.field: e for e in _audit(db, entity="lab_result", entity_id=str(lab_id), action="update")}
    assert (changed["value"].old_value, changed["value"].new_value) == ("130.0", "13.0")
    assert (changed["ctcae_grade"].old_value, changed["ctcae_grade"].new_value) == ("2", "0")
    assert {e.reason for e in changed.values()} == {reason}
    assert {e.username for e in changed.values()} == {"coordinator"}


def test_a_deletion_needs_a_reason_in_the_body_or_the_query(db):
    api, coordinator = _study(db)
    lab_id = api.post(LABS, json=C2D1_ALT, headers=coordinator).json()["id"]
    url = f"/api/v1/labs/{lab_id}"
    unexplained = api.delete(url, headers=coordinator)
    assert (unexplained.status_code, unexplained.json()["error"]["field"]) == (422, "reason")
    assert _count(db, LabResult) == 1
    deleted = api.request(
        "DELETE", url, json={"reason": "entered for the wrong participant"}, headers=coordinator
    )
    assert deleted.status_code == 204
    assert _count(db, LabResult) == 0
    removed = _audit(db, entity="lab_result", entity_id=str(lab_id), action="delete")
    assert {e.field for e in removed} >= {"value", "test", "ctcae_grade"}
    assert {e.reason for e in removed} == {"entered for the wrong participant"}
    second = api.post(LABS, json=C2D1_ALT, headers=coordinator).json()["id"]
    by_query = api.delete(f"/api/v1/labs/{second}", params={"reason": "duplicate entry"}, headers=coordinator)
    assert by_query.status_code == 204


def test_vital_signs_are_graded_checked_and_corrected_with_a_reason(db):
    api, coordinator = _study(db)
    api.post(VITALS, json={"measured_on": "2026-03-02", "weight_kg": 62}, headers=coordinator)
    created = api.post(
        VITALS,
        json={"measured_on": "2026-03-30", "systolic_mmhg": 150, "diastolic_mmhg": 95, "weight_kg": 55},
        headers=coordinator,
    )
    assert created.status_code == 201, created.text
    grades = created.json()["grades"]
    assert (grades["Hypertension"]["grade"], grades["Weight loss"]["grade"]) == (2, 2)
    refused = api.post(VITALS, json={"measured_on": "2026-03-30", "heart_rate_bpm": 300}, headers=coordinator)
    assert (refused.status_code, refused.json()["error"]["field"]) == (422, "heart_rate_bpm")
    url = f"/api/v1/vital-signs/{created.json()['id']}"
    assert api.patch(url, json={"systolic_mmhg": 135}, headers=coordinator).status_code == 422
    corrected = api.patch(
        url, json={"systolic_mmhg": 135, "reason": "re-measured seated"}, headers=coordinator
    )
    assert corrected.status_code == 200
    assert corrected.json()["grades"]["Hypertension"]["grade"] == 2  # diastolic 95 still grade 2
    (entry,) = _audit(db, entity="vital_signs", field="systolic_mmhg", action="update")
    assert (entry.old_value, entry.new_value, entry.reason) == ("150", "135", "re-measured seated")
    assert len(api.get(VITALS, headers=factories.login(api, "monitor")).json()) == 2
    assert _count(db, VitalSigns) == 2
