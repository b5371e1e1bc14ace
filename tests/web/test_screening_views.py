"""Screening pages without a browser: CSRF and role refusals (nothing written), who sees which form,
errors next to their field, and the page text in both languages."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from nettrial.store.models import EligibilityEvaluation, Participant, Patient, ScreeningRecordVersion
from nettrial.web.i18n import catalogue
from nettrial.web.session import csrf_token
from tests import factories

NEW_PATIENT = {
    "site_code": factories.SITE,
    "full_name": "Li Wei",
    "medical_record_number": "MRN-1",
    "date_of_birth": "1965-05-10",
    "sex": "female",
}


@pytest.fixture
def users(db):
    return factories.seed(db)


def signed_in(db, role: str):
    """A client with ``role``'s session cookie, and the CSRF token of that session."""
    client = factories.web_client(factories.client(db).app, role)
    return client, factories.csrf(client)


def counts(db) -> tuple[int, ...]:
    with db.session(write=False) as session:
        return tuple(
            session.scalar(select(func.count(model.id)))
            for model in (Patient, ScreeningRecordVersion, EligibilityEvaluation, Participant)
        )


def test_every_screening_form_refuses_a_post_without_its_csrf_token(db, users):
    patient_id = factories.eligible_patient(db, users["coordinator"])
    before = counts(db)
    client, token = signed_in(db, "investigator")
    posts = {
        "/screening": NEW_PATIENT,
        f"/screening/{patient_id}/record": {"screening_date": "2026-02-20"},
        f"/screening/{patient_id}/evaluate": {},
        f"/screening/{patient_id}/enrol": {"override_reason": "urgent"},
        "/screening/stage-preview": {"pathology.site": "pancreas"},
    }
    for path, form in posts.items():
        for sent in ({}, {"csrf_token": "0" * 64}, {"csrf_token": csrf_token("another session")}):
            response = client.post(path, data=form | sent, follow_redirects=False)
            assert response.status_code == 403, (path, sent)
            assert "CSRF" in response.text
        response = client.post(path, data=form | {"csrf_token": token}, follow_redirects=False)
        assert response.status_code in (200, 303), (path, response.text)
    assert counts(db)[0] == before[0] + 1  # only the posts with the token did anything


@pytest.mark.parametrize(
    ("role", "path", "form"),
    [
        ("monitor", "/screening", NEW_PATIENT),
        ("statistician", "/screening", NEW_PATIENT),
        ("admin", "/screening", NEW_PATIENT),
        ("monitor", "/screening/{id}/record", {"screening_date": "2026-02-20"}),
        ("statistician", "/screening/{id}/record", {"screening_date": "2026-02-20"}),
        ("monitor", "/screening/{id}/evaluate", {}),
        ("statistician", "/screening/{id}/evaluate", {}),
        ("monitor", "/screening/{id}/enrol", {}),
        ("statistician", "/screening/{id}/enrol", {"override_reason": "because"}),
    ],
)
def test_a_role_without_the_action_is_refused_and_nothing_is_written(db, users, role, path, form):
    patient_id = factories.eligible_patient(db, users["coordinator"])
    before = counts(db)
    client, token = signed_in(db, role)
    response = client.post(path.format(id=patient_id), data=form | {"csrf_token": token})
    assert response.status_code == 403
    assert "Not allowed" in response.text
    assert counts(db) == before


def test_an_administrator_cannot_read_the_screening_pages_and_a_stranger_is_sent_to_sign_in(db, users):
    patient_id = factories.patient(db, users["coordinator"])
    admin, _ = signed_in(db, "admin")
    assert admin.get("/screening").status_code == 403
    assert admin.get(f"/screening/{patient_id}").status_code == 403
    stranger = factories.client(db)
    response = stranger.get(f"/screening/{patient_id}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=/screening/{patient_id}"


def _forms(html: str) -> set[str]:
    return set(re.findall(r'<form method="post" action="(/screening[^"]*)"', html))


def test_each_role_sees_only_the_forms_it_may_use(db, users):
    patient_id = factories.eligible_patient(db, users["coordinator"])
    page = f"/screening/{patient_id}"
    roles = ("coordinator", "investigator", "monitor", "statistician")
    seen = {role: signed_in(db, role)[0].get(page).text for role in roles}
    writes = {f"{page}/record", f"{page}/evaluate", f"{page}/enrol"}
    assert _forms(seen["coordinator"]) == writes
    assert _forms(seen["investigator"]) == writes
    assert 'name="override_reason"' in seen["investigator"]
    assert 'name="override_reason"' not in seen["coordinator"]  # only an investigator may override
    assert _forms(seen["monitor"]) == set() and _forms(seen["statistician"]) == set()
    assert "<button" not in seen["monitor"].split('<main id="main"', 1)[1]
    monitor_log = signed_in(db, "monitor")[0].get("/screening").text
    assert _forms(monitor_log) == set() and "New patient" not in monitor_log


def test_a_coordinator_cannot_override_an_ineligible_evaluation(db, users):
    patient_id = factories.patient(db, users["coordinator"])
    client, token = signed_in(db, "coordinator")
    record = factories.eligible_record()
    form = {"csrf_token": token, "screening_date": record["screening_date"]}
    client.post(f"/screening/{patient_id}/record", data=form)
    client.post(f"/screening/{patient_id}/evaluate", data={"csrf_token": token})
    response = client.post(
        f"/screening/{patient_id}/enrol", data={"csrf_token": token, "override_reason": "please"}
    )
    assert response.status_code == 409
    assert "only an investigator may override" in response.text
    assert counts(db)[3] == 0


def test_a_refused_new_patient_keeps_what_was_typed_and_marks_the_field(db, users):
    client, token = signed_in(db, "coordinator")
    response = client.post("/screening", data=NEW_PATIENT | {"date_of_birth": "", "csrf_token": token})
    assert response.status_code == 422
    html = response.text
    field = re.search(r'<input id="f-date_of_birth"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in field and 'aria-describedby="f-date_of_birth-error"' in field
    assert 'id="f-date_of_birth-error"' in html
    assert 'value="Li Wei"' in html and 'value="MRN-1"' in html
    response = client.post("/screening", data=NEW_PATIENT | {"site_code": "XX", "csrf_token": token})
    assert response.status_code == 422
    assert "unknown site &#39;XX&#39; (ZJU2)" in response.text
    assert counts(db)[0] == 0


def test_the_stage_preview_is_a_fragment_computed_from_the_pathology_fields(db, users):
    client, _ = signed_in(db, "statistician")
    pathology = factories.eligible_record()["pathology"]
    query = {f"pathology.{k}": str(v) for k, v in pathology.items() if k != "metastasis"}
    response = client.get("/screening/stage-preview", params=query | {"pathology.metastasis": "none"})
    assert response.status_code == 200
    assert not response.text.lstrip().startswith("<!doctype")
    assert re.search(r'id="stage-group">III<', response.text)
    response = client.get("/screening/stage-preview", params={"pathology.site": "lung"})
    assert "unknown site" in response.text and 'id="stage-error"' in response.text


def test_the_screening_pages_speak_simplified_chinese(db, users):
    patient_id = factories.eligible_patient(db, users["coordinator"])
    client, token = signed_in(db, "investigator")
    client.post("/language", data={"csrf_token": token, "language": "zh", "next": "/"})
    html = client.get(f"/screening/{patient_id}").text
    assert "筛选记录" in html and "入组资格核查表" in html and "符合入组" in html
    assert client.get("/screening").status_code == 200


def test_every_screening_text_is_in_both_catalogues():
    english = {k for k in catalogue("en") if k.startswith("screening.")}
    chinese = {k for k in catalogue("zh") if k.startswith("screening.")}
    assert english == chinese
    assert all(catalogue("zh")[k] for k in chinese)


def test_an_address_that_names_no_patient_is_a_page_not_found(db, users):
    client, token = signed_in(db, "coordinator")
    for ref in ("abc", "0", "99999999999", "1"):
        assert client.get(f"/screening/{ref}").status_code == 404
        assert client.post(f"/screening/{ref}/evaluate", data={"csrf_token": token}).status_code == 404
    assert "Not found" in client.get("/screening/abc?saved=x").text
