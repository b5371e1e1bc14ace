"""Adverse events over the API: suggestion and recommendation returned, corrections audited with a reason."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from nettrial.store import audit
from nettrial.store.models import AdverseEvent, AuditEntry, DosingPeriod
from tests import factories

ONSET = (dt.date.today() - dt.timedelta(days=7)).isoformat()
EVENT = {
    "term": "Hypertension",
    "grade": 3,
    "onset_date": ONSET,
    "serious": False,
    "relatedness": "probable",
    "action_taken": "dose_interrupted",
    "outcome": "recovering",
}


def _setup(db):
    users = factories.seed(db)
    participant = factories.enrolled(db, users["investigator"])
    api = factories.client(db)
    return api, participant, users


def _url(participant) -> str:
    return f"/api/v1/participants/{participant}/adverse-events"


def test_grade_3_hypertension_returns_the_interruption_rule(db):
    api, participant, _ = _setup(db)
    created = api.post(_url(participant), json=EVENT, headers=factories.login(api, "coordinator"))
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["term"], body["grade"], body["ctcae"]) == ("Hypertension", 3, None)
    assert body["recommendation"]["action"] == "interrupt"
    assert body["recommendation"]["rule"] == "hypertension-grade-3"


def test_at_the_lowest_dose_level_the_same_event_means_discontinuation(db):
    api, participant, users = _setup(db)
    with db.session() as session:
        audit.acting_as(session, users["investigator"], "investigator")
        start = dt.date.today() - dt.timedelta(days=40)
        session.add(DosingPeriod(participant_id=participant, dose_level=-1, start_date=start))
    created = api.post(_url("NET-001"), json=EVENT, headers=factories.login(api, "investigator"))
    assert created.status_code == 201, created.text
    assert created.json()["recommendation"]["action"] == "discontinue"
    assert created.json()["recommendation"]["at_dose_level"] == -1


def test_a_blood_pressure_reading_suggests_the_grade(db):
    api, participant, _ = _setup(db)
    reading = EVENT | {"grade": None, "value": "168/104", "unit": "mmHg"}
    body = api.post(_url(participant), json=reading, headers=factories.login(api, "coordinator")).json()
    assert (body["grade"], body["suggested_grade"]) == (3, 3)
    assert body["ctcae"]["agrees"] and not body["ctcae"]["needs_review"]


def test_a_lipase_value_without_the_pancreatitis_answer_needs_review(db):
    api, participant, _ = _setup(db)
    lipase = EVENT | {"term": "Lipase increased", "grade": None, "value": 250, "unit": "U/L", "uln": 60}
    created = api.post(_url(participant), json=lipase, headers=factories.login(api, "coordinator"))
    assert created.status_code == 201, created.text
    ctcae = created.json()["ctcae"]
    assert (ctcae["suggested_grade"], ctcae["needs_review"]) == (2, True)
    assert any("pancreatitis_symptoms" in reason for reason in ctcae["review_reasons"])


def test_refusals_name_the_field(db):
    api, participant, _ = _setup(db)
    headers = factories.login(api, "coordinator")
    cases = [
        (EVENT | {"term": "Hypertensoin"}, "term"),
        (EVENT | {"serious": True}, "serious_criteria"),
        (EVENT | {"serious": True, "serious_criteria": ["hospitalisation"], "outcome": "fatal"}, "outcome"),
        (EVENT | {"term": "Fatigue", "grade": 5}, "grade"),
        (EVENT | {"relatedness": "likely"}, "relatedness"),
        (EVENT | {"seriousness": "yes"}, "seriousness"),
        (EVENT | {"grade": None}, "grade"),
    ]
    for body, field in cases:
        refused = api.post(_url(participant), json=body, headers=headers)
        assert refused.status_code == 422, (field, refused.text)
        assert refused.json()["error"]["field"] == field, refused.text
    unknown = api.post(_url(participant), json=EVENT | {"term": "Hypertensoin"}, headers=headers).json()
    assert "Hypertension" in unknown["error"]["message"]  # the closest terms
    assert api.post(_url(999), json=EVENT, headers=headers).status_code == 404
    with db.session(write=False) as session:
        assert session.scalar(select(func.count(AdverseEvent.id))) == 0


def test_a_monitor_reads_but_cannot_record_and_the_statistician_reads(db):
    api, participant, _ = _setup(db)
    assert api.post(_url(participant), json=EVENT, headers=factories.login(api, "monitor")).status_code == 403
    api.post(_url(participant), json=EVENT, headers=factories.login(api, "investigator"))
    for role in ("monitor", "statistician"):
        listed = api.get(_url(participant), headers=factories.login(api, role))
        assert listed.status_code == 200 and [e["term"] for e in listed.json()] == ["Hypertension"]


def test_preview_recommends_without_writing(db):
    api, _, _ = _setup(db)
    form = {"participant_id": "NET-001", "term": "Gastric hemorrhage", "grade": 3}
    preview = api.post(
        "/api/v1/adverse-events/preview", json=form, headers=factories.login(api, "coordinator")
    )
    assert preview.status_code == 200, preview.text
    assert (preview.json()["recommendation"]["action"], preview.json()["recommendation"]["rule"]) == (
        "discontinue",
        "haemorrhage-grade-3-plus",
    )
    with db.session(write=False) as session:
        assert session.scalar(select(func.count(AdverseEvent.id))) == 0
    monitor = factories.login(api, "monitor")
    assert api.post("/api/v1/adverse-events/preview", json=form, headers=monitor).status_code == 403


def test_a_grade_correction_needs_a_reason_and_is_audited_old_and_new(db):
    api, participant, _ = _setup(db)
    headers = factories.login(api, "investigator")
    event = api.post(_url(participant), json=EVENT | {"grade": 2}, headers=headers).json()
    assert event["recommendation"]["action"] == "continue"
    url = f"/api/v1/adverse-events/{event['id']}"
    refused = api.patch(url, json={"grade": 3}, headers=headers)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "reason"
    reason = "source: second drug started on day 3, grade 3"
    changed = api.patch(url, json={"grade": 3, "reason": reason}, headers=headers)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["grade"], changed.json()["recommendation"]["rule"]) == (3, "hypertension-grade-3")
    with db.session(write=False) as session:
        entries = session.scalars(
            select(AuditEntry).where(
                AuditEntry.entity == "adverse_event",
                AuditEntry.entity_id == str(event["id"]),
                AuditEntry.field == "grade",
            )
            .order_by(AuditEntry.id)
        ).all()  # fmt: skip
    assert [(e.action, e.old_value, e.new_value, e.username) for e in entries] == [
        ("insert", None, "2", "investigator"),
        ("update", "2", "3", "investigator"),
    ]
    assert entries[-1].reason == reason
    assert api.get(url, headers=headers).json()["grade"] == 3


def test_a_correction_is_checked_as_a_whole(db):
    api, participant, _ = _setup(db)
    headers = factories.login(api, "investigator")
    event = api.post(_url(participant), json=EVENT, headers=headers).json()
    url = f"/api/v1/adverse-events/{event['id']}"
    fatal = {"outcome": "fatal", "reason": "died"}
    assert api.patch(url, json=fatal, headers=headers).json()["error"]["field"] == "outcome"
    resolved = {"outcome": "recovered", "resolved_date": dt.date.today().isoformat(), "reason": "recovered"}
    assert api.patch(url, json=resolved, headers=headers).status_code == 200
    cleared = api.patch(url, json={"outcome": None, "reason": "unknown"}, headers=headers)
    assert cleared.status_code == 422 and cleared.json()["error"]["field"] == "outcome"


def test_absurd_ids_are_refused_naming_the_parameter_or_found_nowhere(db):
    api, _, _ = _setup(db)
    headers = factories.login(api, "monitor")
    beyond = "/api/v1/adverse-events/9223372036854775808"  # beyond any id column
    refused = api.get(beyond, headers=headers)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "event_id", refused.text
    for participant in ("²", "9223372036854775808"):  # a digit to str.isdigit(), not to int(); too large
        assert api.get(_url(participant), headers=headers).status_code == 404
