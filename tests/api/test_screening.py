"""Screening over the API: patients, records, evaluations, enrolment, the screening log, privacy."""

from __future__ import annotations

from sqlalchemy import func, select

from nettrial.store.models import Patient, ScreeningRecordVersion
from tests import factories

NEW_PATIENT = {
    "site_code": factories.SITE,
    "full_name": "Chen Jing",
    "medical_record_number": "ZJU-0042",
    "date_of_birth": "1966-04-01",
    "sex": "female",
}


def _count(db, model) -> int:
    with db.session(write=False) as session:
        return session.scalar(select(func.count(model.id)))


def test_screen_and_enrol_a_patient(db):
    factories.seed(db)
    api = factories.client(db)
    coordinator = factories.login(api, "coordinator")
    created = api.post("/api/v1/patients", json=NEW_PATIENT, headers=coordinator)
    assert created.status_code == 201, created.text
    patient = created.json()
    assert (patient["screening_number"], patient["full_name"]) == ("S-0001", "Chen Jing")
    url = f"/api/v1/patients/{patient['id']}"
    record = factories.eligible_record()
    assert api.put(f"{url}/screening-record", json=record, headers=coordinator).json()["version"] == 1
    evaluation = api.post(f"{url}/evaluations", json={}, headers=coordinator)
    assert evaluation.status_code == 201
    assert evaluation.json()["decision"] == "ELIGIBLE"
    assert {v["criterion"]: v["truth"] for v in evaluation.json()["result"]["verdicts"]}["I5"] == "MET"
    enrolled = api.post(f"{url}/enrolment", json={}, headers=coordinator)
    assert enrolled.status_code == 201, enrolled.text
    assert enrolled.json()["study_id"] == "NET-001"
    log = api.get("/api/v1/screening-log", headers=factories.login(api, "monitor")).json()
    assert [(r["screening_number"], r["decision"], r["study_id"]) for r in log] == [
        ("S-0001", "ELIGIBLE", "NET-001")
    ]


def test_an_ineligible_patient_is_not_enrolled_and_the_log_says_why(db):
    factories.seed(db)
    api = factories.client(db)
    coordinator = factories.login(api, "coordinator")
    patient = api.post("/api/v1/patients", json=NEW_PATIENT, headers=coordinator).json()
    url = f"/api/v1/patients/{patient['id']}"
    record = factories.eligible_record()
    record["labs"][1]["value"] = 80  # platelets 80 x 10^9/L
    api.put(f"{url}/screening-record", json=record, headers=coordinator)
    assert api.post(f"{url}/evaluations", json={}, headers=coordinator).json()["decision"] == "INELIGIBLE"
    refused = api.post(f"{url}/enrolment", json={}, headers=coordinator)
    assert refused.status_code == 409
    assert refused.json()["error"]["field"] == "evaluation"
    assert "INELIGIBLE" in refused.json()["error"]["message"]
    (row,) = api.get("/api/v1/screening-log", headers=coordinator).json()
    assert row["failed"] == ["I5"]


def test_implausible_values_are_refused_and_nothing_is_written(db):
    factories.seed(db)
    api = factories.client(db)
    coordinator = factories.login(api, "coordinator")
    patient = api.post("/api/v1/patients", json=NEW_PATIENT, headers=coordinator).json()
    record = factories.eligible_record()
    record["labs"][2] |= {"value": 120, "unit": "g/dL"}  # haemoglobin 120 g/dL
    response = api.put(f"/api/v1/patients/{patient['id']}/screening-record", json=record, headers=coordinator)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"].startswith("labs.2")
    assert "g/L" in error["message"]
    assert _count(db, ScreeningRecordVersion) == 0
    bad_site = api.post("/api/v1/patients", json=NEW_PATIENT | {"site_code": "NOPE"}, headers=coordinator)
    assert bad_site.status_code == 422
    assert bad_site.json()["error"]["field"] == "site_code"
    assert bad_site.json()["error"]["allowed"] == [factories.SITE]
    assert _count(db, Patient) == 1


def test_the_statistician_sees_no_names_record_numbers_or_dates_of_birth(db):
    factories.seed(db)
    api = factories.client(db)
    coordinator = factories.login(api, "coordinator")
    patient = api.post("/api/v1/patients", json=NEW_PATIENT, headers=coordinator).json()
    api.put(
        f"/api/v1/patients/{patient['id']}/screening-record",
        json=factories.eligible_record(),
        headers=coordinator,
    )
    statistician = factories.login(api, "statistician")
    pages = [
        api.get("/api/v1/patients", headers=statistician).text,
        api.get(f"/api/v1/patients/{patient['id']}", headers=statistician).text,
        api.get(f"/api/v1/patients/{patient['id']}/screening-record", headers=statistician).text,
        api.get("/api/v1/screening-log", headers=statistician).text,
    ]
    for page in pages:
        assert "Chen Jing" not in page and "ZJU-0042" not in page and "1966-04-01" not in page
    assert '"birth_year":1966' in pages[0]


def test_unknown_patient_is_404(db):
    factories.seed(db)
    api = factories.client(db)
    response = api.get("/api/v1/patients/999", headers=factories.login(api, "monitor"))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
