"""The dosing log over the API: periods on the ladder, no overlaps, stops with a reason, dose intensity."""

from __future__ import annotations

from sqlalchemy import func, select

from nettrial.store.models import AuditEntry, DosingPeriod
from tests import factories

DOSING = "/api/v1/participants/NET-001/dosing"


def _study(db):
    users = factories.seed(db)
    factories.enrolled(db, users["investigator"])
    api = factories.client(db)
    return api, factories.login(api, "investigator")


def _count(db) -> int:
    with db.session(write=False) as session:
        return session.scalar(select(func.count(DosingPeriod.id)))


def test_the_first_period_is_the_first_dose_and_the_log_gives_the_dose_intensity(db):
    api, investigator = _study(db)
    created = api.post(DOSING, json={"dose_level": 0, "start_date": "2026-03-03"}, headers=investigator)
    assert created.status_code == 201, created.text
    assert created.json()["dose"] == "200 mg once daily, continuous"
    participant = api.get("/api/v1/participants/NET-001", headers=investigator).json()
    assert (participant["first_dose_date"], participant["treatment_state"]) == ("2026-03-03", "dosing")
    log = api.get(DOSING, headers=factories.login(api, "statistician"))
    assert log.status_code == 200
    body = log.json()
    assert (body["state"], body["current_dose_level"], body["first_dose_date"]) == ("dosing", 0, "2026-03-03")
    intensity = body["dose_intensity"]
    assert intensity["planned_mg"] == 200 * 168
    assert intensity["relative_dose_intensity"] > 0
    assert [p["start_date"] for p in body["periods"]] == ["2026-03-03"]


def test_a_dose_level_off_the_ladder_is_refused_with_the_levels_allowed(db):
    api, investigator = _study(db)
    refused = api.post(DOSING, json={"dose_level": 1, "start_date": "2026-03-02"}, headers=investigator)
    assert refused.status_code == 422
    assert (refused.json()["error"]["field"], refused.json()["error"]["allowed"]) == (
        "dose_level",
        ["0", "-1"],
    )


def test_overlapping_periods_are_refused_and_nothing_is_written(db):
    api, investigator = _study(db)
    api.post(DOSING, json={"dose_level": 0, "start_date": "2026-03-02"}, headers=investigator)
    overlapping = api.post(DOSING, json={"dose_level": -1, "start_date": "2026-04-01"}, headers=investigator)
    assert overlapping.status_code == 409
    assert overlapping.json()["error"]["field"] == "start_date"
    assert "overlaps" in overlapping.json()["error"]["message"]
    assert _count(db) == 1


def test_a_period_is_stopped_with_a_reason_and_the_stop_is_audited(db):
    api, investigator = _study(db)
    period_id = api.post(
        DOSING, json={"dose_level": 0, "start_date": "2026-03-02"}, headers=investigator
    ).json()["id"]
    stop = {"stop_date": "2026-04-10", "stop_reason": "interruption"}
    unexplained = api.patch(f"/api/v1/dosing/{period_id}", json=stop, headers=investigator)
    assert (unexplained.status_code, unexplained.json()["error"]["field"]) == (422, "reason")
    stopped = api.patch(
        f"/api/v1/dosing/{period_id}", json=stop | {"reason": "grade 3 hypertension"}, headers=investigator
    )
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["stop_reason"] == "interruption"
    with db.session(write=False) as session:
        entry = session.scalar(
            select(AuditEntry).where(AuditEntry.entity == "dosing_period", AuditEntry.field == "stop_date")
        )
    assert (entry.action, entry.old_value, entry.new_value) == ("update", None, "2026-04-10")
    assert entry.reason == "grade 3 hypertension"
    resumed = api.post(DOSING, json={"dose_level": -1, "start_date": "2026-04-20"}, headers=investigator)
    assert resumed.status_code == 201
    log = api.get(DOSING, headers=investigator).json()
    assert (log["state"], log["current_dose_level"]) == ("dosing", -1)
    schedule = api.get("/api/v1/participants/NET-001/schedule", headers=investigator).json()
    assert schedule["interruptions"] == [["2026-04-11", "2026-04-19"]]


def test_only_clinical_writers_record_dosing(db):
    api, _ = _study(db)
    for role in ("monitor", "statistician"):
        response = api.post(
            DOSING, json={"dose_level": 0, "start_date": "2026-03-02"}, headers=factories.login(api, role)
        )
        assert response.status_code == 403, role
    assert _count(db) == 0
