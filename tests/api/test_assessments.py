"""Tumour assessments over the API: no evidence of disease, or recurrence with its sites."""

from __future__ import annotations

import datetime as dt

from tests import factories

TODAY = dt.datetime.now(dt.UTC).date().isoformat()
NED = {"assessed_on": TODAY, "method": "MRI", "result": "no_evidence_of_disease", "visit_code": "M3"}


def _setup(db):
    users = factories.seed(db)
    participant = factories.enrolled(db, users["investigator"])
    api = factories.client(db)
    return api, f"/api/v1/participants/{participant}/tumour-assessments"


def test_record_list_and_correct_an_assessment(db):
    api, url = _setup(db)
    headers = factories.login(api, "coordinator")
    created = api.post(url, json=NED, headers=headers)
    assert created.status_code == 201, created.text
    assessment = created.json()
    assert (assessment["result"], assessment["recurrence_sites"]) == ("no_evidence_of_disease", [])
    recurrence = {"result": "recurrence", "recurrence_sites": ["other_distant", "liver"]}
    one = f"/api/v1/tumour-assessments/{assessment['id']}"
    refused = api.patch(one, json=recurrence, headers=headers)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "reason"
    changed = api.patch(one, json=recurrence | {"reason": "second read by radiologist"}, headers=headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["recurrence_sites"] == ["liver", "other_distant"]
    listed = api.get(url, headers=factories.login(api, "statistician"))
    assert [a["result"] for a in listed.json()] == ["recurrence"]


def test_a_recurrence_needs_its_sites(db):
    api, url = _setup(db)
    headers = factories.login(api, "investigator")
    refused = api.post(url, json=NED | {"result": "recurrence"}, headers=headers)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "recurrence_sites"
    refused = api.post(url, json=NED | {"recurrence_sites": ["liver"]}, headers=headers)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "recurrence_sites"
    refused = api.post(url, json=NED | {"method": "ultrasound"}, headers=headers)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "method"


def test_a_monitor_cannot_record_imaging(db):
    api, url = _setup(db)
    assert api.post(url, json=NED, headers=factories.login(api, "monitor")).status_code == 403
    assert api.get("/api/v1/tumour-assessments/5", headers=factories.login(api, "monitor")).status_code == 404
