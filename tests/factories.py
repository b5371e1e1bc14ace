"""Plain functions that build study data for store and API tests (no fixtures, no magic)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from nettrial.api.deps import SESSION_COOKIE
from nettrial.api.main import build_app
from nettrial.protocol.load import load_protocol
from nettrial.store import audit
from nettrial.store.db import Database
from nettrial.store.screening import (
    create_patient,
    create_site,
    enrol,
    evaluate_patient,
    save_screening_record,
)
from nettrial.store.users import ROLES, create_user
from nettrial.web.session import csrf_token

PROTOCOL = load_protocol("nct07279532")
SITE = "ZJU2"
ELIGIBLE_RECORD = Path(__file__).parent / "eligibility" / "eligible_record.json"
# A week before the eligible record's planned first dose (2 March 2026), where hand-built studies start.
ENROLLED_AT = dt.datetime(2026, 2, 25, 9, tzinfo=dt.UTC)


def password(role: str) -> str:
    return f"{role}-test-pw"


def seed(db: Database) -> dict[str, int]:
    """One site and one user per role (username = role); returns user ids by role."""
    with db.session() as session:
        audit.acting_as(session, None, "test")
        create_site(session, code=SITE, name="Second Affiliated Hospital, Zhejiang University")
        return {
            role: create_user(
                session, username=role, password=password(role), role=role, full_name=role.title()
            ).id
            for role in ROLES
        }


def eligible_record(**changes: Any) -> dict[str, Any]:
    """The eligible reference record without its identity (the patient supplies it)."""
    record = json.loads(ELIGIBLE_RECORD.read_text(encoding="utf-8"))
    record["identity"] = {"weight": record["identity"]["weight"]}
    record.update(changes)
    return record


def patient(db: Database, user_id: int, *, name: str = "Test Patient", dob: str = "1965-05-10") -> int:
    with db.session() as session:
        audit.acting_as(session, user_id, "test")
        found = create_patient(
            session,
            site_code=SITE,
            full_name=name,
            medical_record_number=f"MRN-{name}",
            date_of_birth=dt.date.fromisoformat(dob),
            sex="female",
        )
        return found.id


def eligible_patient(db: Database, user_id: int, **kwargs: Any) -> int:
    """A patient with a saved eligible record and a current ELIGIBLE evaluation."""
    patient_id = patient(db, user_id, **kwargs)
    with db.session() as session:
        audit.acting_as(session, user_id, "test")
        from nettrial.store.models import Patient

        found = session.get(Patient, patient_id)
        save_screening_record(session, patient=found, record=eligible_record(), user_id=user_id)
        evaluation = evaluate_patient(session, patient=found, protocol=PROTOCOL, user_id=user_id)
        assert evaluation.decision == "ELIGIBLE", evaluation.result["missing"]
    return patient_id


def enrolled(db: Database, user_id: int, **kwargs: Any) -> int:
    """An enrolled participant's id, the enrolment dated ENROLLED_AT: before the first doses the tests
    log from March 2026 (dosing before enrolment is refused)."""
    patient_id = eligible_patient(db, user_id, **kwargs)
    with db.session() as session:
        audit.acting_as(session, user_id, "test")
        from nettrial.store.models import Patient

        participant = enrol(
            session, patient=session.get(Patient, patient_id), protocol=PROTOCOL, user_id=user_id
        )
        with audit.because(session, "test: enrolment dated back to before the first dose"):
            participant.enrolled_at = ENROLLED_AT
        return participant.id


def client(db: Database) -> TestClient:
    return TestClient(build_app(db, PROTOCOL))


def web_client(app: FastAPI, role: str) -> TestClient:
    """A client signed in to the web interface as the seeded user of ``role`` (session cookie)."""
    client = TestClient(app)
    signed_in = client.post(
        "/login", data={"username": role, "password": password(role)}, follow_redirects=False
    )
    assert signed_in.status_code == 303, signed_in.text
    return client


def csrf(client: TestClient) -> str:
    """The CSRF token of ``client``'s web session, which every form posts."""
    return csrf_token(client.cookies[SESSION_COOKIE])


def login(api: TestClient, role: str) -> dict[str, str]:
    """Authorization header for the seeded user of ``role``."""
    response = api.post("/api/v1/auth/token", data={"username": role, "password": password(role)})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@contextmanager
def writing(db: Database, actor: str = "investigator", reason: str | None = None) -> Iterator[Session]:
    """A write session whose changes the audit trail records as made by ``actor``, for ``reason``."""
    with db.session() as session:
        audit.acting_as(session, None, actor)
        with audit.because(session, reason):
            yield session


def enrolled_before_first_dose(db: Database, *names: str) -> dict[str, int]:
    """Seed, enrol a participant per patient name (default one) and date each enrolment ENROLLED_AT.

    Enrolment is stamped now; dated back, it comes before first doses logged from March 2026.
    Returns the participant ids by name.
    """
    from nettrial.store.models import Participant

    users = seed(db)
    ids = {name: enrolled(db, users["investigator"], name=name) for name in names or ("Test Patient",)}
    with writing(db, reason="test: enrolment dated before the first dose") as session:
        for participant_id in ids.values():
            session.get(Participant, participant_id).enrolled_at = ENROLLED_AT
    return ids
