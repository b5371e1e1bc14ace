"""The participant, correction, history and query pages without a browser: every form post refuses a
missing or wrong CSRF token and every role without the action, before anything is written.

The list of posts is checked against the application's own routes, so a new form handler in these
page modules is covered the moment it exists (``test_every_form_handler_is_in_the_list``).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import get_args

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from nettrial.api.deps import role_matrix
from nettrial.api.main import build_app
from nettrial.safety.dosing import Action
from nettrial.safety.schedule import Status as VisitStatus
from nettrial.safety.schedule import VisitKind
from nettrial.store import adverse_events, assessments, audit, measurements, queries, treatment, visits
from nettrial.store.models import ApiToken, AuditEntry
from nettrial.store.participants import get_participant
from nettrial.store.screening import SEXES
from nettrial.store.users import ROLES
from nettrial.web.i18n import catalogue
from nettrial.web.pages import (
    PAGES,
    adverse_event_pages,
    corrections,
    exports,
    history,
    participant_forms,
    participants,
)
from nettrial.web.pages import queries as query_pages
from nettrial.web.session import csrf_token
from tests import factories

P = "/participants/NET-001"
TODAY = dt.datetime.now(dt.UTC).date().isoformat()
AE = {
    "term": "Hypertension",
    "grade": "3",
    "onset_date": "2026-03-20",
    "relatedness": "possible",
    "action_taken": "dose_interrupted",
    "outcome": "recovering",
}
# (path, form, the action it needs): one of every form post of these pages, with values that would be saved.
POSTS = [
    (f"{P}/visits", {"visit_code": "C1D15", "status": "missed"}, "clinical.write"),
    (
        f"{P}/dosing/1/stop",
        {"stop_date": "2026-03-20", "stop_reason": "interruption", "reason": "AE 1"},
        "clinical.write",
    ),
    (f"{P}/dosing", {"dose_level": "-1", "start_date": "2026-04-20"}, "clinical.write"),
    (f"{P}/adverse-events", {**AE, "save": "1"}, "clinical.write"),
    (f"{P}/adverse-events", {**AE, "preview": "1"}, "clinical.write"),
    (f"{P}/adverse-events/preview", AE, "clinical.write"),
    (
        f"{P}/labs",
        {"test": "alt", "value": "50", "unit": "U/L", "uln": "40", "collected_on": "2026-03-20"},
        "clinical.write",
    ),
    (f"{P}/vital-signs", {"measured_on": "2026-03-20", "weight_kg": "61"}, "clinical.write"),
    (
        f"{P}/imaging",
        {"assessed_on": "2026-06-01", "method": "CT", "result": "no_evidence_of_disease"},
        "clinical.write",
    ),
    (f"{P}/dispositions", {"phase": "study", "status": "completed", "status_date": TODAY}, "clinical.write"),
    (f"{P}/visits/C1D1/correct", {"status": "missed", "reason": "not done"}, "clinical.write"),
    (
        f"{P}/dosing/1/correct",
        {"stop_date": "2026-03-20", "stop_reason": "interruption", "missed_doses": "2", "reason": "diary"},
        "clinical.write",
    ),
    (f"{P}/adverse-events/1/correct", {**AE, "grade": "2", "reason": "source"}, "clinical.write"),
    (
        f"{P}/labs/1/correct",
        {"value": "60", "unit": "U/L", "uln": "40", "collected_on": "2026-03-01", "reason": "typo"},
        "clinical.write",
    ),
    (
        f"{P}/vital-signs/1/correct",
        {"measured_on": "2026-03-20", "weight_kg": "62", "reason": "typo"},
        "clinical.write",
    ),
    (
        f"{P}/imaging/1/correct",
        {"assessed_on": "2026-06-01", "method": "MRI", "result": "no_evidence_of_disease", "reason": "typo"},
        "clinical.write",
    ),
    (
        f"{P}/dispositions/1/correct",
        {"status": "recurrence", "status_date": TODAY, "status_reason": "liver", "reason": "typo"},
        "clinical.write",
    ),
    ("/queries", {"entity": "adverse_event", "entity_id": "1", "text": "Grade?"}, "query.open"),
    ("/queries/1/answer", {"answer": "Checked"}, "query.answer"),
    ("/queries/1/close", {"reason": "withdrawn"}, "query.close"),
    ("/exports/fhir", {"cutoff": TODAY, "identity": "identified"}, "export.identified"),
]
PAGE_MODULES = (
    participants,
    participant_forms,
    adverse_event_pages,
    corrections,
    history,
    query_pages,
    exports,
)


@pytest.fixture
def study(db):
    """NET-001 with one of everything (each row id 1), and a client per role, signed in."""
    users = factories.seed(db)
    factories.enrolled(db, users["coordinator"])
    protocol = factories.PROTOCOL
    with db.session() as session:
        audit.acting_as(session, users["coordinator"], "coordinator")
        participant = get_participant(session, "NET-001")
        treatment.add_period(
            session, participant=participant, protocol=protocol, dose_level=0, start_date=dt.date(2026, 3, 2)
        )
        adverse_events.create_adverse_event(
            session,
            participant=participant,
            protocol=protocol,
            term="Fatigue",
            grade=1,
            onset_date=dt.date(2026, 3, 10),
            serious=False,
            relatedness="possible",
            action_taken="none",
            outcome="recovering",
        )
        measurements.add_lab(
            session,
            participant=participant,
            protocol=protocol,
            test="alt",
            value=50,
            unit="U/L",
            uln=40,
            collected_on=dt.date(2026, 3, 1),
        )
        measurements.add_vital_signs(
            session,
            participant=participant,
            protocol=protocol,
            measured_on=dt.date(2026, 3, 20),
            weight_kg=60,
        )
        assessments.create_tumour_assessment(
            session,
            participant=participant,
            assessed_on=dt.date(2026, 6, 1),
            method="CT",
            result="no_evidence_of_disease",
        )
        assessments.create_disposition(
            session,
            participant=participant,
            phase="treatment",
            status="adverse_event",
            status_date=dt.date.fromisoformat(TODAY),
            reason="hypertension",
        )
        visits.record_visit(
            session,
            participant=participant,
            protocol=protocol,
            visit_code="C1D1",
            status="done",
            visit_date=dt.date(2026, 3, 2),
        )
        queries.open_query(
            session,
            entity="adverse_event",
            entity_id=1,
            field="grade",
            text="Grade?",
            user_id=users["monitor"],
        )
    app = build_app(db, protocol)
    return db, {role: factories.web_client(app, role) for role in ROLES}


def _entries(db) -> int:
    with db.session(write=False) as session:
        return session.scalar(select(func.count(AuditEntry.id)))


def test_every_form_handler_is_in_the_list():
    mine = {module.__name__ for module in PAGE_MODULES}
    # The page routers themselves: the application's route list holds included routers, not routes.
    handlers = [
        route.path
        for router in PAGES
        for route in router.routes
        if "POST" in getattr(route, "methods", ()) and route.endpoint.__module__ in mine
    ]
    assert len(handlers) >= len(POSTS) // 2  # the walk finds the handlers (it once found none)
    for handler in handlers:
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", handler)
        assert any(re.fullmatch(pattern, path) for path, _, _ in POSTS), handler
    for kind in corrections.KINDS:  # one handler corrects every kind of record
        assert any(re.fullmatch(f"{P}/{kind}/[^/]+/correct", path) for path, _, _ in POSTS), kind


def test_a_post_without_the_csrf_token_or_with_another_sessions_token_is_refused(study):
    db, clients = study
    before = _entries(db)
    for path, form, action in POSTS:
        role = next(r for r in ("coordinator", "monitor") if action in role_matrix()[r])
        client = clients[role]
        assert client.post(path, data=form).status_code == 403, path
        wrong = csrf_token("another session")
        refused = client.post(path, data={**form, "csrf_token": wrong})
        assert refused.status_code == 403, path
        assert "Not allowed" in refused.text
    assert _entries(db) == before  # nothing written, not even a refusal


def test_a_post_by_a_role_without_the_action_is_refused(study):
    db, clients = study
    before = _entries(db)
    for path, form, action in POSTS:
        for role in ROLES:
            if action in role_matrix()[role]:
                continue
            client = clients[role]
            refused = client.post(
                path, data={**form, "csrf_token": factories.csrf(client)}, follow_redirects=False
            )
            assert refused.status_code == 403, (path, role, refused.status_code)
    assert _entries(db) == before


def test_the_same_posts_by_a_role_with_the_action_are_saved(study):
    _, clients = study
    for path, form, action in POSTS:
        role = next(r for r in ("coordinator", "monitor") if action in role_matrix()[r])
        client = clients[role]
        done = client.post(path, data={**form, "csrf_token": factories.csrf(client)}, follow_redirects=False)
        assert done.status_code in (200, 303), (
            path,
            done.status_code,
            re.findall(r'field-error"[^>]*>[^<]*', done.text),
        )


def test_reading_pages_follow_the_role_matrix(study):
    _, clients = study
    for path in ("/participants", P, "/queries", "/exports"):
        assert clients["admin"].get(path).status_code == 403, path
        for role in ("investigator", "coordinator", "monitor", "statistician"):
            assert clients[role].get(path).status_code == 200, (path, role)
    for role in ("statistician",):
        assert clients[role].get("/history/adverse_event/1").status_code == 403
    assert clients["admin"].get("/history/adverse_event/1").status_code == 200  # audit.read
    for role in ("monitor", "statistician", "admin"):
        assert clients[role].get(f"{P}/adverse-events/1/correct").status_code == 403
    assert clients["coordinator"].get(f"{P}/adverse-events/1/correct").status_code == 200


def test_pages_of_records_that_do_not_exist_are_not_found(study):
    _, clients = study
    coordinator = clients["coordinator"]
    for path in (
        "/participants/NET-999",
        "/participants/²",
        f"{P}/labs/99/correct",
        f"{P}/labs/x/correct",
        f"{P}/spleen/1/correct",
        "/history/user_account/1",
        "/history/adverse_event/99999999999",
    ):
        assert coordinator.get(path).status_code == 404, path


def test_a_form_address_opened_as_a_page_leads_back_to_its_section(study):
    _, clients = study
    back = clients["coordinator"].get(f"{P}/labs", follow_redirects=False)
    assert (back.status_code, back.headers["location"]) == (303, f"{P}#labs")


def test_the_history_hides_personal_values_from_a_reader_without_study_read(study):
    db, clients = study
    with db.session(write=False) as session:
        patient_id = get_participant(session, "NET-001").patient_id
    seen = clients["coordinator"].get(f"/history/patient/{patient_id}").text
    hidden = clients["admin"].get(f"/history/patient/{patient_id}").text
    assert "Test Patient" in seen and "1965-05-10" in seen
    assert "Test Patient" not in hidden and "1965-05-10" not in hidden and "&lt;hidden&gt;" in hidden


def test_every_coded_value_these_pages_show_has_its_text_in_english_and_chinese():
    # The literal keys of the templates are checked by test_i18n.py; these are built from the codes.
    english, chinese = catalogue("en"), catalogue("zh")
    used = set()
    for kind, codes in participants.VOCABULARY.items():
        if kind == "method":
            continue  # CT, MRI, PET-CT: the same in both languages, shown as they are
        flat = codes if isinstance(codes, tuple) else [c for group in codes.values() for c in group]
        used |= {f"{kind}.{code}" for code in flat}
    used |= {f"query_status.{s}" for s in queries.STATUSES} | {f"entity.{e}" for e in history.ENTITIES}
    used |= {f"visit_kind.{kind}" for kind in get_args(VisitKind)}
    used |= {f"visit.{status}" for status in get_args(VisitStatus)}
    used |= {
        f"treatment_state.{s}" for s in ("not_started", "dosing", "interrupted", "discontinued", "completed")
    }
    used |= {f"dose_action.{a}" for a in get_args(Action)}
    used |= {f"history.{a}" for a in ("insert", "update", "delete", "event")}
    used |= {f"participant_status.{s}" for s in ("enrolled", "follow_up", "off_study", "completed", "died")}
    used |= {f"participant_sex.{s}" for s in SEXES} | {f"done.{d}" for d in participants.DONE}
    used |= {f"query.done.{d}" for d in query_pages.DONE}
    used |= {f"exports.{n}" for n in exports.PLANNED} | {f"exports.{n}_what" for n in exports.PLANNED}
    assert sorted(used - english.keys()) == []
    assert sorted(used - chinese.keys()) == []


def test_a_malformed_value_in_a_page_address_is_an_error_page_and_in_an_api_address_json(db):
    # Today's pages take their parameters as text; a typed one added later must still answer a person
    # with a page.
    def typed(number: int) -> int:
        return number

    app = build_app(db, factories.PROTOCOL)
    app.add_api_route("/page-of/{number}", typed, methods=["GET"])
    app.add_api_route("/api/v1/page-of/{number}", typed, methods=["GET"])
    client = TestClient(app)
    page, api = client.get("/page-of/abc"), client.get("/api/v1/page-of/abc")
    assert (page.status_code, api.status_code) == (422, 422)
    assert page.headers["content-type"].startswith("text/html") and "number" in page.text
    assert api.json()["error"]["field"] == "number"


def test_a_form_posted_after_the_session_ended_returns_to_its_page_after_signing_in(study):
    db, clients = study
    coordinator = clients["coordinator"]
    form = {"visit_code": "C1D15", "status": "missed", "csrf_token": factories.csrf(coordinator)}
    with db.session() as session:  # every session ends (expired or signed out elsewhere)
        session.execute(delete(ApiToken))
    page = f"http://testserver{P}"
    sent = coordinator.post(f"{P}/visits", data=form, headers={"referer": page}, follow_redirects=False)
    assert (sent.status_code, sent.headers["location"]) == (303, f"/login?next={P}")
    elsewhere = coordinator.post(
        f"{P}/visits", data=form, headers={"referer": "https://evil.example/x"}, follow_redirects=False
    )
    assert elsewhere.headers["location"] == "/login?next=/"
