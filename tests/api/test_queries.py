"""Data queries over the API: the monitor opens and closes, the site answers."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from nettrial.store.models import AuditEntry
from tests import factories

EVENT = {
    "term": "Diarrhoea",
    "grade": 2,
    "onset_date": (dt.date.today() - dt.timedelta(days=3)).isoformat(),
    "serious": False,
    "relatedness": "possible",
    "action_taken": "none",
    "outcome": "recovering",
}


def _setup(db):
    users = factories.seed(db)
    participant = factories.enrolled(db, users["investigator"])
    api = factories.client(db)
    headers = {role: factories.login(api, role) for role in ("monitor", "coordinator", "statistician")}
    event = api.post(
        f"/api/v1/participants/{participant}/adverse-events", json=EVENT, headers=headers["coordinator"]
    )
    assert event.status_code == 201, event.text
    return api, headers, event.json()["id"]


def test_the_monitor_opens_the_site_answers_the_monitor_closes(db):
    api, headers, event_id = _setup(db)
    query = {"entity": "adverse_event", "entity_id": event_id, "field": "grade", "text": "Stools per day?"}
    opened = api.post("/api/v1/queries", json=query, headers=headers["monitor"])
    assert opened.status_code == 201, opened.text
    url = f"/api/v1/queries/{opened.json()['id']}"
    assert opened.json()["status"] == "open" and opened.json()["opened_by"] == "monitor"
    assert (
        api.post(f"{url}/answer", json={"answer": "6 over baseline"}, headers=headers["monitor"]).status_code
        == 403
    )
    answered = api.post(f"{url}/answer", json={"answer": "6 over baseline"}, headers=headers["coordinator"])
    assert answered.status_code == 200 and answered.json()["answered_by"] == "coordinator"
    again = api.post(f"{url}/answer", json={"answer": "7"}, headers=headers["coordinator"])
    assert again.status_code == 409
    assert api.post(f"{url}/close", json={}, headers=headers["coordinator"]).status_code == 403
    closed = api.post(f"{url}/close", json={}, headers=headers["monitor"])
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    listed = api.get("/api/v1/queries", params={"status": "closed"}, headers=headers["statistician"])
    assert [q["id"] for q in listed.json()] == [opened.json()["id"]]
    assert api.get("/api/v1/queries", params={"status": "open"}, headers=headers["monitor"]).json() == []


def test_an_unanswered_query_closes_only_with_a_reason(db):
    api, headers, event_id = _setup(db)
    query = {"entity": "adverse_event", "entity_id": event_id, "text": "Onset date?"}
    url = (
        f"/api/v1/queries/{api.post('/api/v1/queries', json=query, headers=headers['monitor']).json()['id']}"
    )
    refused = api.post(f"{url}/close", json={}, headers=headers["monitor"])
    assert refused.status_code == 409 and refused.json()["error"]["field"] == "status"
    closed = api.post(f"{url}/close", json={"reason": "raised in error"}, headers=headers["monitor"])
    assert closed.status_code == 200
    with db.session(write=False) as session:
        entry = session.scalar(
            select(AuditEntry).where(AuditEntry.entity == "data_query", AuditEntry.field == "status")
            .order_by(AuditEntry.id.desc()).limit(1)
        )  # fmt: skip
    assert (entry.new_value, entry.reason, entry.username) == ('"closed"', "raised in error", "monitor")


def test_a_query_needs_a_record_that_exists(db):
    api, headers, event_id = _setup(db)
    missing = {"entity": "lab_result", "entity_id": 7, "text": "?"}
    assert api.post("/api/v1/queries", json=missing, headers=headers["monitor"]).status_code == 404
    no_field = {"entity": "adverse_event", "entity_id": event_id, "field": "colour", "text": "?"}
    refused = api.post("/api/v1/queries", json=no_field, headers=headers["monitor"])
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "field"
    not_data = {"entity": "user_account", "entity_id": 1, "text": "?"}
    assert api.post("/api/v1/queries", json=not_data, headers=headers["monitor"]).status_code == 422
    statistician = api.post(
        "/api/v1/queries", json=no_field | {"field": "grade"}, headers=headers["statistician"]
    )
    assert statistician.status_code == 403
