"""Participants over the API: the list, one participant, privacy, the schedule and recorded visits."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import event, select

from nettrial.api.main import build_app
from nettrial.store import audit
from nettrial.store.models import AuditEntry, Participant
from tests import factories

URL = "/api/v1/participants"


def _study(db, *names: str):
    users = factories.seed(db)
    ids = [factories.enrolled(db, users["coordinator"], name=name) for name in names or ("Li Hua",)]
    return factories.client(db), ids


def test_the_list_shows_each_participant_and_where_they_stand(db):
    api, ids = _study(db, "Li Hua", "Zhao Min")
    listed = api.get(URL, headers=factories.login(api, "monitor"))
    assert listed.status_code == 200
    rows = listed.json()
    assert [(r["study_id"], r["screening_number"], r["status"]) for r in rows] == [
        ("NET-001", "S-0001", "enrolled"),
        ("NET-002", "S-0002", "enrolled"),
    ]
    assert rows[0]["first_dose_date"] == "2026-03-02"
    assert (rows[0]["current_dose_level"], rows[0]["treatment_state"]) == (0, "not_started")
    assert rows[0]["id"] == ids[0]


def test_one_participant_by_study_id_or_database_id(db):
    api, (participant_id,) = _study(db)
    headers = factories.login(api, "investigator")
    by_study_id = api.get(f"{URL}/NET-001", headers=headers).json()
    assert by_study_id == api.get(f"{URL}/{participant_id}", headers=headers).json()
    assert by_study_id["patient"]["full_name"] == "Li Hua"
    assert by_study_id["patient"]["date_of_birth"] == "1965-05-10"
    for unknown in ("NET-099", "99", "9" * 30, "²"):
        assert api.get(f"{URL}/{unknown}", headers=headers).status_code == 404, unknown


def test_the_statistician_sees_no_names_nor_dates_of_birth(db):
    api, _ = _study(db)
    headers = factories.login(api, "statistician")
    for response in (api.get(URL, headers=headers), api.get(f"{URL}/NET-001", headers=headers)):
        assert response.status_code == 200
        assert "Li Hua" not in response.text and "1965-05-10" not in response.text
        assert "MRN-" not in response.text
    assert api.get(f"{URL}/NET-001", headers=headers).json()["patient"]["birth_year"] == 1965


def test_the_schedule_needs_a_first_dose_date(db):
    api, (participant_id,) = _study(db)
    with db.session() as session:
        audit.acting_as(session, None, "test")
        with audit.because(session, "first dose postponed"):
            session.get(Participant, participant_id).first_dose_date = None
    refused = api.get(f"{URL}/NET-001/schedule", headers=factories.login(api, "monitor"))
    assert refused.status_code == 409
    assert refused.json()["error"]["field"] == "first_dose_date"


def test_a_visit_recorded_as_done_shows_done_and_an_unrecorded_past_one_overdue(db):
    api, _ = _study(db)
    coordinator = factories.login(api, "coordinator")
    recorded = api.post(
        f"{URL}/NET-001/visits",
        json={"visit_code": "C1D1", "status": "done", "visit_date": "2026-03-02", "note": "pre-dose bloods"},
        headers=coordinator,
    )
    assert recorded.status_code == 201, recorded.text
    api.post(f"{URL}/NET-001/visits", json={"visit_code": "C1D15", "status": "missed"}, headers=coordinator)
    schedule = api.get(f"{URL}/NET-001/schedule", headers=factories.login(api, "statistician"))
    assert schedule.status_code == 200
    visits = {v["visit_code"]: v for v in schedule.json()["visits"]}
    assert (visits["C1D1"]["status"], visits["C1D1"]["in_window"], visits["C1D1"]["note"]) == (
        "done",
        True,
        "pre-dose bloods",
    )
    assert visits["C1D15"]["status"] == "missed"
    assert visits["C2D1"]["status"] == "overdue"  # 2026-03-30 +/- 3 days, long past
    assert (visits["C2D1"]["earliest"], visits["C2D1"]["latest"]) == ("2026-03-27", "2026-04-02")
    assert visits["IMG-M60"]["status"] == "upcoming"
    assert visits["EOT"]["anchor"] == "planned_last_dose"


def test_a_visit_code_outside_the_schedule_is_refused_with_the_codes_allowed(db):
    api, _ = _study(db)
    refused = api.post(
        f"{URL}/NET-001/visits",
        json={"visit_code": "C7D1", "status": "done", "visit_date": "2026-03-02"},
        headers=factories.login(api, "coordinator"),
    )
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["field"] == "visit_code"
    assert {"SCREENING", "C1D1", "C6D1", "EOT", "IMG-M03"} <= set(error["allowed"])


def test_a_visit_is_recorded_once_and_done_needs_its_date(db):
    api, _ = _study(db)
    coordinator = factories.login(api, "coordinator")
    url = f"{URL}/NET-001/visits"
    undated = api.post(url, json={"visit_code": "C1D1", "status": "done"}, headers=coordinator)
    assert (undated.status_code, undated.json()["error"]["field"]) == (422, "visit_date")
    done = {"visit_code": "C1D1", "status": "done", "visit_date": "2026-03-02"}
    assert api.post(url, json=done, headers=coordinator).status_code == 201
    again = api.post(url, json=done, headers=coordinator)
    assert (again.status_code, again.json()["error"]["field"]) == (409, "visit_code")


def test_only_clinical_writers_record_visits(db):
    api, _ = _study(db)
    done = {"visit_code": "C1D1", "status": "done", "visit_date": "2026-03-02"}
    for role in ("monitor", "statistician", "admin"):
        response = api.post(f"{URL}/NET-001/visits", json=done, headers=factories.login(api, role))
        assert response.status_code == 403, role


def test_a_visit_correction_needs_a_reason_and_is_audited(db):
    api, _ = _study(db)
    coordinator = factories.login(api, "coordinator")
    url = f"{URL}/NET-001/visits"
    api.post(
        url, json={"visit_code": "C1D1", "status": "done", "visit_date": "2026-03-02"}, headers=coordinator
    )
    unexplained = api.patch(f"{url}/C1D1", json={"visit_date": "2026-03-03"}, headers=coordinator)
    assert (unexplained.status_code, unexplained.json()["error"]["field"]) == (422, "reason")
    corrected = api.patch(
        f"{url}/C1D1",
        json={"visit_date": "2026-03-03", "reason": "date misread from the chart"},
        headers=coordinator,
    )
    assert corrected.status_code == 200
    assert corrected.json()["visit_date"] == "2026-03-03"
    with db.session(write=False) as session:
        entry = session.scalar(
            select(AuditEntry).where(AuditEntry.entity == "visit", AuditEntry.action == "update")
        )
    assert (entry.field, entry.old_value, entry.new_value) == ("visit_date", "2026-03-02", "2026-03-03")
    assert (entry.username, entry.reason) == ("coordinator", "date misread from the chart")


def test_a_schedule_read_again_is_the_same_and_any_change_to_its_rows_is_seen_at_once(db):
    """The route keeps the schedules it computed, keyed by the rows it read: never a stale answer."""
    api, (participant_id,) = _study(db)
    monitor, coordinator = factories.login(api, "monitor"), factories.login(api, "coordinator")
    url = f"{URL}/NET-001/schedule"

    def visit(code: str) -> dict:
        return next(v for v in api.get(url, headers=monitor).json()["visits"] if v["visit_code"] == code)

    first = api.get(url, headers=monitor).json()
    assert api.get(url, headers=monitor).json() == first
    assert visit("C1D1")["status"] != "done"

    done = {"visit_code": "C1D1", "status": "done", "visit_date": "2026-03-02", "note": "bloods"}
    assert api.post(f"{URL}/NET-001/visits", json=done, headers=coordinator).status_code == 201
    assert (visit("C1D1")["status"], visit("C1D1")["note"]) == ("done", "bloods")
    changed = {"note": "bloods and ECG", "reason": "ECG was done too"}
    assert api.patch(f"{URL}/NET-001/visits/C1D1", json=changed, headers=coordinator).status_code == 200
    assert visit("C1D1")["note"] == "bloods and ECG"  # a change in any column of a row

    with factories.writing(db, reason="first dose moved") as session:
        session.get(Participant, participant_id).first_dose_date = dt.date(2026, 3, 9)
    assert api.get(url, headers=monitor).json()["first_dose_date"] == "2026-03-09"
    assert visit("C2D1")["target"] == "2026-04-06"

    # Another service in the same process, on the same rows, with a protocol of fewer visits.
    schedule = factories.PROTOCOL.schedule
    fewer = factories.PROTOCOL.model_copy(
        update={"schedule": schedule.model_copy(update={"visits": schedule.visits[:1]})}
    )
    other = TestClient(build_app(db, fewer))
    shown = other.get(url, headers=factories.login(other, "monitor")).json()["visits"]
    assert len(shown) < len(api.get(url, headers=monitor).json()["visits"])
    assert "C2D1" not in {v["visit_code"] for v in shown}


def test_the_participant_reads_take_one_pooled_connection_and_give_it_back(db):
    """The token lookup, the role check and the reads share one checkout (api/deps.py ``reads``)."""
    api, _ = _study(db)
    headers = factories.login(api, "monitor")
    engine = db.reader.kw["bind"]
    checkouts: list[int] = []
    event.listen(engine, "checkout", lambda *args: checkouts.append(1))
    for path in (f"{URL}/NET-001", f"{URL}/NET-001/schedule", f"{URL}/NET-099"):
        checkouts.clear()
        response = api.get(path, headers=headers)
        assert response.status_code in (200, 404)
        assert len(checkouts) == 1, path
        assert engine.pool.checkedout() == 0, path  # given back, on success and on a 404
