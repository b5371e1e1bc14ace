"""Property-based fuzzing of every operation in the OpenAPI schema (schemathesis): whatever a signed-in
investigator or coordinator sends, the service never fails with a 5xx, and every 4xx is our error
contract, ``{"error": {"field", "message", ...}}`` (``nettrial/api/main.py``).

The study is a small SQLite one: a site, one user per role, two participants and two patients still
in screening, so that small generated ids reach real rows. The investigator's run has schemathesis'
coverage phase (boundary values, missing and mistyped fields) and random fuzzing; the coordinator's
run fuzzes only, to stay within a couple of minutes.

Refusals made by the framework before any route runs (no such path or method, a body that is not
JSON) are checked by ``test_refusals_before_any_route_runs_follow_the_error_contract`` on their own,
so that one missing handler does not hide server errors in every operation of the fuzz. Inputs the
fuzzer once turned into server errors are kept below as fixed cases, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings
from schemathesis.config import SchemathesisConfig
from sqlalchemy import select

from nettrial.api.main import build_app
from nettrial.store import audit, migrate
from nettrial.store.db import connect
from nettrial.store.models import User
from nettrial.store.users import issue_token
from tests import factories

pytestmark = pytest.mark.slow

# Built at import so that schemathesis can collect one test per operation; the ``study`` fixture puts
# the study database in place (until then the app points at an empty in-memory database).
APP = build_app(connect("sqlite://"), factories.PROTOCOL)


def _schema(*, coverage: bool):
    # Unexpected methods are left to the framework-refusal test below.
    phases = {"coverage": {"enabled": coverage, "unexpected-methods": []}}
    config = SchemathesisConfig.from_dict({"phases": phases})
    return schemathesis.openapi.from_asgi("/openapi.json", APP, config=config)


investigator_schema = _schema(coverage=True)
coordinator_schema = _schema(coverage=False)

BOUNDED = settings(
    max_examples=10,
    deadline=None,
    # No shrinking: a failure is reported as found, and a failing run stays as short as a passing one.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _token(db, role: str) -> str:
    """A bearer token for the seeded user of ``role`` (issued directly: no password hashing per case)."""
    with db.session() as session:
        user = session.scalars(select(User).where(User.username == role)).one()
        audit.acting_as(session, user.id, user.username)
        return issue_token(session, user)[0]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    db = connect(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'study.db'}")
    migrate.upgrade(db)
    users = factories.seed(db)
    for name in ("Fuzz Enrolled One", "Fuzz Enrolled Two"):
        factories.enrolled(db, users["investigator"], name=name)
    factories.eligible_patient(db, users["coordinator"], name="Fuzz Eligible")
    factories.patient(db, users["coordinator"], name="Fuzz Screening")
    placeholder, APP.state.db = APP.state.db, db
    yield db
    APP.state.db = placeholder
    db.dispose()


@pytest.fixture(scope="module")
def tokens(study) -> dict[str, str]:
    return {role: _token(study, role) for role in ("investigator", "coordinator")}


def _describe(case, response) -> str:
    body = case.body if isinstance(case.body, (dict, list, str, int, float, bool)) else repr(case.body)
    return (
        f"{case.method} {case.formatted_path} query={case.query} body={json.dumps(body, default=str)[:2000]}"
        f" -> {response.status_code} {response.text[:1000]}"
    )


def _framework_refusal(response) -> bool:
    """FastAPI's own ``{"detail": ...}`` for no such path/method or an unreadable body (tested apart)."""
    if response.status_code not in (400, 404, 405):
        return False
    try:
        return set(response.json()) == {"detail"}
    except ValueError:
        return False


def _follows_contract(response) -> bool:
    """A JSON body ``{"error": {"field": ..., "message": "...", ...}}``."""
    try:
        error = response.json()["error"]
        return "field" in error and isinstance(error["message"], str) and bool(error["message"])
    except (ValueError, KeyError, TypeError):
        return False


def _check(case, study, tokens: dict[str, str], role: str) -> None:
    token = tokens[role]
    if case.operation.path.endswith("/auth/logout"):
        token = _token(study, role)  # signing out revokes the token it is given
    response = case.call(headers={"Authorization": f"Bearer {token}"})
    assert response.status_code < 500, _describe(case, response)
    if 400 <= response.status_code < 500 and not _framework_refusal(response):
        assert _follows_contract(response), f"not our error contract: {_describe(case, response)}"


# (The one-value parametrization also gives each operation its own test id under pytest 9.)
@investigator_schema.parametrize()
@pytest.mark.parametrize("role", ["investigator"])
@BOUNDED
def test_no_server_error_and_every_refusal_names_field_and_message(case, role, study, tokens):
    _check(case, study, tokens, role)


@coordinator_schema.parametrize()
@pytest.mark.parametrize("role", ["coordinator"])
@BOUNDED
def test_no_server_error_and_every_refusal_names_field_and_message_fuzzing_only(case, role, study, tokens):
    _check(case, study, tokens, role)


def test_refusals_before_any_route_runs_follow_the_error_contract(study, tokens):
    api = TestClient(APP)
    headers = {"Authorization": f"Bearer {tokens['investigator']}"}
    refused = {
        "no such path": api.get("/api/v1/no-such-resource", headers=headers),
        "no such method": api.request("TRACE", "/api/v1/patients", headers=headers),
        "body not JSON": api.post(
            "/api/v1/patients", content=b"\x80", headers=headers | {"Content-Type": "application/json"}
        ),
        "form without boundary": api.post(
            "/api/v1/auth/token", content=b"username=x", headers={"Content-Type": "multipart/form-data"}
        ),
    }
    broken = {
        what: (response.status_code, response.text[:200])
        for what, response in refused.items()
        if not (400 <= response.status_code < 500 and _follows_contract(response))
    }
    if broken:
        pytest.fail("\n".join(f"{what}: {status} {text}" for what, (status, text) in broken.items()))


# Inputs that once made the service fail with a server error, as found by the fuzzer (and, for the
# PostgreSQL ones, by the same fuzz run against PostgreSQL). Each must be refused with a 4xx.
FOUND = {
    "patient id beyond 64 bits": ("GET", "/api/v1/patients/9223372036854775808", None),
    "patient id beyond 32 bits": ("GET", "/api/v1/patients/2147483648", None),
    "participant id in superscript digits": ("GET", "/api/v1/participants/%C2%B2", None),
    "participant id beyond 64 bits": ("GET", "/api/v1/participants/99999999999999999999", None),
    "query about an entity id beyond 32 bits": (
        "POST",
        "/api/v1/queries",
        {"entity": "patient", "entity_id": 2**31, "field": "full_name", "text": "which one?"},
    ),
    "NUL in a site code": (
        "POST",
        "/api/v1/patients",
        {
            "site_code": "ZJU2\u0000",
            "full_name": "A",
            "medical_record_number": "1",
            "date_of_birth": "1960-01-01",
            "sex": "male",
        },
    ),
    "screening record identity not an object": (
        "PUT",
        "/api/v1/patients/{patient}/screening-record",
        {"identity": [1]},
    ),
    "first dose in year 1": ("POST", "/api/v1/patients/{patient}/evaluations", {"first_dose": "0001-01-01"}),
}


def test_inputs_the_fuzzer_found_are_refused_without_server_error(db):
    users = factories.seed(db)
    patient_id = factories.eligible_patient(db, users["investigator"])
    api = TestClient(build_app(db, factories.PROTOCOL), raise_server_exceptions=False)
    headers = factories.login(api, "investigator")
    failing = {}
    for found, (method, path, body) in FOUND.items():
        response = api.request(method, path.format(patient=patient_id), json=body, headers=headers)
        if not (400 <= response.status_code < 500 and _follows_contract(response)):
            failing[found] = f"{method} {path} {body!r} -> {response.status_code} {response.text[:200]}"
    if failing:
        pytest.fail("\n".join(f"{found}: {case}" for found, case in failing.items()))
