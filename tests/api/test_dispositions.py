"""Dispositions over the API: one per phase, reasons and causes required, the participant's status follows."""

from __future__ import annotations

import datetime as dt

from tests import factories

TODAY = dt.datetime.now(dt.UTC).date().isoformat()


def _setup(db):
    users = factories.seed(db)
    participant = factories.enrolled(db, users["investigator"])
    api = factories.client(db)
    return api, f"/api/v1/participants/{participant}/dispositions", factories.login(api, "investigator")


def test_treatment_end_then_a_second_treatment_disposition_is_a_conflict(db):
    api, url, headers = _setup(db)
    first = {"phase": "treatment", "status": "completed", "status_date": TODAY}
    created = api.post(url, json=first, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["participant_status"] == "follow_up"
    second = {"phase": "treatment", "status": "withdrawn", "status_date": TODAY, "reason": "moved away"}
    conflict = api.post(url, json=second, headers=headers)
    assert conflict.status_code == 409 and conflict.json()["error"]["field"] == "phase"
    assert [d["phase"] for d in api.get(url, headers=headers).json()] == ["treatment"]


def test_a_death_needs_its_cause_and_makes_the_participant_died(db):
    api, url, headers = _setup(db)
    death = {"phase": "study", "status": "death", "status_date": TODAY, "reason": "died at home"}
    refused = api.post(url, json=death, headers=headers)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "cause_of_death"
    created = api.post(url, json=death | {"cause_of_death": "myocardial infarction"}, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["participant_status"] == "died"
    participant = api.get(url, headers=factories.login(api, "monitor")).json()[0]
    assert participant["cause_of_death"] == "myocardial infarction"


def test_a_withdrawal_needs_a_reason_and_takes_the_participant_off_study(db):
    api, url, headers = _setup(db)
    withdrawal = {"phase": "study", "status": "withdrawn", "status_date": TODAY}
    refused = api.post(url, json=withdrawal, headers=headers)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "reason"
    wrong_phase = {"phase": "study", "status": "adverse_event", "status_date": TODAY, "reason": "rash"}
    refused = api.post(url, json=wrong_phase, headers=headers)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "status"
    created = api.post(url, json=withdrawal | {"reason": "consent withdrawn"}, headers=headers)
    assert created.json()["participant_status"] == "off_study"


def test_a_correction_needs_a_reason_and_the_phase_reason_is_status_reason(db):
    api, url, headers = _setup(db)
    created = api.post(
        url,
        json={"phase": "treatment", "status": "other", "status_date": TODAY, "reason": "?"},
        headers=headers,
    ).json()
    one = f"/api/v1/dispositions/{created['id']}"
    refused = api.patch(one, json={"status": "adverse_event"}, headers=headers)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "reason"
    changed = api.patch(
        one,
        json={"status": "adverse_event", "status_reason": "grade 3 hypertension", "reason": "source checked"},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["status"], changed.json()["reason"]) == ("adverse_event", "grade 3 hypertension")
    monitor = factories.login(api, "monitor")
    assert api.patch(one, json={"status": "other", "reason": "x" * 5}, headers=monitor).status_code == 403
