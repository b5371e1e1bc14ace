"""The audit trail over the API: the history of one field, newest first; the chain check; who may read it."""

from __future__ import annotations

import datetime as dt

from tests import factories

EVENT = {
    "term": "Hypertension",
    "grade": 2,
    "onset_date": (dt.date.today() - dt.timedelta(days=3)).isoformat(),
    "serious": False,
    "relatedness": "probable",
    "action_taken": "none",
    "outcome": "not_recovered",
}


def _setup(db):
    users = factories.seed(db)
    participant = factories.enrolled(db, users["investigator"])
    return factories.client(db), participant


def test_the_history_of_one_adverse_event_field_newest_first(db):
    api, participant = _setup(db)
    investigator = factories.login(api, "investigator")
    event = api.post(f"/api/v1/participants/{participant}/adverse-events", json=EVENT, headers=investigator)
    url = f"/api/v1/adverse-events/{event.json()['id']}"
    api.patch(url, json={"grade": 3, "reason": "a second drug was started"}, headers=investigator)
    api.patch(url, json={"grade": 2, "reason": "the second drug was for angina"}, headers=investigator)
    where = {"entity": "adverse_event", "entity_id": str(event.json()["id"]), "field": "grade"}
    history = api.get("/api/v1/audit", params=where, headers=factories.login(api, "monitor"))
    assert history.status_code == 200, history.text
    assert [(e["action"], e["old_value"], e["new_value"], e["reason"]) for e in history.json()] == [
        ("update", "3", "2", "the second drug was for angina"),
        ("update", "2", "3", "a second drug was started"),
        ("insert", None, "2", None),
    ]
    assert {e["username"] for e in history.json()} == {"investigator"}
    limited = api.get("/api/v1/audit", params=where | {"limit": 1}, headers=investigator)
    assert [e["new_value"] for e in limited.json()] == ["2"]


def test_the_chain_verifies_and_the_statistician_reads_no_audit(db):
    api, _ = _setup(db)
    verified = api.get("/api/v1/audit/verify", headers=factories.login(api, "admin"))
    assert verified.status_code == 200 and verified.json()["ok"] and verified.json()["entries"] > 20
    statistician = factories.login(api, "statistician")
    for path in ("/api/v1/audit", "/api/v1/audit/verify"):
        refused = api.get(path, headers=statistician)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"


def test_personal_data_in_the_trail_is_hidden_from_an_administrator(db):
    api, _ = _setup(db)
    where = {"entity": "patient", "field": "full_name"}
    admin = api.get("/api/v1/audit", params=where, headers=factories.login(api, "admin")).json()
    monitor = api.get("/api/v1/audit", params=where, headers=factories.login(api, "monitor")).json()
    assert [e["new_value"] for e in admin] == ["<hidden>"]
    assert [e["new_value"] for e in monitor] == ['"Test Patient"']
